//! The route table. Handlers live in the submodules; what they share in `crate::state`, the
//! route templates in `crate::paths`.

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, post};
use axum::Router;
use croupier_cluster::Consensus;

use crate::edge::EdgeLimits;
use crate::telemetry;

pub mod cluster;
pub mod events;
pub mod ledger;
pub mod ops;
pub mod players;
pub mod wallet;

pub use crate::paths::*;
pub use crate::state::AppState;

/// The whole API. Unknown routes answer 404 JSON, wrong methods 405 JSON. Every route runs
/// under the edge's request deadline and concurrency cap (inside telemetry, so refusals are
/// counted like any answer).
pub fn router<C: Consensus>(state: AppState<C>, limits: &EdgeLimits) -> Router {
    telemetry::prometheus();
    let body_size_max_bytes = state.body_size_max_bytes();
    let routes = Router::new()
        .route(ROUTE_HEALTHZ, get(ops::healthz::<C>))
        .route(ROUTE_METRICS, get(ops::metrics))
        .route(ROUTE_OPENAPI, get(crate::openapi::serve))
        .route(ROUTE_ACCOUNTS, post(ledger::create_accounts::<C>))
        .route(ROUTE_ACCOUNT, get(ledger::get_account::<C>))
        .route(
            ROUTE_ACCOUNT_TRANSFERS,
            get(ledger::get_account_transfers::<C>),
        )
        .route(ROUTE_TRANSFERS, post(ledger::create_transfers::<C>))
        .route(ROUTE_TRANSFER, get(ledger::get_transfer::<C>))
        .route(ROUTE_LEDGER_HOUSE, get(ledger::get_house_account::<C>))
        .route(ROUTE_WALLET_BET, post(wallet::bet::<C>))
        .route(ROUTE_WALLET_WIN, post(wallet::win::<C>))
        .route(ROUTE_WALLET_ROLLBACK, post(wallet::rollback::<C>))
        .route(ROUTE_WALLET_BALANCE, get(wallet::balance::<C>))
        .route(ROUTE_EVENTS, get(events::list::<C>))
        .route(ROUTE_EVENTS_STREAM, get(events::stream::<C>))
        .route(ROUTE_CLUSTER_STATUS, get(cluster::status::<C>))
        .route(ROUTE_CLUSTER_NODES, post(cluster::add_node::<C>))
        .route(ROUTE_CLUSTER_NODE, delete(cluster::remove_node::<C>))
        .route(ROUTE_CLUSTER_LEADER, post(cluster::transfer_leader::<C>))
        .route(ROUTE_PLAYERS, post(players::create::<C>))
        .route(ROUTE_PLAYERS_LOGIN, post(players::login::<C>))
        .route(ROUTE_PLAYERS_LOGOUT, post(players::logout::<C>))
        .route(ROUTE_PLAYERS_ME, get(players::me::<C>))
        .route(ROUTE_PLAYER, get(players::get::<C>))
        .route(ROUTE_PLAYER_SESSIONS, delete(players::revoke_sessions::<C>))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_size_max_bytes))
        .layer(middleware::from_fn(read_consistency))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::authenticate::authenticate::<C>,
        ));
    crate::edge::request_limits(routes, limits)
        .layer(middleware::from_fn(telemetry::observe))
        .with_state(state)
}

/// Header by which a read opts in to this node's own, possibly stale, state.
pub const READ_CONSISTENCY_HEADER: &str = "x-read-consistency";

/// Reads are linearizable unless the request says `X-Read-Consistency: stale`; anything else
/// in that header is refused so a typo does not silently give the default.
async fn read_consistency(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let stale = match request.headers().get(READ_CONSISTENCY_HEADER) {
        None => false,
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"stale") => true,
        Some(value) if value.as_bytes().eq_ignore_ascii_case(b"linearizable") => false,
        Some(_) => {
            return crate::error::ApiError::invalid_request(
                "X-Read-Consistency must be \"linearizable\" (the default) or \"stale\"",
            )
            .into_response()
        }
    };
    crate::state::READ_STALE
        .scope(stale, next.run(request))
        .await
}
