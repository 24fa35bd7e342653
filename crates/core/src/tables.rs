//! Live tables and their rounds, as ledger state: a table runs one game, round after round,
//! `open` → `closed` → `drawn` → `settled` (or `voided`), every transition a command in the log.
//!
//! The state machine never runs game code (`core` must not know the games crate): the leader
//! draws the outcome and writes, with the revealed server seed, the *return per unit staked of
//! every spot* for that outcome into the draw command. Settlement is then arithmetic the state
//! machine does itself, the same on every replica and in the auditor, who can recompute the
//! returns from the outcome with the certified game definition. So a leader cannot pay one
//! bettor differently from another on the same spot, and every accepted bet is settled exactly
//! once, in bet order, by `Settle` commands that each settle a bounded number of bets.
//!
//! Time comes from the log: a bet in an entry stamped at or after the round's `closes_at` is
//! refused, and a draw is accepted only at `closes_at` plus the table's `draw_delay_ms` (the
//! clock-skew bound), so no bet can be placed once the outcome can be known.
//!
//! A round that cannot be drawn (its leader crashed with the server seed) is voided: every bet
//! is refunded exactly once, by the same bounded `Settle` steps. A drawn round is never voided.
//!
//! A live-studio table takes its outcomes from a studio's console instead of the RNG: the
//! studio signs each result with its Ed25519 key ([`studio_result_message`] is what it signs),
//! and the draw carries that signature instead of a server seed. The state machine checks the
//! signature against the key the round opened under, so no leader can settle a studio round
//! with an outcome the studio did not sign; a result before the draw time is too early, one
//! after `result_timeout_ms` is late (the round is voided), a second one is a duplicate.

use std::sync::Arc;

use crate::ids::{AccountId, LedgerCode};

mod shared;
pub use shared::RoundBets;
pub(crate) use shared::SharedIdMap;

pub type TableId = u32;
/// `table_id << 32 | round number` (JSON-safe while table ids stay below `TABLE_ID_MAX`).
pub type RoundId = u64;
/// A bet's client-chosen id: unique within its round (a retry answers the original result).
pub type BetId = u128;
/// A player id (`crate::ids::player_id`).
pub type PlayerId = u128;

/// Table ids are 1..=TABLE_ID_MAX, so round ids stay below 2^53.
pub const TABLE_ID_MAX: TableId = (1 << 20) - 1;
pub const GAME_NAME_LEN_MAX: usize = 32;
/// Most spots a game may offer (roulette has 157).
pub const SPOTS_MAX: u16 = 1024;
/// Most spots one bet may cover.
pub const SPOTS_PER_BET_MAX: usize = 64;
/// Largest encoded outcome the draw carries (opaque to the ledger).
pub const OUTCOME_BYTES_MAX: usize = 512;
/// Returns are per unit staked, stake included, in these units (games' `RETURN_SCALE`).
pub const RETURN_SCALE: u64 = 10_000;
/// Most bets one `Settle` command settles: a large round takes several entries instead of one
/// long apply that would stall every other write.
pub const SETTLEMENTS_PER_COMMAND_MAX: usize = 4_096;
/// Settled rounds kept per table for game recall and bet retries (regulators ask for 10).
pub const RECENT_ROUNDS_KEPT: usize = 10;
/// Upper bound on a table's `bets_per_round_max` (memory is bounded by this × rounds kept).
pub const BETS_PER_ROUND_LIMIT: u32 = 200_000;
pub const BETTING_WINDOW_MS_MAX: u32 = 600_000;
pub const DRAW_DELAY_MS_MAX: u32 = 60_000;
pub const RESULT_TIMEOUT_MS_MAX: u32 = 600_000;
/// Ledger time between two `bets_total` events of an open round (a table's
/// `bets_total_interval_ms`): live screens see the pot grow at that pace however many bets
/// arrive, so the feed is not one event per bet. Each one goes to every screen watching, so on a
/// table with a large audience it is most of what the live push sends.
pub const BETS_TOTAL_INTERVAL_MS_DEFAULT: u32 = 1_000;
pub const BETS_TOTAL_INTERVAL_MS_MIN: u32 = 100;
pub const BETS_TOTAL_INTERVAL_MS_MAX: u32 = 60_000;
/// The interval of a configuration written before it was configurable (every entry and
/// checkpoint from then decodes with it, so replaying them publishes the same events).
pub const BETS_TOTAL_INTERVAL_MS_BEFORE_CONFIG: u32 = 500;

