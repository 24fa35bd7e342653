//! Live tables over HTTP: the table list, a player's bets, and game recall (the current and the
//! last rounds of a table, with outcome, proof, bets, payouts and balances; a player sees only
//! its own bets).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::{Consensus, LedgerView};
use croupier_core::tables::{
    round_parts, PlacedBet, Round, RoundId, SpotStake, Table, TableBet, TableCommand, TableId,
    TableLimits, TableOutcome, SPOTS_PER_BET_MAX,
};
use croupier_core::{Command, CommandResult};
use croupier_games::live::{LiveLayout, LiveTable};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{unauthorized, Allowed, OperatorOrOwnerRead, PlayerOnly, TableAdmin};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::live::messages::{SOURCE_RNG, SOURCE_STUDIO};
use crate::routes::studio::{StudioIn, StudioOut};
use crate::routes::table_answers::{game_not_run_here, table_error, table_id_in};
use crate::state::AppState;
use crate::tables::{GameRefused, LiveTables, TableSpec, TableSpecError};
use crate::wire::{parse_ledger, IdIn, IdOut, U32In, U64In};

/// Rounds a recall page returns by default (at most the current one and the 10 kept).
const ROUNDS_LIMIT_DEFAULT: usize = 10;
/// Bets a round carries in one answer unless asked otherwise, and at most: a busy round holds
/// tens of thousands (an operator's recall of one was tens of megabytes before it paged).
const BETS_LIMIT_DEFAULT: usize = 100;
const BETS_LIMIT_MAX: usize = 1_000;

#[derive(Serialize, ToSchema)]
pub struct TableOut {
    id: u32,
    game: String,
    /// idle (between rounds), open, closed, drawn or voiding.
    state: &'static str,
    /// The current round, if any.
    round_id: Option<u64>,
    /// When betting closes (RFC 3339, UTC, milliseconds), while a round is open or closing.
    closes_at: Option<String>,
    /// The table's currency (ledger code).
    currency: String,
    /// The spots bets may name (`bet` in a bet's spots).
    spots: Vec<String>,
    bet_min: u64,
    bet_max: u64,
    betting_window_ms: u32,
    draw_delay_ms: u32,
    /// How often an open round's running totals (`bets_total`) go to live screens, at most.
    bets_total_interval_ms: u32,
    limits: LimitsOut,
    /// A closed table opens no new round (the current one finishes).
    closed: bool,
    /// The wheel (or roulette's pockets) and the weights its draw uses: what a browser needs
    /// to draw the table and to recompute a round's outcome from its revealed seed.
    layout: LayoutOut,
    /// A live-studio table's studio (its results are signed with this key); null for a table
    /// drawn by the certified RNG.
    studio: Option<StudioOut>,
}

/// A table's limits, in minor units of its currency.
#[derive(Serialize, ToSchema)]
pub struct LimitsOut {
    /// Per spot, per bet.
    bet_min: u64,
    bet_max: u64,
    /// Sum of every stake in a round.
    round_stake_max: u64,
    /// Most one player is paid in one round.
    payout_max: u64,
    bets_per_round_max: u32,
}

/// A table's draw as `croupier_games::live::LiveLayout` describes it.
#[derive(Serialize, ToSchema)]
pub struct LayoutOut {
    /// Each equally likely: roulette's pockets `0`..`36`, or a wheel's segments clockwise
    /// (spot names, and a money wheel's multiplier symbols).
    #[schema(example = json!(["1", "2", "1", "5", "2x"]))]
    segments: Vec<String>,
    /// Money wheel: multiplier symbol → factor.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(example = json!({"2x": 2, "7x": 7}))]
    multipliers: BTreeMap<String, u64>,
    /// Money wheel: segments per number spot, in spot order (the pick once a spin's
    /// multiplier reached `win_cap`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    number_weights: Vec<u64>,
    /// Largest return per unit staked, stake included.
    win_cap: u64,
    /// Game-show wheel: the top slot's weight per spot (spot order), drawn first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    top_spot_weights: Vec<u64>,
    /// Game-show wheel: the top slot's multipliers, drawn second.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    top_multipliers: Vec<WeightedOut>,
}

