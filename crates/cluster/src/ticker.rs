//! Drives ledger time on an idle node: while a pending transfer's deadline has passed, propose
//! a `Tick` (at most once a second) so the state machine voids it. Without this an expired
//! pending would keep its funds reserved until some other write arrived.

use std::time::Duration;

use croupier_core::Command;

use crate::wall_clock::unix_time_ns;
use crate::{Consensus, Node};

/// How often the ticker looks (and so the most Ticks it proposes per second).
const TICK_INTERVAL_MS: u64 = 1_000;

pub(crate) fn spawn(node: Node, runtime: &tokio::runtime::Handle) {
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(TICK_INTERVAL_MS));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if node.is_stopped() {
                return;
            }
            // Only the leader ticks: a follower's tick would be one more forwarded entry.
            if !node.is_serving_writes() || !node.is_leader() {
                continue;
            }
            let due = node.shared().ledger.read().await.next_expiry_ns();
            if due.is_some_and(|deadline| deadline <= unix_time_ns()) {
                if let Err(error) = node.propose(vec![Command::Tick]).await {
                    tracing::warn!(%error, "tick to expire pending transfers failed");
                }
            }
        }
    });
}
