//! Crash with the bustabit v2 formula. A round's crash point comes from 52 uniform bits r:
//! `max(1.00, floor(99 / (1 - r / 2^52)) / 100)`, so P(crash ≥ m) ≈ 0.99 / m (1% edge). A bet
//! is an automatic cash-out target: it pays the target when the round reaches it.
//!
//! For shared rounds, r is the first 52 bits of HMAC-SHA256(key = salt, message = game hash)
//! ([`crash_point_from_game_hash`]): the key is the salt's text as written (bustabit's salt is a
//! bitcoin block hash, used as its lower-case hex text), the message the game hash's 32 raw
//! bytes. Game hashes form a reverse chain: the hash of the round played before is the SHA-256
//! of this one ([`ChainLink`]: of its lower-case hex text, as in bustabit's 2018 chain and our
//! `fair chain new`, or of its raw bytes, as in bustabit's chains since 2024). The simulator
//! draws r from its generator. The formula is
//! evaluated in integers: `floor(99·2^52 / (2^52 - r))` is the mathematical value exactly (a
//! double-precision evaluation, as in the JavaScript verifier, can differ only for r where the
//! quotient lies within one rounding error of a hundredth). The exact RTP counts the winning r
//! in closed form.

use croupier_rng::RngCore;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

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

/// How a reverse chain derives the hash of the round played before from a round's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainLink {
    /// SHA-256 of the lower-case hex text (bustabit's 2018 chain; `croupier fair chain new`).
    HexText,
    /// SHA-256 of the 32 raw bytes (bustabit's chains since its 2024 seeding event).
    Binary,
}

/// The game hash of the round played just before the round of `game_hash`.
pub fn previous_game_hash(game_hash: &[u8; 32], link: ChainLink) -> [u8; 32] {
    match link {
        ChainLink::HexText => Sha256::digest(hex::encode(game_hash).as_bytes()).into(),
        ChainLink::Binary => Sha256::digest(game_hash).into(),
    }
}

/// How many links lead from `game_hash` to `terminating` (1 when `terminating` is the hash of
/// `game_hash`), looking at most `steps_max` links; None when it is not within them. In a chain
/// whose terminating hash was published before round 1, game n is n links away.
pub fn chain_distance(
    game_hash: &[u8; 32],
    terminating: &[u8; 32],
    link: ChainLink,
    steps_max: u64,
) -> Option<u64> {
    let mut hash = *game_hash;
    for step in 1..=steps_max {
        hash = previous_game_hash(&hash, link);
        if hash == *terminating {
            return Some(step);
        }
    }
    None
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

    /// Three consecutive rounds of bustabit's live chain (games 12,306,896 down to 12,306,894,
    /// after its Vx period ended at 12,279,450), with the busts the site showed, as recorded in a
    /// public verification script; the salt is the `GAME_SALT` of bustabit's own verifier
    /// (github.com/bustabit/verifier, src/constants.ts: the hash of the bitcoin block its
    /// fourth seeding event named). Each hash is SHA-256 of the next one's raw bytes.
    const BUSTABIT_SALT: &str = "00000000000000000001e08b7fd44f95e3e950ac65650a8031a6d5e1750e34be";
    const BUSTABIT_ROUNDS: [(&str, u64); 3] = [
        (
            "94aa062026624e59a0ace092568d5f46e21b9bf1d5173609db8645dd62bdfc44",
            1091,
        ),
        (
            "94e66d98029c61ecd27c4fb6b381d401c823cf3dfbdac9246756d5b655e125aa",
            426,
        ),
        (
            "8d3b9726ca7bc5e3637bf2079e09eaf2a9d67df4e6f50ff23a7b593bd802cca6",
            183,
        ),
    ];

    fn hash(text: &str) -> [u8; 32] {
        hex::decode(text).unwrap().try_into().unwrap()
    }

    #[test]
    fn bustabit_live_rounds_give_the_published_busts_and_chain_by_raw_bytes() {
        for (game_hash, bust) in BUSTABIT_ROUNDS {
            let point = crash_point_from_game_hash(BUSTABIT_SALT.as_bytes(), &hash(game_hash));
            assert_eq!(point, bust, "{game_hash}");
        }
        for pair in BUSTABIT_ROUNDS.windows(2) {
            let (later, earlier) = (hash(pair[0].0), hash(pair[1].0));
            assert_eq!(previous_game_hash(&later, ChainLink::Binary), earlier);
            assert_ne!(previous_game_hash(&later, ChainLink::HexText), earlier);
        }
        let (first, last) = (hash(BUSTABIT_ROUNDS[0].0), hash(BUSTABIT_ROUNDS[2].0));
        assert_eq!(chain_distance(&first, &last, ChainLink::Binary, 5), Some(2));
        assert_eq!(chain_distance(&first, &last, ChainLink::Binary, 1), None);
        assert_eq!(chain_distance(&first, &last, ChainLink::HexText, 5), None);
    }

    /// A game hash from a third-party Rust verifier's documentation (crate `bustabit`,
    /// `Game::outcome` example: 2055.9), under the salt of bustabit's 2018 seeding event.
    #[test]
    fn bustabit_2018_salt_vector_from_an_independent_verifier() {
        let salt = "0000000000000000004d6ec16dafe9d8370958664c1dc422f452892264c59526";
        let game = hash("5d07719b61b0abb6f1c3b17b1d69c838278f87f9b5e75077026e5fedf96c2eb2");
        assert_eq!(crash_point_from_game_hash(salt.as_bytes(), &game), 205_590);
    }

    #[test]
    fn hex_text_links_are_the_links_of_fair_chain_new() {
        let chain = croupier_rng::fair::HashChain::generate([9; 32], 4).unwrap();
        let seeds: Vec<[u8; 32]> = chain.seeds().map(|s| hash(&s)).collect();
        for round in 1..seeds.len() {
            let previous = previous_game_hash(&seeds[round], ChainLink::HexText);
            assert_eq!(previous, seeds[round - 1]);
        }
        let terminal = hash(chain.terminal());
        assert_eq!(
            chain_distance(&seeds[3], &terminal, ChainLink::HexText, 10),
            Some(4)
        );
    }

    const VECTOR_0: u64 = 2819;
    const VECTOR_1: u64 = 125;
    const VECTOR_2: u64 = 297;
}
