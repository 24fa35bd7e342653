//! The node every integration test of the server talks to: a real `croupier_server` on a
//! temporary data dir and a socket on 127.0.0.1:0, in a runtime of its own, stopped when the
//! test is done; and the plain HTTP client the tests send their requests with.
//!
//! Each test file is a crate of its own that uses part of this module, hence the allowance.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use croupier_server::{start, RunningServer, ServeConfig};
use serde_json::Value;
use tempfile::TempDir;

/// How long one request may take before the test fails (a loaded CI machine is slow).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Read timeout of a raw connection: a test waiting on an answer that never comes fails.
const RAW_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct TestServer {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    /// The settings it started with, for a restart on the same data dir.
    config: ServeConfig,
    dir: TempDir,
    base: String,
    agent: ureq::Agent,
}

impl TestServer {
    /// A node with the default settings on a fresh data dir.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// A node whose settings `tune` changes first (limits, timeouts) on a fresh data dir.
    pub fn start_with(tune: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), tune)
    }

    /// As `start_with`, on a data dir the test prepared (a keys file in it, say).
    pub fn start_in(dir: TempDir, tune: impl FnOnce(&mut ServeConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut config = ServeConfig::new(dir.path(), "127.0.0.1:0".parse().unwrap());
        tune(&mut config);
        let server = runtime
            .block_on(start(config.clone()))
            .expect("server starts");
        let base = format!("http://{}", server.local_addr());
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        TestServer {
            runtime,
            server: Some(server),
            config,
            dir,
            base,
            agent,
        }
    }

    /// Stops the server gracefully and starts a new one on the same data dir and settings
    /// (on a new port).
    pub fn restart(&mut self) {
        let server = self.server.take().expect("running");
        self.runtime
            .block_on(server.shutdown())
            .expect("clean shutdown");
        let server = self
            .runtime
            .block_on(start(self.config.clone()))
            .expect("server restarts");
        self.base = format!("http://{}", server.local_addr());
        self.server = Some(server);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.as_ref().expect("running").local_addr()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn agent(&self) -> &ureq::Agent {
        &self.agent
    }

    /// A raw TCP connection, for what an HTTP client would not send.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr()).expect("connect");
        stream.set_read_timeout(Some(RAW_READ_TIMEOUT)).unwrap();
        stream
    }

    /// A request to build up (headers) and send.
    pub fn request(&self, method: &str, path: &str) -> Call<'_> {
        Call {
            agent: &self.agent,
            builder: ureq::http::Request::builder()
                .method(method)
                .uri(self.url(path)),
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path).call().status_json()
    }

    pub fn get_text(&self, path: &str) -> (u16, String) {
        let answer = self.request("GET", path).call();
        (answer.status, answer.text())
    }

    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string(), Some("application/json"))
    }

    /// A POST of `body` as it is, with `content_type` if one is given.
    pub fn post_raw(&self, path: &str, body: &str, content_type: Option<&str>) -> (u16, Value) {
        let mut call = self.request("POST", path);
        if let Some(content_type) = content_type {
            call = call.header("content-type", content_type);
        }
        call.send(body.as_bytes()).status_json()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Not a panic: it would hide the test's own failure; the data dir goes anyway.
            if let Err(error) = self.runtime.block_on(server.shutdown()) {
                eprintln!("the test server did not stop cleanly: {error}");
            }
        }
    }
}

/// One request being built.
pub struct Call<'a> {
    agent: &'a ureq::Agent,
    builder: ureq::http::request::Builder,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// `Authorization: Bearer TOKEN` when a token is given.
    pub fn bearer(self, token: Option<&str>) -> Self {
        match token {
            Some(token) => self.header("authorization", &format!("Bearer {token}")),
            None => self,
        }
    }

    /// Sends the request without a body (no Content-Length either, as for a plain GET).
    pub fn call(self) -> Answer {
        let request = self.builder.body(()).expect("request");
        Answer::read(self.agent.run(request))
    }

    pub fn send(self, body: &[u8]) -> Answer {
        let request = self.builder.body(body.to_vec()).expect("request");
        Answer::read(self.agent.run(request))
    }
}

/// An answer read whole.
pub struct Answer {
    pub status: u16,
    pub headers: ureq::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    fn read(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut response = response.expect("HTTP");
        let body = response.body_mut().read_to_vec().expect("body");
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON: null when empty, and a failed test (quoting it) when not JSON.
    pub fn json(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        parse_json(&self.text())
    }

    pub fn status_json(&self) -> (u16, Value) {
        (self.status, self.json())
    }
}

pub fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

/// Registers and funds a player (protected mode: the test is a local operator), logs it in.
pub fn player(node: &TestServer, name: &str, funds: u64) -> (String, String) {
    let body =
        serde_json::json!({"username": name, "password": "correct horse", "currencies": ["EUR"]});
    let (status, created) = node.post("/v1/players", &body);
    assert_eq!(status, 201, "{created}");
    let player_id = created["player_id"].as_str().unwrap().to_string();
    let sequence = croupier_core::ids::player_sequence(player_id.parse().unwrap()).unwrap();
    let wallet = croupier_core::ids::player_wallet_account_id(sequence, 0);
    let (status, _) = node.post(
        "/v1/accounts",
        &serde_json::json!([{"id": "9001", "ledger": "EUR", "kind": "system"}]),
    );
    assert!(status == 200, "funding account");
    let transfer = serde_json::json!([{"id": format!("{}", 7000 + sequence), "debit_account_id": "9001", "credit_account_id": wallet.to_string(), "amount": funds, "ledger": "EUR"}]);
    assert_eq!(node.post("/v1/transfers", &transfer).0, 200);
    let login = serde_json::json!({"username": name, "password": "correct horse"});
    let (status, session) = node.post("/v1/players/login", &login);
    assert_eq!(status, 200, "{session}");
    (player_id, session["token"].as_str().unwrap().to_string())
}
