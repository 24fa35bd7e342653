//! Property test: an `EventLog` against a plain list of events through appends with gaps in
//! the positions, flushes, syncs, retention by bytes and age, rollbacks, reopens and crashes.
//! `read_after` from any position must return exactly the model's retained events after it,
//! across segments and after retention, and say when retention took events the reader missed.

use std::sync::Arc;

use croupier_store::sim_fs::SimFileSystem;
use croupier_store::{Event, EventFeed, EventLog, EventLogOptions, RecordLogOptions};
use proptest::prelude::*;

const DIR: &str = "/node/events";
const SEGMENT_BYTES: u64 = 400;
/// Timestamps are position × this, so age retention has something to judge.
const NS_PER_POSITION: u64 = 10;

#[derive(Clone, Debug)]
enum Op {
    Append { count: u8, seed: u16 },
    Flush,
    Sync,
    Retention { age_back: u16 },
    TruncateBack { back: u8 },
    ReadAfter { pick: u16, nudge: i8, limit: u8 },
    Reopen,
    Crash { seed: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u8..10, any::<u16>()).prop_map(|(count, seed)| Op::Append { count, seed }),
        2 => Just(Op::Flush),
        2 => Just(Op::Sync),
        1 => any::<u16>().prop_map(|age_back| Op::Retention { age_back }),
        1 => (0u8..12).prop_map(|back| Op::TruncateBack { back }),
        4 => (any::<u16>(), -2i8..3, 1u8..12).prop_map(|(pick, nudge, limit)| Op::ReadAfter { pick, nudge, limit }),
        1 => Just(Op::Reopen),
        2 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
    ]
}

fn body(position: u64) -> Vec<u8> {
    let mix = position.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..(mix % 60) as usize).map(|b| (mix >> (b % 13)) as u8).collect()
}

fn event(position: u64) -> Event {
    Event { position, timestamp_ns: position * NS_PER_POSITION, body: body(position) }
}

#[derive(Default)]
struct Model {
    /// Retained events.
    events: Vec<u64>,
    /// The last event retention deleted (0 when none).
    deleted_through: u64,
    /// How many leading retained events are known durable / explicitly flushed.
    durable: usize,
    flushed: usize,
    /// The last position ever appended (what the next append must exceed).
    last: u64,
}

impl Model {
    fn keep_through(&mut self, position: u64) {
        let count = self.events.partition_point(|&p| p <= position);
        self.events.truncate(count);
        self.durable = self.durable.min(count);
        self.flushed = self.flushed.min(count);
        self.last = position;
    }
}

struct Harness {
    fs: SimFileSystem,
    log: Option<(EventLog, EventFeed)>,
    model: Model,
}

fn options() -> EventLogOptions {
    EventLogOptions {
        records: RecordLogOptions { segment_bytes_max: SEGMENT_BYTES, buffer_bytes_max: 200, sync_on_seal: true },
        retention_bytes_max: Some(5 * SEGMENT_BYTES),
        retention_age_ns_max: Some(300 * NS_PER_POSITION),
    }
}

impl Harness {
    fn new() -> Self {
        let mut harness = Harness { fs: SimFileSystem::new(), log: None, model: Model::default() };
        harness.reopen(None, 0);
        harness
    }

    fn log(&mut self) -> &mut EventLog {
        &mut self.log.as_mut().expect("open").0
    }

    fn feed(&self) -> &EventFeed {
        &self.log.as_ref().expect("open").1
    }

