//! The committed event feed as the API and in-process pipelines see it: every history record
//! an applied entry yielded, decoded, at its position (`croupier_core::events`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use croupier_core::codec::{decode_event_body, EventBody};
use croupier_core::consumers::ConsumerAck;
use croupier_core::{Command, HistoryRecord};
use croupier_store::{ConsumerCursors, Event, EventFeed, HistoryReader, Subscription};

use crate::view::ReadError;
use crate::{Consensus, Node};

/// Most events one page holds.
pub const EVENT_PAGE_LIMIT_MAX: usize = 10_000;
/// Most bytes of event bodies one page reads.
const EVENT_PAGE_BYTES_MAX: usize = 8 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedEvent {
    pub position: u64,
    pub timestamp_ns: u64,
    pub record: HistoryRecord,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventPage {
    pub events: Vec<CommittedEvent>,
    /// The position to resume after (the last event's, or `after` when there was none).
    pub next: u64,
    /// True when `after` was older than the oldest retained event: events were skipped.
    pub missed: bool,
}

/// Events as stored → the records they announce. A transfer's event holds only its history
/// sequence number; the transfers of a page are read from history in contiguous runs (one
/// read per run), not one by one: a busy ledger puts hundreds of thousands of transfers a
/// second in the feed, and a consumer that read each alone cost the ledger a quarter of its
/// throughput on two cores.
fn resolve_all(
    events: Vec<Event>,
    history: &HistoryReader,
) -> Result<Vec<CommittedEvent>, ReadError> {
    let undecodable = |position: u64, e: &dyn std::fmt::Display| {
        ReadError::Storage(format!("event {position} does not decode: {e}"))
    };
    let bodies = events
        .iter()
        .map(|event| decode_event_body(&event.body).map_err(|e| undecodable(event.position, &e)))
        .collect::<Result<Vec<_>, _>>()?;
    let seqs: Vec<u64> = bodies
        .iter()
        .filter_map(|body| match body {
            EventBody::TransferRef(seq) => Some(*seq),
            EventBody::Record(_) => None,
        })
        .collect();
    let mut transfers = std::collections::BTreeMap::new();
    for (start, count) in contiguous_runs(&seqs) {
        let run = history.transfers_from(start, count)?;
        transfers.extend((start..).zip(run));
    }
    events
        .into_iter()
        .zip(bodies)
        .map(|(event, body)| {
            let record = match body {
                EventBody::Record(record) => record,
                EventBody::TransferRef(seq) => match transfers.remove(&seq) {
                    Some(stored) => HistoryRecord::Transfer(stored),
                    None => {
                        let missing = format!("transfer {seq} is not in history");
                        return Err(undecodable(event.position, &missing));
                    }
                },
            };
            Ok(CommittedEvent {
                position: event.position,
                timestamp_ns: event.timestamp_ns,
                record,
            })
        })
        .collect()
}

/// `(first, length)` of each run of consecutive numbers in `seqs` (in their order).
fn contiguous_runs(seqs: &[u64]) -> Vec<(u64, usize)> {
    let mut runs: Vec<(u64, usize)> = Vec::new();
    for &seq in seqs {
        match runs.last_mut() {
            Some((start, len)) if *start + *len as u64 == seq => *len += 1,
            _ => runs.push((seq, 1)),
        }
    }
    runs
}

pub(crate) fn read_after(
    feed: &EventFeed,
    history: &HistoryReader,
    after: u64,
    limit: usize,
) -> Result<EventPage, ReadError> {
    let limit = limit.clamp(1, EVENT_PAGE_LIMIT_MAX);
    let page = feed.read_after(after, limit, EVENT_PAGE_BYTES_MAX)?;
    let events = resolve_all(page.events, history)?;
    let next = events.last().map_or(after, |event| event.position);
    Ok(EventPage {
        events,
        next,
        missed: page.missed_by_retention,
    })
}

/// A durable consumer: it resumes after its last acknowledged position, sees every event at
/// least once and in order, and never slows the ledger (it reads from disk at its own pace).
///
/// Its acknowledgements made where writes are served are also replicated
/// (`croupier_core::consumers`), and `catch_up_to_replicated` moves it up to the replicated
/// cursor: a consumer that moves with leadership calls it whenever its node starts serving
/// writes, and resends after a leader change only what the old leader had not replicated yet.
pub struct EventSubscription {
    node: Node,
    inner: Subscription,
    /// One replicated acknowledgement in flight at most: a later one carries a newer position.
    replicating: Arc<AtomicBool>,
}

impl EventSubscription {
    pub(crate) fn open(
        node: Node,
        feed: &EventFeed,
        cursors: Arc<ConsumerCursors>,
        name: &str,
    ) -> Result<Self, ReadError> {
        let inner = Subscription::open(feed.clone(), cursors, name)
            .map_err(|e| ReadError::Invalid(e.to_string()))?;
        Ok(EventSubscription {
            node,
            inner,
            replicating: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Moves up to the replicated cursor when it is ahead of this subscription (read from this
    /// node's applied state, which holds every event it covers). Answers the positions it
    /// skipped, `(after, through]`, for a consumer that keeps state built from the events (the
    /// AML pipeline's windows) and must build it over them without deciding on them again.
    pub async fn catch_up_to_replicated(&mut self) -> Result<Option<(u64, u64)>, ReadError> {
        let name = self.inner.name().to_string();
        let replicated = self
            .node
            .read_stale(move |view| view.ledger().consumer_cursor(&name))
            .await
            .map_err(|error| ReadError::Invalid(error.to_string()))?;
        let Some(position) = replicated else {
            return Ok(None);
        };
        let before = self.inner.delivered();
        self.inner.resume_after(position)?;
        Ok((position > before).then_some((before, position)))
    }

    /// The next events after the last one returned (waits until there is at least one).
    pub async fn next_batch(&mut self, limit: usize) -> Result<Vec<CommittedEvent>, ReadError> {
        loop {
            let batch = self
                .inner
                .next_batch(limit.clamp(1, EVENT_PAGE_LIMIT_MAX))?;
            if !batch.events.is_empty() {
                let history = self.node.shared().history();
                return resolve_all(batch.events, &history);
            }
            if self.node.is_stopped() {
                return Ok(Vec::new());
            }
            self.node.wait_for_event_after(self.inner.delivered()).await;
        }
    }

    /// Records durably that every event up to `position` was handled.
    pub fn ack(&mut self, position: u64) -> Result<(), ReadError> {
        // After `Node::shutdown` the directory may belong to another node: write nothing there.
        if self.node.is_stopped() {
            return Err(ReadError::Invalid("the node is shut down".into()));
        }
        self.inner.ack(position)?;
        self.replicate_ack(position);
        Ok(())
    }

    /// Proposes the acknowledgement to the group when this node leads it, without waiting
    /// for it: the local cursor is the durable one, the replicated one only spares the next
    /// leader a long resend. Skipped when one is in flight or outside a tokio runtime.
    fn replicate_ack(&self, position: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        // The store's consumer names are a subset of the ledger's; checked anyway, since the
        // encoder refuses (panics on) a name the ledger would not accept.
        if !croupier_core::consumers::check_consumer_name(self.inner.name()) {
            return;
        }
        if !self.node.is_leader() || self.replicating.swap(true, Ordering::AcqRel) {
            return;
        }
        let (node, replicating) = (self.node.clone(), Arc::clone(&self.replicating));
        let ack = ConsumerAck {
            name: self.inner.name().to_string(),
            position,
        };
        runtime.spawn(async move {
            if let Err(error) = node.propose(vec![Command::ConsumerAck(ack)]).await {
                tracing::debug!(%error, "consumer cursor not replicated; the next ack tries again");
            }
            replicating.store(false, Ordering::Release);
        });
    }

    /// The position the next batch starts after.
    pub fn position(&self) -> u64 {
        self.inner.delivered()
    }

    /// The last acknowledged position, if any.
    pub fn acked(&self) -> Option<u64> {
        self.inner.acked()
    }
}

#[cfg(test)]
mod tests {
    use super::contiguous_runs;

    #[test]
    fn runs_of_consecutive_sequence_numbers_are_found_in_order() {
        assert_eq!(contiguous_runs(&[]), vec![]);
        assert_eq!(
            contiguous_runs(&[4, 5, 6, 9, 10, 3]),
            vec![(4, 3), (9, 2), (3, 1)]
        );
    }
}
