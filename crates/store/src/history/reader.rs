//! Reading history: the `HistorySource` the state machine prefetches from and the API reads
//! through. Cheap to clone; safe to use from any thread while the writer appends.

use std::collections::HashSet;
use std::sync::Arc;

use croupier_core::cases::{ArchivedCase, CaseId};
use croupier_core::codec::{decode_transfer_record, decode_wallet_log_record, WalletLogRecord};
use croupier_core::history::{
    indexed_keys, HistoryRecord, HistorySource, IndexedKey, Prefetched, StoredTransfer, WalletRecord,
};
use croupier_core::payments::{ArchivedPayment, PaymentKey};
use croupier_core::{AccountId, TransferId, WalletEntry};

use super::keys::{
    add_settled_keys, case_key, indexed_key_hash, payment_key, payment_transfer_key, rolled_back_key, settled_key,
    wallet_key,
};
use super::{HistoryEnds, Indexes, OPERATOR_FRAME_BYTES, TRANSFER_FRAME_BYTES};
use crate::records::RecordReader;
use crate::StoreError;
use croupier_core::operators::OperatorAction;

/// Records scanned per read while catching the indexes up after a restart.
const CATCH_UP_RECORDS_MAX: usize = 8_192;
const CATCH_UP_BYTES_MAX: usize = 4 << 20;

#[derive(Clone, Debug)]
pub struct HistoryReader {
    transfers: RecordReader,
    wallet: RecordReader,
    operators: RecordReader,
    indexes: Arc<Indexes>,
    /// A view that ignores everything past these ends (the audit's "verified so far"); `None`
    /// sees everything published.
    limits: Option<HistoryEnds>,
}

impl HistoryReader {
    pub(crate) fn new(logs: [RecordReader; 3], indexes: Arc<Indexes>) -> Self {
        let [transfers, wallet, operators] = logs;
        HistoryReader { transfers, wallet, operators, indexes, limits: None }
    }

    /// The same history, seen only up to these ends (the event fields are not used).
    pub fn limited(&self, ends: HistoryEnds) -> HistoryReader {
        HistoryReader { limits: Some(ends), ..self.clone() }
    }

    fn transfers_end(&self) -> u64 {
        let published = self.transfers.published_end();
        self.limits.map_or(published, |ends| ends.transfers_end.min(published))
    }

    /// Where the visible wallet log ends.
    pub fn wallet_end(&self) -> u64 {
        let published = self.wallet.published_end();
        self.limits.map_or(published, |ends| ends.wallet_end.min(published))
    }

    /// Operator actions persisted (and visible): the next action's sequence number.
    pub fn operator_action_count(&self) -> u64 {
        let published = self.operators.published_end();
        let end = self.limits.map_or(published, |ends| ends.operators_end.min(published));
        end / OPERATOR_FRAME_BYTES
    }

    /// Up to `count` operator actions from `seq` on, in order. The hashes are not checked
    /// here (`croupier_core::operators::verify_chain` does, with the record before `seq`).
    pub fn operator_actions_from(&self, seq: u64, count: usize) -> Result<Vec<OperatorAction>, StoreError> {
        let batch = scan_fixed(&self.operators, OPERATOR_FRAME_BYTES, self.operator_action_count(), seq, count)?;
        let mut actions = Vec::with_capacity(batch.len());
        // Not `(seq..).zip(batch)`: zip takes from the range first, and a range starting at
        // u64::MAX overflows even when the batch is empty (a caller may ask `from` anywhere).
        for (offset, (position, bytes)) in batch.iter().enumerate() {
            let expected_seq = seq + offset as u64;
            match OperatorAction::decode(bytes) {
                Some(action) if action.seq == expected_seq => actions.push(action),
                _ => return Err(undecodable("operator action", *position, "not the record expected here")),
            }
        }
        Ok(actions)
    }

    /// The raw record bytes at `position` of the wallet log.
    pub fn wallet_record_bytes(&self, position: u64) -> Result<Vec<u8>, StoreError> {
        self.wallet.read_at(position)
    }

