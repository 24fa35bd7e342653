//! The audit's replay: apply log entries again, prefetching from history the way the node
//! does, and check every history record the replay yields against the bytes the node wrote.

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use croupier_core::cases::{ArchivedCase, CaseId};
use croupier_core::codec::{decode_proposal, encode_checkpoint, encode_transfer_record, encode_wallet_log_record};
use croupier_core::history::{
    indexed_keys, HistoryKeys, HistoryRecord, HistorySource, IndexedKey, Prefetched, StoredTransfer,
};
use croupier_core::payments::{ArchivedPayment, PaymentKey};
use croupier_core::{AccountId, Ledger, TransferId, WalletEntry};
use sha2::{Digest, Sha256};

use super::{AuditError, LogSpan};
use crate::checkpoint::CheckpointManifest;
use crate::history::{HistoryEnds, HistoryReader, OPERATOR_FRAME_BYTES, TRANSFER_FRAME_BYTES};
use crate::log::LogStore;
use crate::records::RECORD_FRAME_OVERHEAD_BYTES;
use crate::{RecordKind, StoreError};

/// Entries read from disk at a time while replaying (bounds memory with ~1 MB entries).
const REPLAY_CHUNK_ENTRIES: u64 = 64;
/// Transfers read at a time by the streaming history check.
const STREAM_CHUNK_TRANSFERS: usize = 8_192;

/// Where a replay starts.
pub(crate) struct Start {
    ledger: Ledger,
    from_index: u64,
    transfers_end: u64,
    wallet_end: u64,
    operators_end: u64,
    genesis: bool,
}

impl Start {
    pub(crate) fn genesis(first_index: u64) -> Start {
        Start {
            ledger: Ledger::new(),
            from_index: first_index,
            transfers_end: 0,
            wallet_end: 0,
            operators_end: 0,
            genesis: true,
        }
    }

    pub(crate) fn checkpoint(ledger: Ledger, manifest: &CheckpointManifest) -> Start {
        Start {
            ledger,
            from_index: manifest.last_index + 1,
            transfers_end: manifest.transfers_end,
            wallet_end: manifest.wallet_end,
            operators_end: manifest.operators_end,
            genesis: false,
        }
    }
}

pub(crate) struct Outcome {
    pub(crate) ledger: Ledger,
    pub(crate) entries_replayed: u64,
    pub(crate) records_verified: u64,
    pub(crate) matched_checkpoint: bool,
}

/// The transfers of `view`, in sequence order, a chunk at a time.
pub(crate) fn stream_transfers(view: &HistoryReader) -> impl Iterator<Item = Result<StoredTransfer, StoreError>> + '_ {
    let mut next = 0u64;
    let mut chunk = Vec::new().into_iter();
    std::iter::from_fn(move || loop {
        if let Some(stored) = chunk.next() {
            return Some(Ok(stored));
        }
        match view.transfers_from(next, STREAM_CHUNK_TRANSFERS) {
            Ok(batch) if batch.is_empty() => return None,
            Ok(batch) => {
                next += batch.len() as u64;
                chunk = batch.into_iter();
            }
            Err(error) => return Some(Err(error)),
        }
    })
}

struct Replay<'a> {
    log: &'a LogStore,
    disk: &'a HistoryReader,
    ledger: Ledger,
    transfers_end: u64,
    wallet_end: u64,
    operators_end: u64,
    overlay: Overlay,
    keys: HistoryKeys,
    prefetched: Prefetched,
    records: Vec<HistoryRecord>,
    scratch: Vec<u8>,
    records_verified: u64,
}

pub(crate) fn run(
    log: &LogStore,
    span: Option<LogSpan>,
    start: Start,
    disk: &HistoryReader,
    checkpoint: Option<(&CheckpointManifest, &Path)>,
) -> Result<Outcome, AuditError> {
    let check_at = checkpoint.filter(|_| start.genesis);
    let mut replay = Replay {
        log,
        disk,
        ledger: start.ledger,
        transfers_end: start.transfers_end,
        wallet_end: start.wallet_end,
        operators_end: start.operators_end,
        overlay: Overlay::default(),
        keys: HistoryKeys::default(),
        prefetched: Prefetched::default(),
        records: Vec::new(),
        scratch: Vec::new(),
        records_verified: 0,
    };
    let mut matched_checkpoint = false;
    if let Some((m, file)) = check_at.filter(|(m, _)| span.is_none_or(|s| m.last_index < s.first)) {
        replay.check_checkpoint(m, file)?;
        matched_checkpoint = true;
    }
    let mut entries_replayed = 0;
    if let Some(span) = span {
        let mut index = start.from_index.max(span.first);
        while index <= span.last {
            let to = (index + REPLAY_CHUNK_ENTRIES).min(span.last + 1);
            for record in log.read_physical(index, to)? {
                if record.kind == RecordKind::Normal {
                    replay.apply(record.index, record.term, &record.payload)?;
                    entries_replayed += 1;
                }
                if let Some((m, file)) = check_at.filter(|(m, _)| m.last_index == record.index) {
                    replay.check_checkpoint(m, file)?;
                    matched_checkpoint = true;
                }
            }
            index = to;
        }
    }
    replay
        .ledger
        .check_hot_invariants()
        .map_err(|broken| AuditError::new(format!("the replayed ledger breaks an invariant: {broken}")))?;
    Ok(Outcome {
        ledger: replay.ledger,
        entries_replayed,
        records_verified: replay.records_verified,
        matched_checkpoint,
    })
}

