//! State-machine snapshots: one file each, written to a temporary name, fsynced and renamed,
//! with a CRC-protected header that records the chain head the snapshot covers, a CRC32C per
//! 1 MiB chunk of data (to name the damaged region) and a SHA-256 of the whole data.
//!
//! Layout (integers little-endian), see docs/storage-format.md:
//! ```text
//! 0   magic "CRPSNAP\x01"      8
//! 8   format version u32       4
//! 12  header_len u32           4   bytes before the data
//! 16  header_crc32c u32        4   over the header with this field zeroed
//! 20  data_len u64             8
//! 28  data_sha256              32
//! 60  chunk_bytes u32          4
//! 64  last_index u64           8
//! 72  last_term u64            8
//! 80  chain_head               32
//! 112 membership_len u32, membership bytes
//! ..  snapshot_id_len u32, snapshot_id (UTF-8)
//! ..  chunk_count u32, chunk_count × crc32c u32
//! header_len: data
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::atomic_file::tmp_path;
use crate::fs::{read_all, FileSystem, OsFileSystem};
use crate::{ChainHash, StoreError};

const SNAPSHOT_MAGIC: [u8; 8] = *b"CRPSNAP\x01";
const SNAPSHOT_FORMAT_VERSION: u32 = 1;
const FIXED_HEADER_BYTES: usize = 112;
const DATA_CHUNK_BYTES: usize = 1 << 20;
const HEADER_FIELD_MAX_BYTES: usize = 1 << 20;
/// Snapshots kept on disk; older ones are deleted after each save.
pub const SNAPSHOTS_KEPT: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub last_index: u64,
    pub last_term: u64,
    /// Chain hash of entry `last_index`: the log after the snapshot must chain to it.
    pub chain_head: ChainHash,
    /// Raft membership as of `last_index`, encoded by the cluster.
    pub membership: Vec<u8>,
    pub snapshot_id: String,
}

/// The snapshots directory (usually `DIR/snapshots`). `Send + Sync`.
#[derive(Debug)]
pub struct SnapshotStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    read_only: bool,
}

/// A snapshot file that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedSnapshot {
    pub file: PathBuf,
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

impl SnapshotStore {
    /// Creates the directory if missing and deletes temporary files of interrupted saves.
    pub fn open(dir: impl AsRef<Path>) -> Result<SnapshotStore, StoreError> {
        Self::open_with(Arc::new(OsFileSystem), dir)
    }

