//! Names of the metrics this crate records (the server installs the Prometheus recorder).

pub(crate) const LOG_FSYNC_SECONDS: &str = "croupier_log_fsync_seconds";
pub(crate) const LOG_ENTRIES_TOTAL: &str = "croupier_log_entries_total";
pub(crate) const LOG_BYTES_TOTAL: &str = "croupier_log_bytes_total";
pub(crate) const COMMANDS_PER_ENTRY: &str = "croupier_commands_per_entry";
pub(crate) const APPLY_SECONDS: &str = "croupier_apply_seconds";
pub(crate) const SNAPSHOT_SECONDS: &str = "croupier_snapshot_seconds";
pub(crate) const CLOCK_REFUSALS: &str = "croupier_clock_refusals_total";
