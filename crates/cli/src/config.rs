//! `croupier serve`'s settings: one struct with a section per concern, read from (lowest
//! precedence first) built-in defaults, a TOML file, `CROUPIER_*` environment variables and
//! command-line flags (`load`). `croupier config print-default` prints `default.toml`, the
//! commented defaults; `croupier config check` prints the merged result.
//!
//! To add a section: a struct with `Default` and `#[serde(default, deny_unknown_fields)]`, a
//! field of `ServeSettings`, its keys in `default.toml`, checks in `validate`, and (when it
//! deserves flags) a `flags.rs` struct whose fields are named like the keys. The environment
//! picks the section up by itself (`load::setting_names`).

mod flags;
mod load;
pub mod size;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use flags::SettingsFlags;
pub use load::load;

/// The commented default settings file; a test checks it reads back as `ServeSettings::default()`.
pub const DEFAULT_TOML: &str = include_str!("config/default.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeSettings {
    /// Where the log, checkpoints and vote are kept (created if missing).
    pub data_dir: PathBuf,
    /// This node's id in its cluster (positive, unique among the members).
    pub node_id: u64,
    /// HTTP API address; unset: this node's `api` in the cluster config, else 127.0.0.1:8080.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    pub cluster: ClusterSettings,
    pub storage: StorageSettings,
    pub group_commit: GroupCommitSettings,
    pub auth: AuthSettings,
    pub rate_limit: RateLimitSettings,
    pub edge: EdgeSettings,
    pub live: LiveSettings,
    pub games: GamesSettings,
    pub compliance: ComplianceSettings,
    pub payments: PaymentsSettings,
    pub webhooks: WebhooksSettings,
    /// Live tables (`[[tables]]`), run by the leader: each a certified game, a currency, a
    /// betting window and limits.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableSettings>,
}

/// One live table. Amounts are minor units of its currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSettings {
    pub id: u32,
    /// money-wheel, game-show-wheel or roulette.
    pub game: String,
    pub currency: String,
    #[serde(default = "defaults::betting_window_ms")]
    pub betting_window_ms: u32,
    /// Wait between the close and the draw (the clock-skew bound between leaders).
    #[serde(default = "defaults::draw_delay_ms")]
    pub draw_delay_ms: u32,
    /// Ledger time between two `bets_total` messages of an open round (100 to 60000 ms).
    #[serde(default = "defaults::bets_total_interval_ms")]
    pub bets_total_interval_ms: u32,
    #[serde(default = "defaults::bet_min")]
    pub bet_min: u64,
    #[serde(default = "defaults::bet_max")]
    pub bet_max: u64,
    #[serde(default = "defaults::round_stake_max")]
    pub round_stake_max: u64,
    /// Most one player is paid in one round.
    #[serde(default = "defaults::payout_max")]
    pub payout_max: u64,
    #[serde(default = "defaults::bets_per_round_max")]
    pub bets_per_round_max: u32,
    /// A live-studio table: the studio's Ed25519 public key (64 hex digits), whose signed
    /// results decide the rounds instead of the RNG (roulette and money-wheel).
    pub studio_public_key: Option<String>,
    /// How long after the draw time the studio has to report before the round is voided.
    #[serde(default = "defaults::studio_result_timeout_ms")]
    pub studio_result_timeout_ms: u32,
}

mod defaults {
    pub fn betting_window_ms() -> u32 {
        15_000
    }
    pub fn draw_delay_ms() -> u32 {
        500
    }
    pub fn bets_total_interval_ms() -> u32 {
        croupier_server::tables::defaults::BETS_TOTAL_INTERVAL_MS
    }
    pub fn studio_result_timeout_ms() -> u32 {
        croupier_server::tables::defaults::STUDIO_RESULT_TIMEOUT_MS
    }
    pub fn bet_min() -> u64 {
        10
    }
    pub fn bet_max() -> u64 {
        50_000
    }
    pub fn round_stake_max() -> u64 {
        100_000_000
    }
    pub fn payout_max() -> u64 {
        50_000_000
    }
    pub fn bets_per_round_max() -> u32 {
        50_000
    }
}

