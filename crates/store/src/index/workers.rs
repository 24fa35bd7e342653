//! The pool of background threads shared by id indexes: one thread per lane (flush, upper merge,
//! deep merge), each serving every index registered with the pool. Why a pool, and how a lane
//! picks its work: see `background`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::{Builder, JoinHandle};

use super::background::{self, Lane};
use super::{lock, Shared};
use crate::StoreError;

/// The threads that flush and merge id indexes: three (one per lane) however many indexes are
/// registered, and none while no index is. Cloning gives another handle to the same pool.
///
/// `IdIndex::open` uses [`IndexWorkers::global`]; `IdIndex::open_in` takes a pool, for callers
/// that want indexes on separate threads (another disk, tests).
#[derive(Clone, Debug)]
pub struct IndexWorkers {
    pool: Arc<Pool>,
}

impl IndexWorkers {
    pub fn new() -> IndexWorkers {
        IndexWorkers::named("id-index")
    }

    /// The process-wide pool, created on first use.
    pub fn global() -> &'static IndexWorkers {
        static GLOBAL: OnceLock<IndexWorkers> = OnceLock::new();
        GLOBAL.get_or_init(IndexWorkers::new)
    }

    /// A pool whose threads are named `{prefix}-flush`, `{prefix}-merge-up` and
    /// `{prefix}-merge-deep` (tests tell their pools apart by these names).
    pub(super) fn named(prefix: &'static str) -> IndexWorkers {
        let state = PoolState { slots: Vec::new(), next_slot: 0, epoch: 0, crew: 0, threads: Vec::new() };
        let pool = Pool {
            prefix,
            state: Mutex::new(state),
            work: Condvar::new(),
            idle: Condvar::new(),
            threads_alive: AtomicUsize::new(0),
        };
        IndexWorkers { pool: Arc::new(pool) }
    }

    /// Indexes registered now (opened and not yet stopped).
    pub fn indexes(&self) -> usize {
        lock(&self.pool.state).slots.len()
    }

    /// Threads of this pool alive now, a retiring crew's included: 0 or 3 at rest.
    pub fn threads(&self) -> usize {
        self.pool.threads_alive.load(Ordering::Acquire)
    }

    pub(super) fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }
}

impl Default for IndexWorkers {
    fn default() -> Self {
        IndexWorkers::new()
    }
}

/// Which registered index a lane may work on: an index's handle on the pool.
pub(super) type SlotId = u64;

pub(super) struct Pool {
    prefix: &'static str,
    state: Mutex<PoolState>,
    /// Signalled by `wake` (an index changed, or one registered) and when a crew retires.
    work: Condvar,
    /// Signalled whenever a lane lets go of an index (`deregister` waits for it).
    idle: Condvar,
    threads_alive: AtomicUsize,
}

/// Lock order: the pool's lock is innermost. Nothing takes an index's lock while holding it,
/// so an index may `wake` the pool while holding its own locks.
struct PoolState {
    /// At most one per index, in registration order.
    slots: Vec<Slot>,
    next_slot: SlotId,
    /// Bumped by every `wake`: a lane that found no work in a pass sleeps until it changes.
    epoch: u64,
    /// Bumped when the last index leaves: the threads of an older crew exit.
    crew: u64,
    /// The current crew's threads; empty exactly when `slots` is (outside register/deregister).
    threads: Vec<JoinHandle<()>>,
}

struct Slot {
    id: SlotId,
    shared: Arc<Shared>,
    /// Which lanes are working on this index now (at most one thread per lane and index).
    busy: [bool; 3],
    /// Deregistering: no lane takes it up again.
    leaving: bool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the slots (each index's `Shared` refers back to this pool), and no lock: a
        // `Shared` may be formatted anywhere.
        let threads = self.threads_alive.load(Ordering::Relaxed);
        f.debug_struct("Pool").field("prefix", &self.prefix).field("threads", &threads).finish_non_exhaustive()
    }
}

impl Pool {
    /// Adds an index for the lanes to serve, starting the threads if it is the only one.
    pub(super) fn register(self: &Arc<Self>, shared: &Arc<Shared>) -> Result<SlotId, StoreError> {
        let mut state = lock(&self.state);
        if state.threads.is_empty() {
            assert!(state.slots.is_empty(), "a registered index has threads serving it");
            if let Err(error) = self.spawn_crew(&mut state) {
                let threads = self.retire_crew(&mut state);
                drop(state);
                join_all(threads);
                return Err(StoreError::io("spawn thread for", &shared.dir)(error));
            }
        }
        let id = state.next_slot;
        state.next_slot += 1;
        state.slots.push(Slot { id, shared: Arc::clone(shared), busy: [false; 3], leaving: false });
        state.epoch += 1;
        drop(state);
        self.work.notify_all();
        Ok(id)
    }