pub fn round_id(table: TableId, number: u32) -> RoundId {
    (u64::from(table) << 32) | u64::from(number)
}

/// The table and number of a round id.
pub fn round_parts(round: RoundId) -> (TableId, u32) {
    ((round >> 32) as TableId, round as u32)
}

/// A table's configuration. Limits apply from the next round opened after a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableConfig {
    pub table_id: TableId,
    /// The game's name in the catalogue (`croupier games list`).
    pub game: String,
    /// SHA-256 of the certified definition the table runs: the node checks it before
    /// configuring, and it is on record with every round.
    pub definition_sha256: [u8; 32],
    /// The currency: bets come from the player's wallet in this ledger.
    pub ledger: LedgerCode,
    /// How many spots the game offers; bets name spots by index.
    pub spots: u16,
    pub betting_window_ms: u32,
    /// Wait after the close before the draw: the bound on clock skew between leaders.
    pub draw_delay_ms: u32,
    /// Ledger time between two `bets_total` events of an open round (the first is published by
    /// the round's first bet).
    pub bets_total_interval_ms: u32,
    pub limits: TableLimits,
    /// A closed table opens no new round (the current one finishes).
    pub closed: bool,
    /// A live-studio table: outcomes come signed from this studio, not from the RNG.
    pub studio: Option<StudioConfig>,
}

/// The studio whose console reports a live-studio table's results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StudioConfig {
    /// The studio's Ed25519 public key (RFC 8032), which every result must be signed with.
    pub public_key: [u8; 32],
    /// How long after the draw time the studio has to report a result; then the round is
    /// voided and its bets refunded, and a result that comes later is refused as late.
    pub result_timeout_ms: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableLimits {
    /// Per spot, per bet.
    pub bet_min: u64,
    pub bet_max: u64,
    /// Sum of every stake in a round.
    pub round_stake_max: u64,
    /// Most one player is paid in one round (the rest of a larger win is not paid, as the
    /// table's rules state).
    pub payout_max: u64,
    pub bets_per_round_max: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableConfigError {
    #[error("table id must be 1 to {TABLE_ID_MAX}")]
    TableId,
    #[error("game name must be 1 to {GAME_NAME_LEN_MAX} characters of a-z, 0-9 and -")]
    GameName,
    #[error("spots must be 1 to {SPOTS_MAX}")]
    Spots,
    #[error("betting window must be 1 to {BETTING_WINDOW_MS_MAX} ms")]
    BettingWindow,
    #[error("draw delay must be at most {DRAW_DELAY_MS_MAX} ms")]
    DrawDelay,
    #[error(
        "the bets_total interval must be {BETS_TOTAL_INTERVAL_MS_MIN} to \
         {BETS_TOTAL_INTERVAL_MS_MAX} ms"
    )]
    BetsTotalInterval,
    #[error("limits must satisfy 1 <= bet_min <= bet_max <= round_stake_max and payout_max >= 1")]
    Limits,
    #[error("bets per round must be 1 to {BETS_PER_ROUND_LIMIT}")]
    BetsPerRound,
    #[error("the studio's public key is not an Ed25519 public key")]
    StudioKey,
    #[error("the studio's result timeout must be 1 to {RESULT_TIMEOUT_MS_MAX} ms")]
    ResultTimeout,
}

impl TableConfig {
    /// Same game, definition, spots and currency: what a round in progress depends on.
    pub fn same_game(&self, other: &TableConfig) -> bool {
        self.game == other.game
            && self.definition_sha256 == other.definition_sha256
            && self.spots == other.spots
            && self.ledger == other.ledger
    }

