//! Many Raft groups per process: three hosts (each a runtime, a log writer thread and a peer
//! listener, as one `croupier serve` process has) run several ledger groups over real loopback
//! sockets. Adding a group adds no consensus, log writer or index thread, every group elects its own
//! leader and serves writes, and when a host stops every group fails over.

use std::path::Path;
use std::time::{Duration, Instant};

use croupier_cluster::{
    ClusterOptions, Consensus, Execution, Host, HostConfig, Member, Node, NodeConfig, PeerEndpoint,
    PeerSecret, ProposeError, TcpNet, CONSENSUS_BLOCKING_THREADS_MAX,
    CONSENSUS_WORKER_THREADS_DEFAULT,
};
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, CreateTransferResult, LedgerCode,
    NewAccount, NewTransfer, TransferFlags,
};

const HOSTS: u64 = 3;
const GROUPS_FIRST: &[u64] = &[1];
const GROUPS_MORE: &[u64] = &[2, 3, 4, 5];

/// The tests count this process's threads, so they run one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

fn accounts() -> Command {
    Command::CreateAccounts(
        [1u128, 2]
            .into_iter()
            .map(|id| NewAccount {
                id,
                ledger: eur(),
                kind: AccountKind::System,
                flags: AccountFlags::empty(),
            })
            .collect(),
    )
}

fn transfer(id: u128, amount: u64) -> Command {
    Command::CreateTransfers(vec![NewTransfer {
        id,
        debit_account_id: 1,
        credit_account_id: 2,
        amount,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    }])
}

/// Threads of this process whose name starts with `prefix` (names are cut to 15 bytes).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

async fn start_hosts() -> Vec<Host> {
    let mut hosts = Vec::new();
    for node_id in 1..=HOSTS {
        let config = HostConfig {
            node_id,
            consensus_worker_threads: CONSENSUS_WORKER_THREADS_DEFAULT,
            peers: Some(PeerEndpoint {
                listen: "127.0.0.1:0".to_string(),
                secret: PeerSecret::none(),
                routes: Vec::new(),
                net: std::sync::Arc::new(TcpNet),
            }),
            execution: Execution::Threads,
        };
        hosts.push(Host::start(config).await.unwrap());
    }
    hosts
}

fn group_config(root: &Path, hosts: &[Host], host: &Host, group_id: u64) -> NodeConfig {
    let addr = |h: &Host| h.peer_addr().unwrap().to_string();
    let mut options = ClusterOptions::new(addr(host), format!("api-of-node-{}", host.node_id()));
    options.members = hosts
        .iter()
        .map(|h| Member {
            node_id: h.node_id(),
            peer_addr: addr(h),
            api_addr: format!("api-of-node-{}", h.node_id()),
        })
        .collect();
    let dir = root.join(format!("node-{}/group-{group_id}", host.node_id()));
    let mut config = NodeConfig::new(dir);
    config.node_id = host.node_id();
    config.cluster = Some(options);
    config
}

async fn start_groups(root: &Path, hosts: &[Host], group_ids: &[u64]) -> Vec<Vec<Node>> {
    let mut started = Vec::new();
    for &group_id in group_ids {
        let members = hosts
            .iter()
            .map(|host| host.start_group(group_id, group_config(root, hosts, host, group_id)));
        let members = futures_util::future::try_join_all(members).await.unwrap();
        started.push(members);
    }
    started
}

/// Proposes through `members` until one takes it (an election may be under way).
async fn propose(members: &[Node], commands: Vec<Command>) -> Vec<CommandResult> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for node in members {
            match node.propose(commands.clone()).await {
                Ok(results) => return results,
                Err(ProposeError::ShuttingDown) => continue,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(error) => panic!("group {} refused writes: {error}", node.group_id()),
            }
        }
    }
}

async fn balance_of_2(node: &Node) -> u128 {
    node.read(|view| view.account(2).map(|a| a.credits_posted).unwrap_or(0))
        .await
        .unwrap()
}

