//! The id index against its contract: a BTreeMap model through random inserts, flushes, merges
//! and crashes; damaged files; concurrent readers; backpressure; failed fsyncs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use croupier_store::fs::{FileSystem, OsFileSystem, StorageFile};
use croupier_store::sim_fs::{Fault, SimFileSystem};
use croupier_store::{IdIndex, IndexOptions, IndexWorkers, StoreError};
use proptest::prelude::*;

const DIR: &str = "/node/index";

/// 7 keys per memtable (two 32-byte slots each), so a few inserts already flush and merge.
fn tiny_options() -> IndexOptions {
    IndexOptions {
        memtable_bytes_max: 7 * 64,
        frozen_memtables_max: 2,
        bloom_bits_per_key: 10,
        level_size_ratio: 2,
        level0_runs_max: 3,
    }
}

fn open(fs: &SimFileSystem, options: IndexOptions) -> (IdIndex, u64) {
    IdIndex::open(Arc::new(fs.clone()), Path::new(DIR), options).expect("index opens")
}

fn run_files(fs: &dyn FileSystem, dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs
        .list_files(dir)
        .unwrap()
        .into_iter()
        .filter(|name| name.ends_with(".run"))
        .map(|name| dir.join(name))
        .collect();
    names.sort();
    names
}

/// SplitMix64, for reproducible keys.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn key(&mut self, sequential: &mut u128) -> u128 {
        match self.next() % 5 {
            0 | 1 => {
                *sequential += 1;
                *sequential
            }
            2 => (u128::from(self.next()) << 64) | u128::from(self.next()),
            3 => (0xA5A5_u128 << 64) | u128::from(self.next() % 1000),
            _ => u128::MAX - u128::from(self.next() % 50),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert {
        count: u8,
        seed: u64,
    },
    Flush,
    WaitForMerges,
    Lookup {
        seed: u64,
    },
    /// Drop without flushing, lose what was not synced, reopen, re-insert from covered_through.
    Crash {
        seed: u64,
    },
    /// Flush, drop, reopen: nothing may be lost.
    Reopen,
    /// A flush whose fsync fails: the index fails; then as `Crash`.
    FailedFlush {
        seed: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..24, any::<u64>()).prop_map(|(count, seed)| Op::Insert { count, seed }),
        2 => Just(Op::Flush),
        1 => Just(Op::WaitForMerges),
        2 => any::<u64>().prop_map(|seed| Op::Lookup { seed }),
        2 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => Just(Op::Reopen),
        1 => any::<u64>().prop_map(|seed| Op::FailedFlush { seed }),
    ]
}

/// The caller's side: a source log of batches (position = 1-based batch number) and the map
/// every batch so far adds up to.
struct Harness {
    fs: SimFileSystem,
    index: Option<IdIndex>,
    model: BTreeMap<u128, u64>,
    batches: Vec<Vec<(u128, u64)>>,
    sequential: u128,
    /// Every batch through this position was flushed before any later crash.
    flushed_through: u64,
}

impl Harness {
    fn new() -> Harness {
        let fs = SimFileSystem::new();
        let (index, covered_through) = open(&fs, tiny_options());
        assert_eq!(covered_through, 0);
        Harness {
            fs,
            index: Some(index),
            model: BTreeMap::new(),
            batches: Vec::new(),
            sequential: 0,
            flushed_through: 0,
        }
    }

    fn index(&self) -> &IdIndex {
        self.index.as_ref().expect("open")
    }

    fn insert(&mut self, count: u8, seed: u64) {
        let mut rng = Rng(seed);
        let position = self.batches.len() as u64 + 1;
        let mut batch = Vec::new();
        for i in 0..u64::from(count) {
            let key = rng.key(&mut self.sequential);
            // A key seen before keeps its value: the contract's only re-inserts are identical.
            let value = *self.model.entry(key).or_insert(position * 1000 + i);
            batch.push((key, value));
        }
        self.index().insert_batch(&batch, position).unwrap();
        self.batches.push(batch);
    }

