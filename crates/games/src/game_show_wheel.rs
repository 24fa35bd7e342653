//! Game-show wheel: equally likely segments, each a bet spot (a number paying n:1 or one of
//! four bonus games paying its result n:1, stake returned), plus a top slot that each round
//! picks one spot and a multiplier for that spot's win.
//!
//! Bonus games:
//! - coin flip: red and blue each draw a multiplier from one table, a fair coin picks one;
//! - cash hunt: a fixed board of 108 multipliers, shuffled uniformly, each player picks a
//!   target; after a uniform shuffle every target hides each multiplier with probability
//!   count / 108, so the pick cannot change the odds (the simulator always picks target 0);
//! - pachinko: a puck falls through `rows` rows into slot k with probability
//!   C(rows, k) / 2^rows; DOUBLE doubles the board and drops again, at most `doublings_max`
//!   times, after which DOUBLE only re-drops (drawn directly from the value slots);
//! - bonus wheel: DOUBLE and TRIPLE multiply the wheel and spin again, at most `respins_max`
//!   times, after which they only spin again (drawn directly from the value segments).
//!
//! The exact calculator enumerates every draw combination of the same procedures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use croupier_rng::{
    sample::{below_u32, shuffle},
    RngCore,
};
use num_traits::{One, Zero};
use serde::Deserialize;

use crate::exact::{ratio, to_decimal, Exact};
use crate::table::{
    binomial, capped_return, check_header, check_within_cap, invalid, parse_toml, Weights,
};
use crate::{DefinitionError, GameMath, ReturnDistribution, RETURN_SCALE};

const GAME: &str = "game-show-wheel";
/// Targets on the cash hunt board.
pub const CASH_HUNT_TARGETS: usize = 108;
/// The target the simulator's player picks (any target has the same odds).
pub const SIMULATED_CASH_HUNT_PICK: usize = 0;
const VALUE_MAX: u64 = 100_000;
const TOP_MULTIPLIER_MAX: u64 = 1_000;
const PACHINKO_ROWS_MAX: u32 = 20;
const RESPINS_MAX: u32 = 16;
const SEGMENTS_MAX: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BonusKind {
    CoinFlip,
    CashHunt,
    Pachinko,
    BonusWheel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpotKind {
    Number { pays: u64 },
    Bonus(BonusKind),
}

#[derive(Debug, Clone)]
pub struct Spot {
    pub name: String,
    pub kind: SpotKind,
    /// Segments of the wheel showing this spot.
    pub segments: u64,
}

/// Values drawn with integer weights.
#[derive(Debug, Clone)]
pub struct ValueTable {
    values: Vec<u64>,
    weights: Weights,
}

impl ValueTable {
    #[inline]
    fn draw<R: RngCore + ?Sized>(&self, rng: &mut R) -> u64 {
        self.values[self.weights.draw(rng)]
    }

    /// (value, weight) pairs in definition order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.values
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, self.weights.weight(i)))
    }

    pub fn total(&self) -> u64 {
        self.weights.total()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PachinkoSlot {
    Value(u64),
    Double,
}

#[derive(Debug, Clone)]
struct Pachinko {
    rows: u32,
    slots: Vec<PachinkoSlot>,
    doublings_max: u32,
    /// Binomial weights of the value slots (DOUBLE slots weigh 0): the drop once doubling
    /// is exhausted.
    value_slots: Weights,
}

#[derive(Debug, Clone)]
struct BonusWheel {
    values: Vec<(u64, u64)>,
    double_count: u64,
    triple_count: u64,
    respins_max: u32,
    /// Over the value segments, then DOUBLE, then TRIPLE.
    segments: Weights,
    value_segments: Weights,
}

#[derive(Debug, Clone)]
pub struct GameShowWheel {
    title: String,
    win_cap: u64,
    spots: Vec<Spot>,
    layout: Vec<usize>,
    top_spots: Weights,
    top_multipliers: ValueTable,
    coin_sides: ValueTable,
    /// Boxed: the board is large next to the other games' definitions.
    cash_board: Box<[u64; CASH_HUNT_TARGETS]>,
    cash_counts: Vec<(u64, u64)>,
    pachinko: Pachinko,
    bonus_wheel: BonusWheel,
}

/// The top slot of one round: the spot it lit and that spot's multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopSlot {
    pub spot: usize,
    pub multiplier: u64,
}

