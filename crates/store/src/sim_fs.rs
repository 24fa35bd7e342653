//! An in-memory [`FileSystem`] for tests that simulates what a crash can leave on disk and
//! injects I/O errors. Deterministic: a crash takes a seed, and an injected failure is "the N-th
//! operation of a kind from now" ([`SimFileSystem::fail_nth`]), so a test can walk a fault
//! through every write, fsync, rename and create of a whole node.
//!
//! Crashing a running program: [`SimFileSystem::freeze`] makes every later operation fail, so
//! the program (which may still be winding down on other threads) can no longer change what
//! the "disk" holds; then [`SimFileSystem::crash`] keeps only what a real disk could hold, and
//! [`SimFileSystem::clear_faults`] lets the restarted program in. Handles opened before a crash
//! fail from then on (a thread of the old program must not write into the new one's files).
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

/// A kind of file operation (what [`SimFileSystem::fail_nth`] counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FsOp {
    /// `FileSystem::create`.
    Create,
    /// `StorageFile::append`.
    Append,
    /// `StorageFile::set_len`.
    SetLen,
    /// `StorageFile::sync_data`.
    SyncData,
    /// `FileSystem::sync_dir`.
    SyncDir,
    /// `FileSystem::rename`.
    Rename,
    /// `FileSystem::remove_file`.
    Remove,
}

impl FsOp {
    pub const ALL: [FsOp; 7] =
        [FsOp::Create, FsOp::Append, FsOp::SetLen, FsOp::SyncData, FsOp::SyncDir, FsOp::Rename, FsOp::Remove];

    fn slot(self) -> usize {
        self as usize
    }
}