    /// Reopens and checks that at least `kept_min` retained events survived, and a prefix of
    /// the rest.
    fn reopen(&mut self, crash_seed: Option<u64>, kept_min: usize) {
        self.log = None;
        if let Some(seed) = crash_seed {
            self.fs.crash(seed);
        }
        let (log, feed, report) =
            EventLog::open(Arc::new(self.fs.clone()), DIR, options()).unwrap_or_else(|e| panic!("open failed: {e}"));
        assert_eq!(log.deleted_through(), self.model.deleted_through, "retention deletions are durable");
        let last = report.last_position;
        let kept = self.model.events.partition_point(|&p| p <= last);
        let consistent =
            if kept == 0 { last == self.model.deleted_through } else { self.model.events[kept - 1] == last };
        assert!(consistent, "reopened at {last}, which is no event of the model");
        assert!(kept >= kept_min, "reopen kept {kept} events, {kept_min} were durable or flushed");
        self.model.keep_through(last);
        self.model.durable = kept;
        self.model.flushed = kept;
        self.log = Some((log, feed));
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Append { count, seed } => {
                for i in 0..count as u64 {
                    let position = self.model.last + 1 + (seed as u64 >> (i % 8)) % 5;
                    self.log().append(position, position * NS_PER_POSITION, &body(position)).unwrap();
                    self.model.events.push(position);
                    self.model.last = position;
                }
            }
            Op::Flush => {
                self.log().flush().unwrap();
                self.model.flushed = self.model.events.len();
            }
            Op::Sync => {
                assert_eq!(self.log().sync().unwrap(), self.model.last);
                self.model.durable = self.model.events.len();
                self.model.flushed = self.model.events.len();
            }
            Op::Retention { age_back } => self.retention(age_back),
            Op::TruncateBack { back } => {
                let count = self.model.events.len().saturating_sub(back as usize);
                let through = count.checked_sub(1).map_or(self.model.deleted_through, |i| self.model.events[i]);
                let changes = through < self.model.last;
                self.log().truncate_after(through).unwrap();
                if changes {
                    self.model.keep_through(through);
                    self.model.durable = count;
                    self.model.flushed = count;
                }
            }
            Op::ReadAfter { pick, nudge, limit } => self.read_after(pick, nudge, limit),
            Op::Reopen => {
                let flushed = self.model.flushed;
                self.reopen(None, flushed);
            }
            Op::Crash { seed } => {
                let durable = self.model.durable;
                self.reopen(Some(seed), durable);
            }
        }
        assert_eq!(self.log.as_ref().expect("open").0.last_position(), self.model.last);
    }

    fn retention(&mut self, age_back: u16) {
        let now = (self.model.last + age_back as u64 % 400) * NS_PER_POSITION;
        let report = self.log().enforce_retention(now).unwrap();
        if report.segments_deleted == 0 {
            assert_eq!(report.deleted_through, self.model.deleted_through);
            return;
        }
        let gone = self.model.events.partition_point(|&p| p <= report.deleted_through);
        assert!(gone > 0 && self.model.events[gone - 1] == report.deleted_through, "deleted through an event");
        self.model.events.drain(..gone);
        self.model.deleted_through = report.deleted_through;
        // Deleting syncs first.
        self.model.durable = self.model.events.len();
        self.model.flushed = self.model.events.len();
    }

    /// Pages from a position near a model event (or 0, or past the end) through to the end.
    fn read_after(&mut self, pick: u16, nudge: i8, limit: u8) {
        self.log().flush().unwrap();
        self.model.flushed = self.model.events.len();
        let candidates = self.model.events.len() + 3;
        let base = match pick as usize % candidates {
            i if i < self.model.events.len() => self.model.events[i],
            i if i == self.model.events.len() => 0,
            i if i == self.model.events.len() + 1 => self.model.deleted_through,
            _ => self.model.last + 5,
        };
        let after = base.saturating_add_signed(nudge as i64);
        let expected: Vec<Event> = self.model.events.iter().filter(|&&p| p > after).map(|&p| event(p)).collect();
        let first = self.feed().read_after(after, limit as usize, usize::MAX).unwrap();
        assert_eq!(first.missed_by_retention, after < self.model.deleted_through, "missed flag after {after}");
        assert_eq!(first.events, expected[..expected.len().min(limit as usize)], "first page after {after}");
        let mut seen = first.events;
        let mut next = first.next_after;
        loop {
            let page = self.feed().read_after(next, limit as usize, 256).unwrap();
            if page.events.is_empty() {
                assert_eq!(page.next_after, next);
                break;
            }
            assert!(!page.missed_by_retention);
            next = page.next_after;
            seen.extend(page.events);
        }
        assert_eq!(seen, expected, "all pages after {after}");
        assert_eq!(self.feed().last_position(), self.model.last);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn event_log_matches_a_simple_model(ops in prop::collection::vec(op(), 1..60)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.apply(op);
        }
        let durable = harness.model.durable;
        harness.reopen(Some(3), durable);
        harness.apply(&Op::ReadAfter { pick: 0, nudge: 0, limit: 5 });
    }
}
