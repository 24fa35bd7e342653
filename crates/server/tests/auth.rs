//! Access control, checked from outside: a real node with a keys file, a real socket and a
//! plain HTTP client. Per role and per endpoint: allowed, refused without credentials (401),
//! refused for the wrong role (403), another player's objects (404); sessions that expire and
//! are revoked; signed provider calls, tampered and replayed.

use std::time::Duration;

use croupier_server::auth::keys::{KeysFile, Role};
use croupier_server::{start, ServeConfig};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

mod common;
use common::TestServer;

struct Keys {
    admin: String,
    finance: String,
    support: String,
    read_only: String,
    provider_id: String,
    provider_secret: String,
}

/// A node whose keys file holds one key of each kind.
struct Node {
    server: TestServer,
    keys: Keys,
}

fn make_keys(dir: &std::path::Path) -> Keys {
    let path = dir.join("keys.toml");
    let mut file = KeysFile::default();
    let admin = file.add_operator(Role::Admin, "ada");
    let finance = file.add_operator(Role::Finance, "fin");
    let support = file.add_operator(Role::Support, "sam");
    let read_only = file.add_operator(Role::ReadOnly, "rob");
    let (provider_id, provider_secret) = file.add_provider("studio");
    file.save(&path).unwrap();
    Keys {
        admin,
        finance,
        support,
        read_only,
        provider_id,
        provider_secret,
    }
}

impl Node {
    fn start(tune: impl FnOnce(&mut ServeConfig)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let keys = make_keys(dir.path());
        Node {
            server: TestServer::start_in(dir, tune),
            keys,
        }
    }

    /// GET and DELETE without a body; anything else a JSON body (empty when none is given).
    fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let call = self.server.request(method, path).bearer(bearer);
        let answer = match method {
            "GET" | "DELETE" => call.call(),
            _ => {
                let body = body.map(Value::to_string).unwrap_or_default();
                call.header("content-type", "application/json")
                    .send(body.as_bytes())
            }
        };
        answer.status_json()
    }

    /// A POST of `body` with an operator key or a session token.
    fn post_as(&self, bearer: &str, path: &str, body: &Value) -> (u16, Value) {
        self.call("POST", path, Some(bearer), Some(body))
    }

    /// A provider call signed with `secret` over `signed` (the body by default).
    fn signed(&self, path: &str, body: &str, key_id: &str, signature: &str) -> (u16, Value) {
        self.server
            .request("POST", path)
            .header("content-type", "application/json")
            .header("x-croupier-key", key_id)
            .header("x-croupier-signature", signature)
            .send(body.as_bytes())
            .status_json()
    }

    fn signed_get(&self, path: &str) -> (u16, Value) {
        let signature = sign(&self.keys.provider_secret, path, b"");
        self.server
            .request("GET", path)
            .header("x-croupier-key", &self.keys.provider_id)
            .header("x-croupier-signature", &signature)
            .call()
            .status_json()
    }

    fn create_player(&self, username: &str) -> String {
        let body = json!({"username": username, "password": "correct horse", "currencies": ["EUR", "USD"]});
        let (status, answer) = self.post_as(&self.keys.support, "/v1/players", &body);
        assert_eq!(status, 201, "{answer}");
        answer["player_id"].as_str().unwrap().to_string()
    }

    fn login(&self, username: &str) -> (u16, Value) {
        let body = json!({"username": username, "password": "correct horse"});
        self.call("POST", "/v1/players/login", None, Some(&body))
    }

    fn token(&self, username: &str) -> String {
        let (status, answer) = self.login(username);
        assert_eq!(status, 200, "{answer}");
        answer["token"].as_str().unwrap().to_string()
    }

    /// Funds a registered player's first wallet from a funding account (finance).
    fn fund(&self, player_id: &str, amount: u64) {
        let (_, me) = self.call(
            "GET",
            &format!("/v1/players/{player_id}"),
            Some(&self.keys.admin),
            None,
        );
        assert!(me["balances"].is_object(), "{me}");
        let wallet = wallet_of(player_id, 0);
        let accounts = json!([{"id": "9001", "ledger": "EUR", "kind": "system"}]);
        let (status, _) = self.post_as(&self.keys.finance, "/v1/accounts", &accounts);
        assert_eq!(status, 200);
        let transfer = json!([{"id": format!("{}", 7000 + amount), "debit_account_id": "9001", "credit_account_id": wallet.to_string(), "amount": amount, "ledger": "EUR"}]);
        let (status, answer) = self.post_as(&self.keys.finance, "/v1/transfers", &transfer);
        assert_eq!(
            (status, answer[0]["result"].as_str()),
            (200, Some("ok")),
            "{answer}"
        );
    }
}

