//! Responsible gambling and KYC over HTTP: limits, self-exclusion, time-outs, a player's
//! compliance status, operator deposits, KYC levels and the jurisdictions' policy.
//!
//! Every change is one command the state machine judges (`croupier_core::compliance`); these
//! handlers only validate the request's shape and show the ledger's answer. A player acts on
//! itself; support and admin keys act for any player (recorded in the operator trail).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_core::compliance::{
    limit_slot, ComplianceCommand, ComplianceOutcome, CompliancePolicy, Deposit, ExclusionSource,
    KycLevel, KycRequirements, LimitChange, LimitKind, LimitsRequest, Period, PlayerCompliance,
    SeenIdentifiers, JURISDICTIONS_MAX, LIMIT_SLOTS, SELF_EXCLUSION_DAYS_MAX,
    SELF_EXCLUSION_DAYS_MIN, SESSION_MINUTES_MAX, TIME_OUT_DAYS_MAX, TIME_OUT_DAYS_MIN,
};
use croupier_core::players::PlayerId;
use croupier_core::{Command, CommandResult, LedgerCode};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::auth::{Allowed, Caller, MoneyWrite, OperatorOrOwnerRead, OperatorRead, PlayerAdmin};
use crate::auth::{PlayerAdminOrSelf, TableAdmin};
use crate::compliance::identifiers;
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::live::messages::rfc3339;
use crate::state::AppState;
use crate::wire::{parse_ledger, IdIn, IdOut, U64In};

/// Absent stays absent; `null` is `Some(None)` (remove the limit); a value is `Some(Some(v))`.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

fn positive_amount_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint64(1).build()
}

fn limit_amount_schema() -> utoipa::openapi::schema::Schema {
    crate::schema::nullable(crate::schema::uint64(1))
}

fn session_minutes_schema() -> utoipa::openapi::schema::Schema {
    crate::schema::nullable(crate::schema::uint64(1).maximum(Some(SESSION_MINUTES_MAX)))
}

/// A limit per period, in minor units of the wallet's currency; `null` removes it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitPeriodsIn {
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = limit_amount_schema, required = false)]
    day: Option<Option<U64In>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = limit_amount_schema, required = false)]
    week: Option<Option<U64In>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = limit_amount_schema, required = false)]
    month: Option<Option<U64In>>,
}

/// Any subset of the limits. Lower (or new) limits apply at once; higher ones and removals
/// after 24 hours (shown under `pending`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayerLimitsIn {
    /// The wallet's currency; absent: the player's first currency.
    #[serde(default)]
    #[schema(schema_with = crate::schema::ledger_string, required = false, example = "EUR")]
    ledger: Option<String>,
    #[serde(default)]
    deposit: Option<LimitPeriodsIn>,
    #[serde(default)]
    loss: Option<LimitPeriodsIn>,
    #[serde(default)]
    wager: Option<LimitPeriodsIn>,
    /// Minutes of play after each login, 1 to 1440; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = session_minutes_schema, required = false)]
    session_minutes: Option<Option<U64In>>,
}

#[derive(Serialize, ToSchema, Default)]
pub struct LimitPeriodsOut {
    day: Option<u64>,
    week: Option<u64>,
    month: Option<u64>,
}

#[derive(Serialize, ToSchema, Default)]
pub struct SpentPeriodsOut {
    day: u128,
    week: u128,
    month: u128,
}

/// A less safe change waiting for its cooling-off.
#[derive(Serialize, ToSchema)]
pub struct PendingOut {
    /// deposit, loss, wager or session_minutes.
    limit: &'static str,
    /// day, week or month (absent for session_minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<&'static str>,
    /// The new value; null: the limit is being removed.
    value: Option<u64>,
    effective_at: String,
}

/// The limits in force, what is pending, and what the current periods have used.
#[derive(Serialize, ToSchema)]
pub struct PlayerLimitsOut {
    player_id: IdOut,
    #[schema(example = "EUR")]
    ledger: String,
    deposit: LimitPeriodsOut,
    loss: LimitPeriodsOut,
    wager: LimitPeriodsOut,
    session_minutes: Option<u64>,
    pending: Vec<PendingOut>,
    /// Deposits, net loss and stakes of the current day, week and month (UTC calendar).
    spent: BTreeMap<&'static str, SpentPeriodsOut>,
}

