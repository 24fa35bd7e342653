//! The HTTP contract, checked from outside: a real node on a temporary data dir, a real socket
//! on 127.0.0.1:0 and a plain HTTP client.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};

mod common;
use common::{parse_json, TestServer};

const BATCH_ITEMS_MAX: usize = 8189;

/// Reads an account that must exist.
fn read_account(server: &TestServer, id: u128) -> Value {
    let (status, body) = server.get(&format!("/v1/accounts/{id}"));
    assert_eq!(status, 200, "{body}");
    body
}

fn results(body: &Value) -> Vec<&str> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|item| item["result"].as_str().expect("result"))
        .collect()
}

fn assert_error(status: u16, body: &Value, expected_status: u16, expected_code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["error"], expected_code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u64) -> Value {
    json!({"id": id.to_string(), "debit_account_id": debit.to_string(),
           "credit_account_id": credit.to_string(), "amount": amount, "ledger": "EUR"})
}

const CLEARING: u128 = 1;
const PLAYER: u128 = 2;
const PLAYER_2: u128 = 3;

/// A clearing account (no limits) and two players on EUR; the first player holds `funds`.
fn setup_players(server: &TestServer, funds: u64) {
    let (status, body) = server.post(
        "/v1/accounts",
        &json!([
            {"id": CLEARING, "ledger": "EUR", "kind": "clearing"},
            {"id": PLAYER, "ledger": "EUR", "kind": "player"},
            {"id": PLAYER_2, "ledger": "EUR", "kind": "player"},
        ]),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(results(&body), ["ok", "ok", "ok"]);
    if funds > 0 {
        let (status, body) = server.post(
            "/v1/transfers",
            &json!([transfer(900, CLEARING, PLAYER, funds)]),
        );
        assert_eq!((status, results(&body)), (200, vec!["ok"]));
    }
}

// --- health, documents, fallbacks -------------------------------------------------------------

#[test]
fn healthz_answers_ok_once_the_node_serves_writes() {
    let server = TestServer::start();
    assert_eq!(server.get("/healthz"), (200, json!({"status": "ok"})));
}

#[test]
fn unknown_routes_and_wrong_methods_answer_json_errors() {
    let server = TestServer::start();
    let (status, body) = server.get("/v1/nothing-here");
    assert_error(status, &body, 404, "not_found");
    let (status, body) = server.get("/v1/transfers");
    assert_error(status, &body, 405, "method_not_allowed");
    let (status, body) = server.post("/v1/accounts/5", &json!([]));
    assert_error(status, &body, 405, "method_not_allowed");
}

#[test]
fn web_ui_files_are_served_with_their_types_and_a_strict_policy() {
    let server = TestServer::start();
    for (path, content_type, marker) in [
        ("/", "text/html; charset=utf-8", "/ui/player.js"),
        ("/console", "text/html; charset=utf-8", "/ui/console.js"),
        ("/ui/player.js", "text/javascript; charset=utf-8", "import"),
        ("/ui/fair.js", "text/javascript; charset=utf-8", "HMAC"),
        (
            "/ui/bets.js",
            "text/javascript; charset=utf-8",
            "bet-socket",
        ),
        ("/ui/style.css", "text/css; charset=utf-8", ":root"),
        ("/ui/icon.svg", "image/svg+xml", "<svg"),
    ] {
        let answer = server.request("GET", path).call();
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.header("content-type"), Some(content_type), "{path}");
        assert_eq!(answer.header("cache-control"), Some("no-cache"), "{path}");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        let policy = answer.header("content-security-policy").unwrap_or_default();
        assert!(
            policy.starts_with("default-src 'none'; script-src 'self'"),
            "{policy}"
        );
        assert!(policy.contains("connect-src 'self' ws: wss:"), "{policy}");
        assert!(answer.text().contains(marker), "{path}");
        // Revalidation: the same ETag answers 304 with no body.
        let etag = answer.header("etag").expect("etag").to_string();
        let again = server
            .request("GET", path)
            .header("if-none-match", &etag)
            .call();
        assert_eq!((again.status, again.body.len()), (304, 0), "{path}");
    }
    // Unknown files, and the pages under /ui/, are 404 JSON like any unknown route.
    for path in ["/ui/nope.js", "/ui/index.html", "/ui/..%2Fui.rs"] {
        let (status, body) = server.get(path);
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"], "not_found", "{path}");
    }
    assert_eq!(server.request("POST", "/console").call().status, 405);
    // Not API routes: the document leaves them out.
    let (_, document) = server.get("/v1/openapi.json");
    for path in ["/", "/console", "/ui/{file}"] {
        assert!(document["paths"].get(path).is_none(), "{path} documented");
    }
}

