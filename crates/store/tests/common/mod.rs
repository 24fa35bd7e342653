//! `DiskNode`: the store driven exactly as the node drives it (crates/cluster/src/state_machine.rs
//! and recovery.rs), without Raft: an entry is applied as keys → prefetch from history → pure
//! apply → persist; a checkpoint syncs history, freezes the hot state, notes history's ends and
//! commits the hot file and manifest; recovery loads the checkpoint in force, cuts history back
//! to its ends and applies the log entries after it again.
//!
//! The "Raft log" is a list of records kept in memory (entries are durable once appended in the
//! real system, so a crash keeps it) and, optionally, the real `LogStore` on the same file system
//! (appended and synced per entry) so that the audit can run on the result.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use croupier_core::codec::{
    decode_checkpoint, decode_event_body, decode_proposal, encode_checkpoint, encode_proposal, EventBody,
};
use croupier_core::command::Proposal;
use croupier_core::events::event_position;
use croupier_core::history::{HistoryKeys, HistoryRecord, HistorySource, Prefetched};
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, FrozenLedger, Ledger, LedgerCode, MemoryLedger, NewAccount,
    NewTransfer, TransferFlags, WalletBet, WalletEntry, WalletRollback, WalletWin,
};
use croupier_store::fs::{FileSystem, OsFileSystem};
use croupier_store::sim_fs::SimFileSystem;
use croupier_store::{
    compute_chain_hash, AsRecord, ChainHash, CheckpointManifest, CheckpointStore, EventLogOptions, HistoryEnds,
    HistoryOptions, HistoryReader, IndexOptions, LogOptions, LogRecord, LogStore, OpenedHistory, RecordKind,
    RecordLogOptions, GENESIS_CHAIN_HASH,
};

/// The membership payload of entry 0 (opaque to the store).
pub const MEMBERSHIP: &[u8] = b"one voter";

/// History options small enough that segments roll, index memtables freeze and flush, and
/// index runs merge within a few dozen entries.
pub fn tiny_history_options() -> HistoryOptions {
    // As in production: history and events roll segments without fsync (derived logs).
    let log = |segment_bytes_max| RecordLogOptions { segment_bytes_max, buffer_bytes_max: 512, sync_on_seal: false };
    let index = IndexOptions {
        memtable_bytes_max: 300,
        frozen_memtables_max: 2,
        bloom_bits_per_key: 10,
        level_size_ratio: 2,
        ..IndexOptions::default()
    };
    HistoryOptions {
        transfers: log(700),
        wallet: log(600),
        operators: log(500),
        events: EventLogOptions { records: log(900), retention_bytes_max: None, retention_age_ns_max: None },
        transfer_index: index.clone(),
        resolution_index: index.clone(),
        key_index: index,
    }
}

#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub history: HistoryOptions,
    /// `Some`: also keep the real `LogStore` (in `DIR/log`) with these options.
    pub log: Option<LogOptions>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions { history: tiny_history_options(), log: Some(LogOptions { segment_size_max_bytes: 4096 }) }
    }
}

/// What the node holds while it runs: everything a crash loses.
pub struct Running {
    pub ledger: Ledger,
    pub history: OpenedHistory,
    pub checkpoints: CheckpointStore,
    pub log: Option<LogStore>,
    /// (index, term) of the last applied entry.
    pub last_applied: Option<(u64, u64)>,
    keys: HistoryKeys,
    prefetched: Prefetched,
    records: Vec<HistoryRecord>,
}

/// A checkpoint between its freeze (taken between two entries) and its commit (which the node
/// does on another task while entries keep applying).
pub struct PendingCheckpoint {
    frozen: FrozenLedger,
    ends: HistoryEnds,
    last_applied: Option<(u64, u64)>,
}

pub struct DiskNode {
    fs: Arc<dyn FileSystem>,
    sim: Option<SimFileSystem>,
    root: PathBuf,
    options: NodeOptions,
    /// Every entry ever appended, from index 0, and its chain hash.
    entries: Vec<LogRecord>,
    hashes: Vec<ChainHash>,
    term: u64,
    checkpoints_taken: u64,
    running: Option<Running>,
}

/// Applied entries and their results.
pub type Applied = Vec<(u64, Vec<CommandResult>)>;

