//! Opening a node's data directory: lock it, open the log, load the checkpoint in force, cut
//! history back to it, and hand openraft a state machine that resumes right after it (openraft
//! then re-applies the log entries the checkpoint does not cover).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use croupier_core::codec::decode_checkpoint;
use croupier_core::Ledger;
use croupier_store::fs::FileSystem;
use croupier_store::{
    CheckpointManifest, CheckpointStore, ConsumerCursors, DataDir, DataDirLock, EventLogOptions,
    HistoryOptions, IndexOptions, LogOptions, LogStore, OpenedHistory, VoteFile,
};
use tokio::sync::{watch, RwLock};

use crate::log_storage::LogStorage;
use crate::log_writer::{LogWriter, WriterHandle};
use crate::raft_codec::decode_stored_membership;
use crate::state_machine::{Applied, LedgerStateMachine, Recovered, SharedState, StorageContext};
use crate::types::{log_id, StoredMembership};
use crate::{ClusterError, Node, NodeConfig};

/// How the history, its indexes and the event feed use memory and disk.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Memory for all three id indexes' memtables together, every copy counted (active, frozen
    /// and spare: `FROZEN_MEMTABLES_MAX + 2` per index). The transfer-id index gets most of it.
    pub index_memtables_bytes_max: usize,
    pub history_segment_bytes_max: u64,
    pub events_segment_bytes_max: u64,
    /// Events kept at most (bytes on disk); older segments are deleted.
    pub event_retention_bytes_max: u64,
    /// Events kept at most (age); 0 keeps them whatever their age.
    pub event_retention_age_s_max: u64,
}

/// Frozen memtables an index may hold while they flush (then inserts wait).
const FROZEN_MEMTABLES_MAX: usize = 2;
/// Events kept on disk by default. Opening the event log reads the retained events once, so
/// this also bounds that part of a restart (about a second per GiB here).
pub const EVENT_RETENTION_BYTES_DEFAULT: u64 = 1 << 30;

/// Default memory budget for what grows with history.
pub const CACHE_SIZE_MAX_BYTES_DEFAULT: usize = 1 << 30;

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions::with_budget(CACHE_SIZE_MAX_BYTES_DEFAULT - CACHE_SIZE_MAX_BYTES_DEFAULT / 8)
    }
}

impl StorageOptions {
    /// Splits `budget_bytes` for the indexes: their memtables take half; the other half is left
    /// to bloom filters and fences, the only memory that grows with history (~1.4 bytes a key).
    pub fn with_budget(budget_bytes: usize) -> Self {
        StorageOptions {
            index_memtables_bytes_max: (budget_bytes / 2).max(16 << 20),
            history_segment_bytes_max: 256 << 20,
            events_segment_bytes_max: 128 << 20,
            event_retention_bytes_max: EVENT_RETENTION_BYTES_DEFAULT,
            event_retention_age_s_max: 0,
        }
    }

    fn history_options(&self) -> HistoryOptions {
        // Shares of the memtable memory: transfer ids 4, wallet keys 2, resolutions 1 (posts
        // and voids are a small part of transfers).
        const SHARES_TOTAL: usize = 7;
        let copies = FROZEN_MEMTABLES_MAX + 2;
        let index = |share: usize| IndexOptions {
            // A small floor: only tests set budgets this low (to make indexes flush and merge
            // within a few hundred transfers); `with_budget` keeps real nodes far above it.
            memtable_bytes_max: (self.index_memtables_bytes_max * share / SHARES_TOTAL / copies)
                .max(1 << 10),
            frozen_memtables_max: FROZEN_MEMTABLES_MAX,
            ..IndexOptions::default()
        };
        let log = croupier_store::history::derived_log_options;
        HistoryOptions {
            transfers: log(self.history_segment_bytes_max),
            wallet: log(self.history_segment_bytes_max),
            operators: log(self.history_segment_bytes_max),
            events: EventLogOptions {
                records: log(self.events_segment_bytes_max),
                retention_bytes_max: (self.event_retention_bytes_max > 0)
                    .then_some(self.event_retention_bytes_max),
                retention_age_ns_max: (self.event_retention_age_s_max > 0)
                    .then(|| self.event_retention_age_s_max.saturating_mul(1_000_000_000)),
            },
            transfer_index: index(4),
            resolution_index: index(1),
            key_index: index(2),
        }
    }
}

pub(crate) struct Opened {
    pub(crate) lock: Option<DataDirLock>,
    pub(crate) writer: WriterHandle,
    pub(crate) log_storage: LogStorage,
    pub(crate) state_machine: LedgerStateMachine,
    pub(crate) shared: Arc<SharedState>,
    pub(crate) consumers: Arc<ConsumerCursors>,
}

