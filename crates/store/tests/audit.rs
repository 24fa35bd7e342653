//! `audit::verify` end to end on data directories built by hand from real ledger proposals
//! (log, history and checkpoint written as the node writes them): replay from genesis or a
//! checkpoint, cross-checks, and tampering named by entry/file/offset.

use std::path::Path;
use std::sync::Arc;

use croupier_core::codec::encode_proposal;
use croupier_core::command::Proposal;
use croupier_core::{
    AccountFlags, AccountKind, Command, LedgerCode, MemoryLedger, NewAccount, NewTransfer, TransferFlags,
};
use croupier_store::audit::{self, AuditError};
use croupier_store::fs::OsFileSystem;
use croupier_store::{
    CheckpointManifest, CheckpointStore, DataDir, HistoryOptions, LogOptions, LogRecord, LogStore, OpenedHistory,
    RecordKind,
};

const SMALL_SEGMENT_BYTES: u64 = 600;
const PLAYER: u128 = 1;
const CLEARING: u128 = 2;
const OPERATOR: u128 = 3;
/// Entries 0 (membership) and 1 (blank) carry no proposal; ledger entries start at 2.
const LAST_INDEX: u64 = 25;

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

fn account(id: u128, kind: AccountKind, flags: AccountFlags) -> NewAccount {
    NewAccount { id, ledger: eur(), kind, flags }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u64) -> NewTransfer {
    NewTransfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    }
}

/// The proposal stored at `index` (2..): accounts first, then deposits and bets.
fn proposal(index: u64) -> Proposal {
    let timestamp_ns = 1_700_000_000_000_000_000 + index * 1_000_000;
    let commands = if index == 2 {
        vec![Command::CreateAccounts(vec![
            account(PLAYER, AccountKind::Player, AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS),
            account(CLEARING, AccountKind::Clearing, AccountFlags::empty()),
            account(OPERATOR, AccountKind::System, AccountFlags::empty()),
        ])]
    } else {
        let id = index as u128 * 10;
        vec![Command::CreateTransfers(vec![
            transfer(id, CLEARING, PLAYER, 100),
            transfer(id + 1, PLAYER, OPERATOR, 30),
        ])]
    };
    Proposal { timestamp_ns, commands }
}

fn record(index: u64) -> LogRecord {
    let (kind, payload) = match index {
        0 => (RecordKind::Membership, b"one voter".to_vec()),
        1 => (RecordKind::Blank, Vec::new()),
        _ => {
            let mut bytes = Vec::new();
            encode_proposal(&proposal(index), &mut bytes);
            (RecordKind::Normal, bytes)
        }
    };
    LogRecord { index, term: 1 + index / 10, kind, payload }
}

fn ledger_through(index: u64) -> MemoryLedger {
    let mut ledger = MemoryLedger::new();
    for i in 2..=index {
        let p = proposal(i);
        ledger.apply(p.timestamp_ns, &p.commands);
    }
    ledger
}

fn write_log(dir: &Path, to_inclusive: u64) -> LogStore {
    let (mut log, _) =
        LogStore::open(DataDir::new(dir).log_dir(), LogOptions { segment_size_max_bytes: SMALL_SEGMENT_BYTES })
            .unwrap();
    let records: Vec<LogRecord> = (0..=to_inclusive).map(record).collect();
    log.append(&records).unwrap();
    log.sync().unwrap();
    log
}

/// Writes the history records of entries 2..=`to_inclusive` as the state machine does, and a
/// checkpoint of the hot state after entry `checkpoint_index` (with `hot_of`'s hot state,
/// normally the same entry). Returns the checkpoint's manifest.
fn write_history_and_checkpoint(
    dir: &Path,
    log: &LogStore,
    to_inclusive: u64,
    checkpoint_index: u64,
    hot_of: u64,
) -> CheckpointManifest {
    let fs = Arc::new(OsFileSystem);
    let mut history =
        OpenedHistory::open(fs.clone(), &dir.join("history"), &dir.join("events"), &HistoryOptions::default(), None)
            .unwrap();
    let mut ledger = MemoryLedger::new();
    let mut manifest = None;
    for index in 2..=to_inclusive {
        let p = proposal(index);
        ledger.apply(p.timestamp_ns, &p.commands);
        history.writer.persist(index, ledger.last_records()).unwrap();
        if index == checkpoint_index {
            history.writer.sync().unwrap();
            let ends = history.writer.ends();
            manifest = Some(CheckpointManifest {
                last_index: index,
                last_term: record(index).term,
                chain_head: log.chain_hash(index).unwrap(),
                transfers_end: ends.transfers_end,
                wallet_end: ends.wallet_end,
                events_last: ends.events_last,
                history_hash: ends.history_hash,
                membership: b"one voter".to_vec(),
                snapshot_id: format!("checkpoint-{index}"),
                hot_file: String::new(),
                hot_len: 0,
                hot_sha256: [0; 32],
            });
        }
    }
    history.writer.sync().unwrap();
    let mut manifest = manifest.expect("the checkpoint's entry was written");
    save_checkpoint(dir, &mut manifest, &ledger_through(hot_of).checkpoint());
    manifest
}

