use std::path::Path;

use super::*;
use crate::sim_fs::{Fault, SimFileSystem};

const DIR: &str = "/data/wallet";
/// Small segments: a handful of the test records already roll over.
const SMALL_SEGMENT_BYTES: u64 = 200;

fn options(segment_bytes_max: u64) -> RecordLogOptions {
    RecordLogOptions { segment_bytes_max, buffer_bytes_max: 1 << 10, sync_on_seal: true }
}

fn open(fs: &SimFileSystem) -> (RecordLog, RecordReader, OpenReport) {
    RecordLog::open(Arc::new(fs.clone()), DIR, options(SMALL_SEGMENT_BYTES)).expect("log opens")
}

fn payload(i: u64) -> Vec<u8> {
    let len = 1 + (i as usize * 13) % 40;
    (0..len).map(|b| (i as u8).wrapping_mul(29).wrapping_add(b as u8)).collect()
}

/// Appends records `from..to` and returns their positions.
fn append_all(log: &mut RecordLog, from: u64, to: u64) -> Vec<u64> {
    (from..to).map(|i| log.append(&payload(i)).unwrap()).collect()
}

fn frame_bytes(i: u64) -> u64 {
    (payload(i).len() + RECORD_FRAME_OVERHEAD_BYTES) as u64
}

fn expect_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) -> (PathBuf, u64, String) {
    match result {
        Err(StoreError::Corrupt { file, offset, reason, .. }) => (file, offset, reason),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn positions_are_contiguous_frame_offsets_across_segments() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    let positions = append_all(&mut log, 0, 40);
    let mut expected = 0;
    for (i, &position) in positions.iter().enumerate() {
        assert_eq!(position, expected);
        expected += frame_bytes(i as u64);
    }
    assert_eq!(log.end(), expected);
    log.flush().unwrap();
    assert!(log.segments().len() > 3, "small segments roll over");
    for (i, &position) in positions.iter().enumerate() {
        assert_eq!(reader.read_at(position).unwrap(), payload(i as u64));
    }
    let scanned = reader.scan(0, usize::MAX, usize::MAX).unwrap();
    assert_eq!(scanned.len(), 40);
    assert!(scanned.iter().enumerate().all(|(i, (p, bytes))| *p == positions[i] && *bytes == payload(i as u64)));
}

#[test]
fn fixed_size_records_sit_at_sequence_times_frame_size() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    let frame = (16 + RECORD_FRAME_OVERHEAD_BYTES) as u64;
    for sequence in 0..30u64 {
        assert_eq!(log.append(&[sequence as u8; 16]).unwrap(), sequence * frame);
    }
    log.flush().unwrap();
    assert_eq!(reader.read_at(17 * frame).unwrap(), vec![17u8; 16]);
    for segment in log.segments() {
        assert_eq!(segment.first_position % frame, 0, "a frame never straddles segments");
    }
}

#[test]
fn readers_see_records_only_after_flush() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    let position = log.append(b"first").unwrap();
    assert_eq!(reader.published_end(), 0);
    assert!(matches!(reader.read_at(position), Err(StoreError::PastEnd { position: 0, end: 0 })));
    assert!(reader.scan(0, 10, 1000).unwrap().is_empty(), "a scan at the end finds nothing");
    log.flush().unwrap();
    assert_eq!(reader.published_end(), log.end());
    assert_eq!(reader.read_at(position).unwrap(), b"first");
    let clone = reader.clone();
    assert_eq!(std::thread::spawn(move || clone.read_at(0).unwrap()).join().unwrap(), b"first");
}

#[test]
fn full_buffer_is_flushed_by_append() {
    let fs = SimFileSystem::new();
    let options = RecordLogOptions { segment_bytes_max: 1 << 20, buffer_bytes_max: 100, sync_on_seal: true };
    let (mut log, reader, _) = RecordLog::open(Arc::new(fs), DIR, options).unwrap();
    for _ in 0..10 {
        log.append(&[7u8; 30]).unwrap();
        assert!(log.end() - reader.published_end() <= 100, "at most a buffer's worth is unpublished");
    }
    assert!(reader.published_end() > 0);
}

#[test]
fn scan_honours_record_and_byte_limits_and_always_makes_progress() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    let positions = append_all(&mut log, 0, 20);
    log.flush().unwrap();
    assert_eq!(reader.scan(positions[3], 4, usize::MAX).unwrap().len(), 4);
    let limited = reader.scan(positions[3], 100, payload(3).len() + payload(4).len()).unwrap();
    assert_eq!(limited.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![positions[3], positions[4]]);
    assert_eq!(reader.scan(positions[5], 100, 1).unwrap().len(), 1, "one record even past bytes_max");
    assert!(reader.scan(positions[5], 0, 1000).unwrap().is_empty());
}

