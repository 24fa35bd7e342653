//! openraft's `RaftStateMachine` over the ledger's hot state and its on-disk history, and
//! checkpoints.
//!
//! Applying an entry: list the history keys its commands may read (`Ledger::history_keys`),
//! look them up on disk with no lock held, then under the ledger's write lock apply the entry
//! (pure) and append its records to history (so a reader never sees hot state that points at
//! history it cannot read yet). Reads take the read lock between entries.
//!
//! A checkpoint (openraft's "snapshot") is taken between two entries: the hot state is frozen
//! copy-on-write in O(pages), history's ends are noted, and everything else (writing the hot
//! file, the manifest) happens on another task while entries keep applying.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use croupier_core::codec::encode_checkpoint;
use croupier_core::history::{HistoryKeys, HistoryRecord, HistorySource, Prefetched};
use croupier_core::{CommandResult, FrozenLedger, Ledger};
use croupier_store::{
    CheckpointManifest, CheckpointStore, EventFeed, HistoryEnds, HistoryReader, HistorySync,
    HistoryWriter, StoreError,
};
use futures_util::TryStreamExt;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use tokio::sync::{watch, RwLock};

use crate::log_writer::WriterHandle;
use crate::metric_names;
use crate::raft_codec::encode_stored_membership;
use crate::snapshot_data::CheckpointData;
use crate::types::{LogId, SnapshotMeta, StoredMembership, TypeConfig};

type Snapshot = openraft::type_config::alias::SnapshotOf<TypeConfig, CheckpointData>;

/// At each checkpoint an index whose durable coverage lags by more than this many transfers
/// (wallet bytes for the wallet-key index) is flushed, so a restart re-indexes at most about
/// this much history plus one memtable.
const INDEX_CATCH_UP_TRANSFERS_MAX: u64 = 2_000_000;
const INDEX_CATCH_UP_WALLET_BYTES_MAX: u64 = 128 << 20;

/// An entry whose prefetch + apply + persist takes longer than this is logged with its phases.
const SLOW_APPLY_WARN_MS: u128 = 100;

/// What readers share with the state machine. History and the event feed can be replaced
/// whole (a checkpoint installed from another node), hence the locks; readers clone them.
#[derive(Debug)]
pub(crate) struct SharedState {
    pub(crate) ledger: RwLock<Ledger>,
    pub(crate) history: std::sync::RwLock<HistoryReader>,
    pub(crate) events: std::sync::RwLock<EventFeed>,
    /// The last applied entry's index and last event position, for waiters (event streams).
    pub(crate) applied: watch::Sender<Applied>,
    /// Why applying failed, if it did. openraft often reports a consequence instead ("channel
    /// closed": the next entry sent to a state machine task that already quit on the failure),
    /// so the node reports this one.
    pub(crate) failure: std::sync::OnceLock<String>,
    /// How many checkpoints were installed from a leader. A checkpoint built from state that
    /// an install replaced meanwhile must not be committed over it: its builder checks this
    /// under the lock, and the install moves the files under it.
    pub(crate) installs: std::sync::Mutex<u64>,
}

impl SharedState {
    pub(crate) fn history(&self) -> HistoryReader {
        self.history
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn events(&self) -> EventFeed {
        self.events
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) index: u64,
    pub(crate) events_last: u64,
}

/// Where the state machine's files live, for checkpoints going out and coming in.
pub(crate) struct StorageContext {
    pub(crate) fs: Arc<dyn croupier_store::fs::FileSystem>,
    pub(crate) root: std::path::PathBuf,
    pub(crate) options: croupier_store::HistoryOptions,
}

pub(crate) struct LedgerStateMachine {
    shared: Arc<SharedState>,
    storage: StorageContext,
    /// The state machine's own reader (the shared one changes only through this machine).
    history: HistoryReader,
    writer: HistoryWriter,
    checkpoints: Arc<CheckpointStore>,
    log_writer: WriterHandle,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// The checkpoint in force (what `get_current_snapshot` describes).
    current: Option<CheckpointManifest>,
    keys: HistoryKeys,
    prefetched: Prefetched,
    records: Vec<HistoryRecord>,
}

/// What the node recovered before openraft replays the log after it.
pub(crate) struct Recovered {
    pub(crate) last_applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
    pub(crate) current: Option<CheckpointManifest>,
}

impl LedgerStateMachine {
    pub(crate) fn new(
        shared: Arc<SharedState>,
        storage: StorageContext,
        writer: HistoryWriter,
        checkpoints: Arc<CheckpointStore>,
        log_writer: WriterHandle,
        recovered: Recovered,
    ) -> Self {
        LedgerStateMachine {
            history: shared.history(),
            shared,
            storage,
            writer,
            checkpoints,
            log_writer,
            last_applied: recovered.last_applied,
            membership: recovered.membership,
            current: recovered.current,
            keys: HistoryKeys::default(),
            prefetched: Prefetched::default(),
            records: Vec::new(),
        }
    }

