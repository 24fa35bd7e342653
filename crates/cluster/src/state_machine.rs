//! openraft's `RaftStateMachine` over the ledger, and state-machine snapshots.
//!
//! The ledger sits behind a tokio `RwLock`: apply takes the write lock per entry, reads and the
//! snapshot builder take the read lock. A snapshot is encoded under a read guard taken between
//! two applies, so its contents match the log id it claims to cover.

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use croupier_core::codec::{decode_ledger, encode_ledger};
use croupier_core::Ledger;
use croupier_store::{ChainHash, SnapshotMeta as StoredSnapshotMeta, SnapshotStore};
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{AnyError, EntryPayload, OptionalSend, StorageIOError};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use crate::log_writer::{StorageFailure, WriterHandle};
use crate::metric_names;
use crate::raft_codec::{decode_stored_membership, encode_stored_membership};
use crate::types::{log_id, Entry, LogId, StorageError, StoredMembership, TypeConfig};

const CHAIN_HASH_LEN: usize = std::mem::size_of::<ChainHash>();

pub(crate) type SharedLedger = Arc<RwLock<Ledger>>;
pub(crate) type SharedSnapshots = Arc<Mutex<SnapshotStore>>;

type OpenraftSnapshotMeta = SnapshotMeta<u64, openraft::BasicNode>;

pub(crate) struct LedgerStateMachine {
    ledger: SharedLedger,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshots: SharedSnapshots,
    writer: WriterHandle,
}

/// What a node recovers from its latest snapshot before openraft replays the log after it.
pub(crate) struct RecoveredState {
    pub(crate) ledger: Ledger,
    pub(crate) last_applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
    /// The snapshot's last entry and the chain hash it vouches for.
    pub(crate) chain_head: Option<(u64, ChainHash)>,
    pub(crate) snapshot_id: Option<String>,
}

impl RecoveredState {
    pub(crate) fn load(snapshots: &SnapshotStore) -> Result<RecoveredState, StorageFailure> {
        let Some((meta, bytes)) = snapshots
            .load_latest()
            .map_err(|e| StorageFailure(e.to_string()))?
        else {
            return Ok(RecoveredState {
                ledger: Ledger::new(),
                last_applied: None,
                membership: StoredMembership::default(),
                chain_head: None,
                snapshot_id: None,
            });
        };
        let ledger = decode_ledger(&bytes).map_err(|e| {
            StorageFailure(format!(
                "snapshot {}: ledger does not decode: {e}",
                meta.snapshot_id
            ))
        })?;
        let membership = decode_stored_membership(&meta.membership)
            .map_err(|e| StorageFailure(format!("snapshot {}: {e}", meta.snapshot_id)))?;
        Ok(RecoveredState {
            ledger,
            last_applied: Some(log_id(meta.last_term, meta.last_index)),
            membership,
            chain_head: Some((meta.last_index, meta.chain_head)),
            snapshot_id: Some(meta.snapshot_id),
        })
    }
}

impl LedgerStateMachine {
    pub(crate) fn new(
        recovered: RecoveredState,
        ledger: SharedLedger,
        snapshots: SharedSnapshots,
        writer: WriterHandle,
    ) -> Self {
        LedgerStateMachine {
            ledger,
            last_applied: recovered.last_applied,
            membership: recovered.membership,
            snapshots,
            writer,
        }
    }

    fn apply_one(
        &mut self,
        entry: Entry,
        ledger: &mut Ledger,
    ) -> Result<Vec<croupier_core::CommandResult>, StorageError> {
        self.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => Ok(Vec::new()),
            EntryPayload::Membership(membership) => {
                self.membership = StoredMembership::new(Some(entry.log_id), membership);
                Ok(Vec::new())
            }
            EntryPayload::Normal(data) => {
                let proposal = data.decoded().map_err(|e| {
                    StorageError::from(StorageIOError::apply(entry.log_id, AnyError::error(e)))
                })?;
                metrics::histogram!(metric_names::COMMANDS_PER_ENTRY)
                    .record(proposal.commands.len() as f64);
                let started = Instant::now();
                let results = ledger.apply(proposal.timestamp_ns, &proposal.commands);
                metrics::histogram!(metric_names::APPLY_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                Ok(results)
            }
        }
    }
}

