//! Responsible gambling over HTTP, as the contract states it: limits with cooling-off shown as
//! pending, self-exclusion refusing every bet and deposit on wallet and table routes and
//! refusing to be lifted, time-outs, operator deposits with limits, and the KYC policy.

mod common;

use std::time::{Duration, Instant};

use common::{player, TestServer};
use croupier_core::tables::TableLimits;
use croupier_core::LedgerCode;
use croupier_server::tables::TableSpec;
use serde_json::{json, Value};

const TABLE: u32 = 5;

fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.tables = vec![TableSpec {
            table_id: TABLE,
            game: "money-wheel".into(),
            currency: LedgerCode::parse("EUR").unwrap(),
            betting_window_ms: 5_000,
            draw_delay_ms: 100,
            bets_total_interval_ms: croupier_server::tables::defaults::BETS_TOTAL_INTERVAL_MS,
            limits: TableLimits {
                bet_min: 1,
                bet_max: 100_000,
                round_stake_max: 10_000_000,
                payout_max: 10_000_000,
                bets_per_round_max: 1_000,
            },
            studio: None,
        }];
    })
}

fn call(
    node: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let request = node.request(method, path).bearer(token);
    match body {
        Some(body) => request
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes())
            .status_json(),
        None => request.call().status_json(),
    }
}

fn wallet_bet(node: &TestServer, player_id: &str, tx: &str, amount: u64) -> (u16, Value) {
    let body = json!({"transaction_id": tx, "player_id": player_id, "round_id": format!("r-{tx}"), "amount": amount, "ledger": "EUR"});
    call(node, "POST", "/v1/wallet/bet", None, Some(&body))
}

