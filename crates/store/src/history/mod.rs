//! The ledger's history on disk: what `croupier_core::Ledger::apply` yields, persisted and
//! indexed so the next entries' prefetch and the API's reads find it.
//!
//! - `transfers/`: a record log of fixed-size transfer records; transfer number `seq` lives at
//!   position `seq × TRANSFER_FRAME_BYTES`, so account histories (chains of sequence numbers)
//!   are walked with direct reads.
//! - `wallet/`: a record log of wallet decisions (variable size).
//! - `operators/`: the operator audit trail, fixed-size records (`croupier_core::operators`),
//!   action number `seq` at `seq × OPERATOR_FRAME_BYTES`; hash-chained by the ledger.
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

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use croupier_core::codec::{
    encode_event_body, encode_transfer_record, encode_wallet_log_record, TRANSFER_RECORD_BYTES,
};
use croupier_core::events::event_position;
use croupier_core::history::{indexed_keys, HistoryRecord, IndexedKey};
use croupier_core::operators::OPERATOR_RECORD_BYTES;

use crate::events::{EventFeed, EventLog, EventLogOptions};
use crate::fs::FileSystem;
use crate::index::{IdIndex, IndexOptions};
use crate::records::{RecordLog, RecordLogOptions, RecordSync, RECORD_FRAME_OVERHEAD_BYTES};
use crate::StoreError;

pub use keys::{hashed_key, KeyDomain};
pub use reader::HistoryReader;

/// A persist slower than this is logged with its phases.
const SLOW_PERSIST_WARN_MS: u128 = 50;

/// Bytes one transfer record occupies in the transfers log, frame included.
pub const TRANSFER_FRAME_BYTES: u64 = (RECORD_FRAME_OVERHEAD_BYTES + TRANSFER_RECORD_BYTES) as u64;
/// Bytes one operator action occupies in the operators log, frame included.
pub const OPERATOR_FRAME_BYTES: u64 = (RECORD_FRAME_OVERHEAD_BYTES + OPERATOR_RECORD_BYTES) as u64;

/// Where the history stood at a checkpoint: recovery cuts the logs back to these.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HistoryEnds {
    pub transfers_end: u64,
    pub wallet_end: u64,
    pub operators_end: u64,
    /// Last event position (0: no event yet).
    pub events_last: u64,
    /// Where the event log's bytes ended (its durable floor).
    pub events_end: u64,
}

#[derive(Clone, Debug)]
pub struct HistoryOptions {
    pub transfers: RecordLogOptions,
    pub wallet: RecordLogOptions,
    pub operators: RecordLogOptions,
    pub events: EventLogOptions,
    pub transfer_index: IndexOptions,
    pub resolution_index: IndexOptions,
    pub key_index: IndexOptions,
}

/// History and events can be rebuilt by replay above a checkpoint, so their segments are not
/// fsynced when they roll (see `RecordLogOptions::sync_on_seal`): checkpoints sync them.
pub fn derived_log_options(segment_bytes_max: u64) -> RecordLogOptions {
    RecordLogOptions { segment_bytes_max, sync_on_seal: false, ..RecordLogOptions::default() }
}

impl Default for HistoryOptions {
    fn default() -> Self {
        let segment_bytes_max = RecordLogOptions::default().segment_bytes_max;
        HistoryOptions {
            transfers: derived_log_options(segment_bytes_max),
            wallet: derived_log_options(segment_bytes_max),
            operators: derived_log_options(segment_bytes_max),
            events: EventLogOptions { records: derived_log_options(segment_bytes_max), ..EventLogOptions::default() },
            transfer_index: IndexOptions::default(),
            resolution_index: IndexOptions::default(),
            key_index: IndexOptions::default(),
        }
    }
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
    operators: RecordLog,
    events: EventLog,
    indexes: Arc<Indexes>,
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
    /// Settled-round keys, added to `hashed_keys` by `keys::add_settled_keys`.
    settled_keys: Vec<(u128, u64)>,
    settled_seen: HashSet<u128>,
    hash_input: Vec<u8>,
}

/// A sync of every history log taken off the writer (see `HistoryWriter::sync_handle`).
#[derive(Debug)]
pub struct HistorySync {
    logs: [RecordSync; 4],
}

impl HistorySync {
    pub fn run(self) -> Result<(), StoreError> {
        for log in self.logs {
            log.run()?;
        }
        Ok(())
    }
}

