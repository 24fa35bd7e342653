//! Deposits and withdrawals through banks over HTTP: a player asks, the ledger records it and
//! the payments' driver (`crate::payments`) carries it on; reads show where it stands; the
//! banks post their notifications here (verified, then taken as a hint to look now).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_core::payments::{
    DepositRecord, Payee, PayeeAccount, PaymentCommand, PaymentOutcome, WithdrawalRecord,
    PAYEE_NAME_LEN_MAX,
};
use croupier_core::types::CreateTransferResult;
use croupier_payments::routing::{AccountKind, Payment};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

use crate::auth::{Allowed, Caller, OperatorOrOwnerRead, PlayerOnly};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::payments::driver::{read_deposit, read_withdrawal, spawn_drive, start_deposit};
use crate::payments::steps::propose;
use crate::payments::{Payments, Work};
use crate::routes::compliance::player_not_found;
use crate::state::AppState;
use crate::wire::{IdIn, IdOut, U64In};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositRequestIn {
    /// Chosen by the client (non-zero u128): a retry answers the same deposit.
    #[schema(example = "7001")]
    deposit_id: IdIn,
    /// Minor units, at least 1.
    #[schema(schema_with = positive_amount_schema, example = 2500)]
    amount: U64In,
    /// The wallet's currency; absent: the player's first currency.
    #[serde(default)]
    #[schema(schema_with = crate::schema::ledger_string, required = false, example = "EUR")]
    ledger: Option<String>,
    /// A configured bank; absent: the router picks one.
    #[serde(default)]
    #[schema(example = "bank-a", pattern = "^[a-z0-9_-]{1,32}$")]
    connector: Option<String>,
}

fn positive_amount_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint64(1).build()
}

#[derive(Serialize, ToSchema)]
pub struct DepositOut {
    deposit_id: IdOut,
    /// opening, awaiting_authorisation, settled, rejected, expired; or refused (the bank
    /// paid but the player's limits or status refused the credit), then returning, returned
    /// (the money went back to the account it came from) or return_failed.
    state: &'static str,
    /// The bank's page where the player authorises the payment (once the bank has it).
    authorisation_url: Option<String>,
    connector: String,
    amount: u64,
    ledger: String,
    /// Why it was rejected or refused, or why its return failed ("" otherwise).
    reason: String,
}

fn deposit_out(record: &DepositRecord) -> DepositOut {
    let reason = match record.state {
        croupier_core::payments::DepositState::Refused(refusal) => refusal.code().to_string(),
        _ => record.reason.clone(),
    };
    DepositOut {
        deposit_id: IdOut(record.deposit_id),
        state: record.state.name(),
        authorisation_url: (!record.authorisation_url.is_empty())
            .then(|| record.authorisation_url.clone()),
        connector: record.connector.clone(),
        amount: record.amount,
        ledger: record.ledger.to_string(),
        reason,
    }
}

pub(super) fn payments_of<C: Consensus>(state: &AppState<C>) -> Result<Arc<Payments>, ApiError> {
    state.payments().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "payments_not_configured",
            "this node has no banks configured ([[payments.connectors]])",
        )
    })
}

fn payment_error(outcome: PaymentOutcome, what: &'static str) -> ApiError {
    match outcome {
        PaymentOutcome::Refused(refusal) => ApiError::from_refusal(refusal),
        PaymentOutcome::PlayerNotFound => player_not_found(),
        PaymentOutcome::NoWalletInCurrency => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_wallet_in_currency",
            "the player has no wallet in this currency",
        ),
        PaymentOutcome::Conflict => ApiError::new(
            StatusCode::CONFLICT,
            "payment_conflict",
            format!("this {what} id is taken by another {what}"),
        ),
        PaymentOutcome::TransferRefused(CreateTransferResult::ExceedsCredits) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_funds",
            "the wallet's available balance is below the amount",
        ),
        PaymentOutcome::TransferRefused(result) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            result.code(),
            "the ledger refused the reservation",
        ),
        other => ApiError::new(
            StatusCode::CONFLICT,
            other.code(),
            "the ledger refused this step",
        ),
    }
}

