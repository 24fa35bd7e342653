//! The scoring engine, one behaviour per test: each default rule against a scenario that
//! fires it and a near miss that does not, then loading, evaluation, bounds and determinism.

use std::sync::OnceLock;

use super::*;

/// 2025-06-15T12:00:00Z, in ns.
const T0: u64 = 1_749_988_800 * 1_000_000_000;
const MINUTE_NS: u64 = 60 * 1_000_000_000;
/// EUR 1.00 in minor units.
const EUR: u64 = 100;
const ALICE: u128 = 1;
const BOB: u128 = 2;

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

fn default_rules() -> &'static RuleSet {
    static RULES: OnceLock<RuleSet> = OnceLock::new();
    RULES.get_or_init(RuleSet::default_rules)
}

fn event(at_ns: u64, player_id: u128, kind: EventKind, amount: u64) -> MoneyEvent {
    MoneyEvent::new(at_ns, player_id, eur(), kind, amount)
}

fn deposit(at_ns: u64, player_id: u128, amount: u64) -> MoneyEvent {
    event(at_ns, player_id, EventKind::Deposit, amount)
}

/// Feeds `events` through the default rules; the evaluation of each.
fn observe_all(activity: &mut Activity, events: &[MoneyEvent]) -> Vec<Evaluation> {
    let rules = default_rules();
    events.iter().map(|e| rules.observe(activity, e)).collect()
}

/// The evaluation of the last of `events`, fed into a fresh activity.
fn last_evaluation(events: &[MoneyEvent]) -> Evaluation {
    let mut activity = Activity::new(ActivityLimits::default());
    observe_all(&mut activity, events).pop().unwrap()
}

fn fired(evaluation: &Evaluation, reason: &str) -> bool {
    evaluation.reasons.iter().any(|r| r == reason)
}

fn parse_error(text: &str) -> RuleSetError {
    RuleSet::parse(text).expect_err("refused")
}

/// A rule set of one rule with `when`, scoring 10.
fn one_rule(when: &str) -> String {
    format!("version = \"t\"\n[[rules]]\nid = \"r\"\nreason = \"r\"\nscore = 10\nwhen = '{when}'\n")
}

