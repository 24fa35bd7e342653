//! Exact figures: a bet's return distribution as big rationals, and what follows from it
//! (RTP, hit frequency, variance, max payout).

use std::collections::BTreeMap;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use crate::RETURN_SCALE;

/// An exact rational number (arbitrary precision: the enumerations multiply many weights).
pub type Exact = BigRational;

pub(crate) fn ratio(numerator: u128, denominator: u128) -> Exact {
    assert!(denominator > 0);
    Exact::new(BigInt::from(numerator), BigInt::from(denominator))
}

pub(crate) fn integer(value: u128) -> Exact {
    Exact::from_integer(BigInt::from(value))
}

/// A bet's return, in `RETURN_SCALE` units, mapped to its probability. Complete: the
/// probabilities sum to exactly one (checked when figures are derived).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReturnDistribution {
    probabilities: BTreeMap<u64, Exact>,
}

impl ReturnDistribution {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds probability `p` to return `units` (outcomes with equal returns merge).
    pub fn add(&mut self, units: u64, p: Exact) {
        assert!(!p.is_negative(), "negative probability");
        if p.is_zero() {
            return;
        }
        *self.probabilities.entry(units).or_insert_with(Exact::zero) += p;
    }

    /// (return units, probability), by increasing return.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Exact)> {
        self.probabilities.iter().map(|(&units, p)| (units, p))
    }

    pub fn total_probability(&self) -> Exact {
        self.probabilities
            .values()
            .fold(Exact::zero(), |acc, p| acc + p)
    }
}

/// Exact figures of one bet, per unit staked.
#[derive(Debug, Clone)]
pub struct ExactFigures {
    pub bet: String,
    /// Expected return (stake included).
    pub rtp: Exact,
    /// Probability that the return exceeds the stake (a net win).
    pub hit_frequency: Exact,
    /// E[return²], for the variance.
    pub second_moment: Exact,
    /// Largest return with non-zero probability, in `RETURN_SCALE` units.
    pub max_payout_units: u64,
    pub distribution: ReturnDistribution,
}

impl ExactFigures {
    /// Panics unless `distribution` is complete: an enumeration that loses or double-counts
    /// probability is a bug, never a figure to publish.
    pub fn from_distribution(bet: String, distribution: ReturnDistribution) -> ExactFigures {
        assert!(
            distribution.total_probability().is_one(),
            "return distribution of bet '{bet}' does not sum to one"
        );
        let scale = integer(u128::from(RETURN_SCALE));
        let mut rtp = Exact::zero();
        let mut second_moment = Exact::zero();
        let mut hit_frequency = Exact::zero();
        let mut max_payout_units = 0;
        for (units, p) in distribution.iter() {
            let value = integer(u128::from(units)) / &scale;
            rtp += &value * p;
            second_moment += &value * &value * p;
            if units > RETURN_SCALE {
                hit_frequency += p;
            }
            max_payout_units = max_payout_units.max(units);
        }
        ExactFigures {
            bet,
            rtp,
            hit_frequency,
            second_moment,
            max_payout_units,
            distribution,
        }
    }

    pub fn rtp_f64(&self) -> f64 {
        to_f64(&self.rtp)
    }

    pub fn hit_frequency_f64(&self) -> f64 {
        to_f64(&self.hit_frequency)
    }

    pub fn variance(&self) -> Exact {
        &self.second_moment - &self.rtp * &self.rtp
    }

    pub fn std_dev_f64(&self) -> f64 {
        to_f64(&self.variance()).max(0.0).sqrt()
    }

    pub fn max_payout(&self) -> f64 {
        self.max_payout_units as f64 / RETURN_SCALE as f64
    }
}

/// Nearest f64 (num-rational rounds correctly).
pub fn to_f64(value: &Exact) -> f64 {
    value.to_f64().expect("exact figures are finite")
}

/// `value` rounded half away from zero to `places` decimals, e.g. `0.97297297`.
pub fn to_decimal(value: &Exact, places: usize) -> String {
    let negative = value.is_negative();
    let magnitude = value.abs();
    let shift = BigInt::from(10u32).pow(places as u32);
    let scaled = magnitude * Exact::from_integer(shift.clone());
    let rounded = (scaled + Exact::new(BigInt::one(), BigInt::from(2)))
        .floor()
        .to_integer();
    let whole = &rounded / &shift;
    let fraction = &rounded % &shift;
    let sign = if negative && !rounded.is_zero() {
        "-"
    } else {
        ""
    };
    if places == 0 {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{fraction:0>places$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_half_up() {
        assert_eq!(to_decimal(&ratio(36, 37), 8), "0.97297297");
        assert_eq!(to_decimal(&ratio(2, 3), 3), "0.667");
        assert_eq!(to_decimal(&ratio(1, 8), 2), "0.13");
        assert_eq!(to_decimal(&integer(12), 2), "12.00");
    }

    #[test]
    fn incomplete_distribution_is_refused() {
        let mut distribution = ReturnDistribution::new();
        distribution.add(0, ratio(1, 2));
        let result = std::panic::catch_unwind(|| {
            ExactFigures::from_distribution("half".into(), distribution)
        });
        assert!(result.is_err());
    }

    #[test]
    fn figures_follow_from_the_distribution() {
        let mut distribution = ReturnDistribution::new();
        distribution.add(0, ratio(36, 37));
        distribution.add(36 * RETURN_SCALE, ratio(1, 37));
        let figures = ExactFigures::from_distribution("straight".into(), distribution);
        assert_eq!(figures.rtp, ratio(36, 37));
        assert_eq!(figures.hit_frequency, ratio(1, 37));
        assert_eq!(figures.second_moment, ratio(36 * 36, 37));
        assert_eq!(figures.max_payout_units, 36 * RETURN_SCALE);
    }
}
