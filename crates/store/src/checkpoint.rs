//! Checkpoints of the state machine: the hot state (accounts, open pendings, counters) in one
//! file, and a small manifest (`CURRENT`, replaced atomically) that says which log entry the
//! checkpoint covers, the chain hash of that entry, and where each history log ended at that
//! moment. Together with the append-only history logs (which are only ever cut back to these
//! ends on recovery) a checkpoint is the whole state as of its entry.
//!
//! Writing one never stops the ledger: the hot state is a copy-on-write freeze taken between
//! two entries, and this module writes it from another thread. The manifest is written only
//! after the hot file and every history byte it covers are durable, so `CURRENT` always names a
//! complete checkpoint; a crash part-way leaves the previous one in force.
//!
//! Files, in the checkpoint directory (usually `DIR/checkpoint`):
//! ```text
//! CURRENT              atomic file (see atomic_file.rs), magic "CRPCKPT\x02", payload below
//! hot-<index:020>.ckpt the hot state, `croupier_core::codec::encode_checkpoint` bytes
//! ```
//! Manifest payload (little-endian): u32 version | u64 last_index | u64 last_term
//! | 32 chain_head | u64 transfers_end | u64 wallet_end | u64 events_last | u64 events_end
//! | u64 hot_len | 32 hot_sha256 | u32 len + membership | u32 len + snapshot_id | u32 len +
//! hot file name | u64 operators_end (version 2; a version 1 manifest predates the operator
//! trail and reads as 0).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::atomic_file;
use crate::fs::{FileSystem, StorageFile};
use crate::{ChainHash, StoreError};

const MANIFEST_MAGIC: &[u8; 8] = b"CRPCKPT\x02";
const MANIFEST_VERSION: u32 = 2;
/// The manifest before the operator trail, still read.
const MANIFEST_VERSION_V1: u32 = 1;
const MANIFEST_NAME: &str = "CURRENT";
/// Bytes buffered before each write of the hot file.
const HOT_WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Longest membership or id field a manifest may hold: anything longer is damage.
const MANIFEST_FIELD_MAX_BYTES: usize = 64 * 1024;

/// What a checkpoint covers. Everything but the hot file itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointManifest {
    /// The last log entry applied to the state: the log after the checkpoint starts at +1.
    pub last_index: u64,
    pub last_term: u64,
    /// Chain hash of entry `last_index` (zero before any entry).
    pub chain_head: ChainHash,
    /// Where each history log ended (the logs are cut back here on recovery).
    pub transfers_end: u64,
    pub wallet_end: u64,
    pub operators_end: u64,
    /// Position of the last event the checkpoint's entries yielded (0: none yet).
    pub events_last: u64,
    /// Where the event log's bytes ended.
    pub events_end: u64,
    /// Raft membership as of `last_index`, encoded by the cluster.
    pub membership: Vec<u8>,
    pub snapshot_id: String,
    pub hot_file: String,
    pub hot_len: u64,
    pub hot_sha256: [u8; 32],
}

impl CheckpointManifest {
    /// Where each history log ended at this checkpoint (what recovery cuts back to).
    pub fn history_ends(&self) -> crate::history::HistoryEnds {
        crate::history::HistoryEnds {
            transfers_end: self.transfers_end,
            wallet_end: self.wallet_end,
            operators_end: self.operators_end,
            events_last: self.events_last,
            events_end: self.events_end,
        }
    }
}

/// The checkpoint directory. `Send + Sync`; one writer at a time (the cluster serialises
/// checkpoints).
#[derive(Debug)]
pub struct CheckpointStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
}

/// Writes a hot-state file, hashing and counting as it goes. Finish it with
/// `CheckpointStore::commit`.
pub struct HotFileWriter {
    file: Box<dyn StorageFile>,
    tmp_path: PathBuf,
    name: String,
    buffer: Vec<u8>,
    sha: Sha256,
    len: u64,
}

impl std::fmt::Debug for HotFileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotFileWriter").field("name", &self.name).field("len", &self.len).finish()
    }
}

impl io::Write for HotFileWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= HOT_WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            self.file.append(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }
}

