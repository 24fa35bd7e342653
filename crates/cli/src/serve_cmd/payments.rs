//! `[payments]` settings into the server's payments configuration: the connectors with their
//! routing rules, and the node's request-signing key (read, or made on first start and kept
//! owner-only beside the data).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use croupier_payments::bank::{Protocol, TlsClient};
use croupier_payments::connector::{AccountRef, Party};
use croupier_payments::jws::SigningKey;
use croupier_payments::routing::{AccountKind, BreakerConfig, Cost, Rule};
use croupier_server::payments::{ConnectorSpec, PaymentsConfig};
use croupier_server::webhooks::{WebhookEndpoint, WebhooksConfig};

use crate::config::{ConnectorSettings, PaymentsSettings, WebhooksSettings};

const SIGNING_KEY_FILE: &str = "payments-signing-key.der";

pub(super) fn payments_config(
    settings: &PaymentsSettings,
    data_dir: &Path,
) -> anyhow::Result<PaymentsConfig> {
    let connectors = settings
        .connectors
        .iter()
        .map(connector_spec)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let signing_key = match connectors.is_empty() {
        true => None,
        false => {
            let path = settings
                .signing_key_file
                .clone()
                .unwrap_or_else(|| data_dir.join(SIGNING_KEY_FILE));
            Some(Arc::new(signing_key(&path)?))
        }
    };
    if settings.poll_interval_ms == 0
        || settings.request_timeout_ms == 0
        || settings.drivers_max == 0
    {
        bail!("payments.poll_interval_ms, request_timeout_ms and drivers_max must be at least 1");
    }
    Ok(PaymentsConfig {
        connectors,
        public_url: settings.public_url.clone(),
        poll_interval_ms: settings.poll_interval_ms,
        request_timeout_ms: settings.request_timeout_ms,
        drivers_max: usize::try_from(settings.drivers_max)?,
        breaker: BreakerConfig {
            failures_max: settings.breaker_failures_max.max(1),
            open_ms: settings.breaker_open_ms,
        },
        explore_ppm: settings.explore_ppm.min(1_000_000),
        signing_key,
        ..PaymentsConfig::default()
    })
}

/// `[webhooks]` into the server's settings (the server checks them at start).
pub(super) fn webhooks_config(settings: &WebhooksSettings) -> anyhow::Result<WebhooksConfig> {
    let endpoints = settings
        .endpoints
        .iter()
        .map(|endpoint| WebhookEndpoint {
            id: endpoint.id.clone(),
            url: endpoint.url.clone(),
            secret: endpoint.secret.clone(),
            events: endpoint.events.clone(),
        })
        .collect();
    let config = WebhooksConfig {
        endpoints,
        attempts_max: settings.attempts_max,
        backoff_ms_first: settings.backoff_ms_first,
        backoff_ms_max: settings.backoff_ms_max,
        timeout_ms: settings.timeout_ms,
        in_flight_max: usize::try_from(settings.in_flight_max)?,
        log_entries_max: usize::try_from(settings.log_entries_max)?,
        log_file_bytes_max: settings.log_file_bytes_max,
        replay_queue_max: usize::try_from(settings.replay_queue_max)?,
    };
    config.validate()?;
    Ok(config)
}

