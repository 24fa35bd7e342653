//! `croupier serve`: a durable node with the HTTP API, until SIGINT or SIGTERM.

mod payments;

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use croupier_server::ServeConfig;
use tracing_subscriber::EnvFilter;

use crate::config::{self, ServeSettings, SettingsFlags};

/// The HTTP address when neither the settings nor the cluster config name one.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(clap::Args)]
pub struct ServeArgs {
    // The settings: flags override CROUPIER_* variables, which override the --config file.
    #[command(flatten)]
    settings: SettingsFlags,
    /// In a cluster: if this node's storage is corrupt, move it to DIR/quarantine-<ms>/ and
    /// catch up from the other replicas (granting no votes until caught up) instead of
    /// refusing to start. A flag only, not a setting: it is meant for one start, not for every
    /// one.
    #[arg(long, help_heading = "Cluster")]
    repair_from_peers: bool,
    /// A demo casino on this machine: four live tables (one a live studio), players alice and
    /// bob (password `demo`, 1,000.00 EUR each), six betting bots and a printed admin key for
    /// the console.
    /// Loopback only; safe to restart on the same data dir (nothing is credited twice).
    #[arg(long)]
    demo: bool,
    /// Fault injection for drills and tests: this node's clock reads this many ms off.
    #[arg(long, hide = true, default_value_t = 0, allow_hyphen_values = true)]
    fault_clock_offset_ms: i64,
    /// Fault injection for partition tests: a file of `MEMBER_PEER_ADDR DIAL_ADDR` lines; this
    /// node dials the second address whenever it connects to the first.
    #[arg(long, hide = true)]
    fault_peer_routes: Option<PathBuf>,
    /// Fault injection for drills and tests: read the free disk space from this file (a byte
    /// count) instead of the file system.
    #[arg(long, hide = true)]
    fault_free_bytes_file: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // Settings first: a wrong one is a usage error (exit 2) before anything is logged.
    let mut settings = config::load(&args.settings)?;
    init_tracing();
    let demo_key = if args.demo {
        Some(prepare_demo(&mut settings)?)
    } else {
        None
    };
    // Games are loaded only through their certification: a set that does not verify against
    // the trusted keys stops the node before it opens anything (one line, exit 1).
    let Some(games) = certified_games_or_report(&settings.games) else {
        return Ok(ExitCode::from(1));
    };
    let mut config = serve_config(&settings, &args)?;
    config.games = Some(std::sync::Arc::clone(&games));
    let clustered = config.node.cluster.is_some();
    let data_dir = &settings.data_dir;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("croupier")
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let server = croupier_server::start(config)
            .await
            .with_context(|| format!("cannot serve from data dir {}", data_dir.display()))?;
        // The one start-up line an operator reads; scripts find the port by `addr=`.
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            addr = %server.local_addr(),
            data_dir = %data_dir.display(),
            node_id = server.node().node_id(),
            role = if clustered { "cluster member" } else { "single node" },
            protected_mode = if server.protected_mode() { "on" } else { "off" },
            games = games.games().len(),
            games_signed_by = %games.signer(),
            "croupier is up"
        );
        warn_on_development_key(&settings.games);
        let bots = match &demo_key {
            Some(key) => Some(start_demo(&server, key).await?),
            None => None,
        };
        if server.protected_mode() {
            tracing::warn!(
                "protected mode: no operator key, so operator and provider calls are accepted \
                 without credentials on this loopback address; create one with \
                 `croupier keys create --role admin`"
            );
        }
        let failure = tokio::select! {
            stop = wait_for_stop_signal() => { stop?; None }
            reason = server.failed() => Some(reason),
        };
        if let Some(reason) = failure {
            // A node whose storage or consensus failed must not linger answering 503: exit so a
            // supervisor restarts it and it recovers from what is on disk.
            anyhow::bail!("the node failed: {reason}");
        }
        tracing::info!("stopping: draining requests, then the node");
        if let Some(bots) = bots {
            bots.stop().await;
        }
        server
            .shutdown()
            .await
            .context("the node did not stop cleanly")?;
        tracing::info!("stopped");
        anyhow::Ok(())
    });
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            // One line and exit 1: a node that cannot start or that failed is not a usage
            // error (main's exit 2), and a supervisor must see it. It must be the last line:
            // openraft's threads may still be logging the same failure.
            LOG_MUTED.store(true, std::sync::atomic::Ordering::SeqCst);
            eprintln!("error: {error:#}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Demo settings (loopback only, the demo tables) and the demo admin key, before the node
/// starts: the key must be in the keys file the node loads.
fn prepare_demo(settings: &mut ServeSettings) -> anyhow::Result<crate::demo::DemoKey> {
    let listen = resolve(settings.listen.as_deref().unwrap_or(DEFAULT_LISTEN)).context("listen")?;
    crate::demo::prepare_settings(settings, listen)?;
    let keys_path = settings
        .auth
        .keys_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join(croupier_server::KEYS_FILE_NAME));
    crate::demo::admin_key(&settings.data_dir, &keys_path)
}

