//! What every payment step shares: its outcome (`Step`), why a drive stops early
//! (`DriveError`), proposing a payment command, and telling a bank's decline from the errors
//! that are asked again later. The driver (`driver.rs`) and the deposit returns (`returns.rs`)
//! both take steps; neither imports the other's.

use croupier_cluster::Consensus;
use croupier_core::payments::{DepositRecord, PaymentCommand, PaymentOutcome};
use croupier_core::{Command, CommandResult};
use croupier_payments::bank::BankConnector;
use croupier_payments::connector::{ConnectorError, PayInHandle};

use super::{deposit_key, Payments};
use crate::error::ApiError;
use crate::state::AppState;

/// Why a drive stopped early (logged; the scan tries again).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DriveError {
    #[error("the ledger: {0}")]
    Ledger(String),
    #[error("the payment's connector {0} is not configured")]
    UnknownConnector(String),
}

impl From<ApiError> for DriveError {
    fn from(error: ApiError) -> Self {
        DriveError::Ledger(format!("{}: {}", error.code, error.message))
    }
}

/// What one step did.
pub(crate) enum Step {
    /// Something changed: take the next step now.
    Again,
    /// Waiting on the player, the bank or a case: look again later.
    Wait,
    /// Final: nothing more to do.
    Done,
}

/// Proposes one payment command; answers its outcome.
pub(crate) async fn propose<C: Consensus>(
    state: &AppState<C>,
    command: PaymentCommand,
) -> Result<PaymentOutcome, ApiError> {
    match state.commit(Command::Payment(command)).await? {
        CommandResult::Payment(outcome) => Ok(outcome),
        _ => Err(ApiError::internal(
            "the ledger answered in an unexpected shape",
        )),
    }
}

/// Proposes a step whose only acceptable answer is `ok` (a repeat is `ok` too).
pub(crate) async fn propose_ok<C: Consensus>(
    state: &AppState<C>,
    command: PaymentCommand,
) -> Result<Step, DriveError> {
    match propose(state, command).await? {
        PaymentOutcome::Ok => Ok(Step::Again),
        outcome => Err(DriveError::Ledger(outcome.code().to_string())),
    }
}

/// Counts a bank error for the connector's health; the bank's code when it declined (the
/// only error that ends a deposit or its return: anything else is asked again later).
pub(crate) fn declined(
    payments: &Payments,
    connector: &str,
    error: ConnectorError,
) -> Option<String> {
    payments.record(connector, !matches!(error, ConnectorError::Retryable(_)));
    match error {
        ConnectorError::Declined { code, .. } => Some(code),
        ConnectorError::Retryable(_) | ConnectorError::Unknown(_) => None,
    }
}

/// A deposit's connector and the handle its pay-in goes by at the bank (the payment id this
/// process learnt, if any, and the key its payment is submitted with).
pub(crate) fn pay_in_of<'a>(
    payments: &'a Payments,
    record: &DepositRecord,
) -> Result<(&'a BankConnector, PayInHandle), DriveError> {
    let connector = payments
        .connector(&record.connector)
        .ok_or_else(|| DriveError::UnknownConnector(record.connector.clone()))?;
    let handle = PayInHandle {
        consent_id: record.consent_id.clone(),
        payment_id: payments.deposit_payment_id(record.deposit_id),
        idempotency_key: deposit_key(record.deposit_id, "p"),
    };
    Ok((connector, handle))
}
