//! `croupier serve` as an operator and a client see it, through the real binary: one process
//! per data directory, a full disk, a fatal storage failure, expiry on an idle node, the event
//! feed (pages and Server-Sent Events) and account history paging.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

struct Api {
    base: String,
    agent: ureq::Agent,
}

/// An answer: status, the headers we look at, and the body as JSON (`Null` if it is not).
struct Answer {
    status: u16,
    next_cursor: Option<String>,
    body: Value,
}

impl Api {
    fn new(port: u16) -> Self {
        Api {
            base: format!("http://127.0.0.1:{port}"),
            agent: agent(Duration::from_secs(10)),
        }
    }

    fn get(&self, path: &str) -> Answer {
        let mut response = self
            .agent
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let next_cursor = response
            .headers()
            .get("x-next-cursor")
            .map(|value| value.to_str().unwrap().to_owned());
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        Answer {
            status,
            next_cursor,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// POSTs that must answer 200 with `ok` for every item.
    fn post_ok(&self, path: &str, body: &Value) {
        let (status, answer) = self.post(path, body);
        assert_eq!(status, 200, "{path}: {answer}");
        for item in answer.as_array().expect("an array of results") {
            assert_eq!(item["result"], "ok", "{path}: {answer}");
        }
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A `croupier serve` process; killed when dropped, so a failing test leaves none behind.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn spawn(data_dir: &Path, port: u16, extra: &[&str]) -> Server {
        let log = data_dir.with_extension(format!("{port}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
            .args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn croupier serve");
        Server { child, log }
    }

    fn wait_healthy(&mut self, api: &Api) {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(mut response) = api.agent.get(format!("{}/healthz", api.base)).call() {
                if response.status() == 200 {
                    let _ = response.body_mut().read_to_string();
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("server exited during startup ({status}): {}", self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "server not healthy in time: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server still running: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn started(data_dir: &Path, extra: &[&str]) -> (Server, Api) {
    let port = free_port();
    let mut server = Server::spawn(data_dir, port, extra);
    let api = Api::new(port);
    server.wait_healthy(&api);
    (server, api)
}

/// Runs `croupier ARGS` to completion.
fn croupier(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run croupier")
}

/// Polls `check` every 50 ms until it holds; panics with `what` after `timeout`.
fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn accounts(api: &Api, ids: &[u64]) {
    let body: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id.to_string(), "ledger": "EUR", "kind": "system"}))
        .collect();
    api.post_ok("/v1/accounts", &Value::Array(body));
}

fn transfer(id: u64, debit: u64, credit: u64, amount: u64) -> Value {
    json!({"id": id.to_string(), "debit_account_id": debit.to_string(),
           "credit_account_id": credit.to_string(), "amount": amount, "ledger": "EUR"})
}

fn assert_json_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"], code, "{}", answer.body);
    assert!(answer.body["message"].is_string(), "{}", answer.body);
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("data");
    (root, dir)
}

#[test]
fn a_second_process_on_a_live_data_dir_is_refused_naming_the_dir_and_the_holder() {
    let (_root, dir) = data_dir();
    let (mut first, api) = started(&dir, &[]);
    let holder = first.child.id().to_string();
    let dir_text = dir.display().to_string();

    let port = free_port();
    let mut second = Server::spawn(&dir, port, &[]);
    let status = second.wait_exit(STARTUP_TIMEOUT);
    assert!(!status.success(), "the second serve must fail: {status}");
    let message = second.stderr();
    assert!(
        message.contains(&dir_text),
        "names the directory: {message}"
    );
    assert!(
        message.contains(&format!("pid {holder}")),
        "names pid {holder}: {message}"
    );

    let audit = croupier(&["audit", "verify"], &dir);
    assert!(
        !audit.status.success(),
        "audit of a live directory must fail"
    );
    let message = String::from_utf8_lossy(&audit.stderr);
    assert!(
        message.contains(&dir_text),
        "names the directory: {message}"
    );
    assert!(
        message.contains(&format!("pid {holder}")),
        "names pid {holder}: {message}"
    );

    // The first one never noticed.
    assert_eq!(api.get("/healthz").status, 200);
    assert!(first.child.try_wait().unwrap().is_none());
}

#[test]
fn a_full_disk_refuses_writes_serves_reads_and_recovers_without_restart() {
    let (root, dir) = data_dir();
    let free_bytes = root.path().join("free-bytes");
    std::fs::write(&free_bytes, "100000000000").unwrap();
    let probe = free_bytes.to_str().unwrap();
    let (_server, api) = started(
        &dir,
        &["--fault-free-bytes-file", probe, "--disk-reserve", "1MiB"],
    );
    accounts(&api, &[1, 2]);
    api.post_ok("/v1/transfers", &json!([transfer(10, 1, 2, 5)]));

    std::fs::write(&free_bytes, "0").unwrap();
    eventually(
        Duration::from_secs(10),
        "/healthz reports the full disk",
        || api.get("/healthz").status == 503,
    );
    let health = api.get("/healthz");
    assert_json_error(&health, 503, "disk_full");
    let message = health.body["message"].as_str().unwrap();
    assert!(
        message.contains("writes refused") && message.contains("reads are served"),
        "{message}"
    );

    let (status, refused) = api.post("/v1/transfers", &json!([transfer(11, 1, 2, 7)]));
    assert_eq!(
        (status, refused["error"].as_str()),
        (503, Some("storage_unavailable")),
        "{refused}"
    );
    let (status, refused) = api.post(
        "/v1/accounts",
        &json!([{"id": "3", "ledger": "EUR", "kind": "system"}]),
    );
    assert_eq!(
        (status, refused["error"].as_str()),
        (503, Some("storage_unavailable")),
        "{refused}"
    );
    let account = api.get("/v1/accounts/1");
    assert_eq!(
        (account.status, account.body["debits_posted"].clone()),
        (200, json!(5))
    );
    assert_eq!(api.get("/v1/transfers/10").status, 200);
    assert_eq!(
        api.get("/v1/transfers/11").status,
        404,
        "the refused write did not happen"
    );
    assert_eq!(api.get("/v1/accounts/1/transfers").status, 200);
    let events = api.get("/v1/events?after=0");
    assert_eq!(events.status, 200);
    // Two accounts, one transfer, and the operator_action of each of the two writes.
    assert_eq!(events.body["events"].as_array().unwrap().len(), 5);

    std::fs::write(&free_bytes, "100000000000").unwrap();
    eventually(Duration::from_secs(10), "writes resume", || {
        api.post("/v1/transfers", &json!([transfer(11, 1, 2, 7)])).0 == 200
    });
    assert_eq!(api.get("/healthz").status, 200);
    let account = api.get("/v1/accounts/1");
    assert_eq!(account.body["debits_posted"], 12);
}

#[test]
fn a_fatal_storage_failure_ends_the_process_with_a_one_line_reason() {
    let (_root, dir) = data_dir();
    let (mut server, api) = started(&dir, &["--checkpoint-log-bytes", "1MiB"]);
    accounts(&api, &[1, 2]);
    // The next checkpoint cannot be written: its directory is now a regular file (this holds
    // for root too, unlike a permission change).
    let checkpoints = dir.join("checkpoint");
    std::fs::remove_dir_all(&checkpoints).unwrap();
    std::fs::write(&checkpoints, "not a directory").unwrap();

    // Write well over 1 MiB of log so that a checkpoint is due.
    let mut acked = Vec::new();
    let mut next_id = 1_000u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the node kept running: {}",
            server.stderr()
        );
        let batch: Vec<Value> = (next_id..next_id + 4_000)
            .map(|id| transfer(id, 1, 2, 1))
            .collect();
        let sent = next_id..next_id + 4_000;
        next_id += 4_000;
        let response = api
            .agent
            .post(format!("{}/v1/transfers", api.base))
            .header("content-type", "application/json")
            .send(Value::Array(batch).to_string());
        if let Ok(mut response) = response {
            if response.status() == 200 {
                let _ = response.body_mut().read_to_string();
                acked.extend(sent);
            }
        }
    };
    assert!(!status.success(), "a failed node exits non-zero: {status}");
    let stderr = server.stderr();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: the node failed: "),
        "one-line reason last: {stderr}"
    );
    assert!(
        last.contains("checkpoint"),
        "the reason names what failed: {last}"
    );
    eprintln!(
        "exit {status}, {} transfers acknowledged; last line: {last}",
        acked.len()
    );

    // Restarting on the broken directory is refused, naming it; once repaired, every
    // acknowledged transfer is there.
    let port = free_port();
    let mut refused = Server::spawn(&dir, port, &[]);
    assert!(!refused.wait_exit(STARTUP_TIMEOUT).success());
    assert!(
        refused.stderr().contains("checkpoint"),
        "{}",
        refused.stderr()
    );
    std::fs::remove_file(&checkpoints).unwrap();
    let (_server, api) = started(&dir, &[]);
    let account = api.get("/v1/accounts/2");
    assert!(
        account.body["credits_posted"].as_u64().unwrap() >= acked.len() as u64,
        "{}",
        account.body
    );
    for id in acked.iter().step_by(997) {
        assert_eq!(
            api.get(&format!("/v1/transfers/{id}")).status,
            200,
            "acked {id} lost"
        );
    }
}

#[test]
fn an_idle_node_voids_an_expired_pending_transfer_by_itself() {
    let (_root, dir) = data_dir();
    let (_server, api) = started(&dir, &[]);
    accounts(&api, &[1, 2]);
    let mut pending = transfer(7, 1, 2, 50);
    pending["flags"] = json!(["pending"]);
    pending["timeout_s"] = json!(1);
    api.post_ok("/v1/transfers", &json!([pending]));
    assert_eq!(api.get("/v1/accounts/1").body["debits_pending"], 50);

    // No other write: the node's own clock voids it.
    std::thread::sleep(Duration::from_secs(3));
    eventually(
        Duration::from_secs(5),
        "the pending transfer expired",
        || api.get("/v1/accounts/1").body["debits_pending"] == 0,
    );
    let account = api.get("/v1/accounts/1");
    assert_eq!(account.body["debits_posted"], 0);
    let events = api.get("/v1/events?after=0&limit=100");
    let types: Vec<&str> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"pending_expired"), "{types:?}");
}

