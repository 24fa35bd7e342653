//! The command-line flags of the settings. Each is an `Option` with no clap default: a flag
//! overrides the file and the environment only when it is given, so `load` merges the given
//! ones (`None` fields are dropped) as the last, strongest source. A flag is named like its key
//! (`--cache-size-max` is `storage.cache_size_max`), which is how errors name the flag.

use std::path::PathBuf;

use serde::Serialize;

use super::size;

#[derive(clap::Args, Serialize, Default)]
pub struct SettingsFlags {
    /// A TOML settings file (`croupier config print-default` prints one with the defaults);
    /// also CROUPIER_CONFIG. Environment variables CROUPIER_* override it, flags override both.
    #[arg(long, value_name = "PATH")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Where the log, snapshots and vote are kept (created if missing) [default: ./croupier-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address for the HTTP API (host:port). Default 127.0.0.1:8080, or this node's `api`
    /// in the cluster config.
    #[arg(long)]
    listen: Option<String>,
    /// This node's id in its cluster (a positive integer, unique among the members) [default: 1].
    #[arg(long)]
    node_id: Option<u64>,
    #[command(flatten)]
    cluster: ClusterFlags,
    #[command(flatten)]
    storage: StorageFlags,
    #[command(flatten)]
    group_commit: GroupCommitFlags,
    #[command(flatten)]
    auth: AuthFlags,
}

#[derive(clap::Args, Serialize, Default)]
#[command(next_help_heading = "Access control")]
struct AuthFlags {
    /// Operator and provider keys (`croupier keys`); default: DATA_DIR/keys.toml.
    #[arg(long)]
    keys_file: Option<PathBuf>,
}

#[derive(clap::Args, Serialize, Default)]
#[command(next_help_heading = "Cluster")]
struct ClusterFlags {
    /// Address for node-to-node traffic (host:port). Makes the node a cluster member; default:
    /// this node's `peer` in the cluster config.
    #[arg(long)]
    peer_listen: Option<String>,
    /// A TOML file naming the cluster's initial members (`[[node]] id, api, peer`); on first
    /// start the lowest id forms the cluster.
    #[arg(long, conflicts_with = "join")]
    cluster_config: Option<PathBuf>,
    /// Join a running cluster through this member's peer address (it forwards to the leader).
    #[arg(long)]
    join: Option<String>,
    /// A file holding the cluster's shared secret (at least 16 bytes; surrounding whitespace is
    /// ignored): every node-to-node connection proves it. Without one, the peer listener must be
    /// on a loopback address.
    #[arg(long = "cluster-secret-file")]
    secret_file: Option<PathBuf>,
    /// Raft heartbeat interval; elections start after 4-8 heartbeats without a leader
    /// [default: 50].
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// A leader whose clock is farther than this from a quorum's refuses to propose [default: 500].
    #[arg(long)]
    clock_skew_max_ms: Option<u64>,
}

#[derive(clap::Args, Serialize, Default)]
#[command(next_help_heading = "Storage")]
struct StorageFlags {
    /// Memory budget for everything that grows with history (id index memtables and filters,
    /// the log entry cache), e.g. 1GiB, 512MiB, 268435456. Accounts and open pending transfers
    /// are held in memory besides it [default: 1GiB].
    #[arg(long, value_parser = size::parse)]
    cache_size_max: Option<u64>,
    /// Take a checkpoint after this many log bytes since the last one [default: 256MiB].
    #[arg(long, value_parser = size::parse)]
    checkpoint_log_bytes: Option<u64>,
    /// ...or after this many log entries since the last one, whichever comes first
    /// [default: 20000].
    #[arg(long)]
    checkpoint_entries: Option<u64>,
    /// Log entries kept behind the latest checkpoint, so a follower that lags by less catches
    /// up from the log instead of receiving a whole checkpoint [default: 1000].
    #[arg(long)]
    log_entries_kept: Option<u64>,
    /// Keep committed events up to this size on disk (0: keep them all). Opening the event log
    /// reads the retained events once, so this also bounds that part of a restart [default: 1GiB].
    #[arg(long, value_parser = size::parse)]
    event_retention_size: Option<u64>,
    /// Keep committed events at most this many seconds (0: whatever their age) [default: 0].
    #[arg(long)]
    event_retention_s: Option<u64>,
    /// Refuse writes (503 storage_unavailable) while the data directory's disk has less free
    /// space than this; writes resume by themselves once space returns [default: 256MiB].
    #[arg(long, value_parser = size::parse)]
    disk_reserve: Option<u64>,
}

#[derive(clap::Args, Serialize, Default)]
#[command(next_help_heading = "Group commit")]
struct GroupCommitFlags {
    /// Commands waiting for the next log entry before requests answer 503 overloaded
    /// [default: 16384].
    #[arg(long)]
    queue_depth_max: Option<usize>,
    /// ...or once the waiting commands hold this many bytes (at least one full request, about
    /// 0.8MB) [default: 64MiB].
    #[arg(long, value_parser = size::parse)]
    queue_bytes_max: Option<u64>,
    /// Log entries proposed and not yet durable at once [default: 1].
    #[arg(long)]
    proposals_in_flight_max: Option<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        flags: SettingsFlags,
    }

    /// The flags carry no clap default (it would override the file), so their help states it
    /// in words: it must be the real one.
    #[test]
    fn defaults_in_the_help_are_the_real_defaults() {
        let defaults: toml::Table =
            toml::from_str(&toml::to_string(&super::super::ServeSettings::default()).unwrap())
                .unwrap();
        let sections: Vec<&toml::Table> = std::iter::once(&defaults)
            .chain(defaults.values().filter_map(|value| value.as_table()))
            .collect();
        let mut checked = 0;
        for arg in Wrapper::command().get_arguments() {
            let help = arg
                .get_help()
                .map(|help| help.to_string())
                .unwrap_or_default();
            let Some((_, stated)) = help.split_once("[default: ") else {
                continue;
            };
            let stated = stated.trim_end_matches(['.', ']']);
            let key = arg.get_id().as_str();
            let real = sections.iter().find_map(|table| table.get(key)).unwrap();
            let real = real
                .as_str()
                .map_or_else(|| real.to_string(), str::to_owned);
            assert_eq!(stated, real, "--{key}");
            checked += 1;
        }
        assert_eq!(checked, 14);
    }
}