impl Replay<'_> {
    fn apply(&mut self, index: u64, term: u64, payload: &[u8]) -> Result<(), AuditError> {
        let proposal = decode_proposal(payload).map_err(|e| {
            AuditError::at_entry(self.log, index, format!("entry payload does not decode as a proposal: {e}"))
        })?;
        self.keys.clear();
        self.ledger.history_keys(&proposal.commands, &mut self.keys);
        let source = Source { disk: self.disk.limited(self.verified_ends()), overlay: &self.overlay };
        source.fetch(&self.keys, &mut self.prefetched)?;
        self.records.clear();
        let (ledger, prefetched, records) = (&mut self.ledger, &mut self.prefetched, &mut self.records);
        let applied = catch_unwind(AssertUnwindSafe(|| {
            ledger.apply(
                croupier_core::command::EntryStamp { timestamp_ns: proposal.timestamp_ns, term },
                &proposal.commands,
                prefetched,
                records,
            )
        }));
        if applied.is_err() {
            return Err(AuditError::at_entry(self.log, index, "the ledger panicked applying this entry"));
        }
        let records = std::mem::take(&mut self.records);
        for record in &records {
            self.verify_record(index, record)?;
        }
        self.records = records;
        Ok(())
    }

    /// Compares a replayed record with what the node wrote at its place, or keeps it in memory
    /// when the node never wrote it.
    fn verify_record(&mut self, index: u64, record: &HistoryRecord) -> Result<(), AuditError> {
        self.scratch.clear();
        let (on_disk, disk_end, position, advance) = match record {
            HistoryRecord::AccountCreated(_) | HistoryRecord::Table(_) | HistoryRecord::Payment(_) => return Ok(()),
            HistoryRecord::Transfer(stored) => {
                encode_transfer_record(stored, &mut self.scratch);
                let position = stored.seq * TRANSFER_FRAME_BYTES;
                let on_disk = position < self.disk.transfer_count() * TRANSFER_FRAME_BYTES;
                let bytes = if on_disk { Some(self.disk.transfer_record_bytes(stored.seq)?) } else { None };
                (bytes, "transfers", position, TRANSFER_FRAME_BYTES)
            }
            HistoryRecord::Wallet(_) | HistoryRecord::PaymentArchived(_) | HistoryRecord::CaseArchived(_) => {
                encode_wallet_log_record(record, &mut self.scratch);
                let position = self.wallet_end;
                let on_disk = position < self.disk.wallet_end();
                let bytes = if on_disk { Some(self.disk.wallet_record_bytes(position)?) } else { None };
                (bytes, "wallet", position, (RECORD_FRAME_OVERHEAD_BYTES + self.scratch.len()) as u64)
            }
            HistoryRecord::OperatorAction(action) => {
                action.encode(&mut self.scratch);
                let position = action.seq * OPERATOR_FRAME_BYTES;
                let on_disk = action.seq < self.disk.operator_action_count();
                let bytes = if on_disk { Some(self.disk.operator_record_bytes(action.seq)?) } else { None };
                (bytes, "operators", position, OPERATOR_FRAME_BYTES)
            }
        };
        match on_disk {
            Some(bytes) if bytes == self.scratch => self.records_verified += 1,
            Some(_) => {
                let reason =
                    format!("the {disk_end} history at position {position} is not what replaying this entry writes");
                return Err(AuditError::at_entry(self.log, index, reason));
            }
            None => self.overlay.insert(record, position),
        }
        match record {
            HistoryRecord::Transfer(_) => self.transfers_end = position + advance,
            HistoryRecord::OperatorAction(_) => self.operators_end = position + advance,
            _ => self.wallet_end = position + advance,
        }
        Ok(())
    }

    fn verified_ends(&self) -> HistoryEnds {
        HistoryEnds {
            transfers_end: self.transfers_end,
            wallet_end: self.wallet_end,
            operators_end: self.operators_end,
            ..HistoryEnds::default()
        }
    }

    /// `hot_file` is named in the error: the operator must know which file the log disproves.
    fn check_checkpoint(&self, manifest: &CheckpointManifest, hot_file: &Path) -> Result<(), AuditError> {
        let mut bytes = Vec::new();
        encode_checkpoint(&self.ledger.freeze(), &mut bytes).map_err(|e| AuditError::new(e.to_string()))?;
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        let ends = self.verified_ends();
        let ends_match = (ends.transfers_end, ends.wallet_end, ends.operators_end)
            == (manifest.transfers_end, manifest.wallet_end, manifest.operators_end);
        if sha != manifest.hot_sha256 || !ends_match {
            return Err(AuditError {
                index: Some(manifest.last_index),
                file: Some(hot_file.to_path_buf()),
                offset: None,
                reason: format!(
                    "the checkpoint is not the state the log produces: replaying from genesis through entry {} gives different bytes",
                    manifest.last_index
                ),
            });
        }
        Ok(())
    }
}

