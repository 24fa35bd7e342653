//! The shared pool of background threads: many indexes on three threads, each index served as
//! if it had its own, and one index's stop, failure or panic leaving the others served.
//! (The index's own contract is checked in `tests/index.rs`.)

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use super::*;
use crate::fs::StorageFile;
use crate::sim_fs::{Fault, SimFileSystem};

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

/// A bound on waits that only a hung test would reach.
const HUNG_TEST_S: u64 = 30;

fn dir(i: usize) -> PathBuf {
    PathBuf::from(format!("/node/index-{i}"))
}

fn open_in(workers: &IndexWorkers, fs: Arc<dyn FileSystem>, i: usize) -> IdIndex {
    let (index, covered_through) = IdIndex::open_in(workers, fs, &dir(i), tiny_options()).expect("index opens");
    assert_eq!(covered_through, 0);
    index
}

/// Key `n` of index `i`, so that indexes sharing a pool never hold each other's keys.
fn key(i: usize, n: u64) -> u128 {
    (u128::from(i as u64) << 64) | u128::from(n)
}

/// Inserts `batches` batches of 7 keys (a memtable each) from key `7 × first_batch` on.
fn fill(index: &IdIndex, i: usize, first_batch: u64, batches: u64) {
    for batch in first_batch..first_batch + batches {
        let entries: Vec<(u128, u64)> = (batch * 7..(batch + 1) * 7).map(|n| (key(i, n), n)).collect();
        index.insert_batch(&entries, batch + 1).unwrap();
    }
}

fn assert_holds(index: &IdIndex, i: usize, batches: u64) {
    let keys: Vec<u128> = (0..batches * 7).map(|n| key(i, n)).collect();
    let mut found = Vec::new();
    index.get_many(&keys, &mut found).unwrap();
    for (n, found) in found.into_iter().enumerate() {
        assert_eq!(found, Some(n as u64), "index {i}, key {n}");
    }
    assert_eq!(index.get(key(i, batches * 7)).unwrap(), None);
}

