//! Entropy sources: the operating system (getrandom) and the CPU (RDSEED, falling back to
//! RDRAND). This is the crate's only I/O; everything downstream of it is pure.

/// Why a source could not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct EntropyError {
    pub reason: String,
}

/// A source of entropy input. Implementations must fill all of `dst` or fail.
pub trait EntropySource: Send {
    /// A short stable name for errors and reports ("os", "rdseed", ...).
    fn name(&self) -> &'static str;
    fn fill(&mut self, dst: &mut [u8]) -> Result<(), EntropyError>;
}

/// The kernel's generator through getrandom(2) (or the platform equivalent).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl EntropySource for OsEntropy {
    fn name(&self) -> &'static str {
        "os"
    }

    fn fill(&mut self, dst: &mut [u8]) -> Result<(), EntropyError> {
        getrandom::fill(dst).map_err(|e| EntropyError {
            reason: format!("getrandom failed: {e}"),
        })
    }
}

/// The CPU's hardware generator: RDSEED (an SP 800-90B/C entropy source) when present, else
/// RDRAND (its DRBG output). A word RDSEED cannot deliver after `RDSEED_RETRIES_MAX` tries is
/// taken from RDRAND instead; RDRAND gets `RDRAND_RETRIES_MAX` tries (Intel's guidance).
#[derive(Debug, Clone, Copy)]
pub struct CpuEntropy {
    has_rdseed: bool,
    has_rdrand: bool,
}

pub const RDSEED_RETRIES_MAX: u32 = 128;
pub const RDRAND_RETRIES_MAX: u32 = 10;

impl CpuEntropy {
    /// The CPU source, or None when the CPU has neither instruction.
    pub fn detect() -> Option<Self> {
        let (has_rdseed, has_rdrand) = detect_instructions();
        (has_rdseed || has_rdrand).then_some(CpuEntropy {
            has_rdseed,
            has_rdrand,
        })
    }

    fn word(&self) -> Option<u64> {
        if self.has_rdseed {
            for _ in 0..RDSEED_RETRIES_MAX {
                if let Some(word) = cpu::rdseed() {
                    return Some(word);
                }
                std::hint::spin_loop();
            }
        }
        if self.has_rdrand {
            for _ in 0..RDRAND_RETRIES_MAX {
                if let Some(word) = cpu::rdrand() {
                    return Some(word);
                }
            }
        }
        None
    }
}

impl EntropySource for CpuEntropy {
    fn name(&self) -> &'static str {
        if self.has_rdseed {
            "rdseed"
        } else {
            "rdrand"
        }
    }

    fn fill(&mut self, dst: &mut [u8]) -> Result<(), EntropyError> {
        for chunk in dst.chunks_mut(8) {
            let word = self.word().ok_or_else(|| EntropyError {
                reason: "RDSEED and RDRAND returned no data after their retries".to_owned(),
            })?;
            chunk.copy_from_slice(&word.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
fn detect_instructions() -> (bool, bool) {
    (
        std::arch::is_x86_feature_detected!("rdseed"),
        std::arch::is_x86_feature_detected!("rdrand"),
    )
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_instructions() -> (bool, bool) {
    (false, false)
}

/// The two instructions behind runtime detection. Hand-written because they are two intrinsic
/// calls; the `rdrand` crate targets an older rand_core.
#[cfg(target_arch = "x86_64")]
mod cpu {
    use std::arch::x86_64::{_rdrand64_step, _rdseed64_step};

    pub fn rdseed() -> Option<u64> {
        // SAFETY: `CpuEntropy::detect` only enables this path when the CPU reports RDSEED.
        unsafe { rdseed_step() }
    }

    pub fn rdrand() -> Option<u64> {
        // SAFETY: `CpuEntropy::detect` only enables this path when the CPU reports RDRAND.
        unsafe { rdrand_step() }
    }

    #[target_feature(enable = "rdseed")]
    unsafe fn rdseed_step() -> Option<u64> {
        let mut word = 0u64;
        (_rdseed64_step(&mut word) == 1).then_some(word)
    }

    #[target_feature(enable = "rdrand")]
    unsafe fn rdrand_step() -> Option<u64> {
        let mut word = 0u64;
        (_rdrand64_step(&mut word) == 1).then_some(word)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod cpu {
    pub fn rdseed() -> Option<u64> {
        None
    }
    pub fn rdrand() -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_source_fills_the_whole_buffer() {
        let mut bytes = [0u8; 4096];
        OsEntropy.fill(&mut bytes).unwrap();
        assert!(crate::health::HealthTests::new().check(&bytes).is_ok());
    }

    #[test]
    fn cpu_source_when_present_delivers_healthy_bytes() {
        let Some(mut cpu) = CpuEntropy::detect() else {
            return;
        };
        let mut bytes = [0u8; 4099];
        cpu.fill(&mut bytes).unwrap();
        assert!(crate::health::HealthTests::new().check(&bytes).is_ok());
    }
}
