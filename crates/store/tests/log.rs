//! The log on real files (byte flips) and on the simulated file system (what a crash leaves):
//! torn tails cut, damage that no torn write explains refused with file and offset, the
//! clean-close marker, truncation and compaction across reopen, and the chain across segments.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use croupier_store::sim_fs::{Fault, SimFileSystem};
use croupier_store::{
    compute_chain_hash, AsRecord, ChainHash, LogOptions, LogRecord, LogStore, RecordKind, StoreError,
    GENESIS_CHAIN_HASH,
};

/// Small segments so a few records already span several files.
const SMALL_SEGMENT_BYTES: u64 = 400;

fn record(index: u64, term: u64) -> LogRecord {
    let len = 20 + (index as usize * 7) % 60;
    let payload = (0..len).map(|i| (index as u8).wrapping_mul(31).wrapping_add(i as u8)).collect();
    let kind = if index % 5 < 1 { RecordKind::Membership } else { RecordKind::Normal };
    LogRecord { index, term, kind, payload }
}

fn records(from: u64, to_inclusive: u64, term: u64) -> Vec<LogRecord> {
    (from..=to_inclusive).map(|index| record(index, term)).collect()
}

fn open(dir: &Path, segment_size_max_bytes: u64) -> (LogStore, croupier_store::RecoveryReport) {
    LogStore::open(dir, LogOptions { segment_size_max_bytes }).expect("log opens")
}

fn written(dir: &Path, from: u64, to_inclusive: u64) -> LogStore {
    let (mut log, _) = open(dir, SMALL_SEGMENT_BYTES);
    log.append(&records(from, to_inclusive, 1)).unwrap();
    log.sync().unwrap();
    log
}

fn chain_of(records: &[LogRecord], start: ChainHash) -> Vec<ChainHash> {
    let mut prev = start;
    records
        .iter()
        .map(|r| {
            prev = compute_chain_hash(&prev, r.as_record());
            prev
        })
        .collect()
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn expect_corrupt(
    result: Result<(LogStore, croupier_store::RecoveryReport), StoreError>,
) -> (std::path::PathBuf, u64, Option<u64>) {
    match result {
        Err(StoreError::Corrupt { file, offset, index, .. }) => (file, offset, index),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, the log opened"),
    }
}

#[test]
fn records_read_back_from_disk_after_reopen_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    drop(written(dir.path(), 1, 40));
    let (log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert!(report.segments > 3, "small segments roll: {report:?}");
    assert_eq!((report.first_index, report.last_index, report.entries), (Some(1), Some(40), 40));
    assert_eq!(report.torn_tail, None);
    assert_eq!(log.read_range(1, 41).unwrap(), records(1, 40, 1));
    assert_eq!(log.read_range(17, 23).unwrap(), records(17, 22, 1));
    let chain = chain_of(&records(1, 40, 1), GENESIS_CHAIN_HASH);
    assert_eq!(log.last_chain_hash(), chain[39]);
    assert_eq!(log.chain_hash(12).unwrap(), chain[11]);
}

#[test]
fn chain_depends_only_on_the_entries_not_on_segment_size() {
    let small = tempfile::tempdir().unwrap();
    let large = tempfile::tempdir().unwrap();
    let (mut a, _) = open(small.path(), SMALL_SEGMENT_BYTES);
    let (mut b, _) = open(large.path(), 1 << 20);
    let entries = records(0, 30, 2);
    a.append(&entries).unwrap();
    for entry in &entries {
        b.append(std::slice::from_ref(entry)).unwrap();
    }
    assert!(a.segment_files().len() > 1 && b.segment_files().len() == 1);
    for index in 0..=30 {
        assert_eq!(a.chain_hash(index).unwrap(), b.chain_hash(index).unwrap());
    }
}

#[test]
fn torn_partial_record_at_the_tail_is_cut_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 12);
    let last_file = log.segment_files().pop().unwrap();
    let clean_len = std::fs::metadata(&last_file).unwrap().len();
    drop(log);
    // Half a frame, as a crash in the middle of a write leaves it.
    let scratch_dir = tempfile::tempdir().unwrap();
    let scratch = written(scratch_dir.path(), 13, 13);
    let scratch_file = scratch.segment_files().pop().unwrap();
    let half_frame = std::fs::read(scratch_file).unwrap()[24..50].to_vec();
    OpenOptions::new().append(true).open(&last_file).unwrap().write_all(&half_frame).unwrap();

    let (mut log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    let torn = report.torn_tail.expect("torn tail reported");
    assert_eq!((torn.file.as_path(), torn.offset, torn.bytes), (last_file.as_path(), clean_len, 26));
    assert_eq!(std::fs::metadata(&last_file).unwrap().len(), clean_len, "file cut back");
    assert_eq!(log.last_index(), Some(12));
    log.append(&records(13, 14, 1)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!(report.torn_tail, None);
    assert_eq!(log.read_range(1, 15).unwrap(), records(1, 14, 1));
}

#[test]
fn zeroed_tail_from_a_size_update_without_data_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 5);
    let last_file = log.segment_files().pop().unwrap();
    drop(log);
    OpenOptions::new().append(true).open(&last_file).unwrap().write_all(&[0u8; 300]).unwrap();
    let (log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!(report.torn_tail.map(|t| t.bytes), Some(300));
    assert_eq!(log.last_index(), Some(5));
}

