//! Reality checks as a player sees them: the interval, when the next check falls due, the
//! session's length and its net position per currency. The ledger decides (a due check holds
//! bets until acknowledged); this is the read side that the HTTP route and the live push share.

use croupier_core::compliance::{PlayerCompliance, NANOS_PER_MINUTE};
use croupier_core::players::PlayerId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::live::messages::rfc3339;
use crate::wire::IdOut;

/// A player's reality check now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RealityCheckOut {
    pub player_id: IdOut,
    /// Minutes between checks; null: none.
    pub interval_minutes: Option<u64>,
    /// A longer interval (or none, `interval_minutes` null) waiting for its cooling-off.
    pub pending: Option<PendingIntervalOut>,
    /// The current session's start (the last login); null before the first.
    pub session_started_at: Option<String>,
    /// Whole minutes since then.
    pub session_minutes: u64,
    /// When the next check falls due; null without an interval or a session.
    pub due_at: Option<String>,
    /// A check is due: bets are refused `reality_check_due` until it is acknowledged.
    pub due: bool,
    pub acknowledged_at: Option<String>,
    /// Stakes and returns of this session, per currency played.
    pub net_position: Vec<NetPositionOut>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PendingIntervalOut {
    pub interval_minutes: Option<u64>,
    pub effective_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct NetPositionOut {
    #[schema(example = "EUR")]
    pub currency: String,
    /// Staked this session, minor units.
    pub wagered: u128,
    /// Paid back this session (wins, refunds), minor units.
    pub returned: u128,
    /// `returned - wagered`: negative when the player is behind.
    #[schema(value_type = i64)]
    pub net: i128,
}

/// The time a status is computed at: the wall clock, or the ledger's if it is ahead (the next
/// bet's entry is stamped no earlier than either).
pub fn now_ns(ledger_now_ns: u64) -> u64 {
    crate::auth::wall_clock_ns().max(ledger_now_ns)
}

/// The status of `player` at `now` (ns), and the due time in ns (what the live push waits for).
pub fn reality_check_out(
    player_id: PlayerId,
    player: &PlayerCompliance,
    now: u64,
) -> (RealityCheckOut, Option<u64>) {
    let limit = player.reality_check.at(now);
    let due_at_ns = player.reality_check_due_at(now);
    let started = player.session_started_at_ns;
    let net_position = player
        .wallets
        .iter()
        .map(|wallet| {
            let session = wallet.session_at(started);
            NetPositionOut {
                currency: wallet.ledger.as_string(),
                wagered: session.wagered,
                returned: session.returned,
                net: session.net(),
            }
        })
        .filter(|position| started != 0 && position.wagered + position.returned > 0)
        .collect();
    let out = RealityCheckOut {
        player_id: IdOut(player_id),
        interval_minutes: limit.current,
        pending: limit.pending.map(|pending| PendingIntervalOut {
            interval_minutes: pending.value,
            effective_at: rfc3339(pending.effective_at_ns),
        }),
        session_started_at: (started != 0).then(|| rfc3339(started)),
        session_minutes: match started {
            0 => 0,
            _ => now.saturating_sub(started) / NANOS_PER_MINUTE,
        },
        due_at: due_at_ns.map(rfc3339),
        due: due_at_ns.is_some_and(|due| now >= due),
        acknowledged_at: (player.reality_check_acknowledged_at_ns != 0)
            .then(|| rfc3339(player.reality_check_acknowledged_at_ns)),
        net_position,
    };
    (out, due_at_ns)
}

/// The live push's message: the status with `"type":"reality_check"`.
#[derive(Serialize)]
pub struct RealityCheckMessage<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub status: &'a RealityCheckOut,
}

pub fn live_message(status: &RealityCheckOut) -> String {
    let message = RealityCheckMessage {
        kind: "reality_check",
        status,
    };
    serde_json::to_string(&message).unwrap_or_default()
}