impl CheckpointStore {
    pub fn open(fs: Arc<dyn FileSystem>, dir: impl AsRef<Path>) -> Result<CheckpointStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs.create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        Ok(CheckpointStore { fs, dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts a hot file for the checkpoint of entry `last_index`.
    pub fn begin(&self, last_index: u64) -> Result<HotFileWriter, StoreError> {
        let name = format!("hot-{last_index:020}.ckpt");
        let tmp_path = atomic_file::tmp_path(&self.dir.join(&name));
        let file = self.fs.create(&tmp_path).map_err(StoreError::io("create", &tmp_path))?;
        Ok(HotFileWriter {
            file,
            tmp_path,
            name,
            buffer: Vec::with_capacity(HOT_WRITE_BUFFER_BYTES),
            sha: Sha256::new(),
            len: 0,
        })
    }

    /// Makes the hot file durable under its name, then points `CURRENT` at it, then deletes
    /// every older hot file. `manifest`'s hot file fields are filled in here. The caller must
    /// have made every history byte the manifest names durable first.
    pub fn commit(&self, mut hot: HotFileWriter, manifest: &mut CheckpointManifest) -> Result<(), StoreError> {
        io::Write::flush(&mut hot).map_err(StoreError::io("write", &hot.tmp_path))?;
        hot.file.sync_data().map_err(StoreError::io("fsync", &hot.tmp_path))?;
        let path = self.dir.join(&hot.name);
        self.fs.rename(&hot.tmp_path, &path).map_err(StoreError::io("rename", &hot.tmp_path))?;
        self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;
        manifest.hot_file = hot.name.clone();
        manifest.hot_len = hot.len;
        manifest.hot_sha256 = hot.sha.finalize().into();
        let payload = encode_manifest(manifest);
        atomic_file::save(self.fs.as_ref(), &self.dir.join(MANIFEST_NAME), MANIFEST_MAGIC, &payload)?;
        self.delete_other_hot_files(&manifest.hot_file)
    }

    fn delete_other_hot_files(&self, keep: &str) -> Result<(), StoreError> {
        let names = self.fs.list_files(&self.dir).map_err(StoreError::io("list", &self.dir))?;
        for name in names {
            let stale = name != keep && name.starts_with("hot-") && (name.ends_with(".ckpt") || name.ends_with(".tmp"));
            if stale {
                let path = self.dir.join(&name);
                self.fs.remove_file(&path).map_err(StoreError::io("remove", &path))?;
            }
        }
        Ok(())
    }

    /// Makes a hot file received from another node (already durable at `manifest`'s name in
    /// this directory) the checkpoint in force, after checking it against the manifest.
    pub fn adopt(&self, hot_path: &Path, manifest: &CheckpointManifest) -> Result<(), StoreError> {
        if hot_path != self.hot_path(manifest) {
            return Err(StoreError::corrupt(hot_path, 0, None, "received hot file does not carry the manifest's name"));
        }
        self.load_hot(manifest)?;
        let payload = encode_manifest(manifest);
        atomic_file::save(self.fs.as_ref(), &self.dir.join(MANIFEST_NAME), MANIFEST_MAGIC, &payload)?;
        self.delete_other_hot_files(&manifest.hot_file)
    }

    /// The current checkpoint's manifest, or `None` before the first checkpoint.
    pub fn current(&self) -> Result<Option<CheckpointManifest>, StoreError> {
        let path = self.dir.join(MANIFEST_NAME);
        let Some(payload) = atomic_file::load(self.fs.as_ref(), &path, MANIFEST_MAGIC)? else {
            return Ok(None);
        };
        decode_manifest(&payload).map(Some).map_err(|reason| StoreError::corrupt(&path, 16, None, reason))
    }

    /// The hot file a manifest names, checked against its length and SHA-256.
    pub fn load_hot(&self, manifest: &CheckpointManifest) -> Result<Vec<u8>, StoreError> {
        let path = self.hot_path(manifest);
        let file = self.fs.open_read_only(&path).map_err(StoreError::io("open", &path))?;
        let bytes = crate::fs::read_all(file.as_ref()).map_err(StoreError::io("read", &path))?;
        if bytes.len() as u64 != manifest.hot_len {
            let reason = format!("hot file is {} bytes, the manifest says {}", bytes.len(), manifest.hot_len);
            return Err(StoreError::corrupt(&path, bytes.len() as u64, None, reason));
        }
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        if sha != manifest.hot_sha256 {
            return Err(StoreError::corrupt(&path, 0, None, "hot file does not match the manifest's SHA-256"));
        }
        Ok(bytes)
    }

    pub fn hot_path(&self, manifest: &CheckpointManifest) -> PathBuf {
        self.dir.join(&manifest.hot_file)
    }
}

pub(crate) fn encode_manifest(m: &CheckpointManifest) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + m.membership.len());
    out.extend_from_slice(&MANIFEST_VERSION.to_le_bytes());
    for value in [m.last_index, m.last_term] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&m.chain_head);
    for value in [m.transfers_end, m.wallet_end, m.events_last, m.events_end] {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out.extend_from_slice(&m.hot_len.to_le_bytes());
    out.extend_from_slice(&m.hot_sha256);
    for field in [&m.membership[..], m.snapshot_id.as_bytes(), m.hot_file.as_bytes()] {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&m.operators_end.to_le_bytes());
    out
}