/// An opened history: its writer, a reader, and the event feed.
pub struct OpenedHistory {
    pub writer: HistoryWriter,
    pub reader: HistoryReader,
    pub events: EventFeed,
    /// Where opening cut a log above its durable floor (unsynced or damaged tails that replay
    /// rebuilds).
    pub cuts: Vec<crate::TornTail>,
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
        let HistoryLogs { mut transfers, mut wallet, mut operators, readers, cuts } =
            HistoryLogs::open(&fs, dir, options, &ends)?;
        cut_back(&mut transfers, ends.transfers_end, &dir.join("transfers"))?;
        cut_back(&mut wallet, ends.wallet_end, &dir.join("wallet"))?;
        cut_back(&mut operators, ends.operators_end, &dir.join("operators"))?;
        for (name, end, frame) in [
            ("transfers", ends.transfers_end, TRANSFER_FRAME_BYTES),
            ("operators", ends.operators_end, OPERATOR_FRAME_BYTES),
        ] {
            if !end.is_multiple_of(frame) {
                let reason = "checkpoint end is not on a record boundary";
                return Err(StoreError::corrupt(&dir.join(name), end, None, reason));
            }
        }
        let started = std::time::Instant::now();
        let (mut events, feed, _) =
            EventLog::open_above(fs.clone(), events_dir, options.events.clone(), ends.events_end)?;
        events.truncate_after(ends.events_last)?;
        let events_opened = started.elapsed();
        let indexes = Arc::new(open_indexes(&fs, dir, options)?);
        let indexes_opened = started.elapsed();
        let reader = HistoryReader::new(readers, Arc::clone(&indexes));
        reader.catch_up_indexes(ends.transfers_end, ends.wallet_end)?;
        tracing::debug!(
            events_ms = events_opened.as_millis() as u64,
            indexes_ms = (indexes_opened - events_opened).as_millis() as u64,
            catch_up_ms = (started.elapsed() - indexes_opened).as_millis() as u64,
            "history opened"
        );
        let writer = HistoryWriter {
            transfers,
            wallet,
            operators,
            events,
            indexes,
            events_last: ends.events_last,
            scratch: Scratch::default(),
        };
        Ok(OpenedHistory { writer, reader, events: feed, cuts })
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
        ends: Option<HistoryEnds>,
    ) -> Result<OpenedHistory, StoreError> {
        let ends = ends.unwrap_or_default();
        let HistoryLogs { transfers, wallet, operators, readers, cuts } = HistoryLogs::open(&fs, dir, options, &ends)?;
        let whole = (transfers.end() / TRANSFER_FRAME_BYTES) * TRANSFER_FRAME_BYTES;
        let (events, feed, _) = EventLog::open_above(fs.clone(), events_dir, options.events.clone(), ends.events_end)?;
        let indexes = Arc::new(open_indexes(&fs, dir, options)?);
        let reader = HistoryReader::new(readers, Arc::clone(&indexes));
        reader.catch_up_indexes(whole, wallet.end())?;
        let writer = HistoryWriter {
            transfers,
            wallet,
            operators,
            events_last: events.last_position(),
            events,
            indexes,
            scratch: Scratch::default(),
        };
        Ok(OpenedHistory { writer, reader, events: feed, cuts })
    }
}

/// The history record logs, opened above a checkpoint's ends, and their readers (transfers,
/// wallet, operators).
struct HistoryLogs {
    transfers: RecordLog,
    wallet: RecordLog,
    operators: RecordLog,
    readers: [crate::records::RecordReader; 3],
    cuts: Vec<crate::TornTail>,
}

impl HistoryLogs {
    fn open(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        options: &HistoryOptions,
        ends: &HistoryEnds,
    ) -> Result<HistoryLogs, StoreError> {
        let (transfers, transfers_reader, transfers_report) =
            RecordLog::open_above(fs.clone(), dir.join("transfers"), options.transfers.clone(), ends.transfers_end)?;
        let (wallet, wallet_reader, wallet_report) =
            RecordLog::open_above(fs.clone(), dir.join("wallet"), options.wallet.clone(), ends.wallet_end)?;
        let (operators, operators_reader, operators_report) =
            RecordLog::open_above(fs.clone(), dir.join("operators"), options.operators.clone(), ends.operators_end)?;
        let cuts = [transfers_report.torn_tail, wallet_report.torn_tail, operators_report.torn_tail]
            .into_iter()
            .flatten()
            .collect();
        let readers = [transfers_reader, wallet_reader, operators_reader];
        Ok(HistoryLogs { transfers, wallet, operators, readers, cuts })
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
        let started = std::time::Instant::now();
        for (ordinal, record) in records.iter().enumerate() {
            self.append_record(record)?;
            if !record.is_event() {
                continue;
            }
            self.scratch.event.clear();
            encode_event_body(record, &mut self.scratch.event);
            let position = event_position(log_index, ordinal as u64);
            self.events.append(position, record.timestamp(), &self.scratch.event)?;
            self.events_last = position;
        }
        let appended = started.elapsed();
        self.transfers.flush()?;
        self.wallet.flush()?;
        self.operators.flush()?;
        self.events.flush()?;
        let flushed = started.elapsed();
        self.insert_index_keys()?;
        let indexed = started.elapsed();
        if indexed.as_millis() >= SLOW_PERSIST_WARN_MS {
            tracing::warn!(
                log_index,
                records = records.len(),
                append_ms = appended.as_millis() as u64,
                write_ms = (flushed - appended).as_millis() as u64,
                index_ms = (indexed - flushed).as_millis() as u64,
                "slow history persist"
            );
        }
        Ok(())
    }

