//! Continuous health tests on entropy input (NIST SP 800-90B §4.4): the repetition count test
//! and the adaptive proportion test, run on every byte an entropy source delivers, plus the
//! process-wide counters a server exports as metrics.
//!
//! Samples are bytes. The sources (the kernel's getrandom and the CPU's RDSEED/RDRAND) are
//! conditioned and claim full entropy, so the claimed min-entropy is H = 8 bits per sample.
//! A failure stops the generator (fail closed), so false alarms must be negligible: the false
//! positive probability per sample is α = 2^-40 (SP 800-90B allows 2^-20 to 2^-40). Cutoffs:
//! - repetition count: C = 1 + ⌈40 / 8⌉ = 6 identical bytes in a row;
//! - adaptive proportion: window W = 512 (non-binary samples), C = 1 + CRITBINOM(512, 2^-8,
//!   1 - 2^-40) = 19 occurrences of the window's first byte within the window.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// log2(1/α): the false positive probability per sample is 2^-40.
pub const FALSE_POSITIVE_LOG2: u32 = 40;
/// Claimed min-entropy per 8-bit sample, in bits.
pub const CLAIMED_ENTROPY_BITS_PER_SAMPLE: u32 = 8;
/// Repetition count cutoff: 1 + ⌈FALSE_POSITIVE_LOG2 / H⌉.
pub const REPETITION_CUTOFF_SAMPLES: u32 =
    1 + FALSE_POSITIVE_LOG2.div_ceil(CLAIMED_ENTROPY_BITS_PER_SAMPLE);
/// Adaptive proportion window for non-binary samples (SP 800-90B §4.4.2).
pub const PROPORTION_WINDOW_SAMPLES: u32 = 512;
/// Adaptive proportion cutoff; `proportion_cutoff()` recomputes it from the binomial law.
pub const PROPORTION_CUTOFF_SAMPLES: u32 = 19;
/// Start-up testing runs this many samples through both tests before first use (§4.3).
pub const STARTUP_SAMPLES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthTest {
    RepetitionCount,
    AdaptiveProportion,
}

impl std::fmt::Display for HealthTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthTest::RepetitionCount => "repetition count test",
            HealthTest::AdaptiveProportion => "adaptive proportion test",
        })
    }
}

/// What a failed test saw: the sample value and how often it occurred against the cutoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthFailure {
    pub test: HealthTest,
    pub count: u32,
    pub cutoff: u32,
}

/// Both tests' state for one source; the state carries across calls, so a run split over two
/// reseeds is still caught.
#[derive(Debug, Clone)]
pub struct HealthTests {
    repeated: Option<u8>,
    repeat_count: u32,
    window_value: Option<u8>,
    window_seen: u32,
    window_matches: u32,
}

impl Default for HealthTests {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthTests {
    pub fn new() -> Self {
        HealthTests {
            repeated: None,
            repeat_count: 0,
            window_value: None,
            window_seen: 0,
            window_matches: 0,
        }
    }

    /// Runs every sample through both tests; the first failure wins.
    pub fn check(&mut self, samples: &[u8]) -> Result<(), HealthFailure> {
        for &sample in samples {
            self.repetition_count(sample)?;
            self.adaptive_proportion(sample)?;
        }
        Ok(())
    }

    fn repetition_count(&mut self, sample: u8) -> Result<(), HealthFailure> {
        if self.repeated == Some(sample) {
            self.repeat_count += 1;
            if self.repeat_count >= REPETITION_CUTOFF_SAMPLES {
                return Err(HealthFailure {
                    test: HealthTest::RepetitionCount,
                    count: self.repeat_count,
                    cutoff: REPETITION_CUTOFF_SAMPLES,
                });
            }
        } else {
            self.repeated = Some(sample);
            self.repeat_count = 1;
        }
        Ok(())
    }

    fn adaptive_proportion(&mut self, sample: u8) -> Result<(), HealthFailure> {
        match self.window_value {
            None => {
                self.window_value = Some(sample);
                self.window_seen = 1;
                self.window_matches = 1;
            }
            Some(value) => {
                self.window_seen += 1;
                if value == sample {
                    self.window_matches += 1;
                    if self.window_matches >= PROPORTION_CUTOFF_SAMPLES {
                        return Err(HealthFailure {
                            test: HealthTest::AdaptiveProportion,
                            count: self.window_matches,
                            cutoff: PROPORTION_CUTOFF_SAMPLES,
                        });
                    }
                }
                if self.window_seen == PROPORTION_WINDOW_SAMPLES {
                    self.window_value = None;
                }
            }
        }
        Ok(())
    }
}

/// 1 + CRITBINOM(W, 2^-H, 1 - α): the smallest count c such that a source with min-entropy H
/// repeats the window's first value c or more times in the W - 1 later samples with
/// probability at most α.
pub fn proportion_cutoff(window: u32, entropy_bits: u32, false_positive_log2: u32) -> u32 {
    let p = 0.5f64.powi(entropy_bits as i32);
    let alpha = 0.5f64.powi(false_positive_log2 as i32);
    let n = window as u64;
    // P(X = k) for X ~ Binomial(W, p), summed from the top so tiny tails keep their precision.
    let ln_pmf = |k: u64| -> f64 {
        crate::gli::special::ln_gamma(n as f64 + 1.0)
            - crate::gli::special::ln_gamma(k as f64 + 1.0)
            - crate::gli::special::ln_gamma((n - k) as f64 + 1.0)
            + k as f64 * p.ln()
            + (n - k) as f64 * (1.0 - p).ln()
    };
    let mut tail = 0.0; // P(X > k)
    for k in (0..=n).rev() {
        let with_k = tail + ln_pmf(k).exp();
        if with_k > alpha {
            return 1 + k as u32;
        }
        tail = with_k;
    }
    1
}

static HEALTH_FAILURES_TOTAL: AtomicU64 = AtomicU64::new(0);
static ENTROPY_FAILURES_TOTAL: AtomicU64 = AtomicU64::new(0);
static RESEEDS_TOTAL: AtomicU64 = AtomicU64::new(0);
static LAST_FAILED_TEST: AtomicU8 = AtomicU8::new(0);

/// Process-wide counters of every certified generator, for a metrics exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthStatus {
    pub health_test_failures_total: u64,
    pub entropy_source_failures_total: u64,
    pub reseeds_total: u64,
    pub last_failed_test: Option<HealthTest>,
}