/// Seeds the demo through the node's command path, starts the bots and says how to look.
async fn start_demo(
    server: &croupier_server::RunningServer,
    key: &crate::demo::DemoKey,
) -> anyhow::Result<crate::demo::bots::Bots> {
    crate::demo::seed(server.node(), &key.key_id)
        .await
        .context("cannot seed the demo")?;
    let bots = crate::demo::seed::usernames().split_off(crate::demo::PLAYERS.len());
    let addr = server.local_addr();
    tracing::warn!(
        "DEMO MODE: fake money, players with the password `{}`, simulated bots and an admin key \
         printed below: for trying Croupier on this machine only",
        crate::demo::PASSWORD
    );
    // The one deliberate print of a secret: the demo's console key, on the console only.
    tracing::info!(
        url = %format!("http://{addr}/"),
        console = %format!("http://{addr}/console"),
        admin_key = %key.key,
        key_file = %key.file.display(),
        "demo: open the casino in a browser; the console and the operator API take the admin \
         key (Authorization: Bearer)"
    );
    crate::studio_cmd::spawn_demo_console(
        addr,
        crate::demo::STUDIO_TABLE,
        crate::demo::STUDIO_GAME,
        &key.file.with_file_name(crate::demo::STUDIO_KEY_FILE_NAME),
    )?;
    tracing::info!(
        players = %crate::demo::PLAYERS.join(", "),
        bots = bots.len(),
        funds = "1000.00 EUR each",
        "demo casino is ready"
    );
    Ok(crate::demo::bots::spawn(addr, bots))
}

/// The certified games, or None once the reason they are not was printed.
fn certified_games_or_report(
    settings: &config::GamesSettings,
) -> Option<std::sync::Arc<croupier_games::certification::CertifiedGames>> {
    match certified_games(settings) {
        Ok(games) => Some(std::sync::Arc::new(games)),
        Err(error) => {
            eprintln!("error: {error:#}");
            None
        }
    }
}

/// The configured definition set, verified against the configured keys.
fn certified_games(
    settings: &config::GamesSettings,
) -> anyhow::Result<croupier_games::certification::CertifiedGames> {
    let trusted = settings.trusted().context("games.trusted_keys")?;
    let source = match &settings.definitions_dir {
        Some(dir) => format!("games.definitions_dir {}", dir.display()),
        None => "the definitions embedded in this binary".to_string(),
    };
    let files = crate::games_cmd::read_definitions(settings.definitions_dir.as_deref())
        .with_context(|| format!("refusing to start: {source}"))?;
    croupier_games::certification::CertifiedGames::verify(files, &trusted)
        .with_context(|| format!("refusing to start: {source} are not certified"))
}

/// The warning line of a node whose only trusted certifying key is the development one.
fn warn_on_development_key(settings: &config::GamesSettings) {
    let trusted = settings.trusted().unwrap_or_default();
    if trusted.iter().all(|key| key.is_dev_lab()) {
        tracing::warn!(
            "the only trusted certifying key is the DEVELOPMENT lab key, whose secret is in the \
             repository: anyone can sign definitions this node accepts; set [games] trusted_keys \
             to your test lab's key"
        );
    }
}