#[test]
fn reading_before_retention_and_past_the_end_are_distinct_errors() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    let positions = append_all(&mut log, 0, 40);
    log.sync().unwrap();
    let second_segment = log.segments()[1].first_position;
    assert_eq!(log.delete_segments_before(second_segment).unwrap(), 1);
    assert_eq!(reader.start(), second_segment);
    assert!(
        matches!(reader.read_at(0), Err(StoreError::BeforeRetention { position: 0, start }) if start == second_segment)
    );
    assert!(matches!(reader.scan(0, 1, 1), Err(StoreError::BeforeRetention { .. })));
    let end = log.end();
    assert!(matches!(reader.read_at(end), Err(StoreError::PastEnd { .. })));
    assert!(matches!(reader.scan(end + 1, 1, 1), Err(StoreError::PastEnd { .. })));
    assert_eq!(reader.read_at(positions[39]).unwrap(), payload(39));
}

#[test]
fn synced_records_survive_a_crash_and_sync_reports_the_durable_end() {
    for seed in 0..20 {
        let fs = SimFileSystem::new();
        let (mut log, _, _) = open(&fs);
        append_all(&mut log, 0, 25);
        let durable = log.sync().unwrap();
        assert_eq!((durable, log.durable_end()), (log.end(), log.end()));
        append_all(&mut log, 25, 50);
        log.flush().unwrap();
        drop(log);
        fs.crash(seed);
        let (log, reader, report) = open(&fs);
        assert!(report.end >= durable, "seed {seed}: lost synced records");
        assert_eq!(report.end, log.end());
        let scanned = reader.scan(0, usize::MAX, usize::MAX).unwrap();
        assert!(scanned.iter().enumerate().all(|(i, (_, bytes))| *bytes == payload(i as u64)));
        assert_eq!(scanned.last().map(|(p, b)| p + (b.len() + RECORD_FRAME_OVERHEAD_BYTES) as u64), Some(report.end));
    }
}

#[test]
fn torn_tail_is_cut_and_reported() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    append_all(&mut log, 0, 3);
    let end = log.sync().unwrap();
    let path = log.segments().last().unwrap().path.clone();
    drop(log);
    let clean = fs.read(&path).unwrap();
    let mut frame = Vec::new();
    format::encode_frame(&[&payload(3)], &mut frame);
    for torn in [frame[..frame.len() - 1].to_vec(), frame[..3].to_vec(), vec![0u8; 50]] {
        fs.overwrite(&path, &[clean.as_slice(), &torn].concat());
        let (_, reader, report) = open(&fs);
        let tail = report.torn_tail.expect("torn tail reported");
        assert_eq!((tail.file, tail.offset, tail.bytes), (path.clone(), clean.len() as u64, torn.len() as u64));
        assert_eq!(report.end, end);
        assert_eq!(fs.read(&path).unwrap(), clean, "the tail was cut");
        assert_eq!(reader.scan(0, 10, 1000).unwrap().len(), 3);
    }
}

#[test]
fn bad_frame_followed_by_a_valid_one_is_corrupt_not_torn() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    let positions = append_all(&mut log, 0, 3);
    log.sync().unwrap();
    let segment = log.segments().last().unwrap().clone();
    drop(log);
    let mut bytes = fs.read(&segment.path).unwrap();
    let offset = RECORD_SEGMENT_HEADER_BYTES + (positions[1] - segment.first_position) as usize;
    bytes[offset + 9] ^= 0x40;
    fs.overwrite(&segment.path, &bytes);
    let (file, at, reason) = expect_corrupt(RecordLog::open(Arc::new(fs), DIR, options(SMALL_SEGMENT_BYTES)));
    assert_eq!((file, at), (segment.path, offset as u64));
    assert!(reason.contains("valid record follows"), "{reason}");
}

