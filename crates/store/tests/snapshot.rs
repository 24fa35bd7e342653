//! Snapshots and the vote file: atomic saves, full integrity checks, damage named by offset.

use std::path::Path;
use std::sync::Arc;

use croupier_store::sim_fs::{Fault, SimFileSystem};
use croupier_store::{SnapshotMeta, SnapshotStore, StoreError, VoteFile, SNAPSHOTS_KEPT};

fn meta(last_index: u64) -> SnapshotMeta {
    SnapshotMeta {
        last_index,
        last_term: 3,
        chain_head: [last_index as u8; 32],
        membership: vec![1, 2, 3, last_index as u8],
        snapshot_id: format!("3-{last_index}-test"),
    }
}

/// 2.5 MiB of data: three CRC chunks.
fn data(seed: u8) -> Vec<u8> {
    (0..(5usize << 19)).map(|i| (i as u8).wrapping_mul(seed) ^ (i >> 11) as u8).collect()
}

fn snapshot_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    files.sort();
    files
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x80;
    std::fs::write(path, bytes).unwrap();
}

fn expect_corrupt(store: &SnapshotStore) -> (std::path::PathBuf, u64, String) {
    match store.load_latest() {
        Err(StoreError::Corrupt { file, offset, reason, .. }) => (file, offset, reason),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("expected Corrupt, the snapshot loaded"),
    }
}

#[test]
fn saved_snapshot_loads_back_with_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    assert_eq!(store.load_latest().unwrap(), None);
    store.save(&meta(10), &data(7)).unwrap();
    assert_eq!(store.load_latest().unwrap(), Some((meta(10), data(7))));
    store.save(&meta(20), b"").unwrap();
    assert_eq!(store.load_latest().unwrap(), Some((meta(20), Vec::new())), "empty data is fine");
}

#[test]
fn only_the_newest_snapshots_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    for index in [5, 9, 14, 30] {
        store.save(&meta(index), &[index as u8; 10]).unwrap();
    }
    let files = snapshot_files(dir.path());
    assert_eq!(files.len(), SNAPSHOTS_KEPT);
    assert!(files[1].to_string_lossy().contains("00000000000000000030"));
    let reopened = SnapshotStore::open(dir.path()).unwrap();
    assert_eq!(reopened.load_latest().unwrap().unwrap().0.last_index, 30);
}

#[test]
fn newest_is_the_last_saved_even_at_a_lower_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.save(&meta(50), b"a").unwrap();
    store.save(&meta(40), b"b").unwrap();
    assert_eq!(store.load_latest().unwrap().unwrap().0.last_index, 40);
}

#[test]
fn flipped_byte_in_the_header_is_corruption_at_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.save(&meta(10), &data(3)).unwrap();
    let file = snapshot_files(dir.path()).pop().unwrap();
    flip_byte(&file, 70); // inside last_index
    let (bad_file, offset, reason) = expect_corrupt(&store);
    assert_eq!((bad_file, offset), (file, 0));
    assert!(reason.contains("header"), "{reason}");
}

#[test]
fn flipped_byte_in_the_data_is_located_to_its_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.save(&meta(10), &data(3)).unwrap();
    let file = snapshot_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    let header_len = len - data(3).len();
    let damaged_at = header_len + (1 << 20) + 12_345; // second chunk
    flip_byte(&file, damaged_at);
    let (bad_file, offset, reason) = expect_corrupt(&store);
    assert_eq!((bad_file, offset), (file, (header_len + (1 << 20)) as u64));
    assert!(reason.contains("data"), "{reason}");
}

#[test]
fn truncated_snapshot_is_corruption_not_a_shorter_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.save(&meta(10), &data(5)).unwrap();
    let file = snapshot_files(dir.path()).pop().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
    let (bad_file, offset, _) = expect_corrupt(&store);
    assert_eq!((bad_file, offset), (file, (bytes.len() - 100) as u64));
    std::fs::write(snapshot_files(dir.path()).pop().unwrap(), &bytes[..50]).unwrap();
    expect_corrupt(&store);
}

#[test]
fn corrupt_newest_snapshot_is_not_silently_replaced_by_an_older_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = SnapshotStore::open(dir.path()).unwrap();
    store.save(&meta(10), b"older").unwrap();
    store.save(&meta(20), b"newer").unwrap();
    let newest = snapshot_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&newest).unwrap().len() as usize;
    flip_byte(&newest, len - 1);
    assert_eq!(expect_corrupt(&store).0, newest);
}

#[test]
fn interrupted_save_leaves_the_previous_snapshot_and_its_temporary_file_is_cleaned() {
    let fs = SimFileSystem::new();
    let store = SnapshotStore::open_with(Arc::new(fs.clone()), "/n/snapshots").unwrap();
    store.save(&meta(10), b"kept").unwrap();
    fs.set_fault(Fault::SyncFails);
    assert!(store.save(&meta(20), b"lost").is_err());
    fs.set_fault(Fault::None);
    drop(store);
    fs.crash(3);
    let store = SnapshotStore::open_with(Arc::new(fs.clone()), "/n/snapshots").unwrap();
    assert_eq!(store.load_latest().unwrap(), Some((meta(10), b"kept".to_vec())));
    use croupier_store::fs::FileSystem;
    let names = fs.list_files(Path::new("/n/snapshots")).unwrap();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn vote_round_trips_and_a_damaged_vote_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let vote = VoteFile::open(dir.path().join("vote")).unwrap();
    assert_eq!(vote.load().unwrap(), None);
    vote.save(b"term 4 voted for 2").unwrap();
    vote.save(b"term 5 voted for 1").unwrap();
    assert_eq!(vote.load().unwrap().as_deref(), Some(&b"term 5 voted for 1"[..]));
    flip_byte(&dir.path().join("vote"), 20);
    assert!(matches!(vote.load(), Err(StoreError::Corrupt { .. })));
}

#[test]
fn vote_survives_a_crash_once_saved() {
    let fs = SimFileSystem::new();
    let vote = VoteFile::open_with(Arc::new(fs.clone()), "/n/vote").unwrap();
    vote.save(b"v1").unwrap();
    fs.crash(99);
    let vote = VoteFile::open_with(Arc::new(fs), "/n/vote").unwrap();
    assert_eq!(vote.load().unwrap().as_deref(), Some(&b"v1"[..]));
}