pub(crate) fn decode_manifest(bytes: &[u8]) -> Result<CheckpointManifest, String> {
    let mut r = FieldReader { bytes, offset: 0 };
    let version = u32::from_le_bytes(r.array()?);
    if version != MANIFEST_VERSION && version != MANIFEST_VERSION_V1 {
        return Err(format!("unsupported checkpoint manifest version {version}"));
    }
    let (last_index, last_term) = (r.u64()?, r.u64()?);
    let chain_head = r.array()?;
    let (transfers_end, wallet_end, events_last, events_end) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let hot_len = r.u64()?;
    let hot_sha256 = r.array()?;
    let membership = r.field()?.to_vec();
    let snapshot_id = String::from_utf8(r.field()?.to_vec()).map_err(|_| "snapshot id is not UTF-8")?;
    let hot_file = String::from_utf8(r.field()?.to_vec()).map_err(|_| "hot file name is not UTF-8")?;
    let operators_end = if version == MANIFEST_VERSION { r.u64()? } else { 0 };
    if r.offset != bytes.len() || !hot_file.starts_with("hot-") || hot_file.contains('/') {
        return Err("manifest has trailing bytes or a bad hot file name".into());
    }
    Ok(CheckpointManifest {
        last_index,
        last_term,
        chain_head,
        transfers_end,
        wallet_end,
        operators_end,
        events_last,
        events_end,
        membership,
        snapshot_id,
        hot_file,
        hot_len,
        hot_sha256,
    })
}

struct FieldReader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> FieldReader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let end = self.offset.checked_add(len).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| format!("manifest is cut short at byte {}", self.offset))?;
        let slice = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("length taken"))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn field(&mut self) -> Result<&'a [u8], String> {
        let len = u32::from_le_bytes(self.array()?) as usize;
        if len > MANIFEST_FIELD_MAX_BYTES {
            return Err(format!("manifest field of {len} bytes"));
        }
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim_fs::SimFileSystem;
    use std::io::Write;

    fn manifest(last_index: u64) -> CheckpointManifest {
        CheckpointManifest {
            last_index,
            last_term: 3,
            chain_head: [7; 32],
            transfers_end: 136 * 10,
            wallet_end: 99,
            operators_end: 7 * 190,
            events_last: 42,
            events_end: 4242,
            membership: vec![1, 2, 3],
            snapshot_id: "3-10".into(),
            hot_file: String::new(),
            hot_len: 0,
            hot_sha256: [0; 32],
        }
    }

    fn commit(store: &CheckpointStore, index: u64, hot: &[u8]) -> CheckpointManifest {
        let mut writer = store.begin(index).unwrap();
        writer.write_all(hot).unwrap();
        let mut m = manifest(index);
        store.commit(writer, &mut m).unwrap();
        m
    }

    #[test]
    fn committed_checkpoint_loads_back_and_replaces_the_previous_one() {
        let fs = Arc::new(SimFileSystem::new());
        let store = CheckpointStore::open(fs.clone(), "/d/checkpoint").unwrap();
        assert_eq!(store.current().unwrap(), None);
        commit(&store, 10, b"first hot state");
        let second = commit(&store, 20, b"second hot state");
        let current = store.current().unwrap().unwrap();
        assert_eq!(current, second);
        assert_eq!(store.load_hot(&current).unwrap(), b"second hot state");
        let names = fs.list_files(Path::new("/d/checkpoint")).unwrap();
        assert!(!names.iter().any(|n| n.contains("00000000000000000010")), "{names:?}");
    }

    #[test]
    fn a_crash_before_the_manifest_leaves_the_previous_checkpoint() {
        let fs = Arc::new(SimFileSystem::new());
        let store = CheckpointStore::open(fs.clone(), "/d/checkpoint").unwrap();
        let first = commit(&store, 10, b"first");
        let mut writer = store.begin(20).unwrap();
        writer.write_all(b"half written").unwrap();
        drop(writer);
        fs.crash(1);
        let store = CheckpointStore::open(fs.clone(), "/d/checkpoint").unwrap();
        let current = store.current().unwrap().unwrap();
        assert_eq!(current, first);
        assert_eq!(store.load_hot(&current).unwrap(), b"first");
    }

    #[test]
    fn a_damaged_hot_file_is_corrupt() {
        let fs = Arc::new(SimFileSystem::new());
        let store = CheckpointStore::open(fs.clone(), "/d/checkpoint").unwrap();
        let m = commit(&store, 10, b"hot state bytes");
        let path = store.hot_path(&m);
        let mut bytes = fs.read(&path).unwrap();
        bytes[3] ^= 1;
        fs.overwrite(&path, &bytes);
        assert!(matches!(store.load_hot(&m), Err(StoreError::Corrupt { .. })));
    }
}
