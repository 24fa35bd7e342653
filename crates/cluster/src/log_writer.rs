//! The log writer: one thread per process owns every hosted group's `LogStore`, fed by one
//! bounded channel. It takes every request already queued, writes each group's queued appends
//! as one buffered write, makes each touched log durable with ONE fdatasync and only then tells
//! openraft they are flushed (group commit at the disk, across groups: appends queued while
//! a sync runs, from any group, share the next round). Truncate, purge and reads go through
//! the same queue, so they are ordered after every append of their group queued before them.
//!
//! Why one thread for all groups: N groups with a writer each would be N threads issuing N
//! interleaved fsync streams against one disk; one stream lets a round's syncs run back to back
//! and keeps the thread count independent of the number of groups.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use croupier_store::{ChainHash, LogRecord, LogStore, StoreError};
use openraft::storage::IOFlushed;
use tokio::sync::oneshot;

use crate::metric_names;
use crate::raft_codec::{read_payload, write_payload};
use crate::types::{log_id, Entry, LogId, TypeConfig};

/// Requests waiting for the writer; a full queue makes the proposer wait (back-pressure).
const WRITER_QUEUE_REQUESTS_MAX: usize = 1024;
/// An fsync of the log slower than this is logged (it delays every write behind it).
const SLOW_FSYNC_WARN_MS: u128 = 100;
/// Most requests folded into one round of writes + fdatasyncs.
const WRITER_GROUP_REQUESTS_MAX: usize = 256;

/// A storage failure, as text: the store's error names the file and offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct StorageFailure(pub(crate) String);

impl StorageFailure {
    fn writer_gone() -> Self {
        StorageFailure("log writer has stopped".to_string())
    }

    fn detached() -> Self {
        StorageFailure("this group's log is closed".to_string())
    }
}

type Reply<T> = oneshot::Sender<Result<T, StorageFailure>>;

/// Called once the appended entries are durable (or the write failed).
pub(crate) type Flushed = Box<dyn FnOnce(std::io::Result<()>) + Send>;

pub(crate) fn openraft_flushed(callback: IOFlushed<TypeConfig>) -> Flushed {
    Box::new(move |outcome| callback.io_completed(outcome))
}

/// First and last log ids still on disk, as openraft's `LogState` needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogBounds {
    pub(crate) last_purged: Option<LogId>,
    pub(crate) last: Option<LogId>,
}

enum WriterRequest {
    Attach {
        store: Box<LogStore>,
        bytes_written: Arc<AtomicU64>,
    },
    Append {
        entries: Vec<Entry>,
        flushed: Flushed,
    },
    TruncateFrom {
        index: u64,
        done: Reply<()>,
    },
    PurgeThrough {
        index: u64,
        done: Reply<()>,
    },
    // Only `WriterHandle::purge_through_snapshot` builds it (see there).
    PurgeThroughSnapshot {
        index: u64,
        term: u64,
        chain_head: ChainHash,
        done: Reply<()>,
    },
    Read {
        from: u64,
        to: u64,
        reply: Reply<Vec<Entry>>,
    },
    Bounds {
        reply: Reply<LogBounds>,
    },
    ChainHash {
        index: u64,
        reply: Reply<ChainHash>,
    },
    /// Flushes the group's log, marks it closed and lets it go.
    Detach {
        done: Reply<()>,
    },
    /// Syncs every log still attached and ends the thread.
    Stop {
        done: Reply<()>,
    },
}

/// A request for one attached log (`slot`), or for the writer itself.
struct Addressed {
    slot: u64,
    request: WriterRequest,
}

/// The process's log writer: attaches group logs and stops the thread.
#[derive(Clone)]
pub(crate) struct LogWriter {
    queue: Queue,
    next_slot: Arc<AtomicU64>,
}