#[test]
fn default_rules_load_with_every_rule_kind() {
    let rules = default_rules();
    assert_eq!(rules.version(), "croupier-default-1");
    let ids: Vec<&str> = rules.rule_ids().collect();
    for id in [
        "amld_single",
        "amld_linked",
        "structuring",
        "deposit_withdraw_little_play",
        "deposit_velocity",
        "shared_device",
        "shared_instrument",
        "shared_address",
        "collusion",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    assert_eq!(rules.threshold(eur()), Some(2_000 * EUR));
}

#[test]
fn single_deposit_of_eur_2000_fires_and_1999_99_does_not() {
    let at = last_evaluation(&[deposit(T0, ALICE, 2_000 * EUR)]);
    assert!(fired(&at, "amld_single_transaction"), "{at:?}");
    assert_eq!(at.action, Action::RequireEnhancedKyc);
    let below = last_evaluation(&[deposit(T0, ALICE, 2_000 * EUR - 1)]);
    assert!(!fired(&below, "amld_single_transaction"), "{below:?}");
    assert!(below.errors.is_empty(), "{below:?}");
}

#[test]
fn a_stake_of_eur_2000_is_a_single_transaction_too() {
    let bet = last_evaluation(&[event(T0, ALICE, EventKind::Bet, 2_000 * EUR)]);
    assert!(fired(&bet, "amld_single_transaction"), "{bet:?}");
}

#[test]
fn linked_deposits_reaching_eur_2000_in_24h_fire_and_25h_apart_do_not() {
    let day = [
        deposit(T0, ALICE, 1_000 * EUR),
        deposit(T0 + 23 * HOUR_NS, ALICE, 1_000 * EUR),
    ];
    let linked = last_evaluation(&day);
    assert!(fired(&linked, "amld_linked_transactions"), "{linked:?}");
    assert!(!fired(&linked, "amld_single_transaction"));
    let apart = [
        deposit(T0, ALICE, 1_000 * EUR),
        deposit(T0 + 25 * HOUR_NS, ALICE, 1_000 * EUR),
    ];
    assert!(!fired(&last_evaluation(&apart), "amld_linked_transactions"));
}

#[test]
fn linked_sums_count_only_the_triggers_currency() {
    let gbp = LedgerCode::parse("GBP").unwrap();
    let events = [
        MoneyEvent::new(T0, ALICE, gbp, EventKind::Deposit, 1_500 * EUR),
        deposit(T0 + MINUTE_NS, ALICE, 1_000 * EUR),
    ];
    let evaluation = last_evaluation(&events);
    assert!(
        !fired(&evaluation, "amld_linked_transactions"),
        "{evaluation:?}"
    );
}

#[test]
fn three_deposits_just_below_the_threshold_in_24h_are_structuring_and_two_are_not() {
    let three: Vec<MoneyEvent> = (0..3)
        .map(|i| deposit(T0 + i * 5 * HOUR_NS, ALICE, 1_900 * EUR))
        .collect();
    let structured = last_evaluation(&three);
    assert!(
        fired(&structured, "structuring_below_threshold"),
        "{structured:?}"
    );
    // With the linked rule (5,700 in 24 h) the score reaches the freeze.
    assert_eq!(structured.score, 100);
    assert_eq!(structured.action, Action::Freeze);
    assert!(!fired(
        &last_evaluation(&three[..2]),
        "structuring_below_threshold"
    ));
    // Below the band (80 % of EUR 2,000 = EUR 1,600): not structuring.
    let low: Vec<MoneyEvent> = (0..3)
        .map(|i| deposit(T0 + i * HOUR_NS, ALICE, 1_599 * EUR))
        .collect();
    assert!(!fired(
        &last_evaluation(&low),
        "structuring_below_threshold"
    ));
}

#[test]
fn withdrawing_a_deposit_after_little_play_fires_and_after_real_play_does_not() {
    let little = [
        deposit(T0, ALICE, 1_000 * EUR),
        event(T0 + MINUTE_NS, ALICE, EventKind::Bet, 100 * EUR),
        event(T0 + 2 * MINUTE_NS, ALICE, EventKind::Withdrawal, 900 * EUR),
    ];
    let evaluation = last_evaluation(&little);
    assert!(
        fired(&evaluation, "withdrawal_with_little_play"),
        "{evaluation:?}"
    );
    assert_eq!(evaluation.action, Action::HoldWithdrawals);
    let played = [
        deposit(T0, ALICE, 1_000 * EUR),
        event(T0 + MINUTE_NS, ALICE, EventKind::Bet, 500 * EUR),
        event(T0 + 2 * MINUTE_NS, ALICE, EventKind::Withdrawal, 900 * EUR),
    ];
    assert!(!fired(
        &last_evaluation(&played),
        "withdrawal_with_little_play"
    ));
    // A refunded stake was not play.
    let refunded = [
        deposit(T0, ALICE, 1_000 * EUR),
        event(T0 + MINUTE_NS, ALICE, EventKind::Bet, 500 * EUR),
        event(T0 + MINUTE_NS, ALICE, EventKind::Refund, 500 * EUR),
        event(T0 + 2 * MINUTE_NS, ALICE, EventKind::Withdrawal, 900 * EUR),
    ];
    assert!(fired(
        &last_evaluation(&refunded),
        "withdrawal_with_little_play"
    ));
}

#[test]
fn five_deposits_within_an_hour_fire_velocity_and_four_or_slower_do_not() {
    let quick: Vec<MoneyEvent> = (0..5)
        .map(|i| deposit(T0 + i * 14 * MINUTE_NS, ALICE, 10 * EUR))
        .collect();
    let evaluation = last_evaluation(&quick);
    assert!(fired(&evaluation, "deposit_velocity"), "{evaluation:?}");
    assert!(!fired(&last_evaluation(&quick[..4]), "deposit_velocity"));
    let slow: Vec<MoneyEvent> = (0..5)
        .map(|i| deposit(T0 + i * 16 * MINUTE_NS, ALICE, 10 * EUR))
        .collect();
    assert!(!fired(&last_evaluation(&slow), "deposit_velocity"));
}

/// Deposits by `players` with one shared digest set by `set`; the last evaluation.
fn shared_digest(players: u128, set: fn(&mut MoneyEvent, [u8; 32])) -> Evaluation {
    let events: Vec<MoneyEvent> = (1..=players)
        .map(|player| {
            let mut event = deposit(T0 + player as u64 * MINUTE_NS, player, 10 * EUR);
            set(&mut event, [7; 32]);
            event
        })
        .collect();
    last_evaluation(&events)
}

#[test]
fn three_players_on_one_device_fire_and_two_do_not() {
    let device = |e: &mut MoneyEvent, d| e.device_id = Some(d);
    assert!(fired(&shared_digest(3, device), "shared_device"));
    assert!(!fired(&shared_digest(2, device), "shared_device"));
}

#[test]
fn three_players_on_one_payment_instrument_fire_and_two_do_not() {
    let instrument = |e: &mut MoneyEvent, d| e.instrument_id = Some(d);
    assert!(fired(
        &shared_digest(3, instrument),
        "shared_payment_instrument"
    ));
    assert!(!fired(
        &shared_digest(2, instrument),
        "shared_payment_instrument"
    ));
}

#[test]
fn five_players_at_one_address_fire_and_four_do_not() {
    let address = |e: &mut MoneyEvent, d| e.address_id = Some(d);
    assert!(fired(&shared_digest(5, address), "shared_address"));
    assert!(!fired(&shared_digest(4, address), "shared_address"));
}

#[test]
fn a_withdrawal_sees_the_devices_its_player_used_before() {
    let mut activity = Activity::new(ActivityLimits::default());
    let events: Vec<MoneyEvent> = (1..=3)
        .map(|player| {
            let mut event = deposit(T0, player, 10 * EUR);
            event.device_id = Some([9; 32]);
            event
        })
        .collect();
    observe_all(&mut activity, &events);
    let evaluation = score_withdrawal(default_rules(), &activity, ALICE, 5 * EUR, eur(), T0);
    assert!(fired(&evaluation, "shared_device"), "{evaluation:?}");
}

/// Roulette (37 pockets): red and black, 18 pockets each.
fn roulette_bet(player_id: u128, spots: std::ops::Range<u16>, stake: u64) -> MoneyEvent {
    let mut bet = event(T0 + player_id as u64, player_id, EventKind::Bet, stake);
    bet.round_id = Some(7);
    bet.spots = spots.collect();
    bet.spot_count = 37;
    bet
}

#[test]
fn two_players_covering_red_and_black_in_one_round_collude() {
    let mut activity = Activity::new(ActivityLimits::default());
    let bets = [
        roulette_bet(ALICE, 1..19, 200 * EUR),
        roulette_bet(BOB, 19..37, 200 * EUR),
    ];
    let evaluations = observe_all(&mut activity, &bets);
    assert!(
        !fired(&evaluations[0], "opposite_bets_in_round"),
        "alone in the round"
    );
    assert!(
        fired(&evaluations[1], "opposite_bets_in_round"),
        "{:?}",
        evaluations[1]
    );
    // The first player is caught by the round's win.
    let mut win = event(T0 + 10, ALICE, EventKind::Win, 400 * EUR);
    win.round_id = Some(7);
    let evaluation = default_rules().observe(&mut activity, &win);
    assert!(
        fired(&evaluation, "opposite_bets_in_round"),
        "{evaluation:?}"
    );
}

#[test]
fn overlapping_partial_or_small_opposite_bets_are_not_collusion() {
    let cases = [
        // Overlap on pocket 18.
        [
            roulette_bet(ALICE, 1..19, 200 * EUR),
            roulette_bet(BOB, 18..37, 200 * EUR),
        ],
        // Red and a dozen: 30 of 37 pockets, below 90 %.
        [
            roulette_bet(ALICE, 1..19, 200 * EUR),
            roulette_bet(BOB, 25..37, 200 * EUR),
        ],
        // Opposed, but EUR 99.99 on one side, below 5 % of the threshold.
        [
            roulette_bet(ALICE, 1..19, 200 * EUR),
            roulette_bet(BOB, 19..37, 100 * EUR - 1),
        ],
    ];
    for bets in cases {
        let evaluation = last_evaluation(&bets);
        assert!(!fired(&evaluation, "opposite_bets_in_round"), "{bets:?}");
    }
}

#[test]
fn scoring_a_withdrawal_records_nothing() {
    let mut activity = Activity::new(ActivityLimits::default());
    observe_all(&mut activity, &[deposit(T0, ALICE, 1_000 * EUR)]);
    let now = T0 + MINUTE_NS;
    let rules = default_rules();
    let first = score_withdrawal(rules, &activity, ALICE, 900 * EUR, eur(), now);
    assert!(fired(&first, "withdrawal_with_little_play"), "{first:?}");
    assert_eq!(activity.events_len(ALICE), 1);
    let again = score_withdrawal(rules, &activity, ALICE, 900 * EUR, eur(), now);
    assert_eq!(first, again);
}

#[test]
fn rule_sets_and_activities_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RuleSet>();
    shareable::<Activity>();
}