#[test]
fn flipped_byte_in_a_sealed_segment_is_reported_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 30);
    let (file, offset) = log.location(3).unwrap();
    assert_ne!(Some(&file), log.segment_files().last(), "entry 3 is in a sealed segment");
    drop(log);
    flip_byte(&file, offset + 60);
    let (bad_file, bad_offset, index) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((bad_file, bad_offset, index), (file, offset, Some(3)));
}

#[test]
fn flipped_byte_in_a_sealed_segment_header_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 30);
    let first = log.segment_files()[0].clone();
    drop(log);
    flip_byte(&first, 14);
    let (file, offset, _) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((file, offset), (first, 0));
}

#[test]
fn damage_inside_the_last_segment_followed_by_valid_records_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 1 << 20);
    log.append(&records(1, 10, 1)).unwrap();
    log.sync().unwrap();
    let (file, offset) = log.location(4).unwrap();
    drop(log);
    flip_byte(&file, offset + 70);
    let (bad_file, bad_offset, index) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((bad_file, bad_offset, index), (file.clone(), offset, Some(4)));
    assert!(std::fs::metadata(&file).unwrap().len() > offset + 100, "nothing was truncated");
}

/// A final record that spans several sectors, so a torn write can end inside it.
fn large_record(index: u64) -> LogRecord {
    LogRecord { index, term: 1, kind: RecordKind::Normal, payload: vec![0x5A; 2000] }
}

fn reason_of(result: Result<(LogStore, croupier_store::RecoveryReport), StoreError>) -> String {
    match result {
        Err(StoreError::Corrupt { reason, .. }) => reason,
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, the log opened"),
    }
}

/// A log in the simulated file system with entries 1..=5 synced and `last` appended but not
/// synced. Returns the file system, the segment and the final record's offset and length.
fn sim_log_with_unsynced(last: LogRecord) -> (SimFileSystem, std::path::PathBuf, usize, usize) {
    let fs = SimFileSystem::new();
    let (mut log, _) = LogStore::open_with(Arc::new(fs.clone()), "/data/log", LogOptions::default()).unwrap();
    log.append(&records(1, 5, 1)).unwrap();
    log.sync().unwrap();
    log.append(std::slice::from_ref(&last)).unwrap();
    let (file, offset) = log.location(last.index).unwrap();
    let end = fs.read(&file).unwrap().len();
    drop(log); // no close: what follows is what a crash left
    (fs, file, offset as usize, end - offset as usize)
}

fn reopen_sim(fs: &SimFileSystem) -> Result<(LogStore, croupier_store::RecoveryReport), StoreError> {
    LogStore::open_with(Arc::new(fs.clone()), "/data/log", LogOptions::default())
}

#[test]
fn torn_tail_is_cut_when_the_file_ends_inside_the_final_record() {
    for kept in [1, 30, 60, 61, 62, 100, 126] {
        let (fs, file, offset, len) = sim_log_with_unsynced(record(6, 1));
        assert_eq!(len, 127, "61-byte header, 62-byte payload, 4-byte end marker");
        let bytes = fs.read(&file).unwrap();
        fs.overwrite(&file, &bytes[..offset + kept]);
        let (log, report) = reopen_sim(&fs).unwrap_or_else(|e| panic!("{kept} bytes kept: {e}"));
        let torn = report.torn_tail.expect("torn tail reported");
        assert_eq!((torn.offset, torn.bytes), (offset as u64, kept as u64), "{kept} bytes kept");
        assert_eq!(log.last_index(), Some(5));
        assert_eq!(fs.read(&file).unwrap().len(), offset, "cut back to the last whole record");
    }
}

