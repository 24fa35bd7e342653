//! One process per data directory: an exclusive advisory lock on `DIR/LOCK`, held for as long
//! as the [`DataDirLock`] value lives.
//!
//! Two processes appending to the same segment would interleave frames and fork the chain;
//! two processes each "recovering" a torn tail would cut each other's records. The store's
//! recovery rules assume a single writer, so the node takes this lock before opening anything
//! in the directory, and `audit verify` takes the same lock (the audit reads the tail while a
//! running node may be writing it, which would look like corruption).
//!
//! # Why `flock(2)` through `rustix`
//!
//! `flock` locks belong to the open file description: the kernel drops them when the file is
//! closed or the process dies (even by SIGKILL), so a crashed node never leaves a lock behind,
//! and two opens in one process conflict (POSIX `fcntl` locks would not: they are per process
//! and vanish when *any* descriptor of the file is closed). `rustix` (features `std`, `fs` only)
//! is the lightest safe wrapper: it is already in the workspace's lock file (through
//! `tempfile`), makes the system call directly without libc, and `fs4`/`fs2` would only wrap
//! the same call (`fs4` through `rustix` itself; `fs2` is unmaintained since 2018).
//! `std::fs::File::try_lock` does the same but needs Rust 1.89; the workspace supports 1.85.
//!
//! A child forked by another thread shares the open file description until it execs (Rust
//! opens files close-on-exec), so a lock dropped in that window is released only at the exec.
//! A node never spawns children while holding its lock; the lock tests serialize around it.
//!
//! On NFS, Linux emulates `flock` with byte-range locks; a data directory on NFS is not
//! supported anyway (fsync semantics).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::StoreError;

/// The lock file's name inside the data directory.
pub const LOCK_FILE_NAME: &str = "LOCK";
/// A pid is at most 10 decimal digits; anything longer in the file is not one of ours.
const LOCK_FILE_CONTENT_MAX_BYTES: u64 = 32;

/// Proof that this process alone uses a data directory. Dropping it releases the lock; so does
/// the death of the process. The `LOCK` file itself stays (deleting it on release would let a
/// waiting process lock a file no longer reachable by name); its content, the holder's pid, is
/// meaningful only while the file is locked.
#[derive(Debug)]
pub struct DataDirLock {
    path: PathBuf,
    /// Holds the lock: closing the descriptor releases it.
    _file: File,
}

impl DataDirLock {
    /// Locks `dir/LOCK` (creating the file if needed) and writes this process's pid into it.
    /// `dir` must exist: creating it here would let a mistyped path pass as an empty directory.
    ///
    /// Fails with [`StoreError::Locked`] (naming the holder's pid when it could be read) if
    /// another open lock exists, in this process or another; never waits.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, StoreError> {
        let path = dir.join(LOCK_FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false) // the holder's pid must survive a failed attempt
            .open(&path)
            .map_err(StoreError::io("open lock file", &path))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(errno) if errno == rustix::io::Errno::WOULDBLOCK => {
                return Err(StoreError::Locked { dir: dir.to_path_buf(), pid: read_pid(&mut file) });
            }
            Err(errno) => return Err(StoreError::io("lock", &path)(errno.into())),
        }
        // No fsync: the pid is only a hint for the error message of the next process; the lock
        // itself lives in the kernel, not in the file's bytes.
        write_pid(&mut file).map_err(StoreError::io("write pid to", &path))?;
        Ok(DataDirLock { path, _file: file })
    }

    /// The lock file (`DIR/LOCK`).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
}

/// The pid the holder wrote; `None` while it has not written it yet, or if the file holds
/// something else.
fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.take(LOCK_FILE_CONTENT_MAX_BYTES).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
