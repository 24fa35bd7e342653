//! Small things the sandbox bank's modules share: the clock, ids and its fault dice.

use std::time::{SystemTime, UNIX_EPOCH};

use croupier_core::compliance::civil_from_days;

use crate::uuid_v4::uuid_v4_text;

const MS_PER_DAY: u64 = 86_400_000;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DD` (UTC) of a Unix time in milliseconds: a statement's booking date.
pub(crate) fn date_of_ms(ms: u64) -> String {
    let days = i64::try_from(ms / MS_PER_DAY).unwrap_or(i64::MAX);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// ISO 8601 with offset, as the OBIE `…DateTime` fields want: `2025-01-02T03:04:05+00:00`.
pub(crate) fn datetime_of_ms(ms: u64) -> String {
    let s = (ms % MS_PER_DAY) / 1000;
    format!(
        "{}T{:02}:{:02}:{:02}+00:00",
        date_of_ms(ms),
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Is `text` a `YYYY-MM-DD` date (the shape only; string order is date order)?
pub(crate) fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)
}

/// The SHA-256 of a request body, hex: what an idempotency key is bound to.
pub(crate) fn sha256_hex(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(body))
}

/// 16 bytes from the OS as a UUID-shaped (version 4) id: ids must not repeat across restarts,
/// and nothing about them should be guessable from another.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 16];
    // The OS's randomness failing is not something a sandbox can recover from sensibly; the
    // time fallback keeps ids unique within a process at least.
    if getrandom::fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&now_ms().to_le_bytes());
    }
    uuid_v4_text(bytes)
}

/// The fault dice: SplitMix64, seeded by `--seed` so a run's faults can be replayed.
pub(crate) struct Dice {
    state: u64,
}

impl Dice {
    pub(crate) fn new(seed: u64) -> Dice {
        Dice { state: seed }
    }

    /// A seed from the OS when none is given.
    pub(crate) fn os_seed() -> u64 {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            return now_ms();
        }
        u64::from_le_bytes(bytes)
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with `percent` % chance (0 never draws, so a run without faults keeps its seed's
    /// sequence for the faults it has).
    pub(crate) fn roll(&mut self, percent: u8) -> bool {
        if percent == 0 {
            return false;
        }
        self.next() % 100 < u64::from(percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_are_utc_civil() {
        assert_eq!(date_of_ms(0), "1970-01-01");
        assert_eq!(
            datetime_of_ms(1_735_787_045_000),
            "2025-01-02T03:04:05+00:00"
        );
        assert!(is_date("2025-01-31"));
        assert!(!is_date("2025-1-31"));
    }

    #[test]
    fn dice_follow_their_seed_and_percentages() {
        let mut a = Dice::new(7);
        let mut b = Dice::new(7);
        let rolls: Vec<bool> = (0..100).map(|_| a.roll(50)).collect();
        assert_eq!(rolls, (0..100).map(|_| b.roll(50)).collect::<Vec<_>>());
        assert!((0..1000).all(|_| !a.roll(0)));
        assert!((0..1000).all(|_| a.roll(100)));
        let hits = (0..10_000).filter(|_| a.roll(10)).count();
        assert!((800..1200).contains(&hits), "{hits}");
        assert_ne!(random_id(), random_id());
    }
}
