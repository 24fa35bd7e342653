//! `croupier sandbox register`: a sandbox national self-exclusion register (GAMSTOP-like), its
//! own process with durable state, for tests and demos of the node's register checks.
//!
//! - `POST /v1/exclusions` `{"name","birth_date":"YYYY-MM-DD","days"?}` registers a person
//!   (what a member of the public does on the register's site): 201 `{"until"}` (null without
//!   `days`: indefinite).
//! - `POST /v1/checks` `{"name","birth_date"}` is what an operator asks: 200
//!   `{"excluded":bool,"until":"YYYY-MM-DD"|null}`. With `--api-key-file`, both routes need
//!   `X-API-Key` (401 otherwise).
//!
//! People match by name (case and spacing ignored) and exact birth date. State is one JSON
//! file in `--data-dir`, rewritten whole (temporary file, fsync, rename) on every change: a
//! sandbox holds a handful of people.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use clap::Args;
use croupier_core::compliance::{format_iso_date, parse_iso_date_days};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::common::{init_tracing, write_owner_only, Problem, StopSignals};

const STATE_FILE: &str = "register.json";
/// People the sandbox holds: its state is rewritten whole on each change.
const ENTRIES_MAX: usize = 100_000;
const NAME_LEN_MAX: usize = 256;

#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// Address to listen on (port 0: any free port; the ready line names it).
    #[arg(long, default_value = "127.0.0.1:9301")]
    listen: String,
    /// Where the register keeps its entries (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// A file holding the API key callers must send as `X-API-Key`; unset: no key.
    #[arg(long)]
    api_key_file: Option<PathBuf>,
}

#[derive(Default, Serialize, Deserialize)]
struct Entries {
    /// By "birth date (days since 1970)|normalized name": `until` as days since 1970 (None:
    /// indefinite).
    people: BTreeMap<String, Option<i64>>,
}

struct Register {
    dir: PathBuf,
    api_key: Option<String>,
    entries: Mutex<Entries>,
}

pub fn run(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: RegisterArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let api_key = match &args.api_key_file {
        None => None,
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .trim()
                .to_string(),
        ),
    };
    let register = Arc::new(Register {
        entries: Mutex::new(load(&args.data_dir)?),
        dir: args.data_dir,
        api_key,
    });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/v1/exclusions", post(add_exclusion))
        .route("/v1/checks", post(check))
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route".into())
        })
        .with_state(register);
    let stop = StopSignals::listen()?;
    println!("sandbox register listening on {addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.wait())
        .await
        .context("serving")?;
    tracing::info!("sandbox register stopped");
    Ok(())
}

fn load(dir: &Path) -> anyhow::Result<Entries> {
    let path = dir.join(STATE_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Entries::default()),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonIn {
    name: String,
    birth_date: String,
    #[serde(default)]
    days: Option<u32>,
}

/// The matching key: name lower-cased with spaces collapsed, and the birth date.
fn key_of(person: &PersonIn) -> Result<String, Problem> {
    let name = person
        .name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    if name.is_empty() || name.len() > NAME_LEN_MAX {
        let message = format!("name must have 1 to {NAME_LEN_MAX} bytes");
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            message,
        ));
    }
    let days = parse_iso_date_days(&person.birth_date).ok_or_else(|| {
        let message = "birth_date must be a date YYYY-MM-DD".to_string();
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
    })?;
    Ok(format!("{days}|{name}"))
}

fn today_days() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.map_or(0, |elapsed| (elapsed.as_secs() / 86_400) as i64)
}

fn parse_person(
    register: &Register,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<PersonIn, Problem> {
    if let Some(key) = &register.api_key {
        let sent = headers
            .get("x-api-key")
            .and_then(|value| value.to_str().ok());
        if sent != Some(key.as_str()) {
            let message = "a valid X-API-Key is required".to_string();
            return Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                message,
            ));
        }
    }
    serde_json::from_slice(body).map_err(|error| Problem::from_json_error(&error))
}

async fn add_exclusion(
    State(register): State<Arc<Register>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let added = parse_person(&register, &headers, &body).and_then(|person| {
        let key = key_of(&person)?;
        let until = person.days.map(|days| today_days() + i64::from(days));
        let mut entries = register
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if entries.people.len() >= ENTRIES_MAX && !entries.people.contains_key(&key) {
            let message = format!("the sandbox holds at most {ENTRIES_MAX} people");
            return Err(Problem::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "full",
                message,
            ));
        }
        entries.people.insert(key, until);
        let bytes = serde_json::to_vec(&*entries).expect("entries serialize");
        write_owner_only(&register.dir.join(STATE_FILE), &bytes).map_err(|error| {
            tracing::error!(%error, "cannot save the register");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                error.to_string(),
            )
        })?;
        Ok(until)
    });
    match added {
        Ok(until) => {
            tracing::info!("person registered");
            (
                StatusCode::CREATED,
                Json(json!({"until": until.map(format_iso_date)})),
            )
                .into_response()
        }
        Err(problem) => problem.into_response(),
    }
}

async fn check(State(register): State<Arc<Register>>, headers: HeaderMap, body: Bytes) -> Response {
    let answer = parse_person(&register, &headers, &body).and_then(|person| {
        let key = key_of(&person)?;
        let entries = register
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let until = entries.people.get(&key).copied();
        // An entry whose date has passed no longer excludes.
        Ok(until.filter(|until| until.is_none_or(|day| day > today_days())))
    });
    match answer {
        Ok(Some(until)) => {
            Json(json!({"excluded": true, "until": until.map(format_iso_date)})).into_response()
        }
        Ok(None) => Json(json!({"excluded": false, "until": null})).into_response(),
        Err(problem) => problem.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_whatever_their_case_and_spacing() {
        let person = |name: &str| PersonIn {
            name: name.into(),
            birth_date: "1990-04-01".into(),
            days: None,
        };
        let key = key_of(&person("Alice  Example")).ok();
        assert_eq!(key, key_of(&person(" alice example ")).ok());
        assert!(key_of(&person("   ")).is_err());
        assert_eq!(parse_iso_date_days("1990-02-30"), None);
    }
}
