//! Micro-benchmark of the history stores on the real disk: 10M transfer-sized records
//! (128-byte payloads, 136-byte frames) into a `RecordLog` and 10M events (~160-byte records:
//! 16-byte header + 128..160-byte body) into an `EventLog`, in batches of 8,189 with one
//! flush per batch and one fdatasync at the end; then sequential scans and random seeks.
//!
//! `cargo run --release -p croupier-store --example records_bench -- [DIR] [COUNT]` (default:
//! a temporary directory under the current one, 10,000,000 of each). Writes ~3.2 GB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use croupier_store::fs::{FileSystem, OsFileSystem};
use croupier_store::{EventLog, EventLogOptions, RecordLog, RecordLogOptions, RECORD_FRAME_OVERHEAD_BYTES};

const COUNT_DEFAULT: u64 = 10_000_000;
/// TigerBeetle's batch: as many 128-byte transfers as fit a 1 MiB message.
const BATCH_RECORDS: u64 = 8_189;
const TRANSFER_PAYLOAD_BYTES: usize = 128;
const EVENT_BODY_BYTES_MIN: usize = 128;
const EVENT_BODY_BYTES_SPREAD: u64 = 33;
const SCAN_RECORDS_MAX: usize = 8_189;
const SCAN_BYTES_MAX: usize = 4 << 20;
const SEEKS: u64 = 20_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args.next().map_or_else(|| std::env::current_dir().unwrap(), Into::into);
    let count: u64 = args.next().map_or(COUNT_DEFAULT, |n| n.parse().expect("COUNT is a number"));
    let dir = tempfile::tempdir_in(base).expect("temporary directory");
    let fs: Arc<dyn FileSystem> = Arc::new(OsFileSystem);
    println!("{count} records and {count} events, batches of {BATCH_RECORDS}, one flush per batch");
    bench_records(&fs, &dir.path().join("transfers"), count);
    bench_events(&fs, &dir.path().join("events"), count);
}

fn bench_records(fs: &Arc<dyn FileSystem>, dir: &std::path::Path, count: u64) {
    let (mut log, reader, _) = RecordLog::open(Arc::clone(fs), dir, RecordLogOptions::default()).unwrap();
    let mut payload = [0u8; TRANSFER_PAYLOAD_BYTES];
    let mut batches = Batches::default();
    let started = Instant::now();
    for sequence in 0..count {
        payload[..8].copy_from_slice(&sequence.to_le_bytes());
        let position = log.append(&payload).unwrap();
        debug_assert_eq!(position, sequence * (TRANSFER_PAYLOAD_BYTES + RECORD_FRAME_OVERHEAD_BYTES) as u64);
        if (sequence + 1) % BATCH_RECORDS == 0 {
            log.flush().unwrap();
            batches.lap();
        }
    }
    log.flush().unwrap();
    let appended = started.elapsed();
    let synced_started = Instant::now();
    let end = log.sync().unwrap();
    let sync = synced_started.elapsed();
    report("RecordLog append+flush (136 B frames)", count, end, appended);
    batches.print();
    println!("  final fdatasync: {:.1} ms; {} segments", ms(sync), log.segments().len());

    let started = Instant::now();
    let (mut position, mut seen) = (0u64, 0u64);
    while position < end {
        let batch = reader.scan(position, SCAN_RECORDS_MAX, SCAN_BYTES_MAX).unwrap();
        let (last, bytes) = batch.last().expect("records until the end");
        position = last + (bytes.len() + RECORD_FRAME_OVERHEAD_BYTES) as u64;
        seen += batch.len() as u64;
    }
    assert_eq!(seen, count);
    report("RecordReader::scan (page cache)", count, end, started.elapsed());

    let frame = (TRANSFER_PAYLOAD_BYTES + RECORD_FRAME_OVERHEAD_BYTES) as u64;
    let mut buffer = Vec::new();
    let started = Instant::now();
    for i in 0..SEEKS {
        let sequence = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % count;
        reader.read_at_into(sequence * frame, &mut buffer).unwrap();
        assert_eq!(buffer[..8], sequence.to_le_bytes());
    }
    println!("RecordReader::read_at, random positions: {:.0} ns/read", per(started.elapsed(), SEEKS));
}

