//! The HTTP side both protocols share: one pooled `reqwest::Client` per bank, OAuth2
//! client-credentials tokens (cached; fetched by one caller at a time; refreshed once after a
//! 401), the node's key registration, Confirmation of Payee, and the classification of every
//! failure into the three outcomes of `ConnectorError`.
//!
//! Classification (what the node may do next depends on it; money must never move twice):
//!
//! | what happened                                              | outcome     |
//! |------------------------------------------------------------|-------------|
//! | connection refused, DNS failure, connect timeout           | `Retryable` |
//! | connection closed before the request was handed to it      | `Retryable` |
//! | HTTP 408, 429, 503                                          | `Retryable` |
//! | token request failed for any reason but a refusal           | `Retryable` |
//! | other 5xx, 1xx, 3xx                                         | `Unknown`   |
//! | timeout or broken connection after the request was sent     | `Unknown`   |
//! | 2xx whose body cannot be read or parsed                     | `Unknown`   |
//! | 401 (after one token refresh and retry)                     | `Declined`  |
//! | other 4xx (the bank's error code, else `http_<status>`)     | `Declined`  |
//! | the token endpoint refusing the client (`invalid_client`…)  | `Declined`  |
//!
//! 503 is retryable because the sandbox's fault and "down" answers are 503 before doing
//! anything (PROTOCOLS.md, Faults), as real banks document for maintenance windows; a 500 or
//! 502 may come from a bank that already acted, so it is unknown.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RequestTokenError, Scope,
    TokenResponse, TokenUrl,
};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use crate::bank_keys::{BankKeys, BankKeysError};
use crate::connector::{AccountRef, ConnectorError, Party, PayeeMatch};
use crate::jws::{Jwks, JwsError, SigningKey};

/// A token is refreshed this long before the bank says it lapses, so that no request leaves
/// with a token about to expire on the way.
const TOKEN_EXPIRY_MARGIN_MS: u64 = 30_000;
/// A token's lifetime when the bank's answer gives no `expires_in`.
const TOKEN_DEFAULT_LIFETIME_MS: u64 = 300_000;
/// How much of a bank's error text a `Declined` keeps: enough to read, short enough for logs.
const BANK_MESSAGE_CHARS_MAX: usize = 200;
/// Idle pooled connections kept per bank (the node sends up to ~1,000 payouts/s).
const POOL_IDLE_PER_HOST_MAX: usize = 256;
/// The OAuth2 scope asked for (PROTOCOLS.md: optional, `payments`).
const TOKEN_SCOPE: &str = "payments";

/// OBIE's critical JWS header claims: on our requests' signatures and on the bank's answers'.
pub(crate) const OBIE_IAT: &str = "http://openbanking.org.uk/iat";
pub(crate) const OBIE_ISS: &str = "http://openbanking.org.uk/iss";
pub(crate) const OBIE_TAN: &str = "http://openbanking.org.uk/tan";
/// The header a detached JWS travels in, both ways.
pub(crate) const JWS_HEADER: &str = "x-jws-signature";

type OAuthClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// What a transport is made from (the protocol-independent part of `bank::ConnectorConfig`).
pub(crate) struct TransportConfig {
    pub id: String,
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub signing_key: Arc<crate::jws::SigningKey>,
    /// The operator's account per currency, if configured (else discovered).
    pub operator_accounts: BTreeMap<String, Party>,
    pub timeout_ms: u64,
    pub tls: TlsClient,
}

/// How the node's client meets a bank's TLS: the public web roots are always trusted; a
/// bank (or a sandbox) with its own CA adds it, and a bank that asks for a client
/// certificate (mutual TLS: OBIE transport certificates, eIDAS QWACs) gets this one.
#[derive(Clone, Default)]
pub struct TlsClient {
    /// PEM certificates to trust besides the public roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate (PEM, chain first) followed by its PKCS#8 private key (PEM).
    pub identity_pem: Option<Vec<u8>>,
}

