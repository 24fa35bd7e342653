//! The reading side of the event log: seeking by event position through a sparse in-memory
//! index, paging, and waiting for new events without knowing any async runtime.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use super::{decode_event, Event, EventPage, EVENT_INDEX_INTERVAL_BYTES};
use crate::records::{RecordReader, View, Visit};
use crate::StoreError;

/// Retention may delete the segment a reader just located between its snapshot and its first
/// read; it then seeks again. Retention only moves forward, so a few attempts always suffice.
const SEEK_ATTEMPTS_MAX: usize = 4;
/// What a page assumes an event record takes when sizing its first read from `limit`.
const EVENT_RECORD_BYTES_GUESS: usize = 256;

/// One sparse-index entry: the event at `event_position` is the record at `record_position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IndexPoint {
    pub(crate) event_position: u64,
    pub(crate) record_position: u64,
}

/// State the writer publishes to feeds.
#[derive(Debug, Default)]
pub(crate) struct FeedShared {
    /// Sorted by both fields; one point for the first event of every segment and then at
    /// least every `EVENT_INDEX_INTERVAL_BYTES` of records.
    index: RwLock<VecDeque<IndexPoint>>,
    /// The last published event position, for lock-free polling.
    last_position: AtomicU64,
    /// The same value under the lock the condition variable needs.
    waiters_position: Mutex<u64>,
    published: Condvar,
}

impl FeedShared {
    pub(crate) fn index_read(&self) -> RwLockReadGuard<'_, VecDeque<IndexPoint>> {
        self.index.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn index_write(&self) -> RwLockWriteGuard<'_, VecDeque<IndexPoint>> {
        self.index.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn waiters(&self) -> MutexGuard<'_, u64> {
        self.waiters_position.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `position` the last published event and wakes every waiter.
    pub(crate) fn publish_last(&self, position: u64) {
        let mut waiters = self.waiters();
        *waiters = position;
        self.last_position.store(position, Ordering::Release);
        drop(waiters);
        self.published.notify_all();
    }
}

/// A reader of the committed event feed: cheap to clone, shareable across threads. It reads
/// only flushed events, from disk (the page cache), and never holds anything the writer waits
/// on beyond a read lock for one binary search.
#[derive(Clone, Debug)]
pub struct EventFeed {
    records: RecordReader,
    shared: std::sync::Arc<FeedShared>,
}

impl EventFeed {
    pub(crate) fn new(records: RecordReader, shared: std::sync::Arc<FeedShared>) -> Self {
        EventFeed { records, shared }
    }

    /// The position of the last flushed event (0 when there is none). Cheap: one atomic load,
    /// suitable for polling from an async task.
    pub fn last_position(&self) -> u64 {
        self.shared.last_position.load(Ordering::Acquire)
    }

    /// Blocks until an event after `position` is published or `timeout` passes; returns the
    /// last published position (greater than `position` unless timed out).
    pub fn wait_beyond(&self, position: u64, timeout: Duration) -> u64 {
        // A timeout too large to add to the clock means "no deadline".
        let deadline = Instant::now().checked_add(timeout);
        let mut published = self.shared.waiters();
        while *published <= position {
            published = match deadline {
                None => self.shared.published.wait(published).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.shared.published.wait_timeout(published, left).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
        *published
    }

    /// Up to `limit` events with position > `after`, in order, stopping before the event that
    /// would take the bodies' total past `bytes_max` (at least one event when one exists).
    /// `after = 0` starts at the oldest retained event. When retention deleted events after
    /// `after`, the page starts at the oldest retained event and says so.
    pub fn read_after(&self, after: u64, limit: usize, bytes_max: usize) -> Result<EventPage, StoreError> {
        for attempt in 1..=SEEK_ATTEMPTS_MAX {
            let view = self.records.view();
            // The oldest segment's tag is the position of the last event before it: whatever
            // lies between `after` and that tag is gone.
            let missed_by_retention = after < view.first_tag();
            let Some((from, skip_bytes)) = self.seek(after, &view) else {
                return Ok(EventPage { events: Vec::new(), next_after: after, missed_by_retention });
            };
            let wanted_bytes = bytes_max.min(limit.saturating_mul(EVENT_RECORD_BYTES_GUESS));
            let read_ahead = usize::try_from(skip_bytes).unwrap_or(usize::MAX).saturating_add(wanted_bytes);
            match self.collect(&view, (from, read_ahead), after, limit, bytes_max) {
                Err(StoreError::BeforeRetention { .. }) if attempt < SEEK_ATTEMPTS_MAX => continue,
                Err(error) => return Err(error),
                Ok(events) => {
                    let next_after = events.last().map_or(after, |event| event.position);
                    return Ok(EventPage { events, next_after, missed_by_retention });
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// The record position to scan from: the last index point at or before `after` (within
    /// the view), or the oldest retained record; and how many bytes of events at or before
    /// `after` may precede the first wanted one (up to the next index point). `None` when the
    /// view holds nothing to read.
    fn seek(&self, after: u64, view: &View) -> Option<(u64, u64)> {
        let start = view.start();
        if start >= view.end {
            return None;
        }
        let index = self.shared.index_read();
        let at = index.partition_point(|point| point.event_position <= after);
        let from = match at.checked_sub(1).map(|i| index[i]) {
            // A point behind `start` is one retention has not pruned yet.
            Some(point) if point.record_position >= start => point.record_position,
            _ => start,
        };
        let skip = index.get(at).map_or(EVENT_INDEX_INTERVAL_BYTES, |next| next.record_position.saturating_sub(from));
        // A point past the view's end is a stale one from a concurrent truncation.
        (from < view.end).then_some((from, skip))
    }

    fn collect(
        &self,
        view: &View,
        (from, read_ahead): (u64, usize),
        after: u64,
        limit: usize,
        bytes_max: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut events: Vec<Event> = Vec::new();
        if limit == 0 {
            return Ok(events);
        }
        let mut bytes = 0usize;
        self.records.scan_view(view, from, read_ahead, |record_position, payload| {
            let (position, timestamp_ns, body) =
                decode_event(payload).ok_or_else(|| view.corrupt_at(record_position, "event record too short"))?;
            if position <= after {
                return Ok(Visit::Take);
            }
            if !events.is_empty() && bytes + body.len() > bytes_max {
                return Ok(Visit::Stop);
            }
            bytes += body.len();
            events.push(Event { position, timestamp_ns, body: body.to_vec() });
            Ok(if events.len() == limit { Visit::TakeAndStop } else { Visit::Take })
        })?;
        Ok(events)
    }
}