/// Every event, page by page with `limit`.
fn all_events(api: &Api, limit: usize) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after = "0".to_string();
    loop {
        let page = api.get(&format!("/v1/events?after={after}&limit={limit}"));
        assert_eq!(page.status, 200, "{}", page.body);
        let batch = page.body["events"].as_array().unwrap().clone();
        assert!(batch.len() <= limit);
        if batch.is_empty() {
            assert_eq!(
                page.body["next"],
                after.as_str(),
                "an empty page resumes where it was"
            );
            return events;
        }
        after = page.body["next"].as_str().unwrap().to_owned();
        assert_eq!(batch.last().unwrap()["position"], after.as_str());
        events.extend(batch);
    }
}

fn position(event: &Value) -> u64 {
    event["position"].as_str().unwrap().parse().unwrap()
}

/// One Server-Sent Event: its id, event name and data.
#[derive(Debug)]
struct SseEvent {
    id: u64,
    name: String,
    data: Value,
}

/// Opens the SSE stream (with optional `Last-Event-ID`) and forwards its events from a
/// thread; the receiver yields them in order.
fn open_stream(api: &Api, query: &str, last_event_id: Option<&str>) -> mpsc::Receiver<SseEvent> {
    let mut request =
        agent(Duration::from_secs(60)).get(format!("{}/v1/events/stream{query}", api.base));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.call().expect("open the stream");
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let (events, received) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(response.into_body().into_reader());
        let (mut id, mut name, mut data) = (None, String::new(), String::new());
        for line in reader.lines() {
            let Ok(line) = line else { return };
            if line.is_empty() {
                if let Some(id) = id.take() {
                    let data = serde_json::from_str(&data).expect("event data is JSON");
                    let event = SseEvent {
                        id,
                        name: std::mem::take(&mut name),
                        data,
                    };
                    if events.send(event).is_err() {
                        return;
                    }
                }
                data.clear();
            } else if let Some(value) = line.strip_prefix("id:") {
                id = Some(value.trim().parse().expect("numeric id"));
            } else if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            } // ":" comments (keep-alives) and anything else are ignored
        }
    });
    received
}

