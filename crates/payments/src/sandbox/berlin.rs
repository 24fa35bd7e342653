//! Berlin Group NextGenPSD2 1.3.x payment initiation: one resource per payment, deduplicated
//! by `X-Request-ID`, its body bound by `Digest`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::accounts::{normalise, Scheme};
use super::bank::{check_parties, debtor_is_own, Bank};
use super::notify::digest_header;
use super::state::{Event, Order, PayStatus, Payment, Replay, Stored};
use super::util::{now_ms, random_id, sha256_hex};
use super::web::{full, internal, problem, Shape, Shared};
use crate::money::from_bank_amount;

const PRODUCTS: [&str; 3] = [
    "sepa-credit-transfers",
    "instant-sepa-credit-transfers",
    "domestic-credit-transfers",
];
const END_TO_END_CHARS_MAX: usize = 35;
const URL_CHARS_MAX: usize = 2_048;

pub(crate) fn routes(app: Router<Shared>) -> Router<Shared> {
    app.route("/v1/payments/{product}", post(initiate))
        .route("/v1/payments/{product}/{id}", get(get_payment))
        .route("/v1/payments/{product}/{id}/status", get(get_status))
        .route(
            "/v1/payments/{product}/{id}/authorisations",
            post(start_authorisation),
        )
}

fn bad(code: &str, message: &str) -> Response {
    problem(Shape::Berlin, StatusCode::BAD_REQUEST, code, message)
}

fn unknown(what: &str) -> Response {
    problem(
        Shape::Berlin,
        StatusCode::NOT_FOUND,
        "RESOURCE_UNKNOWN",
        what,
    )
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A UUID's shape: 36 characters, hex digits and hyphens at 8-4-4-4-12.
fn is_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `{"iban"}` or (sandbox) `{"bban"}` as an account key.
fn parse_account(account: &Value, field: &str) -> Result<String, String> {
    let key = match (account["iban"].as_str(), account["bban"].as_str()) {
        (Some(iban), None) => normalise(Scheme::Iban, iban),
        (None, Some(bban)) => normalise(Scheme::SortCode, bban),
        _ => return Err(format!("{field} is not {{\"iban\"}} or {{\"bban\"}}")),
    };
    key.map_err(|m| format!("{field}: {m}"))
}

fn parse_order(body: &Value) -> Result<Order, String> {
    let amount = &body["instructedAmount"];
    let currency = amount["currency"].as_str().unwrap_or_default();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("instructedAmount.currency is not an ISO 4217 code".into());
    }
    let amount_minor = amount["amount"]
        .as_str()
        .and_then(|text| from_bank_amount(text, currency))
        .filter(|minor| *minor > 0)
        .ok_or("instructedAmount.amount is not a positive amount in the currency")?;
    let end_to_end_id = body["endToEndIdentification"].as_str().unwrap_or_default();
    if end_to_end_id.chars().count() > END_TO_END_CHARS_MAX {
        return Err("endToEndIdentification is at most 35 characters".into());
    }
    let Some(creditor_name) = body["creditorName"].as_str() else {
        return Err("creditorName is required".into());
    };
    let debtor = match &body["debtorAccount"] {
        Value::Null => None,
        account => Some(parse_account(account, "debtorAccount")?),
    };
    Ok(Order {
        amount_minor,
        currency: currency.to_string(),
        debtor,
        creditor: parse_account(&body["creditorAccount"], "creditorAccount")?,
        creditor_name: creditor_name.to_string(),
        end_to_end_id: end_to_end_id.to_string(),
    })
}

/// The headers an initiation needs, checked: its X-Request-ID (the dedup key) and its
/// TPP-Notification-URI if any. (Refusals boxed: a Response is large.)
fn initiation_headers(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Option<String>), Box<Response>> {
    let bad = |code: &str, message: &str| Box::new(bad(code, message));
    let Some(digest) = header_text(headers, "digest") else {
        return Err(bad("FORMAT_ERROR", "no Digest header"));
    };
    if digest != digest_header(body) {
        return Err(bad("FORMAT_ERROR", "the Digest does not match the body"));
    }
    let request_id = header_text(headers, "x-request-id").unwrap_or_default();
    if !is_uuid(request_id) {
        return Err(bad("FORMAT_ERROR", "X-Request-ID is missing or not a UUID"));
    }
    if header_text(headers, "psu-ip-address").is_none_or(str::is_empty) {
        return Err(bad("FORMAT_ERROR", "no PSU-IP-Address"));
    }
    let notification_uri = header_text(headers, "tpp-notification-uri").map(str::to_string);
    if let Some(uri) = &notification_uri {
        let web = uri.starts_with("http://") || uri.starts_with("https://");
        if !web || uri.len() > URL_CHARS_MAX {
            return Err(bad(
                "FORMAT_ERROR",
                "TPP-Notification-URI is not an http(s) URL",
            ));
        }
    }
    Ok((format!("bg:{request_id}"), notification_uri))
}

fn links(bank: &Bank, payment: &Payment) -> Value {
    let product = payment.product.as_deref().unwrap_or_default();
    let path = format!("{}/v1/payments/{product}/{}", bank.base_url, payment.id);
    let mut links = json!({
        "self": {"href": path},
        "status": {"href": format!("{path}/status")},
    });
    if payment.status == PayStatus::Received {
        let page = format!("{}/authorize?payment_id={}", bank.base_url, payment.id);
        links["scaRedirect"] = json!({ "href": page });
    }
    links
}