impl DiskNode {
    /// A new node on a simulated file system under `root` (which may also be a real, empty
    /// directory, so that `audit::verify_with` can take its lock).
    pub fn sim(root: impl Into<PathBuf>, options: NodeOptions) -> DiskNode {
        let sim = SimFileSystem::new();
        Self::create(Arc::new(sim.clone()), Some(sim), root.into(), options)
    }

    /// A new node on the OS file system under `root`.
    pub fn os(root: impl Into<PathBuf>, options: NodeOptions) -> DiskNode {
        Self::create(Arc::new(OsFileSystem), None, root.into(), options)
    }

    /// Opens an empty data directory and appends what a new single-node cluster writes first:
    /// the initial membership (entry 0, term 0) and the first leader's blank entry (1, term 1).
    fn create(fs: Arc<dyn FileSystem>, sim: Option<SimFileSystem>, root: PathBuf, options: NodeOptions) -> DiskNode {
        let mut node = DiskNode {
            fs,
            sim,
            root,
            options,
            entries: Vec::new(),
            hashes: Vec::new(),
            term: 0,
            checkpoints_taken: 0,
            running: None,
        };
        let replayed = node.restart().expect("opening an empty data directory");
        assert!(replayed.is_empty());
        node.append(RecordKind::Membership, MEMBERSHIP.to_vec()).expect("membership entry");
        node.elect().expect("first blank entry");
        node
    }

    pub fn fs(&self) -> Arc<dyn FileSystem> {
        Arc::clone(&self.fs)
    }

    pub fn sim_fs(&self) -> &SimFileSystem {
        self.sim.as_ref().expect("a node on the simulated file system")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn history_dir(&self) -> PathBuf {
        self.root.join("history")
    }

    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join("checkpoint")
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().expect("the node is running")
    }

    fn running_mut(&mut self) -> &mut Running {
        self.running.as_mut().expect("the node is running")
    }

    pub fn ledger(&self) -> &Ledger {
        &self.running().ledger
    }