    async fn apply_proposal(
        &mut self,
        log_id: LogId,
        proposal: &croupier_core::command::Proposal,
    ) -> Result<Vec<CommandResult>, io::Error> {
        let started = Instant::now();
        let mut phases = [Duration::ZERO; 3];
        self.keys.clear();
        self.shared
            .ledger
            .read()
            .await
            .history_keys(&proposal.commands, &mut self.keys);
        self.history
            .fetch(&self.keys, &mut self.prefetched)
            .map_err(|e| apply_error(log_id, e))?;
        phases[0] = started.elapsed();
        let mut ledger = self.shared.ledger.write().await;
        self.records.clear();
        let (prefetched, records, writer) =
            (&mut self.prefetched, &mut self.records, &mut self.writer);
        // A broken invariant panics (by design); here the panic would kill openraft's state
        // machine task without a word and leave every proposal and the node hanging. Turn it
        // into a storage error instead: openraft stops, `Node::failed` resolves, `serve`
        // exits, and the restart replays from the checkpoint (nothing half-applied survives).
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let stamp = croupier_core::command::EntryStamp {
                timestamp_ns: proposal.timestamp_ns,
                term: log_id.leader_id.term,
            };
            let results = ledger.apply(stamp, &proposal.commands, prefetched, records);
            phases[1] = started.elapsed();
            writer.persist(log_id.index, records).map(|()| results)
        }));
        drop(ledger);
        phases[2] = started.elapsed();
        let results = match applied {
            Ok(persisted) => persisted.map_err(|e| apply_error(log_id, e))?,
            Err(panic) => {
                let reason = format!(
                    "applying entry {} panicked: {}",
                    log_id.index,
                    panic_message(panic.as_ref())
                );
                tracing::error!(%reason, "state machine failed");
                return Err(io::Error::other(reason));
            }
        };
        if phases[2].as_millis() >= SLOW_APPLY_WARN_MS {
            tracing::warn!(
                index = log_id.index,
                prefetch_ms = phases[0].as_millis() as u64,
                apply_ms = (phases[1] - phases[0]).as_millis() as u64,
                persist_ms = (phases[2] - phases[1]).as_millis() as u64,
                "slow entry"
            );
        }
        metrics::histogram!(metric_names::COMMANDS_PER_ENTRY)
            .record(proposal.commands.len() as f64);
        metrics::histogram!(metric_names::APPLY_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(results)
    }

    fn publish_applied(&self) {
        let applied = Applied {
            index: self.last_applied.map_or(0, |id| id.index),
            events_last: self.writer.ends().events_last,
        };
        self.shared.applied.send_replace(applied);
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

fn apply_error(log_id: LogId, error: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("applying entry {}: {error}", log_id.index))
}

