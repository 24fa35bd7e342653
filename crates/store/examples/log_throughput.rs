//! Measures the log on the real disk: ~1 MB entries with one fdatasync each, small entries in
//! group commits, single small entries per fdatasync, and the time to reopen (verify) the log.
//!
//! `cargo run --release -p croupier-store --example log_throughput -- [DIR]` (default: a
//! temporary directory under the current one, so the figures come from the real disk).

use std::time::{Duration, Instant};

use croupier_store::{LogOptions, LogRecord, LogStore, RecordKind};

const LARGE_ENTRY_BYTES: usize = 1 << 20;
const LARGE_ENTRIES: u64 = 200;
const SMALL_ENTRY_BYTES: usize = 200;
const SMALL_GROUP_ENTRIES: u64 = 64;
const SMALL_GROUPS: u64 = 500;
const SINGLE_SMALL_ENTRIES: u64 = 1000;

fn main() {
    let base = std::env::args().nth(1).map_or_else(|| std::env::current_dir().unwrap(), Into::into);
    let dir = tempfile::tempdir_in(base).expect("temporary directory");
    let (mut log, _) = LogStore::open(dir.path(), LogOptions::default()).expect("log opens");
    let mut next = 1u64;
    let mut entry = |len: usize| {
        let record = LogRecord { index: next, term: 1, kind: RecordKind::Normal, payload: vec![next as u8; len] };
        next += 1;
        record
    };

    let mut syncs = Vec::new();
    let started = Instant::now();
    for _ in 0..LARGE_ENTRIES {
        log.append(&[entry(LARGE_ENTRY_BYTES)]).unwrap();
        let sync_started = Instant::now();
        log.sync().unwrap();
        syncs.push(sync_started.elapsed());
    }
    let elapsed = started.elapsed();
    println!(
        "1 MiB entries, append+fdatasync each: {:.0} entries/s, {:.0} MiB/s, fdatasync {}",
        LARGE_ENTRIES as f64 / elapsed.as_secs_f64(),
        LARGE_ENTRIES as f64 / elapsed.as_secs_f64(),
        percentiles(&mut syncs)
    );

    let started = Instant::now();
    for _ in 0..SMALL_GROUPS {
        let group: Vec<LogRecord> = (0..SMALL_GROUP_ENTRIES).map(|_| entry(SMALL_ENTRY_BYTES)).collect();
        log.append(&group).unwrap();
        log.sync().unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "{SMALL_ENTRY_BYTES} B entries, groups of {SMALL_GROUP_ENTRIES} per fdatasync: {:.0} entries/s",
        (SMALL_GROUPS * SMALL_GROUP_ENTRIES) as f64 / elapsed.as_secs_f64()
    );

    let mut syncs = Vec::new();
    let started = Instant::now();
    for _ in 0..SINGLE_SMALL_ENTRIES {
        log.append(&[entry(SMALL_ENTRY_BYTES)]).unwrap();
        let sync_started = Instant::now();
        log.sync().unwrap();
        syncs.push(sync_started.elapsed());
    }
    let elapsed = started.elapsed();
    println!(
        "{SMALL_ENTRY_BYTES} B entries, one per fdatasync: {:.0} entries/s, fdatasync {}",
        SINGLE_SMALL_ENTRIES as f64 / elapsed.as_secs_f64(),
        percentiles(&mut syncs)
    );

    let last = log.last_index().unwrap();
    let started = Instant::now();
    let recent = log.read_range(last - 99, last + 1).unwrap();
    println!("read_range of the last 100 entries from disk: {:?}", started.elapsed());
    assert_eq!(recent.len(), 100);
    drop(log);

    let started = Instant::now();
    let (_, report) = LogStore::open(dir.path(), LogOptions::default()).unwrap();
    let bytes: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    println!(
        "reopen (verify CRC + chain of {} entries, {:.0} MiB in {} segments): {:?}",
        report.entries,
        bytes as f64 / (1 << 20) as f64,
        report.segments,
        started.elapsed()
    );
}

fn percentiles(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    format!("p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", at(0.5), at(0.99), at(1.0))
}
