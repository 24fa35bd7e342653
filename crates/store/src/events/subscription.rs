//! At-least-once consumption of the event feed under a durable name: a subscription resumes
//! after its last acknowledged event, so whatever it was handed but did not acknowledge before
//! a restart is handed out again.

use std::sync::Arc;
use std::time::Duration;

use super::cursors::validate_consumer_name;
use super::{ConsumerCursors, EventFeed, EventPage};
use crate::StoreError;

/// A page of a subscription holds at most this many bytes of event bodies (and always at least
/// one event when one is there).
pub const SUBSCRIPTION_BATCH_BYTES_MAX: usize = 4 << 20;

/// One consumer's position in the feed. It only reads from disk through its [`EventFeed`];
/// a slow subscription never holds anything the event log's writer waits on.
#[derive(Debug)]
pub struct Subscription {
    name: String,
    feed: EventFeed,
    cursors: Arc<ConsumerCursors>,
    acked: Option<u64>,
    /// The position of the last event handed out (or where delivery resumes from).
    delivered: u64,
}

impl Subscription {
    /// Resumes `name` after its last acknowledged event, or from the oldest retained event
    /// when it never acknowledged one.
    pub fn open(feed: EventFeed, cursors: Arc<ConsumerCursors>, name: &str) -> Result<Subscription, StoreError> {
        validate_consumer_name(name)?;
        let acked = cursors.load(name);
        Ok(Subscription { name: name.to_string(), feed, cursors, acked, delivered: acked.unwrap_or(0) })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last acknowledged event position, if any.
    pub fn acked(&self) -> Option<u64> {
        self.acked
    }

    /// The last event handed out (or the resume point).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The next events in order, up to `limit` (and `SUBSCRIPTION_BATCH_BYTES_MAX` of bodies).
    /// Empty when caught up; `missed_by_retention` when events were deleted before delivery.
    pub fn next_batch(&mut self, limit: usize) -> Result<EventPage, StoreError> {
        let page = self.feed.read_after(self.delivered, limit, SUBSCRIPTION_BATCH_BYTES_MAX)?;
        assert!(page.next_after >= self.delivered, "delivery moves forward");
        self.delivered = page.next_after;
        Ok(page)
    }

    /// Durably acknowledges every event through `position`, which must have been delivered.
    /// Acknowledging an older position than before is ignored.
    pub fn ack(&mut self, position: u64) -> Result<(), StoreError> {
        if position > self.delivered {
            let (name, delivered) = (self.name.clone(), self.delivered);
            return Err(StoreError::AckBeyondDelivered { name, position, delivered });
        }
        self.acked = Some(self.cursors.ack(&self.name, position)?);
        Ok(())
    }

    /// Moves this consumer's cursor up to `position`, acknowledged elsewhere (the replicated
    /// cursor another node serving writes left): delivery resumes after it. A position at or
    /// behind this subscription's acknowledged one changes nothing.
    pub fn resume_after(&mut self, position: u64) -> Result<(), StoreError> {
        if self.acked.is_some_and(|acked| acked >= position) || position == 0 {
            return Ok(());
        }
        self.acked = Some(self.cursors.ack(&self.name, position)?);
        self.delivered = self.delivered.max(position);
        Ok(())
    }

    /// Hands out everything after the last acknowledged event again (after a failed batch),
    /// exactly as a restart would.
    pub fn rewind(&mut self) {
        self.delivered = self.acked.unwrap_or(0);
    }

    /// Blocks until an event after the last delivered one is published or `timeout` passes;
    /// returns whether one is there.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.feed.wait_beyond(self.delivered, timeout) > self.delivered
    }
}