    pub fn check(&self) -> Result<(), TableConfigError> {
        use TableConfigError as E;
        if self.table_id == 0 || self.table_id > TABLE_ID_MAX {
            return Err(E::TableId);
        }
        let name_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
        if !(1..=GAME_NAME_LEN_MAX).contains(&self.game.len()) || !self.game.bytes().all(name_ok) {
            return Err(E::GameName);
        }
        if self.spots == 0 || self.spots > SPOTS_MAX {
            return Err(E::Spots);
        }
        if self.betting_window_ms == 0 || self.betting_window_ms > BETTING_WINDOW_MS_MAX {
            return Err(E::BettingWindow);
        }
        if self.draw_delay_ms > DRAW_DELAY_MS_MAX {
            return Err(E::DrawDelay);
        }
        let interval = BETS_TOTAL_INTERVAL_MS_MIN..=BETS_TOTAL_INTERVAL_MS_MAX;
        if !interval.contains(&self.bets_total_interval_ms) {
            return Err(E::BetsTotalInterval);
        }
        let l = &self.limits;
        let ordered = 1 <= l.bet_min && l.bet_min <= l.bet_max && l.bet_max <= l.round_stake_max;
        if !ordered || l.payout_max == 0 {
            return Err(E::Limits);
        }
        if l.bets_per_round_max == 0 || l.bets_per_round_max > BETS_PER_ROUND_LIMIT {
            return Err(E::BetsPerRound);
        }
        if let Some(studio) = &self.studio {
            if ed25519_dalek::VerifyingKey::from_bytes(&studio.public_key).is_err() {
                return Err(E::StudioKey);
            }
            if studio.result_timeout_ms == 0 || studio.result_timeout_ms > RESULT_TIMEOUT_MS_MAX {
                return Err(E::ResultTimeout);
            }
        }
        Ok(())
    }
}

/// One stake on one spot of a bet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpotStake {
    pub spot: u16,
    pub amount: u64,
}

/// A player's bet: all its spots are accepted together or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableBet {
    pub bet_id: BetId,
    pub player_id: PlayerId,
    pub round_id: RoundId,
    pub spots: Vec<SpotStake>,
}

/// A round's draw: what proves the outcome, the outcome as the game encodes it, and every
/// spot's return for that outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draw {
    pub proof: DrawProof,
    pub outcome: Vec<u8>,
    /// Per spot (index-aligned with the game's spots): what one unit staked returns, stake
    /// included, in `RETURN_SCALE` units.
    pub returns: Vec<u64>,
}

/// Where an outcome came from, and the evidence anyone can check it with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrawProof {
    /// Drawn by the leader from the provably-fair stream of this revealed server seed (its
    /// SHA-256, as hex text, is the round's commitment).
    ServerSeed([u8; 32]),
    /// Reported by the table's studio: its Ed25519 signature of [`studio_result_message`].
    Studio { signature: [u8; 64] },
}

impl Draw {
    /// The revealed server seed of an RNG draw (`None` for a studio result).
    pub fn server_seed(&self) -> Option<&[u8; 32]> {
        match &self.proof {
            DrawProof::ServerSeed(seed) => Some(seed),
            DrawProof::Studio { .. } => None,
        }
    }

    /// The studio's signature of a studio result (`None` for an RNG draw).
    pub fn studio_signature(&self) -> Option<&[u8; 64]> {
        match &self.proof {
            DrawProof::ServerSeed(_) => None,
            DrawProof::Studio { signature } => Some(signature),
        }
    }
}

/// The text a studio signs for a round's result: ASCII, one line, the outcome as lowercase hex
/// of the game's encoding (`croupier studio` writes it; docs/api.md shows it for scripts), e.g.
/// `croupier studio result v1 table 3 round 12884901890 outcome 11`. The table and round are in
/// the message, so a signed result cannot be replayed at another round or table.
pub fn studio_result_message(round_id: RoundId, outcome: &[u8]) -> String {
    let (table_id, _) = round_parts(round_id);
    let outcome_hex: String = outcome.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("croupier studio result v1 table {table_id} round {round_id} outcome {outcome_hex}")
}

