//! Money wheel: equally likely segments; a number segment pays n:1 times the multipliers
//! collected so far (stake returned); a multiplier segment multiplies and re-spins with every
//! bet standing, so multipliers compound.
//!
//! Re-spins are unbounded in the game as played, but the win cap makes them finite in the
//! math: once the collected multiplier reaches the cap every win is capped, further
//! multipliers change nothing, and only which number finally lands is left to draw. The spin
//! therefore stops re-spinning there and draws the number from the number segments alone,
//! which has exactly the distribution of "spin until a number lands". The exact calculator
//! walks the same finite set of multiplier states.

use std::collections::BTreeMap;

use croupier_rng::{sample::below_u32, RngCore};
use num_traits::Zero;
use serde::Deserialize;

use crate::exact::{ratio, Exact};
use crate::table::{capped_return, check_header, check_within_cap, invalid, parse_toml, Weights};
use crate::{DefinitionError, GameMath, ReturnDistribution, RETURN_SCALE};

const GAME: &str = "money-wheel";
/// Bounds that keep `pays × multiplier` far inside u64.
const PAYS_MAX: u64 = 1_000;
const FACTOR_MAX: u64 = 1_000;
const SEGMENTS_MAX: usize = 1_000;

#[derive(Debug, Clone)]
pub struct NumberSegment {
    pub symbol: String,
    /// Winnings n:1.
    pub pays: u64,
    pub count: u64,
}

#[derive(Debug, Clone)]
pub struct MultiplierSegment {
    pub symbol: String,
    pub factor: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    Number(usize),
    Multiplier(usize),
}

#[derive(Debug, Clone)]
pub struct MoneyWheel {
    title: String,
    win_cap: u64,
    numbers: Vec<NumberSegment>,
    multipliers: Vec<MultiplierSegment>,
    layout: Vec<Segment>,
    number_weights: Weights,
}