/// The server's configuration from validated settings and the flags that are not settings.
fn serve_config(settings: &ServeSettings, args: &ServeArgs) -> anyhow::Result<ServeConfig> {
    let cluster = cluster_options(settings, args)?;
    let listen_text = match (&settings.listen, &cluster) {
        (Some(listen), _) => listen.clone(),
        (None, Some(cluster)) => cluster.api_addr.clone(),
        (None, None) => DEFAULT_LISTEN.to_string(),
    };
    let listen = resolve(&listen_text).context("listen")?;
    let mut config = ServeConfig::new(&settings.data_dir, listen);
    let group_commit = &settings.group_commit;
    config.group_commit.queue_depth_max = group_commit.queue_depth_max;
    config.group_commit.queue_bytes_max = usize::try_from(group_commit.queue_bytes_max)?;
    config.group_commit.proposals_in_flight_max = group_commit.proposals_in_flight_max;
    let storage = &settings.storage;
    config.node = config.node.with_cache_size_max(storage.cache_size_max);
    config.node.checkpoint_log_bytes_since_last = storage.checkpoint_log_bytes;
    config.node.checkpoint_entries_since_last = storage.checkpoint_entries;
    config.node.log_entries_kept_after_checkpoint = storage.log_entries_kept;
    config.node.storage.event_retention_bytes_max = storage.event_retention_size;
    config.node.storage.event_retention_age_s_max = storage.event_retention_s;
    config.node.disk_reserve_bytes = storage.disk_reserve;
    config.node.node_id = settings.node_id;
    config.node.cluster = cluster;
    if let Some(keys_file) = &settings.auth.keys_file {
        config.auth.keys_file = Some(keys_file.clone());
    }
    config.auth.session_ttl_s = settings.auth.session_ttl_s;
    let edge = &settings.edge;
    config.edge = croupier_server::EdgeLimits {
        header_read_timeout_ms: edge.header_read_timeout_ms,
        request_deadline_ms: edge.request_deadline_ms,
        connections_max: edge.connections_max,
        requests_in_flight_max: edge.requests_in_flight_max,
    };
    config.body_size_max_bytes = usize::try_from(edge.body_size_max)?;
    config.live = settings.live.limits()?;
    let rate = &settings.rate_limit;
    config.auth.limits = croupier_server::auth::limits::RateLimitConfig {
        per_key_per_s: rate.per_key_per_s,
        per_player_per_s: rate.per_player_per_s,
        per_address_per_s: rate.per_address_per_s,
        login_per_username_per_min: rate.login_per_username_per_min,
        login_per_address_per_min: rate.login_per_address_per_min,
        ..config.auth.limits
    };
    if let Some(path) = args.fault_free_bytes_file.clone() {
        config.node.free_space_probe = croupier_cluster::FreeSpaceProbe::File(path);
    }
    config.tables = settings
        .tables
        .iter()
        .map(table_spec)
        .collect::<anyhow::Result<_>>()?;
    config.compliance = compliance_config(&settings.compliance)?;
    config.payments = payments::payments_config(&settings.payments, &settings.data_dir)?;
    config.webhooks = payments::webhooks_config(&settings.webhooks)?;
    Ok(config)
}