/// Identity providers and the national self-exclusion register (`[compliance]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComplianceSettings {
    /// The youngest age an identity attestation may prove (whole years).
    pub age_min_years: u8,
    /// Identity providers whose attestations verify players, each `{ issuer, jwks_file }`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identity_issuers: Vec<IdentityIssuerSettings>,
    /// The national self-exclusion register's base URL; unset: none is asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register_url: Option<String>,
    /// A file holding the API key sent to the register (a file, so the key is in no
    /// settings output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register_api_key_file: Option<PathBuf>,
    pub register_timeout_ms: u64,
    /// How often every verified player is checked again (on the leader).
    pub register_sweep_interval_s: u64,
    /// Run the AML scoring pipeline on the event feed (it proposes only on the leader).
    pub aml_enabled: bool,
    /// The AML rule set (TOML with CEL rules), reloaded when it changes; unset: the embedded
    /// default rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aml_rules_file: Option<PathBuf>,
    /// Players whose recent money events the AML pipeline keeps in memory.
    pub aml_players_max: u64,
    /// Money events the AML pipeline keeps per player.
    pub aml_events_per_player_max: u64,
    /// The reporting entity that goAML exports of cases report as; unset: no exports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub goaml: Option<GoamlSettings>,
}

/// Banks for deposits and withdrawals, and how the node drives payments (`[payments]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsSettings {
    /// This node's base URL as the banks reach it, for their notifications; unset: the node
    /// asks the banks instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    pub poll_interval_ms: u64,
    pub request_timeout_ms: u64,
    pub drivers_max: u64,
    /// Parts per million of payments routed to a connector other than the best.
    pub explore_ppm: u32,
    pub breaker_failures_max: u32,
    pub breaker_open_ms: u64,
    /// The node's request-signing key (PKCS#1 DER, made on first start); unset:
    /// `payments-signing-key.der` in the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub connectors: Vec<ConnectorSettings>,
}

impl Default for PaymentsSettings {
    fn default() -> Self {
        PaymentsSettings {
            public_url: None,
            poll_interval_ms: 200,
            request_timeout_ms: 5_000,
            drivers_max: 2_048,
            explore_ppm: 20_000,
            breaker_failures_max: 5,
            breaker_open_ms: 30_000,
            signing_key_file: None,
            connectors: Vec::new(),
        }
    }
}

/// One bank (`[[payments.connectors]]`) and the payments it may route.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    pub id: String,
    /// obie or berlin-group.
    pub protocol: String,
    pub base_url: String,
    pub client_id: String,
    /// Never written back out (`croupier config`) and never in Debug output.
    #[serde(skip_serializing)]
    pub client_secret: String,
    /// ISO 4217 codes it takes; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub currencies: Vec<String>,
    /// Verified player countries it takes (ISO 3166-1 alpha-2); empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    #[serde(default)]
    pub amount_min: u64,
    /// 0: no maximum.
    #[serde(default)]
    pub amount_max: u64,
    /// iban and/or sort_code; empty: any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub cost_fixed: u64,
    #[serde(default)]
    pub cost_basis_points: u32,
    /// The operator's account at this bank per currency: an IBAN, or a sort code and account
    /// number as 14 digits ("EUR" = "GB29NWBK60161331926819"); a currency not here is
    /// discovered when the bank lists exactly one account of ours in it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub operator_accounts: BTreeMap<String, String>,
    /// The holder name on those accounts (required with operator_accounts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_name: Option<String>,
    /// PEM certificates to trust for this bank besides the public roots (an https base_url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The client certificate (PEM) the bank asks for (mutual TLS), and its key (PKCS#8 PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
}

impl std::fmt::Debug for ConnectorSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorSettings")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The operator's systems told of every deposit's and withdrawal's change (`[webhooks]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksSettings {
    pub attempts_max: u32,
    pub backoff_ms_first: u64,
    pub backoff_ms_max: u64,
    pub timeout_ms: u64,
    pub in_flight_max: u64,
    pub log_entries_max: u64,
    pub log_file_bytes_max: u64,
    pub replay_queue_max: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<WebhookEndpointSettings>,
}

