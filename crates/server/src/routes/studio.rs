//! Live-studio results over HTTP: a studio's console posts each round's result, signed with
//! the studio's Ed25519 key. The signature is the credential (a studio holds no session or
//! operator key), so it is checked here before anything reaches the log, and again by the
//! state machine, which also judges, by ledger time, a result that is early, late or a
//! duplicate. Every refusal is logged at warn with the table, the round and the reason, so an
//! operator sees a studio (or someone posing as one) sending what it should not.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::{Consensus, LedgerView};
use croupier_core::tables::{
    round_parts, studio_signature_valid, Draw, DrawProof, RoundId, StudioConfig, TableCommand,
    TableId, TableOutcome, OUTCOME_BYTES_MAX,
};
use croupier_core::{Command, CommandResult};
use croupier_games::live::LiveTable;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::table_answers::{game_not_run_here, table_error, table_id_in};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::wire::{U32In, U64In};

/// A table's studio as an operator configures it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StudioIn {
    /// The studio's Ed25519 public key, 64 hex digits (`croupier studio keygen` prints it).
    #[schema(
        pattern = "^[0-9a-fA-F]{64}$",
        example = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    )]
    public_key: String,
    /// How long after the draw time the studio has to report a result before the round is
    /// voided and every bet refunded: 1 to 600000; default 60000.
    #[schema(minimum = 1, maximum = 600_000, example = 60_000)]
    result_timeout_ms: Option<U32In>,
}

impl StudioIn {
    /// The studio as the table's configuration holds it (its ranges are checked with the rest
    /// of the configuration: 422 `table_config_invalid`, like a window out of range).
    pub fn into_config(self) -> Result<StudioConfig, ApiError> {
        let public_key = hex_array::<32>(&self.public_key)
            .ok_or_else(|| ApiError::invalid_field(None, "public_key", "must be 64 hex digits"))?;
        let result_timeout_ms = self
            .result_timeout_ms
            .map_or(crate::tables::defaults::STUDIO_RESULT_TIMEOUT_MS, |v| v.0);
        Ok(StudioConfig {
            public_key,
            result_timeout_ms,
        })
    }
}

#[derive(Serialize, ToSchema)]
pub struct StudioOut {
    /// The studio's Ed25519 public key (hex): every result of the table is signed with it.
    public_key: String,
    result_timeout_ms: u32,
}

