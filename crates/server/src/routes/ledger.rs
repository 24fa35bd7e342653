//! Accounts and transfers: batch creation (one request = one command) and point reads.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use croupier_cluster::Consensus;
use croupier_core::{
    ids, Command, CommandResult, CreateAccountResult, CreateTransferResult, BATCH_ITEMS_MAX,
};

use crate::auth::Allowed;
use crate::binary::{self, DecodeError};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery, BatchBody};
use crate::state::AppState;
use crate::wire::{
    parse_ledger, AccountIn, AccountOut, IdOut, ItemResult, LedgerOut, TransferIn, TransferOut,
    TransfersQuery,
};

/// Default `limit` of an account's transfer history.
const TRANSFERS_LIMIT_DEFAULT: u64 = 50;
/// Response header carrying the cursor of the next (older) page, when there is one.
const NEXT_CURSOR_HEADER: &str = "x-next-cursor";
/// Cursors are opaque to clients: a version letter and the position of the next page's first
/// transfer in history, in hex.
const CURSOR_PREFIX: &str = "c1";

fn format_cursor(seq: u64) -> String {
    format!("{CURSOR_PREFIX}{seq:016x}")
}

fn parse_cursor(text: &str) -> Result<u64, ApiError> {
    let bad = || ApiError::invalid_query("cursor is not one this server issued");
    let digits = text.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    // Hex digits only: from_str_radix alone would take a sign.
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(digits, 16).map_err(|_| bad())
}

fn check_item_count(count: usize) -> Result<(), ApiError> {
    if count > BATCH_ITEMS_MAX {
        return Err(ApiError::too_many_items(count, BATCH_ITEMS_MAX));
    }
    Ok(())
}

/// Checks the item count and validates every item before anything is proposed, so one bad
/// item refuses the whole request (never a partial batch).
fn validate_batch<In, Out>(
    items: &[In],
    validate: impl Fn(&In, usize) -> Result<Out, ApiError>,
) -> Result<Vec<Out>, ApiError> {
    check_item_count(items.len())?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| validate(item, index))
        .collect()
}

fn item_results<R: Copy>(
    ids: &[u128],
    results: &[R],
    code: impl Fn(R) -> &'static str,
) -> Result<Response, ApiError> {
    if ids.len() != results.len() {
        tracing::error!(
            items = ids.len(),
            results = results.len(),
            "result count mismatch"
        );
        return Err(ApiError::internal(
            "the ledger answered a different number of results",
        ));
    }
    let body: Vec<ItemResult> = ids
        .iter()
        .zip(results)
        .map(|(&id, &result)| ItemResult {
            id: IdOut(id),
            result: code(result),
        })
        .collect();
    Ok(json_response(StatusCode::OK, &body))
}

/// How a batch is answered: in the encoding of its body.
enum Answer {
    /// `[{"id", "result"}]`, so the ids are kept.
    Json { ids: Vec<u128> },
    /// One result byte per record, in request order.
    Binary { count: usize },
}

impl Answer {
    fn json<T>(items: &[T], id: impl Fn(&T) -> u128) -> Self {
        Answer::Json {
            ids: items.iter().map(id).collect(),
        }
    }

    fn results<R: Copy>(
        self,
        results: &[R],
        code: impl Fn(R) -> &'static str,
        byte: impl Fn(R) -> u8,
    ) -> Result<Response, ApiError> {
        let count = match self {
            Answer::Json { ids } => return item_results(&ids, results, code),
            Answer::Binary { count } => count,
        };
        if count != results.len() {
            tracing::error!(
                items = count,
                results = results.len(),
                "result count mismatch"
            );
            return Err(ApiError::internal(
                "the ledger answered a different number of results",
            ));
        }
        let body: Vec<u8> = results.iter().map(|&result| byte(result)).collect();
        let mut response = (StatusCode::OK, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(binary::CONTENT_TYPE),
        );
        Ok(response)
    }
}

