//! Live tables end to end over HTTP: the leader's scheduler opens, closes, draws and settles
//! rounds by itself; a player bets with its session; recall shows the outcome, the proof and
//! the player's own bets with payouts and balances; bad bets answer named codes.

mod common;

use std::time::{Duration, Instant};

use common::{player, TestServer};
use croupier_core::tables::TableLimits;
use croupier_core::LedgerCode;
use croupier_server::tables::TableSpec;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TABLE: u32 = 3;

fn server() -> TestServer {
    TestServer::start_with(|config| {
        config.tables = vec![TableSpec {
            table_id: TABLE,
            game: "money-wheel".into(),
            currency: LedgerCode::parse("EUR").unwrap(),
            betting_window_ms: 1_500,
            draw_delay_ms: 100,
            bets_total_interval_ms: croupier_server::tables::defaults::BETS_TOTAL_INTERVAL_MS,
            limits: TableLimits {
                bet_min: 10,
                bet_max: 1_000,
                round_stake_max: 1_000_000,
                payout_max: 1_000_000,
                bets_per_round_max: 1_000,
            },
            studio: None,
        }];
    })
}

fn get_as(node: &TestServer, token: &str, path: &str) -> (u16, Value) {
    node.request("GET", path)
        .bearer(Some(token))
        .call()
        .status_json()
}

fn bet_as(node: &TestServer, token: &str, body: &Value) -> (u16, Value) {
    node.request("POST", &format!("/v1/tables/{TABLE}/bets"))
        .bearer(Some(token))
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .status_json()
}