    /// Every entry ever appended (what the log holds, compaction aside).
    pub fn entries(&self) -> &[LogRecord] {
        &self.entries
    }

    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64 - 1
    }

    pub fn chain_hash(&self, index: u64) -> ChainHash {
        self.hashes[index as usize]
    }

    /// The records the last applied proposal produced.
    pub fn last_records(&self) -> &[HistoryRecord] {
        &self.running().records
    }

    /// Appends a proposal to the log and applies it; returns its index and results.
    pub fn propose(&mut self, proposal: &Proposal) -> Result<(u64, Vec<CommandResult>), String> {
        let mut payload = Vec::new();
        encode_proposal(proposal, &mut payload);
        self.append(RecordKind::Normal, payload)
    }

    /// A new leader: a new term and its blank entry.
    pub fn elect(&mut self) -> Result<u64, String> {
        self.term += 1;
        self.append(RecordKind::Blank, Vec::new()).map(|(index, _)| index)
    }

    fn append(&mut self, kind: RecordKind, payload: Vec<u8>) -> Result<(u64, Vec<CommandResult>), String> {
        let index = self.entries.len() as u64;
        let record = LogRecord { index, term: self.term, kind, payload };
        let prev = self.hashes.last().copied().unwrap_or(GENESIS_CHAIN_HASH);
        let hash = compute_chain_hash(&prev, record.as_record());
        let running = self.running.as_mut().expect("the node is running");
        if let Some(log) = running.log.as_mut() {
            log.append(std::slice::from_ref(&record)).map_err(|e| format!("log append: {e}"))?;
            log.sync().map_err(|e| format!("log sync: {e}"))?;
            assert_eq!(log.chain_hash(index).map_err(|e| e.to_string())?, hash, "the test's chain hash");
        }
        self.entries.push(record.clone());
        self.hashes.push(hash);
        let results = apply_entry(running, &record)?;
        Ok((index, results))
    }

    /// A checkpoint as the node takes one (`get_snapshot_builder` then `build_snapshot`).
    pub fn checkpoint(&mut self) -> Result<CheckpointManifest, String> {
        let pending = self.begin_checkpoint()?;
        self.finish_checkpoint(pending)
    }

    /// The part of a checkpoint taken between two entries: sync history, freeze, note ends.
    pub fn begin_checkpoint(&mut self) -> Result<PendingCheckpoint, String> {
        let running = self.running_mut();
        running.history.writer.sync().map_err(|e| format!("history sync: {e}"))?;
        Ok(PendingCheckpoint {
            frozen: running.ledger.freeze(),
            ends: running.history.writer.ends(),
            last_applied: running.last_applied,
        })
    }

    /// The part the node does on another task: write the hot file and the manifest.
    pub fn finish_checkpoint(&mut self, pending: PendingCheckpoint) -> Result<CheckpointManifest, String> {
        let (last_index, last_term) = pending.last_applied.unwrap_or((0, 0));
        let chain_head = match pending.last_applied {
            Some((index, _)) => self.hashes[index as usize],
            None => [0; 32],
        };
        self.checkpoints_taken += 1;
        let mut manifest = CheckpointManifest {
            last_index,
            last_term,
            chain_head,
            transfers_end: pending.ends.transfers_end,
            wallet_end: pending.ends.wallet_end,
            operators_end: pending.ends.operators_end,
            events_last: pending.ends.events_last,
            events_end: pending.ends.events_end,
            membership: MEMBERSHIP.to_vec(),
            snapshot_id: format!("{last_term}-{last_index}-{}", self.checkpoints_taken),
            hot_file: String::new(),
            hot_len: 0,
            hot_sha256: [0; 32],
        };
        let checkpoints = &self.running().checkpoints;
        let mut hot = checkpoints.begin(last_index).map_err(|e| e.to_string())?;
        encode_checkpoint(&pending.frozen, &mut hot).map_err(|e| format!("write checkpoint: {e}"))?;
        checkpoints.commit(hot, &mut manifest).map_err(|e| format!("commit checkpoint: {e}"))?;
        Ok(manifest)
    }

    /// The checkpoint in force.
    pub fn current_checkpoint(&self) -> Option<CheckpointManifest> {
        self.running().checkpoints.current().expect("checkpoint manifest")
    }

    /// Compacts the real log through the checkpoint in force (as openraft does after a
    /// snapshot). Returns the purge point, if any.
    pub fn compact(&mut self) -> Result<Option<u64>, String> {
        let Some(manifest) = self.current_checkpoint() else { return Ok(None) };
        if manifest.last_index == 0 && manifest.last_term == 0 {
            return Ok(None);
        }
        let running = self.running_mut();
        let Some(log) = running.log.as_mut() else { return Ok(None) };
        log.purge_through(manifest.last_index).map_err(|e| format!("purge: {e}"))?;
        Ok(Some(manifest.last_index))
    }

    /// Stops the node without a crash: everything it wrote stays, synced or not.
    pub fn stop(&mut self) {
        self.running = None;
    }

    pub fn is_simulated(&self) -> bool {
        self.sim.is_some()
    }

    pub fn has_log_store(&self) -> bool {
        self.options.log.is_some()
    }

    /// Power loss: the node stops and the file system keeps only what a disk could hold.
    pub fn crash(&mut self, seed: u64) {
        self.running = None;
        self.sim_fs().crash(seed);
    }

    /// Opens the data directory as `recovery::open_storage` does, then applies the entries the
    /// checkpoint does not cover (as openraft does). Returns those entries' results.
    pub fn restart(&mut self) -> Result<Applied, String> {
        self.running = None;
        let fs = Arc::clone(&self.fs);
        fs.create_dir_all(&self.root).map_err(|e| format!("create {}: {e}", self.root.display()))?;
        let log = match &self.options.log {
            Some(options) => {
                let (log, _) = LogStore::open_with(fs.clone(), self.root.join("log"), options.clone())
                    .map_err(|e| format!("open log: {e}"))?;
                Some(log)
            }
            None => None,
        };
        let checkpoints =
            CheckpointStore::open(fs.clone(), self.root.join("checkpoint")).map_err(|e| format!("checkpoints: {e}"))?;
        let current = checkpoints.current().map_err(|e| format!("checkpoint manifest: {e}"))?;
        if let (Some(manifest), Some(log)) = (&current, &log) {
            check_checkpoint_chains_to_log(manifest, log)?;
        }
        let ledger = match &current {
            None => Ledger::new(),
            Some(manifest) => {
                let bytes = checkpoints.load_hot(manifest).map_err(|e| format!("load checkpoint: {e}"))?;
                decode_checkpoint(&bytes).map_err(|e| format!("checkpoint does not decode: {e}"))?
            }
        };
        let ends = current.as_ref().map(|m| m.history_ends());
        let history =
            OpenedHistory::open(fs, &self.root.join("history"), &self.root.join("events"), &self.options.history, ends)
                .map_err(|e| format!("open history: {e}"))?;
        let on_disk = history.reader.transfer_count();
        if on_disk != ledger.transfer_count() {
            return Err(format!(
                "the checkpoint counts {} transfers but history holds {on_disk}",
                ledger.transfer_count()
            ));
        }
        let last_applied =
            current.as_ref().filter(|m| m.last_index > 0 || m.last_term > 0).map(|m| (m.last_index, m.last_term));
        self.running = Some(Running {
            ledger,
            history,
            checkpoints,
            log,
            last_applied,
            keys: HistoryKeys::default(),
            prefetched: Prefetched::default(),
            records: Vec::new(),
        });
        self.replay_log()
    }

    fn replay_log(&mut self) -> Result<Applied, String> {
        let running = self.running.as_mut().expect("just opened");
        let from = running.last_applied.map_or(0, |(index, _)| index + 1);
        let records = match &running.log {
            Some(log) => {
                let Some(last) = log.last_index() else { return Ok(Vec::new()) };
                if log.first_index().is_some_and(|first| first > from) {
                    return Err(format!("the log was compacted past entry {from}, which no checkpoint covers"));
                }
                let records = if from <= last {
                    log.read_range(from, last + 1).map_err(|e| format!("read log: {e}"))?
                } else {
                    Vec::new()
                };
                let expected = &self.entries[from.min(self.entries.len() as u64) as usize..];
                assert_eq!(records, expected, "the log on disk holds what was appended");
                records
            }
            None => self.entries.get(from as usize..).unwrap_or_default().to_vec(),
        };
        let mut applied = Vec::new();
        for record in &records {
            let results = apply_entry(running, record)?;
            if record.kind == RecordKind::Normal {
                applied.push((record.index, results));
            }
        }
        Ok(applied)
    }

    /// Checks everything on disk against `model` (a `MemoryLedger` that applied the same
    /// proposals) and `events` (the model's records with the positions the node gives them);
    /// `probes` adds keys to look up beyond those in the model's history (absent ones).
    pub fn check_against_model(
        &self,
        model: &MemoryLedger,
        events: &[(u64, HistoryRecord)],
        probes: &Probes,
    ) -> Result<(), String> {
        let running = self.running();
        let mut hot = Vec::new();
        encode_checkpoint(&running.ledger.freeze(), &mut hot).map_err(|e| e.to_string())?;
        if hot != model.checkpoint() {
            return Err(format!(
                "hot state differs from the model's ({} vs {} bytes)",
                hot.len(),
                model.checkpoint().len()
            ));
        }
        let reader = &running.history.reader;
        let transfers = model.history.transfers();
        if reader.transfer_count() != transfers.len() as u64 {
            return Err(format!("history holds {} transfers, the model {}", reader.transfer_count(), transfers.len()));
        }
        for (seq, expected) in transfers.iter().enumerate() {
            let found = reader.transfer_at(seq as u64).map_err(|e| format!("transfer_at({seq}): {e}"))?;
            if found.as_ref() != Some(expected) {
                return Err(format!("transfer_at({seq}) = {found:?}, the model has {expected:?}"));
            }
        }
        let beyond = reader.transfer_at(transfers.len() as u64).map_err(|e| e.to_string())?;
        if beyond.is_some() {
            return Err(format!("transfer_at past the end found {beyond:?}"));
        }
        let mut ids: BTreeSet<u128> = probes.transfer_ids.iter().copied().collect();
        for stored in transfers {
            ids.insert(stored.transfer.id);
            ids.insert(stored.transfer.pending_id);
        }
        for &id in &ids {
            let Ok(expected) = model.history.transfer_by_id(id);
            let found = reader.transfer_by_id(id).map_err(|e| format!("transfer_by_id({id}): {e}"))?;
            if found != expected {
                return Err(format!("transfer_by_id({id}) = {found:?}, the model has {expected:?}"));
            }
            let Ok(expected) = model.history.resolution_of(id);
            let found = reader.resolution_of(id).map_err(|e| format!("resolution_of({id}): {e}"))?;
            if found != expected {
                return Err(format!("resolution_of({id}) = {found:?}, the model has {expected:?}"));
            }
        }
        let mut keys: BTreeSet<String> = probes.wallet_keys.iter().cloned().collect();
        let mut settled: BTreeSet<(u128, String)> = probes.settled.iter().cloned().collect();
        for record in model.history.wallet_records() {
            keys.insert(record.key.clone());
            match &record.entry {
                WalletEntry::Bet { request, .. } => {
                    settled.insert((request.player_id, request.round_id.clone()));
                }
                WalletEntry::Win { request, .. } => {
                    settled.insert((request.player_id, request.round_id.clone()));
                }
                WalletEntry::Rollback { request, .. } => {
                    keys.insert(request.rolled_back_transaction_id.clone());
                    settled.insert((request.player_id, request.round_id.clone()));
                }
                WalletEntry::Tombstone { rollback_transaction_id, .. } => {
                    keys.insert(rollback_transaction_id.clone());
                }
            }
        }
        for key in &keys {
            let Ok(expected) = model.history.wallet_entry(key);
            let found = reader.wallet_entry(key).map_err(|e| format!("wallet_entry({key:?}): {e}"))?;
            if found != expected {
                return Err(format!("wallet_entry({key:?}) = {found:?}, the model has {expected:?}"));
            }
            let Ok(expected) = model.history.is_rolled_back(key);
            let found = reader.is_rolled_back(key).map_err(|e| format!("is_rolled_back({key:?}): {e}"))?;
            if found != expected {
                return Err(format!("is_rolled_back({key:?}) = {found}, the model says {expected}"));
            }
        }
        for (player, round) in &settled {
            let Ok(expected) = model.history.is_settled(*player, round);
            let found = reader.is_settled(*player, round).map_err(|e| format!("is_settled: {e}"))?;
            if found != expected {
                return Err(format!("is_settled({player}, {round:?}) = {found}, the model says {expected}"));
            }
        }
        check_payments(reader, model, probes)?;
        self.check_events(events)?;
        let stream = (0..reader.transfer_count()).map(|seq| match reader.transfer_at(seq) {
            Ok(Some(stored)) => Ok(stored),
            Ok(None) => Err(format!("no transfer {seq}")),
            Err(error) => Err(error.to_string()),
        });
        running.ledger.check_against_history(stream).map_err(|broken| format!("check_against_history: {broken}"))
    }

    /// The event feed must hold exactly `events`, in order.
    pub fn check_events(&self, events: &[(u64, HistoryRecord)]) -> Result<(), String> {
        let feed = &self.running().history.events;
        let mut found = Vec::new();
        let mut after = 0;
        loop {
            let page = feed.read_after(after, 64, 1 << 20).map_err(|e| format!("read events: {e}"))?;
            if page.missed_by_retention {
                return Err("events were deleted by retention".into());
            }
            if page.events.is_empty() {
                break;
            }
            after = page.next_after;
            found.extend(page.events);
        }
        if found.len() != events.len() {
            return Err(format!("the feed holds {} events, the model {}", found.len(), events.len()));
        }
        for (event, (position, record)) in found.iter().zip(events) {
            let body = decode_event_body(&event.body).map_err(|e| format!("event {}: {e}", event.position))?;
            let decoded = match body {
                EventBody::Record(record) => record,
                EventBody::TransferRef(seq) => match self.running().history.reader.transfer_at(seq) {
                    Ok(Some(stored)) => HistoryRecord::Transfer(stored),
                    other => return Err(format!("event {} names transfer {seq}: {other:?}", event.position)),
                },
            };
            if event.position != *position || event.timestamp_ns != record.timestamp() || decoded != *record {
                return Err(format!(
                    "event {} (timestamp {}) is {decoded:?}, the model has {record:?} at {position}",
                    event.position, event.timestamp_ns
                ));
            }
        }
        if feed.last_position() != events.last().map_or(0, |(position, _)| *position) {
            return Err(format!("the feed's last position is {}", feed.last_position()));
        }
        Ok(())
    }
}

