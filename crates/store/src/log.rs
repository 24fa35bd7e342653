//! The log: segment files named by their first index, CRC32C-framed records, a SHA-256 chain
//! through every record, and a purge marker that remembers where compaction cut the log.
//! On-disk format, invariants and recovery rules: docs/storage-format.md.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::atomic_file;
use crate::close_marker::{self, CloseMarker, FoundTail, LogTail};
use crate::frame::{
    decode_frame, encode_frame, encode_segment_header, frame_bytes, parse_segment_file_name, segment_file_name,
    RECORD_PAYLOAD_MAX_BYTES,
};
use crate::fs::{read_all, FileSystem, OsFileSystem, StorageFile};
use crate::scan::{scan_segment, ScannedSegment, SegmentInput, SegmentRole, Slot, TornRegion};
use crate::{compute_chain_hash, AsRecord, ChainHash, LogRecord, StoreError, GENESIS_CHAIN_HASH};

const PURGE_MARKER_FILE: &str = "purged";
const PURGE_MARKER_MAGIC: &[u8; 8] = b"CRPPURG\x01";
const PURGE_MARKER_PAYLOAD_BYTES: usize = 8 + 8 + 32;
/// A write buffer that grew past this (one huge append) is released rather than kept.
const WRITE_BUFFER_RETAINED_MAX_BYTES: usize = 16 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// A segment is sealed and a new one started before a record would take it past this size
    /// (a single record larger than this gets a segment of its own).
    pub segment_size_max_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions { segment_size_max_bytes: 64 << 20 }
    }
}

/// The bytes cut from the end of the last segment on open: a write the crash interrupted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub offset: u64,
    pub bytes: u64,
    pub reason: String,
}

/// What `LogStore::open` found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    pub entries: u64,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub last_purged: Option<u64>,
    /// Set when the last segment ended in a torn write; the file was truncated at `offset`
    /// (in a read-only open: would be).
    pub torn_tail: Option<TornTail>,
    /// Leftovers of interrupted operations that were deleted: temporary files, segments wholly
    /// behind the purge marker, a last segment left without records.
    pub removed_files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PurgeMarker {
    index: u64,
    term: u64,
    hash: ChainHash,
}

#[derive(Debug)]
struct Segment {
    first_index: u64,
    path: PathBuf,
    file: Box<dyn StorageFile>,
    /// Bytes in the file: header plus whole records.
    len: u64,
    /// Slot `i` holds entry `first_index + i`.
    slots: Vec<Slot>,
    /// The previous-entry hash carried by the first record.
    first_prev: ChainHash,
}

impl Segment {
    fn last_index(&self) -> Option<u64> {
        (!self.slots.is_empty()).then(|| self.first_index + self.slots.len() as u64 - 1)
    }

    fn slot(&self, index: u64) -> Option<&Slot> {
        let position = usize::try_from(index.checked_sub(self.first_index)?).ok()?;
        self.slots.get(position)
    }

    /// The byte just after record `index` (which must be in this segment).
    fn end_of(&self, index: u64) -> u64 {
        let position = (index - self.first_index) as usize;
        self.slots.get(position + 1).map_or(self.len, |next| next.offset)
    }
}

/// The append-only log of one node. Owned by one thread (the cluster's log writer); `Send`.
///
/// Durability: `append` only writes (no fsync); a record is durable once `sync` returns.
/// `truncate_from`, `purge_through` and `purge_through_snapshot` are durable when they return.
/// After any write or sync error the store is poisoned: every later write returns
/// `StoreError::Poisoned` until the log is opened again, which recovers from what the disk holds.
#[derive(Debug)]
pub struct LogStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    options: LogOptions,
    segments: Vec<Segment>,
    purged: Option<PurgeMarker>,
    write_buf: Vec<u8>,
    unsynced_data: bool,
    unsynced_dir: bool,
    poisoned: bool,
    read_only: bool,
}