impl Default for WebhooksSettings {
    fn default() -> Self {
        let server = croupier_server::webhooks::WebhooksConfig::default();
        WebhooksSettings {
            attempts_max: server.attempts_max,
            backoff_ms_first: server.backoff_ms_first,
            backoff_ms_max: server.backoff_ms_max,
            timeout_ms: server.timeout_ms,
            in_flight_max: server.in_flight_max as u64,
            log_entries_max: server.log_entries_max as u64,
            log_file_bytes_max: server.log_file_bytes_max,
            replay_queue_max: server.replay_queue_max as u64,
            endpoints: Vec::new(),
        }
    }
}

/// One receiving system (`[[webhooks.endpoints]]`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointSettings {
    pub id: String,
    pub url: String,
    /// The HMAC key (at least 16 bytes). Never written back out and never in Debug output.
    #[serde(skip_serializing)]
    pub secret: String,
    /// deposit_updated and/or withdrawal_updated; empty or absent: both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
}

impl std::fmt::Debug for WebhookEndpointSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpointSettings")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// `[compliance.goaml]`: who files suspicious-transaction reports, with the FIU's lookup codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoamlSettings {
    /// The reporting entity's id at the FIU.
    pub rentity_id: u32,
    pub rentity_branch: String,
    /// The goAML user who submits (4 to 50 characters).
    pub reporting_user_code: String,
    /// The operator's legal name (the other side of every movement).
    pub operator_name: String,
    /// ISO 4217: the FIU's currency; the players' wallets in it are reported.
    pub currency_code_local: String,
    pub location: GoamlAddressSettings,
    /// The FIU's lookup codes (its schema's `conduction_type`, `funds_type` and
    /// `report_indicator_type`).
    pub transmode_code: String,
    pub funds_code: String,
    pub report_indicators: Vec<String>,
    /// Transfers from this many days before the case opened are reported.
    #[serde(default = "GoamlSettings::window_days_default")]
    pub window_days: u32,
    /// At most this many (the newest).
    #[serde(default = "GoamlSettings::movements_max_default")]
    pub movements_max: u32,
}

