//! `audit::verify` end to end on data directories written by `DiskNode` (the store driven as
//! the node drives it) on the OS file system: clean directories pass with and without a
//! checkpoint and with the log compacted behind it, and damage to the log, the history or the
//! checkpoint fails, named by entry, file and offset where one is to blame.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{sample_proposal, tiny_history_options, DiskNode, NodeOptions, FUNDING, PLAYER_A};
use croupier_core::codec::decode_checkpoint;
use croupier_core::operators::{OperatorAction, OPERATOR_RECORD_BYTES};
use croupier_core::MemoryLedger;
use croupier_store::audit::{self, AuditError, AuditSummary};
use croupier_store::fs::OsFileSystem;
use croupier_store::history::{OPERATOR_FRAME_BYTES, TRANSFER_FRAME_BYTES};
use croupier_store::records::RECORD_SEGMENT_HEADER_BYTES;
use croupier_store::{
    CheckpointStore, DataDirLock, LogOptions, LogRecord, LogStore, RecordKind, RecordLog, RecordLogOptions,
    RECORD_FRAME_OVERHEAD_BYTES,
};
use tempfile::TempDir;

/// Proposals after the genesis one (entries 0 and 1 are membership and blank; proposal `n` is
/// entry `n + 2`).
const PROPOSALS: u64 = 24;
const LOG_SEGMENT_BYTES: u64 = 600;

fn entry_of(proposal: u64) -> u64 {
    proposal + 2
}

fn options() -> NodeOptions {
    NodeOptions { history: tiny_history_options(), log: Some(LogOptions { segment_size_max_bytes: LOG_SEGMENT_BYTES }) }
}

/// A stopped node's data directory and the model of what it holds.
struct Built {
    dir: TempDir,
    node: DiskNode,
    model: MemoryLedger,
}

