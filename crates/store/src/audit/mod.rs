//! Offline audit of a stopped node's data directory (`croupier audit verify`).
//!
//! 1. Every log frame and the whole hash chain are verified, and the log must continue the
//!    checkpoint in force (its chain head).
//! 2. The checkpoint's hot state must decode, hold every invariant and agree with a replay of
//!    every transfer in history since genesis (`Ledger::check_against_history`, streaming).
//! 3. The log entries are applied again — from genesis when the log still starts there (then
//!    the state at the checkpoint's entry must encode to exactly the checkpoint's bytes), else
//!    from the checkpoint — and every history record the replay yields must equal, byte for
//!    byte, the record the node wrote at that place. Records the node had not written yet (a
//!    crash) are kept in memory for the rest of the replay.
//!
//! The audit takes the data directory's lock (it refuses a directory a running node holds)
//! and performs the same crash recovery the node would on its history (cutting a torn tail);
//! it never changes the log or a checkpoint.
//!
//! This is the only module of the store that knows what a ledger payload means.

mod replay;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use croupier_core::codec::decode_checkpoint;
use croupier_core::ledger::LedgerSums;
use croupier_core::operators::verify_chain;
use croupier_core::Ledger;

use crate::checkpoint::{CheckpointManifest, CheckpointStore};
use crate::fs::{FileSystem, OsFileSystem};
use crate::history::{HistoryOptions, HistoryReader, OpenedHistory};
use crate::log::{LogStore, TornTail};
use crate::{ChainHash, DataDir, DataDirLock, StoreError, GENESIS_CHAIN_HASH};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointUsed {
    pub file: PathBuf,
    pub last_index: u64,
    pub last_term: u64,
    pub chain_head: ChainHash,
}

/// Operator actions read at a time by the trail check.
const OPERATOR_CHUNK_ACTIONS: usize = 4_096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSummary {
    /// Entries on disk whose frame and chain link were verified.
    pub entries_verified: u64,
    /// Entries applied again to reach the final state.
    pub entries_replayed: u64,
    /// First and last entry on disk (the first may lie behind the purge point).
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    /// Hash of the last entry (the checkpoint's chain head when the log holds none after it).
    pub chain_head: ChainHash,
    pub checkpoint: Option<CheckpointUsed>,
    /// True when the log still starts at genesis and a replay from there produced the
    /// checkpoint's bytes at its entry.
    pub genesis_replay_matches_checkpoint: bool,
    /// History records (transfers and wallet decisions) checked byte for byte against replay.
    pub history_records_verified: u64,
    /// Transfers checked against the checkpoint's balances by the streaming history check.
    pub history_transfers_checked: u64,
    /// Operator actions before the checkpoint whose hash chain was checked up to the head the
    /// checkpoint carries (those after it are checked byte for byte by the replay).
    pub operator_actions_checked: u64,
    /// The operator audit trail of the final state: its length and the hash of its last record.
    pub operator_actions: u64,
    pub operator_trail_head: [u8; 32],
    /// A torn write at the end of the last segment: not part of the log (the node cuts it off
    /// when it starts).
    pub torn_tail: Option<TornTail>,
    /// History after the last checkpoint that was cut (never fsynced, or damaged): the replay
    /// rebuilt it from the log.
    pub history_cuts: Vec<TornTail>,
    pub accounts: u64,
    pub transfers: u64,
    pub per_ledger: Vec<LedgerSums>,
}

impl AuditSummary {
    pub fn chain_head_hex(&self) -> String {
        hex::encode(self.chain_head)
    }

    pub fn operator_trail_head_hex(&self) -> String {
        hex::encode(self.operator_trail_head)
    }
}

/// Why the audit failed: the first bad entry (when one is to blame), its file and offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}{}", describe_location(*index, file.as_deref(), *offset))]
pub struct AuditError {
    pub index: Option<u64>,
    pub file: Option<PathBuf>,
    pub offset: Option<u64>,
    pub reason: String,
}

