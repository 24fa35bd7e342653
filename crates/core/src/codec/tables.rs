//! The tables part of the codec: command 13, result 6 and the checkpoint's tables section
//! (version 7; 6 and 5 are read too). Layouts are in the parent module's docs.
//!
//! Live-studio tables came with new command and event kinds (configure with a studio, studio
//! draw, studio round drawn) rather than changed layouts, so every entry written before them
//! still decodes as it did. The configurable `bets_total` interval came the same way: a
//! configuration is now written as kind 10, and kinds 1 and 8 decode with the interval they
//! ran with (`BETS_TOTAL_INTERVAL_MS_BEFORE_CONFIG`), so a replay publishes what it did.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::{DecodeError, Reader, Writer};
use crate::tables::{
    round_parts, Draw, DrawProof, PlacedBet, Round, RoundBets, RoundState, SharedIdMap, SpotStake,
    StudioConfig, Table, TableBet, TableCommand, TableConfig, TableEvent, TableEventKind,
    TableLimits, TableOutcome, BETS_TOTAL_INTERVAL_MS_BEFORE_CONFIG, GAME_NAME_LEN_MAX,
    OUTCOME_BYTES_MAX, RECENT_ROUNDS_KEPT, SPOTS_MAX, SPOTS_PER_BET_MAX,
};

pub(super) const TAG_TABLE: u8 = 13;
pub(super) const RESULT_TAG_TABLE: u8 = 6;

const CONFIGURE: u8 = 1;
const OPEN: u8 = 2;
const BET: u8 = 3;
const CLOSE: u8 = 4;
const DRAW: u8 = 5;
const SETTLE: u8 = 6;
const VOID: u8 = 7;
const CONFIGURE_STUDIO: u8 = 8;
const DRAW_STUDIO: u8 = 9;
/// table config | u32 bets_total_interval_ms | u8 has studio, [studio]
const CONFIGURE_WITH_INTERVAL: u8 = 10;

const EVENT_OPENED: u8 = 1;
const EVENT_BET_PLACED: u8 = 2;
const EVENT_CLOSED: u8 = 3;
const EVENT_DRAWN: u8 = 4;
const EVENT_BET_SETTLED: u8 = 5;
const EVENT_FINISHED: u8 = 6;
const EVENT_BETS_TOTAL: u8 = 7;
const EVENT_DRAWN_STUDIO: u8 = 8;

/// A checkpoint round's draw flag.
const NO_DRAW: u8 = 0;
const SEED_DRAW: u8 = 1;
const STUDIO_DRAW: u8 = 2;

/// What a checkpoint's tables section holds, by its version.
#[derive(Clone, Copy)]
pub(super) struct TablesLayout {
    /// Rounds carry `totals_published_at_ns` (version 6 on).
    pub totals_time: bool,
    /// Configurations and rounds carry the studio, draws their proof kind (version 7 on).
    pub studio: bool,
    /// Configurations carry `bets_total_interval_ms` (version 13 on).
    pub totals_interval: bool,
}
/// Every outcome in code order: an outcome is written as its position here.
const OUTCOMES: [TableOutcome; 37] = {
    use crate::compliance::Refusal as R;
    use TableOutcome::*;
    [
        Ok,
        BetAccepted { balance: 0 },
        SettledBets {
            bets: 0,
            finished: false,
        },
        TableNotFound,
        TableConfigInvalid,
        TableClosed,
        RoundInProgress,
        RoundNotFound,
        RoundStateInvalid,
        RoundClosed,
        TooEarly,
        CommitmentMismatch,
        DrawInvalid,
        ClosesAtInvalid,
        UnknownSpot,
        SpotsInvalid,
        BetBelowMin,
        BetAboveMax,
        RoundStakeLimit,
        TooManyBets,
        InsufficientFunds { balance: 0 },
        PlayerNotFound,
        NoWalletInCurrency,
        PlayerAccountClosed,
        BetConflict,
        DrawSourceInvalid,
        StudioSignatureInvalid,
        ResultLate,
        ResultDuplicate,
        Refused(R::SelfExcluded),
        Refused(R::TimedOut),
        Refused(R::KycRequired),
        Refused(R::SessionLimitReached),
        Refused(R::DepositLimitReached),
        Refused(R::LossLimitReached),
        Refused(R::WagerLimitReached),
        Refused(R::AccountFrozen),
    ]
};

