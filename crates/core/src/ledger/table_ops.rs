//! Tables and rounds applied to the ledger (`crate::tables` has the rules and the why).
//!
//! Money moves only through posted transfers between the player's wallet in the table's
//! currency and that currency's house account: the stake when a bet is accepted, the payout
//! (or the refund of a voided round) when it is settled. Every check runs before any money
//! moves, so a rejection changes nothing.

use std::sync::Arc;

use super::{available_balance, Ledger};
use crate::history::HistoryRecord;
use crate::tables::{
    bet_return, round_id, round_parts, seed_commitment, studio_signature_valid, Draw, DrawProof,
    PlacedBet, Round, RoundBets, RoundId, RoundState, SharedIdMap, Table, TableBet, TableCommand,
    TableConfig, TableEvent, TableEventKind, TableId, TableOutcome, OUTCOME_BYTES_MAX,
    RECENT_ROUNDS_KEPT, SETTLEMENTS_PER_COMMAND_MAX, SPOTS_PER_BET_MAX,
};
use crate::types::{AccountFlags, AccountKind};

use TableOutcome as O;

const NANOS_PER_MS: u64 = 1_000_000;

impl Ledger {
    pub(super) fn apply_table(&mut self, command: &TableCommand) -> TableOutcome {
        match command {
            TableCommand::Configure(config) => self.configure_table(config),
            TableCommand::Open {
                round_id,
                commitment,
                closes_at_ns,
            } => self.open_round(*round_id, *commitment, *closes_at_ns),
            TableCommand::Bet(bet) => self.place_bet(bet),
            TableCommand::Close { round_id } => self.close_round(*round_id),
            TableCommand::Draw { round_id, draw } => self.draw_round(*round_id, draw),
            TableCommand::Settle { round_id } => self.settle_round(*round_id),
            TableCommand::Void { round_id } => self.void_round(*round_id),
        }
    }

