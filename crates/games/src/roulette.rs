//! European roulette: 37 pockets (0..=36), every standard bet. A bet is the set of pockets it
//! covers; it pays its kind's n:1 when the ball lands in one of them.

use std::collections::BTreeMap;

use croupier_rng::{sample::below_u32, RngCore};
use serde::Deserialize;

use crate::exact::ratio;
use crate::table::{capped_return, check_header, check_within_cap, invalid, parse_toml};
use crate::{DefinitionError, GameMath, ReturnDistribution, RETURN_SCALE};

const GAME: &str = "roulette";

/// Pockets on the wheel: 0 and 1..=36.
pub const POCKETS: u8 = 37;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BetKind {
    Straight,
    Split,
    Street,
    Corner,
    SixLine,
    Column,
    Dozen,
    Red,
    Black,
    Odd,
    Even,
    Low,
    High,
}

impl BetKind {
    pub const ALL: [BetKind; 13] = [
        BetKind::Straight,
        BetKind::Split,
        BetKind::Street,
        BetKind::Corner,
        BetKind::SixLine,
        BetKind::Column,
        BetKind::Dozen,
        BetKind::Red,
        BetKind::Black,
        BetKind::Odd,
        BetKind::Even,
        BetKind::Low,
        BetKind::High,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BetKind::Straight => "straight",
            BetKind::Split => "split",
            BetKind::Street => "street",
            BetKind::Corner => "corner",
            BetKind::SixLine => "six_line",
            BetKind::Column => "column",
            BetKind::Dozen => "dozen",
            BetKind::Red => "red",
            BetKind::Black => "black",
            BetKind::Odd => "odd",
            BetKind::Even => "even",
            BetKind::Low => "low",
            BetKind::High => "high",
        }
    }

    pub fn parse(name: &str) -> Option<BetKind> {
        BetKind::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// A placed bet: its kind and the pockets it covers (bit p set = pocket p covered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouletteBet {
    pub kind: BetKind,
    covered: u64,
}

impl RouletteBet {
    pub fn covers(&self, pocket: u8) -> bool {
        self.covered >> pocket & 1 == 1
    }

    pub fn pocket_count(&self) -> u32 {
        self.covered.count_ones()
    }
}

/// Why a bet placement is not on the table layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} bet on {numbers:?}: {reason}")]
pub struct PlacementError {
    pub kind: &'static str,
    pub numbers: Vec<u8>,
    pub reason: &'static str,
}

