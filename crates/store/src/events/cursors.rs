//! Durable consumer cursors: for each named consumer of the event feed (a pipeline, an
//! exporter), the last event position it acknowledged. One small file per consumer,
//! `DIR/<name>.cursor`, replaced atomically on every ack (see `atomic_file`).
//!
//! Owns: cursor files and name validation. Must not know: the event log itself (a cursor is
//! just a u64), what consumers do, tokio.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::atomic_file;
use crate::fs::FileSystem;
use crate::StoreError;

/// Consumer names are 1 to this many bytes of `[a-z0-9_-]`: safe as file names everywhere and
/// in URLs, without escaping.
pub const CONSUMER_NAME_BYTES_MAX: usize = 64;
const CURSOR_FILE_SUFFIX: &str = ".cursor";
const CURSOR_MAGIC: &[u8; 8] = b"CRPCURS\x01";
const CURSOR_PAYLOAD_BYTES: usize = 8;

/// The cursors of every consumer, cached in memory. `Send + Sync`; share it in an `Arc`.
/// Acks are serialized (each costs an fsync of a file and of the directory), which is fine for
/// consumers that ack once per batch.
#[derive(Debug)]
pub struct ConsumerCursors {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    cursors: Mutex<BTreeMap<String, u64>>,
}

impl ConsumerCursors {
    /// Opens (creating if missing) the cursor directory: deletes leftovers of interrupted acks
    /// and loads every cursor. A damaged cursor file is `Corrupt`.
    pub fn open(fs: Arc<dyn FileSystem>, dir: impl AsRef<Path>) -> Result<ConsumerCursors, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs.create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        let mut cursors = BTreeMap::new();
        for file_name in fs.list_files(&dir).map_err(StoreError::io("list", &dir))? {
            let path = dir.join(&file_name);
            if file_name.ends_with(".tmp") {
                fs.remove_file(&path).map_err(StoreError::io("remove", &path))?;
                continue;
            }
            let Some(name) = file_name.strip_suffix(CURSOR_FILE_SUFFIX) else { continue };
            if validate_consumer_name(name).is_err() {
                continue; // not ours
            }
            if let Some(position) = load_cursor(fs.as_ref(), &path)? {
                cursors.insert(name.to_string(), position);
            }
        }
        Ok(ConsumerCursors { fs, dir, cursors: Mutex::new(cursors) })
    }

    /// The last position `name` acknowledged; `None` for an unknown (or invalid) name.
    pub fn load(&self, name: &str) -> Option<u64> {
        self.lock().get(name).copied()
    }

    /// Durably records that `name` processed every event through `position`. Acks never go
    /// backwards: an ack at or below the stored cursor is ignored (a late or repeated ack is
    /// normal with at-least-once delivery), so this returns the cursor now stored.
    pub fn ack(&self, name: &str, position: u64) -> Result<u64, StoreError> {
        validate_consumer_name(name)?;
        let mut cursors = self.lock();
        if let Some(&stored) = cursors.get(name).filter(|&&stored| stored >= position) {
            return Ok(stored);
        }
        let path = self.path_of(name);
        atomic_file::save(self.fs.as_ref(), &path, CURSOR_MAGIC, &position.to_le_bytes())?;
        cursors.insert(name.to_string(), position);
        Ok(position)
    }

    /// Every consumer and its cursor, by name.
    pub fn list(&self) -> Vec<(String, u64)> {
        self.lock().iter().map(|(name, &position)| (name.clone(), position)).collect()
    }

    /// Forgets a consumer, durably. Returns whether it existed.
    pub fn remove(&self, name: &str) -> Result<bool, StoreError> {
        validate_consumer_name(name)?;
        let mut cursors = self.lock();
        if cursors.remove(name).is_none() {
            return Ok(false);
        }
        let path = self.path_of(name);
        match self.fs.remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::io("remove", &path)(error)),
        }
        self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;
        Ok(true)
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{CURSOR_FILE_SUFFIX}"))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, u64>> {
        self.cursors.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn load_cursor(fs: &dyn FileSystem, path: &Path) -> Result<Option<u64>, StoreError> {
    let Some(payload) = atomic_file::load(fs, path, CURSOR_MAGIC)? else { return Ok(None) };
    let bytes: [u8; CURSOR_PAYLOAD_BYTES] = payload
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::corrupt(path, 16, None, "cursor file has the wrong payload size"))?;
    Ok(Some(u64::from_le_bytes(bytes)))
}