/// What the bonus game of a round produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BonusOutcome {
    /// The wheel landed on a number.
    None,
    CoinFlip {
        red: u64,
        blue: u64,
        blue_wins: bool,
    },
    /// The shuffled board is in the caller's [`CashHuntBoard`].
    CashHunt,
    Pachinko {
        multiple: u64,
        doublings: u32,
    },
    BonusWheel {
        multiple: u64,
        respins: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelRound {
    pub segment: usize,
    pub spot: usize,
    pub top_slot: TopSlot,
    pub bonus: BonusOutcome,
}

/// The cash hunt board: the caller keeps one and the game shuffles it in place when cash
/// hunt lands, so a round allocates nothing.
#[derive(Debug, Clone)]
pub struct CashHuntBoard {
    pub multipliers: [u64; CASH_HUNT_TARGETS],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWheel {
    game: String,
    title: String,
    win_cap: u64,
    spots: Vec<RawSpot>,
    layout: Vec<String>,
    top_slot: RawTopSlot,
    coin_flip: RawCoinFlip,
    cash_hunt: RawCashHunt,
    pachinko: RawPachinko,
    bonus_wheel: RawBonusWheel,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpot {
    name: String,
    pays: Option<u64>,
    bonus: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopSlot {
    spot_weights: Vec<u64>,
    multipliers: Vec<RawWeighted>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeighted {
    value: u64,
    weight: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCounted {
    value: u64,
    count: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoinFlip {
    side_multipliers: Vec<RawWeighted>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCashHunt {
    board: Vec<RawCounted>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSlot {
    Value(u64),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPachinko {
    rows: u32,
    slots: Vec<RawSlot>,
    doublings_max: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBonusWheel {
    segments: Vec<RawCounted>,
    double_count: u64,
    triple_count: u64,
    respins_max: u32,
}

fn value_table(
    field: &str,
    entries: &[RawWeighted],
    value_max: u64,
) -> Result<ValueTable, DefinitionError> {
    for (i, e) in entries.iter().enumerate() {
        if !(1..=value_max).contains(&e.value) {
            return Err(invalid(
                GAME,
                format!("{field}[{i}].value"),
                format!("must be in 1..={value_max}"),
            ));
        }
    }
    let weights =
        Weights::new(&entries.iter().map(|e| e.weight).collect::<Vec<_>>()).ok_or_else(|| {
            invalid(
                GAME,
                field,
                "weights must be positive in total and fit 31 bits",
            )
        })?;
    Ok(ValueTable {
        values: entries.iter().map(|e| e.value).collect(),
        weights,
    })
}

fn counted_values(field: &str, entries: &[RawCounted]) -> Result<Vec<(u64, u64)>, DefinitionError> {
    if entries.is_empty() {
        return Err(invalid(GAME, field, "needs at least one value"));
    }
    for (i, e) in entries.iter().enumerate() {
        if !(1..=VALUE_MAX).contains(&e.value) {
            return Err(invalid(
                GAME,
                format!("{field}[{i}].value"),
                format!("must be in 1..={VALUE_MAX}"),
            ));
        }
        if e.count == 0 {
            return Err(invalid(
                GAME,
                format!("{field}[{i}].count"),
                "must be at least 1",
            ));
        }
    }
    Ok(entries.iter().map(|e| (e.value, e.count)).collect())
}

/// Every value the definition pays n:1 (spots, bonus multipliers) and every top-slot multiplier
/// (it multiplies a win of at least 1:1) must pay within the win cap on its own.
fn check_paytable_within_cap(raw: &RawWheel) -> Result<(), DefinitionError> {
    let mut values: Vec<(String, u64)> = vec![];
    for (i, spot) in raw.spots.iter().enumerate() {
        values.extend(spot.pays.map(|p| (format!("spots[{i}].pays"), p)));
    }
    let weighted = [
        ("top_slot.multipliers", &raw.top_slot.multipliers),
        (
            "coin_flip.side_multipliers",
            &raw.coin_flip.side_multipliers,
        ),
    ];
    for (field, entries) in weighted {
        let named = entries.iter().enumerate();
        values.extend(named.map(|(i, e)| (format!("{field}[{i}].value"), e.value)));
    }
    let counted = [
        ("cash_hunt.board", &raw.cash_hunt.board),
        ("bonus_wheel.segments", &raw.bonus_wheel.segments),
    ];
    for (field, entries) in counted {
        let named = entries.iter().enumerate();
        values.extend(named.map(|(i, e)| (format!("{field}[{i}].value"), e.value)));
    }
    for (i, slot) in raw.pachinko.slots.iter().enumerate() {
        if let RawSlot::Value(v) = slot {
            values.push((format!("pachinko.slots[{i}]"), *v));
        }
    }
    for (field, value) in values {
        let return_units = value.saturating_add(1).saturating_mul(RETURN_SCALE);
        check_within_cap(GAME, field, return_units, raw.win_cap)?;
    }
    Ok(())
}

fn parse_spots(raw: &[RawSpot]) -> Result<Vec<Spot>, DefinitionError> {
    let mut spots: Vec<Spot> = vec![];
    for (i, spot) in raw.iter().enumerate() {
        let field = |name: &str| format!("spots[{i}].{name}");
        let kind = match (spot.pays, spot.bonus.as_deref()) {
            (Some(pays), None) if (1..=VALUE_MAX).contains(&pays) => SpotKind::Number { pays },
            (None, Some(bonus)) => SpotKind::Bonus(match bonus {
                "coin_flip" => BonusKind::CoinFlip,
                "cash_hunt" => BonusKind::CashHunt,
                "pachinko" => BonusKind::Pachinko,
                "bonus_wheel" => BonusKind::BonusWheel,
                _ => {
                    return Err(invalid(
                        GAME,
                        field("bonus"),
                        "coin_flip, cash_hunt, pachinko or bonus_wheel",
                    ))
                }
            }),
            _ => {
                return Err(invalid(
                    GAME,
                    field("pays"),
                    format!("a spot has either `pays` (1..={VALUE_MAX}) or `bonus`"),
                ))
            }
        };
        if spots.iter().any(|s| s.name == spot.name) {
            return Err(invalid(GAME, field("name"), "duplicate spot"));
        }
        spots.push(Spot {
            name: spot.name.clone(),
            kind,
            segments: 0,
        });
    }
    if spots.is_empty() {
        return Err(invalid(GAME, "spots", "at least one spot is needed"));
    }
    Ok(spots)
}

fn parse_pachinko(raw: &RawPachinko) -> Result<Pachinko, DefinitionError> {
    if !(1..=PACHINKO_ROWS_MAX).contains(&raw.rows) {
        return Err(invalid(
            GAME,
            "pachinko.rows",
            format!("must be in 1..={PACHINKO_ROWS_MAX}"),
        ));
    }
    if raw.slots.len() != raw.rows as usize + 1 {
        return Err(invalid(GAME, "pachinko.slots", "needs rows + 1 slots"));
    }
    if raw.doublings_max > RESPINS_MAX {
        return Err(invalid(
            GAME,
            "pachinko.doublings_max",
            format!("must be at most {RESPINS_MAX}"),
        ));
    }
    let slots = raw
        .slots
        .iter()
        .enumerate()
        .map(|(i, slot)| match slot {
            RawSlot::Value(v) if (1..=VALUE_MAX).contains(v) => Ok(PachinkoSlot::Value(*v)),
            RawSlot::Word(w) if w == "DOUBLE" => Ok(PachinkoSlot::Double),
            _ => Err(invalid(
                GAME,
                format!("pachinko.slots[{i}]"),
                format!("a multiplier in 1..={VALUE_MAX} or \"DOUBLE\""),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let value_weights: Vec<u64> = slots
        .iter()
        .enumerate()
        .map(|(k, s)| match s {
            PachinkoSlot::Value(_) => binomial(raw.rows, k as u32),
            PachinkoSlot::Double => 0,
        })
        .collect();
    let value_slots = Weights::new(&value_weights)
        .ok_or_else(|| invalid(GAME, "pachinko.slots", "needs a multiplier slot"))?;
    Ok(Pachinko {
        rows: raw.rows,
        slots,
        doublings_max: raw.doublings_max,
        value_slots,
    })
}

fn parse_bonus_wheel(raw: &RawBonusWheel) -> Result<BonusWheel, DefinitionError> {
    let values = counted_values("bonus_wheel.segments", &raw.segments)?;
    if raw.respins_max > RESPINS_MAX {
        return Err(invalid(
            GAME,
            "bonus_wheel.respins_max",
            format!("must be at most {RESPINS_MAX}"),
        ));
    }
    let mut weights: Vec<u64> = values.iter().map(|&(_, c)| c).collect();
    let value_segments = Weights::new(&weights)
        .ok_or_else(|| invalid(GAME, "bonus_wheel.segments", "too many segments"))?;
    weights.extend([raw.double_count, raw.triple_count]);
    let segments =
        Weights::new(&weights).ok_or_else(|| invalid(GAME, "bonus_wheel", "too many segments"))?;
    Ok(BonusWheel {
        values,
        double_count: raw.double_count,
        triple_count: raw.triple_count,
        respins_max: raw.respins_max,
        segments,
        value_segments,
    })
}

impl GameShowWheel {
    pub(crate) fn from_toml(text: &str) -> Result<GameShowWheel, DefinitionError> {
        let raw: RawWheel = parse_toml(GAME, text)?;
        check_header(GAME, &raw.game, raw.win_cap)?;
        let mut spots = parse_spots(&raw.spots)?;
        if raw.layout.is_empty() || raw.layout.len() > SEGMENTS_MAX {
            return Err(invalid(
                GAME,
                "layout",
                format!("needs 1..={SEGMENTS_MAX} segments"),
            ));
        }
        let mut layout = Vec::with_capacity(raw.layout.len());
        for (i, name) in raw.layout.iter().enumerate() {
            let spot = spots.iter().position(|s| &s.name == name).ok_or_else(|| {
                invalid(
                    GAME,
                    format!("layout[{i}]"),
                    format!("unknown spot '{name}'"),
                )
            })?;
            spots[spot].segments += 1;
            layout.push(spot);
        }
        if let Some(spot) = spots.iter().find(|s| s.segments == 0) {
            return Err(invalid(
                GAME,
                "layout",
                format!("spot '{}' has no segment", spot.name),
            ));
        }
        if raw.top_slot.spot_weights.len() != spots.len() {
            return Err(invalid(
                GAME,
                "top_slot.spot_weights",
                "needs one weight per spot",
            ));
        }
        let top_spots = Weights::new(&raw.top_slot.spot_weights).ok_or_else(|| {
            invalid(
                GAME,
                "top_slot.spot_weights",
                "weights must be positive in total and fit 31 bits",
            )
        })?;
        let top_multipliers = value_table(
            "top_slot.multipliers",
            &raw.top_slot.multipliers,
            TOP_MULTIPLIER_MAX,
        )?;
        let coin_sides = value_table(
            "coin_flip.side_multipliers",
            &raw.coin_flip.side_multipliers,
            VALUE_MAX,
        )?;
        let cash_counts = counted_values("cash_hunt.board", &raw.cash_hunt.board)?;
        let board: Vec<u64> = cash_counts
            .iter()
            .flat_map(|&(v, c)| std::iter::repeat_n(v, c as usize))
            .collect();
        let cash_board: Box<[u64; CASH_HUNT_TARGETS]> =
            board.into_boxed_slice().try_into().map_err(|_| {
                invalid(
                    GAME,
                    "cash_hunt.board",
                    format!("counts must add up to {CASH_HUNT_TARGETS}"),
                )
            })?;
        check_paytable_within_cap(&raw)?;
        Ok(GameShowWheel {
            title: raw.title,
            win_cap: raw.win_cap,
            spots,
            layout,
            top_spots,
            top_multipliers,
            coin_sides,
            cash_board,
            cash_counts,
            pachinko: parse_pachinko(&raw.pachinko)?,
            bonus_wheel: parse_bonus_wheel(&raw.bonus_wheel)?,
        })
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn win_cap(&self) -> u64 {
        self.win_cap
    }

    pub fn spots(&self) -> &[Spot] {
        &self.spots
    }

    pub fn segment_count(&self) -> u64 {
        self.layout.len() as u64
    }

    /// The segments' spot names clockwise, as `play` draws among them.
    pub fn layout(&self) -> Vec<&str> {
        self.layout
            .iter()
            .map(|&spot| self.spots[spot].name.as_str())
            .collect()
    }

    /// The top slot's spot weights, in `spots` order.
    pub fn top_spot_weights(&self) -> Vec<u64> {
        (0..self.spots.len())
            .map(|spot| self.top_spots.weight(spot))
            .collect()
    }

    /// The top slot's multipliers and their weights.
    pub fn top_multipliers(&self) -> &ValueTable {
        &self.top_multipliers
    }

    /// A board in definition order, for [`GameShowWheel::play`] to shuffle.
    pub fn new_cash_hunt_board(&self) -> CashHuntBoard {
        CashHuntBoard {
            multipliers: *self.cash_board,
        }
    }

    /// Plays one round: top slot, wheel, and the bonus game if the wheel lands on one.
    #[inline]
    pub fn play<R: RngCore + ?Sized>(&self, rng: &mut R, board: &mut CashHuntBoard) -> WheelRound {
        let top_slot = TopSlot {
            spot: self.top_spots.draw(rng),
            multiplier: self.top_multipliers.draw(rng),
        };
        let segment = below_u32(rng, self.layout.len() as u32) as usize;
        let spot = self.layout[segment];
        let bonus = match self.spots[spot].kind {
            SpotKind::Number { .. } => BonusOutcome::None,
            SpotKind::Bonus(BonusKind::CoinFlip) => BonusOutcome::CoinFlip {
                red: self.coin_sides.draw(rng),
                blue: self.coin_sides.draw(rng),
                blue_wins: rng.next_u32() & 1 == 1,
            },
            SpotKind::Bonus(BonusKind::CashHunt) => {
                board.multipliers = *self.cash_board;
                shuffle(rng, &mut board.multipliers);
                BonusOutcome::CashHunt
            }
            SpotKind::Bonus(BonusKind::Pachinko) => self.drop_puck(rng),
            SpotKind::Bonus(BonusKind::BonusWheel) => self.spin_bonus_wheel(rng),
        };
        WheelRound {
            segment,
            spot,
            top_slot,
            bonus,
        }
    }

    fn drop_puck<R: RngCore + ?Sized>(&self, rng: &mut R) -> BonusOutcome {
        let board = &self.pachinko;
        let mask = (1u32 << board.rows) - 1;
        for doublings in 0..board.doublings_max {
            let slot = (rng.next_u32() & mask).count_ones() as usize;
            if let PachinkoSlot::Value(v) = board.slots[slot] {
                return BonusOutcome::Pachinko {
                    multiple: v << doublings,
                    doublings,
                };
            }
        }
        let PachinkoSlot::Value(v) = board.slots[board.value_slots.draw(rng)] else {
            unreachable!("DOUBLE slots weigh nothing in value_slots")
        };
        BonusOutcome::Pachinko {
            multiple: v << board.doublings_max,
            doublings: board.doublings_max,
        }
    }

    fn spin_bonus_wheel<R: RngCore + ?Sized>(&self, rng: &mut R) -> BonusOutcome {
        let wheel = &self.bonus_wheel;
        let mut multiple = 1u64;
        for respins in 0..wheel.respins_max {
            let index = wheel.segments.draw(rng);
            match index.checked_sub(wheel.values.len()) {
                None => {
                    return BonusOutcome::BonusWheel {
                        multiple: wheel.values[index].0 * multiple,
                        respins,
                    }
                }
                Some(0) => multiple *= 2,
                Some(_) => multiple *= 3,
            }
        }
        let value = wheel.values[wheel.value_segments.draw(rng)].0;
        BonusOutcome::BonusWheel {
            multiple: value * multiple,
            respins: wheel.respins_max,
        }
    }

    /// What a bet on `spot` returns per unit staked; `pick` is the player's cash hunt target.
    #[inline]
    pub fn payout_units(
        &self,
        spot: usize,
        round: &WheelRound,
        board: &CashHuntBoard,
        pick: usize,
    ) -> u64 {
        if round.spot != spot {
            return 0;
        }
        let multiple = match (self.spots[spot].kind, round.bonus) {
            (SpotKind::Number { pays }, _) => pays,
            (
                _,
                BonusOutcome::CoinFlip {
                    red,
                    blue,
                    blue_wins,
                },
            ) => {
                if blue_wins {
                    blue
                } else {
                    red
                }
            }
            (_, BonusOutcome::CashHunt) => board.multipliers[pick],
            (
                _,
                BonusOutcome::Pachinko { multiple, .. } | BonusOutcome::BonusWheel { multiple, .. },
            ) => multiple,
            (_, BonusOutcome::None) => unreachable!("a bonus spot always has a bonus outcome"),
        };
        self.spot_return(spot, round.top_slot, multiple)
    }

    fn spot_return(&self, spot: usize, top_slot: TopSlot, multiple: u64) -> u64 {
        let factor = if top_slot.spot == spot {
            top_slot.multiplier
        } else {
            1
        };
        let win = multiple.saturating_mul(factor).min(self.win_cap);
        capped_return(win * RETURN_SCALE, self.win_cap)
    }

    /// Distribution of a spot's win multiple (before the top slot), given the wheel landed
    /// on it.
    fn multiple_distribution(&self, kind: SpotKind) -> BTreeMap<u64, Exact> {
        let mut out = BTreeMap::new();
        let add = |out: &mut BTreeMap<u64, Exact>, v: u64, p: Exact| {
            *out.entry(v).or_insert_with(Exact::zero) += p;
        };
        match kind {
            SpotKind::Number { pays } => add(&mut out, pays, Exact::one()),
            SpotKind::Bonus(BonusKind::CoinFlip) => {
                let total = u128::from(self.coin_sides.total());
                for (red, rw) in self.coin_sides.entries() {
                    for (blue, bw) in self.coin_sides.entries() {
                        let p = ratio(u128::from(rw * bw), total * total * 2);
                        add(&mut out, red, p.clone());
                        add(&mut out, blue, p);
                    }
                }
            }
            SpotKind::Bonus(BonusKind::CashHunt) => {
                for &(v, c) in &self.cash_counts {
                    add(&mut out, v, ratio(u128::from(c), CASH_HUNT_TARGETS as u128));
                }
            }
            SpotKind::Bonus(BonusKind::Pachinko) => {
                let board = &self.pachinko;
                let total = 1u128 << board.rows;
                let mut reach = Exact::one();
                for doublings in 0..board.doublings_max {
                    let mut double = 0u128;
                    for (k, slot) in board.slots.iter().enumerate() {
                        let w = u128::from(binomial(board.rows, k as u32));
                        match slot {
                            PachinkoSlot::Value(v) => {
                                add(&mut out, v << doublings, &reach * ratio(w, total))
                            }
                            PachinkoSlot::Double => double += w,
                        }
                    }
                    reach *= ratio(double, total);
                }
                let value_total = u128::from(board.value_slots.total());
                for (k, slot) in board.slots.iter().enumerate() {
                    if let PachinkoSlot::Value(v) = slot {
                        let w = u128::from(binomial(board.rows, k as u32));
                        add(
                            &mut out,
                            v << board.doublings_max,
                            &reach * ratio(w, value_total),
                        );
                    }
                }
            }
            SpotKind::Bonus(BonusKind::BonusWheel) => {
                let wheel = &self.bonus_wheel;
                let total = u128::from(wheel.segments.total());
                let mut states: BTreeMap<u64, Exact> = BTreeMap::from([(1, Exact::one())]);
                for _ in 0..wheel.respins_max {
                    let mut next: BTreeMap<u64, Exact> = BTreeMap::new();
                    for (m, p) in &states {
                        for &(v, c) in &wheel.values {
                            add(&mut out, v * m, p * ratio(u128::from(c), total));
                        }
                        add(
                            &mut next,
                            m * 2,
                            p * ratio(u128::from(wheel.double_count), total),
                        );
                        add(
                            &mut next,
                            m * 3,
                            p * ratio(u128::from(wheel.triple_count), total),
                        );
                    }
                    states = next;
                }
                let value_total = u128::from(wheel.value_segments.total());
                for (m, p) in &states {
                    for &(v, c) in &wheel.values {
                        add(&mut out, v * m, p * ratio(u128::from(c), value_total));
                    }
                }
            }
        }
        out.retain(|_, p| !p.is_zero());
        let total = out.values().fold(Exact::zero(), |acc, p| acc + p);
        assert!(
            total.is_one(),
            "bonus distribution of {kind:?} does not sum to one"
        );
        out
    }

    fn exact_distribution(&self, spot: usize) -> ReturnDistribution {
        let segments = u128::from(self.segment_count());
        let lands = ratio(u128::from(self.spots[spot].segments), segments);
        let top_total = u128::from(self.top_spots.total());
        let lit = ratio(u128::from(self.top_spots.weight(spot)), top_total);
        let unlit = Exact::one() - &lit;
        let multiplier_total = u128::from(self.top_multipliers.total());
        let mut distribution = ReturnDistribution::new();
        distribution.add(0, Exact::one() - &lands);
        for (multiple, p) in self.multiple_distribution(self.spots[spot].kind) {
            let landed = &lands * p;
            let other_spot = TopSlot {
                spot: usize::MAX,
                multiplier: 1,
            };
            distribution.add(
                self.spot_return(spot, other_spot, multiple),
                &landed * &unlit,
            );
            for (multiplier, weight) in self.top_multipliers.entries() {
                let p_multiplier = ratio(u128::from(weight), multiplier_total);
                let top_slot = TopSlot { spot, multiplier };
                distribution.add(
                    self.spot_return(spot, top_slot, multiple),
                    &landed * &lit * p_multiplier,
                );
            }
        }
        distribution
    }

    /// Mean win multiple of each spot's game before the top slot, exact.
    fn mean_multiple(&self, kind: SpotKind) -> Exact {
        self.multiple_distribution(kind)
            .into_iter()
            .fold(Exact::zero(), |acc, (v, p)| {
                acc + p * Exact::from_integer(v.into())
            })
    }

    /// The weights and probabilities a PAR sheet publishes.
    pub(crate) fn par_details(&self) -> String {
        let mut md = String::new();
        let segments = self.segment_count();
        let top_total = self.top_spots.total();
        let _ = writeln!(md, "## Wheel and top slot\n");
        let _ = writeln!(md, "{segments} equally likely segments. Before each spin the top slot lights one spot (by weight) and draws one multiplier; a win on the lit spot is multiplied. The spot weights are tuned per spot (a spot with more segments or lower pays needs more top-slot help) so that every spot returns between 94% and 96.5%.\n");
        let _ = writeln!(
            md,
            "| Spot | Pays | Segments | P(land) | Top-slot weight | P(lit) |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|");
        for (i, spot) in self.spots.iter().enumerate() {
            let pays = match spot.kind {
                SpotKind::Number { pays } => format!("{pays}:1"),
                SpotKind::Bonus(_) => "bonus result:1".to_string(),
            };
            let w = self.top_spots.weight(i);
            let _ = writeln!(
                md,
                "| {} | {pays} | {} | {} | {w} | {} |",
                spot.name,
                spot.segments,
                to_decimal(&ratio(spot.segments.into(), segments.into()), 6),
                to_decimal(&ratio(w.into(), top_total.into()), 6),
            );
        }
        let _ = writeln!(
            md,
            "\nTop-slot multipliers (mean {}):\n",
            to_decimal(&weighted_mean(&self.top_multipliers), 6)
        );
        write_value_table(
            &mut md,
            "Multiplier",
            self.top_multipliers.entries(),
            self.top_multipliers.total(),
        );

        let _ = writeln!(md, "\n## Coin flip\n");
        let _ = writeln!(md, "Red and blue each draw a multiplier from this table; a fair coin picks the side that pays. Mean result {}.\n", to_decimal(&self.mean_multiple(SpotKind::Bonus(BonusKind::CoinFlip)), 6));
        write_value_table(
            &mut md,
            "Side multiplier",
            self.coin_sides.entries(),
            self.coin_sides.total(),
        );

        let _ = writeln!(md, "\n## Cash hunt\n");
        let _ = writeln!(md, "These {CASH_HUNT_TARGETS} multipliers are shuffled uniformly (Fisher-Yates) behind {CASH_HUNT_TARGETS} targets and each player picks one. After a uniform shuffle every target hides each multiplier with probability count / {CASH_HUNT_TARGETS}, so the pick does not change the odds. Mean result {}.\n", to_decimal(&self.mean_multiple(SpotKind::Bonus(BonusKind::CashHunt)), 6));
        write_value_table(
            &mut md,
            "Multiplier on the board",
            self.cash_counts.iter().copied(),
            CASH_HUNT_TARGETS as u64,
        );

        let board = &self.pachinko;
        let _ = writeln!(md, "\n## Pachinko\n");
        let _ = writeln!(md, "A puck falls through {} rows into slot k with probability C({}, k) / 2^{}. DOUBLE doubles every multiplier and drops again, at most {} times; after that DOUBLE only re-drops. Mean result {}.\n", board.rows, board.rows, board.rows, board.doublings_max, to_decimal(&self.mean_multiple(SpotKind::Bonus(BonusKind::Pachinko)), 6));
        let _ = writeln!(md, "| Slot | Multiplier | Weight | Probability |");
        let _ = writeln!(md, "|---|---|---|---|");
        for (k, slot) in board.slots.iter().enumerate() {
            let w = binomial(board.rows, k as u32);
            let label = match slot {
                PachinkoSlot::Value(v) => v.to_string(),
                PachinkoSlot::Double => "DOUBLE".to_string(),
            };
            let _ = writeln!(
                md,
                "| {k} | {label} | {w} | {} |",
                to_decimal(&ratio(w.into(), 1u128 << board.rows), 6)
            );
        }

        let wheel = &self.bonus_wheel;
        let _ = writeln!(md, "\n## Bonus wheel\n");
        let _ = writeln!(md, "DOUBLE and TRIPLE multiply every value on the wheel and spin again, at most {} times; after that they only spin again. Mean result {}.\n", wheel.respins_max, to_decimal(&self.mean_multiple(SpotKind::Bonus(BonusKind::BonusWheel)), 6));
        let mut entries: Vec<(String, u64)> = wheel
            .values
            .iter()
            .map(|&(v, c)| (v.to_string(), c))
            .collect();
        entries.push(("DOUBLE".into(), wheel.double_count));
        entries.push(("TRIPLE".into(), wheel.triple_count));
        let _ = writeln!(md, "| Segment | Count | Probability |");
        let _ = writeln!(md, "|---|---|---|");
        for (label, count) in entries {
            let _ = writeln!(
                md,
                "| {label} | {count} | {} |",
                to_decimal(&ratio(count.into(), wheel.segments.total().into()), 6)
            );
        }
        md
    }
}

fn weighted_mean(table: &ValueTable) -> Exact {
    let sum: u128 = table.entries().map(|(v, w)| u128::from(v * w)).sum();
    ratio(sum, u128::from(table.total()))
}

fn write_value_table(
    md: &mut String,
    label: &str,
    entries: impl Iterator<Item = (u64, u64)>,
    total: u64,
) {
    let weight = if label == "Multiplier on the board" {
        "Count"
    } else {
        "Weight"
    };
    let _ = writeln!(md, "| {label} | {weight} | Probability |");
    let _ = writeln!(md, "|---|---|---|");
    for (value, weight) in entries {
        let _ = writeln!(
            md,
            "| {value} | {weight} | {} |",
            to_decimal(&ratio(weight.into(), total.into()), 6)
        );
    }
}

impl GameMath for GameShowWheel {
    type Scratch = CashHuntBoard;

    fn bet_names(&self) -> Vec<String> {
        self.spots.iter().map(|s| s.name.clone()).collect()
    }

    fn exact_distributions(&self) -> Vec<ReturnDistribution> {
        (0..self.spots.len())
            .map(|spot| self.exact_distribution(spot))
            .collect()
    }

    fn new_scratch(&self) -> CashHuntBoard {
        self.new_cash_hunt_board()
    }

    #[inline]
    fn play_round<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        board: &mut CashHuntBoard,
        returns: &mut [u64],
    ) {
        let round = self.play(rng, board);
        returns.fill(0);
        returns[round.spot] =
            self.payout_units(round.spot, &round, board, SIMULATED_CASH_HUNT_PICK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wheel() -> GameShowWheel {
        match crate::load(GAME).unwrap() {
            crate::Game::GameShowWheel(w) => w,
            _ => unreachable!(),
        }
    }

    #[test]
    fn layout_has_the_issue_composition() {
        let w = wheel();
        let counts: Vec<(&str, u64)> = w
            .spots()
            .iter()
            .map(|s| (s.name.as_str(), s.segments))
            .collect();
        assert_eq!(
            counts,
            [
                ("1", 21),
                ("2", 13),
                ("5", 7),
                ("10", 4),
                ("coin_flip", 4),
                ("cash_hunt", 2),
                ("pachinko", 2),
                ("crazy_bonus", 1)
            ]
        );
        assert_eq!(w.segment_count(), 54);
    }

    #[test]
    fn every_cash_hunt_target_hides_each_multiplier_equally_often() {
        // The first and the last target, over many shuffles, both average the board's mean
        // (within 4 standard errors): the pick does not matter.
        let w = wheel();
        let mut board = w.new_cash_hunt_board();
        let mut rng = croupier_rng::sim_rng(11);
        let rounds = 20_000u64;
        let (mut first, mut last) = (0u64, 0u64);
        for _ in 0..rounds {
            board.multipliers = *w.cash_board;
            shuffle(&mut rng, &mut board.multipliers);
            first += board.multipliers[0];
            last += board.multipliers[CASH_HUNT_TARGETS - 1];
        }
        let mean = crate::to_f64(&w.mean_multiple(SpotKind::Bonus(BonusKind::CashHunt)));
        let sd = 17.0 / (rounds as f64).sqrt(); // board sd ≈ 16.3
        for total in [first, last] {
            let observed = total as f64 / rounds as f64;
            assert!(
                (observed - mean).abs() < 4.0 * sd,
                "observed {observed}, exact {mean}"
            );
        }
    }

    #[test]
    fn top_slot_multiplies_only_the_lit_spot() {
        let w = wheel();
        let board = w.new_cash_hunt_board();
        let round = |top_spot| WheelRound {
            segment: 0,
            spot: 3,
            top_slot: TopSlot {
                spot: top_spot,
                multiplier: 7,
            },
            bonus: BonusOutcome::None,
        };
        assert_eq!(
            w.payout_units(3, &round(3), &board, 0),
            (1 + 10 * 7) * RETURN_SCALE
        );
        assert_eq!(
            w.payout_units(3, &round(0), &board, 0),
            (1 + 10) * RETURN_SCALE
        );
        assert_eq!(w.payout_units(0, &round(3), &board, 0), 0);
    }

    #[test]
    fn wins_beyond_the_cap_pay_the_cap() {
        let w = wheel();
        let board = w.new_cash_hunt_board();
        let round = WheelRound {
            segment: 0,
            spot: 7,
            top_slot: TopSlot {
                spot: 7,
                multiplier: 50,
            },
            bonus: BonusOutcome::BonusWheel {
                multiple: 200 * 81,
                respins: 4,
            },
        };
        assert_eq!(
            w.payout_units(7, &round, &board, 0),
            w.win_cap() * RETURN_SCALE
        );
    }
}
