//! `croupier serve --demo` as a first-time user runs it: four live tables (one of them a
//! live-studio roulette whose results come signed from the demo's studio console), alice can
//! log in with `demo` and holds 1,000.00 EUR, the bots' bets land in rounds that settle, and a
//! restart on the same data directory seeds nothing twice and keeps the studio's key.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// A demo round lasts about 13 s (12 s window, then draw and settlement).
const SETTLED_ROUND_TIMEOUT: Duration = Duration::from_secs(90);
const FUNDS: u64 = 100_000;
const CASHIER: &str = "9100000";

mod common;
use common::Api;

/// The demo process; killed when dropped, so a failing test leaves no server behind.
struct Demo {
    child: Child,
    api: Api,
    admin_key: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// Starts `serve --demo` on port 0 and waits for its "ready" line (the address and the
    /// admin key come from the start-up output, as a person reads them).
    fn start(data_dir: &Path, log_name: &str) -> Demo {
        let log_path = data_dir.parent().unwrap().join(log_name);
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
            .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info,openraft=error")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn croupier serve --demo");
        let mut demo = Demo {
            child,
            api: Api::new(""),
            admin_key: String::new(),
        };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(ready) = text.lines().find(|l| l.contains("demo: open the casino")) {
                demo.api = Api::new(field(ready, "url=").trim_end_matches('/'));
                demo.admin_key = field(ready, "admin_key=").to_string();
                assert!(text.contains("DEMO MODE"), "the demo says so: {text}");
                assert!(text.contains("demo casino is ready"), "{text}");
                return demo;
            }
            if let Some(status) = demo.child.try_wait().unwrap() {
                panic!("serve --demo exited with {status}: {text}");
            }
            assert!(Instant::now() < deadline, "no demo ready line: {text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        assert_eq!(method == "GET", body.is_none(), "GET, or POST with a body");
        self.api.call(path, token, body.as_ref()).expect("request")
    }

    fn operator_get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, Some(&self.admin_key), None);
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    fn login(&self, username: &str) -> String {
        let body = json!({"username": username, "password": "demo"});
        let (status, session) = self.call("POST", "/v1/players/login", None, Some(body));
        assert_eq!(status, 200, "{username} logs in with `demo`: {session}");
        session["token"].as_str().unwrap().to_string()
    }

    fn balance(&self, token: &str) -> u64 {
        let (status, me) = self.call("GET", "/v1/players/me", Some(token), None);
        assert_eq!(status, 200, "{me}");
        me["balances"]["EUR"].as_u64().expect("an EUR balance")
    }

    /// Stops the demo as an operator does (SIGTERM) and waits for a clean exit.
    fn stop(mut self) {
        common::stop(&mut self.child);
    }
}

/// The value of `name` in a log line (`name=value`, up to the next space).
fn field<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(name)
        .unwrap_or_else(|| panic!("{name} in {line}"))
        + name.len();
    line[start..].split_whitespace().next().unwrap()
}

/// A finished round with bets from the bots, on any table.
fn settled_round_with_bets(demo: &Demo, alice: &str) -> Option<Value> {
    (1..=3).find_map(|table| {
        let recall = demo.operator_get(&format!("/v1/tables/{table}/rounds?limit=11"));
        recall["rounds"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|round| {
                let bets = round["bets"].as_array().unwrap();
                let bots_bet = bets.iter().any(|bet| bet["player_id"] != alice);
                (round["state"] == "settled" && bots_bet).then(|| round.clone())
            })
    })
}

#[test]
fn the_demo_seeds_once_and_its_bots_play() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let demo = Demo::start(&data_dir, "first.log");

    let alice = demo.login("alice");
    assert_eq!(
        demo.balance(&alice),
        FUNDS,
        "alice starts with 1,000.00 EUR"
    );
    let (status, tables) = demo.call("GET", "/v1/tables", Some(&alice), None);
    assert_eq!(status, 200, "{tables}");
    let mut games: Vec<&str> = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["game"].as_str().unwrap())
        .collect();
    games.sort_unstable();
    assert_eq!(
        games,
        ["game-show-wheel", "money-wheel", "roulette", "roulette"]
    );
    let studio_key = tables[3]["studio"]["public_key"].clone();
    assert!(
        studio_key.is_string(),
        "table 4 is a studio table: {tables}"
    );
    assert!(tables
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["currency"] == "EUR"));

    let (_, me) = demo.call("GET", "/v1/players/me", Some(&alice), None);
    let alice_id = me["player_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + SETTLED_ROUND_TIMEOUT;
    let round = loop {
        if let Some(round) = settled_round_with_bets(&demo, &alice_id) {
            break round;
        }
        assert!(
            Instant::now() < deadline,
            "no settled round with the bots' bets"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        round["bets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|bet| bet["paid"].is_u64()),
        "every bet of a settled round is paid (perhaps 0): {round}"
    );
    let cashier = demo.operator_get(&format!("/v1/accounts/{CASHIER}"));
    assert_eq!(
        cashier["debits_posted"],
        8 * FUNDS,
        "alice, bob and six bots credited once"
    );
    let studio_round = wait_for_studio_result(&demo);
    assert_eq!(studio_round["studio_public_key"], studio_key);
    demo.stop();

    let again = Demo::start(&data_dir, "second.log");
    assert_eq!(
        again.admin_key,
        demo_key(&data_dir),
        "the saved demo key is reused"
    );
    let alice = again.login("alice");
    assert_eq!(
        again.balance(&alice),
        FUNDS,
        "a restart credits nothing twice"
    );
    let bob = again.login("bob");
    assert_eq!(again.balance(&bob), FUNDS);
    let cashier = again.operator_get(&format!("/v1/accounts/{CASHIER}"));
    assert_eq!(cashier["debits_posted"], 8 * FUNDS);
    let tables = again.operator_get("/v1/tables");
    assert_eq!(
        tables[3]["studio"]["public_key"], studio_key,
        "the saved studio key is reused"
    );
    again.stop();
}

/// A settled round of the studio table, drawn from the demo studio's signed result.
fn wait_for_studio_result(demo: &Demo) -> Value {
    let deadline = Instant::now() + SETTLED_ROUND_TIMEOUT;
    loop {
        let recall = demo.operator_get("/v1/tables/4/rounds?limit=11");
        let studio_round = recall["rounds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|round| round["state"] == "settled" && round["studio_signature"].is_string());
        if let Some(round) = studio_round {
            assert_eq!(round["source"], "studio");
            return round.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no studio round settled: {recall}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn demo_key(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("demo-admin.key"))
        .unwrap()
        .trim()
        .to_string()
}