// The private key never reaches Debug output.
impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.identity_pem.is_some())
            .finish()
    }
}

impl TlsClient {
    /// `builder` with this trust and identity; a PEM that does not parse is refused.
    fn apply(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        builder = builder.use_rustls_tls();
        if let Some(ca) = &self.ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| format!("the CA file: {e}"))?;
            if roots.is_empty() {
                return Err("the CA file holds no certificate".into());
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        if let Some(identity) = &self.identity_pem {
            let identity = reqwest::Identity::from_pem(identity)
                .map_err(|e| format!("the client certificate or key: {e}"))?;
            builder = builder.identity(identity);
        }
        Ok(builder)
    }
}

/// One bank link, shared (`Arc`) by every call of a connector.
pub(crate) struct Transport {
    id: String,
    http: reqwest::Client,
    /// No trailing slash.
    base_url: String,
    /// `host[:port]` of the bank: the `tan` claim of OBIE signatures.
    authority: String,
    client_id: String,
    client_secret: String,
    signing_key: Arc<SigningKey>,
    oauth: OAuthClient,
    tokens: TokenCache,
    /// The operator's account as configured, for every currency.
    configured_operators: BTreeMap<String, Party>,
    /// Operator accounts discovered through account information, by currency.
    operator_accounts: RwLock<HashMap<String, Party>>,
    /// The bank's public keys, for notifications and OBIE answers.
    bank_keys: BankKeys,
}

// Secrets, tokens and account numbers never reach Debug output.
impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("id", &self.id)
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A request to the bank's API: the exact body bytes (as signed, if signed) and the
/// protocol's headers. The transport adds the bearer token.
pub(crate) struct ApiRequest {
    pub method: Method,
    /// From the base URL on, starting with `/`; path segments already encoded.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Option<Vec<u8>>,
}

impl ApiRequest {
    pub(crate) fn get(path: String) -> ApiRequest {
        ApiRequest {
            method: Method::GET,
            path,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    /// A JSON POST of `body`, serialised once here: these bytes are what is signed and sent.
    pub(crate) fn post_json(path: String, body: &Value) -> ApiRequest {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        ApiRequest {
            method: Method::POST,
            path,
            headers,
            // Serialising a `Value` cannot fail (its map keys are strings).
            body: Some(body.to_string().into_bytes()),
        }
    }

    /// Adds a header whose value the connector made (ids, digests, signatures).
    pub(crate) fn header(&mut self, name: &'static str, value: &str) -> Result<(), ConnectorError> {
        let value = HeaderValue::from_str(value)
            .map_err(|_| ConnectorError::Retryable(format!("{name} is not a header value")))?;
        self.headers.insert(name, value);
        Ok(())
    }
}

/// A 2xx answer.
pub(crate) struct ApiResponse {
    pub body: Vec<u8>,
    /// The bank's detached JWS over `body` (`x-jws-signature`), if it sent one as text.
    pub signature: Option<String>,
}

// A bank's answer names accounts: Debug shows only its size.
impl std::fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiResponse")
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl ApiResponse {
    /// The body as `T`; a 2xx the connector cannot read is an unknown outcome (the bank may
    /// have acted on the request).
    pub(crate) fn json<T: DeserializeOwned>(&self, what: &str) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ConnectorError::Unknown(format!("the bank's {what} is unreadable: {e}")))
    }
}

/// An access token; its value never reaches Debug output.
pub(crate) struct Token {
    secret: String,
    fresh_until: Instant,
    /// Which fetch made it: a 401 only discards the token it was answered to.
    generation: u64,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Callers read the current token under a short read lock (never held across an await); a
/// missing or stale one is fetched by one caller at a time behind `refresh`, the others
/// waiting there and then taking what it fetched.
#[derive(Default)]
struct TokenCache {
    current: RwLock<Option<Arc<Token>>>,
    refresh: tokio::sync::Mutex<()>,
    generations: AtomicU64,
}

impl TokenCache {
    fn fresh(&self) -> Option<Arc<Token>> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .filter(|token| token.fresh_until > Instant::now())
            .cloned()
    }

