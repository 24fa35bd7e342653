//! The certified generator for live play: CTR_DRBG(AES-256) seeded from every available
//! entropy source, each source's bytes health-tested, reseeded after a bounded number of
//! requests and a bounded time. Any entropy failure stops the generator for good (fail
//! closed): every later call returns the error, no output is produced, and the process-wide
//! counters in `crate::health` record it.
//!
//! Reads the monotonic clock (`Instant`) for the time-based reseed: this and the entropy
//! sources are the crate's only contact with the outside world.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand_core::{RngCore, TryCryptoRng, TryRngCore};
use zeroize::Zeroize;

use crate::drbg::{CtrDrbg, DrbgError, REQUEST_BYTES_MAX};
use crate::entropy::{CpuEntropy, EntropySource, OsEntropy};
use crate::health::{self, HealthTest, HealthTests, STARTUP_SAMPLES};

/// Entropy input taken from each source per (re)seed: 384 bits, above the 256-bit strength.
pub const ENTROPY_BYTES_PER_SOURCE: usize = 48;
/// Nonce for instantiation (SP 800-90A §8.6.7: at least half the security strength).
pub const NONCE_BYTES: usize = 16;
/// Bytes buffered by a `Round` between DRBG requests.
pub const ROUND_BUFFER_BYTES: usize = 256;
const PERSONALIZATION: &[u8] = b"croupier-rng/ctr-drbg-aes256-df/v1";

/// When the generator reseeds: whichever bound is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReseedPolicy {
    /// DRBG requests (each at most 64 KiB) between reseeds.
    pub reseed_interval_requests: u64,
    /// Time between reseeds.
    pub reseed_interval_ms: u64,
}

impl Default for ReseedPolicy {
    /// At most 1024 requests (64 MiB) or 10 s of output per seed.
    fn default() -> Self {
        ReseedPolicy {
            reseed_interval_requests: 1024,
            reseed_interval_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RngError {
    #[error(
        "entropy source '{source_name}' failed the {test} ({count} against a cutoff of {cutoff}); \
         the generator is stopped"
    )]
    HealthTestFailed {
        test: HealthTest,
        source_name: &'static str,
        count: u32,
        cutoff: u32,
    },
    #[error("entropy source '{source_name}' is unavailable: {reason}; the generator is stopped")]
    EntropyUnavailable {
        source_name: &'static str,
        reason: String,
    },
    #[error("no entropy source was given")]
    NoEntropySource,
}

struct MonitoredSource {
    source: Box<dyn EntropySource>,
    tests: HealthTests,
}

impl MonitoredSource {
    fn new(source: Box<dyn EntropySource>) -> Self {
        MonitoredSource {
            source,
            tests: HealthTests::new(),
        }
    }