fn outcome_index(outcome: TableOutcome) -> u8 {
    let index = OUTCOMES
        .iter()
        .position(|known| known.code() == outcome.code())
        .expect("every outcome is listed");
    index as u8
}

impl Writer<'_> {
    pub(super) fn table_command(&mut self, command: &TableCommand) {
        self.u8(TAG_TABLE);
        match command {
            TableCommand::Configure(config) => {
                self.u8(CONFIGURE_WITH_INTERVAL);
                self.table_config(config);
                self.u32(config.bets_total_interval_ms);
                self.studio_option(&config.studio);
            }
            TableCommand::Open {
                round_id,
                commitment,
                closes_at_ns,
            } => {
                self.u8(OPEN);
                self.u64(*round_id);
                self.0.extend_from_slice(commitment);
                self.u64(*closes_at_ns);
            }
            TableCommand::Bet(bet) => {
                self.u8(BET);
                self.u128(bet.bet_id);
                self.u128(bet.player_id);
                self.u64(bet.round_id);
                self.spots(&bet.spots);
            }
            TableCommand::Close { round_id } => self.round_step(CLOSE, *round_id),
            TableCommand::Draw { round_id, draw } => {
                self.u8(match draw.proof {
                    DrawProof::ServerSeed(_) => DRAW,
                    DrawProof::Studio { .. } => DRAW_STUDIO,
                });
                self.u64(*round_id);
                self.draw(draw);
            }
            TableCommand::Settle { round_id } => self.round_step(SETTLE, *round_id),
            TableCommand::Void { round_id } => self.round_step(VOID, *round_id),
        }
    }

    pub(super) fn table_event(&mut self, event: &TableEvent) {
        self.u64(event.round_id);
        self.u64(event.timestamp);
        match &event.kind {
            TableEventKind::RoundOpened {
                seq,
                commitment,
                closes_at_ns,
            } => {
                self.u8(EVENT_OPENED);
                self.u64(*seq);
                self.0.extend_from_slice(commitment);
                self.u64(*closes_at_ns);
            }
            TableEventKind::BetPlaced {
                bet_id,
                player_id,
                spots,
                stake,
                balance,
            } => {
                self.u8(EVENT_BET_PLACED);
                self.u128(*bet_id);
                self.u128(*player_id);
                self.spots(spots);
                self.u64(*stake);
                self.u128(*balance);
            }
            TableEventKind::BetsTotal {
                seq,
                bets,
                stakes_total,
            } => {
                self.u8(EVENT_BETS_TOTAL);
                self.u64(*seq);
                self.u32(*bets);
                self.u64(*stakes_total);
            }
            TableEventKind::RoundClosed {
                seq,
                bets,
                stakes_total,
            } => {
                self.u8(EVENT_CLOSED);
                self.u64(*seq);
                self.u32(*bets);
                self.u64(*stakes_total);
            }
            TableEventKind::RoundDrawn { seq, draw } => {
                self.u8(match draw.proof {
                    DrawProof::ServerSeed(_) => EVENT_DRAWN,
                    DrawProof::Studio { .. } => EVENT_DRAWN_STUDIO,
                });
                self.u64(*seq);
                self.draw(draw);
            }
            TableEventKind::BetSettled {
                bet_id,
                player_id,
                stake,
                paid,
                balance,
            } => {
                self.u8(EVENT_BET_SETTLED);
                self.u128(*bet_id);
                self.u128(*player_id);
                self.u64(*stake);
                self.u64(*paid);
                self.u128(*balance);
            }
            TableEventKind::RoundFinished {
                seq,
                voided,
                bets,
                stakes_total,
                paid_total,
            } => {
                self.u8(EVENT_FINISHED);
                self.u64(*seq);
                self.u8(u8::from(*voided));
                self.u32(*bets);
                self.u64(*stakes_total);
                self.u128(*paid_total);
            }
        }
    }

    fn round_step(&mut self, kind: u8, round_id: u64) {
        self.u8(kind);
        self.u64(round_id);
    }

    fn table_config(&mut self, config: &TableConfig) {
        assert!(
            !config.game.is_empty() && config.game.len() <= GAME_NAME_LEN_MAX,
            "game name"
        );
        self.u32(config.table_id);
        self.u16(config.game.len() as u16);
        self.0.extend_from_slice(config.game.as_bytes());
        self.0.extend_from_slice(&config.definition_sha256);
        self.u64(config.ledger.to_u64());
        self.u16(config.spots);
        self.u32(config.betting_window_ms);
        self.u32(config.draw_delay_ms);
        self.limits(&config.limits);
        self.u8(u8::from(config.closed));
    }

    fn studio(&mut self, studio: &StudioConfig) {
        self.0.extend_from_slice(&studio.public_key);
        self.u32(studio.result_timeout_ms);
    }

    /// A checkpoint's optional studio: `u8 0`, or `u8 1 | studio`.
    fn studio_option(&mut self, studio: &Option<StudioConfig>) {
        self.u8(u8::from(studio.is_some()));
        if let Some(studio) = studio {
            self.studio(studio);
        }
    }

    fn limits(&mut self, limits: &TableLimits) {
        self.u64(limits.bet_min);
        self.u64(limits.bet_max);
        self.u64(limits.round_stake_max);
        self.u64(limits.payout_max);
        self.u32(limits.bets_per_round_max);
    }

    fn spots(&mut self, spots: &[SpotStake]) {
        assert!(spots.len() <= SPOTS_PER_BET_MAX, "spots per bet");
        self.u8(spots.len() as u8);
        for stake in spots {
            self.u16(stake.spot);
            self.u64(stake.amount);
        }
    }

    /// The proof (a server seed, or a studio's signature: the kind is written before), the
    /// outcome and the returns.
    fn draw(&mut self, draw: &Draw) {
        assert!(draw.outcome.len() <= OUTCOME_BYTES_MAX, "outcome size");
        assert!(draw.returns.len() <= SPOTS_MAX as usize, "returns");
        match &draw.proof {
            DrawProof::ServerSeed(seed) => self.0.extend_from_slice(seed),
            DrawProof::Studio { signature } => self.0.extend_from_slice(signature),
        }
        self.u16(draw.outcome.len() as u16);
        self.0.extend_from_slice(&draw.outcome);
        self.u16(draw.returns.len() as u16);
        for value in &draw.returns {
            self.u64(*value);
        }
    }

    pub(super) fn table_outcome(&mut self, outcome: &TableOutcome) {
        self.u8(outcome_index(*outcome));
        match *outcome {
            TableOutcome::BetAccepted { balance } | TableOutcome::InsufficientFunds { balance } => {
                self.u128(balance)
            }
            TableOutcome::SettledBets { bets, finished } => {
                self.u32(bets);
                self.u8(u8::from(finished));
            }
            _ => {}
        }
    }

    /// The tables section of a checkpoint: tables by id, each with its current and recent
    /// rounds.
    pub(super) fn checkpoint_tables<'t>(
        &mut self,
        tables: impl ExactSizeIterator<Item = &'t Table>,
    ) {
        self.u32(u32::try_from(tables.len()).expect("tables fit u32"));
        for table in tables {
            self.table_config(&table.config);
            self.studio_option(&table.config.studio);
            self.u32(table.config.bets_total_interval_ms);
            self.u32(table.next_round);
            self.u8(u8::from(table.current.is_some()));
            if let Some(round) = &table.current {
                self.round(round);
            }
            self.u8(table.recent.len() as u8);
            for round in &table.recent {
                self.round(round);
            }
            self.u64(table.events_published);
        }
    }

    fn round(&mut self, round: &Round) {
        self.u64(round.round_id);
        self.u8(round.state.to_u8());
        self.u64(round.opened_at_ns);
        self.u64(round.closes_at_ns);
        self.0.extend_from_slice(&round.commitment);
        self.limits(&round.limits);
        self.u32(round.draw_delay_ms);
        self.studio_option(&round.studio);
        match &round.draw {
            None => self.u8(NO_DRAW),
            Some(draw) => {
                self.u8(match draw.proof {
                    DrawProof::ServerSeed(_) => SEED_DRAW,
                    DrawProof::Studio { .. } => STUDIO_DRAW,
                });
                self.draw(draw);
            }
        }
        self.u32(round.settled_bets);
        self.u64(round.stakes_total);
        self.u128(round.paid_total);
        self.u64(round.finished_at_ns);
        self.u64(round.totals_published_at_ns);
        self.u32(round.bets.len() as u32);
        for bet in round.bets.iter() {
            self.u128(bet.bet_id);
            self.u128(bet.player_id);
            self.u128(bet.wallet);
            self.spots(&bet.spots);
            self.u64(bet.stake);
            self.u128(bet.balance_after_bet);
            self.u8(u8::from(bet.paid.is_some()));
            self.u64(bet.paid.unwrap_or(0));
            self.u128(bet.balance_after_settlement);
        }
    }
}

