//! Recovery of a record log on open: sealed segments are checked by header and size only (they
//! were fsynced before a newer segment existed; their frames are checked when read), the last
//! segment is scanned frame by frame and a torn tail cut off.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    decode_frame, decode_segment_header, find_valid_frame_after, parse_segment_file_name, SegmentHeader,
    RECORD_SEGMENT_HEADER_BYTES,
};
use super::reader::ReadSegment;
use super::OpenReport;
use crate::fs::{read_all, FileSystem, StorageFile};
use crate::{StoreError, TornTail};

/// The state `RecordLog::open` starts from.
pub(crate) struct Recovered {
    pub(crate) segments: Vec<Arc<ReadSegment>>,
    /// The write handle of the last segment.
    pub(crate) active: Option<Box<dyn StorageFile>>,
    pub(crate) end: u64,
    pub(crate) report: OpenReport,
}

pub(crate) fn recover(fs: &dyn FileSystem, dir: &Path, durable_floor: Option<u64>) -> Result<Recovered, StoreError> {
    fs.create_dir_all(dir).map_err(StoreError::io("create directory", dir))?;
    let names = fs.list_files(dir).map_err(StoreError::io("list", dir))?;
    let mut found: Vec<(u64, PathBuf)> =
        names.iter().filter_map(|name| Some((parse_segment_file_name(name)?, dir.join(name)))).collect();
    found.sort();
    if let Some(floor) = durable_floor {
        return recover_above(fs, dir, &found, floor);
    }

    let mut report = OpenReport::default();
    let mut segments = Vec::with_capacity(found.len());
    for pair in found.windows(2) {
        let ((first_position, path), (next_position, _)) = (&pair[0], &pair[1]);
        segments.push(Arc::new(check_sealed(fs, path, *first_position, *next_position)?));
    }
    let mut active = None;
    let mut end = 0;
    if let Some((first_position, path)) = found.last() {
        match recover_last(fs, path, *first_position, &mut report)? {
            Some((segment, file, segment_end)) => {
                segments.push(Arc::new(segment));
                active = Some(file);
                end = segment_end;
            }
            None => {
                // A torn header: nothing in that file was ever synced (its header goes out
                // with its first records). The log ends where the segment would have begun.
                fs.remove_file(path).map_err(StoreError::io("remove", path))?;
                report.removed_files.push(path.clone());
                if segments.is_empty() && *first_position != 0 {
                    let reason = "the only segment has a torn header but does not start the log";
                    return Err(StoreError::corrupt(path, 0, None, reason));
                }
                end = *first_position;
            }
        }
    }
    if active.is_none() {
        if let Some(last) = segments.last() {
            active = Some(fs.open(&last.path).map_err(StoreError::io("open", &last.path))?);
        }
    }
    make_found_state_durable(fs, dir, active.as_mut(), segments.last().map(|s| s.path.as_path()))?;
    report.start = segments.first().map_or(end, |segment| segment.first_position);
    report.end = end;
    report.segments = segments.len();
    Ok(Recovered { segments, active, end, report })
}

/// A sealed segment must have a valid header matching its name, at least one record, and end
/// exactly where the next one starts (frames never straddle segments).
fn check_sealed(
    fs: &dyn FileSystem,
    path: &Path,
    first_position: u64,
    next_position: u64,
) -> Result<ReadSegment, StoreError> {
    let file = fs.open_read_only(path).map_err(StoreError::io("open", path))?;
    let size = file.size().map_err(StoreError::io("stat", path))?;
    let mut header_bytes = [0u8; RECORD_SEGMENT_HEADER_BYTES];
    if size >= RECORD_SEGMENT_HEADER_BYTES as u64 {
        file.read_exact_at(&mut header_bytes, 0).map_err(StoreError::io("read", path))?;
    }
    let header = decode_segment_header(&header_bytes[..size.min(header_bytes.len() as u64) as usize])
        .map_err(|problem| StoreError::corrupt(path, 0, None, problem.describe()))?;
    check_header_names_file(path, header, first_position)?;
    let records_bytes = size - RECORD_SEGMENT_HEADER_BYTES as u64;
    if records_bytes == 0 || first_position.checked_add(records_bytes) != Some(next_position) {
        let reason = format!(
            "sealed segment holds positions {first_position}..{} but the next segment starts at {next_position}",
            first_position.saturating_add(records_bytes)
        );
        return Err(StoreError::corrupt(path, size, None, reason));
    }
    Ok(ReadSegment::new(first_position, header.tag, path.to_path_buf()))
}