fn describe_location(index: Option<u64>, file: Option<&Path>, offset: Option<u64>) -> String {
    let mut parts = Vec::new();
    if let Some(index) = index {
        parts.push(format!("entry {index}"));
    }
    if let Some(file) = file {
        parts.push(format!("file {}", file.display()));
    }
    if let Some(offset) = offset {
        parts.push(format!("byte {offset}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

impl AuditError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        AuditError { index: None, file: None, offset: None, reason: reason.into() }
    }

    pub(crate) fn at_entry(log: &LogStore, index: u64, reason: impl Into<String>) -> Self {
        let (file, offset) = log.location(index).map_or((None, None), |(file, offset)| (Some(file), Some(offset)));
        AuditError { index: Some(index), file, offset, reason: reason.into() }
    }

    fn in_file(file: &Path, reason: impl Into<String>) -> Self {
        AuditError { index: None, file: Some(file.to_path_buf()), offset: None, reason: reason.into() }
    }
}

impl From<StoreError> for AuditError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt { file, offset, index, reason } => {
                AuditError { index, file: Some(file), offset: Some(offset), reason }
            }
            StoreError::Io { ref path, .. } => AuditError::in_file(&path.clone(), error.to_string()),
            other => AuditError::new(other.to_string()),
        }
    }
}

/// Audits the data directory of a stopped node.
pub fn verify(data_dir: &Path) -> Result<AuditSummary, AuditError> {
    verify_with(Arc::new(OsFileSystem), data_dir)
}

pub fn verify_with(fs: Arc<dyn FileSystem>, data_dir: &Path) -> Result<AuditSummary, AuditError> {
    let exists = fs.dir_exists(data_dir).map_err(|e| AuditError::in_file(data_dir, format!("cannot read: {e}")))?;
    if !exists {
        return Err(AuditError::in_file(data_dir, "the data directory does not exist"));
    }
    let _lock = DataDirLock::acquire(data_dir).map_err(|e| AuditError::new(e.to_string()))?;
    let layout = DataDir::new(data_dir);
    let checkpoints = CheckpointStore::open(fs.clone(), layout.root().join("checkpoint"))?;
    let manifest = checkpoints.current()?;
    let (log, recovery) = LogStore::open_read_only(fs.clone(), layout.log_dir())?;
    let span = LogSpan::of(&log);
    check_continuity(&log, &span, manifest.as_ref(), checkpoints.dir())?;
    let ends = manifest.as_ref().map(CheckpointManifest::history_ends);
    let history = OpenedHistory::open_for_audit(
        fs,
        &layout.root().join("history"),
        &layout.root().join("events"),
        &HistoryOptions::default(),
        ends,
    )?;
    let mut summary = AuditSummary {
        entries_verified: span.map_or(0, |s| s.last - s.first + 1),
        entries_replayed: 0,
        first_index: span.map(|s| s.first),
        last_index: span.map(|s| s.last),
        chain_head: chain_head(&log, manifest.as_ref()),
        checkpoint: manifest.as_ref().map(|m| CheckpointUsed {
            file: checkpoints.hot_path(m),
            last_index: m.last_index,
            last_term: m.last_term,
            chain_head: m.chain_head,
        }),
        genesis_replay_matches_checkpoint: false,
        history_records_verified: 0,
        history_transfers_checked: 0,
        operator_actions_checked: 0,
        operator_actions: 0,
        operator_trail_head: [0; 32],
        torn_tail: recovery.torn_tail,
        history_cuts: history.cuts.clone(),
        accounts: 0,
        transfers: 0,
        per_ledger: Vec::new(),
    };
    // With every entry compacted away there is nothing to replay from genesis: the state is
    // the checkpoint's (if any; without one, continuity already required an empty log).
    let from_genesis = match span {
        Some(span) => span.starts_at_genesis,
        None => manifest.is_none(),
    };
    let start = if from_genesis {
        // The replay from genesis checks the checkpoint's state against the manifest's hash;
        // the hot file itself (what the node loads on start) must match the manifest too.
        if let Some(manifest) = &manifest {
            checkpoints.load_hot(manifest)?;
        }
        replay::Start::genesis(span.map_or(0, |s| s.first))
    } else {
        let manifest = manifest.as_ref().expect("continuity requires a checkpoint when the log was compacted");
        let ledger = load_checkpoint(&checkpoints, manifest, &history.reader, &mut summary)?;
        replay::Start::checkpoint(ledger, manifest)
    };
    let hot_file = manifest.as_ref().map(|m| checkpoints.hot_path(m));
    let checkpoint = manifest.as_ref().zip(hot_file.as_deref());
    let outcome = replay::run(&log, span, start, &history.reader, checkpoint)?;
    summary.entries_replayed = outcome.entries_replayed;
    summary.history_records_verified = outcome.records_verified;
    summary.genesis_replay_matches_checkpoint = outcome.matched_checkpoint;
    let trail = outcome.ledger.operator_chain();
    (summary.operator_actions, summary.operator_trail_head) = (trail.count, trail.head);
    let totals = outcome.ledger.totals();
    summary.accounts = totals.accounts;
    summary.transfers = totals.transfers;
    summary.per_ledger = totals.per_ledger;
    Ok(summary)
}