impl Reader<'_> {
    /// A table command whose tag was just read.
    pub(super) fn table_command(&mut self) -> Result<TableCommand, DecodeError> {
        let offset = self.offset;
        Ok(match self.u8()? {
            CONFIGURE => TableCommand::Configure(self.table_config()?),
            CONFIGURE_STUDIO => {
                let mut config = self.table_config()?;
                config.studio = Some(self.studio()?);
                TableCommand::Configure(config)
            }
            CONFIGURE_WITH_INTERVAL => {
                let mut config = self.table_config()?;
                config.bets_total_interval_ms = self.u32()?;
                config.studio = self.studio_option()?;
                TableCommand::Configure(config)
            }
            OPEN => TableCommand::Open {
                round_id: self.u64()?,
                commitment: self.take::<32>()?,
                closes_at_ns: self.u64()?,
            },
            BET => TableCommand::Bet(TableBet {
                bet_id: self.u128()?,
                player_id: self.u128()?,
                round_id: self.u64()?,
                spots: self.spots()?,
            }),
            CLOSE => TableCommand::Close {
                round_id: self.u64()?,
            },
            DRAW => TableCommand::Draw {
                round_id: self.u64()?,
                draw: self.draw(SEED_DRAW)?,
            },
            DRAW_STUDIO => TableCommand::Draw {
                round_id: self.u64()?,
                draw: self.draw(STUDIO_DRAW)?,
            },
            SETTLE => TableCommand::Settle {
                round_id: self.u64()?,
            },
            VOID => TableCommand::Void {
                round_id: self.u64()?,
            },
            _ => return Err(self.invalid("table command kind", offset)),
        })
    }

    pub(super) fn table_event(&mut self) -> Result<TableEvent, DecodeError> {
        let round_id = self.u64()?;
        let timestamp = self.u64()?;
        let offset = self.offset;
        let kind = match self.u8()? {
            EVENT_OPENED => TableEventKind::RoundOpened {
                seq: self.u64()?,
                commitment: self.take::<32>()?,
                closes_at_ns: self.u64()?,
            },
            EVENT_BET_PLACED => TableEventKind::BetPlaced {
                bet_id: self.u128()?,
                player_id: self.u128()?,
                spots: self.spots()?,
                stake: self.u64()?,
                balance: self.u128()?,
            },
            EVENT_BETS_TOTAL => TableEventKind::BetsTotal {
                seq: self.u64()?,
                bets: self.u32()?,
                stakes_total: self.u64()?,
            },
            EVENT_CLOSED => TableEventKind::RoundClosed {
                seq: self.u64()?,
                bets: self.u32()?,
                stakes_total: self.u64()?,
            },
            EVENT_DRAWN => TableEventKind::RoundDrawn {
                seq: self.u64()?,
                draw: self.draw(SEED_DRAW)?,
            },
            EVENT_DRAWN_STUDIO => TableEventKind::RoundDrawn {
                seq: self.u64()?,
                draw: self.draw(STUDIO_DRAW)?,
            },
            EVENT_BET_SETTLED => TableEventKind::BetSettled {
                bet_id: self.u128()?,
                player_id: self.u128()?,
                stake: self.u64()?,
                paid: self.u64()?,
                balance: self.u128()?,
            },
            EVENT_FINISHED => TableEventKind::RoundFinished {
                seq: self.u64()?,
                voided: self.flag("voided flag")?,
                bets: self.u32()?,
                stakes_total: self.u64()?,
                paid_total: self.u128()?,
            },
            _ => return Err(self.invalid("table event kind", offset)),
        };
        Ok(TableEvent {
            round_id,
            timestamp,
            kind,
        })
    }

    fn table_config(&mut self) -> Result<TableConfig, DecodeError> {
        let table_id = self.u32()?;
        let offset = self.offset;
        let len = usize::from(self.u16()?);
        if len == 0 || len > GAME_NAME_LEN_MAX {
            return Err(self.invalid("game name", offset));
        }
        let game = std::str::from_utf8(self.slice(len)?)
            .map_err(|_| self.invalid("game name", offset))?
            .to_owned();
        Ok(TableConfig {
            table_id,
            game,
            definition_sha256: self.take::<32>()?,
            ledger: self.ledger()?,
            spots: self.u16()?,
            betting_window_ms: self.u32()?,
            draw_delay_ms: self.u32()?,
            // Written after the studio where there is one: the caller reads it.
            bets_total_interval_ms: BETS_TOTAL_INTERVAL_MS_BEFORE_CONFIG,
            limits: self.limits()?,
            closed: self.flag("table closed flag")?,
            studio: None,
        })
    }

    fn studio(&mut self) -> Result<StudioConfig, DecodeError> {
        Ok(StudioConfig {
            public_key: self.take::<32>()?,
            result_timeout_ms: self.u32()?,
        })
    }

    fn studio_option(&mut self) -> Result<Option<StudioConfig>, DecodeError> {
        Ok(match self.flag("studio flag")? {
            true => Some(self.studio()?),
            false => None,
        })
    }

    fn limits(&mut self) -> Result<TableLimits, DecodeError> {
        Ok(TableLimits {
            bet_min: self.u64()?,
            bet_max: self.u64()?,
            round_stake_max: self.u64()?,
            payout_max: self.u64()?,
            bets_per_round_max: self.u32()?,
        })
    }

    fn flag(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        let offset = self.offset;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid(what, offset)),
        }
    }

    fn spots(&mut self) -> Result<Vec<SpotStake>, DecodeError> {
        let offset = self.offset;
        let count = usize::from(self.u8()?);
        if count > SPOTS_PER_BET_MAX {
            return Err(self.invalid("spots per bet", offset));
        }
        (0..count)
            .map(|_| {
                Ok(SpotStake {
                    spot: self.u16()?,
                    amount: self.u64()?,
                })
            })
            .collect()
    }

    /// A draw whose kind (`SEED_DRAW` or `STUDIO_DRAW`) was read before.
    fn draw(&mut self, kind: u8) -> Result<Draw, DecodeError> {
        let proof = match kind {
            SEED_DRAW => DrawProof::ServerSeed(self.take::<32>()?),
            _ => DrawProof::Studio {
                signature: self.take::<64>()?,
            },
        };
        let offset = self.offset;
        let outcome_len = usize::from(self.u16()?);
        if outcome_len > OUTCOME_BYTES_MAX {
            return Err(self.invalid("outcome size", offset));
        }
        let outcome = self.slice(outcome_len)?.to_vec();
        let offset = self.offset;
        let count = usize::from(self.u16()?);
        if count > SPOTS_MAX as usize {
            return Err(self.invalid("returns", offset));
        }
        let returns = (0..count).map(|_| self.u64()).collect::<Result<_, _>>()?;
        Ok(Draw {
            proof,
            outcome,
            returns,
        })
    }

    pub(super) fn table_outcome(&mut self) -> Result<TableOutcome, DecodeError> {
        let offset = self.offset;
        let known = *OUTCOMES
            .get(usize::from(self.u8()?))
            .ok_or_else(|| self.invalid("table outcome", offset))?;
        Ok(match known {
            TableOutcome::BetAccepted { .. } => TableOutcome::BetAccepted {
                balance: self.u128()?,
            },
            TableOutcome::InsufficientFunds { .. } => TableOutcome::InsufficientFunds {
                balance: self.u128()?,
            },
            TableOutcome::SettledBets { .. } => TableOutcome::SettledBets {
                bets: self.u32()?,
                finished: self.flag("settled flag")?,
            },
            other => other,
        })
    }

    /// The tables section of a checkpoint; derived indexes are rebuilt and every round is
    /// checked for consistency (a damaged section is refused, never half-loaded).
    pub(super) fn checkpoint_tables(
        &mut self,
        layout: TablesLayout,
    ) -> Result<BTreeMap<u32, Arc<Table>>, DecodeError> {
        let count = self.count_u32(4 + 2 + 32 + 8)?;
        let mut tables = BTreeMap::new();
        for _ in 0..count {
            let offset = self.offset;
            let mut config = self.table_config()?;
            if layout.studio {
                config.studio = self.studio_option()?;
            }
            if layout.totals_interval {
                config.bets_total_interval_ms = self.u32()?;
            }
            let next_round = self.u32()?;
            let current = match self.flag("current round flag")? {
                true => Some(self.round(layout)?),
                false => None,
            };
            let recent_count = usize::from(self.u8()?);
            if recent_count > RECENT_ROUNDS_KEPT {
                return Err(self.invalid("recent rounds", offset));
            }
            let recent = (0..recent_count)
                .map(|_| self.round(layout).map(Arc::new))
                .collect::<Result<VecDeque<_>, _>>()?;
            let events_published = self.u64()?;
            let table = Table {
                config,
                next_round,
                current,
                recent,
                events_published,
            };
            let after_previous = tables
                .keys()
                .next_back()
                .is_none_or(|last| *last < table.config.table_id);
            if !after_previous || !table_is_consistent(&table) {
                return Err(self.invalid("table", offset));
            }
            tables.insert(table.config.table_id, Arc::new(table));
        }
        Ok(tables)
    }

    fn round(&mut self, layout: TablesLayout) -> Result<Round, DecodeError> {
        let offset = self.offset;
        let round_id = self.u64()?;
        let state =
            RoundState::from_u8(self.u8()?).ok_or_else(|| self.invalid("round state", offset))?;
        let opened_at_ns = self.u64()?;
        let closes_at_ns = self.u64()?;
        let commitment = self.take::<32>()?;
        let limits = self.limits()?;
        let draw_delay_ms = self.u32()?;
        let studio = match layout.studio {
            true => self.studio_option()?,
            false => None,
        };
        let draw_offset = self.offset;
        let draw = match self.u8()? {
            NO_DRAW => None,
            SEED_DRAW => Some(self.draw(SEED_DRAW)?),
            STUDIO_DRAW if layout.studio => Some(self.draw(STUDIO_DRAW)?),
            _ => return Err(self.invalid("draw flag", draw_offset)),
        };
        let settled_bets = self.u32()?;
        let stakes_total = self.u64()?;
        let paid_total = self.u128()?;
        let finished_at_ns = self.u64()?;
        let totals_published_at_ns = match layout.totals_time {
            true => self.u64()?,
            false => 0,
        };
        let bet_count = self.count_u32(16 * 3 + 1 + 8 + 16 + 1 + 8 + 16)?;
        let bets = (0..bet_count)
            .map(|_| self.placed_bet())
            .collect::<Result<RoundBets, _>>()?;
        let mut round = Round {
            round_id,
            state,
            opened_at_ns,
            closes_at_ns,
            commitment,
            limits,
            draw_delay_ms,
            studio,
            draw,
            bets,
            bet_index: SharedIdMap::default(),
            settled_bets,
            stakes_total,
            paid_total,
            paid_by_player: SharedIdMap::default(),
            finished_at_ns,
            totals_published_at_ns,
        };
        rebuild_round_indexes(&mut round).map_err(|what| self.invalid(what, offset))?;
        Ok(round)
    }

    fn placed_bet(&mut self) -> Result<PlacedBet, DecodeError> {
        let (bet_id, player_id, wallet) = (self.u128()?, self.u128()?, self.u128()?);
        let spots = self.spots()?;
        let stake = self.u64()?;
        let balance_after_bet = self.u128()?;
        let settled = self.flag("bet settled flag")?;
        let paid = self.u64()?;
        let balance_after_settlement = self.u128()?;
        Ok(PlacedBet {
            bet_id,
            player_id,
            wallet,
            spots,
            stake,
            balance_after_bet,
            paid: settled.then_some(paid),
            balance_after_settlement,
        })
    }
}