/// How requests reach the writer: its thread's bounded queue, or (under a deterministic
/// simulation, where no other thread may run) a call in place that writes and syncs at once.
#[derive(Clone)]
enum Queue {
    Thread(SyncSender<Addressed>),
    Inline(Arc<std::sync::Mutex<Writer>>),
}

impl Queue {
    fn send(&self, addressed: Addressed) -> Result<(), StorageFailure> {
        match self {
            Queue::Thread(queue) => queue
                .send(addressed)
                .map_err(|_| StorageFailure::writer_gone()),
            Queue::Inline(writer) => {
                let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
                match addressed.request {
                    WriterRequest::Stop { done } => {
                        writer.stop();
                        let _ = done.send(Ok(()));
                    }
                    request => {
                        writer.take(addressed.slot, request);
                        writer.flush_all();
                    }
                }
                Ok(())
            }
        }
    }
}

impl LogWriter {
    pub(crate) fn spawn() -> std::io::Result<(LogWriter, JoinHandle<()>)> {
        let (queue, requests) = mpsc::sync_channel(WRITER_QUEUE_REQUESTS_MAX);
        let thread = std::thread::Builder::new()
            .name("croupier-log-writer".to_string())
            .spawn(move || Writer::default().run(requests))?;
        let writer = LogWriter {
            queue: Queue::Thread(queue),
            next_slot: Arc::new(AtomicU64::new(1)),
        };
        Ok((writer, thread))
    }

    /// A writer without a thread: every request is served in the caller (simulation only).
    pub(crate) fn inline() -> LogWriter {
        LogWriter {
            queue: Queue::Inline(Arc::default()),
            next_slot: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Hands `store` to the writer thread; every request through the handle is ordered after.
    pub(crate) fn attach(&self, store: LogStore) -> Result<WriterHandle, StorageFailure> {
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        let bytes_written = Arc::new(AtomicU64::new(0));
        let request = WriterRequest::Attach {
            store: Box::new(store),
            bytes_written: Arc::clone(&bytes_written),
        };
        self.queue.send(Addressed { slot, request })?;
        Ok(WriterHandle {
            queue: self.queue.clone(),
            slot,
            bytes_written,
        })
    }

    /// Syncs what every attached log has written and ends the thread.
    pub(crate) async fn stop(&self) -> Result<(), StorageFailure> {
        call(&self.queue, 0, |done| WriterRequest::Stop { done }).await
    }
}

/// One group's way to its log on the writer thread (cheap to clone).
#[derive(Clone)]
pub(crate) struct WriterHandle {
    queue: Queue,
    slot: u64,
    /// Log bytes written since the process started (drives byte-based checkpoints).
    bytes_written: Arc<AtomicU64>,
}

impl WriterHandle {
    /// Hands entries to the writer and returns; `flushed` is called once they are durable.
    pub(crate) fn append(
        &self,
        entries: Vec<Entry>,
        flushed: Flushed,
    ) -> Result<(), StorageFailure> {
        let request = WriterRequest::Append { entries, flushed };
        self.queue.send(Addressed {
            slot: self.slot,
            request,
        })
    }

    pub(crate) async fn truncate_from(&self, index: u64) -> Result<(), StorageFailure> {
        self.call(|done| WriterRequest::TruncateFrom { index, done })
            .await
    }

    pub(crate) async fn purge_through(&self, index: u64) -> Result<(), StorageFailure> {
        self.call(|done| WriterRequest::PurgeThrough { index, done })
            .await
    }

    /// Moves the purge point to an installed snapshot's last entry, wherever the log ends; a
    /// local suffix that conflicts with the snapshot was never committed and is dropped.
    pub(crate) async fn purge_through_snapshot(
        &self,
        index: u64,
        term: u64,
        chain_head: ChainHash,
    ) -> Result<(), StorageFailure> {
        self.call(|done| WriterRequest::PurgeThroughSnapshot {
            index,
            term,
            chain_head,
            done,
        })
        .await
    }

    /// Entries `[from, to)` read back from disk (normal payloads stay encoded).
    pub(crate) async fn read(&self, from: u64, to: u64) -> Result<Vec<Entry>, StorageFailure> {
        self.call(|reply| WriterRequest::Read { from, to, reply })
            .await
    }

    pub(crate) async fn bounds(&self) -> Result<LogBounds, StorageFailure> {
        self.call(|reply| WriterRequest::Bounds { reply }).await
    }

    pub(crate) async fn chain_hash(&self, index: u64) -> Result<ChainHash, StorageFailure> {
        self.call(|reply| WriterRequest::ChainHash { index, reply })
            .await
    }

    pub(crate) fn bytes_written(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.bytes_written)
    }

    /// Flushes what this group queued, marks its log cleanly closed and detaches it; the
    /// writer thread goes on serving the other groups.
    pub(crate) async fn shutdown(&self) -> Result<(), StorageFailure> {
        self.call(|done| WriterRequest::Detach { done }).await
    }

    async fn call<T>(
        &self,
        request: impl FnOnce(Reply<T>) -> WriterRequest,
    ) -> Result<T, StorageFailure> {
        call(&self.queue, self.slot, request).await
    }
}

async fn call<T>(
    queue: &Queue,
    slot: u64,
    request: impl FnOnce(Reply<T>) -> WriterRequest,
) -> Result<T, StorageFailure> {
    let (reply, answer) = oneshot::channel();
    let request = request(reply);
    queue.send(Addressed { slot, request })?;
    answer.await.map_err(|_| StorageFailure::writer_gone())?
}

#[derive(Default)]
struct Writer {
    logs: BTreeMap<u64, GroupLog>,
}

/// One attached log and what the current round wrote to it.
struct GroupLog {
    store: LogStore,
    bytes_written: Arc<AtomicU64>,
    /// Set by the first failed write or sync: after that the on-disk tail is unknown, so every
    /// later request fails and openraft stops the group instead of acknowledging anything.
    poisoned: Option<StorageFailure>,
    /// Callbacks of appends written this round, answered after the round's sync.
    unflushed: Vec<Flushed>,
}

impl Writer {
    fn run(mut self, requests: Receiver<Addressed>) {
        let stopped = self.serve_until_stop(&requests);
        self.stop();
        if let Some(done) = stopped {
            let _ = done.send(Ok(()));
        }
    }