/// Whether `signature` is the studio's Ed25519 signature of the round's result (strict
/// verification: no malleable or small-order encodings).
pub fn studio_signature_valid(
    public_key: &[u8; 32],
    round_id: RoundId,
    outcome: &[u8],
    signature: &[u8; 64],
) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let message = studio_result_message(round_id, outcome);
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message.as_bytes(), &signature).is_ok()
}

/// Commands on tables. All but `Bet` come from the leader's table scheduler or an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableCommand {
    /// Creates a table or changes it (from its next round on).
    Configure(TableConfig),
    /// Opens the table's next round (the previous one must be finished).
    Open {
        round_id: RoundId,
        commitment: [u8; 32],
        closes_at_ns: u64,
    },
    Bet(TableBet),
    Close {
        round_id: RoundId,
    },
    Draw {
        round_id: RoundId,
        draw: Draw,
    },
    /// Settles (or, for a voided round, refunds) the next bets, at most
    /// `SETTLEMENTS_PER_COMMAND_MAX`; the round is finished when none remain.
    Settle {
        round_id: RoundId,
    },
    /// Voids a round that has not been drawn: its bets are refunded by `Settle`.
    Void {
        round_id: RoundId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundState {
    Open,
    Closed,
    Drawn,
    /// Voided, refunds under way.
    Voiding,
    Settled,
    Voided,
}

impl RoundState {
    pub fn name(self) -> &'static str {
        match self {
            RoundState::Open => "open",
            RoundState::Closed => "closed",
            RoundState::Drawn => "drawn",
            RoundState::Voiding => "voiding",
            RoundState::Settled => "settled",
            RoundState::Voided => "voided",
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, RoundState::Settled | RoundState::Voided)
    }

    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(raw: u8) -> Option<Self> {
        use RoundState::*;
        [Open, Closed, Drawn, Voiding, Settled, Voided]
            .get(raw as usize)
            .copied()
    }
}

/// A bet the table accepted, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedBet {
    pub bet_id: BetId,
    pub player_id: PlayerId,
    pub wallet: AccountId,
    pub spots: Vec<SpotStake>,
    pub stake: u64,
    /// The player's available balance right after the stake was taken.
    pub balance_after_bet: u128,
    /// Paid back at settlement (a refund for a voided round); `None` until settled.
    pub paid: Option<u64>,
    /// The player's available balance right after the settlement.
    pub balance_after_settlement: u128,
}

/// A round as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    pub round_id: RoundId,
    pub state: RoundState,
    pub opened_at_ns: u64,
    pub closes_at_ns: u64,
    pub commitment: [u8; 32],
    /// The configuration the round runs under (a change applies from the next round).
    pub limits: TableLimits,
    pub draw_delay_ms: u32,
    /// The studio that reports this round's result (from the configuration at its opening).
    pub studio: Option<StudioConfig>,
    pub draw: Option<Draw>,
    pub bets: RoundBets,
    /// Bet id → position in `bets` (rebuilt when a checkpoint is read).
    pub(crate) bet_index: SharedIdMap<u32>,
    /// Bets settled so far (in bet order).
    pub settled_bets: u32,
    pub stakes_total: u64,
    pub paid_total: u128,
    /// What each player has been paid so far in a drawn round's settlement, for the
    /// `payout_max` cap (rebuilt from the settled bets when a checkpoint is read; emptied once
    /// the round is finished).
    pub(crate) paid_by_player: SharedIdMap<u128>,
    /// When the round was settled or voided.
    pub finished_at_ns: u64,
    /// Ledger time of the round's last `bets_total` event (0: none yet).
    pub totals_published_at_ns: u64,
}

impl Round {
    pub fn bet(&self, bet_id: BetId) -> Option<&PlacedBet> {
        self.bet_index
            .get(&bet_id)
            .map(|&at| &self.bets[at as usize])
    }
}