/// Decodes the checkpoint's hot state and checks it against every transfer in history up to
/// the checkpoint.
fn load_checkpoint(
    checkpoints: &CheckpointStore,
    manifest: &CheckpointManifest,
    history: &HistoryReader,
    summary: &mut AuditSummary,
) -> Result<Ledger, AuditError> {
    let file = checkpoints.hot_path(manifest);
    let bytes = checkpoints.load_hot(manifest)?;
    let ledger = decode_checkpoint(&bytes)
        .map_err(|e| AuditError::in_file(&file, format!("checkpoint does not decode: {e}")))?;
    let view = history.limited(manifest.history_ends());
    check_operator_trail(&view, &ledger, &file)?;
    summary.operator_actions_checked = ledger.operator_chain().count;
    if view.transfer_count() != ledger.transfer_count() {
        return Err(AuditError::in_file(
            &file,
            format!(
                "the checkpoint counts {} transfers, history holds {}",
                ledger.transfer_count(),
                view.transfer_count()
            ),
        ));
    }
    // A history record that cannot be read is damage to history, not to the checkpoint: name
    // its file and offset rather than the checkpoint's.
    let mut unreadable = None;
    let transfers = replay::stream_transfers(&view).map(|read| {
        read.map_err(|error| {
            let reason = error.to_string();
            unreadable.get_or_insert(error);
            reason
        })
    });
    let checked = ledger.check_against_history(transfers);
    if let Some(error) = unreadable {
        return Err(error.into());
    }
    checked.map_err(|broken| AuditError::in_file(&file, format!("the checkpoint disagrees with history: {broken}")))?;
    summary.history_transfers_checked = ledger.transfer_count();
    Ok(ledger)
}

/// The operator trail up to the checkpoint must be whole and chain to the head the checkpoint
/// carries: a record cut out, reordered or edited breaks the chain.
fn check_operator_trail(view: &HistoryReader, ledger: &Ledger, file: &Path) -> Result<(), AuditError> {
    let chain = ledger.operator_chain();
    if view.operator_action_count() != chain.count {
        let reason = format!(
            "the checkpoint counts {} operator actions, history holds {}",
            chain.count,
            view.operator_action_count()
        );
        return Err(AuditError::in_file(file, reason));
    }
    let (mut head, mut next) = ([0u8; 32], 0u64);
    while next < chain.count {
        let actions = view.operator_actions_from(next, OPERATOR_CHUNK_ACTIONS)?;
        head = verify_chain(head, next, &actions)
            .map_err(|seq| AuditError::in_file(file, format!("the operator audit trail is broken at action {seq}")))?;
        next += actions.len() as u64;
    }
    if head != chain.head {
        return Err(AuditError::in_file(file, "the operator audit trail does not end at the checkpoint's head"));
    }
    Ok(())
}

