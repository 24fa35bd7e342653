//! The seam between the store and the disk. Production uses [`OsFileSystem`]; tests use
//! [`crate::sim_fs::SimFileSystem`] to lose unsynced writes and inject I/O errors (the redb
//! approach: storage behind a trait, checked against a reference model).
//!
//! The contract mirrors POSIX as far as the store relies on it: data appended to a file is
//! durable after `sync_data`; a created, removed or renamed name is durable after `sync_dir`
//! of its directory; `rename` replaces atomically.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

pub trait FileSystem: Send + Sync + Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    fn dir_exists(&self, dir: &Path) -> io::Result<bool>;
    /// Names (not paths) of the regular files in `dir`, in no particular order.
    fn list_files(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and appending.
    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for reading only (the audit must work on a read-only copy).
    fn open_read_only(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Creates a file, truncating it if it exists.
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything under it; a missing directory is not an error.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Renames a file, or a directory with everything under it.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file. Writes only ever append at the end (the store never rewrites bytes in place).
pub trait StorageFile: Send + Sync + Debug {
    fn size(&self) -> io::Result<u64>;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    fn sync_data(&mut self) -> io::Result<()>;
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Another handle to the same file, so another thread can fsync it while this one keeps
    /// appending (appends must still come from one handle only).
    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>>;
}

/// Reads the whole file.
pub(crate) fn read_all(file: &dyn StorageFile) -> io::Result<Vec<u8>> {
    let len = usize::try_from(file.size()?).map_err(|_| io::Error::other("file larger than memory"))?;
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(bytes)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileSystem;

impl FileSystem for OsFileSystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn dir_exists(&self, dir: &Path) -> io::Result<bool> {
        match std::fs::metadata(dir) {
            Ok(meta) => Ok(meta.is_dir()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn list_files(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let end = file.metadata()?.len();
        Ok(Box::new(OsFile { file, end }))
    }

    fn open_read_only(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = File::open(path)?;
        let end = file.metadata()?.len();
        Ok(Box::new(OsFile { file, end }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path)?;
        Ok(Box::new(OsFile { file, end: 0 }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

#[derive(Debug)]
struct OsFile {
    file: File,
    /// Where the next append lands; positional writes spare a seek per append.
    end: u64,
}

impl StorageFile for OsFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.end)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.file, buf, offset)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all_at(bytes, self.end)?;
        self.end += bytes.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.end = len;
        Ok(())
    }

    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(OsFile { file: self.file.try_clone()?, end: self.end }))
    }
}