/// Start a deposit through a bank (the player): the answer carries the bank's page where the
/// player authorises it; the wallet is credited when the bank settles it.
#[utoipa::path(
    post, path = crate::paths::ROUTE_DEPOSITS, tag = "payments",
    request_body = DepositRequestIn,
    security(("player_session" = [])),
    responses(
        (status = 201, description = "Recorded and started at the bank (or the original answer to a retry)", body = DepositOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "self_excluded, timed_out, kyc_required, deposit_limit_reached, account_frozen; or forbidden", body = ErrorBody),
        (status = 409, description = "payment_conflict: the id is another deposit's; payments_not_configured", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "no_wallet_in_currency, unknown_connector, no_route", body = ErrorBody),
        (status = 503, description = "bank_unavailable (the deposit is recorded and started later), overloaded, not leader", body = ErrorBody),
    )
)]
pub async fn create_deposit<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerOnly>,
    ApiJson(request): ApiJson<DepositRequestIn>,
) -> Result<Response, ApiError> {
    let payments = payments_of(&state)?;
    let player_id = caller.player().ok_or_else(player_not_found)?;
    let deposit_id = nonzero(request.deposit_id, "deposit_id")?;
    if request.amount.0 == 0 {
        return Err(ApiError::invalid_field(None, "amount", "must not be 0"));
    }
    let ledger =
        crate::routes::compliance::wallet_ledger(&state, player_id, request.ledger.as_deref())
            .await?;
    let connector = match request.connector {
        Some(name) if payments.connector(&name).is_some() => name,
        Some(_) => return Err(unknown_connector()),
        None => {
            let currency = ledger.to_string();
            let payment = Payment {
                currency: &currency,
                country: None,
                amount_minor: request.amount.0,
                account: AccountKind::Iban,
            };
            payments
                .route(&payment, &[])
                .ok_or_else(no_route)?
                .connector
        }
    };
    let command = PaymentCommand::OpenDeposit {
        deposit_id,
        player_id,
        ledger,
        amount: request.amount.0,
        connector,
    };
    match propose(&state, command).await? {
        PaymentOutcome::Ok => {}
        outcome => return Err(payment_error(outcome, "deposit")),
    }
    let mut record = read_deposit(&state, deposit_id)
        .await?
        .ok_or_else(deposit_not_found)?;
    if record.player_id != player_id {
        return Err(payment_error(PaymentOutcome::Conflict, "deposit"));
    }
    if record.state == croupier_core::payments::DepositState::Opening {
        // Started here, so the answer can carry the bank's page; the driver would too.
        let _ = start_deposit(&state, &payments, &record).await;
        record = read_deposit(&state, deposit_id)
            .await?
            .ok_or_else(deposit_not_found)?;
        if record.state == croupier_core::payments::DepositState::Opening {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "bank_unavailable",
                "the bank did not answer; the deposit is recorded: retry with the same deposit_id",
            ));
        }
    }
    payments.wake(Some(Work::Deposit(deposit_id)));
    Ok(json_response(StatusCode::CREATED, &deposit_out(&record)))
}