/// A self-exclusion's length: 182 to 1826 days (6 months to 5 years).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfExclusionIn {
    #[schema(schema_with = self_exclusion_days_schema, example = 182)]
    days: U64In,
}

fn self_exclusion_days_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint64(SELF_EXCLUSION_DAYS_MIN.into())
        .maximum(Some(SELF_EXCLUSION_DAYS_MAX))
        .build()
}

/// A time-out's length: 1 to 42 days (6 weeks).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeOutIn {
    #[schema(schema_with = time_out_days_schema, example = 7)]
    days: U64In,
}

fn time_out_days_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint64(TIME_OUT_DAYS_MIN.into())
        .maximum(Some(TIME_OUT_DAYS_MAX))
        .build()
}

#[derive(Serialize, ToSchema)]
pub struct ExclusionOut {
    player_id: IdOut,
    /// When the self-exclusion ends (null: none in force).
    self_excluded_until: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TimeOutOut {
    player_id: IdOut,
    timed_out_until: String,
}

impl ComplianceOut {
    pub(crate) fn kyc_level(&self) -> &'static str {
        self.kyc_level
    }
}

/// A player's compliance status.
#[derive(Serialize, ToSchema)]
pub struct ComplianceOut {
    player_id: IdOut,
    /// none, basic (identity verified) or enhanced (source of funds reviewed).
    kyc_level: &'static str,
    /// From the verified identity (ISO 3166-1 alpha-2): whose policy applies.
    country: Option<String>,
    /// The identity provider that attested the player's identity.
    identity_issuer: Option<String>,
    self_excluded_until: Option<String>,
    timed_out_until: Option<String>,
    /// The last login, which the session-time limit counts from.
    session_started_at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DepositIn {
    /// The deposit's transfer id (non-zero u128): a retry answers the original deposit.
    #[schema(example = "7001")]
    deposit_id: IdIn,
    /// Minor units, at least 1.
    #[schema(schema_with = positive_amount_schema, example = 10000)]
    amount: U64In,
    /// The wallet's currency; absent: the player's first currency.
    #[serde(default)]
    #[schema(schema_with = crate::schema::ledger_string, required = false, example = "EUR")]
    ledger: Option<String>,
    /// The account the money comes from (a cashier or payment clearing account).
    #[schema(example = "900")]
    source_account_id: IdIn,
    /// The payment instrument it was paid with (an IBAN, a card fingerprint), 1 to 256
    /// printable ASCII characters with a letter or digit: its digest feeds the AML scoring's
    /// shared-instrument facts.
    #[serde(default)]
    #[schema(
        example = "DE89370400440532013000",
        min_length = 1,
        max_length = 256,
        pattern = "^[ -~]*[A-Za-z0-9][ -~]*$"
    )]
    instrument: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DepositOut {
    deposit_id: IdOut,
    player_id: IdOut,
    /// The wallet's available balance after the deposit.
    balance: u128,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KycLevelIn {
    #[schema(example = "enhanced")]
    level: KycLevelName,
}

/// Which KYC level each action needs.
#[derive(Debug, Deserialize, Serialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub struct RequirementsIo {
    #[schema(example = "none")]
    play: KycLevelName,
    deposit: KycLevelName,
    withdraw: KycLevelName,
    /// Deposits of at least this amount (minor units) need `large_deposit`; 0: no such rule.
    #[serde(default)]
    #[schema(schema_with = large_deposit_schema, required = false)]
    large_deposit_min: U64In,
    #[serde(default)]
    large_deposit: KycLevelName,
}

fn large_deposit_schema() -> utoipa::openapi::schema::Object {
    crate::schema::uint64(0).build()
}

#[derive(Debug, Deserialize, Serialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
pub enum KycLevelName {
    #[default]
    None,
    Basic,
    Enhanced,
}

impl KycLevelName {
    fn level(self) -> KycLevel {
        match self {
            KycLevelName::None => KycLevel::None,
            KycLevelName::Basic => KycLevel::Basic,
            KycLevelName::Enhanced => KycLevel::Enhanced,
        }
    }

    fn of(level: KycLevel) -> KycLevelName {
        match level {
            KycLevel::None => KycLevelName::None,
            KycLevel::Basic => KycLevelName::Basic,
            KycLevel::Enhanced => KycLevelName::Enhanced,
        }
    }
}

