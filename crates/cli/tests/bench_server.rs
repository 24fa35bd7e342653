//! `croupier bench ledger --server`: a real `croupier serve` child process on a free port and
//! a temporary data dir, driven by the benchmark from a second process, for every distribution
//! and both encodings; every run must exit 0 and print TigerBeetle's output lines.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The server process; killed when dropped, so a failing test leaves no server behind.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server(data_dir: &Path, port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn croupier serve");
    Server(child)
}

/// Runs the benchmark (it waits for the server's /healthz itself); returns exit code and stdout.
fn bench(port: u16, extra: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args([
            "bench",
            "ledger",
            "--server",
            &format!("http://127.0.0.1:{port}"),
        ])
        .args([
            "--transfers",
            "20000",
            "--accounts",
            "100",
            "--clients",
            "2",
        ])
        .args(extra)
        .output()
        .expect("run croupier bench ledger");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    (output.status.code(), stdout)
}

fn number_after(stdout: &str, prefix: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{stdout}"));
    line[prefix.len()..]
        .trim_start_matches([' ', '='])
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

#[test]
fn bench_ledger_drives_a_separate_server_for_every_distribution_and_encoding() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let _server = spawn_server(&dir.path().join("data"), port);
    // One long-lived server for all runs: the random id high part keeps them apart.
    let runs: [&[&str]; 4] = [
        &["--distribution", "uniform"],
        &["--distribution", "zipf"],
        &["--distribution", "hot"],
        &["--distribution", "uniform", "--encoding", "json"],
    ];
    for extra in runs {
        let (code, stdout) = bench(port, extra);
        assert_eq!(code, Some(0));
        assert!(stdout.contains("mode = client-server"), "{stdout}");
        assert!(
            stdout.lines().any(|l| l.starts_with("id high = ")),
            "{stdout}"
        );
        assert_eq!(number_after(&stdout, "transfer batch size"), 8189);
        assert!(
            stdout.lines().any(|l| l.starts_with("3 batches in ")),
            "{stdout}"
        );
        assert!(number_after(&stdout, "load accepted") > 0, "{stdout}");
        let p50 = number_after(&stdout, "batch latency p50");
        let p100 = number_after(&stdout, "batch latency p100");
        assert!(p50 <= p100, "{stdout}");
        for percentile in ["p1 ", "p99"] {
            number_after(&stdout, &format!("batch latency {percentile}"));
        }
        assert!(
            stdout.contains("all 20000 transfers answered ok"),
            "{stdout}"
        );
    }
}

#[test]
fn bench_ledger_refuses_a_server_address_without_scheme() {
    let output = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args(["bench", "ledger", "--server", "127.0.0.1:1"])
        .args(["--transfers", "10"])
        .output()
        .expect("run croupier bench ledger");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("http://host:port"));
}
