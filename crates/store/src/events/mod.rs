//! The committed event log: every event the ledger's state machine yields, in order, with a
//! global event position, stored in a [`RecordLog`] and kept for a retention window.
//!
//! Owns: the event record layout `[event_position u64][timestamp_ns u64][body]`, the sparse
//! in-memory index from event positions to record positions, retention by bytes and age,
//! rollback to a checkpoint, the feed readers page through ([`EventFeed`]), durable consumer
//! cursors ([`ConsumerCursors`]) and at-least-once subscriptions ([`Subscription`]).
//!
//! Must not know: what an event body means (the ledger encodes it), how event positions are
//! composed (the ledger composes them from the Raft log index and an ordinal: they strictly
//! increase but are not contiguous), tokio (waiting is a blocking `wait_beyond` plus a cheap
//! `last_position` an async layer can poll), HTTP, JSON. Format: docs/storage-format.md,
//! "Event log".

mod cursors;
mod feed;
mod subscription;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use crate::fs::FileSystem;
use crate::records::{OpenReport, RecordLog, RecordLogOptions, RecordReader, Visit};
use crate::StoreError;
use feed::{FeedShared, IndexPoint};

pub use cursors::{ConsumerCursors, CONSUMER_NAME_BYTES_MAX};
pub use feed::EventFeed;
pub use subscription::{Subscription, SUBSCRIPTION_BATCH_BYTES_MAX};

