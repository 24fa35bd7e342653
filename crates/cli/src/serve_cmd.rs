//! `croupier serve`: a durable node with the HTTP API, until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use croupier_server::ServeConfig;
use tracing_subscriber::EnvFilter;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Where the log, snapshots and vote are kept (created if missing).
    #[arg(long, default_value = "./croupier-data")]
    data_dir: PathBuf,
    /// Address for the HTTP API (host:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Commands waiting for the next log entry before requests answer 503 overloaded.
    #[arg(long, default_value_t = croupier_server::GroupCommitConfig::default().queue_depth_max)]
    queue_depth_max: usize,
    /// Log entries proposed and not yet durable at once.
    #[arg(long, default_value_t = croupier_server::GroupCommitConfig::default().proposals_in_flight_max)]
    proposals_in_flight_max: usize,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let listen = resolve(&args.listen)?;
    anyhow::ensure!(
        args.queue_depth_max > 0,
        "--queue-depth-max must be at least 1"
    );
    anyhow::ensure!(
        args.proposals_in_flight_max > 0,
        "--proposals-in-flight-max must be at least 1"
    );
    let mut config = ServeConfig::new(&args.data_dir, listen);
    config.group_commit.queue_depth_max = args.queue_depth_max;
    config.group_commit.proposals_in_flight_max = args.proposals_in_flight_max;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("croupier")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = croupier_server::start(config).await.with_context(|| {
            format!("cannot serve from data dir {}", args.data_dir.display())
        })?;
        tracing::info!(addr = %server.local_addr(), data_dir = %args.data_dir.display(), "croupier is up");
        wait_for_stop_signal().await?;
        tracing::info!("stopping: draining requests, then the node");
        server.shutdown().await;
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}

fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| format!("--listen {listen:?} is not a host:port address"))?
        .next()
        .with_context(|| format!("--listen {listen:?} resolves to no address"))
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