fn next_events(stream: &mpsc::Receiver<SseEvent>, count: usize) -> Vec<SseEvent> {
    (0..count)
        .map(|i| {
            stream
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("stream event {i} of {count} did not arrive"))
        })
        .collect()
}

#[test]
fn the_event_feed_pages_and_streams_without_gaps_or_duplicates() {
    let (_root, dir) = data_dir();
    let (_server, api) = started(&dir, &[]);
    accounts(&api, &[1, 2]);
    for request in 0..5u64 {
        let batch: Vec<Value> = (0..5)
            .map(|i| transfer(100 + request * 5 + i, 1, 2, 1 + i))
            .collect();
        api.post_ok("/v1/transfers", &Value::Array(batch));
    }

    let whole = api.get("/v1/events?after=0&limit=10000").body["events"]
        .as_array()
        .unwrap()
        .clone();
    // Accounts and transfers, and an operator_action per write (protected mode: "loopback").
    assert_eq!(whole.len(), 2 + 25 + 6);
    for limit in [1, 4, 27, 100] {
        assert_eq!(all_events(&api, limit), whole, "pages of {limit}");
    }
    let positions: Vec<u64> = whole.iter().map(position).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {positions:?}"
    );
    assert_eq!(whole[0]["type"], "account_created");
    assert_eq!(whole[2]["type"], "operator_action");
    assert_eq!(whole[2]["key_id"], "loopback");
    assert_eq!(whole[3]["type"], "transfer_posted");
    assert_eq!(whole[3]["id"], "100");
    // `after` skips exactly what it names.
    let after_tenth = api.get(&format!("/v1/events?after={}&limit=5", positions[9]));
    assert_eq!(
        after_tenth.body["events"][0]["position"],
        positions[10].to_string()
    );

    for bad in [
        "after=abc",
        "after=-1",
        "after=99999999999999999999999",
        "limit=0",
        "limit=10001",
        "limit=x",
    ] {
        assert_json_error(&api.get(&format!("/v1/events?{bad}")), 400, "invalid_query");
    }

    // The stream resumes after P, then delivers new events as they commit.
    let stream = open_stream(&api, &format!("?after={}", positions[9]), None);
    let backlog = next_events(&stream, whole.len() - 10);
    let streamed: Vec<u64> = backlog.iter().map(|e| e.id).collect();
    assert_eq!(streamed, positions[10..].to_vec());
    for (event, paged) in backlog.iter().zip(&whole[10..]) {
        assert_eq!(&event.data, paged, "the stream's data is the paged event");
        assert_eq!(event.name, paged["type"].as_str().unwrap());
    }
    assert!(
        stream.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing more yet"
    );
    api.post_ok(
        "/v1/transfers",
        &json!([transfer(900, 2, 1, 3), transfer(901, 2, 1, 4)]),
    );
    let live = next_events(&stream, 2);
    assert_eq!(live[0].data["id"], "900");
    assert_eq!(live[1].data["id"], "901");
    assert!(live[0].id > *positions.last().unwrap() && live[1].id > live[0].id);

    // Last-Event-ID (what a reconnecting browser sends) wins over `after`.
    let resumed = open_stream(&api, "?after=0", Some(&live[0].id.to_string()));
    assert_eq!(next_events(&resumed, 1)[0].id, live[1].id);
    let bad = api
        .agent
        .get(format!("{}/v1/events/stream", api.base))
        .header("last-event-id", "not-a-position")
        .call()
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_json_error(&api.get("/v1/events/stream?after=x"), 400, "invalid_query");
}