fn save_checkpoint(dir: &Path, manifest: &mut CheckpointManifest, hot: &[u8]) {
    let store = CheckpointStore::open(Arc::new(OsFileSystem), dir.join("checkpoint")).unwrap();
    let mut writer = store.begin(manifest.last_index).unwrap();
    std::io::Write::write_all(&mut writer, hot).unwrap();
    store.commit(writer, manifest).unwrap();
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

fn audit_error(dir: &Path) -> AuditError {
    audit::verify(dir).expect_err("the audit must fail")
}

#[test]
fn audit_from_genesis_replays_every_entry_and_sums_balances() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    let summary = audit::verify(dir.path()).unwrap();
    assert_eq!((summary.first_index, summary.last_index), (Some(0), Some(LAST_INDEX)));
    assert_eq!(summary.entries_verified, LAST_INDEX + 1);
    assert_eq!(summary.entries_replayed, LAST_INDEX - 1);
    assert_eq!(summary.chain_head, log.last_chain_hash());
    assert_eq!(summary.checkpoint, None);
    let deposits = (LAST_INDEX - 2) as u128;
    assert_eq!((summary.accounts, summary.transfers), (3, 2 * deposits as u64));
    let eur_sums = &summary.per_ledger[0];
    assert_eq!(eur_sums.debits_posted, deposits * 130);
    assert_eq!(eur_sums.credits_posted, deposits * 130);
    assert_eq!(summary.per_ledger, ledger_through(LAST_INDEX).totals().per_ledger);
}

#[test]
fn audit_from_a_checkpoint_after_compaction_reaches_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = write_log(dir.path(), LAST_INDEX);
    write_history_and_checkpoint(dir.path(), &log, LAST_INDEX, 14, 14);
    log.purge_through(14).unwrap();
    drop(log);
    let summary = audit::verify(dir.path()).unwrap();
    assert_eq!(summary.checkpoint.as_ref().map(|s| s.last_index), Some(14));
    assert_eq!(summary.entries_replayed, LAST_INDEX - 14);
    assert!(!summary.genesis_replay_matches_checkpoint, "genesis is no longer on disk");
    assert_eq!(summary.history_transfers_checked, ledger_through(14).totals().transfers);
    assert!(summary.history_records_verified > 0);
    assert_eq!(summary.per_ledger, ledger_through(LAST_INDEX).totals().per_ledger);
    assert_eq!(summary.transfers, ledger_through(LAST_INDEX).totals().transfers);
}

#[test]
fn checkpoint_is_cross_checked_against_a_replay_from_genesis_when_the_log_still_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    write_history_and_checkpoint(dir.path(), &log, LAST_INDEX, 11, 11);
    drop(log);
    let summary = audit::verify(dir.path()).unwrap();
    assert!(summary.genesis_replay_matches_checkpoint);
    assert_eq!(summary.per_ledger, ledger_through(LAST_INDEX).totals().per_ledger);
}

#[test]
fn checkpoint_whose_state_the_log_does_not_produce_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    // Chain head and history ends of entry 11 but the hot state after entry 10: a lie.
    write_history_and_checkpoint(dir.path(), &log, LAST_INDEX, 11, 10);
    drop(log);
    let error = audit_error(dir.path());
    assert!(error.file.as_ref().is_some_and(|f| f.starts_with(dir.path().join("checkpoint"))), "{error:?}");
}

#[test]
fn history_that_disagrees_with_the_replay_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = write_log(dir.path(), LAST_INDEX);
    write_history_and_checkpoint(dir.path(), &log, LAST_INDEX, 14, 14);
    log.purge_through(14).unwrap();
    drop(log);
    // A transfer record after the checkpoint's, damaged with valid records after it: not a
    // torn write. (Damage to the very last record is one, as after a crash: the audit cuts it
    // and the replay supplies the record again, as the node would.)
    let transfers = dir.path().join("history").join("transfers");
    let mut segments: Vec<_> = std::fs::read_dir(&transfers).unwrap().map(|e| e.unwrap().path()).collect();
    segments.sort();
    let last = segments.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    flip_byte(last, len * 3 / 4);
    let error = audit_error(dir.path());
    assert!(error.file.as_ref().is_some_and(|f| f.starts_with(&transfers)), "{error}");
}

