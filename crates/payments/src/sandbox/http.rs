//! The router: the routes both protocols serve, the protocol's own routes (from `obie` or
//! `berlin`, and `page`'s authorisation page), and the gate in front of every route: down,
//! latency, the 503 fault and authentication (Bearer for the APIs, Basic client credentials
//! for the sandbox's own routes). What the route modules share is in `web`, not here.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::accounts::{match_name, normalise, scheme_of, NameMatch, Scheme};
use super::bank::{Bank, TOKEN_TTL_S};
use super::state::{Account, Event};
use super::util::{is_date, random_id};
use super::web::{account_key, full, internal, parse_form, problem, shape_of, Shape, Shared};
use super::{berlin, obie, page, Protocol};
use crate::camt053::{self, Entry, Statement};
use crate::connector::AccountRef;
use crate::jws::Jwks;
use crate::money::{from_bank_amount, to_bank_amount};

/// Registered client keys kept at most: a re-registration with a new key drops the oldest.
const JWKS_KEYS_MAX: usize = 16;

pub(crate) fn router(bank: Shared) -> Router {
    let app = Router::new()
        .route("/token", post(token))
        .route("/register", post(register))
        .route("/jwks.json", get(jwks))
        .route("/health", get(health))
        .route("/authorize", get(page::authorize))
        .route("/sandbox/accounts", post(open_account))
        .route("/sandbox/accounts/{id}", get(get_account))
        .route("/sandbox/accounts/{id}/statement", get(statement))
        .route("/sandbox/down", post(down))
        .route("/sandbox/up", post(up))
        .route("/confirmation-of-payee", post(confirmation_of_payee))
        .route("/open-banking/v3.1/aisp/accounts", get(obie_accounts))
        .route("/v1/accounts", get(berlin_accounts));
    let app = match bank.config.protocol {
        Protocol::Obie => obie::routes(app),
        Protocol::BerlinGroup => berlin::routes(app),
    };
    app.fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&bank), gate))
        .with_state(bank)
}

async fn not_found(request: Request) -> Response {
    let shape = shape_of(request.uri().path());
    let code = match shape {
        Shape::Obie => "UK.OBIE.NotFound",
        Shape::Berlin => "RESOURCE_UNKNOWN",
    };
    problem(shape, StatusCode::NOT_FOUND, code, "no such route")
}

enum Access {
    Open,
    Basic,
    Bearer,
}

fn access(path: &str) -> Access {
    match path {
        "/token" | "/jwks.json" | "/health" | "/authorize" => Access::Open,
        "/register" => Access::Basic,
        _ if path.starts_with("/sandbox/") => Access::Basic,
        _ => Access::Bearer,
    }
}

/// In front of every route: down, latency, the 503 fault, then authentication.
async fn gate(State(bank): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let shape = shape_of(&path);
    let unavailable = |message: &str| {
        let code = match shape {
            Shape::Obie => "UK.OBIE.UnexpectedError",
            Shape::Berlin => "SERVICE_UNAVAILABLE",
        };
        problem(shape, StatusCode::SERVICE_UNAVAILABLE, code, message)
    };
    if bank.is_down() && path != "/sandbox/up" {
        return unavailable("the bank is down");
    }
    if bank.config.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(bank.config.latency_ms)).await;
    }
    let sandbox_route = path.starts_with("/sandbox/") || path == "/health";
    if !sandbox_route && bank.roll(bank.config.faults.unavailable_percent) {
        return unavailable("fault: the bank is unavailable");
    }
    let allowed = match access(&path) {
        Access::Open => true,
        Access::Basic => basic_ok(&bank, request.headers()),
        Access::Bearer => bearer_ok(&bank, request.headers()),
    };
    if !allowed {
        let code = match shape {
            Shape::Obie => "UK.OBIE.Unauthorized",
            Shape::Berlin => "TOKEN_INVALID",
        };
        return problem(shape, StatusCode::UNAUTHORIZED, code, "not authenticated");
    }
    next.run(request).await
}

/// Equal without an early exit: how long a comparison takes tells nothing about the secret.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

