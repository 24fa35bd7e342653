//! Croupier's game math: each game is a definition (data, embedded TOML pinned by SHA-256 in a
//! manifest that a certifying key signs, see `certification`) plus pure functions from random
//! draws to an outcome and from an outcome and a bet to a payout; exact RTP by enumeration or
//! closed form; a Monte Carlo simulator.
//!
//! It must not know: the ledger, money movement, clocks, tokio, HTTP, JSON or disks. Random
//! draws come in through `croupier_rng` sampling over any `RngCore`.
//!
//! Payouts are integers: a bet's return (stake included) in [`RETURN_SCALE`] units per unit
//! staked, so 1.95 (a winning banker bet) is 19 500. Exact figures are big rationals; the
//! simulator sums integers, so merging its chunks in any order gives the same numbers.

mod catalog;
pub mod certification;
mod exact;
mod par;
mod sim;
mod table;

pub mod baccarat;
pub mod crash;
pub mod dice;
pub mod game_show_wheel;
pub mod live;
pub mod money_wheel;
pub mod plinko;
pub mod roulette;

pub use catalog::{
    embedded_definition, load, load_checked, sha256_hex, verify_embedded, DefinitionError,
    Manifest, VerifyReport, GAME_NAMES,
};
pub use exact::{to_decimal, to_f64, Exact, ExactFigures, ReturnDistribution};
pub use sim::{
    chunk_count, chunk_rounds, BetTotals, SimFigures, SimTotals, CHUNK_ROUNDS, Z_99, Z_999,
};

use croupier_rng::RngCore;

/// A return of 1.0000 times the stake, in the integer units every payout is expressed in.
pub const RETURN_SCALE: u64 = 10_000;

/// The largest win cap a definition may declare, as a multiple of the stake: keeps a squared
/// return (in units) within u64, so the simulator's hot loop stays in 64-bit arithmetic.
pub const WIN_CAP_MAX: u64 = 100_000;

/// One loaded, validated, certified game definition.
// Loaded once per process and passed by reference: variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Game {
    Roulette(roulette::Roulette),
    MoneyWheel(money_wheel::MoneyWheel),
    GameShowWheel(game_show_wheel::GameShowWheel),
    Baccarat(baccarat::Baccarat),
    Crash(crash::Crash),
    Dice(dice::Dice),
    Plinko(plinko::Plinko),
}

/// What the exact calculator and the simulator need from every game.
pub(crate) trait GameMath {
    /// Per-round working memory, reused across rounds so a round allocates nothing.
    type Scratch;

    /// The bets reported by `rtp` and `simulate`, in definition order.
    fn bet_names(&self) -> Vec<String>;

    /// The exact distribution of each bet's return, in `bet_names` order.
    fn exact_distributions(&self) -> Vec<ReturnDistribution>;

    fn new_scratch(&self) -> Self::Scratch;

    /// Plays one round and settles every bet from that single outcome: `returns[i]` is bet
    /// i's return in `RETURN_SCALE` units.
    fn play_round<R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        scratch: &mut Self::Scratch,
        returns: &mut [u64],
    );
}

macro_rules! dispatch {
    ($game:expr, $g:ident => $body:expr) => {
        match $game {
            Game::Roulette($g) => $body,
            Game::MoneyWheel($g) => $body,
            Game::GameShowWheel($g) => $body,
            Game::Baccarat($g) => $body,
            Game::Crash($g) => $body,
            Game::Dice($g) => $body,
            Game::Plinko($g) => $body,
        }
    };
}

impl Game {
    /// The CLI name (`roulette`, `money-wheel`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Game::Roulette(_) => "roulette",
            Game::MoneyWheel(_) => "money-wheel",
            Game::GameShowWheel(_) => "game-show-wheel",
            Game::Baccarat(_) => "baccarat",
            Game::Crash(_) => "crash",
            Game::Dice(_) => "dice",
            Game::Plinko(_) => "plinko",
        }
    }

    pub fn title(&self) -> &str {
        dispatch!(self, g => g.title())
    }

    /// The largest payout per unit staked, stake included.
    pub fn win_cap(&self) -> u64 {
        dispatch!(self, g => g.win_cap())
    }

    pub fn bet_names(&self) -> Vec<String> {
        dispatch!(self, g => GameMath::bet_names(g))
    }

    /// Exact RTP, hit frequency, variance and max payout of every bet (no sampling).
    pub fn exact(&self) -> Vec<ExactFigures> {
        let names = self.bet_names();
        let distributions = dispatch!(self, g => g.exact_distributions());
        assert_eq!(names.len(), distributions.len());
        names
            .into_iter()
            .zip(distributions)
            .map(|(name, distribution)| ExactFigures::from_distribution(name, distribution))
            .collect()
    }

    /// Simulates chunk `chunk_index` of a run seeded with `seed` (see [`chunk_rounds`]). The
    /// chunk's generator depends only on (seed, chunk_index), so a run's totals do not depend
    /// on how chunks are spread over threads.
    pub fn simulate_chunk(&self, seed: u64, chunk_index: u64, rounds: u64) -> SimTotals {
        dispatch!(self, g => sim::run_chunk(g, g.win_cap(), seed, chunk_index, rounds))
    }

    /// Simulates `rounds` rounds on the calling thread (the CLI spreads chunks over threads).
    pub fn simulate(&self, rounds: u64, seed: u64) -> SimTotals {
        let mut totals = SimTotals::new(self.bet_names().len());
        for index in 0..chunk_count(rounds) {
            totals.merge(&self.simulate_chunk(seed, index, chunk_rounds(rounds, index)));
        }
        totals
    }

    /// The PAR sheet (Markdown) for this game: definition hash, per-bet figures and the
    /// game's weights and probabilities.
    pub fn par_sheet(&self) -> String {
        par::render(self)
    }
}