/// The entries on disk.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogSpan {
    pub(crate) first: u64,
    pub(crate) last: u64,
    first_prev: ChainHash,
    pub(crate) starts_at_genesis: bool,
}

impl LogSpan {
    fn of(log: &LogStore) -> Option<LogSpan> {
        let (first, first_prev) = log.physical_start()?;
        let last = log.last_index()?;
        Some(LogSpan { first, last, first_prev, starts_at_genesis: first_prev == GENESIS_CHAIN_HASH })
    }
}

fn chain_head(log: &LogStore, manifest: Option<&CheckpointManifest>) -> ChainHash {
    match (log.last_index(), manifest) {
        (Some(last), Some(m)) if last <= m.last_index => m.chain_head,
        (Some(_), _) => log.last_chain_hash(),
        (None, Some(m)) => m.chain_head,
        (None, None) => log.last_chain_hash(),
    }
}

/// The checkpoint and the log must together cover every entry from genesis, and the log must
/// chain onto the checkpoint's head.
fn check_continuity(
    log: &LogStore,
    span: &Option<LogSpan>,
    manifest: Option<&CheckpointManifest>,
    checkpoint_dir: &Path,
) -> Result<(), AuditError> {
    let Some(span) = span else {
        return check_compacted_log(log, manifest, checkpoint_dir);
    };
    let Some(m) = manifest else {
        if !span.starts_at_genesis {
            let reason = format!(
                "the log starts at entry {} (compacted) and there is no checkpoint covering the entries before it",
                span.first
            );
            return Err(AuditError::at_entry(log, span.first, reason));
        }
        return Ok(());
    };
    let covered = m.last_index;
    if covered + 1 < span.first {
        let reason = format!(
            "entries {}..{} are in neither the checkpoint (through {covered}) nor the log (from {})",
            covered + 1,
            span.first,
            span.first
        );
        return Err(AuditError {
            index: Some(covered + 1),
            file: Some(checkpoint_dir.to_path_buf()),
            offset: None,
            reason,
        });
    }
    if covered + 1 == span.first && span.first_prev != m.chain_head {
        return Err(AuditError::at_entry(
            log,
            span.first,
            "the first log entry does not chain to the checkpoint's chain head",
        ));
    }
    if covered >= span.first && covered <= span.last {
        let hash = log.chain_hash(covered)?;
        if hash != m.chain_head {
            let reason = format!(
                "the checkpoint records chain head {} but this entry hashes to {}",
                hex::encode(m.chain_head),
                hex::encode(hash)
            );
            return Err(AuditError::at_entry(log, covered, reason));
        }
    }
    Ok(())
}

/// No entry on disk: whatever was purged must be covered by the checkpoint.
fn check_compacted_log(
    log: &LogStore,
    manifest: Option<&CheckpointManifest>,
    checkpoint_dir: &Path,
) -> Result<(), AuditError> {
    match (log.last_purged(), manifest) {
        (None, _) => Ok(()),
        (Some((index, _, _)), None) => Err(AuditError::in_file(
            checkpoint_dir,
            format!("the log was compacted through entry {index} and no checkpoint covers it"),
        )),
        (Some((index, _, hash)), Some(m)) => {
            if index > m.last_index {
                let reason = format!(
                    "entries {}..={index} were compacted away but the checkpoint covers only through {}",
                    m.last_index + 1,
                    m.last_index
                );
                Err(AuditError::in_file(checkpoint_dir, reason))
            } else if index == m.last_index && hash != m.chain_head {
                Err(AuditError::in_file(
                    checkpoint_dir,
                    format!("the checkpoint's chain head does not match the hash of purged entry {index}"),
                ))
            } else {
                Ok(())
            }
        }
    }
}
