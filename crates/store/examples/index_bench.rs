//! Measures the id index the way the ledger drives it: batches of 8,189 keys, every key looked
//! up first (`get_many`, as the prefetch step does; all negative) and then inserted
//! (`insert_batch`), on the real disk. Background flushes and merges run on the index pool's
//! threads; the times below are those of the calling thread.
//!
//! `cargo run --release -p croupier-store --example index_bench -- [--keys N] [--random]
//! [--rate KEYS_PER_SECOND] [--dir DIR] [--memtable-mib M]` (default: 10M sequential keys 1, 2,
//! 3, ... inserted flat out, in a temporary directory under the current one).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use croupier_store::fs::OsFileSystem;
use croupier_store::{IdIndex, IndexOptions};

const BATCH_KEYS: usize = 8_189;
const PROBE_KEYS: usize = 1 << 20;
const POSITIVE_PROBES: usize = 100_000;
const PROBE_ROUNDS: usize = 3;

struct Args {
    keys: u64,
    random: bool,
    /// Keys per second to pace the inserts at (the ledger's target load); 0: flat out.
    rate: u64,
    dir: PathBuf,
    options: IndexOptions,
}

fn parse_args() -> Args {
    let mut args = Args {
        keys: 10_000_000,
        random: false,
        rate: 0,
        dir: std::env::current_dir().expect("current directory"),
        options: IndexOptions::default(),
    };
    let mut raw = std::env::args().skip(1);
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--keys" => args.keys = value().replace('_', "").parse().expect("--keys N"),
            "--random" => args.random = true,
            "--sequential" => args.random = false,
            "--rate" => args.rate = value().replace('_', "").parse().expect("--rate KEYS_PER_SECOND"),
            "--dir" => args.dir = value().into(),
            "--memtable-mib" => args.options.memtable_bytes_max = value().parse::<usize>().expect("MiB") << 20,
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

/// SplitMix64: a reproducible stream of well-mixed keys.
struct KeyStream(u64);

impl KeyStream {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_key(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }
}

fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir_in(&args.dir).expect("temporary directory");
    let (index, covered_through) = IdIndex::open(Arc::new(OsFileSystem), dir.path(), args.options.clone()).unwrap();
    assert_eq!(covered_through, 0);
    let mode = if args.random { "random" } else { "sequential" };
    let pace = if args.rate > 0 { format!("paced at {} keys/s", args.rate) } else { "flat out".to_string() };
    println!("{} {mode} keys, batches of {BATCH_KEYS}, {pace}, {:?}", args.keys, args.options);

    let mut stream = KeyStream(1);
    let (mut keys, mut entries, mut found) = (Vec::new(), Vec::new(), Vec::new());
    let (mut lookup_time, mut insert_time) = (Duration::ZERO, Duration::ZERO);
    let (mut batch_times, mut lookup_times, mut insert_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut inserted = 0u64;
    let cpu_started = thread_cpu();
    let started = Instant::now();
    let mut next_report = args.keys / 10;
    while inserted < args.keys {
        let count = BATCH_KEYS.min((args.keys - inserted) as usize);
        keys.clear();
        keys.extend(
            (0..count as u64).map(|i| if args.random { stream.next_key() } else { u128::from(inserted + i + 1) }),
        );
        entries.clear();
        entries.extend(keys.iter().enumerate().map(|(i, &key)| (key, inserted + i as u64)));

        let batch_started = Instant::now();
        index.get_many(&keys, &mut found).unwrap();
        let looked_up = Instant::now();
        index.insert_batch(&entries, batch_times.len() as u64 + 1).unwrap();
        let done = Instant::now();
        assert!(found.iter().all(Option::is_none), "fresh keys are not in the index");
        lookup_time += looked_up - batch_started;
        insert_time += done - looked_up;
        lookup_times.push(looked_up - batch_started);
        insert_times.push(done - looked_up);
        batch_times.push(done - batch_started);
        inserted += count as u64;
        if args.rate > 0 {
            let due = Duration::from_secs_f64(inserted as f64 / args.rate as f64);
            std::thread::sleep(due.saturating_sub(started.elapsed()));
        }
        if inserted >= next_report {
            next_report += args.keys / 10;
            report_progress(&index, inserted, started.elapsed());
        }
    }
    let wall = started.elapsed();
    let cpu = thread_cpu() - cpu_started;
    summarize(&index, inserted, wall, lookup_time, insert_time, &mut batch_times);
    let median_per_key = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_nanos() as f64 / BATCH_KEYS as f64
    };
    println!(
        "  median batch: negative lookup {:.0} ns/key, insert {:.0} ns/key; calling thread CPU {:.0} ns/key (lookup + insert + key generation)",
        median_per_key(&mut lookup_times),
        median_per_key(&mut insert_times),
        cpu.as_nanos() as f64 / inserted as f64
    );
    probe_final(&index, args.random, inserted);
    index.flush().unwrap();
    index.shutdown().unwrap();
}