/// Rebuilds a decoded round's bet index and payout tally, and checks what the encoder
/// guarantees: unique bet ids, stakes that add up, exactly the first `settled_bets` settled.
fn rebuild_round_indexes(round: &mut Round) -> Result<(), &'static str> {
    if round.settled_bets as usize > round.bets.len() {
        return Err("settled bets");
    }
    let has_draw = matches!(round.state, RoundState::Drawn | RoundState::Settled);
    if has_draw != round.draw.is_some() {
        return Err("round draw");
    }
    let studio_draw = round.draw.as_ref().map(|d| d.studio_signature().is_some());
    if studio_draw.is_some_and(|studio| studio != round.studio.is_some()) {
        return Err("round draw source");
    }
    let mut stakes = 0u64;
    let mut paid = 0u128;
    for (at, bet) in round.bets.iter().enumerate() {
        if round.bet_index.insert(bet.bet_id, at as u32).is_some() {
            return Err("repeated bet id");
        }
        let spot_sum = bet
            .spots
            .iter()
            .try_fold(0u64, |sum, s| sum.checked_add(s.amount));
        if spot_sum != Some(bet.stake) {
            return Err("bet stake");
        }
        stakes = stakes.checked_add(bet.stake).ok_or("round stakes")?;
        if bet.paid.is_some() != (at < round.settled_bets as usize) {
            return Err("bet settlement");
        }
        paid += u128::from(bet.paid.unwrap_or(0));
        if round.state == RoundState::Drawn {
            *round.paid_by_player.entry_or_default(bet.player_id) +=
                u128::from(bet.paid.unwrap_or(0));
        }
    }
    if stakes != round.stakes_total || paid != round.paid_total {
        return Err("round totals");
    }
    Ok(())
}

/// Rounds belong to their table, the current one is unfinished and the recent ones finished.
fn table_is_consistent(table: &Table) -> bool {
    let id = table.config.table_id;
    let ours = |round: &Round| {
        round_parts(round.round_id).0 == id && round_parts(round.round_id).1 < table.next_round
    };
    let current_ok = table
        .current
        .as_ref()
        .is_none_or(|round| ours(round) && !round.state.is_finished());
    let recent_ok = table
        .recent
        .iter()
        .all(|round| ours(round) && round.state.is_finished());
    current_ok && recent_ok
}
