//! Exact RTP figures against known values: derived by the enumerations, compared with the
//! closed forms and published tables they must reproduce.

use croupier_games::{load, to_f64, Exact, ExactFigures};
use num_bigint::BigInt;

fn exact(game: &str) -> Vec<ExactFigures> {
    load(game).unwrap().exact()
}

fn ratio(n: i64, d: i64) -> Exact {
    Exact::new(BigInt::from(n), BigInt::from(d))
}

fn bet<'a>(figures: &'a [ExactFigures], name: &str) -> &'a ExactFigures {
    figures
        .iter()
        .find(|f| f.bet == name)
        .unwrap_or_else(|| panic!("no bet {name}"))
}

#[test]
fn every_roulette_bet_returns_exactly_36_over_37() {
    let figures = exact("roulette");
    assert_eq!(figures.len(), 13);
    for f in &figures {
        assert_eq!(f.rtp, ratio(36, 37), "{}", f.bet);
    }
}

/// Published 8-deck house edges (punto banco, banker 5% commission, tie 8:1):
/// banker 1.0579%, player 1.2351%, tie 14.3596%. A pair is the first card's rank again among
/// the 415 cards left, 31 of them: 12 × 31/415 exactly.
#[test]
fn baccarat_matches_the_published_eight_deck_figures() {
    let figures = exact("baccarat");
    let edge_percent = |name| (1.0 - bet(&figures, name).rtp_f64()) * 100.0;
    assert!(
        (edge_percent("banker") - 1.0579).abs() < 5e-5,
        "banker edge {}",
        edge_percent("banker")
    );
    assert!(
        (edge_percent("player") - 1.2351).abs() < 5e-5,
        "player edge {}",
        edge_percent("player")
    );
    assert!(
        (edge_percent("tie") - 14.3596).abs() < 5e-5,
        "tie edge {}",
        edge_percent("tie")
    );
    assert_eq!(bet(&figures, "player_pair").rtp, ratio(12 * 31, 415));
    assert_eq!(bet(&figures, "banker_pair").rtp, ratio(12 * 31, 415));
}

/// P(crash ≥ m) = 0.99 / m up to the floor of the 2^52 count: every target returns 99%
/// within 2^-52 relative, never more.
#[test]
fn crash_targets_return_99_percent() {
    for f in exact("crash") {
        let rtp = f.rtp_f64();
        assert!(rtp <= 0.99 && 0.99 - rtp < 1e-12, "{}: {rtp}", f.bet);
    }
    let two = exact("crash")
        .into_iter()
        .find(|f| f.bet == "2.00x")
        .unwrap();
    assert!((to_f64(&two.hit_frequency) - 0.495).abs() < 1e-12);
}

/// Payout 99 / chance over 10 001 outcomes: 9900/10001 exactly when 99 / chance needs no
/// rounding, a little less when it is floored to four decimals (95% chance pays 1.0421).
#[test]
fn dice_returns_9900_over_10001() {
    let figures = exact("dice");
    for f in &figures {
        if f.bet == "under_95.00" {
            assert_eq!(f.rtp, ratio(9500 * 10421, 10001 * 10000));
        } else {
            assert_eq!(f.rtp, ratio(9900, 10001), "{}", f.bet);
        }
    }
}

#[test]
fn every_game_show_wheel_spot_returns_between_94_and_96_5_percent() {
    let figures = exact("game-show-wheel");
    assert_eq!(figures.len(), 8);
    for f in &figures {
        assert!(
            f.rtp >= ratio(94, 100) && f.rtp <= ratio(965, 1000),
            "{}: {}",
            f.bet,
            f.rtp_f64()
        );
    }
}

#[test]
fn every_plinko_table_returns_close_to_99_percent() {
    let figures = exact("plinko");
    assert_eq!(figures.len(), 27);
    for f in &figures {
        let rtp = f.rtp_f64();
        assert!((0.985..=0.995).contains(&rtp), "{}: {rtp}", f.bet);
    }
}

/// Uncapped, a number n with c segments returns c/52 + c·n/45; the cap only lowers it.
#[test]
fn money_wheel_stays_below_its_geometric_series() {
    let figures = exact("money-wheel");
    let closed = [(1, 23), (2, 15), (5, 7), (10, 4), (20, 2), (40, 1)];
    for (f, (n, c)) in figures.iter().zip(closed) {
        let uncapped = ratio(c, 52) + ratio(c * n, 45);
        assert!(
            f.rtp <= uncapped && to_f64(&(&uncapped - &f.rtp)) < 5e-3,
            "{}",
            f.bet
        );
    }
}

#[test]
fn max_payouts_respect_every_win_cap() {
    for name in croupier_games::GAME_NAMES {
        let game = load(name).unwrap();
        for f in game.exact() {
            assert!(
                f.max_payout_units <= game.win_cap() * croupier_games::RETURN_SCALE,
                "{name} {}",
                f.bet
            );
        }
    }
}
