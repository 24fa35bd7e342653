//! Reading a record log while its writer appends: readers take an immutable snapshot of the
//! segment list and the published end under a brief lock, then read files without any lock.
//! Segment files are opened lazily (history can have thousands of segments) and stay open
//! while any snapshot holds them, so a segment deleted by retention mid-read can still be read
//! through its handle.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::format::{decode_frame, FrameProblem, RECORD_SEGMENT_HEADER_BYTES};
use crate::fs::{FileSystem, StorageFile};
use crate::StoreError;

/// The smallest read a scan issues: one small record (a transfer is 136 bytes framed) in one
/// `pread`.
const READ_CHUNK_BYTES_MIN: usize = 512;
/// The largest read a scan issues (larger single frames are read whole).
const READ_CHUNK_BYTES_MAX: usize = 2 << 20;
/// What `scan` assumes a record takes when sizing its first read from `records_max`.
const SCAN_FRAME_BYTES_GUESS: usize = 160;

#[derive(Debug)]
pub(crate) struct ReadSegment {
    pub(crate) first_position: u64,
    pub(crate) tag: u64,
    pub(crate) path: PathBuf,
    file: OnceLock<Box<dyn StorageFile>>,
}

impl ReadSegment {
    pub(crate) fn new(first_position: u64, tag: u64, path: PathBuf) -> Self {
        ReadSegment { first_position, tag, path, file: OnceLock::new() }
    }

    /// The file offset of `position` (which must be in this segment).
    pub(crate) fn file_offset(&self, position: u64) -> u64 {
        assert!(position >= self.first_position);
        RECORD_SEGMENT_HEADER_BYTES as u64 + (position - self.first_position)
    }
}

/// What readers see: an immutable segment list and the end of the data written to files.
#[derive(Clone, Debug)]
pub(crate) struct View {
    pub(crate) segments: Arc<[Arc<ReadSegment>]>,
    pub(crate) end: u64,
}

impl View {
    pub(crate) fn start(&self) -> u64 {
        self.segments.first().map_or(self.end, |segment| segment.first_position)
    }

    /// The tag of the oldest retained segment (0 when there is none).
    pub(crate) fn first_tag(&self) -> u64 {
        self.segments.first().map_or(0, |segment| segment.tag)
    }

    fn locate(&self, position: u64) -> Option<usize> {
        self.segments.partition_point(|segment| segment.first_position <= position).checked_sub(1)
    }

    /// Where segment `i`'s readable data ends: the next segment's start, or the published end.
    fn segment_end(&self, i: usize) -> u64 {
        self.segments.get(i + 1).map_or(self.end, |next| next.first_position)
    }

    /// `Corrupt` naming the file and byte offset that hold `position`.
    pub(crate) fn corrupt_at(&self, position: u64, reason: impl Into<String>) -> StoreError {
        match self.locate(position) {
            Some(i) => {
                let segment = &self.segments[i];
                StoreError::corrupt(&segment.path, segment.file_offset(position), None, reason)
            }
            None => StoreError::corrupt(Path::new(""), position, None, reason),
        }
    }
}

/// What a scan callback does with the record it was shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Visit {
    /// Consumed; show the next one.
    Take,
    /// Consumed; stop after it.
    TakeAndStop,
    /// Not consumed; stop before it.
    Stop,
}

#[derive(Debug)]
pub(crate) struct Shared {
    fs: Arc<dyn FileSystem>,
    view: Mutex<View>,
}

