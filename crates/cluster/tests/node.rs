//! A durable single node: proposals, restarts (log replay and snapshot + log), corruption.

use std::path::{Path, PathBuf};

use croupier_cluster::{ClusterError, Consensus, Node, NodeConfig, ProposeError};
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, CreateAccountResult, CreateTransferResult,
    LedgerCode, NewAccount, NewTransfer, TransferFlags,
};

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

fn accounts(ids: std::ops::RangeInclusive<u128>) -> Command {
    Command::CreateAccounts(
        ids.map(|id| NewAccount {
            id,
            ledger: eur(),
            kind: AccountKind::System,
            flags: AccountFlags::empty(),
        })
        .collect(),
    )
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u64) -> NewTransfer {
    NewTransfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    }
}

fn small_config(dir: &Path) -> NodeConfig {
    let mut config = NodeConfig::new(dir);
    config.log_segment_size_max_bytes = 4096;
    config
}

async fn balances(node: &Node, ids: &[u128]) -> Vec<(u128, u128)> {
    let ids = ids.to_vec();
    node.read(move |ledger| {
        ids.iter()
            .map(|id| {
                let account = ledger.account(*id).expect("account exists");
                (account.debits_posted, account.credits_posted)
            })
            .collect()
    })
    .await
    .unwrap()
}