fn bench_events(fs: &Arc<dyn FileSystem>, dir: &std::path::Path, count: u64) {
    let (mut log, feed, _) = EventLog::open(Arc::clone(fs), dir, EventLogOptions::default()).unwrap();
    let body = vec![0x5Au8; EVENT_BODY_BYTES_MIN + EVENT_BODY_BYTES_SPREAD as usize];
    let mut payload_bytes = 0u64;
    let mut batches = Batches::default();
    let started = Instant::now();
    for i in 0..count {
        // Raft index × 8 + ordinal: increasing, with gaps.
        let position = (i / 3 + 1) * 8 + i % 3;
        let len = EVENT_BODY_BYTES_MIN + (i % EVENT_BODY_BYTES_SPREAD) as usize;
        log.append(position, i * 1_000, &body[..len]).unwrap();
        payload_bytes += (16 + len + RECORD_FRAME_OVERHEAD_BYTES) as u64;
        if (i + 1) % BATCH_RECORDS == 0 {
            log.flush().unwrap();
            batches.lap();
        }
    }
    log.flush().unwrap();
    let appended = started.elapsed();
    log.sync().unwrap();
    report("EventLog append+flush (~168 B frames)", count, payload_bytes, appended);
    batches.print();

    let started = Instant::now();
    let (mut after, mut seen) = (0u64, 0u64);
    loop {
        let page = feed.read_after(after, SCAN_RECORDS_MAX, SCAN_BYTES_MAX).unwrap();
        if page.events.is_empty() {
            break;
        }
        seen += page.events.len() as u64;
        after = page.next_after;
    }
    assert_eq!(seen, count);
    report("EventFeed::read_after, sequential pages", count, payload_bytes, started.elapsed());

    let last = feed.last_position();
    let started = Instant::now();
    for i in 0..SEEKS {
        let after = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % last;
        let page = feed.read_after(after, 1, SCAN_BYTES_MAX).unwrap();
        assert!(page.events[0].position > after);
    }
    println!("EventFeed::read_after(random, limit 1) seek: {:.1} µs/seek", per(started.elapsed(), SEEKS) / 1_000.0);

    let started = Instant::now();
    drop(log);
    drop(feed);
    let (_, _, report) = EventLog::open(Arc::clone(fs), dir, EventLogOptions::default()).unwrap();
    println!("EventLog::open (rebuild index over {} events): {:.0} ms", report.events, ms(started.elapsed()));
}

fn report(what: &str, records: u64, bytes: u64, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    println!(
        "{what}: {:.0} MB/s, {:.1} ns/record, {:.2} M records/s ({:.2} s)",
        bytes as f64 / seconds / 1e6,
        per(elapsed, records),
        records as f64 / seconds / 1e6,
        seconds
    );
}

fn per(elapsed: Duration, count: u64) -> f64 {
    elapsed.as_nanos() as f64 / count as f64
}

fn ms(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e3
}

/// Wall time per batch (appends plus flush); the slow ones include sealing a full segment,
/// which fdatasyncs it.
struct Batches {
    last: Instant,
    laps: Vec<Duration>,
}

impl Default for Batches {
    fn default() -> Self {
        Batches { last: Instant::now(), laps: Vec::new() }
    }
}

impl Batches {
    fn lap(&mut self) {
        let now = Instant::now();
        self.laps.push(now - self.last);
        self.last = now;
    }

    fn print(&mut self) {
        self.laps.sort();
        let at = |q: f64| self.laps[((self.laps.len() - 1) as f64 * q) as usize];
        println!(
            "  per batch of {BATCH_RECORDS}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(1.0))
        );
    }
}
