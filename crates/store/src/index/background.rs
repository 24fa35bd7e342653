//! The background work of the id index: flushes and merges, and how the shared pool runs them.
//!
//! **Three lanes.** The flush lane writes frozen memtables out as level-0 runs; the upper and
//! deep merge lanes merge runs (see `policy`). A job writes a new run (fdatasync, then a
//! directory fsync so its name is durable), then, under the manifest lock, saves the manifest and
//! swaps the in-memory version. Readers keep whatever version they hold; only the thread doing
//! the I/O waits for the disk. Flushes have their own lane so that a long merge never holds up
//! the flush `insert_batch` may be waiting for; the deep lane is apart from the upper one so that
//! small merges do not wait behind a big one.
//!
//! **One pool for many indexes** (`workers::IndexWorkers`). A process hosts many indexes (three
//! per ledger history, many ledgers per node), so lanes are not per index: a pool has one thread
//! per lane, and each serves every index registered with it. Three threads for any number of
//! indexes, where each index used to have its own three (nine per history). An index registers
//! when it opens and deregisters when it stops; the threads exist only while one is registered.
//!
//! **How a lane finds work.** No queue: a lane passes over the registered indexes and asks each
//! (its `Control`) whether it has work for the lane: a frozen memtable that may be flushed, or a
//! run list the merge lane has not looked at since it changed. It does at most one unit per index
//! and pass (one flush, or one merge), so an index with a backlog waits for every other index's
//! turn and cannot starve their flushes. An index wakes the pool whenever it changes in a way
//! that may make work (a freeze, an installed flush or merge, `wait_for_merges`); a lane whose
//! whole pass found nothing sleeps until then. A unit never waits for its index to change: a
//! flush that would have to wait for level-0 room is not started (see `ready_frozen`), and the
//! merge that makes room wakes the lane again.
//!
//! **What sharing costs.** A unit holds its lane while it runs: a deep merge of a big index
//! delays the others' deep merges (meanwhile their level 1 grows past its target, so their upper
//! merges rewrite more), and a flush stuck on a slow disk delays the other indexes' flushes (on
//! the same disk they would wait for it anyway). Stopping stays prompt: a merge checks its
//! index's stop flag every `STOP_CHECK_ENTRIES` entries.
//!
//! **Failures stay with their index.** An I/O error or a panic in a unit fails that index only
//! (`Shared::fail`: it writes nothing more, its callers get `IndexFailed`); the lane catches the
//! panic and goes on serving the others (`workers::work_on` says why that is sound).
//!
//! **Stopping** an index sets its stop flag, waits until no lane is working on it, and
//! deregisters it; the last index to leave a pool stops the pool's threads and joins them.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::manifest::{Manifest, RunRecord};
use super::memtable::Memtable;
use super::policy::{levels_are_ordered, pick_deep, pick_upper, RunInfo};
use super::run::{Run, RunCursor, RunWriter};
use super::{lock, write, LiveRun, Shared, Version};
use crate::StoreError;

/// A merge checks for shutdown after writing this many entries (a power of two).
const STOP_CHECK_ENTRIES: u64 = 1 << 16;

/// A kind of background work, and a thread of the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lane {
    Flush = 0,
    Upper = 1,
    Deep = 2,
}

impl Lane {
    pub(super) const ALL: [Lane; 3] = [Lane::Flush, Lane::Upper, Lane::Deep];

    /// Its thread's name, after the pool's prefix.
    pub(super) fn name(self) -> &'static str {
        match self {
            Lane::Flush => "flush",
            Lane::Upper => "merge-up",
            Lane::Deep => "merge-deep",
        }
    }

    /// Where a merge lane keeps what it has seen, in `Control::lanes_seen`.
    fn merge_slot(self) -> usize {
        match self {
            Lane::Upper => 0,
            Lane::Deep => 1,
            Lane::Flush => unreachable!("the flush lane does not merge"),
        }
    }
}

/// One unit of `lane`'s work on this index, if it has any now (see the module doc); returns
/// at once when it has none.
pub(super) fn work(shared: &Shared, lane: Lane) -> Result<(), StoreError> {
    match lane {
        Lane::Flush => flush_once(shared),
        Lane::Upper | Lane::Deep => merge_once(shared, lane),
    }
}

