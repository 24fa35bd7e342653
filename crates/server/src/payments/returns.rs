//! A refused deposit goes back where it came from. The bank settled it, but the ledger refused
//! the credit at that moment (a limit, an exclusion) and parked the money in the returns
//! account. The node asks the deposit's bank which account paid (`Connector::pay_in_payer`),
//! records it (`ReturnDeposit`), and pays the amount back there from the operator's account at
//! the same bank, as an outbox like a withdrawal's payout: one idempotency key derived from the
//! deposit, an unknown outcome resolved at that bank (never anywhere else), the status or a
//! notification settling it. A bank that cannot say who paid, or refuses the return, ends it
//! as `return_failed`: the money stays in the returns account and the operator settles it.

use croupier_cluster::Consensus;
use croupier_core::payments::{DepositRecord, DepositState, Payee, PayeeAccount, PaymentCommand};
use croupier_payments::connector::{
    AccountRef, Connector, ConnectorError, PayOutRequest, PaymentStatus,
};

use super::decide::party_of;
use super::steps::{declined, pay_in_of, propose_ok, DriveError, Step};
use super::{deposit_key, Payments, Work};
use crate::state::AppState;

/// A deposit's return payout's reference on both statements: the deposit id with an `R`, so
/// it never meets a withdrawal of the same number when reconciling.
pub(crate) fn return_reference(deposit_id: u128) -> String {
    format!("R{deposit_id}")
}

pub(super) async fn return_step<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &DepositRecord,
) -> Result<Step, DriveError> {
    match record.state {
        DepositState::Refused(_) => start_return(state, payments, record).await,
        DepositState::Returning => send_or_poll_return(state, payments, record).await,
        _ => Ok(Step::Done),
    }
}

/// Learns from the bank which account paid, and records the return to it.
async fn start_return<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &DepositRecord,
) -> Result<Step, DriveError> {
    let (connector, handle) = pay_in_of(payments, record)?;
    let payer = match connector.pay_in_payer(&handle).await {
        Ok(payer) => payer,
        Err(error) => return return_error(state, payments, record, error).await,
    };
    let payee = payer
        .map(|party| payee_of(&party.account, &party.name))
        .filter(Payee::check);
    let Some(payee) = payee else {
        return fail(state, record, "payer_account_unknown").await;
    };
    let command = PaymentCommand::ReturnDeposit {
        deposit_id: record.deposit_id,
        payee,
    };
    propose_ok(state, command).await
}

/// Sends the return payout (again, with the same key, until the bank took it), or asks where
/// it stands.
async fn send_or_poll_return<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &DepositRecord,
) -> Result<Step, DriveError> {
    let name = &record.connector;
    let connector = payments
        .connector(name)
        .ok_or_else(|| DriveError::UnknownConnector(name.clone()))?;
    let deposit_id = record.deposit_id;
    let work = Work::Deposit(deposit_id);
    let answer = if record.return_payment_id.is_empty() {
        let Some(payee) = &record.return_to else {
            return Err(DriveError::Ledger(
                "a returning deposit has no payee".into(),
            ));
        };
        let currency = record.ledger.to_string();
        let debtor = match connector.operator_account(&currency).await {
            Ok(party) => party,
            Err(error) => return return_error(state, payments, record, error).await,
        };
        let request = PayOutRequest {
            idempotency_key: deposit_key(deposit_id, "r"),
            reference: return_reference(deposit_id),
            amount_minor: record.amount,
            currency,
            debtor,
            creditor: party_of(payee),
            notification_url: payments.callback_url(name),
        };
        match connector.pay_out(&request).await {
            Ok(accepted) => {
                payments.remember_bank_id(name, &accepted.payment_id, work);
                let command = PaymentCommand::ReturnAccepted {
                    deposit_id,
                    payment_id: accepted.payment_id,
                };
                propose_ok(state, command).await?;
                Ok(accepted.status)
            }
            Err(error) => Err(error),
        }
    } else {
        payments.remember_bank_id(name, &record.return_payment_id, work);
        connector.pay_out_status(&record.return_payment_id).await
    };
    match answer {
        Ok(status) => {
            payments.record(name, true);
            returned(state, record, status).await
        }
        Err(error) => return_error(state, payments, record, error).await,
    }
}

async fn returned<C: Consensus>(
    state: &AppState<C>,
    record: &DepositRecord,
    status: PaymentStatus,
) -> Result<Step, DriveError> {
    let deposit_id = record.deposit_id;
    match status {
        PaymentStatus::Settled => {
            propose_ok(state, PaymentCommand::SettleReturn { deposit_id }).await
        }
        PaymentStatus::Rejected { reason } => fail(state, record, &reason).await,
        PaymentStatus::Expired => fail(state, record, "expired").await,
        PaymentStatus::Pending | PaymentStatus::AwaitingAuthorisation => Ok(Step::Wait),
    }
}

/// A decline ends the return; anything else is asked again later at the same bank with the
/// same key (the money sits there: no other bank can pay it back).
async fn return_error<C: Consensus>(
    state: &AppState<C>,
    payments: &Payments,
    record: &DepositRecord,
    error: ConnectorError,
) -> Result<Step, DriveError> {
    match declined(payments, &record.connector, error) {
        Some(code) => fail(state, record, &code).await,
        None => Ok(Step::Wait),
    }
}

async fn fail<C: Consensus>(
    state: &AppState<C>,
    record: &DepositRecord,
    reason: &str,
) -> Result<Step, DriveError> {
    let command = PaymentCommand::FailReturn {
        deposit_id: record.deposit_id,
        reason: reason
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect(),
    };
    propose_ok(state, command).await
}

fn payee_of(account: &AccountRef, name: &str) -> Payee {
    let account = match account {
        AccountRef::Iban { iban } => PayeeAccount::Iban(iban.clone()),
        AccountRef::SortCode {
            sort_code,
            account_number,
        } => PayeeAccount::SortCode {
            sort_code: sort_code.clone(),
            account_number: account_number.clone(),
        },
    };
    Payee {
        account,
        name: name.to_string(),
    }
}