/// Records the replay produced that the node never wrote (it crashed first).
#[derive(Default)]
struct Overlay {
    transfers: HashMap<TransferId, StoredTransfer>,
    by_seq: HashMap<u64, TransferId>,
    resolutions: HashMap<TransferId, TransferId>,
    wallet: HashMap<String, WalletEntry>,
    rolled_back: HashSet<String>,
    settled: HashSet<(AccountId, String)>,
    payments: HashMap<PaymentKey, ArchivedPayment>,
    payment_transfers: HashMap<TransferId, PaymentKey>,
    cases: HashMap<CaseId, ArchivedCase>,
}

impl Overlay {
    fn insert(&mut self, record: &HistoryRecord, _position: u64) {
        if let HistoryRecord::Transfer(stored) = record {
            self.by_seq.insert(stored.seq, stored.transfer.id);
            self.transfers.insert(stored.transfer.id, stored.clone());
        }
        indexed_keys(record, |key| match key {
            IndexedKey::Transfer(_) => {}
            IndexedKey::Resolution(pending) => {
                if let HistoryRecord::Transfer(stored) = record {
                    self.resolutions.insert(pending, stored.transfer.id);
                }
            }
            IndexedKey::Wallet(key) => {
                if let HistoryRecord::Wallet(wallet) = record {
                    self.wallet.insert(key.to_owned(), wallet.entry.clone());
                }
            }
            IndexedKey::RolledBack(key) => {
                self.rolled_back.insert(key.to_owned());
            }
            IndexedKey::Settled(player, round) => {
                self.settled.insert((player, round.to_owned()));
            }
            IndexedKey::Payment(key) => {
                if let HistoryRecord::PaymentArchived(payment) = record {
                    self.payments.insert(key, payment.clone());
                }
            }
            IndexedKey::PaymentTransfer(id) => {
                if let HistoryRecord::PaymentArchived(payment) = record {
                    self.payment_transfers.insert(id, payment.key());
                }
            }
            IndexedKey::Case(id) => {
                if let HistoryRecord::CaseArchived(archived) = record {
                    self.cases.insert(id, archived.clone());
                }
            }
        });
    }
}

/// History as the audit has verified it: the node's records up to the verified ends, then the
/// overlay.
struct Source<'a> {
    disk: HistoryReader,
    overlay: &'a Overlay,
}

impl HistorySource for Source<'_> {
    type Error = StoreError;

    fn transfer_by_id(&self, id: TransferId) -> Result<Option<StoredTransfer>, StoreError> {
        match self.overlay.transfers.get(&id) {
            Some(stored) => Ok(Some(stored.clone())),
            None => self.disk.transfer_by_id(id),
        }
    }

    fn transfer_at(&self, seq: u64) -> Result<Option<StoredTransfer>, StoreError> {
        match self.overlay.by_seq.get(&seq) {
            Some(id) => Ok(self.overlay.transfers.get(id).cloned()),
            None => self.disk.transfer_at(seq),
        }
    }

    fn resolution_of(&self, pending_id: TransferId) -> Result<Option<StoredTransfer>, StoreError> {
        match self.overlay.resolutions.get(&pending_id) {
            Some(id) => Ok(self.overlay.transfers.get(id).cloned()),
            None => self.disk.resolution_of(pending_id),
        }
    }

    fn wallet_entry(&self, key: &str) -> Result<Option<WalletEntry>, StoreError> {
        match self.overlay.wallet.get(key) {
            Some(entry) => Ok(Some(entry.clone())),
            None => self.disk.wallet_entry(key),
        }
    }

    fn is_rolled_back(&self, bet_key: &str) -> Result<bool, StoreError> {
        Ok(self.overlay.rolled_back.contains(bet_key) || self.disk.is_rolled_back(bet_key)?)
    }

    fn is_settled(&self, player: AccountId, round: &str) -> Result<bool, StoreError> {
        Ok(self.overlay.settled.contains(&(player, round.to_owned())) || self.disk.is_settled(player, round)?)
    }

    fn archived_payment(&self, key: PaymentKey) -> Result<Option<ArchivedPayment>, StoreError> {
        match self.overlay.payments.get(&key) {
            Some(payment) => Ok(Some(payment.clone())),
            None => self.disk.archived_payment(key),
        }
    }

    fn archived_case(&self, id: CaseId) -> Result<Option<ArchivedCase>, StoreError> {
        match self.overlay.cases.get(&id) {
            Some(archived) => Ok(Some(archived.clone())),
            None => self.disk.archived_case(id),
        }
    }

    fn archived_payment_of_transfer(&self, id: TransferId) -> Result<Option<ArchivedPayment>, StoreError> {
        match self.overlay.payment_transfers.get(&id) {
            Some(key) => Ok(self.overlay.payments.get(key).cloned()),
            None => self.disk.archived_payment_of_transfer(id),
        }
    }
}
