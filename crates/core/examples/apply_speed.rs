//! How long `Ledger::apply` takes for full batches of transfers, and what the codec costs.
//!
//! TigerBeetle's benchmark workload: 10,000 accounts without balance limits, batches of 8189
//! single transfers between random distinct accounts. Run in release:
//!
//!     cargo run --release -p croupier-core --example apply_speed -- [batches] [accounts] [--apply-only]
//!
//! Besides wall-clock time it reports the thread's CPU time (Linux `schedstat`), which stays
//! meaningful on a machine shared with other work.

use std::time::{Duration, Instant};

use croupier_core::codec::{decode_proposal, encode_proposal};
use croupier_core::command::Proposal;
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, CreateTransferResult, Ledger, LedgerCode,
    NewAccount, NewTransfer, TransferFlags, BATCH_ITEMS_MAX,
};

/// xorshift64*: a fixed, dependency-free sequence so runs are comparable.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let batches: usize = args
        .next()
        .map_or(200, |a| a.parse().expect("batches must be a number"));
    let accounts: u64 = args
        .next()
        .map_or(10_000, |a| a.parse().expect("accounts must be a number"));
    let apply_only = args.next().is_some_and(|a| a == "--apply-only");
    let eur = LedgerCode::parse("EUR").unwrap();
    let mut ledger = Ledger::new();
    ledger.reserve(accounts as usize + 1, batches * BATCH_ITEMS_MAX);
    let mut now: u64 = 1_735_689_600_000_000_000;

    let new_accounts: Vec<_> = (1..=accounts as u128)
        .map(|id| NewAccount {
            id,
            ledger: eur,
            kind: AccountKind::System,
            flags: AccountFlags::empty(),
        })
        .collect();
    for chunk in new_accounts.chunks(BATCH_ITEMS_MAX) {
        now += 1_000_000;
        ledger.apply(now, &[Command::CreateAccounts(chunk.to_vec())]);
    }

    let mut sequence = Sequence(0x9E37_79B9_7F4A_7C15);
    let mut next_id: u128 = 1;
    let (mut apply_times, mut encode_times, mut decode_times) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut apply_cpu_times = Vec::new();
    let mut bytes = Vec::new();
    for _ in 0..batches {
        let transfers: Vec<NewTransfer> = (0..BATCH_ITEMS_MAX)
            .map(|_| {
                let debit = sequence.next() % accounts + 1;
                let credit = (debit + sequence.next() % (accounts - 1)) % accounts + 1;
                next_id += 1;
                NewTransfer {
                    id: next_id,
                    debit_account_id: u128::from(debit),
                    credit_account_id: u128::from(credit),
                    amount: sequence.next() % 1_000 + 1,
                    ledger: eur,
                    flags: TransferFlags::empty(),
                    pending_id: 0,
                    timeout_s: 0,
                }
            })
            .collect();
        now += 1_000_000;
        let proposal = Proposal {
            timestamp_ns: now,
            commands: vec![Command::CreateTransfers(transfers)],
        };

        bytes.clear();
        let start = Instant::now();
        encode_proposal(&proposal, &mut bytes);
        encode_times.push(start.elapsed());
        let start = Instant::now();
        let decoded = decode_proposal(&bytes).expect("own encoding decodes");
        decode_times.push(start.elapsed());

        let (start, start_cpu) = (Instant::now(), thread_cpu_time());
        let results = ledger.apply(decoded.timestamp_ns, &decoded.commands);
        apply_times.push(start.elapsed());
        apply_cpu_times.push(thread_cpu_time().saturating_sub(start_cpu));
        let CommandResult::Transfers(results) = &results[0] else {
            unreachable!()
        };
        assert!(results.iter().all(|r| *r == CreateTransferResult::Ok));
    }

    let total: Duration = apply_times.iter().sum();
    let transfers = batches * BATCH_ITEMS_MAX;
    println!(
        "accounts = {accounts}, batches = {batches} x {BATCH_ITEMS_MAX} transfers ({} bytes each)",
        bytes.len()
    );
    let total_cpu: Duration = apply_cpu_times.iter().sum();
    println!(
        "apply  {} (wall p50 / p99 / max per batch)",
        percentiles(&mut apply_times)
    );
    println!("apply  {} (thread CPU)", percentiles(&mut apply_cpu_times));
    println!("encode {}", percentiles(&mut encode_times));
    println!("decode {}", percentiles(&mut decode_times));
    println!(
        "apply throughput = {:.0} transfers/s wall, {:.0} transfers/s of CPU",
        transfers as f64 / total.as_secs_f64(),
        transfers as f64 / total_cpu.as_secs_f64()
    );
    if apply_only {
        return;
    }
    let start = Instant::now();
    ledger.check_invariants().expect("invariants hold");
    println!(
        "full invariant check over {} transfers: {:?}",
        ledger.totals().transfers,
        start.elapsed()
    );
    let mut snapshot = Vec::new();
    let start = Instant::now();
    croupier_core::codec::encode_ledger(&ledger, &mut snapshot);
    let encode_snapshot = start.elapsed();
    let start = Instant::now();
    let restored = croupier_core::codec::decode_ledger(&snapshot).expect("snapshot decodes");
    println!(
        "snapshot {} MB: encode {:?}, decode (with full check) {:?}",
        snapshot.len() >> 20,
        encode_snapshot,
        start.elapsed()
    );
    assert_eq!(restored.totals(), ledger.totals());
}

/// CPU time this thread has run (Linux); zero where unavailable.
fn thread_cpu_time() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

fn percentiles(times: &mut [Duration]) -> String {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    format!(
        "{:.2} / {:.2} / {:.2} ms",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0))
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
