//! Kills `croupier serve` with SIGKILL while clients are writing, restarts it, and checks that
//! every acknowledged transfer survived and that nothing was applied twice.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;
use common::{free_port, Api, Node};

const CLEARING: u128 = 1;
const TARGETS: u128 = 8;
const CLIENTS: u128 = 16;
const CYCLES: u128 = 3;
/// Acknowledged writes to wait for in a cycle before pulling the plug.
const ACKS_BEFORE_KILL_MIN: usize = 1_000;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

fn spawn_server(data_dir: &Path, port: u16, log_name: &str) -> Node {
    let log = data_dir.parent().unwrap().join(log_name);
    common::serve(
        &[OsStr::new("--data-dir"), data_dir.as_os_str()],
        port,
        &log,
        STARTUP_TIMEOUT,
    )
}

fn amount_of(id: u128) -> u64 {
    (id % 7) as u64 + 1
}

fn target_of(id: u128) -> u128 {
    100 + id % TARGETS
}

fn transfer(id: u128) -> Value {
    json!({"id": id.to_string(), "debit_account_id": CLEARING.to_string(),
           "credit_account_id": target_of(id).to_string(), "amount": amount_of(id), "ledger": "EUR"})
}

/// What one cycle's clients did: every id they sent and the ids acknowledged "ok".
#[derive(Default)]
struct Sent {
    all: Vec<u128>,
    acked: Vec<u128>,
}

/// Clients write single transfers (and some pairs) until the server dies under them.
fn write_until_killed(port: u16, cycle: u128, server: &mut Node) -> Sent {
    let sent = Mutex::new(Sent::default());
    let acks = AtomicUsize::new(0);
    let killed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (sent, acks, killed) = (&sent, &acks, &killed);
            scope.spawn(move || {
                let api = Api::on_port(port);
                let mut n = 0u128;
                while !killed.load(Ordering::SeqCst) || n == 0 {
                    let first = (cycle * 100 + client + 1) * 1_000_000 + n;
                    // Every fifth request carries two transfers.
                    let ids: Vec<u128> = match n % 5 {
                        0 => vec![first, first + 1],
                        _ => vec![first],
                    };
                    n += ids.len() as u128;
                    sent.lock().unwrap().all.extend(&ids);
                    let body = Value::Array(ids.iter().map(|&id| transfer(id)).collect());
                    match api.post("/v1/transfers", &body) {
                        Some((200, answer)) => {
                            let results = answer.as_array().expect("array");
                            assert_eq!(results.len(), ids.len());
                            for (id, result) in ids.iter().zip(results) {
                                assert_eq!(result["result"], "ok", "fresh id {id} refused");
                                sent.lock().unwrap().acked.push(*id);
                            }
                            acks.fetch_add(ids.len(), Ordering::SeqCst);
                        }
                        Some((status, answer)) => panic!("unexpected {status}: {answer}"),
                        None => break, // the server is gone
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while acks.load(Ordering::SeqCst) < ACKS_BEFORE_KILL_MIN {
            assert!(Instant::now() < deadline, "clients made no progress");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(150 + 100 * cycle as u64));
        server.child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on unix
        killed.store(true, Ordering::SeqCst);
        server.child.wait().expect("reap");
    });
    sent.into_inner().unwrap()
}

#[test]
fn acknowledged_transfers_survive_sigkill_and_nothing_applies_twice() {
    let root = tempfile::tempdir().expect("temp dir");
    let data_dir = root.path().join("data");
    let mut port = free_port();
    let mut server = spawn_server(&data_dir, port, "serve-0.log");
    let mut api = Api::on_port(port);

    let mut accounts = vec![json!({"id": CLEARING, "ledger": "EUR", "kind": "clearing"})];
    accounts
        .extend((0..TARGETS).map(|i| json!({"id": 100 + i, "ledger": "EUR", "kind": "system"})));
    let (status, _) = api
        .post("/v1/accounts", &Value::Array(accounts))
        .expect("create accounts");
    assert_eq!(status, 200);

    let mut all_sent = Vec::new();
    for cycle in 0..CYCLES {
        let sent = write_until_killed(port, cycle, &mut server);
        assert!(sent.acked.len() >= ACKS_BEFORE_KILL_MIN);
        eprintln!(
            "cycle {cycle}: {} transfers sent, {} acknowledged before SIGKILL",
            sent.all.len(),
            sent.acked.len()
        );

        port = free_port();
        server = spawn_server(&data_dir, port, &format!("serve-{}.log", cycle + 1));
        api = Api::on_port(port);
        for &id in &sent.acked {
            let (status, stored) = api
                .get(&format!("/v1/transfers/{id}"))
                .expect("GET transfer");
            assert_eq!(
                status, 200,
                "acknowledged transfer {id} lost in cycle {cycle}"
            );
            assert_eq!(stored["amount"], amount_of(id));
        }
        all_sent.extend(sent.all);
    }

    // Every transfer sent, acknowledged or not, is resent: each answers ok (never applied
    // before) or exists (applied once), and the balances then count each exactly once.
    for chunk in all_sent.chunks(500) {
        let body = Value::Array(chunk.iter().map(|&id| transfer(id)).collect());
        let (status, answer) = api.post("/v1/transfers", &body).expect("resend");
        assert_eq!(status, 200, "{answer}");
        for (id, item) in chunk.iter().zip(answer.as_array().expect("array")) {
            let result = item["result"].as_str().unwrap_or_default();
            assert!(
                result == "ok" || result == "exists",
                "transfer {id} answered {result}"
            );
        }
    }
    let mut expected: BTreeMap<u128, u64> = BTreeMap::new();
    for &id in &all_sent {
        *expected.entry(target_of(id)).or_default() += amount_of(id);
    }
    let mut total = 0u64;
    for (target, credits) in expected {
        let (status, account) = api
            .get(&format!("/v1/accounts/{target}"))
            .expect("GET account");
        assert_eq!(status, 200);
        assert_eq!(account["credits_posted"], credits, "account {target}");
        total += credits;
    }
    let (_, clearing) = api
        .get(&format!("/v1/accounts/{CLEARING}"))
        .expect("GET clearing");
    assert_eq!(clearing["debits_posted"], total);
}

#[test]
fn sigterm_drains_and_exits_zero_keeping_the_data() {
    let root = tempfile::tempdir().expect("temp dir");
    let data_dir = root.path().join("data");
    let port = free_port();
    let mut server = spawn_server(&data_dir, port, "term-0.log");
    let api = Api::on_port(port);
    let accounts = json!([{"id": CLEARING, "ledger": "EUR", "kind": "clearing"},
                          {"id": target_of(7), "ledger": "EUR", "kind": "system"}]);
    assert_eq!(
        api.post("/v1/accounts", &accounts).expect("accounts").0,
        200
    );
    let (status, answer) = api
        .post("/v1/transfers", &json!([transfer(7)]))
        .expect("transfer");
    assert_eq!((status, answer[0]["result"].clone()), (200, json!("ok")));

    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().expect("try_wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit}");

    let port = free_port();
    let server = spawn_server(&data_dir, port, "term-1.log");
    let (status, stored) = server.api.get("/v1/transfers/7").expect("GET");
    assert_eq!(
        (status, stored["amount"].clone()),
        (200, json!(amount_of(7)))
    );
}
