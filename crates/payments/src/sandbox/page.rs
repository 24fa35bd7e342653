//! The customer's side: `GET /authorize?consent_id=|payment_id=` shows the payment;
//! `&approve=1` authorises it (the debtor: `&account=`, else the sandbox customer's account),
//! `&approve=0` rejects it; `&redirect_uri=` sends the browser back with the outcome.

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::accounts::{derived_iban, derived_sort_code, scheme_of};
use super::bank::{Bank, CUSTOMER_NAME};
use super::state::{Account, ConsentStatus, Event, Order, PayStatus, State as BankState};
use super::util::{now_ms, random_id};
use super::web::{account_key, full, internal, parse_form, problem, Shape, Shared};
use crate::money::to_bank_amount;

const URL_CHARS_MAX: usize = 2_048;

fn bad(message: &str) -> Response {
    problem(
        Shape::Obie,
        StatusCode::BAD_REQUEST,
        "UK.OBIE.Field.Invalid",
        message,
    )
}

fn unknown() -> Response {
    let message = "no such consent or payment";
    problem(
        Shape::Obie,
        StatusCode::NOT_FOUND,
        "UK.OBIE.Resource.NotFound",
        message,
    )
}

/// What the customer asked.
struct Ask {
    /// None: show the page.
    approve: Option<bool>,
    account: Option<String>,
    redirect_uri: Option<String>,
}

pub(crate) async fn authorize(State(bank): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let form = parse_form(query.as_deref().unwrap_or(""));
    let approve = match form.get("approve").map(String::as_str) {
        None => None,
        Some("1") => Some(true),
        Some("0") => Some(false),
        Some(_) => return bad("approve is 1 or 0"),
    };
    let redirect_uri = form.get("redirect_uri").cloned();
    if let Some(uri) = &redirect_uri {
        let web = uri.starts_with("http://") || uri.starts_with("https://");
        if !web || uri.len() > URL_CHARS_MAX {
            return bad("redirect_uri is not an http(s) URL");
        }
    }
    let ask = Ask {
        approve,
        account: form.get("account").cloned(),
        redirect_uri,
    };
    match (form.get("consent_id"), form.get("payment_id")) {
        (Some(id), None) => consent(&bank, id, ask).await,
        (None, Some(id)) => payment(&bank, id, ask).await,
        _ => bad("give consent_id or payment_id"),
    }
}

/// The page: what is to be paid, to whom, and the two links.
fn page(kind: &str, id: &str, order: &Order) -> Response {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let amount = to_bank_amount(order.amount_minor, &order.currency);
    let html = format!(
        "<!doctype html><title>Sandbox bank</title><h1>Authorise a payment</h1>\
         <p>{amount} {currency} to {name}, reference {reference}</p>\
         <p><a href=\"/authorize?{kind}={id}&amp;approve=1\">Approve</a> \
         <a href=\"/authorize?{kind}={id}&amp;approve=0\">Reject</a></p>",
        currency = escape(&order.currency),
        name = escape(&order.creditor_name),
        reference = escape(&order.end_to_end_id),
        id = escape(id),
    );
    Html(html).into_response()
}

