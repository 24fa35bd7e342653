//! Property test: random sequences of append / sync / truncate / purge / reopen / crash /
//! failing sync / clean close against a plain in-memory model. After a crash the log must hold
//! every synced entry, nothing the model never had, and a chain that matches the model's; after
//! a clean close (even followed by a crash) it must hold every entry.

use std::sync::Arc;

use croupier_store::sim_fs::{Fault, SimFileSystem};
use croupier_store::{
    compute_chain_hash, AsRecord, ChainHash, LogOptions, LogRecord, LogStore, RecordKind, GENESIS_CHAIN_HASH,
};
use proptest::prelude::*;

const LOG_DIR: &str = "/node/log";
/// Frames are 65 bytes plus up to 150 of payload: rolls every one to four records.
const SEGMENT_BYTES: u64 = 300;

#[derive(Clone, Debug)]
enum Op {
    Append { count: u8, seed: u16, new_term: bool },
    Sync,
    TruncateFrom { back: u8 },
    PurgeThrough { back: u8 },
    PurgeThroughSnapshot { ahead: u8 },
    Reopen,
    Crash { seed: u64 },
    FailingSync { count: u8, seed: u64 },
    Close { crash_seed: Option<u64> },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..6, any::<u16>(), any::<bool>()).prop_map(|(count, seed, new_term)| Op::Append { count, seed, new_term }),
        3 => Just(Op::Sync),
        1 => (0u8..8).prop_map(|back| Op::TruncateFrom { back }),
        1 => (0u8..8).prop_map(|back| Op::PurgeThrough { back }),
        1 => (0u8..4).prop_map(|ahead| Op::PurgeThroughSnapshot { ahead }),
        1 => Just(Op::Reopen),
        2 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => (1u8..4, any::<u64>()).prop_map(|(count, seed)| Op::FailingSync { count, seed }),
        1 => any::<Option<u64>>().prop_map(|crash_seed| Op::Close { crash_seed }),
    ]
}

#[derive(Default)]
struct Model {
    entries: Vec<LogRecord>,
    /// `hashes[i]` is the chain hash of `entries[i]`.
    hashes: Vec<ChainHash>,
    purged: Option<(u64, u64, ChainHash)>,
    /// How many leading entries are known to be on disk.
    durable: usize,
    term: u64,
}

impl Model {
    fn first_index(&self) -> u64 {
        self.entries.first().map_or_else(|| self.purged.map_or(1, |p| p.0 + 1), |e| e.index)
    }

    fn next_index(&self) -> u64 {
        self.entries.last().map_or_else(|| self.first_index(), |e| e.index + 1)
    }

    fn last_hash(&self) -> ChainHash {
        self.hashes.last().copied().unwrap_or_else(|| self.purged.map_or(GENESIS_CHAIN_HASH, |p| p.2))
    }

    fn make_records(&mut self, count: u8, seed: u16, new_term: bool) -> Vec<LogRecord> {
        if new_term || self.term == 0 {
            self.term += 1;
        }
        let next = self.next_index();
        (0..count as u64)
            .map(|i| {
                let index = next + i;
                let mix = (seed as u64).wrapping_mul(2654435761).wrapping_add(index * 40503);
                let len = (mix % 151) as usize;
                let kind = [RecordKind::Normal, RecordKind::Normal, RecordKind::Blank, RecordKind::Membership]
                    [(mix % 4) as usize];
                let payload = (0..len).map(|b| (mix >> (b % 7)) as u8 ^ b as u8).collect();
                LogRecord { index, term: self.term, kind, payload }
            })
            .collect()
    }

    fn push(&mut self, records: &[LogRecord]) {
        for record in records {
            let hash = compute_chain_hash(&self.last_hash(), record.as_record());
            self.entries.push(record.clone());
            self.hashes.push(hash);
        }
    }

    fn keep(&mut self, len: usize) {
        self.entries.truncate(len);
        self.hashes.truncate(len);
        self.durable = self.durable.min(len);
    }
}

struct Harness {
    fs: SimFileSystem,
    log: Option<LogStore>,
    model: Model,
}

impl Harness {
    fn new() -> Self {
        let fs = SimFileSystem::new();
        let mut harness = Harness { fs, log: None, model: Model::default() };
        harness.reopen();
        harness
    }

    fn log(&mut self) -> &mut LogStore {
        self.log.as_mut().expect("log is open")
    }