#[test]
fn bad_rule_sets_are_refused_with_named_errors() {
    let rule = |id: &str, reason: &str, score: i64, when: &str| {
        format!(
            "[[rules]]\nid = \"{id}\"\nreason = \"{reason}\"\nscore = {score}\nwhen = '{when}'\n"
        )
    };
    let ok = rule("a", "a", 10, "amount > 0");
    let action = |min_score: i64, action: &str| {
        format!("version = \"v\"\n[[actions]]\nmin_score = {min_score}\naction = \"{action}\"\n")
    };
    let cases: Vec<(String, &str)> = vec![
        (ok.clone(), "version_missing"),
        (format!("version = \"\"\n{ok}"), "version_invalid"),
        (format!("version = \"v\"\n{ok}{ok}"), "rule_id_duplicate"),
        (
            format!("version = \"v\"\n{}", rule("A-1", "a", 10, "true")),
            "rule_id_invalid",
        ),
        (
            format!("version = \"v\"\n{}", rule("a", "Bad", 10, "true")),
            "reason_invalid",
        ),
        (
            format!("version = \"v\"\n{}", rule("a", "a", 0, "true")),
            "score_out_of_range",
        ),
        (
            format!("version = \"v\"\n{}", rule("a", "a", 101, "true")),
            "score_out_of_range",
        ),
        (one_rule("amount >"), "syntax"),
        (one_rule("amout > 0"), "unknown_variable"),
        (one_rule("amount > \"x\""), "type_error"),
        (one_rule("params.typo > 1"), "type_error"),
        (one_rule("amount > 5000 && params.typo > 1"), "type_error"),
        (
            one_rule("kind == \"win\" && amount + \"x\" > 0"),
            "type_error",
        ),
        (one_rule("amount + 1"), "not_boolean"),
        (
            one_rule(&format!("amount{} > 0", " + 1".repeat(40))),
            "expression_too_deep",
        ),
        (
            one_rule(&format!("amount > 0{}", " ".repeat(2_048))),
            "expression_too_long",
        ),
        ("version = \"v\"\nextra = 1\n".into(), "toml"),
        (
            "version = \"v\"\n[params]\nthresholds = { eur = 1 }\n".into(),
            "param_invalid",
        ),
        (
            "version = \"v\"\n[params]\nx = \"text\"\n".into(),
            "param_invalid",
        ),
        (action(5, "ban"), "action_unknown"),
        (action(101, "allow"), "action_score_out_of_range"),
        (
            action(5, "allow") + &action(5, "freeze")[14..],
            "action_score_duplicate",
        ),
    ];
    for (text, code) in cases {
        let refused = RuleSet::parse(&text).map(|_| ()).map_err(|e| e.code());
        assert_eq!(refused, Err(code), "{text}");
    }
}

