//! Live table rounds: a game's spots as a table offers them, and one round drawn from a
//! random stream (in production the provably-fair stream of the round's server seed) with the
//! return of every spot for that outcome. The ledger settles bets from those returns
//! (`croupier_core::tables`), so what is computed here is what players are paid.
//!
//! Spots: a wheel's spots are its bets as `croupier games rtp` names them (`1`, `2`, `coin_flip`,
//! ...). A roulette table needs every placement on the cloth, so its spots are
//! `<kind>:<numbers>` (`straight:17`, `split:0-1`, `corner:1-2-4-5`, `column:1`, `dozen:3`) and
//! the even-money bets by kind (`red`, `odd`, `low`, ...).

use croupier_rng::RngCore;

use crate::game_show_wheel::SIMULATED_CASH_HUNT_PICK;
use crate::roulette::{BetKind, Roulette, RouletteBet};
use crate::Game;

/// One live round's outcome and what each spot returns for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveDraw {
    /// The game's encoding of the outcome (what the log keeps; see `LiveTable::draw`).
    pub outcome: Vec<u8>,
    /// The outcome for people: `17`, `2 x7`, `coin_flip`.
    pub label: String,
    /// Per spot, the return per unit staked (stake included), in `RETURN_SCALE` units.
    pub returns: Vec<u64>,
}

/// What a client needs to show a table's wheel and to replay a round's outcome from its
/// revealed seed: every draw starts with one uniform pick among `segments` (roulette: the
/// pockets 0-36; a wheel: its segments clockwise), preceded on the game-show wheel by the top
/// slot's two weighted picks; a money wheel re-spins on a multiplier segment until a number
/// lands or the multiplier reaches `win_cap`, then picks a number by `number_weights`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveLayout {
    pub segments: Vec<String>,
    /// Money wheel: multiplier segment symbol and factor.
    pub multipliers: Vec<(String, u64)>,
    /// Money wheel: each number spot's segment count, in spot order.
    pub number_weights: Vec<u64>,
    pub win_cap: u64,
    /// Game-show wheel: the top slot's spot weights (spot order) and (multiplier, weight).
    pub top_spot_weights: Vec<u64>,
    pub top_multipliers: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} does not run at live tables (money-wheel, game-show-wheel and roulette do)")]