/// The policy: `default` for players without a verified identity and countries not listed.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyIo {
    default: RequirementsIo,
    /// By ISO 3166-1 alpha-2 country code (upper case), at most 256.
    #[serde(default)]
    #[schema(schema_with = jurisdictions_schema, required = false)]
    jurisdictions: BTreeMap<String, RequirementsIo>,
}

fn jurisdictions_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    use utoipa::openapi::Ref;
    let country = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Z]{2}$"));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(country))
        .additional_properties(Some(AdditionalProperties::RefOr(
            Ref::from_schema_name("RequirementsIo").into(),
        )))
        .max_properties(Some(JURISDICTIONS_MAX))
        .build()
}

pub(crate) fn player_not_found() -> ApiError {
    ApiError::not_found("player_not_found", "no such player")
}

/// A player acts only on itself: another player's id answers 404, as if it did not exist.
pub(crate) fn target_player(caller: &Caller, path: &ApiPath) -> Result<PlayerId, ApiError> {
    let player_id = path.id("player id")?;
    if caller.player().is_some_and(|own| own != player_id) {
        return Err(player_not_found());
    }
    Ok(player_id)
}

fn compliance_error(outcome: ComplianceOutcome) -> ApiError {
    match outcome {
        ComplianceOutcome::Refused(refusal) => ApiError::from_refusal(refusal),
        ComplianceOutcome::PlayerNotFound => player_not_found(),
        ComplianceOutcome::NoWalletInCurrency => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_wallet_in_currency",
            "the player has no wallet in this currency",
        ),
        ComplianceOutcome::SelfExclusionActive => ApiError::new(
            StatusCode::CONFLICT,
            "self_exclusion_active",
            "a self-exclusion cannot be lifted before it ends",
        ),
        ComplianceOutcome::DepositRefused(result) => {
            let status = match result.code().starts_with("exists") {
                true => StatusCode::CONFLICT,
                false => StatusCode::UNPROCESSABLE_ENTITY,
            };
            ApiError::new(
                status,
                result.code(),
                "the ledger refused the deposit's transfer",
            )
        }
        ComplianceOutcome::CaseNotFound
        | ComplianceOutcome::CaseClosed
        | ComplianceOutcome::CaseConflict => ApiError::new(
            StatusCode::CONFLICT,
            outcome.code(),
            "the ledger refused the case command",
        ),
        ComplianceOutcome::Ok | ComplianceOutcome::Deposited { .. } => {
            ApiError::internal("an accepted compliance command was treated as an error")
        }
    }
}

/// Proposes `command` (attributed to the operator who asked) and returns the ledger's answer,
/// refusals as errors.
pub(crate) async fn commit<C: Consensus>(
    state: &AppState<C>,
    caller: &Caller,
    command: ComplianceCommand,
) -> Result<ComplianceOutcome, ApiError> {
    match state
        .commit(caller.attribute(Command::Compliance(command)))
        .await?
    {
        CommandResult::Compliance(outcome @ ComplianceOutcome::Ok)
        | CommandResult::Compliance(outcome @ ComplianceOutcome::Deposited { .. }) => Ok(outcome),
        CommandResult::Compliance(refused) => Err(compliance_error(refused)),
        _ => Err(ApiError::internal(
            "the ledger answered in an unexpected shape",
        )),
    }
}

/// The player's wallet currency: the one asked for, or the first it registered.
pub(crate) async fn wallet_ledger<C: Consensus>(
    state: &AppState<C>,
    player_id: PlayerId,
    ledger: Option<&str>,
) -> Result<LedgerCode, ApiError> {
    let asked = match ledger {
        Some(text) => {
            Some(parse_ledger(text).map_err(|e| ApiError::invalid_field(None, "ledger", &e))?)
        }
        None => None,
    };
    let first = state
        .read(move |view| view.ledger().player(player_id).map(|p| p.first_wallet().0))
        .await?
        .ok_or_else(player_not_found)?;
    Ok(asked.unwrap_or(first))
}

fn change_of(value: Option<Option<U64In>>) -> Option<LimitChange> {
    value.map(|value| match value {
        Some(U64In(amount)) => LimitChange::Set(amount),
        None => LimitChange::Remove,
    })
}

