//! Record logs: append-only logs of opaque records addressed by *position*, the logical byte
//! offset of a record's frame in the concatenation of all frames (segment headers excluded).
//! Positions are contiguous and deterministic, so a caller who knows its payload sizes can
//! compute them (fixed-size transfer records sit at `sequence × frame size`).
//!
//! Owns: segment files `DIR/<first position, 20 digits>.rec`, CRC32C frames, the write buffer,
//! torn-tail recovery, truncation (rollback to a checkpoint) and deletion of whole old segments
//! (retention). Readers ([`RecordReader`]) share the segment list with the single writer
//! ([`RecordLog`]) under a brief lock and see only flushed records.
//!
//! Must not know: what the records mean (transfers, wallet records, events), checkpoints,
//! retention policy, tokio, openraft. Format and recovery rules: docs/storage-format.md,
//! "Record logs".

mod format;
mod open;
mod reader;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::{FileSystem, StorageFile};
use crate::{StoreError, TornTail};
use format::{encode_frame, encode_segment_header, segment_file_name, SegmentHeader};
use reader::{ReadSegment, Shared};
pub(crate) use reader::{View, Visit};

pub(crate) use format::parse_segment_file_name;
pub use format::{RECORD_FRAME_OVERHEAD_BYTES, RECORD_PAYLOAD_BYTES_MAX, RECORD_SEGMENT_HEADER_BYTES};
pub use reader::RecordReader;

/// A write buffer that grew past this (one huge record) is released rather than kept.
const BUFFER_RETAINED_BYTES_MAX: usize = 16 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLogOptions {
    /// A new segment starts when the next frame would take the current segment's file (header
    /// included) past this size. A frame larger than this gets a segment of its own.
    pub segment_bytes_max: u64,
    /// Appended frames are buffered in memory up to this many bytes; `append` flushes (one
    /// `write`) when the next frame would not fit.
    pub buffer_bytes_max: usize,
    /// Fsync a segment before the next one is created (so only the last segment can hold a
    /// torn write). A log whose content can be rebuilt above a durable floor (history and
    /// events: replay regenerates them from the Raft log) turns this off, opens with
    /// `open_above`, and syncs off the writer thread with `sync_handle` at checkpoints: then a
    /// segment roll never waits for the disk.
    pub sync_on_seal: bool,
}

impl Default for RecordLogOptions {
    fn default() -> Self {
        // 2 MiB holds a whole ledger batch of 8,189 transfers (136 bytes framed) in one write.
        RecordLogOptions { segment_bytes_max: 64 << 20, buffer_bytes_max: 2 << 20, sync_on_seal: true }
    }
}

/// A sync taken off the writer: everything appended before `RecordLog::sync_handle` becomes
/// durable when `run` returns. Run it on any thread.
pub struct RecordSync {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    files: Vec<(PathBuf, Box<dyn StorageFile>)>,
    sync_dir: bool,
    end: u64,
}

impl std::fmt::Debug for RecordSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSync")
            .field("dir", &self.dir)
            .field("files", &self.files.len())
            .field("end", &self.end)
            .finish()
    }
}

impl RecordSync {
    /// Fsyncs every segment written since the last sync, then the directory; returns the end
    /// that is now durable.
    pub fn run(self) -> Result<u64, StoreError> {
        for (path, mut file) in self.files {
            file.sync_data().map_err(StoreError::io("fsync", &path))?;
        }
        if self.sync_dir {
            self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;
        }
        Ok(self.end)
    }
}

/// What `RecordLog::open` found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The first retained position.
    pub start: u64,
    /// The end of the log, durable on return: a caller whose checkpoint covers positions past
    /// this lost data it had synced, which is corruption.
    pub end: u64,
    pub segments: usize,
    /// Set when the last segment ended in a torn write, which was cut off.
    pub torn_tail: Option<TornTail>,
    /// A last segment whose header was torn (nothing in it had been synced).
    pub removed_files: Vec<PathBuf>,
}

/// One segment file, for retention decisions and diagnostics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    pub first_position: u64,
    /// Exclusive; for the active segment, the end including buffered records.
    pub end_position: u64,
    /// The caller-supplied tag of the segment's first record.
    pub tag: u64,
    pub path: PathBuf,
}