impl HealthStatus {
    /// True while no health test has ever failed in this process.
    pub fn is_healthy(&self) -> bool {
        self.health_test_failures_total == 0 && self.entropy_source_failures_total == 0
    }
}

/// The counters of all certified generators in this process (monotonic).
pub fn health() -> HealthStatus {
    let last_failed_test = match LAST_FAILED_TEST.load(Ordering::Relaxed) {
        1 => Some(HealthTest::RepetitionCount),
        2 => Some(HealthTest::AdaptiveProportion),
        _ => None,
    };
    HealthStatus {
        health_test_failures_total: HEALTH_FAILURES_TOTAL.load(Ordering::Relaxed),
        entropy_source_failures_total: ENTROPY_FAILURES_TOTAL.load(Ordering::Relaxed),
        reseeds_total: RESEEDS_TOTAL.load(Ordering::Relaxed),
        last_failed_test,
    }
}

pub(crate) fn record_health_failure(test: HealthTest) {
    HEALTH_FAILURES_TOTAL.fetch_add(1, Ordering::Relaxed);
    let code = match test {
        HealthTest::RepetitionCount => 1,
        HealthTest::AdaptiveProportion => 2,
    };
    LAST_FAILED_TEST.store(code, Ordering::Relaxed);
}

pub(crate) fn record_entropy_failure() {
    ENTROPY_FAILURES_TOTAL.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn record_reseed() {
    RESEEDS_TOTAL.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_cutoffs_follow_from_the_claimed_entropy_and_alpha() {
        assert_eq!(REPETITION_CUTOFF_SAMPLES, 6);
        assert_eq!(
            proportion_cutoff(PROPORTION_WINDOW_SAMPLES, 8, 40),
            PROPORTION_CUTOFF_SAMPLES
        );
        // The SP 800-90B table values for other claims check the binomial computation itself.
        assert_eq!(proportion_cutoff(512, 8, 20), 13);
        assert_eq!(proportion_cutoff(512, 4, 40), 78);
        assert_eq!(proportion_cutoff(512, 1, 20), 311);
    }

    #[test]
    fn stuck_source_fails_the_repetition_count_test_at_the_cutoff() {
        let mut tests = HealthTests::new();
        assert!(tests.check(&[0xAB; 5]).is_ok());
        let failure = tests.check(&[0xAB]).unwrap_err();
        assert_eq!(failure.test, HealthTest::RepetitionCount);
        assert_eq!(failure.count, 6);
    }

    #[test]
    fn run_split_across_calls_is_still_counted() {
        let mut tests = HealthTests::new();
        assert!(tests.check(&[1, 2, 3, 9, 9, 9]).is_ok());
        assert_eq!(
            tests.check(&[9, 9, 9]).unwrap_err().test,
            HealthTest::RepetitionCount
        );
    }

    #[test]
    fn value_over_represented_in_a_window_fails_the_adaptive_proportion_test() {
        // 0 every other byte, never two in a row: invisible to the repetition count test.
        let samples: Vec<u8> = (0..512u32)
            .map(|i| if i % 2 == 0 { 0 } else { (i % 251 + 1) as u8 })
            .collect();
        let failure = HealthTests::new().check(&samples).unwrap_err();
        assert_eq!(failure.test, HealthTest::AdaptiveProportion);
        assert_eq!(failure.count, PROPORTION_CUTOFF_SAMPLES);
    }

    #[test]
    fn uniform_bytes_pass_both_tests() {
        let mut rng = crate::sim_rng(11);
        let mut bytes = vec![0u8; 1 << 20];
        rand_core::RngCore::fill_bytes(&mut rng, &mut bytes);
        assert!(HealthTests::new().check(&bytes).is_ok());
    }

    #[test]
    fn window_restarts_after_512_samples() {
        // 18 zeros spread in each window stay under the cutoff of 19, window after window.
        let mut tests = HealthTests::new();
        for _ in 0..4 {
            let window: Vec<u8> = (0..512u32)
                .map(|i| {
                    if i % 28 == 0 && i / 28 < 18 {
                        0
                    } else {
                        (i % 200 + 1) as u8
                    }
                })
                .collect();
            assert!(tests.check(&window).is_ok());
        }
    }
}
