//! What the sandboxes share: stop signals, logging to stderr, JSON refusals and durable
//! owner-only files.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tracing_subscriber::EnvFilter;

pub(super) struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub(super) fn listen() -> anyhow::Result<StopSignals> {
        Ok(StopSignals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }

    pub(super) async fn wait(mut self) {
        let name = tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "stopping");
    }
}

pub(super) fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .try_init();
}

/// A refusal: status and `{"code","message"}`.
pub(super) struct Problem {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Problem {
    pub(super) fn new(status: StatusCode, code: &'static str, message: String) -> Problem {
        Problem {
            status,
            code,
            message,
        }
    }

    /// Not JSON at all is 400; JSON of the wrong shape (a missing field, a wrong type, an
    /// unknown field) is 422.
    pub(super) fn from_json_error(error: &serde_json::Error) -> Problem {
        let message = format!("request body: {error}");
        match error.classify() {
            serde_json::error::Category::Data => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
            }
            _ => Problem::new(StatusCode::BAD_REQUEST, "malformed_json", message),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Json(json!({ "code": self.code, "message": self.message }));
        (self.status, body).into_response()
    }
}

/// Writes `bytes` to `path`, owner-only, all or nothing: a temporary file, synced, renamed over
/// `path`, and the directory synced so the rename survives a crash.
pub(super) fn write_owner_only(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("json.tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    // `mode` applies only to a new file: a temporary left by a crash keeps its old one.
    file.set_permissions(Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path).with_context(|| format!("renaming to {}", path.display()))?;
    let dir = path.parent().filter(|dir| !dir.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()?;
    Ok(())
}
