//! `croupier cluster status|add-node|remove-node|transfer-leader` through the real binary,
//! against a stand-in server that answers the cluster routes of the API contract with canned
//! answers and records what it was asked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// A request as the stand-in saw it: "METHOD /path" and the body.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// Serves every connection with one answer chosen by `answer(method_and_path)`, then closes it.
fn stand_in(answer: fn(&str) -> (u16, String)) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let target: Vec<&str> = request_line.split_whitespace().take(2).collect();
            let target = target.join(" ");
            let (status, text) = answer(&target);
            record
                .lock()
                .unwrap()
                .push((target, String::from_utf8(body).unwrap()));
            let length = if status == 204 {
                String::new()
            } else {
                format!("content-length: {}\r\n", text.len())
            };
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n{text}"
            );
            let _ = reader.get_mut().write_all(reply.as_bytes());
        }
    });
    (addr, seen)
}

fn status_json() -> Value {
    json!({"node_id": 1, "leader_id": 2, "term": 3, "nodes": [
        {"node_id": 1, "role": "follower", "voter": true, "term": 3, "last_log_index": 10,
         "applied_index": 10, "lag": 0, "peer_addr": "127.0.0.1:8100", "api_addr": "127.0.0.1:8000"},
        {"node_id": 2, "role": "leader", "voter": true, "term": 3, "last_log_index": 10,
         "applied_index": 10, "lag": 0, "peer_addr": "127.0.0.1:8101", "api_addr": "127.0.0.1:8001"},
        {"node_id": 3, "role": "unreachable", "voter": true, "term": null, "last_log_index": null,
         "applied_index": null, "lag": null, "peer_addr": "127.0.0.1:8102", "api_addr": "127.0.0.1:8002"}
    ]})
}

fn healthy_cluster(target: &str) -> (u16, String) {
    match target {
        "DELETE /v1/cluster/nodes/3" => (204, String::new()),
        _ => (200, status_json().to_string()),
    }
}

fn cluster(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_croupier"))
        .arg("cluster")
        .args(args)
        .output()
        .expect("run croupier cluster")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn status_prints_a_table_or_the_raw_json() {
    let (addr, seen) = stand_in(healthy_cluster);
    let table = cluster(&["status", "--server", &addr]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(
        text.starts_with("node 1 answered: leader is node 2, term 3\n"),
        "{text}"
    );
    assert!(
        text.contains("\n2     leader       yes    3     10"),
        "{text}"
    );
    assert!(
        text.contains("\n3     unreachable  yes    -     -"),
        "{text}"
    );

    let raw = cluster(&["status", "--server", &format!("http://{addr}"), "--json"]);
    assert!(raw.status.success(), "{}", stderr(&raw));
    let printed: Value = serde_json::from_str(&stdout(&raw)).expect("--json prints JSON");
    assert_eq!(printed, status_json());
    assert_eq!(seen.lock().unwrap()[0].0, "GET /v1/cluster/status");
}

#[test]
fn membership_commands_send_the_contract_requests() {
    let (addr, seen) = stand_in(healthy_cluster);
    let add = cluster(&[
        "add-node",
        "--server",
        &addr,
        "--node-id",
        "4",
        "--peer-addr",
        "127.0.0.1:8103",
        "--api-addr",
        "127.0.0.1:8003",
    ]);
    assert!(add.status.success(), "{}", stderr(&add));
    assert!(
        stdout(&add).starts_with("node 4 added\nnode 1 answered"),
        "{}",
        stdout(&add)
    );
    let remove = cluster(&["remove-node", "--server", &addr, "--node-id", "3"]);
    assert!(remove.status.success(), "{}", stderr(&remove));
    assert_eq!(stdout(&remove), "node 3 removed\n");
    let transfer = cluster(&["transfer-leader", "--server", &addr, "--node-id", "1"]);
    assert!(transfer.status.success(), "{}", stderr(&transfer));
    assert!(stdout(&transfer).starts_with("leadership transferred to node 1\n"));

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, "POST /v1/cluster/nodes");
    let body: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(
        body,
        json!({"node_id": 4, "peer_addr": "127.0.0.1:8103", "api_addr": "127.0.0.1:8003"})
    );
    assert_eq!(
        seen[1],
        ("DELETE /v1/cluster/nodes/3".into(), String::new())
    );
    assert_eq!(seen[2].0, "POST /v1/cluster/leader");
    assert_eq!(
        serde_json::from_str::<Value>(&seen[2].1).unwrap(),
        json!({"node_id": 1})
    );
}

#[test]
fn refusals_exit_1_with_the_servers_message() {
    let (addr, _) = stand_in(|_| {
        let body = json!({"error": "unknown_node", "message": "node 9 is not a member"});
        (404, body.to_string())
    });
    let output = cluster(&["transfer-leader", "--server", &addr, "--node-id", "9"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("refused (404 unknown_node): node 9 is not a member"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unreachable_server_exits_1_with_a_clear_message() {
    // Bound then closed: nothing listens on this port any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let output = cluster(&["status", "--server", &addr]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!("cannot reach the server at {addr}")),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_usage_exits_2() {
    let output = cluster(&["status", "--server", "no-port"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("expected host:port"),
        "{}",
        stderr(&output)
    );
    let output = cluster(&[
        "restart-node",
        "0",
        "--data-dir",
        "/nonexistent/croupier-test",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("does not exist"),
        "{}",
        stderr(&output)
    );
}

/// A trail whose record does not hash to what it claims: `audit operators` says where it
/// breaks and exits 1.
#[test]
fn audit_operators_exits_1_naming_the_action_that_breaks_the_chain() {
    let (addr, _) = stand_in(|_| {
        let action = json!({
            "seq": 0, "timestamp": 1, "key_id": "ops", "action": "create_accounts",
            "items": 1, "rejected": 0, "subject": "5", "transfer_seq_first": 0, "transfers": 0,
            "prev_hash": "00".repeat(32), "hash": "11".repeat(32)
        });
        let page = json!({"actions": [action], "count": 1, "head": "11".repeat(32)});
        (200, page.to_string())
    });
    let output = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["audit", "operators", "--server", &addr])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BROKEN at action 0"), "{stderr}");
}
