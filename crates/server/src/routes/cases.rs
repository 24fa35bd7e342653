//! The AML case queue over HTTP: list and read cases (any operator), open one by hand, assign,
//! comment, request documents and decide (support, admin). Every write is a command with the
//! operator's key id as `by`; the ledger applies the decision's effect on the player.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::{Consensus, LedgerView};
use croupier_core::cases::{
    Case, CaseAction, CaseCommand, CaseDecision, NewCase, NoteKind, NOTE_TEXT_LEN_MAX,
    REASONS_PER_CASE_MAX, REASON_LEN_MAX,
};
use croupier_core::compliance::{ComplianceCommand, ComplianceOutcome};
use croupier_core::{Command, CommandResult};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Allowed, Caller, OperatorRead, PlayerAdmin};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::live::messages::rfc3339;
use crate::state::AppState;
use crate::wire::{IdIn, IdOut, U64In};

/// Most cases one list answers (the newest first).
const CASES_PER_PAGE_MAX: usize = 1_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CasesQuery {
    /// open (default), closed or all.
    #[param(pattern = "^(open|closed|all)$")]
    pub state: Option<String>,
}

/// One case in a list.
#[derive(Serialize, ToSchema)]
pub struct CaseOut {
    id: IdOut,
    player_id: IdOut,
    /// Reason codes of the rules that fired (or given by hand).
    reasons: Vec<String>,
    /// 0–100.
    score: u8,
    opened_at: String,
    /// open or closed.
    state: &'static str,
    /// open_case, hold_withdrawals, require_enhanced_kyc or freeze.
    action: &'static str,
    ruleset_version: String,
    opened_by: String,
    assignee: Option<String>,
    /// clear, restrict, close_account or report, once decided.
    decision: Option<&'static str>,
    decided_at: Option<String>,
    decided_by: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NoteOut {
    at: String,
    by: String,
    /// comment or documents_requested.
    kind: &'static str,
    text: String,
}

/// One case with its notes.
#[derive(Serialize, ToSchema)]
pub struct CaseDetailOut {
    #[serde(flatten)]
    case: CaseOut,
    notes: Vec<NoteOut>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCaseIn {
    #[schema(example = "340282366841710301022897246133062467584")]
    player_id: IdIn,
    /// 1 to 16 reason codes, each 1 to 64 of a-z, 0-9, _.
    #[schema(schema_with = reasons_schema, example = json!(["manual_review"]))]
    reasons: Vec<String>,
    /// 0–100, default 0.
    #[serde(default)]
    #[schema(schema_with = score_schema, required = false)]
    score: U64In,
    /// What opening the case does to the player: open_case (default), hold_withdrawals,
    /// require_enhanced_kyc or freeze.
    #[serde(default)]
    #[schema(example = "open_case")]
    action: Option<ActionName>,
}

fn reasons_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let reason = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-z0-9_]{1,64}$"));
    ArrayBuilder::new()
        .items(reason)
        .min_items(Some(1))
        .max_items(Some(REASONS_PER_CASE_MAX))
        .build()
}

fn score_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint64(0).maximum(Some(100)).build()
}

#[derive(Debug, Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    OpenCase,
    HoldWithdrawals,
    RequireEnhancedKyc,
    Freeze,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignIn {
    /// The operator key id the case is assigned to (1 to 32 of a-z, 0-9, _, -).
    #[schema(example = "analyst-1", pattern = "^[a-z0-9_-]{1,32}$")]
    assignee: String,
}

#[derive(Debug, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum NoteKindName {
    Comment,
    DocumentsRequested,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteIn {
    kind: NoteKindName,
    #[schema(example = "asked for proof of address", max_length = 512)]
    text: String,
}

#[derive(Debug, Deserialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum DecisionName {
    Clear,
    Restrict,
    CloseAccount,
    Report,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    decision: DecisionName,
    #[serde(default)]
    #[schema(example = "source of funds documented", max_length = 512)]
    text: String,
}

fn case_out(case: &Case) -> CaseOut {
    let decision = case.decision.as_ref();
    CaseOut {
        id: IdOut(case.id),
        player_id: IdOut(case.player_id),
        reasons: case.reasons.clone(),
        score: case.score,
        opened_at: rfc3339(case.opened_at_ns),
        state: if case.is_open() { "open" } else { "closed" },
        action: case.action.name(),
        ruleset_version: case.ruleset_version.clone(),
        opened_by: case.opened_by.clone(),
        assignee: case.assignee.clone(),
        decision: decision.map(|(d, _, _)| d.name()),
        decided_at: decision.map(|(_, at, _)| rfc3339(*at)),
        decided_by: decision.map(|(_, _, by)| by.clone()),
    }
}

