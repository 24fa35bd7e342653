//! The leader's check of its wall clock against a quorum of replicas, in the spirit of
//! TigerBeetle's cluster clock: the leader stamps every proposal with its wall-clock time, so a
//! leader whose clock is far off (an operator's typo, a partitioned NTP) would stamp the ledger
//! wrongly. A quorum of replicas is the reference: one bad clock, the leader's included, cannot
//! outvote the others.
//!
//! Pure: no I/O and no clock reads. The caller measures round trips (the leader's wall time at
//! send `t0` and at receipt `t1`, the peer's wall time `remote` in its answer) and asks for a
//! verdict with the current monotonic time.
//!
//! Model. A round trip bounds the peer's offset (its clock minus the leader's) to
//! `[remote - t1, remote - t0]`: the peer read its clock somewhere in between. The leader's own
//! offset is `[0, 0]`. Every clock may be off by half the skew bound from true time, so each
//! interval is widened by that much: two clocks within the bound of each other then overlap.
//! Marzullo's algorithm finds the offsets most clocks agree on. The leader is Synchronized when
//! a quorum (itself included) agrees with it, Skewed when a quorum agrees without it, and the
//! verdict is Unknown when no quorum agrees on anything or too few fresh samples exist.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// What one round trip says about a peer's clock: its offset from the leader's clock lies in
/// `[offset_lo_ns, offset_hi_ns]`, as measured when the answer arrived (`received`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClockSample {
    offset_lo_ns: i64,
    offset_hi_ns: i64,
    received: Instant,
}

/// The smallest interval consistent with the largest number of sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Agreement {
    pub(crate) lo: i64,
    pub(crate) hi: i64,
    pub(crate) sources: usize,
}

/// Marzullo's algorithm: the smallest interval that the largest number of `(lo, hi)` intervals
/// (inclusive) contain; among equally small ones, the lowest. `None` without any valid
/// interval; an interval with `lo > hi` bounds nothing and is ignored.
pub(crate) fn marzullo(intervals: &[(i64, i64)]) -> Option<Agreement> {
    // (offset, 0 for a lower edge, 1 for an upper one): at equal offsets lower edges come
    // first, so intervals that merely touch still overlap at that point.
    let mut edges: Vec<(i64, u8)> = intervals
        .iter()
        .filter(|(lo, hi)| lo <= hi)
        .flat_map(|&(lo, hi)| [(lo, 0), (hi, 1)])
        .collect();
    edges.sort_unstable();
    let mut best: Option<Agreement> = None;
    let mut sources = 0usize;
    for (i, &(offset, edge)) in edges.iter().enumerate() {
        if edge == 1 {
            sources -= 1;
            continue;
        }
        sources += 1;
        // A lower edge always has its own upper edge after it, so `i + 1` exists; the region
        // it opens lasts until the next edge.
        let candidate = Agreement {
            lo: offset,
            hi: edges[i + 1].0,
            sources,
        };
        if best.is_none_or(|best| better(candidate, best)) {
            best = Some(candidate);
        }
    }
    best
}

fn better(candidate: Agreement, best: Agreement) -> bool {
    let width = |a: Agreement| a.hi.abs_diff(a.lo);
    candidate.sources > best.sources
        || (candidate.sources == best.sources && width(candidate) < width(best))
}

/// The leader's clock compared with a quorum's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClockVerdict {
    /// A quorum, the leader included, agrees: true time minus the leader's clock lies in
    /// `[offset_lo_ns, offset_hi_ns]` (within half the skew bound of zero).
    Synchronized {
        offset_lo_ns: i64,
        offset_hi_ns: i64,
    },
    /// A quorum agrees on a time the leader's clock is more than the bound away from.
    /// `offset_ns` is the middle of what they agree on, minus the leader's clock: positive when
    /// the leader is behind, negative when it is ahead.
    Skewed { offset_ns: i64 },
    /// Too few fresh samples, or no quorum agrees on anything: nobody can tell whose clock is
    /// wrong.
    Unknown,
}

pub(crate) struct ClockGuard {
    skew_bound_ns: u64,
    sample_age_max: Duration,
    /// The newest sample of each peer.
    samples: BTreeMap<u64, ClockSample>,
}

impl ClockGuard {
    /// `skew_bound_ns`: how far apart two clocks may be and still agree. `sample_age_max`: how
    /// long a round trip says anything (clocks drift, and jump).
    pub(crate) fn new(skew_bound_ns: u64, sample_age_max: Duration) -> Self {
        ClockGuard {
            skew_bound_ns,
            sample_age_max,
            samples: BTreeMap::new(),
        }
    }

