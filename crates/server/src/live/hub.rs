//! The hub: per table, the last messages (what a reconnecting client resumes from) and the
//! subscribers, each behind a queue bounded in messages and in bytes. Publishing never waits
//! for a client: one whose queue is full is evicted (its connection is closed), so a slow
//! screen cannot hold up the table or the other screens.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use croupier_core::tables::{PlayerId, RoundId, TableEvent, TableEventKind, TableId};
use tokio::sync::{mpsc, watch, Semaphore};

use super::limits::LiveLimits;
use super::messages::{live_out, settled_bet, to_json, LiveOut, PlayerResult};
use super::pacer::Pacer;
use super::threads::LiveThreads;

/// A message ready to send: its text for everyone, and for each player who bet in the round
/// (a finished round) the text with that player's own result.
#[derive(Debug)]
struct LiveMessage {
    seq: u64,
    round_id: RoundId,
    opens_round: bool,
    /// Written at the paced rate (see `super::pacer`).
    paced: bool,
    text: Utf8Bytes,
    personal: BTreeMap<PlayerId, Utf8Bytes>,
    bytes: usize,
}

impl LiveMessage {
    fn text_for(&self, player: Option<PlayerId>) -> &Utf8Bytes {
        player
            .and_then(|player| self.personal.get(&player))
            .unwrap_or(&self.text)
    }
}

/// The first message after a gap says so: `{"missed":true,...}`.
fn marked_missed(text: &Utf8Bytes) -> Utf8Bytes {
    let rest = text.as_str().strip_prefix('{').unwrap_or(text.as_str());
    Utf8Bytes::from(format!("{{\"missed\":true,{rest}"))
}

/// A live message in a subscriber's queue.
#[derive(Debug)]
pub struct Queued {
    pub text: Utf8Bytes,
    /// Written only with a permit of the node's paced budget (`Subscription::pace`).
    pub paced: bool,
}

/// The sending half of a subscriber's queue: messages are bounded by the channel's capacity,
/// bytes by a counter the connection lowers as it writes.
#[derive(Debug)]
struct ClientQueue {
    tx: mpsc::Sender<Queued>,
    queued_bytes: Arc<AtomicUsize>,
    evicted: Arc<AtomicBool>,
}

impl ClientQueue {
    /// False when the client is too far behind (then it is evicted).
    fn offer(&self, text: &Utf8Bytes, paced: bool, bytes_max: usize) -> bool {
        let len = text.len();
        // Counted before sending: the writer may take it off before `try_send` returns.
        let queued = self.queued_bytes.fetch_add(len, Ordering::AcqRel) + len;
        let item = Queued {
            text: text.clone(),
            paced,
        };
        if queued <= bytes_max && self.tx.try_send(item).is_ok() {
            return true;
        }
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        self.evicted.store(true, Ordering::Release);
        false
    }
}

#[derive(Debug)]
struct Subscriber {
    player: Option<PlayerId>,
    queue: ClientQueue,
}

#[derive(Debug, Default)]
struct TableChannel {
    retained: VecDeque<Arc<LiveMessage>>,
    retained_bytes: usize,
    last_seq: u64,
    /// By subscription id: leaving is O(log n) however many watch.
    subscribers: BTreeMap<u64, Subscriber>,
    /// Players' results of rounds being settled, until the round's last event.
    settling: BTreeMap<RoundId, BTreeMap<PlayerId, PlayerResult>>,
}

/// Rounds whose settlement may be in progress at once (one, unless events were lost).
const SETTLING_ROUNDS_MAX: usize = 4;

impl TableChannel {
    /// Where a client that names no position (or one no longer retained) starts: the current
    /// round's opening, or the first retained message of the latest round.
    fn current_round_start(&self) -> usize {
        let Some(last) = self.retained.back() else {
            return 0;
        };
        let latest = last.round_id;
        let opening = self.retained.iter().rposition(|m| m.opens_round);
        match opening {
            Some(at) if self.retained[at].round_id == latest => at,
            _ => self
                .retained
                .iter()
                .position(|m| m.round_id == latest)
                .unwrap_or(0),
        }
    }

    /// What a new subscriber is sent before live messages, by the position it resumes after.
    fn replay(&self, after: Option<u64>, player: Option<PlayerId>) -> Vec<Utf8Bytes> {
        let first_seq = self.retained.front().map_or(self.last_seq + 1, |m| m.seq);
        let (from, missed) = match after {
            Some(after) if after == self.last_seq => return Vec::new(),
            Some(after) if after < self.last_seq && after + 1 >= first_seq => {
                (self.retained.partition_point(|m| m.seq <= after), false)
            }
            Some(_) => (self.current_round_start(), true),
            None => (self.current_round_start(), false),
        };
        let mut texts: Vec<Utf8Bytes> = self
            .retained
            .range(from..)
            .map(|m| m.text_for(player).clone())
            .collect();
        if let (true, Some(first)) = (missed, texts.first_mut()) {
            *first = marked_missed(first);
        }
        texts
    }