/// Polls the table list until `done` holds for this table.
fn wait_for_table(node: &TestServer, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, tables) = get_as(node, token, "/v1/tables");
        assert_eq!(status, 200, "{tables}");
        if let Some(table) = tables.as_array().unwrap().iter().find(|t| t["id"] == TABLE) {
            if done(table) {
                return table.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the table never got there: {tables}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bet_on_a_live_round_is_settled_and_recalled_with_its_proof() {
    let node = server();
    let (alice, token) = player(&node, "alice", 5_000);
    let (_bob, bob_token) = player(&node, "bob", 5_000);
    let table = wait_for_table(&node, &token, |t| t["state"] == "open");
    assert_eq!(table["game"], "money-wheel");
    assert!(table["closes_at"].as_str().unwrap().ends_with('Z'));
    let round_id = table["round_id"].as_u64().unwrap();
    let spots = json!([{"bet": "1", "amount": 100}, {"bet": "40", "amount": 50}]);
    let body = json!({"bet_id": "77", "round_id": round_id, "spots": spots});
    let (status, placed) = bet_as(&node, &token, &body);
    if status == 409 {
        // The window closed between the read and the bet (a slow machine): try the next round.
        return a_bet_on_a_live_round_is_settled_and_recalled_with_its_proof();
    }
    assert_eq!(status, 200, "{placed}");
    assert_eq!(
        (placed["stake"].as_u64(), placed["balance"].as_u64()),
        (Some(150), Some(4_850))
    );
    assert_eq!(
        bet_as(&node, &token, &body),
        (200, placed.clone()),
        "a retry answers the original"
    );
    let other = json!({"bet_id": "1", "round_id": round_id, "spots": [{"bet": "2", "amount": 10}]});
    assert_eq!(bet_as(&node, &bob_token, &other).0, 200);

    wait_for_table(&node, &token, |t| t["round_id"].as_u64() != Some(round_id));
    let (status, round) = get_as(&node, &token, &format!("/v1/rounds/{round_id}"));
    assert_eq!(status, 200, "{round}");
    assert_eq!(round["state"], "settled");
    let seed = round["server_seed"].as_str().unwrap();
    let commitment = hex::encode(Sha256::digest(seed.as_bytes()));
    assert_eq!(
        round["commitment"],
        commitment.as_str(),
        "the revealed seed opens the commitment"
    );
    let bets = round["bets"].as_array().unwrap();
    assert_eq!(bets.len(), 1, "a player sees its own bets only: {round}");
    let bet = &bets[0];
    assert_eq!(bet["player_id"], alice.as_str());
    assert_eq!(bet["spots"][1]["bet"], "40");
    assert_eq!(bet["balance_before"], 5_000);
    let paid = bet["paid"].as_u64().unwrap();
    assert_eq!(bet["balance_after"].as_u64(), Some(4_850 + paid));
    let (_, me) = get_as(&node, &token, "/v1/players/me");
    assert_eq!(me["balances"]["EUR"].as_u64(), Some(4_850 + paid));

    let (status, recall) = node.get(&format!("/v1/tables/{TABLE}/rounds?limit=5"));
    assert_eq!(status, 200, "{recall}");
    let kept = recall["rounds"].as_array().unwrap();
    let ours = kept
        .iter()
        .find(|r| r["round_id"] == round_id)
        .expect("the round is kept");
    assert_eq!(
        ours["bets"].as_array().unwrap().len(),
        2,
        "an operator sees every bet"
    );
}

/// Every page of `path` (a round answer) from `bets_after` = 0, as (bet ids, bets_count); the
/// operator's when `token` is `None` (the test node's loopback caller).
fn all_bet_pages(
    node: &TestServer,
    token: Option<&str>,
    path: &str,
    limit: u64,
) -> (Vec<String>, u64) {
    let (mut ids, mut after, mut count) = (Vec::new(), Some(0), 0);
    while let Some(position) = after {
        let page_path = format!("{path}?bets_limit={limit}&bets_after={position}");
        let (status, page) = node
            .request("GET", &page_path)
            .bearer(token)
            .call()
            .status_json();
        assert_eq!(status, 200, "{page}");
        let bets = page["bets"].as_array().unwrap();
        assert!(
            bets.len() as u64 <= limit,
            "a page longer than asked: {page}"
        );
        ids.extend(
            bets.iter()
                .map(|b| b["bet_id"].as_str().unwrap().to_string()),
        );
        count = page["bets_count"].as_u64().unwrap();
        after = page["bets_next"].as_u64();
    }
    (ids, count)
}

#[test]
fn a_rounds_bets_come_in_pages_with_no_gap_and_no_repeat() {
    let node = server();
    let (_, alice) = player(&node, "alice", 5_000);
    let (_, bob) = player(&node, "bob", 5_000);
    let round_id = wait_for_table(&node, &alice, |t| t["state"] == "open")["round_id"]
        .as_u64()
        .unwrap();
    // Alice's three bets interleaved with Bob's four: a player's pages skip the others'.
    let order = [&alice, &bob, &bob, &alice, &bob, &alice, &bob];
    for (n, token) in order.iter().enumerate() {
        let spots = json!([{"bet": "1", "amount": 10}]);
        let body = json!({"bet_id": (n + 1).to_string(), "round_id": round_id, "spots": spots});
        let (status, answer) = bet_as(&node, token, &body);
        if status == 409 {
            // The window closed under a slow machine: the whole check on the next round.
            return a_rounds_bets_come_in_pages_with_no_gap_and_no_repeat();
        }
        assert_eq!(status, 200, "{answer}");
    }
    let path = format!("/v1/rounds/{round_id}");
    let (ids, count) = all_bet_pages(&node, None, &path, 2);
    assert_eq!(
        ids,
        ["1", "2", "3", "4", "5", "6", "7"],
        "in acceptance order"
    );
    assert_eq!(count, 7);
    let (ids, count) = all_bet_pages(&node, Some(&alice), &path, 2);
    assert_eq!((ids, count), (vec!["1".into(), "4".into(), "6".into()], 3));

    let (status, recall) = node.get(&format!("/v1/tables/{TABLE}/rounds?limit=1&bets_limit=3"));
    assert_eq!(status, 200, "{recall}");
    let current = &recall["rounds"][0];
    assert_eq!(current["bets"].as_array().unwrap().len(), 3, "{recall}");
    assert_eq!(
        (
            current["bets_count"].as_u64(),
            current["bets_next"].as_u64()
        ),
        (Some(7), Some(3))
    );

    for bad in ["bets_limit=0", "bets_limit=1001", "bets_after=x", "bets=1"] {
        let (status, error) = node.get(&format!("{path}?{bad}"));
        assert_eq!(
            (status, error["error"].as_str()),
            (400, Some("invalid_query")),
            "{bad}"
        );
    }
    let (status, past_end) = node.get(&format!("{path}?bets_after=99"));
    assert_eq!(status, 200, "{past_end}");
    assert_eq!(
        (
            past_end["bets"].as_array().unwrap().len(),
            past_end["bets_next"].as_u64()
        ),
        (0, None)
    );
}

#[test]
fn bad_bets_answer_named_codes_and_move_nothing() {
    let node = server();
    let (_, token) = player(&node, "carol", 100);
    let table = wait_for_table(&node, &token, |t| t["state"] == "open");
    let round_id = table["round_id"].as_u64().unwrap();
    let cases = [
        (json!([{"bet": "nope", "amount": 10}]), 422, "unknown_spot"),
        (json!([{"bet": "1", "amount": 5}]), 422, "bet_below_min"),
        (json!([{"bet": "1", "amount": 1_001}]), 422, "bet_above_max"),
        (
            json!([{"bet": "1", "amount": 10}, {"bet": "1", "amount": 10}]),
            422,
            "spots_invalid",
        ),
        (json!([]), 400, "invalid_request"),
        (
            json!([{"bet": "1", "amount": 200}]),
            402,
            "insufficient_funds",
        ),
    ];
    for (spots, status, code) in cases {
        let body = json!({"bet_id": "5", "round_id": round_id, "spots": spots});
        let (got, answer) = bet_as(&node, &token, &body);
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{spots}: {answer}"
        );
    }
    let elsewhere =
        json!({"bet_id": "5", "round_id": 1u64 << 32 | 1, "spots": [{"bet": "1", "amount": 10}]});
    assert_eq!(
        bet_as(&node, &token, &elsewhere).1["error"],
        "round_not_found"
    );
    let (_, me) = get_as(&node, &token, "/v1/players/me");
    assert_eq!(me["balances"]["EUR"].as_u64(), Some(100));
    let body = json!({"bet_id": "6", "round_id": round_id, "spots": [{"bet": "1", "amount": 10}]});
    let (status, answer) = node.post(&format!("/v1/tables/{TABLE}/bets"), &body);
    assert_eq!(status, 401, "only a player session bets: {answer}");
}

fn put_table(node: &TestServer, table: &str, body: &Value) -> (u16, Value) {
    node.request("PUT", &format!("/v1/tables/{table}"))
        .header("content-type", "application/json")
        .send(body.to_string().as_bytes())
        .status_json()
}

/// Polls the table list (as the local operator) until `done` holds for table `id`.
fn wait_for_table_id(node: &TestServer, id: u32, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, tables) = node.get("/v1/tables");
        assert_eq!(status, 200, "{tables}");
        let table = tables.as_array().unwrap().iter().find(|t| t["id"] == id);
        if let Some(table) = table.filter(|t| done(t)) {
            return table.clone();
        }
        assert!(
            Instant::now() < deadline,
            "table {id} never got there: {tables}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn roulette_table(window_ms: u32) -> Value {
    json!({
        "game": "roulette", "currency": "EUR", "betting_window_ms": window_ms, "draw_delay_ms": 100,
        "limits": {"bet_min": 10, "bet_max": 500, "round_stake_max": 100_000,
                   "payout_max": 100_000, "bets_per_round_max": 100},
    })
}

#[test]
fn an_operator_creates_a_table_over_http_and_changes_only_its_limits_mid_round() {
    let node = server();
    let (status, table) = put_table(&node, "9", &roulette_table(60_000));
    assert_eq!(status, 200, "{table}");
    assert_eq!(
        (&table["id"], &table["game"], &table["currency"]),
        (&json!(9), &json!("roulette"), &json!("EUR"))
    );
    assert_eq!(table["betting_window_ms"], 60_000);
    assert_eq!(table["bets_total_interval_ms"], 1_000, "the default");
    assert_eq!(table["limits"]["bet_max"], 500);
    assert_eq!(table["closed"], false);
    assert!(table["spots"]
        .as_array()
        .unwrap()
        .contains(&json!("straight:17")));
    let open = wait_for_table_id(&node, 9, |t| t["state"] == "open");

    // Mid-round, the game and the currency stay (the round's bets name its spots and money).
    let other_game = json!({"game": "money-wheel", "currency": "EUR"});
    let other_currency = json!({"game": "roulette", "currency": "USD"});
    for body in [other_game, other_currency] {
        let (status, answer) = put_table(&node, "9", &body);
        assert_eq!(
            (status, answer["error"].as_str()),
            (409, Some("round_in_progress")),
            "{answer}"
        );
    }
    // Limits and timing change at once (from the next round).
    let mut wider = roulette_table(60_000);
    wider["limits"]["bet_max"] = json!(800);
    wider["bets_total_interval_ms"] = json!(2_500);
    let (status, changed) = put_table(&node, "9", &wider);
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (changed["bet_max"].as_u64(), changed["round_id"].clone()),
        (Some(800), open["round_id"].clone())
    );
    assert_eq!(changed["bets_total_interval_ms"], 2_500);
}

