//! The node processes of a `cluster local` directory: where each one's files are, starting one,
//! finding out whether a recorded pid is still that node, and stopping them.
//!
//! Signals go through the `kill` command rather than libc: this module sends a handful of them
//! per run, and the crate stays free of `unsafe`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::config::write_atomically;

pub const CONFIG_FILE: &str = "cluster.toml";
/// The shared secret of the nodes of a local cluster (`serve --cluster-secret-file`).
pub const PEER_SECRET_FILE: &str = "cluster.secret";
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a SIGKILLed process may take to disappear before it is reported.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// The files of one `cluster local` directory.
#[derive(Debug, Clone)]
pub struct LocalDir {
    /// Absolute, so pids can be matched against the command lines the nodes were started with.
    pub root: PathBuf,
}

impl LocalDir {
    /// Creates the directory if needed and makes its path absolute.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --data-dir {}", dir.display()))?;
        let root = dir
            .canonicalize()
            .with_context(|| format!("cannot resolve --data-dir {}", dir.display()))?;
        Ok(LocalDir { root })
    }

    /// An existing directory (`restart-node` never creates one).
    pub fn existing(dir: &Path) -> anyhow::Result<Self> {
        let root = dir
            .canonicalize()
            .with_context(|| format!("--data-dir {} does not exist", dir.display()))?;
        Ok(LocalDir { root })
    }

    pub fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// The cluster's peer secret, written (0600) on first use: every node of this directory
    /// proves it to the others.
    pub fn peer_secret(&self) -> anyhow::Result<PathBuf> {
        let path = self.root.join(PEER_SECRET_FILE);
        if !path.exists() {
            let secret = croupier_server::auth::keys::new_secret_hex();
            croupier_server::auth::keys::write_private(&path, format!("{secret}\n").as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(path)
    }

    pub fn node_data(&self, index: usize) -> PathBuf {
        self.root.join(format!("node-{index}"))
    }

    pub fn pid_file(&self, index: usize) -> PathBuf {
        self.root.join(format!("node-{index}.pid"))
    }

    pub fn log_file(&self, index: usize) -> PathBuf {
        self.root.join(format!("node-{index}.log"))
    }

    /// Every `node-I.pid` file with the pid it holds (`None` when it holds no pid).
    pub fn recorded(&self) -> anyhow::Result<Vec<(usize, Option<u32>)>> {
        let entries = std::fs::read_dir(&self.root)
            .with_context(|| format!("cannot list {}", self.root.display()))?;
        let mut found = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let Some(index) = pid_file_index(&name.to_string_lossy()) else {
                continue;
            };
            found.push((index, self.read_pid(index)?));
        }
        found.sort_unstable();
        Ok(found)
    }

    pub fn read_pid(&self, index: usize) -> anyhow::Result<Option<u32>> {
        let path = self.pid_file(index);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn write_pid(&self, index: usize, pid: u32) -> anyhow::Result<()> {
        write_atomically(&self.pid_file(index), format!("{pid}\n").as_bytes())
    }

    pub fn remove_pid(&self, index: usize) {
        // Already gone is fine: the point is that no pid file names a dead node.
        let _ = std::fs::remove_file(self.pid_file(index));
    }

    /// The pid recorded for node `index` when that process is alive and still this node.
    pub fn live_pid(&self, index: usize) -> anyhow::Result<Option<u32>> {
        Ok(self
            .read_pid(index)?
            .filter(|&pid| node_alive(pid, &self.node_data(index))))
    }

    /// Starts `croupier serve` for node `index` in its own process group (so a Ctrl-C in the
    /// terminal reaches only `cluster local`, which stops the nodes in order), output appended
    /// to its log, and records its pid.
    pub fn start_node(&self, index: usize) -> anyhow::Result<Child> {
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe().context("cannot find the croupier executable")?;
        let log_path = self.log_file(index);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let child = Command::new(exe)
            .arg("serve")
            .arg("--cluster-config")
            .arg(self.config())
            .arg("--node-id")
            .arg((index + 1).to_string())
            .arg("--data-dir")
            .arg(self.node_data(index))
            // One keys file for the whole cluster: `croupier keys create --data-dir DIR`.
            .arg("--keys-file")
            .arg(self.root.join(croupier_server::KEYS_FILE_NAME))
            .arg("--cluster-secret-file")
            .arg(self.peer_secret()?)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start node {}", index + 1))?;
        self.write_pid(index, child.id())?;
        Ok(child)
    }
}

/// `node-3.pid` → 3.
fn pid_file_index(name: &str) -> Option<usize> {
    let digits = name.strip_prefix("node-")?.strip_suffix(".pid")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `pid` is a running `croupier serve` of the node whose data is in `node_data`. A pid
/// file can outlive its process and the pid be reused; on Linux the command line tells, so an
/// unrelated process is never signalled. Elsewhere, any live process counts.
pub fn node_alive(pid: u32, node_data: &Path) -> bool {
    if Path::new("/proc/self").exists() {
        // A zombie's cmdline is empty, so an exited child that is not reaped yet counts as dead.
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        let want = node_data.as_os_str().as_encoded_bytes();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        return args.contains(&b"serve".as_slice()) && args.contains(&want);
    }
    signal(pid, "0")
}

/// Sends `signal` ("TERM", "KILL", or "0" to probe) to `pid`; true when `kill` succeeded.
pub fn signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Stops every node a pid file in `dir` names (SIGTERM, then SIGKILL for those still running
/// after `grace`), reaps `children` (the nodes this process started) and removes the pid files.
pub fn stop_all(
    dir: &LocalDir,
    children: &mut [(usize, Child)],
    grace: Duration,
) -> anyhow::Result<()> {
    let mut running: Vec<(usize, u32)> = Vec::new();
    for (index, pid) in dir.recorded()? {
        if let Some(pid) = pid.filter(|&pid| node_alive(pid, &dir.node_data(index))) {
            println!("stopping node {} (pid {pid})", index + 1);
            signal(pid, "TERM");
            running.push((index, pid));
        }
    }
    wait_until_stopped(dir, children, &mut running, grace);
    for &(index, pid) in &running {
        println!(
            "node {} (pid {pid}) did not stop within {grace:?}: killing it",
            index + 1
        );
        signal(pid, "KILL");
    }
    wait_until_stopped(dir, children, &mut running, KILL_WAIT);
    for (index, _) in dir.recorded()? {
        if dir.live_pid(index)?.is_none() {
            dir.remove_pid(index);
        }
    }
    if let Some(&(index, pid)) = running.first() {
        bail!(
            "node {} (pid {pid}) is still running after SIGKILL",
            index + 1
        );
    }
    Ok(())
}

/// Polls until every process in `running` is gone or `timeout` passed; keeps the ones left.
fn wait_until_stopped(
    dir: &LocalDir,
    children: &mut [(usize, Child)],
    running: &mut Vec<(usize, u32)>,
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        reap(children);
        running.retain(|&(index, pid)| node_alive(pid, &dir.node_data(index)));
        if running.is_empty() || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Collects the exit status of children that have exited (so they stop being zombies).
fn reap(children: &mut [(usize, Child)]) {
    for (_, child) in children.iter_mut() {
        let _ = child.try_wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_are_recognised_by_name_only_when_well_formed() {
        assert_eq!(pid_file_index("node-0.pid"), Some(0));
        assert_eq!(pid_file_index("node-12.pid"), Some(12));
        assert_eq!(pid_file_index("node-.pid"), None);
        assert_eq!(pid_file_index("node-1.pid.tmp"), None);
        assert_eq!(pid_file_index("node-1.log"), None);
        assert_eq!(pid_file_index("node--1.pid"), None);
    }

    #[test]
    fn recorded_pids_are_listed_by_node_index() {
        let temp = tempfile::tempdir().unwrap();
        let dir = LocalDir::open(temp.path()).unwrap();
        dir.write_pid(2, 4242).unwrap();
        dir.write_pid(0, 77).unwrap();
        std::fs::write(dir.pid_file(1), "garbage").unwrap();
        std::fs::write(dir.root.join("node-0.log"), "").unwrap();
        assert_eq!(
            dir.recorded().unwrap(),
            vec![(0, Some(77)), (1, None), (2, Some(4242))]
        );
        dir.remove_pid(2);
        assert_eq!(dir.read_pid(2).unwrap(), None);
    }

    /// A stand-in for node `index`: a shell whose command line names `serve` and the node's
    /// data directory, as a real node's does, running `script`.
    fn fake_node(dir: &LocalDir, index: usize, script: &str) -> Child {
        let child = Command::new("sh")
            .args(["-c", script, "serve"])
            .arg(dir.node_data(index))
            .spawn()
            .unwrap();
        dir.write_pid(index, child.id()).unwrap();
        child
    }

    #[test]
    fn stop_all_terminates_recorded_nodes_and_removes_every_pid_file() {
        let temp = tempfile::tempdir().unwrap();
        let dir = LocalDir::open(temp.path()).unwrap();
        let node = fake_node(&dir, 0, "trap 'kill $!; exit 0' TERM; sleep 30 & wait");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(dir.live_pid(0).unwrap(), Some(node.id()));
        // A pid file left by a node that is long gone.
        dir.write_pid(1, u32::MAX - 1).unwrap();
        let started = Instant::now();
        stop_all(&dir, &mut [(0, node)], Duration::from_secs(20)).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGTERM was enough"
        );
        assert_eq!(dir.recorded().unwrap(), vec![]);
    }

    #[test]
    fn stop_all_kills_a_node_that_ignores_sigterm() {
        let temp = tempfile::tempdir().unwrap();
        let dir = LocalDir::open(temp.path()).unwrap();
        let node = fake_node(&dir, 2, "trap '' TERM; sleep 3 & wait; sleep 3");
        std::thread::sleep(Duration::from_millis(200));
        stop_all(&dir, &mut [(2, node)], Duration::from_millis(300)).unwrap();
        assert_eq!(dir.live_pid(2).unwrap(), None);
        assert_eq!(dir.recorded().unwrap(), vec![]);
    }

    #[test]
    fn a_live_process_that_is_not_this_node_does_not_count_as_the_node() {
        let temp = tempfile::tempdir().unwrap();
        let dir = LocalDir::open(temp.path()).unwrap();
        if Path::new("/proc/self").exists() {
            // This test process is alive, but it is not `croupier serve` of node-0.
            assert!(!node_alive(std::process::id(), &dir.node_data(0)));
        }
        assert!(!node_alive(u32::MAX - 1, &dir.node_data(0)));
    }
}