/// The result of a spin: the number segment that finally landed and the product of the
/// multiplier segments before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spin {
    pub number: usize,
    pub multiplier: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMoneyWheel {
    game: String,
    title: String,
    win_cap: u64,
    numbers: Vec<RawNumber>,
    multipliers: Vec<RawMultiplier>,
    layout: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNumber {
    symbol: String,
    pays: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMultiplier {
    symbol: String,
    factor: u64,
}

impl MoneyWheel {
    pub(crate) fn from_toml(text: &str) -> Result<MoneyWheel, DefinitionError> {
        let raw: RawMoneyWheel = parse_toml(GAME, text)?;
        check_header(GAME, &raw.game, raw.win_cap)?;
        let mut symbols = BTreeMap::new();
        for (i, n) in raw.numbers.iter().enumerate() {
            if !(1..=PAYS_MAX).contains(&n.pays) {
                return Err(invalid(
                    GAME,
                    format!("numbers[{i}].pays"),
                    format!("must be in 1..={PAYS_MAX}"),
                ));
            }
            let return_units = (n.pays + 1) * RETURN_SCALE;
            check_within_cap(
                GAME,
                format!("numbers[{i}].pays"),
                return_units,
                raw.win_cap,
            )?;
            if symbols
                .insert(n.symbol.clone(), Segment::Number(i))
                .is_some()
            {
                return Err(invalid(
                    GAME,
                    format!("numbers[{i}].symbol"),
                    "duplicate symbol",
                ));
            }
        }
        for (i, m) in raw.multipliers.iter().enumerate() {
            if !(2..=FACTOR_MAX).contains(&m.factor) {
                return Err(invalid(
                    GAME,
                    format!("multipliers[{i}].factor"),
                    format!("must be in 2..={FACTOR_MAX}"),
                ));
            }
            // A factor multiplies a win of at least 1:1: one above the cap clips every win.
            let return_units = (m.factor + 1) * RETURN_SCALE;
            check_within_cap(
                GAME,
                format!("multipliers[{i}].factor"),
                return_units,
                raw.win_cap,
            )?;
            if symbols
                .insert(m.symbol.clone(), Segment::Multiplier(i))
                .is_some()
            {
                return Err(invalid(
                    GAME,
                    format!("multipliers[{i}].symbol"),
                    "duplicate symbol",
                ));
            }
        }
        if raw.layout.is_empty() || raw.layout.len() > SEGMENTS_MAX {
            return Err(invalid(
                GAME,
                "layout",
                format!("needs 1..={SEGMENTS_MAX} segments"),
            ));
        }
        let layout = raw
            .layout
            .iter()
            .enumerate()
            .map(|(i, s)| {
                symbols.get(s).copied().ok_or_else(|| {
                    invalid(
                        GAME,
                        format!("layout[{i}]"),
                        format!("unknown symbol '{s}'"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = |segment: Segment| layout.iter().filter(|&&s| s == segment).count() as u64;
        let numbers: Vec<NumberSegment> = raw
            .numbers
            .into_iter()
            .enumerate()
            .map(|(i, n)| NumberSegment {
                symbol: n.symbol,
                pays: n.pays,
                count: count(Segment::Number(i)),
            })
            .collect();
        let multipliers: Vec<MultiplierSegment> = raw
            .multipliers
            .into_iter()
            .enumerate()
            .map(|(i, m)| MultiplierSegment {
                symbol: m.symbol,
                factor: m.factor,
                count: count(Segment::Multiplier(i)),
            })
            .collect();
        if let Some(n) = numbers.iter().find(|n| n.count == 0) {
            return Err(invalid(
                GAME,
                "layout",
                format!("number '{}' has no segment", n.symbol),
            ));
        }
        let number_weights = Weights::new(&numbers.iter().map(|n| n.count).collect::<Vec<_>>())
            .ok_or_else(|| invalid(GAME, "numbers", "at least one number segment is needed"))?;
        Ok(MoneyWheel {
            title: raw.title,
            win_cap: raw.win_cap,
            numbers,
            multipliers,
            layout,
            number_weights,
        })
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn win_cap(&self) -> u64 {
        self.win_cap
    }

    pub fn numbers(&self) -> &[NumberSegment] {
        &self.numbers
    }

    pub fn multipliers(&self) -> &[MultiplierSegment] {
        &self.multipliers
    }

    pub fn segment_count(&self) -> u64 {
        self.layout.len() as u64
    }

    /// The segments' symbols clockwise (numbers and multipliers), as `spin` draws among them.
    pub fn layout(&self) -> Vec<&str> {
        self.layout
            .iter()
            .map(|segment| match *segment {
                Segment::Number(n) => self.numbers[n].symbol.as_str(),
                Segment::Multiplier(m) => self.multipliers[m].symbol.as_str(),
            })
            .collect()
    }

    /// Spins until a number lands, collecting multipliers (see the module note on the cap).
    #[inline]
    pub fn spin<R: RngCore + ?Sized>(&self, rng: &mut R) -> Spin {
        let mut multiplier = 1u64;
        // Bounded: every pass multiplies `multiplier` by at least 2, so the loop runs at most
        // log2(win_cap) + 1 times.
        while multiplier < self.win_cap {
            match self.layout[below_u32(rng, self.layout.len() as u32) as usize] {
                Segment::Number(number) => return Spin { number, multiplier },
                Segment::Multiplier(m) => multiplier *= self.multipliers[m].factor,
            }
        }
        Spin {
            number: self.number_weights.draw(rng),
            multiplier,
        }
    }

    /// What a bet on number `bet` returns per unit staked (stake included).
    #[inline]
    pub fn payout_units(&self, bet: usize, spin: &Spin) -> u64 {
        if spin.number != bet {
            return 0;
        }
        // Saturating: a capped multiplier may exceed what the cap needs.
        let win = self.numbers[bet]
            .pays
            .saturating_mul(spin.multiplier)
            .min(self.win_cap);
        capped_return(win * RETURN_SCALE, self.win_cap)
    }

    /// RTP of a bet on number `bet` with no win cap, by the closed form of the geometric
    /// series: with segment total T, the bet's count c, pays n and multiplier counts c_f,
    /// E = c / (T - Σ c_f) + c·n / (T - Σ c_f·f). `None` when Σ c_f·f ≥ T (unbounded EV).
    pub fn uncapped_rtp(&self, bet: usize) -> Option<Exact> {
        let total = u128::from(self.segment_count());
        let respin: u128 = self.multipliers.iter().map(|m| u128::from(m.count)).sum();
        let growth: u128 = self
            .multipliers
            .iter()
            .map(|m| u128::from(m.count * m.factor))
            .sum();
        if growth >= total {
            return None;
        }
        let number = &self.numbers[bet];
        let c = u128::from(number.count);
        Some(ratio(c, total - respin) + ratio(c * u128::from(number.pays), total - growth))
    }

    fn exact_distribution(&self, bet: usize) -> ReturnDistribution {
        let total = u128::from(self.segment_count());
        let number_total = self.number_weights.total() as u128;
        let mut distribution = ReturnDistribution::new();
        // Probability of spinning with each collected multiplier; states are visited in
        // increasing multiplier order, so a state is complete when it is taken.
        let mut reach: BTreeMap<u64, Exact> = BTreeMap::from([(1, ratio(1, 1))]);
        let mut capped = Exact::zero();
        while let Some((multiplier, p)) = reach.pop_first() {
            if multiplier >= self.win_cap {
                capped += p;
                continue;
            }
            for (i, number) in self.numbers.iter().enumerate() {
                let units = self.payout_units(
                    bet,
                    &Spin {
                        number: i,
                        multiplier,
                    },
                );
                distribution.add(units, &p * ratio(u128::from(number.count), total));
            }
            for m in &self.multipliers {
                *reach
                    .entry(multiplier * m.factor)
                    .or_insert_with(Exact::zero) += &p * ratio(u128::from(m.count), total);
            }
        }
        for (i, number) in self.numbers.iter().enumerate() {
            let units = self.payout_units(
                bet,
                &Spin {
                    number: i,
                    multiplier: self.win_cap,
                },
            );
            distribution.add(
                units,
                &capped * ratio(u128::from(number.count), number_total),
            );
        }
        distribution
    }
}

impl GameMath for MoneyWheel {
    type Scratch = ();

    fn bet_names(&self) -> Vec<String> {
        self.numbers.iter().map(|n| n.symbol.clone()).collect()
    }

    fn exact_distributions(&self) -> Vec<ReturnDistribution> {
        (0..self.numbers.len())
            .map(|bet| self.exact_distribution(bet))
            .collect()
    }

    fn new_scratch(&self) {}

    #[inline]
    fn play_round<R: RngCore + ?Sized>(&self, rng: &mut R, _: &mut (), returns: &mut [u64]) {
        let spin = self.spin(rng);
        for (bet, slot) in returns.iter_mut().enumerate() {
            *slot = self.payout_units(bet, &spin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::to_f64;

    fn wheel() -> MoneyWheel {
        match crate::load(GAME).unwrap() {
            crate::Game::MoneyWheel(w) => w,
            _ => unreachable!(),
        }
    }

    #[test]
    fn layout_has_the_issue_composition() {
        let w = wheel();
        let counts: Vec<(String, u64)> = w
            .numbers()
            .iter()
            .map(|n| (n.symbol.clone(), n.count))
            .collect();
        let expected = [
            ("1", 23),
            ("2", 15),
            ("5", 7),
            ("10", 4),
            ("20", 2),
            ("40", 1),
        ];
        assert_eq!(counts, expected.map(|(s, c)| (s.to_string(), c)));
        let factors: Vec<(u64, u64)> = w
            .multipliers()
            .iter()
            .map(|m| (m.factor, m.count))
            .collect();
        assert_eq!(factors, [(2, 1), (7, 1)]);
        assert_eq!(w.segment_count(), 54);
    }

    #[test]
    fn closed_form_matches_the_hand_derivation() {
        // c/52 + c·n/45 for the 54-segment wheel with one 2x and one 7x.
        let w = wheel();
        assert_eq!(w.uncapped_rtp(0).unwrap(), ratio(23, 52) + ratio(23, 45));
        assert_eq!(w.uncapped_rtp(5).unwrap(), ratio(1, 52) + ratio(40, 45));
    }

    #[test]
    fn capped_rtp_is_just_below_the_uncapped_closed_form() {
        let w = wheel();
        for (bet, figures) in crate::Game::MoneyWheel(w.clone())
            .exact()
            .iter()
            .enumerate()
        {
            let uncapped = w.uncapped_rtp(bet).unwrap();
            assert!(figures.rtp <= uncapped, "{}", figures.bet);
            // The cap trims only the tail (a 40 after 7x 7x 7x), but each multiplier level
            // keeps 9/54 of the previous one's expectation, so the tail is fat: the 40 loses
            // about 0.16 points at a 5000x cap, the 1 almost nothing.
            let gap = to_f64(&(uncapped - &figures.rtp));
            assert!(gap < 5e-3, "bet {} loses {gap} to the cap", figures.bet);
        }
    }

    #[test]
    fn huge_cap_converges_to_the_closed_form() {
        let mut w = wheel();
        w.win_cap = crate::WIN_CAP_MAX;
        let figures = crate::Game::MoneyWheel(w.clone()).exact();
        let gap = to_f64(&(w.uncapped_rtp(0).unwrap() - &figures[0].rtp));
        assert!((0.0..1e-5).contains(&gap), "gap {gap}");
    }

    #[test]
    fn capped_spin_pays_exactly_the_cap() {
        let w = wheel();
        let spin = Spin {
            number: 5,
            multiplier: 7 * 7 * 7,
        };
        assert_eq!(w.payout_units(5, &spin), w.win_cap() * RETURN_SCALE);
        assert_eq!(w.payout_units(4, &spin), 0);
    }
}