/// The current round of the table once betting is open.
fn open_round(node: &TestServer, token: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, tables) = call(node, "GET", "/v1/tables", Some(token), None);
        let table = tables
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == TABLE)
            .cloned();
        if let Some(table) = table.filter(|t| t["state"] == "open") {
            return table["round_id"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "no open round: {tables}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn table_bet(node: &TestServer, token: &str, bet_id: u64, round: u64) -> (u16, Value) {
    let body = json!({"bet_id": bet_id.to_string(), "round_id": round, "spots": [{"bet": "1", "amount": 10}]});
    call(
        node,
        "POST",
        &format!("/v1/tables/{TABLE}/bets"),
        Some(token),
        Some(&body),
    )
}

#[test]
fn limits_answer_what_is_in_force_and_what_is_pending_with_its_time() {
    let node = server();
    let (alice, token) = player(&node, "alice", 10_000);
    let path = format!("/v1/players/{alice}/limits");
    let body = json!({"deposit": {"day": 5000}, "loss": {"week": 2000}, "wager": {"month": 9000}, "session_minutes": 60});
    let (status, limits) = call(&node, "PUT", &path, Some(&token), Some(&body));
    assert_eq!(status, 200, "{limits}");
    assert_eq!(limits["ledger"], "EUR");
    assert_eq!(limits["deposit"]["day"], 5000);
    assert_eq!(limits["loss"]["week"], 2000);
    assert_eq!(limits["wager"]["month"], 9000);
    assert_eq!(limits["session_minutes"], 60);
    assert_eq!(limits["pending"], json!([]));
    // Raising and removing wait 24 hours; lowering applies at once.
    let body = json!({"deposit": {"day": 8000}, "loss": {"week": null}, "wager": {"month": 100}});
    let (status, limits) = call(&node, "PUT", &path, Some(&token), Some(&body));
    assert_eq!(status, 200, "{limits}");
    assert_eq!(limits["deposit"]["day"], 5000);
    assert_eq!(limits["loss"]["week"], 2000);
    assert_eq!(limits["wager"]["month"], 100);
    let pending = limits["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 2, "{limits}");
    assert_eq!(pending[0]["limit"], "deposit");
    assert_eq!(pending[0]["period"], "day");
    assert_eq!(pending[0]["value"], 8000);
    assert!(pending[0]["effective_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(pending[1]["limit"], "loss");
    assert_eq!(pending[1]["value"], Value::Null);
    // The lowered wager limit holds for the next bet.
    assert_eq!(wallet_bet(&node, &alice, "w1", 100).0, 200);
    let (status, refused) = wallet_bet(&node, &alice, "w2", 1);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("wager_limit_reached"))
    );
    let (_, read) = call(&node, "GET", &path, Some(&token), None);
    assert_eq!(read["spent"]["wager"]["month"], 100);
}

#[test]
fn reality_check_intervals_are_checked_and_a_player_sees_only_their_own() {
    let node = server();
    let (alice, token) = player(&node, "alice", 1_000);
    let (bob, _) = player(&node, "bob", 1_000);
    let path = format!("/v1/players/{alice}/reality-check");
    for body in [
        json!({"interval_minutes": 0}),
        json!({"interval_minutes": 1441}),
        json!({"interval_minutes": "soon"}),
        json!({}),
        json!({"interval_minutes": 30, "sound": true}),
    ] {
        let (status, error) = call(&node, "PUT", &path, Some(&token), Some(&body));
        assert_eq!(status, 400, "{body}: {error}");
    }
    let (status, set) = call(
        &node,
        "PUT",
        &path,
        Some(&token),
        Some(&json!({"interval_minutes": 30})),
    );
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["interval_minutes"], 30);
    assert!(
        set["due_at"].is_string(),
        "the login started a session: {set}"
    );
    // Longer waits out the cooling-off; none too.
    let (_, longer) = call(
        &node,
        "PUT",
        &path,
        Some(&token),
        Some(&json!({"interval_minutes": 60})),
    );
    assert_eq!(longer["interval_minutes"], 30);
    assert_eq!(longer["pending"]["interval_minutes"], 60);
    let (_, removed) = call(
        &node,
        "PUT",
        &path,
        Some(&token),
        Some(&json!({"interval_minutes": null})),
    );
    assert_eq!(removed["interval_minutes"], 30);
    assert!(removed["pending"]["interval_minutes"].is_null());
    assert!(removed["pending"]["effective_at"].is_string());
    let (status, _) = call(
        &node,
        "GET",
        &format!("/v1/players/{bob}/reality-check"),
        Some(&token),
        None,
    );
    assert_eq!(
        status, 404,
        "another player's reality check is not found for a player"
    );
    let (status, read) = call(&node, "GET", &path, None, None);
    assert_eq!((status, read["interval_minutes"].as_u64()), (200, Some(30)));
}

#[test]
fn bad_limits_are_refused_without_changing_anything() {
    let node = server();
    let (alice, token) = player(&node, "alice", 1_000);
    let (bob, _) = player(&node, "bob", 1_000);
    let path = format!("/v1/players/{alice}/limits");
    for body in [
        json!({"deposit": {"day": 0}}),
        json!({"session_minutes": 1441}),
        json!({"deposit": {"hour": 5}}),
        json!({"loss": {"day": -1}}),
        json!({"ledger": "not a code"}),
    ] {
        let (status, error) = call(&node, "PUT", &path, Some(&token), Some(&body));
        assert_eq!(status, 400, "{body}: {error}");
    }
    let (status, error) = call(
        &node,
        "PUT",
        &path,
        Some(&token),
        Some(&json!({"ledger": "USD"})),
    );
    assert_eq!(
        (status, error["error"].as_str()),
        (422, Some("no_wallet_in_currency"))
    );
    // Another player's limits are not found for a player.
    let other = format!("/v1/players/{bob}/limits");
    let (status, _) = call(
        &node,
        "PUT",
        &other,
        Some(&token),
        Some(&json!({"deposit": {"day": 1}})),
    );
    assert_eq!(status, 404);
    let (_, limits) = call(&node, "GET", &path, Some(&token), None);
    assert_eq!(limits["deposit"]["day"], Value::Null);
}

#[test]
fn a_self_excluded_player_is_refused_on_wallet_table_and_deposit_routes_and_cannot_lift_it() {
    let node = server();
    let (alice, token) = player(&node, "alice", 10_000);
    let path = format!("/v1/players/{alice}/self-exclusion");
    for days in [181, 1827, 0] {
        let (status, _) = call(
            &node,
            "POST",
            &path,
            Some(&token),
            Some(&json!({"days": days})),
        );
        assert_eq!(status, 400, "{days} days");
    }
    let (status, excluded) = call(
        &node,
        "POST",
        &path,
        Some(&token),
        Some(&json!({"days": 182})),
    );
    assert_eq!(status, 200, "{excluded}");
    assert!(excluded["self_excluded_until"].as_str().is_some());
    let (status, refused) = wallet_bet(&node, &alice, "w1", 1);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("self_excluded"))
    );
    let round = open_round(&node, &token);
    let (status, refused) = table_bet(&node, &token, 1, round);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("self_excluded")),
        "{refused}"
    );
    let deposit = json!({"deposit_id": "4001", "amount": 100, "source_account_id": "9001"});
    let deposits = format!("/v1/players/{alice}/deposits");
    let (status, refused) = call(&node, "POST", &deposits, None, Some(&deposit));
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("self_excluded"))
    );
    let (status, refused) = call(&node, "DELETE", &path, Some(&token), None);
    assert_eq!(
        (status, refused["error"].as_str()),
        (409, Some("self_exclusion_active"))
    );
    let (_, status_view) = call(
        &node,
        "GET",
        &format!("/v1/players/{alice}/compliance"),
        Some(&token),
        None,
    );
    assert!(
        status_view["self_excluded_until"].as_str().is_some(),
        "{status_view}"
    );
}

