//! Outbound webhooks: every deposit's and withdrawal's change (the feed's `deposit_updated`
//! and `withdrawal_updated` events) is POSTed to each endpoint the operator configured,
//! signed with the endpoint's secret (HMAC-SHA256 over `"{timestamp}.{body}"`), retried with
//! backoff while the endpoint fails, and recorded in a delivery log that an operator reads and
//! replays from (`GET /v1/webhooks/deliveries`, `POST …/{id}/replay`).
//!
//! Delivery is at least once: each endpoint is a durable consumer of the committed event feed
//! (`webhook-{endpoint}`), acknowledged only after its events were delivered or given up on,
//! so a crash or a restart sends some events again. Every send of one event carries the same
//! `croupier-webhook-id`; receivers deduplicate on it. Only the node serving writes sends.
//! A node that never sent for an endpoint starts from the oldest event the feed retains.

pub mod dispatch;
pub mod log;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::wire::PaymentEventOut;
use log::{DeliveryLog, DeliveryRecord};

/// The events an endpoint receives unless it names some.
pub const EVENT_TYPES: [&str; 2] = ["deposit_updated", "withdrawal_updated"];
/// An endpoint's secret has at least this many bytes (HMAC-SHA256 keys shorter than the
/// hash's block are padded, so a short one is guessable).
pub const SECRET_LEN_MIN: usize = 16;
const ENDPOINT_ID_LEN_MAX: usize = 32;

/// One of the operator's receiving systems.
#[derive(Clone)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub secret: String,
    /// Which of `EVENT_TYPES` it receives.
    pub events: Vec<String>,
}

// The secret never reaches Debug output.
impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct WebhooksConfig {
    pub endpoints: Vec<WebhookEndpoint>,
    /// Sends of one event before it is given up on (`failed`, replayable).
    pub attempts_max: u32,
    /// The wait after the first failed send; it doubles up to `backoff_ms_max`.
    pub backoff_ms_first: u64,
    pub backoff_ms_max: u64,
    /// One send's timeout (connect, send, answer).
    pub timeout_ms: u64,
    /// Events sent to one endpoint at once.
    pub in_flight_max: usize,
    /// Deliveries the log keeps in memory (the newest) and answers from.
    pub log_entries_max: usize,
    /// The log file's size before it is rotated (one previous file is kept).
    pub log_file_bytes_max: u64,
    /// Replays waiting to be sent.
    pub replay_queue_max: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            endpoints: Vec::new(),
            attempts_max: 8,
            backoff_ms_first: 500,
            backoff_ms_max: 60_000,
            timeout_ms: 5_000,
            in_flight_max: 16,
            log_entries_max: 10_000,
            log_file_bytes_max: 16 << 20,
            replay_queue_max: 1_024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    #[error("webhooks.endpoints: {0}")]
    Endpoint(String),
    #[error("webhooks: {0}")]
    Setting(String),
    #[error("webhooks: the delivery log {path}: {source}")]
    Log {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("webhooks: the HTTP client: {0}")]
    Client(String),
}

impl WebhooksConfig {
    /// Refuses settings that could not work (checked at start, not at the first event).
    pub fn validate(&self) -> Result<(), WebhooksError> {
        let mut seen = std::collections::BTreeSet::new();
        for endpoint in &self.endpoints {
            validate_endpoint(endpoint)?;
            if !seen.insert(endpoint.id.as_str()) {
                let message = format!("{} twice: ids must be distinct", endpoint.id);
                return Err(WebhooksError::Endpoint(message));
            }
        }
        let bounded = self.attempts_max >= 1
            && self.backoff_ms_first >= 1
            && self.backoff_ms_max >= self.backoff_ms_first
            && self.timeout_ms >= 1
            && self.in_flight_max >= 1
            && self.log_entries_max >= 1
            && self.log_file_bytes_max >= 4_096
            && self.replay_queue_max >= 1;
        match bounded {
            true => Ok(()),
            false => Err(WebhooksError::Setting(
                "attempts_max, backoff_ms_first, timeout_ms, in_flight_max, log_entries_max and \
                 replay_queue_max must be at least 1, backoff_ms_max at least backoff_ms_first, \
                 log_file_bytes_max at least 4096"
                    .into(),
            )),
        }
    }
}

fn validate_endpoint(endpoint: &WebhookEndpoint) -> Result<(), WebhooksError> {
    let fail = |what: String| Err(WebhooksError::Endpoint(format!("{}: {what}", endpoint.id)));
    let id_ok = (1..=ENDPOINT_ID_LEN_MAX).contains(&endpoint.id.len())
        && endpoint
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !id_ok {
        return fail("id must be 1 to 32 of a-z, 0-9, - and _".into());
    }
    match reqwest::Url::parse(&endpoint.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
        _ => return fail(format!("url {:?} is not an http(s) URL", endpoint.url)),
    }
    if endpoint.secret.len() < SECRET_LEN_MIN {
        return fail(format!("secret must have at least {SECRET_LEN_MIN} bytes"));
    }
    if let Some(unknown) = endpoint
        .events
        .iter()
        .find(|event| !EVENT_TYPES.contains(&event.as_str()))
    {
        return fail(format!(
            "unknown event {unknown:?} (known: {EVENT_TYPES:?})"
        ));
    }
    Ok(())
}

