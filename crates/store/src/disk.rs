//! Free space on the file system holding a data directory. The node refuses writes while it
//! is below a reserve, so the log never runs into a full disk in the middle of an entry (after
//! a failed fsync nothing on disk can be trusted; before one, refusing is always safe).

use std::io;
use std::path::Path;

/// Bytes available to this (unprivileged) process on the file system holding `dir`.
pub fn available_bytes(dir: &Path) -> io::Result<u64> {
    let stats = rustix::fs::statvfs(dir).map_err(io::Error::from)?;
    Ok(stats.f_bavail.saturating_mul(stats.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_directory_reports_some_free_space() {
        let dir = std::env::temp_dir();
        assert!(available_bytes(&dir).unwrap() > 0);
    }
}