    fn check_lookups(&self, seed: u64) {
        let mut rng = Rng(seed);
        let mut keys: Vec<u128> = self.model.keys().copied().filter(|_| rng.next() & 3 == 0).take(64).collect();
        let mut unused = self.sequential;
        keys.extend((0..16).map(|_| rng.key(&mut unused)));
        let mut found = Vec::new();
        self.index().get_many(&keys, &mut found).unwrap();
        for (key, found) in keys.iter().zip(&found) {
            assert_eq!(*found, self.model.get(key).copied(), "get_many of {key:#x}");
            assert_eq!(self.index().get(*key).unwrap(), *found, "get of {key:#x}");
        }
    }

    fn check_all(&self) {
        let keys: Vec<u128> = self.model.keys().copied().collect();
        let mut found = Vec::new();
        self.index().get_many(&keys, &mut found).unwrap();
        for (key, found) in keys.iter().zip(found) {
            assert_eq!(found, Some(self.model[key]), "key {key:#x}");
        }
    }

    /// Reopens after the index (and the process) went away without flushing.
    fn recover(&mut self, seed: u64) {
        drop(self.index.take());
        self.fs.set_fault(Fault::None);
        self.fs.crash(seed);
        let (index, covered_through) = open(&self.fs, tiny_options());
        assert!(covered_through >= self.flushed_through, "a flushed batch was lost");
        assert!(covered_through <= self.batches.len() as u64);
        self.index = Some(index);
        // Everything through covered_through is there before the caller re-inserts anything.
        let mut found = Vec::new();
        for batch in &self.batches[..covered_through as usize] {
            let keys: Vec<u128> = batch.iter().map(|&(key, _)| key).collect();
            self.index().get_many(&keys, &mut found).unwrap();
            for ((key, value), found) in batch.iter().zip(&found) {
                assert_eq!(*found, Some(*value), "key {key:#x} of a covered batch");
            }
        }
        for (position, batch) in self.batches.iter().enumerate().skip(covered_through as usize) {
            self.index().insert_batch(batch, position as u64 + 1).unwrap();
        }
        self.flushed_through = covered_through;
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Insert { count, seed } => self.insert(count, seed),
            Op::Flush => {
                self.index().flush().unwrap();
                self.flushed_through = self.batches.len() as u64;
            }
            Op::WaitForMerges => self.index().wait_for_merges().unwrap(),
            Op::Lookup { seed } => self.check_lookups(seed),
            Op::Crash { seed } => self.recover(seed),
            Op::Reopen => {
                self.index().flush().unwrap();
                self.flushed_through = self.batches.len() as u64;
                self.index.take().unwrap().shutdown().unwrap();
                let (index, covered_through) = open(&self.fs, tiny_options());
                assert_eq!(covered_through, self.batches.len() as u64);
                self.index = Some(index);
            }
            Op::FailedFlush { seed } => {
                self.insert(3, seed);
                self.fs.set_fault(Fault::SyncFails);
                assert!(matches!(self.index().flush(), Err(StoreError::IndexFailed { .. })));
                assert!(matches!(self.index().get(1), Err(StoreError::IndexFailed { .. })));
                self.recover(seed);
            }
        }
    }
}

proptest! {
    #[test]
    fn index_matches_a_map_model_through_flushes_merges_and_crashes(ops in prop::collection::vec(op(), 1..40)) {
        let mut harness = Harness::new();
        for op in ops {
            harness.apply(op);
        }
        harness.check_all();
        harness.index().flush().unwrap();
        harness.index().wait_for_merges().unwrap();
        harness.check_all();
        let stats = harness.index().stats();
        // Keys re-inserted after a crash may sit in two runs until those are merged.
        prop_assert!(stats.run_entries as usize >= harness.model.len());
        prop_assert_eq!(run_files(&harness.fs, Path::new(DIR)).len(), stats.runs, "merged-away files are deleted");
    }
}

#[test]
fn newest_value_wins_across_memtables_runs_and_merges() {
    let fs = SimFileSystem::new();
    let (index, _) = open(&fs, tiny_options());
    index.insert_batch(&[(5, 1), (6, 1)], 1).unwrap();
    index.flush().unwrap();
    index.insert_batch(&[(5, 2)], 2).unwrap();
    assert_eq!(index.get(5).unwrap(), Some(2));
    index.flush().unwrap();
    index.wait_for_merges().unwrap();
    assert_eq!(index.stats().runs, 1);
    assert_eq!(index.get(5).unwrap(), Some(2));
    assert_eq!(index.get(6).unwrap(), Some(1));
    index.shutdown().unwrap();
    let (index, covered_through) = open(&fs, tiny_options());
    assert_eq!(covered_through, 2);
    assert_eq!(index.get(5).unwrap(), Some(2));
}