fn binary_error(error: DecodeError) -> ApiError {
    match error {
        DecodeError::Length { .. } => ApiError::invalid_request(error.to_string()),
        DecodeError::TooManyRecords { count } => ApiError::too_many_items(count, BATCH_ITEMS_MAX),
        DecodeError::Field { index, field, .. } => ApiError {
            index: Some(index),
            field: Some(field),
            ..ApiError::invalid_request(error.to_string())
        },
    }
}

fn unexpected_result_shape() -> ApiError {
    tracing::error!("the ledger answered a command with a result of another kind");
    ApiError::internal("the ledger answered in an unexpected shape")
}

/// Create accounts. Items are applied in order, as one command. The body is a JSON array or
/// binary 128-byte records (docs/api.md, "Binary batches"); the answer follows the body.
#[utoipa::path(
    post, path = crate::paths::ROUTE_ACCOUNTS, tag = "ledger",
    request_body(
        description = "A JSON array, or 128-byte account records (TigerBeetle's layout)",
        content(
            (Vec<AccountIn> = "application/json"),
            (crate::schema::BinaryRecords = "application/octet-stream"),
        )
    ),
    responses(
        (status = 200, description = "One result per item, in order: JSON, or one result byte per record for a binary body", content(
            (Vec<ItemResult> = "application/json"),
            (crate::schema::BinaryRecords = "application/octet-stream"),
        )),
        (status = 400, description = "Malformed or invalid input; nothing was applied", body = ErrorBody),
        (status = 403, description = "forbidden: a role that may not move money (for transfers, house_debit_requires_finance: only finance debits a house account)", body = ErrorBody),
        (status = 413, description = "More than 8189 items, or body too large", body = ErrorBody),
        (status = 415, description = "Content-Type is neither application/json nor application/octet-stream", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn create_accounts<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<crate::auth::MoneyWrite>,
    body: BatchBody<Vec<AccountIn>>,
) -> Result<Response, ApiError> {
    let (accounts, answer) = match body {
        BatchBody::Json(items) => {
            let accounts = validate_batch(&items, AccountIn::validate)?;
            let answer = Answer::json(&accounts, |account| account.id);
            (accounts, answer)
        }
        BatchBody::Binary(bytes) => {
            let accounts = binary::decode_accounts(&bytes).map_err(binary_error)?;
            let count = accounts.len();
            (accounts, Answer::Binary { count })
        }
    };
    let (code, byte) = (CreateAccountResult::code, binary::account_result_byte);
    if accounts.is_empty() {
        return answer.results(&[], code, byte);
    }
    match state
        .commit(caller.attribute(Command::CreateAccounts(accounts)))
        .await?
    {
        CommandResult::Accounts(results) => answer.results(&results, code, byte),
        _ => Err(unexpected_result_shape()),
    }
}

/// Create transfers. Items are applied in order, as one command, so linked chains stay whole.
/// The body is a JSON array or binary 128-byte records (docs/api.md, "Binary batches"); the
/// answer follows the body.
#[utoipa::path(
    post, path = crate::paths::ROUTE_TRANSFERS, tag = "ledger",
    request_body(
        description = "A JSON array, or 128-byte transfer records (TigerBeetle's layout)",
        content(
            (Vec<TransferIn> = "application/json"),
            (crate::schema::BinaryRecords = "application/octet-stream"),
        )
    ),
    responses(
        (status = 200, description = "One result per item, in order: JSON, or one result byte per record for a binary body", content(
            (Vec<ItemResult> = "application/json"),
            (crate::schema::BinaryRecords = "application/octet-stream"),
        )),
        (status = 400, description = "Malformed or invalid input; nothing was applied", body = ErrorBody),
        (status = 403, description = "forbidden: a role that may not move money (for transfers, house_debit_requires_finance: only finance debits a house account)", body = ErrorBody),
        (status = 413, description = "More than 8189 items, or body too large", body = ErrorBody),
        (status = 415, description = "Content-Type is neither application/json nor application/octet-stream", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn create_transfers<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<crate::auth::MoneyWrite>,
    body: BatchBody<Vec<TransferIn>>,
) -> Result<Response, ApiError> {
    let (transfers, answer) = match body {
        BatchBody::Json(items) => {
            let transfers = validate_batch(&items, TransferIn::validate)?;
            let answer = Answer::json(&transfers, |transfer| transfer.id);
            (transfers, answer)
        }
        BatchBody::Binary(bytes) => {
            let transfers = binary::decode_transfers(&bytes).map_err(binary_error)?;
            let count = transfers.len();
            (transfers, Answer::Binary { count })
        }
    };
    let (code, byte) = (CreateTransferResult::code, binary::transfer_result_byte);
    if transfers.is_empty() {
        return answer.results(&[], code, byte);
    }
    require_finance_for_house_debits(&caller, &transfers)?;
    match state
        .commit(caller.attribute(Command::CreateTransfers(transfers)))
        .await?
    {
        CommandResult::Transfers(results) => answer.results(&results, code, byte),
        _ => Err(unexpected_result_shape()),
    }
}

/// One account with its balances.
#[utoipa::path(
    get, path = crate::paths::ROUTE_ACCOUNT, tag = "ledger",
    params(("id" = IdOut, Path, description = "Account id (decimal)")),
    responses(
        (status = 200, body = AccountOut),
        (status = 400, description = "invalid_path: not a decimal id from 1 to 2^128-1", body = ErrorBody),
        (status = 404, description = "account_not_found", body = ErrorBody),
    )
)]
pub async fn get_account<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<crate::auth::OperatorOrOwnerRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let id = path.id("account id")?;
    require_own_account(&caller, id)?;
    let account = state
        .read(move |ledger| ledger.account(id).map(AccountOut::from))
        .await?;
    match account {
        Some(account) => Ok(json_response(StatusCode::OK, &account)),
        None => Err(account_not_found(id)),
    }
}

