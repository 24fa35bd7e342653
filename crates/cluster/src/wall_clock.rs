//! The wall clock the node stamps entries with and reports to its peers. A deterministic
//! simulation replaces it, for the thread it runs on, with its own simulated time
//! (`simulate_wall_clock`); a real node reads the system clock.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static SIMULATED: Cell<Option<fn() -> u64>> = const { Cell::new(None) };
}

/// Makes every wall-clock read on this thread come from `clock` (ns since the Unix epoch);
/// `None` goes back to the system clock.
pub fn simulate_wall_clock(clock: Option<fn() -> u64>) {
    SIMULATED.with(|simulated| simulated.set(clock));
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn unix_time_ns() -> u64 {
    if let Some(clock) = SIMULATED.with(Cell::get) {
        return clock();
    }
    // A clock before 1970 or past 2554 gives 0 / saturates; the ledger keeps its clock monotonic.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
