//! The recent game rounds and who bet what on them: the collusion facts.
//!
//! # "Bets against each other"
//!
//! Two players *oppose* each other in a round when both staked on it, their spot sets (the
//! outcomes their bets cover, `MoneyEvent::spots`) do not overlap, and together they cover at
//! least `round_cover_percent` of the round's outcomes (`MoneyEvent::spot_count`). Red and
//! black on roulette cover 36 of 37 pockets (97 %); heads and tails cover a coin flip (100 %):
//! whatever happens, one of the two wins, and between them little is lost to the house. That
//! is how two accounts of one person, or two colluders, pass money from one to the other
//! through a game. Stakes are not part of the definition; rules weigh them
//! (`round_stake`, `round_opposed_stake`). Refunds do not undo a stake here: the facts say
//! what players tried.

use std::collections::{BTreeMap, VecDeque};

use super::event::MoneyEvent;

/// The most distinct spots kept per player and round: every table game has fewer outcomes
/// (roulette 37, craps 11 totals); a bet on more is not a bet "against" anyone.
pub const SPOTS_PER_ROUND_BET_MAX: usize = 256;

/// What the rules see of one round from one player's seat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RoundFacts {
    pub(crate) opponents: u64,
    pub(crate) stake: u64,
    pub(crate) opposed_stake: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct RoundIndex {
    rounds: BTreeMap<u64, Round>,
    /// Round ids by first bet, oldest first: the one forgotten when `rounds_max` is reached.
    order: VecDeque<u64>,
    rounds_max: usize,
    players_per_round_max: usize,
}

#[derive(Clone, Debug, Default)]
struct Round {
    spot_count: u16,
    bets: BTreeMap<u128, RoundBet>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RoundBet {
    stake: u64,
    /// Sorted, distinct, each below the round's `spot_count` when that is known.
    spots: Vec<u16>,
}

impl RoundBet {
    fn add(&mut self, event: &MoneyEvent, spot_count: u16) {
        self.stake = self.stake.saturating_add(event.amount);
        let in_range = |spot: &&u16| spot_count == 0 || **spot < spot_count;
        self.spots.extend(event.spots.iter().filter(in_range));
        self.spots.sort_unstable();
        self.spots.dedup();
        self.spots.truncate(SPOTS_PER_ROUND_BET_MAX);
    }
}

impl RoundIndex {
    pub(crate) fn new(rounds_max: usize, players_per_round_max: usize) -> RoundIndex {
        RoundIndex {
            rounds: BTreeMap::new(),
            order: VecDeque::new(),
            rounds_max: rounds_max.max(1),
            players_per_round_max: players_per_round_max.max(1),
        }
    }

    /// Adds a bet (`event.kind` is `Bet`, `event.round_id` is `Some`) to its round. Past
    /// `players_per_round_max` players, later players are not recorded in that round.
    pub(crate) fn record_bet(&mut self, round_id: u64, event: &MoneyEvent) {
        if !self.rounds.contains_key(&round_id) {
            if self.rounds.len() >= self.rounds_max {
                if let Some(oldest) = self.order.pop_front() {
                    self.rounds.remove(&oldest);
                }
            }
            self.order.push_back(round_id);
        }
        let round = self.rounds.entry(round_id).or_default();
        if round.spot_count == 0 {
            round.spot_count = event.spot_count;
        }
        let spot_count = round.spot_count;
        let full = round.bets.len() >= self.players_per_round_max;
        if full && !round.bets.contains_key(&event.player_id) {
            return;
        }
        round
            .bets
            .entry(event.player_id)
            .or_default()
            .add(event, spot_count);
    }

    /// The round `round_id` from `player_id`'s seat, with `pending` (a bet of that player on
    /// that round not recorded yet) added to the player's own bet.
    pub(crate) fn facts(
        &self,
        round_id: u64,
        player_id: u128,
        pending: Option<&MoneyEvent>,
        cover_percent: u64,
    ) -> RoundFacts {
        let empty = Round::default();
        let round = self.rounds.get(&round_id).unwrap_or(&empty);
        let spot_count = match (round.spot_count, pending) {
            (0, Some(bet)) => bet.spot_count,
            (known, _) => known,
        };
        let mut own = round.bets.get(&player_id).cloned().unwrap_or_default();
        if let Some(bet) = pending {
            own.add(bet, spot_count);
        }
        let mut facts = RoundFacts {
            stake: own.stake,
            ..RoundFacts::default()
        };
        let others = round.bets.iter().filter(|(id, _)| **id != player_id);
        for (_, other) in others {
            if opposed(&own.spots, &other.spots, spot_count, cover_percent) {
                facts.opponents += 1;
                facts.opposed_stake = facts.opposed_stake.saturating_add(other.stake);
            }
        }
        facts
    }

    pub(crate) fn len(&self) -> usize {
        self.rounds.len()
    }
}

/// Whether two spot sets (sorted, distinct) oppose: both non-empty, disjoint, and together at
/// least `cover_percent` of `spot_count` outcomes (unknown `spot_count`: never).
fn opposed(a: &[u16], b: &[u16], spot_count: u16, cover_percent: u64) -> bool {
    if a.is_empty() || b.is_empty() || spot_count == 0 {
        return false;
    }
    let covered = (a.len() + b.len()) as u64;
    if covered * 100 < cover_percent * u64::from(spot_count) {
        return false;
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return false,
        }
    }
    true
}