fn check_header_names_file(path: &Path, header: SegmentHeader, first_position: u64) -> Result<(), StoreError> {
    if header.first_position != first_position {
        let reason = format!(
            "segment header says its first position is {}, the file name says {first_position}",
            header.first_position
        );
        return Err(StoreError::corrupt(path, 0, None, reason));
    }
    Ok(())
}

/// The recovered last segment, its write handle and the end of its records.
type LastSegment = (ReadSegment, Box<dyn StorageFile>, u64);

/// Scans the last segment; cuts a torn tail. `None` when even its header is torn.
fn recover_last(
    fs: &dyn FileSystem,
    path: &Path,
    first_position: u64,
    report: &mut OpenReport,
) -> Result<Option<LastSegment>, StoreError> {
    let mut file = fs.open(path).map_err(StoreError::io("open", path))?;
    let bytes = read_all(file.as_ref()).map_err(StoreError::io("read", path))?;
    let header = match decode_segment_header(&bytes) {
        Ok(header) => header,
        Err(problem) if problem.could_be_torn() && find_valid_frame_after(&bytes, 0).is_none() => {
            let bytes_cut = bytes.len() as u64;
            report.torn_tail =
                Some(TornTail { file: path.to_path_buf(), offset: 0, bytes: bytes_cut, reason: problem.describe() });
            return Ok(None);
        }
        Err(problem) => return Err(StoreError::corrupt(path, 0, None, problem.describe())),
    };
    check_header_names_file(path, header, first_position)?;
    let valid_len = scan_frames(path, &bytes, report)?;
    if valid_len < bytes.len() {
        file.set_len(valid_len as u64).map_err(StoreError::io("truncate", path))?;
        file.sync_data().map_err(StoreError::io("fsync", path))?;
    }
    let end = first_position + (valid_len - RECORD_SEGMENT_HEADER_BYTES) as u64;
    Ok(Some((ReadSegment::new(first_position, header.tag, path.to_path_buf()), file, end)))
}

/// The length of the valid prefix of the last segment. A bad frame with nothing valid after it
/// is a torn write (reported); a bad frame followed by a valid one is damage (`Corrupt`).
fn scan_frames(path: &Path, bytes: &[u8], report: &mut OpenReport) -> Result<usize, StoreError> {
    let mut offset = RECORD_SEGMENT_HEADER_BYTES;
    while offset < bytes.len() {
        match decode_frame(&bytes[offset..]) {
            Ok((_, frame_bytes)) => offset += frame_bytes,
            Err(problem) => {
                if let Some(valid_at) = find_valid_frame_after(bytes, offset + 1) {
                    let reason = format!(
                        "{}; a valid record follows at byte {valid_at}, so this is damage inside the log, not a torn write",
                        problem.describe()
                    );
                    return Err(StoreError::corrupt(path, offset as u64, None, reason));
                }
                let torn = TornTail {
                    file: path.to_path_buf(),
                    offset: offset as u64,
                    bytes: (bytes.len() - offset) as u64,
                    reason: problem.describe(),
                };
                report.torn_tail = Some(torn);
                return Ok(offset);
            }
        }
    }
    Ok(offset)
}

/// What a previous process wrote but never fsynced may still be only in the page cache: the
/// caller is about to build on it (checkpoint against it), so it is made durable now.
fn make_found_state_durable(
    fs: &dyn FileSystem,
    dir: &Path,
    active: Option<&mut Box<dyn StorageFile>>,
    active_path: Option<&Path>,
) -> Result<(), StoreError> {
    if let (Some(file), Some(path)) = (active, active_path) {
        file.sync_data().map_err(StoreError::io("fsync", path))?;
    }
    fs.sync_dir(dir).map_err(StoreError::io("fsync directory", dir))
}

