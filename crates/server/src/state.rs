//! What every handler shares: consensus for reads and events, the group-commit queue for
//! writes, and the stop signal of open streams.

use std::sync::Arc;

use croupier_cluster::{Consensus, EventPage, LedgerView};
use croupier_core::{Command, CommandResult};

use crate::error::ApiError;
use crate::group_commit::{CommitError, Committer};

/// What every handler shares: consensus for reads, the group-commit queue for writes.
/// axum clones the state for every request, so it is one `Arc`.
pub struct AppState<C> {
    shared: Arc<Shared<C>>,
}

struct Shared<C> {
    consensus: C,
    auth: crate::auth::Auth,
    committer: Committer,
    body_size_max_bytes: usize,
    /// The certified game definitions, for seeded verification.
    games: Arc<croupier_games::certification::CertifiedGames>,
    /// Set once the server stops: open event streams end, so the graceful drain does not
    /// wait the whole drain timeout for streams that never finish by themselves.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The live tables this node runs (their games, for spot names).
    tables: Arc<crate::tables::LiveTables>,
    /// The live push's messages and subscribers.
    live: Arc<crate::live::hub::LiveHub>,
    /// Trusted identity providers and the self-exclusion register.
    compliance: Arc<crate::compliance::ComplianceConfig>,
    /// The banks, if any are configured.
    payments: Option<Arc<crate::payments::Payments>>,
    webhooks: Option<Arc<crate::webhooks::Webhooks>>,
}

impl<C> Clone for AppState<C> {
    fn clone(&self) -> Self {
        AppState {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: Consensus> AppState<C> {
    pub fn new(
        consensus: C,
        committer: Committer,
        body_size_max_bytes: usize,
        auth: crate::auth::Auth,
        games: Arc<croupier_games::certification::CertifiedGames>,
    ) -> Self {
        AppState {
            shared: Arc::new(Shared {
                consensus,
                auth,
                committer,
                body_size_max_bytes,
                games,
                stopping: tokio::sync::watch::channel(false).0,
                tables: Arc::default(),
                // Replaced by `with_live` when served; this one needs no threads of its own.
                live: crate::live::hub::LiveHub::new(crate::live::limits::LiveLimits {
                    threads: 0,
                    ..Default::default()
                }),
                compliance: Arc::default(),
                payments: None,
                webhooks: None,
            }),
        }
    }

    /// The live tables this node runs; call before the state is cloned.
    pub fn with_tables(mut self, tables: Arc<crate::tables::LiveTables>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("tables are set before the state is shared")
            .tables = tables;
        self
    }

    /// The live push hub; call before the state is cloned.
    pub fn with_live(mut self, hub: Arc<crate::live::hub::LiveHub>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("the hub is set before the state is shared")
            .live = hub;
        self
    }

    /// Trusted identity providers and the register; call before the state is cloned.
    pub fn with_compliance(mut self, config: Arc<crate::compliance::ComplianceConfig>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("compliance settings are set before the state is shared")
            .compliance = config;
        self
    }

    /// The banks; call before the state is cloned.
    pub fn with_payments(mut self, payments: Option<Arc<crate::payments::Payments>>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("payments are set before the state is shared")
            .payments = payments;
        self
    }

    pub fn with_webhooks(mut self, webhooks: Option<Arc<crate::webhooks::Webhooks>>) -> Self {
        Arc::get_mut(&mut self.shared)
            .expect("webhooks are set before the state is shared")
            .webhooks = webhooks;
        self
    }

    pub(crate) fn webhooks(&self) -> Option<&Arc<crate::webhooks::Webhooks>> {
        self.shared.webhooks.as_ref()
    }

    pub(crate) fn payments(&self) -> Option<&Arc<crate::payments::Payments>> {
        self.shared.payments.as_ref()
    }

    pub(crate) fn compliance(&self) -> &crate::compliance::ComplianceConfig {
        &self.shared.compliance
    }

    pub(crate) fn live_hub(&self) -> Arc<crate::live::hub::LiveHub> {
        Arc::clone(&self.shared.live)
    }

    pub(crate) fn tables(&self) -> &Arc<crate::tables::LiveTables> {
        &self.shared.tables
    }

    /// The node's certified game definitions.
    pub(crate) fn games(&self) -> &croupier_games::certification::CertifiedGames {
        &self.shared.games
    }

    /// Ends every open event stream (now, or as soon as it has nothing ready to send).
    pub(crate) fn stop_streams(&self) {
        self.shared.stopping.send_replace(true);
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.shared.stopping.borrow()
    }

    /// Resolves once `stop_streams` was called.
    pub(crate) async fn stopping(&self) {
        let mut stopping = self.shared.stopping.subscribe();
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    pub(crate) fn auth(&self) -> &crate::auth::Auth {
        &self.shared.auth
    }

    /// Runs `read` against this node's applied state, without asking the leader (for
    /// authentication: a session is checked on every request, a round trip each would double
    /// the cost of a follower's reads; a logout reaches followers within replication lag).
    pub(crate) async fn read_stale<R, F>(&self, read: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&LedgerView<'_>) -> R + Send + 'static,
    {
        self.shared
            .consensus
            .read_stale(read)
            .await
            .map_err(|error| ApiError::from_propose(&error))
    }

    pub fn body_size_max_bytes(&self) -> usize {
        self.shared.body_size_max_bytes
    }

    pub(crate) fn health(&self) -> croupier_cluster::NodeHealth {
        self.shared.consensus.health()
    }

    /// Queues `command` for the next log entry and waits for its result.
    pub(crate) async fn commit(&self, command: Command) -> Result<CommandResult, ApiError> {
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
    pub(crate) async fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<EventPage, ApiError> {
        self.shared
            .consensus
            .events_after(after, limit)
            .await
            .map_err(ApiError::from_read)
    }

    /// Resolves once an event after `after` is committed; `false` if the server stops first.
    pub(crate) async fn wait_for_event_after(&self, after: u64) -> bool {
        tokio::select! {
            () = self.shared.consensus.wait_for_event_after(after) => true,
            () = self.stopping() => false,
        }
    }

    /// Runs `read` against the applied ledger: linearizable (a follower asks the leader for a
    /// read index first), or this node's own state when the request opted in to stale reads.
    pub(crate) async fn read<R, F>(&self, read: F) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&LedgerView<'_>) -> R + Send + 'static,
    {
        let stale = READ_STALE.try_with(|stale| *stale).unwrap_or(false);
        let consensus = &self.shared.consensus;
        let outcome = if stale {
            consensus.read_stale(read).await
        } else {
            consensus.read(read).await
        };
        outcome.map_err(|error| ApiError::from_propose(&error))
    }

    /// This node's state first (cheap); the linearizable read only when `settled` says the
    /// stale answer may just be lagging: something created a moment ago through the leader,
    /// not yet applied here. Requests that find what they look for never pay for the leader.
    pub(crate) async fn read_stale_then_fresh<R, F>(
        &self,
        read: impl Fn() -> F,
        settled: impl Fn(&R) -> bool,
    ) -> Result<R, ApiError>
    where
        R: Send + 'static,
        F: FnOnce(&LedgerView<'_>) -> R + Send + 'static,
    {
        let found = self.read_stale(read()).await?;
        if settled(&found) {
            return Ok(found);
        }
        self.read(read()).await
    }

    pub(crate) fn consensus(&self) -> &C {
        &self.shared.consensus
    }
}

tokio::task_local! {
    /// Set for a request that sent `X-Read-Consistency: stale` (see `routes::read_consistency`).
    pub(crate) static READ_STALE: bool;
}