#[derive(Debug, Clone)]
pub struct Roulette {
    title: String,
    win_cap: u64,
    red: u64,
    /// Winnings n:1 per kind, in `BetKind::ALL` order.
    pays: [u64; 13],
    bets: Vec<RouletteBet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoulette {
    game: String,
    title: String,
    win_cap: u64,
    red: Vec<u8>,
    pays: BTreeMap<String, u64>,
    bets: Vec<RawBet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBet {
    kind: String,
    #[serde(default)]
    numbers: Vec<u8>,
}

fn mask(pockets: impl IntoIterator<Item = u8>) -> u64 {
    pockets.into_iter().fold(0, |m, p| m | 1 << p)
}

/// The row (0..12) and column (0..3) of a number 1..=36 on the layout.
fn row_col(n: u8) -> (u8, u8) {
    ((n - 1) / 3, (n - 1) % 3)
}

impl Roulette {
    pub(crate) fn from_toml(text: &str) -> Result<Roulette, DefinitionError> {
        let raw: RawRoulette = parse_toml(GAME, text)?;
        check_header(GAME, &raw.game, raw.win_cap)?;
        let mut red_sorted = raw.red.clone();
        red_sorted.sort_unstable();
        red_sorted.dedup();
        if red_sorted.len() != 18 || red_sorted.iter().any(|&n| !(1..=36).contains(&n)) {
            return Err(invalid(
                GAME,
                "red",
                "must list 18 distinct numbers in 1..=36",
            ));
        }
        let mut pays = [0u64; 13];
        for (key, &value) in &raw.pays {
            let kind = BetKind::parse(key)
                .ok_or_else(|| invalid(GAME, format!("pays.{key}"), "unknown bet kind"))?;
            if value == 0 {
                return Err(invalid(GAME, format!("pays.{key}"), "must be at least 1"));
            }
            let return_units = value.saturating_add(1).saturating_mul(RETURN_SCALE);
            check_within_cap(GAME, format!("pays.{key}"), return_units, raw.win_cap)?;
            pays[kind as usize] = value;
        }
        if let Some(missing) = BetKind::ALL.iter().find(|k| pays[**k as usize] == 0) {
            return Err(invalid(GAME, format!("pays.{}", missing.name()), "missing"));
        }
        let mut roulette = Roulette {
            title: raw.title,
            win_cap: raw.win_cap,
            red: mask(raw.red),
            pays,
            bets: vec![],
        };
        if raw.bets.is_empty() {
            return Err(invalid(GAME, "bets", "at least one bet is needed"));
        }
        for (i, bet) in raw.bets.iter().enumerate() {
            let field = format!("bets[{i}]");
            let kind = BetKind::parse(&bet.kind)
                .ok_or_else(|| invalid(GAME, format!("{field}.kind"), "unknown bet kind"))?;
            let placed = roulette
                .place(kind, &bet.numbers)
                .map_err(|e| invalid(GAME, format!("{field}.numbers"), e.to_string()))?;
            roulette.bets.push(placed);
        }
        Ok(roulette)
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn win_cap(&self) -> u64 {
        self.win_cap
    }

    /// The bets listed in the definition.
    pub fn bets(&self) -> &[RouletteBet] {
        &self.bets
    }

    /// Places a bet on the layout. Inside bets name their numbers (a split 0-1, 0-2 or 0-3,
    /// the trios 0-1-2 and 0-2-3 and the first four 0-1-2-3 included); column and dozen name
    /// their index 1..=3; even-money bets name nothing.
    pub fn place(&self, kind: BetKind, numbers: &[u8]) -> Result<RouletteBet, PlacementError> {
        let error = |reason| PlacementError {
            kind: kind.name(),
            numbers: numbers.to_vec(),
            reason,
        };
        let mut sorted = numbers.to_vec();
        sorted.sort_unstable();
        let all = 1..=36u8;
        let covered = match kind {
            BetKind::Straight => match sorted[..] {
                [n] if n < POCKETS => mask([n]),
                _ => return Err(error("needs one pocket 0..=36")),
            },
            BetKind::Split => match sorted[..] {
                [0, b @ 1..=3] => mask([0, b]),
                [a @ 1..=36, b @ 1..=36]
                    if b == a + 3 || (b == a + 1 && row_col(a).0 == row_col(b).0) =>
                {
                    mask([a, b])
                }
                _ => return Err(error("needs two adjacent numbers")),
            },
            BetKind::Street => match sorted[..] {
                [0, 1, 2] | [0, 2, 3] => mask(sorted.iter().copied()),
                [a @ 1..=34, b, c] if row_col(a).1 == 0 && b == a + 1 && c == a + 2 => {
                    mask([a, b, c])
                }
                _ => return Err(error("needs a row of three numbers (or 0-1-2, 0-2-3)")),
            },
            BetKind::Corner => match sorted[..] {
                [0, 1, 2, 3] => mask([0, 1, 2, 3]),
                [a @ 1..=32, b, c, d]
                    if row_col(a).1 < 2 && b == a + 1 && c == a + 3 && d == a + 4 =>
                {
                    mask([a, b, c, d])
                }
                _ => return Err(error("needs four numbers meeting at a corner")),
            },
            BetKind::SixLine => match sorted[..] {
                [a @ 1..=31, ..]
                    if row_col(a).1 == 0
                        && sorted.len() == 6
                        && sorted.iter().zip(a..).all(|(&n, m)| n == m) =>
                {
                    mask(sorted.iter().copied())
                }
                _ => return Err(error("needs two adjacent rows (six numbers)")),
            },
            BetKind::Column => match sorted[..] {
                [c @ 1..=3] => mask(all.filter(|n| row_col(*n).1 == c - 1)),
                _ => return Err(error("needs a column index 1..=3")),
            },
            BetKind::Dozen => match sorted[..] {
                [d @ 1..=3] => mask(all.filter(|n| (n - 1) / 12 == d - 1)),
                _ => return Err(error("needs a dozen index 1..=3")),
            },
            outside => {
                if !sorted.is_empty() {
                    return Err(error("an even-money bet names no numbers"));
                }
                let red = self.red;
                mask(all.filter(|&n| match outside {
                    BetKind::Red => red >> n & 1 == 1,
                    BetKind::Black => red >> n & 1 == 0,
                    BetKind::Odd => n % 2 == 1,
                    BetKind::Even => n % 2 == 0,
                    BetKind::Low => n <= 18,
                    BetKind::High => n >= 19,
                    _ => unreachable!("inside bets are matched above"),
                }))
            }
        };
        Ok(RouletteBet { kind, covered })
    }

    /// One spin: the winning pocket.
    #[inline]
    pub fn spin<R: RngCore + ?Sized>(&self, rng: &mut R) -> u8 {
        below_u32(rng, u32::from(POCKETS)) as u8
    }

    /// What `bet` returns per unit staked (stake included, `RETURN_SCALE` units).
    #[inline]
    pub fn payout_units(&self, bet: &RouletteBet, pocket: u8) -> u64 {
        if bet.covers(pocket) {
            capped_return(self.pays[bet.kind as usize] * RETURN_SCALE, self.win_cap)
        } else {
            0
        }
    }

    pub(crate) fn bet_name(bet: &RouletteBet) -> String {
        bet.kind.name().to_string()
    }
}

/// Per pocket, every listed bet's return: a round is one spin and one row lookup.
pub struct RouletteScratch {
    returns_by_pocket: Vec<u64>,
    bet_count: usize,
}

impl GameMath for Roulette {
    type Scratch = RouletteScratch;

    fn bet_names(&self) -> Vec<String> {
        self.bets.iter().map(Roulette::bet_name).collect()
    }

    fn exact_distributions(&self) -> Vec<ReturnDistribution> {
        self.bets
            .iter()
            .map(|bet| {
                let mut distribution = ReturnDistribution::new();
                for pocket in 0..POCKETS {
                    distribution.add(
                        self.payout_units(bet, pocket),
                        ratio(1, u128::from(POCKETS)),
                    );
                }
                distribution
            })
            .collect()
    }

    fn new_scratch(&self) -> RouletteScratch {
        let bet_count = self.bets.len();
        let mut returns_by_pocket = Vec::with_capacity(POCKETS as usize * bet_count);
        for pocket in 0..POCKETS {
            returns_by_pocket.extend(self.bets.iter().map(|bet| self.payout_units(bet, pocket)));
        }
        RouletteScratch {
            returns_by_pocket,
            bet_count,
        }
    }

    #[inline]
    fn play_round<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        scratch: &mut RouletteScratch,
        returns: &mut [u64],
    ) {
        let pocket = self.spin(rng) as usize;
        let row = pocket * scratch.bet_count;
        returns.copy_from_slice(&scratch.returns_by_pocket[row..row + scratch.bet_count]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::ExactFigures;

    fn roulette() -> Roulette {
        match crate::load(GAME).unwrap() {
            crate::Game::Roulette(r) => r,
            _ => unreachable!(),
        }
    }

    /// Every legal placement of every kind, found by trying every candidate number set.
    fn all_placements(r: &Roulette) -> Vec<RouletteBet> {
        let mut bets = vec![];
        for kind in BetKind::ALL {
            let candidates: Vec<Vec<u8>> = match kind {
                BetKind::Straight => (0..37).map(|n| vec![n]).collect(),
                BetKind::Split => (0..37)
                    .flat_map(|a| (a + 1..37).map(move |b| vec![a, b]))
                    .collect(),
                BetKind::Street => (0..35)
                    .flat_map(|a| [vec![a, a + 1, a + 2], vec![0, a, a + 1]])
                    .collect(),
                BetKind::Corner => (0..33)
                    .map(|a| vec![a, a + 1, a + 3, a + 4])
                    .chain([vec![0, 1, 2, 3]])
                    .collect(),
                BetKind::SixLine => (1..32).map(|a| (a..a + 6).collect()).collect(),
                BetKind::Column | BetKind::Dozen => (0..5).map(|i| vec![i]).collect(),
                _ => vec![vec![]],
            };
            let unique: std::collections::BTreeSet<Vec<u8>> = candidates.into_iter().collect();
            bets.extend(unique.iter().filter_map(|c| r.place(kind, c).ok()));
        }
        bets
    }

    #[test]
    fn layout_has_the_standard_number_of_placements() {
        let r = roulette();
        let count = |kind| all_placements(&r).iter().filter(|b| b.kind == kind).count();
        assert_eq!(count(BetKind::Straight), 37);
        assert_eq!(count(BetKind::Split), 60); // 57 on 1..36 plus 0-1, 0-2, 0-3
        assert_eq!(count(BetKind::Street), 14); // 12 rows plus 0-1-2, 0-2-3
        assert_eq!(count(BetKind::Corner), 23); // 22 plus 0-1-2-3
        assert_eq!(count(BetKind::SixLine), 11);
        assert_eq!(count(BetKind::Column), 3);
        assert_eq!(count(BetKind::Dozen), 3);
    }

    #[test]
    fn every_placement_of_every_bet_returns_36_over_37() {
        let r = roulette();
        for bet in all_placements(&r) {
            let mut distribution = ReturnDistribution::new();
            for pocket in 0..POCKETS {
                distribution.add(r.payout_units(&bet, pocket), ratio(1, 37));
            }
            let figures = ExactFigures::from_distribution(bet.kind.name().into(), distribution);
            assert_eq!(figures.rtp, ratio(36, 37), "{bet:?}");
        }
    }

    #[test]
    fn off_layout_placements_are_refused() {
        let r = roulette();
        assert!(r.place(BetKind::Split, &[3, 4]).is_err()); // different rows
        assert!(r.place(BetKind::Split, &[0, 4]).is_err());
        assert!(r.place(BetKind::Street, &[2, 3, 4]).is_err());
        assert!(r.place(BetKind::Corner, &[3, 4, 6, 7]).is_err());
        assert!(r.place(BetKind::Straight, &[37]).is_err());
        assert!(r.place(BetKind::Red, &[1]).is_err());
        assert!(r.place(BetKind::Column, &[0]).is_err());
    }

    #[test]
    fn zero_loses_every_outside_bet() {
        let r = roulette();
        for kind in [
            BetKind::Red,
            BetKind::Black,
            BetKind::Odd,
            BetKind::Even,
            BetKind::Low,
            BetKind::High,
        ] {
            let bet = r.place(kind, &[]).unwrap();
            assert_eq!(bet.pocket_count(), 18);
            assert_eq!(r.payout_units(&bet, 0), 0);
        }
    }
}