#[test]
fn openapi_document_lists_every_route() {
    let server = TestServer::start();
    let (status, document) = server.get("/v1/openapi.json");
    assert_eq!(status, 200);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with('3')),
        "{document}"
    );
    let paths = document["paths"].as_object().expect("paths");
    let expected = [
        ("/healthz", "get"),
        ("/metrics", "get"),
        ("/v1/openapi.json", "get"),
        ("/v1/accounts", "post"),
        ("/v1/accounts/{id}", "get"),
        ("/v1/accounts/{id}/transfers", "get"),
        ("/v1/transfers", "post"),
        ("/v1/transfers/{id}", "get"),
        ("/v1/ledgers/{ledger}/house", "get"),
        ("/v1/wallet/bet", "post"),
        ("/v1/wallet/win", "post"),
        ("/v1/wallet/rollback", "post"),
        ("/v1/wallet/{player_id}/balance", "get"),
        ("/v1/events", "get"),
        ("/v1/events/stream", "get"),
        ("/v1/cluster/status", "get"),
        ("/v1/cluster/nodes", "post"),
        ("/v1/cluster/nodes/{node_id}", "delete"),
        ("/v1/cluster/leader", "post"),
        ("/v1/players", "post"),
        ("/v1/players/login", "post"),
        ("/v1/players/logout", "post"),
        ("/v1/players/me", "get"),
        ("/v1/players/{player_id}", "get"),
        ("/v1/players/{player_id}/sessions", "delete"),
        ("/v1/players/{player_id}/limits", "put"),
        ("/v1/players/{player_id}/limits", "get"),
        ("/v1/players/{player_id}/self-exclusion", "post"),
        ("/v1/players/{player_id}/self-exclusion", "delete"),
        ("/v1/players/{player_id}/time-out", "post"),
        ("/v1/players/{player_id}/compliance", "get"),
        ("/v1/players/{player_id}/deposits", "post"),
        ("/v1/players/{player_id}/kyc", "put"),
        ("/v1/players/{player_id}/identity", "post"),
        ("/v1/players/{player_id}/reality-check", "put"),
        ("/v1/players/{player_id}/reality-check", "get"),
        (
            "/v1/players/{player_id}/reality-check/acknowledgement",
            "post",
        ),
        ("/v1/compliance/policy", "put"),
        ("/v1/compliance/policy", "get"),
        ("/v1/cases", "get"),
        ("/v1/cases", "post"),
        ("/v1/cases/{case_id}", "get"),
        ("/v1/cases/{case_id}/assign", "post"),
        ("/v1/cases/{case_id}/notes", "post"),
        ("/v1/cases/{case_id}/decision", "post"),
        ("/v1/cases/{case_id}/goaml", "get"),
        ("/v1/risk/withdrawal-score", "post"),
        ("/v1/audit/operators", "get"),
        ("/v1/tables", "get"),
        ("/v1/tables/{table_id}", "put"),
        ("/v1/tables/{table_id}/bets", "post"),
        ("/v1/tables/{table_id}/bet-socket", "get"),
        ("/v1/tables/{table_id}/results", "post"),
        ("/v1/tables/{table_id}/rounds", "get"),
        ("/v1/rounds/{round_id}", "get"),
        ("/v1/certification", "get"),
        ("/v1/live", "get"),
        ("/v1/deposits", "post"),
        ("/v1/deposits/{deposit_id}", "get"),
        ("/v1/withdrawals", "post"),
        ("/v1/withdrawals/{withdrawal_id}", "get"),
        ("/v1/payments/notifications/{connector}", "post"),
        ("/v1/payments/connectors/{connector}/movements", "get"),
        ("/v1/webhooks/deliveries", "get"),
        ("/v1/webhooks/deliveries/{delivery_id}", "get"),
        ("/v1/webhooks/deliveries/{delivery_id}/replay", "post"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let distinct: std::collections::BTreeSet<&str> = expected.iter().map(|(p, _)| *p).collect();
    let listed: Vec<&String> = paths.keys().collect();
    assert_eq!(
        paths.len(),
        distinct.len(),
        "undocumented or unexpected paths: {listed:?}"
    );
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for schema in ["TransferIn", "AccountOut", "WalletOk", "ErrorBody"] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
}

#[test]
fn openapi_document_lists_the_edge_refusals_on_every_route_and_round_mismatch() {
    let server = TestServer::start();
    let (_, document) = server.get("/v1/openapi.json");
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let refused = &operation["responses"]["503"];
            let description = refused["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("overloaded") && description.contains("deadline_exceeded"),
                "{method} {path}: {refused}"
            );
        }
    }
    let rollback = &paths["/v1/wallet/rollback"]["post"]["responses"]["422"]["description"];
    assert!(
        rollback
            .as_str()
            .unwrap_or_default()
            .contains("round_mismatch"),
        "{rollback}"
    );
}

/// A path item's operations, with their method.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            found.push((path.clone(), method.clone(), operation.clone()));
        }
    }
    found
}

