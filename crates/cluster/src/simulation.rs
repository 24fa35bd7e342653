//! What a deterministic simulation changes, for the thread it runs on: election timeouts from
//! a seeded stream, the wall clock from simulated time, and blocking calls run in place (a
//! thread pool would finish them in real time, in an order no seed decides). Every node of a
//! simulation runs on that one thread, on `Execution::Inline` hosts over simulated networks
//! and file systems. A real node never calls `enter`.

use std::cell::Cell;

thread_local! {
    static INLINE_BLOCKING: Cell<bool> = const { Cell::new(false) };
}

/// Turns this thread into a simulation's: seeded election timeouts, `wall_clock_ns` as the
/// wall clock (ns since the Unix epoch), blocking calls in place.
pub fn enter(seed: u64, wall_clock_ns: fn() -> u64) {
    crate::raft_runtime::seed_election_timeouts(Some(seed));
    crate::wall_clock::simulate_wall_clock(Some(wall_clock_ns));
    INLINE_BLOCKING.with(|inline| inline.set(true));
}

/// Back to the operating system's randomness, clock and thread pool.
pub fn leave() {
    crate::raft_runtime::seed_election_timeouts(None);
    crate::wall_clock::simulate_wall_clock(None);
    INLINE_BLOCKING.with(|inline| inline.set(false));
}

/// Runs a blocking call on tokio's blocking pool, or in place under a simulation.
pub(crate) async fn blocking<T, F>(call: F) -> Result<T, String>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if INLINE_BLOCKING.with(Cell::get) {
        return Ok(call());
    }
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| e.to_string())
}