    fn retain(&mut self, message: Arc<LiveMessage>, limits: &LiveLimits) {
        self.retained_bytes += message.bytes;
        self.retained.push_back(message);
        while self.retained.len() > 1
            && (self.retained.len() > limits.retained_messages_max
                || self.retained_bytes > limits.retained_bytes_max)
        {
            let dropped = self.retained.pop_front().expect("more than one");
            self.retained_bytes -= dropped.bytes;
        }
    }

    /// Sends to every subscriber; evicts those that cannot take it. Returns how many left.
    fn fan_out(&mut self, message: &LiveMessage, bytes_max: usize) -> usize {
        let before = self.subscribers.len();
        self.subscribers.retain(|_, subscriber| {
            let text = message.text_for(subscriber.player);
            subscriber.queue.offer(text, message.paced, bytes_max)
        });
        before - self.subscribers.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("this node serves {0} live subscribers already; try another node or later")]
    TooMany(usize),
}

/// Every table's live messages on this node.
#[derive(Debug)]
pub struct LiveHub {
    /// Where subscribers' connections and the feed reader run.
    threads: LiveThreads,
    limits: LiveLimits,
    tables: Mutex<BTreeMap<TableId, TableChannel>>,
    /// Shared with the pacer, which sizes its budget by it.
    subscribers: Arc<AtomicUsize>,
    next_id: AtomicU64,
    /// True once the feed was read up to where it stood when the hub started.
    caught_up: watch::Sender<bool>,
    pacer: Pacer,
}

/// A subscriber's end: what to replay, then the live queue. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    hub: Arc<LiveHub>,
    table: TableId,
    id: u64,
    pub replay: Vec<Utf8Bytes>,
    pub queue: mpsc::Receiver<Queued>,
    queued_bytes: Arc<AtomicUsize>,
    evicted: Arc<AtomicBool>,
    /// The node's budget of paced writes (None: nothing is paced).
    pacer: Option<Arc<Semaphore>>,
}

impl Subscription {
    /// The connection wrote a queued message of `len` bytes.
    pub fn sent(&self, len: usize) {
        self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
    }

    /// True once the hub dropped this subscriber for falling behind.
    pub fn evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// Waits for a permit to write a paced message (at once when nothing is paced).
    pub async fn pace(&self) {
        if let Some(pacer) = &self.pacer {
            if let Ok(permit) = pacer.acquire().await {
                permit.forget();
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(self.table, self.id);
    }
}

impl LiveHub {
    pub fn new(limits: LiveLimits) -> Arc<LiveHub> {
        let threads = LiveThreads::start(limits.threads).unwrap_or_else(|error| {
            tracing::warn!(%error, "live push: no threads of its own; sharing the server's");
            LiveThreads::shared()
        });
        Arc::new(LiveHub {
            threads,
            limits,
            tables: Mutex::default(),
            subscribers: Arc::default(),
            next_id: AtomicU64::new(1),
            caught_up: watch::channel(false).0,
            pacer: Pacer::default(),
        })
    }

    pub fn limits(&self) -> &LiveLimits {
        &self.limits
    }

    /// Runs a task of the live push (a subscriber's connection, the feed reader) on its threads.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.threads.spawn(task)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<TableId, TableChannel>> {
        // Every update under the lock leaves the maps whole; a panic elsewhere cannot tear them.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.load(Ordering::Acquire)
    }

    pub(crate) fn mark_caught_up(&self) {
        self.caught_up.send_replace(true);
    }

    /// Resolves once the hub has read the feed up to where it stood at start (a subscriber
    /// before that would be told of a gap that is not there).
    pub async fn caught_up(&self) {
        let mut caught_up = self.caught_up.subscribe();
        let _ = caught_up.wait_for(|caught_up| *caught_up).await;
    }

    /// Subscribes to `table` from after `after` (its current round when `None`). The replay
    /// and the registration happen under one lock: nothing published is missed or repeated.
    pub fn subscribe(
        self: &Arc<Self>,
        table: TableId,
        after: Option<u64>,
        player: Option<PlayerId>,
    ) -> Result<Subscription, SubscribeError> {
        let mut tables = self.lock();
        let count = self.subscribers.load(Ordering::Acquire);
        if count >= self.limits.subscribers_max {
            return Err(SubscribeError::TooMany(count));
        }
        let channel = tables.entry(table).or_default();
        let replay = channel.replay(after, player);
        let (tx, queue) = mpsc::channel(self.limits.client_queue_max.max(1));
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let evicted = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            player,
            queue: ClientQueue {
                tx,
                queued_bytes: Arc::clone(&queued_bytes),
                evicted: Arc::clone(&evicted),
            },
        };
        channel.subscribers.insert(id, subscriber);
        self.subscribers.fetch_add(1, Ordering::AcqRel);
        Ok(Subscription {
            hub: Arc::clone(self),
            table,
            id,
            replay,
            queue,
            queued_bytes,
            evicted,
            pacer: self.pacer.permits(
                self.limits.paced_spread_ms,
                Arc::downgrade(&self.subscribers),
                &self.threads,
            ),
        })
    }

