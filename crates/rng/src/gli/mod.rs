//! The statistical tests GLI-11 names, on fresh generator output at 99% confidence:
//! frequency (chi-square on bytes and on scaled outcomes), serial pairs, runs (Knuth's runs up
//! and the bit runs test), serial correlation, gap, poker, coupon collector and permutation.
//! Definitions follow Knuth, TAOCP vol. 2 §3.3.2, and NIST SP 800-22 §2.3 for the bit runs.
//!
//! Decision rule: each test is judged at α = 0.01 (the 99% confidence GLI-11 asks for). A test
//! whose p-value falls below α is run once more on fresh output and fails only if the second
//! p-value is below α too. A good generator then fails a given test with probability 10^-4 and
//! the whole suite of 11 with about 1.1·10^-3, instead of the 1 - 0.99^11 ≈ 10% a single pass
//! would give; a real defect fails both runs.

pub mod special;

use rand_core::RngCore;

use crate::sample::below_u32;

/// Per-test significance level (99% confidence).
pub const SIGNIFICANCE: f64 = 0.01;
/// Values each test draws by default.
pub const SAMPLES_DEFAULT: u64 = 1_000_000;
/// Fewer values than this make several tests meaningless (cells with too few expectations).
pub const SAMPLES_MIN: u64 = 10_000;
/// Adjacent chi-square cells are merged until each expects at least this many observations.
pub const EXPECTED_PER_CELL_MIN: f64 = 5.0;

/// A test statistic and its p-value; chi-square tests carry their degrees of freedom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Statistic {
    pub value: f64,
    pub degrees_of_freedom: Option<u32>,
    pub p_value: f64,
}

/// One test of the suite.
pub struct GliTest {
    pub name: &'static str,
    pub description: &'static str,
    run: fn(&mut dyn RngCore, u64) -> Statistic,
}

