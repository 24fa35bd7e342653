//! `croupier cluster local` and `cluster restart-node` through the real binary: three node
//! processes elect a leader, the bank workload passes across all three, a killed node stays
//! dead until `restart-node` brings it back, SIGTERM stops every node (including the restarted
//! one) and leaves no pid file, and a rerun with other flags is refused.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LEADER_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const NODES: u16 = 3;

/// `cluster local` running in the background; SIGKILLed with its nodes if the test fails.
struct Local {
    child: Child,
    dir: std::path::PathBuf,
}

impl Drop for Local {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(self.child.id(), "TERM");
            let deadline = Instant::now() + STOP_TIMEOUT;
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for index in 0..NODES {
            if let Some(pid) = read_pid(&self.dir, index) {
                signal(pid, "KILL");
            }
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status();
}

fn read_pid(dir: &Path, index: u16) -> Option<u32> {
    let text = std::fs::read_to_string(dir.join(format!("node-{index}.pid"))).ok()?;
    text.trim().parse().ok()
}

fn process_alive(pid: u32) -> bool {
    // A zombie (exited, not reaped) has an empty command line.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| !cmdline.is_empty())
}

/// A base port whose HTTP and peer ranges are both free right now.
fn free_base_port() -> u16 {
    let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    let start = 20_000 + (std::process::id() % 20_000) as u16;
    (start..start + 5_000)
        .step_by(7)
        .find(|&base| (0..NODES).all(|i| free(base + i) && free(base + 100 + i)))
        .expect("a free port range")
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

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Starts `cluster local` in `dir` and waits until it reports a leader.
fn start_local(dir: &Path, base: u16, output: &Path) -> Local {
    let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .args([
            "cluster",
            "local",
            "--nodes",
            "3",
            "--base-port",
            &base.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(std::fs::File::create(output).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let local = Local {
        child,
        dir: dir.to_owned(),
    };
    wait_for("a leader", LEADER_TIMEOUT, || {
        std::fs::read_to_string(output).is_ok_and(|text| text.contains("is the leader"))
    });
    local
}

/// The bank workload with clients on every node, then its checker.
fn bank_passes(servers: &[String], temp: &Path) {
    let history = temp.join("bank.jsonl");
    let history = history.to_str().unwrap();
    let bench = croupier(&[
        "bench",
        "bank",
        "--servers",
        &servers.join(","),
        "--duration-s",
        "3",
        "--history",
        history,
    ]);
    assert!(bench.status.success(), "{}", describe(&bench));
    let check = croupier(&[
        "check",
        "bank",
        "--history",
        history,
        "--total",
        "8000",
        "--server",
        &servers[2],
    ]);
    assert!(check.status.success(), "{}", describe(&check));
}

/// SIGKILLs node 2 (index 1): it stays dead until `restart-node` brings it back.
fn kill_and_restart(dir: &Path, output: &Path) {
    let killed = read_pid(dir, 1).expect("node-1.pid");
    signal(killed, "KILL");
    wait_for("the exit to be reported", STOP_TIMEOUT, || {
        std::fs::read_to_string(output).is_ok_and(|text| text.contains("node 2 (pid"))
    });
    let dir_arg = dir.to_str().unwrap();
    let restart = croupier(&["cluster", "restart-node", "1", "--data-dir", dir_arg]);
    assert!(restart.status.success(), "{}", describe(&restart));
    let restarted = read_pid(dir, 1).expect("node-1.pid after restart");
    assert_ne!(restarted, killed);
    let again = croupier(&["cluster", "restart-node", "1", "--data-dir", dir_arg]);
    assert!(
        !again.status.success(),
        "a running node is not started twice"
    );
}

#[test]

fn local_cluster_runs_survives_a_restart_and_stops_cleanly() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("cluster");
    let output = temp.path().join("local.out");
    let base = free_base_port();
    let mut local = start_local(&dir, base, &output);
    let status = croupier(&[
        "cluster",
        "status",
        "--server",
        &format!("127.0.0.1:{}", base + 1),
    ]);
    assert!(status.status.success(), "{}", describe(&status));
    assert!(String::from_utf8_lossy(&status.stdout).contains("leader is node"));
    let config = std::fs::read_to_string(dir.join("cluster.toml")).unwrap();
    assert!(config.contains(&format!("peer = \"127.0.0.1:{}\"", base + 102)));

    let servers: Vec<String> = (0..NODES)
        .map(|i| format!("127.0.0.1:{}", base + i))
        .collect();
    bank_passes(&servers, temp.path());
    kill_and_restart(&dir, &output);

    let pids: Vec<u32> = (0..NODES).filter_map(|i| read_pid(&dir, i)).collect();
    signal(local.child.id(), "TERM");
    wait_for("cluster local to exit", STOP_TIMEOUT, || {
        local.child.try_wait().unwrap().is_some()
    });
    let printed = std::fs::read_to_string(&output).unwrap();
    assert!(local.child.wait().unwrap().success(), "{printed}");
    for pid in pids {
        assert!(!process_alive(pid), "node pid {pid} still running");
    }
    assert!(
        (0..NODES).all(|i| read_pid(&dir, i).is_none()),
        "pid files left"
    );

    let dir_arg = dir.to_str().unwrap();
    let other = croupier(&["cluster", "local", "--nodes", "5", "--data-dir", dir_arg]);
    assert_eq!(other.status.code(), Some(2), "{}", describe(&other));
    assert!(String::from_utf8_lossy(&other.stderr).contains("--nodes asks for 5"));
}