/// A registered player's wallet account id (the derivation of `core::ids`).
fn wallet_of(player_id: &str, index: u64) -> u128 {
    let player: u128 = player_id.parse().unwrap();
    croupier_core::ids::player_wallet_account_id(player as u64, index as usize)
}

/// The provider signature: HMAC-SHA256 of the path and query, a newline, and the body.
fn sign(secret_hex: &str, path: &str, body: &[u8]) -> String {
    let secret = hex::decode(secret_hex).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn assert_error(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"], code, "{}", answer.1);
}

#[test]
fn operator_routes_answer_401_without_a_key_and_403_for_the_wrong_role() {
    let node = Node::start(|_| {});
    let accounts = json!([{"id": "1", "ledger": "EUR", "kind": "player"}]);
    assert_error(
        node.call("POST", "/v1/accounts", None, Some(&accounts)),
        401,
        "unauthorized",
    );
    assert_error(
        node.post_as("crk.op-nope.00", "/v1/accounts", &accounts),
        401,
        "unauthorized",
    );
    assert_error(
        node.post_as(&node.keys.read_only, "/v1/accounts", &accounts),
        403,
        "forbidden",
    );
    assert_error(
        node.post_as(&node.keys.support, "/v1/accounts", &accounts),
        403,
        "forbidden",
    );
    let (status, _) = node.post_as(&node.keys.finance, "/v1/accounts", &accounts);
    assert_eq!(status, 200);
    let (status, account) = node.call("GET", "/v1/accounts/1", Some(&node.keys.read_only), None);
    assert_eq!(status, 200, "{account}");
    assert_error(
        node.call("GET", "/v1/accounts/1", None, None),
        401,
        "unauthorized",
    );
    assert_error(
        node.call("GET", "/v1/events", None, None),
        401,
        "unauthorized",
    );
    assert_eq!(
        node.call("GET", "/v1/events", Some(&node.keys.read_only), None)
            .0,
        200
    );
    assert_error(
        node.call(
            "POST",
            "/v1/cluster/leader",
            Some(&node.keys.finance),
            Some(&json!({"node_id": 1})),
        ),
        403,
        "forbidden",
    );
    // Public routes stay public.
    assert_eq!(node.call("GET", "/healthz", None, None).0, 200);
    assert_eq!(node.call("GET", "/v1/openapi.json", None, None).0, 200);
}

#[test]
fn only_finance_may_debit_a_house_account_with_a_plain_transfer() {
    let node = Node::start(|_| {});
    let house =
        croupier_core::ids::house_account_id(croupier_core::LedgerCode::parse("EUR").unwrap());
    let accounts = json!([{"id": "5", "ledger": "EUR", "kind": "system"}]);
    assert_eq!(
        node.post_as(&node.keys.admin, "/v1/accounts", &accounts).0,
        200
    );
    let transfer = json!([{"id": "77", "debit_account_id": house.to_string(), "credit_account_id": "5", "amount": 1, "ledger": "EUR"}]);
    assert_error(
        node.post_as(&node.keys.admin, "/v1/transfers", &transfer),
        403,
        "house_debit_requires_finance",
    );
    let (status, answer) = node.post_as(&node.keys.finance, "/v1/transfers", &transfer);
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn a_player_sees_its_own_wallets_and_gets_404_for_anyone_elses() {
    let node = Node::start(|_| {});
    let alice = node.create_player("Alice");
    let bob = node.create_player("bob");
    node.fund(&alice, 500);
    let token = node.token("alice");
    let (status, me) = node.call("GET", "/v1/players/me", Some(&token), None);
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me,
        json!({"player_id": alice, "username": "alice", "balances": {"EUR": 500, "USD": 0}})
    );
    let (status, balance) = node.call(
        "GET",
        &format!("/v1/wallet/{alice}/balance"),
        Some(&token),
        None,
    );
    assert_eq!(
        (status, &balance["balance"]),
        (200, &json!(500)),
        "{balance}"
    );
    assert_eq!(balance["ledger"], "EUR");
    let (_, usd) = node.call(
        "GET",
        &format!("/v1/wallet/{alice}/balance?ledger=USD"),
        Some(&token),
        None,
    );
    assert_eq!(usd["balance"], 0);
    assert_error(
        node.call(
            "GET",
            &format!("/v1/wallet/{bob}/balance"),
            Some(&token),
            None,
        ),
        404,
        "player_not_found",
    );
    assert_error(
        node.call("GET", &format!("/v1/players/{bob}"), Some(&token), None),
        404,
        "player_not_found",
    );
    let bobs_wallet = wallet_of(&bob, 0);
    assert_error(
        node.call(
            "GET",
            &format!("/v1/accounts/{bobs_wallet}"),
            Some(&token),
            None,
        ),
        404,
        "account_not_found",
    );
    let own_wallet = wallet_of(&alice, 0);
    assert_eq!(
        node.call(
            "GET",
            &format!("/v1/accounts/{own_wallet}"),
            Some(&token),
            None
        )
        .0,
        200
    );
    assert_eq!(
        node.call(
            "GET",
            &format!("/v1/accounts/{own_wallet}/transfers"),
            Some(&token),
            None
        )
        .0,
        200
    );
    // A player may not move money or read operator data, whatever it names.
    let bet = json!({"transaction_id": "t1", "player_id": alice, "round_id": "r1", "amount": 5, "ledger": "EUR"});
    assert_error(
        node.post_as(&token, "/v1/wallet/bet", &bet),
        403,
        "forbidden",
    );
    assert_error(
        node.call("POST", "/v1/transfers", Some(&token), Some(&json!([]))),
        403,
        "forbidden",
    );
    assert_error(
        node.call("GET", "/v1/events", Some(&token), None),
        403,
        "forbidden",
    );
    // Operators and providers see any player.
    assert_eq!(
        node.call(
            "GET",
            &format!("/v1/wallet/{bob}/balance"),
            Some(&node.keys.read_only),
            None
        )
        .0,
        200
    );
    assert_eq!(node.signed_get(&format!("/v1/wallet/{bob}/balance")).0, 200);
}

#[test]
fn login_refuses_a_wrong_password_and_usernames_are_unique() {
    let node = Node::start(|_| {});
    node.create_player("carol");
    let wrong = json!({"username": "carol", "password": "not the one"});
    assert_error(
        node.call("POST", "/v1/players/login", None, Some(&wrong)),
        401,
        "invalid_credentials",
    );
    let unknown = json!({"username": "nobody", "password": "correct horse"});
    assert_error(
        node.call("POST", "/v1/players/login", None, Some(&unknown)),
        401,
        "invalid_credentials",
    );
    let again = json!({"username": "CAROL", "password": "correct horse", "currencies": ["EUR"]});
    assert_error(
        node.post_as(&node.keys.admin, "/v1/players", &again),
        409,
        "username_taken",
    );
    let short = json!({"username": "dave", "password": "short", "currencies": ["EUR"]});
    assert_error(
        node.post_as(&node.keys.admin, "/v1/players", &short),
        400,
        "invalid_request",
    );
    let (status, login) = node.login("carol");
    assert_eq!(status, 200, "{login}");
    assert!(
        login["expires_at"].as_str().unwrap().ends_with('Z'),
        "{login}"
    );
}

#[test]
fn logout_and_revocation_end_sessions_and_sessions_expire() {
    let node = Node::start(|config| config.auth.session_ttl_s = 2);
    let erin = node.create_player("erin");
    let first = node.token("erin");
    let second = node.token("erin");
    assert_eq!(
        node.call("POST", "/v1/players/logout", Some(&first), None)
            .0,
        200
    );
    assert_error(
        node.call("GET", "/v1/players/me", Some(&first), None),
        401,
        "unauthorized",
    );
    assert_eq!(
        node.call("GET", "/v1/players/me", Some(&second), None).0,
        200
    );
    let (status, revoked) = node.call(
        "DELETE",
        &format!("/v1/players/{erin}/sessions"),
        Some(&node.keys.support),
        None,
    );
    assert_eq!(
        (status, &revoked["sessions_closed"]),
        (200, &json!(1)),
        "{revoked}"
    );
    assert_error(
        node.call("GET", "/v1/players/me", Some(&second), None),
        401,
        "unauthorized",
    );
    let third = node.token("erin");
    assert_eq!(
        node.call("GET", "/v1/players/me", Some(&third), None).0,
        200
    );
    std::thread::sleep(Duration::from_millis(2_200));
    assert_error(
        node.call("GET", "/v1/players/me", Some(&third), None),
        401,
        "unauthorized",
    );
}

#[test]
fn provider_calls_must_be_signed_and_a_replay_changes_nothing() {
    let node = Node::start(|_| {});
    let frank = node.create_player("frank");
    node.fund(&frank, 100);
    let body = json!({"transaction_id": "bet-1", "player_id": frank, "round_id": "r1", "amount": 30, "ledger": "EUR"}).to_string();
    let id = node.keys.provider_id.clone();
    let good = sign(
        &node.keys.provider_secret,
        "/v1/wallet/bet",
        body.as_bytes(),
    );
    // Unsigned, tampered body, wrong key, unknown provider: refused, nothing moves.
    assert_error(
        node.call(
            "POST",
            "/v1/wallet/bet",
            None,
            Some(&serde_json::from_str(&body).unwrap()),
        ),
        401,
        "unauthorized",
    );
    let tampered = body.replace("30", "90");
    assert_error(
        node.signed("/v1/wallet/bet", &tampered, &id, &good),
        401,
        "unauthorized",
    );
    let forged = sign(&"11".repeat(32), "/v1/wallet/bet", body.as_bytes());
    // A bet's body and signature sent to the win route: the path is signed too.
    assert_error(
        node.signed("/v1/wallet/win", &body, &id, &good),
        401,
        "unauthorized",
    );
    assert_error(
        node.signed("/v1/wallet/bet", &body, &id, &forged),
        401,
        "unauthorized",
    );
    assert_error(
        node.signed("/v1/wallet/bet", &body, "pv-unknown", &good),
        401,
        "unauthorized",
    );
    let (_, before) = node.signed_get(&format!("/v1/wallet/{frank}/balance"));
    assert_eq!(before["balance"], 100);
    // Signed: accepted once; the same signed request replayed answers the same and moves nothing.
    let (status, first) = node.signed("/v1/wallet/bet", &body, &id, &good);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["balance"], 70);
    let (status, replay) = node.signed("/v1/wallet/bet", &body, &id, &good);
    assert_eq!((status, &replay), (200, &first));
    let (_, after) = node.signed_get(&format!("/v1/wallet/{frank}/balance"));
    assert_eq!(after["balance"], 70);
    // Two kinds of credentials at once are refused, whichever of them is valid: the balance
    // route takes an operator key or a provider signature, and used to serve a request with
    // a valid operator key beside a bogus provider key as the operator's.
    let path = format!("/v1/wallet/{frank}/balance");
    for (key_id, admin) in [
        ("pv-unknown", &node.keys.admin),
        (id.as_str(), &node.keys.admin),
    ] {
        let answer = node
            .server
            .request("GET", &path)
            .bearer(Some(admin))
            .header("x-croupier-key", key_id)
            .header(
                "x-croupier-signature",
                &sign(&node.keys.provider_secret, &path, b""),
            )
            .call();
        assert_error(answer.status_json(), 401, "unauthorized");
    }
    // Operators may not place bets for providers.
    let value: Value = serde_json::from_str(&body).unwrap();
    assert_error(
        node.post_as(&node.keys.admin, "/v1/wallet/bet", &value),
        403,
        "forbidden",
    );
}