fn limits_request(
    player_id: PlayerId,
    ledger: LedgerCode,
    request: PlayerLimitsIn,
) -> Result<LimitsRequest, ApiError> {
    let mut money = [None; LIMIT_SLOTS];
    let kinds = [
        (LimitKind::Deposit, request.deposit),
        (LimitKind::Loss, request.loss),
        (LimitKind::Wager, request.wager),
    ];
    for (kind, periods) in kinds {
        let periods = periods.unwrap_or_default();
        let values = [periods.day, periods.week, periods.month];
        for (period, value) in Period::ALL.into_iter().zip(values) {
            money[limit_slot(kind, period)] = change_of(value);
        }
    }
    let request = LimitsRequest {
        player_id,
        ledger,
        money,
        session_minutes: change_of(request.session_minutes),
    };
    if !request.check() {
        return Err(ApiError::invalid_field(
            None,
            "limits",
            "amounts must be at least 1 and session_minutes 1 to 1440",
        ));
    }
    Ok(request)
}

/// Set a player's deposit, loss and wager limits and session-time limit (the player itself,
/// support or admin).
#[utoipa::path(
    put, path = crate::paths::ROUTE_PLAYER_LIMITS, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    request_body = PlayerLimitsIn,
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = PlayerLimitsOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "no_wallet_in_currency", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn put_limits<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdminOrSelf>,
    path: ApiPath,
    ApiJson(request): ApiJson<PlayerLimitsIn>,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let ledger = wallet_ledger(&state, player_id, request.ledger.as_deref()).await?;
    let command = ComplianceCommand::SetLimits(limits_request(player_id, ledger, request)?);
    commit(&state, &caller, command).await?;
    limits_view(&state, player_id, ledger).await
}

/// A player's limits in force, pending changes and what the current periods used.
#[utoipa::path(
    get, path = crate::paths::ROUTE_PLAYER_LIMITS, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = PlayerLimitsOut),
        (status = 400, description = "invalid_path", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
    )
)]
pub async fn get_limits<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<OperatorOrOwnerRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let ledger = wallet_ledger(&state, player_id, None).await?;
    limits_view(&state, player_id, ledger).await
}

async fn limits_view<C: Consensus>(
    state: &AppState<C>,
    player_id: PlayerId,
    ledger: LedgerCode,
) -> Result<Response, ApiError> {
    let found = state
        .read(move |view| {
            let ledger_state = view.ledger();
            let player = ledger_state.player_compliance(player_id)?;
            Some(limits_out(
                player,
                player_id,
                ledger,
                ledger_state.compliance_now_ns(),
            ))
        })
        .await?;
    match found {
        Some(body) => Ok(json_response(StatusCode::OK, &body)),
        None => Err(player_not_found()),
    }
}

fn limits_out(
    player: &PlayerCompliance,
    player_id: PlayerId,
    ledger: LedgerCode,
    now: u64,
) -> PlayerLimitsOut {
    let wallet = player.wallet(ledger);
    let mut pending = Vec::new();
    let mut periods = |kind: LimitKind| {
        let mut out = LimitPeriodsOut::default();
        for period in Period::ALL {
            let limit = wallet
                .map(|w| w.limits[limit_slot(kind, period)].at(now))
                .unwrap_or_default();
            if let Some(change) = limit.pending {
                pending.push(PendingOut {
                    limit: kind.name(),
                    period: Some(period.name()),
                    value: change.value,
                    effective_at: rfc3339(change.effective_at_ns),
                });
            }
            *match period {
                Period::Day => &mut out.day,
                Period::Week => &mut out.week,
                Period::Month => &mut out.month,
            } = limit.current;
        }
        out
    };
    let (deposit, loss, wager) = (
        periods(LimitKind::Deposit),
        periods(LimitKind::Loss),
        periods(LimitKind::Wager),
    );
    let session = player.session_limit.at(now);
    if let Some(change) = session.pending {
        pending.push(PendingOut {
            limit: "session_minutes",
            period: None,
            value: change.value,
            effective_at: rfc3339(change.effective_at_ns),
        });
    }
    PlayerLimitsOut {
        player_id: IdOut(player_id),
        ledger: ledger.as_string(),
        deposit,
        loss,
        wager,
        session_minutes: session.current,
        pending,
        spent: spent_out(player, ledger, now),
    }
}

