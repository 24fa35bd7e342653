//! [`Activity`]: the recent money events of the players, kept incrementally and bounded, and
//! the [`Facts`] computed from them for one trigger.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::event::{Digest, EventKind, LedgerCode, MoneyEvent};
use super::facts::Facts;
use super::rounds::RoundIndex;
use super::shared::DigestIndex;

pub const HOUR_NS: u64 = 3_600 * 1_000_000_000;
pub const DAY_NS: u64 = 24 * HOUR_NS;

/// How much [`Activity`] remembers. Every structure is bounded by one of these, so memory is
/// bounded by configuration, whatever the feed: about `players_max × (events_per_player_max
/// × 40 + 3 × digests_per_player_max × 32)` bytes for the players, `3 × digests_max ×
/// (100 + players_per_digest_max × 40)` for the digest indexes and `rounds_max ×
/// players_per_round_max × 100` for the rounds, at worst. The defaults' worst case is large
/// (tens of GB, nearly all of it 1,024 events for each of a million players); real players
/// have far fewer events in 30 days, and a node sizes these to its memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivityLimits {
    /// Players kept; past it the least recently active (by `(last event time, player id)`)
    /// is forgotten.
    pub players_max: usize,
    /// Events kept per player, the oldest dropped first.
    pub events_per_player_max: usize,
    /// How far back a player's events are kept, and the span of the `*_window` facts.
    pub window_ns: u64,
    /// Device (instrument, address) digests kept per kind, least recently seen dropped first.
    pub digests_max: usize,
    /// Players kept per digest: counts saturate there.
    pub players_per_digest_max: usize,
    /// Digests of each kind kept per player, the oldest dropped first.
    pub digests_per_player_max: usize,
    /// Game rounds kept, the oldest (by first bet) dropped first.
    pub rounds_max: usize,
    /// Players kept per round: later players of a crowded round are not recorded in it.
    pub players_per_round_max: usize,
}

impl Default for ActivityLimits {
    fn default() -> ActivityLimits {
        ActivityLimits {
            players_max: 1_000_000,
            events_per_player_max: 1_024,
            window_ns: 30 * DAY_NS,
            digests_max: 1_000_000,
            players_per_digest_max: 64,
            digests_per_player_max: 16,
            rounds_max: 10_000,
            players_per_round_max: 64,
        }
    }
}

/// What the facts need from the rule set: its threshold for the trigger's ledger and the two
/// engine parameters (`RuleSet::facts_params`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FactsParams {
    pub threshold: Option<u64>,
    /// The structuring band starts at this percentage of the threshold.
    pub near_threshold_percent: u64,
    /// Two players oppose when together they cover this percentage of a round's outcomes.
    pub round_cover_percent: u64,
}

