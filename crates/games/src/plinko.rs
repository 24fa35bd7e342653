//! Plinko: a ball falls through `rows` rows of pegs, going right with probability 1/2 at
//! each; it lands in slot k = number of right bounces, with probability C(rows, k) / 2^rows.
//!
//! A round is one 16-bit path (bit i = right at row i); a board of `rows` rows reads its
//! first `rows` bits, so every table is settled from the same drop.

use croupier_rng::RngCore;
use serde::Deserialize;

use crate::exact::ratio;
use crate::table::{binomial, check_header, check_within_cap, invalid, parse_toml, Number};
use crate::{DefinitionError, GameMath, ReturnDistribution};

const GAME: &str = "plinko";
pub const ROWS_MIN: u32 = 8;
pub const ROWS_MAX: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn name(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlinkoTable {
    pub rows: u32,
    pub risk: Risk,
    /// Return per slot (stake included), `RETURN_SCALE` units, within the win cap (checked at load).
    pub slot_units: Vec<u64>,
}

impl PlinkoTable {
    pub fn name(&self) -> String {
        format!("{}-{}", self.rows, self.risk.name())
    }

    /// The slot a path lands in on this board.
    #[inline]
    pub fn slot(&self, path: u32) -> usize {
        (path & ((1 << self.rows) - 1)).count_ones() as usize
    }
}

#[derive(Debug, Clone)]
pub struct Plinko {
    title: String,
    win_cap: u64,
    tables: Vec<PlinkoTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlinko {
    game: String,
    title: String,
    win_cap: u64,
    tables: Vec<RawTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    rows: u32,
    risk: String,
    multipliers: Vec<Number>,
}

impl Plinko {
    pub(crate) fn from_toml(text: &str) -> Result<Plinko, DefinitionError> {
        let raw: RawPlinko = parse_toml(GAME, text)?;
        check_header(GAME, &raw.game, raw.win_cap)?;
        if raw.tables.is_empty() {
            return Err(invalid(GAME, "tables", "at least one table is needed"));
        }
        let mut tables: Vec<PlinkoTable> = vec![];
        for (i, table) in raw.tables.iter().enumerate() {
            let field = |name: &str| format!("tables[{i}].{name}");
            if !(ROWS_MIN..=ROWS_MAX).contains(&table.rows) {
                return Err(invalid(
                    GAME,
                    field("rows"),
                    format!("must be in {ROWS_MIN}..={ROWS_MAX}"),
                ));
            }
            let risk = match table.risk.as_str() {
                "low" => Risk::Low,
                "medium" => Risk::Medium,
                "high" => Risk::High,
                _ => return Err(invalid(GAME, field("risk"), "low, medium or high")),
            };
            if table.multipliers.len() != table.rows as usize + 1 {
                return Err(invalid(GAME, field("multipliers"), "needs rows + 1 slots"));
            }
            let slot_units = table
                .multipliers
                .iter()
                .map(|m| m.units())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    invalid(
                        GAME,
                        field("multipliers"),
                        "non-negative multiples with at most 4 decimals",
                    )
                })?;
            for (k, &units) in slot_units.iter().enumerate() {
                check_within_cap(
                    GAME,
                    field(&format!("multipliers[{k}]")),
                    units,
                    raw.win_cap,
                )?;
            }
            if tables
                .iter()
                .any(|t| t.rows == table.rows && t.risk == risk)
            {
                return Err(invalid(GAME, field("risk"), "duplicate rows and risk"));
            }
            tables.push(PlinkoTable {
                rows: table.rows,
                risk,
                slot_units,
            });
        }
        Ok(Plinko {
            title: raw.title,
            win_cap: raw.win_cap,
            tables,
        })
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn win_cap(&self) -> u64 {
        self.win_cap
    }

    pub fn tables(&self) -> &[PlinkoTable] {
        &self.tables
    }

    /// One drop: a path of `ROWS_MAX` fair left/right bounces.
    #[inline]
    pub fn drop_ball<R: RngCore + ?Sized>(&self, rng: &mut R) -> u32 {
        rng.next_u32() & ((1 << ROWS_MAX) - 1)
    }

    #[inline]
    pub fn payout_units(&self, table: &PlinkoTable, path: u32) -> u64 {
        table.slot_units[table.slot(path)]
    }
}

impl GameMath for Plinko {
    type Scratch = ();

    fn bet_names(&self) -> Vec<String> {
        self.tables.iter().map(PlinkoTable::name).collect()
    }

    fn exact_distributions(&self) -> Vec<ReturnDistribution> {
        self.tables
            .iter()
            .map(|table| {
                let mut distribution = ReturnDistribution::new();
                for (slot, &units) in table.slot_units.iter().enumerate() {
                    let ways = binomial(table.rows, slot as u32);
                    distribution.add(units, ratio(u128::from(ways), 1 << table.rows));
                }
                distribution
            })
            .collect()
    }

    fn new_scratch(&self) {}

    #[inline]
    fn play_round<R: RngCore + ?Sized>(&self, rng: &mut R, _: &mut (), returns: &mut [u64]) {
        let path = self.drop_ball(rng);
        for (table, slot) in self.tables.iter().zip(returns.iter_mut()) {
            *slot = self.payout_units(table, path);
        }
    }
}
