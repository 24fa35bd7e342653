//! Group commit: many concurrent requests become one log entry, so they share one fsync.
//!
//! Handlers never call `propose`. They put their command on a bounded queue with a oneshot
//! for the answer. One batcher task takes the first waiting command, drains whatever else is
//! already queued (up to `entry_items_max` items), proposes the lot as ONE entry and routes
//! each result back. Up to `proposals_in_flight_max` entries may be in flight at once; while
//! all are busy the queue grows and the next entry is larger, which is what keeps throughput up
//! under load.
//!
//! Before closing an entry the batcher yields to the runtime `gather_yields_max` times, so
//! request handlers that are already runnable can queue their commands first; without it the
//! batcher, woken by the first command, often leaves with that one alone.
//!
//! Defaults, measured with `croupier bench ledger --http --transfers 600000` (256 connections,
//! single-transfer requests, client in the same process) on the 2-core machine:
//! - gather yields 0 / 1 / 2 / 4: ~48k / ~50k / ~58k / ~55k requests/s, p99 10 / 9 / 7-8 /
//!   7-9 ms, 27 / 50 / 91 / 151 commands per entry. Two it is.
//! - one vs two entries in flight (with 2 yields): equal within the noise (53-68k vs 57-64k/s).
//!   With other processes competing for the CPU, one in flight was clearly best (wrk, 256
//!   connections: 1, 2, 4, 8 in flight gave 21k, 16k, 12k, 9k requests/s): more entries in
//!   flight split the load into smaller entries whose fixed cost (consensus round, encoding,
//!   wake-ups) takes CPU from HTTP. The disk writer already folds queued appends into one
//!   fdatasync, so the default is one.

use std::mem::size_of;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use croupier_cluster::{Consensus, ProposeError};
use croupier_core::{Command, CommandResult};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Commands waiting for an entry; a request finding the queue full answers 503 overloaded.
    pub queue_depth_max: usize,
    /// Bytes of the commands waiting for an entry (their size in memory); past it a request
    /// answers 503 overloaded too. A count alone let 16,384 full-size batches queue ~13 GB.
    pub queue_bytes_max: usize,
    /// Items in one entry (an account or transfer counts 1, a wallet call 1).
    pub entry_items_max: usize,
    /// Entries proposed and not yet answered (see the module docs for why the default is 1).
    pub proposals_in_flight_max: usize,
    /// Times the batcher yields to runnable request handlers before closing an entry.
    pub gather_yields_max: u32,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            queue_depth_max: 16_384,
            queue_bytes_max: 64 << 20,
            entry_items_max: 2 * croupier_core::BATCH_ITEMS_MAX,
            proposals_in_flight_max: 1,
            gather_yields_max: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The queue is full.
    Overloaded,
    /// The batcher has stopped (server shutting down).
    Stopped,
    Propose(ProposeError),
}

struct Submission {
    command: Command,
    items: usize,
    bytes: usize,
    reply: oneshot::Sender<Result<CommandResult, ProposeError>>,
}

/// The handlers' side of the queue. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Submission>,
    queued_bytes: QueuedBytes,
}

/// Bytes of the commands in the queue: reserved by a handler before it queues, released by
/// the batcher as it takes them off.
#[derive(Clone)]
struct QueuedBytes {
    now: Arc<AtomicUsize>,
    max: usize,
}

impl QueuedBytes {
    fn try_reserve(&self, bytes: usize) -> bool {
        self.now
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                now.checked_add(bytes).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.now.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl Committer {
    /// Queues `command` for the next entry and waits until that entry is durable and applied.
    pub async fn commit(&self, command: Command) -> Result<CommandResult, CommitError> {
        let items = command_items(&command);
        let bytes = command_bytes(&command);
        if !self.queued_bytes.try_reserve(bytes) {
            return Err(CommitError::Overloaded);
        }
        let (reply, answer) = oneshot::channel();
        let queued = self.queue.try_send(Submission {
            command,
            items,
            bytes,
            reply,
        });
        if let Err(error) = queued {
            self.queued_bytes.release(bytes);
            return Err(match error {
                mpsc::error::TrySendError::Full(_) => CommitError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => CommitError::Stopped,
            });
        }
        match answer.await {
            Ok(result) => result.map_err(CommitError::Propose),
            Err(_) => Err(CommitError::Stopped),
        }
    }
}

/// Stops the batcher: new commands are refused, queued ones are still proposed, and `wait`
/// returns once every proposal in flight has been answered.
pub struct Batcher {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Batcher {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "group-commit batcher ended abnormally");
        }
    }
}

