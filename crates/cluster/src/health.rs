//! What the node can do right now, for `/healthz` and for refusing writes early.
//!
//! A disk-space guard samples the free space of the data directory's file system a few times a
//! second; below the configured reserve the node refuses new writes (503
//! `storage_unavailable`) and keeps serving reads, and it accepts writes again by itself once
//! space returns. Refusing before the log is written is what makes resuming safe: the log is
//! never left with a failed write or fsync behind an acknowledged entry.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where the guard learns the free space: the file system, or (fault injection in tests and
/// drills) a file holding a number of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreeSpaceProbe {
    FileSystem,
    /// Reads the free byte count from this file each time; a missing or unreadable file counts
    /// as plenty of space.
    File(PathBuf),
}

/// How often the guard samples the free space.
const FREE_SPACE_SAMPLE_MS: u64 = 250;

/// The node's state as an operator needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeHealth {
    /// Leads and accepts writes.
    Serving,
    /// Not (yet) the leader, or still replaying its log.
    NotReady,
    /// Writes refused: the data directory's file system is below its reserve. Reads are served.
    DiskFull {
        free_bytes: u64,
        reserve_bytes: u64,
    },
    /// Storage or consensus failed; the process should exit and be restarted.
    Failed(String),
    Stopped,
}

#[derive(Debug)]
pub(crate) struct DiskGuard {
    free_bytes: AtomicU64,
    reserve_bytes: u64,
    dir: PathBuf,
    probe: FreeSpaceProbe,
}

impl DiskGuard {
    pub(crate) fn new(dir: PathBuf, reserve_bytes: u64, probe: FreeSpaceProbe) -> Arc<DiskGuard> {
        let guard = Arc::new(DiskGuard {
            free_bytes: AtomicU64::new(u64::MAX),
            reserve_bytes,
            dir,
            probe,
        });
        guard.sample();
        guard
    }

    fn sample(&self) {
        let free = match &self.probe {
            FreeSpaceProbe::FileSystem => {
                croupier_store::disk::available_bytes(&self.dir).unwrap_or(u64::MAX)
            }
            FreeSpaceProbe::File(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .unwrap_or(u64::MAX),
        };
        let before = self.free_bytes.swap(free, Ordering::Relaxed);
        let (was_full, is_full) = (before < self.reserve_bytes, free < self.reserve_bytes);
        if is_full && !was_full {
            tracing::error!(free_bytes = free, reserve_bytes = self.reserve_bytes, dir = %self.dir.display(),
                "disk almost full: refusing writes until space returns (reads are served)");
        } else if was_full && !is_full {
            tracing::info!(
                free_bytes = free,
                "disk space is back: accepting writes again"
            );
        }
    }

    /// `Some((free, reserve))` while writes must be refused.
    pub(crate) fn full(&self) -> Option<(u64, u64)> {
        let free = self.free_bytes.load(Ordering::Relaxed);
        (free < self.reserve_bytes).then_some((free, self.reserve_bytes))
    }

    pub(crate) fn spawn_sampler(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        stopped: impl Fn() -> bool + Send + 'static,
    ) {
        let guard = Arc::clone(self);
        runtime.spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(FREE_SPACE_SAMPLE_MS));
            loop {
                interval.tick().await;
                if stopped() {
                    return;
                }
                let sampler = Arc::clone(&guard);
                // statvfs is a blocking syscall, cheap but not free of I/O.
                let _ = crate::simulation::blocking(move || sampler.sample()).await;
            }
        });
    }
}
