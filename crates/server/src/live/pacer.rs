//! Pacing of the messages that can wait. A fan-out is one socket write per screen, and on the
//! same cores as the ledger a burst of 10,000 of them (60–100 ms of CPU with the receiving
//! ends' kernel work) holds up every bet that arrives meanwhile. Messages whose news keeps
//! for a few hundred milliseconds (a round's running totals, a round's opening) are written
//! at a steady rate instead: each takes a permit from a budget refilled every tick with
//! enough for every screen once per `paced_spread_ms`, so such a fan-out takes about that
//! long however many screens watch. Round results and the close are never paced.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

use super::threads::LiveThreads;

/// How often the budget is refilled: short enough that a paced fan-out is a trickle, long
/// enough that the refill itself costs nothing (200 wake-ups a second).
const TICK_MS: u64 = 5;

/// The shared budget of paced writes, started on first use (it needs the live threads'
/// runtime, which exists only once the node serves).
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    permits: OnceLock<Option<Arc<Semaphore>>>,
}

impl Pacer {
    /// The budget that spreads a paced fan-out to the `screens` counted over `spread_ms`
    /// (None when 0: nothing is paced).
    pub(crate) fn permits(
        &self,
        spread_ms: u64,
        screens: Weak<AtomicUsize>,
        threads: &LiveThreads,
    ) -> Option<Arc<Semaphore>> {
        self.permits
            .get_or_init(|| start(spread_ms, screens, threads))
            .clone()
    }
}

/// Writes allowed per tick: every screen once per `spread_ms`, at least one.
pub(crate) fn permits_per_tick(screens: usize, spread_ms: u64) -> usize {
    let per_tick = (screens as u64 * TICK_MS).div_ceil(spread_ms.max(1));
    usize::try_from(per_tick).unwrap_or(usize::MAX).max(1)
}

fn start(
    spread_ms: u64,
    screens: Weak<AtomicUsize>,
    threads: &LiveThreads,
) -> Option<Arc<Semaphore>> {
    if spread_ms == 0 {
        return None;
    }
    let permits = Arc::new(Semaphore::new(0));
    let budget = Arc::downgrade(&permits);
    drop(threads.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (Some(permits), Some(screens)) = (budget.upgrade(), screens.upgrade()) else {
                return; // the hub is gone
            };
            let per_tick = permits_per_tick(screens.load(Ordering::Acquire), spread_ms);
            // Unused permits do not pile up: an idle table's next fan-out starts at the rate.
            permits.add_permits(per_tick.saturating_sub(permits.available_permits()));
        }
    }));
    Some(permits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paced_fan_out_takes_the_spread_whatever_the_number_of_screens() {
        for screens in [1_000usize, 10_000, 20_000] {
            let ticks = screens.div_ceil(permits_per_tick(screens, 500));
            assert_eq!(ticks as u64 * TICK_MS, 500, "{screens} screens");
        }
        assert_eq!(permits_per_tick(0, 500), 1, "never stalls");
        assert_eq!(permits_per_tick(3, 500), 1);
    }
}