#[test]
fn a_rule_error_names_the_rule() {
    let text = concat!(
        "version = \"v\"\n[[rules]]\nid = \"good\"\nreason = \"g\"\nscore = 1\nwhen = 'true'\n",
        "[[rules]]\nid = \"broken_rule\"\nreason = \"b\"\nscore = 1\nwhen = 'amount > nope'\n"
    );
    let error = parse_error(text);
    assert_eq!(
        error,
        RuleSetError::UnknownVariable {
            rule: "broken_rule".into(),
            name: "nope".into()
        }
    );
    assert!(error.to_string().contains("broken_rule"), "{error}");
}

#[test]
fn macro_variables_and_every_documented_variable_are_accepted() {
    let rules = RuleSet::parse(&one_rule(
        "[1, 2].exists(x, x > amount) || [3].all(y, y > 0)",
    ));
    assert!(rules.is_ok(), "{rules:?}");
    let mut text = String::from("version = \"v\"\n");
    for (i, name) in VARIABLES.iter().enumerate() {
        text += &format!(
            "[[rules]]\nid = \"r{i}\"\nreason = \"r\"\nscore = 1\nwhen = '{name} == {name}'\n"
        );
    }
    let rules = RuleSet::parse(&text).unwrap();
    let facts = Facts::uniform(EventKind::Bet, eur(), 3);
    let evaluation = rules.evaluate(&facts);
    assert_eq!(evaluation.reasons.len(), VARIABLES.len(), "{evaluation:?}");
}