    /// Appends `bytes` health-tested bytes of this source to `out`.
    fn draw(&mut self, bytes: usize, out: &mut Vec<u8>) -> Result<(), RngError> {
        let start = out.len();
        out.resize(start + bytes, 0);
        let name = self.source.name();
        if let Err(e) = self.source.fill(&mut out[start..]) {
            health::record_entropy_failure();
            return Err(RngError::EntropyUnavailable {
                source_name: name,
                reason: e.reason,
            });
        }
        self.tests.check(&out[start..]).map_err(|failure| {
            health::record_health_failure(failure.test);
            RngError::HealthTestFailed {
                test: failure.test,
                source_name: name,
                count: failure.count,
                cutoff: failure.cutoff,
            }
        })
    }
}

/// The live generator. Not `Clone`: two copies would emit the same stream.
pub struct CertifiedRng {
    drbg: CtrDrbg,
    sources: Vec<MonitoredSource>,
    policy: ReseedPolicy,
    last_reseed: Instant,
    failure: Option<RngError>,
}

/// Shows the policy and the state, never the DRBG secret.
impl fmt::Debug for CertifiedRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.sources.iter().map(|s| s.source.name()).collect();
        f.debug_struct("CertifiedRng")
            .field("sources", &names)
            .field("policy", &self.policy)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl CertifiedRng {
    /// Seeds from the OS and, where the CPU has them, RDSEED/RDRAND, with the default policy.
    pub fn new() -> Result<Self, RngError> {
        let mut sources: Vec<Box<dyn EntropySource>> = vec![Box::new(OsEntropy)];
        if let Some(cpu) = CpuEntropy::detect() {
            sources.push(Box::new(cpu));
        }
        Self::with_sources(sources, ReseedPolicy::default())
    }

    /// Start-up tests every source (SP 800-90B §4.3), then instantiates. The first source also
    /// supplies the nonce.
    pub fn with_sources(
        sources: Vec<Box<dyn EntropySource>>,
        policy: ReseedPolicy,
    ) -> Result<Self, RngError> {
        if sources.is_empty() {
            return Err(RngError::NoEntropySource);
        }
        let mut sources: Vec<MonitoredSource> =
            sources.into_iter().map(MonitoredSource::new).collect();
        let mut startup = Vec::with_capacity(STARTUP_SAMPLES);
        for source in &mut sources {
            startup.clear();
            source.draw(STARTUP_SAMPLES, &mut startup)?;
        }
        startup.zeroize();
        let mut entropy = gather(&mut sources)?;
        let mut nonce = Vec::with_capacity(NONCE_BYTES);
        sources[0].draw(NONCE_BYTES, &mut nonce)?;
        let drbg = CtrDrbg::instantiate(&entropy, &nonce, &personalization())
            .expect("inputs are within bounds");
        entropy.zeroize();
        health::record_reseed();
        Ok(CertifiedRng {
            drbg,
            sources,
            policy,
            last_reseed: Instant::now(),
            failure: None,
        })
    }

    /// Fills `dst` with generator output, reseeding whenever the policy says so.
    pub fn fill(&mut self, dst: &mut [u8]) -> Result<(), RngError> {
        self.check_alive()?;
        for request in dst.chunks_mut(REQUEST_BYTES_MAX) {
            self.reseed_if_due()?;
            self.generate(request);
        }
        Ok(())
    }

    /// Checks health and reseeds if due, then lends an infallible `RngCore` for one game round.
    /// A round never reseeds (so it cannot fail half-way); its requests count towards the next
    /// reseed. Output it buffered but did not hand out is erased when it is dropped.
    pub fn round(&mut self) -> Result<Round<'_>, RngError> {
        self.check_alive()?;
        self.reseed_if_due()?;
        Ok(Round {
            rng: self,
            buffer: [0; ROUND_BUFFER_BYTES],
            position: ROUND_BUFFER_BYTES,
        })
    }

    /// Reseeds now from every source.
    pub fn reseed(&mut self) -> Result<(), RngError> {
        self.check_alive()?;
        let outcome = gather(&mut self.sources);
        let mut entropy = self.stop_on_error(outcome)?;
        self.drbg
            .reseed(&entropy, &[])
            .expect("inputs are within bounds");
        entropy.zeroize();
        self.last_reseed = Instant::now();
        health::record_reseed();
        Ok(())
    }

    /// The error that stopped this generator, if one did.
    pub fn failure(&self) -> Option<&RngError> {
        self.failure.as_ref()
    }

    pub fn policy(&self) -> ReseedPolicy {
        self.policy
    }

