//! Jepsen's bank workload end to end through the real binary: `bench bank` against one
//! `croupier serve`, then `check bank` on its history and the server's final state; and the
//! operator key these commands (and `bench ledger --server`) send to a node that has keys.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// A `croupier serve` process; killed when dropped, so a failing test leaves none behind.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(data_dir: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn croupier serve");
        let mut server = Server { child, port };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&mut self) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let url = format!("http://127.0.0.1:{}/healthz", self.port);
        while agent.get(&url).call().is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("croupier serve exited during startup: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "croupier serve not healthy in time"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs croupier with `CROUPIER_KEY` set to `key`, or unset (whatever the caller's shell has).
fn croupier_with_key(args: &[&str], key: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_croupier"));
    command.args(args).env_remove("CROUPIER_KEY");
    if let Some(key) = key {
        command.env("CROUPIER_KEY", key);
    }
    command.output().expect("run croupier")
}

fn croupier(args: &[&str]) -> Output {
    croupier_with_key(args, None)
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn bank_workload_on_one_node_passes_the_checker() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start(&temp.path().join("data"));
    let url = format!("http://127.0.0.1:{}", server.port);
    let history = temp.path().join("history.jsonl");
    let history = history.to_str().unwrap();
    let bench = croupier(&[
        "bench",
        "bank",
        "--servers",
        &url,
        "--accounts",
        "5",
        "--balance",
        "100",
        "--clients",
        "3",
        "--duration-s",
        "4",
        "--seed",
        "7",
        "--history",
        history,
    ]);
    assert!(bench.status.success(), "{}", describe(&bench));
    let summary = String::from_utf8_lossy(&bench.stdout);
    assert!(summary.contains("transfer"), "{summary}");

    let lines = std::fs::read_to_string(history).unwrap();
    let ok_transfers = lines
        .lines()
        .filter(|line| line.contains(r#""type":"ok","f":"transfer""#))
        .count();
    assert!(
        ok_transfers > 10,
        "too few transfers to mean anything: {summary}"
    );

    let check = croupier(&[
        "check",
        "bank",
        "--history",
        history,
        "--total",
        "500",
        "--server",
        &url,
    ]);
    assert!(check.status.success(), "{}", describe(&check));
    assert!(String::from_utf8_lossy(&check.stdout).ends_with("valid\n"));

    // The same history against the wrong total: every read is a violation.
    let wrong = croupier(&["check", "bank", "--history", history, "--total", "501"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", describe(&wrong));
    assert!(String::from_utf8_lossy(&wrong.stdout).contains("expected 501"));
}

#[test]
fn bench_bank_against_no_server_fails_clearly() {
    let temp = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let history = temp.path().join("history.jsonl");
    let bench = croupier(&[
        "bench",
        "bank",
        "--servers",
        &format!("127.0.0.1:{port}"),
        "--duration-s",
        "1",
        "--history",
        history.to_str().unwrap(),
        "--request-timeout-s",
        "1",
    ]);
    assert_eq!(bench.status.code(), Some(1), "{}", describe(&bench));
    assert!(
        String::from_utf8_lossy(&bench.stderr).contains("setting up the bank"),
        "{}",
        describe(&bench)
    );
}

/// A node whose keys file holds an admin key, so it is out of protected mode; and that key.
fn start_with_an_operator_key(data_dir: &Path) -> (Server, String) {
    let data_arg = data_dir.to_str().unwrap();
    let created = croupier(&["keys", "create", "--role", "admin", "--data-dir", data_arg]);
    assert!(created.status.success(), "{}", describe(&created));
    let key = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    (Server::start(data_dir), key)
}

fn with_key<'a>(args: &[&'a str], key: &'a str) -> Vec<&'a str> {
    [args, &["--key", key]].concat()
}

/// Exit 1, a message that says what to do, and no panic.
fn assert_refused_for_want_of_a_key(output: &Output) {
    assert_eq!(output.status.code(), Some(1), "{}", describe(output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("--key or CROUPIER_KEY"),
        "{}",
        describe(output)
    );
    assert!(!stderr.contains("panicked"), "{}", describe(output));
}

fn assert_key_never_printed(outputs: &[&Output], key: &str) {
    let secret = key.rsplit('.').next().unwrap();
    for output in outputs {
        let printed = describe(output);
        assert!(!printed.contains(secret), "the key is printed: {printed}");
    }
}

#[test]
fn bench_and_check_bank_send_the_operator_key_and_without_one_fail_clearly() {
    let temp = tempfile::tempdir().unwrap();
    let (server, key) = start_with_an_operator_key(&temp.path().join("data"));
    let url = format!("http://127.0.0.1:{}", server.port);
    let history = temp.path().join("history.jsonl");
    let history = history.to_str().unwrap();
    let mut bench_args = vec!["bench", "bank", "--servers", &url, "--history", history];
    bench_args.extend("--accounts 3 --balance 100 --clients 2 --duration-s 1".split(' '));

    // Refused at setup and at once: the setup's retries (10 s) are for nodes still starting.
    let started = Instant::now();
    let refused_bench = croupier(&bench_args);
    assert_refused_for_want_of_a_key(&refused_bench);
    assert!(started.elapsed() < Duration::from_secs(8), "retried");
    let bench = croupier(&with_key(&bench_args, &key));
    assert!(bench.status.success(), "{}", describe(&bench));
    assert!(String::from_utf8_lossy(&bench.stdout).contains("--key KEY"));

    let check_args = [
        "check",
        "bank",
        "--history",
        history,
        "--total",
        "300",
        "--server",
        &url,
    ];
    let check = croupier_with_key(&check_args, Some(&key));
    assert!(check.status.success(), "{}", describe(&check));
    assert!(String::from_utf8_lossy(&check.stdout).ends_with("valid\n"));
    let refused_check = croupier(&check_args);
    assert_refused_for_want_of_a_key(&refused_check);
    let unknown = croupier(&with_key(&check_args, "crk.op-0000000000.00"));
    assert_eq!(unknown.status.code(), Some(1), "{}", describe(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("does not accept this key"));
    assert_key_never_printed(&[&refused_bench, &bench, &check, &refused_check], &key);
}

#[test]
fn bench_ledger_against_a_server_sends_the_operator_key_and_without_one_fails_clearly() {
    let temp = tempfile::tempdir().unwrap();
    let (server, key) = start_with_an_operator_key(&temp.path().join("data"));
    let url = format!("http://127.0.0.1:{}", server.port);
    let mut args = vec!["bench", "ledger", "--server", &url];
    args.extend("--accounts 10 --transfers 1000".split(' '));
    let ledger = croupier(&with_key(&args, &key));
    assert!(ledger.status.success(), "{}", describe(&ledger));
    let stdout = String::from_utf8_lossy(&ledger.stdout);
    assert!(
        stdout.contains("all 1000 transfers answered ok"),
        "{stdout}"
    );
    let refused = croupier(&args);
    assert!(!refused.status.success(), "{}", describe(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("--key or CROUPIER_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_key_never_printed(&[&ledger, &refused], &key);
}