/// The writer of a record log; owned by one thread, `Send`.
///
/// Durability: `append` buffers; `flush` writes the buffer in one `write` (readers see it, a
/// crash may lose it); `sync` makes everything appended durable. `truncate_to` and
/// `delete_segments_before` are durable when they return. After any write or sync error the
/// log is poisoned and refuses writes (`Poisoned`) until reopened.
#[derive(Debug)]
pub struct RecordLog {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    options: RecordLogOptions,
    shared: Arc<Shared>,
    /// The writer's copy of the segment list; published to readers when it changes.
    segments: Vec<Arc<ReadSegment>>,
    /// Write handle of the last segment.
    active: Option<Box<dyn StorageFile>>,
    buffer: Vec<u8>,
    end: u64,
    published_end: u64,
    durable_end: u64,
    unsynced_data: bool,
    unsynced_dir: bool,
    /// Sealed segments not yet fsynced (only without `sync_on_seal`).
    unsynced_sealed: Vec<(PathBuf, Box<dyn StorageFile>)>,
    poisoned: bool,
}

impl RecordLog {
    /// Opens (creating if missing) the log in `dir`. Sealed segments are checked by header and
    /// size; the last segment frame by frame. A torn tail is cut and reported; a bad frame
    /// followed by a valid one, or a sealed segment that does not fit, is `Corrupt`. Whatever
    /// the log holds is durable on return.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
        options: RecordLogOptions,
    ) -> Result<(RecordLog, RecordReader, OpenReport), StoreError> {
        Self::open_inner(fs, dir.as_ref(), options, None)
    }

    /// Opens a log whose records up to `durable_floor` were made durable (by a sync) and whose
    /// records after it can be rebuilt by the caller: sealed segments wholly below the floor
    /// are checked as `open` does; from the floor on, the first bad frame, bad header or gap
    /// anywhere is where the log ends (everything after it is deleted and reported as a torn
    /// tail). Damage below the floor is `Corrupt`.
    pub fn open_above(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
        options: RecordLogOptions,
        durable_floor: u64,
    ) -> Result<(RecordLog, RecordReader, OpenReport), StoreError> {
        Self::open_inner(fs, dir.as_ref(), options, Some(durable_floor))
    }

    fn open_inner(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        options: RecordLogOptions,
        durable_floor: Option<u64>,
    ) -> Result<(RecordLog, RecordReader, OpenReport), StoreError> {
        assert!(options.segment_bytes_max > 0, "segment_bytes_max must be positive");
        assert!(options.buffer_bytes_max > 0, "buffer_bytes_max must be positive");
        let dir = dir.to_path_buf();
        let recovered = open::recover(fs.as_ref(), &dir, durable_floor)?;
        let view = View { segments: recovered.segments.clone().into(), end: recovered.end };
        let shared = Arc::new(Shared::new(Arc::clone(&fs), view));
        let log = RecordLog {
            fs,
            dir,
            buffer: Vec::with_capacity(options.buffer_bytes_max),
            options,
            shared: Arc::clone(&shared),
            segments: recovered.segments,
            active: recovered.active,
            end: recovered.end,
            published_end: recovered.end,
            durable_end: recovered.end,
            unsynced_data: false,
            unsynced_dir: false,
            unsynced_sealed: Vec::new(),
            poisoned: false,
        };
        Ok((log, RecordReader::new(shared), recovered.report))
    }

    /// A new reader sharing this log's published state.
    pub fn reader(&self) -> RecordReader {
        RecordReader::new(Arc::clone(&self.shared))
    }

    /// The position the next appended record gets (buffered records included).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The end of what readers see.
    pub fn published_end(&self) -> u64 {
        self.published_end
    }

    /// The end of what is known durable (the last `sync`, seal, truncation or open).
    pub fn durable_end(&self) -> u64 {
        self.durable_end
    }

    /// The first retained position.
    pub fn start(&self) -> u64 {
        self.segments.first().map_or(self.end, |segment| segment.first_position)
    }

    /// The first position of the segment the next append would go to, unless it rotates.
    pub fn active_segment_start(&self) -> Option<u64> {
        self.segments.last().map(|segment| segment.first_position)
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        let ends = self.segments.iter().skip(1).map(|next| next.first_position).chain([self.end]);
        self.segments
            .iter()
            .zip(ends)
            .map(|(segment, end_position)| SegmentInfo {
                first_position: segment.first_position,
                end_position,
                tag: segment.tag,
                path: segment.path.clone(),
            })
            .collect()
    }

    /// Appends one record (buffered); returns its position.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64, StoreError> {
        self.append_parts(&[payload], 0)
    }

    /// Like `append`; if this record starts a new segment, `segment_tag` goes into that
    /// segment's header (e.g. the timestamp of its first event).
    pub fn append_tagged(&mut self, payload: &[u8], segment_tag: u64) -> Result<u64, StoreError> {
        self.append_parts(&[payload], segment_tag)
    }

    /// Appends one record whose payload is the concatenation of `parts`.
    pub fn append_parts(&mut self, parts: &[&[u8]], segment_tag: u64) -> Result<u64, StoreError> {
        self.check_writable()?;
        let payload_bytes: usize = parts.iter().map(|part| part.len()).sum();
        if payload_bytes > RECORD_PAYLOAD_BYTES_MAX {
            return Err(StoreError::PayloadTooLarge { bytes: payload_bytes, max: RECORD_PAYLOAD_BYTES_MAX });
        }
        let result = self.append_frame(parts, payload_bytes + RECORD_FRAME_OVERHEAD_BYTES, segment_tag);
        self.poison_on_error(result)
    }

    fn append_frame(&mut self, parts: &[&[u8]], frame_bytes: usize, segment_tag: u64) -> Result<u64, StoreError> {
        if self.needs_new_segment(frame_bytes) {
            self.flush_buffer()?;
            if self.active.is_some() {
                self.seal_active()?;
            }
            self.create_segment(segment_tag)?;
        }
        if !self.buffer.is_empty() && self.buffer.len() + frame_bytes > self.options.buffer_bytes_max {
            self.flush_buffer()?;
        }
        let position = self.end;
        let buffered_before = self.buffer.len();
        encode_frame(parts, &mut self.buffer);
        assert_eq!(self.buffer.len() - buffered_before, frame_bytes);
        self.end += frame_bytes as u64;
        if self.buffer.len() >= self.options.buffer_bytes_max {
            self.flush_buffer()?;
        }
        Ok(position)
    }

    /// A segment holding records rotates before a frame would take its file past the limit.
    fn needs_new_segment(&self, frame_bytes: usize) -> bool {
        let Some(active) = self.segments.last() else { return true };
        let holds_records = self.end > active.first_position;
        let file_bytes = RECORD_SEGMENT_HEADER_BYTES as u64 + (self.end - active.first_position);
        holds_records && file_bytes + frame_bytes as u64 > self.options.segment_bytes_max
    }

    /// Makes the active segment durable (and its name) before a newer one exists: only the
    /// last segment may ever hold a torn write, and no segment's name may vanish behind a
    /// durable newer one.
    fn seal_active(&mut self) -> Result<(), StoreError> {
        assert!(self.buffer.is_empty());
        if !self.options.sync_on_seal {
            // Durable at the next sync; until then recovery may cut here (see `open_above`).
            let file = self.active.take().expect("an active segment exists");
            if self.unsynced_data {
                let path = self.segments.last().expect("an active segment exists").path.clone();
                self.unsynced_sealed.push((path, file));
                self.unsynced_data = false;
            }
            return Ok(());
        }
        let active = self.active.as_mut().expect("an active segment exists");
        let path = &self.segments.last().expect("an active segment exists").path;
        active.sync_data().map_err(StoreError::io("fsync", path))?;
        self.unsynced_data = false;
        self.sync_dir_if_needed()?;
        self.durable_end = self.end;
        self.active = None;
        Ok(())
    }

    /// Creates the next segment at the current end; its header goes out with its first frames.
    fn create_segment(&mut self, tag: u64) -> Result<(), StoreError> {
        assert!(self.buffer.is_empty());
        let path = self.dir.join(segment_file_name(self.end));
        let file = self.fs.create(&path).map_err(StoreError::io("create", &path))?;
        encode_segment_header(SegmentHeader { first_position: self.end, tag }, &mut self.buffer);
        self.active = Some(file);
        self.unsynced_dir = true;
        if !self.options.sync_on_seal {
            // Segments roll without fsyncing their data, but their names must never vanish:
            // recovery cuts a log at its first bad record, and a missing segment would leave a
            // hole instead. One directory fsync per segment is cheap.
            self.sync_dir_if_needed()?;
        }
        self.segments.push(Arc::new(ReadSegment::new(self.end, tag, path)));
        self.publish_segments();
        Ok(())
    }

    fn publish_segments(&self) {
        let segments: Arc<[Arc<ReadSegment>]> = self.segments.clone().into();
        let mut view = self.shared.lock();
        view.segments = segments;
        view.end = self.published_end;
    }

    /// Writes the buffered records in one `write` (no fsync); readers see them afterwards.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.check_writable()?;
        let result = self.flush_buffer();
        self.poison_on_error(result)
    }

    fn flush_buffer(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let active = self.active.as_mut().expect("buffered bytes belong to the active segment");
        let path = &self.segments.last().expect("an active segment exists").path;
        active.append(&self.buffer).map_err(StoreError::io("write", path))?;
        self.buffer.clear();
        if self.buffer.capacity() > BUFFER_RETAINED_BYTES_MAX {
            self.buffer = Vec::with_capacity(self.options.buffer_bytes_max);
        }
        self.unsynced_data = true;
        self.published_end = self.end;
        self.shared.lock().end = self.end;
        Ok(())
    }

    /// Flushes, fdatasyncs the active segment and, after a segment was created, the directory.
    /// Returns the durable end: every record appended before the call.
    pub fn sync(&mut self) -> Result<u64, StoreError> {
        self.check_writable()?;
        let result = self.sync_inner();
        self.poison_on_error(result)
    }

    fn sync_inner(&mut self) -> Result<u64, StoreError> {
        self.flush_buffer()?;
        for (path, mut file) in std::mem::take(&mut self.unsynced_sealed) {
            file.sync_data().map_err(StoreError::io("fsync", &path))?;
        }
        if self.unsynced_data {
            let active = self.active.as_mut().expect("written bytes belong to the active segment");
            let path = &self.segments.last().expect("an active segment exists").path;
            active.sync_data().map_err(StoreError::io("fsync", path))?;
            self.unsynced_data = false;
        }
        self.sync_dir_if_needed()?;
        self.durable_end = self.end;
        Ok(self.durable_end)
    }

    /// Writes out the buffer and hands over what a sync must fsync, so another thread can make
    /// everything appended so far durable (`RecordSync::run`) while this one keeps appending.
    pub fn sync_handle(&mut self) -> Result<RecordSync, StoreError> {
        self.check_writable()?;
        let result = self.take_sync_handle();
        self.poison_on_error(result)
    }

    fn take_sync_handle(&mut self) -> Result<RecordSync, StoreError> {
        self.flush_buffer()?;
        let mut files = std::mem::take(&mut self.unsynced_sealed);
        if self.unsynced_data {
            let path = self.segments.last().expect("an active segment exists").path.clone();
            let active = self.active.as_ref().expect("written bytes belong to the active segment");
            files.push((path.clone(), active.try_clone().map_err(StoreError::io("duplicate handle", &path))?));
            self.unsynced_data = false;
        }
        let sync_dir = std::mem::take(&mut self.unsynced_dir);
        self.durable_end = self.end;
        Ok(RecordSync { fs: Arc::clone(&self.fs), dir: self.dir.clone(), files, sync_dir, end: self.end })
    }

    fn sync_dir_if_needed(&mut self) -> Result<(), StoreError> {
        if self.unsynced_dir {
            self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;
            self.unsynced_dir = false;
        }
        Ok(())
    }

    /// Drops every record from `position` on (a record boundary between `start()` and `end()`):
    /// later segments are deleted newest first, the holding segment is cut and fsynced. Used
    /// at recovery to roll back to a checkpoint. Readers reading past `position` meanwhile get
    /// errors; afterwards new records reuse the positions.
    pub fn truncate_to(&mut self, position: u64) -> Result<(), StoreError> {
        self.check_writable()?;
        if position > self.end {
            return Err(StoreError::PastEnd { position, end: self.end });
        }
        if position < self.start() {
            return Err(StoreError::BeforeRetention { position, start: self.start() });
        }
        if position == self.end {
            return Ok(());
        }
        let flushed = self.flush_buffer();
        self.poison_on_error(flushed)?;
        // A refused position changes nothing: no poisoning.
        self.check_record_boundary(position)?;
        let result = self.truncate_inner(position);
        self.poison_on_error(result)
    }

    /// Cutting inside a frame would leave a torn frame in a log that then grows past it.
    fn check_record_boundary(&self, position: u64) -> Result<(), StoreError> {
        let i = self.segments.partition_point(|segment| segment.first_position <= position) - 1;
        let segment = &self.segments[i];
        if position == segment.first_position {
            return Ok(());
        }
        let reader = self.reader();
        let mut at = segment.first_position;
        reader.scan_view(&reader.view(), at, 1 << 20, |record, payload| {
            at = record + (payload.len() + RECORD_FRAME_OVERHEAD_BYTES) as u64;
            Ok(if at >= position { Visit::TakeAndStop } else { Visit::Take })
        })?;
        if at != position {
            return Err(StoreError::NotRecordBoundary { position, file: segment.path.clone() });
        }
        Ok(())
    }

    fn truncate_inner(&mut self, position: u64) -> Result<(), StoreError> {
        // Readers first: nothing at or past `position` may be read once it starts to go.
        self.end = position;
        self.published_end = position;
        self.shared.lock().end = position;
        // Newest first, each removal durable before the next: a crash part-way leaves a longer
        // log (truncated again by the next recovery), never a gap.
        while self.segments.len() > 1 && self.segments.last().is_some_and(|s| s.first_position >= position) {
            let segment = self.segments.pop().expect("checked non-empty");
            self.active = None;
            self.publish_segments();
            self.fs.remove_file(&segment.path).map_err(StoreError::io("remove", &segment.path))?;
            self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;
        }
        let holding = Arc::clone(self.segments.last().expect("position is retained"));
        let mut file = match self.active.take() {
            Some(file) => file,
            None => self.fs.open(&holding.path).map_err(StoreError::io("open", &holding.path))?,
        };
        file.set_len(holding.file_offset(position)).map_err(StoreError::io("truncate", &holding.path))?;
        file.sync_data().map_err(StoreError::io("fsync", &holding.path))?;
        self.active = Some(file);
        self.unsynced_data = false;
        self.sync_dir_if_needed()?;
        self.durable_end = position;
        Ok(())
    }

    /// Deletes the whole segments that end at or before `position`, oldest first, never the
    /// active one (retention). Syncs first, so every remaining segment's header and name are
    /// durable before an older one goes. Returns how many segments were deleted.
    pub fn delete_segments_before(&mut self, position: u64) -> Result<usize, StoreError> {
        self.check_writable()?;
        let sealed = self.segments.len().saturating_sub(1);
        let count = (0..sealed).take_while(|&i| self.segments[i + 1].first_position <= position).count();
        if count == 0 {
            return Ok(0);
        }
        let result = self.sync_inner().and_then(|_| self.delete_oldest(count));
        self.poison_on_error(result).map(|()| count)
    }

    fn delete_oldest(&mut self, count: usize) -> Result<(), StoreError> {
        let removed: Vec<Arc<ReadSegment>> = self.segments.drain(..count).collect();
        self.publish_segments();
        // Each removal is made durable before the next, so a crash leaves a contiguous suffix.
        for segment in removed {
            self.fs.remove_file(&segment.path).map_err(StoreError::io("remove", &segment.path))?;
            self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.poisoned {
            Err(StoreError::Poisoned)
        } else {
            Ok(())
        }
    }

    /// A failed mutation leaves memory and disk possibly disagreeing; only reopening (which
    /// recovers from what the disk holds) may continue.
    fn poison_on_error<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }
}

#[cfg(test)]
mod tests;
