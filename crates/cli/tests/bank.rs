//! Jepsen's bank workload end to end through the real binary: `bench bank` against one
//! `croupier serve`, then `check bank` on its history and the server's final state.

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

fn croupier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(args)
        .output()
        .expect("run croupier")
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
