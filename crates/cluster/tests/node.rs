//! A durable single node: proposals, restarts (log replay and checkpoint + log), corruption,
//! the event feed and durable consumers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use croupier_cluster::{
    ClusterError, CommittedEvent, Consensus, Node, NodeConfig, ProposeError, ReadError,
};
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, CreateAccountResult, CreateTransferResult,
    LedgerCode, NewAccount, NewTransfer, TransferFlags,
};
use croupier_store::fs::OsFileSystem;
use croupier_store::{CheckpointManifest, CheckpointStore};

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
    node.read(move |view| {
        ids.iter()
            .map(|id| {
                let account = view.account(*id).expect("account exists");
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
async fn restart_loads_the_checkpoint_then_replays_the_log_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.checkpoint_entries_since_last = 5;
    config.log_entries_kept_after_checkpoint = 0;
    config.log_segment_size_max_bytes = 512; // whole segments fall behind the checkpoint
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 23, 1_000).await;
    let before = balances(&node, &[1, 2, 3, 4]).await;
    node.shutdown().await.unwrap();
    let manifest = current_checkpoint(dir.path()).expect("a checkpoint was written");
    assert!(manifest.last_index > 5, "{manifest:?}");
    let log_first = first_log_index(dir.path());
    assert!(
        log_first > 1,
        "the log was compacted behind the checkpoint (first segment starts at {log_first})"
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
        ClusterError::Corrupt(message) => {
            assert!(message.contains(&file_name), "{message} names {file_name}")
        }
        other => panic!("expected a corruption error, got {other}"),
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

/// Regression: the state machine must judge a term-bound command by the term its entry was
/// appended in (not a constant), so a deposed leader's fail-over never applies; after a
/// restart the node leads in a new term, and a command bound to its old one is refused too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_bound_to_another_term_changes_nothing_even_across_a_restart() {
    use croupier_core::payments::{PaymentCommand, PaymentOutcome};
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(small_config(dir.path())).await.unwrap();
    let term = node.serving_term().expect("a lone node leads");
    let fail_over = |term| {
        Command::Payment(PaymentCommand::FailPayout {
            withdrawal_id: 77,
            attempt: 0,
            reason: "retryable:bank-a".into(),
            next_connector: Some("bank-b".into()),
            leader_term: Some(term),
        })
    };
    let payment = |outcome| CommandResult::Payment(outcome);
    let results = node
        .propose(vec![fail_over(term - 1), fail_over(term)])
        .await
        .unwrap();
    assert_eq!(
        results,
        vec![
            payment(PaymentOutcome::LeaderChanged),
            // Past the fence: judged on the (missing) withdrawal.
            payment(PaymentOutcome::NotFound),
        ]
    );
    node.shutdown().await.unwrap();
    let node = Node::start(small_config(dir.path())).await.unwrap();
    let now = node.serving_term().unwrap();
    assert!(now > term, "a restarted node leads in a new term");
    let results = node.propose(vec![fail_over(term)]).await.unwrap();
    assert_eq!(results, vec![payment(PaymentOutcome::LeaderChanged)]);
    node.shutdown().await.unwrap();
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

/// The checkpoint in force in a stopped node's data dir.
fn current_checkpoint(dir: &Path) -> Option<CheckpointManifest> {
    checkpoints(dir).current().unwrap()
}

fn checkpoints(dir: &Path) -> CheckpointStore {
    CheckpointStore::open(Arc::new(OsFileSystem), dir.join("checkpoint")).unwrap()
}

/// The first index of the oldest log segment (segments are named by their first index).
fn first_log_index(dir: &Path) -> u64 {
    sorted_files(&dir.join("log"))
        .iter()
        .filter_map(|path| {
            path.file_name()?
                .to_str()?
                .strip_suffix(".seg")?
                .parse()
                .ok()
        })
        .min()
        .expect("a log segment")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_checkpoint_refuses_start_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.checkpoint_entries_since_last = 5;
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 12, 1).await;
    node.shutdown().await.unwrap();

    let manifest = current_checkpoint(dir.path()).expect("a checkpoint was written");
    let hot = checkpoints(dir.path()).hot_path(&manifest);
    let mut bytes = std::fs::read(&hot).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&hot, bytes).unwrap();

    let error = Node::start(config).await.err().expect("start must fail");
    let file_name = hot.file_name().unwrap().to_string_lossy().to_string();
    match error {
        ClusterError::Corrupt(message) => {
            assert!(message.contains(&file_name), "{message} names {file_name}")
        }
        other => panic!("expected a corruption error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_vouching_for_another_chain_refuses_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.checkpoint_entries_since_last = 5;
    config.log_entries_kept_after_checkpoint = 1_000; // the log still holds the covered entry
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 12, 1).await;
    node.shutdown().await.unwrap();

    // Rewrite the checkpoint in force, same hot state, with another chain head.
    let store = checkpoints(dir.path());
    let mut manifest = store.current().unwrap().expect("a checkpoint was written");
    let hot = store.load_hot(&manifest).unwrap();
    let mut writer = store.begin(manifest.last_index).unwrap();
    writer.write_all(&hot).unwrap();
    manifest.chain_head[0] ^= 0xff;
    store.commit(writer, &mut manifest).unwrap();

    let error = Node::start(config).await.err().expect("start must fail");
    match error {
        ClusterError::Corrupt(message) => assert!(message.contains("chain head"), "{message}"),
        other => panic!("expected a corruption error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_history_segment_is_refused_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.storage.history_segment_bytes_max = 4096;
    config.checkpoint_entries_since_last = 5; // the damaged records are behind a checkpoint
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 60, 1).await;
    node.trigger_checkpoint().await.unwrap();
    node.shutdown().await.unwrap();

    // A sealed (not the last) segment of the transfers log: sealed frames are checked when
    // read, so the damage shows at start (index catch-up) or at the first read of it.
    let segments = sorted_files(&dir.path().join("history").join("transfers"));
    assert!(
        segments.len() >= 2,
        "small segments were sealed: {segments:?}"
    );
    let sealed = &segments[0];
    let mut bytes = std::fs::read(sealed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(sealed, bytes).unwrap();
    let file_name = sealed.file_name().unwrap().to_string_lossy().to_string();
    let names_file_and_offset = |message: &str| {
        assert!(message.contains(&file_name), "{message} names {file_name}");
        assert!(message.contains("at byte"), "{message} names an offset");
    };

    let node = match Node::start(config).await {
        Err(ClusterError::Corrupt(message)) => return names_file_and_offset(&message),
        Err(other) => panic!("expected a corruption error, got {other}"),
        Ok(node) => node,
    };
    let reads = node
        .read(|view| {
            (1..=120u128)
                .map(|id| view.transfer(id))
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
    let mut refused = 0;
    for (id, read) in (1..=120u128).zip(reads) {
        match read {
            Ok(Some(transfer)) => assert_eq!(transfer.id, id),
            Ok(None) => panic!("transfer {id} vanished instead of being refused"),
            Err(ReadError::Storage(message)) => {
                names_file_and_offset(&message);
                refused += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert!(refused > 0, "the damaged record was served");
    node.shutdown().await.unwrap();
}

/// Every event from the start, page by page.
async fn all_events(node: &Node) -> Vec<CommittedEvent> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = node.events_after(after, 7).await.unwrap();
        if page.events.is_empty() {
            return events;
        }
        after = page.next;
        events.extend(page.events);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_in_order_without_gaps_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    config.checkpoint_entries_since_last = 4;
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 10, 1).await;
    let events = all_events(&node).await;
    // 4 accounts created, then 2 transfers per entry.
    assert_eq!(events.len(), 4 + 20);
    assert!(events.windows(2).all(|w| w[0].position < w[1].position));
    assert_eq!(
        events
            .iter()
            .filter(|e| e.record.event_type() == "transfer_posted")
            .count(),
        20
    );
    node.shutdown().await.unwrap();

    let node = Node::start(config).await.unwrap();
    assert_eq!(
        all_events(&node).await,
        events,
        "replay after the checkpoint adds no event twice"
    );
    write_history(&node, 2, 500).await;
    let after = all_events(&node).await;
    assert_eq!(after.len(), events.len() + 4);
    assert_eq!(&after[..events.len()], &events[..]);
    assert!(after.windows(2).all(|w| w[0].position < w[1].position));
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_consumer_resumes_after_its_acknowledged_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 5, 1).await; // 4 accounts + 10 transfers
    let mut consumer = node.subscribe("payments-export").unwrap();
    let first = consumer.next_batch(6).await.unwrap();
    assert_eq!(first.len(), 6);
    let acked = first[3].position;
    consumer.ack(acked).unwrap();
    // Delivered past the ack, but not acknowledged: these come again after a restart.
    let _ = consumer.next_batch(2).await.unwrap();
    drop(consumer);
    node.shutdown().await.unwrap();

    let node = Node::start(config).await.unwrap();
    write_history(&node, 1, 100).await; // 2 more transfers, committed after the restart
    let everything = all_events(&node).await;
    let expected: Vec<CommittedEvent> = everything
        .iter()
        .filter(|e| e.position > acked)
        .cloned()
        .collect();
    let mut consumer = node.subscribe("payments-export").unwrap();
    assert_eq!(consumer.acked(), Some(acked));
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let batch = consumer.next_batch(3).await.unwrap();
        assert!(!batch.is_empty());
        seen.extend(batch);
    }
    assert_eq!(seen, expected, "everything after the ack, once, in order");

    // A new event wakes a waiting consumer.
    let waiting = tokio::spawn(async move { consumer.next_batch(10).await.unwrap() });
    write_history(&node, 1, 200).await;
    let woken = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap();
    assert!(!woken.is_empty());
    assert!(woken[0].position > expected.last().unwrap().position);
    node.shutdown().await.unwrap();
}

/// Regression: the data dir's lock (and the indexes' background threads) lived as long as any
/// clone of the node, so restarting in the same process after `shutdown` failed with `Locked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_the_data_dir_while_clones_are_alive() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(small_config(dir.path())).await.unwrap();
    write_history(&node, 3, 1).await;
    let clone = node.clone();
    let mut consumer = node.subscribe("late").unwrap();
    let delivered = consumer.next_batch(2).await.unwrap();
    node.shutdown().await.unwrap();

    let second = Node::start(small_config(dir.path())).await.unwrap();
    // The old node's handles write nothing into a directory it no longer holds.
    assert!(consumer.ack(delivered[1].position).is_err());
    assert_eq!(balances(&second, &[1]).await, vec![(30, 9)]);
    second.shutdown().await.unwrap();
    drop(clone);
}

/// The checkpoint a node sends to a new replica (openraft's snapshot data) is a stream of its
/// files: unpacked into an empty data directory whose log starts after it, it starts a node in
/// exactly the state it covers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_streamed_as_an_archive_starts_a_new_node_in_the_same_state() {
    use croupier_store::archive::{unpack, CheckpointArchive};
    use croupier_store::{LogOptions, LogStore};

    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config = small_config(a.path());
    config.checkpoint_entries_since_last = 1_000;
    let node = Node::start(config.clone()).await.unwrap();
    write_history(&node, 12, 1_000).await;
    let applied = node.applied_index();
    node.trigger_checkpoint().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while current_checkpoint(a.path()).is_none_or(|m| m.last_index < applied) {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of entry {applied}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = balances(&node, &[1, 2, 3, 4]).await;
    let history = node
        .read(|view| view.account_transfers(1, 100, None).unwrap().transfers)
        .await
        .unwrap();
    node.shutdown().await.unwrap();

    // Stream the archive through a file, as openraft moves it, then unpack it into B.
    let manifest = current_checkpoint(a.path()).unwrap();
    let fs = Arc::new(OsFileSystem);
    let mut archive =
        CheckpointArchive::plan(fs.clone(), a.path(), &checkpoints(a.path()), &manifest).unwrap();
    let staging = b.path().join("incoming.archive");
    let copied =
        std::io::copy(&mut archive, &mut std::fs::File::create(&staging).unwrap()).unwrap();
    assert_eq!(copied, archive.len());
    let installed = unpack(fs, b.path(), &mut std::fs::File::open(&staging).unwrap()).unwrap();
    assert_eq!(installed.last_index, manifest.last_index);
    assert_eq!(installed.events_end, 0, "the event log does not travel");
    std::fs::remove_file(&staging).unwrap();
    let (mut log, _) = LogStore::open(b.path().join("log"), LogOptions::default()).unwrap();
    log.purge_through_snapshot(manifest.last_index, manifest.last_term, manifest.chain_head)
        .unwrap();
    log.close().unwrap();

    let node = Node::start(small_config(b.path())).await.unwrap();
    assert_eq!(balances(&node, &[1, 2, 3, 4]).await, before);
    let history_b = node
        .read(|view| view.account_transfers(1, 100, None).unwrap().transfers)
        .await
        .unwrap();
    assert_eq!(history_b, history);
    // Ids stay unique on the new node: an old transfer again is `exists`.
    let again = node
        .propose(vec![Command::CreateTransfers(vec![transfer(
            1_000, 1, 2, 10,
        )])])
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![CommandResult::Transfers(vec![CreateTransferResult::Exists])]
    );
    node.shutdown().await.unwrap();
}
