//! The driver: on the node serving writes, looks at the open deposits and withdrawals and
//! does each one's next step — ask the bank, then propose what it answered — until the payment
//! waits on someone else (the player at the bank's page, the bank's settlement, a case).
//!
//! What a bank error means here (`ConnectorError`): `Retryable` — nothing happened at the
//! bank: a payout attempt that this process began and that nothing can have reached yet fails
//! over to the next eligible connector (any other waits for its own connector); `Unknown` —
//! the request may have taken effect: the same request goes again later to the same connector
//! with the same key, never elsewhere; `Declined` — definitive: a deposit is rejected, a payout
//! is refunded. Once the bank gave a payout its payment id, only the payment's status ends it:
//! errors while asking for it only wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use croupier_cluster::{Consensus, LedgerView};
use croupier_core::cases::CaseDecision;
use croupier_core::payments::{
    DepositRecord, DepositState, PaymentCommand, PaymentOutcome, WithdrawalDecision,
    WithdrawalRecord, WithdrawalState,
};
use croupier_payments::connector::{
    Connector, ConnectorError, PayInRequest, PayOutRequest, PaymentStatus,
};
use croupier_payments::routing::{Payment, Route};

use super::decide::{account_kind, decide, party_of, player_country};
use super::steps::{declined, pay_in_of, propose, propose_ok, DriveError, Step};
use super::{deposit_key, payout_key, Payments, Work};
use crate::error::ApiError;
use crate::state::AppState;

/// Steps one task takes on a payment before it lets the scan come back to it.
const STEPS_PER_DRIVE_MAX: usize = 8;

/// The driver's loop: a pass over the open payments every `poll_interval_ms`, or sooner when
/// kicked; stops when `stop` turns true.
pub async fn run<C: Consensus>(
    state: AppState<C>,
    payments: Arc<Payments>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    prepare_connectors(&payments, stop.clone());
    let interval = Duration::from_millis(payments.config.poll_interval_ms.max(10));
    let mut cursors = (0u128, 0u128);
    loop {
        tokio::select! {
            _ = payments.kick.notified() => {}
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        if !state.consensus().is_serving_writes() {
            payments.forget_fresh_attempts();
            continue;
        }
        if let Err(error) = pass(&state, &payments, &mut cursors).await {
            tracing::debug!(%error, "payments pass");
        }
    }
}

/// Registers the node's key and notification address with every bank, retrying in the
/// background until each bank has them (a bank that is down at start is not an error).
fn prepare_connectors(payments: &Arc<Payments>, stop: tokio::sync::watch::Receiver<bool>) {
    for id in payments.connector_ids() {
        let payments = Arc::clone(payments);
        let id = id.to_string();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(500);
            let connector = payments.connector(&id).expect("configured");
            let callback = payments.callback_url(&id);
            while !*stop.borrow() {
                match connector.prepare(callback.as_deref()).await {
                    Ok(()) => return,
                    Err(error) => tracing::warn!(connector = %id, %error, "bank not ready"),
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        });
    }
}

async fn pass<C: Consensus>(
    state: &AppState<C>,
    payments: &Arc<Payments>,
    cursors: &mut (u128, u128),
) -> Result<(), DriveError> {
    let scan_max = payments.config.scan_max;
    let (after_deposit, after_withdrawal) = *cursors;
    let (deposits, withdrawals) = state
        .read(move |view| {
            let ledger = view.ledger();
            let deposits: Vec<u128> = ledger
                .open_deposits(after_deposit, scan_max)
                .iter()
                .map(|record| record.deposit_id)
                .collect();
            let withdrawals: Vec<u128> = ledger
                .open_withdrawals(after_withdrawal, scan_max)
                .iter()
                .map(|record| record.withdrawal_id)
                .collect();
            (deposits, withdrawals)
        })
        .await?;
    // Past the end: start from the beginning next pass.
    cursors.0 = if deposits.len() < scan_max {
        0
    } else {
        *deposits.last().unwrap_or(&0)
    };
    cursors.1 = if withdrawals.len() < scan_max {
        0
    } else {
        *withdrawals.last().unwrap_or(&0)
    };
    let now = Instant::now();
    let work = deposits
        .into_iter()
        .map(Work::Deposit)
        .chain(withdrawals.into_iter().map(Work::Withdrawal));
    for work in work {
        if payments.due(work, now) {
            spawn_drive(state.clone(), Arc::clone(payments), work);
        }
    }
    Ok(())
}

/// Drives `work` on its own task, unless one already does (or too many run).
pub(crate) fn spawn_drive<C: Consensus>(state: AppState<C>, payments: Arc<Payments>, work: Work) {
    let Ok(permit) = Arc::clone(&payments.drivers).try_acquire_owned() else {
        return;
    };
    if !payments.claim(work) {
        return;
    }
    tokio::spawn(async move {
        // Released however the task ends (a panic or an abort included), so the payment is
        // never left claimed by a task that is gone.
        let claim = Claim {
            payments: Arc::clone(&payments),
            work,
        };
        // This drive looks at the payment now: an earlier notification is answered by it.
        payments.take_woken(work);
        let outcome = drive(&state, &payments, work).await;
        drop(claim);
        drop(permit);
        match outcome {
            Ok(Step::Done) => payments.forget(work),
            Ok(Step::Wait) | Ok(Step::Again) => payments.wait_longer(work),
            Err(error) => {
                tracing::warn!(?work, %error, "payment step failed; tried again later");
                payments.wait_longer(work);
            }
        }
        // A notification that came while this task held the payment found it claimed: look
        // again now rather than after the backoff.
        if payments.take_woken(work) {
            wake_one(state, payments, work);
        }
    });
}

/// Drives `work` now, whatever its backoff; if a task drives it already, that task looks
/// again when it is done.
pub(crate) fn wake_one<C: Consensus>(state: AppState<C>, payments: Arc<Payments>, work: Work) {
    payments.mark_woken(work);
    spawn_drive(state, payments, work);
}

/// A verified notification from `connector` naming the bank's `bank_id`: the payment it is
/// about is looked at now; one not known here (after a restart, a leader change) makes every
/// open payment due, as the scan will then learn their ids.
pub(crate) fn notified<C: Consensus>(
    state: &AppState<C>,
    payments: &Arc<Payments>,
    connector: &str,
    bank_id: &str,
) {
    match payments.notified(connector, bank_id) {
        Some(work) => wake_one(state.clone(), Arc::clone(payments), work),
        None => payments.wake(None),
    }
}

/// A payment claimed by a drive task; dropping it releases the claim.
struct Claim {
    payments: Arc<Payments>,
    work: Work,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.payments.release(self.work);
    }
}