impl Built {
    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Applies proposals `0..=last` (taking a checkpoint after proposal `checkpoint_after`, and
/// compacting the log behind it when asked), then stops the node.
fn build(last: u64, checkpoint_after: Option<u64>, compact: bool) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let node = DiskNode::os(dir.path(), options());
    let mut built = Built { dir, node, model: MemoryLedger::new() };
    for n in 0..=last {
        propose(&mut built, n);
        if checkpoint_after == Some(n) {
            built.node.checkpoint().unwrap();
            if compact {
                built.node.compact().unwrap();
            }
        }
    }
    built.node.stop();
    built
}

fn propose(built: &mut Built, n: u64) {
    let proposal = sample_proposal(n);
    let (index, results) = built.node.propose(&proposal).unwrap();
    assert_eq!(index, entry_of(n));
    assert_eq!(results, built.model.apply(proposal.timestamp_ns, &proposal.commands), "proposal {n}");
}

fn verify(dir: &Path) -> AuditSummary {
    audit::verify(dir).unwrap_or_else(|e| panic!("the audit must pass: {e}"))
}

fn audit_error(dir: &Path) -> AuditError {
    audit::verify(dir).expect_err("the audit must fail")
}

fn history_records(model: &MemoryLedger) -> u64 {
    let history = &model.history;
    (history.transfers().len() + history.wallet_records().len() + history.operator_actions().len()) as u64
}

/// The summary's sums and counts are the model's.
fn assert_totals(summary: &AuditSummary, model: &MemoryLedger) {
    let totals = model.totals();
    assert_eq!(summary.per_ledger, totals.per_ledger);
    assert_eq!((summary.accounts, summary.transfers), (totals.accounts, totals.transfers));
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

/// The segment file holding position `position` of the record log in `dir`, and the offset of
/// that position in it.
fn record_location(dir: &Path, position: u64) -> (PathBuf, u64) {
    let options = RecordLogOptions::default();
    let (log, _, _) = RecordLog::open(Arc::new(OsFileSystem), dir, options).unwrap();
    let segment = log
        .segments()
        .into_iter()
        .find(|s| s.first_position <= position && position < s.end_position)
        .expect("a segment holds the position");
    (segment.path, RECORD_SEGMENT_HEADER_BYTES as u64 + position - segment.first_position)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn replace_dir(dir: &Path, with: &Path) {
    std::fs::remove_dir_all(dir).unwrap();
    copy_dir(with, dir);
}

#[test]
fn clean_data_dir_without_a_checkpoint_passes_and_sums_balances() {
    let built = build(PROPOSALS, None, false);
    let summary = verify(built.path());
    let last = entry_of(PROPOSALS);
    assert_eq!((summary.first_index, summary.last_index), (Some(0), Some(last)));
    assert_eq!(summary.entries_verified, last + 1);
    assert_eq!(summary.entries_replayed, PROPOSALS + 1);
    assert_eq!(summary.chain_head, built.node.chain_hash(last));
    assert_eq!(summary.checkpoint, None);
    assert_eq!(summary.history_records_verified, history_records(&built.model));
    assert_totals(&summary, &built.model);
    // The workload reaches what it is meant to: linked chains, posts, expiries, the wallet.
    let kinds: Vec<&str> = built.model.history.records().iter().map(|r| r.event_type()).collect();
    for kind in ["pending_posted", "pending_expired", "wallet_bet", "wallet_win", "wallet_rollback"] {
        assert!(kinds.contains(&kind), "the workload never produced {kind}: {kinds:?}");
    }
}

#[test]
fn clean_data_dir_with_a_checkpoint_is_checked_by_a_replay_from_genesis() {
    let built = build(PROPOSALS, Some(12), false);
    let summary = verify(built.path());
    assert_eq!(summary.checkpoint.as_ref().map(|c| c.last_index), Some(entry_of(12)));
    assert!(summary.genesis_replay_matches_checkpoint);
    assert_eq!(summary.entries_replayed, PROPOSALS + 1);
    assert_eq!(summary.history_records_verified, history_records(&built.model));
    assert_totals(&summary, &built.model);
}

#[test]
fn clean_data_dir_with_the_log_compacted_behind_the_checkpoint_passes() {
    let mut at_checkpoint = MemoryLedger::new();
    for n in 0..=12 {
        let proposal = sample_proposal(n);
        at_checkpoint.apply(proposal.timestamp_ns, &proposal.commands);
    }
    let built = build(PROPOSALS, Some(12), true);
    let summary = verify(built.path());
    let checkpoint = summary.checkpoint.as_ref().expect("a checkpoint");
    assert_eq!(checkpoint.last_index, entry_of(12));
    assert_eq!(checkpoint.file, built.node.checkpoint_dir().join(format!("hot-{:020}.ckpt", entry_of(12))));
    assert!(!summary.genesis_replay_matches_checkpoint, "genesis is no longer on disk");
    assert!(summary.first_index.is_some_and(|first| first > 0), "{:?}", summary.first_index);
    assert_eq!(summary.entries_replayed, PROPOSALS - 12);
    assert_eq!(summary.history_transfers_checked, at_checkpoint.history.transfers().len() as u64);
    assert_eq!(summary.history_records_verified, history_records(&built.model) - history_records(&at_checkpoint));
    assert_totals(&summary, &built.model);
}

/// Regression: with every entry compacted away the audit started from genesis (an empty
/// ledger) and found the checkpoint "not the state the log produces".
#[test]
fn every_entry_compacted_behind_the_checkpoint_passes() {
    let built = build(PROPOSALS, Some(PROPOSALS), true);
    let summary = verify(built.path());
    assert_eq!(summary.last_index, None);
    assert_eq!(summary.entries_replayed, 0);
    assert_eq!(summary.chain_head, built.node.chain_hash(entry_of(PROPOSALS)));
    assert_eq!(summary.history_transfers_checked, built.model.history.transfers().len() as u64);
    assert_totals(&summary, &built.model);
}

/// Below a checkpoint's ends, history was made durable: damage there is corruption.
#[test]
fn flipped_byte_in_a_checkpointed_transfer_record_fails_naming_its_position() {
    for compact in [false, true] {
        let built = build(PROPOSALS, Some(PROPOSALS), compact);
        let transfers_dir = built.node.history_dir().join("transfers");
        let (file, offset) = record_location(&transfers_dir, 7 * TRANSFER_FRAME_BYTES);
        flip_byte(&file, offset + RECORD_FRAME_OVERHEAD_BYTES as u64 + 20);
        let error = audit_error(built.path());
        assert_eq!(error.file.as_deref(), Some(file.as_path()), "{error}");
        assert!(error.offset.is_some_and(|at| at <= offset), "{error}");
    }
}

/// Rewrites operator action `seq` as a forger who knows the format would: an edited field, the
/// record's own hash recomputed, a fresh frame checksum.
fn forge_operator_action(dir: &Path, seq: u64) {
    let (file, offset) = record_location(&dir.join("operators"), seq * OPERATOR_FRAME_BYTES);
    let mut bytes = std::fs::read(&file).unwrap();
    let payload_at = offset as usize + RECORD_FRAME_OVERHEAD_BYTES;
    let payload = &mut bytes[payload_at..payload_at + OPERATOR_RECORD_BYTES];
    let mut action = OperatorAction::decode(payload).expect("an operator action");
    action.items += 1;
    action.hash = action.computed_hash();
    let mut encoded = Vec::new();
    action.encode(&mut encoded);
    payload.copy_from_slice(&encoded);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[offset as usize..offset as usize + 4]), &encoded);
    bytes[offset as usize + 4..offset as usize + 8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
}

/// The operator audit trail below a checkpoint: a flipped byte fails the record checksum; a
/// forged record with a fresh checksum and hash fails the replay's byte comparison or, with the
/// log compacted, the trail's hash chain at the next record.
#[test]
fn an_edited_operator_action_fails_the_audit() {
    for compact in [false, true] {
        let built = build(PROPOSALS, Some(PROPOSALS), compact);
        assert!(built.model.history.operator_actions().len() > 3);
        let (file, offset) = record_location(&built.node.history_dir().join("operators"), OPERATOR_FRAME_BYTES);
        flip_byte(&file, offset + RECORD_FRAME_OVERHEAD_BYTES as u64 + 20);
        let error = audit_error(built.path());
        assert_eq!(error.file.as_deref(), Some(file.as_path()), "compact {compact}: {error}");

        let built = build(PROPOSALS, Some(PROPOSALS), compact);
        forge_operator_action(&built.node.history_dir(), 2);
        let error = audit_error(built.path()).to_string();
        let expected = if compact { "operator audit trail is broken at action 3" } else { "operators history" };
        assert!(error.contains(expected), "compact {compact}: {error}");
    }
}

#[test]
fn the_audit_reports_the_operator_trail_it_checked() {
    let built = build(PROPOSALS, Some(12), true);
    let summary = verify(built.path());
    let trail = built.model.ledger.operator_chain();
    assert_eq!((summary.operator_actions, summary.operator_trail_head), (trail.count, trail.head));
    assert_eq!(summary.operator_actions_checked, 6, "entries 1, 3, .., 11 before the checkpoint");
}

/// Above the last checkpoint, history is rebuilt from the log (it was never fsynced, and the
/// log entries that wrote it are durable): damage there is cut off, reported, and the replay
/// restores every record.
#[test]
fn flipped_byte_in_history_after_the_checkpoint_is_cut_and_rebuilt_by_replay() {
    let built = build(PROPOSALS, None, false);
    let transfers_dir = built.node.history_dir().join("transfers");
    let (file, offset) = record_location(&transfers_dir, 7 * TRANSFER_FRAME_BYTES);
    flip_byte(&file, offset + RECORD_FRAME_OVERHEAD_BYTES as u64 + 20);
    let summary = verify(built.path());
    assert_totals(&summary, &built.model);
    assert!(summary.history_cuts.iter().any(|cut| cut.file == file), "{:?}", summary.history_cuts);
}

#[test]
fn flipped_byte_in_the_hot_file_fails() {
    for compact in [false, true] {
        let built = build(PROPOSALS, Some(12), compact);
        let hot = built.node.checkpoint_dir().join(format!("hot-{:020}.ckpt", entry_of(12)));
        flip_byte(&hot, 60);
        let error = audit_error(built.path());
        assert_eq!(error.file.as_deref(), Some(hot.as_path()), "{error}");
        assert!(error.reason.contains("SHA-256"), "{error}");
    }
}

/// Rewrites the checkpoint in force with `PLAYER_A` credited 50 more and `FUNDING` debited 50
/// more (totals still balance, so the hot state decodes), under a manifest that vouches for it.
fn alter_checkpoint_balances(built: &Built) -> PathBuf {
    /// Checkpoint layout (croupier_core::codec): a 41-byte header, then per account: id u128,
    /// ledger u64, kind u8, flags u16, flags at creation u16, debits pending, debits posted,
    /// credits pending, credits posted (u128 each), timestamp u64, newest transfer u64.
    const HEADER_BYTES: usize = 41;
    const ACCOUNT_BYTES: usize = 109;
    const DEBITS_POSTED_AT: usize = 45;
    const CREDITS_POSTED_AT: usize = 77;
    let store = CheckpointStore::open(Arc::new(OsFileSystem), built.node.checkpoint_dir()).unwrap();
    let mut manifest = store.current().unwrap().expect("a checkpoint");
    let mut bytes = store.load_hot(&manifest).unwrap();
    let count = decode_checkpoint(&bytes).unwrap().account_count();
    let mut add = |account: u128, field: usize, delta: u128| {
        let at = (0..count)
            .map(|slot| HEADER_BYTES + slot * ACCOUNT_BYTES)
            .find(|&at| u128::from_le_bytes(bytes[at..at + 16].try_into().unwrap()) == account)
            .expect("the account is in the checkpoint")
            + field;
        let value = u128::from_le_bytes(bytes[at..at + 16].try_into().unwrap()) + delta;
        bytes[at..at + 16].copy_from_slice(&value.to_le_bytes());
    };
    add(PLAYER_A, CREDITS_POSTED_AT, 50);
    add(FUNDING, DEBITS_POSTED_AT, 50);
    let altered = decode_checkpoint(&bytes).expect("a consistent alteration still decodes");
    assert_eq!(altered.account(PLAYER_A).unwrap().credits_posted, {
        let original = decode_checkpoint(&store.load_hot(&manifest).unwrap()).unwrap();
        original.account(PLAYER_A).unwrap().credits_posted + 50
    });
    let mut hot = store.begin(manifest.last_index).unwrap();
    std::io::Write::write_all(&mut hot, &bytes).unwrap();
    store.commit(hot, &mut manifest).unwrap();
    store.hot_path(&manifest)
}

#[test]
fn consistently_altered_balances_in_the_hot_file_fail_the_history_check() {
    let built = build(PROPOSALS, Some(12), true);
    let hot = alter_checkpoint_balances(&built);
    let error = audit_error(built.path());
    assert_eq!(error.file.as_deref(), Some(hot.as_path()), "{error}");
    assert!(error.reason.contains("disagrees with history"), "{error}");
}

#[test]
fn consistently_altered_balances_in_the_hot_file_fail_the_replay_from_genesis() {
    let built = build(PROPOSALS, Some(12), false);
    alter_checkpoint_balances(&built);
    let error = audit_error(built.path());
    assert_eq!(error.index, Some(entry_of(12)), "{error}");
    assert!(error.reason.contains("not the state the log produces"), "{error}");
}

/// The node crashed before it wrote the history of the last entries (their log entries were
/// durable): the audit keeps the records its replay yields in memory and passes.
#[test]
fn missing_history_tail_passes() {
    for checkpoint in [None, Some(6)] {
        let dir = tempfile::tempdir().unwrap();
        let node = DiskNode::os(dir.path(), options());
        let mut built = Built { dir, node, model: MemoryLedger::new() };
        for n in 0..=10 {
            propose(&mut built, n);
            if checkpoint == Some(n) {
                built.node.checkpoint().unwrap();
            }
        }
        let records_then = history_records(&built.model);
        built.node.stop();
        let saved = tempfile::tempdir().unwrap();
        for name in ["history", "events"] {
            copy_dir(&built.path().join(name), &saved.path().join(name));
        }
        built.node.restart().unwrap();
        for n in 11..=PROPOSALS {
            propose(&mut built, n);
        }
        built.node.stop();
        for name in ["history", "events"] {
            replace_dir(&built.path().join(name), &saved.path().join(name));
        }
        let summary = verify(built.path());
        assert_eq!(summary.history_records_verified, records_then, "checkpoint {checkpoint:?}");
        assert_totals(&summary, &built.model);
        // The node recovers from the same directory and reaches the same state.
        built.node.restart().unwrap();
        let expected = built.model.checkpoint();
        let mut found = Vec::new();
        croupier_core::codec::encode_checkpoint(&built.node.ledger().freeze(), &mut found).unwrap();
        assert_eq!(found, expected);
    }
}

#[test]
fn flipped_byte_in_the_final_log_record_fails_the_audit() {
    let built = build(PROPOSALS, None, false);
    let last = entry_of(PROPOSALS);
    let (file, offset) = built.node_log_location(last);
    flip_byte(&file, offset + 70);
    let error = audit_error(built.path());
    assert_eq!((error.index, error.file, error.offset), (Some(last), Some(file), Some(offset)));
    assert!(error.reason.contains("not a torn write"), "{}", error.reason);
}

impl Built {
    fn open_log(&self) -> LogStore {
        let options = LogOptions { segment_size_max_bytes: LOG_SEGMENT_BYTES };
        LogStore::open(self.path().join("log"), options).unwrap().0
    }

    fn node_log_location(&self, index: u64) -> (PathBuf, u64) {
        self.open_log().location(index).expect("the entry is in the log")
    }
}

#[test]
fn a_data_dir_whose_lock_is_held_is_refused_naming_the_holder() {
    let built = build(4, None, false);
    let lock = DataDirLock::acquire(built.path()).unwrap();
    let error = audit_error(built.path());
    assert!(error.reason.contains(&std::process::id().to_string()), "{error}");
    drop(lock);
    verify(built.path());
}

#[test]
fn compacted_log_without_a_checkpoint_fails() {
    let built = build(PROPOSALS, None, false);
    built.open_log().purge_through(entry_of(10)).unwrap();
    let error = audit_error(built.path());
    assert!(error.reason.contains("no checkpoint"), "{error}");
}

#[test]
fn checkpoint_older_than_the_compaction_point_leaves_a_gap() {
    let built = build(PROPOSALS, Some(3), false);
    built.open_log().purge_through(entry_of(20)).unwrap();
    let error = audit_error(built.path());
    assert!(error.reason.contains("neither"), "{error}");
}

#[test]
fn checkpoint_that_the_log_does_not_chain_to_is_reported() {
    let built = build(PROPOSALS, Some(9), false);
    let store = CheckpointStore::open(Arc::new(OsFileSystem), built.node.checkpoint_dir()).unwrap();
    let mut manifest = store.current().unwrap().unwrap();
    let bytes = store.load_hot(&manifest).unwrap();
    manifest.chain_head = built.node.chain_hash(entry_of(8));
    let mut hot = store.begin(manifest.last_index).unwrap();
    std::io::Write::write_all(&mut hot, &bytes).unwrap();
    store.commit(hot, &mut manifest).unwrap();
    let (file, offset) = built.node_log_location(entry_of(9));
    let error = audit_error(built.path());
    assert_eq!(
        (error.index, error.file.clone(), error.offset),
        (Some(entry_of(9)), Some(file), Some(offset)),
        "{error}"
    );
}

#[test]
fn flipped_byte_in_an_entry_is_named_with_index_file_and_offset() {
    let built = build(PROPOSALS, None, false);
    let (file, offset) = built.node_log_location(7);
    flip_byte(&file, offset + 70);
    let error = audit_error(built.path());
    assert_eq!((error.index, error.file.clone(), error.offset), (Some(7), Some(file), Some(offset)), "{error}");
    assert!(error.to_string().contains("entry 7"), "{error}");
}

#[test]
fn entry_rewritten_with_a_fresh_crc_breaks_the_chain_at_the_next_entry() {
    let built = build(PROPOSALS, None, false);
    let (file, offset) = built.node_log_location(7);
    let (next_file, next_offset) = built.node_log_location(8);
    // A forger changes a byte of entry 7's payload and recomputes both its checksums (frame
    // format 2: header_crc u32, payload_len u32, body_crc u32, … 61 header bytes, payload, "CRPE").
    let mut bytes = std::fs::read(&file).unwrap();
    let start = offset as usize;
    let payload_len = u32::from_le_bytes(bytes[start + 4..start + 8].try_into().unwrap()) as usize;
    let payload_end = start + 61 + payload_len;
    bytes[payload_end - 20] ^= 0x01;
    let body_crc = crc32c::crc32c(&bytes[start + 61..payload_end + 4]);
    bytes[start + 8..start + 12].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&bytes[start + 4..start + 61]);
    bytes[start..start + 4].copy_from_slice(&header_crc.to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
    let error = audit_error(built.path());
    assert_eq!((error.index, error.file, error.offset), (Some(8), Some(next_file), Some(next_offset)));
    assert!(error.reason.contains("entry 7"), "the message points at the altered predecessor: {}", error.reason);
}

#[test]
fn torn_tail_is_reported_but_does_not_fail_the_audit() {
    let built = build(PROPOSALS, None, false);
    let last_file = built.open_log().segment_files().pop().unwrap();
    let mut bytes = std::fs::read(&last_file).unwrap();
    bytes.extend_from_slice(&[0x55; 13]);
    std::fs::write(&last_file, &bytes).unwrap();
    let summary = verify(built.path());
    assert_eq!(summary.torn_tail.as_ref().map(|t| t.bytes), Some(13));
    assert_eq!(std::fs::metadata(&last_file).unwrap().len(), bytes.len() as u64, "the audit changes nothing");
}

#[test]
fn cleanly_closed_log_whose_final_record_was_cut_fails() {
    let built = build(PROPOSALS, None, false);
    let last = entry_of(PROPOSALS);
    let log = built.open_log();
    let (file, offset) = log.location(last).unwrap();
    log.close().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 13]).unwrap();
    let error = audit_error(built.path());
    assert_eq!((error.index, error.file, error.offset), (Some(last), Some(file), Some(offset)));
    assert!(error.reason.contains("closed cleanly"), "{}", error.reason);
}

#[test]
fn entry_that_is_not_a_proposal_is_named() {
    let built = build(4, None, false);
    let mut log = built.open_log();
    let index = entry_of(5);
    let garbage = LogRecord { index, term: 1, kind: RecordKind::Normal, payload: b"not a proposal".to_vec() };
    log.append(&[garbage]).unwrap();
    log.sync().unwrap();
    let (file, offset) = log.location(index).unwrap();
    drop(log);
    let error = audit_error(built.path());
    assert_eq!((error.index, error.file.clone(), error.offset), (Some(index), Some(file), Some(offset)), "{error}");
}

#[test]
fn missing_data_directory_is_an_error_not_an_empty_pass() {
    let dir = tempfile::tempdir().unwrap();
    let error = audit_error(&dir.path().join("typo"));
    assert!(error.reason.contains("does not exist"), "{error}");
}

#[test]
fn empty_data_directory_passes_with_an_empty_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let summary = verify(dir.path());
    assert_eq!((summary.entries_verified, summary.accounts, summary.last_index), (0, 0, None));
}