    /// The tables, by id.
    pub fn tables(&self) -> impl Iterator<Item = &Table> + '_ {
        self.tables.values().map(|table| table.as_ref())
    }

    pub fn table(&self, table_id: TableId) -> Option<&Table> {
        self.tables.get(&table_id).map(|table| table.as_ref())
    }

    /// A round that is current or among its table's recent ones.
    pub fn round(&self, round_id: RoundId) -> Option<&Round> {
        self.table(round_parts(round_id).0)?.round(round_id)
    }

    fn configure_table(&mut self, config: &TableConfig) -> TableOutcome {
        if config.check().is_err() {
            return O::TableConfigInvalid;
        }
        match self.tables.get_mut(&config.table_id) {
            // The current round's bets name spots of its game and move money in its currency:
            // those may change only between rounds (limits and the window may change any time).
            Some(table) if table.current.is_some() && !table.config.same_game(config) => {
                return O::RoundInProgress;
            }
            Some(table) => Arc::make_mut(table).config = config.clone(),
            None => {
                let table = Table {
                    config: config.clone(),
                    next_round: 1,
                    current: None,
                    recent: Default::default(),
                    events_published: 0,
                };
                self.tables.insert(config.table_id, Arc::new(table));
            }
        }
        O::Ok
    }

    fn open_round(
        &mut self,
        round: RoundId,
        commitment: [u8; 32],
        closes_at_ns: u64,
    ) -> TableOutcome {
        let now = self.entry_ns;
        let (table_id, number) = round_parts(round);
        let Some(table) = self.tables.get(&table_id) else {
            return O::TableNotFound;
        };
        if table.config.closed {
            return O::TableClosed;
        }
        if table.current.is_some() || number != table.next_round {
            return O::RoundInProgress;
        }
        if closes_at_ns <= now {
            return O::ClosesAtInvalid;
        }
        // A studio round has no server seed, so nothing to commit to: its commitment is zero.
        if table.config.studio.is_some() && commitment != [0; 32] {
            return O::CommitmentMismatch;
        }
        let table = Arc::make_mut(self.tables.get_mut(&table_id).expect("found above"));
        table.next_round = number
            .checked_add(1)
            .expect("round numbers last 2^32 rounds");
        table.current = Some(Round {
            round_id: round_id(table_id, number),
            state: RoundState::Open,
            opened_at_ns: now,
            closes_at_ns,
            commitment,
            limits: table.config.limits,
            draw_delay_ms: table.config.draw_delay_ms,
            studio: table.config.studio,
            draw: None,
            bets: RoundBets::default(),
            bet_index: SharedIdMap::default(),
            settled_bets: 0,
            stakes_total: 0,
            paid_total: 0,
            paid_by_player: SharedIdMap::default(),
            finished_at_ns: 0,
            totals_published_at_ns: 0,
        });
        let seq = self.next_table_seq(table_id);
        let kind = TableEventKind::RoundOpened {
            seq,
            commitment,
            closes_at_ns,
        };
        self.publish_table_event(round, kind);
        O::Ok
    }

    /// The table's next round-level event number.
    fn next_table_seq(&mut self, table_id: TableId) -> u64 {
        let table = Arc::make_mut(self.tables.get_mut(&table_id).expect("table exists"));
        table.events_published += 1;
        table.events_published
    }

    fn publish_table_event(&mut self, round_id: RoundId, kind: TableEventKind) {
        let event = TableEvent {
            round_id,
            timestamp: self.entry_ns,
            kind,
        };
        self.entry.records.push(HistoryRecord::Table(event));
    }

    fn place_bet(&mut self, bet: &TableBet) -> TableOutcome {
        let (table_id, _) = round_parts(bet.round_id);
        let Some(table) = self.tables.get(&table_id) else {
            return O::TableNotFound;
        };
        let Some(round) = table.round(bet.round_id) else {
            return O::RoundNotFound;
        };
        if let Some(placed) = round
            .bet_index
            .get(&bet.bet_id)
            .map(|&at| &round.bets[at as usize])
        {
            let same = placed.player_id == bet.player_id && placed.spots == bet.spots;
            return if same {
                O::BetAccepted {
                    balance: placed.balance_after_bet,
                }
            } else {
                O::BetConflict
            };
        }
        if round.state != RoundState::Open || self.entry_ns >= round.closes_at_ns {
            return O::RoundClosed;
        }
        let stake = match check_spots(bet, round, table.config.spots) {
            Ok(stake) => stake,
            Err(outcome) => return outcome,
        };
        let wallet_slot = match self.bettor_wallet(bet.player_id, table.config.ledger) {
            Ok(slot) => slot,
            Err(outcome) => return outcome,
        };
        let ledger = table.config.ledger;
        if let Err(refusal) = self.check_play(bet.player_id, ledger, stake) {
            return O::Refused(refusal);
        }
        let balance = available_balance(self.account_at(wallet_slot));
        if u128::from(stake) > balance {
            return O::InsufficientFunds { balance };
        }
        let house_slot = self.ensure_house_account(ledger);
        self.wallet_transfer(wallet_slot, house_slot, stake);
        self.record_wager(bet.player_id, ledger, stake);
        let balance_after_bet = self.balance_of(wallet_slot);
        let wallet = self.account_at(wallet_slot).id;
        let round = self.current_round_mut(table_id);
        round.bet_index.insert(bet.bet_id, round.bets.len() as u32);
        round.stakes_total += stake;
        round.bets.push(PlacedBet {
            bet_id: bet.bet_id,
            player_id: bet.player_id,
            wallet,
            spots: bet.spots.clone(),
            stake,
            balance_after_bet,
            paid: None,
            balance_after_settlement: 0,
        });
        self.publish_bets_total(table_id, bet.round_id);
        O::BetAccepted {
            balance: balance_after_bet,
        }
    }

    /// A `bets_total` event when the interval since the round's last one has passed.
    fn publish_bets_total(&mut self, table_id: TableId, round_id: RoundId) {
        let now = self.entry_ns;
        let interval_ms = self.tables[&table_id].config.bets_total_interval_ms;
        let interval_ns = u64::from(interval_ms) * NANOS_PER_MS;
        let round = self.current_round_mut(table_id);
        let due =
            round.totals_published_at_ns == 0 || now >= round.totals_published_at_ns + interval_ns;
        if !due {
            return;
        }
        round.totals_published_at_ns = now.max(1);
        let (bets, stakes_total) = (round.bets.len() as u32, round.stakes_total);
        let seq = self.next_table_seq(table_id);
        let kind = TableEventKind::BetsTotal {
            seq,
            bets,
            stakes_total,
        };
        self.publish_table_event(round_id, kind);
    }

    /// The player's wallet in `ledger`, if bets may come from it.
    fn bettor_wallet(
        &self,
        player_id: u128,
        ledger: crate::ids::LedgerCode,
    ) -> Result<u32, TableOutcome> {
        let player = self.directory.player(player_id).ok_or(O::PlayerNotFound)?;
        let wallet = player.wallet(ledger).ok_or(O::NoWalletInCurrency)?;
        let slot = self
            .slot_of_account(wallet)
            .expect("a player's wallet exists");
        let account = self.account_at(slot);
        assert_eq!(account.kind, AccountKind::Player);
        if account.flags.contains(AccountFlags::CLOSED) {
            return Err(O::PlayerAccountClosed);
        }
        Ok(slot)
    }

    fn current_round_mut(&mut self, table_id: TableId) -> &mut Round {
        let table = Arc::make_mut(self.tables.get_mut(&table_id).expect("table exists"));
        table
            .current
            .as_mut()
            .expect("the table has a current round")
    }

    /// The current round of the round id's table, if it is that round.
    fn current_round(&self, round_id: RoundId) -> Result<&Round, TableOutcome> {
        let table = self
            .tables
            .get(&round_parts(round_id).0)
            .ok_or(O::TableNotFound)?;
        let round = table.round(round_id).ok_or(O::RoundNotFound)?;
        match &table.current {
            Some(current) if current.round_id == round_id => Ok(round),
            _ => Err(O::RoundStateInvalid),
        }
    }

    fn close_round(&mut self, round_id: RoundId) -> TableOutcome {
        let round = match self.current_round(round_id) {
            Ok(round) => round,
            Err(outcome) => return outcome,
        };
        if round.state != RoundState::Open {
            return O::RoundStateInvalid;
        }
        if self.entry_ns < round.closes_at_ns {
            return O::TooEarly;
        }
        let (bets, stakes_total) = (round.bets.len() as u32, round.stakes_total);
        let table_id = round_parts(round_id).0;
        self.current_round_mut(table_id).state = RoundState::Closed;
        let seq = self.next_table_seq(table_id);
        self.publish_table_event(
            round_id,
            TableEventKind::RoundClosed {
                seq,
                bets,
                stakes_total,
            },
        );
        O::Ok
    }

    fn draw_round(&mut self, round_id: RoundId, draw: &Draw) -> TableOutcome {
        let (table_id, _) = round_parts(round_id);
        let checked = match &draw.proof {
            DrawProof::ServerSeed(seed) => self.check_seed_draw(round_id, seed),
            DrawProof::Studio { signature } => self.check_studio_result(round_id, draw, signature),
        };
        if let Err(outcome) = checked {
            return outcome;
        }
        let spots = self.tables[&table_id].config.spots as usize;
        if draw.returns.len() != spots || draw.outcome.len() > OUTCOME_BYTES_MAX {
            return O::DrawInvalid;
        }
        let round = self.current_round_mut(table_id);
        round.draw = Some(draw.clone());
        round.state = RoundState::Drawn;
        let seq = self.next_table_seq(table_id);
        let kind = TableEventKind::RoundDrawn {
            seq,
            draw: draw.clone(),
        };
        self.publish_table_event(round_id, kind);
        O::Ok
    }

    /// An RNG draw: the current round, closed, past its draw time, at a table without a
    /// studio, revealing the seed it committed to.
    fn check_seed_draw(&self, round_id: RoundId, seed: &[u8; 32]) -> Result<(), TableOutcome> {
        let round = self.current_round(round_id)?;
        if round.state != RoundState::Closed {
            return Err(O::RoundStateInvalid);
        }
        if round.studio.is_some() {
            return Err(O::DrawSourceInvalid);
        }
        if self.entry_ns < draw_time_ns(round) {
            return Err(O::TooEarly);
        }
        if seed_commitment(seed) != round.commitment {
            return Err(O::CommitmentMismatch);
        }
        Ok(())
    }

    /// A studio result: signed by the studio the round opened under (checked first, so an
    /// unsigned sender learns nothing about the round), for a closed round, between its draw
    /// time and its result timeout. A result for a drawn or settled round is a duplicate; one
    /// for a voided round, or past the timeout, is late.
    fn check_studio_result(
        &self,
        round_id: RoundId,
        draw: &Draw,
        signature: &[u8; 64],
    ) -> Result<(), TableOutcome> {
        let table = self
            .tables
            .get(&round_parts(round_id).0)
            .ok_or(O::TableNotFound)?;
        let round = table.round(round_id).ok_or(O::RoundNotFound)?;
        let Some(studio) = round.studio else {
            return Err(O::DrawSourceInvalid);
        };
        if !studio_signature_valid(&studio.public_key, round_id, &draw.outcome, signature) {
            return Err(O::StudioSignatureInvalid);
        }
        match round.state {
            RoundState::Open => return Err(O::TooEarly),
            RoundState::Closed => {}
            RoundState::Drawn | RoundState::Settled => return Err(O::ResultDuplicate),
            RoundState::Voiding | RoundState::Voided => return Err(O::ResultLate),
        }
        let draw_at = draw_time_ns(round);
        if self.entry_ns < draw_at {
            return Err(O::TooEarly);
        }
        let timeout_ns = u64::from(studio.result_timeout_ms) * NANOS_PER_MS;
        if self.entry_ns > draw_at.saturating_add(timeout_ns) {
            return Err(O::ResultLate);
        }
        Ok(())
    }

    fn void_round(&mut self, round_id: RoundId) -> TableOutcome {
        let round = match self.current_round(round_id) {
            Ok(round) => round,
            Err(outcome) => return outcome,
        };
        if !matches!(round.state, RoundState::Open | RoundState::Closed) {
            return O::RoundStateInvalid;
        }
        self.current_round_mut(round_parts(round_id).0).state = RoundState::Voiding;
        O::Ok
    }

    /// Pays (or refunds) the next bets in bet order; the last step finishes the round and
    /// moves it to the table's recent rounds.
    fn settle_round(&mut self, round_id: RoundId) -> TableOutcome {
        let (table_id, _) = round_parts(round_id);
        let round = match self.current_round(round_id) {
            Ok(round) => round,
            Err(outcome) => return outcome,
        };
        if !matches!(round.state, RoundState::Drawn | RoundState::Voiding) {
            return O::RoundStateInvalid;
        }
        let from = round.settled_bets as usize;
        let to = round.bets.len().min(from + SETTLEMENTS_PER_COMMAND_MAX);
        let ledger = self.tables[&table_id].config.ledger;
        let house_slot = self.ensure_house_account(ledger);
        for at in from..to {
            self.settle_bet(table_id, at, house_slot);
        }
        let round = self.current_round_mut(table_id);
        round.settled_bets = to as u32;
        let finished = to == round.bets.len();
        if finished {
            self.finish_round(table_id);
        }
        O::SettledBets {
            bets: (to - from) as u32,
            finished,
        }
    }

    fn settle_bet(&mut self, table_id: TableId, at: usize, house_slot: u32) {
        let round = self.current_round_mut(table_id);
        let bet = &round.bets[at];
        assert!(bet.paid.is_none(), "a bet is settled once");
        let (player_id, wallet, stake) = (bet.player_id, bet.wallet, bet.stake);
        let paid = match &round.draw {
            None => u128::from(stake),
            Some(draw) => {
                let won = bet_return(&bet.spots, &draw.returns);
                let paid_before = round.paid_by_player.get(&player_id).copied().unwrap_or(0);
                let room = u128::from(round.limits.payout_max).saturating_sub(paid_before);
                won.min(room)
            }
        };
        let paid = u64::try_from(paid).expect("a payout is capped by payout_max, a u64");
        if round.draw.is_some() {
            *round.paid_by_player.entry_or_default(player_id) += u128::from(paid);
        }
        round.paid_total += u128::from(paid);
        let wallet_slot = self
            .slot_of_account(wallet)
            .expect("the bet's wallet exists");
        if paid > 0 {
            self.wallet_transfer(house_slot, wallet_slot, paid);
            let ledger = self.account_at(wallet_slot).ledger;
            self.record_return(player_id, ledger, paid);
        }
        let balance = self.balance_of(wallet_slot);
        let round = self.current_round_mut(table_id);
        let round_id = round.round_id;
        let bet = round.bets.get_mut(at);
        bet.paid = Some(paid);
        bet.balance_after_settlement = balance;
        let kind = TableEventKind::BetSettled {
            bet_id: bet.bet_id,
            player_id,
            stake,
            paid,
            balance,
        };
        self.publish_table_event(round_id, kind);
    }

    fn finish_round(&mut self, table_id: TableId) {
        let now = self.entry_ns;
        let table = Arc::make_mut(self.tables.get_mut(&table_id).expect("table exists"));
        let mut round = table.current.take().expect("a current round");
        round.state = match round.state {
            RoundState::Drawn => RoundState::Settled,
            RoundState::Voiding => RoundState::Voided,
            other => panic!("finishing a round in state {other:?}"),
        };
        round.finished_at_ns = now;
        round.paid_by_player.clear();
        table.events_published += 1;
        let kind = TableEventKind::RoundFinished {
            seq: table.events_published,
            voided: round.state == RoundState::Voided,
            bets: round.bets.len() as u32,
            stakes_total: round.stakes_total,
            paid_total: round.paid_total,
        };
        let round_id = round.round_id;
        if table.recent.len() == RECENT_ROUNDS_KEPT {
            table.recent.pop_front();
        }
        table.recent.push_back(Arc::new(round));
        self.publish_table_event(round_id, kind);
    }
}