#[test]
fn torn_tail_is_cut_when_the_file_was_extended_with_zeros_from_a_sector_boundary() {
    let (fs, file, offset, len) = sim_log_with_unsynced(large_record(6));
    let bytes = fs.read(&file).unwrap();
    let inside_the_record = (offset + 100).next_multiple_of(512);
    assert!(inside_the_record < offset + len);
    // Data reached the disk up to a sector boundary inside the record, or not at all past the
    // last sync (which ended where the record starts); the size got as far as the full record.
    for written in [inside_the_record, offset] {
        let mut crashed = bytes[..written].to_vec();
        crashed.resize(offset + len + 300, 0);
        fs.overwrite(&file, &crashed);
        let (log, report) = reopen_sim(&fs).unwrap_or_else(|e| panic!("data up to {written}: {e}"));
        assert_eq!(report.torn_tail.map(|t| (t.offset, t.bytes)), Some((offset as u64, len as u64 + 300)));
        assert_eq!(log.last_index(), Some(5));
        drop(log);
        fs.overwrite(&file, &bytes);
    }
}

#[test]
fn every_crash_of_multi_sector_unsynced_writes_reopens_with_the_synced_entries() {
    let big = |index: u64| LogRecord { index, term: 2, kind: RecordKind::Normal, payload: vec![index as u8 | 1; 700] };
    for seed in 0..200 {
        let fs = SimFileSystem::new();
        let (mut log, _) = LogStore::open_with(Arc::new(fs.clone()), "/data/log", LogOptions::default()).unwrap();
        log.append(&records(1, 5, 1)).unwrap();
        log.sync().unwrap();
        log.append(&(6..=9).map(big).collect::<Vec<_>>()).unwrap();
        drop(log);
        fs.crash(seed);
        let (log, _) = reopen_sim(&fs).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let last = log.last_index().unwrap();
        assert!(last >= 5, "seed {seed}: synced entries survive");
        assert_eq!(log.read_range(6, last + 1).unwrap(), (6..=last).map(big).collect::<Vec<_>>(), "seed {seed}");
    }
}

#[test]
fn flipped_byte_in_the_final_full_length_record_is_corruption_not_a_torn_tail() {
    // In the header, the payload, the end marker: the record was written whole, then damaged.
    for position in [5, 70, 126] {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 1 << 20);
        log.append(&records(1, 6, 1)).unwrap();
        log.sync().unwrap();
        let (file, offset) = log.location(6).unwrap();
        drop(log);
        let len = std::fs::metadata(&file).unwrap().len();
        assert_eq!(len, offset + 127, "entry 6 is the final record");
        flip_byte(&file, offset + position);
        let result = LogStore::open(dir.path(), LogOptions::default());
        let (bad_file, bad_offset, index) = expect_corrupt(result);
        assert_eq!((bad_file, bad_offset, index), (file.clone(), offset, Some(6)), "flip at {position}");
        assert!(reason_of(LogStore::open(dir.path(), LogOptions::default())).contains("not a torn write"));
        assert_eq!(std::fs::metadata(&file).unwrap().len(), len, "nothing was cut");
    }
}

#[test]
fn final_record_zeroed_from_off_a_sector_boundary_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = open(dir.path(), 1 << 20);
    log.append(&records(1, 5, 1)).unwrap();
    log.append(&[large_record(6)]).unwrap();
    log.sync().unwrap();
    let (file, offset) = log.location(6).unwrap();
    drop(log);
    let mut bytes = std::fs::read(&file).unwrap();
    let end = bytes.len();
    // One byte past the last sector boundary inside the record: no torn write zeroes from there.
    let zeros_from = (end - 1) / 512 * 512 + 1;
    assert!(zeros_from > offset as usize);
    bytes[zeros_from..].fill(0);
    std::fs::write(&file, &bytes).unwrap();
    let (bad_file, bad_offset, index) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((bad_file, bad_offset, index), (file, offset, Some(6)));
}

