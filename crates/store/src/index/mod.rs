//! The id index: a persistent map from u128 keys (transfer ids, wallet keys) to u64 positions in
//! a source log the caller owns. Before the ledger applies an entry, its prefetch step asks the
//! index whether each id already exists; ids stay unique forever, so the index keeps every key
//! ever inserted, on disk, with a small memory footprint.
//!
//! It owns: the memtables (recent inserts in a hash map), the run files (sorted, checksummed
//! blocks with fence keys and a bloom filter), the manifest naming the live runs, and the
//! background work that flushes memtables and merges runs, done by a pool of threads shared by
//! every index in the process (`background`, `workers`). Format and recovery rules:
//! docs/storage-format.md ("Id index").
//!
//! Why our own code: fjall 3.1, measured on this machine, took ~3.4 µs per negative lookup and
//! ~2 µs per insert; the target is ~400k transfers/s on 2 cores. Our access pattern is narrow
//! (write-once fixed-size keys, no deletes, no scans, mostly negative lookups in batches, a single
//! writer), so a specialised LSM does a negative lookup as one hash probe plus one bloom probe
//! per run, and an insert as one hash-map insert.
//!
//! It must not know: what the keys and values mean (ids, log positions), the ledger, Raft,
//! tokio, HTTP or JSON. It never reads the source log: recovery is the caller's re-insert from
//! the `covered_through` position that `open` returns.

mod background;
mod bloom;
mod manifest;
mod memtable;
mod policy;
mod run;
#[cfg(test)]
mod tests;
mod workers;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use self::manifest::{Manifest, RunRecord};
use self::memtable::{capacity_for_bytes, Memtable};
use self::run::{parse_run_file_name, Run};
use self::workers::{Pool, SlotId};
use crate::fs::FileSystem;
use crate::StoreError;

pub use self::workers::IndexWorkers;

/// `insert_batch` takes the write lock for at most this many keys at a time, so a concurrent
/// `get` waits for tens of microseconds, not for a whole batch.
const INSERT_CHUNK_ENTRIES: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexOptions {
    /// The memtable's hash table is allocated once at this size (two 32-byte slots per key:
    /// 64 MiB hold 1M keys) and never grows; when full it is frozen and a fresh (recycled) one
    /// takes over. Up to `frozen_memtables_max + 2` memtables exist at once (active, frozen, spare).
    pub memtable_bytes_max: usize,
    /// Frozen memtables waiting for their flush; one more freeze blocks `insert_batch` until a
    /// flush completes (backpressure: memory stays bounded).
    pub frozen_memtables_max: usize,
    /// Bloom filter bits per key in each run (10: ~1% false positives).
    pub bloom_bits_per_key: u32,
    /// Each level holds this many times the entries of the level above; level 1 holds this many
    /// memtables' worth.
    pub level_size_ratio: u32,
    /// Flushes wait while this many level-0 runs (not yet merged) exist: every run costs each
    /// negative lookup a bloom probe, so when merging falls behind, inserts slow down instead.
    pub level0_runs_max: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            memtable_bytes_max: 64 << 20,
            frozen_memtables_max: 2,
            bloom_bits_per_key: 10,
            level_size_ratio: 8,
            level0_runs_max: 4,
        }
    }
}

/// A snapshot of the index's size and activity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Keys in the active and frozen memtables.
    pub memtable_entries: u64,
    pub frozen_memtables: usize,
    pub runs: usize,
    /// Level of each run, newest first (0: flushed, not yet merged).
    pub run_levels: Vec<u8>,
    pub run_entries: u64,
    pub disk_bytes: u64,
    /// Memtable allocations (by capacity, including a recycled spare), fences and bloom filters.
    pub memory_bytes: u64,
    pub flushes: u64,
    pub merges: u64,
    /// Run bytes written by flushes and merges (divide by 24 × keys for write amplification).
    pub bytes_written: u64,
    /// Lookups that passed a run's bloom filter and read one of its blocks (hits and false
    /// positives).
    pub blocks_read: u64,
    /// Times `insert_batch` waited for a flush, and for how long in total.
    pub stalls: u64,
    pub stall_time: Duration,
    /// The position the manifest on disk covers: what `open` would return now.
    pub durable_covered_through: u64,
}

