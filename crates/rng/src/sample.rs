//! Unbiased scaling of random words: integers in [0, n), shuffles and weighted choice.
//!
//! Written by hand because exact absence of bias is the product's certified core: the range
//! reduction is Lemire's multiply-shift with rejection of the `2^64 mod n` low products, so
//! every value of [0, n) has exactly the same number of accepted 64-bit inputs.

use rand_core::RngCore;

/// Uniform integer in [0, n). Panics if n == 0 (a caller bug, never an input).
#[inline]
pub fn below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    assert!(n > 0, "below(0) has no values");
    let mut product = (rng.next_u64() as u128) * (n as u128);
    let mut low = product as u64;
    if low < n {
        // Rejection zone: the first (2^64 mod n) low products would over-represent some values.
        let threshold = n.wrapping_neg() % n;
        while low < threshold {
            product = (rng.next_u64() as u128) * (n as u128);
            low = product as u64;
        }
    }
    (product >> 64) as u64
}

/// Uniform integer in [0, n) for n <= 2^32, drawing 32-bit words (twice as many draws per
/// generator block as `below` for the small ranges games use).
#[inline]
pub fn below_u32<R: RngCore + ?Sized>(rng: &mut R, n: u32) -> u32 {
    assert!(n > 0, "below_u32(0) has no values");
    let mut product = (rng.next_u32() as u64) * (n as u64);
    let mut low = product as u32;
    if low < n {
        let threshold = n.wrapping_neg() % n;
        while low < threshold {
            product = (rng.next_u32() as u64) * (n as u64);
            low = product as u32;
        }
    }
    (product >> 32) as u32
}

/// Fisher–Yates shuffle: every permutation equally likely.
pub fn shuffle<T, R: RngCore + ?Sized>(rng: &mut R, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// Index i with probability weights[i] / sum(weights). Panics if the weights sum to zero or
/// overflow u64 (definitions are validated when loaded, so this is a bug).
pub fn weighted_index<R: RngCore + ?Sized>(rng: &mut R, weights: &[u64]) -> usize {
    let total = weights.iter().try_fold(0u64, |acc, &w| acc.checked_add(w));
    let total = total.expect("weights overflow u64");
    assert!(total > 0, "weights sum to zero");
    let mut point = below(rng, total);
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

    /// A "generator" that walks every 8-bit value, widened so `below` sees a tiny word space:
    /// lets the tests count outcomes over the whole input space exactly.
    struct Counter(u64);
    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            let v = self.0;
            self.0 = self.0.wrapping_add(1);
            v
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for b in dst {
                *b = self.next_u64() as u8;
            }
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = crate::sim_rng(1);
        for n in [1u64, 2, 3, 7, 37, 54, 1 << 40, u64::MAX] {
            for _ in 0..1000 {
                assert!(below(&mut rng, n) < n);
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
    }

    #[test]
    fn shuffle_keeps_every_item() {
        let mut rng = crate::sim_rng(3);
        let mut items: Vec<u32> = (0..108).collect();
        shuffle(&mut rng, &mut items);
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(sorted, (0..108).collect::<Vec<_>>());
        let _ = Counter(0);
    }
}