    fn unsubscribe(&self, table: TableId, id: u64) {
        let mut tables = self.lock();
        let Some(channel) = tables.get_mut(&table) else {
            return;
        };
        // An evicted subscriber was already taken off (and counted off) by `publish`.
        if channel.subscribers.remove(&id).is_some() {
            self.subscribers.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Takes one committed table event: folds a settled bet into its player's result, turns a
    /// round-level event into a message, retains it and sends it to the table's subscribers.
    pub fn publish(&self, event: &TableEvent, label: impl FnOnce(&[u8]) -> Option<String>) {
        let mut tables = self.lock();
        let channel = tables.entry(event.table_id()).or_default();
        if let Some((player, stake, paid, balance)) = settled_bet(event) {
            let round = channel.settling.entry(event.round_id).or_default();
            round.entry(player).or_default().add(stake, paid, balance);
            while channel.settling.len() > SETTLING_ROUNDS_MAX {
                channel.settling.pop_first();
            }
            return;
        }
        let Some(out) = live_out(event, label) else {
            return;
        };
        if out.seq <= channel.last_seq {
            return; // already published (the feed is read from a position at or before it)
        }
        let results = match event.kind {
            TableEventKind::RoundFinished { .. } => channel.settling.remove(&event.round_id),
            _ => None,
        };
        let message = Arc::new(message(out, results.unwrap_or_default()));
        channel.last_seq = message.seq;
        channel.retain(Arc::clone(&message), &self.limits);
        let evicted = channel.fan_out(&message, self.limits.client_queue_bytes_max);
        self.subscribers.fetch_sub(evicted, Ordering::AcqRel);
        if evicted > 0 {
            tracing::info!(
                evicted,
                table = event.table_id(),
                "slow live clients closed"
            );
        }
    }
}

fn message(out: LiveOut, results: BTreeMap<PlayerId, PlayerResult>) -> LiveMessage {
    let text = Utf8Bytes::from(to_json(&out));
    let (seq, round_id) = (out.seq, out.round_id);
    let opens_round = out.kind == "round_opened";
    // A round's running totals and its opening keep for a few hundred milliseconds; its close,
    // its result and its settlement go out at once.
    let paced = opens_round || out.kind == "bets_total";
    let mut out = out;
    let mut personal = BTreeMap::new();
    let mut bytes = text.len();
    for (player, result) in results {
        out.player = Some(result);
        let own = Utf8Bytes::from(to_json(&out));
        bytes += own.len() + 16;
        personal.insert(player, own);
    }
    LiveMessage {
        seq,
        round_id,
        opens_round,
        paced,
        text,
        personal,
        bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use croupier_core::tables::{round_id, TableEvent, TableEventKind};

    const TABLE: TableId = 7;

    fn limits() -> LiveLimits {
        LiveLimits {
            retained_messages_max: 8,
            client_queue_max: 4,
            ..LiveLimits::default()
        }
    }

    fn opened(number: u32, seq: u64) -> TableEvent {
        TableEvent {
            round_id: round_id(TABLE, number),
            timestamp: 1_700_000_000_000_000_000,
            kind: TableEventKind::RoundOpened {
                seq,
                commitment: [7; 32],
                closes_at_ns: 1_700_000_010_000_000_000,
            },
        }
    }

    fn totals(number: u32, seq: u64) -> TableEvent {
        TableEvent {
            kind: TableEventKind::BetsTotal {
                seq,
                bets: seq as u32,
                stakes_total: 10 * seq,
            },
            ..opened(number, 0)
        }
    }

    fn seqs(texts: &[Utf8Bytes]) -> Vec<u64> {
        texts
            .iter()
            .map(|text| {
                let value: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                value["seq"].as_u64().unwrap()
            })
            .collect()
    }

    fn drain(subscription: &mut Subscription) -> Vec<Utf8Bytes> {
        let mut texts = Vec::new();
        while let Ok(queued) = subscription.queue.try_recv() {
            subscription.sent(queued.text.len());
            texts.push(queued.text);
        }
        texts
    }

    fn publish_all(hub: &LiveHub, events: &[TableEvent]) {
        for event in events {
            hub.publish(event, |_| None);
        }
    }

    #[test]
    fn a_resume_replays_every_message_after_the_seq_then_continues_live() {
        let hub = LiveHub::new(limits());
        publish_all(&hub, &[opened(1, 1), totals(1, 2), totals(1, 3)]);
        let mut resumed = hub.subscribe(TABLE, Some(1), None).unwrap();
        assert_eq!(seqs(&resumed.replay), vec![2, 3]);
        publish_all(&hub, &[totals(1, 4), totals(1, 4), opened(2, 5)]);
        assert_eq!(seqs(&drain(&mut resumed)), vec![4, 5], "no duplicate");
        let fresh = hub.subscribe(TABLE, None, None).unwrap();
        assert_eq!(
            seqs(&fresh.replay),
            vec![5],
            "a new client starts at the round"
        );
        let current = hub.subscribe(TABLE, Some(5), None).unwrap();
        assert!(current.replay.is_empty());
    }

    #[test]
    fn a_resume_from_beyond_the_window_starts_at_the_round_and_says_missed() {
        let hub = LiveHub::new(limits());
        publish_all(&hub, &[opened(1, 1)]);
        let events: Vec<_> = (2..=12).map(|seq| totals(1, seq)).collect();
        publish_all(&hub, &events);
        publish_all(&hub, &[opened(2, 13), totals(2, 14)]);
        let late = hub.subscribe(TABLE, Some(1), None).unwrap();
        assert_eq!(seqs(&late.replay), vec![13, 14]);
        assert!(late.replay[0].as_str().starts_with("{\"missed\":true,"));
        assert!(!late.replay[1].as_str().contains("missed"));
    }

    #[test]
    fn a_client_that_does_not_read_is_evicted_and_the_others_still_receive() {
        let hub = LiveHub::new(limits());
        let slow = hub.subscribe(TABLE, None, None).unwrap();
        let mut reader = hub.subscribe(TABLE, None, None).unwrap();
        assert_eq!(hub.subscriber_count(), 2);
        let mut received = Vec::new();
        for seq in 1..=10 {
            publish_all(&hub, &[totals(1, seq)]);
            received.extend(drain(&mut reader));
        }
        assert!(slow.evicted(), "4 queued messages is the bound");
        assert!(!reader.evicted());
        assert_eq!(seqs(&received), (1..=10).collect::<Vec<_>>());
        assert_eq!(hub.subscriber_count(), 1);
        drop(slow);
        drop(reader);
        assert_eq!(hub.subscriber_count(), 0);
    }

    #[test]
    fn a_settled_round_tells_each_player_their_own_result_only() {
        let hub = LiveHub::new(limits());
        let round = round_id(TABLE, 1);
        let settled = |player: u128, stake: u64, paid: u64| TableEvent {
            round_id: round,
            timestamp: 1,
            kind: TableEventKind::BetSettled {
                bet_id: player * 10 + u128::from(stake),
                player_id: player,
                stake,
                paid,
                balance: 1_000 + u128::from(paid),
            },
        };
        let mut alice = hub.subscribe(TABLE, None, Some(1)).unwrap();
        let mut viewer = hub.subscribe(TABLE, None, None).unwrap();
        let finished = TableEvent {
            round_id: round,
            timestamp: 2,
            kind: TableEventKind::RoundFinished {
                seq: 1,
                voided: false,
                bets: 3,
                stakes_total: 60,
                paid_total: 50,
            },
        };
        publish_all(
            &hub,
            &[settled(1, 10, 0), settled(2, 20, 50), settled(1, 30, 0)],
        );
        publish_all(&hub, &[finished]);
        let own: serde_json::Value = serde_json::from_str(drain(&mut alice)[0].as_str()).unwrap();
        assert_eq!(own["type"], "round_settled");
        assert_eq!(
            own["player"],
            serde_json::json!({"bets": 2, "stake": 40, "paid": 0, "balance": 1000})
        );
        let public: serde_json::Value =
            serde_json::from_str(drain(&mut viewer)[0].as_str()).unwrap();
        assert!(public.get("player").is_none());
        assert_eq!(public["paid_total"], 50);
    }

    #[test]
    fn the_subscriber_limit_refuses_the_next_client() {
        let hub = LiveHub::new(LiveLimits {
            subscribers_max: 1,
            ..limits()
        });
        let _first = hub.subscribe(TABLE, None, None).unwrap();
        assert_eq!(
            hub.subscribe(TABLE, None, None).unwrap_err(),
            SubscribeError::TooMany(1)
        );
    }
}