/// `[a-z0-9_-]{1,64}`.
pub(crate) fn validate_consumer_name(name: &str) -> Result<(), StoreError> {
    let reason = if name.is_empty() || name.len() > CONSUMER_NAME_BYTES_MAX {
        "a consumer name is 1 to 64 characters"
    } else if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
        "a consumer name may contain only a-z, 0-9, '_' and '-'"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidConsumerName { name: name.chars().take(CONSUMER_NAME_BYTES_MAX * 2).collect(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim_fs::SimFileSystem;

    const DIR: &str = "/data/cursors";

    fn open(fs: &SimFileSystem) -> ConsumerCursors {
        ConsumerCursors::open(Arc::new(fs.clone()), DIR).unwrap()
    }

    #[test]
    fn acked_cursors_survive_reopen_and_crash() {
        let fs = SimFileSystem::new();
        let cursors = open(&fs);
        assert_eq!(cursors.load("risk"), None);
        assert_eq!(cursors.ack("risk", 10).unwrap(), 10);
        assert_eq!(cursors.ack("export-1", 3).unwrap(), 3);
        assert_eq!(cursors.ack("risk", 25).unwrap(), 25);
        drop(cursors);
        fs.crash(7);
        let cursors = open(&fs);
        assert_eq!(cursors.load("risk"), Some(25));
        assert_eq!(cursors.list(), vec![("export-1".to_string(), 3), ("risk".to_string(), 25)]);
    }

    #[test]
    fn acks_never_go_backwards() {
        let fs = SimFileSystem::new();
        let cursors = open(&fs);
        cursors.ack("risk", 40).unwrap();
        assert_eq!(cursors.ack("risk", 12).unwrap(), 40, "a late ack is ignored");
        drop(cursors);
        assert_eq!(open(&fs).load("risk"), Some(40));
    }

    #[test]
    fn removed_consumer_stays_removed_after_crash() {
        let fs = SimFileSystem::new();
        let cursors = open(&fs);
        cursors.ack("gone", 5).unwrap();
        assert!(cursors.remove("gone").unwrap());
        assert!(!cursors.remove("gone").unwrap());
        drop(cursors);
        fs.crash(3);
        assert_eq!(open(&fs).load("gone"), None);
    }

    #[test]
    fn invalid_names_are_refused_with_a_reason() {
        let fs = SimFileSystem::new();
        let cursors = open(&fs);
        for name in ["", "Risk", "a/b", "../x", "with space", &"x".repeat(65)] {
            assert!(
                matches!(cursors.ack(name, 1), Err(StoreError::InvalidConsumerName { .. })),
                "{name:?} was accepted"
            );
        }
        assert!(cursors.ack(&"x".repeat(64), 1).is_ok());
        assert!(cursors.ack("a_b-9", 1).is_ok());
    }

    #[test]
    fn damaged_cursor_file_is_corrupt() {
        let fs = SimFileSystem::new();
        open(&fs).ack("risk", 9).unwrap();
        let path = Path::new(DIR).join("risk.cursor");
        let mut bytes = fs.read(&path).unwrap();
        bytes[17] ^= 0xFF;
        fs.overwrite(&path, &bytes);
        assert!(matches!(ConsumerCursors::open(Arc::new(fs), DIR), Err(StoreError::Corrupt { .. })));
    }
}
