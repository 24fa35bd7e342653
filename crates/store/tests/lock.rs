//! `DataDirLock`: one process per data directory, released on drop and on process death, and
//! the holder named in the error. Real child processes are re-executions of this test binary
//! (no external tool needed): see `child_holding_the_lock`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use croupier_store::{DataDir, DataDirLock, StoreError};

/// Set in a child process: the directory whose lock it must take.
const CHILD_DIR_ENV: &str = "CROUPIER_TEST_LOCK_CHILD_DIR";
/// What the child prints once it holds the lock.
const CHILD_READY_LINE: &str = "croupier-test-lock-held";

/// Held while spawning a child and while a test drops a lock and takes it again. A child forked
/// by a parallel test shares every open file description of this process until it execs, so a
/// lock dropped in that window stays held by the child (CI once saw `dropping_the_lock_releases_it`
/// refused "by own pid"). The product never spawns from a process that holds a data-directory
/// lock; only this test binary does both at once.
static SPAWN_OR_RELOCK: Mutex<()> = Mutex::new(());

fn spawn_or_relock_guard() -> MutexGuard<'static, ()> {
    SPAWN_OR_RELOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn expect_locked(dir: &Path) -> Option<u32> {
    match DataDirLock::acquire(dir) {
        Err(StoreError::Locked { dir: locked_dir, pid }) => {
            assert_eq!(locked_dir, dir);
            pid
        }
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("expected Locked, the lock was granted"),
    }
}

/// Not a test of its own: in a child process (env var set) it takes the lock, says so on
/// stdout and holds it until its stdin closes or it is killed. Without the env var it returns.
#[test]
fn child_holding_the_lock() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else { return };
    let _lock = DataDirLock::acquire(Path::new(&dir)).expect("the child takes the lock");
    println!("{CHILD_READY_LINE}");
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
}

/// A child process holding the lock. Its stdout stays open until it has exited: libtest
/// writes its summary there, and a closed pipe would make the child fail.
struct LockHolder {
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

/// Starts a child holding the lock on `dir` and waits until it holds it.
fn spawn_lock_holder(dir: &Path) -> LockHolder {
    let spawning = spawn_or_relock_guard();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_holding_the_lock", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("re-execute the test binary");
    drop(spawning);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // libtest prints its own lines first; the bound keeps a broken child from hanging the test.
    let mut ready = false;
    for _ in 0..20 {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.contains(CHILD_READY_LINE) {
            ready = true;
            break;
        }
    }
    assert!(ready, "the child never reported holding the lock");
    LockHolder { child, _stdout: stdout }
}

#[test]
fn second_acquire_in_the_same_process_fails_naming_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let lock = DataDirLock::acquire(dir.path()).unwrap();
    assert_eq!(lock.path(), DataDir::new(dir.path()).lock_path());
    assert_eq!(expect_locked(dir.path()), Some(std::process::id()));
    let message = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
    let expected = format!(
        "data directory {} is in use by another croupier process (pid {}); stop it first",
        dir.path().display(),
        std::process::id()
    );
    assert_eq!(message, expected);
}

#[test]
fn dropping_the_lock_releases_it() {
    let _no_fork_in_between = spawn_or_relock_guard();
    let dir = tempfile::tempdir().unwrap();
    let lock = DataDirLock::acquire(dir.path()).unwrap();
    drop(lock);
    let again = DataDirLock::acquire(dir.path()).expect("released on drop");
    drop(again);
}

#[test]
fn stale_lock_file_with_a_dead_pid_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    // A pid no live process can have (Linux pids stay below 2^22).
    std::fs::write(DataDir::new(dir.path()).lock_path(), "4194303\n").unwrap();
    let lock = DataDirLock::acquire(dir.path()).expect("an unlocked LOCK file does not block");
    let content = std::fs::read_to_string(lock.path()).unwrap();
    assert_eq!(content, format!("{}\n", std::process::id()), "the stale pid is replaced");
}

#[test]
fn lock_held_by_another_process_is_refused_naming_its_pid() {
    let dir = tempfile::tempdir().unwrap();
    let mut holder = spawn_lock_holder(dir.path());
    let pid = expect_locked(dir.path());
    drop(holder.child.stdin.take()); // the child lets go and exits
    let status = holder.child.wait().unwrap();
    assert_eq!(pid, Some(holder.child.id()));
    assert!(status.success(), "the child exited cleanly: {status}");
    DataDirLock::acquire(dir.path()).expect("the child's exit released the lock");
}

#[test]
fn lock_of_a_killed_process_is_released_by_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let mut holder = spawn_lock_holder(dir.path());
    assert_eq!(expect_locked(dir.path()), Some(holder.child.id()));
    holder.child.kill().unwrap(); // SIGKILL: no destructor runs in the child
    holder.child.wait().unwrap();
    let stale = std::fs::read_to_string(DataDir::new(dir.path()).lock_path()).unwrap();
    assert_eq!(stale.trim(), holder.child.id().to_string(), "the dead child's pid is still in the file");
    DataDirLock::acquire(dir.path()).expect("a killed holder does not block");
}

#[test]
fn missing_data_directory_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    assert!(matches!(DataDirLock::acquire(&missing), Err(StoreError::Io { .. })));
    assert!(!missing.exists());
}
