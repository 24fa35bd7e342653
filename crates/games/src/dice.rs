//! Dice: a roll from 0.00 to 100.00, i.e. one of 10 001 equally likely hundredths. A bet rolls
//! under or over a target; its chance (in percent) is its winning outcomes / 100 and it pays
//! 99 / chance, floored to four decimals.
//!
//! The roll is drawn by rejection sampling (`below_u32(10_001)`), so the 10 001 outcomes are
//! exactly equally likely and the exact RTP counts them. The widely used provably-fair
//! mapping `floor(f · 10001)` of a float f from four bytes ([`roll_from_float`]) is kept for
//! verifying third-party rounds; it over-weights some rolls by about 2·10⁻⁶ relative.

use croupier_rng::{sample::below_u32, RngCore};
use serde::Deserialize;

use crate::exact::ratio;
use crate::table::{check_header, invalid, parse_toml, Number};
use crate::{DefinitionError, GameMath, ReturnDistribution, RETURN_SCALE};

const GAME: &str = "dice";

/// Rolls 0.00..=100.00 in hundredths.
pub const OUTCOMES: u32 = 10_001;
const ROLL_MAX: u32 = OUTCOMES - 1;
/// The "99" in 99 / chance, in percent points: a bet with w winning outcomes pays 9900 / w.
const PAYOUT_NUMERATOR: u64 = 9_900;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Under,
    Over,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiceBet {
    pub direction: Direction,
    /// Target in hundredths (50.50 → 5050).
    pub target: u32,
    /// Winning outcomes out of `OUTCOMES`.
    pub winning: u32,
    /// Return on a win, `RETURN_SCALE` units.
    pub payout_units: u64,
}

impl DiceBet {
    #[inline]
    pub fn wins(&self, roll: u32) -> bool {
        match self.direction {
            Direction::Under => roll < self.target,
            Direction::Over => roll > self.target,
        }
    }

    pub fn name(&self) -> String {
        let word = match self.direction {
            Direction::Under => "under",
            Direction::Over => "over",
        };
        format!("{word}_{}.{:02}", self.target / 100, self.target % 100)
    }
}

#[derive(Debug, Clone)]
pub struct Dice {
    title: String,
    win_cap: u64,
    bets: Vec<DiceBet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDice {
    game: String,
    title: String,
    win_cap: u64,
    bets: Vec<RawBet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBet {
    direction: String,
    target: Number,
}

/// The roll (hundredths) a provably-fair float f in [0, 1) maps to under the widely used
/// scheme.
pub fn roll_from_float(f: f64) -> u32 {
    assert!(
        (0.0..1.0).contains(&f),
        "a provably-fair float is in [0, 1)"
    );
    ((f * f64::from(OUTCOMES)) as u32).min(ROLL_MAX)
}

impl Dice {
    pub(crate) fn from_toml(text: &str) -> Result<Dice, DefinitionError> {
        let raw: RawDice = parse_toml(GAME, text)?;
        check_header(GAME, &raw.game, raw.win_cap)?;
        if raw.bets.is_empty() {
            return Err(invalid(GAME, "bets", "at least one bet is needed"));
        }
        let bets = raw
            .bets
            .iter()
            .enumerate()
            .map(|(i, bet)| {
                let direction = match bet.direction.as_str() {
                    "under" => Direction::Under,
                    "over" => Direction::Over,
                    _ => {
                        return Err(invalid(
                            GAME,
                            format!("bets[{i}].direction"),
                            "'under' or 'over'",
                        ))
                    }
                };
                let target = bet
                    .target
                    .scaled(100)
                    .filter(|&t| t <= u64::from(ROLL_MAX))
                    .ok_or_else(|| {
                        invalid(
                            GAME,
                            format!("bets[{i}].target"),
                            "0.00..=100.00 with at most two decimals",
                        )
                    })? as u32;
                let winning = match direction {
                    Direction::Under => target,
                    Direction::Over => ROLL_MAX - target,
                };
                if winning == 0 || u64::from(winning) > PAYOUT_NUMERATOR {
                    return Err(invalid(
                        GAME,
                        format!("bets[{i}].target"),
                        "chance must be in 0.01%..=99%",
                    ));
                }
                let payout_units = PAYOUT_NUMERATOR * RETURN_SCALE / u64::from(winning);
                if payout_units > raw.win_cap * RETURN_SCALE {
                    return Err(invalid(
                        GAME,
                        format!("bets[{i}].target"),
                        "pays more than the win cap",
                    ));
                }
                Ok(DiceBet {
                    direction,
                    target,
                    winning,
                    payout_units,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Dice {
            title: raw.title,
            win_cap: raw.win_cap,
            bets,
        })
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn win_cap(&self) -> u64 {
        self.win_cap
    }

    pub fn bets(&self) -> &[DiceBet] {
        &self.bets
    }

    /// A roll in hundredths, 0..=10 000.
    #[inline]
    pub fn roll<R: RngCore + ?Sized>(&self, rng: &mut R) -> u32 {
        below_u32(rng, OUTCOMES)
    }

    #[inline]
    pub fn payout_units(&self, bet: &DiceBet, roll: u32) -> u64 {
        if bet.wins(roll) {
            bet.payout_units
        } else {
            0
        }
    }
}

impl GameMath for Dice {
    type Scratch = ();

    fn bet_names(&self) -> Vec<String> {
        self.bets.iter().map(DiceBet::name).collect()
    }

    fn exact_distributions(&self) -> Vec<ReturnDistribution> {
        self.bets
            .iter()
            .map(|bet| {
                // Count the winning rolls rather than trusting `bet.winning`.
                let wins = (0..OUTCOMES).filter(|&roll| bet.wins(roll)).count() as u128;
                let outcomes = u128::from(OUTCOMES);
                let mut distribution = ReturnDistribution::new();
                distribution.add(bet.payout_units, ratio(wins, outcomes));
                distribution.add(0, ratio(outcomes - wins, outcomes));
                distribution
            })
            .collect()
    }

    fn new_scratch(&self) {}

    #[inline]
    fn play_round<R: RngCore + ?Sized>(&self, rng: &mut R, _: &mut (), returns: &mut [u64]) {
        let roll = self.roll(rng);
        for (bet, slot) in self.bets.iter().zip(returns.iter_mut()) {
            *slot = self.payout_units(bet, roll);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_mapping_covers_the_whole_range() {
        assert_eq!(roll_from_float(0.0), 0);
        assert_eq!(roll_from_float(0.999_999_999), ROLL_MAX);
        assert_eq!(roll_from_float(0.5), 5000);
    }

    #[test]
    fn payouts_are_99_over_chance_floored() {
        let dice = match crate::load(GAME).unwrap() {
            crate::Game::Dice(d) => d,
            _ => unreachable!(),
        };
        let by_name = |name: &str| *dice.bets().iter().find(|b| b.name() == name).unwrap();
        assert_eq!(by_name("under_50.00").payout_units, 19_800);
        assert_eq!(by_name("over_50.50").payout_units, 20_000);
        assert_eq!(by_name("under_95.00").payout_units, 10_421);
        assert_eq!(by_name("under_0.01").winning, 1);
    }
}