#[test]
fn a_revoked_key_is_refused_without_a_restart() {
    let node = Node::start(|_| {});
    assert_eq!(
        node.call("GET", "/v1/events", Some(&node.keys.read_only), None)
            .0,
        200
    );
    let path = node.server.dir().join("keys.toml");
    let mut file = KeysFile::load(&path).unwrap();
    let id = node.keys.read_only.split('.').nth(1).unwrap().to_string();
    file.revoke(&id).unwrap();
    // Modification times can be coarse: make sure the reload sees a change.
    std::thread::sleep(Duration::from_millis(20));
    file.save(&path).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = node
            .call("GET", "/v1/events", Some(&node.keys.read_only), None)
            .0;
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        node.call("GET", "/v1/events", Some(&node.keys.admin), None)
            .0,
        200
    );
}

#[test]
fn login_attempts_past_the_limit_answer_429_with_retry_after() {
    let node = Node::start(|config| config.auth.limits.login_per_username_per_min = 3);
    node.create_player("gina");
    let wrong = json!({"username": "gina", "password": "wrong password"});
    for _ in 0..3 {
        assert_error(
            node.call("POST", "/v1/players/login", None, Some(&wrong)),
            401,
            "invalid_credentials",
        );
    }
    let answer = node
        .server
        .request("POST", "/v1/players/login")
        .header("content-type", "application/json")
        .send(
            json!({"username": "gina", "password": "correct horse"})
                .to_string()
                .as_bytes(),
        );
    assert_eq!(answer.status, 429);
    let retry_after: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(answer.json()["error"], "rate_limited");
}