    /// A stop, or every handle gone: sync what was written (nothing was acknowledged unsynced).
    /// Logs still attached are not marked closed: their groups did not shut down.
    fn stop(&mut self) {
        self.flush_all();
        for log in self.logs.values_mut() {
            let _ = log.store.sync();
        }
    }

    /// Serves rounds of requests until a stop request (returned) or until every handle is gone.
    fn serve_until_stop(&mut self, requests: &Receiver<Addressed>) -> Option<Reply<()>> {
        while let Ok(first) = requests.recv() {
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(Addressed { slot, request }) = next.take() {
                taken += 1;
                match request {
                    WriterRequest::Stop { done } => {
                        self.flush_all();
                        return Some(done);
                    }
                    request => self.take(slot, request),
                }
                if taken < WRITER_GROUP_REQUESTS_MAX {
                    next = requests.try_recv().ok();
                }
            }
            self.flush_all();
        }
        None
    }

    fn take(&mut self, slot: u64, request: WriterRequest) {
        if let WriterRequest::Attach {
            store,
            bytes_written,
        } = request
        {
            let log = GroupLog::new(*store, bytes_written);
            let replaced = self.logs.insert(slot, log);
            assert!(replaced.is_none(), "log slot {slot} attached twice");
            return;
        }
        let Some(log) = self.logs.get_mut(&slot) else {
            refuse(request, StorageFailure::detached());
            return;
        };
        match request {
            WriterRequest::Append { entries, flushed } => {
                log.write(&entries);
                log.unflushed.push(flushed);
            }
            WriterRequest::Detach { done } => {
                let mut log = self.logs.remove(&slot).expect("looked up above");
                log.flush();
                let _ = done.send(log.close());
            }
            other => {
                // Anything else must see every append of its group queued before it on disk.
                log.flush();
                log.serve(other);
            }
        }
    }