#[test]
fn openapi_document_states_ids_ledger_codes_and_integer_ranges_exactly() {
    let server = TestServer::start();
    let (status, text) = server.get_text("/v1/openapi.json");
    assert_eq!(status, 200);
    // u128 bounds are written as exact integers, never as floats.
    assert!(
        text.contains("\"maximum\":340282366920938463463374607431768211455"),
        "no exact u128 maximum"
    );
    assert!(
        !text.contains("e+38") && !text.contains("e38"),
        "a float bound"
    );
    let document = parse_json(&text);
    let schemas = &document["components"]["schemas"];
    let id = &schemas["IdIn"]["oneOf"];
    assert_eq!(
        (&id[0]["type"], &id[0]["minimum"]),
        (&json!("integer"), &json!(1))
    );
    assert_eq!(id[1]["type"], "string");
    let id_pattern = schemas["Id"]["pattern"].as_str().expect("id pattern");
    assert!(
        id_pattern.starts_with("^0*(?:[1-9][0-9]{0,37}|"),
        "{id_pattern}"
    );
    assert!(
        id_pattern.ends_with("|340282366920938463463374607431768211455)$"),
        "{id_pattern}"
    );
    assert_eq!(schemas["LedgerCode"]["pattern"], "^[A-Z0-9_]{1,8}$");
    assert_eq!(schemas["UInt64"]["maximum"], json!(u64::MAX));
    let timeout = &schemas["TransferIn"]["properties"]["timeout_s"]["oneOf"];
    assert_eq!(
        (&timeout[0]["type"], &timeout[1]["maximum"]),
        (&json!("null"), &json!(u32::MAX))
    );
    assert_eq!(
        schemas["WalletMoveIn"]["properties"]["amount"]["minimum"], 1,
        "a zero bet or win answers 422"
    );
    // Path parameters carry the same patterns.
    for (path, name, schema) in [
        ("/v1/accounts/{id}", "id", "Id"),
        ("/v1/transfers/{id}", "id", "Id"),
        ("/v1/players/{player_id}", "player_id", "Id"),
        ("/v1/wallet/{player_id}/balance", "player_id", "Id"),
        ("/v1/ledgers/{ledger}/house", "ledger", "LedgerCode"),
        ("/v1/cluster/nodes/{node_id}", "node_id", "NodeId"),
    ] {
        let parameters = document["paths"][path]
            .as_object()
            .and_then(|item| item.values().next())
            .map(|operation| operation["parameters"].clone())
            .expect("parameters");
        let parameter = parameters
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("{path}: no {name}"));
        assert_eq!(
            parameter["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "{path}"
        );
    }
    for (path, method, operation) in operations(&document) {
        let responses = operation["responses"].as_object().expect("responses");
        // What the middlewares in front of every handler may answer.
        for status in ["400", "401", "429", "503"] {
            assert!(
                responses.contains_key(status),
                "{method} {path}: no {status}"
            );
        }
        // A JSON body can be refused for its type, size or shape.
        if operation["requestBody"]["content"]["application/json"].is_object() {
            for status in ["400", "413", "415"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
        }
        // A path parameter can be malformed or name nothing.
        let has_path_parameter = operation["parameters"]
            .as_array()
            .is_some_and(|all| all.iter().any(|p| p["in"] == "path"));
        if has_path_parameter {
            assert!(responses.contains_key("404"), "{method} {path}: no 404");
        }
        for (status, response) in responses {
            // 101: the WebSocket handshake of /v1/live, which has no body; 202: accepted work
            // (a withdrawal, a bank's notification), with its own body.
            if !["200", "201", "202", "101"].contains(&status.as_str()) {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

#[test]
fn path_ids_accept_exactly_what_the_document_patterns_say() {
    let server = TestServer::start();
    let max = u128::MAX.to_string();
    for accepted in ["7", "0007", max.as_str()] {
        let (status, body) = server.get(&format!("/v1/accounts/{accepted}"));
        assert_error(status, &body, 404, "account_not_found");
    }
    for refused in [
        "0",
        "000",
        "+7",
        "7 ",
        "340282366920938463463374607431768211456",
    ] {
        let (status, body) = server.get(&format!("/v1/accounts/{}", refused.replace(' ', "%20")));
        assert_error(status, &body, 400, "invalid_path");
    }
}

#[test]
fn metrics_expose_request_counts_latency_histograms_and_group_commit() {
    let server = TestServer::start();
    setup_players(&server, 100);
    let _ = server.get("/v1/accounts/999");
    let (status, text) = server.get_text("/metrics");
    assert_eq!(status, 200);
    for needle in [
        "croupier_http_requests_total{",
        r#"route="/v1/transfers""#,
        r#"method="POST""#,
        r#"status="404""#,
        "croupier_http_request_duration_seconds_bucket{",
        "croupier_group_commit_commands_per_entry_bucket",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
}

// --- accounts ---------------------------------------------------------------------------------

#[test]
fn accounts_are_created_and_read_back_with_balances() {
    let server = TestServer::start();
    let (status, body) = server.post(
        "/v1/accounts",
        &json!([
            {"id": "10", "ledger": "EUR", "kind": "player"},
            {"id": 11, "ledger": "EUR", "kind": "clearing", "flags": ["credits_must_not_exceed_debits"]},
        ]),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"id": "10", "result": "ok"}, {"id": "11", "result": "ok"}])
    );
    let account = read_account(&server, 10);
    assert_eq!(account["id"], "10");
    assert_eq!(account["ledger"], "EUR");
    assert_eq!(account["kind"], "player");
    assert!(account["flags"]
        .as_array()
        .unwrap()
        .contains(&json!("debits_must_not_exceed_credits")));
    for field in [
        "debits_pending",
        "debits_posted",
        "credits_pending",
        "credits_posted",
    ] {
        assert_eq!(account[field], 0, "{field}");
    }
    assert_eq!(
        read_account(&server, 11)["flags"],
        json!(["credits_must_not_exceed_debits"])
    );
}

#[test]
fn account_creation_answers_exists_and_rejection_codes_per_item() {
    let server = TestServer::start();
    let first = json!([{"id": 20, "ledger": "EUR", "kind": "player"}]);
    assert_eq!(results(&server.post("/v1/accounts", &first).1), ["ok"]);
    let (status, body) = server.post(
        "/v1/accounts",
        &json!([
            {"id": 20, "ledger": "EUR", "kind": "player"},
            {"id": 20, "ledger": "USD", "kind": "player"},
            {"id": 21, "ledger": "EUR", "kind": "house"},
            {"id": 22, "ledger": 978, "kind": "system"},
        ]),
    );
    assert_eq!(status, 200);
    assert_eq!(
        results(&body),
        [
            "exists",
            "exists_with_different_ledger",
            "kind_must_not_be_house",
            "ok"
        ]
    );
    assert_eq!(read_account(&server, 22)["ledger"], "978");
}

#[test]
fn account_reads_answer_404_when_absent_and_400_for_bad_ids() {
    let server = TestServer::start();
    let (status, body) = server.get("/v1/accounts/424242");
    assert_error(status, &body, 404, "account_not_found");
    for bad in ["0", "abc", "-1", "340282366920938463463374607431768211456"] {
        let (status, body) = server.get(&format!("/v1/accounts/{bad}"));
        assert_error(status, &body, 400, "invalid_path");
    }
}

#[test]
fn u128_ids_round_trip_as_decimal_strings() {
    let server = TestServer::start();
    let big = (1u128 << 96) + 12345; // beyond u64, below the reserved range
    let (status, body) = server.post_raw(
        "/v1/accounts",
        &format!(r#"[{{"id": {big}, "ledger": "EUR", "kind": "system"}}]"#),
        Some("application/json"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!([{"id": big.to_string(), "result": "ok"}]));
    assert_eq!(read_account(&server, big)["id"], big.to_string());
}

#[test]
fn empty_batches_answer_an_empty_array() {
    let server = TestServer::start();
    assert_eq!(server.post("/v1/accounts", &json!([])), (200, json!([])));
    assert_eq!(server.post("/v1/transfers", &json!([])), (200, json!([])));
}

#[test]
fn a_full_batch_is_accepted_and_one_more_item_answers_413() {
    let server = TestServer::start();
    let accounts: Vec<Value> = (1..=BATCH_ITEMS_MAX as u128)
        .map(|id| json!({"id": id, "ledger": "EUR", "kind": "system"}))
        .collect();
    let (status, body) = server.post("/v1/accounts", &Value::Array(accounts));
    assert_eq!(status, 200);
    assert_eq!(body.as_array().unwrap().len(), BATCH_ITEMS_MAX);
    assert!(results(&body).iter().all(|result| *result == "ok"));

    let transfers: Vec<Value> = (1..=BATCH_ITEMS_MAX as u128 + 1)
        .map(|id| transfer(100_000 + id, 1, 2, 1))
        .collect();
    let (status, body) = server.post("/v1/transfers", &Value::Array(transfers));
    assert_error(status, &body, 413, "too_many_items");
    assert_eq!(server.get("/v1/transfers/100001").0, 404, "nothing applied");
}

// --- transfers --------------------------------------------------------------------------------

#[test]
fn a_retried_transfer_answers_exists_and_moves_money_once() {
    let server = TestServer::start();
    setup_players(&server, 0);
    let batch = json!([transfer(50, CLEARING, PLAYER, 700)]);
    assert_eq!(results(&server.post("/v1/transfers", &batch).1), ["ok"]);
    assert_eq!(results(&server.post("/v1/transfers", &batch).1), ["exists"]);
    let changed = json!([transfer(50, CLEARING, PLAYER, 701)]);
    assert_eq!(
        results(&server.post("/v1/transfers", &changed).1),
        ["exists_with_different_amount"]
    );
    assert_eq!(read_account(&server, PLAYER)["credits_posted"], 700);
    assert_eq!(read_account(&server, CLEARING)["debits_posted"], 700);
}

#[test]
fn transfer_results_keep_request_order_with_rejection_codes() {
    let server = TestServer::start();
    setup_players(&server, 100);
    let (status, body) = server.post(
        "/v1/transfers",
        &json!([
            transfer(60, PLAYER, PLAYER_2, 30),
            transfer(61, PLAYER, PLAYER_2, 1_000),
            transfer(62, PLAYER, 777, 1),
            transfer(63, PLAYER, PLAYER, 1),
            transfer(64, CLEARING, PLAYER_2, 0),
        ]),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body.as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].clone())
            .collect::<Vec<_>>(),
        ["60", "61", "62", "63", "64"]
    );
    assert_eq!(
        results(&body),
        [
            "ok",
            "exceeds_credits",
            "credit_account_not_found",
            "accounts_must_be_different",
            "amount_must_not_be_zero"
        ]
    );
}

#[test]
fn a_linked_chain_in_one_request_is_all_or_nothing() {
    let server = TestServer::start();
    setup_players(&server, 100);
    let mut first = transfer(70, PLAYER, PLAYER_2, 60);
    first["flags"] = json!(["linked"]);
    let second = transfer(71, PLAYER, PLAYER_2, 60); // exceeds what is left
    let (status, body) = server.post("/v1/transfers", &json!([first, second]));
    assert_eq!(status, 200);
    assert_eq!(results(&body), ["linked_event_failed", "exceeds_credits"]);
    assert_eq!(read_account(&server, PLAYER_2)["credits_posted"], 0);
    assert_eq!(server.get("/v1/transfers/70").0, 404);
}

#[test]
fn pending_transfers_post_through_the_api() {
    let server = TestServer::start();
    setup_players(&server, 100);
    let mut pending = transfer(80, PLAYER, PLAYER_2, 40);
    pending["flags"] = json!(["pending"]);
    pending["timeout_s"] = json!(3600);
    assert_eq!(
        results(&server.post("/v1/transfers", &json!([pending])).1),
        ["ok"]
    );
    assert_eq!(read_account(&server, PLAYER)["debits_pending"], 40);
    let mut post = transfer(81, PLAYER, PLAYER_2, 25);
    post["flags"] = json!(["post_pending_transfer"]);
    post["pending_id"] = json!("80");
    assert_eq!(
        results(&server.post("/v1/transfers", &json!([post])).1),
        ["ok"]
    );
    let (status, stored) = server.get("/v1/transfers/81");
    assert_eq!(status, 200);
    assert_eq!(stored["pending_id"], "80");
    assert_eq!(stored["flags"], json!(["post_pending_transfer"]));
    let player = read_account(&server, PLAYER);
    assert_eq!(
        (
            player["debits_pending"].clone(),
            player["debits_posted"].clone()
        ),
        (json!(0), json!(25))
    );
}

#[test]
fn a_transfer_reads_back_with_every_field() {
    let server = TestServer::start();
    setup_players(&server, 100);
    let (status, stored) = server.get("/v1/transfers/900");
    assert_eq!(status, 200);
    assert_eq!(stored["id"], "900");
    assert_eq!(stored["debit_account_id"], CLEARING.to_string());
    assert_eq!(stored["credit_account_id"], PLAYER.to_string());
    assert_eq!(stored["amount"], 100);
    assert_eq!(stored["ledger"], "EUR");
    assert_eq!(stored["flags"], json!([]));
    assert_eq!(stored["pending_id"], Value::Null);
    assert_eq!(stored["timeout_s"], 0);
    assert!(stored["timestamp"].as_u64().is_some_and(|ts| ts > 0));
    let (status, body) = server.get("/v1/transfers/901");
    assert_error(status, &body, 404, "transfer_not_found");
}

#[test]
fn account_history_is_newest_first_and_limited() {
    let server = TestServer::start();
    setup_players(&server, 0);
    let batch: Vec<Value> = (1..=5)
        .map(|n| transfer(1000 + n, CLEARING, PLAYER, n as u64))
        .collect();
    assert_eq!(server.post("/v1/transfers", &Value::Array(batch)).0, 200);
    let (status, history) = server.get(&format!("/v1/accounts/{PLAYER}/transfers?limit=3"));
    assert_eq!(status, 200);
    let ids: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1005", "1004", "1003"]);
    let (status, history) = server.get(&format!("/v1/accounts/{PLAYER}/transfers"));
    assert_eq!((status, history.as_array().unwrap().len()), (200, 5));
    for bad in ["limit=0", "limit=8190", "limit=x", "limit=-1", "depth=2"] {
        let (status, body) = server.get(&format!("/v1/accounts/{PLAYER}/transfers?{bad}"));
        assert_error(status, &body, 400, "invalid_query");
    }
    let (status, body) = server.get("/v1/accounts/4444/transfers");
    assert_error(status, &body, 404, "account_not_found");
}

// --- bad input: 4xx JSON, never a partial batch --------------------------------------------------

#[test]
fn a_zero_id_refuses_the_whole_request_naming_item_and_field() {
    let server = TestServer::start();
    setup_players(&server, 100);
    let (status, body) = server.post(
        "/v1/transfers",
        &json!([
            transfer(90, CLEARING, PLAYER, 5),
            transfer(91, CLEARING, 0, 5)
        ]),
    );
    assert_error(status, &body, 400, "invalid_request");
    assert_eq!(body["index"], 1);
    assert_eq!(body["field"], "credit_account_id");
    assert_eq!(
        server.get("/v1/transfers/90").0,
        404,
        "the valid item was not applied"
    );
    for (field, index) in [("id", 0), ("debit_account_id", 0)] {
        let mut item = transfer(92, CLEARING, PLAYER, 5);
        item[field] = json!(0);
        let (status, body) = server.post("/v1/transfers", &json!([item]));
        assert_error(status, &body, 400, "invalid_request");
        assert_eq!(
            (body["index"].clone(), body["field"].clone()),
            (json!(index), json!(field))
        );
    }
    let (status, body) = server.post(
        "/v1/accounts",
        &json!([{"id": "0", "ledger": "EUR", "kind": "player"}]),
    );
    assert_error(status, &body, 400, "invalid_request");
    assert_eq!(read_account(&server, PLAYER)["credits_posted"], 100);
}

#[test]
fn malformed_or_mistyped_bodies_answer_400() {
    let server = TestServer::start();
    setup_players(&server, 100);
    let (status, body) = server.post_raw("/v1/transfers", "[{\"id\": 1,", Some("application/json"));
    assert_error(status, &body, 400, "malformed_json");
    let (status, body) = server.post_raw("/v1/transfers", "not json", Some("application/json"));
    assert_error(status, &body, 400, "malformed_json");
    let base = transfer(95, CLEARING, PLAYER, 5);
    let mut cases = Vec::new();
    for (field, value) in [
        ("amount", json!(-5)),
        ("amount", json!(2.5)),
        ("amount", json!("5")),
        ("id", json!("12a")),
        ("id", json!(-3)),
        ("ledger", json!("eur")),
        ("flags", json!(["sticky"])),
        ("flags", json!("linked")),
        ("timeout_s", json!(-1)),
    ] {
        let mut item = base.clone();
        item[field] = value;
        cases.push(item);
    }
    let mut unknown = base.clone();
    unknown["memo"] = json!("hi");
    cases.push(unknown);
    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("amount");
    cases.push(missing);
    cases.push(json!({"not": "an array"}));
    for case in cases {
        let body = if case.is_array() || case.get("not").is_some() {
            case.clone()
        } else {
            json!([case])
        };
        let (status, answer) = server.post("/v1/transfers", &body);
        assert_error(status, &answer, 400, "invalid_request");
    }
    let beyond_u128 = "340282366920938463463374607431768211456";
    let beyond_u64 = "18446744073709551616";
    for (id, amount) in [(beyond_u128, "1"), ("95", beyond_u64)] {
        let (status, body) = server.post_raw(
            "/v1/transfers",
            &format!(r#"[{{"id": {id}, "debit_account_id": 1, "credit_account_id": 2, "amount": {amount}, "ledger": "EUR"}}]"#),
            Some("application/json"),
        );
        assert_error(status, &body, 400, "invalid_request");
    }
    assert_eq!(server.get("/v1/transfers/95").0, 404);
    assert_eq!(read_account(&server, PLAYER)["credits_posted"], 100);
}

#[test]
fn integers_are_values_so_a_zero_fraction_or_an_exponent_spells_the_same_number() {
    // JSON Schema's `integer` (what the document says) admits 7, 7.0 and 7e0 alike, and a
    // Python or JavaScript client may print any of them; fractions stay refused.
    let server = TestServer::start();
    let (status, body) = server.post_raw(
        "/v1/accounts",
        r#"[{"id": 7.0, "ledger": 978.0, "kind": "clearing"},
            {"id": 8e0, "ledger": "EUR", "kind": "clearing"},
            {"id": 0.9e1, "ledger": "EUR", "kind": "clearing"}]"#,
        Some("application/json"),
    );
    assert_eq!(
        (status, results(&body)),
        (200, vec!["ok", "ok", "ok"]),
        "{body}"
    );
    assert_eq!(read_account(&server, 7)["ledger"], "978");
    assert_eq!(read_account(&server, 9)["id"], "9");
    let (status, body) = server.post_raw(
        "/v1/transfers",
        r#"[{"id": 1e2, "debit_account_id": "8", "credit_account_id": 9, "amount": 25.0,
             "ledger": "EUR", "timeout_s": 0.0}]"#,
        Some("application/json"),
    );
    assert_eq!((status, results(&body)), (200, vec!["ok"]), "{body}");
    let (_, transfer) = server.get("/v1/transfers/100");
    assert_eq!(transfer["amount"], 25, "{transfer}");
    for bad in [
        r#""amount": 2.5"#,
        r#""amount": 1e-1"#,
        r#""amount": -0.5"#,
        r#""amount": 18446744073709551616"#,
        r#""amount": 1.8446744073709551616e19"#,
        r#""amount": 1, "timeout_s": 4294967296"#,
        r#""amount": 1, "timeout_s": 1.5"#,
    ] {
        let body = format!(
            r#"[{{"id": 101, "debit_account_id": 8, "credit_account_id": 9, "ledger": "EUR", {bad}}}]"#
        );
        let (status, answer) = server.post_raw("/v1/transfers", &body, Some("application/json"));
        assert_error(status, &answer, 400, "invalid_request");
    }
    let (status, body) = server.post_raw(
        "/v1/accounts",
        r#"[{"id": 1.5, "ledger": "EUR", "kind": "clearing"}]"#,
        Some("application/json"),
    );
    assert_error(status, &body, 400, "invalid_request");
}

#[test]
fn history_cursors_are_hex_digits_only() {
    let server = TestServer::start();
    setup_players(&server, 100);
    // u64::from_str_radix alone took a leading sign.
    let (status, body) = server.get("/v1/accounts/2/transfers?cursor=c1%2B000000000000000");
    assert_error(status, &body, 400, "invalid_query");
    let (status, _) = server.get("/v1/accounts/2/transfers?cursor=c1000000000000000A");
    assert_eq!(status, 200);
}

#[test]
fn event_positions_take_leading_zeros_and_a_bad_after_is_refused_beside_last_event_id() {
    let server = TestServer::start();
    let (status, body) = server.get("/v1/events?after=0000000000000000000000000");
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("/v1/events?after=18446744073709551616");
    assert_error(status, &body, 400, "invalid_query");
    // Last-Event-ID wins over `after`, but a malformed `after` is still an error (it used to be
    // ignored, answering 200 to a request the document says is invalid).
    let (status, body) = server
        .request("GET", "/v1/events/stream?after=")
        .header("last-event-id", "0")
        .call()
        .status_json();
    assert_error(status, &body, 400, "invalid_query");
}

#[test]
fn a_body_without_json_content_type_answers_415() {
    let server = TestServer::start();
    let body = r#"[{"id": 1, "ledger": "EUR", "kind": "player"}]"#;
    let (status, answer) = server.post_raw("/v1/accounts", body, None);
    assert_error(status, &answer, 415, "unsupported_media_type");
    let (status, answer) = server.post_raw("/v1/accounts", body, Some("text/plain"));
    assert_error(status, &answer, 415, "unsupported_media_type");
    let (status, _) = server.post_raw(
        "/v1/accounts",
        body,
        Some("application/json; charset=utf-8"),
    );
    assert_eq!(status, 200);
}

#[test]
fn an_oversized_body_answers_413() {
    let server = TestServer::start();
    // Raw socket: the server answers as soon as it sees the declared length, before the
    // client has sent the rest (a client library would fail writing the remainder).
    let declared = 5 << 20;
    let mut stream = server.connect();
    let head = format!(
        "POST /v1/accounts HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n["
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body = parse_json(answer.split("\r\n\r\n").nth(1).unwrap_or_default());
    assert_error(413, &body, 413, "body_too_large");
    assert_eq!(server.get("/healthz").0, 200);
}

/// Regression (CI run 59: a 415 test's client saw "Peer disconnected" instead of the answer):
/// hyper closes a connection whose request body was left unread, and the reset that closing
/// with unread bytes sends can reach the client before the answer does. A refusal that needs
/// no body (wrong Content-Type, unknown key) now waits for the body, then answers.
#[test]
fn a_request_refused_before_its_body_is_needed_is_answered_once_the_body_is_in() {
    let server = TestServer::start();
    let body = r#"[{"id": 1, "ledger": "EUR", "kind": "player"}]"#;
    let cases = [
        ("Content-Type: text/plain", 415, "unsupported_media_type"),
        (
            "Content-Type: application/json\r\nAuthorization: Bearer not-a-key",
            401,
            "unauthorized",
        ),
    ];
    for (headers, status, code) in cases {
        let mut stream = server.connect();
        let head = format!(
            "POST /v1/accounts HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let early = stream.read(&mut [0u8; 1]);
        assert!(
            early.as_ref().is_err_and(|error| matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            )),
            "{code}: answered before the body was sent: {early:?}"
        );
        stream.write_all(body.as_bytes()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        let json = parse_json(answer.split("\r\n\r\n").nth(1).unwrap_or_default());
        assert_error(status, &json, status, code);
    }
}

/// Longest message an error may carry when it quotes a huge input: the quote is cut to 64
/// characters, the rest is our own words.
const ECHO_MESSAGE_BYTES_MAX: usize = 600;

fn assert_short_echo(status: u16, body: &Value, code: &str, prefix: &str) {
    assert_eq!(body["error"], code, "{status}");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.len() <= ECHO_MESSAGE_BYTES_MAX,
        "{} bytes: {}…",
        message.len(),
        &message[..200]
    );
    assert!(message.contains(prefix), "{message}");
    assert!(message.contains('…'), "{message}");
}

#[test]
fn error_messages_quote_only_a_short_prefix_of_a_huge_bad_input() {
    let server = TestServer::start();
    let huge = format!("{}x", "9".repeat(3 << 20));
    let item = json!({"id": huge, "ledger": "EUR", "kind": "player"});
    let (status, body) = server.post("/v1/accounts", &json!([item]));
    assert_eq!(status, 400);
    assert_short_echo(status, &body, "invalid_request", "invalid id \"9999");

    let field = "f".repeat(1 << 20);
    let item = json!({"id": 1, "ledger": "EUR", "kind": "player", field: 1});
    let (status, body) = server.post("/v1/accounts", &json!([item]));
    assert_short_echo(status, &body, "invalid_request", "unknown field `ffff");

    let kind = "k".repeat(1 << 20);
    let item = json!({"id": 1, "ledger": "EUR", "kind": kind});
    let (status, body) = server.post("/v1/accounts", &json!([item]));
    assert_short_echo(
        status,
        &body,
        "invalid_request",
        "unknown account kind \"kkkk",
    );

    let (status, body) = server.get(&format!("/v1/ledgers/{}/house", "L".repeat(16 << 10)));
    assert_eq!(status, 400);
    assert_short_echo(status, &body, "invalid_path", "invalid ledger \"LLLL");
}

#[test]
fn a_raw_garbage_request_does_not_kill_the_server() {
    let server = TestServer::start();
    let mut stream = server.connect();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"\x00\x01GARBAGE / HTTP/9\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert_eq!(server.get("/healthz").0, 200);
}

// --- wallet -----------------------------------------------------------------------------------

fn bet(transaction_id: &str, round_id: &str, amount: u64) -> Value {
    json!({"transaction_id": transaction_id, "player_id": PLAYER.to_string(),
           "round_id": round_id, "amount": amount, "ledger": "EUR"})
}

fn rollback(transaction_id: &str, round_id: &str, target: &str) -> Value {
    json!({"transaction_id": transaction_id, "player_id": PLAYER, "round_id": round_id,
           "rolled_back_transaction_id": target})
}

#[test]
fn bet_win_and_balance_move_money_between_player_and_house() {
    let server = TestServer::start();
    setup_players(&server, 1_000);
    let (status, body) = server.post("/v1/wallet/bet", &bet("b1", "r1", 300));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["transaction_id"], "b1");
    assert_eq!(body["player_id"], PLAYER.to_string());
    assert_eq!(body["balance"], 700);
    assert_eq!(body["ledger"], "EUR");
    let bet_transfer = body["transfer_id"]
        .as_str()
        .expect("transfer id")
        .to_owned();
    let (status, stored) = server.get(&format!("/v1/transfers/{bet_transfer}"));
    assert_eq!((status, stored["amount"].clone()), (200, json!(300)));

    let (status, body) = server.post("/v1/wallet/win", &bet("w1", "r1", 500));
    assert_eq!(
        (status, body["balance"].clone()),
        (200, json!(1_200)),
        "{body}"
    );
    let (status, body) = server.get(&format!("/v1/wallet/{PLAYER}/balance"));
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"player_id": PLAYER.to_string(), "ledger": "EUR", "balance": 1_200})
    );

    let (status, house) = server.get("/v1/ledgers/EUR/house");
    assert_eq!(status, 200, "{house}");
    assert_eq!(house["kind"], "house");
    assert_eq!(
        (
            house["credits_posted"].clone(),
            house["debits_posted"].clone()
        ),
        (json!(300), json!(500))
    );
    let (status, body) = server.get("/v1/ledgers/USD/house");
    assert_error(status, &body, 404, "house_account_not_found");
    let (status, body) = server.get("/v1/ledgers/usd/house");
    assert_error(status, &body, 400, "invalid_path");
}