/// A player sees only its own wallets; anything else answers as absent.
fn require_own_account(caller: &crate::auth::Caller, id: u128) -> Result<(), ApiError> {
    match caller.player() {
        Some(player) if ids::player_of_wallet(id) != Some(player) => Err(account_not_found(id)),
        _ => Ok(()),
    }
}

fn owns_either_side(caller: &crate::auth::Caller, transfer: &croupier_core::Transfer) -> bool {
    let own =
        |account| caller.player().is_some() && ids::player_of_wallet(account) == caller.player();
    own(transfer.debit_account_id) || own(transfer.credit_account_id)
}

/// Only `finance` moves money out of a house account with a plain transfer (the wallet and the
/// tables do it through their own commands).
fn require_finance_for_house_debits(
    caller: &crate::auth::Caller,
    transfers: &[croupier_core::NewTransfer],
) -> Result<(), ApiError> {
    let restricted = matches!(caller, crate::auth::Caller::Operator { role, .. } if *role != crate::auth::Role::Finance);
    if restricted
        && transfers
            .iter()
            .any(|t| ids::is_house_account_id(t.debit_account_id))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "house_debit_requires_finance",
            "debiting a house account needs an operator key with the finance role",
        ));
    }
    Ok(())
}

fn account_not_found(id: u128) -> ApiError {
    ApiError::not_found("account_not_found", format!("no account with id {id}"))
}

