//! Building blocks shared by the definitions: exact decimal multiples, integer weight tables
//! with an unbiased draw, and the checks every definition header gets.

use croupier_rng::{sample::below_u32, RngCore};
use serde::Deserialize;

use crate::{DefinitionError, RETURN_SCALE, WIN_CAP_MAX};

/// A number as written in TOML: `2` or `0.95`. Decimals are converted to exact integer units
/// (see [`Number::units`]), so binary floating point never reaches the math.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(crate) enum Number {
    Integer(u64),
    Decimal(f64),
}

impl Number {
    /// The value times `scale`, if it is non-negative and has no more decimals than `scale`
    /// resolves (a power of ten).
    pub(crate) fn scaled(self, scale: u64) -> Option<u64> {
        match self {
            Number::Integer(n) => n.checked_mul(scale),
            Number::Decimal(x) => {
                let scaled = x * scale as f64;
                let rounded = scaled.round();
                let exact = (scaled - rounded).abs() < 1e-6 && rounded >= 0.0;
                (exact && rounded < 1e15).then_some(rounded as u64)
            }
        }
    }

    /// The value in `RETURN_SCALE` units (four decimals).
    pub(crate) fn units(self) -> Option<u64> {
        self.scaled(RETURN_SCALE)
    }
}

/// Integer weights with an unbiased draw: `below_u32(total)` then a scan of the cumulative
/// sums (tables are short; a scan beats a binary search at these sizes).
#[derive(Debug, Clone)]
pub(crate) struct Weights {
    weights: Vec<u32>,
    cumulative: Vec<u32>,
    total: u32,
}

/// Largest total a weight table may have (draws use 32-bit words).
pub(crate) const WEIGHT_TOTAL_MAX: u64 = 1 << 31;

impl Weights {
    /// `None` if the weights are all zero or sum past `WEIGHT_TOTAL_MAX`.
    pub(crate) fn new(weights: &[u64]) -> Option<Weights> {
        let total: u64 = weights
            .iter()
            .try_fold(0u64, |acc, &w| acc.checked_add(w))?;
        if total == 0 || total > WEIGHT_TOTAL_MAX {
            return None;
        }
        let mut running = 0u32;
        let cumulative = weights
            .iter()
            .map(|&w| {
                running += w as u32;
                running
            })
            .collect();
        Some(Weights {
            weights: weights.iter().map(|&w| w as u32).collect(),
            cumulative,
            total: total as u32,
        })
    }

    #[inline]
    pub(crate) fn draw<R: RngCore + ?Sized>(&self, rng: &mut R) -> usize {
        let point = below_u32(rng, self.total);
        // The last cumulative sum is `total` > point, so the scan always finds an index.
        self.cumulative
            .iter()
            .position(|&c| point < c)
            .expect("point < total")
    }

    pub(crate) fn total(&self) -> u64 {
        u64::from(self.total)
    }

    pub(crate) fn weight(&self, index: usize) -> u64 {
        u64::from(self.weights[index])
    }
}

pub(crate) fn invalid(
    game: &str,
    field: impl Into<String>,
    reason: impl Into<String>,
) -> DefinitionError {
    DefinitionError::Invalid {
        game: game.to_string(),
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses `text` into the raw definition type, naming `game` in the error.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    game: &str,
    text: &str,
) -> Result<T, DefinitionError> {
    toml::from_str(text).map_err(|e| DefinitionError::Syntax {
        game: game.to_string(),
        message: e.to_string(),
    })
}

/// Checks the header every definition has: the `game` field names the game it is loaded as,
/// and the win cap is within bounds.
pub(crate) fn check_header(
    game: &str,
    declared: &str,
    win_cap: u64,
) -> Result<(), DefinitionError> {
    if declared != game {
        return Err(invalid(
            game,
            "game",
            format!("declares '{declared}', loaded as '{game}'"),
        ));
    }
    if win_cap == 0 || win_cap > WIN_CAP_MAX {
        return Err(invalid(
            game,
            "win_cap",
            format!("must be in 1..={WIN_CAP_MAX}"),
        ));
    }
    Ok(())
}

/// A paytable value is a definition error when what it pays, `return_units` (stake included,
/// `RETURN_SCALE` units), is above the win cap: a definition says what it pays, and a payout the
/// cap would silently clip is not what it says (issue #9: a clipped table misreports its RTP).
pub(crate) fn check_within_cap(
    game: &str,
    field: impl Into<String>,
    return_units: u64,
    win_cap: u64,
) -> Result<(), DefinitionError> {
    if return_units > win_cap.saturating_mul(RETURN_SCALE) {
        return Err(invalid(
            game,
            field,
            format!(
                "pays {}x the stake (stake included), above the win cap of {win_cap}x",
                units_text(return_units)
            ),
        ));
    }
    Ok(())
}

/// `RETURN_SCALE` units as a decimal multiple: 19 500 → "1.95".
fn units_text(units: u64) -> String {
    let (whole, fraction) = (units / RETURN_SCALE, units % RETURN_SCALE);
    if fraction == 0 {
        return whole.to_string();
    }
    let decimals = format!("{fraction:04}");
    format!("{whole}.{}", decimals.trim_end_matches('0'))
}

/// A payout of `win_units` (stake excluded, RETURN_SCALE units) plus the stake, capped.
#[inline]
pub(crate) fn capped_return(win_units: u64, win_cap: u64) -> u64 {
    (win_units + RETURN_SCALE).min(win_cap * RETURN_SCALE)
}

/// C(n, k) for the small boards here (n <= 31).
pub(crate) fn binomial(n: u32, k: u32) -> u64 {
    assert!(k <= n && n <= 62);
    (0..k).fold(1u64, |acc, i| acc * u64::from(n - i) / u64::from(i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_multiples_convert_exactly_to_units() {
        assert_eq!(Number::Decimal(0.95).units(), Some(9_500));
        assert_eq!(Number::Decimal(5.6).units(), Some(56_000));
        assert_eq!(Number::Decimal(1.0421).units(), Some(10_421));
        assert_eq!(Number::Integer(11).units(), Some(110_000));
        assert_eq!(Number::Decimal(1.00001).units(), None);
        assert_eq!(Number::Decimal(-1.0).units(), None);
    }

    #[test]
    fn weights_never_draw_a_zero_weight_entry() {
        let weights = Weights::new(&[0, 3, 0, 5, 0]).unwrap();
        let mut rng = croupier_rng::sim_rng(9);
        for _ in 0..10_000 {
            let i = weights.draw(&mut rng);
            assert!(i == 1 || i == 3);
        }
        assert!(Weights::new(&[0, 0]).is_none());
    }

    #[test]
    fn binomial_coefficients_match_pascal() {
        assert_eq!(binomial(15, 7), 6435);
        assert_eq!(binomial(16, 8), 12870);
        assert_eq!((0..=16).map(|k| binomial(16, k)).sum::<u64>(), 1 << 16);
    }
}