fn case_detail(case: &Case) -> CaseDetailOut {
    let notes = case
        .notes
        .iter()
        .map(|note| NoteOut {
            at: rfc3339(note.at_ns),
            by: note.by.clone(),
            kind: note.kind.name(),
            text: note.text.clone(),
        })
        .collect();
    CaseDetailOut {
        case: case_out(case),
        notes,
    }
}

/// Cases, newest opened first: `state=open` (default), `closed` or `all`. Closed cases are the
/// last 1,000 decided (they are read from history, newest decision first, then sorted).
#[utoipa::path(
    get, path = crate::paths::ROUTE_CASES, tag = "cases",
    params(CasesQuery),
    security(("operator_key" = [])),
    responses(
        (status = 200, body = Vec<CaseOut>),
        (status = 400, description = "invalid_query", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: not an operator", body = ErrorBody),
    )
)]
pub async fn list<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<OperatorRead>,
    ApiQuery(query): ApiQuery<CasesQuery>,
) -> Result<Response, ApiError> {
    let wanted = match query.state.as_deref().unwrap_or("open") {
        "open" => Some(true),
        "closed" => Some(false),
        "all" => None,
        _ => return Err(ApiError::invalid_query("state must be open, closed or all")),
    };
    let cases = state
        .read(move |view| listed_cases(view, wanted))
        .await?
        .map_err(ApiError::from_read)?;
    Ok(json_response(StatusCode::OK, &cases))
}

/// The cases `wanted` (open, closed or both): open ones from the hot state, decided ones from
/// history (and the hot state, where a checkpoint from before format 12 kept them).
fn listed_cases(
    view: &LedgerView<'_>,
    wanted: Option<bool>,
) -> Result<Vec<CaseOut>, croupier_cluster::ReadError> {
    let closed = match wanted {
        Some(true) => Vec::new(),
        _ => view.closed_cases(CASES_PER_PAGE_MAX)?,
    };
    let hot = view.ledger().cases();
    let mut cases: Vec<&Case> = hot
        .filter(|case| wanted.is_none_or(|open| case.is_open() == open))
        .chain(closed.iter().map(|case| case.as_ref()))
        .collect();
    cases.sort_by_key(|case| std::cmp::Reverse((case.opened_at_ns, case.id)));
    let listed = cases.into_iter().take(CASES_PER_PAGE_MAX);
    Ok(listed.map(case_out).collect())
}

/// One case with its notes and decision.
#[utoipa::path(
    get, path = crate::paths::ROUTE_CASE, tag = "cases",
    params(("case_id" = IdOut, Path, description = "Case id (decimal)")),
    security(("operator_key" = [])),
    responses(
        (status = 200, body = CaseDetailOut),
        (status = 400, description = "invalid_path", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: not an operator", body = ErrorBody),
        (status = 404, description = "case_not_found", body = ErrorBody),
    )
)]
pub async fn get<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<OperatorRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let case_id = path.id("case id")?;
    case_view(&state, case_id, StatusCode::OK).await
}

async fn case_view<C: Consensus>(
    state: &AppState<C>,
    case_id: u128,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let found = state
        .read(move |view| {
            view.case(case_id)
                .map(|case| case.as_deref().map(case_detail))
        })
        .await?
        .map_err(ApiError::from_read)?;
    match found {
        Some(body) => Ok(json_response(status, &body)),
        None => Err(case_not_found()),
    }
}

fn case_not_found() -> ApiError {
    ApiError::not_found("case_not_found", "no such case")
}

/// Who acts: the operator's key id (`loopback` in protected mode).
fn actor(caller: &Caller) -> String {
    // Every case route's policy admits operators only, so there is always a key id.
    caller.operator_key_id().unwrap_or("unknown").to_string()
}