/// Archived payments by key (the model's and the probes') and by each clearing transfer.
fn check_payments(reader: &HistoryReader, model: &MemoryLedger, probes: &Probes) -> Result<(), String> {
    let archived = model.history.archived_payments();
    let keys = probes.payments.iter().copied().chain(archived.iter().map(|p| p.key()));
    for key in keys.collect::<BTreeSet<_>>() {
        let Ok(expected) = model.history.archived_payment(key);
        let found = reader.archived_payment(key).map_err(|e| format!("archived_payment({key:?}): {e}"))?;
        if found != expected {
            return Err(format!("archived_payment({key:?}) = {found:?}, the model has {expected:?}"));
        }
    }
    for id in 0..=8 {
        let Ok(expected) = model.history.archived_case(id);
        let found = reader.archived_case(id).map_err(|e| format!("archived_case({id}): {e}"))?;
        if found != expected {
            return Err(format!("archived_case({id}) = {found:?}, the model has {expected:?}"));
        }
    }
    for id in archived.iter().flat_map(|p| p.clearing_transfer_ids()) {
        let Ok(expected) = model.history.archived_payment_of_transfer(id);
        let found = reader.archived_payment_of_transfer(id).map_err(|e| format!("payment of transfer {id}: {e}"))?;
        if found != expected || found.is_none() {
            return Err(format!("payment of transfer {id} = {found:?}, the model has {expected:?}"));
        }
    }
    Ok(())
}

