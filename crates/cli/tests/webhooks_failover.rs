//! Outbound webhooks across a leader's death, every part its own process: a sandbox bank, a
//! three-node cluster of `croupier serve` with one `[[webhooks.endpoints]]`, and a receiver
//! standing for the operator's system. Only the node serving writes sends; each acknowledgement
//! it makes is replicated (`ConsumerAck`), so the node that takes over after a SIGKILL resumes
//! where the dead leader's acknowledged deliveries end instead of from its own cursor (which,
//! on a node that never sent, is the feed's start): every event arrives, and nothing the old
//! leader had delivered and acknowledged is sent again.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, Api, SandboxProcess};
use serde_json::json;

const NODES: usize = 3;
const WAIT: Duration = Duration::from_secs(45);

/// Event ids as they arrive (every request, answered 200).
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    fn start(&self) -> u16 {
        let received = Arc::clone(&self.received);
        common::receiver::listen(move |headers, _| {
            let event_id = common::receiver::header(headers, "croupier-webhook-id");
            received
                .lock()
                .unwrap()
                .push(event_id.unwrap_or_default().to_string());
            200
        })
    }

    fn wait_for_every(&self, what: &str, event_ids: &[String]) {
        wait_until(what, || {
            let counts = self.counts();
            event_ids
                .iter()
                .all(|id| counts.contains_key(id))
                .then_some(())
        });
    }

    /// How many times each event id arrived.
    fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for id in self.received.lock().unwrap().iter() {
            *counts.entry(id.clone()).or_default() += 1;
        }
        counts
    }
}

