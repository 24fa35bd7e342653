//! Crash with the bustabit v2 formula. A round's crash point comes from 52 uniform bits r:
//! `max(1.00, floor(99 / (1 - r / 2^52)) / 100)`, so P(crash ≥ m) ≈ 0.99 / m (1% edge). A bet
//! is an automatic cash-out target: it pays the target when the round reaches it.
//!
//! For shared rounds, r is the first 52 bits of HMAC-SHA256(key = salt, message = game hash)
//! ([`crash_point_from_game_hash`]); the simulator draws r from its generator. The formula is
//! evaluated in integers: `floor(99·2^52 / (2^52 - r))` is the mathematical value exactly (a
//! double-precision evaluation, as in the JavaScript verifier, can differ only for r where the
//! quotient lies within one rounding error of a hundredth). The exact RTP counts the winning r
//! in closed form.

use croupier_rng::RngCore;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::exact::ratio;
use crate::table::{check_header, invalid, parse_toml, Number};
use crate::{DefinitionError, GameMath, ReturnDistribution, RETURN_SCALE};

const GAME: &str = "crash";

/// Bits of the HMAC used as the uniform draw.
pub const R_BITS: u32 = 52;
const R_SPACE: u64 = 1 << R_BITS;
/// 99 in the formula: the crash point in hundredths is floor(EDGE_NUMERATOR·2^52 / (2^52 - r)).
const EDGE_NUMERATOR: u64 = 99;
/// The lowest crash point, in hundredths (1.00×).
const CRASH_POINT_MIN: u64 = 100;

#[derive(Debug, Clone)]
pub struct Crash {
    title: String,
    win_cap: u64,
    /// Cash-out targets in hundredths of the stake (1.01× → 101).
    targets: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrash {
    game: String,
    title: String,
    win_cap: u64,
    targets: Vec<Number>,
}

/// The crash point in hundredths for 52-bit draw `r`.
#[inline]
pub fn crash_point_hundredths(r: u64) -> u64 {
    assert!(r < R_SPACE, "r has 52 bits");
    ((EDGE_NUMERATOR << R_BITS) / (R_SPACE - r)).max(CRASH_POINT_MIN)
}

/// The bustabit v2 crash point (hundredths) of a game: r is the first 52 bits of
/// HMAC-SHA256 keyed with `salt` over the game hash's raw bytes.
pub fn crash_point_from_game_hash(salt: &[u8], game_hash: &[u8]) -> u64 {
    let mut mac = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(game_hash);
    let digest = mac.finalize().into_bytes();
    let first: [u8; 8] = digest[..8].try_into().expect("SHA-256 has 32 bytes");
    crash_point_hundredths(u64::from_be_bytes(first) >> (64 - R_BITS))
}

/// How many of the 2^52 draws reach `target` hundredths (> 1.00): r wins iff
/// 2^52 - r ≤ floor(99·2^52 / target).
pub fn winning_draws(target: u64) -> u64 {
    assert!(target > CRASH_POINT_MIN);
    ((EDGE_NUMERATOR << R_BITS) / target).min(R_SPACE)
}

impl Crash {
    pub(crate) fn from_toml(text: &str) -> Result<Crash, DefinitionError> {
        let raw: RawCrash = parse_toml(GAME, text)?;
        check_header(GAME, &raw.game, raw.win_cap)?;
        if raw.targets.is_empty() {
            return Err(invalid(GAME, "targets", "at least one target is needed"));
        }
        let targets = raw
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.scaled(100)
                    .filter(|&h| h > CRASH_POINT_MIN && h <= raw.win_cap * 100)
                    .ok_or_else(|| {
                        invalid(
                            GAME,
                            format!("targets[{i}]"),
                            "a multiple above 1.00 with at most two decimals, within the win cap",
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Crash {
            title: raw.title,
            win_cap: raw.win_cap,
            targets,
        })
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn win_cap(&self) -> u64 {
        self.win_cap
    }

    pub fn targets(&self) -> &[u64] {
        &self.targets
    }

    /// A crash point (hundredths) from the generator.
    #[inline]
    pub fn draw<R: RngCore + ?Sized>(&self, rng: &mut R) -> u64 {
        crash_point_hundredths(rng.next_u64() >> (64 - R_BITS))
    }

    /// What cashing out at `target` hundredths returns when the round crashes at `point`.
    #[inline]
    pub fn payout_units(&self, target: u64, point: u64) -> u64 {
        if point >= target {
            (target * (RETURN_SCALE / 100)).min(self.win_cap * RETURN_SCALE)
        } else {
            0
        }
    }
}

fn target_name(target: u64) -> String {
    format!("{}.{:02}x", target / 100, target % 100)
}

impl GameMath for Crash {
    type Scratch = ();

    fn bet_names(&self) -> Vec<String> {
        self.targets.iter().map(|&t| target_name(t)).collect()
    }

    fn exact_distributions(&self) -> Vec<ReturnDistribution> {
        self.targets
            .iter()
            .map(|&target| {
                let wins = u128::from(winning_draws(target));
                let space = u128::from(R_SPACE);
                let mut distribution = ReturnDistribution::new();
                distribution.add(self.payout_units(target, target), ratio(wins, space));
                distribution.add(0, ratio(space - wins, space));
                distribution
            })
            .collect()
    }

    fn new_scratch(&self) {}

    #[inline]
    fn play_round<R: RngCore + ?Sized>(&self, rng: &mut R, _: &mut (), returns: &mut [u64]) {
        let point = self.draw(rng);
        for (&target, slot) in self.targets.iter().zip(returns.iter_mut()) {
            *slot = self.payout_units(target, point);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_edges() {
        assert_eq!(crash_point_hundredths(0), 100); // 0.99 floors up to the 1.00 minimum
        assert_eq!(crash_point_hundredths(R_SPACE / 2), 198);
        assert_eq!(crash_point_hundredths(R_SPACE - 1), 99 << R_BITS);
    }

    #[test]
    fn winning_draw_count_agrees_with_the_formula_at_the_boundary() {
        for target in [101, 150, 200, 333, 1000, 100_000] {
            let first_winner = R_SPACE - winning_draws(target);
            assert!(crash_point_hundredths(first_winner) >= target, "{target}");
            assert!(
                crash_point_hundredths(first_winner - 1) < target,
                "{target}"
            );
        }
    }

    /// Vectors from an independent implementation of the published verifier (Python's hmac,
    /// float formula as in bustabit's JavaScript).
    #[test]
    fn game_hash_vectors_match_the_published_verifier() {
        let cases: [(&str, &str, u64); 3] = [
            (
                "0000000000000000004d6ec16dafe9d8370958664c1be76fb2e1f6fe0a2ae3e6",
                "ec4c3a6a1bd4dbc8e7f3d7d57de2ed3a7bbd3e73e4e5c2c1fdbb68f4c0b5c3f1",
                VECTOR_0,
            ),
            (
                "0000000000000000004d6ec16dafe9d8370958664c1be76fb2e1f6fe0a2ae3e6",
                "0000000000000000000000000000000000000000000000000000000000000001",
                VECTOR_1,
            ),
            (
                "salt",
                "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
                VECTOR_2,
            ),
        ];
        for (salt, hash_hex, expected) in cases {
            let hash: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&hash_hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            assert_eq!(
                crash_point_from_game_hash(salt.as_bytes(), &hash),
                expected,
                "{hash_hex}"
            );
        }
    }

    const VECTOR_0: u64 = 2819;
    const VECTOR_1: u64 = 125;
    const VECTOR_2: u64 = 297;
}
