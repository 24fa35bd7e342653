//! The ledger's history on disk: what `croupier_core::Ledger::apply` yields, persisted and
//! indexed so the next entries' prefetch and the API's reads find it.
//!
//! - `transfers/`: a record log of fixed-size transfer records; transfer number `seq` lives at
//!   position `seq × TRANSFER_FRAME_BYTES`, so account histories (chains of sequence numbers)
//!   are walked with direct reads.
//! - `wallet/`: a record log of wallet decisions (variable size).
//! - `index/transfers`, `index/resolutions`, `index/keys`: write-once id indexes: transfer id →
//!   seq; pending id → seq of its post/void/expiry; and 128-bit hashes of wallet keys (with a
//!   domain per kind: transaction, rolled-back bet, settled round) → wallet position. A hashed
//!   hit is always confirmed against the record it points to.
//! - `../events/`: the committed event log; every record is also an event.
//!
//! Consistency rule (why a crash needs nothing but a cut): the logs are append-only and are cut
//! back to a checkpoint's ends on recovery, after which the entries after the checkpoint are
//! applied again and append exactly the same bytes (the state machine is deterministic and
//! those entries are committed). The indexes may hold keys for records past the cut: such a
//! key points at or beyond the log's end, is ignored by every lookup until replay writes the
//! same record at the same place, and then it is right. So the indexes need no rollback.
//!
//! It must not know: openraft, tokio, HTTP or JSON.

mod keys;
mod reader;

use std::path::Path;
use std::sync::Arc;

use croupier_core::codec::{encode_record, encode_transfer_record, encode_wallet_record, TRANSFER_RECORD_BYTES};
use croupier_core::events::event_position;
use croupier_core::history::{indexed_keys, HistoryRecord, IndexedKey};
use sha2::{Digest, Sha256};

use crate::events::{EventFeed, EventLog, EventLogOptions};
use crate::fs::FileSystem;
use crate::index::{IdIndex, IndexOptions};
use crate::records::{RecordLog, RecordLogOptions, RECORD_FRAME_OVERHEAD_BYTES};
use crate::StoreError;

pub use keys::{hashed_key, KeyDomain};
pub use reader::HistoryReader;

/// Bytes one transfer record occupies in the transfers log, frame included.
pub const TRANSFER_FRAME_BYTES: u64 = (RECORD_FRAME_OVERHEAD_BYTES + TRANSFER_RECORD_BYTES) as u64;

/// Where the history stood at a checkpoint: recovery cuts the logs back to these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryEnds {
    pub transfers_end: u64,
    pub wallet_end: u64,
    /// Last event position (0: no event yet).
    pub events_last: u64,
    /// Running hash of every record appended (see `HistoryWriter::persist`).
    pub history_hash: [u8; 32],
}

#[derive(Clone, Debug, Default)]
pub struct HistoryOptions {
    pub transfers: RecordLogOptions,
    pub wallet: RecordLogOptions,
    pub events: EventLogOptions,
    pub transfer_index: IndexOptions,
    pub resolution_index: IndexOptions,
    pub key_index: IndexOptions,
}

/// The three id indexes, shared by the writer and every reader, with what each covered when
/// it was opened (its memtable is lost in a crash; `catch_up_indexes` re-inserts from there).
#[derive(Debug)]
pub(crate) struct Indexes {
    pub(crate) transfers: IdIndex,
    pub(crate) resolutions: IdIndex,
    pub(crate) keys: IdIndex,
    pub(crate) covered_at_open: [u64; 3],
}

/// The single writer of history (owned by the state machine).
#[derive(Debug)]
pub struct HistoryWriter {
    transfers: RecordLog,
    wallet: RecordLog,
    events: EventLog,
    indexes: Arc<Indexes>,
    history_hash: [u8; 32],
    events_last: u64,
    scratch: Scratch,
}

#[derive(Debug, Default)]
struct Scratch {
    payload: Vec<u8>,
    event: Vec<u8>,
    transfer_keys: Vec<(u128, u64)>,
    resolution_keys: Vec<(u128, u64)>,
    hashed_keys: Vec<(u128, u64)>,
    hash_input: Vec<u8>,
}

/// An opened history: its writer, a reader, and the event feed.
pub struct OpenedHistory {
    pub writer: HistoryWriter,
    pub reader: HistoryReader,
    pub events: EventFeed,
}