pub fn spawn<C: Consensus>(consensus: C, config: GroupCommitConfig) -> (Committer, Batcher) {
    assert!(config.queue_depth_max > 0 && config.entry_items_max > 0);
    assert!(config.proposals_in_flight_max > 0);
    let (queue, receiver) = mpsc::channel(config.queue_depth_max);
    let (stop, stopped) = watch::channel(false);
    let queued_bytes = QueuedBytes {
        now: Arc::new(AtomicUsize::new(0)),
        max: config.queue_bytes_max,
    };
    let receiver = Queue {
        receiver,
        queued_bytes: queued_bytes.clone(),
    };
    let task = tokio::spawn(run(consensus, config, receiver, stopped));
    let committer = Committer {
        queue,
        queued_bytes,
    };
    (committer, Batcher { stop, task })
}

/// The batcher's side of the queue: every command taken off releases its bytes.
struct Queue {
    receiver: mpsc::Receiver<Submission>,
    queued_bytes: QueuedBytes,
}

impl Queue {
    fn taken(&self, submission: Submission) -> Submission {
        self.queued_bytes.release(submission.bytes);
        submission
    }

    async fn recv(&mut self) -> Option<Submission> {
        let submission = self.receiver.recv().await?;
        Some(self.taken(submission))
    }

    fn try_recv(&mut self) -> Option<Submission> {
        let submission = self.receiver.try_recv().ok()?;
        Some(self.taken(submission))
    }

    fn len(&self) -> usize {
        self.receiver.len()
    }

    fn close(&mut self) {
        self.receiver.close();
    }
}

/// `command_bytes` of the largest command a request can make: 8,189 accounts or transfers.
pub fn largest_command_bytes() -> usize {
    let item = size_of::<croupier_core::NewTransfer>().max(size_of::<croupier_core::NewAccount>());
    size_of::<Command>() + croupier_core::BATCH_ITEMS_MAX * item
}

/// The bytes a queued command holds in memory (what `queue_bytes_max` counts). The largest
/// request, 8,189 transfers, is about 0.8 MB.
pub fn command_bytes(command: &Command) -> usize {
    let keys = |keys: &[&String]| keys.iter().map(|key| key.len()).sum::<usize>();
    size_of::<Command>()
        + match command {
            Command::CreateAccounts(accounts) => size_of_val(accounts.as_slice()),
            Command::CreateTransfers(transfers) => size_of_val(transfers.as_slice()),
            Command::WalletBet(bet) => keys(&[&bet.transaction_id, &bet.round_id]),
            Command::WalletWin(win) => keys(&[&win.transaction_id, &win.round_id]),
            Command::WalletRollback(rollback) => keys(&[
                &rollback.transaction_id,
                &rollback.round_id,
                &rollback.rolled_back_transaction_id,
            ]),
            Command::CreatePlayer(player) => {
                keys(&[&player.username, &player.password_hash])
                    + size_of_val(player.currencies.as_slice())
            }
            Command::Table(table) => table_command_bytes(table),
            Command::Compliance(command) => compliance_command_bytes(command),
            Command::Payment(command) => payment_command_bytes(command),
            Command::ConsumerAck(ack) => ack.name.len(),
            Command::Tick
            | Command::OpenSession(_)
            | Command::CloseSession(_)
            | Command::RevokeSessions(_) => 0,
            Command::ByOperator {
                key_id, command, ..
            } => key_id.len() + command_bytes(command),
        }
}

