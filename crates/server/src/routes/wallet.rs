//! The seamless wallet game providers call: bet, win, rollback, balance.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_core::{AccountKind, Command, CommandResult, LedgerCode, WalletOutcome};

use crate::auth::Allowed;
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::wire::{
    parse_ledger, BalanceOut, BalanceQuery, IdOut, LedgerOut, WalletMoveIn, WalletOk,
    WalletRollbackIn,
};
use croupier_core::ids;

/// Debit the player, credit the ledger's house account.
#[utoipa::path(
    post, path = crate::paths::ROUTE_WALLET_BET, tag = "wallet",
    request_body = WalletMoveIn,
    responses(
        (status = 200, description = "Accepted (or the original answer to a duplicate)", body = WalletOk),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 402, description = "insufficient_funds, with the current balance", body = ErrorBody),
        (status = 403, description = "player_account_closed", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 409, description = "transaction_conflict or bet_already_rolled_back", body = ErrorBody),
        (status = 422, description = "not_a_player_account, ledger_mismatch, amount_must_not_be_zero", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn bet<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::ProviderCall>,
    ApiJson(request): ApiJson<WalletMoveIn>,
) -> Result<Response, ApiError> {
    let bet = request.into_bet()?;
    let answer = Answer::of(&bet.transaction_id, bet.player_id, Some(bet.ledger));
    answer.to(state.commit(Command::WalletBet(bet)).await?)
}

/// Debit the ledger's house account, credit the player. Accepted whatever the session state.
#[utoipa::path(
    post, path = crate::paths::ROUTE_WALLET_WIN, tag = "wallet",
    request_body = WalletMoveIn,
    responses(
        (status = 200, description = "Accepted (or the original answer to a duplicate)", body = WalletOk),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 409, description = "transaction_conflict", body = ErrorBody),
        (status = 422, description = "not_a_player_account, ledger_mismatch, amount_must_not_be_zero", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn win<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::ProviderCall>,
    ApiJson(request): ApiJson<WalletMoveIn>,
) -> Result<Response, ApiError> {
    let win = request.into_win()?;
    let answer = Answer::of(&win.transaction_id, win.player_id, Some(win.ledger));
    answer.to(state.commit(Command::WalletWin(win)).await?)
}

/// Reverse an unsettled bet exactly once. Rolling back an unknown transaction id leaves a
/// tombstone: a later bet with that id is refused (bet_already_rolled_back).
#[utoipa::path(
    post, path = crate::paths::ROUTE_WALLET_ROLLBACK, tag = "wallet",
    request_body = WalletRollbackIn,
    responses(
        (status = 200, description = "Accepted (or the original answer to a duplicate)", body = WalletOk),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 409, description = "transaction_conflict or bet_already_settled", body = ErrorBody),
        (status = 422, description = "rollback_target_invalid, round_mismatch (the bet belongs to another round) or not_a_player_account", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn rollback<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::ProviderCall>,
    ApiJson(request): ApiJson<WalletRollbackIn>,
) -> Result<Response, ApiError> {
    let rollback = request.into_rollback()?;
    let answer = Answer::of(&rollback.transaction_id, rollback.player_id, None);
    answer.to(state.commit(Command::WalletRollback(rollback)).await?)
}

/// The player's available balance: `player_id` is a registered player (its first currency, or
/// `?ledger=`) or a player account id.
#[utoipa::path(
    get, path = crate::paths::ROUTE_WALLET_BALANCE, tag = "wallet",
    params(("player_id" = IdOut, Path, description = "Registered player id or player account id (decimal)"), BalanceQuery),
    security(("provider_signature" = []), ("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = BalanceOut),
        (status = 400, description = "invalid_path (the id) or invalid_query (the ledger, or an unknown parameter)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "player_not_found (also for another player's id)", body = ErrorBody),
        (status = 422, description = "not_a_player_account, ledger_mismatch", body = ErrorBody),
    )
)]
pub async fn balance<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<crate::auth::BalanceRead>,
    path: ApiPath,
    ApiQuery(query): ApiQuery<BalanceQuery>,
) -> Result<Response, ApiError> {
    let player_id = path.id("player_id")?;
    let ledger = query
        .ledger
        .as_deref()
        .map(parse_ledger)
        .transpose()
        .map_err(ApiError::invalid_query)?;
    if caller.player().is_some_and(|own| own != player_id) {
        return Err(ApiError::from_wallet(WalletOutcome::PlayerNotFound));
    }
    let found = state
        .read(move |view| {
            let registered = ids::player_sequence(player_id).is_some();
            let account_id = match view.ledger().wallet_account_of(player_id, ledger) {
                Some(account) => account,
                None if registered && view.ledger().player(player_id).is_some() => {
                    return Err(WalletOutcome::LedgerMismatch)
                }
                None => return Err(WalletOutcome::PlayerNotFound),
            };
            match view.account(account_id) {
                None => Err(WalletOutcome::PlayerNotFound),
                Some(account) if account.kind != AccountKind::Player => {
                    Err(WalletOutcome::NotAPlayerAccount)
                }
                Some(account) if ledger.is_some_and(|l| l != account.ledger) => {
                    Err(WalletOutcome::LedgerMismatch)
                }
                Some(_) => view
                    .player_balance(account_id)
                    .ok_or(WalletOutcome::PlayerNotFound),
            }
        })
        .await?;
    let (ledger, balance) = found.map_err(ApiError::from_wallet)?;
    let body = BalanceOut {
        player_id: IdOut(player_id),
        ledger: LedgerOut(ledger),
        balance,
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// What a wallet answer echoes from its request.
struct Answer {
    transaction_id: String,
    player_id: u128,
    ledger: Option<LedgerCode>,
}

impl Answer {
    fn of(transaction_id: &str, player_id: u128, ledger: Option<LedgerCode>) -> Self {
        Answer {
            transaction_id: transaction_id.to_owned(),
            player_id,
            ledger,
        }
    }

    fn to(self, result: CommandResult) -> Result<Response, ApiError> {
        let CommandResult::Wallet(outcome) = result else {
            tracing::error!("the ledger answered a wallet command with another kind of result");
            return Err(ApiError::internal(
                "the ledger answered in an unexpected shape",
            ));
        };
        match outcome {
            WalletOutcome::Ok {
                balance,
                transfer_id,
            } => {
                let body = WalletOk {
                    transaction_id: self.transaction_id,
                    player_id: IdOut(self.player_id),
                    balance,
                    ledger: self.ledger.map(LedgerOut),
                    transfer_id: transfer_id.map(IdOut),
                };
                Ok(json_response(StatusCode::OK, &body))
            }
            refused => Err(ApiError::from_wallet(refused)),
        }
    }
}
