//! In-process mode: the workload proposed straight to an embedded durable node in a temporary
//! directory (no HTTP, no second process), `--pipeline` batches in flight.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context};
use croupier_cluster::{Consensus, Node, NodeConfig};
use croupier_core::{Command, CommandResult, BATCH_ITEMS_MAX};
use tokio::task::JoinSet;

use super::workload::{Workload, WorkloadConfig};
use super::{progress_bar, LatencyHistogram, LedgerArgs, Outcome};

fn record_transfer_failures(results: &[CommandResult], failures: &mut BTreeMap<String, u64>) {
    for result in results {
        match result {
            CommandResult::Transfers(items) => {
                for item in items.iter().filter(|r| r.code() != "ok") {
                    *failures.entry(item.code().to_string()).or_default() += 1;
                }
            }
            other => {
                *failures
                    .entry(format!("unexpected result {other:?}"))
                    .or_default() += 1
            }
        }
    }
}

async fn create_accounts(node: &Node, workload: &Workload) -> anyhow::Result<()> {
    for chunk in workload.accounts().chunks(BATCH_ITEMS_MAX) {
        let results = node
            .propose(vec![Command::CreateAccounts(chunk.to_vec())])
            .await?;
        let all_ok = matches!(&results[..], [CommandResult::Accounts(r)] if r.iter().all(|r| r.code() == "ok"));
        if !all_ok {
            bail!("creating the benchmark accounts failed: {results:?}");
        }
    }
    Ok(())
}

pub async fn run(args: &LedgerArgs, transfers: u64) -> anyhow::Result<Outcome> {
    let mut workload = Workload::new(WorkloadConfig {
        accounts: args.accounts,
        transfers,
        distribution: args.distribution,
        seed: args.seed,
        id_high: args.id_high.unwrap_or(0),
    })?;
    let dir = tempfile::tempdir().context("creating a temporary data directory")?;
    let node = Node::start(NodeConfig::new(dir.path())).await?;
    create_accounts(&node, &workload).await?;

    let bar = progress_bar(transfers, "transfers");
    let mut latencies = LatencyHistogram::new();
    let mut failures = BTreeMap::new();
    let mut in_flight = JoinSet::new();
    let mut batches = 0u64;
    // As in TigerBeetle's benchmark, generating the transfers is inside the timed window; the
    // latency of a batch runs from its proposal to its results.
    let started = Instant::now();
    loop {
        while in_flight.len() < args.pipeline {
            let batch = workload.next_batch(args.batch);
            if batch.is_empty() {
                break;
            }
            batches += 1;
            let node = node.clone();
            in_flight.spawn(async move {
                let size = batch.len() as u64;
                let sent = Instant::now();
                let results = node.propose(vec![Command::CreateTransfers(batch)]).await;
                (size, sent.elapsed(), results)
            });
        }
        let Some(done) = in_flight.join_next().await else {
            break;
        };
        let (size, latency, results) = done.context("benchmark task")?;
        let results = results.context("proposing a batch")?;
        latencies.record(latency);
        record_transfer_failures(&results, &mut failures);
        bar.inc(size);
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    node.shutdown().await?;
    Ok(Outcome {
        mode: format!(
            "in-process: embedded durable node in a temporary directory, no HTTP, one process, \
             {} batches in flight",
            args.pipeline
        ),
        batches,
        batch_size: args.batch,
        transfers,
        elapsed,
        latencies,
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use croupier_core::CreateTransferResult;

    #[test]
    fn failures_are_counted_by_result_code() {
        let mut failures = BTreeMap::new();
        let results = vec![CommandResult::Transfers(vec![
            CreateTransferResult::Ok,
            CreateTransferResult::ExceedsCredits,
            CreateTransferResult::ExceedsCredits,
        ])];
        record_transfer_failures(&results, &mut failures);
        assert_eq!(
            failures,
            BTreeMap::from([("exceeds_credits".to_string(), 2)])
        );
    }
}