fn connector_spec(settings: &ConnectorSettings) -> anyhow::Result<ConnectorSpec> {
    let id = &settings.id;
    if !croupier_core::payments::connector_name_ok(id) {
        bail!("payments.connectors: id {id:?} must be 1 to 32 of a-z, 0-9, - and _");
    }
    let protocol = match settings.protocol.as_str() {
        "obie" => Protocol::Obie,
        "berlin-group" => Protocol::BerlinGroup,
        other => bail!("payments.connectors.{id}: protocol {other:?} is not obie or berlin-group"),
    };
    let accounts = settings
        .accounts
        .iter()
        .map(|kind| match kind.as_str() {
            "iban" => Ok(AccountKind::Iban),
            "sort_code" => Ok(AccountKind::SortCode),
            other => {
                bail!("payments.connectors.{id}: account kind {other:?} is not iban or sort_code")
            }
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if settings.amount_max != 0 && settings.amount_max < settings.amount_min {
        bail!("payments.connectors.{id}: amount_max is below amount_min");
    }
    let tls = tls_client(settings)?;
    let operator_accounts = operator_accounts(settings)?;
    Ok(ConnectorSpec {
        id: id.clone(),
        protocol,
        base_url: settings.base_url.clone(),
        client_id: settings.client_id.clone(),
        client_secret: settings.client_secret.clone(),
        operator_accounts,
        rule: Rule {
            currencies: settings.currencies.clone(),
            countries: settings.countries.clone(),
            amount_min: settings.amount_min,
            amount_max: settings.amount_max,
            accounts,
        },
        cost: Cost {
            fixed_minor: settings.cost_fixed,
            basis_points: settings.cost_basis_points,
        },
        tls,
    })
}

/// `operator_accounts` as parties (an IBAN, or 14 digits: sort code and account number).
fn operator_accounts(settings: &ConnectorSettings) -> anyhow::Result<BTreeMap<String, Party>> {
    let id = &settings.id;
    if settings.operator_accounts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let Some(name) = settings
        .operator_name
        .clone()
        .filter(|n| !n.trim().is_empty())
    else {
        bail!("payments.connectors.{id}: operator_accounts needs operator_name");
    };
    let mut parties = BTreeMap::new();
    for (currency, identification) in &settings.operator_accounts {
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            bail!(
                "payments.connectors.{id}.operator_accounts: {currency:?} is not an ISO 4217 code"
            );
        }
        let compact: String = identification
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect::<String>()
            .to_ascii_uppercase();
        let account = if compact.len() == 14 && compact.bytes().all(|b| b.is_ascii_digit()) {
            AccountRef::SortCode {
                sort_code: compact[..6].to_string(),
                account_number: compact[6..].to_string(),
            }
        } else if (15..=34).contains(&compact.len())
            && compact[..2].bytes().all(|b| b.is_ascii_uppercase())
            && compact.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            AccountRef::Iban { iban: compact }
        } else {
            bail!(
                "payments.connectors.{id}.operator_accounts.{currency}: not an IBAN or a sort \
                 code and account number (14 digits)"
            );
        };
        parties.insert(
            currency.clone(),
            Party {
                account,
                name: name.clone(),
            },
        );
    }
    Ok(parties)
}

/// The connector's CA and client certificate files, read now (a missing file stops the
/// start with its name, not the first payment).
fn tls_client(settings: &ConnectorSettings) -> anyhow::Result<TlsClient> {
    let id = &settings.id;
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .with_context(|| format!("payments.connectors.{id}: reading {}", path.display()))
    };
    let ca_pem = settings.ca_file.as_ref().map(read).transpose()?;
    let identity_pem = match (&settings.client_cert_file, &settings.client_key_file) {
        (Some(cert), Some(key)) => {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            Some(pem)
        }
        (None, None) => None,
        _ => bail!("payments.connectors.{id}: client_cert_file and client_key_file go together"),
    };
    let tls_wanted = ca_pem.is_some() || identity_pem.is_some();
    if tls_wanted && !settings.base_url.starts_with("https://") {
        bail!("payments.connectors.{id}: TLS files are set but base_url is not https");
    }
    Ok(TlsClient {
        ca_pem,
        identity_pem,
    })
}

/// The node's signing key from `path`, or a new one written there (owner-only) if none is.
fn signing_key(path: &PathBuf) -> anyhow::Result<SigningKey> {
    match std::fs::read(path) {
        Ok(der) => SigningKey::from_pkcs1_der(&der)
            .with_context(|| format!("payments signing key {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate().context("making the payments signing key")?;
            let der = key
                .to_pkcs1_der()
                .context("encoding the payments signing key")?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(&der)?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), kid = key.kid(), "made the payments signing key");
            Ok(key)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}