impl RaftStateMachine<TypeConfig> for LedgerStateMachine {
    type SnapshotData = CheckpointData;
    type SnapshotBuilder = CheckpointBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: futures_util::Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>>
            + Unpin
            + OptionalSend,
    {
        while let Some((entry, responder)) = entries.try_next().await? {
            self.last_applied = Some(entry.log_id);
            let results = match entry.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Vec::new()
                }
                EntryPayload::Normal(data) => {
                    let applied = match data.decoded() {
                        Ok(proposal) => self.apply_proposal(entry.log_id, &proposal).await,
                        Err(e) => Err(apply_error(entry.log_id, e)),
                    };
                    applied.inspect_err(|error| {
                        let _ = self.shared.failure.set(error.to_string());
                    })?
                }
            };
            // Waiters (reads after a write, event streams) learn of the entry before its
            // proposer does: an acknowledged write is always visible to the next read.
            self.publish_applied();
            if let Some(responder) = responder {
                responder.send(results);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Called between two applies: the freeze and the ends describe `last_applied` exactly.
        // Both are O(pages) and the fsyncs run later on the builder's task, so the next entry
        // does not wait for the disk.
        let sync = self.writer.sync_handle().map_err(|e| e.to_string());
        let frozen = self.shared.ledger.read().await.freeze();
        // Housekeeping that must not wait for the next checkpoint, and must never block: flush
        // indexes that lag (bounds a restart's re-indexing) and drop events past retention.
        let housekeeping = self
            .writer
            .bound_index_catch_up(
                INDEX_CATCH_UP_TRANSFERS_MAX,
                INDEX_CATCH_UP_WALLET_BYTES_MAX,
            )
            .and_then(|()| self.writer.enforce_event_retention(frozen.clock()));
        if let Err(error) = housekeeping {
            tracing::error!(%error, "index flush or event retention failed at a checkpoint");
        }
        CheckpointBuilder {
            install_generation: *lock_installs(&self.shared),
            shared: Arc::clone(&self.shared),
            frozen: Some(frozen),
            sync: Some(sync),
            ends: self.writer.ends(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            checkpoints: Arc::clone(&self.checkpoints),
            log_writer: self.log_writer.clone(),
        }
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: CheckpointData,
    ) -> Result<(), io::Error> {
        let failed = |reason: String| -> io::Error {
            io::Error::other(format!(
                "installing the checkpoint at {:?}: {reason}",
                meta.last_log_id
            ))
        };
        let CheckpointData::Incoming(mut staging) = snapshot else {
            return Err(failed(
                "an installed checkpoint must come in through a staging file".into(),
            ));
        };
        staging.rewind();
        let (fs, root) = (Arc::clone(&self.storage.fs), self.storage.root.clone());
        let (fs, root) = (&fs, root.as_path());
        let manifest = crate::install::unpack_and_mark(fs, root, &mut staging).map_err(failed)?;
        staging.remove();
        {
            // No index merge may write into the history being moved away, and no checkpoint
            // built from the replaced state may be committed over the installed one.
            let mut installs = lock_installs(&self.shared);
            *installs += 1;
            self.history.stop_background();
            crate::install::swap_in(fs, root).map_err(failed)?;
        }
        self.log_writer
            .purge_through_snapshot(manifest.last_index, manifest.last_term, manifest.chain_head)
            .await
            .map_err(|e| failed(e.0))?;
        self.adopt_checkpoint(&manifest).await.map_err(failed)?;
        crate::install::finish(fs, root).map_err(failed)?;
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish_applied();
        tracing::info!(
            last_index = manifest.last_index,
            "installed the leader's checkpoint"
        );
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let read_failed = |e: StoreError| io::Error::other(format!("reading the checkpoint: {e}"));
        let Some(current) = self.checkpoints.current().map_err(read_failed)? else {
            return Ok(None);
        };
        let archive = croupier_store::archive::CheckpointArchive::plan(
            Arc::clone(&self.storage.fs),
            &self.storage.root,
            &self.checkpoints,
            &current,
        )
        .map_err(read_failed)?;
        self.current = Some(current.clone());
        let membership = self.membership_of(&current);
        Ok(Some(snapshot_of(
            &current,
            membership,
            CheckpointData::Outgoing(archive),
        )))
    }
}

/// The staging file of a checkpoint coming in, in the checkpoint directory.
pub(crate) const INCOMING_ARCHIVE_NAME: &str = "incoming.archive";

impl LedgerStateMachine {
    /// Opens the history and hot state of a checkpoint just unpacked into this node's data
    /// directory, and makes them the state machine's and every reader's.
    async fn adopt_checkpoint(&mut self, manifest: &CheckpointManifest) -> Result<(), String> {
        let bytes = self
            .checkpoints
            .load_hot(manifest)
            .map_err(|e| e.to_string())?;
        let ledger = croupier_core::codec::decode_checkpoint(&bytes).map_err(|e| e.to_string())?;
        // The event log is not part of an archive: the feed starts empty here.
        let ends = HistoryEnds {
            events_end: 0,
            ..manifest.history_ends()
        };
        let root = &self.storage.root;
        let opened = croupier_store::OpenedHistory::open(
            Arc::clone(&self.storage.fs),
            &root.join("history"),
            &root.join("events"),
            &self.storage.options,
            Some(ends),
        )
        .map_err(|e| e.to_string())?;
        let mut guard = self.shared.ledger.write().await;
        *guard = ledger;
        self.writer = opened.writer;
        self.history = opened.reader.clone();
        *self
            .shared
            .history
            .write()
            .unwrap_or_else(|p| p.into_inner()) = opened.reader;
        *self
            .shared
            .events
            .write()
            .unwrap_or_else(|p| p.into_inner()) = opened.events;
        self.current = Some(manifest.clone());
        Ok(())
    }