fn spent_out(
    player: &PlayerCompliance,
    ledger: LedgerCode,
    now: u64,
) -> BTreeMap<&'static str, SpentPeriodsOut> {
    let used = |kind: LimitKind, period: Period| -> u128 {
        let Some(wallet) = player.wallet(ledger) else {
            return 0;
        };
        let window = wallet.window_at(period, now);
        match kind {
            LimitKind::Deposit => window.deposited,
            LimitKind::Loss => window.loss(),
            LimitKind::Wager => window.wagered,
        }
    };
    LimitKind::ALL
        .iter()
        .map(|&kind| {
            let periods = SpentPeriodsOut {
                day: used(kind, Period::Day),
                week: used(kind, Period::Week),
                month: used(kind, Period::Month),
            };
            (kind.name(), periods)
        })
        .collect()
}

/// Self-exclude a player for 182 to 1826 days (6 months to 5 years). It cannot be lifted or
/// shortened; a longer one extends it. Every bet and deposit is then refused `self_excluded`.
#[utoipa::path(
    post, path = crate::paths::ROUTE_PLAYER_SELF_EXCLUSION, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    request_body = SelfExclusionIn,
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = ExclusionOut),
        (status = 400, description = "Malformed input or days outside 182..=1826", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn self_exclude<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdminOrSelf>,
    path: ApiPath,
    ApiJson(request): ApiJson<SelfExclusionIn>,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let days = days_in(
        request.days,
        SELF_EXCLUSION_DAYS_MIN,
        SELF_EXCLUSION_DAYS_MAX,
    )?;
    let source = match caller.player() {
        Some(_) => ExclusionSource::Player,
        None => ExclusionSource::Operator,
    };
    let command = ComplianceCommand::SelfExclude {
        player_id,
        days,
        source,
    };
    commit(&state, &caller, command).await?;
    exclusion_view(&state, player_id).await
}

fn days_in(days: U64In, min: u16, max: u16) -> Result<u16, ApiError> {
    u16::try_from(days.0)
        .ok()
        .filter(|days| (min..=max).contains(days))
        .ok_or_else(|| {
            ApiError::invalid_field(None, "days", &format!("must be from {min} to {max}"))
        })
}

/// A request to lift a self-exclusion: refused while it runs (the attempt is in the log).
#[utoipa::path(
    delete, path = crate::paths::ROUTE_PLAYER_SELF_EXCLUSION, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, description = "No self-exclusion is in force", body = ExclusionOut),
        (status = 400, description = "invalid_path", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 409, description = "self_exclusion_active: it cannot be lifted early", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn lift_self_exclusion<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdminOrSelf>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    commit(
        &state,
        &caller,
        ComplianceCommand::LiftSelfExclusion { player_id },
    )
    .await?;
    exclusion_view(&state, player_id).await
}

async fn exclusion_view<C: Consensus>(
    state: &AppState<C>,
    player_id: PlayerId,
) -> Result<Response, ApiError> {
    let until = state
        .read(move |view| {
            let ledger = view.ledger();
            let player = ledger.player_compliance(player_id)?;
            let now = ledger.compliance_now_ns();
            Some((player.self_excluded_until_ns > now).then_some(player.self_excluded_until_ns))
        })
        .await?
        .ok_or_else(player_not_found)?;
    let body = ExclusionOut {
        player_id: IdOut(player_id),
        self_excluded_until: until.map(rfc3339),
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// A time-out of 1 to 42 days (6 weeks): no bets or deposits until it ends; it cannot be
/// shortened.
#[utoipa::path(
    post, path = crate::paths::ROUTE_PLAYER_TIME_OUT, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    request_body = TimeOutIn,
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = TimeOutOut),
        (status = 400, description = "Malformed input or days outside 1..=42", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn time_out<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdminOrSelf>,
    path: ApiPath,
    ApiJson(request): ApiJson<TimeOutIn>,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let days = days_in(request.days, TIME_OUT_DAYS_MIN, TIME_OUT_DAYS_MAX)?;
    commit(
        &state,
        &caller,
        ComplianceCommand::TimeOut { player_id, days },
    )
    .await?;
    let until = state
        .read(move |view| {
            let player = view.ledger().player_compliance(player_id)?;
            Some(player.timed_out_until_ns)
        })
        .await?
        .ok_or_else(player_not_found)?;
    let body = TimeOutOut {
        player_id: IdOut(player_id),
        timed_out_until: rfc3339(until),
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// A player's KYC level, verified country, exclusions and session start.
#[utoipa::path(
    get, path = crate::paths::ROUTE_PLAYER_COMPLIANCE, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = ComplianceOut),
        (status = 400, description = "invalid_path", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
    )
)]
pub async fn get_status<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<OperatorOrOwnerRead>,
    path: ApiPath,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let body = compliance_view(&state, player_id).await?;
    Ok(json_response(StatusCode::OK, &body))
}