async fn commit<C: Consensus>(
    state: &AppState<C>,
    caller: &Caller,
    command: CaseCommand,
) -> Result<(), ApiError> {
    let command = Command::Compliance(ComplianceCommand::Case(command));
    match state.commit(caller.attribute(command)).await? {
        CommandResult::Compliance(ComplianceOutcome::Ok) => Ok(()),
        CommandResult::Compliance(ComplianceOutcome::CaseNotFound) => Err(case_not_found()),
        CommandResult::Compliance(ComplianceOutcome::PlayerNotFound) => {
            Err(ApiError::not_found("player_not_found", "no such player"))
        }
        CommandResult::Compliance(ComplianceOutcome::CaseClosed) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "case_closed",
            "the case has its decision: nothing more changes it",
        )),
        CommandResult::Compliance(other) => Err(ApiError::new(
            StatusCode::CONFLICT,
            other.code(),
            "the ledger refused the case command",
        )),
        _ => Err(ApiError::internal(
            "the ledger answered in an unexpected shape",
        )),
    }
}

fn reasons_in(reasons: Vec<String>) -> Result<Vec<String>, ApiError> {
    let code = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    let each_ok = reasons
        .iter()
        .all(|r| (1..=REASON_LEN_MAX).contains(&r.len()) && r.bytes().all(code));
    if reasons.is_empty() || reasons.len() > REASONS_PER_CASE_MAX || !each_ok {
        return Err(ApiError::invalid_field(
            None,
            "reasons",
            "must list 1 to 16 codes of 1 to 64 of a-z, 0-9, _",
        ));
    }
    Ok(reasons)
}

fn action_of(name: ActionName) -> CaseAction {
    match name {
        ActionName::OpenCase => CaseAction::OpenCase,
        ActionName::HoldWithdrawals => CaseAction::HoldWithdrawals,
        ActionName::RequireEnhancedKyc => CaseAction::RequireEnhancedKyc,
        ActionName::Freeze => CaseAction::Freeze,
    }
}

/// Open a case by hand (support, admin).
#[utoipa::path(
    post, path = crate::paths::ROUTE_CASES, tag = "cases",
    request_body = NewCaseIn,
    security(("operator_key" = [])),
    responses(
        (status = 201, body = CaseDetailOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down, or no entropy", body = ErrorBody),
    )
)]
pub async fn open<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdmin>,
    ApiJson(request): ApiJson<NewCaseIn>,
) -> Result<Response, ApiError> {
    let reasons = reasons_in(request.reasons)?;
    let score = u8::try_from(request.score.0)
        .ok()
        .filter(|score| *score <= 100)
        .ok_or_else(|| ApiError::invalid_field(None, "score", "must be from 0 to 100"))?;
    let case_id = random_case_id()?;
    let case = NewCase {
        case_id,
        player_id: request.player_id.0,
        score,
        reasons,
        ruleset_version: String::new(),
        action: action_of(request.action.unwrap_or(ActionName::OpenCase)),
        by: actor(&caller),
    };
    commit(&state, &caller, CaseCommand::Open(case)).await?;
    case_view(&state, case_id, StatusCode::CREATED).await
}

/// A case opened by hand gets a random id (the pipeline's are derived from their events).
fn random_case_id() -> Result<u128, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "entropy_unavailable",
            "the node cannot draw random numbers right now; retry",
        )
    })?;
    Ok(u128::from_le_bytes(bytes).max(1))
}