impl GoamlSettings {
    fn window_days_default() -> u32 {
        90
    }
    fn movements_max_default() -> u32 {
        1_000
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoamlAddressSettings {
    /// The FIU's address type code.
    pub address_type: String,
    pub address: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
}

impl Default for ComplianceSettings {
    fn default() -> Self {
        ComplianceSettings {
            age_min_years: 18,
            identity_issuers: Vec::new(),
            register_url: None,
            register_api_key_file: None,
            register_timeout_ms: 2_000,
            register_sweep_interval_s: 86_400,
            aml_enabled: true,
            aml_rules_file: None,
            aml_players_max: 100_000,
            aml_events_per_player_max: 256,
            goaml: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityIssuerSettings {
    /// The `iss` its attestations carry.
    pub issuer: String,
    /// Its public keys as a JWKS document (`croupier sandbox idp --print-jwks` writes one).
    pub jwks_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GamesSettings {
    /// Definitions (`<game>.toml`) with their `MANIFEST` and `MANIFEST.sig`, as a lab signed
    /// them; unset: the definitions compiled into the binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definitions_dir: Option<PathBuf>,
    /// Ed25519 public keys (64 hex) whose signature over the manifest serve accepts.
    pub trusted_keys: Vec<String>,
}

impl Default for GamesSettings {
    fn default() -> Self {
        GamesSettings {
            definitions_dir: None,
            trusted_keys: vec![croupier_games::certification::DEV_LAB_PUBLIC_KEY_HEX.to_string()],
        }
    }
}

impl GamesSettings {
    /// The trusted keys, parsed (at least one).
    pub fn trusted(
        &self,
    ) -> Result<
        Vec<croupier_games::certification::PublicKey>,
        croupier_games::certification::CertificationError,
    > {
        croupier_games::certification::parse_trusted_keys(&self.trusted_keys)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeSettings {
    pub header_read_timeout_ms: u64,
    pub request_deadline_ms: u64,
    pub connections_max: usize,
    pub requests_in_flight_max: usize,
    #[serde(with = "size")]
    pub body_size_max: u64,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        // The server's own defaults, so the two cannot drift apart.
        let edge = croupier_server::EdgeLimits::default();
        EdgeSettings {
            header_read_timeout_ms: edge.header_read_timeout_ms,
            request_deadline_ms: edge.request_deadline_ms,
            connections_max: edge.connections_max,
            requests_in_flight_max: edge.requests_in_flight_max,
            body_size_max: croupier_server::BODY_SIZE_MAX_BYTES_DEFAULT as u64,
        }
    }
}

/// More live-push threads than this would only take cores from the requests.
const LIVE_THREADS_MAX: usize = 64;

/// Bounds of the live push (`GET /v1/live`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSettings {
    pub retained_messages_max: usize,
    #[serde(with = "size")]
    pub retained_size_max: u64,
    pub client_queue_max: usize,
    #[serde(with = "size")]
    pub client_queue_size_max: u64,
    pub subscribers_max: usize,
    pub backfill_entries: u64,
    /// Threads of the live push's own, so fanning results out to screens does not delay
    /// requests (0: it shares the server's threads).
    pub threads: usize,
    /// Messages that can wait (`bets_total`, `round_opened`) go to the screens spread over
    /// this long, a trickle instead of a burst on the ledger's cores (0: not paced).
    pub paced_spread_ms: u64,
}

impl Default for LiveSettings {
    fn default() -> Self {
        // The server's own defaults, so the two cannot drift apart.
        let live = croupier_server::live::LiveLimits::default();
        LiveSettings {
            retained_messages_max: live.retained_messages_max,
            retained_size_max: live.retained_bytes_max as u64,
            client_queue_max: live.client_queue_max,
            client_queue_size_max: live.client_queue_bytes_max as u64,
            subscribers_max: live.subscribers_max,
            backfill_entries: live.backfill_entries,
            threads: live.threads,
            paced_spread_ms: live.paced_spread_ms,
        }
    }
}

impl LiveSettings {
    pub fn limits(&self) -> anyhow::Result<croupier_server::live::LiveLimits> {
        Ok(croupier_server::live::LiveLimits {
            retained_messages_max: self.retained_messages_max,
            retained_bytes_max: usize::try_from(self.retained_size_max)?,
            client_queue_max: self.client_queue_max,
            client_queue_bytes_max: usize::try_from(self.client_queue_size_max)?,
            subscribers_max: self.subscribers_max,
            backfill_entries: self.backfill_entries,
            threads: self.threads,
            paced_spread_ms: self.paced_spread_ms,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Operator and provider keys (`croupier keys`); unset: DATA_DIR/keys.toml.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_file: Option<PathBuf>,
    /// Lifetime of a player session from its login.
    pub session_ttl_s: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    pub per_key_per_s: u32,
    pub per_player_per_s: u32,
    pub per_address_per_s: u32,
    pub login_per_username_per_min: u32,
    pub login_per_address_per_min: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            keys_file: None,
            session_ttl_s: croupier_server::auth::AuthConfig::default().session_ttl_s,
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        // The server's own defaults, so the two cannot drift apart.
        let server = croupier_server::auth::limits::RateLimitConfig::default();
        RateLimitSettings {
            per_key_per_s: server.per_key_per_s,
            per_player_per_s: server.per_player_per_s,
            per_address_per_s: server.per_address_per_s,
            login_per_username_per_min: server.login_per_username_per_min,
            login_per_address_per_min: server.login_per_address_per_min,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// Node-to-node address; set (here or by the cluster config), it makes the node a member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_listen: Option<String>,
    /// The initial members (`[[node]] id, api, peer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_config: Option<PathBuf>,
    /// A running member's peer address to join the cluster through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<String>,
    /// A file holding the secret every member proves on each node-to-node connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    pub heartbeat_ms: u64,
    pub clock_skew_max_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    #[serde(with = "size")]
    pub cache_size_max: u64,
    #[serde(with = "size")]
    pub checkpoint_log_bytes: u64,
    pub checkpoint_entries: u64,
    pub log_entries_kept: u64,
    #[serde(with = "size")]
    pub event_retention_size: u64,
    pub event_retention_s: u64,
    #[serde(with = "size")]
    pub disk_reserve: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GroupCommitSettings {
    pub queue_depth_max: usize,
    #[serde(with = "size")]
    pub queue_bytes_max: u64,
    pub proposals_in_flight_max: usize,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            data_dir: PathBuf::from("./croupier-data"),
            node_id: 1,
            listen: None,
            cluster: ClusterSettings::default(),
            storage: StorageSettings::default(),
            group_commit: GroupCommitSettings::default(),
            auth: AuthSettings::default(),
            rate_limit: RateLimitSettings::default(),
            edge: EdgeSettings::default(),
            live: LiveSettings::default(),
            tables: Vec::new(),
            games: GamesSettings::default(),
            compliance: ComplianceSettings::default(),
            payments: PaymentsSettings::default(),
            webhooks: WebhooksSettings::default(),
        }
    }
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            peer_listen: None,
            cluster_config: None,
            join: None,
            secret_file: None,
            heartbeat_ms: 50,
            clock_skew_max_ms: 500,
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            cache_size_max: 1 << 30,
            checkpoint_log_bytes: 256 << 20,
            checkpoint_entries: 20_000,
            log_entries_kept: 1_000,
            event_retention_size: 1 << 30,
            event_retention_s: 0,
            disk_reserve: 256 << 20,
        }
    }
}

impl Default for GroupCommitSettings {
    fn default() -> Self {
        // The server's own defaults, so the two cannot drift apart.
        let server = croupier_server::GroupCommitConfig::default();
        GroupCommitSettings {
            queue_depth_max: server.queue_depth_max,
            queue_bytes_max: server.queue_bytes_max as u64,
            proposals_in_flight_max: server.proposals_in_flight_max,
        }
    }
}

/// A setting whose value `validate` refuses: its dotted key (`storage.cache_size_max`) and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Invalid {
    pub key: &'static str,
    pub message: String,
}

fn at_least(
    key: &'static str,
    value: u64,
    min: u64,
    show: fn(u64) -> String,
) -> Result<(), Invalid> {
    if value >= min {
        return Ok(());
    }
    Err(Invalid {
        key,
        message: format!("must be at least {}, got {}", show(min), show(value)),
    })
}

fn number(value: u64) -> String {
    value.to_string()
}

impl ServeSettings {
    /// The checks that need no disk or network, so `config check` reports what `serve` would
    /// refuse. Reading the cluster config and resolving addresses stay in `serve`.
    pub fn validate(&self) -> Result<(), Invalid> {
        at_least("node_id", self.node_id, 1, number)?;
        at_least(
            "cluster.heartbeat_ms",
            self.cluster.heartbeat_ms,
            10,
            number,
        )?;
        let storage = &self.storage;
        at_least(
            "storage.cache_size_max",
            storage.cache_size_max,
            16 << 20,
            size::format,
        )?;
        let log_bytes = storage.checkpoint_log_bytes;
        at_least(
            "storage.checkpoint_log_bytes",
            log_bytes,
            1 << 20,
            size::format,
        )?;
        at_least(
            "storage.checkpoint_entries",
            storage.checkpoint_entries,
            1,
            number,
        )?;
        let group_commit = &self.group_commit;
        let depth = group_commit.queue_depth_max as u64;
        at_least("group_commit.queue_depth_max", depth, 1, number)?;
        let in_flight = group_commit.proposals_in_flight_max as u64;
        at_least("group_commit.proposals_in_flight_max", in_flight, 1, number)?;
        let edge = &self.edge;
        at_least(
            "edge.header_read_timeout_ms",
            edge.header_read_timeout_ms,
            1,
            number,
        )?;
        at_least(
            "edge.request_deadline_ms",
            edge.request_deadline_ms,
            1,
            number,
        )?;
        at_least(
            "edge.connections_max",
            edge.connections_max as u64,
            1,
            number,
        )?;
        let in_flight = edge.requests_in_flight_max as u64;
        at_least("edge.requests_in_flight_max", in_flight, 1, number)?;
        at_least("edge.body_size_max", edge.body_size_max, 1024, size::format)?;
        let compliance = &self.compliance;
        let timeout = compliance.register_timeout_ms;
        at_least("compliance.register_timeout_ms", timeout, 1, number)?;
        let sweep = compliance.register_sweep_interval_s;
        at_least("compliance.register_sweep_interval_s", sweep, 1, number)?;
        let age = u64::from(compliance.age_min_years);
        at_least("compliance.age_min_years", age, 18, number)?;
        let players = compliance.aml_players_max;
        at_least("compliance.aml_players_max", players, 1, number)?;
        let events = compliance.aml_events_per_player_max;
        at_least("compliance.aml_events_per_player_max", events, 1, number)?;
        let live = &self.live;
        let messages = live.retained_messages_max as u64;
        at_least("live.retained_messages_max", messages, 1, number)?;
        at_least(
            "live.retained_size_max",
            live.retained_size_max,
            4096,
            size::format,
        )?;
        let queue = live.client_queue_max as u64;
        at_least("live.client_queue_max", queue, 1, number)?;
        let queue_size = live.client_queue_size_max;
        at_least("live.client_queue_size_max", queue_size, 4096, size::format)?;
        let subscribers = live.subscribers_max as u64;
        at_least("live.subscribers_max", subscribers, 1, number)?;
        if live.threads > LIVE_THREADS_MAX {
            return Err(Invalid {
                key: "live.threads",
                message: format!("must be at most {LIVE_THREADS_MAX}, got {}", live.threads),
            });
        }
        let ttl = u64::from(self.auth.session_ttl_s);
        at_least("auth.session_ttl_s", ttl, 1, number)?;
        let ttl_max = croupier_core::players::SESSION_TTL_S_MAX;
        if ttl > u64::from(ttl_max) {
            return Err(Invalid {
                key: "auth.session_ttl_s",
                message: format!("must be at most {ttl_max} (30 days), got {ttl}"),
            });
        }
        if let Err(error) = self.games.trusted() {
            return Err(Invalid {
                key: "games.trusted_keys",
                message: error.to_string(),
            });
        }
        let cluster = &self.cluster;
        if cluster.join.is_some() && cluster.cluster_config.is_some() {
            return Err(Invalid {
                key: "cluster.join",
                message: "a node joins a running cluster or forms one from cluster_config, \
                          not both"
                    .into(),
            });
        }
        if cluster.join.is_some() && cluster.peer_listen.is_none() {
            return Err(Invalid {
                key: "cluster.join",
                message: "needs cluster.peer_listen (--peer-listen: where the cluster reaches \
                          this node)"
                    .into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_reads_back_as_the_defaults_key_for_key() {
        let parsed: ServeSettings = toml::from_str(DEFAULT_TOML).unwrap();
        assert_eq!(parsed, ServeSettings::default());
        // Equal structs could hide a key missing from the file (serde fills it in): compare
        // the tables too, so every key with a default is written out in the file.
        let file: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
        let defaults: toml::Table =
            toml::from_str(&toml::to_string(&ServeSettings::default()).unwrap()).unwrap();
        assert_eq!(file, defaults);
    }

    #[test]
    fn the_defaults_are_valid_and_limits_name_their_key() {
        assert_eq!(ServeSettings::default().validate(), Ok(()));
        let mut settings = ServeSettings::default();
        settings.storage.cache_size_max = 1 << 20;
        assert_eq!(
            settings.validate().unwrap_err().key,
            "storage.cache_size_max"
        );
        let mut settings = ServeSettings::default();
        settings.cluster.join = Some("127.0.0.1:9000".into());
        let error = settings.validate().unwrap_err();
        assert!(error.message.contains("peer_listen"), "{error:?}");
        settings.cluster.peer_listen = Some("127.0.0.1:9001".into());
        assert_eq!(settings.validate(), Ok(()));
        settings.games.trusted_keys = vec![];
        assert_eq!(settings.validate().unwrap_err().key, "games.trusted_keys");
        settings.games.trusted_keys = vec!["not a key".into()];
        assert_eq!(settings.validate().unwrap_err().key, "games.trusted_keys");
        let mut settings = ServeSettings::default();
        settings.live.threads = LIVE_THREADS_MAX + 1;
        assert_eq!(settings.validate().unwrap_err().key, "live.threads");
        settings.live.threads = 0;
        assert_eq!(settings.validate(), Ok(()));
    }
}
