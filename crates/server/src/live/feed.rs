//! The hub's feed reader: the node's applied event feed, from a backfill point on, into the
//! hub, for as long as the server runs.

use std::sync::Arc;
use std::time::Duration;

use croupier_cluster::Consensus;
use croupier_core::events::{event_position, split_event_position};
use croupier_core::tables::{TableEvent, TableEventKind};
use croupier_core::HistoryRecord;

use super::hub::LiveHub;
use crate::state::AppState;

/// Events read per step of the hub's feed reader.
const FEED_PAGE_EVENTS: usize = 1_000;
/// Wait before reading again after a storage error.
const FEED_RETRY_MS: u64 = 500;

/// Where the hub starts reading: `backfill_entries` log entries before the feed's end.
fn backfill_start(events_last: u64, backfill_entries: u64) -> u64 {
    let (index, _) = split_event_position(events_last);
    match index.checked_sub(backfill_entries) {
        Some(first) if first > 0 => event_position(first, 0),
        _ => 0,
    }
}

/// Reads the feed for as long as the server runs and publishes its table events.
pub async fn run<C: Consensus>(hub: Arc<LiveHub>, state: AppState<C>) {
    let end_at_start = state.consensus().events_last();
    let mut after = backfill_start(end_at_start, hub.limits().backfill_entries);
    if after >= end_at_start {
        hub.mark_caught_up();
    }
    loop {
        if state.is_stopping() {
            return;
        }
        let page = match state.events_after(after, FEED_PAGE_EVENTS).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(error = %error.message, "live push: reading the event feed");
                tokio::time::sleep(Duration::from_millis(FEED_RETRY_MS)).await;
                continue;
            }
        };
        for event in &page.events {
            if let HistoryRecord::Table(table_event) = &event.record {
                let label = outcome_label(&state, table_event).await;
                hub.publish(table_event, move |_| label);
            }
        }
        after = page.next;
        if after >= end_at_start {
            hub.mark_caught_up();
        }
        if page.events.is_empty() && !state.wait_for_event_after(after).await {
            return;
        }
    }
}

/// A drawn outcome in words, by the game the table runs (read from the ledger: tables may be
/// configured over HTTP, and a game changes only between rounds).
async fn outcome_label<C: Consensus>(state: &AppState<C>, event: &TableEvent) -> Option<String> {
    let TableEventKind::RoundDrawn { draw, .. } = &event.kind else {
        return None;
    };
    let table_id = event.table_id();
    let config = state
        .read_stale(move |view| view.ledger().table(table_id).map(|t| t.config.clone()))
        .await
        .ok()??;
    state
        .tables()
        .games()
        .for_config(&config)?
        .label(&draw.outcome)
}
