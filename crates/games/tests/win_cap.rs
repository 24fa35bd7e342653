//! A paytable value that pays above its game's win cap is a definition error at load, naming the
//! field, never a payout silently clipped to the cap (issue #9 §6): one test per game kind whose
//! definition carries fixed payouts. Crash targets and dice chances were refused already; their
//! tests pin that too.

use croupier_games::{embedded_definition, load_checked, DefinitionError, Manifest};

/// Loads the shipped definition of `game` after `edit`, certified for the test.
fn load_edited(game: &str, edit: impl Fn(&str) -> String) -> Result<(), DefinitionError> {
    let original = embedded_definition(game).unwrap();
    let text = edit(original);
    assert_ne!(text, original, "the edit must change the definition");
    let manifest = Manifest::parse(&Manifest::render(&[(game, &text)])).unwrap();
    load_checked(game, text.as_bytes(), &manifest).map(|_| ())
}

fn assert_above_cap(result: Result<(), DefinitionError>, game: &str, field: &str) {
    match result {
        Err(DefinitionError::Invalid {
            game: g,
            field: f,
            reason,
        }) => {
            assert_eq!((g.as_str(), f.as_str()), (game, field), "{reason}");
            assert!(
                reason.contains("win cap") || reason.contains("within"),
                "{reason}"
            );
        }
        other => panic!("expected a win cap error on {game} {field}, got {other:?}"),
    }
}

#[test]
fn roulette_pay_above_the_win_cap_is_a_definition_error() {
    // win_cap 36: a straight up at 35:1 returns 36, at 36:1 it would return 37.
    let result = load_edited("roulette", |t| t.replace("straight = 35", "straight = 36"));
    assert_above_cap(result, "roulette", "pays.straight");
    let error = load_edited("roulette", |t| t.replace("straight = 35", "straight = 36"));
    assert!(error.unwrap_err().to_string().contains("37x"));
}

#[test]
fn money_wheel_pay_or_factor_above_the_win_cap_is_a_definition_error() {
    let result = load_edited("money-wheel", |t| {
        t.replace("win_cap = 5000", "win_cap = 40")
    });
    assert_above_cap(result, "money-wheel", "numbers[5].pays");
    let result = load_edited("money-wheel", |t| {
        t.replace("win_cap = 5000", "win_cap = 41")
            .replace("factor = 7", "factor = 41")
    });
    assert_above_cap(result, "money-wheel", "multipliers[1].factor");
}

#[test]
fn game_show_wheel_value_above_the_win_cap_is_a_definition_error() {
    let result = load_edited("game-show-wheel", |t| {
        t.replace("win_cap = 25000", "win_cap = 200")
    });
    assert_above_cap(result, "game-show-wheel", "bonus_wheel.segments[6].value");
    let result = load_edited("game-show-wheel", |t| {
        t.replace("win_cap = 25000", "win_cap = 150")
            .replace(
                "{ value = 100, count = 1 },\n]",
                "{ value = 90, count = 1 },\n]",
            )
            .replace(
                "{ value = 100, weight = 1 },",
                "{ value = 90, weight = 1 },",
            )
            .replace("{ value = 200, count = 1 },", "{ value = 149, count = 1 },")
            .replace("[200, 50,", "[100, 50,")
            .replace("50, 200]", "50, 100]")
    });
    assert!(
        result.is_ok(),
        "every value within the cap loads: {result:?}"
    );
}

#[test]
fn baccarat_pay_above_the_win_cap_is_a_definition_error() {
    // Pairs pay 11:1 and return 12, the cap; the old check let 12:1 through (returning 13).
    let result = load_edited("baccarat", |t| t.replace("pays = 11", "pays = 12"));
    assert_above_cap(result, "baccarat", "bets[3].pays");
}

#[test]
fn plinko_multiplier_above_the_win_cap_is_a_definition_error() {
    let result = load_edited("plinko", |t| t.replace("win_cap = 1000", "win_cap = 13"));
    assert!(result.is_err());
    let result = load_edited("plinko", |t| t.replace("win_cap = 1000", "win_cap = 5"));
    assert_above_cap(result, "plinko", "tables[0].multipliers[0]");
}

#[test]
fn crash_target_and_dice_chance_above_the_win_cap_stay_definition_errors() {
    let result = load_edited("crash", |t| t.replace("win_cap = 10000", "win_cap = 2"));
    assert!(
        matches!(result, Err(DefinitionError::Invalid { ref field, .. }) if field.starts_with("targets[")),
        "{result:?}"
    );
    let result = load_edited("dice", |t| t.replace("win_cap = 9900", "win_cap = 2"));
    assert!(
        matches!(result, Err(DefinitionError::Invalid { ref field, .. }) if field.starts_with("bets[")),
        "{result:?}"
    );
}
