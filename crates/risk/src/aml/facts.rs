//! [`Facts`]: the numbers one evaluation's rules read, and the names CEL knows them by.

use super::event::{EventKind, LedgerCode};

/// Every variable a rule may name, besides `params` (the rule set's `[params]` table). All are
/// CEL `int` except `kind` and `ledger` (`string`). `threshold` is unbound when the rule set
/// has no threshold for the trigger's ledger: a rule naming it then errors (reported, does not
/// fire) rather than compare against a made-up number.
pub const VARIABLES: &[&str] = &[
    "kind",
    "amount",
    "ledger",
    "threshold",
    "deposits_24h",
    "deposits_count_24h",
    "deposits_count_1h",
    "withdrawals_24h",
    "withdrawals_count_24h",
    "bets_24h",
    "wins_24h",
    "linked_24h",
    "near_threshold_count_24h",
    "deposits_window",
    "withdrawals_window",
    "bets_window",
    "wins_window",
    "last_deposit_amount",
    "wagered_since_last_deposit",
    "since_last_deposit_ns",
    "players_sharing_device",
    "players_sharing_instrument",
    "players_sharing_address",
    "round_opponents",
    "round_stake",
    "round_opposed_stake",
];

/// What the rules see of a player when one event (the trigger) happens: the trigger's own
/// fields and aggregates over the player's window, the trigger included (see
/// `Activity::facts`). Amounts are in the trigger's ledger's minor units and count only that
/// ledger's events: there are no exchange rates here, so amounts of two currencies are never
/// added. Sums saturate (at `i64::MAX` in CEL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Not visible to rules (a `u128` is no CEL `int`); here for the caller's bookkeeping.
    pub player_id: u128,
    pub kind: EventKind,
    pub amount: u64,
    pub ledger: LedgerCode,
    /// The rule set's reporting threshold for `ledger` (EUR 2,000 in minor units for `EUR`).
    pub threshold: Option<u64>,
    pub deposits_24h: u64,
    pub deposits_count_24h: u64,
    pub deposits_count_1h: u64,
    pub withdrawals_24h: u64,
    pub withdrawals_count_24h: u64,
    pub bets_24h: u64,
    pub wins_24h: u64,
    /// Deposits plus withdrawals within 24 h: the AMLD "linked transactions" sum.
    pub linked_24h: u64,
    /// Deposits within 24 h in `[threshold × near_threshold_percent / 100, threshold)`: many
    /// deposits just below the threshold is the pattern of structuring (smurfing).
    pub near_threshold_count_24h: u64,
    /// Sums over the whole window the activity keeps (`ActivityLimits::window_ns`).
    pub deposits_window: u64,
    pub withdrawals_window: u64,
    pub bets_window: u64,
    pub wins_window: u64,
    /// The latest deposit in the window (0 if none), and the stakes placed after it.
    pub last_deposit_amount: u64,
    pub wagered_since_last_deposit: u64,
    /// From the latest deposit to the trigger; `None` (CEL: -1) without a deposit in the window.
    pub since_last_deposit_ns: Option<u64>,
    /// The most players seen with any one device (instrument, address) digest of this player,
    /// the player included: 1 is "only this player", 0 "no digest known". Saturates at
    /// `ActivityLimits::players_per_digest_max`.
    pub players_sharing_device: u64,
    pub players_sharing_instrument: u64,
    pub players_sharing_address: u64,
    /// In the trigger's round (its `round_id`, else the player's latest bet round): the
    /// players whose bets oppose this player's (see `Activity`), this player's stake in the
    /// round, and the opposing players' stakes added up.
    pub round_opponents: u64,
    pub round_stake: u64,
    pub round_opposed_stake: u64,
}

impl Facts {
    /// Facts whose every number is `value`: what a rule set probes each rule with when it is
    /// loaded, and the start `Activity::facts` fills in.
    pub fn uniform(kind: EventKind, ledger: LedgerCode, value: u64) -> Facts {
        Facts {
            player_id: 0,
            kind,
            amount: value,
            ledger,
            threshold: Some(value),
            deposits_24h: value,
            deposits_count_24h: value,
            deposits_count_1h: value,
            withdrawals_24h: value,
            withdrawals_count_24h: value,
            bets_24h: value,
            wins_24h: value,
            linked_24h: value,
            near_threshold_count_24h: value,
            deposits_window: value,
            withdrawals_window: value,
            bets_window: value,
            wins_window: value,
            last_deposit_amount: value,
            wagered_since_last_deposit: value,
            since_last_deposit_ns: Some(value),
            players_sharing_device: value,
            players_sharing_instrument: value,
            players_sharing_address: value,
            round_opponents: value,
            round_stake: value,
            round_opposed_stake: value,
        }
    }

    /// The value of the `int` variable `name`, `None` if there is no such variable (or it is
    /// `threshold` and unbound).
    pub(crate) fn int_variable(&self, name: &str) -> Option<i64> {
        let value = match name {
            "amount" => self.amount,
            "threshold" => self.threshold?,
            "deposits_24h" => self.deposits_24h,
            "deposits_count_24h" => self.deposits_count_24h,
            "deposits_count_1h" => self.deposits_count_1h,
            "withdrawals_24h" => self.withdrawals_24h,
            "withdrawals_count_24h" => self.withdrawals_count_24h,
            "bets_24h" => self.bets_24h,
            "wins_24h" => self.wins_24h,
            "linked_24h" => self.linked_24h,
            "near_threshold_count_24h" => self.near_threshold_count_24h,
            "deposits_window" => self.deposits_window,
            "withdrawals_window" => self.withdrawals_window,
            "bets_window" => self.bets_window,
            "wins_window" => self.wins_window,
            "last_deposit_amount" => self.last_deposit_amount,
            "wagered_since_last_deposit" => self.wagered_since_last_deposit,
            "since_last_deposit_ns" => {
                return Some(self.since_last_deposit_ns.map_or(-1, saturate))
            }
            "players_sharing_device" => self.players_sharing_device,
            "players_sharing_instrument" => self.players_sharing_instrument,
            "players_sharing_address" => self.players_sharing_address,
            "round_opponents" => self.round_opponents,
            "round_stake" => self.round_stake,
            "round_opposed_stake" => self.round_opposed_stake,
            _ => return None,
        };
        Some(saturate(value))
    }
}

/// CEL integers are `i64`: a sum past it reads as `i64::MAX`, still above any threshold.
fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