    /// Records one round trip to `peer`: sent at the leader's wall time `t0_ns`, answered with
    /// the peer's wall time `remote_ns`, received at the leader's wall time `t1_ns`, at the
    /// monotonic instant `received`.
    ///
    /// Per peer only the newest sample is kept, not the one with the smallest round trip
    /// (TigerBeetle's choice): every sample's interval is a true bound whatever its round trip,
    /// so a slow one only makes the check more lenient, never wrong; and the newest is what
    /// shows a clock that just jumped, the event this check exists for, where the best sample
    /// of the window would hide the jump until it expired.
    pub(crate) fn record(
        &mut self,
        peer: u64,
        t0_ns: u64,
        remote_ns: u64,
        t1_ns: u64,
        received: Instant,
    ) {
        // An answer received before its request was sent: the leader's wall clock stepped
        // back during the round trip, so the sample bounds nothing.
        if t1_ns < t0_ns {
            return;
        }
        if self
            .samples
            .get(&peer)
            .is_some_and(|kept| kept.received > received)
        {
            return;
        }
        let sample = ClockSample {
            offset_lo_ns: signed_difference(remote_ns, t1_ns),
            offset_hi_ns: signed_difference(remote_ns, t0_ns),
            received,
        };
        self.samples.insert(peer, sample);
        // Peers that stopped answering (or left the group) must not accumulate.
        let age_max = self.sample_age_max;
        self.samples
            .retain(|_, kept| received.saturating_duration_since(kept.received) <= age_max);
    }

    /// The leader's clock against the fresh samples of `voters`. The group is `voters` with
    /// `self_id` added (callers may pass the voter list with or without the leader);
    /// quorum = group size / 2 + 1. Samples of peers outside the group are ignored.
    pub(crate) fn verdict(&self, self_id: u64, voters: &[u64], now: Instant) -> ClockVerdict {
        let group: BTreeSet<u64> = voters.iter().copied().chain([self_id]).collect();
        let quorum = group.len() / 2 + 1;
        let half_bound = i64::try_from(self.skew_bound_ns / 2).unwrap_or(i64::MAX);
        let own = (-half_bound, half_bound);
        let mut intervals = vec![own];
        for peer in group.iter().filter(|&&peer| peer != self_id) {
            if let Some(sample) = self.fresh_sample(*peer, now) {
                intervals.push((
                    sample.offset_lo_ns.saturating_sub(half_bound),
                    sample.offset_hi_ns.saturating_add(half_bound),
                ));
            }
        }
        if intervals.len() < quorum {
            return ClockVerdict::Unknown;
        }
        // First the largest agreement the leader is part of: the intervals clipped to its own.
        let with_leader: Vec<(i64, i64)> = intervals
            .iter()
            .map(|&(lo, hi)| (lo.max(own.0), hi.min(own.1)))
            .collect();
        if let Some(agreed) = marzullo(&with_leader).filter(|a| a.sources >= quorum) {
            return ClockVerdict::Synchronized {
                offset_lo_ns: agreed.lo,
                offset_hi_ns: agreed.hi,
            };
        }
        match marzullo(&intervals).filter(|a| a.sources >= quorum) {
            Some(agreed) => ClockVerdict::Skewed {
                offset_ns: midpoint(agreed.lo, agreed.hi),
            },
            None => ClockVerdict::Unknown,
        }
    }

    fn fresh_sample(&self, peer: u64, now: Instant) -> Option<&ClockSample> {
        self.samples
            .get(&peer)
            .filter(|sample| now.saturating_duration_since(sample.received) <= self.sample_age_max)
    }
}