#[test]
fn a_rule_failing_at_evaluation_does_not_fire_and_is_reported() {
    let text = concat!(
        "version = \"v\"\n",
        "[[rules]]\nid = \"overflows\"\nreason = \"o\"\nscore = 50\n",
        "when = 'amount * 4611686018427387904 > 0'\n",
        "[[rules]]\nid = \"fine\"\nreason = \"f\"\nscore = 30\nwhen = 'amount > 1'\n",
    );
    let rules = RuleSet::parse(text).unwrap();
    let evaluation = rules.evaluate(&Facts::uniform(EventKind::Deposit, eur(), 2));
    assert_eq!(evaluation.reasons, ["f"]);
    assert_eq!(evaluation.score, 30);
    assert_eq!(evaluation.errors.len(), 1);
    assert_eq!(evaluation.errors[0].rule, "overflows");
}

#[test]
fn a_ledger_without_a_threshold_reports_the_rules_that_need_one() {
    let gbp = LedgerCode::parse("GBP").unwrap();
    let deposit = MoneyEvent::new(T0, ALICE, gbp, EventKind::Deposit, 5_000 * EUR);
    let evaluation =
        default_rules().observe(&mut Activity::new(ActivityLimits::default()), &deposit);
    let failed: Vec<&str> = evaluation.errors.iter().map(|e| e.rule.as_str()).collect();
    assert!(failed.contains(&"amld_single"), "{evaluation:?}");
    assert!(
        evaluation.errors[0].message.contains("threshold"),
        "{evaluation:?}"
    );
}

#[test]
fn the_score_is_the_fired_scores_capped_at_100() {
    let mut text = String::from("version = \"v\"\n");
    for id in ["a", "b", "c"] {
        text += &format!(
            "[[rules]]\nid = \"{id}\"\nreason = \"{id}\"\nscore = 45\nwhen = 'amount > 0'\n"
        );
    }
    let rules = RuleSet::parse(&text).unwrap();
    let all = rules.evaluate(&Facts::uniform(EventKind::Deposit, eur(), 1));
    assert_eq!(all.score, 100);
    assert_eq!(all.reasons, ["a", "b", "c"]);
    let none = rules.evaluate(&Facts::uniform(EventKind::Deposit, eur(), 0));
    assert_eq!((none.score, none.action), (0, Action::Allow));
}

#[test]
fn the_highest_threshold_reached_picks_the_action() {
    let rules = default_rules();
    let expected = [
        (0, Action::Allow),
        (24, Action::Allow),
        (25, Action::HoldWithdrawals),
        (39, Action::HoldWithdrawals),
        (40, Action::RequireEnhancedKyc),
        (60, Action::OpenCase),
        (84, Action::OpenCase),
        (85, Action::Freeze),
        (100, Action::Freeze),
    ];
    for (score, action) in expected {
        assert_eq!(rules.action_for(score), action, "score {score}");
    }
    // Thresholds in any order; below the lowest one, allow.
    let text = "version = \"v\"\n[[actions]]\nmin_score = 70\naction = \"freeze\"\n\
                [[actions]]\nmin_score = 30\naction = \"open_case\"\n";
    let unordered = RuleSet::parse(text).unwrap();
    assert_eq!(unordered.action_for(29), Action::Allow);
    assert_eq!(unordered.action_for(69), Action::OpenCase);
    assert_eq!(unordered.action_for(70), Action::Freeze);
}