impl LogStore {
    /// Opens (creating if missing) the log in `dir`, verifying every record: sealed segments
    /// must be wholly valid; at the end of the last segment, bytes that an interrupted write
    /// explains are cut off (fsynced) and reported, unless the log was `close`d cleanly. Anything
    /// else wrong is `StoreError::Corrupt` naming file and offset (docs/storage-format.md).
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<(LogStore, RecoveryReport), StoreError> {
        Self::open_with(Arc::new(OsFileSystem), dir, options)
    }

    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
        options: LogOptions,
    ) -> Result<(LogStore, RecoveryReport), StoreError> {
        Self::open_inner(fs, dir.as_ref(), options, false)
    }

    /// Verifies like `open` but changes nothing on disk (for the audit of a stopped node): a
    /// torn tail is reported and left alone, and every write is refused.
    pub fn open_read_only(
        fs: Arc<dyn FileSystem>,
        dir: impl AsRef<Path>,
    ) -> Result<(LogStore, RecoveryReport), StoreError> {
        Self::open_inner(fs, dir.as_ref(), LogOptions::default(), true)
    }

    fn open_inner(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        options: LogOptions,
        read_only: bool,
    ) -> Result<(LogStore, RecoveryReport), StoreError> {
        assert!(options.segment_size_max_bytes > 0, "segment_size_max_bytes must be positive");
        let mut store = LogStore {
            fs,
            dir: dir.to_path_buf(),
            options,
            segments: Vec::new(),
            purged: None,
            write_buf: Vec::new(),
            unsynced_data: false,
            unsynced_dir: false,
            poisoned: false,
            read_only,
        };
        let mut report = RecoveryReport::default();
        if read_only {
            if !store.fs.dir_exists(dir).map_err(StoreError::io("stat", dir))? {
                return Ok((store, report));
            }
        } else {
            store.fs.create_dir_all(dir).map_err(StoreError::io("create directory", dir))?;
        }
        store.recover(&mut report)?;

        report.segments = store.segments.len();
        report.first_index = store.first_index();
        report.last_index = store.last_index();
        report.last_purged = store.purged.map(|marker| marker.index);
        report.entries = match (report.first_index, report.last_index) {
            (Some(first), Some(last)) => last - first + 1,
            _ => 0,
        };
        Ok((store, report))
    }

    /// Loads and verifies what is on disk, repairing (unless read-only) what a crash left.
    fn recover(&mut self, report: &mut RecoveryReport) -> Result<(), StoreError> {
        let names = self.fs.list_files(&self.dir).map_err(StoreError::io("list", &self.dir))?;
        for name in names.iter().filter(|name| name.ends_with(".tmp")) {
            self.remove_leftover(&self.dir.join(name), report)?;
        }
        self.purged = self.load_purge_marker()?;
        let closed = close_marker::load(self.fs.as_ref(), &self.dir)?;
        let segment_names = self.segments_to_scan(&names, report)?;
        let last_role = if closed.is_some() { SegmentRole::LastClosedCleanly } else { SegmentRole::LastAfterCrash };
        self.load_segments(&segment_names, last_role, report)?;
        self.check_log_start()?;
        if let Some(marker) = closed {
            // Before any segment goes: `close` recorded the segments as they were.
            close_marker::check(&self.dir, marker, self.found_tail())?;
            if !self.read_only {
                // The log may change from here on; the directory fsync below makes this durable.
                close_marker::remove(self.fs.as_ref(), &self.dir)?;
            }
        }
        self.drop_segments_behind_marker(report)?;
        if !self.read_only {
            self.make_found_state_durable()?;
        }
        Ok(())
    }

    /// The segment files in index order, minus (deleted) leftovers of an interrupted purge.
    fn segments_to_scan(
        &self,
        names: &[String],
        report: &mut RecoveryReport,
    ) -> Result<Vec<(u64, PathBuf)>, StoreError> {
        let mut segment_names: Vec<(u64, PathBuf)> =
            names.iter().filter_map(|name| Some((parse_segment_file_name(name)?, self.dir.join(name)))).collect();
        segment_names.sort();
        if let Some(marker) = self.purged {
            // Whole segments behind the marker are leftovers of an interrupted purge: the
            // next segment starting at or before marker + 1 proves this one holds only purged
            // entries. They are deleted without being read.
            while segment_names.len() >= 2 && segment_names[1].0 <= marker.index + 1 {
                let (_, path) = segment_names.remove(0);
                self.remove_leftover(&path, report)?;
            }
        }
        Ok(segment_names)
    }

    /// The last segment and its last record, as `close` records them.
    fn found_tail(&self) -> Option<FoundTail<'_>> {
        let segment = self.segments.last()?;
        let slot = segment.slots.last()?;
        let tail = LogTail {
            segment_first_index: segment.first_index,
            segment_len: segment.len,
            last_index: segment.last_index()?,
            last_hash: slot.hash,
        };
        Some(FoundTail { tail, path: &segment.path, last_offset: slot.offset })
    }

    /// What a previous process wrote but never fsynced is still only in the page cache: a
    /// power loss now could take entries this process is about to build on (vote on, apply).
    fn make_found_state_durable(&mut self) -> Result<(), StoreError> {
        if let Some(last) = self.segments.last_mut() {
            last.file.sync_data().map_err(StoreError::io("fsync", &last.path))?;
        }
        self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))
    }

    fn remove_leftover(&self, path: &Path, report: &mut RecoveryReport) -> Result<(), StoreError> {
        if !self.read_only {
            self.fs.remove_file(path).map_err(StoreError::io("remove", path))?;
        }
        report.removed_files.push(path.to_path_buf());
        Ok(())
    }

    fn purge_marker_path(&self) -> PathBuf {
        self.dir.join(PURGE_MARKER_FILE)
    }

    fn load_purge_marker(&self) -> Result<Option<PurgeMarker>, StoreError> {
        let path = self.purge_marker_path();
        let Some(payload) = atomic_file::load(self.fs.as_ref(), &path, PURGE_MARKER_MAGIC)? else {
            return Ok(None);
        };
        if payload.len() != PURGE_MARKER_PAYLOAD_BYTES {
            return Err(StoreError::corrupt(&path, 16, None, "purge marker has the wrong size"));
        }
        Ok(Some(PurgeMarker {
            index: u64::from_le_bytes(payload[..8].try_into().expect("8 bytes")),
            term: u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes")),
            hash: payload[16..48].try_into().expect("32 bytes"),
        }))
    }

    fn save_purge_marker(&self, marker: PurgeMarker) -> Result<(), StoreError> {
        let mut payload = Vec::with_capacity(PURGE_MARKER_PAYLOAD_BYTES);
        payload.extend_from_slice(&marker.index.to_le_bytes());
        payload.extend_from_slice(&marker.term.to_le_bytes());
        payload.extend_from_slice(&marker.hash);
        atomic_file::save(self.fs.as_ref(), &self.purge_marker_path(), PURGE_MARKER_MAGIC, &payload)
    }

    /// Scans every segment in order, checking that indexes and the chain run on across files.
    fn load_segments(
        &mut self,
        names: &[(u64, PathBuf)],
        last_role: SegmentRole,
        report: &mut RecoveryReport,
    ) -> Result<(), StoreError> {
        let mut prev_hash: Option<ChainHash> = None;
        let mut prev_last: Option<u64> = None;
        for (position, (name_index, path)) in names.iter().enumerate() {
            let role = if position + 1 == names.len() { last_role } else { SegmentRole::Sealed };
            if let Some(last) = prev_last {
                if *name_index != last + 1 {
                    let reason = format!("segment starts at entry {name_index} but the one before ends at {last}");
                    return Err(StoreError::corrupt(path, 0, Some(last + 1), reason));
                }
            }
            let file = if self.read_only { self.fs.open_read_only(path) } else { self.fs.open(path) }
                .map_err(StoreError::io("open", path))?;
            let bytes = read_all(file.as_ref()).map_err(StoreError::io("read", path))?;
            let input = SegmentInput { path, bytes: &bytes, name_index: *name_index, expected_prev: prev_hash, role };
            let (scanned, torn) = scan_segment(input)?;
            let segment = self.keep_scanned(scanned, file, bytes.len() as u64, torn, report)?;
            prev_last = segment.last_index();
            prev_hash = segment.slots.last().map(|slot| slot.hash);
            if segment.slots.is_empty() {
                // Only the last segment after a crash can be empty (a torn first write); it goes.
                self.remove_leftover(&segment.path, report)?;
            } else {
                self.segments.push(segment);
            }
        }
        Ok(())
    }

    fn keep_scanned(
        &self,
        scanned: ScannedSegment,
        mut file: Box<dyn StorageFile>,
        file_len: u64,
        torn: Option<TornRegion>,
        report: &mut RecoveryReport,
    ) -> Result<Segment, StoreError> {
        let path = scanned.path;
        if let Some(torn) = torn {
            if !self.read_only && !scanned.slots.is_empty() {
                file.set_len(torn.offset).map_err(StoreError::io("truncate", &path))?;
                file.sync_data().map_err(StoreError::io("fsync", &path))?;
            }
            report.torn_tail =
                Some(TornTail { file: path.clone(), offset: torn.offset, bytes: torn.bytes, reason: torn.reason });
        }
        let len = if self.read_only { scanned.valid_len.min(file_len) } else { scanned.valid_len };
        let first_prev = scanned.first_prev.unwrap_or(GENESIS_CHAIN_HASH);
        Ok(Segment { first_index: scanned.first_index, path, file, len, slots: scanned.slots, first_prev })
    }

    /// The first record on disk must continue the chain from the purge marker, or start it.
    fn check_log_start(&self) -> Result<(), StoreError> {
        let Some(first_segment) = self.segments.first() else { return Ok(()) };
        let first = first_segment.first_index;
        let first_prev = first_segment.first_prev;
        let first_offset = first_segment.slots.first().map_or(0, |slot| slot.offset);
        match self.purged {
            None => {
                if first_prev != GENESIS_CHAIN_HASH {
                    let reason = "the first entry does not start the chain and no purge marker explains the missing entries before it";
                    return Err(StoreError::corrupt(&first_segment.path, first_offset, Some(first), reason));
                }
            }
            Some(marker) => {
                if first > marker.index + 1 {
                    let reason = format!(
                        "entries {}..{first} are missing: the log was purged only through {}",
                        marker.index + 1,
                        marker.index
                    );
                    return Err(StoreError::corrupt(&first_segment.path, first_offset, Some(marker.index + 1), reason));
                }
                if first == marker.index + 1 && first_prev != marker.hash {
                    let reason = "the first entry after the purge point does not chain to the purged entry's hash";
                    return Err(StoreError::corrupt(&first_segment.path, first_offset, Some(first), reason));
                }
                if let Some((segment, slot)) = self.locate(marker.index) {
                    if slot.hash != marker.hash {
                        let reason = "the entry at the purge point does not hash to the purge marker's hash";
                        return Err(StoreError::corrupt(&segment.path, slot.offset, Some(marker.index), reason));
                    }
                }
            }
        }
        Ok(())
    }

    /// The first entry on disk (possibly behind the purge point) and the previous-entry hash it
    /// carries: the genesis hash when the log still starts at its very first entry.
    pub(crate) fn physical_start(&self) -> Option<(u64, ChainHash)> {
        self.segments.first().map(|s| (s.first_index, s.first_prev))
    }

    fn drop_segments_behind_marker(&mut self, report: &mut RecoveryReport) -> Result<(), StoreError> {
        let Some(marker) = self.purged else { return Ok(()) };
        while self.segments.first().is_some_and(|s| s.last_index().is_none_or(|last| last <= marker.index)) {
            let segment = self.segments.remove(0);
            self.remove_leftover(&segment.path, report)?;
        }
        Ok(())
    }

    fn locate(&self, index: u64) -> Option<(&Segment, &Slot)> {
        let position = self.segments.partition_point(|s| s.first_index <= index).checked_sub(1)?;
        let segment = &self.segments[position];
        segment.slot(index).map(|slot| (segment, slot))
    }

    fn physical_last(&self) -> Option<(u64, ChainHash)> {
        self.segments.iter().rev().find_map(|s| Some((s.last_index()?, s.slots.last()?.hash)))
    }

    /// The first entry still in the log (after the purge point).
    pub fn first_index(&self) -> Option<u64> {
        let physical_first = self.segments.iter().find(|s| !s.slots.is_empty())?.first_index;
        let first = match self.purged {
            Some(marker) => physical_first.max(marker.index + 1),
            None => physical_first,
        };
        (Some(first) <= self.last_index()).then_some(first)
    }

    pub fn last_index(&self) -> Option<u64> {
        let (last, _) = self.physical_last()?;
        match self.purged {
            Some(marker) if last <= marker.index => None,
            _ => Some(last),
        }
    }

    /// The last purged entry: (index, term, chain hash).
    pub fn last_purged(&self) -> Option<(u64, u64, ChainHash)> {
        self.purged.map(|marker| (marker.index, marker.term, marker.hash))
    }

    /// The chain hash of entry `index`: any entry still on disk, or the last purged one.
    pub fn chain_hash(&self, index: u64) -> Result<ChainHash, StoreError> {
        if let Some(marker) = self.purged.filter(|marker| marker.index == index) {
            return Ok(marker.hash);
        }
        self.locate(index).map(|(_, slot)| slot.hash).ok_or_else(|| self.out_of_range(index, index + 1))
    }

    /// The hash the next appended entry will carry as its previous hash.
    pub fn last_chain_hash(&self) -> ChainHash {
        match (self.physical_last(), self.purged) {
            (Some((last, _)), Some(marker)) if last <= marker.index => marker.hash,
            (Some((_, hash)), _) => hash,
            (None, Some(marker)) => marker.hash,
            (None, None) => GENESIS_CHAIN_HASH,
        }
    }

    /// The index the next append must start at; `None` when the log has never held an entry
    /// (then the first append chooses it).
    pub fn next_index(&self) -> Option<u64> {
        match (self.last_index(), self.purged) {
            (Some(last), _) => Some(last + 1),
            (None, Some(marker)) => Some(marker.index + 1),
            (None, None) => None,
        }
    }

    /// The segment files in index order (for diagnostics and tests).
    pub fn segment_files(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Where entry `index` sits on disk: file and byte offset of its frame.
    pub fn location(&self, index: u64) -> Option<(PathBuf, u64)> {
        self.locate(index).map(|(segment, slot)| (segment.path.clone(), slot.offset))
    }

    fn out_of_range(&self, from: u64, to_exclusive: u64) -> StoreError {
        StoreError::OutOfRange { from, to_exclusive, first: self.first_index(), last: self.last_index() }
    }

    fn check_writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            Err(StoreError::ReadOnly)
        } else if self.poisoned {
            Err(StoreError::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Poisons the store when a mutation failed part-way: memory and disk may now disagree.
    fn poison_on_error<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Appends records whose indexes continue the log (panics otherwise: that is a caller
    /// bug). One buffered write per call (two when a segment fills up); nothing is fsynced.
    pub fn append<R: AsRecord>(&mut self, records: &[R]) -> Result<(), StoreError> {
        self.check_writable()?;
        let mut expected = self.next_index();
        for record in records {
            let record = record.as_record();
            if let Some(expected) = expected {
                assert_eq!(record.index, expected, "appended entries must continue the log");
            }
            expected = Some(record.index + 1);
            if record.payload.len() > RECORD_PAYLOAD_MAX_BYTES {
                let max = RECORD_PAYLOAD_MAX_BYTES;
                return Err(StoreError::RecordTooLarge { index: record.index, bytes: record.payload.len(), max });
            }
        }
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.write_buf);
        buf.clear();
        let result = self.write_records(records, &mut buf);
        if buf.capacity() <= WRITE_BUFFER_RETAINED_MAX_BYTES {
            self.write_buf = buf;
        }
        self.poison_on_error(result)
    }

    fn write_records<R: AsRecord>(&mut self, records: &[R], buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let mut prev = self.last_chain_hash();
        let mut pending: Vec<Slot> = Vec::new();
        if self.segments.is_empty() {
            self.create_segment(records[0].as_record().index, prev, buf)?;
        }
        for record in records {
            let record = record.as_record();
            let active = self.segments.last().expect("an active segment exists");
            let size_after = active.len + buf.len() as u64 + frame_bytes(record.payload.len()) as u64;
            let holds_records = !active.slots.is_empty() || !pending.is_empty();
            if size_after > self.options.segment_size_max_bytes && holds_records {
                self.flush(buf, &mut pending)?;
                self.seal_active()?;
                self.create_segment(record.index, prev, buf)?;
            }
            let active = self.segments.last().expect("an active segment exists");
            let offset = active.len + buf.len() as u64;
            encode_frame(record, &prev, buf);
            let hash = compute_chain_hash(&prev, record);
            pending.push(Slot { offset, hash });
            prev = hash;
        }
        self.flush(buf, &mut pending)
    }

    /// Writes the buffer to the active segment in one call and records the new slots.
    fn flush(&mut self, buf: &mut Vec<u8>, pending: &mut Vec<Slot>) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        let active = self.segments.last_mut().expect("an active segment exists");
        active.file.append(buf).map_err(StoreError::io("write", &active.path))?;
        active.len += buf.len() as u64;
        active.slots.append(pending);
        buf.clear();
        self.unsynced_data = true;
        Ok(())
    }

    /// Makes the active segment durable before a newer one exists: only the last segment may
    /// ever hold a torn write.
    fn seal_active(&mut self) -> Result<(), StoreError> {
        let active = self.segments.last_mut().expect("an active segment exists");
        active.file.sync_data().map_err(StoreError::io("fsync", &active.path))?;
        self.unsynced_data = false;
        self.sync_dir_if_needed()
    }

    fn create_segment(&mut self, first_index: u64, first_prev: ChainHash, buf: &mut Vec<u8>) -> Result<(), StoreError> {
        let path = self.dir.join(segment_file_name(first_index));
        let file = self.fs.create(&path).map_err(StoreError::io("create", &path))?;
        encode_segment_header(first_index, buf);
        self.segments.push(Segment { first_index, path, file, len: 0, slots: Vec::new(), first_prev });
        self.unsynced_dir = true;
        Ok(())
    }

    fn sync_dir_if_needed(&mut self) -> Result<(), StoreError> {
        if self.unsynced_dir {
            self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;
            self.unsynced_dir = false;
        }
        Ok(())
    }

    /// fdatasync of the active segment (and of the directory after a segment was created):
    /// every record appended before this call is durable when it returns `Ok`.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.check_writable()?;
        let result = self.sync_inner();
        self.poison_on_error(result)
    }

    fn sync_inner(&mut self) -> Result<(), StoreError> {
        if self.unsynced_data {
            if let Some(active) = self.segments.last_mut() {
                active.file.sync_data().map_err(StoreError::io("fsync", &active.path))?;
            }
            self.unsynced_data = false;
        }
        self.sync_dir_if_needed()
    }

    /// Orderly shutdown: syncs, then records durably where the log ends (`log/closed`: last
    /// segment, its length, last entry and its hash). The next open then holds the end of the
    /// log to the standard of a sealed segment: a missing, cut or damaged final record is
    /// `Corrupt`, never cut off as a torn write. Dropping the store without `close` is a crash
    /// as far as the next open is concerned (safe, under the torn-write rule). A read-only
    /// store writes nothing.
    pub fn close(mut self) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        self.sync()?;
        let marker = CloseMarker { tail: self.found_tail().map(|found| found.tail) };
        close_marker::save(self.fs.as_ref(), &self.dir, marker)
    }

    /// Reads entries `from..to_exclusive` from disk, checking each frame's checksums again.
    pub fn read_range(&self, from: u64, to_exclusive: u64) -> Result<Vec<LogRecord>, StoreError> {
        if from == to_exclusive {
            return Ok(Vec::new());
        }
        let in_log = match (self.first_index(), self.last_index()) {
            (Some(first), Some(last)) => first <= from && from < to_exclusive && to_exclusive - 1 <= last,
            _ => false,
        };
        if !in_log {
            return Err(self.out_of_range(from, to_exclusive));
        }
        self.read_physical(from, to_exclusive)
    }

    /// Like `read_range` but also serves entries behind the purge point that are still on disk
    /// (the first segment may keep some): the audit replays from genesis when it can.
    pub(crate) fn read_physical(&self, from: u64, to_exclusive: u64) -> Result<Vec<LogRecord>, StoreError> {
        let mut records = Vec::with_capacity((to_exclusive - from).min(1024) as usize);
        let mut index = from;
        while index < to_exclusive {
            let (segment, _) = self.locate(index).ok_or_else(|| self.out_of_range(from, to_exclusive))?;
            let upto = (to_exclusive - 1).min(segment.last_index().expect("located segment has records"));
            for (record, _) in self.read_span(segment, index, upto)? {
                records.push(record);
            }
            index = upto + 1;
        }
        Ok(records)
    }

    /// Entries `from..=upto` of one segment with the previous-hash each carries.
    fn read_span(&self, segment: &Segment, from: u64, upto: u64) -> Result<Vec<(LogRecord, ChainHash)>, StoreError> {
        let start = segment.slot(from).expect("caller checked the range").offset;
        let end = segment.end_of(upto);
        let mut bytes = vec![0u8; (end - start) as usize];
        segment.file.read_exact_at(&mut bytes, start).map_err(StoreError::io("read", &segment.path))?;
        let mut records = Vec::with_capacity((upto - from + 1) as usize);
        let mut position = 0usize;
        for index in from..=upto {
            let at = start + position as u64;
            let frame = decode_frame(&bytes[position..]).map_err(|problem| {
                StoreError::corrupt(&segment.path, at, Some(index), format!("on read: {}", problem.describe()))
            })?;
            let kind = frame.kind().filter(|_| frame.index == index).ok_or_else(|| {
                StoreError::corrupt(
                    &segment.path,
                    at,
                    Some(index),
                    "on read: record does not match the index built on open",
                )
            })?;
            records.push((LogRecord { index, term: frame.term, kind, payload: frame.payload.to_vec() }, frame.prev));
            position += frame.total_bytes;
        }
        Ok(records)
    }

    /// Drops entries `index..` (Raft conflict resolution). Durable when it returns.
    pub fn truncate_from(&mut self, index: u64) -> Result<(), StoreError> {
        self.check_writable()?;
        let Some((last, _)) = self.physical_last() else { return Ok(()) };
        if index > last {
            return Ok(());
        }
        if let Some(marker) = self.purged.filter(|marker| index <= marker.index) {
            return Err(StoreError::TruncatePurged { index, purged: marker.index });
        }
        let result = self.truncate_inner(index);
        self.poison_on_error(result)
    }

    fn truncate_inner(&mut self, index: u64) -> Result<(), StoreError> {
        // Newest files first, so a crash part-way leaves a shorter log, never a gap.
        while self.segments.last().is_some_and(|segment| segment.first_index >= index) {
            let segment = self.segments.pop().expect("checked non-empty");
            drop(segment.file);
            self.fs.remove_file(&segment.path).map_err(StoreError::io("remove", &segment.path))?;
            self.unsynced_dir = true;
        }
        if let Some(segment) = self.segments.last_mut() {
            if segment.last_index().is_some_and(|last| last >= index) {
                let keep = (index - segment.first_index) as usize;
                let offset = segment.slots[keep].offset;
                segment.file.set_len(offset).map_err(StoreError::io("truncate", &segment.path))?;
                segment.file.sync_data().map_err(StoreError::io("fsync", &segment.path))?;
                segment.len = offset;
                segment.slots.truncate(keep);
            }
        }
        // What remains is either the segment just fsynced or sealed ones (fsynced when sealed).
        self.unsynced_data = false;
        self.sync_dir_if_needed()
    }

    /// Compaction: drops entries `..=index`, which must be in the log (see
    /// `purge_through_snapshot` for a purge point beyond it). The purge point (index, term,
    /// hash) is saved durably first; whole segments behind it are then deleted; the segment
    /// holding the purge point stays until all its entries are purged. Durable when it returns.
    pub fn purge_through(&mut self, index: u64) -> Result<(), StoreError> {
        self.check_writable()?;
        if self.purged.is_some_and(|marker| index <= marker.index) {
            return Ok(());
        }
        let last = self.last_index();
        if last.is_none_or(|last| index > last) {
            return Err(StoreError::PurgeBeyondLog { index, last });
        }
        let Some((segment, slot)) = self.locate(index) else {
            return Ok(()); // before the first entry this log ever held: nothing to drop
        };
        let hash = slot.hash;
        let term = self.read_span(segment, index, index)?[0].0.term;
        let result = self.move_purge_point(PurgeMarker { index, term, hash });
        self.poison_on_error(result)
    }

    /// Moves the purge point to a snapshot's last entry, wherever the log ends: when the
    /// snapshot (installed from the leader) covers entries this log never had, every entry is
    /// dropped and the next append must be `index + 1`, chaining to `chain_head`. When the log
    /// holds `index`, its hash must equal `chain_head` (else `SnapshotConflict`: truncate the
    /// conflicting suffix first). Durable when it returns.
    pub fn purge_through_snapshot(&mut self, index: u64, term: u64, chain_head: ChainHash) -> Result<(), StoreError> {
        self.check_writable()?;
        if self.purged.is_some_and(|marker| index <= marker.index) {
            return Ok(());
        }
        if self.physical_last().is_some_and(|(last, _)| index <= last) {
            if let Some((_, slot)) = self.locate(index) {
                if slot.hash != chain_head {
                    return Err(StoreError::SnapshotConflict {
                        index,
                        snapshot: hex::encode(chain_head),
                        log: hex::encode(slot.hash),
                    });
                }
            }
            return self.purge_through(index);
        }
        let result = self.move_purge_point(PurgeMarker { index, term, hash: chain_head });
        self.poison_on_error(result)
    }

    fn move_purge_point(&mut self, marker: PurgeMarker) -> Result<(), StoreError> {
        // Marker first: a crash before the deletions leaves whole-purged segments that the
        // next open recognises and deletes.
        self.save_purge_marker(marker)?;
        self.purged = Some(marker);
        while self.segments.first().is_some_and(|s| s.last_index().is_none_or(|last| last <= marker.index)) {
            let segment = self.segments.remove(0);
            drop(segment.file);
            self.fs.remove_file(&segment.path).map_err(StoreError::io("remove", &segment.path))?;
            self.unsynced_dir = true;
        }
        if self.segments.is_empty() {
            self.unsynced_data = false;
        }
        self.sync_dir_if_needed()
    }
}