#[test]
fn a_table_created_over_http_is_run_after_a_restart_from_ledger_state() {
    let mut node = server();
    assert_eq!(put_table(&node, "9", &roulette_table(1_000)).0, 200);
    let before = wait_for_table_id(&node, 9, |t| t["state"] == "open");
    // The new process (a new leader) has no config entry for table 9: the ledger names it.
    node.restart();
    let round_id = before["round_id"].as_u64().unwrap();
    let after = wait_for_table_id(&node, 9, |t| {
        t["state"] == "open" && t["round_id"].as_u64() > Some(round_id + 1)
    });
    assert_eq!(after["game"], "roulette");
    // The round the old process had open lost its seed with it: voided or, if the old
    // process drew it before stopping, settled; never left unfinished.
    let (status, old) = node.get(&format!("/v1/rounds/{round_id}"));
    assert_eq!(status, 200, "{old}");
    assert!(
        old["state"] == "voided" || old["state"] == "settled",
        "{old}"
    );
}

#[test]
fn a_table_changed_over_http_is_not_undone_by_the_config_file() {
    let node = server();
    wait_for_table_id(&node, TABLE, |t| t["state"] == "open");
    let body = json!({
        "game": "money-wheel", "currency": "EUR", "betting_window_ms": 1_500, "draw_delay_ms": 100,
        "limits": {"bet_min": 10, "bet_max": 2_000, "round_stake_max": 1_000_000,
                   "payout_max": 1_000_000, "bets_per_round_max": 1_000},
    });
    let (status, table) = put_table(&node, &TABLE.to_string(), &body);
    assert_eq!(
        (status, table["bet_max"].as_u64()),
        (200, Some(2_000)),
        "{table}"
    );
    // Many scheduler ticks later the configuration is still the operator's.
    std::thread::sleep(Duration::from_millis(600));
    let table = wait_for_table_id(&node, TABLE, |_| true);
    assert_eq!(table["bet_max"], 2_000);
}