#[test]
fn players_past_players_max_are_evicted_least_recent_first() {
    let limits = ActivityLimits {
        players_max: 3,
        ..ActivityLimits::default()
    };
    let mut activity = Activity::new(limits);
    // Player 1 is active again before 4 arrives: 4 evicts 2, then 5 evicts 3.
    for (at, player) in [(1, 1), (2, 2), (3, 3), (4, 1), (5, 4), (6, 5)] {
        activity.record(&deposit(T0 + at, player, EUR));
    }
    assert_eq!(activity.players_len(), 3);
    let kept: Vec<u128> = (1..=5).filter(|p| activity.events_len(*p) > 0).collect();
    assert_eq!(kept, [1, 4, 5]);
}

#[test]
fn a_players_events_are_bounded_in_number_and_in_time() {
    let limits = ActivityLimits {
        events_per_player_max: 4,
        window_ns: 10 * HOUR_NS,
        ..ActivityLimits::default()
    };
    let mut activity = Activity::new(limits);
    for i in 0..10 {
        activity.record(&deposit(T0 + i * MINUTE_NS, ALICE, EUR));
    }
    assert_eq!(activity.events_len(ALICE), 4);
    activity.record(&deposit(T0 + 11 * HOUR_NS, ALICE, EUR));
    assert_eq!(activity.events_len(ALICE), 1, "older than the window");
}

#[test]
fn digest_and_round_indexes_are_bounded() {
    let limits = ActivityLimits {
        digests_max: 2,
        rounds_max: 2,
        ..ActivityLimits::default()
    };
    let mut activity = Activity::new(limits);
    for i in 0..10u8 {
        let mut bet = event(T0 + u64::from(i), ALICE, EventKind::Bet, EUR);
        bet.device_id = Some([i; 32]);
        bet.instrument_id = Some([i; 32]);
        bet.address_id = Some([i; 32]);
        bet.round_id = Some(u64::from(i));
        activity.record(&bet);
    }
    assert_eq!(activity.indexes_len(), (6, 2));
}

#[test]
fn a_digest_counts_at_most_players_per_digest_max() {
    let limits = ActivityLimits {
        players_per_digest_max: 4,
        ..ActivityLimits::default()
    };
    let mut activity = Activity::new(limits);
    for player in 1..=10 {
        let mut event = deposit(T0, player, EUR);
        event.device_id = Some([1; 32]);
        activity.record(&event);
    }
    let facts = activity.facts(
        &deposit(T0, 99, EUR),
        T0,
        &default_rules().facts_params(eur()),
    );
    assert_eq!(
        facts.players_sharing_device, 0,
        "player 99 never used the device"
    );
    let mut trigger = deposit(T0, 99, EUR);
    trigger.device_id = Some([1; 32]);
    let facts = activity.facts(&trigger, T0, &default_rules().facts_params(eur()));
    assert_eq!(facts.players_sharing_device, 4);
}

/// A mixed feed: deposits, play, shared devices, opposite bets and withdrawals.
fn mixed_feed() -> Vec<MoneyEvent> {
    let mut events = Vec::new();
    for i in 0..200u64 {
        let player = u128::from(i % 7 + 1);
        let at = T0 + i * 3 * MINUTE_NS;
        let mut e = match i % 5 {
            0 => deposit(at, player, (i % 13 + 1) * 150 * EUR),
            1 | 2 => roulette_bet(player, if i % 2 == 0 { 1..19 } else { 19..37 }, 120 * EUR),
            3 => event(at, player, EventKind::Win, 50 * EUR),
            _ => event(at, player, EventKind::Withdrawal, 300 * EUR),
        };
        e.at_ns = at;
        e.round_id = e.round_id.map(|_| i / 10);
        e.device_id = Some([(i % 3) as u8; 32]);
        events.push(e);
    }
    events
}

#[test]
fn the_same_events_give_the_same_evaluations() {
    let feed = mixed_feed();
    let first = observe_all(&mut Activity::new(ActivityLimits::default()), &feed);
    let second = observe_all(&mut Activity::new(ActivityLimits::default()), &feed);
    assert_eq!(first, second);
    assert!(
        first.iter().any(|e| e.score > 0),
        "the feed exercises the rules"
    );
    assert!(first.iter().all(|e| e.errors.is_empty()));
}