impl Shared {
    pub(crate) fn new(fs: Arc<dyn FileSystem>, view: View) -> Self {
        Shared { fs, view: Mutex::new(view) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A reader of a [`super::RecordLog`]: cheap to clone, shareable across threads, never blocks
/// the writer beyond a lock held for a few pointer copies. Sees only flushed records.
///
/// Positions passed in must be record boundaries (values returned by `append`, `scan` or
/// `end`); a position inside a record most likely reads as `Corrupt`.
#[derive(Clone, Debug)]
pub struct RecordReader {
    shared: Arc<Shared>,
}

impl RecordReader {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        RecordReader { shared }
    }

    pub(crate) fn view(&self) -> View {
        self.shared.lock().clone()
    }

    /// The end of the flushed records: the position the next flushed record will have.
    pub fn published_end(&self) -> u64 {
        self.shared.lock().end
    }

    /// The first retained position (equal to `published_end` when nothing is retained).
    pub fn start(&self) -> u64 {
        self.shared.lock().start()
    }

    /// The payload of the record at `position`.
    pub fn read_at(&self, position: u64) -> Result<Vec<u8>, StoreError> {
        let mut payload = Vec::new();
        self.read_at_into(position, &mut payload)?;
        Ok(payload)
    }

    /// Reads the record at `position` into `payload` (replacing its contents); returns the
    /// position of the record after it.
    pub fn read_at_into(&self, position: u64, payload: &mut Vec<u8>) -> Result<u64, StoreError> {
        let view = self.view();
        check_in_log(&view, position)?;
        self.scan_view(&view, position, READ_CHUNK_BYTES_MIN, |_, bytes| {
            payload.clear();
            payload.extend_from_slice(bytes);
            Ok(Visit::TakeAndStop)
        })
    }

    /// Up to `records_max` records from `from` on, stopping before the record that would take
    /// the payload total past `bytes_max` (but always returning at least one when one exists).
    /// Empty when `from` is the published end. Follow with `from` = last position + its frame.
    pub fn scan(&self, from: u64, records_max: usize, bytes_max: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut records = Vec::new();
        if records_max == 0 {
            return Ok(records);
        }
        let mut bytes = 0usize;
        let read_ahead = bytes_max.min(records_max.saturating_mul(SCAN_FRAME_BYTES_GUESS));
        self.scan_view(&self.view(), from, read_ahead, |position, payload| {
            if !records.is_empty() && bytes + payload.len() > bytes_max {
                return Ok(Visit::Stop);
            }
            bytes += payload.len();
            records.push((position, payload.to_vec()));
            Ok(if records.len() == records_max { Visit::TakeAndStop } else { Visit::Take })
        })?;
        Ok(records)
    }

    /// Shows `visit` every record from `from` to the view's end, in order, each checked
    /// against its CRC, until it stops; returns the position after the last consumed record.
    /// The first read is about `read_ahead_bytes`; each further read doubles, up to a bound,
    /// so a short request reads little and a long scan soon reads in large chunks.
    pub(crate) fn scan_view(
        &self,
        view: &View,
        from: u64,
        read_ahead_bytes: usize,
        mut visit: impl FnMut(u64, &[u8]) -> Result<Visit, StoreError>,
    ) -> Result<u64, StoreError> {
        check_scan_start(view, from)?;
        let mut chunk_bytes = read_ahead_bytes.clamp(READ_CHUNK_BYTES_MIN, READ_CHUNK_BYTES_MAX);
        let mut chunk = Vec::new();
        let mut position = from;
        let mut frame_bytes_needed = 0;
        while position < view.end {
            let i = view.locate(position).expect("checked against the view's start");
            let segment = &view.segments[i];
            let segment_end = view.segment_end(i);
            let read_bytes = (segment_end - position).min(chunk_bytes.max(frame_bytes_needed) as u64) as usize;
            self.read_exact(view, segment, position, &mut chunk, read_bytes)?;
            match visit_chunk(view, &chunk, position, segment_end, &mut visit)? {
                ChunkOutcome::Stopped(next) => return Ok(next),
                ChunkOutcome::Continue { next, frame_bytes_needed: needed } => {
                    position = next;
                    frame_bytes_needed = needed;
                }
            }
            chunk_bytes = chunk_bytes.saturating_mul(2).min(READ_CHUNK_BYTES_MAX);
        }
        Ok(position)
    }

    fn read_exact(
        &self,
        view: &View,
        segment: &ReadSegment,
        position: u64,
        chunk: &mut Vec<u8>,
        bytes: usize,
    ) -> Result<(), StoreError> {
        let file = self.file(segment, position)?;
        chunk.resize(bytes, 0);
        file.read_exact_at(chunk, segment.file_offset(position)).map_err(|error| {
            if error.kind() == io::ErrorKind::UnexpectedEof {
                view.corrupt_at(position, "segment file is shorter than the records it should hold")
            } else {
                StoreError::io("read", &segment.path)(error)
            }
        })
    }

    /// The segment's read handle, opened on first use. A file that is gone was deleted by
    /// retention or truncation after the caller took its snapshot.
    fn file<'a>(&self, segment: &'a ReadSegment, position: u64) -> Result<&'a dyn StorageFile, StoreError> {
        if let Some(file) = segment.file.get() {
            return Ok(file.as_ref());
        }
        match self.shared.fs.open_read_only(&segment.path) {
            Ok(file) => {
                // Another reader may have won the race; either handle reads the same file.
                let _ = segment.file.set(file);
                Ok(segment.file.get().expect("just set").as_ref())
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let current = self.view();
                check_in_log(&current, position)?;
                Err(StoreError::io("open", &segment.path)(error))
            }
            Err(error) => Err(StoreError::io("open", &segment.path)(error)),
        }
    }
}

enum ChunkOutcome {
    Stopped(u64),
    /// The chunk is used up at `next`; the frame there needs `frame_bytes_needed` bytes (0 when
    /// unknown).
    Continue {
        next: u64,
        frame_bytes_needed: usize,
    },
}

/// Visits the whole frames in `chunk`, which holds the bytes from `position` on.
fn visit_chunk(
    view: &View,
    chunk: &[u8],
    mut position: u64,
    segment_end: u64,
    visit: &mut impl FnMut(u64, &[u8]) -> Result<Visit, StoreError>,
) -> Result<ChunkOutcome, StoreError> {
    let mut at = 0usize;
    while at < chunk.len() {
        let (payload, frame_bytes) = match decode_frame(&chunk[at..]) {
            Ok(frame) => frame,
            Err(FrameProblem::Short { needed, .. }) if position + needed as u64 <= segment_end => {
                return Ok(ChunkOutcome::Continue { next: position, frame_bytes_needed: needed });
            }
            Err(FrameProblem::Short { needed, .. }) => {
                let reason = format!("record frame of {needed} bytes runs past the end of its segment's records");
                return Err(view.corrupt_at(position, reason));
            }
            Err(problem) => return Err(view.corrupt_at(position, problem.describe())),
        };
        match visit(position, payload)? {
            Visit::Stop => return Ok(ChunkOutcome::Stopped(position)),
            Visit::TakeAndStop => return Ok(ChunkOutcome::Stopped(position + frame_bytes as u64)),
            Visit::Take => {}
        }
        position += frame_bytes as u64;
        at += frame_bytes;
    }
    Ok(ChunkOutcome::Continue { next: position, frame_bytes_needed: 0 })
}

/// A record must exist at `position`: retained and before the published end.
fn check_in_log(view: &View, position: u64) -> Result<(), StoreError> {
    if position < view.start() {
        return Err(StoreError::BeforeRetention { position, start: view.start() });
    }
    if position >= view.end {
        return Err(StoreError::PastEnd { position, end: view.end });
    }
    Ok(())
}

/// A scan may also start exactly at the end (and finds nothing).
fn check_scan_start(view: &View, from: u64) -> Result<(), StoreError> {
    if from == view.end {
        return Ok(());
    }
    check_in_log(view, from)
}
