//! Monte Carlo simulation in fixed-size chunks. Chunk k of a run seeded with s always uses the
//! generator `sim_rng(chunk_seed(s, k))`, and totals are integer sums, so a run gives the same
//! numbers on any number of threads and in any merge order.

use croupier_rng::sim_rng;

use crate::{GameMath, RETURN_SCALE};

/// Rounds per chunk: the unit of work a thread takes and of progress reporting.
pub const CHUNK_ROUNDS: u64 = 1 << 20;

/// Two-sided 99% normal quantile.
pub const Z_99: f64 = 2.575_829_303_548_900_4;
/// Two-sided 99.9% normal quantile.
pub const Z_999: f64 = 3.290_526_731_491_925_6;

pub fn chunk_count(rounds: u64) -> u64 {
    rounds.div_ceil(CHUNK_ROUNDS)
}

/// Rounds in chunk `index` of a run of `rounds` rounds (the last chunk may be short).
pub fn chunk_rounds(rounds: u64, index: u64) -> u64 {
    let start = index.saturating_mul(CHUNK_ROUNDS);
    rounds.saturating_sub(start).min(CHUNK_ROUNDS)
}

/// SplitMix64 finaliser: spreads (seed, chunk) pairs over the seed space.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(crate) fn chunk_seed(seed: u64, chunk_index: u64) -> u64 {
    mix(mix(seed) ^ chunk_index)
}

/// Integer sums for one bet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BetTotals {
    /// Σ return, in `RETURN_SCALE` units.
    pub payout_units: u128,
    /// Σ return², in units².
    pub payout_units_squared: u128,
    /// Rounds whose return exceeded the stake.
    pub hits: u64,
}

/// Integer sums of a simulation, per bet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTotals {
    pub rounds: u64,
    pub bets: Vec<BetTotals>,
}

/// Simulated figures of one bet.
#[derive(Debug, Clone, PartialEq)]
pub struct SimFigures {
    pub bet: String,
    pub rtp: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub hit_frequency: f64,
    pub std_dev: f64,
}

impl SimTotals {
    pub fn new(bet_count: usize) -> SimTotals {
        SimTotals {
            rounds: 0,
            bets: vec![BetTotals::default(); bet_count],
        }
    }

    pub fn merge(&mut self, other: &SimTotals) {
        assert_eq!(
            self.bets.len(),
            other.bets.len(),
            "merging totals of different games"
        );
        self.rounds += other.rounds;
        for (mine, theirs) in self.bets.iter_mut().zip(&other.bets) {
            mine.payout_units += theirs.payout_units;
            mine.payout_units_squared += theirs.payout_units_squared;
            mine.hits += theirs.hits;
        }
    }

    /// Per-bet RTP with a two-sided normal interval at quantile `z` (e.g. [`Z_99`]), using the
    /// sample standard deviation.
    pub fn figures(&self, names: &[String], z: f64) -> Vec<SimFigures> {
        assert_eq!(names.len(), self.bets.len());
        let n = self.rounds.max(1) as f64;
        let scale = RETURN_SCALE as f64;
        names
            .iter()
            .zip(&self.bets)
            .map(|(name, totals)| {
                let mean = totals.payout_units as f64 / n / scale;
                let mean_square = totals.payout_units_squared as f64 / n / (scale * scale);
                let std_dev = (mean_square - mean * mean).max(0.0).sqrt();
                let half_width = z * std_dev / n.sqrt();
                SimFigures {
                    bet: name.clone(),
                    rtp: mean,
                    ci_low: mean - half_width,
                    ci_high: mean + half_width,
                    hit_frequency: totals.hits as f64 / n,
                    std_dev,
                }
            })
            .collect()
    }
}

pub(crate) fn run_chunk<G: GameMath>(
    game: &G,
    win_cap: u64,
    seed: u64,
    chunk_index: u64,
    rounds: u64,
) -> SimTotals {
    assert!(
        rounds <= CHUNK_ROUNDS,
        "a chunk has at most CHUNK_ROUNDS rounds"
    );
    let bet_count = game.bet_names().len();
    let mut rng = sim_rng(chunk_seed(seed, chunk_index));
    let mut scratch = game.new_scratch();
    let mut returns = vec![0u64; bet_count];
    // Every return is at most the cap, so a chunk's sums fit u64 (2^20 rounds × 10^9 units),
    // and squares fit u64 for `block_rounds` rounds before they are flushed to u128: the hot
    // loop does only 64-bit arithmetic.
    let cap_units = win_cap * RETURN_SCALE;
    let block_rounds = (u128::from(u64::MAX) / (u128::from(cap_units) * u128::from(cap_units)))
        .min(u128::from(CHUNK_ROUNDS)) as u64;
    assert!(
        block_rounds >= 1,
        "WIN_CAP_MAX keeps one squared return within u64"
    );
    let mut sums = vec![0u64; bet_count];
    let mut squares = vec![0u64; bet_count];
    let mut hits = vec![0u64; bet_count];
    let mut totals = SimTotals::new(bet_count);
    let mut rounds_left = rounds;
    while rounds_left > 0 {
        let block = rounds_left.min(block_rounds);
        for _ in 0..block {
            game.play_round(&mut rng, &mut scratch, &mut returns);
            let accumulators = sums.iter_mut().zip(squares.iter_mut()).zip(hits.iter_mut());
            for (&units, ((sum, square), hit)) in returns.iter().zip(accumulators) {
                debug_assert!(units <= cap_units, "a return above the win cap");
                *sum += units;
                *square += units * units;
                *hit += u64::from(units > RETURN_SCALE);
            }
        }
        for (bet, square) in totals.bets.iter_mut().zip(squares.iter_mut()) {
            bet.payout_units_squared += u128::from(*square);
            *square = 0;
        }
        rounds_left -= block;
    }
    totals.rounds = rounds;
    for ((bet, &sum), &hit) in totals.bets.iter_mut().zip(&sums).zip(&hits) {
        bet.payout_units = u128::from(sum);
        bet.hits = hit;
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_round_once() {
        for rounds in [0, 1, CHUNK_ROUNDS - 1, CHUNK_ROUNDS, 3 * CHUNK_ROUNDS + 7] {
            let total: u64 = (0..chunk_count(rounds))
                .map(|i| chunk_rounds(rounds, i))
                .sum();
            assert_eq!(total, rounds);
        }
    }

    #[test]
    fn chunk_seeds_differ_between_chunks_and_seeds() {
        assert_ne!(chunk_seed(1, 0), chunk_seed(1, 1));
        assert_ne!(chunk_seed(1, 0), chunk_seed(2, 0));
    }
}