/// The recent money events of many players, and the shared-digest and round indexes.
/// Deterministic: the same events recorded in the same order give the same facts, on every
/// replica (ordered maps only; eviction ties broken by id).
#[derive(Clone, Debug)]
pub struct Activity {
    limits: ActivityLimits,
    players: BTreeMap<u128, PlayerWindow>,
    /// `(last_at_ns, player_id)` of every kept player: the first is evicted when full.
    players_by_recency: BTreeSet<(u64, u128)>,
    /// Indexed by [`DigestKind`].
    digests: [DigestIndex; 3],
    rounds: RoundIndex,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DigestKind {
    Device = 0,
    Instrument = 1,
    Address = 2,
}

const DIGEST_KINDS: [DigestKind; 3] = [
    DigestKind::Device,
    DigestKind::Instrument,
    DigestKind::Address,
];

impl DigestKind {
    fn of(self, event: &MoneyEvent) -> Option<&Digest> {
        match self {
            DigestKind::Device => event.device_id.as_ref(),
            DigestKind::Instrument => event.instrument_id.as_ref(),
            DigestKind::Address => event.address_id.as_ref(),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct PlayerWindow {
    last_at_ns: u64,
    /// In feed order (recording order), the oldest first.
    events: VecDeque<WindowEvent>,
    /// Per [`DigestKind`], the digests this player was seen with, the latest last.
    digests: [Vec<Digest>; 3],
    last_round_id: Option<u64>,
}

/// An event as the window keeps it: 40 bytes, no heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WindowEvent {
    at_ns: u64,
    amount: u64,
    ledger: LedgerCode,
    kind: EventKind,
}

impl WindowEvent {
    fn of(event: &MoneyEvent) -> WindowEvent {
        WindowEvent {
            at_ns: event.at_ns,
            amount: event.amount,
            ledger: event.ledger,
            kind: event.kind,
        }
    }
}

impl Activity {
    /// An empty activity. A limit of 0 is taken as 1.
    pub fn new(limits: ActivityLimits) -> Activity {
        let digest_index = || DigestIndex::new(limits.digests_max, limits.players_per_digest_max);
        Activity {
            limits,
            players: BTreeMap::new(),
            players_by_recency: BTreeSet::new(),
            digests: [digest_index(), digest_index(), digest_index()],
            rounds: RoundIndex::new(limits.rounds_max, limits.players_per_round_max),
        }
    }

    pub fn limits(&self) -> &ActivityLimits {
        &self.limits
    }

    /// Players kept now.
    pub fn players_len(&self) -> usize {
        self.players.len()
    }

    /// Events kept now for `player_id` (0 for a player not kept).
    pub fn events_len(&self, player_id: u128) -> usize {
        self.players.get(&player_id).map_or(0, |p| p.events.len())
    }

    /// Digests kept now, all kinds, and rounds kept now.
    pub fn indexes_len(&self) -> (usize, usize) {
        let digests = self.digests.iter().map(DigestIndex::len).sum();
        (digests, self.rounds.len())
    }

    /// Adds `event` to its player's window and to the indexes. Events are expected in feed
    /// order; their times may go back a little (a new leader's clock), which only makes the
    /// window keep an event a little longer.
    pub fn record(&mut self, event: &MoneyEvent) {
        for kind in DIGEST_KINDS {
            if let Some(digest) = kind.of(event) {
                self.digests[kind as usize].record(digest, event.player_id, event.at_ns);
            }
        }
        let round_id = event.round_id.filter(|_| event.kind == EventKind::Bet);
        if let Some(round_id) = round_id {
            self.rounds.record_bet(round_id, event);
        }
        let limits = self.limits;
        let player = self.touch(event.player_id, event.at_ns);
        player.events.push_back(WindowEvent::of(event));
        while player.events.len() > limits.events_per_player_max.max(1) {
            player.events.pop_front();
        }
        let expired = |e: &WindowEvent| e.at_ns.saturating_add(limits.window_ns) <= event.at_ns;
        while player.events.front().is_some_and(expired) {
            player.events.pop_front();
        }
        for kind in DIGEST_KINDS {
            if let Some(digest) = kind.of(event) {
                let kept = &mut player.digests[kind as usize];
                kept.retain(|d| d != digest);
                kept.push(*digest);
                if kept.len() > limits.digests_per_player_max.max(1) {
                    kept.remove(0);
                }
            }
        }
        if round_id.is_some() {
            player.last_round_id = round_id;
        }
    }

    /// The window of `player_id`, created if new (evicting the least recently active player
    /// when full), its recency moved to `at_ns` if later.
    fn touch(&mut self, player_id: u128, at_ns: u64) -> &mut PlayerWindow {
        match self.players.get(&player_id).map(|p| p.last_at_ns) {
            Some(last_at_ns) if at_ns > last_at_ns => {
                self.players_by_recency.remove(&(last_at_ns, player_id));
                self.players_by_recency.insert((at_ns, player_id));
            }
            Some(_) => {}
            None => {
                if self.players.len() >= self.limits.players_max.max(1) {
                    if let Some((_, evicted)) = self.players_by_recency.pop_first() {
                        self.players.remove(&evicted);
                    }
                }
                self.players_by_recency.insert((at_ns, player_id));
            }
        }
        let player = self.players.entry(player_id).or_default();
        player.last_at_ns = player.last_at_ns.max(at_ns);
        player
    }

    /// The facts of `trigger` at `now_ns`: the trigger's fields, and aggregates over its
    /// player's kept events *and the trigger itself*, which must not have been recorded yet
    /// (compute the facts, then record; `RuleSet::observe` does both). Only events of the
    /// trigger's ledger count in the amounts; "within 24 h" means `now_ns - at_ns < 24 h`.
    pub fn facts(&self, trigger: &MoneyEvent, now_ns: u64, params: &FactsParams) -> Facts {
        let mut facts = Facts::uniform(trigger.kind, trigger.ledger, 0);
        facts.player_id = trigger.player_id;
        facts.amount = trigger.amount;
        facts.threshold = params.threshold;
        facts.since_last_deposit_ns = None;
        let player = self.players.get(&trigger.player_id);
        let kept = player.into_iter().flat_map(|p| p.events.iter().copied());
        let events = kept
            .chain(std::iter::once(WindowEvent::of(trigger)))
            .filter(|e| e.ledger == trigger.ledger);
        let scan = WindowScan {
            now_ns,
            window_ns: self.limits.window_ns,
            near_band: params
                .threshold
                .map(|t| near_band(t, params.near_threshold_percent)),
        };
        scan.run(&mut facts, events);
        let [device, instrument, address] = DIGEST_KINDS.map(|kind| {
            let known = player
                .into_iter()
                .flat_map(|p| p.digests[kind as usize].iter());
            let index = &self.digests[kind as usize];
            let players = |d: &Digest| index.players_with(d, trigger.player_id);
            known
                .chain(kind.of(trigger))
                .map(players)
                .max()
                .unwrap_or(0)
        });
        facts.players_sharing_device = device;
        facts.players_sharing_instrument = instrument;
        facts.players_sharing_address = address;
        let round_id = trigger.round_id.or(player.and_then(|p| p.last_round_id));
        if let Some(round_id) = round_id {
            let pending =
                (trigger.kind == EventKind::Bet && trigger.round_id.is_some()).then_some(trigger);
            let round = self.rounds.facts(
                round_id,
                trigger.player_id,
                pending,
                params.round_cover_percent,
            );
            facts.round_opponents = round.opponents;
            facts.round_stake = round.stake;
            facts.round_opposed_stake = round.opposed_stake;
        }
        facts
    }
}

/// `[threshold × percent / 100, threshold)`, the structuring band.
fn near_band(threshold: u64, percent: u64) -> (u64, u64) {
    let from = u128::from(threshold) * u128::from(percent) / 100;
    (u64::try_from(from).unwrap_or(u64::MAX), threshold)
}

/// One pass over a player's events (oldest first, the trigger last) adding up the facts.
struct WindowScan {
    now_ns: u64,
    window_ns: u64,
    near_band: Option<(u64, u64)>,
}

impl WindowScan {
    fn run(&self, facts: &mut Facts, events: impl Iterator<Item = WindowEvent>) {
        let add = |sum: &mut u64, amount: u64| *sum = sum.saturating_add(amount);
        let mut last_deposit_at_ns = None;
        for event in events {
            let age_ns = self.now_ns.saturating_sub(event.at_ns);
            if age_ns >= self.window_ns {
                continue;
            }
            let in_day = age_ns < DAY_NS;
            let amount = event.amount;
            match event.kind {
                EventKind::Deposit => {
                    add(&mut facts.deposits_window, amount);
                    facts.last_deposit_amount = amount;
                    facts.wagered_since_last_deposit = 0;
                    last_deposit_at_ns = Some(event.at_ns);
                    if in_day {
                        add(&mut facts.deposits_24h, amount);
                        facts.deposits_count_24h += 1;
                        let near = |(from, to): (u64, u64)| (from..to).contains(&amount);
                        facts.near_threshold_count_24h +=
                            u64::from(self.near_band.is_some_and(near));
                    }
                    facts.deposits_count_1h += u64::from(age_ns < HOUR_NS);
                }
                EventKind::Withdrawal => {
                    add(&mut facts.withdrawals_window, amount);
                    if in_day {
                        add(&mut facts.withdrawals_24h, amount);
                        facts.withdrawals_count_24h += 1;
                    }
                }
                EventKind::Bet => {
                    add(&mut facts.bets_window, amount);
                    add(&mut facts.wagered_since_last_deposit, amount);
                    if in_day {
                        add(&mut facts.bets_24h, amount);
                    }
                }
                EventKind::Win => {
                    add(&mut facts.wins_window, amount);
                    if in_day {
                        add(&mut facts.wins_24h, amount);
                    }
                }
                // A stake given back was not play.
                EventKind::Refund => {
                    let wagered = &mut facts.wagered_since_last_deposit;
                    *wagered = wagered.saturating_sub(amount);
                }
            }
        }
        facts.linked_24h = facts.deposits_24h.saturating_add(facts.withdrawals_24h);
        facts.since_last_deposit_ns = last_deposit_at_ns.map(|at| self.now_ns.saturating_sub(at));
    }
}