    pub fn open_with(fs: Arc<dyn FileSystem>, dir: impl AsRef<Path>) -> Result<SnapshotStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        fs.create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        let store = SnapshotStore { fs, dir, read_only: false };
        for name in store.list()?.into_iter().filter(|name| name.ends_with(".tmp")) {
            let path = store.dir.join(name);
            store.fs.remove_file(&path).map_err(StoreError::io("remove", &path))?;
        }
        Ok(store)
    }

    /// For the audit: reads only; a missing directory means no snapshots.
    pub fn open_read_only(fs: Arc<dyn FileSystem>, dir: impl AsRef<Path>) -> SnapshotStore {
        SnapshotStore { fs, dir: dir.as_ref().to_path_buf(), read_only: true }
    }

    fn list(&self) -> Result<Vec<String>, StoreError> {
        if !self.fs.dir_exists(&self.dir).map_err(StoreError::io("stat", &self.dir))? {
            return Ok(Vec::new());
        }
        self.fs.list_files(&self.dir).map_err(StoreError::io("list", &self.dir))
    }

    /// Snapshot files, oldest first, with their sequence numbers.
    fn snapshot_files(&self) -> Result<Vec<(u64, PathBuf)>, StoreError> {
        let mut files: Vec<(u64, PathBuf)> =
            self.list()?.iter().filter_map(|name| Some((parse_snapshot_name(name)?, self.dir.join(name)))).collect();
        files.sort();
        Ok(files)
    }

    /// Writes the snapshot durably (temporary file, fsync, rename, fsync directory), then
    /// deletes all but the newest `SNAPSHOTS_KEPT`.
    pub fn save(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let files = self.snapshot_files()?;
        let sequence = files.last().map_or(1, |(sequence, _)| sequence + 1);
        let path = self.dir.join(snapshot_name(sequence, meta.last_index));
        let tmp = tmp_path(&path);
        let header = encode_header(meta, data);
        let mut file = self.fs.create(&tmp).map_err(StoreError::io("create", &tmp))?;
        file.append(&header).map_err(StoreError::io("write", &tmp))?;
        file.append(data).map_err(StoreError::io("write", &tmp))?;
        file.sync_data().map_err(StoreError::io("fsync", &tmp))?;
        drop(file);
        self.fs.rename(&tmp, &path).map_err(StoreError::io("rename", &tmp))?;
        self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;

        let kept_from = (files.len() + 1).saturating_sub(SNAPSHOTS_KEPT);
        for (_, old) in &files[..kept_from.min(files.len())] {
            self.fs.remove_file(old).map_err(StoreError::io("remove", old))?;
        }
        if kept_from > 0 {
            self.fs.sync_dir(&self.dir).map_err(StoreError::io("fsync directory", &self.dir))?;
        }
        Ok(())
    }

    /// The newest snapshot, fully verified; `Corrupt` (naming file and offset) if it is
    /// damaged — an older one is not used instead, since the log may be compacted behind
    /// the newest.
    pub fn load_latest(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        Ok(self.load_latest_file()?.map(|loaded| (loaded.meta, loaded.data)))
    }

    /// `load_latest` with the file it came from.
    pub fn load_latest_file(&self) -> Result<Option<LoadedSnapshot>, StoreError> {
        let Some((_, path)) = self.snapshot_files()?.pop() else { return Ok(None) };
        let file = self.fs.open_read_only(&path).map_err(StoreError::io("open", &path))?;
        let bytes = read_all(file.as_ref()).map_err(StoreError::io("read", &path))?;
        let (meta, data_start) =
            decode_header(&bytes).map_err(|(offset, reason)| StoreError::corrupt(&path, offset, None, reason))?;
        Ok(Some(LoadedSnapshot { file: path, meta, data: bytes[data_start..].to_vec() }))
    }
}

fn snapshot_name(sequence: u64, last_index: u64) -> String {
    format!("{sequence:010}-{last_index:020}.snap")
}

fn parse_snapshot_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".snap")?;
    let (sequence, last_index) = stem.split_once('-')?;
    let digits = |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_digit());
    (digits(sequence, 10) && digits(last_index, 20)).then(|| sequence.parse().ok())?
}