/// A table: its configuration, its current round and the last finished ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub config: TableConfig,
    /// The next round's number (rounds are numbered from 1).
    pub next_round: u32,
    pub current: Option<Round>,
    /// Finished rounds, oldest first, at most `RECENT_ROUNDS_KEPT`. A finished round never
    /// changes again, so a copy of the table (see `shared`) shares it.
    pub recent: std::collections::VecDeque<Arc<Round>>,
    /// Round-level events published so far (the last one's `seq`).
    pub events_published: u64,
}

impl Table {
    /// The current round or one of the recent ones.
    pub fn round(&self, round_id: RoundId) -> Option<&Round> {
        self.current
            .iter()
            .chain(self.recent.iter().map(|round| &**round))
            .find(|round| round.round_id == round_id)
    }

    /// The current round, then the kept ones, newest first.
    pub fn rounds_newest_first(&self) -> impl Iterator<Item = &Round> + '_ {
        let recent = self.recent.iter().rev().map(|round| &**round);
        self.current.iter().chain(recent)
    }
}

/// The answer to a table command. Rejections change nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableOutcome {
    Ok,
    /// `balance`: the player's available balance right after the stake was taken.
    BetAccepted {
        balance: u128,
    },
    /// A settle step: how many bets it settled, and whether the round is now finished.
    SettledBets {
        bets: u32,
        finished: bool,
    },
    TableNotFound,
    TableConfigInvalid,
    TableClosed,
    /// Open while the current round is unfinished, or with a round id out of sequence.
    RoundInProgress,
    RoundNotFound,
    /// The round exists but is not in the state the command needs.
    RoundStateInvalid,
    /// The bet's entry is stamped at or after the close time.
    RoundClosed,
    /// A close or draw before its time.
    TooEarly,
    CommitmentMismatch,
    /// A draw whose returns do not match the table's spots, or whose outcome is too large.
    DrawInvalid,
    /// A close time in the past.
    ClosesAtInvalid,
    UnknownSpot,
    SpotsInvalid,
    BetBelowMin,
    BetAboveMax,
    RoundStakeLimit,
    TooManyBets,
    InsufficientFunds {
        balance: u128,
    },
    PlayerNotFound,
    /// The player has no wallet in the table's currency.
    NoWalletInCurrency,
    PlayerAccountClosed,
    /// The bet id was used in this round for another bet.
    BetConflict,
    /// An RNG draw at a studio table, or a studio result at an RNG table.
    DrawSourceInvalid,
    /// A studio result whose signature is not the round's studio's.
    StudioSignatureInvalid,
    /// A studio result after the round's result timeout (the round is, or will be, voided).
    ResultLate,
    /// A studio result for a round that already has one.
    ResultDuplicate,
    /// Refused by the player's responsible-gambling limits, exclusion or KYC level
    /// (`crate::compliance`); nothing moved.
    Refused(crate::compliance::Refusal),
}

impl TableOutcome {
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            TableOutcome::Ok | TableOutcome::BetAccepted { .. } | TableOutcome::SettledBets { .. }
        )
    }

    /// Stable snake_case code, as the API spells it.
    pub fn code(self) -> &'static str {
        use TableOutcome::*;
        match self {
            Ok => "ok",
            BetAccepted { .. } => "bet_accepted",
            SettledBets { .. } => "settled_bets",
            TableNotFound => "table_not_found",
            TableConfigInvalid => "table_config_invalid",
            TableClosed => "table_closed",
            RoundInProgress => "round_in_progress",
            RoundNotFound => "round_not_found",
            RoundStateInvalid => "round_state_invalid",
            RoundClosed => "round_closed",
            TooEarly => "too_early",
            CommitmentMismatch => "commitment_mismatch",
            DrawInvalid => "draw_invalid",
            ClosesAtInvalid => "closes_at_invalid",
            UnknownSpot => "unknown_spot",
            SpotsInvalid => "spots_invalid",
            BetBelowMin => "bet_below_min",
            BetAboveMax => "bet_above_max",
            RoundStakeLimit => "round_stake_limit",
            TooManyBets => "too_many_bets",
            InsufficientFunds { .. } => "insufficient_funds",
            PlayerNotFound => "player_not_found",
            NoWalletInCurrency => "no_wallet_in_currency",
            PlayerAccountClosed => "player_account_closed",
            BetConflict => "bet_conflict",
            DrawSourceInvalid => "draw_source_invalid",
            StudioSignatureInvalid => "studio_signature_invalid",
            ResultLate => "result_late",
            ResultDuplicate => "result_duplicate",
            Refused(refusal) => refusal.code(),
        }
    }
}