impl OpenedHistory {
    /// Opens (or creates) the history under `dir` and cuts it back to `ends` (a checkpoint's;
    /// `None`: nothing was ever checkpointed, so everything goes), then brings the indexes up
    /// to the cut. Fails with `Corrupt` when a log is shorter than the checkpoint says.
    pub fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        events_dir: &Path,
        options: &HistoryOptions,
        ends: Option<HistoryEnds>,
    ) -> Result<OpenedHistory, StoreError> {
        let ends = ends.unwrap_or_default();
        let (mut transfers, transfers_reader, _) =
            RecordLog::open(fs.clone(), dir.join("transfers"), options.transfers.clone())?;
        let (mut wallet, wallet_reader, _) = RecordLog::open(fs.clone(), dir.join("wallet"), options.wallet.clone())?;
        cut_back(&mut transfers, ends.transfers_end, &dir.join("transfers"))?;
        cut_back(&mut wallet, ends.wallet_end, &dir.join("wallet"))?;
        // Not `is_multiple_of`: the workspace supports Rust 1.85.
        if ends.transfers_end.checked_rem(TRANSFER_FRAME_BYTES) != Some(0) {
            return Err(StoreError::corrupt(
                &dir.join("transfers"),
                ends.transfers_end,
                None,
                "checkpoint end is not on a transfer record boundary",
            ));
        }
        let (mut events, feed, _) = EventLog::open(fs.clone(), events_dir, options.events.clone())?;
        events.truncate_after(ends.events_last)?;
        let indexes = Arc::new(open_indexes(&fs, dir, options)?);
        let reader = HistoryReader::new(transfers_reader, wallet_reader, Arc::clone(&indexes));
        reader.catch_up_indexes(ends.transfers_end, ends.wallet_end)?;
        let writer = HistoryWriter {
            transfers,
            wallet,
            events,
            indexes,
            history_hash: ends.history_hash,
            events_last: ends.events_last,
            scratch: Scratch::default(),
        };
        Ok(OpenedHistory { writer, reader, events: feed })
    }
}

impl OpenedHistory {
    /// Opens the history for the audit: nothing is cut back (the audit compares what is past a
    /// checkpoint with a replay), and the indexes are brought up to everything on disk.
    pub fn open_for_audit(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        events_dir: &Path,
        options: &HistoryOptions,
    ) -> Result<OpenedHistory, StoreError> {
        let (transfers, transfers_reader, _) =
            RecordLog::open(fs.clone(), dir.join("transfers"), options.transfers.clone())?;
        let (wallet, wallet_reader, _) = RecordLog::open(fs.clone(), dir.join("wallet"), options.wallet.clone())?;
        let whole = (transfers.end() / TRANSFER_FRAME_BYTES) * TRANSFER_FRAME_BYTES;
        let (events, feed, _) = EventLog::open(fs.clone(), events_dir, options.events.clone())?;
        let indexes = Arc::new(open_indexes(&fs, dir, options)?);
        let reader = HistoryReader::new(transfers_reader, wallet_reader, Arc::clone(&indexes));
        reader.catch_up_indexes(whole, wallet.end())?;
        let writer = HistoryWriter {
            transfers,
            wallet,
            events_last: events.last_position(),
            events,
            indexes,
            history_hash: [0; 32],
            scratch: Scratch::default(),
        };
        Ok(OpenedHistory { writer, reader, events: feed })
    }
}

fn cut_back(log: &mut RecordLog, end: u64, dir: &Path) -> Result<(), StoreError> {
    if log.end() < end {
        let reason = format!("history log ends at {} but the checkpoint covers up to {end}", log.end());
        return Err(StoreError::corrupt(dir, log.end(), None, reason));
    }
    log.truncate_to(end)
}

fn open_indexes(fs: &Arc<dyn FileSystem>, dir: &Path, options: &HistoryOptions) -> Result<Indexes, StoreError> {
    let index_dir = dir.join("index");
    let (transfers, a) = IdIndex::open(fs.clone(), &index_dir.join("transfers"), options.transfer_index.clone())?;
    let (resolutions, b) = IdIndex::open(fs.clone(), &index_dir.join("resolutions"), options.resolution_index.clone())?;
    let (keys, c) = IdIndex::open(fs.clone(), &index_dir.join("keys"), options.key_index.clone())?;
    Ok(Indexes { transfers, resolutions, keys, covered_at_open: [a, b, c] })
}