/// `event_position u64 | timestamp_ns u64` before each body.
pub const EVENT_HEADER_BYTES: usize = 16;
/// The sparse index holds one point per this many bytes of records (and one per segment), so
/// a seek reads at most about this much before the wanted event, and the index costs 16 bytes
/// per interval of retained events (2 MiB per GiB). A follower of the feed's tail (the live
/// hub, a subscription) seeks on every read: at 64 KiB it re-read and re-checked 32 KiB of
/// events it had already seen each time, 4.5% of the server's CPU at 20,000 bets/s.
pub const EVENT_INDEX_INTERVAL_BYTES: u64 = 8 << 10;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventLogOptions {
    pub records: RecordLogOptions,
    /// Delete the oldest segments while the retained records exceed this many bytes.
    pub retention_bytes_max: Option<u64>,
    /// Delete the oldest segments whose newest event is older than this.
    pub retention_age_ns_max: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub position: u64,
    pub timestamp_ns: u64,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventPage {
    /// In strictly increasing position order.
    pub events: Vec<Event>,
    /// Pass as `after` to continue: the last event's position, or `after` when empty.
    pub next_after: u64,
    /// Retention deleted events after the requested `after` (so the page starts at the oldest
    /// retained event): the consumer missed events. For `after = 0`: anything was deleted.
    pub missed_by_retention: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventOpenReport {
    pub records: OpenReport,
    /// Retained events.
    pub events: u64,
    /// The oldest retained event, if any.
    pub first_position: Option<u64>,
    /// The last event (0 when none was ever written or all were rolled back).
    pub last_position: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub segments_deleted: usize,
    pub bytes_deleted: u64,
    /// The last deleted event: consumers behind it missed events.
    pub deleted_through: u64,
}

/// What the writer remembers about one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SegmentMeta {
    first_record: u64,
    /// The segment's tag: the last event position before the segment (0 for the first ever).
    prev_event: u64,
    last_event: u64,
    newest_timestamp_ns: u64,
    events: u64,
}

/// The writer of the event log; owned by one thread (the ledger's apply loop), `Send`.
///
/// Durability is the record log's: `append` buffers, `flush` publishes (one `write`, wakes
/// waiters), `sync` makes everything appended durable. The segment tag is the position of the
/// last event before the segment, which tells readers exactly which events retention deleted.
#[derive(Debug)]
pub struct EventLog {
    records: RecordLog,
    reader: RecordReader,
    options: EventLogOptions,
    segments: VecDeque<SegmentMeta>,
    last_position: u64,
    /// Index points for appended but not yet published events.
    pending_points: Vec<IndexPoint>,
    last_point_record: Option<u64>,
    shared: Arc<FeedShared>,
}

impl EventLog {
    /// Opens the log, reading every retained event once to rebuild the sparse index and the
    /// per-segment metadata (and checking every record's CRC and the event order on the way).
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
        options: EventLogOptions,
    ) -> Result<(EventLog, EventFeed, EventOpenReport), StoreError> {
        let opened = RecordLog::open(fs, dir, options.records.clone())?;
        Self::from_records(opened, options)
    }

    /// Opens an event log whose bytes up to `durable_floor` (a `byte_end` a sync made durable)
    /// must be there, and whose later events the caller rebuilds (see `RecordLog::open_above`).
    pub fn open_above(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
        options: EventLogOptions,
        durable_floor: u64,
    ) -> Result<(EventLog, EventFeed, EventOpenReport), StoreError> {
        let opened = RecordLog::open_above(fs, dir, options.records.clone(), durable_floor)?;
        Self::from_records(opened, options)
    }

    /// Where the underlying record log ends (bytes): the floor to reopen above.
    pub fn byte_end(&self) -> u64 {
        self.records.end()
    }

    /// Flushes, publishes, and hands over what a sync must fsync (see `RecordLog::sync_handle`).
    pub fn sync_handle(&mut self) -> Result<crate::records::RecordSync, StoreError> {
        let handle = self.records.sync_handle()?;
        self.publish();
        Ok(handle)
    }

    fn from_records(
        opened: (RecordLog, RecordReader, crate::records::OpenReport),
        options: EventLogOptions,
    ) -> Result<(EventLog, EventFeed, EventOpenReport), StoreError> {
        let (records, reader, records_report) = opened;
        let shared = Arc::new(FeedShared::default());
        let mut log = EventLog {
            records,
            reader: reader.clone(),
            options,
            segments: VecDeque::new(),
            last_position: 0,
            pending_points: Vec::new(),
            last_point_record: None,
            shared: Arc::clone(&shared),
        };
        log.rebuild_from(log.records.start())?;
        log.publish();
        let report = EventOpenReport {
            records: records_report,
            events: log.segments.iter().map(|meta| meta.events).sum(),
            first_position: log.shared.index_read().front().map(|point| point.event_position),
            last_position: log.last_position,
        };
        Ok((log, EventFeed::new(reader, shared), report))
    }

    /// A new feed over this log.
    pub fn feed(&self) -> EventFeed {
        EventFeed::new(self.reader.clone(), Arc::clone(&self.shared))
    }

    /// The last appended event's position (buffered included); 0 when none.
    pub fn last_position(&self) -> u64 {
        self.last_position
    }

    /// The position of the last event retention deleted (0 when none): the floor below which
    /// `truncate_after` cannot go.
    pub fn deleted_through(&self) -> u64 {
        self.segments.front().map_or(0, |meta| meta.prev_event)
    }

    /// Appends one event (buffered). Positions must strictly increase and be positive (0 means
    /// "before everything" to readers): anything else is a caller bug and panics.
    pub fn append(&mut self, event_position: u64, timestamp_ns: u64, body: &[u8]) -> Result<(), StoreError> {
        assert!(event_position > self.last_position, "event positions strictly increase");
        let mut header = [0u8; EVENT_HEADER_BYTES];
        header[..8].copy_from_slice(&event_position.to_le_bytes());
        header[8..].copy_from_slice(&timestamp_ns.to_le_bytes());
        let record_position = self.records.append_parts(&[&header, body], self.last_position)?;
        let segment_first = self.records.active_segment_start().expect("a record was just appended");
        if self.segments.back().is_none_or(|meta| meta.first_record != segment_first) {
            assert_eq!(segment_first, record_position, "a new segment starts with this record");
            self.segments.push_back(SegmentMeta::empty(segment_first, self.last_position));
        }
        self.note_event(record_position, event_position, timestamp_ns);
        Ok(())
    }

    /// Updates the last segment's metadata and the index for an event stored at `record`.
    fn note_event(&mut self, record: u64, event_position: u64, timestamp_ns: u64) {
        let meta = self.segments.back_mut().expect("the event's segment is known");
        assert!(record >= meta.first_record);
        let first_in_segment = meta.events == 0;
        meta.events += 1;
        meta.last_event = event_position;
        meta.newest_timestamp_ns = meta.newest_timestamp_ns.max(timestamp_ns);
        let interval_passed = self.last_point_record.is_none_or(|last| record - last >= EVENT_INDEX_INTERVAL_BYTES);
        if first_in_segment || interval_passed {
            self.pending_points.push(IndexPoint { event_position, record_position: record });
            self.last_point_record = Some(record);
        }
        self.last_position = event_position;
    }

    /// Writes buffered events (one `write`), then publishes them to feeds and wakes waiters.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.records.flush()?;
        self.publish();
        Ok(())
    }

    /// Flushes and fsyncs; returns the last durable event position.
    pub fn sync(&mut self) -> Result<u64, StoreError> {
        self.records.sync()?;
        self.publish();
        Ok(self.last_position)
    }

    /// Index points after the records they point at, the last position after both: a feed
    /// never seeks past what it can read.
    fn publish(&mut self) {
        if !self.pending_points.is_empty() {
            self.shared.index_write().extend(self.pending_points.drain(..));
        }
        self.shared.publish_last(self.last_position);
    }

    /// Rolls back every event after `event_position` (recovery to a checkpoint); durable when
    /// it returns. `BeforeRetention` when retention already deleted events after it.
    pub fn truncate_after(&mut self, event_position: u64) -> Result<(), StoreError> {
        if event_position >= self.last_position {
            return Ok(());
        }
        let floor = self.deleted_through();
        if event_position < floor {
            return Err(StoreError::BeforeRetention { position: event_position, start: floor });
        }
        self.flush()?;
        let cut = self.first_record_after(event_position)?;
        self.records.truncate_to(cut)?;
        // Metadata and index of the segment now last are rebuilt by reading it again.
        while self.segments.len() > 1 && self.segments.back().is_some_and(|meta| meta.first_record >= cut) {
            self.segments.pop_back();
        }
        let last_first = self.segments.back().expect("the log holds the cut").first_record;
        self.rebuild_from(last_first)?;
        self.publish();
        Ok(())
    }

    /// The record position of the first event after `event_position` (which must be below
    /// the last event).
    fn first_record_after(&self, event_position: u64) -> Result<u64, StoreError> {
        let view = self.reader.view();
        let index = self.shared.index_read();
        let at = index.partition_point(|point| point.event_position <= event_position);
        let point = at.checked_sub(1).map(|i| index[i].record_position);
        let from = point.filter(|&record| record >= view.start()).unwrap_or(view.start());
        drop(index);
        let mut cut = None;
        self.reader.scan_view(&view, from, EVENT_INDEX_INTERVAL_BYTES as usize, |record, payload| {
            let (position, _, _) =
                decode_event(payload).ok_or_else(|| view.corrupt_at(record, "event record too short"))?;
            if position > event_position {
                cut = Some(record);
                return Ok(Visit::Stop);
            }
            Ok(Visit::Take)
        })?;
        Ok(cut.expect("an event after the truncation point exists"))
    }

    /// Forgets what is known from record `from` (a segment start) on and reads it again:
    /// segment metadata, index points, the last position. Checks CRCs, event order and tags.
    fn rebuild_from(&mut self, from: u64) -> Result<(), StoreError> {
        self.segments.retain(|meta| meta.first_record < from);
        self.pending_points.clear();
        let mut index = self.shared.index_write();
        while index.back().is_some_and(|point| point.record_position >= from) {
            index.pop_back();
        }
        self.last_point_record = index.back().map(|point| point.record_position);
        drop(index);
        let added: Vec<_> = self.records.segments().into_iter().filter(|s| s.first_position >= from).collect();
        self.last_position = self.segments.back().map_or(added.first().map_or(0, |s| s.tag), |meta| meta.last_event);
        let mut next_segment = added.iter().peekable();
        let reader = self.reader.clone();
        let view = reader.view();
        reader.scan_view(&view, from, 1 << 20, |record, payload| {
            while let Some(segment) = next_segment.next_if(|s| s.first_position <= record) {
                if segment.tag != self.last_position {
                    let reason =
                        format!("segment tag {} is not the last event before it ({})", segment.tag, self.last_position);
                    return Err(StoreError::corrupt(&segment.path, 20, None, reason));
                }
                self.segments.push_back(SegmentMeta::empty(segment.first_position, segment.tag));
            }
            let (position, timestamp_ns, _) =
                decode_event(payload).ok_or_else(|| view.corrupt_at(record, "event record too short"))?;
            if position <= self.last_position {
                let reason = format!("event {position} does not follow event {}", self.last_position);
                return Err(view.corrupt_at(record, reason));
            }
            self.note_event(record, position, timestamp_ns);
            Ok(Visit::Take)
        })?;
        // A header-only last segment (rolled back to its start) has no events to announce it.
        for segment in next_segment {
            self.segments.push_back(SegmentMeta::empty(segment.first_position, segment.tag));
        }
        Ok(())
    }

    /// Deletes the oldest whole segments while the retained records exceed
    /// `retention_bytes_max`, or while their newest event is older than `retention_age_ns_max`
    /// at `now_ns`. Never the active segment. Durable when it returns.
    pub fn enforce_retention(&mut self, now_ns: u64) -> Result<RetentionReport, StoreError> {
        let end = self.records.end();
        let sealed = self.segments.len().saturating_sub(1);
        let count = (0..sealed)
            .take_while(|&i| {
                let meta = &self.segments[i];
                let too_big = self.options.retention_bytes_max.is_some_and(|max| end - meta.first_record > max);
                let too_old = self
                    .options
                    .retention_age_ns_max
                    .is_some_and(|max| now_ns.saturating_sub(meta.newest_timestamp_ns) > max);
                too_big || too_old
            })
            .count();
        if count == 0 {
            return Ok(RetentionReport { deleted_through: self.deleted_through(), ..RetentionReport::default() });
        }
        let cut = self.segments[count].first_record;
        let deleted = self.records.delete_segments_before(cut)?;
        assert_eq!(deleted, count, "the record log holds the same segments");
        let bytes_deleted = cut - self.segments[0].first_record;
        self.segments.drain(..count);
        let mut index = self.shared.index_write();
        while index.front().is_some_and(|point| point.record_position < cut) {
            index.pop_front();
        }
        drop(index);
        self.pending_points.retain(|point| point.record_position >= cut);
        // Deleting synced (hence flushed) every record: publish the events too.
        self.publish();
        Ok(RetentionReport { segments_deleted: count, bytes_deleted, deleted_through: self.deleted_through() })
    }
}

impl SegmentMeta {
    fn empty(first_record: u64, prev_event: u64) -> Self {
        SegmentMeta { first_record, prev_event, last_event: prev_event, newest_timestamp_ns: 0, events: 0 }
    }
}

/// `(event_position, timestamp_ns, body)`, or `None` when the record is too short.
pub(crate) fn decode_event(payload: &[u8]) -> Option<(u64, u64, &[u8])> {
    let header = payload.get(..EVENT_HEADER_BYTES)?;
    let position = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
    let timestamp_ns = u64::from_le_bytes(header[8..].try_into().expect("8 bytes"));
    Some((position, timestamp_ns, &payload[EVENT_HEADER_BYTES..]))
}

#[cfg(test)]
mod tests;