#[test]
fn stray_bytes_after_the_final_record_are_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 5);
    let last_file = log.segment_files().pop().unwrap();
    drop(log);
    let clean_len = std::fs::metadata(&last_file).unwrap().len();
    // Longer than a record header, not zeros: no interrupted write of ours leaves this.
    OpenOptions::new().append(true).open(&last_file).unwrap().write_all(&[0xEE; 100]).unwrap();
    let (file, offset, index) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((file, offset, index), (last_file, clean_len, Some(6)));
}

#[test]
fn segment_of_format_version_1_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut header = b"CRPRLOG\x01".to_vec();
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&1u64.to_le_bytes());
    let crc = crc32c::crc32c(&header);
    header.extend_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(&[0x42; 80]);
    std::fs::write(dir.path().join("00000000000000000001.seg"), &header).unwrap();
    let reason = reason_of(LogStore::open(dir.path(), LogOptions::default()));
    assert!(reason.contains("unsupported segment format version 1"), "{reason}");
}

#[test]
fn after_a_clean_close_a_cut_final_record_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 6);
    let (file, offset) = log.location(6).unwrap();
    log.close().unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    OpenOptions::new().write(true).open(&file).unwrap().set_len(len - 10).unwrap();
    let (bad_file, bad_offset, index) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((bad_file, bad_offset, index), (file.clone(), offset, Some(6)));
    assert!(reason_of(LogStore::open(dir.path(), LogOptions::default())).contains("closed cleanly"));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), len - 10, "nothing was cut");
}

#[test]
fn after_a_clean_close_a_log_cut_at_a_record_boundary_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 6);
    let (file, offset) = log.location(6).unwrap();
    log.close().unwrap();
    OpenOptions::new().write(true).open(&file).unwrap().set_len(offset).unwrap();
    let (bad_file, bad_offset, index) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((bad_file, bad_offset, index), (file, offset, Some(6)));
}

#[test]
fn after_a_clean_close_a_missing_last_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 30);
    let last_file = log.segment_files().pop().unwrap();
    log.close().unwrap();
    std::fs::remove_file(&last_file).unwrap();
    let (file, offset, index) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((file, offset, index), (last_file, 0, Some(30)));
}

