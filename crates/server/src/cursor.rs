//! What the node's durable feed consumers (the AML pipeline, the webhooks) share: a thread of
//! their own, and a cursor saved now and then rather than after every batch. Saving
//! it after every small batch put hundreds of fsyncs a second beside the log's. What a
//! restart replays (the events after the saved cursor) each consumer makes harmless: the AML
//! pipeline proposes the same case ids, webhooks send the same event ids.

use std::time::{Duration, Instant};

use croupier_cluster::EventSubscription;

/// The cursor is saved (a durable file write) at most this often, or after this many events.
const ACK_INTERVAL: Duration = Duration::from_secs(1);
const ACK_EVENTS_MAX: u64 = 65_536;

/// Runs the future `make` builds on a thread named `name` with a single-threaded runtime
/// (`prepare` runs first, on that thread): a backlog or a slow peer never takes the API's
/// threads. The receiver resolves once the future has ended.
pub(crate) fn spawn_on_own_thread<F>(
    name: &str,
    prepare: impl FnOnce() + Send + 'static,
    make: impl FnOnce() -> F + Send + 'static,
) -> std::io::Result<tokio::sync::oneshot::Receiver<()>>
where
    F: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (stopped, on_stop) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            prepare();
            runtime.block_on(make());
            let _ = stopped.send(());
        })?;
    Ok(on_stop)
}

pub(crate) struct CursorSaver {
    consumer: String,
    saved_at: Instant,
    saved: u64,
    done: u64,
    events_since: u64,
}

impl CursorSaver {
    pub(crate) fn new(consumer: impl Into<String>, saved: u64) -> Self {
        CursorSaver {
            consumer: consumer.into(),
            saved_at: Instant::now(),
            saved,
            done: saved,
            events_since: 0,
        }
    }

    /// Every event up to `last` is handled (`events` of them since the previous call).
    pub(crate) fn decided(
        &mut self,
        subscription: &mut EventSubscription,
        last: u64,
        events: usize,
    ) {
        self.decided_then(subscription, last, events, || {});
    }

    /// As `decided`, calling `before_save` first when the cursor is about to be saved (what
    /// the consumer must have on disk before its events are acknowledged).
    pub(crate) fn decided_then(
        &mut self,
        subscription: &mut EventSubscription,
        last: u64,
        events: usize,
        before_save: impl FnOnce(),
    ) {
        self.events_since += events as u64;
        self.done = last;
        let due = self.saved_at.elapsed() >= ACK_INTERVAL || self.events_since >= ACK_EVENTS_MAX;
        if due {
            before_save();
            self.save(subscription);
        }
    }

    /// How long until handled but unsaved events are due to be saved; `None` when none wait.
    /// A consumer waiting for its next batch saves when this runs out: otherwise the last
    /// events before a quiet spell stayed unacknowledged (and unreplicated) until the next
    /// batch, and a new leader sent them all again.
    pub(crate) fn save_due_in(&self) -> Option<Duration> {
        (self.done > self.saved).then(|| ACK_INTERVAL.saturating_sub(self.saved_at.elapsed()))
    }

    /// Saves the cursor at the last handled event (on a stop, whatever the interval).
    pub(crate) fn save(&mut self, subscription: &mut EventSubscription) {
        if self.done <= self.saved {
            return;
        }
        match subscription.ack(self.done) {
            Ok(()) => {
                self.saved = self.done;
                self.saved_at = Instant::now();
                self.events_since = 0;
            }
            Err(error) => tracing::warn!(consumer = %self.consumer, %error, "cursor not saved"),
        }
    }
}
