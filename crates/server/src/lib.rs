//! Croupier's HTTP API: routes, JSON shapes and errors, group commit of concurrent requests
//! into one log entry, the OpenAPI document and Prometheus metrics.
//!
//! It is the only crate that knows HTTP. It must not know: on-disk formats or openraft.
