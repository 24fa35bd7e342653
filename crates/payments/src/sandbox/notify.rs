//! Notifications: built when a status changes, queued (bounded), and posted by a background
//! worker with a short timeout and a few retries. A failed delivery is logged; it never holds
//! up a payment (a notification is a hint, the status routes are the truth).

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, Semaphore};

use super::state::Payment;
use super::util::{now_ms, random_id};
use crate::jws::SigningKey;

/// Deliveries in flight at most: a slow callback slows the queue, never grows it.
const IN_FLIGHT_MAX: usize = 8;
const ATTEMPTS: u32 = 3;
const TIMEOUT_MS: u64 = 2_000;
const BACKOFF_MS: u64 = 100;

/// One POST to a callback.
pub(crate) struct Note {
    pub url: String,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// What it is about, for the log.
    pub about: String,
    /// 2 under the duplicate fault.
    pub copies: u8,
    /// Held back this long under the out-of-order fault.
    pub delay_ms: u64,
}

/// What a note is signed and addressed with, lent by the bank: this module never needs the
/// bank itself (the bank queues notes, so it depends on this module, not the reverse).
pub(crate) struct Issuer<'a> {
    pub base_url: &'a str,
    pub client_id: &'a str,
    pub key: &'a SigningKey,
}

/// OBIE: a signed Security Event Token saying resource `rid` (of type `rty`) changed.
pub(crate) fn obie_note(issuer: &Issuer<'_>, url: &str, rid: &str, rty: &str) -> Option<Note> {
    let now_s = now_ms() / 1000;
    let path = match rty {
        "domestic-payment" => "domestic-payments",
        _ => "domestic-payment-consents",
    };
    let link = format!("{}/open-banking/v3.1/pisp/{path}/{rid}", issuer.base_url);
    let token = json!({
        "iss": issuer.base_url,
        "iat": now_s,
        "jti": random_id(),
        "aud": issuer.client_id,
        "sub": link,
        "txn": random_id(),
        "toe": now_s,
        "events": {"urn:uk:org:openbanking:events:resource-update": {"subject": {
            "subject_type": "http://openbanking.org.uk/rid_http://openbanking.org.uk/rty",
            "http://openbanking.org.uk/rid": rid,
            "http://openbanking.org.uk/rty": rty,
            "http://openbanking.org.uk/rlk": [{"version": "v3.1", "link": link}],
        }}},
    });
    let mut claims = Map::new();
    claims.insert("typ".into(), "JWT".into());
    let jws = issuer
        .key
        .sign_compact(token.to_string().as_bytes(), claims)
        .inspect_err(|error| tracing::error!(%error, "cannot sign a notification"))
        .ok()?;
    Some(Note {
        url: url.to_string(),
        content_type: "application/jwt",
        headers: Vec::new(),
        body: jws.into_bytes(),
        about: format!("{rty} {rid}"),
        copies: 1,
        delay_ms: 0,
    })
}

/// `Digest: SHA-256=<base64>` of a body.
pub(crate) fn digest_header(body: &[u8]) -> String {
    format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)))
}

/// Berlin Group: `{"paymentId","transactionStatus"}` with its Digest and the bank's detached
/// signature.
pub(crate) fn berlin_note(issuer: &Issuer<'_>, url: &str, payment: &Payment) -> Option<Note> {
    let body = json!({
        "paymentId": payment.id,
        "transactionStatus": payment.status.berlin(),
    })
    .to_string()
    .into_bytes();
    let mut claims = Map::new();
    claims.insert("iat".into(), Value::from(now_ms() / 1000));
    let jws = issuer
        .key
        .sign_detached(&body, claims)
        .inspect_err(|error| tracing::error!(%error, "cannot sign a notification"))
        .ok()?;
    Some(Note {
        url: url.to_string(),
        content_type: "application/json",
        headers: vec![("Digest", digest_header(&body)), ("x-jws-signature", jws)],
        body,
        about: format!("payment {}", payment.id),
        copies: 1,
        delay_ms: 0,
    })
}

/// The worker: takes notes off the queue, at most `IN_FLIGHT_MAX` deliveries at once.
pub(crate) fn spawn_worker(mut notes: mpsc::Receiver<Note>) {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_millis(TIMEOUT_MS))
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "no HTTP client: notifications are not sent");
                return;
            }
        };
        let permits = Arc::new(Semaphore::new(IN_FLIGHT_MAX));
        while let Some(note) = notes.recv().await {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let client = client.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(note.delay_ms)).await;
                for _ in 0..note.copies {
                    deliver(&client, &note).await;
                }
                drop(permit);
            });
        }
    });
}

async fn deliver(client: &reqwest::Client, note: &Note) {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(BACKOFF_MS << (2 * attempt))).await;
        }
        let mut request = client
            .post(&note.url)
            .header("Content-Type", note.content_type)
            .body(note.body.clone());
        for (name, value) in &note.headers {
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(about = %note.about, status = %response.status(), attempt, "notification refused")
            }
            Err(error) => {
                tracing::warn!(about = %note.about, %error, attempt, "notification not delivered")
            }
        }
    }
    tracing::warn!(about = %note.about, "notification given up");
}