    /// The raw record bytes of operator action `seq`.
    pub fn operator_record_bytes(&self, seq: u64) -> Result<Vec<u8>, StoreError> {
        self.operators.read_at(seq * OPERATOR_FRAME_BYTES)
    }

    /// The raw record bytes of transfer `seq`.
    pub fn transfer_record_bytes(&self, seq: u64) -> Result<Vec<u8>, StoreError> {
        self.transfers.read_at(seq * TRANSFER_FRAME_BYTES)
    }

    /// Up to `count` transfers from `seq` on, in order (for streaming checks).
    pub fn transfers_from(&self, seq: u64, count: usize) -> Result<Vec<StoredTransfer>, StoreError> {
        let batch = scan_fixed(&self.transfers, TRANSFER_FRAME_BYTES, self.transfer_count(), seq, count)?;
        batch
            .iter()
            .map(|(position, bytes)| decode_transfer_record(bytes).map_err(|e| undecodable("transfer", *position, e)))
            .collect()
    }

    /// Transfers ever persisted (and visible).
    pub fn transfer_count(&self) -> u64 {
        self.transfers_end() / TRANSFER_FRAME_BYTES
    }

    /// Stops the indexes' background flushes and merges: after it history writes no file, so
    /// the data directory may be handed to another node (`cluster::Node::shutdown`).
    pub fn stop_background(&self) {
        self.indexes.transfers.stop_background();
        self.indexes.resolutions.stop_background();
        self.indexes.keys.stop_background();
    }

    /// Memory the indexes hold (memtables, fences, filters).
    pub fn index_memory_bytes(&self) -> u64 {
        self.indexes.transfers.memory_bytes()
            + self.indexes.resolutions.memory_bytes()
            + self.indexes.keys.memory_bytes()
    }

    fn read_transfer(&self, seq: u64) -> Result<StoredTransfer, StoreError> {
        let position = seq * TRANSFER_FRAME_BYTES;
        let bytes = self.transfers.read_at(position)?;
        let stored = decode_transfer_record(&bytes).map_err(|e| undecodable("transfer", position, e))?;
        if stored.seq != seq {
            return Err(undecodable("transfer", position, format!("holds transfer number {}", stored.seq)));
        }
        Ok(stored)
    }

    fn read_wallet(&self, position: u64) -> Result<WalletLogRecord, StoreError> {
        let bytes = self.wallet.read_at(position)?;
        self.decode_wallet_at(position, &bytes)
    }

    /// The transfer a transfer-space index entry points at, if it is visible yet.
    fn indexed_transfer(&self, seq: Option<u64>) -> Result<Option<StoredTransfer>, StoreError> {
        match seq {
            Some(seq) if seq < self.transfer_count() => self.read_transfer(seq).map(Some),
            _ => Ok(None),
        }
    }

    /// The wallet record a hashed key points at, if visible and if it is really `matches`.
    fn indexed_wallet(
        &self,
        key: u128,
        matches: impl Fn(&WalletRecord) -> bool,
    ) -> Result<Option<WalletRecord>, StoreError> {
        self.indexed_wallet_log(key, |record| match record {
            WalletLogRecord::Wallet(wallet) if matches(&wallet) => Some(wallet),
            _ => None,
        })
    }

    /// The archived payment a hashed key points at, if visible and if it is really `matches`.
    fn indexed_payment(
        &self,
        key: u128,
        matches: impl Fn(&ArchivedPayment) -> bool,
    ) -> Result<Option<ArchivedPayment>, StoreError> {
        self.indexed_wallet_log(key, |record| match record {
            WalletLogRecord::Payment(payment) if matches(&payment) => Some(payment),
            _ => None,
        })
    }

