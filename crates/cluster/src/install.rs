//! Installing a leader's checkpoint over whatever this node holds, crash-safely.
//!
//! A follower that fell behind the leader's log (or a new, empty one) receives a checkpoint
//! archive. Raft discards the follower's log only once the snapshot is saved; so here:
//!
//! 1. unpack the archive into `DIR/incoming/` (every file fsynced, its checkpoint current);
//! 2. write `DIR/INSTALLING` (durable): from here on the install is completed, never undone;
//! 3. move `history/`, `events/` and `checkpoint/` into `DIR/replaced/` and the unpacked
//!    `history/` and `checkpoint/` into place (events start empty after the checkpoint);
//! 4. move the log's purge point to the checkpoint's last entry (the log writer);
//! 5. open the new history; remove the marker, then `replaced/` and `incoming/`.
//!
//! A crash anywhere after step 2 is finished by `resume` at the next start, before anything
//! is opened: steps 3 and 4 are idempotent. A crash before it leaves the old state in force and
//! `incoming/` is thrown away.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use croupier_store::fs::FileSystem;
use croupier_store::{CheckpointManifest, CheckpointStore, LogStore, StoreError};

const MARKER: &str = "INSTALLING";
const INCOMING: &str = "incoming";
const REPLACED: &str = "replaced";
/// The parts of a data directory a checkpoint replaces, in the order they move (the
/// checkpoint last: it names what the rest must hold).
const PARTS: [&str; 3] = ["history", "events", "checkpoint"];

fn io_error(what: &str, path: &Path, error: std::io::Error) -> String {
    format!("{what} {}: {error}", path.display())
}

/// Steps 1 and 2: the archive unpacked into `incoming/` and the install marked as committed.
pub(crate) fn unpack_and_mark(
    fs: &Arc<dyn FileSystem>,
    root: &Path,
    archive: &mut impl Read,
) -> Result<CheckpointManifest, String> {
    let incoming = root.join(INCOMING);
    // What an earlier, interrupted attempt left there (before its marker) is worthless.
    fs.remove_dir_all(&incoming)
        .map_err(|e| io_error("remove", &incoming, e))?;
    fs.create_dir_all(&incoming)
        .map_err(|e| io_error("create", &incoming, e))?;
    let manifest = croupier_store::archive::unpack(Arc::clone(fs), &incoming, archive)
        .map_err(|e| e.to_string())?;
    fs.sync_dir(root).map_err(|e| io_error("fsync", root, e))?;
    let marker = root.join(MARKER);
    let mut file = fs
        .create(&marker)
        .map_err(|e| io_error("create", &marker, e))?;
    file.sync_data()
        .map_err(|e| io_error("fsync", &marker, e))?;
    fs.sync_dir(root).map_err(|e| io_error("fsync", root, e))?;
    Ok(manifest)
}

/// Step 3 (idempotent): the unpacked parts in place, the old ones in `replaced/`.
pub(crate) fn swap_in(fs: &Arc<dyn FileSystem>, root: &Path) -> Result<(), String> {
    let replaced = root.join(REPLACED);
    fs.create_dir_all(&replaced)
        .map_err(|e| io_error("create", &replaced, e))?;
    for part in PARTS {
        let (incoming, current, old) = (
            root.join(INCOMING).join(part),
            root.join(part),
            replaced.join(part),
        );
        let has = |dir: &Path| fs.dir_exists(dir).map_err(|e| io_error("look at", dir, e));
        let arriving = has(&incoming)?;
        // Events do not travel with a checkpoint: the old feed moves away once, and the new
        // one is created empty when the history opens.
        let moves_out = if part == "events" {
            !has(&old)?
        } else {
            arriving
        };
        if moves_out && has(&current)? {
            if has(&old)? {
                fs.remove_dir_all(&old)
                    .map_err(|e| io_error("remove", &old, e))?;
            }
            fs.rename(&current, &old)
                .map_err(|e| io_error("move", &current, e))?;
        }
        if arriving {
            fs.rename(&incoming, &current)
                .map_err(|e| io_error("move", &incoming, e))?;
        }
    }
    fs.sync_dir(&replaced)
        .map_err(|e| io_error("fsync", &replaced, e))?;
    fs.sync_dir(root).map_err(|e| io_error("fsync", root, e))
}

/// Step 5: the install is complete; what it replaced goes.
pub(crate) fn finish(fs: &Arc<dyn FileSystem>, root: &Path) -> Result<(), String> {
    let marker = root.join(MARKER);
    fs.remove_file(&marker)
        .map_err(|e| io_error("remove", &marker, e))?;
    fs.sync_dir(root).map_err(|e| io_error("fsync", root, e))?;
    for leftover in [REPLACED, INCOMING] {
        let _ = fs.remove_dir_all(&root.join(leftover));
    }
    Ok(())
}

/// At start, before the log, history or checkpoint are opened: completes steps 3 of an
/// install that was marked committed. Returns whether one was (then `resume_log` must run).
pub(crate) fn resume_parts(fs: &Arc<dyn FileSystem>, root: &Path) -> Result<bool, String> {
    let marker = root.join(MARKER);
    let marked = fs.open_read_only(&marker).is_ok();
    if marked {
        tracing::warn!(dir = %root.display(), "finishing the install of a leader's checkpoint interrupted by a crash");
        swap_in(fs, root)?;
    } else {
        // An attempt that never reached its marker: the old state stays in force.
        let _ = fs.remove_dir_all(&root.join(INCOMING));
    }
    Ok(marked)
}

/// Steps 4 and 5 of an interrupted install, with the log open: its purge point moves to the
/// installed checkpoint's last entry (a conflicting suffix was never committed: dropped).
pub(crate) fn resume_log(
    fs: &Arc<dyn FileSystem>,
    root: &Path,
    log: &mut LogStore,
    checkpoints: &CheckpointStore,
) -> Result<(), String> {
    let manifest = checkpoints
        .current()
        .map_err(|e| e.to_string())?
        .ok_or("an interrupted checkpoint install left no checkpoint in force")?;
    let (index, term, head) = (manifest.last_index, manifest.last_term, manifest.chain_head);
    match log.purge_through_snapshot(index, term, head) {
        Err(StoreError::SnapshotConflict { .. }) => {
            log.truncate_from(index).map_err(|e| e.to_string())?;
            log.purge_through_snapshot(index, term, head)
                .map_err(|e| e.to_string())?;
        }
        other => other.map_err(|e| e.to_string())?,
    }
    finish(fs, root)
}