#[derive(Serialize, ToSchema)]
pub struct WeightedOut {
    value: u64,
    weight: u64,
}

fn layout_out(layout: LiveLayout) -> LayoutOut {
    LayoutOut {
        segments: layout.segments,
        multipliers: layout.multipliers.into_iter().collect(),
        number_weights: layout.number_weights,
        win_cap: layout.win_cap,
        top_spot_weights: layout.top_spot_weights,
        top_multipliers: layout
            .top_multipliers
            .into_iter()
            .map(|(value, weight)| WeightedOut { value, weight })
            .collect(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpotIn {
    /// A spot of the table's game, as `GET /v1/tables` lists them.
    #[schema(example = "red")]
    bet: String,
    /// Minor units.
    #[schema(example = 100)]
    amount: U64In,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BetIn {
    /// The client's id for this bet: retrying it answers the original result.
    #[schema(example = "1")]
    bet_id: IdIn,
    #[schema(example = 4294967297u64)]
    round_id: U64In,
    /// 1 to 64 spots, each named once: accepted together or not at all.
    #[schema(min_items = 1, max_items = 64)]
    spots: Vec<SpotIn>,
}

impl BetIn {
    pub(crate) fn bet_id(&self) -> u128 {
        self.bet_id.0
    }
}

#[derive(Serialize, ToSchema)]
pub struct BetOut {
    bet_id: IdOut,
    round_id: u64,
    stake: u64,
    /// The player's available balance after the stake was taken.
    #[schema(value_type = u64)]
    balance: u128,
}

#[derive(Serialize, ToSchema)]
pub struct SpotOut {
    bet: String,
    amount: u64,
}

#[derive(Serialize, ToSchema)]
pub struct RoundBetOut {
    bet_id: IdOut,
    player_id: IdOut,
    spots: Vec<SpotOut>,
    stake: u64,
    /// Paid at settlement (the refund of a voided round); absent until settled.
    paid: Option<u64>,
    #[schema(value_type = u64)]
    balance_before: u128,
    /// After the settlement; absent until settled.
    #[schema(value_type = Option<u64>)]
    balance_after: Option<u128>,
}

#[derive(Serialize, ToSchema)]
pub struct RoundOut {
    round_id: u64,
    table_id: u32,
    /// open, closed, drawn, voiding, settled or voided.
    state: &'static str,
    opened_at: String,
    closes_at: String,
    /// `rng`: drawn by the certified generator, provably fair (commitment, seeds, nonce);
    /// `studio`: reported by the table's live studio, signed with its key.
    source: &'static str,
    /// SHA-256 of the server seed's hex text, published when the round opened (RNG rounds).
    commitment: Option<String>,
    /// The revealed server seed (hex) once drawn: SHA-256 of it is the commitment.
    server_seed: Option<String>,
    /// The provably-fair client seed and nonce the outcome was drawn with (RNG rounds).
    client_seed: Option<String>,
    nonce: Option<u32>,
    /// The studio's public key (hex) for a studio round, and its Ed25519 signature of the
    /// result once reported: the signed text is `croupier studio result v1 table {table_id}
    /// round {round_id} outcome {outcome}`.
    studio_public_key: Option<String>,
    studio_signature: Option<String>,
    /// The game's encoding of the outcome (hex), once drawn.
    outcome: Option<String>,
    stakes_total: u64,
    #[schema(value_type = u64)]
    paid_total: u128,
    /// A page of the round's bets in the order they were accepted: every bet for an operator,
    /// a player's own bets only.
    bets: Vec<RoundBetOut>,
    /// How many bets the caller sees in the round (all pages).
    bets_count: u64,
    /// Pass as `bets_after` to `GET /v1/rounds/{round_id}` for the next page; absent on the
    /// last one.
    bets_next: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct RoundsOut {
    /// Newest first: the current round, then the finished ones kept for recall.
    rounds: Vec<RoundOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RoundsQuery {
    /// 1 to 11, default 10.
    #[param(minimum = 1, maximum = 11)]
    pub limit: Option<u64>,
    /// Bets per round, 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub bets_limit: Option<u64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RoundQuery {
    /// The `bets_next` of the previous page; absent: from the round's first bet. A round holds
    /// at most 200,000 bets, so no cursor is larger.
    #[param(minimum = 0, maximum = 200000)]
    pub bets_after: Option<u64>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub bets_limit: Option<u64>,
}

/// Which of a round's bets an answer carries: from a position in the round's bet list (the
/// cursor stays valid while the round takes more bets: they only append), at most `limit`.
#[derive(Clone, Copy)]
struct BetsPage {
    after: usize,
    limit: usize,
}

impl BetsPage {
    fn new(after: Option<u64>, limit: Option<u64>) -> Result<BetsPage, ApiError> {
        let limit = match limit {
            None => BETS_LIMIT_DEFAULT,
            Some(n) if (1..=BETS_LIMIT_MAX as u64).contains(&n) => n as usize,
            Some(_) => return Err(ApiError::invalid_query("bets_limit must be 1 to 1000")),
        };
        // A position past this round's end is an empty last page; past any round's, a mistake.
        let after = after.unwrap_or(0);
        if after > u64::from(croupier_core::tables::BETS_PER_ROUND_LIMIT) {
            let message = "bets_after must be 0 to 200000 (a round holds at most 200,000 bets)";
            return Err(ApiError::invalid_query(message));
        }
        let after = after as usize;
        Ok(BetsPage { after, limit })
    }
}

/// The live tables, with their current round.
#[utoipa::path(
    get, path = crate::paths::ROUTE_TABLES, tag = "tables",
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = Vec<TableOut>),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 503, description = "Not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn list<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<OperatorOrOwnerRead>,
) -> Result<Response, ApiError> {
    let tables = Arc::clone(state.tables());
    let out = state
        .read(move |view| {
            view.ledger()
                .tables()
                .map(|table| table_out(table, &tables))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(json_response(StatusCode::OK, &out))
}

fn table_out(table: &Table, tables: &LiveTables) -> TableOut {
    let current = table.current.as_ref();
    let config = &table.config;
    let limits = &config.limits;
    TableOut {
        id: config.table_id,
        game: config.game.clone(),
        state: current.map_or("idle", |round| round.state.name()),
        round_id: current.map(|round| round.round_id),
        closes_at: current.map(|round| rfc3339(round.closes_at_ns)),
        currency: config.ledger.as_string(),
        spots: tables.games().spots(config),
        bet_min: limits.bet_min,
        bet_max: limits.bet_max,
        betting_window_ms: config.betting_window_ms,
        draw_delay_ms: config.draw_delay_ms,
        bets_total_interval_ms: config.bets_total_interval_ms,
        limits: LimitsOut {
            bet_min: limits.bet_min,
            bet_max: limits.bet_max,
            round_stake_max: limits.round_stake_max,
            payout_max: limits.payout_max,
            bets_per_round_max: limits.bets_per_round_max,
        },
        closed: config.closed,
        studio: config.studio.as_ref().map(StudioOut::from),
        layout: layout_out(
            tables
                .games()
                .for_config(config)
                .map(|live| live.layout())
                .unwrap_or_default(),
        ),
    }
}

/// A table's configuration as an operator sends it. Omitted fields take the defaults of a
/// `[[tables]]` entry in the config file.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TableConfigIn {
    /// A certified game that runs at live tables: money-wheel, game-show-wheel or roulette.
    #[schema(example = "roulette")]
    game: String,
    /// The currency (ledger code): bets come from the player's wallet in it.
    #[schema(schema_with = crate::schema::ledger_string, example = "EUR")]
    currency: String,
    /// 1 to 600000; default 15000.
    #[schema(minimum = 1, maximum = 600_000, example = 12_000)]
    betting_window_ms: Option<U32In>,
    /// Wait between the close and the draw (the clock-skew bound), at most 60000; default 500.
    #[schema(maximum = 60_000, example = 500)]
    draw_delay_ms: Option<U32In>,
    /// Ledger time between two `bets_total` messages of an open round (each goes to every
    /// screen watching the table), 100 to 60000; default 1000.
    #[schema(minimum = 100, maximum = 60_000, example = 1_000)]
    bets_total_interval_ms: Option<U32In>,
    #[serde(default)]
    limits: LimitsIn,
    /// A closed table opens no new round (the current one finishes); default false.
    #[serde(default)]
    closed: bool,
    /// Makes it a live-studio table: its outcomes come from this studio's signed results
    /// (`POST /v1/tables/{table_id}/results`), not the RNG. Roulette and money-wheel only.
    studio: Option<StudioIn>,
}

/// Minor units; 1 <= bet_min <= bet_max <= round_stake_max, payout_max >= 1.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsIn {
    /// Per spot, per bet; default 10.
    #[schema(example = 10)]
    bet_min: Option<U64In>,
    /// Default 50000.
    #[schema(example = 10_000)]
    bet_max: Option<U64In>,
    /// Sum of every stake in a round; default 100000000.
    round_stake_max: Option<U64In>,
    /// Most one player is paid in one round; default 50000000.
    payout_max: Option<U64In>,
    /// 1 to 200000; default 50000.
    #[schema(minimum = 1, maximum = 200_000)]
    bets_per_round_max: Option<U32In>,
}

/// Create a live table or change it (admin). Limits, window and draw delay apply from the next
/// round; the game and the currency change only between rounds (409 `round_in_progress`
/// meanwhile: retry once the round is settled, or close the table first).
#[utoipa::path(
    put, path = crate::paths::ROUTE_TABLE, tag = "tables",
    params(("table_id" = crate::schema::TableId, Path)),
    request_body = TableConfigIn,
    security(("operator_key" = [])),
    responses(
        (status = 200, description = "The table as the ledger now holds it", body = TableOut),
        (status = 400, description = "Malformed or invalid input (invalid_path, invalid_request)", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: an admin key is required", body = ErrorBody),
        (status = 404, description = "not_found: the path names no route (a table_id holding a slash)", body = ErrorBody),
        (status = 409, description = "round_in_progress: the game or currency of a table whose round is not finished", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "game_not_certified, game_not_live, table_config_invalid (window, delay, bets_total interval or limits out of range)", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn configure<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<TableAdmin>,
    path: ApiPath,
    ApiJson(request): ApiJson<TableConfigIn>,
) -> Result<Response, ApiError> {
    let table_id = table_id_in(&path)?;
    let (spec, closed) = spec_in(table_id, request)?;
    let config = state
        .tables()
        .games()
        .table_config(&spec, closed)
        .map_err(spec_error)?;
    let command = caller.attribute(Command::Table(TableCommand::Configure(config)));
    match state.commit(command).await? {
        CommandResult::Table(TableOutcome::Ok) => {}
        CommandResult::Table(outcome) => return Err(table_error(outcome)),
        other => return Err(ApiError::internal(format!("a table answered {other:?}"))),
    }
    let tables = Arc::clone(state.tables());
    let out = state
        .read(move |view| {
            let table = view.ledger().table(table_id)?;
            Some(table_out(table, &tables))
        })
        .await?
        .ok_or_else(|| ApiError::internal("a configured table is missing"))?;
    Ok(json_response(StatusCode::OK, &out))
}

/// The request as a table spec, with the config file's defaults for what it leaves out.
fn spec_in(table_id: TableId, request: TableConfigIn) -> Result<(TableSpec, bool), ApiError> {
    use crate::tables::defaults as d;
    let currency = parse_ledger(&request.currency)
        .map_err(|problem| ApiError::invalid_field(None, "currency", &problem))?;
    let limits = &request.limits;
    let spec = TableSpec {
        table_id,
        game: request.game,
        currency,
        betting_window_ms: request
            .betting_window_ms
            .map_or(d::BETTING_WINDOW_MS, |v| v.0),
        draw_delay_ms: request.draw_delay_ms.map_or(d::DRAW_DELAY_MS, |v| v.0),
        bets_total_interval_ms: request
            .bets_total_interval_ms
            .map_or(d::BETS_TOTAL_INTERVAL_MS, |v| v.0),
        limits: TableLimits {
            bet_min: limits.bet_min.map_or(d::LIMITS.bet_min, |v| v.0),
            bet_max: limits.bet_max.map_or(d::LIMITS.bet_max, |v| v.0),
            round_stake_max: limits
                .round_stake_max
                .map_or(d::LIMITS.round_stake_max, |v| v.0),
            payout_max: limits.payout_max.map_or(d::LIMITS.payout_max, |v| v.0),
            bets_per_round_max: limits
                .bets_per_round_max
                .map_or(d::LIMITS.bets_per_round_max, |v| v.0),
        },
        studio: request.studio.map(StudioIn::into_config).transpose()?,
    };
    Ok((spec, request.closed))
}

/// A configuration the node will not propose, as a named 422.
fn spec_error(error: TableSpecError) -> ApiError {
    let unprocessable =
        |code, message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message);
    match error {
        TableSpecError::Game(_, GameRefused::NotCertified(name)) => unprocessable(
            "game_not_certified",
            format!(
                "no certified game {:?} on this node (GET /v1/certification lists them)",
                crate::quote::input_prefix(&name)
            ),
        ),
        TableSpecError::Game(_, GameRefused::NotLive(refused)) => {
            unprocessable("game_not_live", refused.to_string())
        }
        TableSpecError::Game(_, GameRefused::NotAStudioGame(refused)) => {
            unprocessable("game_not_studio", refused.to_string())
        }
        TableSpecError::Config(_, error) => {
            unprocessable("table_config_invalid", error.to_string())
        }
        TableSpecError::Repeated(id) => ApiError::internal(format!("table {id} repeated")),
    }
}

/// Place a bet on the table's current round (the player's own session only).
#[utoipa::path(
    post, path = crate::paths::ROUTE_TABLE_BETS, tag = "tables",
    params(("table_id" = crate::schema::TableId, Path)),
    request_body = BetIn,
    security(("player_session" = [])),
    responses(
        (status = 200, description = "Accepted (or the original answer to a retried bet_id)", body = BetOut),
        (status = 400, description = "Malformed or invalid input", body = ErrorBody),
        (status = 401, description = "unauthorized: a player session is required", body = ErrorBody),
        (status = 402, description = "insufficient_funds, with the current balance", body = ErrorBody),
        (status = 403, description = "forbidden (not a player session) or player_account_closed", body = ErrorBody),
        (status = 404, description = "table_not_found or round_not_found", body = ErrorBody),
        (status = 409, description = "round_closed or bet_conflict (the bet_id was used for another bet)", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "unknown_spot, spots_invalid, bet_below_min, bet_above_max, round_stake_limit, too_many_bets, no_wallet_in_currency", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn bet<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerOnly>,
    path: ApiPath,
    ApiJson(request): ApiJson<BetIn>,
) -> Result<Response, ApiError> {
    let table_id = table_id_in(&path)?;
    // Protected mode lets a local caller through every policy; only a player can bet.
    let player_id = caller
        .player()
        .ok_or_else(|| unauthorized("a player session is required"))?;
    let out = place_bet(&state, table_id, player_id, request).await?;
    Ok(json_response(StatusCode::OK, &out))
}

/// Places `request` for `player_id` on the table's round: the answer of a bet over HTTP and
/// over the betting socket (`routes::bet_socket`) alike.
pub(crate) async fn place_bet<C: Consensus>(
    state: &AppState<C>,
    table_id: TableId,
    player_id: u128,
    request: BetIn,
) -> Result<BetOut, ApiError> {
    let bet = bet_in(state, table_id, player_id, request).await?;
    let (bet_id, round_id) = (bet.bet_id, bet.round_id);
    let stake = bet.spots.iter().map(|s| s.amount).sum::<u64>();
    match state.commit(Command::Table(TableCommand::Bet(bet))).await? {
        CommandResult::Table(TableOutcome::BetAccepted { balance }) => Ok(BetOut {
            bet_id: IdOut(bet_id),
            round_id,
            stake,
            balance,
        }),
        CommandResult::Table(outcome) => Err(table_error(outcome)),
        other => Err(ApiError::internal(format!("a bet answered {other:?}"))),
    }
}

/// The request as a ledger bet: spots named by the game of the bet's round, on a round of
/// this table.
async fn bet_in<C: Consensus>(
    state: &AppState<C>,
    table_id: TableId,
    player_id: u128,
    request: BetIn,
) -> Result<TableBet, ApiError> {
    let round_id: RoundId = request.round_id.0;
    let live = round_game(state, table_id, round_id).await?;
    if request.bet_id.0 == 0 {
        return Err(ApiError::invalid_field(None, "bet_id", "must not be 0"));
    }
    if request.spots.is_empty() || request.spots.len() > SPOTS_PER_BET_MAX {
        return Err(ApiError::invalid_field(
            None,
            "spots",
            "must hold 1 to 64 spots",
        ));
    }
    let Some(live) = live else {
        return Err(table_error(TableOutcome::RoundNotFound));
    };
    let spots = request
        .spots
        .iter()
        .map(|spot| {
            let index = live
                .spot_index(&spot.bet)
                .ok_or_else(|| unknown_spot(&spot.bet))?;
            Ok(SpotStake {
                spot: index,
                amount: spot.amount.0,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(TableBet {
        bet_id: request.bet_id.0,
        player_id,
        round_id,
        spots,
    })
}

/// The game a bet on `round_id` names spots of: None if the round is neither the table's
/// current round nor a kept one (the ledger would refuse it), an error if there is no such
/// table. A game changes only between rounds, so the game read while the round is current is
/// the one the round runs until it finishes, and a round not yet open is never answered with
/// a game it might not run. This node's state first (cheap); the leader's if it lags.
async fn round_game<C: Consensus>(
    state: &AppState<C>,
    table_id: TableId,
    round_id: RoundId,
) -> Result<Option<Arc<LiveTable>>, ApiError> {
    let lookup = |tables: Arc<LiveTables>| {
        move |view: &LedgerView<'_>| {
            let table = view.ledger().table(table_id)?;
            let kept = round_parts(round_id).0 == table_id && table.round(round_id).is_some();
            Some(kept.then(|| tables.games().for_config(&table.config).cloned()))
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
        Some(None) => Ok(None),
        Some(Some(Some(live))) => Ok(Some(live)),
        Some(Some(None)) => Err(game_not_run_here()),
    }
}

fn unknown_spot(name: &str) -> ApiError {
    let message = format!(
        "the game has no spot {:?}",
        crate::quote::input_prefix(name)
    );
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_spot", message)
}

/// Game recall: a table's current round and its last finished rounds, newest first.
#[utoipa::path(
    get, path = crate::paths::ROUTE_TABLE_ROUNDS, tag = "tables",
    params(("table_id" = crate::schema::TableId, Path), RoundsQuery),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = RoundsOut),
        (status = 400, description = "invalid_path or invalid_query", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "table_not_found", body = ErrorBody),
        (status = 503, description = "Not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn rounds<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<OperatorOrOwnerRead>,
    path: ApiPath,
    ApiQuery(query): ApiQuery<RoundsQuery>,
) -> Result<Response, ApiError> {
    let table_id = table_id_in(&path)?;
    let limit = match query.limit {
        None => ROUNDS_LIMIT_DEFAULT,
        Some(n @ 1..=11) => n as usize,
        Some(_) => return Err(ApiError::invalid_query("limit must be 1 to 11")),
    };
    let page = BetsPage::new(None, query.bets_limit)?;
    let viewer = caller.player();
    let tables = Arc::clone(state.tables());
    let rounds = state
        .read(move |view| {
            let table = view.ledger().table(table_id)?;
            let spots = tables.games().spots(&table.config);
            let out = table
                .rounds_newest_first()
                .take(limit)
                .map(|r| round_out(r, viewer, &spots, page));
            Some(out.collect::<Vec<_>>())
        })
        .await?
        .ok_or_else(|| table_error(TableOutcome::TableNotFound))?;
    Ok(json_response(StatusCode::OK, &RoundsOut { rounds }))
}

/// One round: outcome, proof, bets, payouts and balances (a player's own bets only).
#[utoipa::path(
    get, path = crate::paths::ROUTE_ROUND, tag = "tables",
    params(("round_id" = crate::schema::RoundId, Path), RoundQuery),
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = RoundOut),
        (status = 400, description = "invalid_path or invalid_query", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "round_not_found (not current and not among the last kept)", body = ErrorBody),
        (status = 503, description = "Not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn round<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<OperatorOrOwnerRead>,
    path: ApiPath,
    ApiQuery(query): ApiQuery<RoundQuery>,
) -> Result<Response, ApiError> {
    let page = BetsPage::new(query.bets_after, query.bets_limit)?;
    let round_id: RoundId = path
        .0
        .parse()
        .map_err(|_| ApiError::invalid_path("round_id must be an integer from 0 to 2^64-1"))?;
    let viewer = caller.player();
    let tables = Arc::clone(state.tables());
    let round = state
        .read(move |view| {
            let table = view.ledger().table(round_parts(round_id).0)?;
            let spots = tables.games().spots(&table.config);
            table
                .round(round_id)
                .map(|r| round_out(r, viewer, &spots, page))
        })
        .await?
        .ok_or_else(|| table_error(TableOutcome::RoundNotFound))?;
    Ok(json_response(StatusCode::OK, &round))
}

fn round_out(round: &Round, viewer: Option<u128>, spots: &[String], page: BetsPage) -> RoundOut {
    let (table_id, number) = round_parts(round.round_id);
    let seen = |bet: &&PlacedBet| viewer.is_none_or(|player| player == bet.player_id);
    let bets_count = match viewer {
        None => round.bets.len(),
        Some(_) => round.bets.iter().filter(seen).count(),
    };
    let mut shown = (page.after..)
        .zip(round.bets.iter_from(page.after))
        .filter(|(_, bet)| seen(bet));
    let bets: Vec<RoundBetOut> = shown
        .by_ref()
        .take(page.limit)
        .map(|(_, bet)| bet_out(bet, spots))
        .collect();
    // The next page starts at the first bet the caller sees and this one did not show.
    let bets_next = shown.next().map(|(position, _)| position as u64);
    let draw = round.draw.as_ref();
    let rng = round.studio.is_none();
    RoundOut {
        round_id: round.round_id,
        table_id,
        state: round.state.name(),
        opened_at: rfc3339(round.opened_at_ns),
        closes_at: rfc3339(round.closes_at_ns),
        source: if rng { SOURCE_RNG } else { SOURCE_STUDIO },
        commitment: rng.then(|| hex::encode(round.commitment)),
        server_seed: draw.and_then(|d| d.server_seed()).map(hex::encode),
        client_seed: rng.then(|| crate::tables::scheduler::client_seed(table_id)),
        nonce: rng.then_some(number),
        studio_public_key: round.studio.map(|studio| hex::encode(studio.public_key)),
        studio_signature: draw.and_then(|d| d.studio_signature()).map(hex::encode),
        outcome: draw.map(|d| hex::encode(&d.outcome)),
        stakes_total: round.stakes_total,
        paid_total: round.paid_total,
        bets,
        bets_count: bets_count as u64,
        bets_next,
    }
}

fn bet_out(bet: &PlacedBet, spots: &[String]) -> RoundBetOut {
    let spot_name = |spot: u16| {
        spots
            .get(usize::from(spot))
            .cloned()
            .unwrap_or_else(|| spot.to_string())
    };
    RoundBetOut {
        bet_id: IdOut(bet.bet_id),
        player_id: IdOut(bet.player_id),
        spots: bet
            .spots
            .iter()
            .map(|s| SpotOut {
                bet: spot_name(s.spot),
                amount: s.amount,
            })
            .collect(),
        stake: bet.stake,
        paid: bet.paid,
        balance_before: bet.balance_after_bet + u128::from(bet.stake),
        balance_after: bet.paid.map(|_| bet.balance_after_settlement),
    }
}

fn rfc3339(ns: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

#[cfg(test)]
mod tests {
    use super::BetsPage;

    /// Regression (schemathesis ST202, seed 8): the document allowed any integer for
    /// `bets_after` while the server refused one past u64 with a deserialisation message. The
    /// document now bounds it by the most bets a round holds, and the server says so.
    #[test]
    fn a_bets_cursor_is_accepted_up_to_the_most_bets_a_round_holds() {
        assert!(BetsPage::new(Some(200_000), None).is_ok());
        assert!(BetsPage::new(Some(0), Some(1_000)).is_ok());
        let refused = BetsPage::new(Some(200_001), None).err().expect("refused");
        assert_eq!(refused.status, axum::http::StatusCode::BAD_REQUEST);
    }
}