/// The bet's total stake, if its spots are valid and within the round's limits.
/// When a closed round may be drawn: its close plus the clock-skew bound.
fn draw_time_ns(round: &Round) -> u64 {
    round
        .closes_at_ns
        .saturating_add(u64::from(round.draw_delay_ms) * NANOS_PER_MS)
}

fn check_spots(bet: &TableBet, round: &Round, spot_count: u16) -> Result<u64, TableOutcome> {
    if bet.spots.is_empty() || bet.spots.len() > SPOTS_PER_BET_MAX {
        return Err(O::SpotsInvalid);
    }
    let limits = &round.limits;
    let mut stake = 0u64;
    for (at, spot) in bet.spots.iter().enumerate() {
        if spot.spot >= spot_count {
            return Err(O::UnknownSpot);
        }
        if bet.spots[..at]
            .iter()
            .any(|earlier| earlier.spot == spot.spot)
        {
            return Err(O::SpotsInvalid);
        }
        if spot.amount < limits.bet_min {
            return Err(O::BetBelowMin);
        }
        if spot.amount > limits.bet_max {
            return Err(O::BetAboveMax);
        }
        stake = stake.checked_add(spot.amount).ok_or(O::RoundStakeLimit)?;
    }
    let round_total = round
        .stakes_total
        .checked_add(stake)
        .ok_or(O::RoundStakeLimit)?;
    if round_total > limits.round_stake_max {
        return Err(O::RoundStakeLimit);
    }
    if round.bets.len() >= limits.bets_per_round_max as usize {
        return Err(O::TooManyBets);
    }
    Ok(stake)
}