#[test]
fn deposits_respect_the_deposit_limit_and_a_retry_answers_the_original() {
    let node = server();
    let (alice, token) = player(&node, "alice", 0);
    let limits = format!("/v1/players/{alice}/limits");
    call(
        &node,
        "PUT",
        &limits,
        Some(&token),
        Some(&json!({"deposit": {"day": 1000}})),
    );
    let deposits = format!("/v1/players/{alice}/deposits");
    let deposit = |id: &str, amount: u64| json!({"deposit_id": id, "amount": amount, "source_account_id": "9001"});
    let (status, made) = call(&node, "POST", &deposits, None, Some(&deposit("4001", 700)));
    assert_eq!(
        (status, made["balance"].as_u64()),
        (200, Some(700)),
        "{made}"
    );
    let (status, refused) = call(&node, "POST", &deposits, None, Some(&deposit("4002", 301)));
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("deposit_limit_reached"))
    );
    let (status, again) = call(&node, "POST", &deposits, None, Some(&deposit("4001", 700)));
    assert_eq!((status, again["balance"].as_u64()), (200, Some(700)));
    let (status, conflict) = call(&node, "POST", &deposits, None, Some(&deposit("4001", 5)));
    assert_eq!(status, 409, "{conflict}");
    // A player cannot deposit to itself through the operator route.
    let (status, _) = call(
        &node,
        "POST",
        &deposits,
        Some(&token),
        Some(&deposit("4003", 5)),
    );
    assert_eq!(status, 403);
}

#[test]
fn a_time_out_refuses_bets_until_it_ends() {
    let node = server();
    let (alice, token) = player(&node, "alice", 1_000);
    let path = format!("/v1/players/{alice}/time-out");
    let (status, _) = call(
        &node,
        "POST",
        &path,
        Some(&token),
        Some(&json!({"days": 43})),
    );
    assert_eq!(status, 400);
    let (status, out) = call(
        &node,
        "POST",
        &path,
        Some(&token),
        Some(&json!({"days": 1})),
    );
    assert_eq!(status, 200, "{out}");
    let (status, refused) = wallet_bet(&node, &alice, "w1", 1);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("timed_out"))
    );
}

