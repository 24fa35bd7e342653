//! UK Open Banking Read/Write v3.1 payment initiation: consents, payments, event
//! subscriptions. Requests are signed by the client (`x-jws-signature`, checked against its
//! registered keys); answers to POSTs are signed by the bank.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::accounts::{normalise, Scheme};
use super::bank::{check_parties, debtor_is_own, Bank};
use super::state::{
    Consent, ConsentStatus, Event, Order, PayStatus, Payment, Replay, State as BankState, Stored,
};
use super::util::{datetime_of_ms, now_ms, random_id, sha256_hex};
use super::web::{full, internal, problem, Shape, Shared};
use crate::jws::verify_detached;
use crate::money::from_bank_amount;

const BASE: &str = "/open-banking/v3.1/pisp";
const ISS: &str = "http://openbanking.org.uk/iss";
const IAT: &str = "http://openbanking.org.uk/iat";
const TAN: &str = "http://openbanking.org.uk/tan";
/// OBIE's limit on `x-idempotency-key`.
const IDEMPOTENCY_KEY_CHARS_MAX: usize = 40;
/// ISO 20022's limit on EndToEndIdentification.
const END_TO_END_CHARS_MAX: usize = 35;
const URL_CHARS_MAX: usize = 2_048;

pub(crate) fn routes(app: Router<Shared>) -> Router<Shared> {
    app.route(
        "/open-banking/v3.1/pisp/domestic-payment-consents",
        post(post_consent),
    )
    .route(
        "/open-banking/v3.1/pisp/domestic-payment-consents/{id}",
        get(get_consent),
    )
    .route(
        "/open-banking/v3.1/pisp/domestic-payments",
        post(post_payment),
    )
    .route(
        "/open-banking/v3.1/pisp/domestic-payments/{id}",
        get(get_payment),
    )
    .route(
        "/open-banking/v3.1/event-subscriptions",
        post(post_subscription),
    )
    .route(
        "/open-banking/v3.1/pisp/event-subscriptions",
        post(post_subscription),
    )
}

fn bad(code: &str, message: &str) -> Response {
    problem(Shape::Obie, StatusCode::BAD_REQUEST, code, message)
}

/// The client's detached signature over the exact body, by one of its registered keys, its
/// `iss` claim the client id.
async fn verify_signature(bank: &Bank, headers: &HeaderMap, body: &[u8]) -> Result<(), Response> {
    let Some(signature) = headers.get("x-jws-signature").and_then(|v| v.to_str().ok()) else {
        return Err(bad("UK.OBIE.Signature.Missing", "no x-jws-signature"));
    };
    let jwks = bank.state.lock().await.jwks.clone();
    let claims = verify_detached(signature, body, &jwks)
        .map_err(|error| bad("UK.OBIE.Signature.Invalid", &error.to_string()))?;
    if claims.get(ISS).and_then(Value::as_str) != Some(bank.config.client_id.as_str()) {
        let message = "the signature's http://openbanking.org.uk/iss is not the client id";
        return Err(bad("UK.OBIE.Signature.Invalid", message));
    }
    Ok(())
}

/// (The refusal boxed: a Response is large.)
fn idempotency_key(headers: &HeaderMap) -> Result<String, Box<Response>> {
    let bad = |code: &str, message: &str| Box::new(bad(code, message));
    let Some(key) = headers
        .get("x-idempotency-key")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(bad("UK.OBIE.Header.Missing", "no x-idempotency-key"));
    };
    if key.is_empty() || key.chars().count() > IDEMPOTENCY_KEY_CHARS_MAX {
        return Err(bad(
            "UK.OBIE.Header.Invalid",
            "x-idempotency-key is 1 to 40 characters",
        ));
    }
    Ok(format!("obie:{key}"))
}

/// A JSON answer signed by the bank (detached, over exactly these bytes).
fn signed(bank: &Bank, status: StatusCode, body: String) -> Response {
    let host = bank.base_url.trim_start_matches("http://").to_string();
    let mut claims = Map::new();
    claims.insert(IAT.into(), Value::from(now_ms() / 1000));
    claims.insert(ISS.into(), Value::from("croupier-sandbox-bank"));
    claims.insert(TAN.into(), Value::from(host));
    claims.insert("crit".into(), json!([IAT, ISS, TAN]));
    let signature = match bank.key.sign_detached(body.as_bytes(), claims) {
        Ok(signature) => signature,
        Err(error) => return internal(Shape::Obie, &error),
    };
    let headers = [
        (header::CONTENT_TYPE, "application/json".to_string()),
        (
            header::HeaderName::from_static("x-jws-signature"),
            signature,
        ),
    ];
    (status, headers, body).into_response()
}

