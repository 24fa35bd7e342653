//! Unbiased scaling of random words: integers in [0, n), shuffles and weighted choice.
//!
//! Written by hand because exact absence of bias is the product's certified core: the range
//! reduction is Lemire's multiply-shift with rejection of the `2^w mod n` low products, so
//! every value of [0, n) has exactly the same number of accepted w-bit inputs. The reduction is
//! generic over the word width so the tests can enumerate every input of an 8- and a 16-bit
//! instance and count outcomes exactly.
//!
//! Draw consumption (what a provably-fair verifier replays): `below_u32` takes 32-bit words,
//! `below` 64-bit words; `shuffle` and `weighted_index` use `below_u32` whenever the range fits
//! in 32 bits (always, for card shoes and paytables) and `below` otherwise.

use rand_core::RngCore;

/// An unsigned word the range reduction works on.
trait Word: Copy + Ord {
    /// (high, low) halves of the double-width product self * n.
    fn widening_mul(self, n: Self) -> (Self, Self);
    /// 2^w mod n: how many low products must be rejected.
    fn rejection_zone(n: Self) -> Self;
}

macro_rules! word {
    ($word:ty, $wide:ty) => {
        impl Word for $word {
            #[inline(always)]
            fn widening_mul(self, n: Self) -> (Self, Self) {
                let product = (self as $wide) * (n as $wide);
                ((product >> <$word>::BITS) as $word, product as $word)
            }
            #[inline(always)]
            fn rejection_zone(n: Self) -> Self {
                n.wrapping_neg() % n
            }
        }
    };
}

word!(u8, u16);
word!(u16, u32);
word!(u32, u64);
word!(u64, u128);

/// Lemire's reduction: the high half of word * n, redrawing while the low half falls in the
/// first `2^w mod n` values (only possible when it is below n, which spares the division).
#[inline(always)]
fn reduce<W: Word>(n: W, mut next_word: impl FnMut() -> W) -> W {
    let (mut high, mut low) = next_word().widening_mul(n);
    if low < n {
        let zone = W::rejection_zone(n);
        while low < zone {
            (high, low) = next_word().widening_mul(n);
        }
    }
    high
}

/// Uniform integer in [0, n). Panics if n == 0 (a caller bug, never an input).
#[inline]
pub fn below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    assert!(n > 0, "below(0) has no values");
    reduce(n, || rng.next_u64())
}

/// Uniform integer in [0, n) for n <= 2^32, drawing 32-bit words (twice as many draws per
/// generator block as `below` for the small ranges games use).
#[inline]
pub fn below_u32<R: RngCore + ?Sized>(rng: &mut R, n: u32) -> u32 {
    assert!(n > 0, "below_u32(0) has no values");
    reduce(n, || rng.next_u32())
}

/// Uniform integer in [0, n) with 32-bit words when n fits, else 64-bit words.
#[inline]
fn below_any<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    match u32::try_from(n) {
        Ok(small) => below_u32(rng, small) as u64,
        Err(_) => below(rng, n),
    }
}

/// Fisher–Yates shuffle: every permutation equally likely.
pub fn shuffle<T, R: RngCore + ?Sized>(rng: &mut R, items: &mut [T]) {
    shuffle_by(items, |bound| below_any(rng, bound));
}