#[test]
fn a_repeated_bet_answers_the_original_and_a_changed_one_answers_409() {
    let server = TestServer::start();
    setup_players(&server, 1_000);
    let first = server.post("/v1/wallet/bet", &bet("b1", "r1", 100));
    assert_eq!(first.0, 200);
    let _ = server.post("/v1/wallet/bet", &bet("b2", "r1", 100));
    assert_eq!(
        server.post("/v1/wallet/bet", &bet("b1", "r1", 100)),
        first,
        "original answer"
    );
    let (status, body) = server.post("/v1/wallet/bet", &bet("b1", "r1", 101));
    assert_error(status, &body, 409, "transaction_conflict");
    assert_eq!(
        server.get(&format!("/v1/wallet/{PLAYER}/balance")).1["balance"],
        800
    );
}

#[test]
fn a_bet_beyond_the_balance_answers_402_with_the_balance() {
    let server = TestServer::start();
    setup_players(&server, 50);
    let (status, body) = server.post("/v1/wallet/bet", &bet("b1", "r1", 51));
    assert_error(status, &body, 402, "insufficient_funds");
    assert_eq!(body["balance"], 50);
    assert_eq!(
        server.get(&format!("/v1/wallet/{PLAYER}/balance")).1["balance"],
        50
    );
}