/// `{"SchemeName","Identification","Name"}` as an account key and name.
fn parse_account(account: &Value, field: &str) -> Result<(String, String), String> {
    let scheme = match account["SchemeName"].as_str() {
        Some("UK.OBIE.IBAN" | "IBAN") => Scheme::Iban,
        Some("UK.OBIE.SortCodeAccountNumber" | "SortCodeAccountNumber") => Scheme::SortCode,
        _ => {
            return Err(format!(
                "{field}.SchemeName is not UK.OBIE.IBAN or UK.OBIE.SortCodeAccountNumber"
            ))
        }
    };
    let identification = account["Identification"].as_str().unwrap_or_default();
    let key =
        normalise(scheme, identification).map_err(|m| format!("{field}.Identification: {m}"))?;
    Ok((
        key,
        account["Name"].as_str().unwrap_or_default().to_string(),
    ))
}

fn parse_order(initiation: &Value) -> Result<Order, String> {
    let amount = &initiation["InstructedAmount"];
    let currency = amount["Currency"].as_str().unwrap_or_default();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("InstructedAmount.Currency is not an ISO 4217 code".into());
    }
    let amount_minor = amount["Amount"]
        .as_str()
        .and_then(|text| from_bank_amount(text, currency))
        .filter(|minor| *minor > 0)
        .ok_or("InstructedAmount.Amount is not a positive amount in the currency")?;
    let end_to_end_id = initiation["EndToEndIdentification"]
        .as_str()
        .unwrap_or_default();
    if end_to_end_id.is_empty() || end_to_end_id.chars().count() > END_TO_END_CHARS_MAX {
        return Err("EndToEndIdentification is 1 to 35 characters".into());
    }
    let (creditor, creditor_name) =
        parse_account(&initiation["CreditorAccount"], "CreditorAccount")?;
    let debtor = match &initiation["DebtorAccount"] {
        Value::Null => None,
        account => Some(parse_account(account, "DebtorAccount")?.0),
    };
    Ok(Order {
        amount_minor,
        currency: currency.to_string(),
        debtor,
        creditor,
        creditor_name,
        end_to_end_id: end_to_end_id.to_string(),
    })
}

fn consent_json(bank: &Bank, consent: &Consent) -> Value {
    let mut data = json!({
        "ConsentId": consent.id,
        "Status": consent.status.obie(),
        "CreationDateTime": datetime_of_ms(consent.created_ms),
        "StatusUpdateDateTime": datetime_of_ms(consent.updated_ms),
        "Initiation": consent.initiation,
    });
    if consent.expired {
        data["Expired"] = Value::Bool(true);
    }
    if consent.read_refund_account {
        data["ReadRefundAccount"] = Value::from("Yes");
    }
    let link = format!(
        "{}{BASE}/domestic-payment-consents/{}",
        bank.base_url, consent.id
    );
    json!({"Data": data, "Risk": {}, "Links": {"Self": link}, "Meta": {}})
}

/// `Data.ReadRefundAccount`: "Yes", "No" or absent (no).
fn parse_read_refund(data: &Value) -> Result<bool, &'static str> {
    match &data["ReadRefundAccount"] {
        Value::Null => Ok(false),
        Value::String(text) if text == "Yes" => Ok(true),
        Value::String(text) if text == "No" => Ok(false),
        _ => Err("Data.ReadRefundAccount is \"Yes\" or \"No\""),
    }
}

/// `Data.Refund.Account` of a payment: the debtor's account, when its consent asked for it
/// and the customer has picked the account (on the authorisation page, for a pay-in).
fn refund_account(state: &BankState, payment: &Payment) -> Option<Value> {
    let consent = state.consents.get(payment.consent_id.as_deref()?)?;
    if !consent.read_refund_account {
        return None;
    }
    let debtor = state.accounts.get(payment.order.debtor.as_deref()?)?;
    Some(debtor.obie())
}

fn payment_json(bank: &Bank, state: &BankState, payment: &Payment) -> Value {
    let mut data = json!({
        "DomesticPaymentId": payment.id,
        "ConsentId": payment.consent_id,
        "Status": payment.status.obie(),
        "CreationDateTime": datetime_of_ms(payment.created_ms),
        "StatusUpdateDateTime": datetime_of_ms(payment.updated_ms),
        "Initiation": payment.initiation,
    });
    if let Some(reason) = &payment.reason {
        data["StatusDetail"] = json!({ "Status": "Rejected", "StatusReason": reason });
    }
    if let Some(account) = refund_account(state, payment) {
        data["Refund"] = json!({ "Account": account });
    }
    let link = format!("{}{BASE}/domestic-payments/{}", bank.base_url, payment.id);
    json!({"Data": data, "Links": {"Self": link}, "Meta": {}})
}