impl From<&StudioConfig> for StudioOut {
    fn from(studio: &StudioConfig) -> Self {
        StudioOut {
            public_key: hex::encode(studio.public_key),
            result_timeout_ms: studio.result_timeout_ms,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StudioResultIn {
    #[schema(example = 4294967297u64)]
    round_id: U64In,
    /// The game's encoding of the outcome, hex: roulette one byte, the pocket; money wheel
    /// the number spot (u16) and the multiplier (u64), little-endian.
    #[schema(pattern = "^(?:[0-9a-fA-F]{2}){1,512}$", example = "11")]
    outcome: String,
    /// The studio's Ed25519 signature (128 hex digits) of the ASCII text
    /// `croupier studio result v1 table {table_id} round {round_id} outcome {outcome}`.
    #[schema(pattern = "^[0-9a-fA-F]{128}$")]
    signature: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct StudioResultOut {
    round_id: u64,
    /// The outcome as recorded (hex) and in words (`17`, `10 x2`).
    outcome: String,
    label: String,
}

/// Report a live-studio round's result (the studio's console; the signature authenticates).
#[utoipa::path(
    post, path = crate::paths::ROUTE_TABLE_RESULTS, tag = "tables",
    params(("table_id" = crate::schema::TableId, Path)),
    request_body = StudioResultIn,
    responses(
        (status = 200, description = "The round is drawn with this result; settlement follows", body = StudioResultOut),
        (status = 400, description = "Malformed input (outcome or signature not hex of the right size)", body = ErrorBody),
        (status = 401, description = "signature_required: an unsigned result", body = ErrorBody),
        (status = 403, description = "studio_signature_invalid: not signed by the round's studio, or signed for another round or outcome", body = ErrorBody),
        (status = 404, description = "table_not_found or round_not_found", body = ErrorBody),
        (status = 409, description = "too_early (betting open or before the draw time), result_late (past the result timeout: the round is voided), result_duplicate, draw_source_invalid (not a studio table)", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "outcome_invalid: signed, but not an outcome of the table's game", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn post_result<C: Consensus>(
    State(state): State<AppState<C>>,
    path: ApiPath,
    ApiJson(request): ApiJson<StudioResultIn>,
) -> Result<Response, ApiError> {
    let table_id = table_id_in(&path)?;
    let round_id = request.round_id.0;
    let refused = |error: ApiError| {
        tracing::warn!(
            table_id,
            round_id,
            code = error.code,
            "studio result refused"
        );
        error
    };
    let (outcome, signature) = result_in(&request).map_err(refused)?;
    let (studio, live) = round_studio(&state, table_id, round_id)
        .await
        .map_err(refused)?;
    if !studio_signature_valid(&studio.public_key, round_id, &outcome, &signature) {
        return Err(refused(table_error(TableOutcome::StudioSignatureInvalid)));
    }
    let drawn = live.studio_draw(&outcome).map_err(|error| {
        refused(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "outcome_invalid",
            error.to_string(),
        ))
    })?;
    let draw = Draw {
        proof: DrawProof::Studio { signature },
        outcome,
        returns: drawn.returns,
    };
    let command = Command::Table(TableCommand::Draw { round_id, draw });
    match state.commit(command).await? {
        CommandResult::Table(TableOutcome::Ok) => {
            tracing::info!(table_id, round_id, label = %drawn.label, "studio result");
            let out = StudioResultOut {
                round_id,
                outcome: hex::encode(&drawn.outcome),
                label: drawn.label,
            };
            Ok(json_response(StatusCode::OK, &out))
        }
        CommandResult::Table(outcome) => Err(refused(table_error(outcome))),
        other => Err(ApiError::internal(format!("a draw answered {other:?}"))),
    }
}

/// The outcome and the signature, decoded; an unsigned result is its own refusal.
fn result_in(request: &StudioResultIn) -> Result<(Vec<u8>, [u8; 64]), ApiError> {
    let outcome = hex::decode(&request.outcome)
        .ok()
        .filter(|bytes| !bytes.is_empty() && bytes.len() <= OUTCOME_BYTES_MAX)
        .ok_or_else(|| {
            ApiError::invalid_field(None, "outcome", "must be 1 to 512 bytes as hex digits")
        })?;
    let signature = match request.signature.as_deref() {
        None | Some("") => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signature_required",
                "a studio result must be signed with the studio's key",
            ))
        }
        Some(text) => hex_array::<64>(text)
            .ok_or_else(|| ApiError::invalid_field(None, "signature", "must be 128 hex digits"))?,
    };
    Ok((outcome, signature))
}

/// The studio a round opened under and the game it runs: 404 for no such table or round,
/// 409 for a round that is not a studio round. This node's state first; the leader's if the
/// round is not there yet.
async fn round_studio<C: Consensus>(
    state: &AppState<C>,
    table_id: TableId,
    round_id: RoundId,
) -> Result<(StudioConfig, Arc<LiveTable>), ApiError> {
    type Found = Option<Option<(Option<StudioConfig>, Option<Arc<LiveTable>>)>>;
    let lookup = |tables: Arc<crate::tables::LiveTables>| {
        move |view: &LedgerView<'_>| -> Found {
            let table = view.ledger().table(table_id)?;
            let round = table.round(round_id);
            let ours = round_parts(round_id).0 == table_id;
            Some(round.filter(|_| ours).map(|round| {
                let live = tables.games().for_config(&table.config).cloned();
                (round.studio, live)
            }))
        }
    };
    let found = state
        .read_stale_then_fresh(
            || lookup(Arc::clone(state.tables())),
            |found| matches!(found, Some(Some(_))),
        )
        .await?;
    match found {
        None => Err(table_error(TableOutcome::TableNotFound)),
        Some(None) => Err(table_error(TableOutcome::RoundNotFound)),
        Some(Some((None, _))) => Err(table_error(TableOutcome::DrawSourceInvalid)),
        Some(Some((Some(_), None))) => Err(game_not_run_here()),
        Some(Some((Some(studio), Some(live)))) => Ok((studio, live)),
    }
}

fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    hex::decode(text).ok()?.try_into().ok()
}
