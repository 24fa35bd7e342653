//! Offline audit of a stopped node's data directory (`croupier audit verify`): verifies every
//! frame and the whole hash chain, checks that the log continues the latest snapshot, replays
//! the ledger from that snapshot (or from genesis), checks the ledger's invariants, and — when
//! the log still starts at genesis — checks that a replay from genesis reaches exactly the
//! snapshot's state and exactly the same final state. Nothing on disk is changed.
//!
//! This is the only module of the store that knows what a ledger payload means.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use croupier_core::codec::{decode_ledger, decode_proposal, encode_ledger};
use croupier_core::ledger::LedgerSums;
use croupier_core::Ledger;
use sha2::{Digest, Sha256};

use crate::fs::{FileSystem, OsFileSystem};
use crate::log::{LogStore, TornTail};
use crate::snapshot::{LoadedSnapshot, SnapshotStore};
use crate::{ChainHash, DataDir, RecordKind, StoreError, GENESIS_CHAIN_HASH};

/// Entries read from disk at a time while replaying (bounds memory with ~1 MB entries).
const REPLAY_CHUNK_ENTRIES: u64 = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotUsed {
    pub file: PathBuf,
    pub last_index: u64,
    pub last_term: u64,
    pub chain_head: ChainHash,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSummary {
    /// Entries on disk whose frame and chain link were verified.
    pub entries_verified: u64,
    /// Entries applied on top of the snapshot (or from genesis) to reach the final state.
    pub entries_replayed: u64,
    /// First and last entry on disk (the first may lie behind the purge point).
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    /// Hash of the last entry (the snapshot's chain head when the log holds none after it).
    pub chain_head: ChainHash,
    pub snapshot: Option<SnapshotUsed>,
    /// True when the log still starts at genesis and a replay from there matched the
    /// snapshot byte for byte at its index and the final state.
    pub genesis_replay_matches_snapshot: bool,
    /// A torn write at the end of the last segment: not part of the log (the node cuts it off
    /// when it starts).
    pub torn_tail: Option<TornTail>,
    pub accounts: u64,
    pub transfers: u64,
    pub per_ledger: Vec<LedgerSums>,
}

impl AuditSummary {
    pub fn chain_head_hex(&self) -> String {
        hex::encode(self.chain_head)
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
    fn new(reason: impl Into<String>) -> Self {
        AuditError { index: None, file: None, offset: None, reason: reason.into() }
    }

    fn at_entry(log: &LogStore, index: u64, reason: impl Into<String>) -> Self {
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
    let layout = DataDir::new(data_dir);
    let snapshot = SnapshotStore::open_read_only(Arc::clone(&fs), layout.snapshot_dir()).load_latest_file()?;
    let (log, recovery) = LogStore::open_read_only(fs, layout.log_dir())?;
    let span = LogSpan::of(&log);
    check_continuity(&log, &span, snapshot.as_ref(), &layout)?;

    let mut summary = AuditSummary {
        entries_verified: span.map_or(0, |s| s.last - s.first + 1),
        entries_replayed: 0,
        first_index: span.map(|s| s.first),
        last_index: span.map(|s| s.last),
        chain_head: chain_head(&log, snapshot.as_ref()),
        snapshot: snapshot.as_ref().map(|s| SnapshotUsed {
            file: s.file.clone(),
            last_index: s.meta.last_index,
            last_term: s.meta.last_term,
            chain_head: s.meta.chain_head,
        }),
        genesis_replay_matches_snapshot: false,
        torn_tail: recovery.torn_tail,
        accounts: 0,
        transfers: 0,
        per_ledger: Vec::new(),
    };

    let (ledger, replay_from, snapshot_check) = match &snapshot {
        Some(loaded) => {
            let ledger = decode_ledger(&loaded.data).map_err(|e| {
                AuditError::in_file(&loaded.file, format!("snapshot data does not decode as a ledger: {e}"))
            })?;
            ledger.check_invariants().map_err(|broken| {
                AuditError::in_file(&loaded.file, format!("snapshot ledger breaks an invariant: {broken}"))
            })?;
            let check = SnapshotCheck {
                file: loaded.file.clone(),
                last_index: loaded.meta.last_index,
                data_sha256: Sha256::digest(&loaded.data).into(),
            };
            (ledger, loaded.meta.last_index + 1, Some(check))
        }
        None => (Ledger::new(), span.map_or(0, |s| s.first), None),
    };
    drop(snapshot);

    let (ledger, replayed) = replay(&log, ledger, replay_from, span, None)?;
    ledger
        .check_invariants()
        .map_err(|broken| AuditError::new(format!("the replayed ledger breaks an invariant: {broken}")))?;
    summary.entries_replayed = replayed;
    let totals = ledger.totals();
    summary.accounts = totals.accounts;
    summary.transfers = totals.transfers;
    summary.per_ledger = totals.per_ledger;
    let final_state = state_hash(&ledger);
    drop(ledger);

    if let (Some(check), Some(span)) = (snapshot_check, span) {
        if span.starts_at_genesis && check.last_index <= span.last {
            cross_check_from_genesis(&log, span, &check, final_state)?;
            summary.genesis_replay_matches_snapshot = true;
        }
    }
    Ok(summary)
}

/// The entries on disk.
#[derive(Clone, Copy, Debug)]
struct LogSpan {
    first: u64,
    last: u64,
    first_prev: ChainHash,
    starts_at_genesis: bool,
}

impl LogSpan {
    fn of(log: &LogStore) -> Option<LogSpan> {
        let (first, first_prev) = log.physical_start()?;
        let last = log.last_index()?;
        Some(LogSpan { first, last, first_prev, starts_at_genesis: first_prev == GENESIS_CHAIN_HASH })
    }
}

struct SnapshotCheck {
    file: PathBuf,
    last_index: u64,
    data_sha256: [u8; 32],
}

fn chain_head(log: &LogStore, snapshot: Option<&LoadedSnapshot>) -> ChainHash {
    match (log.last_index(), snapshot) {
        (Some(last), Some(s)) if last <= s.meta.last_index => s.meta.chain_head,
        (Some(_), _) => log.last_chain_hash(),
        (None, Some(s)) => s.meta.chain_head,
        (None, None) => log.last_chain_hash(),
    }
}

/// The snapshot and the log must together cover every entry from genesis, and the log must
/// chain onto the snapshot's head.
fn check_continuity(
    log: &LogStore,
    span: &Option<LogSpan>,
    snapshot: Option<&LoadedSnapshot>,
    layout: &DataDir,
) -> Result<(), AuditError> {
    let purged = log.last_purged();
    let Some(span) = span else {
        return match (purged, snapshot) {
            (None, _) => Ok(()),
            (Some((index, _, _)), None) => Err(AuditError::in_file(
                &layout.log_dir(),
                format!("the log was compacted through entry {index} and no snapshot covers it"),
            )),
            (Some((index, _, hash)), Some(s)) => {
                let covered = s.meta.last_index;
                if index > covered {
                    Err(AuditError::in_file(
                        &s.file,
                        format!(
                            "entries {}..={index} were compacted away but the snapshot covers only through {covered}",
                            covered + 1
                        ),
                    ))
                } else if index == covered && hash != s.meta.chain_head {
                    Err(AuditError::in_file(
                        &s.file,
                        format!("the snapshot's chain head does not match the hash of purged entry {index}"),
                    ))
                } else {
                    Ok(())
                }
            }
        };
    };
    let Some(s) = snapshot else {
        if !span.starts_at_genesis {
            return Err(AuditError::at_entry(
                log,
                span.first,
                format!(
                    "the log starts at entry {} (compacted) and there is no snapshot covering the entries before it",
                    span.first
                ),
            ));
        }
        return Ok(());
    };
    let covered = s.meta.last_index;
    if covered + 1 < span.first {
        return Err(AuditError {
            index: Some(covered + 1),
            file: Some(s.file.clone()),
            offset: None,
            reason: format!(
                "entries {}..{} are in neither the snapshot (through {covered}) nor the log (from {})",
                covered + 1,
                span.first,
                span.first
            ),
        });
    }
    if covered + 1 == span.first && span.first_prev != s.meta.chain_head {
        return Err(AuditError::at_entry(
            log,
            span.first,
            "the first log entry does not chain to the snapshot's chain head",
        ));
    }
    if covered >= span.first && covered <= span.last {
        let hash = log.chain_hash(covered)?;
        if hash != s.meta.chain_head {
            return Err(AuditError::at_entry(
                log,
                covered,
                format!(
                    "the snapshot {} records chain head {} but this entry hashes to {}",
                    s.file.display(),
                    hex::encode(s.meta.chain_head),
                    hex::encode(hash)
                ),
            ));
        }
    }
    Ok(())
}

/// A check to run on the ledger right after applying the entry with this index.
type CheckAt<'a> = (u64, &'a mut dyn FnMut(&Ledger) -> Result<(), AuditError>);

/// Applies every Normal entry with index `from..` on disk; `stop_at` gives a callback at one
/// index (after applying it). Returns the ledger and the number of entries applied.
fn replay(
    log: &LogStore,
    mut ledger: Ledger,
    from: u64,
    span: Option<LogSpan>,
    mut stop_at: Option<CheckAt<'_>>,
) -> Result<(Ledger, u64), AuditError> {
    let Some(span) = span else { return Ok((ledger, 0)) };
    let mut replayed = 0;
    let mut index = from.max(span.first);
    while index <= span.last {
        let to = (index + REPLAY_CHUNK_ENTRIES).min(span.last + 1);
        for record in log.read_physical(index, to)? {
            if record.kind == RecordKind::Normal {
                let proposal = decode_proposal(&record.payload).map_err(|e| {
                    AuditError::at_entry(log, record.index, format!("entry payload does not decode as a proposal: {e}"))
                })?;
                let applied =
                    catch_unwind(AssertUnwindSafe(|| ledger.apply(proposal.timestamp_ns, &proposal.commands)));
                if applied.is_err() {
                    return Err(AuditError::at_entry(log, record.index, "the ledger panicked applying this entry"));
                }
                replayed += 1;
            }
            if let Some((at, check)) = stop_at.as_mut() {
                if *at == record.index {
                    check(&ledger)?;
                }
            }
        }
        index = to;
    }
    Ok((ledger, replayed))
}

/// Replays from genesis: the state at the snapshot's index must encode to exactly the snapshot
/// data, and the final state must equal the one reached from the snapshot.
fn cross_check_from_genesis(
    log: &LogStore,
    span: LogSpan,
    check: &SnapshotCheck,
    final_state: [u8; 32],
) -> Result<(), AuditError> {
    let snapshot_mismatch = |index: Option<u64>| {
        AuditError {
        index,
        file: Some(check.file.clone()),
        offset: None,
        reason: format!(
            "the snapshot is not the state the log produces: replaying from genesis through entry {} gives different bytes",
            check.last_index
        ),
    }
    };
    if check.last_index < span.first {
        // The snapshot sits just before the first entry: it must be the empty ledger.
        if state_hash(&Ledger::new()) != check.data_sha256 {
            return Err(snapshot_mismatch(Some(check.last_index)));
        }
    }
    let mut at_snapshot = |ledger: &Ledger| {
        if state_hash(ledger) == check.data_sha256 {
            Ok(())
        } else {
            Err(snapshot_mismatch(Some(check.last_index)))
        }
    };
    let (ledger, _) = replay(log, Ledger::new(), span.first, Some(span), Some((check.last_index, &mut at_snapshot)))?;
    if state_hash(&ledger) != final_state {
        return Err(AuditError::new("replaying from genesis and replaying from the snapshot end in different states"));
    }
    Ok(())
}

fn state_hash(ledger: &Ledger) -> [u8; 32] {
    let mut bytes = Vec::new();
    encode_ledger(ledger, &mut bytes);
    Sha256::digest(&bytes).into()
}