/// A deposit (the player who made it, or an operator).
#[utoipa::path(
    get, path = crate::paths::ROUTE_DEPOSIT, tag = "payments",
    params(("deposit_id" = IdOut, Path, description = "Deposit id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = DepositOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "deposit_not_found", body = ErrorBody),
        (status = 503, description = "Not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn get_deposit<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<OperatorOrOwnerRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let deposit_id = path.id("deposit id")?;
    let record = read_deposit(&state, deposit_id)
        .await?
        .ok_or_else(deposit_not_found)?;
    if !visible(&caller, record.player_id) {
        return Err(deposit_not_found());
    }
    Ok(json_response(StatusCode::OK, &deposit_out(&record)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayeeAccountIn {
    /// An IBAN (spaces allowed): or sort_code and account_number.
    #[serde(default)]
    #[schema(example = "GB33BUKB20201555555555", min_length = 5, max_length = 42)]
    iban: Option<String>,
    /// A UK sort code, 6 digits (dashes allowed).
    #[serde(default)]
    #[schema(example = "20-20-15", min_length = 6, max_length = 8)]
    sort_code: Option<String>,
    /// A UK account number, 8 digits.
    #[serde(default)]
    #[schema(example = "55555555", min_length = 8, max_length = 8)]
    account_number: Option<String>,
    /// The account holder's name, as the bank knows it.
    #[schema(example = "Jane Smith", min_length = 1, max_length = 140)]
    name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequestIn {
    /// Chosen by the client (non-zero u128): a retry answers the same withdrawal.
    #[schema(example = "9001")]
    withdrawal_id: IdIn,
    /// Minor units, at least 1.
    #[schema(schema_with = positive_amount_schema, example = 2500)]
    amount: U64In,
    #[serde(default)]
    #[schema(schema_with = crate::schema::ledger_string, required = false, example = "EUR")]
    ledger: Option<String>,
    account: PayeeAccountIn,
}

#[derive(Serialize, ToSchema)]
pub struct PayoutAttemptOut {
    connector: String,
    /// The bank's payment id, once it said.
    payment_id: Option<String>,
    /// Why it failed, if it did.
    failure: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WithdrawalOut {
    withdrawal_id: IdOut,
    /// requested, held, sending, paid, refunded or rejected.
    state: &'static str,
    /// The connector of the current (or last) payout attempt.
    connector: Option<String>,
    /// Every check's finding and routing choice, in order.
    reasons: Vec<String>,
    amount: u64,
    ledger: String,
    attempts: Vec<PayoutAttemptOut>,
    /// The case a hold opened.
    case_id: Option<IdOut>,
}

fn withdrawal_out(record: &WithdrawalRecord) -> WithdrawalOut {
    let text = |text: &str| (!text.is_empty()).then(|| text.to_string());
    WithdrawalOut {
        withdrawal_id: IdOut(record.withdrawal_id),
        state: record.state.name(),
        connector: record
            .attempts
            .last()
            .map(|attempt| attempt.connector.clone()),
        reasons: record.reasons.clone(),
        amount: record.amount,
        ledger: record.ledger.to_string(),
        attempts: record
            .attempts
            .iter()
            .map(|attempt| PayoutAttemptOut {
                connector: attempt.connector.clone(),
                payment_id: text(&attempt.payment_id),
                failure: text(&attempt.failure),
            })
            .collect(),
        case_id: (record.case_id != 0).then_some(IdOut(record.case_id)),
    }
}

/// Withdraw to a bank account (the player): the amount is reserved at once; the checks and
/// the routing then decide, and the payout goes out with no human step unless a check holds it.
#[utoipa::path(
    post, path = crate::paths::ROUTE_WITHDRAWALS, tag = "payments",
    request_body = WithdrawalRequestIn,
    security(("player_session" = [])),
    responses(
        (status = 202, description = "Reserved; the decision and the payout follow (or the original answer to a retry)", body = WithdrawalOut),
        (status = 400, description = "Malformed or invalid input (an IBAN with a bad checksum, say)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 409, description = "payment_conflict: the id is another withdrawal's; payments_not_configured", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "insufficient_funds, no_wallet_in_currency", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn create_withdrawal<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerOnly>,
    ApiJson(request): ApiJson<WithdrawalRequestIn>,
) -> Result<Response, ApiError> {
    let payments = payments_of(&state)?;
    let player_id = caller.player().ok_or_else(player_not_found)?;
    let withdrawal_id = nonzero(request.withdrawal_id, "withdrawal_id")?;
    if request.amount.0 == 0 {
        return Err(ApiError::invalid_field(None, "amount", "must not be 0"));
    }
    let payee = payee(request.account)?;
    let ledger =
        crate::routes::compliance::wallet_ledger(&state, player_id, request.ledger.as_deref())
            .await?;
    let command = PaymentCommand::RequestWithdrawal {
        withdrawal_id,
        player_id,
        ledger,
        amount: request.amount.0,
        payee,
    };
    match propose(&state, command).await? {
        PaymentOutcome::Ok => {}
        outcome => return Err(payment_error(outcome, "withdrawal")),
    }
    let record = read_withdrawal(&state, withdrawal_id)
        .await?
        .ok_or_else(withdrawal_not_found)?;
    if record.player_id != player_id {
        return Err(payment_error(PaymentOutcome::Conflict, "withdrawal"));
    }
    spawn_drive(state.clone(), payments, Work::Withdrawal(withdrawal_id));
    Ok(json_response(
        StatusCode::ACCEPTED,
        &withdrawal_out(&record),
    ))
}

/// A withdrawal (the player who made it, or an operator).
#[utoipa::path(
    get, path = crate::paths::ROUTE_WITHDRAWAL, tag = "payments",
    params(("withdrawal_id" = IdOut, Path, description = "Withdrawal id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = WithdrawalOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "withdrawal_not_found", body = ErrorBody),
        (status = 503, description = "Not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn get_withdrawal<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<OperatorOrOwnerRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let withdrawal_id = path.id("withdrawal id")?;
    let record = read_withdrawal(&state, withdrawal_id)
        .await?
        .ok_or_else(withdrawal_not_found)?;
    if !visible(&caller, record.player_id) {
        return Err(withdrawal_not_found());
    }
    Ok(json_response(StatusCode::OK, &withdrawal_out(&record)))
}

#[derive(Serialize, ToSchema)]
pub struct NotificationOut {
    accepted: bool,
}

/// A bank's notification of a payment's change (no credentials: the bank's signature is
/// checked against its published keys). It only makes the node ask the bank now.
#[utoipa::path(
    post, path = crate::paths::ROUTE_PAYMENT_NOTIFICATIONS, tag = "payments",
    params(("connector" = String, Path, description = "The configured connector id")),
    request_body(content = String, content_type = "application/jwt", description = "OBIE: a signed event token; Berlin Group: JSON with Digest and x-jws-signature"),
    responses(
        (status = 202, description = "Verified; the node looks at the payment now", body = NotificationOut),
        (status = 400, description = "notification_rejected: unsigned, forged or malformed", body = ErrorBody),
        (status = 404, description = "connector_not_found", body = ErrorBody),
        (status = 409, description = "payments_not_configured", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 503, description = "The bank's keys cannot be fetched now", body = ErrorBody),
    )
)]
pub async fn notification<C: Consensus>(
    State(state): State<AppState<C>>,
    path: ApiPath,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let payments = payments_of(&state)?;
    let connector = payments
        .connector(&path.0)
        .ok_or_else(|| ApiError::not_found("connector_not_found", "no such connector"))?;
    match connector.verify_notification(&headers, &body).await {
        Ok(note) => {
            crate::payments::driver::notified(&state, &payments, &path.0, &note.id);
            Ok(json_response(
                StatusCode::ACCEPTED,
                &NotificationOut { accepted: true },
            ))
        }
        Err(error) if error.is_client_error() => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "notification_rejected",
            error.to_string(),
        )),
        Err(error) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "bank_keys_unavailable",
            error.to_string(),
        )),
    }
}

fn visible(caller: &Caller, owner: u128) -> bool {
    caller.player().is_none_or(|player| player == owner)
}

fn nonzero(id: IdIn, field: &'static str) -> Result<u128, ApiError> {
    match id.0 {
        0 => Err(ApiError::invalid_field(None, field, "must not be 0")),
        id => Ok(id),
    }
}

fn deposit_not_found() -> ApiError {
    ApiError::not_found("deposit_not_found", "no such deposit")
}

fn withdrawal_not_found() -> ApiError {
    ApiError::not_found("withdrawal_not_found", "no such withdrawal")
}

fn unknown_connector() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_connector",
        "no bank is configured with this id",
    )
}

fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "no_route",
        "no configured bank takes this payment",
    )
}

