//! A three-node cluster of real `croupier serve` processes on 127.0.0.1: clients write to every
//! node while the leader is killed with SIGKILL; a new leader takes over, no acknowledged
//! transfer is lost, none is applied twice, the old leader catches up when restarted, and all
//! three replicas end with the same transfers and balances.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const NODES: usize = 3;
const CLEARING: u128 = 1;
const TARGETS: u128 = 6;
const CLIENTS: u128 = 6;
const ACKS_BEFORE_KILL_MIN: u64 = 300;
const WAIT: Duration = Duration::from_secs(30);

struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(port: u16) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        Api {
            base: format!("http://127.0.0.1:{port}"),
            agent,
        }
    }

    fn get(&self, path: &str, stale: bool) -> Result<(u16, Value, Option<String>), ureq::Error> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if stale {
            request = request.header("x-read-consistency", "stale");
        }
        let mut response = request.call()?;
        let status = response.status().as_u16();
        let cursor = response
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.body_mut().read_to_string()?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            cursor,
        ))
    }

    fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), ureq::Error> {
        self.post_as(path, body, None)
    }

    /// A POST with a player's session token (or none).
    fn post_as(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Result<(u16, Value), ureq::Error> {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut response = request.send(body.to_string())?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string()?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// A port for a node, from a block below Linux's ephemeral range (32768-60999). A node keeps
/// its ports across restarts, and a port the kernel hands out by itself (another test binding
/// :0, any outgoing connection's source port) would be taken from that range while the node
/// is down: its restart then failed, or worse, the test talked to another test's node
/// (regression: "acknowledged transfers missing" and "no leader" under parallel test runs).
/// Each test process takes its own block; the counter keeps this process's ports distinct.
fn free_port() -> u16 {
    const BLOCK_PORTS: u16 = 180;
    const BLOCKS: u32 = 64;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % BLOCKS) as u16 * BLOCK_PORTS;
    for _ in 0..BLOCK_PORTS {
        let port = base + NEXT.fetch_add(1, Ordering::SeqCst) % BLOCK_PORTS;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {base}..{}", base + BLOCK_PORTS);
}

struct Node {
    dir: PathBuf,
    config: PathBuf,
    id: u64,
    api_port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Node {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.with_extension("log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
            .args(["serve", "--node-id", &self.id.to_string(), "--data-dir"])
            .arg(&self.dir)
            .args(
                Some(&self.config)
                    .filter(|c| !c.as_os_str().is_empty())
                    .map(|c| vec!["--cluster-config".into(), c.clone().into_os_string()])
                    .unwrap_or_default(),
            )
            .args(&self.extra)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn croupier serve");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
        }
    }

    fn api(&self) -> Api {
        Api::new(self.api_port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn cluster(root: &Path) -> Vec<Node> {
    let ports: Vec<(u16, u16)> = (0..NODES).map(|_| (free_port(), free_port())).collect();
    let config = root.join("cluster.toml");
    let mut text = String::new();
    for (i, (api, peer)) in ports.iter().enumerate() {
        text += &format!(
            "[[node]]\nid = {}\napi = \"127.0.0.1:{api}\"\npeer = \"127.0.0.1:{peer}\"\n\n",
            i + 1
        );
    }
    std::fs::write(&config, text).unwrap();
    ports
        .iter()
        .enumerate()
        .map(|(i, (api, _))| Node {
            dir: root.join(format!("node-{i}")),
            config: config.clone(),
            id: i as u64 + 1,
            api_port: *api,
            child: None,
            extra: Vec::new(),
        })
        .collect()
}

/// The leader's id as the node at `api` sees it, once one is known.
/// A fresh directory for one test's nodes; kept after the test (node logs included) when
/// `CROUPIER_TEST_KEEP` is set, to investigate a failure.
fn test_root() -> tempfile::TempDir {
    let mut root = tempfile::Builder::new()
        .prefix("cluster-failover-")
        .tempdir()
        .unwrap();
    if std::env::var_os("CROUPIER_TEST_KEEP").is_some() {
        root.disable_cleanup(true);
        eprintln!("keeping {}", root.path().display());
    }
    root
}

fn leader(api: &Api) -> Option<u64> {
    match api.get("/v1/cluster/status", false) {
        Ok((200, status, _)) => status["leader_id"].as_u64(),
        _ => None,
    }
}

fn wait_for_leader(nodes: &[Node], not: Option<u64>) -> u64 {
    let deadline = Instant::now() + WAIT;
    loop {
        for node in nodes.iter().filter(|n| n.child.is_some()) {
            if let Some(id) = leader(&node.api()) {
                if Some(id) != not {
                    return id;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn transfer(id: u128) -> Value {
    json!({"id": id.to_string(), "debit_account_id": CLEARING.to_string(),
           "credit_account_id": (100 + id % TARGETS).to_string(), "amount": (id % 7) as u64 + 1,
           "ledger": "EUR"})
}

fn create_accounts(api: &Api) {
    let mut accounts =
        vec![json!({"id": CLEARING.to_string(), "ledger": "EUR", "kind": "clearing"})];
    for t in 0..TARGETS {
        accounts.push(json!({"id": (100 + t).to_string(), "ledger": "EUR", "kind": "player"}));
    }
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok((200, _)) = api.post("/v1/accounts", &Value::Array(accounts.clone())) {
            return;
        }
        assert!(Instant::now() < deadline, "accounts not created");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every transfer id on the target accounts, read from one node's own state (paged); `None`
/// while that node cannot answer (a node that just restarted may not have applied the
/// accounts yet: a stale read may be that stale).
fn transfers_on(api: &Api) -> Option<Vec<u128>> {
    let mut ids = Vec::new();
    for t in 0..TARGETS {
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/accounts/{}/transfers?limit=8189", 100 + t);
            if let Some(c) = &cursor {
                path += &format!("&cursor={c}");
            }
            let (status, page, next) = api.get(&path, true).ok()?;
            if status != 200 {
                return None;
            }
            for transfer in page.as_array().unwrap() {
                ids.push(transfer["id"].as_str().unwrap().parse::<u128>().unwrap());
            }
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    ids.sort_unstable();
    Some(ids)
}

#[derive(Default)]
struct Outcomes {
    acked: BTreeSet<u128>,
    sent: BTreeSet<u128>,
}

#[test]
fn a_killed_leader_is_replaced_and_no_acknowledged_transfer_is_lost_or_doubled() {
    let root = test_root();
    let mut nodes = cluster(root.path());
    for node in nodes.iter_mut() {
        node.start();
    }
    let first_leader = wait_for_leader(&nodes, None);
    create_accounts(&nodes[0].api());
    let outcomes = Mutex::new(Outcomes::default());
    let acks = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let ports: Vec<u16> = nodes.iter().map(|n| n.api_port).collect();
    let killed_at = Mutex::new(None::<Instant>);
    let first_ack_after_kill = Mutex::new(None::<Duration>);
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let (outcomes, acks, stop, ports) = (&outcomes, &acks, &stop, &ports);
            let (killed_at, first_ack_after_kill) = (&killed_at, &first_ack_after_kill);
            scope.spawn(move || {
                let mut n = 0u128;
                while !stop.load(Ordering::SeqCst) {
                    let id = (client + 1) * 1_000_000 + n;
                    n += 1;
                    let api = Api::new(ports[(n as usize + client as usize) % NODES]);
                    outcomes.lock().unwrap().sent.insert(id);
                    let sent_at = Instant::now();
                    if let Ok((200, answer)) = api.post("/v1/transfers", &json!([transfer(id)])) {
                        assert_eq!(answer[0]["result"], "ok", "fresh id {id}: {answer}");
                        outcomes.lock().unwrap().acked.insert(id);
                        acks.fetch_add(1, Ordering::SeqCst);
                        if let Some(at) = *killed_at.lock().unwrap() {
                            if sent_at > at {
                                first_ack_after_kill
                                    .lock()
                                    .unwrap()
                                    .get_or_insert(at.elapsed());
                            }
                        }
                    } else {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            });
        }
        let deadline = Instant::now() + WAIT;
        while acks.load(Ordering::SeqCst) < ACKS_BEFORE_KILL_MIN {
            assert!(
                Instant::now() < deadline,
                "no write progress before the kill"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let leader_index = (first_leader - 1) as usize;
        *killed_at.lock().unwrap() = Some(Instant::now());
        nodes[leader_index].kill();
        let new_leader = wait_for_leader(&nodes, Some(first_leader));
        assert_ne!(new_leader, first_leader);
        let acked_at_kill = acks.load(Ordering::SeqCst);
        let deadline = Instant::now() + WAIT;
        while acks.load(Ordering::SeqCst) < acked_at_kill + ACKS_BEFORE_KILL_MIN {
            assert!(
                Instant::now() < deadline,
                "no write progress after the fail-over"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        nodes[leader_index].start();
        std::thread::sleep(Duration::from_millis(1_000));
        stop.store(true, Ordering::SeqCst);
    });
    let failover = first_ack_after_kill
        .lock()
        .unwrap()
        .expect("a write after the kill");
    eprintln!("first acknowledged write {failover:?} after the leader's SIGKILL");
    let outcomes = outcomes.into_inner().unwrap();
    assert_replicas_agree(&nodes, &outcomes);
}

fn account_timestamp_ns(api: &Api, id: u128) -> u64 {
    let (status, account, _) = api.get(&format!("/v1/accounts/{id}"), false).expect("read");
    assert_eq!(status, 200, "{account}");
    account["timestamp"].as_u64().expect("timestamp")
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[test]
fn a_leader_whose_clock_is_off_hands_over_and_ledger_time_does_not_jump() {
    let root = test_root();
    let mut nodes = cluster(root.path());
    // Node 1 forms the cluster and usually leads first; its clock runs a minute ahead.
    nodes[0].extra = vec!["--fault-clock-offset-ms".into(), "60000".into()];
    for node in nodes.iter_mut() {
        node.start();
    }
    wait_for_leader(&nodes, None);
    let api = nodes[1].api();
    create_accounts(&api);
    let deadline = Instant::now() + WAIT;
    while leader(&api) == Some(1) {
        assert!(Instant::now() < deadline, "the skewed leader kept leading");
        std::thread::sleep(Duration::from_millis(50));
    }
    let stamped = account_timestamp_ns(&api, CLEARING);
    let now = unix_ns();
    assert!(
        stamped < now + 5_000_000_000,
        "ledger time moved to the skewed clock: stamped {stamped}, now {now}"
    );
    let log = std::fs::read_to_string(nodes[0].dir.with_extension("log")).unwrap();
    assert!(
        log.contains("clock is off"),
        "the refusal is not logged:\n{log}"
    );
}

/// Every replica, once caught up, holds each acknowledged transfer exactly once and nothing
/// that was never sent, and all replicas hold the same transfers.
fn assert_replicas_agree(nodes: &[Node], outcomes: &Outcomes) {
    let deadline = Instant::now() + WAIT;
    let replicas: BTreeMap<u64, Vec<u128>> = loop {
        let replicas: Option<BTreeMap<u64, Vec<u128>>> = nodes
            .iter()
            .map(|n| Some((n.id, transfers_on(&n.api())?)))
            .collect();
        if let Some(replicas) = replicas {
            let first = replicas.values().next().unwrap();
            if replicas.values().all(|ids| ids == first) || Instant::now() > deadline {
                break replicas;
            }
        }
        assert!(Instant::now() < deadline, "a replica cannot answer reads");
        std::thread::sleep(Duration::from_millis(200));
    };
    for (id, ids) in &replicas {
        let unique: BTreeSet<u128> = ids.iter().copied().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "node {id}: a transfer applied twice"
        );
        let lost: Vec<&u128> = outcomes.acked.difference(&unique).take(5).collect();
        assert!(
            lost.is_empty(),
            "node {id}: acknowledged transfers missing: {lost:?}"
        );
        assert!(
            unique.is_subset(&outcomes.sent),
            "node {id}: a transfer nobody sent"
        );
    }
    let first = replicas.values().next().unwrap();
    assert!(replicas.values().all(|ids| ids == first), "replicas differ");
}

/// Clients writing single transfers to every node in turn until `finish`.
struct Load {
    outcomes: std::sync::Arc<Mutex<Outcomes>>,
    acks: std::sync::Arc<AtomicU64>,
    stop: std::sync::Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(ports: Vec<u16>, id_base: u128) -> Load {
        let load = Load {
            outcomes: Default::default(),
            acks: Default::default(),
            stop: Default::default(),
            threads: Vec::new(),
        };
        let threads = (0..CLIENTS)
            .map(|client| {
                let (outcomes, acks, stop) =
                    (load.outcomes.clone(), load.acks.clone(), load.stop.clone());
                let ports = ports.clone();
                std::thread::spawn(move || {
                    let mut n = 0u128;
                    while !stop.load(Ordering::SeqCst) {
                        let id = id_base + (client + 1) * 1_000_000 + n;
                        n += 1;
                        let api = Api::new(ports[(n as usize + client as usize) % ports.len()]);
                        outcomes.lock().unwrap().sent.insert(id);
                        match api.post("/v1/transfers", &json!([transfer(id)])) {
                            Ok((200, answer)) => {
                                assert_eq!(answer[0]["result"], "ok", "fresh id {id}: {answer}");
                                outcomes.lock().unwrap().acked.insert(id);
                                acks.fetch_add(1, Ordering::SeqCst);
                            }
                            _ => std::thread::sleep(Duration::from_millis(20)),
                        }
                    }
                })
            })
            .collect();
        Load { threads, ..load }
    }

    /// Waits until `more` further writes were acknowledged.
    fn wait_acks(&self, more: u64, what: &str) {
        let target = self.acks.load(Ordering::SeqCst) + more;
        let deadline = Instant::now() + WAIT;
        while self.acks.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "no write progress: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn finish(self) -> Outcomes {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().expect("a client panicked");
        }
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

fn started_cluster(root: &Path, extra: &[&str]) -> Vec<Node> {
    let mut nodes = cluster(root);
    for node in nodes.iter_mut() {
        node.extra = extra.iter().map(|s| s.to_string()).collect();
        node.start();
    }
    let leader = wait_for_leader(&nodes, None);
    create_accounts(&nodes[(leader - 1) as usize].api());
    nodes
}

fn terminate(node: &mut Node) {
    if let Some(mut child) = node.child.take() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().expect("reap");
        assert!(
            status.success(),
            "node {} did not stop cleanly: {status}",
            node.id
        );
    }
}

/// Waits until every member has applied what the leader's log held when the wait began.
///
/// Under continuous writes "lag 0 everywhere at one instant" may never be observed (the leader's
/// log is always a batch ahead of what anyone applied), so catching up means reaching a target.
fn wait_caught_up(nodes: &[Node]) {
    let deadline = Instant::now() + WAIT;
    let mut target: Option<u64> = None;
    let mut last_status = serde_json::Value::Null;
    loop {
        for node in nodes {
            let Ok((200, status, _)) = node.api().get("/v1/cluster/status", false) else {
                continue;
            };
            let Some(members) = status["nodes"].as_array() else {
                continue;
            };
            if target.is_none() {
                target = members
                    .iter()
                    .find(|m| m["role"] == "leader")
                    .and_then(|m| m["last_log_index"].as_u64());
            }
            let applied = |m: &serde_json::Value| m["applied_index"].as_u64().unwrap_or(0);
            if target.is_some_and(|target| members.iter().all(|m| applied(m) >= target)) {
                return;
            }
            last_status = status;
        }
        assert!(
            Instant::now() < deadline,
            "members did not catch up within {WAIT:?}; target {target:?}, last status {last_status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn leader_position(nodes: &[Node], leader: u64) -> usize {
    nodes.iter().position(|n| n.id == leader).unwrap()
}

fn leader_last_log_index(leader: &Node) -> u64 {
    let (code, status, _) = leader.api().get("/v1/cluster/status", false).unwrap();
    assert_eq!(code, 200, "{status}");
    status["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["role"] == "leader"))
        .and_then(|n| n["last_log_index"].as_u64())
        .unwrap_or_else(|| panic!("no leader row in {status}"))
}

/// Waits until the node's log says it purged an entry beyond `index` (the writes keep going).
fn wait_for_purge_past(node: &Node, index: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let log = std::fs::read_to_string(node.dir.with_extension("log")).unwrap_or_default();
        let purged = log
            .lines()
            .filter(|line| line.contains("log purged"))
            .filter_map(|line| line.split("through_index=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .max();
        if purged.is_some_and(|purged| purged > index) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the leader purged only through {purged:?}, not past {index}, within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_follower_behind_the_compacted_log_installs_the_leaders_checkpoint_over_its_history() {
    let root = test_root();
    let mut nodes = started_cluster(
        root.path(),
        &["--checkpoint-entries", "20", "--log-entries-kept", "5"],
    );
    let leader = wait_for_leader(&nodes, None);
    let follower = nodes.iter().position(|n| n.id != leader).unwrap();
    let all_ports: Vec<u16> = nodes.iter().map(|n| n.api_port).collect();
    let load = Load::start(all_ports, 0);
    load.wait_acks(100, "before the follower stops");
    nodes[follower].kill();
    let stopped_at = leader_last_log_index(&nodes[leader_position(&nodes, leader)]);
    load.wait_acks(300, "while a follower is down");
    // The leader postpones purging while a replication to the stopped follower is in flight,
    // so a fixed number of writes does not guarantee the follower's entries are gone.
    wait_for_purge_past(&nodes[leader_position(&nodes, leader)], stopped_at);
    nodes[follower].start();
    load.wait_acks(100, "after the follower is back");
    let outcomes = load.finish();
    assert_replicas_agree(&nodes, &outcomes);
    let log = std::fs::read_to_string(nodes[follower].dir.with_extension("log")).unwrap();
    assert!(
        log.contains("installed the leader's checkpoint"),
        "no checkpoint install:\n{log}"
    );
}

#[test]
fn every_node_killed_at_once_restarts_with_every_acknowledged_write() {
    let root = test_root();
    let mut nodes = started_cluster(root.path(), &[]);
    let ports: Vec<u16> = nodes.iter().map(|n| n.api_port).collect();
    let load = Load::start(ports.clone(), 0);
    load.wait_acks(300, "before the crash");
    for node in nodes.iter_mut() {
        node.kill();
    }
    let before = load.finish();
    for node in nodes.iter_mut() {
        node.start();
    }
    wait_for_leader(&nodes, None);
    let load = Load::start(ports, 100_000_000);
    load.wait_acks(100, "after the restart");
    let mut outcomes = load.finish();
    outcomes.acked.extend(before.acked);
    outcomes.sent.extend(before.sent);
    assert_replicas_agree(&nodes, &outcomes);
}

#[test]
fn a_rolling_restart_of_every_node_under_writes_loses_nothing() {
    let root = test_root();
    let mut nodes = started_cluster(root.path(), &[]);
    let ports: Vec<u16> = nodes.iter().map(|n| n.api_port).collect();
    let load = Load::start(ports, 0);
    for index in 0..NODES {
        load.wait_acks(100, "before a restart");
        terminate(&mut nodes[index]);
        load.wait_acks(50, "while a node restarts");
        nodes[index].start();
        wait_caught_up(&nodes);
    }
    load.wait_acks(100, "after the rolling restart");
    let outcomes = load.finish();
    assert_replicas_agree(&nodes, &outcomes);
}

fn signal(node: &Node, name: &str) {
    let pid = node.child.as_ref().expect("running").id().to_string();
    let status = Command::new("kill")
        .args([name, &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {name} {pid}");
}

#[test]
fn a_paused_leader_is_replaced_and_steps_down_when_it_resumes() {
    // SIGSTOP is a leader cut off from everyone (a long GC pause, a partitioned host): the others
    // elect a new leader; when the old one resumes with its stale term it must not apply or
    // acknowledge anything on its own.
    let root = test_root();
    let nodes = started_cluster(root.path(), &[]);
    let ports: Vec<u16> = nodes.iter().map(|n| n.api_port).collect();
    let load = Load::start(ports, 0);
    load.wait_acks(200, "before the pause");
    let paused = wait_for_leader(&nodes, None);
    let paused_index = (paused - 1) as usize;
    signal(&nodes[paused_index], "-STOP");
    // Clients of the paused node time out; they move to the others, as real clients would.
    let mut outcomes = load.finish();
    let others: Vec<u16> = nodes
        .iter()
        .filter(|n| n.id != paused)
        .map(|n| n.api_port)
        .collect();
    let load = Load::start(others, 100_000_000);
    load.wait_acks(200, "while the old leader is paused");
    let witness = nodes.iter().find(|n| n.id != paused).unwrap().api();
    let new_leader = leader(&witness);
    assert!(
        new_leader.is_some_and(|id| id != paused),
        "leader while paused: {new_leader:?}"
    );
    signal(&nodes[paused_index], "-CONT");
    load.wait_acks(200, "after the old leader resumed");
    let after = load.finish();
    outcomes.acked.extend(after.acked);
    outcomes.sent.extend(after.sent);
    assert_replicas_agree(&nodes, &outcomes);
    let (status, view, _) = nodes[paused_index]
        .api()
        .get("/v1/cluster/status", false)
        .unwrap();
    assert_eq!(status, 200);
    assert_ne!(view["leader_id"].as_u64(), None, "{view}");
}

#[test]
fn a_wiped_node_rejoins_through_join_and_catches_up_from_a_streamed_checkpoint() {
    let root = test_root();
    let mut nodes = started_cluster(
        root.path(),
        &["--checkpoint-entries", "20", "--log-entries-kept", "5"],
    );
    let ports: Vec<u16> = nodes.iter().map(|n| n.api_port).collect();
    let load = Load::start(ports, 0);
    load.wait_acks(300, "before the wipe");
    let leader = wait_for_leader(&nodes, None);
    let wiped = nodes.iter().position(|n| n.id != leader).unwrap();
    nodes[wiped].kill();
    std::fs::remove_dir_all(&nodes[wiped].dir).unwrap();
    let wiped_id = nodes[wiped].id;
    let any = nodes.iter().find(|n| n.id != wiped_id).unwrap().api();
    // Out of the membership, then back in through --join, as an operator would.
    let removed = any
        .agent
        .delete(format!("{}/v1/cluster/nodes/{wiped_id}", any.base))
        .call()
        .unwrap();
    assert_eq!(removed.status().as_u16(), 200);
    load.wait_acks(100, "after the removal");
    let config = std::fs::read_to_string(&nodes[wiped].config).unwrap();
    let peer_of = |id: u64| -> String {
        let entry = config
            .split("[[node]]")
            .find(|e| e.contains(&format!("id = {id}\n")))
            .unwrap();
        entry
            .split("peer = \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let via = peer_of(leader);
    nodes[wiped].extra = vec![
        "--peer-listen".into(),
        peer_of(wiped_id),
        "--listen".into(),
        format!("127.0.0.1:{}", nodes[wiped].api_port),
        "--join".into(),
        via,
        "--checkpoint-entries".into(),
        "20".into(),
        "--log-entries-kept".into(),
        "5".into(),
    ];
    nodes[wiped].config = PathBuf::new();
    nodes[wiped].start();
    load.wait_acks(200, "after the rejoin");
    let outcomes = load.finish();
    assert_replicas_agree(&nodes, &outcomes);
}

/// One directed node-to-node link through a TCP proxy the test can cut: cutting closes its
/// connections and refuses new ones until healed.
struct Link {
    port: u16,
    cut: std::sync::Arc<AtomicBool>,
    open: std::sync::Arc<Mutex<Vec<std::net::TcpStream>>>,
}

impl Link {
    fn start(target_port: u16) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let link = Link {
            port: listener.local_addr().unwrap().port(),
            cut: Default::default(),
            open: Default::default(),
        };
        let (cut, open) = (link.cut.clone(), link.open.clone());
        std::thread::spawn(move || {
            for inbound in listener.incoming().flatten() {
                if cut.load(Ordering::SeqCst) {
                    continue; // dropped: the dialer sees the connection close
                }
                let Ok(outbound) = std::net::TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue;
                };
                let mut open = open.lock().unwrap();
                open.push(inbound.try_clone().unwrap());
                open.push(outbound.try_clone().unwrap());
                pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                pipe(outbound, inbound);
            }
        });
        link
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = from.shutdown(std::net::Shutdown::Both);
    });
}

fn peer_port(config: &Path, id: u64) -> u16 {
    let text = std::fs::read_to_string(config).unwrap();
    let entry = text
        .split("[[node]]")
        .find(|e| e.contains(&format!("id = {id}\n")))
        .unwrap();
    let peer = entry
        .split("peer = \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    peer.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn a_leader_partitioned_from_the_majority_acknowledges_nothing_the_majority_lacks() {
    let root = test_root();
    let mut nodes = cluster(root.path());
    let ids: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    // links[(from, to)]: every directed link through its own proxy.
    let mut links: BTreeMap<(u64, u64), Link> = BTreeMap::new();
    for &from in &ids {
        for &to in ids.iter().filter(|&&to| to != from) {
            links.insert((from, to), Link::start(peer_port(&nodes[0].config, to)));
        }
    }
    for node in nodes.iter_mut() {
        let routes: String = ids
            .iter()
            .filter(|&&to| to != node.id)
            .map(|&to| {
                let proxy = links[&(node.id, to)].port;
                format!(
                    "127.0.0.1:{} 127.0.0.1:{proxy}\n",
                    peer_port(&node.config, to)
                )
            })
            .collect();
        let path = root.path().join(format!("routes-{}", node.id));
        std::fs::write(&path, routes).unwrap();
        node.extra = vec!["--fault-peer-routes".into(), path.display().to_string()];
        node.start();
    }
    let old = wait_for_leader(&nodes, None);
    create_accounts(&nodes[(old - 1) as usize].api());
    let load = Load::start(nodes.iter().map(|n| n.api_port).collect(), 0);
    load.wait_acks(200, "before the partition");
    for (&(from, to), link) in &links {
        if from == old || to == old {
            link.cut();
        }
    }
    // Writes sent to the cut-off leader can only time out; clients move to the majority.
    let mut outcomes = load.finish();
    let majority: Vec<u16> = nodes
        .iter()
        .filter(|n| n.id != old)
        .map(|n| n.api_port)
        .collect();
    let load = Load::start(majority, 100_000_000);
    load.wait_acks(200, "on the majority side of the partition");
    let witness = nodes.iter().find(|n| n.id != old).unwrap().api();
    assert!(
        leader(&witness).is_some_and(|id| id != old),
        "the majority elected no leader"
    );
    for link in links.values() {
        link.heal();
    }
    load.wait_acks(200, "after the partition healed");
    let after = load.finish();
    outcomes.acked.extend(after.acked);
    outcomes.sent.extend(after.sent);
    assert_replicas_agree(&nodes, &outcomes);
}

/// The node's log once it holds `needle` (or whatever it holds after `timeout`).
fn wait_for_log_line(node: &Node, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let log = std::fs::read_to_string(node.dir.with_extension("log")).unwrap_or_default();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The node's oldest log segment holding more than a few records.
fn segment_with_records(node: &Node) -> Option<PathBuf> {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(node.dir.join("log"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.metadata().is_ok_and(|m| m.len() > 4096))
        .collect();
    segments.sort();
    segments.into_iter().next()
}

/// Waits until the node's log holds records: a follower may trail the quorum that acknowledged
/// the writes (CI once found only the first few entries on it).
fn wait_for_records(node: &Node) {
    let deadline = Instant::now() + WAIT;
    while segment_with_records(node).is_none() {
        assert!(
            Instant::now() < deadline,
            "node {} received no records",
            node.id
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Flips one byte in the middle of the node's oldest log segment.
fn corrupt_log(node: &Node) {
    let segment = segment_with_records(node).expect("a log segment with records");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&segment, bytes).unwrap();
}

#[test]
fn a_replica_with_a_corrupt_log_repairs_from_the_others_when_asked_and_refuses_otherwise() {
    let root = test_root();
    let mut nodes = started_cluster(root.path(), &[]);
    let load = Load::start(nodes.iter().map(|n| n.api_port).collect(), 0);
    load.wait_acks(300, "before the damage");
    let leader = wait_for_leader(&nodes, None);
    let damaged = nodes.iter().position(|n| n.id != leader).unwrap();
    wait_for_records(&nodes[damaged]);
    terminate(&mut nodes[damaged]);
    corrupt_log(&nodes[damaged]);
    // Without the repair flag the node refuses to start on damaged bytes.
    let refused = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args([
            "serve",
            "--node-id",
            &nodes[damaged].id.to_string(),
            "--data-dir",
        ])
        .arg(&nodes[damaged].dir)
        .arg("--cluster-config")
        .arg(&nodes[damaged].config)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("corrupt"), "{stderr}");
    nodes[damaged].extra = vec!["--repair-from-peers".into()];
    nodes[damaged].start();
    load.wait_acks(300, "while the damaged node repairs");
    let outcomes = load.finish();
    assert_replicas_agree(&nodes, &outcomes);
    // Catching up means receiving the leader's checkpoint or its whole log: it may take longer
    // than the writes above on a loaded machine.
    let log = wait_for_log_line(&nodes[damaged], "repair complete", Duration::from_secs(30));
    assert!(log.contains("repair complete"), "no repair:\n{log}");
    let quarantined = std::fs::read_dir(&nodes[damaged].dir).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("quarantine-")
    });
    assert!(quarantined, "the damaged files were not kept");
}

/// A POST retried while the node answers 503 (a follower that has not heard from the new
/// leader yet says `no_leader`, retry shortly).
fn post_settled(api: &Api, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = api.post_as(path, body, token);
        let retry = !matches!(answer, Ok((status, _)) if status != 503);
        if !retry || Instant::now() > deadline {
            return answer.unwrap_or_else(|error| panic!("POST {path}: {error}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get_as(api: &Api, path: &str, token: &str) -> u16 {
    api.agent
        .get(format!("{}{path}", api.base))
        .header("authorization", format!("Bearer {token}"))
        .call()
        .map(|response| response.status().as_u16())
        .unwrap_or(0)
}

#[test]
fn a_player_registered_on_one_node_logs_in_on_another_and_a_logout_holds_on_every_node() {
    let root = test_root();
    let nodes = started_cluster(root.path(), &[]);
    let apis: Vec<Api> = nodes.iter().map(|n| n.api()).collect();
    let player = json!({"username": "zoe", "password": "correct horse", "currencies": ["EUR"]});
    let (status, created) = post_settled(&apis[0], "/v1/players", &player, None);
    assert_eq!(status, 201, "{created}");
    // Login on another node (a linearizable read finds the player wherever it was created).
    let login = json!({"username": "zoe", "password": "correct horse"});
    let (status, session) = post_settled(&apis[1], "/v1/players/login", &login, None);
    assert_eq!(status, 200, "{session}");
    let token = session["token"].as_str().unwrap().to_string();
    // The token works at once on every node, including one that may not have applied it yet.
    let deadline = Instant::now() + WAIT;
    for api in &apis {
        let mut status = get_as(api, "/v1/players/me", &token);
        while status == 503 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            status = get_as(api, "/v1/players/me", &token);
        }
        assert_eq!(
            status, 200,
            "never 401: a node that lags asks the leader first"
        );
    }
    let (status, _) = post_settled(&apis[2], "/v1/players/logout", &json!({}), Some(&token));
    assert_eq!(status, 200);
    let deadline = Instant::now() + WAIT;
    for api in &apis {
        while get_as(api, "/v1/players/me", &token) != 401 {
            assert!(
                Instant::now() < deadline,
                "a logged-out session still works"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn only_members_holding_the_cluster_secret_take_part() {
    let root = test_root();
    let (ours, theirs) = (
        root.path().join("ours.secret"),
        root.path().join("theirs.secret"),
    );
    std::fs::write(&ours, "a-secret-of-more-than-sixteen-bytes\n").unwrap();
    std::fs::write(&theirs, "another-secret-of-more-than-sixteen\n").unwrap();
    let mut nodes = cluster(root.path());
    for (node, secret) in nodes.iter_mut().zip([&ours, &ours, &theirs]) {
        let flag = format!("--cluster-secret-file={}", secret.display());
        node.extra = vec![flag];
        node.start();
    }
    // The two that share a secret are a quorum: they elect a leader and take writes.
    let leader = wait_for_leader(&nodes[..2], None);
    let api = nodes[(leader - 1) as usize].api();
    create_accounts(&api);
    let log = wait_for_log_line(&nodes[0], "does not hold this cluster's secret", WAIT);
    let refused_on_the_second = std::fs::read_to_string(nodes[1].dir.with_extension("log"))
        .unwrap_or_default()
        .contains("does not hold this cluster's secret");
    assert!(
        log.contains("does not hold this cluster's secret") || refused_on_the_second,
        "no refusal logged:\n{log}"
    );
    let (_, status, _) = api.get("/v1/cluster/status", false).unwrap();
    let stranger = &status["nodes"][2];
    assert_eq!(
        stranger["applied_index"].as_u64().unwrap_or(0),
        0,
        "{status}"
    );
    // Given the secret, the third member catches up.
    nodes[2].kill();
    nodes[2].extra = vec![format!("--cluster-secret-file={}", ours.display())];
    nodes[2].start();
    wait_caught_up(&nodes);
}

#[test]
fn a_peer_listener_off_loopback_needs_a_cluster_secret() {
    let root = test_root();
    let peer = format!("0.0.0.0:{}", free_port());
    let output = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--peer-listen",
            &peer,
            "--data-dir",
        ])
        .arg(root.path().join("node"))
        .output()
        .expect("run croupier serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("no cluster secret is set"), "{stderr}");
}