#[test]
fn rollback_reverses_a_bet_once_and_refuses_settled_rounds() {
    let server = TestServer::start();
    setup_players(&server, 1_000);
    assert_eq!(server.post("/v1/wallet/bet", &bet("b1", "r1", 400)).0, 200);
    let (status, body) = server.post("/v1/wallet/rollback", &rollback("rb1", "r1", "b1"));
    assert_eq!(
        (status, body["balance"].clone()),
        (200, json!(1_000)),
        "{body}"
    );
    assert!(body.get("ledger").is_none());
    let again = server.post("/v1/wallet/rollback", &rollback("rb1", "r1", "b1"));
    assert_eq!(
        again,
        (status, body),
        "a duplicate rollback answers the original"
    );
    assert_eq!(
        server.get(&format!("/v1/wallet/{PLAYER}/balance")).1["balance"],
        1_000
    );

    assert_eq!(server.post("/v1/wallet/bet", &bet("b2", "r2", 100)).0, 200);
    assert_eq!(server.post("/v1/wallet/win", &bet("w2", "r2", 0)).0, 200);
    let (status, body) = server.post("/v1/wallet/rollback", &rollback("rb2", "r2", "b2"));
    assert_error(status, &body, 409, "bet_already_settled");
}

#[test]
fn rollback_naming_another_round_is_refused_and_leaves_the_bet_rollbackable() {
    let server = TestServer::start();
    setup_players(&server, 1_000);
    assert_eq!(server.post("/v1/wallet/bet", &bet("b1", "r1", 400)).0, 200);
    let (status, body) = server.post("/v1/wallet/rollback", &rollback("rb1", "r2", "b1"));
    assert_error(status, &body, 422, "round_mismatch");
    let balance = || server.get(&format!("/v1/wallet/{PLAYER}/balance")).1["balance"].clone();
    assert_eq!(balance(), 600, "a refused rollback moves nothing");
    let (status, body) = server.post("/v1/wallet/rollback", &rollback("rb2", "r1", "b1"));
    assert_eq!(
        (status, body["balance"].clone()),
        (200, json!(1_000)),
        "{body}"
    );
}