pub struct NotALiveGame(pub &'static str);

/// A game as a table runs it: its spots in a fixed order, and draws.
#[derive(Debug, Clone)]
pub struct LiveTable {
    game: Game,
    spots: Vec<String>,
    /// Roulette only: the placement behind each spot.
    placements: Vec<RouletteBet>,
}

impl LiveTable {
    pub fn new(game: Game) -> Result<LiveTable, NotALiveGame> {
        let (spots, placements) = match &game {
            Game::MoneyWheel(_) | Game::GameShowWheel(_) => (game.bet_names(), Vec::new()),
            Game::Roulette(roulette) => roulette_spots(roulette),
            other => return Err(NotALiveGame(other.name())),
        };
        Ok(LiveTable {
            game,
            spots,
            placements,
        })
    }

    pub fn game(&self) -> &Game {
        &self.game
    }

    /// Spot names, index-aligned with `LiveDraw::returns`.
    pub fn spots(&self) -> &[String] {
        &self.spots
    }

    /// The wheel's segments and the weights a draw uses (see [`LiveLayout`]).
    pub fn layout(&self) -> LiveLayout {
        let owned = |symbols: Vec<&str>| symbols.into_iter().map(str::to_owned).collect();
        match &self.game {
            Game::Roulette(roulette) => LiveLayout {
                segments: (0..crate::roulette::POCKETS)
                    .map(|p| p.to_string())
                    .collect(),
                win_cap: roulette.win_cap(),
                ..LiveLayout::default()
            },
            Game::MoneyWheel(wheel) => LiveLayout {
                segments: owned(wheel.layout()),
                multipliers: wheel
                    .multipliers()
                    .iter()
                    .map(|m| (m.symbol.clone(), m.factor))
                    .collect(),
                number_weights: wheel.numbers().iter().map(|n| n.count).collect(),
                win_cap: wheel.win_cap(),
                ..LiveLayout::default()
            },
            Game::GameShowWheel(wheel) => LiveLayout {
                segments: owned(wheel.layout()),
                win_cap: wheel.win_cap(),
                top_spot_weights: wheel.top_spot_weights(),
                top_multipliers: wheel.top_multipliers().entries().collect(),
                ..LiveLayout::default()
            },
            other => unreachable!("{} is refused by LiveTable::new", other.name()),
        }
    }

    pub fn spot_index(&self, name: &str) -> Option<u16> {
        self.spots
            .iter()
            .position(|spot| spot == name)
            .map(|at| at as u16)
    }

    /// Draws one round. Outcome encodings: roulette `[pocket]`; money wheel `u16 number
    /// segment (little-endian) | u64 multiplier`; game-show wheel `u16 segment | u16 spot`.
    /// The human text of an outcome as `draw` encodes it (what `LiveDraw::label` said), for a
    /// node that reads the draw from the log rather than making it; `None` if the bytes are
    /// not an outcome of this game.
    pub fn label(&self, outcome: &[u8]) -> Option<String> {
        let u16_at = |at: usize| {
            let bytes = outcome.get(at..at + 2)?;
            Some(usize::from(u16::from_le_bytes([bytes[0], bytes[1]])))
        };
        match &self.game {
            Game::Roulette(_) => match outcome {
                [pocket] if *pocket < 37 => Some(pocket.to_string()),
                _ => None,
            },
            Game::MoneyWheel(_) => {
                let name = self.spots.get(u16_at(0)?)?;
                let multiplier = u64::from_le_bytes(outcome.get(2..10)?.try_into().ok()?);
                (outcome.len() == 10).then(|| format!("{name} x{multiplier}"))
            }
            Game::GameShowWheel(_) => {
                let name = self.spots.get(u16_at(2)?)?;
                (outcome.len() == 4).then(|| name.clone())
            }
            _ => None,
        }
    }

    pub fn draw<R: RngCore + ?Sized>(&self, rng: &mut R) -> LiveDraw {
        match &self.game {
            Game::Roulette(roulette) => {
                let pocket = roulette.spin(rng);
                let returns = self
                    .placements
                    .iter()
                    .map(|bet| roulette.payout_units(bet, pocket))
                    .collect();
                LiveDraw {
                    outcome: vec![pocket],
                    label: pocket.to_string(),
                    returns,
                }
            }
            Game::MoneyWheel(wheel) => {
                let spin = wheel.spin(rng);
                let returns = (0..self.spots.len())
                    .map(|bet| wheel.payout_units(bet, &spin))
                    .collect();
                let mut outcome = (spin.number as u16).to_le_bytes().to_vec();
                outcome.extend_from_slice(&spin.multiplier.to_le_bytes());
                let label = format!("{} x{}", self.spots[spin.number], spin.multiplier);
                LiveDraw {
                    outcome,
                    label,
                    returns,
                }
            }
            Game::GameShowWheel(wheel) => {
                let mut board = wheel.new_cash_hunt_board();
                let round = wheel.play(rng, &mut board);
                let returns = (0..self.spots.len())
                    .map(|spot| wheel.payout_units(spot, &round, &board, SIMULATED_CASH_HUNT_PICK))
                    .collect();
                let mut outcome = (round.segment as u16).to_le_bytes().to_vec();
                outcome.extend_from_slice(&(round.spot as u16).to_le_bytes());
                LiveDraw {
                    outcome,
                    label: self.spots[round.spot].clone(),
                    returns,
                }
            }
            other => unreachable!("{} is refused by LiveTable::new", other.name()),
        }
    }
}

/// Why a studio's reported outcome cannot be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StudioOutcomeError {
    #[error("{0} draws its bonus rounds from the RNG: it cannot take its results from a studio")]
    NotAStudioGame(&'static str),
    #[error("not an outcome of {0}")]
    NotAnOutcome(&'static str),
}

impl LiveTable {
    /// Whether a studio can report this game's outcomes: a physical roulette or money wheel.
    /// (The game-show wheel's top slot and bonus games are drawn from the RNG, so one
    /// reported segment does not decide what its spots return.)
    pub fn runs_in_studio(&self) -> bool {
        matches!(self.game, Game::Roulette(_) | Game::MoneyWheel(_))
    }

    /// What each spot returns for an outcome a studio reported (encoded as `draw` encodes
    /// it): the settlement of a studio round. A money wheel's multiplier must be 1 or a
    /// product of the wheel's multiplier segments that the spins could reach.
    pub fn studio_draw(&self, outcome: &[u8]) -> Result<LiveDraw, StudioOutcomeError> {
        let name = self.game.name();
        let not_an_outcome = || StudioOutcomeError::NotAnOutcome(name);
        let label = self.label(outcome).ok_or_else(not_an_outcome)?;
        let returns = match &self.game {
            Game::Roulette(roulette) => self
                .placements
                .iter()
                .map(|bet| roulette.payout_units(bet, outcome[0]))
                .collect(),
            Game::MoneyWheel(wheel) => {
                let number = usize::from(u16::from_le_bytes([outcome[0], outcome[1]]));
                let multiplier = u64::from_le_bytes(outcome[2..10].try_into().expect("10 bytes"));
                let factors: Vec<u64> = wheel.multipliers().iter().map(|m| m.factor).collect();
                if !reachable_multiplier(multiplier, &factors, wheel.win_cap()) {
                    return Err(not_an_outcome());
                }
                let spin = crate::money_wheel::Spin { number, multiplier };
                (0..self.spots.len())
                    .map(|bet| wheel.payout_units(bet, &spin))
                    .collect()
            }
            _ => return Err(StudioOutcomeError::NotAStudioGame(name)),
        };
        Ok(LiveDraw {
            outcome: outcome.to_vec(),
            label,
            returns,
        })
    }

    /// The outcome a studio console reports for what its wheel shows, written as players
    /// read it: roulette `17`; money wheel `10` or `10 x6` (the number and the multiplier
    /// its multiplier segments gave).
    pub fn studio_outcome(&self, shown: &str) -> Result<Vec<u8>, StudioOutcomeError> {
        let name = self.game.name();
        let not_an_outcome = || StudioOutcomeError::NotAnOutcome(name);
        let outcome = match &self.game {
            Game::Roulette(_) => {
                let pocket: u8 = shown.trim().parse().map_err(|_| not_an_outcome())?;
                vec![pocket]
            }
            Game::MoneyWheel(_) => {
                let (number, multiplier) = match shown.trim().split_once(" x") {
                    Some((number, multiplier)) => (number, multiplier.parse().ok()),
                    None => (shown.trim(), Some(1u64)),
                };
                let spot = self.spot_index(number).ok_or_else(not_an_outcome)?;
                let mut outcome = spot.to_le_bytes().to_vec();
                outcome.extend_from_slice(&multiplier.ok_or_else(not_an_outcome)?.to_le_bytes());
                outcome
            }
            _ => return Err(StudioOutcomeError::NotAStudioGame(name)),
        };
        self.studio_draw(&outcome)?;
        Ok(outcome)
    }
}

/// Whether spinning could give `multiplier`: 1, or a product of the factors taken while the
/// running product was still below the win cap (where `MoneyWheel::spin` stops re-spinning).
fn reachable_multiplier(multiplier: u64, factors: &[u64], win_cap: u64) -> bool {
    multiplier == 1
        || multiplier > 1
            && factors.iter().any(|&factor| {
                factor >= 2
                    && multiplier.is_multiple_of(factor)
                    && multiplier / factor < win_cap
                    && reachable_multiplier(multiplier / factor, factors, win_cap)
            })
}

/// Every placement on a European cloth, by kind, in a fixed order.
fn roulette_spots(roulette: &Roulette) -> (Vec<String>, Vec<RouletteBet>) {
    let mut names = Vec::new();
    let mut placements = Vec::new();
    for kind in BetKind::ALL {
        for numbers in candidate_numbers(kind) {
            if let Ok(bet) = roulette.place(kind, &numbers) {
                let joined: Vec<String> = numbers.iter().map(u8::to_string).collect();
                names.push(match joined.is_empty() {
                    true => kind.name().to_string(),
                    false => format!("{}:{}", kind.name(), joined.join("-")),
                });
                placements.push(bet);
            }
        }
    }
    (names, placements)
}

/// Number sets to try per kind; `Roulette::place` keeps the legal ones.
fn candidate_numbers(kind: BetKind) -> Vec<Vec<u8>> {
    let candidates: Vec<Vec<u8>> = match kind {
        BetKind::Straight => (0..37).map(|n| vec![n]).collect(),
        BetKind::Split => (0..37)
            .flat_map(|a| (a + 1..37).map(move |b| vec![a, b]))
            .collect(),
        BetKind::Street => (0..35)
            .flat_map(|a| [vec![0, a, a + 1], vec![a, a + 1, a + 2]])
            .collect(),
        BetKind::Corner => std::iter::once(vec![0, 1, 2, 3])
            .chain((0..33).map(|a| vec![a, a + 1, a + 3, a + 4]))
            .collect(),
        BetKind::SixLine => (1..32).map(|a| (a..a + 6).collect()).collect(),
        BetKind::Column | BetKind::Dozen => (1..4).map(|i| vec![i]).collect(),
        _ => vec![vec![]],
    };
    let mut unique = Vec::new();
    for candidate in candidates {
        if !unique.contains(&candidate) {
            unique.push(candidate);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RETURN_SCALE;

    /// A fixed stream for tests (the product uses the certified or provably-fair stream).
    struct Counter(u64);

    impl RngCore for Counter {
        fn next_u32(&mut self) -> u32 {
            self.next_u64() as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for byte in dest {
                *byte = self.next_u64() as u8;
            }
        }
    }

    #[test]
    fn a_studio_outcome_settles_like_the_same_outcome_drawn() {
        for name in ["roulette", "money-wheel"] {
            let table = table(name);
            assert!(table.runs_in_studio());
            let mut rng = Counter(7);
            for _ in 0..200 {
                let drawn = table.draw(&mut rng);
                assert_eq!(table.studio_draw(&drawn.outcome).unwrap(), drawn, "{name}");
                assert_eq!(table.studio_outcome(&drawn.label).unwrap(), drawn.outcome);
            }
        }
    }

    #[test]
    fn a_studio_outcome_the_wheel_cannot_show_is_refused() {
        let roulette = table("roulette");
        assert!(roulette.studio_outcome("37").is_err());
        assert!(roulette.studio_outcome("red").is_err());
        assert!(roulette.studio_draw(&[1, 2]).is_err());
        let wheel = table("money-wheel");
        let number = &wheel.spots()[0];
        assert!(wheel.studio_outcome(number).is_ok());
        assert!(
            wheel.studio_outcome(&format!("{number} x3")).is_err(),
            "no x3 segment"
        );
        assert!(wheel.studio_outcome(&format!("{number} x0")).is_err());
        assert!(wheel.studio_outcome("nine").is_err());
        let show = table("game-show-wheel");
        assert!(!show.runs_in_studio());
        let drawn = show.draw(&mut Counter(1));
        assert!(matches!(
            show.studio_draw(&drawn.outcome),
            Err(StudioOutcomeError::NotAStudioGame(_))
        ));
    }

    fn table(name: &str) -> LiveTable {
        LiveTable::new(crate::load(name).unwrap()).unwrap()
    }

    #[test]
    fn a_roulette_table_offers_every_placement_on_the_cloth() {
        let roulette = table("roulette");
        let count = |prefix: &str| {
            roulette
                .spots()
                .iter()
                .filter(|s| s.starts_with(prefix))
                .count()
        };
        assert_eq!(count("straight:"), 37);
        assert_eq!(count("split:"), 60);
        assert_eq!(count("column:"), 3);
        assert!(roulette.spot_index("red").is_some() && roulette.spot_index("split:0-1").is_some());
        let spots = roulette.spots().len();
        assert_eq!(spots, 37 + 60 + 14 + 23 + 11 + 3 + 3 + 6);
    }

    #[test]
    fn a_roulette_draw_pays_exactly_the_placements_covering_the_pocket() {
        let roulette = table("roulette");
        let mut rng = Counter(7);
        for _ in 0..50 {
            let draw = roulette.draw(&mut rng);
            let pocket = draw.outcome[0];
            assert_eq!(roulette.label(&draw.outcome), Some(draw.label.clone()));
            let straight = roulette.spot_index(&format!("straight:{pocket}")).unwrap() as usize;
            assert_eq!(draw.returns[straight], 36 * RETURN_SCALE);
            let winners = draw.returns.iter().filter(|r| **r > 0).count();
            assert!(winners >= 1 && draw.returns.len() == roulette.spots().len());
        }
    }

    #[test]
    fn wheels_return_for_their_bets_and_other_games_are_refused() {
        for name in ["money-wheel", "game-show-wheel"] {
            let wheel = table(name);
            let draw = wheel.draw(&mut Counter(3));
            assert_eq!(draw.returns.len(), wheel.spots().len());
            assert_eq!(wheel.spots(), wheel.game().bet_names().as_slice());
            assert_eq!(wheel.label(&draw.outcome).as_ref(), Some(&draw.label));
            assert_eq!(wheel.label(&[1, 2, 3]), None);
        }
        assert!(LiveTable::new(crate::load("dice").unwrap()).is_err());
    }
}