/// Recovery of a log whose records past `floor` may be rebuilt: strict below the floor, and
/// from the floor on the log ends at the first thing that is not a whole, valid record.
fn recover_above(
    fs: &dyn FileSystem,
    dir: &Path,
    found: &[(u64, PathBuf)],
    floor: u64,
) -> Result<Recovered, StoreError> {
    let mut report = OpenReport::default();
    let mut segments = Vec::with_capacity(found.len());
    let mut scanned_from = found.len();
    for (at, pair) in found.windows(2).enumerate() {
        let ((first_position, path), (next_position, _)) = (&pair[0], &pair[1]);
        if *next_position > floor {
            scanned_from = at;
            break;
        }
        segments.push(Arc::new(check_sealed(fs, path, *first_position, *next_position)?));
    }
    scanned_from = scanned_from.min(found.len().saturating_sub(1));
    let mut end = segments.last().map_or(found.first().map_or(0, |(first, _)| *first), |_| found[scanned_from].0);
    let mut active: Option<(Box<dyn StorageFile>, PathBuf)> = None;
    for (index, (first_position, path)) in found.iter().enumerate().skip(scanned_from) {
        let next = found.get(index + 1).map(|(next, _)| *next);
        let tolerant = scan_tolerant(fs, path, *first_position, next, &mut report)?;
        match tolerant {
            Some((segment, file, segment_end)) => {
                segments.push(Arc::new(segment));
                active = Some((file, path.clone()));
                end = segment_end;
                if next == Some(segment_end) {
                    continue;
                }
            }
            None if *first_position < floor => {
                // Its records were made durable: keep the file for whoever looks into it.
                let reason = format!("the segment holding durable position {first_position} has no valid header");
                return Err(StoreError::corrupt(path, 0, None, reason));
            }
            None => {
                fs.remove_file(path).map_err(StoreError::io("remove", path))?;
                report.removed_files.push(path.clone());
                end = *first_position;
            }
        }
        remove_after(fs, &found[index + 1..], &mut report)?;
        break;
    }
    if end < floor {
        let at = active.as_ref().map_or_else(|| dir.to_path_buf(), |(_, path)| path.clone());
        let reason = format!("the log ends at position {end}, before {floor}, which was made durable");
        return Err(StoreError::corrupt(&at, end, None, reason));
    }
    let mut active_file = match active {
        Some((file, _)) => Some(file),
        None => match segments.last() {
            Some(last) => Some(fs.open(&last.path).map_err(StoreError::io("open", &last.path))?),
            None => None,
        },
    };
    make_found_state_durable(fs, dir, active_file.as_mut(), segments.last().map(|s| s.path.as_path()))?;
    report.start = segments.first().map_or(end, |segment| segment.first_position);
    report.end = end;
    report.segments = segments.len();
    Ok(Recovered { segments, active: active_file, end, report })
}

/// The valid prefix of one segment, cut (and reported) at the first bad frame. `None` when its
/// header is not whole.
fn scan_tolerant(
    fs: &dyn FileSystem,
    path: &Path,
    first_position: u64,
    next: Option<u64>,
    report: &mut OpenReport,
) -> Result<Option<LastSegment>, StoreError> {
    let mut file = fs.open(path).map_err(StoreError::io("open", path))?;
    let bytes = read_all(file.as_ref()).map_err(StoreError::io("read", path))?;
    let header = match decode_segment_header(&bytes) {
        Ok(header) if header.first_position == first_position => header,
        _ => {
            let reason = "segment header is not whole (written after the last sync)".to_string();
            report.torn_tail =
                Some(TornTail { file: path.to_path_buf(), offset: 0, bytes: bytes.len() as u64, reason });
            return Ok(None);
        }
    };
    let mut offset = RECORD_SEGMENT_HEADER_BYTES;
    while offset < bytes.len() {
        match decode_frame(&bytes[offset..]) {
            Ok((_, frame_bytes)) => offset += frame_bytes,
            Err(problem) => {
                let torn = TornTail {
                    file: path.to_path_buf(),
                    offset: offset as u64,
                    bytes: (bytes.len() - offset) as u64,
                    reason: problem.describe(),
                };
                report.torn_tail = Some(torn);
                break;
            }
        }
    }
    if offset < bytes.len() {
        file.set_len(offset as u64).map_err(StoreError::io("truncate", path))?;
        file.sync_data().map_err(StoreError::io("fsync", path))?;
    }
    let end = first_position + (offset - RECORD_SEGMENT_HEADER_BYTES) as u64;
    if next.is_some_and(|next| next != end) && report.torn_tail.is_none() {
        let reason = format!("segment ends at position {end} but the next one starts at {}", next.unwrap_or(end));
        report.torn_tail = Some(TornTail { file: path.to_path_buf(), offset: offset as u64, bytes: 0, reason });
    }
    Ok(Some((ReadSegment::new(first_position, header.tag, path.to_path_buf()), file, end)))
}

/// Deletes the segments after a cut, newest first (a crash part-way leaves a shorter log).
fn remove_after(fs: &dyn FileSystem, later: &[(u64, PathBuf)], report: &mut OpenReport) -> Result<(), StoreError> {
    for (_, path) in later.iter().rev() {
        fs.remove_file(path).map_err(StoreError::io("remove", path))?;
        report.removed_files.push(path.clone());
    }
    Ok(())
}
