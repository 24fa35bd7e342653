//! Croupier's HTTP API: routes, JSON shapes and errors, group commit of concurrent requests
//! into one log entry, the OpenAPI document and Prometheus metrics.
//!
//! It is the only crate that knows HTTP. It must not know: on-disk formats or openraft.
//!
//! Modules (mini-redis style): `wire` parses and prints JSON, `binary` decodes and encodes the
//! 128-byte batch records, `extract` turns bad requests into our JSON errors, `routes` holds
//! the handlers (they return values, never panic), `group_commit` coalesces concurrent writes,
//! `telemetry` counts and times requests, `quote` bounds the input an error message echoes,
//! `schema` writes the exact JSON Schemas the OpenAPI document gives the wire types.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use croupier_cluster::{ClusterError, Consensus, Node, NodeConfig};
use croupier_games::certification::{CertificationError, CertifiedGames, PublicKey};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod auth;
mod authenticate;
pub mod binary;
mod certification;
pub mod compliance;
mod cursor;
mod edge;
mod error;
mod extract;
pub mod group_commit;
pub mod live;
mod openapi;
mod paths;
pub mod payments;
mod protocol_errors;
mod quote;
mod routes;
mod schema;
mod state;
pub mod tables;
mod telemetry;
mod ui;
pub mod webhooks;
pub mod wire;

pub use edge::EdgeLimits;
pub use error::ApiError;
pub use group_commit::GroupCommitConfig;
pub use openapi::ApiDoc;
pub use routes::router;
pub use state::AppState;

/// The keys file's name in the data directory (its default place).
pub const KEYS_FILE_NAME: &str = "keys.toml";

/// Largest request body; 8189 transfers with decimal-string ids fit with room to spare.
pub const BODY_SIZE_MAX_BYTES_DEFAULT: usize = 4 << 20;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub node: NodeConfig,
    pub listen: SocketAddr,
    pub group_commit: GroupCommitConfig,
    pub body_size_max_bytes: usize,
    /// On shutdown, how long in-flight requests may take before their connections are cut.
    pub shutdown_drain_timeout_ms: u64,
    /// Timeouts and caps of the HTTP listener.
    pub edge: EdgeLimits,
    /// Keys, sessions and rate limits.
    pub auth: auth::AuthConfig,
    /// Live tables this node runs (their rounds are proposed by the leader's scheduler).
    pub tables: Vec<tables::TableSpec>,
    /// The certified game definitions this node runs (`croupier serve` verifies them against
    /// its trusted keys first). None: the embedded ones, verified against the development lab
    /// key at `start`.
    pub games: Option<Arc<CertifiedGames>>,
    /// Bounds of the live push (`GET /v1/live`).
    pub live: live::LiveLimits,
    /// Trusted identity providers and the national self-exclusion register.
    pub compliance: compliance::ComplianceConfig,
    /// Banks (deposits and withdrawals), the router's settings and the driver's pace.
    pub payments: payments::PaymentsConfig,
    /// The operator's systems that hear of every payment's change.
    pub webhooks: webhooks::WebhooksConfig,
}

