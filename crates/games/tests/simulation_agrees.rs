//! For every game and bet, the simulator agrees with the exact RTP: the exact figure lies in
//! the simulation's confidence interval.
//!
//! Seeds are fixed, so the outcome is deterministic. With about 80 bets, 99% intervals would
//! each miss by chance one time in a hundred, so the automated check uses 99.9% intervals
//! (z = 3.29); `croupier games simulate` reports 99% intervals. To keep the check able to
//! fail, every interval must also be narrow enough to see a 10-point RTP error, and a
//! companion test shows the same check rejects a wrong "exact" figure.

use croupier_games::{load, Game, Z_999};

/// Widest 99.9% half-interval accepted: wide enough for the lottery-like bets (dice at 0.01%,
/// crash at 1000x) at these round counts, narrow enough that an exact figure 10 points off
/// would fall outside. Most bets' intervals are far narrower (roulette's red: ±0.002).
const HALF_WIDTH_MAX: f64 = 0.1;

fn assert_simulation_agrees(name: &str, rounds: u64, seed: u64) {
    let game: Game = load(name).unwrap();
    let exact = game.exact();
    let totals = game.simulate(rounds, seed);
    assert_eq!(totals.rounds, rounds);
    let simulated = totals.figures(&game.bet_names(), Z_999);
    for (sim, exact) in simulated.iter().zip(&exact) {
        let rtp = exact.rtp_f64();
        assert!(
            sim.ci_low <= rtp && rtp <= sim.ci_high,
            "{name} {}: exact RTP {rtp} outside the simulated 99.9% interval [{}, {}] ({rounds} rounds)",
            sim.bet,
            sim.ci_low,
            sim.ci_high
        );
        let half_width = (sim.ci_high - sim.ci_low) / 2.0;
        assert!(
            half_width < HALF_WIDTH_MAX,
            "{name} {}: interval ±{half_width} is too wide to mean anything",
            sim.bet
        );
        let p = exact.hit_frequency_f64();
        let hit_tolerance = Z_999 * (p * (1.0 - p) / rounds as f64).sqrt() + 1e-12;
        assert!(
            (sim.hit_frequency - p).abs() <= hit_tolerance,
            "{name} {}: hit frequency {} vs exact {p}",
            sim.bet,
            sim.hit_frequency
        );
        let sd = exact.std_dev_f64();
        assert!(
            (sim.std_dev - sd).abs() <= 0.25 * sd,
            "{name} {}: std dev {} vs exact {sd}",
            sim.bet,
            sim.std_dev
        );
    }
}

#[test]
fn roulette_simulation_agrees_with_exact_rtp() {
    assert_simulation_agrees("roulette", 2_000_000, 101);
}

#[test]
fn money_wheel_simulation_agrees_with_exact_rtp() {
    assert_simulation_agrees("money-wheel", 2_000_000, 102);
}

#[test]
fn game_show_wheel_simulation_agrees_with_exact_rtp() {
    assert_simulation_agrees("game-show-wheel", 4_000_000, 103);
}

#[test]
fn baccarat_simulation_agrees_with_exact_rtp() {
    assert_simulation_agrees("baccarat", 1_000_000, 104);
}

#[test]
fn crash_simulation_agrees_with_exact_rtp() {
    assert_simulation_agrees("crash", 4_000_000, 105);
}

#[test]
fn dice_simulation_agrees_with_exact_rtp() {
    assert_simulation_agrees("dice", 16_000_000, 106);
}

#[test]
fn plinko_simulation_agrees_with_exact_rtp() {
    assert_simulation_agrees("plinko", 4_000_000, 107);
}

/// The agreement check has power: a simulation of roulette rejects a claimed RTP of 1.0
/// (no house edge) for the single-number bet, the noisiest one.
#[test]
fn agreement_check_rejects_a_wrong_exact_figure() {
    let game = load("roulette").unwrap();
    let simulated = game
        .simulate(2_000_000, 101)
        .figures(&game.bet_names(), Z_999);
    let straight = simulated.iter().find(|s| s.bet == "straight").unwrap();
    assert!(
        straight.ci_high < 1.0,
        "interval {:?} cannot tell 36/37 from 1",
        (straight.ci_low, straight.ci_high)
    );
}

#[test]
fn same_seed_gives_the_same_totals_and_another_seed_does_not() {
    let game = load("game-show-wheel").unwrap();
    let rounds = croupier_games::CHUNK_ROUNDS + 1_000;
    let first = game.simulate(rounds, 7);
    assert_eq!(first, game.simulate(rounds, 7));
    assert_ne!(first, game.simulate(rounds, 8));
}

#[test]
fn chunks_merged_in_any_order_give_the_same_totals() {
    // What makes `--threads` irrelevant to the numbers: chunk k depends only on (seed, k).
    let game = load("baccarat").unwrap();
    let rounds = 2 * croupier_games::CHUNK_ROUNDS + 5;
    let chunks: Vec<_> = (0..3)
        .map(|k| game.simulate_chunk(9, k, croupier_games::chunk_rounds(rounds, k)))
        .collect();
    let mut reversed = croupier_games::SimTotals::new(game.bet_names().len());
    for chunk in chunks.iter().rev() {
        reversed.merge(chunk);
    }
    assert_eq!(reversed, game.simulate(rounds, 9));
}