async fn drive<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    work: Work,
) -> Result<Step, DriveError> {
    for step_number in 0..STEPS_PER_DRIVE_MAX {
        // The first look is linearizable: it sees every step an earlier leader committed.
        // After that this node's own state will do: a step goes on only once its command is
        // committed and applied here, so the state holds everything up to it, and the step
        // after reads what it made without another round through consensus.
        let fresh = step_number == 0;
        let step = match work {
            Work::Deposit(id) => match read_payment(state, fresh, id, deposit_of).await? {
                Some(record) => deposit_step(state, payments, &record).await?,
                None => Step::Done,
            },
            Work::Withdrawal(id) => match read_payment(state, fresh, id, withdrawal_of).await? {
                Some(record) => withdrawal_step(state, payments, &record).await?,
                None => Step::Done,
            },
        };
        if !matches!(step, Step::Again) {
            return Ok(step);
        }
    }
    Ok(Step::Again)
}

fn deposit_of(view: &LedgerView<'_>, id: u128) -> Option<DepositRecord> {
    view.ledger().deposit_record(id).cloned()
}

fn withdrawal_of(view: &LedgerView<'_>, id: u128) -> Option<WithdrawalRecord> {
    view.ledger().withdrawal_record(id).cloned()
}

/// A payment's record: linearizable when `fresh`, else this node's applied state.
async fn read_payment<C: Consensus, R: Send + 'static>(
    state: &AppState<C>,
    fresh: bool,
    id: u128,
    of: fn(&LedgerView<'_>, u128) -> Option<R>,
) -> Result<Option<R>, ApiError> {
    match fresh {
        true => state.read(move |view| of(view, id)).await,
        false => state.read_stale(move |view| of(view, id)).await,
    }
}

/// A deposit open or final (a final one is read from history).
pub(crate) async fn read_deposit<C: Consensus>(
    state: &AppState<C>,
    id: u128,
) -> Result<Option<DepositRecord>, ApiError> {
    let found = state.read(move |view| view.deposit(id)).await?;
    let found = found.map_err(ApiError::from_read)?;
    Ok(found.map(|record| DepositRecord::clone(&record)))
}

/// A withdrawal open, held or final (a final one is read from history).
pub(crate) async fn read_withdrawal<C: Consensus>(
    state: &AppState<C>,
    id: u128,
) -> Result<Option<WithdrawalRecord>, ApiError> {
    let found = state.read(move |view| view.withdrawal(id)).await?;
    let found = found.map_err(ApiError::from_read)?;
    Ok(found.map(|record| WithdrawalRecord::clone(&record)))
}