impl ServeConfig {
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        let data_dir = data_dir.into();
        let auth = auth::AuthConfig {
            keys_file: Some(data_dir.join(KEYS_FILE_NAME)),
            ..auth::AuthConfig::default()
        };
        ServeConfig {
            auth,
            node: NodeConfig::new(data_dir),
            listen,
            group_commit: GroupCommitConfig::default(),
            body_size_max_bytes: BODY_SIZE_MAX_BYTES_DEFAULT,
            shutdown_drain_timeout_ms: 10_000,
            edge: EdgeLimits::default(),
            tables: Vec::new(),
            games: None,
            live: live::LiveLimits::default(),
            compliance: compliance::ComplianceConfig::default(),
            payments: payments::PaymentsConfig::default(),
            webhooks: webhooks::WebhooksConfig::default(),
        }
    }

    fn validate(&self) -> Result<(), ServerError> {
        let group_commit = &self.group_commit;
        if group_commit.queue_depth_max == 0 {
            return Err(ServerError::Config("queue_depth_max must be at least 1"));
        }
        if group_commit.queue_bytes_max < group_commit::largest_command_bytes() {
            return Err(ServerError::Config(
                "queue_bytes_max must hold one full request (8189 transfers, about 0.8 MB)",
            ));
        }
        if group_commit.entry_items_max < croupier_core::BATCH_ITEMS_MAX {
            return Err(ServerError::Config(
                "entry_items_max must hold one full request (8189 items)",
            ));
        }
        if group_commit.proposals_in_flight_max == 0 {
            return Err(ServerError::Config(
                "proposals_in_flight_max must be at least 1",
            ));
        }
        if self.body_size_max_bytes == 0 {
            return Err(ServerError::Config(
                "body_size_max_bytes must be at least 1",
            ));
        }
        self.validate_edge()?;
        self.webhooks.validate()?;
        Ok(())
    }

    fn validate_edge(&self) -> Result<(), ServerError> {
        let edge = &self.edge;
        if edge.header_read_timeout_ms == 0 || edge.request_deadline_ms == 0 {
            return Err(ServerError::Config(
                "header_read_timeout_ms and request_deadline_ms must be at least 1",
            ));
        }
        if edge.connections_max == 0 || edge.requests_in_flight_max == 0 {
            return Err(ServerError::Config(
                "connections_max and requests_in_flight_max must be at least 1",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("node failed to start")]
    Node(#[from] ClusterError),
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    #[error(transparent)]
    Keys(#[from] auth::keys::KeyFileError),
    #[error("the game definitions are not certified: {0}")]
    Games(#[from] CertificationError),
    #[error(
        "refusing to listen on {addr} without an operator key: create one with \
         `croupier keys create --role admin` (or listen on a loopback address)"
    )]
    Unprotected { addr: SocketAddr },
    #[error(transparent)]
    Tables(#[from] tables::TableSpecError),
    #[error("cannot start the AML pipeline's thread: {0}")]
    AmlThread(io::Error),
    #[error(transparent)]
    Payments(#[from] payments::PaymentsError),
    #[error(transparent)]
    Webhooks(#[from] webhooks::WebhooksError),
    #[error("cannot start the webhooks' thread: {0}")]
    WebhooksThread(io::Error),
}

/// A node serving the API. Stop it with `shutdown`.
pub struct RunningServer {
    node: Node,
    serving: Serving,
    /// The AML scoring pipeline (a durable feed consumer) on its thread, if enabled: resolves
    /// when it has stopped.
    aml: Option<tokio::sync::oneshot::Receiver<()>>,
    /// The webhooks' sender on its thread, if any endpoint is configured.
    webhooks: Option<tokio::sync::oneshot::Receiver<()>>,
    stop_aml: tokio::sync::watch::Sender<bool>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.serving.local_addr
    }

    /// Stops accepting, lets in-flight requests finish, commits what is queued, then stops
    /// the node. An error means the node did not stop cleanly (the caller exits non-zero).
    pub async fn shutdown(self) -> Result<(), ClusterError> {
        self.stop_aml.send_replace(true);
        if let Some(aml) = self.aml {
            // It stops between batches; one waiting on a proposal is cut (its batch was not
            // acknowledged, so it comes again, with the same case ids).
            if tokio::time::timeout(Duration::from_secs(5), aml)
                .await
                .is_err()
            {
                tracing::warn!("the AML pipeline did not stop in time");
            }
        }
        if let Some(webhooks) = self.webhooks {
            // Deliveries cut short come again after a restart (their cursor was not saved).
            if tokio::time::timeout(Duration::from_secs(5), webhooks)
                .await
                .is_err()
            {
                tracing::warn!("the webhooks' sender did not stop in time");
            }
        }
        self.serving.stop().await;
        self.node.shutdown().await
    }

    /// Resolves with a one-line reason if the node fails for good (storage or consensus).
    pub async fn failed(&self) -> String {
        self.node.failed().await
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// No operator key is configured: unauthenticated calls are accepted (loopback only).
    pub fn protected_mode(&self) -> bool {
        self.serving.protected_mode()
    }
}

/// Binds `config.listen`, starts (and recovers) the node in `config.node.data_dir`, then
/// serves the API on it.
pub async fn start(config: ServeConfig) -> Result<RunningServer, ServerError> {
    config.validate()?;
    let auth = prepare_auth(&config)?;
    let games = match &config.games {
        Some(games) => Arc::clone(games),
        None => Arc::new(CertifiedGames::embedded(&[PublicKey::dev_lab()])?),
    };
    // Checked before the node starts: a table naming an uncertified game refuses the start.
    tables::LiveTables::new(&config.tables, &games)?;
    let listener = bind_listener(config.listen).map_err(|source| ServerError::Bind {
        addr: config.listen,
        source,
    })?;
    let payments = match config.payments.connectors.is_empty() {
        true => None,
        false => Some(Arc::new(payments::Payments::new(config.payments.clone())?)),
    };
    let webhooks = match config.webhooks.endpoints.is_empty() {
        true => None,
        false => {
            let dir = config.node.data_dir.join(WEBHOOKS_DIR_NAME);
            Some(Arc::new(webhooks::Webhooks::open(
                config.webhooks.clone(),
                &dir,
            )?))
        }
    };
    let node = Node::start(config.node.clone()).await?;
    let extensions = Extensions {
        payments,
        webhooks: webhooks.clone(),
    };
    let serving = serve(node.clone(), listener, &config, auth, games, extensions);
    let (stop_aml, aml_stopped) = tokio::sync::watch::channel(false);
    let webhooks = match webhooks {
        Some(webhooks) => {
            let spawned = webhooks::dispatch::spawn(node.clone(), webhooks, stop_aml.subscribe());
            Some(spawned.map_err(ServerError::WebhooksThread)?)
        }
        None => None,
    };
    let aml = match config.compliance.aml_enabled {
        true => {
            let shared = Arc::clone(&config.compliance.aml);
            let spawned = compliance::aml::spawn(node.clone(), shared, aml_stopped);
            Some(spawned.map_err(ServerError::AmlThread)?)
        }
        false => None,
    };
    // The binary announces the address in its start-up line; this one is for embedders.
    tracing::debug!(addr = %serving.local_addr, "serving the HTTP API");
    Ok(RunningServer {
        node,
        serving,
        aml,
        webhooks,
        stop_aml,
    })
}

/// Where `croupier serve` keeps the webhooks' delivery log, under the data directory.
pub const WEBHOOKS_DIR_NAME: &str = "webhooks";

/// What a node may run beside the ledger: banks and the operator's webhooks.
#[derive(Default)]
pub struct Extensions {
    pub payments: Option<Arc<payments::Payments>>,
    pub webhooks: Option<Arc<webhooks::Webhooks>>,
}

/// Pending connections the kernel queues before `accept` (capped by `net.core.somaxconn`).
/// tokio's `TcpListener::bind` asks for 1,024; thousands of players reconnecting at once
/// (after a failover, or a crowd arriving for a round) overflow that, and a dropped SYN costs
/// its client a one-second retransmit.
const ACCEPT_BACKLOG_MAX: u32 = 8_192;

fn bind_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG_MAX)
}

/// Loads the keys and applies protected mode: with no operator key, only a loopback listener
/// may start (it then accepts unauthenticated operator and provider calls).
pub fn prepare_auth(config: &ServeConfig) -> Result<auth::Auth, ServerError> {
    let ring = match &config.auth.keys_file {
        Some(path) => auth::KeyRingHandle::load(path)?,
        None => auth::KeyRingHandle::fixed(auth::KeyRing::default()),
    };
    let loopback = config.listen.ip().is_loopback();
    if !loopback && !ring.current().has_operator_keys() {
        return Err(ServerError::Unprotected {
            addr: config.listen,
        });
    }
    Ok(auth::Auth {
        ring,
        loopback,
        session_ttl_s: config.auth.session_ttl_s,
        limits: auth::limits::RateLimits::new(&config.auth.limits),
    })
}

/// The API over any `Consensus`, on an already bound listener. The caller owns the consensus
/// lifecycle; `Serving::stop` only stops HTTP and the group-commit batcher.
pub fn serve<C: Consensus>(
    consensus: C,
    listener: TcpListener,
    config: &ServeConfig,
    auth: auth::Auth,
    games: Arc<CertifiedGames>,
    extensions: Extensions,
) -> Serving {
    let Extensions { payments, webhooks } = extensions;
    let local_addr = listener.local_addr().unwrap_or(config.listen);
    let (committer, batcher) = group_commit::spawn(consensus.clone(), config.group_commit.clone());
    let keys_watch = tokio::spawn(auth.ring.clone().watch());
    let live_tables = Arc::new(
        tables::LiveTables::new(&config.tables, &games).unwrap_or_else(|error| {
            tracing::error!(%error, "no live tables: their configuration is invalid");
            tables::LiveTables::default()
        }),
    );
    let (stop_tables, tables_stopped) = tokio::sync::watch::channel(false);
    let scheduler = spawn_scheduler(consensus.clone(), live_tables.clone(), tables_stopped);
    let state = AppState::new(
        consensus,
        committer,
        config.body_size_max_bytes,
        auth,
        games,
    )
    .with_tables(live_tables)
    .with_live(live::LiveHub::new(config.live.clone()))
    .with_compliance(Arc::new(config.compliance.clone()))
    .with_payments(payments.clone())
    .with_webhooks(webhooks);
    let payments_driver = payments.map(|payments| {
        let stopped = stop_tables.subscribe();
        tokio::spawn(payments::driver::run(state.clone(), payments, stopped))
    });
    let register_sweep = config.compliance.register.clone().map(|register| {
        let stopped = stop_tables.subscribe();
        tokio::spawn(compliance::register::sweep(
            state.consensus().clone(),
            register,
            stopped,
        ))
    });
    let hub = state.live_hub();
    let live_push = hub.spawn(live::feed::run(Arc::clone(&hub), state.clone()));
    let limits = state.clone();
    let streams = state.clone();
    let mode = state.clone();
    let app = router(state, &config.edge);
    let (stop_accepting, stop_requested) = oneshot::channel::<()>();
    let mut edge = config.edge.clone();
    edge.connections_max = edge::fit_connections_to_fd_limit(edge.connections_max);
    let server = tokio::spawn(edge::accept_loop(listener, app, edge, stop_requested));
    let upkeep = tokio::spawn(async move {
        let mut interval = tokio::time::interval(telemetry::METRICS_UPKEEP_INTERVAL);
        loop {
            interval.tick().await;
            telemetry::prometheus().run_upkeep();
            limits.auth().limits.upkeep();
        }
    });
    Serving {
        local_addr,
        stop_accepting,
        server,
        batcher,
        upkeep,
        keys_watch,
        drain_timeout: Duration::from_millis(config.shutdown_drain_timeout_ms),
        stop_streams: Box::new(move || streams.stop_streams()),
        protected_mode: Box::new(move || mode.auth().protected_mode()),
        scheduler,
        stop_tables,
        live_push,
        register_sweep,
        payments_driver,
    }
}

/// Runs the live tables' scheduler, even with no table configured: an operator may create one
/// over the API at any time. Without a certified generator for the server seeds no round
/// opens, and the reason is logged.
fn spawn_scheduler<C: Consensus>(
    consensus: C,
    live_tables: Arc<tables::LiveTables>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    match tables::scheduler::Scheduler::new(consensus, live_tables) {
        Ok(scheduler) => Some(tokio::spawn(scheduler.run(stopped))),
        Err(error) => {
            tracing::error!(%error, "live tables stopped: the certified generator is unavailable");
            None
        }
    }
}

/// HTTP and group commit running over some consensus.
pub struct Serving {
    local_addr: SocketAddr,
    stop_accepting: oneshot::Sender<()>,
    server: JoinHandle<()>,
    batcher: group_commit::Batcher,
    upkeep: JoinHandle<()>,
    keys_watch: JoinHandle<()>,
    drain_timeout: Duration,
    /// Ends the open event streams: they never finish by themselves, and the graceful drain
    /// would otherwise wait for them until `drain_timeout` (10 s by default) on every stop.
    stop_streams: Box<dyn FnOnce() + Send + Sync>,
    protected_mode: Box<dyn Fn() -> bool + Send + Sync>,
    scheduler: Option<JoinHandle<()>>,
    stop_tables: tokio::sync::watch::Sender<bool>,
    /// The live push's feed reader (ends with `stop_streams`).
    live_push: JoinHandle<()>,
    /// The national self-exclusion register's sweep, if a register is configured.
    register_sweep: Option<JoinHandle<()>>,
    /// The payments' driver, if banks are configured.
    payments_driver: Option<JoinHandle<()>>,
}

impl Serving {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn protected_mode(&self) -> bool {
        (self.protected_mode)()
    }

    pub async fn stop(self) {
        let Serving {
            stop_accepting,
            mut server,
            batcher,
            upkeep,
            keys_watch,
            drain_timeout,
            stop_streams,
            scheduler,
            stop_tables,
            live_push,
            register_sweep,
            payments_driver,
            ..
        } = self;
        stop_tables.send_replace(true);
        if let Some(driver) = payments_driver {
            // Every step is a bank request with a derived key, then a command: a step cut
            // here is taken again, with the same key, by whichever node leads next.
            driver.abort();
        }
        if let Some(sweep) = register_sweep {
            // A sweep may be waiting on the register: nothing it does is left half done (a
            // match is one command).
            sweep.abort();
        }
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        keys_watch.abort();
        stop_streams();
        let _ = stop_accepting.send(());
        if tokio::time::timeout(drain_timeout, &mut server)
            .await
            .is_err()
        {
            tracing::warn!(
                ?drain_timeout,
                "requests still running after the drain timeout; cutting them"
            );
            server.abort();
        }
        batcher.stop().await;
        upkeep.abort();
        live_push.abort();
    }
}