    /// What `pick` makes of the wallet-log record a hashed key points at, if it is visible;
    /// `pick` answers None for a record that is not the key's (a collision, or damage).
    fn indexed_case(&self, id: CaseId) -> Result<Option<ArchivedCase>, StoreError> {
        self.indexed_wallet_log(case_key(id), |record| match record {
            WalletLogRecord::Case(archived) if archived.case.id == id => Some(archived),
            _ => None,
        })
    }

    fn indexed_wallet_log<T>(
        &self,
        key: u128,
        pick: impl FnOnce(WalletLogRecord) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        let Some(position) = self.indexes.keys.get(key)? else {
            return Ok(None);
        };
        if position >= self.wallet_end() {
            return Ok(None);
        }
        let found = pick(self.read_wallet(position)?);
        if found.is_none() {
            tracing_free_warning(key, position);
        }
        Ok(found)
    }

    /// Re-inserts the index keys of records in `[covered, end)` of each log, for indexes whose
    /// memtables a crash lost. Called once at open, before any reader or writer runs.
    pub(crate) fn catch_up_indexes(&self, transfers_end: u64, wallet_end: u64) -> Result<(), StoreError> {
        let transfer_count = transfers_end / TRANSFER_FRAME_BYTES;
        let [transfers_covered, resolutions_covered, _] = self.indexes.covered_at_open;
        let mut seq = transfers_covered.min(resolutions_covered).min(transfer_count);
        while seq < transfer_count {
            let batch = self.transfers_from(seq, CATCH_UP_RECORDS_MAX)?;
            if batch.is_empty() {
                break;
            }
            let (mut ids, mut resolutions) = (Vec::new(), Vec::new());
            for stored in batch {
                let record = HistoryRecord::Transfer(stored);
                let HistoryRecord::Transfer(stored) = &record else { unreachable!() };
                let at = stored.seq;
                indexed_keys(&record, |key| match key {
                    IndexedKey::Transfer(id) if at >= transfers_covered => ids.push((id, at)),
                    IndexedKey::Resolution(id) if at >= resolutions_covered => resolutions.push((id, at)),
                    _ => {}
                });
                seq = at + 1;
            }
            self.indexes.transfers.insert_batch(&ids, seq.max(transfers_covered))?;
            self.indexes.resolutions.insert_batch(&resolutions, seq.max(resolutions_covered))?;
        }
        self.catch_up_key_index(wallet_end)
    }

    fn catch_up_key_index(&self, wallet_end: u64) -> Result<(), StoreError> {
        let mut position = self.indexes.covered_at_open[2].min(wallet_end);
        let mut scratch = Vec::new();
        let (mut settled, mut seen) = (Vec::new(), HashSet::new());
        while position < wallet_end {
            let batch = self.wallet.scan(position, CATCH_UP_RECORDS_MAX, CATCH_UP_BYTES_MAX)?;
            let Some((last, last_bytes)) = batch.last() else { break };
            let next = last + (crate::records::RECORD_FRAME_OVERHEAD_BYTES + last_bytes.len()) as u64;
            let mut keys = Vec::with_capacity(batch.len() * 2);
            settled.clear();
            for (at, bytes) in &batch {
                let record = match self.decode_wallet_at(*at, bytes)? {
                    WalletLogRecord::Wallet(wallet) => HistoryRecord::Wallet(wallet),
                    WalletLogRecord::Payment(payment) => HistoryRecord::PaymentArchived(payment),
                    WalletLogRecord::Case(archived) => HistoryRecord::CaseArchived(archived),
                };
                indexed_keys(&record, |key| {
                    let hashed = indexed_key_hash(&key, &mut scratch);
                    match key {
                        IndexedKey::Settled(..) => settled.push((hashed, *at)),
                        _ => keys.push((hashed, *at)),
                    }
                });
            }
            add_settled_keys(&self.indexes.keys, &settled, &mut keys, &mut seen)?;
            position = next.min(wallet_end);
            self.indexes.keys.insert_batch(&keys, position)?;
        }
        Ok(())
    }

