//! The national self-exclusion register (GAMSTOP-like): the node asks it about a player by the
//! name and birth date of the player's verified identity, when the identity is verified, at
//! each login, and in a sweep over every verified player (daily by default, on the leader
//! only). A positive match becomes a `SelfExclude` command from the register, so the ledger
//! refuses that player's bets and deposits from the next entry on, on every node, and the log
//! says why.
//!
//! Protocol (what `croupier sandbox register` serves): `POST {url}/v1/checks` with
//! `X-API-Key` and `{"name","birth_date":"YYYY-MM-DD"}` answers
//! `{"excluded":bool,"until":"YYYY-MM-DD"|null}`. Plain HTTP through a blocking client on the
//! blocking pool: a few calls per login, and no TLS stack in the server yet (a real register is
//! HTTPS; the payments work brings rustls).

use std::fmt;
use std::time::Duration;

use croupier_cluster::Consensus;
use croupier_core::compliance::{
    format_iso_date, parse_iso_date_days, ComplianceCommand, ExclusionSource, NANOS_PER_DAY,
    SELF_EXCLUSION_DAYS_MAX,
};
use croupier_core::players::PlayerId;
use croupier_core::Command;
use serde::Deserialize;

/// Players read per step of the sweep (one stale read each), so a sweep over millions of
/// players never holds them all in memory.
const SWEEP_PAGE_PLAYERS_MAX: usize = 1_000;

#[derive(Clone)]
pub struct RegisterConfig {
    /// Base URL, e.g. `http://127.0.0.1:9301`.
    pub url: String,
    /// Sent as `X-API-Key`. Never printed.
    pub api_key: Option<String>,
    pub timeout_ms: u64,
    /// How often every verified player is checked again.
    pub sweep_interval_s: u64,
}

impl fmt::Debug for RegisterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("sweep_interval_s", &self.sweep_interval_s)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("the register is unreachable: {0}")]
    Unreachable(String),
    #[error("the register answered HTTP {0}")]
    Status(u16),
    #[error("the register's answer is not understood: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct CheckAnswer {
    excluded: bool,
    until: Option<String>,
}

/// What the register says of one person: `Some(until)` (days since 1970; None: indefinite)
/// when excluded.
pub type Match = Option<Option<i64>>;

/// Asks the register about one person (on the blocking pool).
pub async fn check(
    config: &RegisterConfig,
    name: &str,
    birth_date_days: i32,
) -> Result<Match, RegisterError> {
    let body = serde_json::json!({
        "name": name,
        "birth_date": format_iso_date(birth_date_days.into()),
    });
    let url = format!("{}/v1/checks", config.url.trim_end_matches('/'));
    let api_key = config.api_key.clone();
    let timeout = Duration::from_millis(config.timeout_ms);
    let answer = tokio::task::spawn_blocking(move || post_check(&url, api_key, timeout, &body))
        .await
        .map_err(|error| RegisterError::Unreachable(error.to_string()))??;
    if !answer.excluded {
        return Ok(None);
    }
    let until = match answer.until.as_deref() {
        None => None,
        Some(text) => Some(parse_iso_date_days(text).ok_or_else(|| {
            RegisterError::Malformed(format!(
                "until {:?} is not a date",
                crate::quote::input_prefix(text)
            ))
        })?),
    };
    Ok(Some(until))
}

fn post_check(
    url: &str,
    api_key: Option<String>,
    timeout: Duration,
    body: &serde_json::Value,
) -> Result<CheckAnswer, RegisterError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(url).header("content-type", "application/json");
    if let Some(key) = api_key {
        request = request.header("x-api-key", key);
    }
    let mut response = request
        .send(body.to_string())
        .map_err(|error| RegisterError::Unreachable(error.to_string()))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(RegisterError::Status(status));
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .map_err(|error| RegisterError::Malformed(error.to_string()))?;
    serde_json::from_str(&text).map_err(|error| RegisterError::Malformed(error.to_string()))
}

/// How long the ledger excludes a player the register names: until the register's date (at
/// least a day), or the longest self-exclusion when the register gives none.
pub fn exclusion_days(until_days: Option<i64>, today_days: i64) -> u16 {
    let max = i64::from(SELF_EXCLUSION_DAYS_MAX);
    let days = until_days.map_or(max, |until| (until - today_days).clamp(1, max));
    days as u16
}

