//! The sandbox bank (see PROTOCOLS.md): one process speaks one protocol (UK Open Banking or
//! Berlin Group) plus the routes both share, holds accounts, moves money on settlement, writes
//! camt.053 statements, posts signed notifications, and can be told to misbehave.
//!
//! Layout: `bank` (the state behind one mutex, its journal, settlement and expiry timers),
//! `http` (the router: the routes both protocols serve, authentication, the fault gate), `obie`
//! and `berlin` (each protocol's payment routes), `page` (the authorisation page), `web` (what
//! those route modules share: error shapes, form parsing), `notify` (the bounded notification
//! queue), `accounts` (identifications, the operator's derived accounts, name matching),
//! `state` and `journal` (what is recorded and replayed), `util` (clock, ids, fault dice).

mod accounts;
mod bank;
mod berlin;
mod http;
mod journal;
mod notify;
mod obie;
mod page;
mod state;
pub mod tls;
mod util;
mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bank::Bank;

/// Which payment protocol the process speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Obie,
    BerlinGroup,
}

/// Fault percentages, each 0–100, drawn per request (or per notification).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// A payment is rejected (AM04) as a decline.
    pub error_percent: u8,
    /// 503 before doing anything.
    pub unavailable_percent: u8,
    /// The payment or consent is made and recorded, then the answer is held back.
    pub timeout_after_accept_percent: u8,
    pub duplicate_notification_percent: u8,
    pub out_of_order_notification_percent: u8,
}

/// Everything `croupier sandbox bank` is told.
#[derive(Clone)]
pub struct Config {
    pub protocol: Protocol,
    pub data_dir: PathBuf,
    pub client_id: String,
    pub client_secret: String,
    pub settle_ms: u64,
    pub consent_ttl_s: u64,
    pub latency_ms: u64,
    pub faults: Faults,
    /// Start answering 503 until `POST /sandbox/up`.
    pub down: bool,
    /// The operator accounts' opening balance, a decimal in major units ("1000000.00").
    pub operator_balance: String,
    /// The fault dice's seed; None draws one from the OS.
    pub seed: Option<u64>,
    /// Consents plus payments kept at most (each with its idempotency record): past it, 429.
    pub payments_max: usize,
    /// Accounts kept at most (`/sandbox/accounts`): past it, 429.
    pub accounts_max: usize,
    /// Notifications waiting to be sent at most; past it they are dropped (and logged).
    pub notify_queue_max: usize,
    /// How long the timeout-after-accept fault holds an answer back.
    pub hold_s: u64,
    /// HTTPS with client certificates required (`tls`); false: plain HTTP.
    pub tls: bool,
}

// The client secret never reaches Debug output.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("protocol", &self.protocol)
            .field("data_dir", &self.data_dir)
            .field("client_id", &self.client_id)
            .field("settle_ms", &self.settle_ms)
            .field("consent_ttl_s", &self.consent_ttl_s)
            .field("latency_ms", &self.latency_ms)
            .field("faults", &self.faults)
            .field("down", &self.down)
            .field("seed", &self.seed)
            .field("payments_max", &self.payments_max)
            .field("accounts_max", &self.accounts_max)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("journal: {0}")]
    Journal(String),
    #[error("signing key: {0}")]
    Key(#[from] crate::jws::JwsError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

impl SandboxError {
    fn io(path: &Path, source: std::io::Error) -> SandboxError {
        SandboxError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A sandbox bank with its state loaded, ready to serve.
pub struct SandboxBank {
    bank: Arc<Bank>,
    tls: Option<Arc<rustls::ServerConfig>>,
    notes: tokio::sync::mpsc::Receiver<notify::Note>,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl SandboxBank {
    /// Loads (or makes, on first start) the signing key, replays the journal and opens the
    /// operator's accounts if they are not there yet. `addr` is where it will listen: its
    /// base URL for links.
    pub async fn open(config: Config, addr: SocketAddr) -> Result<SandboxBank, SandboxError> {
        let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
        let tls = match config.tls {
            true => {
                let host = addr.ip().to_string();
                Some(tls::server_config(
                    &config.data_dir,
                    &host,
                    &config.client_id,
                )?)
            }
            false => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let (bank, notes) = Bank::open(config, format!("{scheme}://{addr}"), stopping_rx).await?;
        Ok(SandboxBank {
            bank,
            tls,
            notes,
            stopping,
        })
    }

    /// The bank's signing key id (for logs and tests).
    pub fn kid(&self) -> &str {
        self.bank.key.kid()
    }

    /// Serves until `shutdown` completes; held answers are let go then.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SandboxError> {
        let bank = self.bank;
        notify::spawn_worker(self.notes);
        bank.rearm_settlements().await;
        bank::spawn_sweeper(Arc::clone(&bank));
        let app = http::router(Arc::clone(&bank));
        let stopping = self.stopping;
        let shutdown = async move {
            shutdown.await;
            let _ = stopping.send(true);
        };
        let result = match self.tls {
            Some(config) => {
                let listener =
                    tls::TlsListener::new(listener, config).map_err(SandboxError::Serve)?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
            None => {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
            }
        };
        result.map_err(SandboxError::Serve)
    }
}