    /// One fdatasync per log written this round, back to back, then their callbacks.
    fn flush_all(&mut self) {
        for log in self.logs.values_mut() {
            log.flush();
        }
    }
}

/// Answers a request whose log is gone (detached, or never attached) with `failure`.
fn refuse(request: WriterRequest, failure: StorageFailure) {
    let failed = Err(failure.clone());
    match request {
        WriterRequest::Append { flushed, .. } => flushed(Err(std::io::Error::other(failure.0))),
        WriterRequest::TruncateFrom { done, .. }
        | WriterRequest::PurgeThrough { done, .. }
        | WriterRequest::PurgeThroughSnapshot { done, .. }
        | WriterRequest::Detach { done }
        | WriterRequest::Stop { done } => {
            let _ = done.send(failed);
        }
        WriterRequest::Read { reply, .. } => {
            let _ = reply.send(Err(failure));
        }
        WriterRequest::Bounds { reply } => {
            let _ = reply.send(Err(failure));
        }
        WriterRequest::ChainHash { reply, .. } => {
            let _ = reply.send(Err(failure));
        }
        WriterRequest::Attach { .. } => unreachable!("an attach always finds its slot free"),
    }
}

impl GroupLog {
    fn new(store: LogStore, bytes_written: Arc<AtomicU64>) -> GroupLog {
        GroupLog {
            store,
            bytes_written,
            poisoned: None,
            unflushed: Vec::new(),
        }
    }

    /// A clean detach: mark the log closed, so a damaged end found at the next start is
    /// corruption and never taken for a torn write (docs/storage-format.md).
    fn close(self) -> Result<(), StorageFailure> {
        self.check().and_then(|()| {
            self.store
                .close()
                .map_err(|e| StorageFailure(format!("log close failed: {e}")))
        })
    }