#[test]
#[should_panic(expected = "covered_through went back")]
fn covered_through_never_goes_back() {
    let fs = SimFileSystem::new();
    let (index, _) = open(&fs, tiny_options());
    index.insert_batch(&[(1, 1)], 5).unwrap();
    let _ = index.insert_batch(&[(2, 2)], 4);
}

/// One run of 1,000 sequential keys (so block `b` holds keys `170 b .. 170 (b + 1)`).
fn index_with_one_run(fs: &SimFileSystem) -> PathBuf {
    let options = IndexOptions { memtable_bytes_max: 1 << 20, ..IndexOptions::default() };
    let (index, _) = open(fs, options);
    let entries: Vec<(u128, u64)> = (0..1000u64).map(|i| (u128::from(i), i)).collect();
    index.insert_batch(&entries, 1).unwrap();
    index.flush().unwrap();
    index.shutdown().unwrap();
    let runs = run_files(fs, Path::new(DIR));
    assert_eq!(runs.len(), 1);
    runs[0].clone()
}

fn damage(fs: &SimFileSystem, path: &Path, offset: usize) {
    let mut bytes = fs.read(path).unwrap();
    bytes[offset] ^= 0x40;
    fs.overwrite(path, &bytes);
}

#[test]
fn flipped_byte_in_a_block_is_corrupt_naming_file_and_block_offset() {
    let fs = SimFileSystem::new();
    let run = index_with_one_run(&fs);
    damage(&fs, &run, 2 * 4096 + 100);
    let (index, _) = open(&fs, IndexOptions::default());
    assert_eq!(index.get(10).unwrap(), Some(10), "other blocks still read");
    match index.get(2 * 170 + 5) {
        Err(StoreError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, run);
            assert_eq!(offset, 2 * 4096);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let mut found = Vec::new();
    assert!(matches!(index.get_many(&[1, 2 * 170 + 7], &mut found), Err(StoreError::Corrupt { offset: 8192, .. })));
}

#[test]
fn merge_over_a_damaged_block_fails_the_index_instead_of_dropping_entries() {
    let fs = SimFileSystem::new();
    let run = index_with_one_run(&fs);
    damage(&fs, &run, 4096 + 7);
    let (index, _) = open(&fs, IndexOptions::default());
    index.insert_batch(&[(5_000, 5_000)], 2).unwrap();
    // The flush's level-0 run is merged with the damaged one; the merge may fail before
    // `flush` returns.
    match index.flush().and_then(|()| index.wait_for_merges()) {
        Err(StoreError::IndexFailed { reason }) => assert!(reason.contains("block checksum"), "{reason}"),
        other => panic!("expected IndexFailed, got {other:?}"),
    }
    drop(index);
    // Nothing was dropped: both runs are still there (the failed merge's output was removed),
    // and the manifest still covers them.
    assert_eq!(run_files(&fs, Path::new(DIR)).len(), 2);
    let (_index, covered_through) = open(&fs, IndexOptions::default());
    assert_eq!(covered_through, 2);
}

#[test]
fn damaged_footer_or_trailer_is_corrupt_on_open() {
    let blocks = 1000usize.div_ceil(170);
    let footer = blocks * 4096;
    let file_bytes = |fs: &SimFileSystem, run: &Path| fs.read(run).unwrap().len();
    // What is damaged, the byte flipped and the offset the error must name, given the footer's
    // offset and the file size.
    type Case = (&'static str, fn(usize, usize) -> (usize, usize));
    let cases: [Case; 3] = [
        ("fence keys", |footer, _| (footer + 20, footer)),
        ("bloom filter", |footer, _| (footer + 6 * 16 + 3, footer)),
        ("trailer", |_, size| (size - 30, size - 84)),
    ];
    for (what, at) in cases {
        let fs = SimFileSystem::new();
        let run = index_with_one_run(&fs);
        let (flip, expected) = at(footer, file_bytes(&fs, &run));
        damage(&fs, &run, flip);
        match IdIndex::open(Arc::new(fs.clone()), Path::new(DIR), IndexOptions::default()) {
            Err(StoreError::Corrupt { file, offset, .. }) => {
                assert_eq!((file, offset), (run.clone(), expected as u64), "damaged {what}");
            }
            other => panic!("damaged {what}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn truncated_or_missing_run_is_corrupt_on_open() {
    let fs = SimFileSystem::new();
    let run = index_with_one_run(&fs);
    let bytes = fs.read(&run).unwrap();
    fs.overwrite(&run, &bytes[..bytes.len() - 100]);
    let result = IdIndex::open(Arc::new(fs.clone()), Path::new(DIR), IndexOptions::default());
    assert!(matches!(result, Err(StoreError::Corrupt { .. })), "{result:?}");
    fs.remove_file(&run).unwrap();
    let result = IdIndex::open(Arc::new(fs.clone()), Path::new(DIR), IndexOptions::default());
    assert!(matches!(result, Err(StoreError::Corrupt { file, .. }) if file == run));
}

#[test]
fn leftover_run_and_tmp_files_are_deleted_on_open() {
    let fs = SimFileSystem::new();
    let run = index_with_one_run(&fs);
    let dir = Path::new(DIR);
    for name in ["00000000000000000099.run", "MANIFEST.tmp"] {
        fs.create(&dir.join(name)).unwrap().append(b"half-written").unwrap();
    }
    let (index, covered_through) = open(&fs, IndexOptions::default());
    assert_eq!(covered_through, 1);
    assert_eq!(run_files(&fs, dir), vec![run]);
    assert!(fs.read(&dir.join("MANIFEST.tmp")).is_none());
    assert_eq!(index.get(999).unwrap(), Some(999));
}

#[test]
fn readers_on_other_threads_see_every_inserted_key_while_merges_run() {
    let dir = tempfile::tempdir().unwrap();
    // 132 keys per memtable: 100 batches of 150 keys make ~110 flushes and their merges.
    let options = IndexOptions { memtable_bytes_max: 8_500, level_size_ratio: 2, ..IndexOptions::default() };
    let (index, _) = IdIndex::open(Arc::new(OsFileSystem), dir.path(), options).unwrap();
    let index = Arc::new(index);
    let key = |i: u64| u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) | 1;
    let published = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2u64)
        .map(|reader| {
            let (index, published, done) = (Arc::clone(&index), Arc::clone(&published), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut rng = Rng(reader);
                let mut checked = 0u64;
                while !done.load(Ordering::Acquire) {
                    let through = published.load(Ordering::Acquire);
                    if through == 0 {
                        continue;
                    }
                    let i = rng.next() % through;
                    assert_eq!(index.get(key(i)).unwrap(), Some(i), "key {i} of {through} published");
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    for batch in 0..100u64 {
        let entries: Vec<(u128, u64)> = (batch * 150..(batch + 1) * 150).map(|i| (key(i), i)).collect();
        index.insert_batch(&entries, batch + 1).unwrap();
        published.store((batch + 1) * 150, Ordering::Release);
    }
    index.flush().unwrap();
    index.wait_for_merges().unwrap();
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.join().expect("reader saw every key") > 0);
    }
    let stats = index.stats();
    assert!(stats.merges >= 10, "{stats:?}");
    assert_eq!(stats.run_entries, 15_000);
}

/// A file system whose run-file creation waits until the test opens the gate.
#[derive(Debug)]
struct GatedFs {
    inner: SimFileSystem,
    open: Mutex<bool>,
    opened: Condvar,
}

impl GatedFs {
    fn set_open(&self, open: bool) {
        *self.open.lock().unwrap() = open;
        self.opened.notify_all();
    }
}

impl FileSystem for GatedFs {
    fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn dir_exists(&self, dir: &Path) -> std::io::Result<bool> {
        self.inner.dir_exists(dir)
    }
    fn list_files(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list_files(dir)
    }
    fn open(&self, path: &Path) -> std::io::Result<Box<dyn StorageFile>> {
        self.inner.open(path)
    }
    fn open_read_only(&self, path: &Path) -> std::io::Result<Box<dyn StorageFile>> {
        self.inner.open_read_only(path)
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn StorageFile>> {
        if path.extension().is_some_and(|extension| extension == "run") {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
        }
        self.inner.create(path)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.remove_dir_all(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

#[test]
fn insert_batch_waits_for_blocked_flushes_instead_of_growing_memory() {
    let fs = Arc::new(GatedFs { inner: SimFileSystem::new(), open: Mutex::new(false), opened: Condvar::new() });
    // Its own pool: this test blocks the flush lane, which must not hold up other tests' indexes
    // (nor, should the test fail before it opens the gate, hang them).
    let workers = IndexWorkers::new();
    let (index, _) = IdIndex::open_in(&workers, fs.clone(), Path::new(DIR), tiny_options()).unwrap();
    let index = Arc::new(index);
    // The flush lane prepares a spare memtable when it first gets to the index (so the first
    // freeze does not allocate on the inserting thread): wait for it. A memtable of 7 keys is
    // exactly `memtable_bytes_max` (two 32-byte slots per key).
    let memtable_bytes = tiny_options().memtable_bytes_max as u64;
    while index.memory_bytes() < 2 * memtable_bytes {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(index.memory_bytes(), 2 * memtable_bytes, "the active memtable and the spare");
    let finished = Arc::new(AtomicBool::new(false));
    let inserter = {
        let (index, finished) = (Arc::clone(&index), Arc::clone(&finished));
        std::thread::spawn(move || {
            // 7 keys per memtable: the 4th memtable needs a third frozen slot.
            for batch in 0..4u64 {
                let entries: Vec<(u128, u64)> = (batch * 7..(batch + 1) * 7).map(|i| (u128::from(i), i)).collect();
                index.insert_batch(&entries, batch + 1).unwrap();
            }
            finished.store(true, Ordering::Release);
        })
    };
    while index.stats().stalls == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    let stats = index.stats();
    assert!(!finished.load(Ordering::Acquire), "insert_batch must wait while the flushes are blocked");
    assert_eq!(stats.frozen_memtables, 2);
    // Active, two frozen and the spare: `frozen_memtables_max + 2`, however long flushes stall.
    assert!(stats.memory_bytes <= 4 * memtable_bytes, "{} > 4 × {memtable_bytes}", stats.memory_bytes);

    fs.set_open(true);
    inserter.join().unwrap();
    assert!(finished.load(Ordering::Acquire));
    assert!((0..28u128).all(|key| index.get(key).unwrap() == Some(key as u64)));
    let stats = index.stats();
    assert!(stats.stalls >= 1);
    assert!(stats.stall_time >= Duration::from_millis(50));
}

#[test]
fn failed_fsync_during_a_background_flush_fails_every_later_call() {
    let fs = SimFileSystem::new();
    let (index, _) = open(&fs, tiny_options());
    index.insert_batch(&[(1, 1), (2, 2)], 1).unwrap();
    index.flush().unwrap();
    fs.set_fault(Fault::SyncFails);
    // Keep inserting: the background flush of a full memtable fails, and the failure reaches
    // the inserting thread, which then never writes again.
    let mut failure = None;
    for batch in 2..1000u64 {
        let entries: Vec<(u128, u64)> = (0..7).map(|i| (u128::from(batch * 10 + i), batch)).collect();
        if let Err(error) = index.insert_batch(&entries, batch) {
            failure = Some(error);
            break;
        }
    }
    match failure {
        Some(StoreError::IndexFailed { reason }) => assert!(reason.contains("injected"), "{reason}"),
        other => panic!("expected IndexFailed, got {other:?}"),
    }
    assert!(matches!(index.get(1), Err(StoreError::IndexFailed { .. })));
    assert!(matches!(index.flush(), Err(StoreError::IndexFailed { .. })));
    assert!(matches!(index.insert_batch(&[(3, 3)], 5000), Err(StoreError::IndexFailed { .. })));
    assert!(matches!(index.shutdown(), Err(StoreError::IndexFailed { .. })));

    fs.set_fault(Fault::None);
    let (index, covered_through) = open(&fs, tiny_options());
    assert_eq!(covered_through, 1, "only the flush that succeeded counts");
    assert_eq!(index.get(2).unwrap(), Some(2));
}