fn flush_once(shared: &Shared) -> Result<(), StoreError> {
    prime_spare(shared);
    match ready_frozen(shared) {
        Some(memtable) => flush_memtable(shared, memtable),
        None => Ok(()),
    }
}

/// Once per index: the first freeze would otherwise allocate and initialise a whole memtable
/// (hundreds of MiB with a large budget) on the apply thread, a stall of a good part of a second.
fn prime_spare(shared: &Shared) {
    let mut control = lock(&shared.control);
    if control.spare_primed || control.stop {
        return;
    }
    control.spare_primed = true;
    drop(control);
    let mut spare = lock(&shared.spare);
    if spare.is_none() {
        *spare = Some(Memtable::with_capacity(shared.memtable_capacity, 0));
    }
}

/// The oldest frozen memtable, if there is one and it may be flushed now: not while
/// `level0_runs_max` level-0 runs wait for the upper merge lane. Then merging is behind, and the
/// memtable is better kept (frozen, readable) than turned into one more run every lookup must
/// probe. Only this lane adds level-0 runs, so the count cannot grow between here and the flush.
fn ready_frozen(shared: &Shared) -> Option<Arc<Memtable>> {
    let control = lock(&shared.control);
    if control.frozen_pending == 0 || control.stop || shared.failure.get().is_some() {
        return None;
    }
    let version = shared.version();
    let oldest = version.frozen.first().cloned();
    assert!(oldest.is_some(), "a pending flush has its frozen memtable in the version");
    let level0 = version.runs.iter().take_while(|live| live.level == 0).count();
    oldest.filter(|memtable| memtable.is_empty() || level0 < shared.options.level0_runs_max)
}

fn flush_memtable(shared: &Shared, memtable: Arc<Memtable>) -> Result<(), StoreError> {
    // An empty memtable still carries a newer covered_through for the manifest.
    let run = if memtable.is_empty() { None } else { Some(write_memtable(shared, &memtable)?) };
    install_flush(shared, &memtable, run)?;
    refill_spare(shared, memtable);
    Ok(())
}

/// Leaves a cleared memtable for the next freeze, so the apply thread neither allocates nor
/// takes the page faults of a fresh one: the flushed memtable itself unless a reader still
/// holds it.
fn refill_spare(shared: &Shared, flushed: Arc<Memtable>) {
    if lock(&shared.spare).is_some() {
        return;
    }
    let spare = match Arc::try_unwrap(flushed) {
        Ok(mut memtable) => {
            memtable.reset(0);
            memtable
        }
        Err(_) => Memtable::with_capacity(shared.memtable_capacity, 0),
    };
    *lock(&shared.spare) = Some(spare);
}

fn write_memtable(shared: &Shared, memtable: &Memtable) -> Result<Arc<Run>, StoreError> {
    let id = allocate_run_id(shared);
    let entries = memtable.sorted_entries();
    let bits = shared.options.bloom_bits_per_key;
    let mut writer = RunWriter::create(&shared.fs, &shared.dir, id, entries.len() as u64, bits)?;
    if let Err(error) = entries.iter().try_for_each(|&(key, value)| writer.push(key, value)) {
        writer.abandon();
        return Err(error);
    }
    let run = writer.finish(memtable.covered_through)?;
    sync_dir(shared)?;
    shared.counters.bytes_written.fetch_add(run.file_bytes(), Ordering::Relaxed);
    shared.counters.flushes.fetch_add(1, Ordering::Relaxed);
    Ok(Arc::new(run))
}

/// Manifest first, then the in-memory swap: the frozen memtable and its run are never both
/// missing from what a reader sees.
fn install_flush(shared: &Shared, memtable: &Arc<Memtable>, run: Option<Arc<Run>>) -> Result<(), StoreError> {
    let mut manifest = lock(&shared.manifest);
    let current = shared.version();
    let mut runs = current.runs.clone();
    if let Some(run) = run {
        runs.insert(0, LiveRun { run, level: 0 });
    }
    assert!(memtable.covered_through >= manifest.covered_through, "flushes go oldest first");
    save_manifest(shared, &mut manifest, memtable.covered_through, &runs)?;
    {
        let mut tables = write(&shared.tables);
        assert!(Arc::ptr_eq(&tables.version.frozen[0], memtable), "flushes go oldest first");
        assert!(same_runs(&tables.version.runs, &current.runs), "runs change only under the manifest lock");
        let frozen = tables.version.frozen[1..].to_vec();
        tables.version = Arc::new(Version { frozen, runs });
    }
    drop(manifest);
    // Hold no run past the signal: a merge may retire them, and `flush` returns on it.
    drop(current);
    let mut control = lock(&shared.control);
    control.frozen_pending -= 1;
    control.flushed_count += 1;
    control.merge_generation += 1;
    drop(control);
    shared.signal();
    Ok(())
}

