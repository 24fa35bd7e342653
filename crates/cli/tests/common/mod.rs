//! What the process tests share: a JSON client of a node's HTTP API, a free port, a clean
//! stop of a `croupier` child process, (`bank`) what the payments tests do at a sandbox
//! bank, and (`receiver`) an HTTP receiver standing for the operator's system.
#![allow(dead_code)] // each test binary uses a part

pub mod bank;
pub mod receiver;

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::Value;

/// A node's API over HTTP: JSON in, `(status, JSON)` out (Null for a body that is not JSON).
pub struct Api {
    pub base: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(base: impl Into<String>) -> Api {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Api {
            base: base.into(),
            agent,
        }
    }

    pub fn on_port(port: u16) -> Api {
        Api::new(format!("http://127.0.0.1:{port}"))
    }

    /// GET `path`, or POST `body` to it, with a bearer token if given; `None` when the node
    /// does not answer (not started yet, or killed).
    pub fn call(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Option<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let response = match body {
            Some(body) => {
                let mut request = self
                    .agent
                    .post(&url)
                    .header("content-type", "application/json");
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                request.send(body.to_string())
            }
            None => {
                let mut request = self.agent.get(&url);
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                request.call()
            }
        };
        let mut response = response.ok()?;
        let status = response.status().as_u16();
        let text = read_body(&mut response)?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// PUT `body` to `path`, with a bearer token if given; `None` when the node does not
    /// answer.
    pub fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Option<(u16, Value)> {
        let mut request = self
            .agent
            .put(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let mut response = request.send(body.to_string()).ok()?;
        let status = response.status().as_u16();
        let text = read_body(&mut response)?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub fn get(&self, path: &str) -> Option<(u16, Value)> {
        self.call(path, None, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Option<(u16, Value)> {
        self.call(path, None, Some(body))
    }

    /// A call that must succeed (200 or 201): its answer.
    pub fn ok(&self, path: &str, body: Option<&Value>) -> Value {
        let (status, answer) = self.call(path, None, body).expect("the node answers");
        assert!(status == 200 || status == 201, "{path}: {status} {answer}");
        answer
    }
}

/// An answer's body as text; `None` if it cannot be read. Bounded well above ureq's default
/// 10 MiB: a round of 60,000 bets (the live tables' flood) answers more than that.
fn read_body(response: &mut ureq::http::Response<ureq::Body>) -> Option<String> {
    const BODY_BYTES_MAX: u64 = 256 << 20;
    response
        .body_mut()
        .with_config()
        .limit(BODY_BYTES_MAX)
        .read_to_string()
        .ok()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// SIGTERM, as an operator stops a node, and a clean exit.
pub fn stop(child: &mut Child) {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "stopped with {status}");
}

/// A `croupier serve` child process and its API; killed when dropped, so a failing test
/// leaves no server behind.
pub struct Node {
    pub child: Child,
    pub api: Api,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `croupier serve ARGS --listen 127.0.0.1:PORT` (stderr to `log`, `RUST_LOG=warn`) and
/// waits until it answers `/healthz` with 200.
pub fn serve(
    args: &[&std::ffi::OsStr],
    port: u16,
    log: &std::path::Path,
    timeout: Duration,
) -> Node {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_croupier"))
        .arg("serve")
        .args(args)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn croupier serve");
    let mut node = Node {
        child,
        api: Api::on_port(port),
    };
    let deadline = std::time::Instant::now() + timeout;
    while !matches!(node.api.get("/healthz"), Some((200, _))) {
        if let Some(status) = node.child.try_wait().unwrap() {
            panic!("serve exited during start-up: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not healthy within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    node
}

/// `serve` with a log file of its own in `dir` (named by the start's time, so a restarted
/// node does not overwrite the log of the one before) and a minute to become healthy.
pub fn serve_logged(args: &[std::ffi::OsString], port: u16, dir: &std::path::Path) -> Node {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|arg| arg.as_os_str()).collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let log = dir.join(format!("serve-{}.log", nanos.as_nanos()));
    serve(&args, port, &log, Duration::from_secs(60))
}

/// A `croupier sandbox KIND` child process; killed when dropped, so a failing test leaves no
/// process behind.
pub struct SandboxProcess {
    pub child: Child,
    /// What its ready line says after "sandbox KIND listening on ": the address, then any
    /// more the sandbox tells (the identity provider's issuer).
    pub ready: String,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SandboxProcess {
    /// Starts `croupier sandbox KIND --listen 127.0.0.1:0 --data-dir DIR EXTRA` and waits for
    /// its ready line.
    pub fn start(kind: &str, dir: &std::path::Path, extra: &[&str]) -> SandboxProcess {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_croupier"))
            .args(["sandbox", kind, "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn croupier sandbox");
        let stdout = child.stdout.take().unwrap();
        let (lines, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = lines.send(line.unwrap_or_default());
            }
        });
        let mut process = SandboxProcess {
            child,
            ready: String::new(),
        };
        let line = ready
            .recv_timeout(Duration::from_secs(60))
            .expect("the ready line");
        let prefix = format!("sandbox {kind} listening on ");
        process.ready = line.strip_prefix(&prefix).expect(&line).to_owned();
        process
    }

    /// The address it listens on.
    pub fn addr(&self) -> &str {
        self.ready.split(' ').next().unwrap_or_default()
    }
}