    fn membership_of(&self, manifest: &CheckpointManifest) -> StoredMembership {
        crate::raft_codec::decode_stored_membership(&manifest.membership)
            .unwrap_or_else(|_| self.membership.clone())
    }
}

/// openraft's view of a checkpoint: its log id and membership, and its data as a stream.
fn snapshot_of(
    manifest: &CheckpointManifest,
    membership: StoredMembership,
    data: CheckpointData,
) -> Snapshot {
    let meta = SnapshotMeta {
        last_log_id: (manifest.last_index > 0 || manifest.last_term > 0)
            .then(|| crate::types::log_id(manifest.last_term, manifest.last_index)),
        last_membership: membership,
    };
    Snapshot {
        meta,
        snapshot: data,
    }
}

pub(crate) struct CheckpointBuilder {
    install_generation: u64,
    shared: Arc<SharedState>,
    frozen: Option<FrozenLedger>,
    sync: Option<Result<HistorySync, String>>,
    ends: HistoryEnds,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    checkpoints: Arc<CheckpointStore>,
    log_writer: WriterHandle,
}

impl RaftSnapshotBuilder<TypeConfig> for CheckpointBuilder {
    type SnapshotData = CheckpointData;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let started = Instant::now();
        let failed = |reason: String| io::Error::other(format!("writing a checkpoint: {reason}"));
        let sync = self
            .sync
            .take()
            .ok_or_else(|| failed("checkpoint builder used twice".into()))?
            .map_err(failed)?;
        let frozen = self
            .frozen
            .take()
            .ok_or_else(|| failed("checkpoint builder used twice".into()))?;
        let (last_index, last_term) = self
            .last_applied
            .map_or((0, 0), |id| (id.index, id.leader_id.term));
        let chain_head = match self.last_applied {
            Some(id) => self
                .log_writer
                .chain_hash(id.index)
                .await
                .map_err(|e| failed(e.0))?,
            None => [0u8; 32],
        };
        let mut manifest = CheckpointManifest {
            last_index,
            last_term,
            chain_head,
            transfers_end: self.ends.transfers_end,
            wallet_end: self.ends.wallet_end,
            operators_end: self.ends.operators_end,
            events_last: self.ends.events_last,
            events_end: self.ends.events_end,
            membership: encode_stored_membership(&self.membership),
            snapshot_id: format!(
                "{last_term}-{last_index}-{}",
                crate::wall_clock::unix_time_ns()
            ),
            hot_file: String::new(),
            hot_len: 0,
            hot_sha256: [0; 32],
        };
        let checkpoints = Arc::clone(&self.checkpoints);
        let (shared, generation) = (Arc::clone(&self.shared), self.install_generation);
        let manifest = crate::simulation::blocking(move || {
            // History first: the manifest may name only durable history.
            sync.run()?;
            let installs = lock_installs(&shared);
            if *installs != generation {
                return Ok(None);
            }
            let mut hot = checkpoints.begin(last_index)?;
            encode_checkpoint(&frozen, &mut hot).map_err(|e| StoreError::Io {
                op: "write checkpoint",
                path: checkpoints.dir().to_path_buf(),
                source: e,
            })?;
            checkpoints.commit(hot, &mut manifest)?;
            drop(installs);
            Ok::<_, StoreError>(Some(manifest))
        })
        .await
        .map_err(failed)?
        .map_err(|e| failed(e.to_string()))?;
        let Some(manifest) = manifest else {
            // A leader's checkpoint replaced this state while it was being written: that one
            // is in force, and it is the snapshot to report.
            tracing::info!(
                last_index,
                "checkpoint dropped: an installed one replaced its state"
            );
            let current = self
                .checkpoints
                .current()
                .map_err(|e| failed(e.to_string()))?;
            let current = current.ok_or_else(|| failed("no checkpoint after an install".into()))?;
            return Ok(snapshot_of(
                &current,
                self.membership.clone(),
                CheckpointData::Empty,
            ));
        };
        metrics::histogram!(metric_names::SNAPSHOT_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::info!(
            last_index,
            hot_bytes = manifest.hot_len,
            "checkpoint written"
        );
        // openraft keeps only the meta of a snapshot it built; a follower gets the data from
        // `get_current_snapshot`.
        Ok(snapshot_of(
            &manifest,
            self.membership.clone(),
            CheckpointData::Empty,
        ))
    }
}

fn lock_installs(shared: &SharedState) -> std::sync::MutexGuard<'_, u64> {
    shared.installs.lock().unwrap_or_else(|p| p.into_inner())
}
