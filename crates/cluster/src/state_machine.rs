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

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use croupier_core::codec::encode_checkpoint;
use croupier_core::history::{HistoryKeys, HistoryRecord, HistorySource, Prefetched};
use croupier_core::{CommandResult, FrozenLedger, Ledger};
use croupier_store::{
    CheckpointManifest, CheckpointStore, HistoryEnds, HistoryReader, HistoryWriter, StoreError,
};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{AnyError, EntryPayload, OptionalSend, StorageIOError};
use tokio::sync::{watch, RwLock};

use crate::log_writer::WriterHandle;
use crate::metric_names;
use crate::raft_codec::encode_stored_membership;
use crate::types::{Entry, LogId, StorageError, StoredMembership, TypeConfig};

type OpenraftSnapshotMeta = SnapshotMeta<u64, openraft::BasicNode>;

/// What readers share with the state machine.
#[derive(Debug)]
pub(crate) struct SharedState {
    pub(crate) ledger: RwLock<Ledger>,
    pub(crate) history: HistoryReader,
    /// The last applied entry's index and last event position, for waiters (event streams).
    pub(crate) applied: watch::Sender<Applied>,
    /// Why applying failed, if it did. openraft often reports a consequence instead ("channel
    /// closed": the next entry sent to a state machine task that already quit on the failure),
    /// so the node reports this one.
    pub(crate) failure: std::sync::OnceLock<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) index: u64,
    pub(crate) events_last: u64,
}

pub(crate) struct LedgerStateMachine {
    shared: Arc<SharedState>,
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
        writer: HistoryWriter,
        checkpoints: Arc<CheckpointStore>,
        log_writer: WriterHandle,
        recovered: Recovered,
    ) -> Self {
        LedgerStateMachine {
            shared,
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
    ) -> Result<Vec<CommandResult>, StorageError> {
        let started = Instant::now();
        self.keys.clear();
        self.shared
            .ledger
            .read()
            .await
            .history_keys(&proposal.commands, &mut self.keys);
        self.shared
            .history
            .fetch(&self.keys, &mut self.prefetched)
            .map_err(|e| apply_error(log_id, e))?;
        let mut ledger = self.shared.ledger.write().await;
        self.records.clear();
        let (prefetched, records, writer) =
            (&mut self.prefetched, &mut self.records, &mut self.writer);
        // A broken invariant panics (by design); here the panic would kill openraft's state
        // machine task without a word and leave every proposal and the node hanging. Turn it
        // into a storage error instead: openraft stops, `Node::failed` resolves, `serve`
        // exits, and the restart replays from the checkpoint (nothing half-applied survives).
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let results = ledger.apply(
                proposal.timestamp_ns,
                &proposal.commands,
                prefetched,
                records,
            );
            writer.persist(log_id.index, records).map(|()| results)
        }));
        drop(ledger);
        let results = match applied {
            Ok(persisted) => persisted.map_err(|e| apply_error(log_id, e))?,
            Err(panic) => {
                let reason = format!(
                    "applying entry {} panicked: {}",
                    log_id.index,
                    panic_message(panic.as_ref())
                );
                tracing::error!(%reason, "state machine failed");
                return Err(StorageIOError::apply(log_id, AnyError::error(reason)).into());
            }
        };
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

fn apply_error(log_id: LogId, error: StoreError) -> StorageError {
    StorageIOError::apply(log_id, AnyError::error(error)).into()
}

impl RaftStateMachine<TypeConfig> for LedgerStateMachine {
    type SnapshotBuilder = CheckpointBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<CommandResult>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => results.push(Vec::new()),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership);
                    results.push(Vec::new());
                }
                EntryPayload::Normal(data) => {
                    let applied = match data.decoded() {
                        Ok(proposal) => self.apply_proposal(entry.log_id, &proposal).await,
                        Err(e) => {
                            Err(StorageIOError::apply(entry.log_id, AnyError::error(e)).into())
                        }
                    };
                    match applied {
                        Ok(applied) => results.push(applied),
                        Err(error) => {
                            let _ = self.shared.failure.set(error.to_string());
                            return Err(error);
                        }
                    }
                }
            }
        }
        self.publish_applied();
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Called between two applies: the freeze and the ends describe `last_applied` exactly.
        let synced = self.writer.sync().map_err(|e| e.to_string());
        let frozen = self.shared.ledger.read().await.freeze();
        CheckpointBuilder {
            frozen: Some(frozen),
            synced,
            ends: self.writer.ends(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            checkpoints: Arc::clone(&self.checkpoints),
            log_writer: self.log_writer.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &OpenraftSnapshotMeta,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let reason = "installing a checkpoint from another node arrives with replication";
        Err(StorageIOError::write_snapshot(Some(meta.signature()), AnyError::error(reason)).into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let Ok(Some(current)) = self.checkpoints.current() else {
            return Ok(None);
        };
        self.current = Some(current.clone());
        Ok(Some(snapshot_of(&current, self.membership_of(&current))))
    }
}

impl LedgerStateMachine {
    fn membership_of(&self, manifest: &CheckpointManifest) -> StoredMembership {
        crate::raft_codec::decode_stored_membership(&manifest.membership)
            .unwrap_or_else(|_| self.membership.clone())
    }
}

/// openraft's view of a checkpoint: its log id, membership and id; the data is the manifest
/// (a node installing it fetches the files it names).
fn snapshot_of(
    manifest: &CheckpointManifest,
    membership: StoredMembership,
) -> Snapshot<TypeConfig> {
    let meta = OpenraftSnapshotMeta {
        last_log_id: (manifest.last_index > 0 || manifest.last_term > 0)
            .then(|| crate::types::log_id(manifest.last_term, manifest.last_index)),
        last_membership: membership,
        snapshot_id: manifest.snapshot_id.clone(),
    };
    Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(Vec::new())),
    }
}

pub(crate) struct CheckpointBuilder {
    frozen: Option<FrozenLedger>,
    synced: Result<(), String>,
    ends: HistoryEnds,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    checkpoints: Arc<CheckpointStore>,
    log_writer: WriterHandle,
}

impl RaftSnapshotBuilder<TypeConfig> for CheckpointBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let started = Instant::now();
        let failed = |reason: String| -> StorageError {
            StorageIOError::write_snapshot(None, AnyError::error(reason)).into()
        };
        self.synced.clone().map_err(failed)?;
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
            events_last: self.ends.events_last,
            history_hash: self.ends.history_hash,
            membership: encode_stored_membership(&self.membership),
            snapshot_id: format!("{last_term}-{last_index}-{}", unix_nanos()),
            hot_file: String::new(),
            hot_len: 0,
            hot_sha256: [0; 32],
        };
        let checkpoints = Arc::clone(&self.checkpoints);
        let manifest = tokio::task::spawn_blocking(move || {
            let mut hot = checkpoints.begin(last_index)?;
            encode_checkpoint(&frozen, &mut hot).map_err(|e| StoreError::Io {
                op: "write checkpoint",
                path: checkpoints.dir().to_path_buf(),
                source: e,
            })?;
            checkpoints.commit(hot, &mut manifest)?;
            Ok::<_, StoreError>(manifest)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
        metrics::histogram!(metric_names::SNAPSHOT_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::info!(
            last_index,
            hot_bytes = manifest.hot_len,
            "checkpoint written"
        );
        Ok(snapshot_of(&manifest, self.membership.clone()))
    }
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