    fn decode_wallet_at(&self, position: u64, bytes: &[u8]) -> Result<WalletLogRecord, StoreError> {
        decode_wallet_log_record(bytes).map_err(|e| undecodable("wallet record", position, e))
    }
}

impl HistorySource for HistoryReader {
    type Error = StoreError;

    fn transfer_by_id(&self, id: TransferId) -> Result<Option<StoredTransfer>, StoreError> {
        let found = self.indexed_transfer(self.indexes.transfers.get(id)?)?;
        Ok(found.filter(|stored| stored.transfer.id == id))
    }

    fn transfer_at(&self, seq: u64) -> Result<Option<StoredTransfer>, StoreError> {
        self.indexed_transfer(Some(seq))
    }

    fn resolution_of(&self, pending_id: TransferId) -> Result<Option<StoredTransfer>, StoreError> {
        let found = self.indexed_transfer(self.indexes.resolutions.get(pending_id)?)?;
        Ok(found.filter(|stored| stored.resolves_pending() && stored.transfer.pending_id == pending_id))
    }

    /// Batched: every transfer id of the entry goes to the index in one `get_many` (thousands
    /// per entry, nearly all absent), then only the hits are read.
    fn fetch_transfer_ids(&self, ids: &[TransferId], into: &mut Prefetched) -> Result<(), StoreError> {
        let mut found = Vec::with_capacity(ids.len());
        self.indexes.transfers.get_many(ids, &mut found)?;
        for (&id, seq) in ids.iter().zip(found) {
            if let Some(stored) = self.indexed_transfer(seq)?.filter(|stored| stored.transfer.id == id) {
                into.insert_transfer(stored);
            }
        }
        Ok(())
    }

    fn wallet_entry(&self, key: &str) -> Result<Option<WalletEntry>, StoreError> {
        let record = self.indexed_wallet(wallet_key(key), |record| record.key == key)?;
        Ok(record.map(|record| record.entry))
    }

    fn is_rolled_back(&self, bet_key: &str) -> Result<bool, StoreError> {
        let found = self.indexed_wallet(rolled_back_key(bet_key), |record| {
            matches!(&record.entry, WalletEntry::Rollback { request, outcome }
                if request.rolled_back_transaction_id == bet_key && outcome.moved_money())
        })?;
        Ok(found.is_some())
    }

    fn is_settled(&self, player: AccountId, round: &str) -> Result<bool, StoreError> {
        let found = self.indexed_wallet(settled_key(player, round), |record| {
            matches!(&record.entry, WalletEntry::Win { request, .. }
                if request.player_id == player && request.round_id == round)
        })?;
        Ok(found.is_some())
    }

    fn archived_payment(&self, key: PaymentKey) -> Result<Option<ArchivedPayment>, StoreError> {
        self.indexed_payment(payment_key(key), |payment| payment.key() == key)
    }

    fn archived_payment_of_transfer(&self, id: TransferId) -> Result<Option<ArchivedPayment>, StoreError> {
        self.indexed_payment(payment_transfer_key(id), |payment| payment.clearing_transfer_ids().any(|made| made == id))
    }

    fn archived_case(&self, id: CaseId) -> Result<Option<ArchivedCase>, StoreError> {
        self.indexed_case(id)
    }
}

/// Up to `count` records of a fixed-size log from record number `seq` on, stopping at record
/// number `end` (what is visible).
fn scan_fixed(
    log: &RecordReader,
    frame: u64,
    end: u64,
    seq: u64,
    count: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    if seq >= end {
        return Ok(Vec::new());
    }
    let count = count.min((end - seq) as usize);
    log.scan(seq * frame, count, count * frame as usize)
}

fn undecodable(what: &'static str, position: u64, error: impl std::fmt::Display) -> StoreError {
    StoreError::Undecodable { what, position, reason: error.to_string() }
}

/// A hashed key whose record is another's: a 128-bit collision, or damage. Treated as absent.
fn tracing_free_warning(key: u128, position: u64) {
    eprintln!("warning: history key {key:032x} points at a record with another key (position {position})");
}