struct Member {
    id: u64,
    api_port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Member {
    fn start(&mut self, cluster: &Path, config: &Path) {
        let log = std::fs::File::create(self.dir.with_extension("log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
            .args(["serve", "--node-id", &self.id.to_string(), "--data-dir"])
            .arg(&self.dir)
            .arg("--cluster-config")
            .arg(cluster)
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn croupier serve");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn api(&self) -> Api {
        Api::on_port(self.api_port)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three members sharing `config` (payments at `bank`, webhooks to `receiver_port`), started.
fn cluster(root: &Path, bank: &str, receiver_port: u16) -> Vec<Member> {
    let ports: Vec<(u16, u16)> = (0..NODES).map(|_| (free_port(), free_port())).collect();
    let mut members_text = String::new();
    for (i, (api, peer)) in ports.iter().enumerate() {
        members_text += &format!(
            "[[node]]\nid = {}\napi = \"127.0.0.1:{api}\"\npeer = \"127.0.0.1:{peer}\"\n\n",
            i + 1
        );
    }
    let cluster_file = root.join("cluster.toml");
    std::fs::write(&cluster_file, members_text).unwrap();
    let config = format!(
        "[payments]\npoll_interval_ms = 50\n\
         [[payments.connectors]]\nid = \"bank-a\"\nprotocol = \"obie\"\n\
         base_url = \"http://{bank}\"\nclient_id = \"croupier\"\nclient_secret = \"secret\"\n\
         [webhooks]\nbackoff_ms_first = 50\nbackoff_ms_max = 200\n\
         [[webhooks.endpoints]]\nid = \"ops\"\nurl = \"http://127.0.0.1:{receiver_port}/hooks\"\n\
         secret = \"whsec-0123456789abcdef\"\n"
    );
    let config_file = root.join("croupier.toml");
    std::fs::write(&config_file, config).unwrap();
    let mut members: Vec<Member> = ports
        .iter()
        .enumerate()
        .map(|(i, (api, _))| Member {
            id: i as u64 + 1,
            api_port: *api,
            dir: root.join(format!("node-{}", i + 1)),
            child: None,
        })
        .collect();
    for member in &mut members {
        member.start(&cluster_file, &config_file);
    }
    members
}

/// The position in `members` of the leader a live member names, once it is not `not`.
fn wait_for_leader(members: &[Member], not: Option<u64>) -> usize {
    let deadline = Instant::now() + WAIT;
    loop {
        for member in members.iter().filter(|member| member.child.is_some()) {
            let leader = match member.api().get("/v1/cluster/status") {
                Some((200, status)) => status["leader_id"].as_u64(),
                _ => None,
            };
            let alive = |id| members.iter().any(|m| m.id == id && m.child.is_some());
            if let Some(id) = leader.filter(|&id| Some(id) != not && alive(id)) {
                let position = members.iter().position(|m| m.id == id).unwrap();
                if matches!(members[position].api().get("/healthz"), Some((200, _))) {
                    return position;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A deposit the bank's customer approves, followed until it settles.
fn settled_deposit(api: &Api, token: &str, id: u64) {
    let deposit = common::bank::deposit_to_end(api, token, id, 1_000, true);
    assert_eq!(deposit["state"], "settled", "{deposit}");
}

/// The webhook ids (`evt_{position}`) of the committed payment events, read from the feed.
fn payment_event_ids(api: &Api) -> Vec<String> {
    let (mut ids, mut after) = (Vec::new(), "0".to_string());
    loop {
        let page = api.ok(&format!("/v1/events?after={after}&limit=100"), None);
        let events = page["events"].as_array().unwrap();
        if events.is_empty() {
            return ids;
        }
        ids.extend(
            events
                .iter()
                .filter(|event| event["type"] == "deposit_updated")
                .map(|event| format!("evt_{}", event["position"].as_str().unwrap())),
        );
        after = page["next"].as_str().unwrap().to_string();
    }
}

#[test]
fn a_new_leader_resumes_webhooks_where_the_killed_leaders_acknowledged_deliveries_end() {
    let root = tempfile::tempdir().unwrap();
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
    let bank = SandboxProcess::start("bank", &root.path().join("bank"), &bank_args);
    let receiver = Receiver::default();
    let mut members = cluster(root.path(), bank.addr(), receiver.start());
    let first = wait_for_leader(&members, None);
    let api = members[first].api();
    let player = json!({"username": "wendy", "password": "correct horse", "currencies": ["EUR"]});
    api.ok("/v1/players", Some(&player));
    let login = json!({"username": "wendy", "password": "correct horse"});
    let token = api.ok("/v1/players/login", Some(&login))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in 1..=4 {
        settled_deposit(&api, &token, id);
    }
    let before_kill = payment_event_ids(&api);
    assert_eq!(before_kill.len(), 12, "three changes per deposit");
    receiver.wait_for_every("the leader delivers every event", &before_kill);
    // The leader acknowledges a delivered batch within a second and replicates it at once;
    // three seconds of quiet leave it time to reach every member.
    std::thread::sleep(Duration::from_secs(3));
    let delivered_before_kill = receiver.counts();
    // The receiver answers every send 200: one sender sends each event once. (Regression:
    // every member that knew a leader sent too.)
    assert!(
        delivered_before_kill.values().all(|&sends| sends == 1),
        "only the leader sends: {delivered_before_kill:?}"
    );
    let dead = members[first].id;
    members[first].kill();

    let second = wait_for_leader(&members, Some(dead));
    let api = members[second].api();
    let token = api.ok("/v1/players/login", Some(&login))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in 5..=6 {
        settled_deposit(&api, &token, id);
    }
    let every_event = payment_event_ids(&api);
    assert_eq!(every_event.len(), 18);
    receiver.wait_for_every("the new leader delivers the new events", &every_event);
    // Give a wrong resume (from the new leader's own cursor) time to show as resends.
    std::thread::sleep(Duration::from_secs(2));
    let counts = receiver.counts();
    for id in &before_kill {
        assert_eq!(
            counts[id], delivered_before_kill[id],
            "event {id}, delivered and acknowledged before the kill, was sent again: {counts:?}"
        );
    }
    drop(bank);
}