#[test]
fn the_kyc_policy_refuses_play_below_the_level_and_an_operator_can_raise_it() {
    let node = server();
    let (alice, _token) = player(&node, "alice", 1_000);
    let policy = json!({"default": {"play": "basic", "deposit": "none", "withdraw": "basic"}, "jurisdictions": {"MT": {"play": "none", "deposit": "none", "withdraw": "none"}}});
    let (status, stored) = call(&node, "PUT", "/v1/compliance/policy", None, Some(&policy));
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["default"]["play"], "basic");
    assert_eq!(stored["jurisdictions"]["MT"]["play"], "none");
    let (status, refused) = wallet_bet(&node, &alice, "w1", 1);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("kyc_required"))
    );
    let kyc = format!("/v1/players/{alice}/kyc");
    let (status, view) = call(&node, "PUT", &kyc, None, Some(&json!({"level": "basic"})));
    assert_eq!(
        (status, view["kyc_level"].as_str()),
        (200, Some("basic")),
        "{view}"
    );
    assert_eq!(wallet_bet(&node, &alice, "w2", 1).0, 200);
    let bad = json!({"default": {"play": "gold", "deposit": "none", "withdraw": "none"}});
    assert_eq!(
        call(&node, "PUT", "/v1/compliance/policy", None, Some(&bad)).0,
        400
    );
    let bad = json!({"default": {"play": "none", "deposit": "none", "withdraw": "none"}, "jurisdictions": {"gb": {"play": "none", "deposit": "none", "withdraw": "none"}}});
    assert_eq!(
        call(&node, "PUT", "/v1/compliance/policy", None, Some(&bad)).0,
        400
    );
}

#[test]
fn cases_open_list_and_decide_with_who_and_when() {
    let node = server();
    let (alice, _token) = player(&node, "alice", 1_000);
    let body =
        json!({"player_id": alice, "reasons": ["manual_review"], "score": 70, "action": "freeze"});
    let (status, case) = call(&node, "POST", "/v1/cases", None, Some(&body));
    assert_eq!(status, 201, "{case}");
    let case_id = case["id"].as_str().unwrap().to_string();
    assert_eq!(case["state"], "open");
    assert_eq!(case["opened_by"], "loopback");
    let (status, refused) = wallet_bet(&node, &alice, "w1", 1);
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("account_frozen"))
    );
    let (status, open) = call(&node, "GET", "/v1/cases?state=open", None, None);
    assert_eq!(status, 200);
    let listed = &open.as_array().unwrap()[0];
    for field in ["id", "player_id", "reasons", "score", "opened_at"] {
        assert!(!listed[field].is_null(), "{field} in {listed}");
    }
    assert_eq!(listed["reasons"], json!(["manual_review"]));
    assert_eq!(listed["score"], 70);
    let path = format!("/v1/cases/{case_id}");
    let note = json!({"kind": "documents_requested", "text": "proof of address"});
    assert_eq!(
        call(&node, "POST", &format!("{path}/notes"), None, Some(&note)).0,
        200
    );
    let assign = json!({"assignee": "analyst-1"});
    assert_eq!(
        call(
            &node,
            "POST",
            &format!("{path}/assign"),
            None,
            Some(&assign)
        )
        .0,
        200
    );
    let decide = json!({"decision": "clear", "text": "documents fine"});
    let (status, decided) = call(
        &node,
        "POST",
        &format!("{path}/decision"),
        None,
        Some(&decide),
    );
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["decision"], "clear");
    assert_eq!(decided["assignee"], "analyst-1");
    assert_eq!(decided["notes"].as_array().unwrap().len(), 2);
    assert_eq!(wallet_bet(&node, &alice, "w2", 1).0, 200);
    let (status, again) = call(
        &node,
        "POST",
        &format!("{path}/decision"),
        None,
        Some(&decide),
    );
    assert_eq!(
        (status, again["error"].as_str()),
        (409, Some("case_closed"))
    );
    let (_, open) = call(&node, "GET", "/v1/cases?state=open", None, None);
    assert_eq!(open, json!([]));
    let (_, closed) = call(&node, "GET", "/v1/cases?state=closed", None, None);
    assert_eq!(closed.as_array().unwrap().len(), 1);
    assert_eq!(
        call(&node, "GET", "/v1/cases?state=maybe", None, None).0,
        400
    );
    assert_eq!(call(&node, "GET", "/v1/cases/12345", None, None).0, 404);
    // No reporting entity configured: a goAML export says so rather than inventing one.
    let (status, refused) = call(&node, "GET", &format!("{path}/goaml"), None, None);
    assert_eq!(
        (status, refused["error"].as_str()),
        (409, Some("goaml_not_configured"))
    );
}