async fn initiate(
    State(bank): State<Shared>,
    Path(product): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bank = &bank;
    match create(bank, &product, &headers, &body).await {
        Ok((answer, fresh, settle)) => {
            if let Some((id, due_ms)) = settle {
                bank.arm_settlement(id, due_ms);
            }
            // Only new work is held back: a resend must be able to learn what happened.
            if fresh {
                bank.maybe_hold().await;
            }
            let content = [(header::CONTENT_TYPE, "application/json")];
            (StatusCode::CREATED, content, answer).into_response()
        }
        Err(refusal) => refusal,
    }
}

/// The initiation's answer, whether it was made now, and its settlement to arm if it was
/// accepted now.
type Created = (String, bool, Option<(String, u64)>);

async fn create(
    bank: &Bank,
    product: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Created, Response> {
    if !PRODUCTS.contains(&product) {
        let message = "no such payment product";
        return Err(problem(
            Shape::Berlin,
            StatusCode::NOT_FOUND,
            "PRODUCT_UNKNOWN",
            message,
        ));
    }
    let (key, notification_uri) = initiation_headers(headers, body).map_err(|refusal| *refusal)?;
    let request: Value =
        serde_json::from_slice(body).map_err(|_| bad("FORMAT_ERROR", "the body is not JSON"))?;
    let order = parse_order(&request).map_err(|m| bad("FORMAT_ERROR", &m))?;
    let body_sha256 = sha256_hex(body);
    let mut state = bank.state.lock().await;
    match state.replay(&key, &body_sha256) {
        Replay::Same(stored) => return Ok((stored.body, false, None)),
        Replay::Mismatch => {
            return Err(bad("FORMAT_ERROR", "X-Request-ID reused with another body"))
        }
        Replay::Fresh => {}
    }
    if state.resources() >= bank.config.payments_max {
        return Err(full(Shape::Berlin, "payments"));
    }
    check_parties(&state, &order).map_err(|m| bad("FORMAT_ERROR", &m))?;
    let now = now_ms();
    let own = debtor_is_own(&state, &order);
    let mut payment = Payment {
        id: random_id(),
        consent_id: None,
        product: Some(product.to_string()),
        status: PayStatus::Received,
        reason: None,
        order,
        initiation: request,
        created_ms: now,
        updated_ms: now,
        expires_ms: now + bank.config.consent_ttl_s * 1000,
        settle_at_ms: None,
        notification_uri,
    };
    if own {
        // A payout from the client's own account: authorised at once, as under a mandate.
        bank.accept(&state, &mut payment, PayStatus::Authorised);
    }
    // A payout rejected at once says why here too, as its status query would.
    let mut answer = status_json(&payment);
    answer["paymentId"] = json!(payment.id);
    answer["_links"] = links(bank, &payment);
    let answer = answer.to_string();
    let settle = payment.settle_at_ms.map(|due| (payment.id.clone(), due));
    tracing::info!(payment = %payment.id, status = payment.status.berlin(), "payment initiated");
    let stored = Stored {
        body_sha256,
        status: 201,
        body: answer.clone(),
    };
    let events = vec![
        Event::Payment(payment),
        Event::Idempotency {
            key,
            record: stored,
        },
    ];
    bank.commit(&mut state, events)
        .await
        .map_err(|e| internal(Shape::Berlin, &e))?;
    Ok((answer, true, settle))
}

/// The payment of `product` with `id`, as a closure over it answers.
async fn with_payment(
    bank: &Bank,
    product: &str,
    id: &str,
    answer: impl FnOnce(&Payment) -> Response,
) -> Response {
    let state = bank.state.lock().await;
    match state.payments.get(id) {
        Some(p) if p.product.as_deref() == Some(product) => answer(p),
        _ => unknown("no such payment"),
    }
}

fn status_json(payment: &Payment) -> Value {
    let mut status = json!({ "transactionStatus": payment.status.berlin() });
    if let Some(reason) = &payment.reason {
        status["tppMessages"] = json!([{"category": "ERROR", "code": reason, "text": reason}]);
    }
    status
}

async fn get_status(
    State(bank): State<Shared>,
    Path((product, id)): Path<(String, String)>,
) -> Response {
    with_payment(&bank, &product, &id, |p| {
        Json(status_json(p)).into_response()
    })
    .await
}

/// The initiation as sent, its status, and (once the payer authorised, for a pay-in) the
/// debtor's account and name, as a bank reports who paid.
async fn get_payment(
    State(bank): State<Shared>,
    Path((product, id)): Path<(String, String)>,
) -> Response {
    let state = bank.state.lock().await;
    let payment = match state.payments.get(&id) {
        Some(p) if p.product.as_deref() == Some(product.as_str()) => p,
        _ => return unknown("no such payment"),
    };
    let mut view = payment.initiation.clone();
    view["transactionStatus"] = Value::from(payment.status.berlin());
    let debtor = payment.order.debtor.as_ref();
    if let Some(account) = debtor.and_then(|key| state.accounts.get(key)) {
        if view["debtorAccount"].is_null() {
            view["debtorAccount"] = account.berlin();
        }
        if view["debtorName"].is_null() {
            view["debtorName"] = Value::from(account.name.clone());
        }
    }
    Json(view).into_response()
}

async fn start_authorisation(
    State(bank): State<Shared>,
    Path((product, id)): Path<(String, String)>,
) -> Response {
    let base_url = bank.base_url.clone();
    with_payment(&bank, &product, &id, |p| {
        if p.status != PayStatus::Received {
            let message = format!("the payment is {}: nothing to authorise", p.status.berlin());
            return problem(
                Shape::Berlin,
                StatusCode::CONFLICT,
                "STATUS_INVALID",
                &message,
            );
        }
        let page = format!("{base_url}/authorize?payment_id={}", p.id);
        let answer = json!({
            "authorisationId": random_id(),
            "scaStatus": "received",
            "_links": {"scaRedirect": {"href": page}},
        });
        (StatusCode::CREATED, Json(answer)).into_response()
    })
    .await
}