/// The JSON an endpoint receives.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// `evt_{position}`: the same on every send of this event.
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    /// The event's position in the feed (decimal string).
    pub position: String,
    /// Ledger time of the change, nanoseconds since the Unix epoch.
    pub timestamp: u64,
    pub data: PaymentEventOut,
}

/// The event id of the feed event at `position`.
pub fn event_id(position: u64) -> String {
    format!("evt_{position}")
}

/// `v1=` and the hex HMAC-SHA256 of `"{timestamp_s}.{body}"` under `secret`.
pub fn signature(secret: &[u8], timestamp_s: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The node's webhooks: endpoints, one HTTP client and the delivery log.
pub struct Webhooks {
    pub(crate) config: WebhooksConfig,
    pub(crate) log: Mutex<DeliveryLog>,
    /// Replays for the dispatcher (which owns the HTTP client's runtime).
    replays: tokio::sync::mpsc::Sender<dispatch::Replay>,
    pub(crate) replay_queue: Mutex<Option<tokio::sync::mpsc::Receiver<dispatch::Replay>>>,
}

impl Webhooks {
    /// Opens the delivery log in `dir` (made if missing).
    pub fn open(config: WebhooksConfig, dir: &std::path::Path) -> Result<Webhooks, WebhooksError> {
        config.validate()?;
        let log = DeliveryLog::open(dir, config.log_entries_max, config.log_file_bytes_max)?;
        let (replays, queue) = tokio::sync::mpsc::channel(config.replay_queue_max);
        Ok(Webhooks {
            config,
            log: Mutex::new(log),
            replays,
            replay_queue: Mutex::new(Some(queue)),
        })
    }

    pub fn endpoint(&self, id: &str) -> Option<&WebhookEndpoint> {
        self.config.endpoints.iter().find(|e| e.id == id)
    }

    pub(crate) fn log(&self) -> std::sync::MutexGuard<'_, DeliveryLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a new send of a logged delivery's event; None if the queue is full.
    pub(crate) fn request_replay(
        &self,
        of: &DeliveryRecord,
        event: dispatch::Prepared,
    ) -> Option<String> {
        let mut log = self.log();
        let replay_id = log.next_replay_id(of);
        let replay = dispatch::Replay {
            delivery_id: replay_id.clone(),
            of: of.clone(),
            event,
        };
        self.replays.try_send(replay).ok()?;
        // Visible at once (`retrying`, no attempt yet): the answer names it.
        let now_ns = crate::auth::wall_clock_ns();
        log.retrying(&log::DeliveryRecord {
            delivery_id: replay_id.clone(),
            state: log::DeliveryState::Retrying,
            attempts: 0,
            last_status: None,
            last_error: None,
            first_attempt_ns: now_ns,
            last_attempt_ns: now_ns,
            replay_of: Some(of.delivery_id.clone()),
            ..of.clone()
        });
        Some(replay_id)
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }
}

/// What one send's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    Delivered,
    /// The endpoint refused the event itself (a 4xx other than 408, 425 and 429, or a
    /// redirect): sending it again would not help.
    Rejected,
    /// Busy, down, slow or broken: sent again after a wait.
    Retry,
}

pub(crate) fn classify(status: u16) -> SendOutcome {
    match status {
        200..=299 => SendOutcome::Delivered,
        408 | 425 | 429 | 500..=599 => SendOutcome::Retry,
        _ => SendOutcome::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(id: &str, url: &str, secret: &str, events: &[&str]) -> WebhookEndpoint {
        WebhookEndpoint {
            id: id.into(),
            url: url.into(),
            secret: secret.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn refused(endpoints: Vec<WebhookEndpoint>) -> String {
        let config = WebhooksConfig {
            endpoints,
            ..WebhooksConfig::default()
        };
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn endpoints_that_could_not_work_are_refused_at_start_with_the_reason() {
        let secret = "0123456789abcdef";
        let good = endpoint("ops", "http://127.0.0.1:9/hooks", secret, &[]);
        let config = WebhooksConfig {
            endpoints: vec![good.clone()],
            ..WebhooksConfig::default()
        };
        assert!(config.validate().is_ok());
        assert!(refused(vec![good.clone(), good.clone()]).contains("twice"));
        assert!(refused(vec![endpoint("Ops!", "http://h/", secret, &[])]).contains("id"));
        assert!(refused(vec![endpoint("ops", "ftp://h/", secret, &[])]).contains("http"));
        assert!(refused(vec![endpoint("ops", "http://h/", "short", &[])]).contains("16 bytes"));
        let unknown = endpoint("ops", "http://h/", secret, &["round_settled"]);
        assert!(refused(vec![unknown]).contains("unknown event"));
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_exact_body() {
        let signed = signature(b"key-0123456789ab", 1_700_000_000, b"{\"a\":1}");
        assert!(signed.starts_with("v1=") && signed.len() == 3 + 64);
        assert_ne!(
            signed,
            signature(b"key-0123456789ab", 1_700_000_001, b"{\"a\":1}")
        );
        assert_ne!(
            signed,
            signature(b"key-0123456789ab", 1_700_000_000, b"{\"a\":2}")
        );
        assert_ne!(
            signed,
            signature(b"key-0123456789ac", 1_700_000_000, b"{\"a\":1}")
        );
    }
}