/// Reads the trusted issuers' JWKS files and the register's key file.
fn compliance_config(
    settings: &crate::config::ComplianceSettings,
) -> anyhow::Result<croupier_server::compliance::ComplianceConfig> {
    use croupier_server::compliance::register::RegisterConfig;
    let mut issuers = croupier_risk::identity::TrustedIssuers::new();
    for issuer in &settings.identity_issuers {
        let path = &issuer.jwks_file;
        let jwks = std::fs::read_to_string(path)
            .with_context(|| format!("compliance.identity_issuers: reading {}", path.display()))?;
        issuers
            .add_jwks(&issuer.issuer, &jwks)
            .with_context(|| format!("compliance.identity_issuers: {}", path.display()))?;
    }
    let api_key = match &settings.register_api_key_file {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("compliance.register_api_key_file: {}", path.display()))?
                .trim()
                .to_string(),
        ),
    };
    let register = settings.register_url.clone().map(|url| RegisterConfig {
        url,
        api_key,
        timeout_ms: settings.register_timeout_ms,
        sweep_interval_s: settings.register_sweep_interval_s,
    });
    let limits = croupier_risk::aml::ActivityLimits {
        players_max: usize::try_from(settings.aml_players_max)?,
        events_per_player_max: usize::try_from(settings.aml_events_per_player_max)?,
        ..Default::default()
    };
    let aml =
        croupier_server::compliance::aml::AmlShared::new(settings.aml_rules_file.clone(), limits)
            .map_err(|error| anyhow::anyhow!("compliance.aml_rules_file: {error}"))?;
    Ok(croupier_server::compliance::ComplianceConfig {
        identity_issuers: std::sync::Arc::new(issuers),
        age: croupier_risk::identity::AgePolicy {
            age_min_years: settings.age_min_years,
        },
        register,
        aml: std::sync::Arc::new(aml),
        aml_enabled: settings.aml_enabled,
        goaml: settings.goaml.as_ref().map(goaml_config).transpose()?,
    })
}

fn goaml_config(
    settings: &crate::config::GoamlSettings,
) -> anyhow::Result<std::sync::Arc<croupier_server::compliance::goaml::GoamlConfig>> {
    use croupier_risk::goaml::{Address, ReportingEntity};
    let location = &settings.location;
    let entity = ReportingEntity {
        rentity_id: settings.rentity_id,
        rentity_branch: settings.rentity_branch.clone(),
        reporting_user_code: settings.reporting_user_code.clone(),
        operator_name: settings.operator_name.clone(),
        currency_code_local: settings.currency_code_local.clone(),
        location: Address {
            address_type: location.address_type.clone(),
            address: location.address.clone(),
            city: location.city.clone(),
            country_code: location.country_code.clone(),
        },
        transmode_code: settings.transmode_code.clone(),
        funds_code: settings.funds_code.clone(),
        report_indicators: settings.report_indicators.clone(),
    };
    entity
        .validate()
        .map_err(|error| anyhow::anyhow!("compliance.goaml: {error}"))?;
    if settings.movements_max == 0 {
        anyhow::bail!("compliance.goaml.movements_max must be at least 1");
    }
    Ok(std::sync::Arc::new(
        croupier_server::compliance::goaml::GoamlConfig {
            entity,
            window_days: settings.window_days,
            movements_max: settings.movements_max as usize,
        },
    ))
}

fn table_spec(
    table: &crate::config::TableSettings,
) -> anyhow::Result<croupier_server::tables::TableSpec> {
    let currency = croupier_core::LedgerCode::parse(&table.currency)
        .map_err(|error| anyhow::anyhow!("table {}: currency: {error}", table.id))?;
    let studio = match &table.studio_public_key {
        None => None,
        Some(key) => Some(croupier_core::tables::StudioConfig {
            public_key: hex::decode(key)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("table {}: studio_public_key: not 64 hex digits", table.id)
                })?,
            result_timeout_ms: table.studio_result_timeout_ms,
        }),
    };
    Ok(croupier_server::tables::TableSpec {
        table_id: table.id,
        game: table.game.clone(),
        currency,
        betting_window_ms: table.betting_window_ms,
        draw_delay_ms: table.draw_delay_ms,
        bets_total_interval_ms: table.bets_total_interval_ms,
        limits: croupier_core::tables::TableLimits {
            bet_min: table.bet_min,
            bet_max: table.bet_max,
            round_stake_max: table.round_stake_max,
            payout_max: table.payout_max,
            bets_per_round_max: table.bets_per_round_max,
        },
        studio,
    })
}

fn read_peer_routes(path: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the peer routes {}", path.display()))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [from, to] => Ok((from.to_string(), to.to_string())),
                _ => anyhow::bail!("{}: {line:?} is not `FROM TO`", path.display()),
            },
        )
        .collect()
}

