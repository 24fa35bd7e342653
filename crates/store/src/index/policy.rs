//! When to merge runs, and which.
//!
//! **Leveled, one run per level, whole-run merges, in two lanes.** Flushes add level-0 runs.
//! Level `j >= 1` holds one run, of at most `level1_entries_max * ratio^(j-1)` entries (level 1
//! may overshoot until the deep lane moves it down). The upper lane merges all level-0 runs into
//! level 1 after every flush; the deep lane moves an overfull level 1 down into the first level
//! that holds it, rewriting that level. The lanes run concurrently on their own threads: while
//! the deep lane holds level 1, the upper lane merges the level-0 runs into one level-0 run
//! instead, so the run count stays small during a long deep merge. A hard limit on level-0 runs
//! (`level0_runs_max`) makes flushes, and through them `insert_batch`, wait when merging cannot
//! keep up, rather than letting lookups degrade without bound.
//!
//! Why leveled and not size-tiered: almost every lookup is negative (a new id), and each live
//! run costs a negative lookup one bloom probe, a cache miss. Leveling keeps the run count at
//! about `log_ratio(entries / memtable) + 1` (3-4 runs at 100M keys) where tiering keeps up to
//! `ratio` runs per tier. The price is write amplification (about `1 + levels * ratio / 2`),
//! which 24-byte entries and sequential writes make affordable.
//!
//! Why whole runs and not RocksDB's range-partitioned levels: no per-level file ranges to keep;
//! the two lanes give the one thing partitioning would (small merges not waiting behind big ones).

/// What to merge: the runs at `inputs` (a contiguous stretch of the newest-first run list) into
/// one run at `output_level`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MergePlan {
    pub(crate) inputs: std::ops::Range<usize>,
    pub(crate) output_level: u8,
}

/// A live run as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunInfo {
    pub(crate) level: u8,
    pub(crate) entries: u64,
    /// Already an input of a running merge.
    pub(crate) reserved: bool,
}

/// The upper lane: all level-0 runs and level 1 into level 1 (a lone level-0 run with no level 1
/// is relabelled); while the deep lane holds level 1, the level-0 runs into one level-0 run, so
/// a long deep merge does not leave lookups probing a growing pile of small runs.
pub(crate) fn pick_upper(runs: &[RunInfo]) -> Option<MergePlan> {
    let level0 = runs.iter().take_while(|run| run.level == 0).count();
    if level0 == 0 || runs[..level0].iter().any(|run| run.reserved) {
        return None;
    }
    match runs.get(level0).filter(|run| run.level == 1) {
        None => Some(MergePlan { inputs: 0..level0, output_level: 1 }),
        Some(level1) if !level1.reserved => Some(MergePlan { inputs: 0..level0 + 1, output_level: 1 }),
        Some(_) if level0 >= 2 => Some(MergePlan { inputs: 0..level0, output_level: 0 }),
        Some(_) => None,
    }
}

/// The deep lane: once level 1 holds more than `level1_entries_max`, it goes down with levels
/// `2..=j` into level `j`, for the smallest `j` whose capacity (`level1_entries_max *
/// ratio^(j-1)`) holds them all.
pub(crate) fn pick_deep(runs: &[RunInfo], level1_entries_max: u64, level_size_ratio: u64) -> Option<MergePlan> {
    assert!(level1_entries_max > 0 && level_size_ratio >= 2);
    debug_assert!(levels_are_ordered(runs.iter().map(|run| run.level)));
    let start = runs.iter().position(|run| run.level == 1)?;
    if runs[start].reserved || runs[start].entries <= level1_entries_max {
        return None;
    }
    let mut total = runs[start].entries;
    let mut end = start + 1;
    let mut capacity = level1_entries_max;
    for level in 2..=u8::MAX {
        capacity = capacity.saturating_mul(level_size_ratio);
        if let Some(run) = runs.get(end).filter(|run| run.level == level) {
            assert!(!run.reserved, "only the deep lane merges below level 1");
            total += run.entries;
            end += 1;
        }
        if total <= capacity || level == u8::MAX {
            return Some(MergePlan { inputs: start..end, output_level: level });
        }
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

    fn runs(spec: &[(u8, u64)]) -> Vec<RunInfo> {
        spec.iter().map(|&(level, entries)| RunInfo { level, entries, reserved: false }).collect()
    }

    fn plan(inputs: std::ops::Range<usize>, output_level: u8) -> Option<MergePlan> {
        Some(MergePlan { inputs, output_level })
    }

    #[test]
    fn upper_lane_merges_level0_into_level1_or_into_one_run_while_level1_is_busy() {
        assert_eq!(pick_upper(&runs(&[])), None);
        assert_eq!(pick_upper(&runs(&[(1, 5), (2, 40)])), None);
        assert_eq!(pick_upper(&runs(&[(0, 1)])), plan(0..1, 1));
        assert_eq!(pick_upper(&runs(&[(0, 1), (0, 1), (2, 9)])), plan(0..2, 1));
        assert_eq!(pick_upper(&runs(&[(0, 1), (1, 70), (2, 9)])), plan(0..2, 1));
        let mut busy = runs(&[(0, 1), (0, 2), (1, 70)]);
        busy[2].reserved = true;
        assert_eq!(pick_upper(&busy), plan(0..2, 0));
        assert_eq!(pick_upper(&busy[1..]), None, "a single level-0 run waits for level 1");
        busy[0].reserved = true;
        assert_eq!(pick_upper(&busy), None, "level 0 is already being merged");
    }

    #[test]
    fn deep_lane_moves_an_overfull_level1_into_the_first_level_that_holds_it() {
        // Level 1 holds up to 8, level 2 up to 64, level 3 up to 512.
        assert_eq!(pick_deep(&runs(&[(0, 1), (1, 8), (2, 40)]), 8, 8), None);
        assert_eq!(pick_deep(&runs(&[(0, 1), (1, 9), (2, 40)]), 8, 8), plan(1..3, 2));
        assert_eq!(pick_deep(&runs(&[(1, 9), (3, 100)]), 8, 8), plan(0..1, 2));
        assert_eq!(pick_deep(&runs(&[(1, 9), (2, 60), (3, 100)]), 8, 8), plan(0..3, 3));
        let mut busy = runs(&[(1, 9), (2, 40)]);
        busy[0].reserved = true;
        assert_eq!(pick_deep(&busy, 8, 8), None);
    }

    #[test]
    fn repeated_flushes_keep_few_runs_and_bounded_rewrites() {
        let (memtable, ratio) = (1_000u64, 8u64);
        let mut levels: Vec<(u8, u64)> = Vec::new();
        let (mut flushed, mut written) = (0u64, 0u64);
        for _ in 0..10_000 {
            levels.insert(0, (0, memtable));
            flushed += memtable;
            loop {
                let infos = runs(&levels);
                let Some(plan) = pick_upper(&infos).or_else(|| pick_deep(&infos, memtable * ratio, ratio)) else {
                    break;
                };
                let entries: u64 = levels[plan.inputs.clone()].iter().map(|&(_, entries)| entries).sum();
                if plan.inputs.len() > 1 {
                    written += entries;
                }
                levels.splice(plan.inputs, [(plan.output_level, entries)]);
                assert!(levels_are_ordered(levels.iter().map(|&(level, _)| level)));
            }
            assert!(levels.len() <= 5, "{levels:?}");
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
