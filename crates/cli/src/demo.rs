//! `croupier serve --demo`: a living casino for a first look, on this machine only.
//!
//! What it adds to a normal `serve`, each step safe to repeat on the same data directory:
//! - four live tables when the settings name none: money-wheel, game-show-wheel, roulette,
//!   and a live-studio roulette (table 4) whose results come signed from a demo studio
//!   console (`studio_cmd::spawn_demo_console`) with the key kept in `DIR/demo-studio.key`;
//! - an admin key for the console, kept in `DIR/demo-admin.key` and printed at start;
//! - players `alice` and `bob` (password `demo`) and six bots, each credited 1,000.00 EUR
//!   once from a demo cashier account: the players, accounts and transfers are ordinary
//!   commands proposed to the node (attributed to the demo key in the operator audit trail),
//!   with fixed transfer ids, so a restart answers `exists` instead of crediting twice;
//! - the bots (`bots`), which log in and bet over HTTP on the node's own listener, as a
//!   player's browser does;
//! - a fictitious goAML reporting entity when the settings name none, so the console's goAML
//!   button saves a report.
//!
//! The passwords are deliberately weak and the key is printed: the demo refuses to listen on
//! anything but a loopback address, and refuses to join a cluster.

pub mod bots;
pub mod seed;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use croupier_server::auth::keys::{KeysFile, Role, OPERATOR_KEY_PREFIX};

pub use seed::seed;

use crate::config::{ServeSettings, TableSettings};

/// Where the demo keeps its admin key (the keys file holds only the key's hash).
pub const KEY_FILE_NAME: &str = "demo-admin.key";
/// The name the demo key carries in the keys file (`croupier keys list`).
const KEY_NAME: &str = "demo console";
/// The demo players' password: the demo is for trying things out on one's own machine.
pub const PASSWORD: &str = "demo";
/// The players a person logs in as.
pub const PLAYERS: [&str; 2] = ["alice", "bob"];
/// Simulated players betting on the tables.
pub const BOTS: usize = 6;
/// What each demo player and bot is credited once, in cents (1,000.00 EUR).
pub const FUNDS: u64 = 100_000;
pub const CURRENCY: &str = "EUR";
/// Short enough that a visitor sees rounds go by, long enough to place a bet by hand.
const BETTING_WINDOW_MS: u32 = 12_000;
/// The live-studio table, its game and where its studio's key is kept.
pub const STUDIO_TABLE: u32 = 4;
pub const STUDIO_GAME: &str = "roulette";
pub const STUDIO_KEY_FILE_NAME: &str = "demo-studio.key";

/// The demo's admin key: its id (for the audit trail) and the whole key (printed once a start).
pub struct DemoKey {
    pub key_id: String,
    pub key: String,
    pub file: PathBuf,
}

impl std::fmt::Debug for DemoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoKey")
            .field("key_id", &self.key_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Refuses settings a demo must not run with, and adds the demo tables when none are set.
pub fn prepare_settings(settings: &mut ServeSettings, listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "--demo listens on a loopback address only (its players' passwords are `demo` and \
             its admin key is printed); got {listen}"
        );
    }
    if settings.cluster.cluster_config.is_some()
        || settings.cluster.peer_listen.is_some()
        || settings.cluster.join.is_some()
    {
        anyhow::bail!("--demo runs a single node: remove the cluster settings");
    }
    if settings.tables.is_empty() {
        let studio_key = studio_key(&settings.data_dir)?;
        settings.tables = demo_tables(&studio_key.public().to_hex());
    }
    if settings.compliance.goaml.is_none() {
        settings.compliance.goaml = Some(demo_goaml());
    }
    Ok(())
}

/// A made-up reporting entity with the generic UNODC schema's lookup codes.
fn demo_goaml() -> crate::config::GoamlSettings {
    crate::config::GoamlSettings {
        rentity_id: 1,
        rentity_branch: "Croupier demo".into(),
        reporting_user_code: "DEMO".into(),
        operator_name: "Croupier Demo Casino (fictitious)".into(),
        currency_code_local: "EUR".into(),
        location: crate::config::GoamlAddressSettings {
            address_type: "1".into(),
            address: "1 Example Street".into(),
            city: "Valletta".into(),
            country_code: "MT".into(),
        },
        transmode_code: "A".into(),
        funds_code: "A".into(),
        report_indicators: vec!["-".into()],
        window_days: 90,
        movements_max: 1_000,
    }
}

/// The demo studio's key: the one an earlier demo start saved, else a new one.
pub fn studio_key(data_dir: &Path) -> anyhow::Result<croupier_games::certification::SecretKey> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let path = data_dir.join(STUDIO_KEY_FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => croupier_games::certification::SecretKey::from_file_text(&text)
            .with_context(|| format!("{}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            crate::games_cmd::create_key_file(&path, "Croupier demo studio key")
        }
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The four demo tables, in EUR cents: 0.10 to 100.00 per spot.
fn demo_tables(studio_public_key: &str) -> Vec<TableSettings> {
    ["money-wheel", "game-show-wheel", "roulette", STUDIO_GAME]
        .iter()
        .zip(1..)
        .map(|(game, id)| TableSettings {
            id,
            game: game.to_string(),
            currency: CURRENCY.to_string(),
            betting_window_ms: BETTING_WINDOW_MS,
            draw_delay_ms: 500,
            bets_total_interval_ms: croupier_server::tables::defaults::BETS_TOTAL_INTERVAL_MS,
            bet_min: 10,
            bet_max: 10_000,
            round_stake_max: 10_000_000,
            payout_max: 2_000_000,
            bets_per_round_max: 10_000,
            studio_public_key: (id == STUDIO_TABLE).then(|| studio_public_key.to_string()),
            // The demo console answers within a second; a stuck round is voided soon.
            studio_result_timeout_ms: 10_000,
        })
        .collect()
}

/// The demo admin key: the one saved by an earlier demo start if the keys file still accepts
/// it, else a new one added to the keys file and saved beside it (owner-only).
pub fn admin_key(data_dir: &Path, keys_path: &Path) -> anyhow::Result<DemoKey> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let file = data_dir.join(KEY_FILE_NAME);
    let mut keys = KeysFile::load(keys_path)?;
    if let Some(key) = saved_key(&file, &keys)? {
        return Ok(key);
    }
    let key = keys.add_operator(Role::Admin, KEY_NAME);
    keys.save(keys_path)?;
    croupier_server::auth::keys::write_private(&file, format!("{key}\n").as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    let key_id = key_id(&key).context("a new key has an id")?;
    Ok(DemoKey { key_id, key, file })
}

/// The key in `file` if the keys file holds it unrevoked.
fn saved_key(file: &Path, keys: &KeysFile) -> anyhow::Result<Option<DemoKey>> {
    let key = match std::fs::read_to_string(file) {
        Ok(text) => text.trim().to_string(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", file.display())),
    };
    let ring = croupier_server::auth::KeyRing::from_file(keys);
    let Some((key_id, Role::Admin)) = ring.operator(&key) else {
        return Ok(None);
    };
    Ok(Some(DemoKey {
        key_id: key_id.to_string(),
        key,
        file: file.to_path_buf(),
    }))
}

/// `crk.<id>.<secret>` → id.
fn key_id(key: &str) -> Option<String> {
    let rest = key.strip_prefix(OPERATOR_KEY_PREFIX)?;
    rest.split_once('.').map(|(id, _)| id.to_string())
}
