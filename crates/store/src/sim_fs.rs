//! An in-memory [`FileSystem`] for tests that simulates what a crash can leave on disk and
//! injects I/O errors. Deterministic: a crash takes a seed.
//!
//! Model: each file (inode) has its current bytes and the bytes as of its last `sync_data`.
//! Each name has its current binding and the binding as of its directory's last `sync_dir`.
//! `crash` keeps, per name, either binding when they differ, and per file the synced bytes
//! plus a random prefix of what was appended since (optionally followed by zeros from a sector
//! boundary on, as when a file's size reached the disk before its data). Pages written out of
//! order — a later page durable while an earlier one is not — are not simulated: the store
//! reports that as corruption by design (see docs/storage-format.md).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::fs::{FileSystem, StorageFile};

/// The unit in which a simulated crash loses data that reached the file size but not the disk.
const SECTOR_BYTES: usize = 512;

/// Which operations fail from now on (until `set_fault(Fault::None)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// `sync_data` and `sync_dir` fail.
    SyncFails,
    /// `append` fails without writing anything.
    WriteFails,
    /// `append` writes the first half of its bytes, then fails.
    WriteTearsThenFails,
}

#[derive(Clone, Debug, Default)]
pub struct SimFileSystem {
    state: Arc<Mutex<SimState>>,
}

#[derive(Debug)]
struct SimState {
    inodes: BTreeMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    next_inode: u64,
    fault: Fault,
}