/// What happens at a planned operation (see [`SimFileSystem::fault_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultAction {
    /// The operation fails (a failing `append` writes the first half of its bytes first: a torn
    /// write); later operations work again.
    FailOnce,
    /// Power is lost just before the operation: it and every later one fail (see `freeze`).
    FreezeBefore,
    /// Power is lost just after the operation took effect: every later one fails.
    FreezeAfter,
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
    /// Operations of each kind so far (indexed by `FsOp::slot`).
    op_counts: [u64; FsOp::ALL.len()],
    /// Operations that will fail: (kind, value of its counter when it fails).
    planned: Vec<(FsOp, u64, FaultAction)>,
    /// Planned failures that happened.
    injected: Vec<(FsOp, u64, FaultAction)>,
    frozen: bool,
    /// Bumped by every crash; a handle opened in an earlier epoch fails.
    epoch: u64,
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
            op_counts: [0; FsOp::ALL.len()],
            planned: Vec::new(),
            injected: Vec::new(),
            frozen: false,
            epoch: 0,
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

    /// Makes the `n`-th (1 = the next) operation of kind `op` from now fail once. A failing
    /// `append` writes the first half of its bytes first (a torn write); the others change
    /// nothing.
    pub fn fail_nth(&self, op: FsOp, n: u64) {
        self.fault_at(op, n, FaultAction::FailOnce);
    }

    /// Plans `action` at the `n`-th (1 = the next) operation of kind `op` from now.
    pub fn fault_at(&self, op: FsOp, n: u64, action: FaultAction) {
        assert!(n >= 1, "n counts from 1");
        let mut state = self.lock();
        let at = state.op_counts[op.slot()] + n;
        state.planned.push((op, at, action));
    }

    /// Operations of kind `op` so far (the failed ones included).
    pub fn op_count(&self, op: FsOp) -> u64 {
        self.lock().op_counts[op.slot()]
    }

    /// The planned faults that happened so far: (kind, its count then, action).
    pub fn injected_failures(&self) -> Vec<(FsOp, u64, FaultAction)> {
        self.lock().injected.clone()
    }

    /// Every later operation fails (reads included) until `clear_faults`: what is on the
    /// simulated disk no longer changes, whatever the program still runs.
    pub fn freeze(&self) {
        self.lock().frozen = true;
    }

    /// Removes every fault: the global one, the planned ones and the freeze.
    pub fn clear_faults(&self) {
        let mut state = self.lock();
        state.fault = Fault::None;
        state.planned.clear();
        state.frozen = false;
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
        state.epoch += 1;
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

impl SimState {
    /// Moves a directory and everything under it. The model makes the move durable at once
    /// (names and durable names alike), where a real disk needs the parent directory synced:
    /// the install syncs it right after every move, so nothing is tested less than it runs.
    fn rename_dir(&mut self, from: &Path, to: &Path) {
        let moved = |path: &PathBuf| match path.strip_prefix(from) {
            Ok(rest) => to.join(rest),
            Err(_) => path.clone(),
        };
        self.names = std::mem::take(&mut self.names).into_iter().map(|(p, i)| (moved(&p), i)).collect();
        self.durable_names = std::mem::take(&mut self.durable_names).into_iter().map(|(p, i)| (moved(&p), i)).collect();
        self.dirs = std::mem::take(&mut self.dirs).iter().map(moved).collect();
        for ancestor in to.ancestors() {
            self.dirs.insert(ancestor.to_path_buf());
        }
    }

    /// Counts an operation of kind `op` and applies a fault planned for it: `Err` when it must
    /// fail with no effect (frozen, or power lost just before it), `Ok(true)` when it must fail
    /// after a partial effect (see callers), `Ok(false)` when it proceeds.
    fn begin(&mut self, op: FsOp) -> io::Result<bool> {
        self.check_frozen()?;
        self.op_counts[op.slot()] += 1;
        let count = self.op_counts[op.slot()];
        let Some(at) = self.planned.iter().position(|&(kind, n, _)| (kind, n) == (op, count)) else {
            return Ok(false);
        };
        let (_, _, action) = self.planned.swap_remove(at);
        self.injected.push((op, count, action));
        match action {
            FaultAction::FailOnce => Ok(true),
            FaultAction::FreezeBefore => {
                self.frozen = true;
                Err(injected_nth(op, count))
            }
            FaultAction::FreezeAfter => {
                // The caller holds the lock until the operation is done: nothing runs between
                // its effect and the freeze.
                self.frozen = true;
                Ok(false)
            }
        }
    }

    fn check_frozen(&self) -> io::Result<()> {
        if self.frozen {
            return Err(io::Error::other("simulated file system is frozen (crash pending)"));
        }
        Ok(())
    }
}

fn injected_nth(op: FsOp, count: u64) -> io::Error {
    io::Error::other(format!("injected failure of {op:?} #{count}"))
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

/// Fails the operation if it is the planned one (after `partial`, the effect a failure of this
/// kind leaves behind), otherwise runs `effect`.
fn run_op<T>(
    state: &mut SimState,
    op: FsOp,
    partial: impl FnOnce(&mut SimState),
    effect: impl FnOnce(&mut SimState) -> io::Result<T>,
) -> io::Result<T> {
    if state.begin(op)? {
        partial(state);
        return Err(injected_nth(op, state.op_counts[op.slot()]));
    }
    effect(state)
}

impl FileSystem for SimFileSystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.check_frozen()?;
        for ancestor in dir.ancestors() {
            state.dirs.insert(ancestor.to_path_buf());
        }
        Ok(())
    }

    fn dir_exists(&self, dir: &Path) -> io::Result<bool> {
        let state = self.lock();
        state.check_frozen()?;
        Ok(state.dirs.contains(dir))
    }

    fn list_files(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.lock();
        state.check_frozen()?;
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
        state.check_frozen()?;
        let inode = *state.names.get(path).ok_or_else(|| not_found(path))?;
        Ok(Box::new(SimFile { state: Arc::clone(&self.state), inode, epoch: state.epoch }))
    }

    fn open_read_only(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.open(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let mut state = self.lock();
        let inode = run_op(
            &mut state,
            FsOp::Create,
            |_| {},
            |state| {
                if !state.dirs.contains(&parent_of(path)) {
                    return Err(not_found(&parent_of(path)));
                }
                Ok(match state.names.get(path) {
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
                })
            },
        )?;
        Ok(Box::new(SimFile { state: Arc::clone(&self.state), inode, epoch: state.epoch }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        run_op(
            &mut state,
            FsOp::Remove,
            |_| {},
            |state| state.names.remove(path).map(|_| ()).ok_or_else(|| not_found(path)),
        )
    }

    fn remove_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        run_op(
            &mut state,
            FsOp::Remove,
            |_| {},
            |state| {
                state.names.retain(|path, _| !path.starts_with(dir));
                state.dirs.retain(|path| !path.starts_with(dir));
                Ok(())
            },
        )
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        run_op(
            &mut state,
            FsOp::Rename,
            |_| {},
            |state| {
                if state.dirs.contains(from) {
                    state.rename_dir(from, to);
                    return Ok(());
                }
                let inode = state.names.remove(from).ok_or_else(|| not_found(from))?;
                state.names.insert(to.to_path_buf(), inode);
                Ok(())
            },
        )
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        run_op(
            &mut state,
            FsOp::SyncDir,
            |_| {},
            |state| {
                if state.fault == Fault::SyncFails {
                    return Err(injected("sync_dir"));
                }
                let in_dir = |path: &PathBuf| path.parent() == Some(dir);
                state.durable_names.retain(|path, _| !in_dir(path));
                let current: Vec<(PathBuf, u64)> =
                    state.names.iter().filter(|(path, _)| in_dir(path)).map(|(p, &i)| (p.clone(), i)).collect();
                state.durable_names.extend(current);
                Ok(())
            },
        )
    }
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<SimState>>,
    inode: u64,
    /// The crash epoch this handle was opened in.
    epoch: u64,
}

impl SimFile {
    /// Runs `f` on this file's inode; `op` (when it is a counted operation) may be planned to
    /// fail, after `partial` (given the inode) did what such a failure leaves behind.
    fn with_inode<T>(
        &self,
        op: Option<FsOp>,
        partial: impl FnOnce(&mut Inode),
        f: impl FnOnce(&mut Inode, Fault) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.check_frozen()?;
        if state.epoch != self.epoch {
            return Err(io::Error::other("file handle opened before a simulated crash"));
        }
        let fails = match op {
            Some(op) => state.begin(op)?,
            None => false,
        };
        let fault = state.fault;
        let failure = op.filter(|_| fails).map(|op| injected_nth(op, state.op_counts[op.slot()]));
        let inode = state.inodes.get_mut(&self.inode).ok_or_else(|| io::Error::other("file lost in a crash"))?;
        if let Some(failure) = failure {
            partial(inode);
            return Err(failure);
        }
        f(inode, fault)
    }
}

impl StorageFile for SimFile {
    fn size(&self) -> io::Result<u64> {
        self.with_inode(None, |_| {}, |inode, _| Ok(inode.data.len() as u64))
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.with_inode(
            None,
            |_| {},
            |inode, _| {
                let start = usize::try_from(offset).map_err(io::Error::other)?;
                let end = start.checked_add(buf.len()).filter(|&end| end <= inode.data.len());
                let end = end.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
                buf.copy_from_slice(&inode.data[start..end]);
                Ok(())
            },
        )
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        // A planned failure tears the write: half of it reaches the file.
        let torn = |inode: &mut Inode| inode.data.extend_from_slice(&bytes[..bytes.len() / 2]);
        self.with_inode(Some(FsOp::Append), torn, |inode, fault| match fault {
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
        self.with_inode(
            Some(FsOp::SyncData),
            |_| {},
            |inode, fault| {
                if fault == Fault::SyncFails {
                    return Err(injected("sync_data"));
                }
                inode.synced = inode.data.clone();
                Ok(())
            },
        )
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with_inode(
            Some(FsOp::SetLen),
            |_| {},
            |inode, _| {
                inode.data.resize(usize::try_from(len).map_err(io::Error::other)?, 0);
                Ok(())
            },
        )
    }

    fn try_clone(&self) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(SimFile { state: Arc::clone(&self.state), inode: self.inode, epoch: self.epoch }))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> &'static Path {
        Path::new("/d")
    }

    #[test]
    fn the_nth_operation_of_a_kind_fails_once_and_a_failed_append_is_torn() {
        let fs = SimFileSystem::new();
        fs.create_dir_all(dir()).unwrap();
        let mut file = fs.create(&dir().join("f")).unwrap();
        file.append(b"ab").unwrap();
        fs.fail_nth(FsOp::Append, 2);
        fs.fail_nth(FsOp::SyncData, 1);
        file.append(b"cd").unwrap();
        assert!(file.append(b"efgh").is_err());
        assert!(file.sync_data().is_err());
        file.append(b"ij").unwrap();
        file.sync_data().unwrap();
        assert_eq!(fs.read(&dir().join("f")).unwrap(), b"abcdefij");
        let once = FaultAction::FailOnce;
        assert_eq!(fs.injected_failures(), vec![(FsOp::Append, 3, once), (FsOp::SyncData, 1, once)]);
        assert_eq!(fs.op_count(FsOp::Append), 4);
    }

    #[test]
    fn renames_creates_and_directory_syncs_fail_without_effect() {
        let fs = SimFileSystem::new();
        fs.create_dir_all(dir()).unwrap();
        fs.create(&dir().join("a")).unwrap();
        fs.fail_nth(FsOp::Rename, 1);
        fs.fail_nth(FsOp::Create, 1);
        fs.fail_nth(FsOp::SyncDir, 1);
        assert!(fs.rename(&dir().join("a"), &dir().join("b")).is_err());
        assert!(fs.create(&dir().join("c")).is_err());
        assert!(fs.sync_dir(dir()).is_err());
        assert_eq!(fs.list_files(dir()).unwrap(), vec!["a".to_string()]);
        // The failed directory sync made nothing durable: a crash forgets "a".
        fs.crash(1);
        assert!(fs.list_files(dir()).unwrap().is_empty());
    }

    #[test]
    fn a_frozen_file_system_refuses_everything_until_cleared_and_old_handles_die_in_a_crash() {
        let fs = SimFileSystem::new();
        fs.create_dir_all(dir()).unwrap();
        let mut file = fs.create(&dir().join("f")).unwrap();
        file.append(b"synced").unwrap();
        file.sync_data().unwrap();
        fs.sync_dir(dir()).unwrap();
        fs.freeze();
        assert!(file.append(b"late").is_err());
        assert!(file.size().is_err());
        assert!(fs.open(&dir().join("f")).is_err());
        assert!(fs.remove_file(&dir().join("f")).is_err());
        fs.crash(7);
        fs.clear_faults();
        assert!(file.append(b"stale handle").is_err());
        let reopened = fs.open(&dir().join("f")).unwrap();
        assert_eq!(reopened.size().unwrap(), 6);
    }

    #[test]
    fn power_is_lost_just_before_or_just_after_the_planned_operation() {
        let fs = SimFileSystem::new();
        fs.create_dir_all(dir()).unwrap();
        let mut file = fs.create(&dir().join("f")).unwrap();
        fs.fault_at(FsOp::SyncData, 2, FaultAction::FreezeAfter);
        file.append(b"one").unwrap();
        file.sync_data().unwrap();
        file.append(b"two").unwrap();
        file.sync_data().unwrap(); // took effect, then the power went
        assert!(file.append(b"three").is_err());
        assert_eq!(fs.read(&dir().join("f")).unwrap(), b"onetwo");

        fs.clear_faults();
        fs.fault_at(FsOp::Append, 1, FaultAction::FreezeBefore);
        assert!(file.append(b"three").is_err());
        assert!(file.sync_data().is_err());
        fs.clear_faults();
        assert_eq!(fs.read(&dir().join("f")).unwrap(), b"onetwo");
    }
}