    fn reopen(&mut self) {
        self.log = None;
        let options = LogOptions { segment_size_max_bytes: SEGMENT_BYTES };
        let (log, _) = LogStore::open_with(Arc::new(self.fs.clone()), LOG_DIR, options)
            .unwrap_or_else(|e| panic!("reopen failed: {e}"));
        self.log = Some(log);
    }

    fn crash_and_reopen(&mut self, seed: u64) {
        self.log = None;
        self.fs.crash(seed);
        self.reopen();
        let log = self.log.as_ref().expect("log is open");
        let survived = match log.last_index() {
            Some(last) => (last + 1 - self.model.first_index()) as usize,
            None => 0,
        };
        assert!(
            survived >= self.model.durable && survived <= self.model.entries.len(),
            "after a crash the log holds {survived} entries; the model had {} of which {} synced",
            self.model.entries.len(),
            self.model.durable
        );
        self.model.keep(survived);
        self.model.durable = survived;
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append { count, seed, new_term } => {
                let records = self.model.make_records(count, seed, new_term);
                self.log().append(&records).unwrap();
                self.model.push(&records);
            }
            Op::Sync => {
                self.log().sync().unwrap();
                self.model.durable = self.model.entries.len();
            }
            Op::TruncateFrom { back } => {
                let Some(last) = self.model.entries.last().map(|e| e.index) else { return };
                let index = last.saturating_sub(back as u64).max(self.model.first_index());
                self.log().truncate_from(index).unwrap();
                let keep = (index - self.model.first_index()) as usize;
                self.model.keep(keep);
            }
            Op::PurgeThrough { back } => {
                let Some(last) = self.model.entries.last().map(|e| e.index) else { return };
                let index = last.saturating_sub(back as u64).max(self.model.first_index());
                self.log().purge_through(index).unwrap();
                let position = (index - self.model.first_index()) as usize;
                let entry = &self.model.entries[position];
                self.model.purged = Some((index, entry.term, self.model.hashes[position]));
                self.model.entries.drain(..=position);
                self.model.hashes.drain(..=position);
                self.model.durable = self.model.durable.saturating_sub(position + 1);
            }
            Op::PurgeThroughSnapshot { ahead } => {
                let index = self.model.next_index() + ahead as u64;
                let head = [ahead.wrapping_add(index as u8); 32];
                let term = self.model.term.max(1);
                self.log().purge_through_snapshot(index, term, head).unwrap();
                self.model.keep(0);
                self.model.purged = Some((index, term, head));
            }
            Op::Reopen => self.reopen(),
            Op::Crash { seed } => self.crash_and_reopen(seed),
            Op::FailingSync { count, seed } => {
                let records = self.model.make_records(count, seed as u16, false);
                self.log().append(&records).unwrap();
                self.model.push(&records);
                self.fs.set_fault(Fault::SyncFails);
                assert!(self.log().sync().is_err(), "injected sync failure surfaces");
                self.fs.set_fault(Fault::None);
                let refused = self.model.make_records(1, 0, false);
                assert!(self.log().append(&refused).is_err(), "poisoned log refuses appends");
                self.crash_and_reopen(seed);
            }
            Op::Close { crash_seed } => {
                // `close`, then reopen (after a crash when a seed is given): nothing may be lost.
                let log = self.log.take().expect("log is open");
                log.close().unwrap_or_else(|e| panic!("close failed: {e}"));
                self.model.durable = self.model.entries.len();
                match crash_seed {
                    Some(seed) => self.crash_and_reopen(seed),
                    None => self.reopen(),
                }
            }
        }
        self.check();
    }

    fn check(&mut self) {
        let model = &self.model;
        let log = self.log.as_ref().expect("log is open");
        let last = model.entries.last().map(|e| e.index);
        let first = model.entries.first().map(|e| e.index);
        assert_eq!((log.first_index(), log.last_index()), (first, last), "bounds");
        assert_eq!(log.last_purged(), model.purged, "purge point");
        assert_eq!(log.last_chain_hash(), model.last_hash(), "chain head");
        if let (Some(first), Some(last)) = (first, last) {
            assert_eq!(log.read_range(first, last + 1).unwrap(), model.entries, "entries");
            let middle = first + (last - first) / 2;
            assert_eq!(log.chain_hash(middle).unwrap(), model.hashes[(middle - first) as usize]);
        }
        if model.entries.is_empty() && model.purged.is_some() {
            assert_eq!(log.next_index(), Some(model.next_index()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_a_simple_model_through_crashes(ops in prop::collection::vec(op(), 1..60)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
        }
        harness.crash_and_reopen(7);
        harness.check();
    }
}
