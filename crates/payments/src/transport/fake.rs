//! A scripted bank for unit tests: records every request and answers each from a closure,
//! signing its 2xx answers as an OBIE bank does (or not, or falsely, when a test asks).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::bank::{BankConnector, ConnectorConfig, Protocol};
use crate::jws::SigningKey;
use crate::transport::{JWS_HEADER, OBIE_IAT, OBIE_ISS, OBIE_TAN};

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
type Signing = dyn Fn(&Seen, usize) -> AnswerSignature + Send + Sync;

/// How the fake signs a 2xx answer (`x-jws-signature`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AnswerSignature {
    /// By the bank's key (`bank_key`, listed at `/jwks.json`), over the body, OBIE's claims.
    Genuine,
    /// No signature header.
    Absent,
    /// By the bank's key, but over other bytes: the body was changed on the way.
    Tampered,
    /// By a key the bank's JWKS does not list.
    Stranger,
}

#[derive(Clone)]
struct FakeState {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Script>,
    signing: Arc<Signing>,
}

/// The fake bank's signing key: one per test process (making RSA keys is slow).
pub(crate) fn bank_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().unwrap())
}

/// A key no fake bank lists.
fn stranger_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().unwrap())
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
    /// Every 2xx answer is signed genuinely.
    pub(crate) async fn start(
        script: impl Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static,
    ) -> FakeBank {
        FakeBank::start_signing(script, |_, _| AnswerSignature::Genuine).await
    }

    /// As `start`, `signing(request, index)` saying how each 2xx answer is signed.
    pub(crate) async fn start_signing(
        script: impl Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static,
        signing: impl Fn(&Seen, usize) -> AnswerSignature + Send + Sync + 'static,
    ) -> FakeBank {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState {
            seen: Arc::clone(&seen),
            script: Arc::new(script),
            signing: Arc::new(signing),
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
    // Error answers go unsigned, as the sandbox's do; `signing` is asked only about 2xx.
    let signing = status.is_success().then(|| (state.signing)(&seen, index));
    let signature = match signing.unwrap_or(AnswerSignature::Absent) {
        AnswerSignature::Genuine => Some(sign(bank_key(), body.as_bytes())),
        AnswerSignature::Absent => None,
        AnswerSignature::Tampered => Some(sign(bank_key(), format!("{body} ").as_bytes())),
        AnswerSignature::Stranger => Some(sign(stranger_key(), body.as_bytes())),
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(signature) = signature {
        headers.insert(JWS_HEADER, HeaderValue::from_str(&signature).unwrap());
    }
    (status, headers, body).into_response()
}

/// A detached signature over `body` with OBIE's claims, as the sandbox bank signs.
fn sign(key: &SigningKey, body: &[u8]) -> String {
    let mut claims = serde_json::Map::new();
    claims.insert(OBIE_IAT.into(), 1_700_000_000.into());
    claims.insert(OBIE_ISS.into(), "fake-bank".into());
    claims.insert(OBIE_TAN.into(), "openbanking.org.uk".into());
    claims.insert(
        "crit".into(),
        serde_json::json!([OBIE_IAT, OBIE_ISS, OBIE_TAN]),
    );
    key.sign_detached(body, claims).unwrap()
}

/// The usual answers for `/token`, `/register` and `/jwks.json`, else None.
pub(crate) fn auth_routes(seen: &Seen) -> Option<(u16, String)> {
    match seen.path.as_str() {
        "/jwks.json" => Some((200, serde_json::to_string(&bank_key().jwks()).unwrap())),
        "/token" => Some((
            200,
            r#"{"access_token":"tok","token_type":"Bearer","expires_in":3600}"#.into(),
        )),
        "/register" => Some((201, "{}".into())),
        _ => None,
    }
}