fn report_progress(index: &IdIndex, inserted: u64, elapsed: Duration) {
    let stats = index.stats();
    println!(
        "  {inserted:>11} keys {:>7.1}s  runs {:?}  frozen {}  flushes {}  merges {}  stalls {}  rss {} MiB",
        elapsed.as_secs_f64(),
        stats.run_levels,
        stats.frozen_memtables,
        stats.flushes,
        stats.merges,
        stats.stalls,
        rss_kib("VmRSS") >> 10
    );
}

fn summarize(
    index: &IdIndex,
    inserted: u64,
    wall: Duration,
    lookup_time: Duration,
    insert_time: Duration,
    batch_times: &mut [Duration],
) {
    batch_times.sort();
    let per_key = |time: Duration| time.as_nanos() as f64 / inserted as f64;
    let stats = index.stats();
    println!(
        "inserted {inserted} keys in {:.1}s ({:.0} keys/s wall clock): {:.0} keys/s in get_many + insert_batch",
        wall.as_secs_f64(),
        inserted as f64 / wall.as_secs_f64(),
        inserted as f64 / (lookup_time + insert_time).as_secs_f64()
    );
    println!(
        "  mean: negative lookup (get_many, during the run) {:.0} ns/key, insert {:.0} ns/key",
        per_key(lookup_time),
        per_key(insert_time)
    );
    println!(
        "  batch time p50 {:?}  p99 {:?}  p100 {:?}",
        batch_times[batch_times.len() / 2],
        batch_times[batch_times.len() * 99 / 100],
        batch_times[batch_times.len() - 1]
    );
    println!(
        "  runs {:?}  flushes {}  merges {}  stalls {} ({:?})  disk {} MiB  written {} MiB ({:.1}x)",
        stats.run_levels,
        stats.flushes,
        stats.merges,
        stats.stalls,
        stats.stall_time,
        stats.disk_bytes >> 20,
        stats.bytes_written >> 20,
        stats.bytes_written as f64 / (inserted as f64 * 24.0)
    );
    println!(
        "  memory_bytes {} MiB  rss {} MiB  peak rss {} MiB",
        stats.memory_bytes >> 20,
        rss_kib("VmRSS") >> 10,
        rss_kib("VmHWM") >> 10
    );
}

/// Lookups against the final index, after background work settles: fresh random keys (negative
/// for both modes), in batches and one by one, and existing keys (positive, read from disk).
fn probe_final(index: &IdIndex, random: bool, inserted: u64) {
    index.wait_for_merges().unwrap();
    let mut stream = KeyStream(0xFEED);
    let fresh: Vec<u128> = (0..PROBE_KEYS).map(|_| stream.next_key() | 1 << 127).collect();
    let mut found = Vec::new();
    let (mut batched, mut single) = (Vec::new(), Vec::new());
    // Three rounds each: on a shared machine one round can land on a busy moment.
    for _ in 0..PROBE_ROUNDS {
        let started = Instant::now();
        for batch in fresh.chunks(BATCH_KEYS) {
            index.get_many(batch, &mut found).unwrap();
            assert!(found.iter().all(Option::is_none));
        }
        batched.push(started.elapsed().as_nanos() as f64 / PROBE_KEYS as f64);
        let started = Instant::now();
        assert!(fresh.iter().all(|&key| index.get(key).unwrap().is_none()));
        single.push(started.elapsed().as_nanos() as f64 / PROBE_KEYS as f64);
    }
    println!(
        "  final index, runs {:?}: negative lookup ns/key in batches {batched:.0?}, one by one {single:.0?}",
        index.stats().run_levels
    );

    let mut stream = KeyStream(1);
    let existing: Vec<u128> = if random {
        (0..POSITIVE_PROBES.min(inserted as usize)).map(|_| stream.next_key()).collect()
    } else {
        (0..POSITIVE_PROBES as u64)
            .map(|i| u128::from(i * (inserted / POSITIVE_PROBES as u64).max(1) % inserted + 1))
            .collect()
    };
    let mut positive = Vec::new();
    for _ in 0..PROBE_ROUNDS {
        let started = Instant::now();
        assert!(existing.iter().all(|&key| index.get(key).unwrap().is_some()));
        positive.push(started.elapsed().as_nanos() as f64 / existing.len() as f64);
    }
    println!("  positive lookup (mostly from a run on disk) ns/key one by one {positive:.0?}");
    println!("  blocks read over the whole run (bloom positives): {}", index.stats().blocks_read);
}

/// CPU time of the calling thread (user + system), in clock ticks of 10 ms: exact enough over
/// seconds, and blind to time spent waiting for a core on a shared machine.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<u64> = after_name.split_whitespace().map(|field| field.parse().unwrap_or(0)).collect();
    // Fields 14 and 15 of stat(5); after the name, counting from the state (field 3).
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|line| line.starts_with(field)).unwrap_or("");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).unwrap_or(0)
}