#[test]
fn checkpoint_that_the_log_does_not_chain_to_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    let mut manifest = write_history_and_checkpoint(dir.path(), &log, LAST_INDEX, 9, 9);
    manifest.chain_head = log.chain_hash(8).unwrap();
    save_checkpoint(dir.path(), &mut manifest, &ledger_through(9).checkpoint());
    let (file, offset) = log.location(9).unwrap();
    drop(log);
    let error = audit_error(dir.path());
    assert_eq!((error.index, error.file, error.offset), (Some(9), Some(file), Some(offset)));
}

#[test]
fn flipped_byte_in_an_entry_is_named_with_index_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    let (file, offset) = log.location(7).unwrap();
    drop(log);
    flip_byte(&file, offset + 70);
    let error = audit_error(dir.path());
    assert_eq!((error.index, error.file.clone(), error.offset), (Some(7), Some(file), Some(offset)), "{error}");
    assert!(error.to_string().contains("entry 7"), "{error}");
}

#[test]
fn entry_rewritten_with_a_fresh_crc_breaks_the_chain_at_the_next_entry() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    let (file, offset) = log.location(7).unwrap();
    let (next_file, next_offset) = log.location(8).unwrap();
    drop(log);
    // A forger changes an amount inside entry 7 and recomputes both its checksums (frame
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
    let error = audit_error(dir.path());
    assert_eq!((error.index, error.file, error.offset), (Some(8), Some(next_file), Some(next_offset)));
    assert!(error.reason.contains("entry 7"), "the message points at the altered predecessor: {}", error.reason);
}

#[test]
fn compacted_log_without_a_covering_checkpoint_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = write_log(dir.path(), LAST_INDEX);
    log.purge_through(10).unwrap();
    drop(log);
    let error = audit_error(dir.path());
    assert!(error.reason.contains("no checkpoint"), "{error}");
}

#[test]
fn checkpoint_older_than_the_compaction_point_leaves_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = write_log(dir.path(), 40);
    write_history_and_checkpoint(dir.path(), &log, 40, 5, 5);
    log.purge_through(30).unwrap();
    drop(log);
    let error = audit_error(dir.path());
    assert!(error.reason.contains("neither"), "{error}");
}

#[test]
fn torn_tail_is_reported_but_does_not_fail_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    let last_file = log.segment_files().pop().unwrap();
    drop(log);
    let mut bytes = std::fs::read(&last_file).unwrap();
    bytes.extend_from_slice(&[0x55; 13]);
    std::fs::write(&last_file, &bytes).unwrap();
    let summary = audit::verify(dir.path()).unwrap();
    assert_eq!(summary.torn_tail.as_ref().map(|t| t.bytes), Some(13));
    assert_eq!(std::fs::metadata(&last_file).unwrap().len(), bytes.len() as u64, "the audit changes nothing");
}

#[test]
fn flipped_byte_in_the_final_record_fails_the_audit() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    let (file, offset) = log.location(LAST_INDEX).unwrap();
    drop(log);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), offset + 61 + record(LAST_INDEX).payload.len() as u64 + 4);
    flip_byte(&file, offset + 70);
    let error = audit_error(dir.path());
    assert_eq!((error.index, error.file, error.offset), (Some(LAST_INDEX), Some(file), Some(offset)));
    assert!(error.reason.contains("not a torn write"), "{}", error.reason);
}

#[test]
fn audit_of_a_cleanly_closed_log_fails_when_its_final_record_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(dir.path(), LAST_INDEX);
    let (file, offset) = log.location(LAST_INDEX).unwrap();
    log.close().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 13]).unwrap();
    let error = audit_error(dir.path());
    assert_eq!((error.index, error.file, error.offset), (Some(LAST_INDEX), Some(file), Some(offset)));
    assert!(error.reason.contains("closed cleanly"), "{}", error.reason);
}

#[test]
fn entry_that_is_not_a_proposal_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = LogStore::open(DataDir::new(dir.path()).log_dir(), LogOptions::default()).unwrap();
    log.append(&[record(0), record(1), record(2)]).unwrap();
    log.append(&[LogRecord { index: 3, term: 1, kind: RecordKind::Normal, payload: b"not a proposal".to_vec() }])
        .unwrap();
    log.sync().unwrap();
    let (file, offset) = log.location(3).unwrap();
    drop(log);
    let error = audit_error(dir.path());
    assert_eq!((error.index, error.file, error.offset), (Some(3), Some(file), Some(offset)));
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
    let summary = audit::verify(dir.path()).unwrap();
    assert_eq!((summary.entries_verified, summary.accounts, summary.last_index), (0, 0, None));
}