/// Writes a distinct amount to each group and checks no group sees another's.
async fn write_one_transfer_each(groups: &[Vec<Node>], id: u128) {
    for members in groups {
        let amount = members[0].group_id() * 100;
        let results = propose(members, vec![accounts(), transfer(id, amount)]).await;
        assert_eq!(
            results[1],
            CommandResult::Transfers(vec![CreateTransferResult::Ok])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_groups_share_each_hosts_runtime_log_writer_and_listener() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let root = tempfile::tempdir().unwrap();
    let hosts = start_hosts().await;
    let mut groups = start_groups(root.path(), &hosts, GROUPS_FIRST).await;
    // Per host: the runtime's driver thread, its workers, at most its blocking threads.
    let consensus_max =
        HOSTS as usize * (1 + CONSENSUS_WORKER_THREADS_DEFAULT + CONSENSUS_BLOCKING_THREADS_MAX);
    assert_eq!(threads_named("croupier-log-wr"), HOSTS as usize);
    assert!(threads_named("croupier-consen") <= consensus_max);
    // Every history index of the process (three per group member) shares one pool.
    assert_eq!(threads_named("id-index"), 3);
    groups.extend(start_groups(root.path(), &hosts, GROUPS_MORE).await);
    write_one_transfer_each(&groups, 1).await;
    assert_eq!(threads_named("croupier-log-wr"), HOSTS as usize);
    assert!(threads_named("croupier-consen") <= consensus_max);
    assert_eq!(threads_named("id-index"), 3);
    assert_eq!(hosts[0].group_ids(), vec![1, 2, 3, 4, 5]);
    for members in &groups {
        let expected = u128::from(members[0].group_id() * 100);
        let leader = members.iter().find(|n| n.is_leader()).expect("a leader");
        assert_eq!(balance_of_2(leader).await, expected);
    }

    // A host that stops takes one member out of every group: each elects among the rest.
    hosts[0].shutdown().await.unwrap();
    assert!(hosts[0].group_ids().is_empty());
    let survivors: Vec<Vec<Node>> = groups.iter().map(|members| members[1..].to_vec()).collect();
    write_one_transfer_each(&survivors, 2).await;
    for members in &survivors {
        let expected = u128::from(members[0].group_id() * 100 * 2);
        let leader = members.iter().find(|n| n.is_leader()).expect("a leader");
        assert_eq!(balance_of_2(leader).await, expected);
    }
    for host in &hosts[1..] {
        host.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_id_runs_once_per_host_and_a_stopped_group_can_start_again() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let root = tempfile::tempdir().unwrap();
    let hosts = start_hosts().await;
    let groups = start_groups(root.path(), &hosts, &[7]).await;
    let again = hosts[0]
        .start_group(7, group_config(root.path(), &hosts, &hosts[0], 7))
        .await;
    assert!(
        again.is_err(),
        "a second group 7 on one host must be refused"
    );
    write_one_transfer_each(&groups, 1).await;

    // Stopping one member leaves the host serving; the member restarts from its directory.
    groups[0][1].shutdown().await.unwrap();
    assert_eq!(hosts[1].group_ids(), Vec::<u64>::new());
    let restarted = hosts[1]
        .start_group(7, group_config(root.path(), &hosts, &hosts[1], 7))
        .await
        .unwrap();
    let members = vec![groups[0][0].clone(), restarted, groups[0][2].clone()];
    write_one_transfer_each(std::slice::from_ref(&members), 2).await;
    for host in &hosts {
        host.shutdown().await.unwrap();
    }
}

/// A feed consumer that moves with leadership (the webhooks, the AML pipeline) resumes on the
/// member that serves writes next after what the old leader acknowledged, instead of from its
/// own (here: absent) cursor, which would resend the whole retained feed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_on_another_member_after_what_the_leader_acknowledged() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let root = tempfile::tempdir().unwrap();
    let hosts = start_hosts().await;
    let groups = start_groups(root.path(), &hosts, &[9]).await;
    let members = &groups[0];
    propose(members, vec![accounts()]).await;
    for id in 1..=5 {
        propose(members, vec![transfer(id, 10)]).await;
    }
    let leader = members.iter().find(|n| n.is_leader()).expect("a leader");
    let mut consumer = leader.subscribe("webhook-ops").unwrap();
    let delivered = consumer.next_batch(100).await.unwrap();
    assert!(
        delivered.len() >= 6,
        "accounts and transfers: {delivered:?}"
    );
    let acked = delivered.last().unwrap().position;
    consumer.ack(acked).unwrap();

    let follower = members.iter().find(|n| !n.is_leader()).expect("a follower");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let replicated = follower
            .read_stale(|view| view.ledger().consumer_cursor("webhook-ops"))
            .await
            .unwrap();
        if replicated == Some(acked) {
            break;
        }
        assert!(Instant::now() < deadline, "not replicated: {replicated:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    propose(members, vec![transfer(6, 10)]).await;
    let mut resumed = follower.subscribe("webhook-ops").unwrap();
    assert_eq!(
        resumed.acked(),
        None,
        "the follower had no cursor of its own"
    );
    let skipped = resumed.catch_up_to_replicated().await.unwrap();
    assert_eq!(skipped, Some((0, acked)));
    assert_eq!(
        resumed.catch_up_to_replicated().await.unwrap(),
        None,
        "once"
    );
    let next = resumed.next_batch(100).await.unwrap();
    assert!(!next.is_empty());
    assert!(
        next.iter().all(|event| event.position > acked),
        "resent what the leader acknowledged: {next:?}"
    );
    assert_eq!(resumed.acked(), Some(acked));
    for host in &hosts {
        host.shutdown().await.unwrap();
    }
}