/// A persistent, write-once map from u128 keys to u64 values. `insert_batch` and `flush` come
/// from one thread (the apply thread); `get` and `get_many` from any number of threads, while
/// inserts, flushes and merges run. `IdIndex` is `Send + Sync`: share it in an `Arc`.
pub struct IdIndex {
    shared: Arc<Shared>,
    writer: Mutex<Writer>,
    /// This index in its pool's registry (see `stop_work`).
    slot: SlotId,
}

/// The inserting side's bookkeeping (behind a mutex only so that `&self` methods can write).
#[derive(Debug)]
struct Writer {
    covered_through: u64,
    /// `covered_through` of the newest frozen memtable, or of the manifest at open.
    frozen_covered_through: u64,
    /// Memtables frozen since open; `flush` waits until as many are flushed.
    frozen_count: u64,
}

/// State shared with the pool's threads.
#[derive(Debug)]
struct Shared {
    /// Woken by `signal`; the pool's registry holds this index until it stops.
    pool: Arc<Pool>,
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    options: IndexOptions,
    memtable_capacity: usize,
    tables: RwLock<Tables>,
    control: Mutex<Control>,
    /// Signalled on every change of `control` and on failure (see `signal`).
    changed: Condvar,
    /// The manifest as last saved, plus run ids handed out since. Held while a flush or merge
    /// installs its result, so run-list changes (and manifest writes) happen one at a time.
    manifest: Mutex<Manifest>,
    failure: OnceLock<String>,
    /// A flushed memtable's allocation, cleared, for the next freeze.
    spare: Mutex<Option<Memtable>>,
    counters: Counters,
}

#[derive(Debug)]
struct Tables {
    active: Memtable,
    version: Arc<Version>,
}

/// Everything but the active memtable, immutable: readers take an `Arc` and probe it without
/// holding any lock; flushes and merges replace it whole.
#[derive(Clone, Debug, Default)]
struct Version {
    /// Oldest first (flush order).
    frozen: Vec<Arc<Memtable>>,
    /// Newest first (lookup order).
    runs: Vec<LiveRun>,
}

#[derive(Clone, Debug)]
struct LiveRun {
    run: Arc<Run>,
    level: u8,
}

#[derive(Debug, Default)]
struct Control {
    frozen_pending: usize,
    flushed_count: u64,
    /// Bumped by every flush, every merge and `wait_for_merges`: a merge lane looks for work
    /// again when it changes.
    merge_generation: u64,
    /// The generation each merge lane last looked at, and how many lanes are merging now.
    lanes_seen: [u64; 2],
    lanes_busy: usize,
    /// Ids of the runs that are inputs of a running merge.
    reserved: Vec<u64>,
    /// The flush lane has given the index its first spare memtable (`background::prime_spare`).
    spare_primed: bool,
    stop: bool,
}