/// Fisher–Yates given the uniform index source: for i from the top down, swap item i with a
/// uniform j in [0, i]. Each sequence of draws gives a distinct permutation.
fn shuffle_by<T>(items: &mut [T], mut uniform_below: impl FnMut(u64) -> u64) {
    for i in (1..items.len()).rev() {
        let j = uniform_below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Index i with probability weights[i] / sum(weights). Panics if the weights sum to zero or
/// overflow u64 (definitions are validated when loaded, so this is a bug).
pub fn weighted_index<R: RngCore + ?Sized>(rng: &mut R, weights: &[u64]) -> usize {
    let total = weights.iter().try_fold(0u64, |acc, &w| acc.checked_add(w));
    let total = total.expect("weights overflow u64");
    assert!(total > 0, "weights sum to zero");
    index_of_point(weights, below_any(rng, total))
}

/// The i whose interval [w0 + .. + w(i-1), w0 + .. + wi) holds `point`: exactly weights[i]
/// points map to each i.
fn index_of_point(weights: &[u64], mut point: u64) -> usize {
    for (i, &w) in weights.iter().enumerate() {
        if point < w {
            return i;
        }
        point -= w;
    }
    unreachable!("point < total by construction")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every outcome of `reduce` over the whole w-bit word space, counting a word only when it
    /// is accepted on its own (a redraw means the word was rejected).
    fn census<W: Word + TryFrom<u64> + Into<u64>>(n: W, words: u64) -> (Vec<u64>, u64) {
        let mut counts = vec![0u64; n.into() as usize];
        let mut rejected = 0;
        for first in 0..words {
            let mut calls = 0u64;
            let outcome = reduce(n, || {
                calls += 1;
                // After the first word, walk the space so the redraw loop terminates.
                let word = if calls == 1 {
                    first
                } else {
                    (first + calls) % words
                };
                W::try_from(word).ok().expect("word fits")
            });
            if calls == 1 {
                counts[outcome.into() as usize] += 1;
            } else {
                rejected += 1;
            }
        }
        (counts, rejected)
    }

    #[test]
    fn eight_bit_reduction_is_exactly_uniform_for_every_range() {
        for n in 1..=u8::MAX {
            let (counts, rejected) = census(n, 256);
            let expected = 256 / n as u64;
            assert!(counts.iter().all(|&c| c == expected), "n = {n}: {counts:?}");
            assert_eq!(
                rejected,
                256 % n as u64,
                "n = {n}: rejects exactly 2^8 mod n words"
            );
        }
    }

    #[test]
    fn sixteen_bit_reduction_is_exactly_uniform() {
        for n in [2u16, 3, 6, 37, 54, 416, 1000, 21_845, 40_000, 65_535] {
            let (counts, rejected) = census(n, 1 << 16);
            let expected = 65_536 / n as u64;
            assert!(counts.iter().all(|&c| c == expected), "n = {n}");
            assert_eq!(rejected, 65_536 % n as u64);
        }
    }

    /// Accepted 8-bit words for each bound, with the outcome each gives.
    fn accepted_outcomes(bound: u8) -> Vec<u64> {
        (0..=255u8)
            .filter_map(|word| {
                let mut calls = 0;
                let outcome = reduce(bound, || {
                    calls += 1;
                    word.wrapping_add(calls - 1)
                });
                (calls == 1).then_some(outcome as u64)
            })
            .collect()
    }

    #[test]
    fn shuffle_on_an_eight_bit_generator_gives_every_permutation_equally_often() {
        // Enumerates every sequence of accepted 8-bit words Fisher–Yates can draw for n items.
        for n in 1..=4usize {
            let draws: Vec<Vec<u64>> = (2..=n as u8).rev().map(accepted_outcomes).collect();
            // Arrangements are counted by their base-n code: n^n <= 256 cells.
            let mut counts = vec![0u64; n.pow(n as u32)];
            let mut index = vec![0usize; draws.len()];
            loop {
                let mut items = [0u8, 1, 2, 3];
                let mut step = 0;
                shuffle_by(&mut items[..n], |bound| {
                    let value = draws[step][index[step]];
                    assert!(value < bound);
                    step += 1;
                    value
                });
                counts[items[..n]
                    .iter()
                    .fold(0, |code, &item| code * n + item as usize)] += 1;
                // Odometer over the draw sequences.
                let mut digit = 0;
                while digit < index.len() && index[digit] + 1 == draws[digit].len() {
                    index[digit] = 0;
                    digit += 1;
                }
                if digit == index.len() {
                    break;
                }
                index[digit] += 1;
            }
            let occurring: Vec<u64> = counts.into_iter().filter(|&c| c > 0).collect();
            let factorial: usize = (1..=n).product();
            assert_eq!(
                occurring.len(),
                factorial,
                "n = {n}: every permutation occurs"
            );
            assert!(
                occurring.iter().all(|&c| c == occurring[0]),
                "n = {n}: {occurring:?}"
            );
        }
    }

    #[test]
    fn fisher_yates_maps_draw_sequences_one_to_one_onto_permutations() {
        for n in 1..=7usize {
            let mut seen = std::collections::BTreeSet::new();
            let total: usize = (1..=n).product();
            for code in 0..total {
                // Mixed-radix digits: the draw for bound b is (code / ...) % b.
                let mut rest = code;
                let mut items: Vec<u8> = (0..n as u8).collect();
                shuffle_by(&mut items, |bound| {
                    let digit = rest as u64 % bound;
                    rest /= bound as usize;
                    digit
                });
                assert!(seen.insert(items));
            }
            assert_eq!(seen.len(), total);
        }
    }

    #[test]
    fn weighted_choice_gives_each_index_exactly_its_weight_in_points() {
        let weights = [23u64, 15, 7, 4, 2, 1, 1, 1];
        let total: u64 = weights.iter().sum();
        let mut counts = [0u64; 8];
        for point in 0..total {
            counts[index_of_point(&weights, point)] += 1;
        }
        assert_eq!(counts, weights);
    }

    #[test]
    fn weighted_choice_on_an_eight_bit_generator_is_exactly_proportional() {
        let weights = [23u64, 15, 7, 4, 2, 0, 1, 2];
        let total: u64 = weights.iter().sum();
        let mut counts = [0u64; 8];
        for point in accepted_outcomes(total as u8) {
            counts[index_of_point(&weights, point)] += 1;
        }
        let per_point = 256 / total;
        let expected: Vec<u64> = weights.iter().map(|w| w * per_point).collect();
        assert_eq!(counts.to_vec(), expected);
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = crate::sim_rng(1);
        for n in [1u64, 2, 3, 7, 37, 54, 1 << 40, u64::MAX] {
            for _ in 0..1000 {
                assert!(below(&mut rng, n) < n);
            }
        }
        for n in [1u32, 2, 37, u32::MAX] {
            for _ in 0..1000 {
                assert!(below_u32(&mut rng, n) < n);
            }
        }
    }

    #[test]
    fn weighted_index_never_picks_zero_weight() {
        let mut rng = crate::sim_rng(2);
        for _ in 0..10_000 {
            let i = weighted_index(&mut rng, &[0, 3, 0, 5, 0]);
            assert!(i == 1 || i == 3);
        }
        assert_eq!(weighted_index(&mut rng, &[0, u64::MAX]), 1);
    }

    #[test]
    fn shuffle_keeps_every_item() {
        let mut rng = crate::sim_rng(3);
        let mut items: Vec<u32> = (0..108).collect();
        shuffle(&mut rng, &mut items);
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(sorted, (0..108).collect::<Vec<_>>());
        assert_ne!(items, sorted);
    }

    /// Chi-square of scaled outcomes from the certified DRBG (fixed seed, so the verdict is
    /// reproducible) against the uniform law, at the 99% level.
    #[test]
    fn scaled_outcomes_of_the_certified_drbg_pass_chi_square() {
        let mut rng = crate::SeededDrbg::from_seed(b"chi-square of scaled outcomes");
        for n in [2u32, 6, 37, 54, 416] {
            let draws = 2000 * n as usize;
            let mut counts = vec![0u64; n as usize];
            for _ in 0..draws {
                counts[below_u32(&mut rng, n) as usize] += 1;
            }
            let probabilities = vec![1.0 / n as f64; n as usize];
            let p = crate::gli::chi_square(&counts, &probabilities).p_value;
            assert!(p > 0.01, "n = {n}: p = {p}");
        }
        let weights = [23u64, 15, 7, 4, 2, 1, 2];
        let total: u64 = weights.iter().sum();
        let mut counts = [0u64; 7];
        for _ in 0..100_000 {
            counts[weighted_index(&mut rng, &weights)] += 1;
        }
        let probabilities: Vec<f64> = weights.iter().map(|&w| w as f64 / total as f64).collect();
        let p = crate::gli::chi_square(&counts, &probabilities).p_value;
        assert!(p > 0.01, "weighted: p = {p}");
    }
}