    fn append_record(&mut self, record: &HistoryRecord) -> Result<(), StoreError> {
        let scratch = &mut self.scratch;
        scratch.payload.clear();
        let position = match record {
            HistoryRecord::AccountCreated(_) | HistoryRecord::Table(_) | HistoryRecord::Payment(_) => return Ok(()),
            HistoryRecord::Transfer(stored) => {
                encode_transfer_record(stored, &mut scratch.payload);
                let position = self.transfers.append(&scratch.payload)?;
                assert_eq!(position, stored.seq * TRANSFER_FRAME_BYTES, "transfer record out of place");
                stored.seq
            }
            HistoryRecord::Wallet(_) | HistoryRecord::PaymentArchived(_) | HistoryRecord::CaseArchived(_) => {
                encode_wallet_log_record(record, &mut scratch.payload);
                self.wallet.append(&scratch.payload)?
            }
            HistoryRecord::OperatorAction(action) => {
                action.encode(&mut scratch.payload);
                let position = self.operators.append(&scratch.payload)?;
                assert_eq!(position, action.seq * OPERATOR_FRAME_BYTES, "operator action out of place");
                return Ok(());
            }
        };
        indexed_keys(record, |key| match key {
            IndexedKey::Transfer(id) => scratch.transfer_keys.push((id, position)),
            IndexedKey::Resolution(id) => scratch.resolution_keys.push((id, position)),
            other @ IndexedKey::Settled(..) => {
                let hashed = keys::indexed_key_hash(&other, &mut scratch.hash_input);
                scratch.settled_keys.push((hashed, position));
            }
            other => {
                let hashed = keys::indexed_key_hash(&other, &mut scratch.hash_input);
                scratch.hashed_keys.push((hashed, position));
            }
        });
        Ok(())
    }

    fn insert_index_keys(&mut self) -> Result<(), StoreError> {
        // An index may cover more than the logs hold after `open` cut them back to a checkpoint
        // (a memtable flushed after it): the replay then re-inserts keys the index already has,
        // and its coverage stays where it was until the logs pass it (it never goes back).
        let [transfers_at_open, resolutions_at_open, keys_at_open] = self.indexes.covered_at_open;
        let transfers_covered = self.transfers.end() / TRANSFER_FRAME_BYTES;
        let scratch = &mut self.scratch;
        // Every index hears of every entry, keys or not: its covered_through must keep up, or
        // a restart would re-insert from far back for an index that rarely gets a key.
        self.indexes.transfers.insert_batch(&scratch.transfer_keys, transfers_covered.max(transfers_at_open))?;
        scratch.transfer_keys.clear();
        let covered = transfers_covered.max(resolutions_at_open);
        self.indexes.resolutions.insert_batch(&scratch.resolution_keys, covered)?;
        scratch.resolution_keys.clear();
        if !scratch.settled_keys.is_empty() {
            let (settled, seen) = (&scratch.settled_keys, &mut scratch.settled_seen);
            keys::add_settled_keys(&self.indexes.keys, settled, &mut scratch.hashed_keys, seen)?;
            scratch.settled_keys.clear();
        }
        self.indexes.keys.insert_batch(&scratch.hashed_keys, self.wallet.end().max(keys_at_open))?;
        scratch.hashed_keys.clear();
        Ok(())
    }

    /// Where the history stands now (what a checkpoint taken now covers).
    pub fn ends(&self) -> HistoryEnds {
        HistoryEnds {
            transfers_end: self.transfers.end(),
            wallet_end: self.wallet.end(),
            operators_end: self.operators.end(),
            events_last: self.events_last,
            events_end: self.events.byte_end(),
        }
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.transfers.sync()?;
        self.wallet.sync()?;
        self.operators.sync()?;
        self.events.sync()?;
        Ok(())
    }

    /// Bounds what a restart must re-index: each index whose durable coverage lags by more
    /// than `transfers_gap` transfers (or `wallet_gap` wallet bytes) freezes its memtable for
    /// its flush thread. Called at checkpoints; never blocks.
    pub fn bound_index_catch_up(&mut self, transfers_gap: u64, wallet_gap: u64) -> Result<(), StoreError> {
        self.indexes.transfers.freeze_if_behind(transfers_gap)?;
        self.indexes.resolutions.freeze_if_behind(transfers_gap)?;
        self.indexes.keys.freeze_if_behind(wallet_gap)?;
        Ok(())
    }

    /// What a checkpoint must fsync, to run on another thread while entries keep applying:
    /// everything appended so far (`ends()` now) is durable once `HistorySync::run` returns.
    pub fn sync_handle(&mut self) -> Result<HistorySync, StoreError> {
        Ok(HistorySync {
            logs: [
                self.transfers.sync_handle()?,
                self.wallet.sync_handle()?,
                self.operators.sync_handle()?,
                self.events.sync_handle()?,
            ],
        })
    }

    /// Deletes events older than the retention policy allows.
    pub fn enforce_event_retention(&mut self, now_ns: u64) -> Result<(), StoreError> {
        self.events.enforce_retention(now_ns).map(|_| ())
    }
}