/// Threads of this process whose name starts with `prefix` (the kernel keeps 15 bytes of it).
fn threads_named(prefix: &str) -> usize {
    let tasks = std::fs::read_dir("/proc/self/task").expect("Linux /proc");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// Waits out the moments when /proc lags: a new thread names itself once it runs, and a joined
/// thread may linger after `join` returns.
fn wait_for_threads_named(prefix: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(HUNG_TEST_S);
    while threads_named(prefix) != count {
        assert!(Instant::now() < deadline, "{} threads named {prefix}, expected {count}", threads_named(prefix));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` on another thread and fails the test if it does not return in time (a starved or
/// deadlocked index hangs rather than fails).
fn within_time_limit<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || sender.send(f()));
    receiver.recv_timeout(Duration::from_secs(HUNG_TEST_S)).unwrap_or_else(|_| panic!("{what} hung"))
}

#[test]
fn many_indexes_share_three_background_threads() {
    const INDEXES: usize = 20;
    // 30 memtables each: flushes, level-0 merges and deep merges in every index.
    const BATCHES: u64 = 30;
    let workers = IndexWorkers::named("ixmany");
    let fs: Arc<dyn FileSystem> = Arc::new(SimFileSystem::new());
    let indexes: Vec<IdIndex> = (0..INDEXES).map(|i| open_in(&workers, Arc::clone(&fs), i)).collect();
    assert_eq!((workers.indexes(), workers.threads()), (INDEXES, 3));
    // A thread names itself as it starts: it may not have yet.
    wait_for_threads_named("ixmany-", 3);
    // Interleaved, so that every index has flushes and merges pending at once.
    for round in 0..BATCHES {
        for (i, index) in indexes.iter().enumerate() {
            fill(index, i, round, 1);
        }
    }
    for (i, index) in indexes.iter().enumerate() {
        index.flush().unwrap();
        index.wait_for_merges().unwrap();
        assert_holds(index, i, BATCHES);
        let stats = index.stats();
        assert_eq!(stats.flushes, BATCHES, "index {i}: {stats:?}");
        assert!(stats.merges > 0 && stats.run_levels.iter().any(|&level| level >= 2), "index {i}: {stats:?}");
    }
    assert_eq!(threads_named("ixmany-"), 3);
    drop(indexes);
    assert_eq!((workers.indexes(), workers.threads()), (0, 0));
    wait_for_threads_named("ixmany-", 0);
}

#[test]
fn dropping_the_last_index_lets_the_pool_threads_exit() {
    let workers = IndexWorkers::named("ixlast");
    let fs: Arc<dyn FileSystem> = Arc::new(SimFileSystem::new());
    assert_eq!(workers.threads(), 0, "no threads before the first index");
    let (first, second) = (open_in(&workers, Arc::clone(&fs), 0), open_in(&workers, Arc::clone(&fs), 1));
    assert_eq!(workers.threads(), 3);
    first.shutdown().unwrap();
    assert_eq!(workers.threads(), 3, "the other index is still served");
    drop(second);
    assert_eq!(workers.threads(), 0);
    wait_for_threads_named("ixlast-", 0);

    // A new index starts a new crew.
    let again = open_in(&workers, fs, 0);
    assert_eq!(workers.threads(), 3);
    fill(&again, 0, 0, 5);
    again.flush().unwrap();
    assert_holds(&again, 0, 5);
    drop(again);
    assert_eq!(workers.threads(), 0);
}

#[test]
fn stopping_one_index_leaves_the_others_served() {
    let workers = IndexWorkers::named("ixstop");
    let fs: Arc<dyn FileSystem> = Arc::new(SimFileSystem::new());
    let indexes: Vec<IdIndex> = (0..3).map(|i| open_in(&workers, Arc::clone(&fs), i)).collect();
    for (i, index) in indexes.iter().enumerate() {
        fill(index, i, 0, 4);
    }
    indexes[0].flush().unwrap();
    indexes[0].stop_background();
    assert_eq!(workers.indexes(), 2);
    assert_holds(&indexes[0], 0, 4);
    let stopped = indexes[0].stats();
    // Well past `frozen_memtables_max`: these inserts wait for flushes, so they finish only if
    // the pool still flushes the other two.
    for (i, index) in indexes.iter().enumerate().skip(1) {
        fill(index, i, 4, 20);
        index.flush().unwrap();
        index.wait_for_merges().unwrap();
        assert_holds(index, i, 24);
    }
    assert_eq!(indexes[0].stats(), stopped, "no worker touched the stopped index");
    for index in indexes {
        index.shutdown().unwrap();
    }
    assert_eq!(workers.threads(), 0);
}

/// Wraps a file system: creating a run file under `dir` waits for the gate (when `gated`) or
/// panics (when `explode`).
#[derive(Debug)]
struct TrapFs {
    inner: SimFileSystem,
    dir: PathBuf,
    explode: bool,
    gate_open: Mutex<bool>,
    gate: Condvar,
    /// A worker is waiting at the gate.
    waiting: AtomicBool,
}

impl TrapFs {
    fn new(inner: &SimFileSystem, dir: PathBuf, explode: bool) -> TrapFs {
        let (gate_open, gate, waiting) = (Mutex::new(explode), Condvar::new(), AtomicBool::new(false));
        TrapFs { inner: inner.clone(), dir, explode, gate_open, gate, waiting }
    }

    fn open_gate(&self) {
        *lock(&self.gate_open) = true;
        self.gate.notify_all();
    }
}

impl FileSystem for TrapFs {
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
        if path.starts_with(&self.dir) && path.extension().is_some_and(|extension| extension == "run") {
            assert!(!self.explode, "the disk driver exploded");
            let mut open = lock(&self.gate_open);
            self.waiting.store(true, Ordering::Release);
            while !*open {
                open = self.gate.wait(open).unwrap();
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
fn stopping_an_index_waits_until_no_worker_touches_it() {
    let workers = IndexWorkers::named("ixwait");
    let trap = Arc::new(TrapFs::new(&SimFileSystem::new(), dir(0), false));
    let index = Arc::new(open_in(&workers, trap.clone(), 0));
    // Two frozen memtables and a full active one; the first flush waits at the gate.
    fill(&index, 0, 0, 3);
    while !trap.waiting.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let stopped = Arc::new(AtomicBool::new(false));
    let stopper = {
        let (index, stopped) = (Arc::clone(&index), Arc::clone(&stopped));
        std::thread::spawn(move || {
            index.stop_background();
            stopped.store(true, Ordering::Release);
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(!stopped.load(Ordering::Acquire), "stop must wait for the flush in progress");
    assert_eq!(workers.indexes(), 1);
    trap.open_gate();
    stopper.join().unwrap();
    // The flush in progress completed; the second frozen memtable was not taken up.
    let stats = index.stats();
    assert_eq!((stats.flushes, stats.durable_covered_through, stats.frozen_memtables), (1, 1, 1), "{stats:?}");
    assert_eq!((workers.indexes(), workers.threads()), (0, 0));
}

/// Regression (CI run 41 hung on it): an insert that needed a frozen memtable's slot after the
/// index's background work stopped waited for good, and the node's shutdown joined it.
#[test]
fn an_insert_or_flush_after_the_background_stopped_is_refused_not_hung() {
    let workers = IndexWorkers::named("ixstop");
    let index = Arc::new(open_in(&workers, Arc::new(SimFileSystem::new()), 0));
    index.stop_background();
    let inserting = Arc::clone(&index);
    let inserted = within_time_limit("an insert past the frozen memtables", move || {
        (0..8u64).try_for_each(|batch| {
            let entries: Vec<(u128, u64)> = (batch * 7..(batch + 1) * 7).map(|n| (key(0, n), n)).collect();
            inserting.insert_batch(&entries, batch + 1)
        })
    });
    assert!(matches!(inserted, Err(StoreError::IndexStopped)), "{inserted:?}");
    let flushing = Arc::clone(&index);
    let flushed = within_time_limit("a flush", move || flushing.flush());
    assert!(matches!(flushed, Err(StoreError::IndexStopped)), "{flushed:?}");
    // What was inserted before the refusal is still found.
    assert_eq!(index.get(key(0, 0)).unwrap(), Some(0));
}

#[test]
fn a_failed_index_does_not_stop_the_pool_serving_others() {
    let workers = IndexWorkers::named("ixfail");
    let (failing_fs, healthy_fs) = (SimFileSystem::new(), SimFileSystem::new());
    let failing = open_in(&workers, Arc::new(failing_fs.clone()), 0);
    let healthy = open_in(&workers, Arc::new(healthy_fs), 1);
    failing_fs.set_fault(Fault::SyncFails);
    let mut failure = None;
    for batch in 0..1000 {
        if let Err(error) = failing.insert_batch(&[(key(0, batch), batch)], batch + 1) {
            failure = Some(error);
            break;
        }
    }
    assert!(matches!(failure, Some(StoreError::IndexFailed { reason }) if reason.contains("injected")));
    fill(&healthy, 1, 0, 30);
    healthy.flush().unwrap();
    healthy.wait_for_merges().unwrap();
    assert_holds(&healthy, 1, 30);
    assert!(healthy.stats().merges > 0);
    assert!(matches!(failing.shutdown(), Err(StoreError::IndexFailed { .. })));
    assert_eq!(workers.threads(), 3);
}

#[test]
fn a_panic_in_background_work_fails_only_its_index() {
    let workers = IndexWorkers::named("ixpanic");
    let sim = SimFileSystem::new();
    let exploding = open_in(&workers, Arc::new(TrapFs::new(&sim, dir(0), true)), 0);
    let healthy = open_in(&workers, Arc::new(sim), 1);
    fill(&exploding, 0, 0, 1);
    match exploding.flush() {
        Err(StoreError::IndexFailed { reason }) => {
            assert!(reason.contains("flush worker panicked") && reason.contains("exploded"), "{reason}");
        }
        other => panic!("expected IndexFailed, got {other:?}"),
    }
    // The flush lane survived the panic: it still serves the other index.
    assert_eq!(workers.threads(), 3);
    fill(&healthy, 1, 0, 30);
    healthy.flush().unwrap();
    healthy.wait_for_merges().unwrap();
    assert_holds(&healthy, 1, 30);
    drop(exploding);
    drop(healthy);
    assert_eq!(workers.threads(), 0);
}

#[test]
fn a_busy_index_does_not_starve_another_index_flush() {
    let workers = IndexWorkers::named("ixfair");
    let fs: Arc<dyn FileSystem> = Arc::new(SimFileSystem::new());
    let busy = Arc::new(open_in(&workers, Arc::clone(&fs), 0));
    let quiet = Arc::new(open_in(&workers, fs, 1));
    let done = Arc::new(AtomicBool::new(false));
    // Always a frozen memtable waiting: a lane that served this index until it had no work
    // left would never get to the other one.
    let inserter = {
        let (busy, done) = (Arc::clone(&busy), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut batch = 0;
            while !done.load(Ordering::Acquire) {
                fill(&busy, 0, batch, 1);
                batch += 1;
            }
            batch
        })
    };
    while busy.stats().flushes < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    for round in 0..5 {
        let quiet = Arc::clone(&quiet);
        within_time_limit("the quiet index's flush", move || {
            fill(&quiet, 1, round, 1);
            quiet.flush().unwrap();
        });
    }
    done.store(true, Ordering::Release);
    let batches = inserter.join().unwrap();
    busy.flush().unwrap();
    assert_holds(&busy, 0, batches);
    assert_holds(&quiet, 1, 5);
}