/// Assign a case to an operator (support, admin).
#[utoipa::path(
    post, path = crate::paths::ROUTE_CASE_ASSIGN, tag = "cases",
    params(("case_id" = IdOut, Path, description = "Case id (decimal)")),
    request_body = AssignIn,
    security(("operator_key" = [])),
    responses(
        (status = 200, body = CaseDetailOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "case_not_found", body = ErrorBody),
        (status = 409, description = "case_closed", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn assign<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdmin>,
    path: ApiPath,
    ApiJson(request): ApiJson<AssignIn>,
) -> Result<Response, ApiError> {
    let case_id = path.id("case id")?;
    if !croupier_core::command::check_operator_key_id(&request.assignee) {
        return Err(ApiError::invalid_field(
            None,
            "assignee",
            "must be an operator key id: 1 to 32 of a-z, 0-9, _, -",
        ));
    }
    let command = CaseCommand::Assign {
        case_id,
        assignee: request.assignee,
        by: actor(&caller),
    };
    commit(&state, &caller, command).await?;
    case_view(&state, case_id, StatusCode::OK).await
}

/// Notes are bounded in bytes by the ledger; 512 characters of any script fit.
const NOTE_TEXT_CHARS_MAX: usize = NOTE_TEXT_LEN_MAX / 4;

fn text_in(text: String) -> Result<String, ApiError> {
    match text.chars().count() <= NOTE_TEXT_CHARS_MAX {
        true => Ok(text),
        false => Err(ApiError::invalid_field(
            None,
            "text",
            "must have at most 512 characters",
        )),
    }
}

/// Comment on a case, or record a request for documents (support, admin).
#[utoipa::path(
    post, path = crate::paths::ROUTE_CASE_NOTES, tag = "cases",
    params(("case_id" = IdOut, Path, description = "Case id (decimal)")),
    request_body = NoteIn,
    security(("operator_key" = [])),
    responses(
        (status = 200, body = CaseDetailOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "case_not_found", body = ErrorBody),
        (status = 409, description = "case_closed", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn note<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdmin>,
    path: ApiPath,
    ApiJson(request): ApiJson<NoteIn>,
) -> Result<Response, ApiError> {
    let case_id = path.id("case id")?;
    let kind = match request.kind {
        NoteKindName::Comment => NoteKind::Comment,
        NoteKindName::DocumentsRequested => NoteKind::DocumentsRequested,
    };
    let command = CaseCommand::Note {
        case_id,
        kind,
        text: text_in(request.text)?,
        by: actor(&caller),
    };
    commit(&state, &caller, command).await?;
    case_view(&state, case_id, StatusCode::OK).await
}

/// Decide a case (support, admin): clear lifts its freeze and hold; restrict and
/// close_account freeze the player; report marks it for a suspicious-transaction report.
#[utoipa::path(
    post, path = crate::paths::ROUTE_CASE_DECISION, tag = "cases",
    params(("case_id" = IdOut, Path, description = "Case id (decimal)")),
    request_body = DecisionIn,
    security(("operator_key" = [])),
    responses(
        (status = 200, body = CaseDetailOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "case_not_found", body = ErrorBody),
        (status = 409, description = "case_closed: it was decided before", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn decide<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdmin>,
    path: ApiPath,
    ApiJson(request): ApiJson<DecisionIn>,
) -> Result<Response, ApiError> {
    let case_id = path.id("case id")?;
    let decision = match request.decision {
        DecisionName::Clear => CaseDecision::Clear,
        DecisionName::Restrict => CaseDecision::Restrict,
        DecisionName::CloseAccount => CaseDecision::CloseAccount,
        DecisionName::Report => CaseDecision::Report,
    };
    let command = CaseCommand::Decide {
        case_id,
        decision,
        text: text_in(request.text)?,
        by: actor(&caller),
    };
    commit(&state, &caller, command).await?;
    case_view(&state, case_id, StatusCode::OK).await
}

/// The case as a suspicious-transaction report in goAML XML (schema 5.0.1): the player, and
/// the player's wallet transfers in the reporting currency from `window_days` before the case
/// opened (support, admin; it carries personal data).
#[utoipa::path(
    get, path = crate::paths::ROUTE_CASE_GOAML, tag = "cases",
    params(("case_id" = IdOut, Path, description = "Case id (decimal)")),
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "goAML report XML", content_type = "application/xml", body = String),
        (status = 400, description = "invalid_path", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "case_not_found", body = ErrorBody),
        (status = 409, description = "goaml_not_configured: no [compliance.goaml] reporting entity", body = ErrorBody),
        (status = 422, description = "report_not_representable: an amount beyond goAML's range", body = ErrorBody),
        (status = 503, description = "storage_unavailable: history cannot be read right now", body = ErrorBody),
    )
)]
pub async fn export_goaml<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<PlayerAdmin>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    use crate::compliance::goaml::{gather, GatherError};
    let case_id = path.id("case id")?;
    let Some(config) = state.compliance().goaml.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "goaml_not_configured",
            "this node has no [compliance.goaml] reporting entity to report as",
        ));
    };
    let gather_config = config.clone();
    let input = state
        .read(move |view| gather(view, &gather_config, case_id))
        .await?
        .map_err(|error| match error {
            GatherError::CaseNotFound => case_not_found(),
            GatherError::History(error) => ApiError::from_read(error),
        })?;
    let now_s = crate::auth::wall_clock_ns() / 1_000_000_000;
    let xml = croupier_risk::goaml::suspicious_transaction_report(
        &config.entity,
        &input.case,
        &input.person,
        &input.movements,
        now_s,
    )
    .map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "report_not_representable",
            error.to_string(),
        )
    })?;
    let mut response = Response::new(axum::body::Body::from(xml));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    Ok(response)
}