#[derive(Debug, Default)]
struct Counters {
    flushes: AtomicU64,
    merges: AtomicU64,
    bytes_written: AtomicU64,
    blocks_read: AtomicU64,
    stalls: AtomicU64,
    stall_ns: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in background work marks the index failed (`workers::work_on`), after which
    // nothing is written; what the locks guard stays readable for lookups and `stats`.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl IdIndex {
    /// Opens (creating if missing) the index in `dir` and returns it with `covered_through`:
    /// the source position through which every key is in the index (0 for a new index).
    ///
    /// **Recovery contract.** Memtables are not logged: whatever was inserted but not yet
    /// flushed when the process stopped is gone. The caller must re-insert every key from its
    /// source after `covered_through` (with the same values) before relying on lookups of them.
    /// Everything flushed survives. Keys after `covered_through` may also already be present
    /// (a partly flushed batch); re-inserting them is harmless.
    ///
    /// On open the manifest is read, run files it does not name (leftovers of a crashed flush or
    /// merge) and `*.tmp` files are deleted, and each named run's trailer and footer (fences,
    /// bloom filter) are verified and loaded: damage is `StoreError::Corrupt` naming file and
    /// offset. Blocks are verified when read.
    ///
    /// Flushes and merges run on the process-wide pool, [`IndexWorkers::global`].
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path, options: IndexOptions) -> Result<(IdIndex, u64), StoreError> {
        IdIndex::open_in(IndexWorkers::global(), fs, dir, options)
    }

    /// `open`, with flushes and merges on the threads of `workers`.
    pub fn open_in(
        workers: &IndexWorkers,
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        options: IndexOptions,
    ) -> Result<(IdIndex, u64), StoreError> {
        let memtable_capacity = capacity_for_bytes(options.memtable_bytes_max);
        assert!(memtable_capacity > 0, "memtable_bytes_max {} holds no entry", options.memtable_bytes_max);
        assert!(options.frozen_memtables_max > 0, "frozen_memtables_max must be positive");
        assert!((1..=64).contains(&options.bloom_bits_per_key), "bloom_bits_per_key must be 1..=64");
        assert!(options.level_size_ratio >= 2, "level_size_ratio must be at least 2");
        assert!(options.level0_runs_max > 0, "level0_runs_max must be positive");

        fs.create_dir_all(dir).map_err(StoreError::io("create directory", dir))?;
        // Make the manifest's current name durable before deleting what it no longer names: a
        // rename the crashed process left unsynced must not revert to a manifest naming runs
        // deleted here.
        fs.sync_dir(dir).map_err(StoreError::io("fsync directory", dir))?;
        let manifest = Manifest::load(fs.as_ref(), dir)?.unwrap_or_default();
        remove_leftovers(fs.as_ref(), dir, &manifest)?;
        let runs = open_runs(&fs, dir, &manifest)?;
        let covered_through = manifest.covered_through;
        let shared = Arc::new(Shared {
            pool: Arc::clone(workers.pool()),
            fs,
            dir: dir.to_path_buf(),
            memtable_capacity,
            tables: RwLock::new(Tables {
                active: Memtable::with_capacity(memtable_capacity, covered_through),
                version: Arc::new(Version { frozen: Vec::new(), runs }),
            }),
            control: Mutex::new(Control::default()),
            changed: Condvar::new(),
            manifest: Mutex::new(manifest),
            failure: OnceLock::new(),
            spare: Mutex::new(None),
            counters: Counters::default(),
            options,
        });
        let writer = Writer { covered_through, frozen_covered_through: covered_through, frozen_count: 0 };
        let slot = shared.pool.register(&shared)?;
        let index = IdIndex { shared, writer: Mutex::new(writer), slot };
        // The runs found on disk may want merging.
        lock(&index.shared.control).merge_generation += 1;
        index.shared.signal();
        Ok((index, covered_through))
    }

    /// Inserts `entries` (newest wins for a key already present) and records that every key up
    /// to source position `covered_through` is now inserted. `covered_through` never goes back.
    /// Blocks while `frozen_memtables_max` memtables already wait for their flush.
    pub fn insert_batch(&self, entries: &[(u128, u64)], covered_through: u64) -> Result<(), StoreError> {
        self.shared.check()?;
        let mut writer = lock(&self.writer);
        assert!(
            covered_through >= writer.covered_through,
            "covered_through went back from {} to {covered_through}",
            writer.covered_through
        );
        let mut rest = entries;
        loop {
            let mut tables = write(&self.shared.tables);
            let take = tables.active.room().min(rest.len()).min(INSERT_CHUNK_ENTRIES);
            tables.active.insert(&rest[..take]);
            rest = &rest[take..];
            if rest.is_empty() {
                tables.active.covered_through = covered_through;
                break;
            }
            if tables.active.room() == 0 {
                drop(tables);
                self.freeze(&mut writer)?;
            }
        }
        writer.covered_through = covered_through;
        Ok(())
    }

    /// The value of `key`, or `None` if it was never inserted.
    pub fn get(&self, key: u128) -> Result<Option<u64>, StoreError> {
        self.shared.check()?;
        let version = {
            let tables = read(&self.shared.tables);
            // Start every table's cache miss before waiting for the first: they overlap.
            let mut touched = tables.active.touch_key(key);
            touched ^= tables.version.frozen.iter().fold(0, |touched, memtable| touched ^ memtable.touch_key(key));
            let runs = tables.version.runs.iter().fold(0, |touched, live| touched ^ live.run.touch(key));
            std::hint::black_box((touched, runs));
            if let Some(value) = tables.active.get(key) {
                return Ok(Some(value));
            }
            Arc::clone(&tables.version)
        };
        if let Some(value) = version.frozen.iter().rev().find_map(|memtable| memtable.get(key)) {
            return Ok(Some(value));
        }
        for live in version.runs.iter().filter(|live| live.run.may_contain(key)) {
            self.shared.counters.blocks_read.fetch_add(1, Ordering::Relaxed);
            if let Some(value) = live.run.search(key)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    /// `get` for many keys: `out[i]` is the value of `keys[i]`. Faster per key than `get`: each
    /// table is probed for the whole batch in one pass, so the CPU overlaps the cache misses.
    pub fn get_many(&self, keys: &[u128], out: &mut Vec<Option<u64>>) -> Result<(), StoreError> {
        self.shared.check()?;
        out.clear();
        out.resize(keys.len(), None);
        let version = {
            let tables = read(&self.shared.tables);
            tables.active.get_missing(keys, out);
            Arc::clone(&tables.version)
        };
        for memtable in version.frozen.iter().rev() {
            memtable.get_missing(keys, out);
        }
        if version.runs.is_empty() {
            return Ok(());
        }
        let mut pending: Vec<u32> = (0..keys.len() as u32).filter(|&i| out[i as usize].is_none()).collect();
        let (mut maybe, mut hashes) = (Vec::with_capacity(pending.len()), Vec::with_capacity(pending.len()));
        for live in &version.runs {
            // Every bloom probe first, batched so the CPU overlaps their cache misses; then the
            // few positives read a block each.
            live.run.may_contain_many(keys, &pending, &mut maybe, &mut hashes);
            let reads = maybe.iter().filter(|&&maybe| maybe).count() as u64;
            self.shared.counters.blocks_read.fetch_add(reads, Ordering::Relaxed);
            let mut kept = 0;
            for position in 0..pending.len() {
                let i = pending[position] as usize;
                let found = if maybe[position] { live.run.search(keys[i])? } else { None };
                match found {
                    Some(value) => out[i] = Some(value),
                    None => {
                        pending[kept] = i as u32;
                        kept += 1;
                    }
                }
            }
            pending.truncate(kept);
            if pending.is_empty() {
                break;
            }
        }
        Ok(())
    }

    /// Freezes the active memtable (without waiting for its flush) when what is durable lags
    /// `covered_through` by at least `gap`, so a restart never re-inserts more than about `gap`
    /// plus a memtable's worth of keys (an index whose memtable rarely fills, e.g. one that
    /// sees few keys, would otherwise keep its durable `covered_through` far behind). Never
    /// blocks: when flushes are already backed up it does nothing. True when it froze.
    pub fn freeze_if_behind(&self, gap: u64) -> Result<bool, StoreError> {
        self.shared.check()?;
        let mut writer = lock(&self.writer);
        if writer.covered_through.saturating_sub(writer.frozen_covered_through) < gap {
            return Ok(false);
        }
        if lock(&self.shared.control).frozen_pending >= self.shared.options.frozen_memtables_max {
            return Ok(false);
        }
        self.freeze(&mut writer)?;
        Ok(true)
    }

    /// Freezes the active memtable and waits until it and every older one are flushed and the
    /// manifest records their `covered_through` (clean shutdown; tests). Does not wait for merges.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.shared.check()?;
        let mut writer = lock(&self.writer);
        let (empty, covered_through) = {
            let tables = read(&self.shared.tables);
            (tables.active.is_empty(), tables.active.covered_through)
        };
        if !empty || covered_through > writer.frozen_covered_through {
            self.freeze(&mut writer)?;
        }
        let target = writer.frozen_count;
        let mut control = lock(&self.shared.control);
        while control.flushed_count < target && self.shared.failure.get().is_none() && !control.stop {
            control = self.shared.changed.wait(control).unwrap_or_else(PoisonError::into_inner);
        }
        let unflushed = control.flushed_count < target;
        drop(control);
        self.shared.check()?;
        if unflushed {
            return Err(StoreError::IndexStopped);
        }
        Ok(())
    }

    /// Waits until both merge lanes have looked at the latest run list and found nothing to do
    /// (tests, benchmarks).
    pub fn wait_for_merges(&self) -> Result<(), StoreError> {
        self.shared.check()?;
        let mut control = lock(&self.shared.control);
        control.merge_generation += 1;
        self.shared.signal();
        let settled = |control: &Control| {
            control.lanes_busy == 0 && control.lanes_seen.iter().all(|&seen| seen == control.merge_generation)
        };
        while !settled(&control) && self.shared.failure.get().is_none() && !control.stop {
            control = self.shared.changed.wait(control).unwrap_or_else(PoisonError::into_inner);
        }
        drop(control);
        self.shared.check()
    }

    /// Stops the background work on this index (an unfinished merge is abandoned; a flush in
    /// progress completes; the pool goes on serving other indexes) and reports a background
    /// failure if there was one. Does not flush: call `flush` first for a clean shutdown.
    /// Dropping the index does the same, silently.
    pub fn shutdown(self) -> Result<(), StoreError> {
        self.stop_work();
        self.shared.check()
    }

    /// Stops the background work through a shared reference (a node shutting down while
    /// readers still hold the index); later flushes and merges do not happen.
    pub fn stop_background(&self) {
        self.stop_work();
    }

    /// Memtables, fences and bloom filters, in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.stats().memory_bytes
    }

    pub fn stats(&self) -> IndexStats {
        let (active_entries, active_bytes, version) = {
            let tables = read(&self.shared.tables);
            (tables.active.len(), tables.active.bytes(), Arc::clone(&tables.version))
        };
        let spare_bytes = lock(&self.shared.spare).as_ref().map_or(0, Memtable::bytes);
        let frozen_bytes: usize = version.frozen.iter().map(|memtable| memtable.bytes()).sum();
        let run_bytes: usize = version.runs.iter().map(|live| live.run.memory_bytes()).sum();
        let counters = &self.shared.counters;
        IndexStats {
            memtable_entries: (active_entries + version.frozen.iter().map(|m| m.len()).sum::<usize>()) as u64,
            frozen_memtables: version.frozen.len(),
            runs: version.runs.len(),
            run_levels: version.runs.iter().map(|live| live.level).collect(),
            run_entries: version.runs.iter().map(|live| live.run.entries()).sum(),
            disk_bytes: version.runs.iter().map(|live| live.run.file_bytes()).sum(),
            memory_bytes: (active_bytes + spare_bytes + frozen_bytes + run_bytes) as u64,
            flushes: counters.flushes.load(Ordering::Relaxed),
            merges: counters.merges.load(Ordering::Relaxed),
            bytes_written: counters.bytes_written.load(Ordering::Relaxed),
            blocks_read: counters.blocks_read.load(Ordering::Relaxed),
            stalls: counters.stalls.load(Ordering::Relaxed),
            stall_time: Duration::from_nanos(counters.stall_ns.load(Ordering::Relaxed)),
            durable_covered_through: lock(&self.shared.manifest).covered_through,
        }
    }

    /// Moves the full active memtable to the frozen list (where lookups still see it) and wakes
    /// the flusher; first waits while `frozen_memtables_max` memtables are already waiting.
    fn freeze(&self, writer: &mut Writer) -> Result<(), StoreError> {
        self.wait_for_frozen_slot()?;
        let spare = lock(&self.shared.spare).take();
        let mut fresh = spare.unwrap_or_else(|| Memtable::with_capacity(self.shared.memtable_capacity, 0));
        {
            let mut tables = write(&self.shared.tables);
            fresh.covered_through = tables.active.covered_through;
            let frozen = std::mem::replace(&mut tables.active, fresh);
            writer.frozen_covered_through = frozen.covered_through;
            let mut version = Version::clone(&tables.version);
            version.frozen.push(Arc::new(frozen));
            assert!(version.frozen.len() <= self.shared.options.frozen_memtables_max);
            tables.version = Arc::new(version);
        }
        writer.frozen_count += 1;
        lock(&self.shared.control).frozen_pending += 1;
        self.shared.signal();
        Ok(())
    }

    fn wait_for_frozen_slot(&self) -> Result<(), StoreError> {
        let max = self.shared.options.frozen_memtables_max;
        let mut control = lock(&self.shared.control);
        if control.frozen_pending < max {
            return Ok(());
        }
        let started = Instant::now();
        self.shared.counters.stalls.fetch_add(1, Ordering::Relaxed);
        // Regression: a node stopping while its state machine waited here hung for good (no
        // flush frees a slot once the background work stops, and its shutdown joined this).
        while control.frozen_pending >= max && self.shared.failure.get().is_none() && !control.stop {
            control = self.shared.changed.wait(control).unwrap_or_else(PoisonError::into_inner);
        }
        let full = control.frozen_pending >= max;
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.shared.counters.stall_ns.fetch_add(waited, Ordering::Relaxed);
        drop(control);
        self.shared.check()?;
        if full {
            return Err(StoreError::IndexStopped);
        }
        Ok(())
    }

    /// Once this returns no pool thread touches the index any more (and none holds its files).
    /// Idempotent: `stop_background`, then `shutdown` or drop.
    fn stop_work(&self) {
        lock(&self.shared.control).stop = true;
        self.shared.changed.notify_all();
        self.shared.pool.deregister(self.slot);
    }
}