async fn deposit_step<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &DepositRecord,
) -> Result<Step, DriveError> {
    match record.state {
        DepositState::Opening => start_deposit(state, payments, record).await,
        DepositState::AwaitingAuthorisation => poll_deposit(state, payments, record).await,
        DepositState::Refused(_) | DepositState::Returning => {
            super::returns::return_step(state, payments, record).await
        }
        _ => Ok(Step::Done),
    }
}

/// Asks the bank for the deposit's consent and records it (the deposit route calls this too,
/// to answer with the authorisation address).
pub(crate) async fn start_deposit<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &DepositRecord,
) -> Result<Step, DriveError> {
    let connector = payments
        .connector(&record.connector)
        .ok_or_else(|| DriveError::UnknownConnector(record.connector.clone()))?;
    let currency = record.ledger.to_string();
    let creditor = match connector.operator_account(&currency).await {
        Ok(party) => party,
        Err(error) => return deposit_failed(state, payments, record, error).await,
    };
    let request = PayInRequest {
        idempotency_key: deposit_key(record.deposit_id, "c"),
        reference: record.deposit_id.to_string(),
        amount_minor: record.amount,
        currency,
        creditor,
        return_url: None,
        notification_url: payments.callback_url(&record.connector),
    };
    let started = match connector.pay_in_start(&request).await {
        Ok(started) => started,
        Err(error) => return deposit_failed(state, payments, record, error).await,
    };
    payments.record(&record.connector, true);
    let work = Work::Deposit(record.deposit_id);
    payments.remember_bank_id(&record.connector, &started.consent_id, work);
    let command = PaymentCommand::DepositStarted {
        deposit_id: record.deposit_id,
        consent_id: started.consent_id,
        authorisation_url: started.authorisation_url,
    };
    propose_ok(state, command).await?;
    Ok(Step::Wait)
}

async fn poll_deposit<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &DepositRecord,
) -> Result<Step, DriveError> {
    let (connector, handle) = pay_in_of(payments, record)?;
    let progress = match connector.pay_in_progress(&handle).await {
        Ok(progress) => progress,
        Err(error) => return deposit_failed(state, payments, record, error).await,
    };
    payments.record(&record.connector, true);
    let work = Work::Deposit(record.deposit_id);
    payments.remember_bank_id(&record.connector, &record.consent_id, work);
    if let Some(payment_id) = progress.payment_id {
        payments.remember_bank_id(&record.connector, &payment_id, work);
        payments.remember_deposit_payment_id(record.deposit_id, payment_id);
    }
    let deposit_id = record.deposit_id;
    match progress.status {
        PaymentStatus::Settled => {
            propose_ok(state, PaymentCommand::SettleDeposit { deposit_id }).await
        }
        PaymentStatus::Rejected { reason } => {
            let reason = reason.chars().take(64).collect();
            let failed = PaymentCommand::FailDeposit {
                deposit_id,
                expired: false,
                reason,
            };
            propose_ok(state, failed).await
        }
        PaymentStatus::Expired => {
            let failed = PaymentCommand::FailDeposit {
                deposit_id,
                expired: true,
                reason: String::new(),
            };
            propose_ok(state, failed).await
        }
        PaymentStatus::AwaitingAuthorisation | PaymentStatus::Pending => Ok(Step::Wait),
    }
}

/// A bank error on a deposit: a decline ends it; anything else waits for the next look.
async fn deposit_failed<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &DepositRecord,
    error: ConnectorError,
) -> Result<Step, DriveError> {
    let Some(code) = declined(payments, &record.connector, error) else {
        return Ok(Step::Wait);
    };
    let failed = PaymentCommand::FailDeposit {
        deposit_id: record.deposit_id,
        expired: false,
        reason: code.chars().take(64).collect(),
    };
    propose_ok(state, failed).await
}

async fn withdrawal_step<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &WithdrawalRecord,
) -> Result<Step, DriveError> {
    match record.state {
        WithdrawalState::Requested => {
            let decision = decide(state, payments, record).await?;
            let command = PaymentCommand::DecideWithdrawal {
                withdrawal_id: record.withdrawal_id,
                decision: decision.decision,
                reasons: decision.reasons,
            };
            decided(state, payments, record, command).await
        }
        WithdrawalState::Held => after_case(state, payments, record).await,
        WithdrawalState::Sending => send_or_poll(state, payments, record).await,
        WithdrawalState::Paid | WithdrawalState::Refunded | WithdrawalState::Rejected => {
            Ok(Step::Done)
        }
    }
}