impl Default for SimState {
    fn default() -> Self {
        SimState {
            inodes: BTreeMap::new(),
            names: BTreeMap::new(),
            durable_names: BTreeMap::new(),
            dirs: BTreeSet::new(),
            next_inode: 1,
            fault: Fault::None,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
}

impl SimFileSystem {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// Simulates power loss: afterwards only what a real disk could hold remains, and it all
    /// counts as synced. Handles opened before the crash must not be used again.
    pub fn crash(&self, seed: u64) {
        let mut rng = XorShift::new(seed);
        let mut state = self.lock();
        let paths: BTreeSet<PathBuf> = state.names.keys().chain(state.durable_names.keys()).cloned().collect();
        let mut names = BTreeMap::new();
        for path in paths {
            let current = state.names.get(&path).copied();
            let durable = state.durable_names.get(&path).copied();
            let chosen = if current == durable || rng.below(2) == 0 { current } else { durable };
            if let Some(inode) = chosen {
                names.insert(path, inode);
            }
        }
        let live: BTreeSet<u64> = names.values().copied().collect();
        let mut inodes = BTreeMap::new();
        for id in live {
            let inode = &state.inodes[&id];
            let data = crashed_content(inode, &mut rng);
            inodes.insert(id, Inode { data: data.clone(), synced: data });
        }
        state.inodes = inodes;
        state.durable_names = names.clone();
        state.names = names;
    }

    /// The current bytes of a file (for tests that inspect or damage files).
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.lock();
        state.names.get(path).map(|id| state.inodes[id].data.clone())
    }

    /// Replaces a file's bytes, durably (for tests that damage files).
    pub fn overwrite(&self, path: &Path, bytes: &[u8]) {
        let mut state = self.lock();
        let id = state.names[path];
        let inode = state.inodes.get_mut(&id).expect("named inode exists");
        inode.data = bytes.to_vec();
        inode.synced = bytes.to_vec();
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn crashed_content(inode: &Inode, rng: &mut XorShift) -> Vec<u8> {
    if !inode.data.starts_with(&inode.synced) {
        // Rewritten or shrunk since the last sync: either version may have reached the disk.
        return if rng.below(2) == 0 { inode.synced.clone() } else { inode.data.clone() };
    }
    let unsynced = (inode.data.len() - inode.synced.len()) as u64;
    let kept = inode.synced.len() + rng.below(unsynced + 1) as usize;
    let mut content = inode.data[..kept].to_vec();
    if kept < inode.data.len() && rng.below(4) == 0 {
        // The file size reached the disk, some of the data did not: sectors never written read
        // as zeros. Data lands in whole sectors, so the zeros start at a sector boundary, or
        // where the last sync ended (that sector was written then).
        let written = (kept / SECTOR_BYTES * SECTOR_BYTES).max(inode.synced.len());
        let size = kept + rng.below((inode.data.len() - kept) as u64 + 1) as usize;
        content.truncate(written);
        content.resize(size, 0);
    }
    content
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} does not exist", path.display()))
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl FileSystem for SimFileSystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        for ancestor in dir.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn dir_exists(&self, dir: &Path) -> io::Result<bool> {
        Ok(self.lock().dirs.contains(dir))
    }

    fn list_files(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        if !state.dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(state
            .names
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .filter_map(|path| path.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let state = self.lock();
        let inode = *state.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(SimFile { state: Arc::clone(&self.state), inode }))
    }

    fn open_read_only(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.open(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let mut state = self.lock();
        if !state.dirs.contains(&parent_of(path)) {
            return Err(not_found(&parent_of(path)));
        }
        let inode = match state.names.get(path) {
            Some(&existing) => {
                state.inodes.get_mut(&existing).expect("named inode exists").data.clear();
                existing
            }
            None => {
                let id = state.next_inode;
                state.next_inode += 1;
                state.inodes.insert(id, Inode::default());
                state.names.insert(path.to_path_buf(), id);
                id
            }
        };
        Ok(Box::new(SimFile { state: Arc::clone(&self.state), inode }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.names.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let inode = state.names.remove(from).ok_or_else(|| not_found(from))?;
        state.names.insert(to.to_path_buf(), inode);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if state.fault == Fault::SyncFails {
            return Err(injected("sync_dir"));
        }
        let in_dir = |path: &PathBuf| path.parent() == Some(dir);
        state.durable_names.retain(|path, _| !in_dir(path));
        let current: Vec<(PathBuf, u64)> =
            state.names.iter().filter(|(path, _)| in_dir(path)).map(|(p, &i)| (p.clone(), i)).collect();
        state.durable_names.extend(current);
        Ok(())
    }
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<SimState>>,
    inode: u64,
}

impl SimFile {
    fn with_inode<T>(&self, f: impl FnOnce(&mut Inode, Fault) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let fault = state.fault;
        let inode = state.inodes.get_mut(&self.inode).ok_or_else(|| io::Error::other("file lost in a crash"))?;
        f(inode, fault)
    }
}

impl StorageFile for SimFile {
    fn size(&self) -> io::Result<u64> {
        self.with_inode(|inode, _| Ok(inode.data.len() as u64))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with_inode(|inode, _| {
            let start = usize::try_from(offset).map_err(io::Error::other)?;
            let end = start.checked_add(buf.len()).filter(|&end| end <= inode.data.len());
            let end = end.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
            buf.copy_from_slice(&inode.data[start..end]);
            Ok(())
        })
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.with_inode(|inode, fault| match fault {
            Fault::WriteFails => Err(injected("write")),
            Fault::WriteTearsThenFails => {
                inode.data.extend_from_slice(&bytes[..bytes.len() / 2]);
                Err(injected("write"))
            }
            Fault::None | Fault::SyncFails => {
                inode.data.extend_from_slice(bytes);
                Ok(())
            }
        })
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.with_inode(|inode, fault| {
            if fault == Fault::SyncFails {
                return Err(injected("sync_data"));
            }
            inode.synced = inode.data.clone();
            Ok(())
        })
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with_inode(|inode, _| {
            inode.data.resize(usize::try_from(len).map_err(io::Error::other)?, 0);
            Ok(())
        })
    }

    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(SimFile { state: Arc::clone(&self.state), inode: self.inode }))
    }
}

/// A tiny deterministic generator: crash outcomes must be reproducible from a seed.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next() % bound
        }
    }
}