#[test]
fn flipped_byte_in_a_sealed_segment_is_corrupt_with_file_and_offset() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    let positions = append_all(&mut log, 0, 40);
    log.sync().unwrap();
    let sealed = log.segments()[1].clone();
    let victim = positions.iter().position(|&p| p > sealed.first_position).unwrap();
    let offset = RECORD_SEGMENT_HEADER_BYTES as u64 + positions[victim] - sealed.first_position;
    let mut bytes = fs.read(&sealed.path).unwrap();
    bytes[offset as usize + RECORD_FRAME_OVERHEAD_BYTES] ^= 0x01;
    fs.overwrite(&sealed.path, &bytes);
    let (file, at, _) = expect_corrupt(reader.read_at(positions[victim]));
    assert_eq!((file.as_path(), at), (sealed.path.as_path(), offset));
    let (file, at, _) = expect_corrupt(reader.scan(0, usize::MAX, usize::MAX));
    assert_eq!((file, at), (sealed.path.clone(), offset));
    drop(log);
    // A damaged sealed header is found on open.
    bytes[3] ^= 0x01;
    fs.overwrite(&sealed.path, &bytes);
    let (file, at, _) = expect_corrupt(RecordLog::open(Arc::new(fs), DIR, options(SMALL_SEGMENT_BYTES)));
    assert_eq!((file, at), (sealed.path, 0));
}

#[test]
fn shortened_sealed_segment_is_corrupt_on_open() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    append_all(&mut log, 0, 40);
    log.sync().unwrap();
    let sealed = log.segments()[0].path.clone();
    drop(log);
    let bytes = fs.read(&sealed).unwrap();
    fs.overwrite(&sealed, &bytes[..bytes.len() - 1]);
    let (file, _, reason) = expect_corrupt(RecordLog::open(Arc::new(fs), DIR, options(SMALL_SEGMENT_BYTES)));
    assert_eq!(file, sealed);
    assert!(reason.contains("next segment starts"), "{reason}");
}

#[test]
fn torn_header_of_the_last_segment_is_removed() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    append_all(&mut log, 0, 40);
    log.sync().unwrap();
    let last = log.segments().last().unwrap().clone();
    drop(log);
    fs.overwrite(&last.path, &[0u8; 10]);
    let (log, _, report) = open(&fs);
    assert_eq!(report.removed_files, vec![last.path.clone()]);
    assert_eq!(report.end, last.first_position);
    assert!(fs.read(&last.path).is_none());
    assert_eq!(log.end(), last.first_position);
}

#[test]
fn a_bad_header_below_the_durable_floor_is_corrupt_and_the_file_is_kept() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    append_all(&mut log, 0, 40);
    let durable = log.sync().unwrap();
    let last = log.segments().last().unwrap().clone();
    drop(log);
    fs.overwrite(&last.path, &[0u8; 10]);
    let opened = RecordLog::open_above(Arc::new(fs.clone()), DIR, options(SMALL_SEGMENT_BYTES), durable);
    let (file, _, reason) = expect_corrupt(opened);
    assert_eq!(file, last.path);
    assert!(reason.contains("no valid header"), "{reason}");
    assert_eq!(fs.read(&last.path).as_deref(), Some(&[0u8; 10][..]), "the damaged file is kept");
}

#[test]
fn truncate_to_rolls_back_across_segments_and_survives_a_crash() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    let positions = append_all(&mut log, 0, 40);
    log.flush().unwrap();
    let segments_before = log.segments().len();
    log.truncate_to(positions[12]).unwrap();
    assert_eq!((log.end(), log.durable_end(), reader.published_end()), (positions[12], positions[12], positions[12]));
    assert!(log.segments().len() < segments_before);
    assert!(matches!(reader.read_at(positions[12]), Err(StoreError::PastEnd { .. })));
    assert_eq!(log.append(b"replacement").unwrap(), positions[12], "positions are reused");
    drop(log);
    fs.crash(11);
    let (log, reader, report) = open(&fs);
    assert!(report.end == positions[12] || report.end == positions[12] + 8 + 11);
    assert_eq!(reader.read_at(positions[11]).unwrap(), payload(11));
    assert_eq!(log.segments().last().unwrap().end_position, report.end);
}

#[test]
fn truncate_to_the_first_position_keeps_an_empty_first_segment() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    append_all(&mut log, 0, 40);
    log.sync().unwrap();
    let start = log.segments()[2].first_position;
    log.delete_segments_before(start).unwrap();
    log.truncate_to(start).unwrap();
    assert_eq!((log.start(), log.end(), log.segments().len()), (start, start, 1));
    drop(log);
    fs.crash(5);
    let (mut log, _, report) = open(&fs);
    assert_eq!((report.start, report.end), (start, start), "positions do not restart at 0");
    assert_eq!(log.append(b"next").unwrap(), start);
}

#[test]
fn truncate_inside_a_record_is_refused() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    let positions = append_all(&mut log, 0, 10);
    let err = log.truncate_to(positions[4] + 1).unwrap_err();
    assert!(matches!(err, StoreError::NotRecordBoundary { .. }), "{err}");
    let end = log.end();
    assert!(matches!(log.truncate_to(end + 1), Err(StoreError::PastEnd { .. })));
}

