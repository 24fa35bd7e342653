//! The sender: one thread with its own runtime (like the AML pipeline, so a slow endpoint or a
//! backlog never takes the API's threads), a durable feed consumer per endpoint, and the
//! replays the routes queue.

use std::sync::Arc;
use std::time::Duration;

use croupier_cluster::{CommittedEvent, Consensus, Node};
use croupier_core::HistoryRecord;
use futures_util::StreamExt;

use super::log::{DeliveryRecord, DeliveryState};
use super::{classify, event_id, signature, SendOutcome, WebhookBody, WebhookEndpoint, Webhooks};
use crate::cursor::CursorSaver;
use crate::wire::PaymentEventOut;

/// Events read from the feed per step (most are not payments and are skipped).
const BATCH_EVENTS_MAX: usize = 1_024;
/// How often a node not serving writes looks again.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// A delivery the dispatcher sends: the event's body, ready.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub position: u64,
    pub event_type: &'static str,
    pub body: Vec<u8>,
}

/// A replay a route asked for.
#[derive(Debug)]
pub struct Replay {
    pub delivery_id: String,
    pub of: DeliveryRecord,
    pub event: Prepared,
}

/// The webhook body of a feed event, if it is a payment change.
pub fn prepare(event: &CommittedEvent) -> Option<Prepared> {
    let HistoryRecord::Payment(payment) = &event.record else {
        return None;
    };
    let id = event_id(event.position);
    let body = WebhookBody {
        id: &id,
        event_type: payment.event_type(),
        position: event.position.to_string(),
        timestamp: event.timestamp_ns,
        data: PaymentEventOut::from(payment),
    };
    Some(Prepared {
        position: event.position,
        event_type: payment.event_type(),
        body: serde_json::to_vec(&body).ok()?,
    })
}

