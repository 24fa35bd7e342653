//! `croupier serve`'s settings through the real binary: the default file, `config check`, the
//! precedence defaults < file < CROUPIER_* environment < flags, and errors that name the key.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary with no CROUPIER_* variable of the test's own environment, so each test sets
/// exactly the ones it is about.
fn croupier() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_croupier"));
    for (name, _) in std::env::vars_os() {
        if name
            .to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("CROUPIER_")
        {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `config check` with a file: the effective settings on success.
fn check(file: &Path) -> Command {
    let mut command = croupier();
    command.args(["config", "check", "--config"]).arg(file);
    command
}

#[test]
fn the_default_file_checks_as_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let (code, default, _) = run(croupier().args(["config", "print-default"]));
    assert_eq!(code, 0);
    assert!(default.contains("# Memory budget"), "{default}");
    let file = write(dir.path(), "croupier.toml", &default);
    let (code, from_file, stderr) = run(&mut check(&file));
    assert_eq!(code, 0, "{stderr}");
    let (code, from_nothing, _) = run(croupier().args(["config", "check"]));
    assert_eq!(code, 0);
    assert_eq!(from_file, from_nothing);
    assert!(
        from_file.contains("cache_size_max = \"1GiB\""),
        "{from_file}"
    );
    assert!(from_file.contains("queue_depth_max = 16384"), "{from_file}");
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.toml",
        "node_id = 2\n[storage]\ncache_sise = 1\n",
    );
    let (code, stdout, stderr) = run(&mut check(&file));
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(stderr.contains("storage.cache_sise in "), "{stderr}");
    assert!(stderr.contains("c.toml"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    // In the environment: a section's key with one underscore instead of two.
    let (code, _, stderr) = run(croupier()
        .args(["config", "check"])
        .env("CROUPIER_STORAGE_CACHE_SIZE_MAX", "64MiB"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("storage_cache_size_max from CROUPIER_STORAGE_CACHE_SIZE_MAX"),
        "{stderr}"
    );
}

#[test]
fn the_environment_overrides_the_file_and_flags_override_both() {
    let dir = tempfile::tempdir().unwrap();
    let text = "node_id = 2\n[storage]\ncache_size_max = \"512MiB\"\ndisk_reserve = 1000\n";
    let file = write(dir.path(), "c.toml", text);
    let (code, stdout, stderr) = run(check(&file)
        .env("CROUPIER_NODE_ID", "3")
        .env("CROUPIER_STORAGE__DISK_RESERVE", "1MiB"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("node_id = 3\n"), "{stdout}");
    assert!(stdout.contains("disk_reserve = \"1MiB\""), "{stdout}");
    assert!(stdout.contains("cache_size_max = \"512MiB\""), "{stdout}");

    // A flag wins over the environment, even over a value that would be refused.
    let (code, stdout, stderr) = run(check(&file)
        .args(["--node-id", "4", "--cache-size-max", "64MiB"])
        .env("CROUPIER_NODE_ID", "3")
        .env("CROUPIER_STORAGE__CACHE_SIZE_MAX", "1MiB"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("node_id = 4\n"), "{stdout}");
    assert!(stdout.contains("cache_size_max = \"64MiB\""), "{stdout}");

    // CROUPIER_CONFIG names the file; other CROUPIER_* variables are not settings.
    let (code, stdout, stderr) = run(croupier()
        .args(["config", "check"])
        .env("CROUPIER_CONFIG", &file)
        .env("CROUPIER_TEST_KEEP", "1"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("node_id = 2\n"), "{stdout}");
}

#[test]
fn bad_values_name_their_key_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "c.toml",
        "[storage]\ncache_size_max = \"12XB\"\n",
    );
    let (code, _, stderr) = run(&mut check(&file));
    assert_eq!(code, 2);
    assert!(stderr.contains("storage.cache_size_max in "), "{stderr}");
    assert!(stderr.contains("unknown size unit \"XB\""), "{stderr}");

    let empty = write(dir.path(), "empty.toml", "");
    let (code, _, stderr) =
        run(check(&empty).env("CROUPIER_GROUP_COMMIT__QUEUE_BYTES_MAX", "lots"));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("group_commit.queue_bytes_max from CROUPIER_GROUP_COMMIT__QUEUE_BYTES_MAX"),
        "{stderr}"
    );

    // serve's own limits, reported by `config check` too.
    let (code, _, stderr) = run(check(&empty).args(["--cache-size-max", "1MiB"]));
    assert_eq!(code, 2);
    assert!(
        stderr.contains("storage.cache_size_max from --cache-size-max: must be at least 16MiB"),
        "{stderr}"
    );
}

#[test]
fn serve_runs_with_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let text = format!(
        "data_dir = {:?}\nlisten = \"127.0.0.1:0\"\nnode_id = 5\n[storage]\ncache_size_max = \"64MiB\"\n",
        data.to_str().unwrap()
    );
    let file = write(dir.path(), "croupier.toml", &text);

    // A wrong key stops serve before it starts anything.
    let bad = write(dir.path(), "bad.toml", "[cluster]\nheartbeat = 5\n");
    let (code, _, stderr) = run(croupier().arg("serve").arg("--config").arg(&bad));
    assert_eq!(code, 2);
    assert!(stderr.contains("cluster.heartbeat in "), "{stderr}");

    let mut child = croupier()
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .args(["--node-id", "7"])
        .env("CROUPIER_NODE_ID", "6")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let up = loop {
        match received.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains("croupier is up") => break Some(line),
            Ok(line) => seen.push(line),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let up = up.unwrap_or_else(|| panic!("serve did not start: {seen:?}"));
    assert!(up.contains("node_id=7"), "{up}");
    assert!(up.contains("addr=127.0.0.1:"), "{up}");
    assert!(data.is_dir(), "the data dir of the file was used");
}