/// Creates accounts 1..=4 and `entries` entries of two transfers each; returns the last id used.
async fn write_history(node: &Node, entries: u128, first_id: u128) -> u128 {
    let results = node.propose(vec![accounts(1..=4)]).await.unwrap();
    assert!(
        matches!(&results[..], [CommandResult::Accounts(r)] if r.iter().all(|r| r.is_ok_or_exists()))
    );
    let mut id = first_id;
    for round in 0..entries {
        let batch = vec![
            transfer(id, 1, 2 + round % 3, 10),
            transfer(id + 1, 2 + round % 3, 1, 3),
        ];
        id += 2;
        let results = node
            .propose(vec![Command::CreateTransfers(batch)])
            .await
            .unwrap();
        assert_eq!(
            results,
            vec![CommandResult::Transfers(vec![CreateTransferResult::Ok; 2])]
        );
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replays_the_log_and_restores_balances() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(small_config(dir.path())).await.unwrap();
    assert!(node.is_serving_writes());
    write_history(&node, 30, 100).await;
    let before = balances(&node, &[1, 2, 3, 4]).await;
    assert_eq!(before[0], (300, 90));
    node.shutdown().await.unwrap();
    assert!(!node.is_serving_writes());

    let node = Node::start(small_config(dir.path())).await.unwrap();
    assert_eq!(balances(&node, &[1, 2, 3, 4]).await, before);
    // The same ids again answer `exists` and move no money: the ledger remembers them.
    let results = node
        .propose(vec![Command::CreateTransfers(vec![transfer(
            100, 1, 2, 10,
        )])])
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![CommandResult::Transfers(vec![CreateTransferResult::Exists])]
    );
    assert_eq!(balances(&node, &[1, 2, 3, 4]).await, before);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loads_the_snapshot_then_replays_the_log_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.snapshot_entries_since_last = 5;
    config.log_entries_kept_after_snapshot = 0;
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 23, 1_000).await;
    let before = balances(&node, &[1, 2, 3, 4]).await;
    node.shutdown().await.unwrap();
    assert!(
        dir_has_files(&dir.path().join("snapshots")),
        "a snapshot was written"
    );

    let node = Node::start(config.clone()).await.unwrap();
    assert_eq!(balances(&node, &[1, 2, 3, 4]).await, before);
    // And the node keeps going from there, across another restart.
    write_history(&node, 7, 5_000).await;
    let after = balances(&node, &[1, 2, 3, 4]).await;
    node.shutdown().await.unwrap();
    let node = Node::start(config).await.unwrap();
    assert_eq!(balances(&node, &[1, 2, 3, 4]).await, after);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_sealed_segment_refuses_start_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(small_config(dir.path())).await.unwrap();
    write_history(&node, 60, 1).await;
    node.shutdown().await.unwrap();

    let segments = sorted_files(&dir.path().join("log"));
    assert!(
        segments.len() >= 2,
        "small segments were sealed: {segments:?}"
    );
    let sealed = &segments[0];
    let mut bytes = std::fs::read(sealed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(sealed, bytes).unwrap();

    let error = Node::start(small_config(dir.path()))
        .await
        .err()
        .expect("start must fail");
    let file_name = sealed.file_name().unwrap().to_string_lossy().to_string();
    match error {
        ClusterError::Storage(message) => {
            assert!(message.contains(&file_name), "{message} names {file_name}")
        }
        other => panic!("expected a storage error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_each_get_their_own_results() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    let results = node.propose(vec![accounts(1..=2)]).await.unwrap();
    assert_eq!(
        results,
        vec![CommandResult::Accounts(vec![CreateAccountResult::Ok; 2])]
    );

    let mut tasks = Vec::new();
    for id in 1..=64u128 {
        let node = node.clone();
        // Odd ids name a debit account that does not exist: their answers must not get mixed up.
        let debit = if id % 2 == 0 { 1 } else { 99 };
        tasks.push(tokio::spawn(async move {
            let results = node
                .propose(vec![Command::CreateTransfers(vec![transfer(
                    id, debit, 2, 1,
                )])])
                .await;
            (id, results)
        }));
    }
    for task in tasks {
        let (id, results) = task.await.unwrap();
        let expected = if id % 2 == 0 {
            CreateTransferResult::Ok
        } else {
            CreateTransferResult::DebitAccountNotFound
        };
        assert_eq!(
            results.unwrap(),
            vec![CommandResult::Transfers(vec![expected])],
            "transfer {id}"
        );
    }
    assert_eq!(balances(&node, &[1, 2]).await, vec![(32, 0), (0, 32)]);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_after_shutdown_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(NodeConfig::new(dir.path())).await.unwrap();
    node.shutdown().await.unwrap();
    node.shutdown().await.unwrap();
    assert_eq!(
        node.propose(vec![accounts(1..=1)]).await,
        Err(ProposeError::ShuttingDown)
    );
    assert_eq!(node.read(|_| ()).await, Err(ProposeError::ShuttingDown));
}

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn dir_has_files(dir: &Path) -> bool {
    dir.is_dir() && !sorted_files(dir).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_snapshot_refuses_start_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.snapshot_entries_since_last = 5;
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 12, 1).await;
    node.shutdown().await.unwrap();

    let snapshots = sorted_files(&dir.path().join("snapshots"));
    let newest = snapshots.last().expect("a snapshot was written");
    let mut bytes = std::fs::read(newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(newest, bytes).unwrap();

    let error = Node::start(config).await.err().expect("start must fail");
    let file_name = newest.file_name().unwrap().to_string_lossy().to_string();
    match error {
        ClusterError::Storage(message) => {
            assert!(message.contains(&file_name), "{message} names {file_name}")
        }
        other => panic!("expected a storage error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_vouching_for_another_chain_refuses_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.snapshot_entries_since_last = 5;
    config.log_entries_kept_after_snapshot = 1_000; // the log still holds the covered entry
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 12, 1).await;
    node.shutdown().await.unwrap();

    let snapshots = croupier_store::SnapshotStore::open(dir.path().join("snapshots")).unwrap();
    let (mut meta, data) = snapshots
        .load_latest()
        .unwrap()
        .expect("a snapshot was written");
    meta.chain_head[0] ^= 0xff;
    snapshots.save(&meta, &data).unwrap();

    let error = Node::start(config).await.err().expect("start must fail");
    match error {
        ClusterError::Storage(message) => assert!(message.contains("chain head"), "{message}"),
        other => panic!("expected a storage error, got {other}"),
    }
}