/// Keys to look up beyond those the model's history names.
#[derive(Clone, Debug, Default)]
pub struct Probes {
    pub transfer_ids: Vec<u128>,
    pub wallet_keys: Vec<String>,
    pub settled: Vec<(u128, String)>,
    pub payments: Vec<croupier_core::payments::PaymentKey>,
}

/// The model's events for the records of the entry at `index`.
pub fn events_of(index: u64, records: &[HistoryRecord]) -> impl Iterator<Item = (u64, HistoryRecord)> + '_ {
    let events = records.iter().enumerate().filter(|(_, record)| record.is_event());
    events.map(move |(ordinal, record)| (event_position(index, ordinal as u64), record.clone()))
}

/// `LedgerStateMachine::apply` for one entry.
fn apply_entry(running: &mut Running, record: &LogRecord) -> Result<Vec<CommandResult>, String> {
    running.last_applied = Some((record.index, record.term));
    running.records.clear();
    if record.kind != RecordKind::Normal {
        return Ok(Vec::new());
    }
    let proposal = decode_proposal(&record.payload).map_err(|e| format!("entry {}: {e}", record.index))?;
    running.keys.clear();
    running.ledger.history_keys(&proposal.commands, &mut running.keys);
    running
        .history
        .reader
        .fetch(&running.keys, &mut running.prefetched)
        .map_err(|e| format!("entry {}: prefetch: {e}", record.index))?;
    let stamp = croupier_core::command::EntryStamp { timestamp_ns: proposal.timestamp_ns, term: record.term };
    let results = running.ledger.apply(stamp, &proposal.commands, &mut running.prefetched, &mut running.records);
    running
        .history
        .writer
        .persist(record.index, &running.records)
        .map_err(|e| format!("entry {}: persist: {e}", record.index))?;
    Ok(results)
}

