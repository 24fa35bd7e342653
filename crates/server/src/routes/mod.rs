//! The route table and the state every handler shares.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use croupier_cluster::{Consensus, EventPage, LedgerView};
use croupier_core::{Command, CommandResult};

use crate::error::ApiError;
use crate::group_commit::{CommitError, Committer};
use crate::telemetry;

pub mod events;
pub mod ledger;
pub mod ops;
pub mod wallet;

pub const ROUTE_HEALTHZ: &str = "/healthz";
pub const ROUTE_METRICS: &str = "/metrics";
pub const ROUTE_OPENAPI: &str = "/v1/openapi.json";
pub const ROUTE_ACCOUNTS: &str = "/v1/accounts";
pub const ROUTE_ACCOUNT: &str = "/v1/accounts/{id}";
pub const ROUTE_ACCOUNT_TRANSFERS: &str = "/v1/accounts/{id}/transfers";
pub const ROUTE_TRANSFERS: &str = "/v1/transfers";
pub const ROUTE_TRANSFER: &str = "/v1/transfers/{id}";
pub const ROUTE_LEDGER_HOUSE: &str = "/v1/ledgers/{ledger}/house";
pub const ROUTE_WALLET_BET: &str = "/v1/wallet/bet";
pub const ROUTE_WALLET_WIN: &str = "/v1/wallet/win";
pub const ROUTE_WALLET_ROLLBACK: &str = "/v1/wallet/rollback";
pub const ROUTE_WALLET_BALANCE: &str = "/v1/wallet/{player_id}/balance";
pub const ROUTE_EVENTS: &str = "/v1/events";
pub const ROUTE_EVENTS_STREAM: &str = "/v1/events/stream";

const ROUTES: &[&str] = &[
    ROUTE_HEALTHZ,
    ROUTE_METRICS,
    ROUTE_OPENAPI,
    ROUTE_ACCOUNTS,
    ROUTE_ACCOUNT,
    ROUTE_ACCOUNT_TRANSFERS,
    ROUTE_TRANSFERS,
    ROUTE_TRANSFER,
    ROUTE_LEDGER_HOUSE,
    ROUTE_WALLET_BET,
    ROUTE_WALLET_WIN,
    ROUTE_WALLET_ROLLBACK,
    ROUTE_WALLET_BALANCE,
    ROUTE_EVENTS,
    ROUTE_EVENTS_STREAM,
];

/// The route template as a static label for metrics (no allocation per request).
pub fn route_label(template: &str) -> &'static str {
    ROUTES
        .iter()
        .copied()
        .find(|route| *route == template)
        .unwrap_or("other")
}

/// What every handler shares: consensus for reads, the group-commit queue for writes.
/// axum clones the state for every request, so it is one `Arc`.
pub struct AppState<C> {
    shared: Arc<Shared<C>>,
}

struct Shared<C> {
    consensus: C,
    committer: Committer,
    body_size_max_bytes: usize,
    /// Set once the server stops: open event streams end, so the graceful drain does not
    /// wait the whole drain timeout for streams that never finish by themselves.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl<C> Clone for AppState<C> {
    fn clone(&self) -> Self {
        AppState {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: Consensus> AppState<C> {
    pub fn new(consensus: C, committer: Committer, body_size_max_bytes: usize) -> Self {
        AppState {
            shared: Arc::new(Shared {
                consensus,
                committer,
                body_size_max_bytes,
                stopping: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    /// Ends every open event stream (now, or as soon as it has nothing ready to send).
    pub(crate) fn stop_streams(&self) {
        self.shared.stopping.send_replace(true);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.shared.stopping.borrow()
    }

    /// Resolves once `stop_streams` was called.
    async fn stopping(&self) {
        let mut stopping = self.shared.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    pub fn body_size_max_bytes(&self) -> usize {
        self.shared.body_size_max_bytes
    }

    pub(crate) fn health(&self) -> croupier_cluster::NodeHealth {
        self.shared.consensus.health()
    }

    /// Queues `command` for the next log entry and waits for its result.
    async fn commit(&self, command: Command) -> Result<CommandResult, ApiError> {
        self.shared
            .committer
            .commit(command)
            .await
            .map_err(|error| match error {
                CommitError::Overloaded => ApiError::overloaded(),
                CommitError::Stopped => {
                    ApiError::from_propose(&croupier_cluster::ProposeError::ShuttingDown)
                }
                CommitError::Propose(error) => ApiError::from_propose(&error),
            })
    }

    /// Committed events after `after`.
    async fn events_after(&self, after: u64, limit: usize) -> Result<EventPage, ApiError> {
        self.shared
            .consensus
            .events_after(after, limit)
            .await
            .map_err(ApiError::from_read)
    }

    /// Resolves once an event after `after` is committed; `false` if the server stops first.
    async fn wait_for_event_after(&self, after: u64) -> bool {
        tokio::select! {
            () = self.shared.consensus.wait_for_event_after(after) => true,
            () = self.stopping() => false,
        }
    }

    /// Runs `read` against the applied ledger.
    async fn read<R, F>(&self, read: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&LedgerView<'_>) -> R + Send + 'static,
    {
        self.shared
            .consensus
            .read(read)
            .await
            .map_err(|error| ApiError::from_propose(&error))
    }
}

/// The whole API. Unknown routes answer 404 JSON, wrong methods 405 JSON.
pub fn router<C: Consensus>(state: AppState<C>) -> Router {
    telemetry::prometheus();
    let body_size_max_bytes = state.body_size_max_bytes();
    Router::new()
        .route(ROUTE_HEALTHZ, get(ops::healthz::<C>))
        .route(ROUTE_METRICS, get(ops::metrics))
        .route(ROUTE_OPENAPI, get(ops::openapi))
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
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_size_max_bytes))
        .layer(middleware::from_fn(telemetry::observe))
        .with_state(state)
}