fn read_cluster_file(path: &std::path::Path) -> anyhow::Result<Vec<croupier_cluster::Member>> {
    let config = crate::cluster_cmd::config::ClusterConfig::read(path)?;
    Ok(config
        .nodes
        .into_iter()
        .map(|m| croupier_cluster::Member {
            node_id: m.id,
            peer_addr: m.peer,
            api_addr: m.api,
        })
        .collect())
}

/// The node's cluster membership from the settings, or None for a node on its own.
fn cluster_options(
    settings: &ServeSettings,
    args: &ServeArgs,
) -> anyhow::Result<Option<croupier_cluster::ClusterOptions>> {
    let cluster = &settings.cluster;
    let members = match &cluster.cluster_config {
        Some(path) => read_cluster_file(path)?,
        None => Vec::new(),
    };
    let this = members.iter().find(|m| m.node_id == settings.node_id);
    if cluster.cluster_config.is_some() && this.is_none() {
        anyhow::bail!(
            "node_id {} is not among the members of the cluster config",
            settings.node_id
        );
    }
    let peer_listen = cluster
        .peer_listen
        .clone()
        .or_else(|| this.map(|m| m.peer_addr.clone()));
    // `validate` saw to it that `join` comes with `peer_listen`.
    let Some(peer_listen) = peer_listen else {
        return Ok(None);
    };
    resolve(&peer_listen).context("cluster.peer_listen")?;
    let api_addr = settings
        .listen
        .clone()
        .or_else(|| this.map(|m| m.api_addr.clone()))
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let mut options = croupier_cluster::ClusterOptions::new(peer_listen, api_addr);
    options.members = members;
    options.join = cluster.join.clone();
    options.heartbeat_interval_ms = cluster.heartbeat_ms;
    options.election_timeout_min_ms = cluster.heartbeat_ms * 4;
    options.election_timeout_max_ms = cluster.heartbeat_ms * 8;
    options.clock_skew_max_ms = cluster.clock_skew_max_ms;
    options.clock_offset_ms = args.fault_clock_offset_ms;
    options.repair_from_peers = args.repair_from_peers;
    if let Some(path) = &cluster.secret_file {
        options.peer_secret = read_peer_secret(path)?;
    }
    if let Some(path) = &args.fault_peer_routes {
        options.fault_peer_routes = read_peer_routes(path)?;
    }
    if options.members.is_empty() && options.join.is_none() {
        // peer_listen alone: a one-member cluster that others can join later.
        options.members.push(croupier_cluster::Member {
            node_id: settings.node_id,
            peer_addr: options.peer_listen.clone(),
            api_addr: options.api_addr.clone(),
        });
    }
    Ok(Some(options))
}

/// The cluster secret from its file: the bytes without surrounding whitespace.
fn read_peer_secret(path: &std::path::Path) -> anyhow::Result<croupier_cluster::PeerSecret> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cluster.secret_file: cannot read {}", path.display()))?;
    let text = bytes.trim_ascii().to_vec();
    croupier_cluster::PeerSecret::new(text).with_context(|| {
        format!(
            "cluster.secret_file: {} holds fewer than {} bytes",
            path.display(),
            croupier_cluster::PEER_SECRET_BYTES_MIN
        )
    })
}

/// Set once the process is about to exit on an error: log lines after the final one are dropped.
static LOG_MUTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Standard error for log lines until `LOG_MUTED`, then nothing.
fn log_writer() -> Box<dyn std::io::Write> {
    if LOG_MUTED.load(std::sync::atomic::Ordering::SeqCst) {
        Box::new(std::io::sink())
    } else {
        Box::new(std::io::stderr())
    }
}

fn init_tracing() {
    // openraft narrates every election and tick at info, and 0.10 warns about routine events
    // (a message from a vote it just replaced, a peer that is down, once per retry): operators
    // get its errors, and our own lines for what matters. `RUST_LOG=info` shows it all.
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=error"));
    let _ = tracing_subscriber::fmt()
        .with_writer(log_writer)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}

fn resolve(listen: &str) -> anyhow::Result<SocketAddr> {
    listen
        .to_socket_addrs()
        .with_context(|| format!("{listen:?} is not a host:port address"))?
        .next()
        .with_context(|| format!("{listen:?} resolves to no address"))
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