    /// Waits until no lane works on the index any more, then forgets it; the last index to leave
    /// stops the threads (and waits for them). Does nothing for an index already gone.
    pub(super) fn deregister(&self, id: SlotId) {
        let mut state = lock(&self.state);
        let Some(position) = state.slots.iter().position(|slot| slot.id == id) else { return };
        state.slots[position].leaving = true;
        while state.slots.iter().any(|slot| slot.id == id && slot.busy.contains(&true)) {
            state = self.idle.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        let position = state.slots.iter().position(|slot| slot.id == id).expect("only deregister removes a slot");
        let slot = state.slots.remove(position);
        let threads = if state.slots.is_empty() { self.retire_crew(&mut state) } else { Vec::new() };
        drop(state);
        drop(slot);
        join_all(threads);
    }

    /// Tells idle lanes that an index changed (a freeze, a flush or merge installed, a request).
    pub(super) fn wake(&self) {
        lock(&self.state).epoch += 1;
        self.work.notify_all();
    }

    fn spawn_crew(self: &Arc<Self>, state: &mut PoolState) -> std::io::Result<()> {
        for lane in Lane::ALL {
            let (pool, crew) = (Arc::clone(self), state.crew);
            // Counted before the thread runs, so `threads` never misses one that is starting.
            self.threads_alive.fetch_add(1, Ordering::AcqRel);
            let spawned = Builder::new()
                .name(format!("{}-{}", self.prefix, lane.name()))
                .spawn(move || serve_lane(&pool, lane, crew));
            match spawned {
                Ok(thread) => state.threads.push(thread),
                Err(error) => {
                    self.threads_alive.fetch_sub(1, Ordering::AcqRel);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Makes the current crew's threads exit; the caller joins them once it dropped the lock.
    fn retire_crew(&self, state: &mut PoolState) -> Vec<JoinHandle<()>> {
        state.crew += 1;
        self.work.notify_all();
        std::mem::take(&mut state.threads)
    }

    /// The indexes to visit next, once something changed since the pass at `seen_epoch`;
    /// `None` when this thread's crew retired.
    fn next_pass(&self, crew: u64, seen_epoch: Option<u64>) -> Option<(u64, Vec<SlotId>)> {
        let mut state = lock(&self.state);
        while state.crew == crew && seen_epoch == Some(state.epoch) {
            state = self.work.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        if state.crew != crew {
            return None;
        }
        Some((state.epoch, state.slots.iter().map(|slot| slot.id).collect()))
    }

    /// The index for `lane` to work on, unless it left (or is leaving) meanwhile.
    fn claim(&self, id: SlotId, lane: Lane) -> Option<Arc<Shared>> {
        let mut state = lock(&self.state);
        let slot = state.slots.iter_mut().find(|slot| slot.id == id && !slot.leaving)?;
        assert!(!slot.busy[lane as usize], "one thread per lane, and it visits an index once per pass");
        slot.busy[lane as usize] = true;
        Some(Arc::clone(&slot.shared))
    }

    fn release(&self, id: SlotId, lane: Lane) {
        let mut state = lock(&self.state);
        let slot = state.slots.iter_mut().find(|slot| slot.id == id).expect("a busy slot is not removed");
        slot.busy[lane as usize] = false;
        drop(state);
        self.idle.notify_all();
    }
}

fn join_all(threads: Vec<JoinHandle<()>>) {
    for thread in threads {
        // A lane catches the panics of its work (see `work_on`); nothing else in it panics but
        // an assertion, and that one is already reported on stderr.
        let _ = thread.join();
    }
}

/// A lane's thread: passes over every registered index, one unit of work per index and pass (so
/// a busy index waits for the others' turn), sleeping when a whole pass found nothing to do.
fn serve_lane(pool: &Pool, lane: Lane, crew: u64) {
    struct Alive<'a>(&'a AtomicUsize);
    impl Drop for Alive<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _alive = Alive(&pool.threads_alive);
    let mut seen_epoch = None;
    while let Some((epoch, ids)) = pool.next_pass(crew, seen_epoch) {
        seen_epoch = Some(epoch);
        for id in ids {
            if let Some(shared) = pool.claim(id, lane) {
                work_on(&shared, lane);
                // Nothing of the index stays on this thread once `deregister` can return.
                drop(shared);
                pool.release(id, lane);
            }
        }
    }
}

/// One unit of `lane`'s work on one index. A failure, or a panic, fails that index only.
///
/// Catching the panic is sound because a unit touches no state but its index's (the pool's lock
/// is not held), and a failed index writes nothing more: its poisoned locks are only read, by
/// lookups and `stats`. Letting the panic end the thread instead would leave every other index
/// without that lane.
fn work_on(shared: &Shared, lane: Lane) {
    match catch_unwind(AssertUnwindSafe(|| background::work(shared, lane))) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => shared.fail(&error),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|message| message.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string payload".to_string());
            tracing::error!(dir = %shared.dir.display(), lane = lane.name(), %message, "id index worker panicked");
            shared.fail(&format!("the {} worker panicked on this index: {message}", lane.name()));
        }
    }
}