#[test]
fn rollback_of_an_unknown_bet_leaves_a_tombstone_that_refuses_the_late_bet() {
    let server = TestServer::start();
    setup_players(&server, 1_000);
    let (status, body) = server.post("/v1/wallet/rollback", &rollback("rb9", "r9", "b9"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["transfer_id"], Value::Null);
    let (status, body) = server.post("/v1/wallet/bet", &bet("b9", "r9", 10));
    assert_error(status, &body, 409, "bet_already_rolled_back");
    assert_eq!(
        server.get(&format!("/v1/wallet/{PLAYER}/balance")).1["balance"],
        1_000
    );
}

#[test]
fn wallet_refusals_map_to_their_statuses() {
    let server = TestServer::start();
    setup_players(&server, 1_000);
    let mut unknown_player = bet("b1", "r1", 10);
    unknown_player["player_id"] = json!("31337");
    let (status, body) = server.post("/v1/wallet/bet", &unknown_player);
    assert_error(status, &body, 404, "player_not_found");
    let mut not_player = bet("b2", "r1", 10);
    not_player["player_id"] = json!(CLEARING);
    let (status, body) = server.post("/v1/wallet/bet", &not_player);
    assert_error(status, &body, 422, "not_a_player_account");
    let mut wrong_ledger = bet("b3", "r1", 10);
    wrong_ledger["ledger"] = json!("USD");
    let (status, body) = server.post("/v1/wallet/bet", &wrong_ledger);
    assert_error(status, &body, 422, "ledger_mismatch");
    let (status, body) = server.post("/v1/wallet/bet", &bet("b4", "r1", 0));
    assert_error(status, &body, 422, "amount_must_not_be_zero");
    assert_eq!(server.post("/v1/wallet/bet", &bet("b5", "r5", 10)).0, 200);
    let (status, body) = server.post("/v1/wallet/win", &bet("b5", "r5", 10));
    assert_error(status, &body, 409, "transaction_conflict");
    let (status, body) = server.post("/v1/wallet/rollback", &rollback("rb6", "r5", "w-none-yet"));
    assert_eq!(status, 200, "tombstone: {body}");
    assert_eq!(server.post("/v1/wallet/win", &bet("w7", "r7", 10)).0, 200);
    let (status, body) = server.post("/v1/wallet/rollback", &rollback("rb7", "r7", "w7"));
    assert_error(status, &body, 422, "rollback_target_invalid");
    let (status, body) = server.get("/v1/wallet/31337/balance");
    assert_error(status, &body, 404, "player_not_found");
    let (status, body) = server.get(&format!("/v1/wallet/{CLEARING}/balance"));
    assert_error(status, &body, 422, "not_a_player_account");
}

#[test]
fn a_closed_player_cannot_bet_but_still_receives_wins() {
    let server = TestServer::start();
    let (status, body) = server.post(
        "/v1/accounts",
        &json!([{"id": PLAYER, "ledger": "EUR", "kind": "player", "flags": ["closed"]}]),
    );
    assert_eq!((status, results(&body)), (200, vec!["ok"]));
    let (status, body) = server.post("/v1/wallet/bet", &bet("b1", "r1", 1));
    assert_error(status, &body, 403, "player_account_closed");
    let (status, body) = server.post("/v1/wallet/win", &bet("w1", "r1", 5));
    assert_eq!((status, body["balance"].clone()), (200, json!(5)), "{body}");
}

#[test]
fn wallet_requests_validate_ids_and_keys() {
    let server = TestServer::start();
    setup_players(&server, 100);
    let mut zero = bet("b1", "r1", 10);
    zero["player_id"] = json!(0);
    let (status, body) = server.post("/v1/wallet/bet", &zero);
    assert_error(status, &body, 400, "invalid_request");
    assert_eq!(body["field"], "player_id");
    for (field, value) in [
        ("transaction_id", json!("")),
        ("round_id", json!("x".repeat(129))),
        ("amount", json!(-1)),
        ("extra", json!(1)),
        // Printable ASCII only: one character is one byte, so the 128-character limit the
        // document states is the 128-byte limit the ledger keeps.
        ("transaction_id", json!("tx-é")),
        ("round_id", json!("r\n1")),
    ] {
        let mut request = bet("b1", "r1", 10);
        request[field] = value;
        let (status, body) = server.post("/v1/wallet/bet", &request);
        assert_error(status, &body, 400, "invalid_request");
    }
    let mut numeric = bet("b1", "r1", 10);
    numeric["transaction_id"] = json!(12345);
    let (status, body) = server.post("/v1/wallet/bet", &numeric);
    assert_eq!(
        (status, body["transaction_id"].clone()),
        (200, json!("12345")),
        "{body}"
    );
    let (status, body) = server.get("/v1/wallet/0/balance");
    assert_error(status, &body, 400, "invalid_path");
}

// --- concurrency and durability ------------------------------------------------------------------

#[test]
fn concurrent_single_transfer_requests_all_apply_exactly_once() {
    let server = TestServer::start();
    setup_players(&server, 0);
    let threads_count = 8u128;
    let per_thread = 50u128;
    std::thread::scope(|scope| {
        for thread in 0..threads_count {
            let server = &server;
            scope.spawn(move || {
                for n in 0..per_thread {
                    let id = 10_000 + thread * per_thread + n;
                    let (status, body) =
                        server.post("/v1/transfers", &json!([transfer(id, CLEARING, PLAYER, 1)]));
                    assert_eq!((status, results(&body)), (200, vec!["ok"]));
                }
            });
        }
    });
    assert_eq!(
        read_account(&server, PLAYER)["credits_posted"],
        (threads_count * per_thread) as u64
    );
}

#[test]
fn data_survives_a_restart() {
    let mut server = TestServer::start();
    setup_players(&server, 250);
    assert_eq!(server.post("/v1/wallet/bet", &bet("b1", "r1", 50)).0, 200);
    let before = read_account(&server, PLAYER);
    server.restart();
    assert_eq!(server.get("/healthz").0, 200);
    assert_eq!(read_account(&server, PLAYER), before);
    assert_eq!(server.get("/v1/transfers/900").0, 200);
    let retried = server.post(
        "/v1/transfers",
        &json!([transfer(900, CLEARING, PLAYER, 250)]),
    );
    assert_eq!(results(&retried.1), ["exists"]);
    let (status, body) = server.post("/v1/wallet/bet", &bet("b1", "r1", 50));
    assert_eq!(
        (status, body["balance"].clone()),
        (200, json!(200)),
        "original answer after restart"
    );
}

#[test]
fn a_node_without_peers_answers_cluster_routes_with_not_clustered() {
    let server = TestServer::start();
    let (status, body) = server.get("/v1/cluster/status");
    assert_error(status, &body, 404, "not_clustered");
    let (status, body) = server.post("/v1/cluster/leader", &serde_json::json!({"node_id": 2}));
    assert_error(status, &body, 404, "not_clustered");
    let (status, body) = server.post(
        "/v1/cluster/nodes",
        &serde_json::json!({"node_id": 0, "peer_addr": "127.0.0.1:1"}),
    );
    assert_error(status, &body, 400, "invalid_request");
    let (status, body) = server.post_raw(
        "/v1/cluster/nodes",
        "{\"node_id\":",
        Some("application/json"),
    );
    assert_eq!(status, 400, "{body}");
    // A node id of 0 is refused before the cluster is asked, as when adding one.
    let (status, body) = server.post("/v1/cluster/leader", &serde_json::json!({"node_id": 0}));
    assert_error(status, &body, 400, "invalid_request");
    // A bad node id in the path answers a JSON invalid_path (a segment that is not UTF-8 used
    // to get axum's plain-text rejection).
    for bad in ["0", "abc", "%2B5", "%FF", "18446744073709551616"] {
        let path = format!("/v1/cluster/nodes/{bad}");
        let (status, body) = server.request("DELETE", &path).call().status_json();
        assert_error(status, &body, 400, "invalid_path");
    }
    let answer = server.request("DELETE", "/v1/cluster/nodes/0002").call();
    assert_eq!(answer.status, 404, "{}", answer.text());
}

#[test]
fn reads_take_a_stale_or_linearizable_consistency_header_and_refuse_others() {
    let server = TestServer::start();
    server.post(
        "/v1/accounts",
        &serde_json::json!([{"id": 7, "ledger": "EUR", "kind": "clearing"}]),
    );
    for (value, expected) in [
        ("stale", 200),
        ("linearizable", 200),
        ("STALE", 200),
        ("fresh", 400),
    ] {
        let answer = server
            .request("GET", "/v1/accounts/7")
            .header("x-read-consistency", value)
            .call();
        assert_eq!(answer.status, expected, "{value}: {}", answer.text());
        if expected == 400 {
            assert_error(answer.status, &answer.json(), 400, "invalid_request");
        }
    }
}
