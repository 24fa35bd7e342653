//! `croupier sandbox bank`: a sandbox bank speaking UK Open Banking or Berlin Group (one per
//! process), with the routes both share (see crates/payments/PROTOCOLS.md). Its state is a
//! journal in DIR (replayed at start) and its signing key DIR/bank-key.der (owner-only).

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::{init_tracing, StopSignals};
use anyhow::Context;
use clap::{Args, ValueEnum};
use croupier_payments::sandbox::{Config, Faults, Protocol, SandboxBank};

/// Worker threads: the sandbox is small, and the machines that run the tests are too.
const WORKER_THREADS: usize = 2;

#[derive(Args)]
pub struct BankArgs {
    /// The payment protocol this bank speaks.
    #[arg(long, value_enum)]
    protocol: ProtocolArg,
    /// Address to listen on; port 0 takes any free port (the ready line on stdout names it).
    #[arg(long, default_value = "127.0.0.1:9301")]
    listen: String,
    /// Directory of the journal and the signing key (created if missing).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// The OAuth2 client id of the one client (the operator) this bank serves.
    #[arg(long)]
    client_id: String,
    /// Its client secret.
    #[arg(
        long,
        env = "CROUPIER_SANDBOX_BANK_CLIENT_SECRET",
        hide_env_values = true
    )]
    client_secret: String,
    /// Time from acceptance to settlement (the money moves), in milliseconds.
    #[arg(long, default_value_t = 200)]
    settle_ms: u64,
    /// Time a consent (or Berlin Group pay-in) waits for the customer's authorisation.
    #[arg(long, default_value_t = 600)]
    consent_ttl_s: u64,
    /// Every answer waits this long, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Percentage of payments rejected (AM04) as a decline.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fault_error_percent: u8,
    /// Percentage of requests answered 503 before anything is done.
    #[arg(long = "fault-5xx-percent", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fault_unavailable_percent: u8,
    /// Percentage of consents and payments made and recorded whose answer is then held back
    /// until the client gives up.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fault_timeout_after_accept_percent: u8,
    /// Percentage of notifications sent twice.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fault_duplicate_notification_percent: u8,
    /// Percentage of notifications held back so that a later status's arrives first.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    fault_out_of_order_notification_percent: u8,
    /// Start down: every route but POST /sandbox/up answers 503.
    #[arg(long)]
    down: bool,
    /// Opening balance of the operator's EUR and GBP accounts (first start only).
    #[arg(long, default_value = "1000000.00")]
    operator_balance: String,
    /// Seed of the fault dice [default: from the OS].
    #[arg(long)]
    seed: Option<u64>,
    /// Consents plus payments kept at most; past it, 429.
    #[arg(long, default_value_t = 1_000_000)]
    payments_max: usize,
    /// Accounts kept at most; past it, 429.
    #[arg(long, default_value_t = 100_000)]
    accounts_max: usize,
    /// Notifications waiting to be sent at most; past it, dropped (and logged).
    #[arg(long, default_value_t = 10_000)]
    notify_queue_max: usize,
    /// How long the timeout-after-accept fault holds an answer, in seconds.
    #[arg(long, default_value_t = 60)]
    hold_s: u64,
    /// Serve HTTPS and require a client certificate (mutual TLS, as real banks do). The CA,
    /// the server's certificate and the operator's client certificate are made on first
    /// start in DIR/tls (ca.pem, client.pem, client-key.pem for the node's connector).
    #[arg(long)]
    tls: bool,
}

// The client secret never reaches Debug output.
impl std::fmt::Debug for BankArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankArgs")
            .field("protocol", &self.protocol)
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("client_id", &self.client_id)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProtocolArg {
    Obie,
    BerlinGroup,
}

impl BankArgs {
    fn into_config(self) -> Config {
        Config {
            protocol: match self.protocol {
                ProtocolArg::Obie => Protocol::Obie,
                ProtocolArg::BerlinGroup => Protocol::BerlinGroup,
            },
            data_dir: self.data_dir,
            client_id: self.client_id,
            client_secret: self.client_secret,
            settle_ms: self.settle_ms,
            consent_ttl_s: self.consent_ttl_s,
            latency_ms: self.latency_ms,
            faults: Faults {
                error_percent: self.fault_error_percent,
                unavailable_percent: self.fault_unavailable_percent,
                timeout_after_accept_percent: self.fault_timeout_after_accept_percent,
                duplicate_notification_percent: self.fault_duplicate_notification_percent,
                out_of_order_notification_percent: self.fault_out_of_order_notification_percent,
            },
            down: self.down,
            operator_balance: self.operator_balance,
            seed: self.seed,
            payments_max: self.payments_max,
            accounts_max: self.accounts_max,
            notify_queue_max: self.notify_queue_max,
            hold_s: self.hold_s,
            tls: self.tls,
        }
    }
}

pub fn run(args: BankArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: BankArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let config = args.into_config();
    // The ready line says where the certificates are (the node's connector needs them).
    let tls_dir = config.tls.then(|| {
        config
            .data_dir
            .join(croupier_payments::sandbox::tls::TLS_DIR_NAME)
    });
    let protocol = config.protocol;
    let bank = SandboxBank::open(config, addr)
        .await
        .context("cannot open the sandbox bank")?;
    tracing::info!(?protocol, kid = bank.kid(), "sandbox bank open");
    // Listening for the stop signals before the ready line: a SIGTERM right after it must
    // stop us cleanly, not kill us by the default action.
    let stop = StopSignals::listen()?;
    match tls_dir {
        Some(dir) => println!("sandbox bank listening on {addr} https {}", dir.display()),
        None => println!("sandbox bank listening on {addr}"),
    }
    bank.serve(listener, stop.wait()).await.context("serving")?;
    tracing::info!("sandbox bank stopped");
    Ok(())
}