/// `recovery::check_checkpoint_chains_to_log`.
fn check_checkpoint_chains_to_log(manifest: &CheckpointManifest, log: &LogStore) -> Result<(), String> {
    let index = manifest.last_index;
    let log_holds_entry = log.last_purged().is_some_and(|(purged, _, _)| purged == index)
        || (log.first_index().is_some_and(|first| first <= index)
            && log.last_index().is_some_and(|last| index <= last));
    if !log_holds_entry {
        if log.last_index().is_some_and(|last| last < index) || log.last_index().is_none() && index > 0 {
            return Err(format!(
                "checkpoint {} covers entry {index}, but the log ends before it",
                manifest.snapshot_id
            ));
        }
        return Ok(());
    }
    let log_head = log.chain_hash(index).map_err(|e| e.to_string())?;
    if log_head != manifest.chain_head {
        return Err(format!("checkpoint {} does not chain to the log's entry {index}", manifest.snapshot_id));
    }
    Ok(())
}

pub const SECOND_NS: u64 = 1_000_000_000;
/// 2025-01-01, as the core's tests start.
pub const T0: u64 = 1_735_689_600 * SECOND_NS;
/// Accounts of `sample_proposal`: two players and two system accounts (funding, house).
pub const PLAYER_A: u128 = 1;
pub const PLAYER_B: u128 = 2;
pub const FUNDING: u128 = 3;
pub const HOUSE: u128 = 4;