fn payment_command_bytes(command: &croupier_core::payments::PaymentCommand) -> usize {
    use croupier_core::payments::{PayeeAccount, PaymentCommand, WithdrawalDecision};
    match command {
        PaymentCommand::OpenDeposit { connector, .. } => connector.len(),
        PaymentCommand::DepositStarted {
            consent_id,
            authorisation_url,
            ..
        } => consent_id.len() + authorisation_url.len(),
        PaymentCommand::FailDeposit { reason, .. } => reason.len(),
        PaymentCommand::RequestWithdrawal { payee, .. }
        | PaymentCommand::ReturnDeposit { payee, .. } => {
            let account = match &payee.account {
                PayeeAccount::Iban(iban) => iban.len(),
                PayeeAccount::SortCode {
                    sort_code,
                    account_number,
                } => sort_code.len() + account_number.len(),
            };
            account + payee.name.len()
        }
        PaymentCommand::DecideWithdrawal {
            decision, reasons, ..
        } => {
            let connector = match decision {
                WithdrawalDecision::Approve { connector } => connector.len(),
                _ => 0,
            };
            connector + reasons.iter().map(|reason| reason.len()).sum::<usize>()
        }
        PaymentCommand::PayoutAccepted { payment_id, .. }
        | PaymentCommand::ReturnAccepted { payment_id, .. } => payment_id.len(),
        PaymentCommand::FailReturn { reason, .. } => reason.len(),
        PaymentCommand::FailPayout {
            reason,
            next_connector,
            ..
        } => reason.len() + next_connector.as_ref().map_or(0, String::len),
        PaymentCommand::SettleDeposit { .. }
        | PaymentCommand::SettlePayout { .. }
        | PaymentCommand::SettleReturn { .. } => 0,
    }
}

fn compliance_command_bytes(command: &croupier_core::compliance::ComplianceCommand) -> usize {
    use croupier_core::compliance::{ComplianceCommand, IdentityRecord};
    match command {
        ComplianceCommand::RecordIdentity { identity, .. } => {
            size_of::<IdentityRecord>() + identity.issuer.len() + identity.name.len()
        }
        ComplianceCommand::SetPolicy(policy) => size_of_val(policy.jurisdictions.as_slice()),
        _ => 0,
    }
}

fn table_command_bytes(command: &croupier_core::tables::TableCommand) -> usize {
    use croupier_core::tables::TableCommand as T;
    match command {
        T::Configure(config) => config.game.len(),
        T::Bet(bet) => size_of_val(bet.spots.as_slice()),
        T::Draw { draw, .. } => draw.outcome.len() + size_of_val(draw.returns.as_slice()),
        T::Open { .. } | T::Close { .. } | T::Settle { .. } | T::Void { .. } => 0,
    }
}

fn command_items(command: &Command) -> usize {
    match command {
        Command::CreateAccounts(accounts) => accounts.len().max(1),
        Command::CreateTransfers(transfers) => transfers.len().max(1),
        Command::ByOperator { command, .. } => command_items(command),
        _ => 1,
    }
}

async fn run<C: Consensus>(
    consensus: C,
    config: GroupCommitConfig,
    mut queue: Queue,
    mut stopped: watch::Receiver<bool>,
) {
    let in_flight = Arc::new(Semaphore::new(config.proposals_in_flight_max));
    // A command that did not fit in the previous entry; it opens the next one.
    let mut carried: Option<Submission> = None;
    loop {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let first = match carried.take() {
            Some(submission) => submission,
            None => match next_submission(&mut queue, &mut stopped).await {
                Some(submission) => submission,
                None => break,
            },
        };
        // Requests whose handlers are runnable right now are about to join the queue: yielding
        // lets them, so an entry does not leave with one command while dozens are a moment
        // away. Under light load the run queue is empty and a yield costs nothing.
        for _ in 0..config.gather_yields_max {
            if queue.len() + first.items >= config.entry_items_max {
                break;
            }
            tokio::task::yield_now().await;
        }
        let mut batch = Batch::with_capacity(queue.len() + 1);
        batch.push(first);
        while batch.items < config.entry_items_max {
            let Some(submission) = queue.try_recv() else {
                break;
            };
            if batch.items + submission.items > config.entry_items_max {
                carried = Some(submission);
                break;
            }
            batch.push(submission);
        }
        metrics::gauge!("croupier_group_commit_queue_depth").set(queue.len() as f64);
        let consensus = consensus.clone();
        tokio::spawn(async move {
            batch.propose(&consensus).await;
            drop(permit);
        });
    }
    // Wait until every entry in flight has been answered.
    let all = u32::try_from(config.proposals_in_flight_max).unwrap_or(u32::MAX);
    let _ = in_flight.acquire_many(all).await;
}