    fn current_generation(&self) -> Option<u64> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|token| token.generation)
    }

    fn set(&self, token: Option<Arc<Token>>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = token;
    }
}

impl Transport {
    /// A transport for one bank; fails only on a configuration that cannot work.
    pub(crate) fn new(config: TransportConfig) -> Result<Transport, ConnectorError> {
        let invalid = |message: String| ConnectorError::Declined {
            code: "invalid_config".into(),
            message,
        };
        let base_url = config.base_url.trim_end_matches('/').to_string();
        let url = Url::parse(&base_url)
            .map_err(|e| invalid(format!("base_url {base_url:?} is not a URL: {e}")))?;
        let host = url
            .host_str()
            .ok_or_else(|| invalid(format!("base_url {base_url:?} has no host")))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        if config.timeout_ms == 0 {
            return Err(invalid("timeout_ms must be above 0".into()));
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let builder = config
            .tls
            .apply(reqwest::Client::builder())
            .map_err(invalid)?;
        let http = builder
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(POOL_IDLE_PER_HOST_MAX)
            // Never follow a bank's redirect: a POST must not be replayed elsewhere, and the
            // oauth2 crate asks for it (a redirected token request could leak the secret).
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid(format!("no HTTP client: {e}")))?;
        let token_url = TokenUrl::new(format!("{base_url}/token"))
            .map_err(|e| invalid(format!("token URL: {e}")))?;
        // Credentials as form fields, not HTTP Basic: the oauth2 crate form-encodes Basic
        // credentials (RFC 6749 §2.3.1) and a bank that does not decode them would refuse a
        // secret with reserved characters. PROTOCOLS.md allows both.
        let oauth = BasicClient::new(ClientId::new(config.client_id.clone()))
            .set_client_secret(ClientSecret::new(config.client_secret.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(token_url);
        Ok(Transport {
            id: config.id,
            http,
            base_url,
            authority,
            client_id: config.client_id,
            client_secret: config.client_secret,
            signing_key: config.signing_key,
            oauth,
            tokens: TokenCache::default(),
            configured_operators: config.operator_accounts,
            operator_accounts: RwLock::new(HashMap::new()),
            bank_keys: BankKeys::default(),
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The node's public key set, as registered.
    #[cfg(test)]
    pub(crate) fn signing_key_jwks(&self) -> crate::jws::Jwks {
        self.signing_key.jwks()
    }

    /// Sends with a bearer token. A 401 discards that token, re-registers the node's key
    /// (PROTOCOLS.md: a restarted bank may have lost both) and retries once; an OBIE
    /// `UK.OBIE.Signature.Invalid` re-registers the key and retries once. Both retries are
    /// safe: a 4xx means the bank did not act.
    pub(crate) async fn send(&self, request: &ApiRequest) -> Result<ApiResponse, ConnectorError> {
        let token = self.token().await?;
        let (status, response) = self.send_once(request, Some(&token.secret)).await?;
        let (status, response) = if status == StatusCode::UNAUTHORIZED {
            self.after_unauthorized(&token).await?;
            let token = self.token().await?;
            self.send_once(request, Some(&token.secret)).await?
        } else if status == StatusCode::BAD_REQUEST && signature_refused(&response.body) {
            tracing::info!(bank = %self.id, "the bank refused our signature: registering the key again");
            self.register().await?;
            self.send_once(request, Some(&token.secret)).await?
        } else {
            (status, response)
        };
        finish(status, response)
    }

    /// Sends without credentials (the bank's `/jwks.json`).
    pub(crate) async fn send_open(
        &self,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ConnectorError> {
        let (status, response) = self.send_once(request, None).await?;
        finish(status, response)
    }

    async fn send_once(
        &self,
        request: &ApiRequest,
        bearer: Option<&str>,
    ) -> Result<(StatusCode, ApiResponse), ConnectorError> {
        let url = format!("{}{}", self.base_url, request.path);
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .headers(request.headers.clone())
            .header(ACCEPT, "application/json");
        if let Some(token) = bearer {
            builder = builder.bearer_auth(token);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let answer = builder.send().await.map_err(|e| classify_send_error(&e))?;
        let status = answer.status();
        let signature = answer
            .headers()
            .get(JWS_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = answer.bytes().await.map_err(|e| {
            ConnectorError::Unknown(format!("the answer ({status}) broke off: {}", root(&e)))
        })?;
        tracing::debug!(bank = %self.id, method = %request.method, path = %request.path, %status, "bank answered");
        let body = body.to_vec();
        Ok((status, ApiResponse { body, signature }))
    }

    /// The current token, fetched if there is none fresh (one fetch at a time).
    async fn token(&self) -> Result<Arc<Token>, ConnectorError> {
        if let Some(token) = self.tokens.fresh() {
            return Ok(token);
        }
        let _one_at_a_time = self.tokens.refresh.lock().await;
        if let Some(token) = self.tokens.fresh() {
            return Ok(token);
        }
        let token = Arc::new(self.fetch_token().await?);
        self.tokens.set(Some(Arc::clone(&token)));
        Ok(token)
    }

    /// After a 401 to `rejected`: discard it and register the key again, unless another
    /// caller already did (the current token is a newer one).
    async fn after_unauthorized(&self, rejected: &Token) -> Result<(), ConnectorError> {
        let _one_at_a_time = self.tokens.refresh.lock().await;
        if self.tokens.current_generation() != Some(rejected.generation) {
            return Ok(());
        }
        self.tokens.set(None);
        tracing::info!(bank = %self.id, "token refused: fetching a new one");
        self.register().await
    }

    async fn fetch_token(&self) -> Result<Token, ConnectorError> {
        let answer = self
            .oauth
            .exchange_client_credentials()
            .add_scope(Scope::new(TOKEN_SCOPE.into()))
            .request_async(&self.http)
            .await;
        let answer = answer.map_err(classify_token_error)?;
        let lifetime_ms = answer.expires_in().map_or(TOKEN_DEFAULT_LIFETIME_MS, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        });
        let usable_ms = lifetime_ms.saturating_sub(TOKEN_EXPIRY_MARGIN_MS);
        Ok(Token {
            secret: answer.access_token().secret().clone(),
            fresh_until: Instant::now() + Duration::from_millis(usable_ms),
            generation: self.tokens.generations.fetch_add(1, Ordering::Relaxed) + 1,
        })
    }

    /// Registers the node's public key (`POST /register`, HTTP Basic client credentials).
    /// Idempotent: the bank merges keys by kid.
    pub(crate) async fn register(&self) -> Result<(), ConnectorError> {
        let body = json!({ "jwks": self.signing_key.jwks() }).to_string();
        let answer = self
            .http
            .post(format!("{}/register", self.base_url))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| classify_send_error(&e))?;
        let status = answer.status();
        let body = answer.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        let answer = ApiResponse {
            body,
            signature: None,
        };
        finish(status, answer).map(|_| ())
    }

    /// Runs `check` against the bank's public keys: cached, fetched on first use and again
    /// (at most once, rate-limited) when `check` names a kid the cached set lacks.
    pub(crate) async fn verify_with_bank_keys<T>(
        &self,
        check: impl Fn(&Jwks) -> Result<T, JwsError>,
    ) -> Result<T, BankKeysError> {
        self.bank_keys
            .verify(|| self.fetch_bank_keys(), check)
            .await
    }

    /// The bank's key set (`GET /jwks.json`; no token: it is public).
    async fn fetch_bank_keys(&self) -> Result<Jwks, ConnectorError> {
        let answer = self
            .send_open(&ApiRequest::get("/jwks.json".into()))
            .await?;
        answer.json("key set")
    }

    /// OBIE's detached request signature over exactly `body`.
    pub(crate) fn sign_obie(&self, body: &[u8]) -> Result<String, ConnectorError> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut claims = Map::new();
        claims.insert(OBIE_IAT.into(), Value::from(iat));
        claims.insert(OBIE_ISS.into(), Value::from(self.client_id.clone()));
        claims.insert(OBIE_TAN.into(), Value::from(self.authority.clone()));
        claims.insert("crit".into(), json!([OBIE_IAT, OBIE_ISS, OBIE_TAN]));
        claims.insert("typ".into(), "JOSE".into());
        claims.insert("cty".into(), "application/json".into());
        self.signing_key
            .sign_detached(body, claims)
            .map_err(|e| ConnectorError::Retryable(format!("cannot sign the request: {e}")))
    }

    /// The operator's account in `currency`: the configured one, else the one `discover`
    /// (the protocol's account list) shows in that currency, kept. Several there is an error
    /// the operator settles in the configuration: money must never move through an account
    /// the node guessed.
    pub(crate) async fn operator_account<F, Fut>(
        &self,
        currency: &str,
        discover: F,
    ) -> Result<Party, ConnectorError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(String, Party)>, ConnectorError>>,
    {
        if let Some(party) = self.configured_operators.get(currency) {
            return Ok(party.clone());
        }
        if let Some(party) = self.cached_operator(currency) {
            return Ok(party);
        }
        let accounts = discover().await?;
        let mut ours: Vec<Party> = accounts
            .into_iter()
            .filter(|(c, _)| c == currency)
            .map(|(_, party)| party)
            .collect();
        if ours.len() != 1 {
            return Err(no_operator_account(currency, ours.len()));
        }
        let party = ours.remove(0);
        let mut cache = self
            .operator_accounts
            .write()
            .unwrap_or_else(|e| e.into_inner());
        cache.insert(currency.to_string(), party.clone());
        Ok(party)
    }

    fn cached_operator(&self, currency: &str) -> Option<Party> {
        let cache = self
            .operator_accounts
            .read()
            .unwrap_or_else(|e| e.into_inner());
        cache.get(currency).cloned()
    }

    /// Confirmation of Payee (`POST /confirmation-of-payee`, the same on both protocols).
    pub(crate) async fn confirm_payee(&self, party: &Party) -> Result<PayeeMatch, ConnectorError> {
        let (scheme, identification) = match &party.account {
            AccountRef::Iban { iban } => ("IBAN", normalise_iban(iban)),
            AccountRef::SortCode {
                sort_code,
                account_number,
            } => (
                "SortCodeAccountNumber",
                sort_code_identification(sort_code, account_number),
            ),
        };
        let body = json!({"Data": {
            "SchemeName": scheme,
            "Identification": identification,
            "Name": party.name,
            "AccountType": "Personal",
        }});
        let answer = self
            .send(&ApiRequest::post_json(
                "/confirmation-of-payee".into(),
                &body,
            ))
            .await?;
        payee_match(&answer.json("confirmation of payee")?)
    }
}

/// A 2xx is the answer; anything else is classified.
fn finish(status: StatusCode, response: ApiResponse) -> Result<ApiResponse, ConnectorError> {
    if status.is_success() {
        Ok(response)
    } else {
        Err(classify_status(status, &response.body))
    }
}

/// A non-2xx answer as one of the three outcomes (see the module's table).
pub(crate) fn classify_status(status: StatusCode, body: &[u8]) -> ConnectorError {
    match status.as_u16() {
        408 | 429 | 503 => ConnectorError::Retryable(format!("the bank answered {status}")),
        400..=499 => {
            let (code, message) = bank_error(body).unwrap_or_else(|| {
                let code = format!("http_{}", status.as_u16());
                (code, format!("the bank answered {status}"))
            });
            ConnectorError::Declined { code, message }
        }
        _ => ConnectorError::Unknown(format!("the bank answered {status}")),
    }
}

/// A failed send: nothing sent (the connection never opened) is retryable; anything after
/// the request may have left is unknown.
pub(crate) fn classify_send_error(error: &reqwest::Error) -> ConnectorError {
    // A connect timeout is both `is_connect` and `is_timeout`: nothing was sent.
    if error.is_connect() {
        return ConnectorError::Retryable(format!("cannot reach the bank: {}", root(error)));
    }
    if error.is_builder() {
        return ConnectorError::Retryable(format!("the request cannot be built: {}", root(error)));
    }
    if error.is_timeout() {
        return ConnectorError::Unknown("no answer in time after sending".into());
    }
    if never_sent(error) {
        // The connection closed before the request was handed to it (a bank that refuses
        // our certificate can close it that early): nothing reached the bank.
        return ConnectorError::Retryable(format!("the request was not sent: {}", root(error)));
    }
    if let Some(alert) = tls_alert(error) {
        // Under TLS 1.3 the bank checks our certificate after our side of the handshake
        // ended, so its refusal arrives while we read the answer; but it refused before
        // reading any request: nothing happened there.
        return ConnectorError::Retryable(format!("the bank refused our TLS: {alert:?}"));
    }
    ConnectorError::Unknown(format!("the exchange broke off: {}", root(error)))
}

/// No account, or several, of ours in `currency` at the bank: definitive until the
/// configuration names one.
fn no_operator_account(currency: &str, found: usize) -> ConnectorError {
    match found {
        0 => ConnectorError::Declined {
            code: "no_operator_account".into(),
            message: format!("the bank lists no account of ours in {currency}"),
        },
        _ => ConnectorError::Declined {
            code: "ambiguous_operator_account".into(),
            message: format!(
                "the bank lists {found} accounts of ours in {currency}: name the one to use in \
                 the connector's operator_accounts"
            ),
        },
    }
}

/// The fatal TLS alert the bank sent, if that is what broke the exchange.
/// hyper's "canceled" error: the request never left (for example "connection was not ready").
fn never_sent(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if current
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_canceled)
        {
            return true;
        }
        cause = current.source();
    }
    false
}

fn tls_alert(error: &(dyn std::error::Error + 'static)) -> Option<rustls::AlertDescription> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(rustls::Error::AlertReceived(alert)) = current.downcast_ref::<rustls::Error>() {
            return Some(*alert);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            let inner = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
            if let Some(rustls::Error::AlertReceived(alert)) = inner {
                return Some(*alert);
            }
        }
        cause = current.source();
    }
    None
}

/// The innermost cause's text (the I/O error), without the URL reqwest puts on top.
fn root(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A token fetch changes nothing at the bank, so only a refusal of the client is final.
fn classify_token_error<RE: std::error::Error + 'static>(
    error: RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> ConnectorError {
    match error {
        RequestTokenError::ServerResponse(answer) => match answer.error() {
            BasicErrorResponseType::Extension(code) => {
                ConnectorError::Retryable(format!("the token endpoint answered {code}"))
            }
            refusal => ConnectorError::Declined {
                code: refusal.to_string(),
                message: "the bank refused our client credentials".into(),
            },
        },
        RequestTokenError::Request(e) => {
            ConnectorError::Retryable(format!("no token: {}", root(&e)))
        }
        RequestTokenError::Parse(_, _) => {
            ConnectorError::Retryable("no token: the token answer is unreadable".into())
        }
        RequestTokenError::Other(text) => ConnectorError::Retryable(format!("no token: {text}")),
    }
}

/// The bank's error code and message from an OBIE (`Errors[0].ErrorCode`), Berlin Group
/// (`tppMessages[0].code`) or OAuth2 (`error`) error body.
pub(crate) fn bank_error(body: &[u8]) -> Option<(String, String)> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    let (code, message) = if let Some(first) = body["Errors"].get(0) {
        let message = text(&first["Message"]).or_else(|| text(&body["Message"]));
        (text(&first["ErrorCode"])?, message)
    } else if let Some(first) = body["tppMessages"].get(0) {
        (text(&first["code"])?, text(&first["text"]))
    } else {
        (text(&body["error"])?, text(&body["error_description"]))
    };
    let message: String = message
        .unwrap_or_default()
        .chars()
        .take(BANK_MESSAGE_CHARS_MAX)
        .collect();
    Some((code, message))
}

/// An OBIE refusal of the request's signature (`UK.OBIE.Signature.Invalid`): the bank may not
/// know the node's key (a new bank, a new key), so registering again may cure it.
fn signature_refused(body: &[u8]) -> bool {
    bank_error(body).is_some_and(|(code, _)| code == "UK.OBIE.Signature.Invalid")
}

/// Confirmation of Payee's verification report as a match.
pub(crate) fn payee_match(body: &Value) -> Result<PayeeMatch, ConnectorError> {
    let report = &body["Data"]["VerificationReport"];
    let Some(matched) = report["Matched"].as_bool() else {
        return Err(ConnectorError::Unknown(
            "the confirmation of payee has no VerificationReport.Matched".into(),
        ));
    };
    if matched {
        return Ok(PayeeMatch::Matched);
    }
    let name = report["Name"].as_str().filter(|n| !n.is_empty());
    Ok(match (report["ReasonCode"].as_str(), name) {
        (Some("AC01"), _) => PayeeMatch::AccountNotFound,
        // Pay.UK's close-match codes (personal, business, partner) carry the holder's name.
        (Some("MBAM" | "BANM" | "PANM"), Some(name)) => PayeeMatch::CloseMatch {
            actual_name: name.to_string(),
        },
        _ => PayeeMatch::NotMatched,
    })
}

/// An IBAN as banks key it: upper case, no spaces.
pub(crate) fn normalise_iban(iban: &str) -> String {
    iban.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The IBAN's remainder mod 97 with its first four characters moved to the end.
pub(crate) fn iban_remainder(rearranged: &str) -> Option<u32> {
    let mut remainder = 0u32;
    for c in rearranged.chars() {
        let value = c.to_digit(36)?;
        remainder = if value < 10 {
            (remainder * 10 + value) % 97
        } else {
            (remainder * 100 + value) % 97
        };
    }
    Some(remainder)
}

/// A normalised IBAN's shape (country letters, check digits, 15 to 34 letters and digits) and
/// its mod-97 check digits.
pub(crate) fn iban_valid(iban: &str) -> bool {
    let b = iban.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
        || !b.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let rearranged = format!("{}{}", &iban[4..], &iban[..4]);
    iban_remainder(&rearranged) == Some(1)
}

/// A payer's account and name as a bank reported them, if money can be sent back there: an
/// IBAN that passes its check digits or a sort code and account number (`scheme` says which
/// `identification` is), and a holder's name (a payment needs one). Anything else is None:
/// a return is never sent to an account read by guesswork.
pub(crate) fn reported_payer(
    scheme: PayerScheme,
    identification: &str,
    name: Option<&str>,
) -> Option<Party> {
    let account = match scheme {
        PayerScheme::Iban => {
            let iban = normalise_iban(identification);
            iban_valid(&iban).then_some(AccountRef::Iban { iban })?
        }
        PayerScheme::SortCode => split_sort_code(identification)?,
    };
    let name = name.map(str::trim).filter(|name| !name.is_empty())?;
    Some(Party {
        account,
        name: name.to_string(),
    })
}

/// How a bank identified a payer's account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PayerScheme {
    Iban,
    /// A UK sort code and account number, 14 digits.
    SortCode,
}

/// A sort code and account number as one 14-digit identification (no spaces or hyphens).
pub(crate) fn sort_code_identification(sort_code: &str, account_number: &str) -> String {
    format!("{sort_code}{account_number}")
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect()
}

/// 14 digits back as a sort code (6) and account number (8); None if it is not that.
pub(crate) fn split_sort_code(identification: &str) -> Option<AccountRef> {
    let digits = sort_code_identification(identification, "");
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(AccountRef::SortCode {
        sort_code: digits[..6].to_string(),
        account_number: digits[6..].to_string(),
    })
}

/// One path segment, percent-encoded: ids come from banks and callers, and must not be able
/// to change the path.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