    /// Names of the entropy sources in use, e.g. `["os", "rdseed"]`.
    pub fn source_names(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.source.name()).collect()
    }

    fn check_alive(&self) -> Result<(), RngError> {
        match &self.failure {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    fn stop_on_error<T>(&mut self, outcome: Result<T, RngError>) -> Result<T, RngError> {
        if let Err(error) = &outcome {
            self.failure = Some(error.clone());
        }
        outcome
    }

    fn reseed_if_due(&mut self) -> Result<(), RngError> {
        let by_count = self.drbg.requests_since_reseed() >= self.policy.reseed_interval_requests;
        let by_time =
            self.last_reseed.elapsed() >= Duration::from_millis(self.policy.reseed_interval_ms);
        if by_count || by_time {
            self.reseed()?;
        }
        Ok(())
    }

    fn generate(&mut self, request: &mut [u8]) {
        match self.drbg.generate(request, &[]) {
            Ok(()) => {}
            // The policy's interval is far below SP 800-90A's 2^48 requests.
            Err(DrbgError::ReseedRequired) => {
                unreachable!("policy reseeds long before 2^48 requests")
            }
            Err(error) => unreachable!("request within bounds: {error}"),
        }
    }
}

/// Entropy input: health-tested bytes of every source, concatenated (the derivation function
/// conditions them together; any one good source suffices).
fn gather(sources: &mut [MonitoredSource]) -> Result<Vec<u8>, RngError> {
    let mut entropy = Vec::with_capacity(ENTROPY_BYTES_PER_SOURCE * sources.len());
    for source in sources {
        source.draw(ENTROPY_BYTES_PER_SOURCE, &mut entropy)?;
    }
    Ok(entropy)
}

/// Distinct per process and per instance, so two generators never share a seed path even if
/// their entropy sources did (SP 800-90A §8.7.1 recommends a unique personalization string).
fn personalization() -> Vec<u8> {
    static INSTANCES: AtomicU64 = AtomicU64::new(0);
    let mut text = PERSONALIZATION.to_vec();
    text.extend_from_slice(&std::process::id().to_be_bytes());
    text.extend_from_slice(&INSTANCES.fetch_add(1, Ordering::Relaxed).to_be_bytes());
    text
}

impl TryRngCore for CertifiedRng {
    type Error = RngError;

    fn try_next_u32(&mut self) -> Result<u32, RngError> {
        let mut bytes = [0u8; 4];
        self.fill(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, RngError> {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), RngError> {
        self.fill(dst)
    }
}

impl TryCryptoRng for CertifiedRng {}

/// One round's draws from a healthy generator (see `CertifiedRng::round`).
pub struct Round<'a> {
    rng: &'a mut CertifiedRng,
    buffer: [u8; ROUND_BUFFER_BYTES],
    position: usize,
}

impl fmt::Debug for Round<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Round").finish_non_exhaustive()
    }
}

impl Round<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        if self.position + N > ROUND_BUFFER_BYTES {
            self.rng.generate(&mut self.buffer);
            self.position = 0;
        }
        let bytes: [u8; N] = self.buffer[self.position..self.position + N]
            .try_into()
            .expect("N bytes");
        self.buffer[self.position..self.position + N].zeroize();
        self.position += N;
        bytes
    }
}

impl RngCore for Round<'_> {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take::<4>())
    }

    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take::<8>())
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for request in dst.chunks_mut(REQUEST_BYTES_MAX) {
            self.rng.generate(request);
        }
    }
}