#[test]
fn account_history_pages_back_with_a_cursor_until_the_first_transfer() {
    let (_root, dir) = data_dir();
    let (_server, api) = started(&dir, &[]);
    accounts(&api, &[1, 2, 3]);
    // Account 1's transfers, interleaved with others it is not part of.
    let mine: Vec<u64> = (0..7).map(|i| 500 + i * 2).collect();
    for &id in &mine {
        api.post_ok(
            "/v1/transfers",
            &json!([transfer(id, 1, 2, 1), transfer(id + 1, 2, 3, 1)]),
        );
    }

    let mut seen = Vec::new();
    let mut path = "/v1/accounts/1/transfers?limit=2".to_string();
    let mut pages = 0;
    loop {
        let page = api.get(&path);
        assert_eq!(page.status, 200, "{}", page.body);
        let ids: Vec<u64> = page
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(ids.len() <= 2);
        seen.extend(ids);
        pages += 1;
        match page.next_cursor {
            Some(cursor) => path = format!("/v1/accounts/1/transfers?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<u64> = mine.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 4);

    for bad in ["cursor=garbage", "cursor=c1zz", "cursor=", "limit=0"] {
        assert_json_error(
            &api.get(&format!("/v1/accounts/1/transfers?{bad}")),
            400,
            "invalid_query",
        );
    }
    // Without a cursor: the newest page, as before cursors existed.
    let all = api.get("/v1/accounts/1/transfers");
    assert_eq!(all.status, 200);
    assert_eq!(all.body.as_array().unwrap().len(), 7);
    assert_eq!(all.next_cursor, None);
    let first = api.get("/v1/accounts/1/transfers?limit=3");
    assert_eq!(first.body.as_array().unwrap().len(), 3);
    assert!(first.next_cursor.is_some());
}

#[test]
fn audit_verify_passes_on_what_a_stopped_node_wrote_across_checkpoints() {
    let (_root, dir) = data_dir();
    let (mut server, api) = started(&dir, &["--checkpoint-log-bytes", "1MiB"]);
    accounts(&api, &[1, 2]);
    api.post_ok(
        "/v1/accounts",
        &json!([{"id": "50", "ledger": "EUR", "kind": "player"}]),
    );
    api.post_ok("/v1/transfers", &json!([transfer(10, 1, 50, 1_000)]));
    let bet = json!({"transaction_id": "bet-1", "player_id": "50", "round_id": "r-1", "amount": 30, "ledger": "EUR"});
    let (status, answer) = api.post("/v1/wallet/bet", &bet);
    assert_eq!(status, 200, "{answer}");
    // Enough log for at least two checkpoints (and a compacted log behind them).
    for request in 0..8u64 {
        let first = 1_000 + request * 4_000;
        let batch: Vec<Value> = (first..first + 4_000)
            .map(|id| transfer(id, 1, 2, 1))
            .collect();
        api.post_ok("/v1/transfers", &Value::Array(batch));
        std::thread::sleep(Duration::from_millis(300)); // the checkpoint trigger looks 4× a second
    }
    let win = json!({"transaction_id": "win-1", "player_id": "50", "round_id": "r-1", "amount": 45, "ledger": "EUR"});
    let (status, answer) = api.post("/v1/wallet/win", &win);
    assert_eq!(status, 200, "{answer}");

    let terminate = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(terminate.success());
    assert!(
        server.wait_exit(Duration::from_secs(30)).success(),
        "{}",
        server.stderr()
    );

    let audit = croupier(&["audit", "verify"], &dir);
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    assert!(report.starts_with("audit passed"), "{report}");
    assert!(
        report.contains("checkpoint        entry"),
        "a checkpoint was audited: {report}"
    );
}

#[test]
fn audit_verify_passes_after_sigkill_in_the_middle_of_writes() {
    let (_root, dir) = data_dir();
    let (mut server, api) = started(&dir, &["--checkpoint-log-bytes", "1MiB"]);
    accounts(&api, &[1, 2]);
    let port = api.base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let writers: Vec<_> = (0..4u64)
        .map(|client| {
            std::thread::spawn(move || {
                let api = Api::new(port);
                for request in 0.. {
                    let first = (client + 1) * 10_000_000 + request * 500;
                    let batch: Vec<Value> = (first..first + 500)
                        .map(|id| transfer(id, 1, 2, 1))
                        .collect();
                    let sent = api
                        .agent
                        .post(format!("{}/v1/transfers", api.base))
                        .header("content-type", "application/json")
                        .send(Value::Array(batch).to_string());
                    if sent.is_err() {
                        return; // the server is gone
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1_500));
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reap");
    for writer in writers {
        writer.join().unwrap();
    }

    let audit = croupier(&["audit", "verify"], &dir);
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    // And the node starts on it afterwards.
    let (_server, api) = started(&dir, &[]);
    assert_eq!(api.get("/v1/accounts/2").status, 200);
}

#[test]
fn sigterm_with_an_open_event_stream_exits_promptly() {
    let (_root, dir) = data_dir();
    let (mut server, api) = started(&dir, &[]);
    accounts(&api, &[1, 2]);
    let stream = open_stream(&api, "?after=0", None);
    assert_eq!(next_events(&stream, 2).len(), 2);
    let stopping = Instant::now();
    let terminate = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(terminate.success());
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}: {}", server.stderr());
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "an idle event stream held the shutdown for {took:?}"
    );
}

#[test]
fn serve_starts_with_one_line_naming_version_address_data_dir_node_and_role() {
    let (_dir, data_dir) = data_dir();
    let port = free_port();
    let log = data_dir.with_extension("startup.log");
    let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["serve", "--data-dir"])
        .arg(&data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("RUST_LOG") // the default filter is what an operator sees
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn croupier serve");
    let mut server = Server { child, log };
    server.wait_healthy(&Api::new(port));
    // /healthz answers before the binary logs its start-up lines (regression: a loaded CI
    // machine read the log in between).
    eventually(STARTUP_TIMEOUT, "the start-up lines", || {
        server.stderr().contains("protected mode")
    });
    let stderr = server.stderr();
    let up: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("croupier is up"))
        .collect();
    assert_eq!(up.len(), 1, "{stderr}");
    for part in [
        format!("version=\"{}\"", env!("CARGO_PKG_VERSION")),
        format!("addr=127.0.0.1:{port}"),
        format!("data_dir={}", data_dir.display()),
        "node_id=1".to_owned(),
        "role=\"single node\"".to_owned(),
        "games=7".to_owned(),
        format!(
            "games_signed_by={}",
            croupier_games::certification::DEV_LAB_PUBLIC_KEY_HEX
        ),
    ] {
        assert!(up[0].contains(&part), "{part} missing: {}", up[0]);
    }
    assert!(!stderr.contains("openraft"), "openraft chatter: {stderr}");
    // Storage opened, up, and two warnings of a development setup: the development lab key is
    // the only trusted certifying key, and protected mode.
    assert!(stderr.contains("DEVELOPMENT lab key"), "{stderr}");
    assert!(stderr.lines().count() <= 4, "{stderr}");
}

fn get_with_key(api: &Api, path: &str, key: &str) -> u16 {
    api.agent
        .get(format!("{}{path}", api.base))
        .header("authorization", format!("Bearer {key}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .status()
        .as_u16()
}

#[test]
fn without_an_operator_key_serve_refuses_a_public_address_and_says_protected_mode_on_loopback() {
    let (_dir, data_dir) = data_dir();
    let refused = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["serve", "--data-dir"])
        .arg(&data_dir)
        .args(["--listen", "0.0.0.0:0"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("without an operator key"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let (server, api) = started(&data_dir, &[]);
    assert_eq!(api.get("/v1/events").status, 200);
    // The node answers /healthz before the binary prints its start-up lines: wait for them
    // (regression: CI read the log in between and found it empty).
    eventually(STARTUP_TIMEOUT, "the protected-mode warning", || {
        server.stderr().contains("protected mode")
    });
}

#[test]
fn keys_made_with_the_cli_are_required_at_once_and_a_revoked_one_stops_working() {
    let (_dir, data_dir) = data_dir();
    let created = croupier(
        &["keys", "create", "--role", "read_only", "--name", "ops"],
        &data_dir,
    );
    assert!(created.status.success(), "{created:?}");
    let key = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(key.starts_with("crk."), "{key}");
    let (_server, api) = started(&data_dir, &[]);
    assert_json_error(&api.get("/v1/events"), 401, "unauthorized");
    assert_eq!(get_with_key(&api, "/v1/events", &key), 200);
    // The cluster commands take the key too (or CROUPIER_KEY).
    let server = api.base.trim_start_matches("http://").to_string();
    let status = |key: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_croupier"));
        command.args(["cluster", "status", "--server", &server]);
        command.env_remove("CROUPIER_KEY");
        if let Some(key) = key {
            command.env("CROUPIER_KEY", key);
        }
        command.output().unwrap()
    };
    let refused = status(None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401 unauthorized"));
    // Past authentication, a single node answers that it has no cluster.
    let answered = status(Some(&key));
    assert!(
        String::from_utf8_lossy(&answered.stderr).contains("404 not_clustered"),
        "{answered:?}"
    );
    let listed = croupier(&["keys", "list"], &data_dir);
    let listing = String::from_utf8(listed.stdout).unwrap();
    let id = key.split('.').nth(1).unwrap();
    assert!(
        listing.contains(id) && listing.contains("read_only"),
        "{listing}"
    );
    assert!(
        !listing.contains(key.rsplit('.').next().unwrap()),
        "the secret is listed"
    );
    let revoked = croupier(&["keys", "revoke", id], &data_dir);
    assert!(revoked.status.success(), "{revoked:?}");
    eventually(Duration::from_secs(10), "the revoked key refused", || {
        get_with_key(&api, "/v1/events", &key) == 401
    });
    let unknown_role = croupier(&["keys", "create", "--role", "root"], &data_dir);
    assert_eq!(unknown_role.status.code(), Some(2));
}

#[test]
fn audit_operators_reads_and_checks_the_trail_of_a_running_node() {
    let (_dir, data_dir) = data_dir();
    let (_server, api) = started(&data_dir, &[]);
    accounts(&api, &[1, 2]);
    api.post_ok("/v1/transfers", &json!([transfer(10, 1, 2, 5)]));
    let output = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["audit", "operators", "--server", &api.base])
        .output()
        .expect("run croupier audit operators");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].contains("loopback") && lines[0].contains("create_accounts"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("create_transfers") && lines[1].contains("transfers #0..#0"),
        "{stdout}"
    );
    let trail = api.get("/v1/audit/operators").body;
    let head = trail["head"].as_str().unwrap();
    assert_eq!(
        lines[2],
        format!("operator trail verified: 2 actions, head {head}")
    );
}

/// `THP_enabled` of a process, from `/proc/PID/status` (None on a kernel without the field).
fn thp_enabled(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"))?;
    Some(line.split_whitespace().nth(1)? == "1")
}

/// Regression: mimalloc's huge pages made the first burst of requests zero 2 MiB pages on the
/// request path (bets 100-300 ms late at the start of `bench live`).
#[test]
fn serve_runs_without_transparent_huge_pages_unless_mimalloc_is_told_to_use_them() {
    if thp_enabled(std::process::id()) != Some(true) {
        return; // no such field here, or this test process already runs without them
    }
    for (allow, expected) in [(None, false), (Some("1"), true)] {
        let (_dir, data_dir) = data_dir();
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_croupier"));
        command
            .args(["serve", "--data-dir"])
            .arg(&data_dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("RUST_LOG", "warn")
            .env_remove("MIMALLOC_ALLOW_THP")
            .stdout(Stdio::null());
        if let Some(allow) = allow {
            command.env("MIMALLOC_ALLOW_THP", allow);
        }
        let log = data_dir.with_extension("thp.log");
        let child = command
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn croupier serve");
        let mut server = Server { child, log };
        server.wait_healthy(&Api::new(port));
        let enabled = thp_enabled(server.child.id());
        drop(server);
        assert_eq!(enabled, Some(expected), "MIMALLOC_ALLOW_THP={allow:?}");
    }
}
