//! A scripted bank for unit tests: records every request and answers each from a closure.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::bank::{BankConnector, ConnectorConfig, Protocol};
use crate::jws::SigningKey;

/// One request as the bank saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

type Script = dyn Fn(&Seen, usize) -> (u16, String) + Send + Sync;

#[derive(Clone)]
struct FakeState {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Script>,
}

/// A running fake bank.
pub(crate) struct FakeBank {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeBank {
    /// Serves on 127.0.0.1:0; `script(request, index)` answers each request (its index among
    /// all requests so far) with a status and a JSON body. `/token` and `/register` answer
    /// success unless the script is asked first and answers something other than 0.
    pub(crate) async fn start(
        script: impl Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeBank {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState {
            seen: Arc::clone(&seen),
            script: Arc::new(script),
        };
        let app = Router::new().fallback(answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeBank { addr, seen }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests to `path`.
    pub(crate) fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }

    pub(crate) fn connector(&self, protocol: Protocol) -> BankConnector {
        BankConnector::new(ConnectorConfig {
            id: "bank-a".into(),
            protocol,
            base_url: self.url(),
            client_id: "node".into(),
            client_secret: "secret".into(),
            signing_key: Arc::new(SigningKey::generate().unwrap()),
            operator_accounts: Default::default(),
            tls: Default::default(),
            timeout_ms: 2_000,
        })
        .unwrap()
    }
}

async fn answer(State(state): State<FakeState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let seen = Seen {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        headers: parts.headers,
        body: body.to_vec(),
    };
    let index = {
        let mut all = state.seen.lock().unwrap();
        all.push(seen.clone());
        all.len() - 1
    };
    let (status, body) = (state.script)(&seen, index);
    let status = StatusCode::from_u16(status).unwrap();
    let content = [(axum::http::header::CONTENT_TYPE, "application/json")];
    (status, content, body).into_response()
}

/// The usual answers for `/token` and `/register`, else None.
pub(crate) fn auth_routes(seen: &Seen) -> Option<(u16, String)> {
    match seen.path.as_str() {
        "/token" => Some((
            200,
            r#"{"access_token":"tok","token_type":"Bearer","expires_in":3600}"#.into(),
        )),
        "/register" => Some((201, "{}".into())),
        _ => None,
    }
}