impl RaftStateMachine<TypeConfig> for LedgerStateMachine {
    type SnapshotBuilder = LedgerSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> Result<Vec<Vec<croupier_core::CommandResult>>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let ledger = Arc::clone(&self.ledger);
        let mut results = Vec::new();
        for entry in entries {
            // The write lock per entry lets reads in between entries of a long replay.
            let mut guard = ledger.write().await;
            results.push(self.apply_one(entry, &mut guard)?);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Called between two applies: the guard pins the state that `last_applied` describes.
        let ledger = Arc::clone(&self.ledger).read_owned().await;
        LedgerSnapshotBuilder {
            ledger: Some(ledger),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            snapshots: Arc::clone(&self.snapshots),
            writer: self.writer.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &OpenraftSnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let signature = meta.signature();
        let failed = |reason: String| -> StorageError {
            StorageIOError::write_snapshot(Some(signature.clone()), AnyError::error(reason)).into()
        };
        let envelope = snapshot.into_inner();
        let (chain_head, ledger_bytes) =
            split_envelope(&envelope).ok_or_else(|| failed("snapshot too short".into()))?;
        let ledger =
            decode_ledger(ledger_bytes).map_err(|e| failed(format!("snapshot ledger: {e}")))?;
        let last = meta
            .last_log_id
            .ok_or_else(|| failed("snapshot without a last log id".into()))?;
        let stored = StoredSnapshotMeta {
            last_index: last.index,
            last_term: last.leader_id.term,
            chain_head,
            membership: encode_stored_membership(&meta.last_membership),
            snapshot_id: meta.snapshot_id.clone(),
        };
        let snapshots = Arc::clone(&self.snapshots);
        let bytes = ledger_bytes.to_vec();
        tokio::task::spawn_blocking(move || lock(&snapshots).save(&stored, &bytes))
            .await
            .map_err(|e| failed(e.to_string()))?
            .map_err(|e| failed(e.to_string()))?;
        self.writer
            .purge_through_snapshot(last.index, last.leader_id.term, chain_head)
            .await
            .map_err(|e| failed(e.0))?;
        *self.ledger.write().await = ledger;
        self.last_applied = Some(last);
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let snapshots = Arc::clone(&self.snapshots);
        let latest = tokio::task::spawn_blocking(move || lock(&snapshots).load_latest())
            .await
            .map_err(|e| {
                StorageError::from(StorageIOError::read_snapshot(None, AnyError::error(e)))
            })?
            .map_err(|e| {
                StorageError::from(StorageIOError::read_snapshot(None, AnyError::error(e)))
            })?;
        let Some((stored, ledger_bytes)) = latest else {
            return Ok(None);
        };
        let membership = decode_stored_membership(&stored.membership).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(None, AnyError::error(e)))
        })?;
        let meta = OpenraftSnapshotMeta {
            last_log_id: Some(log_id(stored.last_term, stored.last_index)),
            last_membership: membership,
            snapshot_id: stored.snapshot_id,
        };
        let mut envelope = Vec::with_capacity(CHAIN_HASH_LEN + ledger_bytes.len());
        envelope.extend_from_slice(&stored.chain_head);
        envelope.extend_from_slice(&ledger_bytes);
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(envelope)),
        }))
    }
}

pub(crate) struct LedgerSnapshotBuilder {
    ledger: Option<OwnedRwLockReadGuard<Ledger>>,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    snapshots: SharedSnapshots,
    writer: WriterHandle,
}

impl RaftSnapshotBuilder<TypeConfig> for LedgerSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let started = Instant::now();
        let failed = |reason: String| -> StorageError {
            StorageIOError::write_snapshot(None, AnyError::error(reason)).into()
        };
        let ledger = self
            .ledger
            .take()
            .ok_or_else(|| failed("snapshot builder used twice".into()))?;
        let chain_head = match self.last_applied {
            Some(id) => self
                .writer
                .chain_hash(id.index)
                .await
                .map_err(|e| failed(e.0))?,
            None => [0u8; CHAIN_HASH_LEN],
        };
        // The snapshot travels to followers as [chain head | encoded ledger].
        let mut envelope = Vec::new();
        envelope.extend_from_slice(&chain_head);
        let envelope = tokio::task::spawn_blocking(move || {
            encode_ledger(&ledger, &mut envelope);
            drop(ledger); // applies wait for this guard: release it before touching the disk
            envelope
        })
        .await
        .map_err(|e| failed(e.to_string()))?;

        let (last_index, last_term) = self
            .last_applied
            .map_or((0, 0), |id| (id.index, id.leader_id.term));
        let snapshot_id = format!("{last_term}-{last_index}-{}", unix_nanos());
        let stored = StoredSnapshotMeta {
            last_index,
            last_term,
            chain_head,
            membership: encode_stored_membership(&self.membership),
            snapshot_id: snapshot_id.clone(),
        };
        let snapshots = Arc::clone(&self.snapshots);
        let envelope = tokio::task::spawn_blocking(move || {
            lock(&snapshots)
                .save(&stored, &envelope[CHAIN_HASH_LEN..])
                .map(|()| envelope)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
        metrics::histogram!(metric_names::SNAPSHOT_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::info!(last_index, bytes = envelope.len(), "snapshot saved");

        let meta = OpenraftSnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(envelope)),
        })
    }
}

fn split_envelope(envelope: &[u8]) -> Option<(ChainHash, &[u8])> {
    if envelope.len() < CHAIN_HASH_LEN {
        return None;
    }
    let (head, rest) = envelope.split_at(CHAIN_HASH_LEN);
    Some((head.try_into().expect("chain hash length"), rest))
}

fn lock(snapshots: &SharedSnapshots) -> std::sync::MutexGuard<'_, SnapshotStore> {
    snapshots
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