/// A store error as the node reports it: bytes on disk that cannot be right are `Corrupt`
/// (a clustered node may repair them from its peers), anything else is `Storage`.
fn store_error(error: croupier_store::StoreError) -> ClusterError {
    match error {
        croupier_store::StoreError::Corrupt { .. } => ClusterError::Corrupt(error.to_string()),
        other => ClusterError::Storage(other.to_string()),
    }
}

fn storage_error(error: impl std::fmt::Display) -> ClusterError {
    ClusterError::Storage(error.to_string())
}

pub(crate) fn open_storage(
    config: &NodeConfig,
    log_writer: &LogWriter,
) -> Result<Opened, ClusterError> {
    let fs: Arc<dyn FileSystem> = Arc::clone(&config.file_system);
    fs.create_dir_all(&config.data_dir).map_err(|e| {
        ClusterError::Storage(format!("cannot create {}: {e}", config.data_dir.display()))
    })?;
    let lock = match config.lock_data_dir {
        true => Some(
            DataDirLock::acquire(&config.data_dir)
                .map_err(|e| ClusterError::Locked(e.to_string()))?,
        ),
        false => None,
    };
    let dirs = DataDir::new(&config.data_dir);
    let started = std::time::Instant::now();
    let install_interrupted =
        crate::install::resume_parts(&fs, dirs.root()).map_err(ClusterError::Storage)?;
    let mut log_store = open_log(config, &dirs, &fs)?;
    let log_opened = started.elapsed();
    let vote_file = VoteFile::open_with(fs.clone(), dirs.vote_path()).map_err(storage_error)?;
    let checkpoints =
        CheckpointStore::open(fs.clone(), dirs.root().join("checkpoint")).map_err(store_error)?;
    if install_interrupted {
        crate::install::resume_log(&fs, dirs.root(), &mut log_store, &checkpoints)
            .map_err(ClusterError::Storage)?;
    }
    let current = checkpoints.current().map_err(store_error)?;
    if let Some(manifest) = &current {
        check_checkpoint_chains_to_log(manifest, &log_store)?;
    }
    let ledger = load_hot_state(&checkpoints, current.as_ref())?;
    let checkpoint_loaded = started.elapsed();
    let ends = current.as_ref().map(CheckpointManifest::history_ends);
    let history = OpenedHistory::open(
        fs,
        &dirs.root().join("history"),
        &dirs.root().join("events"),
        &config.storage.history_options(),
        ends,
    )
    .map_err(store_error)?;
    check_history_matches_hot_state(&ledger, &history)?;
    tracing::info!(
        log_ms = log_opened.as_millis() as u64,
        checkpoint_ms = (checkpoint_loaded - log_opened).as_millis() as u64,
        history_ms = (started.elapsed() - checkpoint_loaded).as_millis() as u64,
        checkpoint_index = current.as_ref().map_or(0, |m| m.last_index),
        "storage opened; replaying the log after the checkpoint"
    );
    let recovered = recovered_state(current.as_ref())?;
    let consumers = ConsumerCursors::open(
        Arc::clone(&config.file_system),
        dirs.root().join("consumers"),
    )
    .map_err(storage_error)?;
    // The last step that can fail: once attached, the log belongs to the writer thread until
    // the group detaches it.
    let writer = log_writer
        .attach(log_store)
        .map_err(|e| ClusterError::Storage(format!("cannot hand the log to its writer: {e}")))?;
    let applied = Applied {
        index: recovered.last_applied.map_or(0, |id| id.index),
        events_last: ends.map_or(0, |e| e.events_last),
    };
    let shared = Arc::new(SharedState {
        ledger: RwLock::new(ledger),
        history: std::sync::RwLock::new(history.reader),
        events: std::sync::RwLock::new(history.events),
        applied: watch::channel(applied).0,
        failure: std::sync::OnceLock::new(),
        installs: std::sync::Mutex::new(0),
    });
    let storage = StorageContext {
        fs: Arc::clone(&config.file_system),
        root: dirs.root().to_path_buf(),
        options: config.storage.history_options(),
    };
    let state_machine = LedgerStateMachine::new(
        Arc::clone(&shared),
        storage,
        history.writer,
        Arc::new(checkpoints),
        writer.clone(),
        recovered,
    );
    let log_storage = LogStorage::new(writer.clone(), vote_file, config.log_cache_size_max_bytes);
    Ok(Opened {
        consumers: Arc::new(consumers),
        lock,
        writer,
        log_storage,
        state_machine,
        shared,
    })
}