/// The account's transfers, newest first, from disk. When older transfers remain, the
/// `X-Next-Cursor` header (and a `Link: rel="next"` header) carries the cursor of the next page.
#[utoipa::path(
    get, path = crate::paths::ROUTE_ACCOUNT_TRANSFERS, tag = "ledger",
    params(("id" = IdOut, Path, description = "Account id (decimal)"), TransfersQuery),
    responses(
        (status = 200, body = Vec<TransferOut>, headers(
            ("x-next-cursor" = String, description = "Cursor of the next (older) page, when there is one"),
            ("link" = String, description = "`<URL of the next page>; rel=\"next\"`, when there is one"),
        )),
        (status = 400, description = "invalid_path (the id) or invalid_query (limit, cursor or an unknown parameter)", body = ErrorBody),
        (status = 404, description = "account_not_found", body = ErrorBody),
        (status = 503, description = "storage_unavailable: history cannot be read right now", body = ErrorBody),
    )
)]
pub async fn get_account_transfers<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<crate::auth::OperatorOrOwnerRead>,
    path: ApiPath,
    ApiQuery(query): ApiQuery<TransfersQuery>,
) -> Result<Response, ApiError> {
    let id = path.id("account id")?;
    require_own_account(&caller, id)?;
    let limit = query.limit.unwrap_or(TRANSFERS_LIMIT_DEFAULT);
    if !(1..=BATCH_ITEMS_MAX as u64).contains(&limit) {
        return Err(ApiError::invalid_query(format!(
            "limit must be from 1 to {BATCH_ITEMS_MAX}"
        )));
    }
    let cursor = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let page = state
        .read(move |view| {
            view.account(id)?;
            Some(view.account_transfers(id, limit as usize, cursor))
        })
        .await?;
    let Some(page) = page else {
        return Err(account_not_found(id));
    };
    let page = page.map_err(ApiError::from_read)?;
    let transfers: Vec<TransferOut> = page.transfers.iter().map(TransferOut::from).collect();
    let mut response = json_response(StatusCode::OK, &transfers);
    if let Some(next) = page.next_before {
        let cursor = format_cursor(next);
        let link =
            format!("</v1/accounts/{id}/transfers?limit={limit}&cursor={cursor}>; rel=\"next\"");
        let headers = response.headers_mut();
        for (name, value) in [(NEXT_CURSOR_HEADER, cursor), ("link", link)] {
            if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    Ok(response)
}

/// One transfer.
#[utoipa::path(
    get, path = crate::paths::ROUTE_TRANSFER, tag = "ledger",
    params(("id" = IdOut, Path, description = "Transfer id (decimal)")),
    responses(
        (status = 200, body = TransferOut),
        (status = 400, description = "invalid_path: not a decimal id from 1 to 2^128-1", body = ErrorBody),
        (status = 404, description = "transfer_not_found", body = ErrorBody),
        (status = 503, description = "storage_unavailable: history cannot be read right now", body = ErrorBody),
    )
)]
pub async fn get_transfer<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<crate::auth::OperatorOrOwnerRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let id = path.id("transfer id")?;
    let transfer = state
        .read(move |view| view.transfer(id))
        .await?
        .map_err(ApiError::from_read)?
        .as_ref()
        .filter(|t| caller.player().is_none() || owns_either_side(&caller, t))
        .map(TransferOut::from);
    match transfer {
        Some(transfer) => Ok(json_response(StatusCode::OK, &transfer)),
        None => Err(ApiError::not_found(
            "transfer_not_found",
            format!("no transfer with id {id}"),
        )),
    }
}

/// The house account of a ledger, which the state machine creates on the ledger's first
/// wallet call; every bet credits it and every win debits it.
#[utoipa::path(
    get, path = crate::paths::ROUTE_LEDGER_HOUSE, tag = "ledger",
    params(("ledger" = LedgerOut, Path, description = "Ledger code, e.g. EUR")),
    responses(
        (status = 200, body = AccountOut),
        (status = 400, description = "invalid_path: not a ledger code", body = ErrorBody),
        (status = 404, description = "house_account_not_found: no wallet call on this ledger yet", body = ErrorBody),
    )
)]
pub async fn get_house_account<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::OperatorRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let ledger_code = parse_ledger(&path.0).map_err(ApiError::invalid_path)?;
    let house_id = ids::house_account_id(ledger_code);
    let account = state
        .read(move |ledger| ledger.account(house_id).map(AccountOut::from))
        .await?;
    match account {
        Some(account) => Ok(json_response(StatusCode::OK, &account)),
        None => Err(ApiError::not_found(
            "house_account_not_found",
            format!(
                "ledger {ledger_code} has no house account yet (created by its first wallet call)"
            ),
        )),
    }
}