#[test]
fn delete_segments_before_never_deletes_the_active_segment() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    append_all(&mut log, 0, 40);
    let segments = log.segments();
    let deleted = log.delete_segments_before(u64::MAX).unwrap();
    assert_eq!(deleted, segments.len() - 1);
    assert_eq!(log.segments(), vec![segments.last().unwrap().clone()]);
    assert_eq!(reader.start(), segments.last().unwrap().first_position);
    for segment in &segments[..segments.len() - 1] {
        assert!(fs.read(&segment.path).is_none());
    }
    assert_eq!(log.delete_segments_before(u64::MAX).unwrap(), 0);
    drop(log);
    fs.crash(1);
    let (_, _, report) = open(&fs);
    assert_eq!(report.start, segments.last().unwrap().first_position);
}

#[test]
fn a_record_larger_than_a_segment_gets_a_segment_of_its_own() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    log.append(b"small").unwrap();
    let big = vec![9u8; 1000];
    let position = log.append(&big).unwrap();
    log.append(b"after").unwrap();
    log.flush().unwrap();
    assert_eq!(reader.read_at(position).unwrap(), big);
    let starts: Vec<u64> = log.segments().iter().map(|s| s.first_position).collect();
    assert!(starts.contains(&position) && starts.contains(&(position + 1008)), "{starts:?}");
}

#[test]
fn segment_tags_are_kept_per_segment() {
    let fs = SimFileSystem::new();
    let (mut log, reader, _) = open(&fs);
    let positions: Vec<u64> = (0..40).map(|i| log.append_tagged(&payload(i), 1000 + i).unwrap()).collect();
    log.sync().unwrap();
    for segment in log.segments() {
        let i = positions.iter().position(|&p| p == segment.first_position).unwrap() as u64;
        assert_eq!(segment.tag, 1000 + i);
    }
    assert_eq!(reader.view().first_tag(), 1000);
    drop(log);
    let (log, _, _) = open(&fs);
    assert_eq!(
        log.segments()[1].tag,
        1000 + positions.iter().position(|&p| p == log.segments()[1].first_position).unwrap() as u64
    );
}

#[test]
fn failed_write_poisons_until_reopen() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    append_all(&mut log, 0, 5);
    let durable = log.sync().unwrap();
    log.append(b"doomed").unwrap();
    fs.set_fault(Fault::WriteTearsThenFails);
    assert!(matches!(log.flush(), Err(StoreError::Io { .. })));
    fs.set_fault(Fault::None);
    assert!(matches!(log.append(b"x"), Err(StoreError::Poisoned)));
    assert!(matches!(log.sync(), Err(StoreError::Poisoned)));
    drop(log);
    let (_, _, report) = open(&fs);
    assert_eq!(report.end, durable);
    assert!(report.torn_tail.is_some());
}

#[test]
fn oversized_payload_is_refused_without_poisoning() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    let huge = vec![0u8; RECORD_PAYLOAD_BYTES_MAX + 1];
    assert!(matches!(log.append(&huge), Err(StoreError::PayloadTooLarge { .. })));
    assert_eq!(log.append(b"fine").unwrap(), 0);
}

#[test]
fn reader_thread_scans_while_the_writer_appends_and_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn FileSystem> = Arc::new(crate::fs::OsFileSystem);
    let options = RecordLogOptions { segment_bytes_max: 4 << 10, buffer_bytes_max: 1 << 10, sync_on_seal: true };
    let (mut log, reader, _) = RecordLog::open(fs, dir.path(), options).unwrap();
    const RECORDS: u64 = 20_000;
    let scanner = std::thread::spawn(move || {
        let (mut next, mut seen) = (0u64, 0u64);
        while seen < RECORDS {
            for (position, bytes) in reader.scan(next, 500, 64 << 10).unwrap() {
                assert_eq!(position, next);
                assert_eq!(bytes, payload(seen), "record {seen}");
                next = position + (bytes.len() + RECORD_FRAME_OVERHEAD_BYTES) as u64;
                seen += 1;
            }
        }
        seen
    });
    for i in 0..RECORDS {
        log.append(&payload(i)).unwrap();
        if i % 97 == 0 {
            log.flush().unwrap();
        }
    }
    log.flush().unwrap();
    assert_eq!(scanner.join().unwrap(), RECORDS);
    assert!(log.segments().len() > 50);
    assert!(Path::new(&log.segments()[0].path).exists());
}
