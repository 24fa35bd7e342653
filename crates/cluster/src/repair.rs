//! A cluster member whose storage is corrupt repairs itself from the other replicas instead of
//! staying down: the damaged files move to `DIR/quarantine-<ms>/` (kept for forensics), the
//! node starts empty (its vote file kept: it must never vote twice in a term) and catches up
//! from the leader (log or checkpoint).
//!
//! Until it has caught up it grants no votes and does not campaign: it may have acknowledged
//! entries it no longer holds, and a vote from it could help elect a candidate that lacks
//! them. Once it has applied the leader's last log index as observed after the restart, it
//! holds every committed entry again (leader completeness) and votes as before.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::Node;

/// What a repair moves aside: everything but the vote and the lock.
const QUARANTINED: [&str; 8] = [
    "log",
    "history",
    "events",
    "checkpoint",
    "consumers",
    "incoming",
    "replaced",
    "INSTALLING",
];
/// How often a repairing node compares its applied index with the leader's log.
const REPAIR_POLL_MS: u64 = 200;

/// Moves the damaged state into a quarantine directory; returns it.
pub(crate) fn quarantine(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join(format!("quarantine-{}", crate::cluster_mode::unix_ms()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    for name in QUARANTINED {
        let from = root.join(name);
        if from.exists() {
            let to = dir.join(name);
            std::fs::rename(&from, &to).map_err(|e| format!("move {}: {e}", from.display()))?;
        }
    }
    let sync = |path: &Path| std::fs::File::open(path).and_then(|f| f.sync_all());
    sync(&dir)
        .and_then(|()| sync(root))
        .map_err(|e| format!("fsync {}: {e}", root.display()))?;
    Ok(dir)
}

/// While repairing: no votes granted, no campaigns; ends once caught up with the leader.
pub(crate) fn spawn_watch(node: Node) {
    node.raft().runtime_config().elect(false);
    node.consensus_runtime().spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(REPAIR_POLL_MS)).await;
            if node.is_stopped() {
                return;
            }
            let Some(leader_last) = node.leader_last_log_index().await else {
                continue;
            };
            if node.applied_index() >= leader_last {
                node.inner_repairing().store(false, Ordering::SeqCst);
                node.raft().runtime_config().elect(true);
                tracing::info!(
                    applied = leader_last,
                    "repair complete: caught up with the leader; voting again"
                );
                return;
            }
        }
    });
}