fn today_days() -> i64 {
    (crate::auth::wall_clock_ns() / NANOS_PER_DAY) as i64
}

/// Checks one player against the register and self-excludes it on a match. Players without
/// a verified name and birth date cannot be matched (nothing is sent).
pub async fn check_player<C: Consensus>(
    consensus: &C,
    config: &RegisterConfig,
    player_id: PlayerId,
) -> Result<bool, RegisterError> {
    let person = consensus
        .read_stale(move |view| person_of(view.ledger(), player_id))
        .await
        .map_err(|error| RegisterError::Unreachable(error.to_string()))?;
    let Some((name, birth_date_days)) = person else {
        return Ok(false);
    };
    let Some(until) = check(config, &name, birth_date_days).await? else {
        return Ok(false);
    };
    let command = Command::Compliance(ComplianceCommand::SelfExclude {
        player_id,
        days: exclusion_days(until, today_days()),
        source: ExclusionSource::Register,
    });
    consensus
        .propose(vec![command])
        .await
        .map_err(|error| RegisterError::Unreachable(error.to_string()))?;
    tracing::info!(%player_id, "self-excluded by the national register");
    Ok(true)
}

/// The name and birth date of a player's verified identity, if it has both.
fn person_of(ledger: &croupier_core::Ledger, player_id: PlayerId) -> Option<(String, i32)> {
    let identity = ledger.player_compliance(player_id)?.identity.as_deref()?;
    let birth = identity.birth_date_days?;
    (!identity.name.is_empty()).then(|| (identity.name.clone(), birth))
}

/// Checks `player_id` in the background (after a login): the answer never delays the caller.
pub fn check_later<C: Consensus>(consensus: C, config: RegisterConfig, player_id: PlayerId) {
    tokio::spawn(async move {
        if let Err(error) = check_player(&consensus, &config, player_id).await {
            tracing::warn!(%error, %player_id, "national register check failed; the sweep retries");
        }
    });
}

/// Every `sweep_interval_s`, on the node serving writes, checks every verified player.
pub async fn sweep<C: Consensus>(
    consensus: C,
    config: RegisterConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(config.sweep_interval_s.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = tick.tick() => {}
        }
        if consensus.is_serving_writes() {
            sweep_once(&consensus, &config).await;
        }
    }
}

async fn sweep_once<C: Consensus>(consensus: &C, config: &RegisterConfig) {
    let (mut from, mut checked, mut matched) = (0usize, 0u64, 0u64);
    loop {
        let page = consensus
            .read_stale(move |view| verified_players(view.ledger(), from))
            .await;
        let Ok((players, next)) = page else { return };
        for player_id in players {
            checked += 1;
            match check_player(consensus, config, player_id).await {
                Ok(true) => matched += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(%error, "national register sweep stopped; next sweep retries");
                    return;
                }
            }
        }
        match next {
            Some(next) => from = next,
            None => break,
        }
    }
    tracing::info!(checked, matched, "national register sweep done");
}

/// Up to a page of verified players not excluded now, from registration number `from`, and
/// where the next page starts.
fn verified_players(ledger: &croupier_core::Ledger, from: usize) -> (Vec<PlayerId>, Option<usize>) {
    let count = ledger.player_count();
    let end = (from + SWEEP_PAGE_PLAYERS_MAX).min(count);
    let now = ledger.compliance_now_ns();
    let players = (from..end)
        .map(|sequence| croupier_core::ids::player_id(sequence as u64))
        .filter(|&id| {
            ledger.player_compliance(id).is_some_and(|state| {
                state.self_excluded_until_ns <= now && state.identity.is_some()
            })
        })
        .collect();
    (players, (end < count).then_some(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registers_date_sets_the_exclusions_length_within_the_ledgers_bounds() {
        let today = 20_000;
        assert_eq!(exclusion_days(Some(today + 400), today), 400);
        assert_eq!(exclusion_days(Some(today - 5), today), 1);
        assert_eq!(exclusion_days(Some(today + 9_000), today), 1826);
        assert_eq!(exclusion_days(None, today), 1826);
    }
}