/// The payee's account, checked and normalised (IBAN checksum, digits only).
fn payee(account: PayeeAccountIn) -> Result<Payee, ApiError> {
    let name = account.name.trim().to_string();
    if name.is_empty() || name.len() > PAYEE_NAME_LEN_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            None,
            "account.name",
            "must be 1 to 140 characters",
        ));
    }
    let account = match (account.iban, account.sort_code, account.account_number) {
        (Some(iban), None, None) => {
            PayeeAccount::Iban(normalized_iban(&iban).ok_or_else(|| {
                ApiError::invalid_field(
                    None,
                    "account.iban",
                    "is not a valid IBAN (country, check digits, mod-97)",
                )
            })?)
        }
        (None, Some(sort_code), Some(number)) => {
            let sort_code: String = sort_code.chars().filter(|c| *c != '-').collect();
            let digits = |text: &str, len: usize| {
                text.len() == len && text.bytes().all(|b| b.is_ascii_digit())
            };
            if !digits(&sort_code, 6) {
                return Err(ApiError::invalid_field(
                    None,
                    "account.sort_code",
                    "must be 6 digits",
                ));
            }
            if !digits(&number, 8) {
                return Err(ApiError::invalid_field(
                    None,
                    "account.account_number",
                    "must be 8 digits",
                ));
            }
            PayeeAccount::SortCode {
                sort_code,
                account_number: number,
            }
        }
        _ => {
            return Err(ApiError::invalid_field(
                None,
                "account",
                "needs either iban, or sort_code and account_number",
            ))
        }
    };
    Ok(Payee { account, name })
}

/// An IBAN upper-cased without spaces, if its check digits hold (ISO 13616 mod-97).
fn normalized_iban(text: &str) -> Option<String> {
    let iban: String = text
        .chars()
        .filter(|c| *c != ' ')
        .collect::<String>()
        .to_ascii_uppercase();
    let shape = (15..=34).contains(&iban.len())
        && iban.bytes().take(2).all(|b| b.is_ascii_uppercase())
        && iban.bytes().skip(2).take(2).all(|b| b.is_ascii_digit())
        && iban.bytes().all(|b| b.is_ascii_alphanumeric());
    if !shape {
        return None;
    }
    let rearranged = iban[4..].bytes().chain(iban[..4].bytes());
    let remainder = rearranged.fold(0u32, |acc, byte| {
        let value = match byte {
            b'0'..=b'9' => u32::from(byte - b'0'),
            _ => u32::from(byte - b'A') + 10,
        };
        let shift = if value >= 10 { 100 } else { 10 };
        (acc * shift + value) % 97
    });
    (remainder == 1).then_some(iban)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_are_checked_by_mod_97_and_normalised() {
        assert_eq!(
            normalized_iban("gb33 bukb 2020 1555 5555 55").as_deref(),
            Some("GB33BUKB20201555555555")
        );
        assert!(normalized_iban("DE89370400440532013000").is_some());
        assert!(
            normalized_iban("DE89370400440532013001").is_none(),
            "a wrong check"
        );
        assert!(normalized_iban("DE8937").is_none());
        assert!(normalized_iban("DE89 3704 0044 0532 0130 0!").is_none());
    }
}