#[test]
fn opening_for_writing_retires_the_close_marker() {
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), 1, 6).close().unwrap();
    assert!(dir.path().join("closed").exists());
    let (read_only, _) = LogStore::open_read_only(Arc::new(croupier_store::fs::OsFileSystem), dir.path()).unwrap();
    drop(read_only);
    assert!(dir.path().join("closed").exists(), "a read-only open changes nothing");
    let (mut log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!((report.last_index, report.torn_tail), (Some(6), None));
    assert!(!dir.path().join("closed").exists());
    log.append(&records(7, 7, 1)).unwrap();
    let (file, offset) = log.location(7).unwrap();
    drop(log); // a crash: entry 7 was never synced, and its write is torn
    OpenOptions::new().write(true).open(&file).unwrap().set_len(offset + 20).unwrap();
    let (log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!(report.torn_tail.map(|t| t.offset), Some(offset));
    assert_eq!(log.last_index(), Some(6));
}

#[test]
fn crash_right_after_a_clean_close_loses_nothing() {
    for seed in 0..40 {
        let fs = SimFileSystem::new();
        let options = LogOptions { segment_size_max_bytes: SMALL_SEGMENT_BYTES };
        let (mut log, _) = LogStore::open_with(Arc::new(fs.clone()), "/data/log", options.clone()).unwrap();
        log.append(&records(1, 9, 1)).unwrap();
        log.sync().unwrap();
        log.append(&records(10, 14, 1)).unwrap();
        log.close().unwrap();
        fs.crash(seed);
        let (log, report) = LogStore::open_with(Arc::new(fs), "/data/log", options).unwrap();
        assert_eq!((report.last_index, report.torn_tail), (Some(14), None), "seed {seed}");
        assert_eq!(log.read_range(1, 15).unwrap(), records(1, 14, 1));
    }
}

#[test]
fn closing_a_poisoned_log_is_refused_and_leaves_no_marker() {
    let fs = SimFileSystem::new();
    let (mut log, _) = LogStore::open_with(Arc::new(fs.clone()), "/data/log", LogOptions::default()).unwrap();
    log.append(&records(1, 3, 1)).unwrap();
    fs.set_fault(Fault::SyncFails);
    assert!(log.sync().is_err());
    fs.set_fault(Fault::None);
    assert!(matches!(log.close(), Err(StoreError::Poisoned)));
    assert_eq!(fs.read(Path::new("/data/log/closed")), None);
}

#[test]
fn truncate_from_survives_reopen_and_the_chain_continues_from_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = written(dir.path(), 1, 30);
    let segments_before = log.segment_files().len();
    log.truncate_from(9).unwrap();
    assert!(log.segment_files().len() < segments_before);
    assert_eq!(log.last_index(), Some(8));
    log.append(&records(9, 12, 2)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!(report.last_index, Some(12));
    let mut expected = records(1, 8, 1);
    expected.extend(records(9, 12, 2));
    assert_eq!(log.read_range(1, 13).unwrap(), expected);
    assert_eq!(log.last_chain_hash(), *chain_of(&expected, GENESIS_CHAIN_HASH).last().unwrap());
}

#[test]
fn truncate_from_the_first_entry_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = written(dir.path(), 0, 10);
    log.truncate_from(0).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    drop(log);
    let (mut log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!(report.entries, 0);
    log.append(&records(0, 2, 3)).unwrap();
    assert_eq!(log.chain_hash(0).unwrap(), chain_of(&records(0, 0, 3), GENESIS_CHAIN_HASH)[0]);
}

#[test]
fn purge_through_survives_reopen_and_the_first_remaining_entry_chains_to_the_purged_hash() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = written(dir.path(), 1, 30);
    let all = records(1, 30, 1);
    let chain = chain_of(&all, GENESIS_CHAIN_HASH);
    let (segment_of_purge_point, _) = log.location(17).unwrap();
    log.purge_through(17).unwrap();
    assert_eq!(log.first_index(), Some(18));
    assert_eq!(log.last_purged(), Some((17, 1, chain[16])));
    assert!(!log.segment_files().is_empty() && log.segment_files()[0] <= segment_of_purge_point);
    drop(log);

    let (mut log, report) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!((report.first_index, report.last_purged), (Some(18), Some(17)));
    assert_eq!(log.last_purged(), Some((17, 1, chain[16])));
    assert_eq!(log.chain_hash(17).unwrap(), chain[16]);
    assert!(matches!(log.read_range(17, 19), Err(StoreError::OutOfRange { .. })));
    assert_eq!(log.read_range(18, 31).unwrap(), all[17..].to_vec());
    log.append(&records(31, 33, 1)).unwrap();
    log.purge_through(33).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    assert!(log.segment_files().is_empty(), "everything purged: no segment left");
    drop(log);

    let (mut log, _) = open(dir.path(), SMALL_SEGMENT_BYTES);
    let mut everything = records(1, 33, 1);
    everything.extend(records(34, 35, 4));
    log.append(&records(34, 35, 4)).unwrap();
    let full_chain = chain_of(&everything, GENESIS_CHAIN_HASH);
    assert_eq!(log.last_chain_hash(), full_chain[34], "chain runs on through a full purge");
}

#[test]
fn purge_through_snapshot_beyond_the_log_restarts_it_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = written(dir.path(), 1, 10);
    let head = [7u8; 32];
    assert!(matches!(log.purge_through(50), Err(StoreError::PurgeBeyondLog { .. })));
    log.purge_through_snapshot(50, 6, head).unwrap();
    assert_eq!((log.last_index(), log.next_index(), log.last_purged()), (None, Some(51), Some((50, 6, head))));
    drop(log);
    let (mut log, _) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!(log.last_chain_hash(), head);
    log.append(&records(51, 52, 6)).unwrap();
    log.sync().unwrap();
    drop(log);
    let (log, _) = open(dir.path(), SMALL_SEGMENT_BYTES);
    assert_eq!(log.last_chain_hash(), *chain_of(&records(51, 52, 6), head).last().unwrap());
}

#[test]
fn purge_through_snapshot_refuses_a_chain_head_the_log_disagrees_with() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = written(dir.path(), 1, 10);
    assert!(matches!(log.purge_through_snapshot(5, 1, [1u8; 32]), Err(StoreError::SnapshotConflict { index: 5, .. })));
    let head = log.chain_hash(5).unwrap();
    log.purge_through_snapshot(5, 1, head).unwrap();
    assert_eq!(log.first_index(), Some(6));
}