    fn check(&self) -> Result<(), StorageFailure> {
        match &self.poisoned {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }

    fn write(&mut self, entries: &[Entry]) {
        if self.poisoned.is_some() {
            return;
        }
        let records: Vec<LogRecord> = entries.iter().map(record_of).collect();
        let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
        if let Err(error) = self.store.append(&records) {
            self.poisoned = Some(StorageFailure(format!("log append failed: {error}")));
            return;
        }
        metrics::counter!(metric_names::LOG_ENTRIES_TOTAL).increment(records.len() as u64);
        metrics::counter!(metric_names::LOG_BYTES_TOTAL).increment(bytes as u64);
        self.bytes_written
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// One fdatasync for everything written since the last one, then the callbacks.
    fn flush(&mut self) {
        if self.unflushed.is_empty() {
            return;
        }
        if self.poisoned.is_none() {
            let started = Instant::now();
            match self.store.sync() {
                Ok(()) => {
                    let elapsed = started.elapsed();
                    metrics::histogram!(metric_names::LOG_FSYNC_SECONDS)
                        .record(elapsed.as_secs_f64());
                    if elapsed.as_millis() >= SLOW_FSYNC_WARN_MS {
                        tracing::warn!(ms = elapsed.as_millis() as u64, "slow log fsync");
                    }
                }
                Err(error) => {
                    self.poisoned = Some(StorageFailure(format!("log sync failed: {error}")))
                }
            }
        }
        for flushed in std::mem::take(&mut self.unflushed) {
            let outcome = self
                .check()
                .map_err(|failure| std::io::Error::other(failure.0));
            flushed(outcome);
        }
    }

    fn serve(&mut self, request: WriterRequest) {
        match request {
            WriterRequest::TruncateFrom { index, done } => {
                let outcome = self.check().and_then(|()| {
                    self.store
                        .truncate_from(index)
                        .map_err(|e| StorageFailure(format!("log truncate failed: {e}")))
                });
                let _ = done.send(outcome);
            }
            WriterRequest::PurgeThrough { index, done } => {
                let outcome = self
                    .check()
                    .and_then(|()| match self.store.purge_through(index) {
                        // A follower that installs a leader's checkpoint is asked to purge through
                        // its last entry, which its own log never held; the state machine's install
                        // moves the purge point there itself (`purge_through_snapshot`, with the
                        // chain head), in whichever order the two requests arrive.
                        Err(StoreError::PurgeBeyondLog { .. }) => Ok(()),
                        other => {
                            other.map_err(|e| StorageFailure(format!("log purge failed: {e}")))
                        }
                    });
                let _ = done.send(outcome);
            }
            WriterRequest::PurgeThroughSnapshot {
                index,
                term,
                chain_head,
                done,
            } => {
                let outcome = self
                    .check()
                    .and_then(|()| self.purge_through_snapshot(index, term, chain_head));
                let _ = done.send(outcome);
            }
            WriterRequest::Read { from, to, reply } => {
                let _ = reply.send(self.check().and_then(|()| self.read(from, to)));
            }
            WriterRequest::Bounds { reply } => {
                let _ = reply.send(self.check().and_then(|()| self.bounds()));
            }
            WriterRequest::ChainHash { index, reply } => {
                let outcome = self.check().and_then(|()| {
                    self.store
                        .chain_hash(index)
                        .map_err(|e| StorageFailure(format!("log chain hash failed: {e}")))
                });
                let _ = reply.send(outcome);
            }
            WriterRequest::Attach { .. }
            | WriterRequest::Append { .. }
            | WriterRequest::Detach { .. }
            | WriterRequest::Stop { .. } => {
                unreachable!("attach, appends, detach and stop are handled by the round loop")
            }
        }
    }

    fn read(&mut self, from: u64, to: u64) -> Result<Vec<Entry>, StorageFailure> {
        // openraft may ask past either end (e.g. an open range); serve what the log holds.
        let (Some(first), Some(last)) = (self.store.first_index(), self.store.last_index()) else {
            return Ok(Vec::new());
        };
        let (from, to) = (from.max(first), to.min(last.saturating_add(1)));
        if from >= to {
            return Ok(Vec::new());
        }
        let records = self
            .store
            .read_range(from, to)
            .map_err(|e| StorageFailure(format!("log read failed: {e}")))?;
        records.into_iter().map(entry_of).collect()
    }

    fn purge_through_snapshot(
        &mut self,
        index: u64,
        term: u64,
        chain_head: ChainHash,
    ) -> Result<(), StorageFailure> {
        let failed =
            |e: StoreError| StorageFailure(format!("log purge to snapshot {index} failed: {e}"));
        match self.store.purge_through_snapshot(index, term, chain_head) {
            Err(StoreError::SnapshotConflict { .. }) => {
                self.store.truncate_from(index).map_err(failed)?;
                self.store
                    .purge_through_snapshot(index, term, chain_head)
                    .map_err(failed)
            }
            other => other.map_err(failed),
        }
    }

    fn bounds(&mut self) -> Result<LogBounds, StorageFailure> {
        let last_purged = self
            .store
            .last_purged()
            .map(|(index, term, _)| log_id(term, index));
        let last_index = self.store.last_index();
        let last = match last_index {
            Some(index) if Some(index) > last_purged.map(|id| id.index) => {
                let records = self
                    .store
                    .read_range(index, index + 1)
                    .map_err(|e| StorageFailure(format!("log read failed: {e}")))?;
                let record = records
                    .first()
                    .ok_or_else(|| StorageFailure(format!("log entry {index} missing")))?;
                Some(log_id(record.term, record.index))
            }
            _ => last_purged,
        };
        Ok(LogBounds { last_purged, last })
    }
}

fn record_of(entry: &Entry) -> LogRecord {
    let mut payload = Vec::new();
    let kind = write_payload(&entry.payload, &mut payload);
    LogRecord {
        index: entry.log_id.index,
        term: entry.log_id.leader_id.term,
        kind,
        payload,
    }
}

fn entry_of(record: LogRecord) -> Result<Entry, StorageFailure> {
    let payload = read_payload(record.kind, &record.payload)
        .map_err(|e| StorageFailure(format!("log entry {}: {e}", record.index)))?;
    Ok(Entry {
        log_id: log_id(record.term, record.index),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use croupier_core::command::Proposal;
    use croupier_store::LogOptions;
    use openraft::EntryPayload;

    use super::*;
    use crate::types::ProposalData;

    fn normal(index: u64, timestamp_ns: u64) -> Entry {
        let proposal = Proposal {
            timestamp_ns,
            commands: vec![croupier_core::Command::Tick],
        };
        Entry {
            log_id: log_id(1, index),
            payload: EntryPayload::Normal(ProposalData::Decoded(Arc::new(proposal))),
        }
    }

    /// A writer thread of its own for one test.
    struct WriterThread {
        writer: LogWriter,
        thread: JoinHandle<()>,
    }

    impl WriterThread {
        fn spawn() -> WriterThread {
            let (writer, thread) = LogWriter::spawn().unwrap();
            WriterThread { writer, thread }
        }

        fn attach(&self, dir: &std::path::Path) -> WriterHandle {
            let (store, _) = LogStore::open(dir, LogOptions::default()).unwrap();
            self.writer.attach(store).unwrap()
        }

        async fn stop(self) {
            self.writer.stop().await.unwrap();
            self.thread.join().unwrap();
        }
    }

    fn open(dir: &std::path::Path) -> (WriterHandle, WriterThread) {
        let thread = WriterThread::spawn();
        (thread.attach(dir), thread)
    }

    /// Appends without waiting; the returned receiver yields each append's outcome in order.
    fn append_all(
        writer: &WriterHandle,
        batches: Vec<Vec<Entry>>,
    ) -> std_mpsc::Receiver<(usize, bool)> {
        let (done, outcomes) = std_mpsc::channel();
        for (number, entries) in batches.into_iter().enumerate() {
            let done = done.clone();
            let report = move |outcome: std::io::Result<()>| {
                // A test that ignores the outcomes drops the receiver: that is fine.
                let _ = done.send((number, outcome.is_ok()));
            };
            writer.append(entries, Box::new(report)).unwrap();
        }
        outcomes
    }

    fn timestamps(entries: &[Entry]) -> Vec<u64> {
        entries
            .iter()
            .map(|entry| match &entry.payload {
                EntryPayload::Normal(data) => data.decoded().unwrap().timestamp_ns,
                _ => panic!("expected a normal entry"),
            })
            .collect()
    }

    #[tokio::test]
    async fn queued_appends_are_durable_in_order_before_their_callbacks() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, thread) = open(dir.path());
        let outcomes = append_all(
            &writer,
            vec![
                vec![normal(1, 10)],
                vec![normal(2, 20), normal(3, 30)],
                vec![normal(4, 40)],
            ],
        );
        writer.shutdown().await.unwrap();
        thread.stop().await;
        let answered: Vec<(usize, bool)> = outcomes.try_iter().collect();
        assert_eq!(answered, vec![(0, true), (1, true), (2, true)]);

        // Reopened from disk: every acknowledged entry is there, payloads decode again.
        let (writer, thread) = open(dir.path());
        assert_eq!(
            timestamps(&writer.read(1, 5).await.unwrap()),
            vec![10, 20, 30, 40]
        );
        let bounds = writer.bounds().await.unwrap();
        assert_eq!(
            bounds,
            LogBounds {
                last_purged: None,
                last: Some(log_id(1, 4))
            }
        );
        writer.shutdown().await.unwrap();
        thread.stop().await;
    }

    #[tokio::test]
    async fn reads_past_either_end_serve_what_the_log_holds() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, thread) = open(dir.path());
        let _ = append_all(
            &writer,
            vec![vec![normal(1, 1), normal(2, 2), normal(3, 3)]],
        );
        assert_eq!(
            timestamps(&writer.read(0, u64::MAX).await.unwrap()),
            vec![1, 2, 3]
        );
        assert!(writer.read(7, 9).await.unwrap().is_empty());
        writer.shutdown().await.unwrap();
        thread.stop().await;
    }