pub fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

fn transfer(id: u128, debit_account_id: u128, credit_account_id: u128, amount: u64) -> NewTransfer {
    NewTransfer {
        id,
        debit_account_id,
        credit_account_id,
        amount,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    }
}

/// A fixed workload, one proposal per `n` (0: accounts and deposits; then a second apart):
/// plain and linked transfers, pendings that are posted or expire, wallet bets, wins and
/// rollbacks.
pub fn sample_proposal(n: u64) -> Proposal {
    let timestamp_ns = T0 + n * SECOND_NS;
    if n == 0 {
        let account = |id, kind| NewAccount { id, ledger: eur(), kind, flags: AccountFlags::empty() };
        let accounts = vec![
            account(PLAYER_A, AccountKind::Player),
            account(PLAYER_B, AccountKind::Player),
            account(FUNDING, AccountKind::System),
            account(HOUSE, AccountKind::System),
        ];
        let deposits = vec![transfer(1, FUNDING, PLAYER_A, 1_000), transfer(2, FUNDING, PLAYER_B, 1_000)];
        return Proposal {
            timestamp_ns,
            commands: vec![Command::CreateAccounts(accounts), Command::CreateTransfers(deposits)],
        };
    }
    let id = n as u128 * 100;
    let linked = NewTransfer { flags: TransferFlags::LINKED, ..transfer(id + 1, PLAYER_A, HOUSE, 20) };
    let mut transfers = vec![transfer(id, FUNDING, PLAYER_A, 50), linked, transfer(id + 2, PLAYER_B, HOUSE, 5)];
    match n % 3 {
        // A pending transfer: posted by the next entry, or left to expire when n % 5 == 0.
        1 => transfers.push(NewTransfer {
            flags: TransferFlags::PENDING,
            timeout_s: if n.is_multiple_of(5) { 1 } else { 30 },
            ..transfer(id + 3, PLAYER_A, HOUSE, 7)
        }),
        2 => transfers.push(NewTransfer {
            flags: TransferFlags::POST_PENDING_TRANSFER,
            pending_id: id - 100 + 3,
            ..transfer(id + 4, 0, 0, 0)
        }),
        _ => {}
    }
    let round = format!("round-{n}");
    let bet = format!("bet-{n}");
    // Every other entry's transfers come from an operator key: the audit trail's records.
    let transfers = match n % 2 {
        1 => Command::ByOperator {
            key_id: "finance-1".into(),
            command: Box::new(Command::CreateTransfers(transfers)),
            recorded: true,
        },
        _ => Command::CreateTransfers(transfers),
    };
    let mut commands = vec![
        transfers,
        Command::WalletBet(WalletBet {
            transaction_id: bet.clone(),
            player_id: PLAYER_B,
            round_id: round.clone(),
            amount: 10,
            ledger: eur(),
        }),
    ];
    if n % 4 == 3 {
        commands.push(Command::WalletRollback(WalletRollback {
            transaction_id: format!("rollback-{n}"),
            player_id: PLAYER_B,
            round_id: round.clone(),
            rolled_back_transaction_id: bet,
        }));
    } else if n.is_multiple_of(2) {
        commands.push(Command::WalletWin(WalletWin {
            transaction_id: format!("win-{n}"),
            player_id: PLAYER_B,
            round_id: round,
            amount: 15,
            ledger: eur(),
        }));
    }
    if n.is_multiple_of(7) {
        commands.push(Command::Tick);
    }
    Proposal { timestamp_ns, commands }
}