#[test]
fn truncating_into_the_purged_prefix_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = written(dir.path(), 1, 20);
    log.purge_through(10).unwrap();
    assert!(matches!(log.truncate_from(10), Err(StoreError::TruncatePurged { index: 10, purged: 10 })));
    log.truncate_from(11).unwrap();
    assert_eq!((log.first_index(), log.last_index()), (None, None));
    assert_eq!(log.next_index(), Some(11));
}

#[test]
fn missing_front_segment_without_a_purge_marker_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 30);
    let first = log.segment_files()[0].clone();
    drop(log);
    std::fs::remove_file(&first).unwrap();
    let (_, _, index) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert!(index.is_some());
}

#[test]
fn missing_middle_segment_is_an_index_gap() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 30);
    let files = log.segment_files();
    drop(log);
    std::fs::remove_file(&files[1]).unwrap();
    let (file, offset, _) = expect_corrupt(LogStore::open(dir.path(), LogOptions::default()));
    assert_eq!((file, offset), (files[2].clone(), 0));
}

#[test]
fn read_range_outside_the_log_is_an_error_not_a_short_answer() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 5);
    assert!(matches!(log.read_range(0, 3), Err(StoreError::OutOfRange { .. })));
    assert!(matches!(log.read_range(4, 7), Err(StoreError::OutOfRange { .. })));
    assert_eq!(log.read_range(3, 3).unwrap(), Vec::new());
    assert!(matches!(log.chain_hash(6), Err(StoreError::OutOfRange { .. })));
}

#[test]
#[should_panic(expected = "appended entries must continue the log")]
fn appending_with_a_gap_is_a_caller_bug() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = written(dir.path(), 1, 5);
    let _ = log.append(&records(7, 7, 1));
}

#[test]
fn failed_sync_poisons_the_log_and_reopening_recovers_what_reached_the_disk() {
    let fs = SimFileSystem::new();
    let options = LogOptions { segment_size_max_bytes: SMALL_SEGMENT_BYTES };
    let (mut log, _) = LogStore::open_with(Arc::new(fs.clone()), "/data/log", options.clone()).unwrap();
    log.append(&records(1, 6, 1)).unwrap();
    log.sync().unwrap();
    log.append(&records(7, 9, 1)).unwrap();
    fs.set_fault(Fault::SyncFails);
    assert!(log.sync().is_err());
    fs.set_fault(Fault::None);
    assert!(matches!(log.sync(), Err(StoreError::Poisoned)));
    assert!(matches!(log.append(&records(10, 10, 1)), Err(StoreError::Poisoned)));
    drop(log);
    fs.crash(11);
    let (log, _) = LogStore::open_with(Arc::new(fs.clone()), "/data/log", options).unwrap();
    let last = log.last_index().unwrap();
    assert!((6..=9).contains(&last), "synced entries survive, unsynced may: {last}");
    assert_eq!(log.read_range(1, last + 1).unwrap(), records(1, last, 1));
}

#[test]
fn write_torn_by_an_io_error_is_repaired_on_reopen() {
    let fs = SimFileSystem::new();
    let options = LogOptions::default();
    let (mut log, _) = LogStore::open_with(Arc::new(fs.clone()), "/data/log", options.clone()).unwrap();
    log.append(&records(1, 3, 1)).unwrap();
    log.sync().unwrap();
    fs.set_fault(Fault::WriteTearsThenFails);
    assert!(log.append(&records(4, 4, 1)).is_err(), "half of one record reaches the file");
    fs.set_fault(Fault::None);
    drop(log);
    let (log, report) = LogStore::open_with(Arc::new(fs), "/data/log", options).unwrap();
    assert!(report.torn_tail.is_some());
    assert_eq!(log.last_index(), Some(3));
}

#[test]
fn read_only_open_reports_a_torn_tail_without_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = written(dir.path(), 1, 4);
    let last_file = log.segment_files().pop().unwrap();
    drop(log);
    OpenOptions::new().append(true).open(&last_file).unwrap().write_all(&[0xEE; 10]).unwrap();
    let len = std::fs::metadata(&last_file).unwrap().len();
    let (log, report) = LogStore::open_read_only(Arc::new(croupier_store::fs::OsFileSystem), dir.path()).unwrap();
    assert_eq!(report.torn_tail.map(|t| t.bytes), Some(10));
    assert_eq!(std::fs::metadata(&last_file).unwrap().len(), len, "read-only open changes nothing");
    assert_eq!(log.read_range(1, 5).unwrap(), records(1, 4, 1));
}