    #[tokio::test]
    async fn truncate_and_purge_apply_after_the_appends_queued_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, thread) = open(dir.path());
        let _ = append_all(&writer, vec![(1..=6).map(|i| normal(i, i * 10)).collect()]);
        writer.truncate_from(5).await.unwrap();
        writer.purge_through(2).await.unwrap();
        let _ = append_all(&writer, vec![vec![normal(5, 55)]]);
        assert_eq!(
            timestamps(&writer.read(0, u64::MAX).await.unwrap()),
            vec![30, 40, 55]
        );
        let bounds = writer.bounds().await.unwrap();
        assert_eq!(
            bounds,
            LogBounds {
                last_purged: Some(log_id(1, 2)),
                last: Some(log_id(1, 5))
            }
        );
        let chain_head = writer.chain_hash(2).await.unwrap();
        assert_ne!(chain_head, [0u8; 32]);
        writer.shutdown().await.unwrap();
        thread.stop().await;
    }

    #[tokio::test]
    async fn purge_to_a_snapshot_beyond_the_log_empties_it_and_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, thread) = open(dir.path());
        let _ = append_all(&writer, vec![vec![normal(1, 1), normal(2, 2)]]);
        writer
            .purge_through_snapshot(10, 3, [7u8; 32])
            .await
            .unwrap();
        let bounds = writer.bounds().await.unwrap();
        assert_eq!(
            bounds,
            LogBounds {
                last_purged: Some(log_id(3, 10)),
                last: Some(log_id(3, 10))
            }
        );
        assert_eq!(writer.chain_hash(10).await.unwrap(), [7u8; 32]);
        let outcomes = append_all(&writer, vec![vec![normal(11, 11)]]);
        writer.shutdown().await.unwrap();
        thread.stop().await;
        assert_eq!(outcomes.try_iter().collect::<Vec<_>>(), vec![(0, true)]);
    }

    #[tokio::test]
    async fn groups_share_one_writer_and_a_detached_group_leaves_the_others_running() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let thread = WriterThread::spawn();
        let first = thread.attach(dirs[0].path());
        let second = thread.attach(dirs[1].path());
        let one = append_all(&first, vec![vec![normal(1, 10)], vec![normal(2, 20)]]);
        let two = append_all(&second, vec![vec![normal(1, 100)]]);
        first.shutdown().await.unwrap();
        // The detached group's log is closed; its handle now fails without touching the others.
        assert!(first.bounds().await.is_err());
        let late = append_all(&second, vec![vec![normal(2, 200)]]);
        assert_eq!(
            timestamps(&second.read(1, 3).await.unwrap()),
            vec![100, 200]
        );
        thread.stop().await;
        assert_eq!(
            one.try_iter().collect::<Vec<_>>(),
            vec![(0, true), (1, true)]
        );
        assert_eq!(two.try_iter().collect::<Vec<_>>(), vec![(0, true)]);
        assert_eq!(late.try_iter().collect::<Vec<_>>(), vec![(0, true)]);

        // Each group's log holds only its own entries after a restart.
        let (first, thread) = open(dirs[0].path());
        assert_eq!(timestamps(&first.read(1, 9).await.unwrap()), vec![10, 20]);
        let second = thread.attach(dirs[1].path());
        assert_eq!(
            timestamps(&second.read(1, 9).await.unwrap()),
            vec![100, 200]
        );
        thread.stop().await;
    }
}