impl Drop for IdIndex {
    fn drop(&mut self) {
        self.stop_work();
    }
}

impl std::fmt::Debug for IdIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdIndex").field("dir", &self.shared.dir).finish_non_exhaustive()
    }
}

impl Shared {
    /// `Err` once a background flush or merge has failed: from then on nothing is written, and
    /// the caller should reopen (recover from disk).
    fn check(&self) -> Result<(), StoreError> {
        match self.failure.get() {
            None => Ok(()),
            Some(reason) => Err(StoreError::IndexFailed { reason: reason.clone() }),
        }
    }

    fn fail(&self, error: &dyn std::fmt::Display) {
        let _ = self.failure.set(error.to_string());
        let _guard = lock(&self.control);
        self.changed.notify_all();
    }

    /// Tells whoever waits for this index, and the pool's lanes, that `control` changed in a way
    /// that may make background work.
    fn signal(&self) {
        self.changed.notify_all();
        self.pool.wake();
    }

    fn version(&self) -> Arc<Version> {
        Arc::clone(&read(&self.tables).version)
    }
}

/// Deletes `*.tmp` files and run files the manifest does not name.
fn remove_leftovers(fs: &dyn FileSystem, dir: &Path, manifest: &Manifest) -> Result<(), StoreError> {
    let names = fs.list_files(dir).map_err(StoreError::io("list", dir))?;
    for name in names {
        let live = parse_run_file_name(&name).is_some_and(|id| manifest.runs.iter().any(|run| run.id == id));
        let leftover_run = parse_run_file_name(&name).is_some() && !live;
        if name.ends_with(".tmp") || leftover_run {
            let path = dir.join(&name);
            fs.remove_file(&path).map_err(StoreError::io("remove", &path))?;
        }
    }
    Ok(())
}

/// Opens every run the manifest names and checks it against its manifest record.
fn open_runs(fs: &Arc<dyn FileSystem>, dir: &Path, manifest: &Manifest) -> Result<Vec<LiveRun>, StoreError> {
    let mut runs = Vec::with_capacity(manifest.runs.len());
    for record in &manifest.runs {
        let run = Run::open(fs, dir, record.id)?;
        let RunRecord { entries, file_bytes, .. } = *record;
        if run.entries() != entries || run.file_bytes() != file_bytes {
            let reason = format!(
                "run holds {} entries in {} bytes, the manifest says {entries} in {file_bytes}",
                run.entries(),
                run.file_bytes()
            );
            return Err(StoreError::corrupt(run.path(), 0, None, reason));
        }
        if run.covered_through() > manifest.covered_through {
            let reason = format!(
                "run covers source position {}, beyond the manifest's {}",
                run.covered_through(),
                manifest.covered_through
            );
            return Err(StoreError::corrupt(run.path(), 0, None, reason));
        }
        runs.push(LiveRun { run: Arc::new(run), level: record.level });
    }
    Ok(runs)
}