/// `a - b` as a signed offset, saturated: a peer answering with an absurd time must not
/// overflow anything (it simply agrees with nobody).
fn signed_difference(a: u64, b: u64) -> i64 {
    let difference = i128::from(a) - i128::from(b);
    difference.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn midpoint(lo: i64, hi: i64) -> i64 {
    ((i128::from(lo) + i128::from(hi)) / 2) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SECOND: u64 = 1_000 * MS;
    /// A wall-clock time for the leader, far from zero so offsets in both directions fit.
    const WALL: u64 = 1_700_000_000 * SECOND;
    const BOUND: u64 = 100 * MS;
    const AGE_MAX: Duration = Duration::from_secs(5);

    fn agreement(lo: i64, hi: i64, sources: usize) -> Option<Agreement> {
        Some(Agreement { lo, hi, sources })
    }

    /// A guard with one 1 ms round trip per peer, each peer's clock `offset_ns` from the
    /// leader's, answered at `at`.
    fn guard_with(peers: &[(u64, i64)], at: Instant) -> ClockGuard {
        let mut guard = ClockGuard::new(BOUND, AGE_MAX);
        for &(peer, offset_ns) in peers {
            record_round_trip(&mut guard, peer, offset_ns, at);
        }
        guard
    }

    fn record_round_trip(guard: &mut ClockGuard, peer: u64, offset_ns: i64, at: Instant) {
        let (t0, t1) = (WALL, WALL + MS);
        let remote = (WALL + MS / 2).checked_add_signed(offset_ns).unwrap();
        guard.record(peer, t0, remote, t1, at);
    }

    fn skew(verdict: ClockVerdict) -> i64 {
        match verdict {
            ClockVerdict::Skewed { offset_ns } => offset_ns,
            other => panic!("expected Skewed, got {other:?}"),
        }
    }

    #[test]
    fn marzullo_finds_the_smallest_interval_most_sources_share() {
        // Overlapping: all three share [11, 12].
        assert_eq!(
            marzullo(&[(11, 13), (10, 12), (8, 12)]),
            agreement(11, 12, 3)
        );
        // Disjoint: one source agrees with nobody.
        assert_eq!(
            marzullo(&[(8, 12), (11, 13), (14, 15)]),
            agreement(11, 12, 2)
        );
        // Nested: the innermost point.
        assert_eq!(marzullo(&[(-10, 10), (-1, 1), (0, 0)]), agreement(0, 0, 3));
        // Touching intervals overlap at the shared point.
        assert_eq!(
            marzullo(&[(8, 12), (10, 11), (8, 10)]),
            agreement(10, 10, 3)
        );
    }

    #[test]
    fn marzullo_breaks_ties_by_the_smallest_interval() {
        assert_eq!(marzullo(&[(8, 12), (10, 12), (8, 9)]), agreement(8, 9, 2));
        assert_eq!(marzullo(&[(7, 9), (7, 12), (10, 11)]), agreement(10, 11, 2));
        assert_eq!(
            marzullo(&[(-9, -7), (-12, -7), (-11, -10)]),
            agreement(-11, -10, 2)
        );
        // No agreement at all: still the smallest interval.
        assert_eq!(marzullo(&[(1, 3), (4, 5)]), agreement(4, 5, 1));
    }

    #[test]
    fn marzullo_without_valid_intervals_agrees_on_nothing() {
        assert_eq!(marzullo(&[]), None);
        assert_eq!(marzullo(&[(5, 4)]), None);
        assert_eq!(marzullo(&[(5, 4), (1, 3)]), agreement(1, 3, 1));
        assert_eq!(
            marzullo(&[(i64::MIN, i64::MAX), (i64::MAX, i64::MAX)]),
            agreement(i64::MAX, i64::MAX, 2)
        );
    }

    #[test]
    fn three_agreeing_clocks_are_synchronized() {
        let now = Instant::now();
        let guard = guard_with(&[(2, 2 * MS as i64), (3, -3 * (MS as i64))], now);
        match guard.verdict(1, &[1, 2, 3], now) {
            ClockVerdict::Synchronized {
                offset_lo_ns,
                offset_hi_ns,
            } => {
                assert!(offset_lo_ns <= offset_hi_ns);
                assert!(offset_lo_ns >= -(BOUND as i64) / 2 && offset_hi_ns <= BOUND as i64 / 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn one_peer_far_off_leaves_the_leader_synchronized() {
        let now = Instant::now();
        let guard = guard_with(&[(2, 10 * SECOND as i64), (3, MS as i64)], now);
        assert!(matches!(
            guard.verdict(1, &[1, 2, 3], now),
            ClockVerdict::Synchronized { .. }
        ));
    }

    #[test]
    fn a_leader_within_the_bound_of_its_peers_is_synchronized() {
        let now = Instant::now();
        let near = (BOUND as i64) * 9 / 10;
        let guard = guard_with(&[(2, near), (3, near)], now);
        assert!(matches!(
            guard.verdict(1, &[1, 2, 3], now),
            ClockVerdict::Synchronized { .. }
        ));
    }

    #[test]
    fn a_leader_off_by_more_than_the_bound_is_skewed_with_the_sign_of_its_error() {
        let now = Instant::now();
        let five_s = 5 * SECOND as i64;
        // Peers ahead of the leader: the leader is behind, the offset positive.
        let behind = guard_with(&[(2, five_s), (3, five_s + MS as i64)], now);
        let offset = skew(behind.verdict(1, &[1, 2, 3], now));
        assert!((offset - five_s).abs() < 10 * MS as i64, "{offset}");
        // Peers behind the leader: the leader is ahead, the offset negative.
        let ahead = guard_with(&[(2, -five_s), (3, -five_s)], now);
        let offset = skew(ahead.verdict(1, &[1, 2, 3], now));
        assert!((offset + five_s).abs() < 10 * MS as i64, "{offset}");
        // Just past the bound is already too far.
        let past = (BOUND as i64) * 3 / 2;
        let guard = guard_with(&[(2, past), (3, past)], now);
        assert!(skew(guard.verdict(1, &[1, 2, 3], now)) > 0);
    }

    #[test]
    fn peers_that_disagree_with_each_other_and_the_leader_give_unknown() {
        let now = Instant::now();
        let guard = guard_with(&[(2, 5 * SECOND as i64), (3, -5 * (SECOND as i64))], now);
        assert_eq!(guard.verdict(1, &[1, 2, 3], now), ClockVerdict::Unknown);
    }

    #[test]
    fn stale_samples_give_unknown() {
        let then = Instant::now();
        let guard = guard_with(&[(2, 0), (3, 0)], then);
        let later = then + AGE_MAX + Duration::from_millis(1);
        assert_eq!(guard.verdict(1, &[1, 2, 3], later), ClockVerdict::Unknown);
        assert!(matches!(
            guard.verdict(1, &[1, 2, 3], then + AGE_MAX),
            ClockVerdict::Synchronized { .. }
        ));
    }

    #[test]
    fn too_few_samples_for_a_quorum_give_unknown() {
        let now = Instant::now();
        let guard = guard_with(&[(2, 0)], now);
        assert_eq!(
            guard.verdict(1, &[1, 2, 3, 4, 5], now),
            ClockVerdict::Unknown
        );
        // Samples of peers outside the group do not count towards its quorum.
        let outsiders = guard_with(&[(7, 0), (8, 0)], now);
        assert_eq!(outsiders.verdict(1, &[1, 2, 3], now), ClockVerdict::Unknown);
    }

    #[test]
    fn a_single_voter_is_synchronized() {
        let guard = ClockGuard::new(BOUND, AGE_MAX);
        let now = Instant::now();
        for voters in [&[1][..], &[][..]] {
            assert!(matches!(
                guard.verdict(1, voters, now),
                ClockVerdict::Synchronized { .. }
            ));
        }
    }

    #[test]
    fn the_voter_list_may_leave_out_the_leader() {
        let now = Instant::now();
        let guard = guard_with(&[(2, 5 * SECOND as i64), (3, 5 * SECOND as i64)], now);
        assert_eq!(
            guard.verdict(1, &[2, 3], now),
            guard.verdict(1, &[1, 2, 3], now)
        );
    }

    #[test]
    fn a_round_trip_that_ends_before_it_starts_is_ignored() {
        let now = Instant::now();
        let mut guard = guard_with(&[(2, 0)], now);
        let kept = guard.samples[&2];
        let later = now + Duration::from_millis(1);
        guard.record(2, WALL + MS, WALL + 10 * SECOND, WALL, later);
        guard.record(3, WALL + MS, WALL + 10 * SECOND, WALL, later);
        assert_eq!(guard.samples[&2], kept);
        assert!(!guard.samples.contains_key(&3));
    }

    #[test]
    fn the_newest_sample_of_a_peer_wins_and_an_older_one_arriving_late_does_not() {
        let then = Instant::now();
        let now = then + Duration::from_secs(1);
        let five_s = 5 * SECOND as i64;
        let mut guard = guard_with(&[(2, five_s), (3, five_s)], then);
        // The leader's clock was fixed: the newest round trips agree with it again.
        record_round_trip(&mut guard, 2, 0, now);
        record_round_trip(&mut guard, 3, 0, now);
        assert!(matches!(
            guard.verdict(1, &[1, 2, 3], now),
            ClockVerdict::Synchronized { .. }
        ));
        record_round_trip(&mut guard, 2, five_s, then);
        record_round_trip(&mut guard, 3, five_s, then);
        assert!(matches!(
            guard.verdict(1, &[1, 2, 3], now),
            ClockVerdict::Synchronized { .. }
        ));
    }

    #[test]
    fn expired_samples_are_dropped_when_new_ones_arrive() {
        let then = Instant::now();
        let mut guard = guard_with(&[(2, 0), (3, 0)], then);
        record_round_trip(&mut guard, 4, 0, then + AGE_MAX * 2);
        assert_eq!(guard.samples.keys().copied().collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn absurd_times_neither_panic_nor_agree() {
        let now = Instant::now();
        let mut guard = ClockGuard::new(u64::MAX, AGE_MAX);
        guard.record(2, 0, u64::MAX, 0, now);
        guard.record(3, u64::MAX, 0, u64::MAX, now);
        let _ = guard.verdict(1, &[1, 2, 3], now);
        let mut tight = ClockGuard::new(0, AGE_MAX);
        tight.record(2, 0, u64::MAX, 0, now);
        tight.record(3, u64::MAX, 0, u64::MAX, now);
        assert_eq!(tight.verdict(1, &[1, 2, 3], now), ClockVerdict::Unknown);
    }
}