/// Starts the sender on its thread; the receiver resolves once it has stopped.
pub fn spawn(
    node: Node,
    webhooks: Arc<Webhooks>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>> {
    crate::cursor::spawn_on_own_thread("webhooks", || {}, move || run(node, webhooks, stop))
}

async fn run(node: Node, webhooks: Arc<Webhooks>, stop: tokio::sync::watch::Receiver<bool>) {
    let client = match client(&webhooks) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhooks: no HTTP client; nothing is sent");
            return;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..webhooks.config.endpoints.len() {
        let sender = Sender {
            webhooks: Arc::clone(&webhooks),
            client: client.clone(),
            index,
            stop: stop.clone(),
        };
        tasks.spawn(run_endpoint(node.clone(), sender));
    }
    let queue = webhooks.replay_queue.lock().ok().and_then(|mut q| q.take());
    if let Some(queue) = queue {
        tasks.spawn(run_replays(Arc::clone(&webhooks), client, queue, stop));
    }
    while tasks.join_next().await.is_some() {}
}

fn client(webhooks: &Webhooks) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(webhooks.timeout())
        .pool_max_idle_per_host(webhooks.config.in_flight_max)
        .user_agent(concat!("croupier-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What sends to one endpoint.
#[derive(Clone)]
struct Sender {
    webhooks: Arc<Webhooks>,
    client: reqwest::Client,
    index: usize,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Sender {
    fn endpoint(&self) -> &WebhookEndpoint {
        &self.webhooks.config.endpoints[self.index]
    }

    fn wants(&self, event: &Prepared) -> bool {
        let events = &self.endpoint().events;
        events.is_empty() || events.iter().any(|e| e == event.event_type)
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `wait`, or less if the server stops.
    async fn pause(&self, wait: Duration) {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
    }
}

async fn run_endpoint(node: Node, sender: Sender) {
    let consumer = format!("webhook-{}", sender.endpoint().id);
    let Ok(mut subscription) = node.subscribe(&consumer) else {
        tracing::error!(%consumer, "webhooks: cannot open the feed cursor; nothing is sent");
        return;
    };
    let mut cursor = CursorSaver::new(consumer.clone(), subscription.acked().unwrap_or(0));
    let mut stop = sender.stop.clone();
    let mut caught_up = false;
    while !sender.stopped() {
        if !node.is_serving_writes() {
            caught_up = false;
            sender.pause(IDLE_WAIT).await;
            continue;
        }
        if !caught_up {
            // This node just began serving writes: start after what the last one that did
            // acknowledged, not from this node's own (older) cursor.
            if let Err(error) = subscription.catch_up_to_replicated().await {
                tracing::warn!(%consumer, %error, "webhooks: the replicated cursor is unread");
            }
            caught_up = true;
        }
        let save_due = cursor.save_due_in();
        let batch = tokio::select! {
            batch = subscription.next_batch(BATCH_EVENTS_MAX) => batch,
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = tokio::time::sleep(save_due.unwrap_or_default()), if save_due.is_some() => {
                sender.webhooks.log().sync();
                cursor.save(&mut subscription);
                continue;
            }
        };
        let Ok(batch) = batch else {
            sender.pause(IDLE_WAIT).await;
            continue;
        };
        let Some(last) = batch.last().map(|event| event.position) else {
            continue;
        };
        let deliveries: Vec<Prepared> = batch
            .iter()
            .filter_map(prepare)
            .filter(|event| sender.wants(event))
            .collect();
        let active = || !sender.stopped() && node.is_serving_writes();
        if !deliver_all(&sender, deliveries, &active).await {
            // Stopped or no longer serving writes: what was not delivered comes again from
            // the saved cursor (reopening the subscription forgets what it handed out).
            cursor.save(&mut subscription);
            match node.subscribe(&consumer) {
                Ok(reopened) => subscription = reopened,
                Err(_) => break,
            }
            continue;
        }
        let log = || sender.webhooks.log().sync();
        cursor.decided_then(&mut subscription, last, batch.len(), log);
    }
    sender.webhooks.log().sync();
    cursor.save(&mut subscription);
}

/// Sends a batch's events, `in_flight_max` at once; false if one was abandoned.
async fn deliver_all(
    sender: &Sender,
    events: Vec<Prepared>,
    active: &(dyn Fn() -> bool + Sync),
) -> bool {
    let in_flight_max = sender.webhooks.config.in_flight_max;
    let endpoint = &sender.endpoint().id;
    let sends = events.into_iter().map(|event| {
        let delivery_id = format!("{endpoint}-{}", event.position);
        async move { deliver(sender, &event, delivery_id, None, active).await }
    });
    let outcomes: Vec<bool> = futures_util::stream::iter(sends)
        .buffer_unordered(in_flight_max)
        .collect()
        .await;
    outcomes.into_iter().all(|ended| ended)
}

async fn run_replays(
    webhooks: Arc<Webhooks>,
    client: reqwest::Client,
    mut queue: tokio::sync::mpsc::Receiver<Replay>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut running = tokio::task::JoinSet::new();
    let mut stop_wait = stop.clone();
    loop {
        let replay = tokio::select! {
            replay = queue.recv() => match replay { Some(replay) => replay, None => break },
            _ = stop_wait.wait_for(|stopped| *stopped) => break,
        };
        let Some(index) = webhooks
            .config
            .endpoints
            .iter()
            .position(|e| e.id == replay.of.endpoint)
        else {
            continue;
        };
        let sender = Sender {
            webhooks: Arc::clone(&webhooks),
            client: client.clone(),
            index,
            stop: stop.clone(),
        };
        running.spawn(async move {
            let active = || !sender.stopped();
            let of = Some(replay.of.delivery_id.clone());
            deliver(&sender, &replay.event, replay.delivery_id, of, &active).await;
        });
        while running.try_join_next().is_some() {}
    }
    running.abort_all();
}

/// Sends one event until it is delivered, rejected or out of attempts (each recorded in the
/// log); false if `active` turned false first (nothing final is logged then).
async fn deliver(
    sender: &Sender,
    event: &Prepared,
    delivery_id: String,
    replay_of: Option<String>,
    active: &(dyn Fn() -> bool + Sync),
) -> bool {
    let config = &sender.webhooks.config;
    let now_ns = crate::auth::wall_clock_ns();
    let mut record = DeliveryRecord {
        delivery_id,
        endpoint: sender.endpoint().id.clone(),
        event_id: event_id(event.position),
        event_type: event.event_type.to_string(),
        position: event.position.to_string(),
        state: DeliveryState::Retrying,
        attempts: 0,
        last_status: None,
        last_error: None,
        first_attempt_ns: now_ns,
        last_attempt_ns: now_ns,
        replay_of,
    };
    let mut wait_ms = config.backoff_ms_first;
    loop {
        if !active() {
            sender.webhooks.log().abandoned(&record.delivery_id);
            return false;
        }
        let outcome = send_once(sender, event, &mut record).await;
        let state = match outcome {
            SendOutcome::Delivered => DeliveryState::Delivered,
            SendOutcome::Rejected => DeliveryState::Rejected,
            SendOutcome::Retry if record.attempts >= config.attempts_max => DeliveryState::Failed,
            SendOutcome::Retry => {
                sender.webhooks.log().retrying(&record);
                sender.pause(Duration::from_millis(jittered(wait_ms))).await;
                wait_ms = (wait_ms * 2).min(config.backoff_ms_max);
                continue;
            }
        };
        record.state = state;
        metrics::counter!("croupier_webhook_deliveries_total", "state" => state_name(state))
            .increment(1);
        sender.webhooks.log().finished(record);
        return true;
    }
}

async fn send_once(sender: &Sender, event: &Prepared, record: &mut DeliveryRecord) -> SendOutcome {
    let endpoint = sender.endpoint();
    record.attempts += 1;
    record.last_attempt_ns = crate::auth::wall_clock_ns();
    let timestamp_s = record.last_attempt_ns / 1_000_000_000;
    let request = sender
        .client
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header("croupier-webhook-id", &record.event_id)
        .header("croupier-webhook-timestamp", timestamp_s.to_string())
        .header(
            "croupier-webhook-signature",
            signature(endpoint.secret.as_bytes(), timestamp_s, &event.body),
        )
        .header("croupier-webhook-attempt", record.attempts.to_string())
        .body(event.body.clone());
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            record.last_status = Some(status);
            record.last_error = None;
            classify(status)
        }
        Err(error) => {
            record.last_status = None;
            // Without the URL: it may carry a token the operator put in it.
            record.last_error = Some(error.without_url().to_string());
            SendOutcome::Retry
        }
    }
}

/// `wait_ms` less up to a quarter, so endpoints that failed together do not retry together.
fn jittered(wait_ms: u64) -> u64 {
    let spread = (wait_ms / 4).max(1);
    wait_ms - u64::from(getrandom::u32().unwrap_or(0)) % spread
}

fn state_name(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Retrying => "retrying",
        DeliveryState::Delivered => "delivered",
        DeliveryState::Rejected => "rejected",
        DeliveryState::Failed => "failed",
    }
}
