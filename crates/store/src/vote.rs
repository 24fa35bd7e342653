//! The Raft vote (term and candidate), stored as an opaque CRC-checked blob replaced atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::atomic_file;
use crate::fs::{FileSystem, OsFileSystem};
use crate::StoreError;

const VOTE_MAGIC: &[u8; 8] = b"CRPVOTE\x01";

#[derive(Debug)]
pub struct VoteFile {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
}

impl VoteFile {
    /// Prepares `path` (usually `DIR/vote`), creating its directory. Reads nothing yet.
    pub fn open(path: impl AsRef<Path>) -> Result<VoteFile, StoreError> {
        Self::open_with(Arc::new(OsFileSystem), path)
    }

    pub fn open_with(fs: Arc<dyn FileSystem>, path: impl AsRef<Path>) -> Result<VoteFile, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs.create_dir_all(dir).map_err(StoreError::io("create directory", dir))?;
        }
        Ok(VoteFile { fs, path })
    }

    /// Durable when it returns: written to a temporary file, fsynced, renamed, directory fsynced.
    pub fn save(&self, vote: &[u8]) -> Result<(), StoreError> {
        atomic_file::save(self.fs.as_ref(), &self.path, VOTE_MAGIC, vote)
    }

    /// `None` before the first `save`; `Corrupt` if the file is damaged.
    pub fn load(&self) -> Result<Option<Vec<u8>>, StoreError> {
        atomic_file::load(self.fs.as_ref(), &self.path, VOTE_MAGIC)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