#[test]
fn a_node_without_an_operator_key_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = ServeConfig::new(dir.path(), "0.0.0.0:0".parse().unwrap());
    let refused = runtime.block_on(start(config));
    let Err(error) = refused else {
        panic!("started without a key on 0.0.0.0")
    };
    assert!(
        error.to_string().contains("without an operator key"),
        "{error}"
    );
    // With a key, the same address is fine.
    make_keys(dir.path());
    let config = ServeConfig::new(dir.path(), "0.0.0.0:0".parse().unwrap());
    let server = runtime.block_on(start(config)).expect("starts with a key");
    assert!(!server.protected_mode());
    runtime.block_on(server.shutdown()).unwrap();
}

/// Who calls, in the matrix below.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Nobody,
    Admin,
    Finance,
    Support,
    ReadOnly,
    Provider,
    Player,
}

const EVERYONE: [Who; 7] = [
    Who::Nobody,
    Who::Admin,
    Who::Finance,
    Who::Support,
    Who::ReadOnly,
    Who::Provider,
    Who::Player,
];
const OPERATORS: &[Who] = &[Who::Admin, Who::Finance, Who::Support, Who::ReadOnly];

impl Node {
    /// One request as `who`: a bearer key or token, a signature, or nothing.
    fn call_as(
        &self,
        who: Who,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> u16 {
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = self.server.request(method, path);
        let bearer = match who {
            Who::Admin => Some(self.keys.admin.as_str()),
            Who::Finance => Some(self.keys.finance.as_str()),
            Who::Support => Some(self.keys.support.as_str()),
            Who::ReadOnly => Some(self.keys.read_only.as_str()),
            Who::Player => Some(token),
            Who::Nobody | Who::Provider => None,
        };
        request = request.bearer(bearer);
        if who == Who::Provider {
            request = request
                .header("x-croupier-key", &self.keys.provider_id)
                .header(
                    "x-croupier-signature",
                    &sign(&self.keys.provider_secret, path, text.as_bytes()),
                );
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        // Always a body, empty for a GET, as this matrix has always sent it.
        request.send(text.as_bytes()).status
    }
}

#[test]
fn every_route_answers_each_kind_of_caller_as_its_policy_says() {
    let node = Node::start(|config| config.auth.limits.per_player_per_s = 0);
    let alice = node.create_player("alice");
    let bob = node.create_player("bob");
    let token = node.token("alice");
    let wallet = wallet_of(&alice, 0).to_string();
    let bet = json!({"transaction_id": "m1", "player_id": alice, "round_id": "r", "amount": 1, "ledger": "EUR"});
    let rollback = json!({"transaction_id": "m2", "player_id": alice, "round_id": "r", "rolled_back_transaction_id": "m1"});
    let accounts = json!([{"id": "1", "ledger": "EUR", "kind": "system"}]);
    let transfers = json!([{"id": "5", "debit_account_id": "1", "credit_account_id": wallet, "amount": 1, "ledger": "EUR"}]);
    let new_player =
        json!({"username": "carl", "password": "correct horse", "currencies": ["EUR"]});
    let login = json!({"username": "alice", "password": "correct horse"});
    let table_bet =
        json!({"bet_id": 1, "round_id": 4294967297u64, "spots": [{"bet": "red", "amount": 1}]});
    let table_config = json!({"game": "money-wheel", "currency": "EUR"});
    let leader = json!({"node_id": 1});
    let new_node = json!({"node_id": 4, "peer_addr": "127.0.0.1:1", "api_addr": "127.0.0.1:2"});
    let player_path = format!("/v1/players/{alice}");
    let sessions_path = format!("/v1/players/{bob}/sessions");
    let balance_path = format!("/v1/wallet/{alice}/balance");
    let account_path = format!("/v1/accounts/{wallet}");
    let account_transfers = format!("/v1/accounts/{wallet}/transfers");
    let operators_and_player: Vec<Who> = OPERATORS.iter().copied().chain([Who::Player]).collect();
    let balance_readers: Vec<Who> = operators_and_player
        .iter()
        .copied()
        .chain([Who::Provider])
        .collect();
    let routes: Vec<(&str, &str, Option<&Value>, Vec<Who>)> = vec![
        ("GET", "/healthz", None, EVERYONE.to_vec()),
        ("GET", "/metrics", None, EVERYONE.to_vec()),
        ("GET", "/v1/openapi.json", None, EVERYONE.to_vec()),
        // The web UI's pages and files: a browser fetches them before it has credentials.
        ("GET", "/", None, EVERYONE.to_vec()),
        ("GET", "/console", None, EVERYONE.to_vec()),
        ("GET", "/ui/player.js", None, EVERYONE.to_vec()),
        ("POST", "/v1/players/login", Some(&login), EVERYONE.to_vec()),
        (
            "POST",
            "/v1/accounts",
            Some(&accounts),
            vec![Who::Admin, Who::Finance],
        ),
        (
            "POST",
            "/v1/transfers",
            Some(&transfers),
            vec![Who::Admin, Who::Finance],
        ),
        ("GET", &account_path, None, operators_and_player.clone()),
        (
            "GET",
            &account_transfers,
            None,
            operators_and_player.clone(),
        ),
        ("GET", "/v1/transfers/5", None, operators_and_player.clone()),
        ("GET", "/v1/ledgers/EUR/house", None, OPERATORS.to_vec()),
        ("POST", "/v1/wallet/bet", Some(&bet), vec![Who::Provider]),
        ("POST", "/v1/wallet/win", Some(&bet), vec![Who::Provider]),
        (
            "POST",
            "/v1/wallet/rollback",
            Some(&rollback),
            vec![Who::Provider],
        ),
        ("GET", &balance_path, None, balance_readers),
        ("GET", "/v1/events", None, OPERATORS.to_vec()),
        ("GET", "/v1/audit/operators", None, OPERATORS.to_vec()),
        (
            "GET",
            "/v1/certification?seed=000102030405060708090a0b0c0d0e0f",
            None,
            vec![Who::Admin, Who::ReadOnly],
        ),
        ("GET", "/v1/cluster/status", None, OPERATORS.to_vec()),
        (
            "POST",
            "/v1/cluster/leader",
            Some(&leader),
            vec![Who::Admin],
        ),
        (
            "POST",
            "/v1/cluster/nodes",
            Some(&new_node),
            vec![Who::Admin],
        ),
        ("DELETE", "/v1/cluster/nodes/4", None, vec![Who::Admin]),
        (
            "POST",
            "/v1/players",
            Some(&new_player),
            vec![Who::Admin, Who::Support],
        ),
        ("GET", &player_path, None, operators_and_player.clone()),
        (
            "DELETE",
            &sessions_path,
            None,
            vec![Who::Admin, Who::Support, Who::Player],
        ),
        ("GET", "/v1/players/me", None, vec![Who::Player]),
        ("GET", "/v1/tables", None, operators_and_player.clone()),
        ("PUT", "/v1/tables/1", Some(&table_config), vec![Who::Admin]),
        (
            "POST",
            "/v1/tables/1/bets",
            Some(&table_bet),
            vec![Who::Player],
        ),
        (
            "GET",
            "/v1/tables/1/rounds",
            None,
            operators_and_player.clone(),
        ),
        (
            "GET",
            "/v1/rounds/4294967297",
            None,
            operators_and_player.clone(),
        ),
        // Anyone may watch a table; a player's token adds their own results.
        ("GET", "/v1/live?table=1", None, EVERYONE.to_vec()),
    ];
    for (method, path, body, allowed) in &routes {
        for who in EVERYONE {
            let status = node.call_as(who, &token, method, path, *body);
            let expected_refusal = match who {
                _ if allowed.contains(&who) => None,
                Who::Nobody => Some(401),
                _ => Some(403),
            };
            match expected_refusal {
                Some(refusal) => assert_eq!(status, refusal, "{who:?} {method} {path}"),
                None => assert!(
                    status != 401 && status != 403 && status < 500,
                    "{who:?} {method} {path}: {status}"
                ),
            }
        }
    }
}

/// The id part of an operator key `crk.<id>.<secret>`.
fn key_id(key: &str) -> &str {
    key.split('.').nth(1).unwrap()
}

#[test]
fn every_operator_write_is_in_the_hash_chained_audit_trail() {
    let node = Node::start(|_| {});
    let player = node.create_player("audited");
    node.fund(&player, 500);
    let (status, trail) = node.call(
        "GET",
        "/v1/audit/operators",
        Some(&node.keys.read_only),
        None,
    );
    assert_eq!(status, 200, "{trail}");
    let actions = trail["actions"].as_array().unwrap();
    let who_what: Vec<(&str, &str, u64, u64)> = actions
        .iter()
        .map(|a| {
            let items = a["items"].as_u64().unwrap();
            let transfers = a["transfers"].as_u64().unwrap();
            (
                a["key_id"].as_str().unwrap(),
                a["action"].as_str().unwrap(),
                items,
                transfers,
            )
        })
        .collect();
    let (support, finance) = (key_id(&node.keys.support), key_id(&node.keys.finance));
    assert_eq!(
        who_what,
        [
            (support, "create_player", 1, 0),
            (finance, "create_accounts", 1, 0),
            (finance, "create_transfers", 1, 1),
        ]
    );
    assert_eq!(actions[0]["subject"], player.as_str());
    assert_eq!(actions[2]["subject"], "7500");
    // Each action names its predecessor's hash; the trail's head is the last one's.
    let mut prev = "0".repeat(64);
    for (seq, action) in actions.iter().enumerate() {
        assert_eq!(action["seq"], seq as u64);
        assert_eq!(action["prev_hash"], prev.as_str());
        assert!(action["timestamp"].as_u64().is_some_and(|t| t > 0));
        prev = action["hash"].as_str().unwrap().to_string();
    }
    assert_eq!(
        (trail["count"].as_u64(), trail["head"].as_str()),
        (Some(3), Some(prev.as_str()))
    );
    assert!(trail.get("next").is_none(), "{trail}");

    let (_, page) = node.call(
        "GET",
        "/v1/audit/operators?from=1&limit=1",
        Some(&node.keys.admin),
        None,
    );
    assert_eq!(
        (page["actions"][0]["seq"].as_u64(), page["next"].as_u64()),
        (Some(1), Some(2))
    );
    // Regression: a page starting at the last u64 overflowed while reading it (a 500).
    let (status, past) = node.call(
        "GET",
        "/v1/audit/operators?from=18446744073709551615&limit=1",
        Some(&node.keys.admin),
        None,
    );
    assert_eq!(
        (status, past["actions"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{past}"
    );
    // The same actions are events of the committed feed.
    let (_, events) = node.call("GET", "/v1/events?limit=1000", Some(&node.keys.admin), None);
    let audited = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "operator_action");
    assert_eq!(audited.count(), 3);

    let token = node.token("audited");
    assert_error(
        node.call("GET", "/v1/audit/operators", Some(&token), None),
        403,
        "forbidden",
    );
    assert_error(
        node.call("GET", "/v1/audit/operators", None, None),
        401,
        "unauthorized",
    );
    for bad in ["?limit=0", "?limit=1001", "?from=x", "?from=-1", "?key=1"] {
        let answer = node.call(
            "GET",
            &format!("/v1/audit/operators{bad}"),
            Some(&node.keys.admin),
            None,
        );
        assert_error(answer, 400, "invalid_query");
    }
}