async fn post_consent(State(bank): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    match create_consent(&bank, &headers, &body).await {
        Ok((answer, fresh)) => {
            // Only new work is held back: a resend must be able to learn what happened.
            if fresh {
                bank.maybe_hold().await;
            }
            signed(&bank, StatusCode::CREATED, answer)
        }
        Err(refusal) => refusal,
    }
}

/// The consent's answer, and whether it was made now (not a resend's stored answer).
async fn create_consent(
    bank: &Bank,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, bool), Response> {
    verify_signature(bank, headers, body).await?;
    let key = idempotency_key(headers).map_err(|refusal| *refusal)?;
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| bad("UK.OBIE.Field.Invalid", "the body is not JSON"))?;
    let initiation = request["Data"]["Initiation"].clone();
    let order = parse_order(&initiation).map_err(|m| bad("UK.OBIE.Field.Invalid", &m))?;
    let read_refund_account =
        parse_read_refund(&request["Data"]).map_err(|m| bad("UK.OBIE.Field.Invalid", m))?;
    let body_sha256 = sha256_hex(body);
    let mut state = bank.state.lock().await;
    match state.replay(&key, &body_sha256) {
        Replay::Same(stored) => return Ok((stored.body, false)),
        Replay::Mismatch => {
            let message = "x-idempotency-key reused with another body";
            return Err(bad("UK.OBIE.Resource.ConsentMismatch", message));
        }
        Replay::Fresh => {}
    }
    if state.resources() >= bank.config.payments_max {
        return Err(full(Shape::Obie, "consents or payments"));
    }
    check_parties(&state, &order).map_err(|m| bad("UK.OBIE.Field.Invalid", &m))?;
    let now = now_ms();
    let status = if debtor_is_own(&state, &order) {
        ConsentStatus::Authorised
    } else {
        ConsentStatus::AwaitingAuthorisation
    };
    let consent = Consent {
        id: random_id(),
        status,
        expired: false,
        order,
        initiation,
        created_ms: now,
        updated_ms: now,
        expires_ms: now + bank.config.consent_ttl_s * 1000,
        payment_id: None,
        read_refund_account,
    };
    let answer = consent_json(bank, &consent).to_string();
    let stored = Stored {
        body_sha256,
        status: 201,
        body: answer.clone(),
    };
    tracing::info!(consent = %consent.id, status = status.obie(), "consent made");
    let events = vec![
        Event::Consent(consent),
        Event::Idempotency {
            key,
            record: stored,
        },
    ];
    bank.commit(&mut state, events)
        .await
        .map_err(|e| internal(Shape::Obie, &e))?;
    Ok((answer, true))
}

async fn get_consent(State(bank): State<Shared>, Path(id): Path<String>) -> Response {
    // Signing (an RSA private-key operation) happens after the state's lock is let go.
    let answer = {
        let state = bank.state.lock().await;
        state
            .consents
            .get(&id)
            .map(|c| consent_json(&bank, c).to_string())
    };
    match answer {
        Some(answer) => signed(&bank, StatusCode::OK, answer),
        None => problem(
            Shape::Obie,
            StatusCode::NOT_FOUND,
            "UK.OBIE.Resource.NotFound",
            "no such consent",
        ),
    }
}

async fn get_payment(State(bank): State<Shared>, Path(id): Path<String>) -> Response {
    let answer = {
        let state = bank.state.lock().await;
        let payment = state.payments.get(&id);
        payment.map(|p| payment_json(&bank, &state, p).to_string())
    };
    match answer {
        Some(answer) => signed(&bank, StatusCode::OK, answer),
        None => problem(
            Shape::Obie,
            StatusCode::NOT_FOUND,
            "UK.OBIE.Resource.NotFound",
            "no such payment",
        ),
    }
}

async fn post_payment(State(bank): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let bank = &bank;
    match create_payment(bank, &headers, &body).await {
        Ok((answer, fresh, settle)) => {
            if let Some((id, due_ms)) = settle {
                bank.arm_settlement(id, due_ms);
            }
            // Only new work is held back: a resend must be able to learn what happened.
            if fresh {
                bank.maybe_hold().await;
            }
            signed(bank, StatusCode::CREATED, answer)
        }
        Err(refusal) => refusal,
    }
}

/// The payment's answer, whether it was made now, and its settlement to arm if it was
/// accepted now.
type Created = (String, bool, Option<(String, u64)>);