pub(crate) async fn compliance_view<C: Consensus>(
    state: &AppState<C>,
    player_id: PlayerId,
) -> Result<ComplianceOut, ApiError> {
    state
        .read(move |view| {
            let ledger = view.ledger();
            let player = ledger.player_compliance(player_id)?;
            let now = ledger.compliance_now_ns();
            let until = |ns: u64| (ns > now).then(|| rfc3339(ns));
            let identity = player.identity.as_deref();
            Some(ComplianceOut {
                player_id: IdOut(player_id),
                kyc_level: player.kyc_level.name(),
                country: player
                    .country()
                    .map(|c| String::from_utf8_lossy(&c).into_owned()),
                identity_issuer: identity.map(|identity| identity.issuer.clone()),
                self_excluded_until: until(player.self_excluded_until_ns),
                timed_out_until: until(player.timed_out_until_ns),
                session_started_at: (player.session_started_at_ns != 0)
                    .then(|| rfc3339(player.session_started_at_ns)),
            })
        })
        .await?
        .ok_or_else(player_not_found)
}

/// Credit a player's wallet from a cashier or clearing account (finance, admin), checked
/// against the player's deposit limits, exclusions and KYC in the same apply.
#[utoipa::path(
    post, path = crate::paths::ROUTE_PLAYER_DEPOSITS, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    request_body = DepositIn,
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "Credited (or the original answer to a retry)", body = DepositOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "self_excluded, timed_out, kyc_required, deposit_limit_reached; or forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 409, description = "exists_with_different_*: the deposit_id was used for another transfer", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "no_wallet_in_currency, or the ledger's transfer code (debit_account_not_found, exceeds_credits, ...)", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn deposit<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<MoneyWrite>,
    path: ApiPath,
    ApiJson(request): ApiJson<DepositIn>,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let deposit_id = nonzero(request.deposit_id, "deposit_id")?;
    let source_account_id = nonzero(request.source_account_id, "source_account_id")?;
    if request.amount.0 == 0 {
        return Err(ApiError::invalid_field(None, "amount", "must not be 0"));
    }
    let instrument = match request.instrument.as_deref() {
        None => None,
        Some(text) if identifiers::acceptable_token(text) => Some(identifiers::instrument(text)),
        Some(_) => {
            return Err(ApiError::invalid_field(
                None,
                "instrument",
                "must be 1 to 256 printable ASCII characters with a letter or digit",
            ))
        }
    };
    let ledger = wallet_ledger(&state, player_id, request.ledger.as_deref()).await?;
    if let Some(instrument) = instrument {
        // Recorded before the deposit, so the scoring of the deposit sees its instrument.
        let seen = SeenIdentifiers {
            instrument: Some(instrument),
            ..SeenIdentifiers::default()
        };
        let observed = ComplianceCommand::ObserveIdentifiers { player_id, seen };
        commit(&state, &caller, observed).await?;
    }
    let command = ComplianceCommand::Deposit(Deposit {
        deposit_id,
        player_id,
        ledger,
        amount: request.amount.0,
        source_account_id,
    });
    let ComplianceOutcome::Deposited { balance } = commit(&state, &caller, command).await? else {
        return Err(ApiError::internal(
            "the ledger answered in an unexpected shape",
        ));
    };
    let body = DepositOut {
        deposit_id: IdOut(deposit_id),
        player_id: IdOut(player_id),
        balance,
    };
    Ok(json_response(StatusCode::OK, &body))
}

fn nonzero(id: IdIn, field: &'static str) -> Result<u128, ApiError> {
    match id.0 {
        0 => Err(ApiError::invalid_field(None, field, "must not be 0")),
        id => Ok(id),
    }
}