impl HistoryWriter {
    /// Appends one applied entry's records (from `Ledger::apply`), as history and as events at
    /// `log_index`, indexes them, and makes them visible to readers. Not durable until `sync`.
    pub fn persist(&mut self, log_index: u64, records: &[HistoryRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut entry_hash = Sha256::new();
        entry_hash.update(self.history_hash);
        entry_hash.update(log_index.to_le_bytes());
        for (ordinal, record) in records.iter().enumerate() {
            self.append_record(record, &mut entry_hash)?;
            self.scratch.event.clear();
            encode_record(record, &mut self.scratch.event);
            let position = event_position(log_index, ordinal as u64);
            self.events.append(position, record.timestamp(), &self.scratch.event)?;
            self.events_last = position;
        }
        self.history_hash = entry_hash.finalize().into();
        self.transfers.flush()?;
        self.wallet.flush()?;
        self.events.flush()?;
        self.insert_index_keys()
    }

    fn append_record(&mut self, record: &HistoryRecord, entry_hash: &mut Sha256) -> Result<(), StoreError> {
        let scratch = &mut self.scratch;
        scratch.payload.clear();
        let position = match record {
            HistoryRecord::AccountCreated(_) => {
                encode_record(record, &mut scratch.payload);
                entry_hash.update(&scratch.payload);
                return Ok(());
            }
            HistoryRecord::Transfer(stored) => {
                encode_transfer_record(stored, &mut scratch.payload);
                let position = self.transfers.append(&scratch.payload)?;
                assert_eq!(position, stored.seq * TRANSFER_FRAME_BYTES, "transfer record out of place");
                stored.seq
            }
            HistoryRecord::Wallet(wallet) => {
                encode_wallet_record(wallet, &mut scratch.payload);
                self.wallet.append(&scratch.payload)?
            }
        };
        entry_hash.update(&scratch.payload);
        indexed_keys(record, |key| match key {
            IndexedKey::Transfer(id) => scratch.transfer_keys.push((id, position)),
            IndexedKey::Resolution(id) => scratch.resolution_keys.push((id, position)),
            other => {
                let hashed = keys::indexed_key_hash(&other, &mut scratch.hash_input);
                scratch.hashed_keys.push((hashed, position));
            }
        });
        Ok(())
    }

    fn insert_index_keys(&mut self) -> Result<(), StoreError> {
        let transfers_covered = self.transfers.end() / TRANSFER_FRAME_BYTES;
        // After a cut back to a checkpoint an index may already cover positions past the
        // logs' ends (it flushed keys of records the crash or the cut removed); replay writes
        // the same records there again, so what it covered stays covered: never claim less
        // (`insert_batch` refuses a covered position that goes back).
        let [transfers_floor, resolutions_floor, keys_floor] = self.indexes.covered_at_open;
        let scratch = &mut self.scratch;
        if !scratch.transfer_keys.is_empty() {
            self.indexes.transfers.insert_batch(&scratch.transfer_keys, transfers_covered.max(transfers_floor))?;
            scratch.transfer_keys.clear();
        }
        if !scratch.resolution_keys.is_empty() {
            let covered = transfers_covered.max(resolutions_floor);
            self.indexes.resolutions.insert_batch(&scratch.resolution_keys, covered)?;
            scratch.resolution_keys.clear();
        }
        if !scratch.hashed_keys.is_empty() {
            self.indexes.keys.insert_batch(&scratch.hashed_keys, self.wallet.end().max(keys_floor))?;
            scratch.hashed_keys.clear();
        }
        Ok(())
    }

    /// Where the history stands now (what a checkpoint taken now covers).
    pub fn ends(&self) -> HistoryEnds {
        HistoryEnds {
            transfers_end: self.transfers.end(),
            wallet_end: self.wallet.end(),
            events_last: self.events_last,
            history_hash: self.history_hash,
        }
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.transfers.sync()?;
        self.wallet.sync()?;
        self.events.sync()?;
        Ok(())
    }

    /// Deletes events older than the retention policy allows.
    pub fn enforce_event_retention(&mut self, now_ns: u64) -> Result<(), StoreError> {
        self.events.enforce_retention(now_ns).map(|_| ())
    }
}