fn credentials_ok(bank: &Bank, id: &str, secret: &str) -> bool {
    let config = &bank.config;
    same(id.as_bytes(), config.client_id.as_bytes())
        & same(secret.as_bytes(), config.client_secret.as_bytes())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn basic_ok(bank: &Bank, headers: &HeaderMap) -> bool {
    basic_credentials(headers).is_some_and(|(id, secret)| credentials_ok(bank, &id, &secret))
}

fn bearer_ok(bank: &Bank, headers: &HeaderMap) -> bool {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    value
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| bank.token_valid(token.trim()))
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    let mut response = (status, Json(json!({ "error": error }))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = HeaderValue::from_static("Basic realm=\"sandbox bank\"");
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    response
}

/// `POST /token`: OAuth2 client credentials (RFC 6749 §4.4).
async fn token(State(bank): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = parse_form(&String::from_utf8_lossy(&body));
    let (id, secret) = match basic_credentials(&headers) {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    if !credentials_ok(&bank, &id, &secret) {
        tracing::info!("token refused: wrong client credentials");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let body = json!({
        "access_token": bank.issue_token(),
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL_S,
    });
    Json(body).into_response()
}

/// `POST /register`: the client's public keys, merged by kid with those it registered before.
async fn register(State(bank): State<Shared>, body: Bytes) -> Response {
    let invalid = |message: &str| {
        problem(
            Shape::Obie,
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Field.Invalid",
            message,
        )
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    let Some(keys) = request["jwks"]["keys"].as_array() else {
        return invalid("no jwks.keys");
    };
    let rsa = |k: &Value| k["kty"] == "RSA" && k["kid"].is_string() && k["n"].is_string();
    if keys.is_empty()
        || keys.len() > JWKS_KEYS_MAX
        || !keys.iter().all(|k| rsa(k) && k["e"].is_string())
    {
        return invalid("jwks.keys must be 1 to 16 RSA keys with kid, n and e");
    }
    let mut state = bank.state.lock().await;
    let mut merged: Vec<Value> = state
        .jwks
        .keys
        .iter()
        .filter(|old| !keys.iter().any(|new| new["kid"] == old["kid"]))
        .cloned()
        .collect();
    merged.extend(keys.iter().cloned());
    let excess = merged.len().saturating_sub(JWKS_KEYS_MAX);
    merged.drain(..excess);
    let jwks = Jwks { keys: merged };
    if let Err(error) = bank
        .commit(&mut state, vec![Event::Jwks(jwks.clone())])
        .await
    {
        return internal(Shape::Obie, &error);
    }
    tracing::info!(keys = jwks.keys.len(), "client keys registered");
    (StatusCode::CREATED, Json(json!({ "jwks": jwks }))).into_response()
}

async fn jwks(State(bank): State<Shared>) -> Json<Jwks> {
    Json(bank.key.jwks())
}

async fn health(State(bank): State<Shared>) -> Json<Value> {
    let protocol = match bank.config.protocol {
        Protocol::Obie => "obie",
        Protocol::BerlinGroup => "berlin-group",
    };
    Json(json!({ "status": "ok", "protocol": protocol }))
}

async fn down(State(bank): State<Shared>) -> Json<Value> {
    bank.down.store(true, Ordering::SeqCst);
    tracing::info!("the bank is down");
    Json(json!({ "down": true }))
}

async fn up(State(bank): State<Shared>) -> Json<Value> {
    bank.down.store(false, Ordering::SeqCst);
    tracing::info!("the bank is up");
    Json(json!({ "down": false }))
}

pub(crate) fn account_ref(account: &Account) -> Value {
    match account.scheme {
        Scheme::Iban => json!({ "iban": account.key }),
        Scheme::SortCode => json!({
            "sort_code": &account.key[..6],
            "account_number": &account.key[6..],
        }),
    }
}

/// A signed balance as a decimal ("-12.34" below zero).
fn balance_text(minor: i128, currency: &str) -> String {
    let magnitude = u64::try_from(minor.unsigned_abs()).unwrap_or(u64::MAX);
    let text = to_bank_amount(magnitude, currency);
    if minor < 0 {
        format!("-{text}")
    } else {
        text
    }
}

fn account_view(account: &Account) -> Value {
    json!({
        "account": account_ref(account),
        "name": account.name,
        "currency": account.currency,
        "balance": balance_text(account.balance_minor, &account.currency),
    })
}

/// `POST /sandbox/accounts`: opens or replaces an account of the client's own.
async fn open_account(State(bank): State<Shared>, body: Bytes) -> Response {
    let invalid = |m: &str| {
        problem(
            Shape::Obie,
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Field.Invalid",
            m,
        )
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    let key = match serde_json::from_value::<AccountRef>(request["account"].clone()) {
        Ok(AccountRef::Iban { iban }) => normalise(Scheme::Iban, &iban),
        Ok(AccountRef::SortCode {
            sort_code,
            account_number,
        }) => normalise(Scheme::SortCode, &format!("{sort_code}{account_number}")),
        Err(_) => Err("account is not {iban} or {sort_code, account_number}"),
    };
    let key = match key {
        Ok(key) => key,
        Err(message) => return invalid(message),
    };
    let (Some(name), Some(currency)) = (request["name"].as_str(), request["currency"].as_str())
    else {
        return invalid("name and currency are required");
    };
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return invalid("currency is not an ISO 4217 code");
    }
    // The client's own (listed by account information, payouts from it pre-authorised) or a
    // customer's (a player's account at this bank).
    let own = match request["holder"].as_str() {
        None | Some("client") => true,
        Some("customer") => false,
        Some(_) => return invalid("holder is client or customer"),
    };
    let balance = request["balance"].as_str().unwrap_or("0");
    let Some(balance) = from_bank_amount(balance, currency) else {
        return invalid("balance is not an amount in the currency");
    };
    let mut state = bank.state.lock().await;
    let existing = state.accounts.get(&key);
    if existing.is_none() && state.accounts.len() >= bank.config.accounts_max {
        return full(Shape::Obie, "accounts");
    }
    let account = Account {
        scheme: scheme_of(&key),
        resource_id: existing.map_or_else(random_id, |a| a.resource_id.clone()),
        key,
        name: name.to_string(),
        currency: currency.to_string(),
        balance_minor: i128::from(balance),
        overdraft: false,
        own,
    };
    let view = account_view(&account);
    if let Err(error) = bank.commit(&mut state, vec![Event::Account(account)]).await {
        return internal(Shape::Obie, &error);
    }
    (StatusCode::CREATED, Json(view)).into_response()
}

fn unknown_account() -> Response {
    problem(
        Shape::Obie,
        StatusCode::NOT_FOUND,
        "UK.OBIE.Resource.NotFound",
        "no such account",
    )
}

async fn get_account(State(bank): State<Shared>, Path(id): Path<String>) -> Response {
    let state = bank.state.lock().await;
    match account_key(&id)
        .ok()
        .and_then(|key| state.accounts.get(&key))
    {
        Some(account) => Json(account_view(account)).into_response(),
        None => unknown_account(),
    }
}

/// `GET /sandbox/accounts/{id}/statement?from&to`: camt.053 over the booked entries. The
/// closing balance is today's less what was booked after `to`; the opening, the closing less
/// the range's entries: a statement always balances.
async fn statement(
    State(bank): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = parse_form(query.as_deref().unwrap_or(""));
    let (Some(from), Some(to)) = (query.get("from"), query.get("to")) else {
        let m = "from and to (YYYY-MM-DD) are required";
        return problem(
            Shape::Obie,
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Field.Missing",
            m,
        );
    };
    if !is_date(from) || !is_date(to) || from > to {
        let m = "from and to must be dates (YYYY-MM-DD), from not after to";
        return problem(
            Shape::Obie,
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Field.Invalid",
            m,
        );
    }
    let state = bank.state.lock().await;
    let Some(account) = account_key(&id)
        .ok()
        .and_then(|key| state.accounts.get(&key))
    else {
        return unknown_account();
    };
    let booked = state
        .entries
        .get(&account.key)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let signed = |credit: bool, amount: u64| {
        if credit {
            i128::from(amount)
        } else {
            -i128::from(amount)
        }
    };
    let after: i128 = booked
        .iter()
        .filter(|b| b.booking_date.as_str() > to.as_str())
        .map(|b| signed(b.credit, b.amount_minor))
        .sum();
    let entries: Vec<Entry> = booked
        .iter()
        .filter(|b| {
            b.booking_date.as_str() >= from.as_str() && b.booking_date.as_str() <= to.as_str()
        })
        .map(|b| Entry {
            amount_minor: b.amount_minor,
            credit: b.credit,
            booking_date: b.booking_date.clone(),
            end_to_end_id: b.end_to_end_id.clone(),
            bank_reference: b.payment_id.clone(),
        })
        .collect();
    let closing_minor = account.balance_minor - after;
    let net: i128 = entries
        .iter()
        .map(|e| signed(e.credit, e.amount_minor))
        .sum();
    let statement = Statement {
        account_id: account.key.clone(),
        currency: account.currency.clone(),
        from_date: from.clone(),
        to_date: to.clone(),
        opening_minor: closing_minor - net,
        closing_minor,
        entries,
    };
    let xml = camt053::write(&statement);
    ([(header::CONTENT_TYPE, "application/xml")], xml).into_response()
}

/// `POST /confirmation-of-payee`: does the name match the holder of the account?
async fn confirmation_of_payee(State(bank): State<Shared>, body: Bytes) -> Response {
    let invalid = |m: &str| {
        problem(
            Shape::Obie,
            StatusCode::BAD_REQUEST,
            "UK.OBIE.Field.Invalid",
            m,
        )
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body is not JSON");
    };
    let data = &request["Data"];
    let scheme = match data["SchemeName"].as_str() {
        Some("SortCodeAccountNumber" | "UK.OBIE.SortCodeAccountNumber") => Scheme::SortCode,
        Some("IBAN" | "UK.OBIE.IBAN") => Scheme::Iban,
        _ => return invalid("SchemeName must be SortCodeAccountNumber or IBAN"),
    };
    let (Some(identification), Some(name)) =
        (data["Identification"].as_str(), data["Name"].as_str())
    else {
        return invalid("Identification and Name are required");
    };
    let key = match normalise(scheme, identification) {
        Ok(key) => key,
        Err(message) => return invalid(message),
    };
    let state = bank.state.lock().await;
    let report = match state.accounts.get(&key) {
        None => json!({ "Matched": false, "ReasonCode": "AC01" }),
        Some(account) => match match_name(name, &account.name) {
            NameMatch::Exact => json!({ "Matched": true, "ReasonCode": null }),
            NameMatch::Close => {
                json!({ "Matched": false, "ReasonCode": "MBAM", "Name": account.name })
            }
            NameMatch::Different => json!({ "Matched": false, "ReasonCode": "ANNM" }),
        },
    };
    Json(json!({ "Data": { "VerificationReport": report } })).into_response()
}

/// The client's own accounts, in a stable order.
fn own_accounts(state: &super::state::State) -> Vec<Account> {
    let mut own: Vec<Account> = state.accounts.values().filter(|a| a.own).cloned().collect();
    own.sort_by(|a, b| (&a.currency, &a.key).cmp(&(&b.currency, &b.key)));
    own
}

/// OBIE account information: the client's own accounts.
async fn obie_accounts(State(bank): State<Shared>) -> Json<Value> {
    let state = bank.state.lock().await;
    let accounts: Vec<Value> = own_accounts(&state)
        .iter()
        .map(|a| {
            json!({
                "AccountId": a.resource_id,
                "Currency": a.currency,
                "AccountType": "Business",
                "AccountSubType": "CurrentAccount",
                "Account": [a.obie()],
            })
        })
        .collect();
    let link = format!("{}/open-banking/v3.1/aisp/accounts", bank.base_url);
    Json(json!({
        "Data": { "Account": accounts },
        "Links": { "Self": link },
        "Meta": { "TotalPages": 1 },
    }))
}

/// Berlin Group account information: the client's own accounts.
async fn berlin_accounts(State(bank): State<Shared>) -> Json<Value> {
    let state = bank.state.lock().await;
    let accounts: Vec<Value> = own_accounts(&state)
        .iter()
        .map(|a| {
            let mut view = a.berlin();
            view["resourceId"] = Value::from(a.resource_id.clone());
            view["currency"] = Value::from(a.currency.clone());
            view["name"] = Value::from(a.name.clone());
            view["ownerName"] = Value::from(a.name.clone());
            view
        })
        .collect();
    Json(json!({ "accounts": accounts }))
}