/// Looks at the run list if it changed since this lane last did, and runs the merge this
/// lane's policy picks there, if any; the merge bumps `merge_generation`, so the lane looks again
/// on its next pass.
fn merge_once(shared: &Shared, lane: Lane) -> Result<(), StoreError> {
    if !claim_merge_look(shared, lane) {
        return Ok(());
    }
    let outcome = merge_next(shared, lane);
    lock(&shared.control).lanes_busy -= 1;
    // Only `wait_for_merges` waits for this; the pool has nothing new to do.
    shared.changed.notify_all();
    outcome
}

/// Whether something changed since this lane last looked (a flush, a merge, a request); if so,
/// records that it is looking now.
fn claim_merge_look(shared: &Shared, lane: Lane) -> bool {
    let mut control = lock(&shared.control);
    let slot = lane.merge_slot();
    if control.lanes_seen[slot] == control.merge_generation || control.stop || shared.failure.get().is_some() {
        return false;
    }
    control.lanes_seen[slot] = control.merge_generation;
    control.lanes_busy += 1;
    true
}

/// Runs this lane's next merge, if its policy finds one. Stopped by shutdown, it changes nothing.
fn merge_next(shared: &Shared, lane: Lane) -> Result<(), StoreError> {
    let Some((inputs, output_level)) = reserve_next_merge(shared, lane) else { return Ok(()) };
    let outcome = merge(shared, &inputs, output_level);
    let mut control = lock(&shared.control);
    control.reserved.retain(|id| !inputs.iter().any(|input| input.run.id == *id));
    // The other lane may have been waiting for these runs, the flush lane for level-0 room.
    control.merge_generation += 1;
    drop(control);
    shared.signal();
    drop(inputs);
    outcome.map(|_completed| ())
}

/// Picks this lane's next merge and reserves its inputs, so the other lane leaves them alone.
fn reserve_next_merge(shared: &Shared, lane: Lane) -> Option<(Vec<LiveRun>, u8)> {
    let mut control = lock(&shared.control);
    let version = shared.version();
    let runs: Vec<RunInfo> = version
        .runs
        .iter()
        .map(|live| RunInfo {
            level: live.level,
            entries: live.run.entries(),
            reserved: control.reserved.contains(&live.run.id),
        })
        .collect();
    let ratio = u64::from(shared.options.level_size_ratio);
    let plan = match lane {
        Lane::Upper => pick_upper(&runs)?,
        Lane::Deep => pick_deep(&runs, shared.memtable_capacity as u64 * ratio, ratio)?,
        Lane::Flush => unreachable!("the flush lane does not merge"),
    };
    let inputs = version.runs[plan.inputs].to_vec();
    control.reserved.extend(inputs.iter().map(|input| input.run.id));
    Some((inputs, plan.output_level))
}

/// Merges `inputs` (newest first, a contiguous stretch of the run list) into one run at
/// `output_level`. `Ok(false)`: stopped by shutdown, nothing changed.
fn merge(shared: &Shared, inputs: &[LiveRun], output_level: u8) -> Result<bool, StoreError> {
    if let [single] = inputs {
        // Nothing to merge with: move the run down by relabelling it.
        let moved = LiveRun { run: Arc::clone(&single.run), level: output_level };
        install_merge(shared, inputs, moved)?;
        return Ok(true);
    }
    let id = allocate_run_id(shared);
    let keys_max = inputs.iter().map(|live| live.run.entries()).sum();
    let covered_through = inputs.iter().map(|live| live.run.covered_through()).max().expect("inputs");
    let bits = shared.options.bloom_bits_per_key;
    let mut writer = RunWriter::create(&shared.fs, &shared.dir, id, keys_max, bits)?;
    match merge_entries(shared, inputs, &mut writer) {
        Ok(true) => {}
        outcome => {
            writer.abandon();
            return outcome;
        }
    }
    let run = writer.finish(covered_through)?;
    sync_dir(shared)?;
    shared.counters.bytes_written.fetch_add(run.file_bytes(), Ordering::Relaxed);
    install_merge(shared, inputs, LiveRun { run: Arc::new(run), level: output_level })?;
    shared.counters.merges.fetch_add(1, Ordering::Relaxed);
    Ok(true)
}