#[test]
fn a_closed_table_finishes_its_round_and_opens_no_other() {
    let node = server();
    let mut body = roulette_table(800);
    assert_eq!(put_table(&node, "12", &body).0, 200);
    wait_for_table_id(&node, 12, |t| t["state"] == "open");
    body["closed"] = json!(true);
    let (status, table) = put_table(&node, "12", &body);
    assert_eq!((status, &table["closed"]), (200, &json!(true)), "{table}");
    let idle = wait_for_table_id(&node, 12, |t| t["state"] == "idle");
    std::thread::sleep(Duration::from_millis(1_000));
    let still = wait_for_table_id(&node, 12, |_| true);
    assert_eq!(
        (&still["state"], &still["round_id"]),
        (&json!("idle"), &idle["round_id"])
    );
}

#[test]
fn bad_table_configurations_answer_named_codes_and_create_nothing() {
    let node = server();
    let with = |field: &str, value: Value| {
        let mut body = roulette_table(1_000);
        body[field] = value;
        body
    };
    let mut inverted = roulette_table(1_000);
    inverted["limits"]["bet_min"] = json!(600);
    // The Ed25519 base point: a valid public key.
    const BASEPOINT: &str = "5866666666666666666666666666666666666666666666666666666666666666";
    let mut show_in_studio = with("game", json!("game-show-wheel"));
    show_in_studio["studio"] = json!({"public_key": BASEPOINT});
    let cases = [
        ("9", with("game", json!("poker")), 422, "game_not_certified"),
        ("9", with("game", json!("crash")), 422, "game_not_live"),
        ("9", inverted, 422, "table_config_invalid"),
        (
            "9",
            with("betting_window_ms", json!(0)),
            422,
            "table_config_invalid",
        ),
        (
            "9",
            with("draw_delay_ms", json!(60_001)),
            422,
            "table_config_invalid",
        ),
        (
            "9",
            with("bets_total_interval_ms", json!(99)),
            422,
            "table_config_invalid",
        ),
        (
            "9",
            with("currency", json!("not a currency")),
            400,
            "invalid_request",
        ),
        (
            "9",
            with("studio", json!({"public_key": "not hex"})),
            400,
            "invalid_request",
        ),
        (
            "9",
            with(
                "studio",
                json!({"public_key": BASEPOINT, "result_timeout_ms": 0}),
            ),
            422,
            "table_config_invalid",
        ),
        ("9", show_in_studio, 422, "game_not_studio"),
        ("0", roulette_table(1_000), 400, "invalid_path"),
        ("x", roulette_table(1_000), 400, "invalid_path"),
        ("1048576", roulette_table(1_000), 400, "invalid_path"),
    ];
    for (table, body, status, code) in cases {
        let (got, answer) = put_table(&node, table, &body);
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
    }
    for body in [
        with("colour", json!("red")),
        with("betting_window_ms", json!(-1)),
    ] {
        let (got, answer) = put_table(&node, "9", &body);
        assert_eq!(got, 400, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (_, tables) = node.get("/v1/tables");
    assert!(
        tables.as_array().unwrap().iter().all(|t| t["id"] != 9),
        "{tables}"
    );
}