/// Proposes a decision; a refusal of the ledger's own checks (KYC, a hold that came in
/// between) turns it into a rejection or a hold with that reason.
async fn decided<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &WithdrawalRecord,
    command: PaymentCommand,
) -> Result<Step, DriveError> {
    let approves = matches!(
        &command,
        PaymentCommand::DecideWithdrawal {
            decision: WithdrawalDecision::Approve { .. },
            ..
        }
    );
    // Before proposing: the attempt's fail-over will be bound to the term this node led in
    // when it made the attempt (a later term fences it off, whatever happened in between).
    let term = state.consensus().serving_term();
    match propose(state, command).await? {
        PaymentOutcome::Ok => {
            if let Some(term) = term.filter(|_| approves) {
                // The record was read undecided just before: this approval made attempt 0.
                payments.attempt_created(record.withdrawal_id, 0, term);
            }
            Ok(Step::Again)
        }
        PaymentOutcome::Refused(refusal) => {
            let reject = PaymentCommand::DecideWithdrawal {
                withdrawal_id: record.withdrawal_id,
                decision: WithdrawalDecision::Reject,
                reasons: vec![refusal.code().to_string()],
            };
            propose_ok(state, reject).await
        }
        outcome => Err(DriveError::Ledger(outcome.code().to_string())),
    }
}

/// A held withdrawal: once its case is decided, cleared ones are routed and approved, the
/// others rejected.
async fn after_case<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &WithdrawalRecord,
) -> Result<Step, DriveError> {
    let case_id = record.case_id;
    let decision = state
        .read(move |view| view.case(case_id))
        .await?
        .map_err(|error| DriveError::Ledger(error.to_string()))?
        .and_then(|case| case.decision.clone());
    let Some((decision, _, _)) = decision else {
        return Ok(Step::Wait);
    };
    let (decision, reasons) = match decision {
        CaseDecision::Clear => match next_route(state, payments, record, &[]).await? {
            Some(route) => (
                WithdrawalDecision::Approve {
                    connector: route.connector,
                },
                vec![
                    "case_cleared".into(),
                    route.reason.chars().take(64).collect(),
                ],
            ),
            None => (WithdrawalDecision::Reject, vec!["no_route".into()]),
        },
        other => (
            WithdrawalDecision::Reject,
            vec![format!("case_{}", other.name())],
        ),
    };
    let command = PaymentCommand::DecideWithdrawal {
        withdrawal_id: record.withdrawal_id,
        decision,
        reasons,
    };
    decided(state, payments, record, command).await
}

async fn send_or_poll<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &WithdrawalRecord,
) -> Result<Step, DriveError> {
    // The ledger gives every `Sending` withdrawal an attempt; a record without one is a bug
    // reported as an error, not a panic that would leave this payment claimed for good.
    let Some((attempt, current)) = record.current_attempt() else {
        return Err(DriveError::Ledger(
            "a sending withdrawal has no attempt".into(),
        ));
    };
    let name = current.connector.clone();
    let connector = payments
        .connector(&name)
        .ok_or_else(|| DriveError::UnknownConnector(name.clone()))?;
    let withdrawal_id = record.withdrawal_id;
    let status = if current.payment_id.is_empty() {
        let currency = record.ledger.to_string();
        let debtor = match connector.operator_account(&currency).await {
            Ok(party) => party,
            Err(error) => return payout_failed(state, payments, record, attempt, error).await,
        };
        let request = PayOutRequest {
            idempotency_key: payout_key(withdrawal_id, attempt),
            reference: withdrawal_id.to_string(),
            amount_minor: record.amount,
            currency,
            debtor,
            creditor: party_of(&record.payee),
            notification_url: payments.callback_url(&name),
        };
        match connector.pay_out(&request).await {
            Ok(accepted) => {
                payments.attempt_sent(withdrawal_id, attempt);
                let payment_id = accepted.payment_id;
                // Before the ledger has it: the bank may settle and say so at any moment.
                payments.remember_bank_id(&name, &payment_id, Work::Withdrawal(withdrawal_id));
                let command = PaymentCommand::PayoutAccepted {
                    withdrawal_id,
                    attempt,
                    payment_id,
                };
                propose_ok(state, command).await?;
                accepted.status
            }
            Err(error) => return payout_failed(state, payments, record, attempt, error).await,
        }
    } else {
        // Known after a restart or a leader change too, once looked at.
        let work = Work::Withdrawal(withdrawal_id);
        payments.remember_bank_id(&name, &current.payment_id, work);
        match connector.pay_out_status(&current.payment_id).await {
            Ok(status) => status,
            Err(error) => {
                // The bank holds this payment: only its status ends it, whatever the error.
                payments.record(&name, !matches!(error, ConnectorError::Retryable(_)));
                return Ok(Step::Wait);
            }
        }
    };
    payments.record(&name, true);
    match status {
        PaymentStatus::Settled => {
            propose_ok(
                state,
                PaymentCommand::SettlePayout {
                    withdrawal_id,
                    attempt,
                },
            )
            .await
        }
        PaymentStatus::Rejected { reason } => refund(state, record, attempt, &reason).await,
        PaymentStatus::Expired => refund(state, record, attempt, "expired").await,
        PaymentStatus::Pending | PaymentStatus::AwaitingAuthorisation => Ok(Step::Wait),
    }
}

