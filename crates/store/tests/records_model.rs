//! Property test: random appends, flushes, syncs, truncations, retention deletions, reads,
//! reopens and crashes of a `RecordLog` against a plain in-memory model. After a crash the log
//! holds every synced record and a prefix of the rest; reads return exactly the model's bytes.

use std::sync::Arc;

use croupier_store::sim_fs::SimFileSystem;
use croupier_store::{RecordLog, RecordLogOptions, RecordReader, StoreError, RECORD_FRAME_OVERHEAD_BYTES};
use proptest::prelude::*;

const DIR: &str = "/node/wallet";
/// Payloads are up to 90 bytes: segments roll every one to a few records.
const SEGMENT_BYTES: u64 = 300;
const BUFFER_BYTES: usize = 150;

#[derive(Clone, Debug)]
enum Op {
    Append { count: u8, seed: u16 },
    Flush,
    Sync,
    TruncateBack { back: u8 },
    DeleteBefore { back: u8 },
    Read { pick: u16 },
    Scan { pick: u16, records_max: u8, bytes_max: u16 },
    Reopen,
    Crash { seed: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u8..8, any::<u16>()).prop_map(|(count, seed)| Op::Append { count, seed }),
        2 => Just(Op::Flush),
        2 => Just(Op::Sync),
        1 => (0u8..10).prop_map(|back| Op::TruncateBack { back }),
        1 => (0u8..20).prop_map(|back| Op::DeleteBefore { back }),
        3 => any::<u16>().prop_map(|pick| Op::Read { pick }),
        2 => (any::<u16>(), 0u8..10, 0u16..400)
            .prop_map(|(pick, records_max, bytes_max)| Op::Scan { pick, records_max, bytes_max }),
        1 => Just(Op::Reopen),
        2 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
    ]
}

/// The tag a segment gets when `position` starts it: a pure function of the position, so a
/// segment kept empty by truncation and refilled still carries the right tag.
fn tag_for(position: u64) -> u64 {
    position.wrapping_mul(7) + 3
}

#[derive(Default)]
struct Model {
    /// Every retained-or-not record ever kept: (position, payload).
    records: Vec<(u64, Vec<u8>)>,
    /// The first retained position.
    start: u64,
    /// How many leading records are known durable.
    durable: usize,
    /// How many leading records were explicitly flushed (readers may see more).
    flushed: usize,
}

impl Model {
    fn end(&self) -> u64 {
        self.records.last().map_or(self.start, |(p, bytes)| p + (bytes.len() + RECORD_FRAME_OVERHEAD_BYTES) as u64)
    }

    /// The index of the record at `position`, or the count when `position` is the end.
    fn boundary(&self, position: u64) -> usize {
        if position == self.end() {
            return self.records.len();
        }
        self.records
            .binary_search_by_key(&position, |(p, _)| *p)
            .unwrap_or_else(|_| panic!("{position} is no record boundary"))
    }

    fn first_retained(&self) -> usize {
        self.boundary(self.start)
    }

    fn keep(&mut self, count: usize) {
        self.records.truncate(count);
        self.durable = self.durable.min(count);
        self.flushed = self.flushed.min(count);
    }
}

struct Harness {
    fs: SimFileSystem,
    log: Option<(RecordLog, RecordReader)>,
    model: Model,
}

impl Harness {
    fn new() -> Self {
        let mut harness = Harness { fs: SimFileSystem::new(), log: None, model: Model::default() };
        harness.open();
        harness
    }

    fn open(&mut self) -> u64 {
        self.log = None;
        let options =
            RecordLogOptions { segment_bytes_max: SEGMENT_BYTES, buffer_bytes_max: BUFFER_BYTES, sync_on_seal: true };
        let (log, reader, report) =
            RecordLog::open(Arc::new(self.fs.clone()), DIR, options).unwrap_or_else(|e| panic!("open failed: {e}"));
        assert_eq!(report.start, self.model.start, "retention deletions are durable");
        self.log = Some((log, reader));
        report.end
    }

    fn log(&mut self) -> &mut RecordLog {
        &mut self.log.as_mut().expect("open").0
    }

    fn reader(&self) -> &RecordReader {
        &self.log.as_ref().expect("open").1
    }