async fn create_payment(
    bank: &Bank,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Created, Response> {
    verify_signature(bank, headers, body).await?;
    let key = idempotency_key(headers).map_err(|refusal| *refusal)?;
    let request: Value = serde_json::from_slice(body)
        .map_err(|_| bad("UK.OBIE.Field.Invalid", "the body is not JSON"))?;
    let consent_id = request["Data"]["ConsentId"].as_str().unwrap_or_default();
    let initiation = &request["Data"]["Initiation"];
    let body_sha256 = sha256_hex(body);
    let mut state = bank.state.lock().await;
    match state.replay(&key, &body_sha256) {
        Replay::Same(stored) => return Ok((stored.body, false, None)),
        Replay::Mismatch => {
            let message = "x-idempotency-key reused with another body";
            return Err(bad("UK.OBIE.Resource.ConsentMismatch", message));
        }
        Replay::Fresh => {}
    }
    let Some(mut consent) = state.consents.get(consent_id).cloned() else {
        return Err(bad(
            "UK.OBIE.Resource.InvalidConsentStatus",
            "no such consent",
        ));
    };
    if consent.initiation != *initiation {
        return Err(bad(
            "UK.OBIE.Resource.ConsentMismatch",
            "the Initiation is not the consent's",
        ));
    }
    // One payment per consent, whatever the idempotency key: a resend never pays twice.
    if let Some(payment) = consent
        .payment_id
        .as_ref()
        .and_then(|id| state.payments.get(id))
    {
        return Ok((payment_json(bank, &state, payment).to_string(), false, None));
    }
    if consent.status != ConsentStatus::Authorised {
        let message = format!("the consent is {}", consent.status.obie());
        return Err(bad("UK.OBIE.Resource.InvalidConsentStatus", &message));
    }
    if state.resources() >= bank.config.payments_max {
        return Err(full(Shape::Obie, "consents or payments"));
    }
    let now = now_ms();
    let mut payment = Payment {
        id: random_id(),
        consent_id: Some(consent.id.clone()),
        product: None,
        status: PayStatus::Received,
        reason: None,
        order: consent.order.clone(),
        initiation: initiation.clone(),
        created_ms: now,
        updated_ms: now,
        expires_ms: now,
        settle_at_ms: None,
        notification_uri: None,
    };
    bank.accept(&state, &mut payment, PayStatus::InProcess);
    consent.status = ConsentStatus::Consumed;
    consent.payment_id = Some(payment.id.clone());
    consent.updated_ms = now;
    let answer = payment_json(bank, &state, &payment).to_string();
    let settle = payment.settle_at_ms.map(|due| (payment.id.clone(), due));
    tracing::info!(payment = %payment.id, status = payment.status.obie(), "payment made");
    let stored = Stored {
        body_sha256,
        status: 201,
        body: answer.clone(),
    };
    let events = vec![
        Event::Payment(payment),
        Event::Consent(consent),
        Event::Idempotency {
            key,
            record: stored,
        },
    ];
    bank.commit(&mut state, events)
        .await
        .map_err(|e| internal(Shape::Obie, &e))?;
    Ok((answer, true, settle))
}

/// `POST /event-subscriptions`: where the client wants its notifications (the last one wins).
async fn post_subscription(
    State(bank): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Signed like every OBIE POST when the client signs it; the sandbox takes it unsigned too.
    if headers.contains_key("x-jws-signature") {
        if let Err(refusal) = verify_signature(&bank, &headers, &body).await {
            return refusal;
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad("UK.OBIE.Field.Invalid", "the body is not JSON");
    };
    let url = request["Data"]["CallbackUrl"].as_str().unwrap_or_default();
    let web = url.starts_with("http://") || url.starts_with("https://");
    if !web || url.len() > URL_CHARS_MAX {
        return bad(
            "UK.OBIE.Field.Invalid",
            "Data.CallbackUrl is not an http(s) URL",
        );
    }
    let mut state = bank.state.lock().await;
    let event = Event::Subscription {
        callback_url: url.to_string(),
    };
    if let Err(error) = bank.commit(&mut state, vec![event]).await {
        return internal(Shape::Obie, &error);
    }
    let id = sha256_hex(bank.config.client_id.as_bytes())[..16].to_string();
    let answer = json!({
        "Data": {
            "EventSubscriptionId": id,
            "CallbackUrl": url,
            "Version": "3.1",
            "EventTypes": ["urn:uk:org:openbanking:events:resource-update"],
        },
        "Links": {"Self": format!("{}/open-banking/v3.1/event-subscriptions/{id}", bank.base_url)},
        "Meta": {},
    });
    signed(&bank, StatusCode::CREATED, answer.to_string())
}
