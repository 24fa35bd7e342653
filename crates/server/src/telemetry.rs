//! Prometheus metrics (one recorder per process) and the outermost middleware: it counts and
//! times every request and, as a last resort, turns a handler panic into a JSON 500.

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::error::ApiError;

/// Latency buckets (seconds) for every `*_seconds` histogram.
const SECONDS_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
/// Buckets for every other histogram: counts such as commands or items per entry.
const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
    16384.0, 32768.0,
];
/// Histograms accumulate samples between scrapes; upkeep folds them so memory stays bounded.
pub const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder on first call and returns its handle.
/// If another recorder was installed first, ours still renders (whatever reaches it).
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets(COUNT_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            })
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "histogram buckets refused; using summaries");
                PrometheusBuilder::new()
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "a metrics recorder was already installed; /metrics may be empty");
        }
        describe_metrics();
        handle
    })
}

fn describe_metrics() {
    metrics::describe_counter!("croupier_http_requests_total", "HTTP requests answered");
    metrics::describe_histogram!(
        "croupier_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from request received to response ready"
    );
    metrics::describe_histogram!(
        "croupier_group_commit_commands_per_entry",
        "Requests (commands) coalesced into one log entry"
    );
    metrics::describe_histogram!(
        "croupier_group_commit_items_per_entry",
        "Accounts, transfers and wallet calls in one log entry"
    );
    metrics::describe_histogram!(
        "croupier_group_commit_propose_duration_seconds",
        metrics::Unit::Seconds,
        "Time from proposing an entry to its results (durable, committed, applied)"
    );
    metrics::describe_gauge!(
        "croupier_group_commit_queue_depth",
        "Commands waiting for the next entry"
    );
    metrics::describe_histogram!(
        "croupier_aml_lag_seconds",
        metrics::Unit::Seconds,
        "Time from an event's commit to the AML pipeline's decisions on it being committed"
    );
    metrics::describe_counter!(
        "croupier_aml_events_total",
        "Committed events the AML pipeline has decided on"
    );
}

/// Counts and times the request; a panic below becomes a JSON 500 (no code path should).
pub async fn observe(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| crate::paths::route_label(path.as_str()));
    let method = method_label(request.method());
    let started = Instant::now();
    let response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(route, method, "request handler panicked");
            ApiError::internal("the server failed while handling this request").into_response()
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let status = status_label(response.status());
    metrics::counter!("croupier_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("croupier_http_request_duration_seconds", "route" => route).record(elapsed);
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        400 => "400",
        402 => "402",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        500 => "500",
        503 => "503",
        code if code < 300 => "2xx",
        code if code < 400 => "3xx",
        code if code < 500 => "4xx",
        _ => "5xx",
    }
}