/// The commitment to a server seed: SHA-256 of the seed *as shown to players*, its 64
/// lowercase hex characters (the provably-fair convention of `croupier_rng::fair`, so
/// `croupier fair verify` checks a table round like any other).
pub fn seed_commitment(server_seed: &[u8; 32]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 64];
    for (at, byte) in server_seed.iter().enumerate() {
        text[2 * at] = DIGITS[usize::from(byte >> 4)];
        text[2 * at + 1] = DIGITS[usize::from(byte & 0xf)];
    }
    Sha256::digest(text).into()
}

/// What a bet returns for a drawn round: the sum over its spots of stake × return, rounded
/// down to a minor unit. u128 arithmetic: a u64 stake times a u64 return cannot overflow.
pub fn bet_return(spots: &[SpotStake], returns: &[u64]) -> u128 {
    spots
        .iter()
        .map(|s| u128::from(s.amount) * u128::from(returns[s.spot as usize]))
        .sum::<u128>()
        / u128::from(RETURN_SCALE)
}

/// What happened at a table, as history yields it (an event of the committed feed; tables
/// keep their state hot, so these records go to the event log only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableEvent {
    pub round_id: RoundId,
    pub timestamp: u64,
    pub kind: TableEventKind,
}

/// Round-level events carry the table's own sequence number `seq` (1, 2, 3, ... per table,
/// the same on every replica): what the live push resumes from without gaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableEventKind {
    RoundOpened {
        seq: u64,
        commitment: [u8; 32],
        closes_at_ns: u64,
    },
    BetPlaced {
        bet_id: BetId,
        player_id: PlayerId,
        spots: Vec<SpotStake>,
        stake: u64,
        balance: u128,
    },
    /// The open round's running totals, at most once per the table's `bets_total_interval_ms`
    /// of ledger time (published by the bet that crosses the interval).
    BetsTotal {
        seq: u64,
        bets: u32,
        stakes_total: u64,
    },
    RoundClosed {
        seq: u64,
        bets: u32,
        stakes_total: u64,
    },
    RoundDrawn {
        seq: u64,
        draw: Draw,
    },
    BetSettled {
        bet_id: BetId,
        player_id: PlayerId,
        stake: u64,
        paid: u64,
        balance: u128,
    },
    /// The last settle step (or refund) of a round: `voided` when its bets were refunded.
    RoundFinished {
        seq: u64,
        voided: bool,
        bets: u32,
        stakes_total: u64,
        paid_total: u128,
    },
}

impl TableEvent {
    pub fn table_id(&self) -> TableId {
        round_parts(self.round_id).0
    }

    /// The event type this record is published as.
    pub fn event_type(&self) -> &'static str {
        match self.kind {
            TableEventKind::RoundOpened { .. } => "round_opened",
            TableEventKind::BetPlaced { .. } => "bet_placed",
            TableEventKind::BetsTotal { .. } => "bets_total",
            TableEventKind::RoundClosed { .. } => "round_closed",
            TableEventKind::RoundDrawn { .. } => "round_drawn",
            TableEventKind::BetSettled { .. } => "bet_settled",
            TableEventKind::RoundFinished { voided: false, .. } => "round_settled",
            TableEventKind::RoundFinished { voided: true, .. } => "round_voided",
        }
    }
}