fn open_log(
    config: &NodeConfig,
    dirs: &DataDir,
    fs: &Arc<dyn FileSystem>,
) -> Result<LogStore, ClusterError> {
    let log_options = LogOptions {
        segment_size_max_bytes: config.log_segment_size_max_bytes,
    };
    let (log_store, recovery) =
        LogStore::open_with(fs.clone(), dirs.log_dir(), log_options).map_err(store_error)?;
    if let Some(torn) = &recovery.torn_tail {
        tracing::warn!(file = %torn.file.display(), offset = torn.offset, bytes = torn.bytes, reason = %torn.reason,
            "cut a torn write off the end of the log");
    }
    tracing::debug!(entries = recovery.entries, segments = recovery.segments, last_index = ?recovery.last_index, "log opened");
    Ok(log_store)
}

fn load_hot_state(
    checkpoints: &CheckpointStore,
    current: Option<&CheckpointManifest>,
) -> Result<Ledger, ClusterError> {
    let Some(manifest) = current else {
        return Ok(Ledger::new());
    };
    let bytes = checkpoints.load_hot(manifest).map_err(store_error)?;
    decode_checkpoint(&bytes).map_err(|e| {
        ClusterError::Corrupt(format!(
            "{}: checkpoint does not decode: {e}",
            checkpoints.hot_path(manifest).display()
        ))
    })
}

fn recovered_state(current: Option<&CheckpointManifest>) -> Result<Recovered, ClusterError> {
    let Some(manifest) = current else {
        return Ok(Recovered {
            last_applied: None,
            membership: StoredMembership::default(),
            current: None,
        });
    };
    let membership = decode_stored_membership(&manifest.membership)
        .map_err(|e| ClusterError::Storage(format!("checkpoint {}: {e}", manifest.snapshot_id)))?;
    let covers_an_entry = manifest.last_index > 0 || manifest.last_term > 0;
    Ok(Recovered {
        last_applied: covers_an_entry.then(|| log_id(manifest.last_term, manifest.last_index)),
        membership,
        current: Some(manifest.clone()),
    })
}

/// The checkpoint's transfer count must be where the transfers log was cut.
fn check_history_matches_hot_state(
    ledger: &Ledger,
    history: &OpenedHistory,
) -> Result<(), ClusterError> {
    let on_disk = history.reader.transfer_count();
    if on_disk != ledger.transfer_count() {
        return Err(ClusterError::Corrupt(format!(
            "the checkpoint counts {} transfers but history holds {on_disk}",
            ledger.transfer_count()
        )));
    }
    Ok(())
}

/// The checkpoint must vouch for the same chain head as the log's entry it covers (when the log
/// still holds that entry): otherwise one of them is not what this node wrote.
fn check_checkpoint_chains_to_log(
    manifest: &CheckpointManifest,
    log: &LogStore,
) -> Result<(), ClusterError> {
    let index = manifest.last_index;
    let log_holds_entry = log
        .last_purged()
        .is_some_and(|(purged, _, _)| purged == index)
        || (log.first_index().is_some_and(|first| first <= index)
            && log.last_index().is_some_and(|last| index <= last));
    if !log_holds_entry {
        if log.last_index().is_some_and(|last| last < index)
            || log.last_index().is_none() && index > 0
        {
            return Err(ClusterError::Corrupt(format!(
                "checkpoint {} covers entry {index}, but the log ends before it",
                manifest.snapshot_id
            )));
        }
        return Ok(());
    }
    let log_head = log.chain_hash(index).map_err(store_error)?;
    if log_head == manifest.chain_head {
        return Ok(());
    }
    Err(ClusterError::Corrupt(format!(
        "checkpoint {} covers entry {index} with chain head {}, but the log's entry {index} hashes to {}",
        manifest.snapshot_id,
        hex(&manifest.chain_head),
        hex(&log_head),
    )))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How often the checkpoint trigger looks at the log bytes written.
const CHECKPOINT_TRIGGER_INTERVAL_MS: u64 = 250;

/// Triggers a checkpoint once `checkpoint_log_bytes_since_last` log bytes were written since
/// the last trigger (openraft's own policy counts entries only, and entries vary from a few
/// bytes to a megabyte).
pub(crate) fn spawn_checkpoint_trigger(node: Node, config: &NodeConfig) {
    let threshold = config.checkpoint_log_bytes_since_last;
    let written = node.log_bytes_written();
    let runtime = node.consensus_runtime();
    runtime.spawn(async move {
        let mut last = written.load(Ordering::Relaxed);
        let mut interval =
            tokio::time::interval(Duration::from_millis(CHECKPOINT_TRIGGER_INTERVAL_MS));
        loop {
            interval.tick().await;
            if node.is_stopped() {
                return;
            }
            let now = written.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= threshold {
                last = now;
                if let Err(error) = node.trigger_checkpoint().await {
                    tracing::warn!(%error, "checkpoint trigger failed");
                }
            }
        }
    });
}