impl GliTest {
    pub fn run(&self, rng: &mut dyn RngCore, samples: u64) -> Statistic {
        (self.run)(rng, samples)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestReport {
    pub name: &'static str,
    pub description: &'static str,
    pub first: Statistic,
    /// The second run on fresh output, made only when the first p-value was below α.
    pub retry: Option<Statistic>,
    pub passed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SuiteReport {
    pub samples: u64,
    pub tests: Vec<TestReport>,
}

impl SuiteReport {
    pub fn passed(&self) -> bool {
        self.tests.iter().all(|t| t.passed)
    }
}

/// The suite, in report order.
pub fn tests() -> &'static [GliTest] {
    &TESTS
}

static TESTS: [GliTest; 11] = [
    GliTest {
        name: "frequency-bytes",
        description: "chi-square of byte values, 256 cells",
        run: frequency_bytes,
    },
    GliTest {
        name: "frequency-die",
        description: "chi-square of scaled outcomes in [0, 6)",
        run: frequency_die,
    },
    GliTest {
        name: "frequency-roulette",
        description: "chi-square of scaled outcomes in [0, 37)",
        run: frequency_roulette,
    },
    GliTest {
        name: "serial-pairs",
        description: "chi-square of non-overlapping pairs in [0, 16)^2",
        run: serial_pairs,
    },
    GliTest {
        name: "runs-up",
        description: "Knuth's runs up (independent runs), lengths 1..5, >=6",
        run: runs_up,
    },
    GliTest {
        name: "runs-bits",
        description: "number of runs of identical bits (SP 800-22 2.3)",
        run: runs_bits,
    },
    GliTest {
        name: "serial-correlation",
        description: "lag-1 serial correlation coefficient, normal z-test",
        run: serial_correlation,
    },
    GliTest {
        name: "gap",
        description: "gap lengths between values in [0, 1/2)",
        run: gap,
    },
    GliTest {
        name: "poker",
        description: "distinct values in hands of 5 outcomes in [0, 10)",
        run: poker,
    },
    GliTest {
        name: "coupon-collector",
        description: "segment lengths to collect all of [0, 6)",
        run: coupon_collector,
    },
    GliTest {
        name: "permutation",
        description: "relative order of 5 uniforms, 120 cells",
        run: permutation,
    },
];

/// Runs every test, re-running once on fresh output any test whose p-value is below α.
pub fn run_suite(rng: &mut dyn RngCore, samples: u64) -> SuiteReport {
    let tests = TESTS
        .iter()
        .map(|test| run_test(test, rng, samples))
        .collect();
    SuiteReport { samples, tests }
}

/// One test with the suite's decision rule (re-run once on fresh output when p < α).
pub fn run_test(test: &GliTest, rng: &mut dyn RngCore, samples: u64) -> TestReport {
    let first = test.run(rng, samples);
    let retry = (first.p_value < SIGNIFICANCE).then(|| test.run(rng, samples));
    let passed = retry.unwrap_or(first).p_value >= SIGNIFICANCE;
    TestReport {
        name: test.name,
        description: test.description,
        first,
        retry,
        passed,
    }
}

/// Pearson's chi-square of `observed` counts against cell `probabilities` (summing to 1),
/// merging adjacent cells until each expects at least `EXPECTED_PER_CELL_MIN`.
pub fn chi_square(observed: &[u64], probabilities: &[f64]) -> Statistic {
    assert_eq!(
        observed.len(),
        probabilities.len(),
        "one probability per cell"
    );
    assert!(
        (probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9,
        "probabilities sum to 1"
    );
    let total = observed.iter().sum::<u64>() as f64;
    let mut cells: Vec<(f64, f64)> = Vec::new();
    let (mut o, mut e) = (0.0, 0.0);
    for (&count, &p) in observed.iter().zip(probabilities) {
        o += count as f64;
        e += p * total;
        if e >= EXPECTED_PER_CELL_MIN {
            cells.push((o, e));
            (o, e) = (0.0, 0.0);
        }
    }
    match cells.last_mut() {
        Some(last) => {
            last.0 += o;
            last.1 += e;
        }
        None => cells.push((o, e)),
    }
    let value: f64 = cells
        .iter()
        .filter(|(_, e)| *e > 0.0)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    let degrees = cells.len() as u32 - 1;
    let p_value = if degrees == 0 {
        1.0
    } else {
        special::chi_square_upper_tail(value, degrees)
    };
    Statistic {
        value,
        degrees_of_freedom: Some(degrees),
        p_value,
    }
}

fn z_test(z: f64) -> Statistic {
    Statistic {
        value: z,
        degrees_of_freedom: None,
        p_value: special::normal_two_sided(z),
    }
}

/// A uniform in [0, 1) from the top 53 bits of a 64-bit word.
fn uniform(rng: &mut dyn RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn frequency_bytes(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    let mut counts = [0u64; 256];
    let mut buffer = [0u8; 4096];
    let mut left = samples as usize;
    while left > 0 {
        let chunk = &mut buffer[..left.min(4096)];
        rng.fill_bytes(chunk);
        chunk.iter().for_each(|&b| counts[b as usize] += 1);
        left -= chunk.len();
    }
    chi_square(&counts, &[1.0 / 256.0; 256])
}

fn frequency_of(rng: &mut dyn RngCore, samples: u64, range: u32) -> Statistic {
    let mut counts = vec![0u64; range as usize];
    for _ in 0..samples {
        counts[below_u32(rng, range) as usize] += 1;
    }
    chi_square(&counts, &vec![1.0 / range as f64; range as usize])
}

fn frequency_die(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    frequency_of(rng, samples, 6)
}

fn frequency_roulette(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    frequency_of(rng, samples, 37)
}

fn serial_pairs(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    let mut counts = [0u64; 256];
    for _ in 0..samples / 2 {
        let first = below_u32(rng, 16);
        let second = below_u32(rng, 16);
        counts[(first * 16 + second) as usize] += 1;
    }
    chi_square(&counts, &[1.0 / 256.0; 256])
}

/// Runs up with the element after each run discarded, which makes run lengths independent:
/// P(length = r) = r / (r + 1)! for r < 6 and P(length >= 6) = 1 / 6!.
fn runs_up(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    let mut counts = [0u64; 6];
    let mut used = 1u64;
    let mut previous = uniform(rng);
    let mut length = 1usize;
    while used < samples {
        let next = uniform(rng);
        used += 1;
        if next > previous {
            length += 1;
            previous = next;
        } else {
            counts[length.min(6) - 1] += 1;
            previous = uniform(rng);
            used += 1;
            length = 1;
        }
    }
    let factorial = |n: u32| (1..=n).product::<u32>() as f64;
    let mut probabilities: Vec<f64> = (1..6).map(|r| r as f64 / factorial(r + 1)).collect();
    probabilities.push(1.0 / factorial(6));
    chi_square(&counts, &probabilities)
}

/// SP 800-22 §2.3 on 8·samples bits (each 64-bit word read from its top bit down).
fn runs_bits(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    let words = (samples / 8).max(1);
    let mut ones = 0u64;
    let mut transitions = 0u64;
    let mut last_bit: Option<u64> = None;
    for _ in 0..words {
        let word = rng.next_u64();
        ones += word.count_ones() as u64;
        transitions += ((word ^ (word >> 1)) & (u64::MAX >> 1)).count_ones() as u64;
        if let Some(bit) = last_bit {
            transitions += (bit != word >> 63) as u64;
        }
        last_bit = Some(word & 1);
    }
    let n = (words * 64) as f64;
    let pi = ones as f64 / n;
    if (pi - 0.5).abs() >= 2.0 / n.sqrt() {
        // The test's prerequisite (frequency) fails: the runs statistic is meaningless.
        return Statistic {
            value: pi,
            degrees_of_freedom: None,
            p_value: 0.0,
        };
    }
    let runs = transitions as f64 + 1.0;
    let spread = 2.0 * (2.0 * n).sqrt() * pi * (1.0 - pi);
    let z = (runs - 2.0 * n * pi * (1.0 - pi)) / spread * std::f64::consts::SQRT_2;
    z_test(z)
}

/// Knuth's serial correlation coefficient C of U0..U(n-1) (cyclic), compared with its mean
/// -1/(n-1) and standard deviation sqrt(n(n-3)/(n+1))/(n-1).
fn serial_correlation(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    let n = samples.max(3);
    let first = uniform(rng);
    let (mut sum, mut sum_squares, mut sum_products) = (first, first * first, 0.0);
    let mut previous = first;
    for _ in 1..n {
        let u = uniform(rng);
        sum += u;
        sum_squares += u * u;
        sum_products += previous * u;
        previous = u;
    }
    sum_products += previous * first;
    let nf = n as f64;
    let c = (nf * sum_products - sum * sum) / (nf * sum_squares - sum * sum);
    let mean = -1.0 / (nf - 1.0);
    let deviation = (nf * (nf - 3.0) / (nf + 1.0)).sqrt() / (nf - 1.0);
    z_test((c - mean) / deviation)
}

/// Gap test with the interval [0, 1/2): P(gap = r) = (1/2)^(r+1), lengths >= 30 pooled.
fn gap(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    const LONG: usize = 30;
    let mut counts = [0u64; LONG + 1];
    let mut gap = 0usize;
    for _ in 0..samples {
        if uniform(rng) < 0.5 {
            counts[gap.min(LONG)] += 1;
            gap = 0;
        } else {
            gap += 1;
        }
    }
    let mut probabilities: Vec<f64> = (0..LONG).map(|r| 0.5f64.powi(r as i32 + 1)).collect();
    probabilities.push(0.5f64.powi(LONG as i32));
    chi_square(&counts, &probabilities)
}

/// Probability of seeing exactly r distinct values after k draws from d equally likely ones,
/// for r in 0..=d (a Markov chain on the number of distinct values seen).
fn distinct_after(draws: usize, values: usize) -> Vec<f64> {
    let mut p = vec![0.0; values + 1];
    p[0] = 1.0;
    for _ in 0..draws {
        let mut next = vec![0.0; values + 1];
        for r in 0..=values {
            next[r] += p[r] * r as f64 / values as f64;
            if r < values {
                next[r + 1] += p[r] * (values - r) as f64 / values as f64;
            }
        }
        p = next;
    }
    p
}

/// Poker test: hands of 5 outcomes in [0, 10), classified by how many distinct values they hold.
fn poker(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    const HAND: usize = 5;
    const VALUES: u32 = 10;
    let mut counts = [0u64; HAND];
    for _ in 0..samples / HAND as u64 {
        let mut seen = 0u16;
        for _ in 0..HAND {
            seen |= 1 << below_u32(rng, VALUES);
        }
        counts[seen.count_ones() as usize - 1] += 1;
    }
    let distinct = distinct_after(HAND, VALUES as usize);
    chi_square(&counts, &distinct[1..=HAND])
}

/// Coupon collector: lengths of segments that collect all of [0, 6); lengths >= 40 pooled.
fn coupon_collector(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    const VALUES: usize = 6;
    const LONG: usize = 40;
    let mut counts = [0u64; LONG + 1];
    let (mut seen, mut length) = (0u8, 0usize);
    for _ in 0..samples {
        seen |= 1 << below_u32(rng, VALUES as u32);
        length += 1;
        if seen.count_ones() as usize == VALUES {
            counts[length.min(LONG)] += 1;
            (seen, length) = (0, 0);
        }
    }
    // P(length = r) = P(VALUES - 1 distinct after r - 1 draws) · 1/VALUES.
    let mut probabilities = vec![0.0; LONG + 1];
    for (r, p) in probabilities.iter_mut().enumerate().take(LONG).skip(VALUES) {
        *p = distinct_after(r - 1, VALUES)[VALUES - 1] / VALUES as f64;
    }
    probabilities[LONG] = 1.0 - probabilities.iter().sum::<f64>();
    chi_square(&counts[VALUES..], &probabilities[VALUES..])
}

/// Permutation test: the relative order of 5 uniforms is one of 120 equally likely orders.
fn permutation(rng: &mut dyn RngCore, samples: u64) -> Statistic {
    const GROUP: usize = 5;
    let mut counts = [0u64; 120];
    for _ in 0..samples / GROUP as u64 {
        let mut group = [0.0f64; GROUP];
        group.iter_mut().for_each(|u| *u = uniform(rng));
        counts[order_index(&mut group)] += 1;
    }
    chi_square(&counts, &[1.0 / 120.0; 120])
}

/// Knuth's Algorithm P: the index in [0, t!) of the order of `values` (which it scrambles).
fn order_index(values: &mut [f64]) -> usize {
    let mut index = 0;
    for r in (2..=values.len()).rev() {
        let largest = (0..r)
            .max_by(|&a, &b| values[a].total_cmp(&values[b]))
            .expect("r >= 2");
        index = index * r + largest;
        values.swap(r - 1, largest);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededDrbg;

    #[test]
    fn suite_passes_on_the_certified_drbg() {
        let mut rng = SeededDrbg::from_seed(b"gli suite on the certified generator");
        let report = run_suite(&mut rng, 200_000);
        assert!(report.passed(), "{report:#?}");
        assert_eq!(report.tests.len(), 11);
    }

    /// Every 64-bit word has its lowest bit set: one byte in eight is always odd.
    struct LowBitSet(crate::SimRng);
    impl RngCore for LowBitSet {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0.next_u64() | 1
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for chunk in dst.chunks_mut(8) {
                chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
            }
        }
    }

    /// Each word comes out twice: neighbours are perfectly correlated.
    struct Stutter(crate::SimRng, Option<u64>);
    impl RngCore for Stutter {
        fn next_u32(&mut self) -> u32 {
            (self.next_u64() >> 32) as u32
        }
        fn next_u64(&mut self) -> u64 {
            match self.1.take() {
                Some(word) => word,
                None => {
                    let word = self.0.next_u64();
                    self.1 = Some(word);
                    word
                }
            }
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            for chunk in dst.chunks_mut(8) {
                chunk.copy_from_slice(&self.next_u64().to_le_bytes()[..chunk.len()]);
            }
        }
    }

    /// The low byte of a 32-bit LCG's state (Numerical Recipes constants): its period is 256.
    struct LcgLowByte(u32);
    impl LcgLowByte {
        fn byte(&mut self) -> u8 {
            self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            self.0 as u8
        }
    }
    impl RngCore for LcgLowByte {
        fn next_u32(&mut self) -> u32 {
            u32::from_le_bytes(std::array::from_fn(|_| self.byte()))
        }
        fn next_u64(&mut self) -> u64 {
            u64::from_le_bytes(std::array::from_fn(|_| self.byte()))
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.iter_mut().for_each(|b| *b = self.byte());
        }
    }

    fn failed(report: &SuiteReport) -> Vec<&'static str> {
        report
            .tests
            .iter()
            .filter(|t| !t.passed)
            .map(|t| t.name)
            .collect()
    }

    #[test]
    fn suite_fails_a_generator_with_a_stuck_bit() {
        let report = run_suite(&mut LowBitSet(crate::sim_rng(1)), 200_000);
        assert!(!report.passed());
        assert!(
            failed(&report).contains(&"frequency-bytes"),
            "{:?}",
            failed(&report)
        );
    }

    #[test]
    fn suite_fails_a_generator_that_repeats_itself() {
        let report = run_suite(&mut Stutter(crate::sim_rng(2), None), 200_000);
        let failures = failed(&report);
        for name in [
            "serial-correlation",
            "runs-up",
            "permutation",
            "serial-pairs",
        ] {
            assert!(
                failures.contains(&name),
                "{name} should catch it: {failures:?}"
            );
        }
    }

    #[test]
    fn suite_fails_the_low_bits_of_an_lcg() {
        let report = run_suite(&mut LcgLowByte(1), 200_000);
        let failures = failed(&report);
        assert!(failures.len() >= 5, "{failures:?}");
        assert!(failures.contains(&"permutation"), "{failures:?}");
    }

    #[test]
    fn failing_first_run_gets_exactly_one_retry() {
        let report = run_suite(&mut LowBitSet(crate::sim_rng(3)), 50_000);
        let bytes = report
            .tests
            .iter()
            .find(|t| t.name == "frequency-bytes")
            .unwrap();
        assert!(bytes.first.p_value < SIGNIFICANCE);
        assert!(bytes.retry.expect("retried").p_value < SIGNIFICANCE);
        assert!(!bytes.passed);
    }

    #[test]
    fn poker_cell_probabilities_match_knuths_table() {
        let poker = distinct_after(5, 10);
        assert!((poker[1..].iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Knuth's table for d = 10, k = 5: 0.0001, 0.0135, 0.18, 0.504, 0.3024.
        for (got, want) in poker[1..].iter().zip([0.0001, 0.0135, 0.18, 0.504, 0.3024]) {
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn order_index_numbers_all_orders_once() {
        let mut seen = std::collections::BTreeSet::new();
        let mut items = [0.0, 1.0, 2.0, 3.0, 4.0];
        // Every permutation of 5 distinct values, by Heap's algorithm over indices.
        fn permute(k: usize, items: &mut [f64; 5], seen: &mut std::collections::BTreeSet<usize>) {
            if k == 1 {
                let mut copy = *items;
                seen.insert(order_index(&mut copy));
                return;
            }
            for i in 0..k {
                permute(k - 1, items, seen);
                let j = if k & 1 == 0 { i } else { 0 };
                items.swap(j, k - 1);
            }
        }
        permute(5, &mut items, &mut seen);
        assert_eq!(seen.len(), 120);
        assert_eq!(*seen.iter().max().unwrap(), 119);
    }

    #[test]
    fn chi_square_merges_sparse_cells() {
        let stat = chi_square(&[1, 1, 98], &[0.01, 0.01, 0.98]);
        assert_eq!(stat.degrees_of_freedom, Some(0));
        assert_eq!(stat.p_value, 1.0);
        let stat = chi_square(&[50, 50], &[0.5, 0.5]);
        assert_eq!(
            (stat.value, stat.degrees_of_freedom, stat.p_value),
            (0.0, Some(1), 1.0)
        );
    }
}