/// The next queued command; after a stop request, the queue is closed and drained first.
async fn next_submission(
    queue: &mut Queue,
    stopped: &mut watch::Receiver<bool>,
) -> Option<Submission> {
    if !*stopped.borrow() {
        tokio::select! {
            biased;
            submission = queue.recv() => return submission,
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    }
    queue.close();
    queue.recv().await
}

struct Batch {
    commands: Vec<Command>,
    replies: Vec<oneshot::Sender<Result<CommandResult, ProposeError>>>,
    items: usize,
}

impl Batch {
    fn with_capacity(capacity: usize) -> Self {
        Batch {
            commands: Vec::with_capacity(capacity),
            replies: Vec::with_capacity(capacity),
            items: 0,
        }
    }

    fn push(&mut self, submission: Submission) {
        self.items += submission.items;
        self.commands.push(submission.command);
        self.replies.push(submission.reply);
    }

    async fn propose<C: Consensus>(self, consensus: &C) {
        let Batch {
            commands,
            replies,
            items,
        } = self;
        let command_count = commands.len();
        metrics::histogram!("croupier_group_commit_commands_per_entry")
            .record(command_count as f64);
        metrics::histogram!("croupier_group_commit_items_per_entry").record(items as f64);
        let started = Instant::now();
        let outcome = consensus.propose(commands).await;
        metrics::histogram!("croupier_group_commit_propose_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(results) if results.len() == command_count => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // The requester may have gone away; its command is committed all the same.
                    let _ = reply.send(Ok(result));
                }
            }
            Ok(results) => {
                tracing::error!(
                    commands = command_count,
                    results = results.len(),
                    "consensus answered a different number of results than commands"
                );
                let error = ProposeError::Fatal("result count mismatch".to_owned());
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            Err(error) => {
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use croupier_core::NewTransfer;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records the size of each entry and answers `Tick` for every command; the shape of the
    /// answer is all the batcher cares about.
    #[derive(Clone, Default)]
    struct CountingConsensus {
        entries: Arc<Mutex<Vec<usize>>>,
        in_flight: Arc<AtomicUsize>,
        in_flight_peak: Arc<AtomicUsize>,
    }

    impl Consensus for CountingConsensus {
        async fn propose(
            &self,
            commands: Vec<Command>,
        ) -> Result<Vec<CommandResult>, ProposeError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.in_flight_peak.fetch_max(now, Ordering::SeqCst);
            self.entries.lock().unwrap().push(commands.len());
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            Ok(commands.iter().map(|_| CommandResult::Tick).collect())
        }

        async fn read<R, F>(&self, _read: F) -> Result<R, ProposeError>
        where
            R: Send + 'static,
            F: FnOnce(&croupier_cluster::LedgerView<'_>) -> R + Send + 'static,
        {
            // The batcher never reads; a `LedgerView` exists only inside a real node.
            Err(ProposeError::Fatal(
                "reads are not part of this test".into(),
            ))
        }

        async fn events_after(
            &self,
            after: u64,
            _limit: usize,
        ) -> Result<croupier_cluster::EventPage, croupier_cluster::ReadError> {
            Ok(croupier_cluster::EventPage {
                next: after,
                ..Default::default()
            })
        }

        async fn wait_for_event_after(&self, _after: u64) {
            std::future::pending::<()>().await
        }

        fn health(&self) -> croupier_cluster::NodeHealth {
            croupier_cluster::NodeHealth::Serving
        }
    }

    fn transfers(count: usize) -> Command {
        let transfer = NewTransfer {
            id: 1,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 1,
            ledger: croupier_core::LedgerCode::parse("EUR").unwrap(),
            flags: Default::default(),
            pending_id: 0,
            timeout_s: 0,
        };
        Command::CreateTransfers(vec![transfer; count])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_commands_share_entries_and_every_caller_gets_an_answer() {
        let consensus = CountingConsensus::default();
        let config = GroupCommitConfig {
            proposals_in_flight_max: 2,
            ..Default::default()
        };
        let (committer, batcher) = spawn(consensus.clone(), config);
        let callers: Vec<_> = (0..500)
            .map(|_| {
                let committer = committer.clone();
                tokio::spawn(async move { committer.commit(Command::Tick).await })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), Ok(CommandResult::Tick));
        }
        batcher.stop().await;
        let entries = consensus.entries.lock().unwrap().clone();
        assert_eq!(entries.iter().sum::<usize>(), 500);
        assert!(
            entries.len() < 500,
            "no coalescing happened: {} entries",
            entries.len()
        );
        assert!(consensus.in_flight_peak.load(Ordering::SeqCst) <= 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_never_exceeds_the_item_limit() {
        let consensus = CountingConsensus::default();
        let config = GroupCommitConfig {
            entry_items_max: 10,
            proposals_in_flight_max: 1,
            ..Default::default()
        };
        let (committer, batcher) = spawn(consensus.clone(), config);
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let committer = committer.clone();
                tokio::spawn(async move { committer.commit(transfers(4)).await })
            })
            .collect();
        for caller in callers {
            assert!(caller.await.unwrap().is_ok());
        }
        batcher.stop().await;
        let entries = consensus.entries.lock().unwrap().clone();
        assert!(
            entries.iter().all(|&commands| commands * 4 <= 10),
            "{entries:?}"
        );
        assert_eq!(entries.iter().sum::<usize>(), 20);
    }

    #[tokio::test]
    async fn a_full_queue_answers_overloaded_and_a_stopped_batcher_answers_stopped() {
        let consensus = CountingConsensus::default();
        let config = GroupCommitConfig {
            queue_depth_max: 1,
            proposals_in_flight_max: 1,
            ..Default::default()
        };
        let (committer, batcher) = spawn(consensus, config);
        // Current-thread runtime: the batcher cannot run until we yield, so the second
        // command finds the one-slot queue full.
        let first = tokio::spawn({
            let committer = committer.clone();
            async move { committer.commit(Command::Tick).await }
        });
        tokio::task::yield_now().await;
        let mut saw_overload = false;
        for _ in 0..4 {
            let committer = committer.clone();
            let queued = committer.queue.try_send(Submission {
                command: Command::Tick,
                items: 1,
                bytes: 0,
                reply: oneshot::channel().0,
            });
            saw_overload |= queued.is_err();
        }
        assert!(saw_overload);
        assert_eq!(
            committer.commit(Command::Tick).await,
            Err(CommitError::Overloaded)
        );
        assert!(first.await.unwrap().is_ok());
        batcher.stop().await;
        assert_eq!(
            committer.commit(Command::Tick).await,
            Err(CommitError::Stopped)
        );
    }

    #[tokio::test]
    async fn a_queue_full_of_bytes_answers_overloaded_and_frees_them_as_the_batcher_takes_them() {
        let consensus = CountingConsensus::default();
        let big = transfers(100);
        let config = GroupCommitConfig {
            // Room for one big command, far from the command count limit.
            queue_bytes_max: command_bytes(&big) + command_bytes(&big) / 2,
            proposals_in_flight_max: 1,
            ..Default::default()
        };
        let (committer, batcher) = spawn(consensus, config);
        // Current-thread runtime: the batcher cannot run before this task awaits something
        // pending, so the first command stays queued while the second tries.
        let first = committer.commit(big.clone());
        tokio::pin!(first);
        tokio::select! {
            biased;
            _ = &mut first => panic!("answered before the batcher ran"),
            _ = std::future::ready(()) => {}
        }
        assert_eq!(
            committer.commit(big.clone()).await,
            Err(CommitError::Overloaded)
        );
        assert_eq!(
            committer.commit(Command::Tick).await,
            Ok(CommandResult::Tick)
        );
        assert!(first.await.is_ok());
        assert!(committer.commit(big).await.is_ok(), "bytes were released");
        assert_eq!(committer.queued_bytes.now.load(Ordering::SeqCst), 0);
        batcher.stop().await;
    }

    #[test]
    fn command_bytes_grow_with_the_batch_and_the_largest_request_is_under_a_megabyte() {
        assert!(command_bytes(&transfers(2)) > command_bytes(&transfers(1)));
        let largest = command_bytes(&transfers(croupier_core::BATCH_ITEMS_MAX));
        assert!(largest < 1 << 20, "{largest}");
        assert_eq!(largest, largest_command_bytes());
        assert!(largest <= GroupCommitConfig::default().queue_bytes_max);
    }
}