impl rand_core::CryptoRng for Round<'_> {}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        self.buffer.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::EntropyError;

    /// Replays a byte pattern forever.
    struct Scripted {
        next: Box<dyn FnMut() -> u8 + Send>,
    }

    impl EntropySource for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn fill(&mut self, dst: &mut [u8]) -> Result<(), EntropyError> {
            dst.iter_mut().for_each(|b| *b = (self.next)());
            Ok(())
        }
    }

    fn scripted(next: impl FnMut() -> u8 + Send + 'static) -> Box<dyn EntropySource> {
        Box::new(Scripted {
            next: Box::new(next),
        })
    }

    /// Healthy until `healthy_bytes` bytes were delivered, then stuck at one value.
    fn sticks_after(healthy_bytes: usize) -> Box<dyn EntropySource> {
        let mut sim = crate::sim_rng(5);
        let mut delivered = 0usize;
        scripted(move || {
            delivered += 1;
            if delivered > healthy_bytes {
                0x42
            } else {
                (sim.next_u32() % 255 + 1) as u8
            }
        })
    }

    #[test]
    fn stuck_source_is_refused_at_start_up() {
        let before = health::health().health_test_failures_total;
        let error = CertifiedRng::with_sources(vec![scripted(|| 0x00)], ReseedPolicy::default())
            .unwrap_err();
        assert!(matches!(
            error,
            RngError::HealthTestFailed {
                test: HealthTest::RepetitionCount,
                ..
            }
        ));
        assert!(health::health().health_test_failures_total > before);
    }

    #[test]
    fn source_that_sticks_later_stops_the_generator_for_good() {
        let policy = ReseedPolicy {
            reseed_interval_requests: 1,
            reseed_interval_ms: 60_000,
        };
        let sources = vec![
            Box::new(OsEntropy) as Box<dyn EntropySource>,
            sticks_after(2000),
        ];
        let mut rng = CertifiedRng::with_sources(sources, policy).unwrap();
        let mut out = [0u8; 64];
        let mut failed = None;
        for _ in 0..100 {
            if let Err(error) = rng.fill(&mut out) {
                failed = Some(error);
                break;
            }
        }
        let error = failed.expect("the stuck source is caught at a reseed");
        assert!(matches!(
            error,
            RngError::HealthTestFailed {
                source_name: "scripted",
                ..
            }
        ));
        out = [0xEE; 64];
        assert_eq!(
            rng.fill(&mut out),
            Err(error.clone()),
            "fails closed on every later call"
        );
        assert_eq!(out, [0xEE; 64], "and writes no output");
        assert!(rng.round().is_err());
        assert_eq!(rng.failure(), Some(&error));
    }

    #[test]
    fn biased_source_fails_the_adaptive_proportion_test() {
        // Two zeros in every three bytes, never six in a row: only the proportion test sees it.
        let mut i = 0u32;
        let biased = scripted(move || {
            i += 1;
            match i % 3 {
                0 => (i % 251 + 1) as u8,
                _ => 0,
            }
        });
        let error = CertifiedRng::with_sources(vec![biased], ReseedPolicy::default()).unwrap_err();
        assert!(matches!(
            error,
            RngError::HealthTestFailed {
                test: HealthTest::AdaptiveProportion,
                ..
            }
        ));
    }

    #[test]
    fn unavailable_source_fails_closed() {
        struct Broken;
        impl EntropySource for Broken {
            fn name(&self) -> &'static str {
                "broken"
            }
            fn fill(&mut self, _: &mut [u8]) -> Result<(), EntropyError> {
                Err(EntropyError {
                    reason: "device gone".into(),
                })
            }
        }
        let error = CertifiedRng::with_sources(vec![Box::new(Broken)], ReseedPolicy::default())
            .unwrap_err();
        assert!(matches!(
            error,
            RngError::EntropyUnavailable {
                source_name: "broken",
                ..
            }
        ));
        assert!(CertifiedRng::with_sources(vec![], ReseedPolicy::default()).is_err());
    }

    #[test]
    fn reseeds_after_the_request_interval() {
        let policy = ReseedPolicy {
            reseed_interval_requests: 3,
            reseed_interval_ms: 3_600_000,
        };
        let mut rng = CertifiedRng::with_sources(vec![Box::new(OsEntropy)], policy).unwrap();
        let before = health::health().reseeds_total;
        let mut out = vec![0u8; REQUEST_BYTES_MAX * 7];
        rng.fill(&mut out).unwrap();
        // 7 requests with a reseed due before the 4th and the 7th.
        assert!(health::health().reseeds_total >= before + 2);
        assert!(rng.drbg.requests_since_reseed() <= 3);
    }

    #[test]
    fn reseeds_after_the_time_interval() {
        let policy = ReseedPolicy {
            reseed_interval_requests: 1 << 40,
            reseed_interval_ms: 0,
        };
        let mut rng = CertifiedRng::with_sources(vec![Box::new(OsEntropy)], policy).unwrap();
        let mut out = [0u8; 32];
        rng.fill(&mut out).unwrap();
        rng.fill(&mut out).unwrap();
        assert_eq!(
            rng.drbg.requests_since_reseed(),
            1,
            "a zero interval reseeds before every request"
        );
    }

    #[test]
    fn live_generator_produces_distinct_streams() {
        let mut a = CertifiedRng::new().unwrap();
        let mut b = CertifiedRng::new().unwrap();
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill(&mut x).unwrap();
        b.fill(&mut y).unwrap();
        assert_ne!(x, y);
        assert!(a.source_names().contains(&"os"));
    }

    #[test]
    fn round_draws_are_in_range_and_debug_hides_state() {
        let mut rng = CertifiedRng::new().unwrap();
        let mut round = rng.round().unwrap();
        for _ in 0..1000 {
            assert!(crate::sample::below_u32(&mut round, 37) < 37);
        }
        let mut bytes = [0u8; 100];
        round.fill_bytes(&mut bytes);
        drop(round);
        assert!(!format!("{rng:?}").contains("cipher"));
    }
}
