//! Outbound webhooks end to end, every part its own process or thread: a sandbox bank, a
//! `croupier serve` node with a `[[webhooks.endpoints]]`, and a receiver standing for the
//! operator's system. Every deposit change reaches the receiver signed with the endpoint's
//! secret; a failed send is retried with the same event id; a refused one is logged and can
//! be replayed; the delivery log outlives a restart, and a clean restart sends nothing twice.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, serve, Api, SandboxProcess};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "whsec-0123456789abcdef";

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Received {
    event_id: String,
    attempt: u32,
    signature_ok: bool,
    body: Value,
    answered: u16,
}

/// The operator's system: answers 503 to the first send of each event, 200 after; 400 to a
/// rejected deposit's event until `accept_all`.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
    accept_all: Arc<AtomicBool>,
}

impl Receiver {
    fn start(&self) -> u16 {
        let receiver = self.clone();
        common::receiver::listen(move |headers, body| receiver.answer(headers, body))
    }

    fn answer(&self, headers: &common::receiver::Headers, body: &[u8]) -> u16 {
        let header = |name: &str| {
            common::receiver::header(headers, name)
                .unwrap_or_default()
                .to_string()
        };
        let timestamp = header("croupier-webhook-timestamp");
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(body);
        let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        let event_id = header("croupier-webhook-id");
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut received = self.received.lock().unwrap();
        let seen_before = received.iter().any(|r| r.event_id == event_id);
        let answered =
            if body["data"]["state"] == "rejected" && !self.accept_all.load(Ordering::SeqCst) {
                400
            } else if seen_before {
                200
            } else {
                503
            };
        received.push(Received {
            event_id,
            attempt: header("croupier-webhook-attempt").parse().unwrap_or(0),
            signature_ok: header("croupier-webhook-signature") == expected,
            body,
            answered,
        });
        answered
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

struct World {
    node: common::Node,
    _bank: SandboxProcess,
    args: Vec<std::ffi::OsString>,
    port: u16,
    dir: tempfile::TempDir,
}

fn start(receiver_port: u16) -> World {
    let dir = tempfile::tempdir().unwrap();
    let bank_args = [
        "--protocol",
        "obie",
        "--client-id",
        "croupier",
        "--client-secret",
        "secret",
        "--settle-ms",
        "50",
    ];
    let bank = SandboxProcess::start("bank", &dir.path().join("bank"), &bank_args);
    let port = free_port();
    let config = format!(
        "[payments]\npoll_interval_ms = 50\npublic_url = \"http://127.0.0.1:{port}\"\n\
         [[payments.connectors]]\nid = \"bank-a\"\nprotocol = \"obie\"\n\
         base_url = \"http://{}\"\nclient_id = \"croupier\"\nclient_secret = \"secret\"\n\
         [webhooks]\nattempts_max = 4\nbackoff_ms_first = 50\nbackoff_ms_max = 100\n\
         [[webhooks.endpoints]]\nid = \"ops\"\nurl = \"http://127.0.0.1:{receiver_port}/hooks\"\n\
         secret = \"{SECRET}\"\n",
        bank.addr()
    );
    let config_file = dir.path().join("croupier.toml");
    std::fs::write(&config_file, config).unwrap();
    let args: Vec<std::ffi::OsString> = vec![
        "--config".into(),
        config_file.into(),
        "--data-dir".into(),
        dir.path().join("node").into(),
    ];
    let node = start_node(&args, port, dir.path(), 0);
    World {
        node,
        _bank: bank,
        args,
        port,
        dir,
    }
}

fn start_node(
    args: &[std::ffi::OsString],
    port: u16,
    dir: &std::path::Path,
    n: u32,
) -> common::Node {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_os_str()).collect();
    serve(
        &args,
        port,
        &dir.join(format!("serve-{n}.log")),
        Duration::from_secs(60),
    )
}

fn deposit(api: &Api, token: &str, id: u64, approve: bool) -> Value {
    common::bank::deposit_to_end(api, token, id, 2_500, approve)
}

/// Polls `check` until it answers (15 s at most).
fn wait_until<T>(mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "not within 15 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn delivery(api: &Api, id: &str) -> Value {
    let (status, answer) = api
        .call(&format!("/v1/webhooks/deliveries/{id}"), None, None)
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn payment_changes_reach_the_operator_signed_retried_logged_and_replayable() {
    let receiver = Receiver::default();
    let world = start(receiver.start());
    let api = &world.node.api;
    let player = json!({"username": "wendy", "password": "correct horse", "currencies": ["EUR"]});
    api.ok("/v1/players", Some(&player));
    let login = json!({"username": "wendy", "password": "correct horse"});
    let token = api.ok("/v1/players/login", Some(&login))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(deposit(api, &token, 1, true)["state"], "settled");
    assert_eq!(deposit(api, &token, 2, false)["state"], "rejected");

    // Deposit 1's three changes arrive, each first refused (503) then sent again, same id.
    let states_of = |id: &str| -> Vec<String> {
        let mut delivered: Vec<(u64, String)> = receiver
            .received()
            .iter()
            .filter(|r| r.answered == 200 && r.body["data"]["deposit_id"] == id)
            .map(|r| {
                (
                    r.body["position"].as_str().unwrap().parse().unwrap(),
                    r.body["data"]["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        delivered.sort();
        delivered.into_iter().map(|(_, state)| state).collect()
    };
    wait_until(|| (states_of("1").len() == 3).then_some(()));
    assert_eq!(
        states_of("1"),
        ["opening", "awaiting_authorisation", "settled"]
    );
    let received = receiver.received();
    assert!(
        received.iter().all(|r| r.signature_ok),
        "every send is signed: {received:?}"
    );
    let settled = received
        .iter()
        .filter(|r| r.body["data"]["deposit_id"] == "1" && r.body["data"]["state"] == "settled")
        .collect::<Vec<_>>();
    assert_eq!(settled.len(), 2, "refused once, then delivered");
    assert_eq!(
        settled[0].event_id, settled[1].event_id,
        "the same event id on a retry"
    );
    assert_eq!((settled[0].attempt, settled[1].attempt), (1, 2));
    assert_eq!(settled[1].body["type"], "deposit_updated");
    assert_eq!(settled[1].body["data"]["amount"], 2_500);

    // The log: delivered after 2 attempts; the rejected deposit's event refused (400).
    let position = settled[1].body["position"].as_str().unwrap().to_owned();
    // The receiver saw the answer a moment before the node logged it.
    let logged = wait_until(|| {
        let (status, record) = api
            .call(
                &format!("/v1/webhooks/deliveries/ops-{position}"),
                None,
                None,
            )
            .unwrap();
        if status != 200 {
            let (_, all) = api.call("/v1/webhooks/deliveries", None, None).unwrap();
            eprintln!("ops-{position}: {status} {record}; the log: {all}");
        }
        (status == 200 && record["state"] != "retrying").then_some(record)
    });
    assert_eq!(
        (logged["state"].as_str(), logged["attempts"].as_u64()),
        (Some("delivered"), Some(2))
    );
    let refused = wait_until(|| {
        let (_, list) = api
            .call("/v1/webhooks/deliveries?state=rejected", None, None)
            .unwrap();
        list["deliveries"]
            .as_array()
            .and_then(|d| d.first().cloned())
    });
    assert_eq!(refused["last_status"], 400);
    assert_eq!(refused["attempts"], 1, "a 400 is not sent again");

    // Bad input and roles.
    let (status, body) = api
        .call("/v1/webhooks/deliveries?state=bogus", None, None)
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_query"))
    );
    let (status, body) = api
        .call(
            "/v1/webhooks/deliveries/ops-1/replay",
            None,
            Some(&json!({})),
        )
        .unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("delivery_not_found"))
    );
    let refused_id = refused["delivery_id"].as_str().unwrap().to_owned();
    let replay_path = format!("/v1/webhooks/deliveries/{refused_id}/replay");
    let (status, _) = api
        .call(&replay_path, Some(&token), Some(&json!({})))
        .unwrap();
    assert_eq!(status, 403, "a player cannot replay");

    // Replayed once the receiver takes it: the same event, a delivery of its own.
    receiver.accept_all.store(true, Ordering::SeqCst);
    let (status, replay) = api.call(&replay_path, None, Some(&json!({}))).unwrap();
    assert_eq!(status, 202, "{replay}");
    assert_eq!(replay["replay_of"], refused_id.as_str());
    let replay_id = replay["delivery_id"].as_str().unwrap().to_owned();
    let replayed = wait_until(|| {
        let record = delivery(api, &replay_id);
        (record["state"] == "delivered").then_some(record)
    });
    assert_eq!(replayed["event_id"], refused["event_id"]);

    // A clean restart keeps the log and sends nothing again, once every delivery ended (one
    // cut short by the stop is sent again: delivery is at least once).
    wait_until(|| {
        let (_, list) = api
            .call("/v1/webhooks/deliveries?state=retrying", None, None)
            .unwrap();
        list["deliveries"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    let sent_before = receiver.received().len();
    let World {
        node,
        args,
        port,
        dir,
        _bank,
    } = world;
    drop(node_stopped(node));
    let node = start_node(&args, port, dir.path(), 1);
    assert_eq!(
        delivery(&node.api, &replay_id)["state"],
        "delivered",
        "the log outlives a restart"
    );
    std::thread::sleep(Duration::from_millis(1_000));
    let after: Vec<String> = receiver.received()[sent_before..]
        .iter()
        .map(|r| format!("{} {} {}", r.event_id, r.attempt, r.body["data"]))
        .collect();
    assert!(
        after.is_empty(),
        "nothing sent twice after a clean stop: {after:?}"
    );
}

/// Stops a node with SIGTERM (a clean stop saves the feed cursors) and waits for it.
fn node_stopped(mut node: common::Node) -> common::Node {
    common::stop(&mut node.child);
    node
}