/// Set a player's KYC level (support, admin): `enhanced` after a source-of-funds review, or a
/// downgrade.
#[utoipa::path(
    put, path = crate::paths::ROUTE_PLAYER_KYC, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    request_body = KycLevelIn,
    security(("operator_key" = [])),
    responses(
        (status = 200, body = ComplianceOut),
        (status = 400, description = "Malformed input or an unknown level", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn put_kyc_level<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdmin>,
    path: ApiPath,
    ApiJson(request): ApiJson<KycLevelIn>,
) -> Result<Response, ApiError> {
    let player_id = target_player(&caller, &path)?;
    let level = request.level.level();
    commit(
        &state,
        &caller,
        ComplianceCommand::SetKycLevel { player_id, level },
    )
    .await?;
    let body = compliance_view(&state, player_id).await?;
    Ok(json_response(StatusCode::OK, &body))
}

fn requirements_in(io: RequirementsIo) -> KycRequirements {
    KycRequirements {
        play: io.play.level(),
        deposit: io.deposit.level(),
        withdraw: io.withdraw.level(),
        large_deposit_min: io.large_deposit_min.0,
        large_deposit: io.large_deposit.level(),
    }
}

fn requirements_out(required: KycRequirements) -> RequirementsIo {
    RequirementsIo {
        play: KycLevelName::of(required.play),
        deposit: KycLevelName::of(required.deposit),
        withdraw: KycLevelName::of(required.withdraw),
        large_deposit_min: U64In(required.large_deposit_min),
        large_deposit: KycLevelName::of(required.large_deposit),
    }
}

fn policy_in(io: PolicyIo) -> Result<CompliancePolicy, ApiError> {
    if io.jurisdictions.len() > JURISDICTIONS_MAX {
        return Err(ApiError::invalid_field(
            None,
            "jurisdictions",
            "lists more than 256 countries",
        ));
    }
    let mut jurisdictions = Vec::with_capacity(io.jurisdictions.len());
    for (country, required) in io.jurisdictions {
        let code: [u8; 2] = country
            .as_bytes()
            .try_into()
            .ok()
            .filter(|code: &[u8; 2]| code.iter().all(u8::is_ascii_uppercase))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    None,
                    "jurisdictions",
                    "keys must be ISO 3166-1 alpha-2 codes in upper case",
                )
            })?;
        jurisdictions.push((code, requirements_in(required)));
    }
    Ok(CompliancePolicy {
        default: requirements_in(io.default),
        jurisdictions,
    })
}

fn policy_out(policy: &CompliancePolicy) -> PolicyIo {
    PolicyIo {
        default: requirements_out(policy.default),
        jurisdictions: policy
            .jurisdictions
            .iter()
            .map(|(country, required)| {
                (
                    String::from_utf8_lossy(country).into_owned(),
                    requirements_out(*required),
                )
            })
            .collect(),
    }
}

/// Set which KYC level each action needs, per jurisdiction (admin).
#[utoipa::path(
    put, path = crate::paths::ROUTE_COMPLIANCE_POLICY, tag = "compliance",
    request_body = PolicyIo,
    security(("operator_key" = [])),
    responses(
        (status = 200, body = PolicyIo),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn put_policy<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<TableAdmin>,
    ApiJson(request): ApiJson<PolicyIo>,
) -> Result<Response, ApiError> {
    let policy = policy_in(request)?;
    commit(&state, &caller, ComplianceCommand::SetPolicy(policy)).await?;
    policy_view(&state).await
}

/// The KYC policy in force.
#[utoipa::path(
    get, path = crate::paths::ROUTE_COMPLIANCE_POLICY, tag = "compliance",
    security(("operator_key" = [])),
    responses(
        (status = 200, body = PolicyIo),
        (status = 401, description = "unauthorized", body = ErrorBody),
    )
)]
pub async fn get_policy<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<OperatorRead>,
) -> Result<Response, ApiError> {
    policy_view(&state).await
}

async fn policy_view<C: Consensus>(state: &AppState<C>) -> Result<Response, ApiError> {
    let body = state
        .read(|view| policy_out(view.ledger().compliance_policy()))
        .await?;
    Ok(json_response(StatusCode::OK, &body))
}