    /// Reopens (after a crash or not) and checks that the log kept at least `kept_min` records
    /// and a prefix of the rest.
    fn reopen(&mut self, crash_seed: Option<u64>, kept_min: usize) {
        self.log = None;
        if let Some(seed) = crash_seed {
            self.fs.crash(seed);
        }
        let end = self.open();
        let kept = self.model.boundary(end);
        assert!(kept >= kept_min, "reopen kept {kept} records, {kept_min} were durable or flushed");
        self.model.keep(kept);
        self.model.durable = kept;
        self.model.flushed = kept;
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append { count, seed } => self.append(count, seed),
            Op::Flush => {
                self.log().flush().unwrap();
                self.model.flushed = self.model.records.len();
            }
            Op::Sync => {
                let durable = self.log().sync().unwrap();
                assert_eq!(durable, self.model.end());
                self.model.durable = self.model.records.len();
                self.model.flushed = self.model.records.len();
            }
            Op::TruncateBack { back } => {
                let keep = self.model.records.len().saturating_sub(back as usize).max(self.model.first_retained());
                let position = self.model.records.get(keep).map_or(self.model.end(), |(p, _)| *p);
                self.log().truncate_to(position).unwrap();
                if keep < self.model.records.len() {
                    self.model.keep(keep);
                    self.model.durable = keep;
                    self.model.flushed = keep;
                }
            }
            Op::DeleteBefore { back } => self.delete_before(back),
            Op::Read { pick } => self.read(pick),
            Op::Scan { pick, records_max, bytes_max } => self.scan(pick, records_max, bytes_max as usize),
            Op::Reopen => {
                // Dropping the writer loses buffered records, keeps written ones.
                let published = self.reader().published_end();
                let published = self.model.boundary(published);
                self.reopen(None, published);
            }
            Op::Crash { seed } => {
                let durable = self.model.durable;
                self.reopen(Some(seed), durable);
            }
        }
        self.check();
    }

    fn append(&mut self, count: u8, seed: u16) {
        for i in 0..count as u64 {
            let mix = (seed as u64).wrapping_mul(2_654_435_761).wrapping_add(i * 40_503);
            let payload: Vec<u8> = (0..(mix % 91) as usize).map(|b| (mix >> (b % 9)) as u8 ^ b as u8).collect();
            let expected = self.model.end();
            let position = self.log().append_tagged(&payload, tag_for(expected)).unwrap();
            assert_eq!(position, expected, "positions are contiguous frame offsets");
            self.model.records.push((position, payload));
        }
    }

    fn delete_before(&mut self, back: u8) {
        let index = self.model.records.len().saturating_sub(back as usize);
        let position = self.model.records.get(index).map_or(self.model.end(), |(p, _)| *p);
        let before = self.log().start();
        let deleted = self.log().delete_segments_before(position).unwrap();
        let after = self.log().start();
        assert!(after >= before && (after <= position || after == before), "start moved to {after}");
        assert_eq!(deleted > 0, after > before);
        self.model.boundary(after);
        self.model.start = after;
        if deleted > 0 {
            // Deleting syncs first.
            self.model.durable = self.model.records.len();
            self.model.flushed = self.model.records.len();
        }
    }

    fn read(&mut self, pick: u16) {
        let published = self.reader().published_end();
        let visible = self.model.boundary(published);
        let first = self.model.first_retained();
        if visible > first {
            let index = first + pick as usize % (visible - first);
            let (position, payload) = &self.model.records[index];
            assert_eq!(&self.reader().read_at(*position).unwrap(), payload, "record at {position}");
        }
        if self.model.start > 0 {
            let err = self.reader().read_at(self.model.start - 1).unwrap_err();
            assert!(matches!(err, StoreError::BeforeRetention { .. }), "{err}");
        }
        assert!(matches!(self.reader().read_at(published), Err(StoreError::PastEnd { .. })));
    }

    fn scan(&mut self, pick: u16, records_max: u8, bytes_max: usize) {
        let published = self.reader().published_end();
        let visible = self.model.boundary(published);
        let first = self.model.first_retained();
        let from_index = first + pick as usize % (visible - first + 1);
        let from = self.model.records.get(from_index).map_or(published, |(p, _)| *p);
        let scanned = self.reader().scan(from, records_max as usize, bytes_max).unwrap();
        let mut expected = Vec::new();
        let mut bytes = 0;
        for record in &self.model.records[from_index..visible] {
            if expected.len() == records_max as usize || (!expected.is_empty() && bytes + record.1.len() > bytes_max) {
                break;
            }
            bytes += record.1.len();
            expected.push(record.clone());
        }
        assert_eq!(scanned, expected, "scan from {from}");
    }

    fn check(&mut self) {
        let model_end = self.model.end();
        let model_start = self.model.start;
        let flushed_end = self.model.records.get(self.model.flushed).map_or(model_end, |(p, _)| *p);
        let (log, reader) = self.log.as_ref().expect("open");
        assert_eq!((log.start(), log.end()), (model_start, model_end), "bounds");
        assert_eq!((reader.start(), reader.published_end()), (model_start, log.published_end()));
        assert!(log.published_end() >= flushed_end && log.published_end() <= model_end);
        self.model.boundary(log.published_end());
        for segment in log.segments() {
            assert_eq!(segment.tag, tag_for(segment.first_position), "tag of {}", segment.path.display());
            self.model.boundary(segment.first_position);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn record_log_matches_a_simple_model_through_crashes(ops in prop::collection::vec(op(), 1..60)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
        }
        let durable = harness.model.durable;
        harness.reopen(Some(7), durable);
        harness.check();
        let everything = harness.reader().scan(harness.model.start, usize::MAX, usize::MAX).unwrap();
        let first = harness.model.first_retained();
        prop_assert_eq!(everything, harness.model.records[first..].to_vec());
    }
}