#[test]
fn decision_ids_are_stable_distinct_and_outside_reserved_ids() {
    let id = decision_id((42, 3));
    assert_eq!(id, decision_id((42, 3)));
    assert_ne!(id, decision_id((42, 4)));
    assert_ne!(id, decision_id((43, 3)));
    for position in [(0, 0), (1, 0), (u64::MAX, u32::MAX), (42, 3)] {
        let id = decision_id(position);
        assert!(id > 0 && id >> 127 == 0, "{id:#x}");
    }
    // The contract with the ledger: a replay must propose this very id.
    assert_eq!(id, PINNED_DECISION_ID_42_3);
}

const PINNED_DECISION_ID_42_3: u128 = 0x6d1e30995a63d6d3e1558e190e46e44a;

#[test]
fn ledger_codes_pack_as_the_ledger_does() {
    let code = LedgerCode::parse("EUR").unwrap();
    assert_eq!(code.to_u64(), u64::from_be_bytes(*b"EUR\0\0\0\0\0"));
    assert_eq!(LedgerCode::from_u64(code.to_u64()), Some(code));
    assert_eq!(code.as_str(), "EUR");
    assert_eq!(LedgerCode::parse("CHIPS_01").unwrap().as_str(), "CHIPS_01");
    for bad in ["", "eur", "EURO_LONG", "E-R"] {
        assert_eq!(LedgerCode::parse(bad), None, "{bad}");
    }
    assert_eq!(
        LedgerCode::from_u64(u64::from_be_bytes(*b"E\0R\0\0\0\0\0")),
        None
    );
}

/// Evaluation cost, to quote: `cargo test -p croupier-risk --release -- --ignored
/// --nocapture evaluation_cost`.
#[test]
#[ignore = "a measurement, not a check"]
fn evaluation_cost() {
    const EVALUATIONS: u32 = 100_000;
    let rules = default_rules();
    let mut activity = Activity::new(ActivityLimits::default());
    let feed = mixed_feed();
    observe_all(&mut activity, &feed);
    let trigger = deposit(T0 + 11 * HOUR_NS, ALICE, 1_900 * EUR);
    let params = rules.facts_params(eur());
    let facts = activity.facts(&trigger, trigger.at_ns, &params);
    let started = std::time::Instant::now();
    let mut fired = 0;
    for _ in 0..EVALUATIONS {
        fired += std::hint::black_box(rules.evaluate(std::hint::black_box(&facts)))
            .reasons
            .len();
    }
    let evaluate_ns = started.elapsed().as_nanos() / u128::from(EVALUATIONS);
    let started = std::time::Instant::now();
    for _ in 0..EVALUATIONS {
        let facts = activity.facts(std::hint::black_box(&trigger), trigger.at_ns, &params);
        fired += rules.evaluate(&facts).reasons.len();
    }
    let facts_and_evaluate_ns = started.elapsed().as_nanos() / u128::from(EVALUATIONS);
    println!(
        "{} rules: evaluate {evaluate_ns} ns/eval; facts + evaluate {facts_and_evaluate_ns} \
         ns/eval ({} events kept for the player; {fired} reasons)",
        rules.rule_ids().count(),
        activity.events_len(ALICE),
    );
    // A stake: two of the default rules can fire for it (`aml/guard.rs`), against all nine.
    let stake = event(T0 + 11 * HOUR_NS, ALICE, EventKind::Bet, 5 * EUR);
    let facts = activity.facts(&stake, stake.at_ns, &params);
    let per_eval_ns = |every: bool| {
        let started = std::time::Instant::now();
        for _ in 0..EVALUATIONS {
            let facts = std::hint::black_box(&facts);
            std::hint::black_box(match every {
                true => rules.evaluate_rules(facts, true),
                false => rules.evaluate(facts),
            });
        }
        started.elapsed().as_nanos() / u128::from(EVALUATIONS)
    };
    let (every, guarded) = (per_eval_ns(true), per_eval_ns(false));
    let (every_again, guarded_again) = (per_eval_ns(true), per_eval_ns(false));
    println!(
        "a stake: every rule {every} / {every_again} ns/eval, guarded rules skipped {guarded} / \
         {guarded_again} ns/eval"
    );
}