/// The outcome: a redirect to the client if it asked for one, else JSON.
fn outcome(kind: &str, id: &str, status: &str, redirect_uri: Option<&str>) -> Response {
    match redirect_uri {
        Some(uri) => {
            let separator = if uri.contains('?') { '&' } else { '?' };
            let location = format!("{uri}{separator}{kind}={id}&status={status}");
            (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
        }
        None => Json(json!({ kind: id, "status": status })).into_response(),
    }
}

/// The account the customer pays from, and the account event if it is opened now. (The
/// refusal boxed: a Response is large.)
fn pick_debtor(
    bank: &Bank,
    state: &BankState,
    order: &Order,
    account: Option<&str>,
) -> Result<(String, Option<Account>), Box<Response>> {
    let bad = |message: &str| Box::new(bad(message));
    if let Some(text) = account {
        let key = account_key(text).map_err(&bad)?;
        return match state.accounts.get(&key) {
            Some(a) if a.currency == order.currency => Ok((key, None)),
            Some(_) => Err(bad("AC01: the account is in another currency")),
            None => Err(bad("AC01: no such account at this bank")),
        };
    }
    if let Some(debtor) = &order.debtor {
        return Ok((debtor.clone(), None));
    }
    let seed = format!("sandbox-customer-{}", order.currency);
    let key = match order.currency.as_str() {
        "GBP" => derived_sort_code(&seed),
        _ => derived_iban(&seed),
    };
    if state.accounts.contains_key(&key) {
        return Ok((key, None));
    }
    if state.accounts.len() >= bank.config.accounts_max {
        return Err(Box::new(full(Shape::Obie, "accounts")));
    }
    let account = Account {
        scheme: scheme_of(&key),
        key: key.clone(),
        resource_id: random_id(),
        name: CUSTOMER_NAME.into(),
        currency: order.currency.clone(),
        balance_minor: 0,
        overdraft: true,
        own: false,
    };
    Ok((key, Some(account)))
}

async fn consent(bank: &Shared, id: &str, ask: Ask) -> Response {
    let mut state = bank.state.lock().await;
    let Some(mut consent) = state.consents.get(id).cloned() else {
        return unknown();
    };
    let Some(approve) = ask.approve else {
        return page("consent_id", id, &consent.order);
    };
    let redirect = ask.redirect_uri.as_deref();
    // Decided already (or expired): the same answer again.
    if consent.status != ConsentStatus::AwaitingAuthorisation || consent.expires_ms <= now_ms() {
        return outcome("consent_id", id, consent.status.obie(), redirect);
    }
    let mut events = Vec::new();
    if approve {
        let (debtor, opened) =
            match pick_debtor(bank, &state, &consent.order, ask.account.as_deref()) {
                Ok(picked) => picked,
                Err(refusal) => return *refusal,
            };
        events.extend(opened.map(Event::Account));
        consent.order.debtor = Some(debtor);
        consent.status = ConsentStatus::Authorised;
    } else {
        consent.status = ConsentStatus::Rejected;
    }
    consent.updated_ms = now_ms();
    let status = consent.status.obie();
    events.push(Event::Consent(consent));
    if let Err(error) = bank.commit(&mut state, events).await {
        return internal(Shape::Obie, &error);
    }
    tracing::info!(consent = id, status, "consent decided by the customer");
    bank.notify_consent(&state, id);
    outcome("consent_id", id, status, redirect)
}

async fn payment(bank: &Shared, id: &str, ask: Ask) -> Response {
    let mut state = bank.state.lock().await;
    let Some(mut payment) = state.payments.get(id).cloned() else {
        return unknown();
    };
    if payment.consent_id.is_some() {
        return unknown(); // an OBIE payment is authorised through its consent
    }
    let Some(approve) = ask.approve else {
        return page("payment_id", id, &payment.order);
    };
    let redirect = ask.redirect_uri.as_deref();
    if payment.status != PayStatus::Received || payment.expires_ms <= now_ms() {
        return outcome("payment_id", id, payment.status.berlin(), redirect);
    }
    if approve {
        let (debtor, opened) =
            match pick_debtor(bank, &state, &payment.order, ask.account.as_deref()) {
                Ok(picked) => picked,
                Err(refusal) => return *refusal,
            };
        // The customer's account first: the funds check below reads it.
        if let Some(account) = opened {
            if let Err(error) = bank.commit(&mut state, vec![Event::Account(account)]).await {
                return internal(Shape::Obie, &error);
            }
        }
        payment.order.debtor = Some(debtor);
        bank.accept(&state, &mut payment, PayStatus::Authorised);
    } else {
        payment.status = PayStatus::Rejected;
        payment.updated_ms = now_ms();
    }
    let status = payment.status.berlin();
    let settle = payment.settle_at_ms;
    if let Err(error) = bank
        .commit(&mut state, vec![Event::Payment(payment.clone())])
        .await
    {
        return internal(Shape::Obie, &error);
    }
    tracing::info!(payment = id, status, "payment decided by the customer");
    if let Some(due_ms) = settle {
        bank.arm_settlement(id.to_string(), due_ms);
    }
    bank.notify_payment(&state, &payment);
    outcome("payment_id", id, status, redirect)
}