fn encode_header(meta: &SnapshotMeta, data: &[u8]) -> Vec<u8> {
    assert!(meta.membership.len() <= HEADER_FIELD_MAX_BYTES, "membership is small");
    assert!(meta.snapshot_id.len() <= HEADER_FIELD_MAX_BYTES, "snapshot ids are short");
    let chunk_crcs: Vec<u32> = data.chunks(DATA_CHUNK_BYTES).map(crc32c::crc32c).collect();
    let mut out = Vec::with_capacity(FIXED_HEADER_BYTES + 16 + meta.membership.len() + 4 * chunk_crcs.len());
    out.extend_from_slice(&SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]); // header_len, set below
    out.extend_from_slice(&[0u8; 4]); // header_crc, set below
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(data));
    out.extend_from_slice(&(DATA_CHUNK_BYTES as u32).to_le_bytes());
    out.extend_from_slice(&meta.last_index.to_le_bytes());
    out.extend_from_slice(&meta.last_term.to_le_bytes());
    out.extend_from_slice(&meta.chain_head);
    debug_assert_eq!(out.len(), FIXED_HEADER_BYTES);
    out.extend_from_slice(&(meta.membership.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta.membership);
    out.extend_from_slice(&(meta.snapshot_id.len() as u32).to_le_bytes());
    out.extend_from_slice(meta.snapshot_id.as_bytes());
    out.extend_from_slice(&(chunk_crcs.len() as u32).to_le_bytes());
    for crc in chunk_crcs {
        out.extend_from_slice(&crc.to_le_bytes());
    }
    let header_len = out.len() as u32;
    out[12..16].copy_from_slice(&header_len.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    out
}

type Damage = (u64, String);

/// Checks the whole file and returns the metadata and where the data starts. Errors carry the
/// offset of the first damaged region found: the header (0), a data chunk, or the data as a
/// whole when only its SHA-256 disagrees.
fn decode_header(bytes: &[u8]) -> Result<(SnapshotMeta, usize), Damage> {
    if bytes.len() < FIXED_HEADER_BYTES {
        return Err((0, format!("file is {} bytes, shorter than a snapshot header", bytes.len())));
    }
    if bytes[..8] != SNAPSHOT_MAGIC {
        return Err((0, "wrong magic: not a snapshot file".into()));
    }
    let header_len = read_u32(bytes, 12) as usize;
    if header_len < FIXED_HEADER_BYTES + 12 || header_len > bytes.len() {
        return Err((12, format!("header length {header_len} does not fit the file ({} bytes)", bytes.len())));
    }
    let mut header = bytes[..header_len].to_vec();
    header[16..20].fill(0);
    if crc32c::crc32c(&header) != read_u32(bytes, 16) {
        return Err((0, format!("header checksum mismatch (header is bytes 0..{header_len})")));
    }
    let version = read_u32(bytes, 8);
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err((8, format!("unsupported snapshot format version {version}")));
    }
    let (meta, chunk_crcs, chunk_bytes) = parse_header(&bytes[..header_len])?;
    let data = &bytes[header_len..];
    let data_len = read_u64(bytes, 20);
    if data.len() as u64 != data_len {
        let offset = header_len as u64 + data_len.min(data.len() as u64);
        return Err((offset, format!("data is {} bytes, the header says {data_len}", data.len())));
    }
    if chunk_bytes == 0 || chunk_crcs.len() != data.len().div_ceil(chunk_bytes) {
        return Err((60, "chunk table does not match the data length".into()));
    }
    for (number, (chunk, expected)) in data.chunks(chunk_bytes).zip(&chunk_crcs).enumerate() {
        if crc32c::crc32c(chunk) != *expected {
            let offset = (header_len + number * chunk_bytes) as u64;
            let end = offset + chunk.len() as u64;
            return Err((offset, format!("data checksum mismatch in bytes {offset}..{end}")));
        }
    }
    if Sha256::digest(data).as_slice() != &bytes[28..60] {
        return Err((header_len as u64, "data SHA-256 mismatch".into()));
    }
    Ok((meta, header_len))
}

fn parse_header(header: &[u8]) -> Result<(SnapshotMeta, Vec<u32>, usize), Damage> {
    let chunk_bytes = read_u32(header, 60) as usize;
    let mut cursor = FIXED_HEADER_BYTES;
    let membership = read_field(header, &mut cursor)?.to_vec();
    let id_at = cursor;
    let snapshot_id = String::from_utf8(read_field(header, &mut cursor)?.to_vec())
        .map_err(|_| (id_at as u64, "snapshot id is not UTF-8".to_string()))?;
    let count = read_u32_at(header, &mut cursor)? as usize;
    if header.len() != cursor + 4 * count {
        return Err((cursor as u64, "chunk table does not fill the header".into()));
    }
    let chunk_crcs = (0..count).map(|i| read_u32(header, cursor + 4 * i)).collect();
    let meta = SnapshotMeta {
        last_index: read_u64(header, 64),
        last_term: read_u64(header, 72),
        chain_head: header[80..112].try_into().expect("32 bytes"),
        membership,
        snapshot_id,
    };
    Ok((meta, chunk_crcs, chunk_bytes))
}

fn read_field<'a>(header: &'a [u8], cursor: &mut usize) -> Result<&'a [u8], Damage> {
    let at = *cursor;
    let len = read_u32_at(header, cursor)? as usize;
    let field = header
        .get(*cursor..*cursor + len)
        .ok_or_else(|| (at as u64, format!("field of {len} bytes overruns the header")))?;
    *cursor += len;
    Ok(field)
}

fn read_u32_at(header: &[u8], cursor: &mut usize) -> Result<u32, Damage> {
    if *cursor + 4 > header.len() {
        return Err((*cursor as u64, "header ends inside a length field".into()));
    }
    let value = read_u32(header, *cursor);
    *cursor += 4;
    Ok(value)
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}