/// A k-way merge of the inputs' entries into `writer`; on equal keys the newest input's value
/// wins. `Ok(false)` when shutdown interrupted it.
fn merge_entries(shared: &Shared, inputs: &[LiveRun], writer: &mut RunWriter) -> Result<bool, StoreError> {
    let mut cursors = inputs.iter().map(|live| RunCursor::new(&live.run)).collect::<Result<Vec<_>, _>>()?;
    loop {
        let mut smallest: Option<(u128, u64)> = None;
        for cursor in &cursors {
            if let Some((key, value)) = cursor.peek() {
                // Strictly less: on a tie the earlier (newer) input keeps its place.
                if smallest.is_none_or(|(smallest_key, _)| key < smallest_key) {
                    smallest = Some((key, value));
                }
            }
        }
        let Some((key, value)) = smallest else { return Ok(true) };
        for cursor in &mut cursors {
            if cursor.peek().is_some_and(|(cursor_key, _)| cursor_key == key) {
                cursor.advance()?;
            }
        }
        writer.push(key, value)?;
        if writer.entries() & (STOP_CHECK_ENTRIES - 1) == 0 && lock(&shared.control).stop {
            return Ok(false);
        }
    }
}

/// Replaces the inputs in the run list with `output`; runs flushed since the merge started
/// stay in front of it. Input files are deleted when their last reader lets go.
fn install_merge(shared: &Shared, inputs: &[LiveRun], output: LiveRun) -> Result<(), StoreError> {
    let mut manifest = lock(&shared.manifest);
    let current = shared.version();
    let start = current.runs.iter().position(|live| Arc::ptr_eq(&live.run, &inputs[0].run));
    let start = start.expect("merge inputs stay live until the merge installs");
    assert!(same_runs(&current.runs[start..(start + inputs.len()).min(current.runs.len())], inputs));
    assert!(current.runs[..start].iter().all(|live| live.level == 0), "only flushes add runs, in front");
    let mut runs = current.runs[..start].to_vec();
    runs.push(output.clone());
    runs.extend_from_slice(&current.runs[start + inputs.len()..]);
    assert!(levels_are_ordered(runs.iter().map(|live| live.level)));
    let covered_through = manifest.covered_through;
    save_manifest(shared, &mut manifest, covered_through, &runs)?;
    {
        let mut tables = write(&shared.tables);
        assert!(same_runs(&tables.version.runs, &current.runs), "runs change only under the manifest lock");
        let frozen = tables.version.frozen.clone();
        tables.version = Arc::new(Version { frozen, runs });
    }
    drop(manifest);
    for input in inputs.iter().filter(|input| !Arc::ptr_eq(&input.run, &output.run)) {
        input.run.mark_obsolete();
    }
    Ok(())
}

fn same_runs(a: &[LiveRun], b: &[LiveRun]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| Arc::ptr_eq(&a.run, &b.run) && a.level == b.level)
}

fn save_manifest(
    shared: &Shared,
    manifest: &mut Manifest,
    covered_through: u64,
    runs: &[LiveRun],
) -> Result<(), StoreError> {
    let next =
        Manifest { covered_through, next_run_id: manifest.next_run_id, runs: runs.iter().map(run_record).collect() };
    next.save(shared.fs.as_ref(), &shared.dir)?;
    *manifest = next;
    Ok(())
}

/// Ids are never reused: the manifest saves the next one.
fn allocate_run_id(shared: &Shared) -> u64 {
    let mut manifest = lock(&shared.manifest);
    let id = manifest.next_run_id;
    manifest.next_run_id += 1;
    id
}

fn sync_dir(shared: &Shared) -> Result<(), StoreError> {
    shared.fs.sync_dir(&shared.dir).map_err(StoreError::io("fsync directory", &shared.dir))
}

fn run_record(live: &LiveRun) -> RunRecord {
    RunRecord { id: live.run.id, level: live.level, entries: live.run.entries(), file_bytes: live.run.file_bytes() }
}
