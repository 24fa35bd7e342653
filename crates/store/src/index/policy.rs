//! When to merge runs, and which.
//!
//! **Leveled, one run per level, whole-run merges.** Flushes add level-0 runs. Level `j >= 1`
//! holds at most one run, of at most `level1_entries_max * ratio^(j-1)` entries. Whenever level 0
//! is not empty, all level-0 runs are merged with levels `1..=j` into level `j`, for the smallest
//! `j` whose capacity holds them all (levels above `j` are left empty; a single run with nothing
//! to merge into is moved by relabelling, without rewriting).
//!
//! Why leveled and not size-tiered: almost every lookup is negative (a new id), and each live
//! run costs a negative lookup one bloom probe, a cache miss. Leveling keeps the run count at
//! about `log_ratio(entries / memtable) + 1` (3-4 runs at 100M keys) where tiering keeps up to
//! `ratio` runs per tier. The price is write amplification (about `1 + levels * ratio / 2`),
//! which 24-byte entries and sequential writes make affordable.
//!
//! Why whole runs and not RocksDB's range-partitioned levels: no per-level file ranges to keep.
//! The cost is that a merge into a deep level rewrites that level in one go; flushes run on their
//! own thread meanwhile, so inserts never wait for it, and lookups probe a few more level-0 blooms
//! until the merge lands.

/// What to merge: the `inputs` newest runs (always a prefix of the newest-first run list) into
/// one run at `output_level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MergePlan {
    pub(crate) inputs: usize,
    pub(crate) output_level: u8,
}

/// `runs` lists `(level, entries)` newest first; `None` when nothing needs merging.
pub(crate) fn pick_merge(runs: &[(u8, u64)], level1_entries_max: u64, level_size_ratio: u64) -> Option<MergePlan> {
    assert!(level1_entries_max > 0 && level_size_ratio >= 2);
    debug_assert!(levels_are_ordered(runs.iter().map(|&(level, _)| level)));
    let level0 = runs.iter().take_while(|&&(level, _)| level == 0).count();
    if level0 == 0 {
        return None;
    }
    let mut total: u64 = runs[..level0].iter().map(|&(_, entries)| entries).sum();
    let mut inputs = level0;
    let mut capacity = level1_entries_max;
    for level in 1..=u8::MAX {
        if let Some(&(run_level, entries)) = runs.get(inputs) {
            if run_level == level {
                total += entries;
                inputs += 1;
            }
        }
        if total <= capacity || level == u8::MAX {
            return Some(MergePlan { inputs, output_level: level });
        }
        capacity = capacity.saturating_mul(level_size_ratio);
    }
    unreachable!("the loop returns at the last level")
}

/// Level-0 runs first (any number), then at most one run per level, levels increasing.
pub(crate) fn levels_are_ordered(levels: impl IntoIterator<Item = u8>) -> bool {
    let mut previous: Option<u8> = None;
    for level in levels {
        let ordered = match previous {
            None => true,
            Some(previous) => (level == 0 && previous == 0) || level > previous,
        };
        if !ordered {
            return false;
        }
        previous = Some(level);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level0_merges_into_the_first_level_that_holds_it() {
        // Level 1 holds up to 8, level 2 up to 64.
        assert_eq!(pick_merge(&[], 8, 8), None);
        assert_eq!(pick_merge(&[(1, 5), (2, 40)], 8, 8), None);
        assert_eq!(pick_merge(&[(0, 1)], 8, 8), Some(MergePlan { inputs: 1, output_level: 1 }));
        assert_eq!(pick_merge(&[(0, 1), (1, 7)], 8, 8), Some(MergePlan { inputs: 2, output_level: 1 }));
        assert_eq!(pick_merge(&[(0, 1), (1, 8), (2, 40)], 8, 8), Some(MergePlan { inputs: 3, output_level: 2 }));
        assert_eq!(pick_merge(&[(0, 1), (0, 1), (1, 8)], 8, 8), Some(MergePlan { inputs: 3, output_level: 2 }));
        assert_eq!(pick_merge(&[(0, 1), (1, 8), (3, 900)], 8, 8), Some(MergePlan { inputs: 2, output_level: 2 }));
        assert_eq!(pick_merge(&[(0, 30), (1, 8), (2, 60)], 8, 8), Some(MergePlan { inputs: 3, output_level: 3 }));
    }

    #[test]
    fn repeated_flushes_keep_few_runs_and_bounded_rewrites() {
        let (memtable, ratio) = (1_000u64, 8u64);
        let mut runs: Vec<(u8, u64)> = Vec::new();
        let (mut flushed, mut written) = (0u64, 0u64);
        for _ in 0..10_000 {
            runs.insert(0, (0, memtable));
            flushed += memtable;
            while let Some(plan) = pick_merge(&runs, memtable * ratio, ratio) {
                let entries: u64 = runs[..plan.inputs].iter().map(|&(_, entries)| entries).sum();
                if plan.inputs > 1 {
                    written += entries;
                }
                runs.splice(..plan.inputs, [(plan.output_level, entries)]);
                assert!(levels_are_ordered(runs.iter().map(|&(level, _)| level)));
            }
            assert!(runs.len() <= 5, "{runs:?}");
        }
        // 10M entries over 1k-entry memtables: levels 1-4, each rewritten ~ratio/2 times.
        let amplification = written as f64 / flushed as f64;
        assert!(amplification < 4.0 * ratio as f64 / 2.0 + 1.0, "write amplification {amplification}");
    }

    #[test]
    fn level_order_rules() {
        assert!(levels_are_ordered([0, 0, 1, 3, 4]));
        assert!(levels_are_ordered([2]));
        assert!(!levels_are_ordered([1, 0]));
        assert!(!levels_are_ordered([0, 2, 2]));
        assert!(!levels_are_ordered([0, 3, 1]));
    }
}