/// A bank error on a payout attempt (see the module docs).
async fn payout_failed<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &WithdrawalRecord,
    attempt: u8,
    error: ConnectorError,
) -> Result<Step, DriveError> {
    let name = &record.attempts[usize::from(attempt)].connector;
    payments.record(name, !matches!(error, ConnectorError::Retryable(_)));
    let withdrawal_id = record.withdrawal_id;
    match error {
        ConnectorError::Declined { code, .. } => refund(state, record, attempt, &code).await,
        ConnectorError::Unknown(_) => {
            payments.attempt_sent(withdrawal_id, attempt);
            Ok(Step::Wait)
        }
        ConnectorError::Retryable(_) => fail_over(state, payments, record, attempt).await,
    }
}

/// Where the withdrawal goes now among the eligible connectors not in `tried` (by the
/// player's country, as the decision saw it).
async fn next_route<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &WithdrawalRecord,
    tried: &[&str],
) -> Result<Option<Route>, DriveError> {
    let currency = record.ledger.to_string();
    let country = player_country(state, record.player_id).await?;
    let payment = Payment {
        currency: &currency,
        country: country.as_deref(),
        amount_minor: record.amount,
        account: account_kind(&record.payee.account),
    };
    Ok(payments.route(&payment, tried))
}

/// A `Retryable` error on attempt `attempt`: the next eligible connector takes over, if the
/// attempt is fresh (this leadership made it and nothing of it reached a bank), else it is
/// resolved at its own connector with the same key, never paid elsewhere too.
async fn fail_over<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &WithdrawalRecord,
    attempt: u8,
) -> Result<Step, DriveError> {
    let withdrawal_id = record.withdrawal_id;
    let Some(term) = payments.fresh_term(withdrawal_id, attempt) else {
        return Ok(Step::Wait);
    };
    let tried: Vec<&str> = record
        .attempts
        .iter()
        .map(|a| a.connector.as_str())
        .collect();
    let at_limit = record.attempts.len() >= croupier_core::payments::ATTEMPTS_MAX;
    let next = next_route(state, payments, record, &tried).await?;
    let Some(next) = next.filter(|_| !at_limit) else {
        // Nowhere else to go: this connector again, later.
        return Ok(Step::Wait);
    };
    if state.consensus().serving_term() != Some(term) {
        // Deposed (or leading in a later term): the fence would refuse it anyway.
        payments.forget_fresh_attempts();
        return Ok(Step::Wait);
    }
    let name = &record.attempts[usize::from(attempt)].connector;
    let command = PaymentCommand::FailPayout {
        withdrawal_id,
        attempt,
        reason: format!("retryable:{name}").chars().take(64).collect(),
        next_connector: Some(next.connector),
        // The fence: applied only in an entry of the term that made the attempt. A deposed
        // leader's fail-over (forwarded, or committed under a newer leader that may be sending
        // this attempt) changes nothing.
        leader_term: Some(term),
    };
    match propose(state, command).await? {
        PaymentOutcome::Ok => {
            payments.attempt_sent(withdrawal_id, attempt);
            payments.attempt_created(withdrawal_id, attempt + 1, term);
            Ok(Step::Again)
        }
        PaymentOutcome::LeaderChanged => {
            payments.forget_fresh_attempts();
            Ok(Step::Wait)
        }
        outcome => Err(DriveError::Ledger(outcome.code().to_string())),
    }
}

async fn refund<C: Consensus>(
    state: &AppState<C>,
    record: &WithdrawalRecord,
    attempt: u8,
    reason: &str,
) -> Result<Step, DriveError> {
    let command = PaymentCommand::FailPayout {
        withdrawal_id: record.withdrawal_id,
        attempt,
        reason: reason
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect(),
        next_connector: None,
        leader_term: None,
    };
    propose_ok(state, command).await
}
