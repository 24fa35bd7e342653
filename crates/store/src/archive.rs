//! A checkpoint as one stream, for a node that needs the whole state (a new or far-behind
//! replica, openraft's "install snapshot"): the checkpoint's manifest, its hot file, and every
//! history segment cut at the checkpoint's ends. Read lazily from open file handles (taken when
//! the archive is planned, so a newer checkpoint deleting the hot file cannot break a transfer
//! under way), never assembled in memory.
//!
//! Not included, because the receiver rebuilds them: the id indexes (from the history, at
//! open), the event log (the receiver's feed starts at the checkpoint) and the Raft log.
//!
//! Layout: `magic "CRPARCH1" | u32 header_len | header | file bytes in header order`, header =
//! `u32 manifest_len | manifest payload | u32 file count | per file: u16 name_len | name |
//! u64 len`, names relative to the data directory (`checkpoint/hot-….ckpt`,
//! `history/transfers/….rec`, `history/wallet/….rec`, `history/operators/….rec`), then a CRC32C of everything before it.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::{decode_manifest, encode_manifest, CheckpointManifest, CheckpointStore};
use crate::fs::{FileSystem, StorageFile};
use crate::records::RECORD_SEGMENT_HEADER_BYTES;
use crate::StoreError;

const ARCHIVE_MAGIC: &[u8; 8] = b"CRPARCH1";
/// Largest header a receiver accepts (a few thousand file names).
const HEADER_BYTES_MAX: usize = 16 << 20;
/// Copy buffer while unpacking.
const UNPACK_CHUNK_BYTES: usize = 1 << 20;

/// One file of the archive: its name in the receiving data directory and how many of its
/// bytes (from the start) belong to the checkpoint.
struct Part {
    name: String,
    file: Box<dyn StorageFile>,
    len: u64,
}

/// A checkpoint ready to be read as one stream (`Read + Seek`).
pub struct CheckpointArchive {
    prefix: Vec<u8>,
    parts: Vec<Part>,
    position: u64,
    total: u64,
}

impl std::fmt::Debug for CheckpointArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointArchive").field("files", &self.parts.len()).field("bytes", &self.total).finish()
    }
}

impl CheckpointArchive {
    /// Plans the archive of `manifest` (the checkpoint in force) over the data directory
    /// `root`, opening every file it needs now.
    pub fn plan(
        fs: Arc<dyn FileSystem>,
        root: &Path,
        checkpoints: &CheckpointStore,
        manifest: &CheckpointManifest,
    ) -> Result<CheckpointArchive, StoreError> {
        let mut parts = Vec::new();
        let hot = checkpoints.hot_path(manifest);
        let hot_file = fs.open_read_only(&hot).map_err(StoreError::io("open", &hot))?;
        parts.push(Part { name: format!("checkpoint/{}", manifest.hot_file), file: hot_file, len: manifest.hot_len });
        let logs = [
            ("transfers", manifest.transfers_end),
            ("wallet", manifest.wallet_end),
            ("operators", manifest.operators_end),
        ];
        for (log, end) in logs {
            plan_log(fs.as_ref(), root, &format!("history/{log}"), end, &mut parts)?;
        }
        Ok(Self::assemble(manifest, parts))
    }

    fn assemble(manifest: &CheckpointManifest, parts: Vec<Part>) -> CheckpointArchive {
        let mut header = Vec::new();
        let manifest_bytes = encode_manifest(manifest);
        header.extend_from_slice(&(manifest_bytes.len() as u32).to_le_bytes());
        header.extend_from_slice(&manifest_bytes);
        header.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        for part in &parts {
            header.extend_from_slice(&(part.name.len() as u16).to_le_bytes());
            header.extend_from_slice(part.name.as_bytes());
            header.extend_from_slice(&part.len.to_le_bytes());
        }
        let mut prefix = ARCHIVE_MAGIC.to_vec();
        prefix.extend_from_slice(&(header.len() as u32 + 4).to_le_bytes());
        prefix.extend_from_slice(&header);
        let crc = crc32c::crc32c(&prefix);
        prefix.extend_from_slice(&crc.to_le_bytes());
        let total = prefix.len() as u64 + parts.iter().map(|part| part.len).sum::<u64>();
        CheckpointArchive { prefix, parts, position: 0, total }
    }

    /// Bytes in the whole stream.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// Every segment of a record log up to position `end`, the last one cut there.
fn plan_log(fs: &dyn FileSystem, root: &Path, name: &str, end: u64, parts: &mut Vec<Part>) -> Result<(), StoreError> {
    let dir = root.join(name);
    let names = fs.list_files(&dir).map_err(StoreError::io("list", &dir))?;
    let mut segments: Vec<(u64, String)> =
        names.into_iter().filter_map(|file| Some((crate::records::parse_segment_file_name(&file)?, file))).collect();
    segments.sort();
    for (first_position, file_name) in segments.into_iter().filter(|(first, _)| *first < end || end == 0 && *first == 0)
    {
        let path = dir.join(&file_name);
        let file = fs.open_read_only(&path).map_err(StoreError::io("open", &path))?;
        let size = file.size().map_err(StoreError::io("stat", &path))?;
        let len = (RECORD_SEGMENT_HEADER_BYTES as u64 + (end - first_position)).min(size);
        parts.push(Part { name: format!("{name}/{file_name}"), file, len });
    }
    Ok(())
}

impl Read for CheckpointArchive {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.position >= self.total {
            return Ok(0);
        }
        let prefix_len = self.prefix.len() as u64;
        if self.position < prefix_len {
            let from = self.position as usize;
            let n = buf.len().min(self.prefix.len() - from);
            buf[..n].copy_from_slice(&self.prefix[from..from + n]);
            self.position += n as u64;
            return Ok(n);
        }
        let mut offset = self.position - prefix_len;
        for part in &self.parts {
            if offset < part.len {
                let n = (buf.len() as u64).min(part.len - offset) as usize;
                part.file.read_exact_at(&mut buf[..n], offset)?;
                self.position += n as u64;
                return Ok(n);
            }
            offset -= part.len;
        }
        Ok(0)
    }
}

impl Seek for CheckpointArchive {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => self.total.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

/// Unpacks an archive into the data directory `root`, whose history must be empty (a new node,
/// or one that wiped its history first). Writes and fsyncs every file, then makes the
/// checkpoint current. Returns its manifest; the receiver then opens history above its ends.
pub fn unpack(fs: Arc<dyn FileSystem>, root: &Path, archive: &mut impl Read) -> Result<CheckpointManifest, StoreError> {
    let bad = |reason: String| StoreError::corrupt(Path::new("<checkpoint archive>"), 0, None, reason);
    let (mut manifest, files) = read_header(archive).map_err(bad)?;
    // The event log does not travel: this node's feed starts empty, after the checkpoint's
    // last event position (its next events come from later log entries, so positions keep
    // increasing).
    manifest.events_end = 0;
    let mut hot = None;
    for (name, len) in files {
        let path = root.join(&name);
        let dir = path.parent().unwrap_or(root).to_path_buf();
        fs.create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        if name.starts_with("checkpoint/") {
            hot = Some((path.clone(), len));
        }
        copy_into(fs.as_ref(), &path, archive, len)?;
        fs.sync_dir(&dir).map_err(StoreError::io("fsync directory", &dir))?;
    }
    let Some((hot_path, _)) = hot else { return Err(bad("the archive holds no hot file".into())) };
    let checkpoints = CheckpointStore::open(fs.clone(), root.join("checkpoint"))?;
    checkpoints.adopt(&hot_path, &manifest)?;
    Ok(manifest)
}

fn copy_into(fs: &dyn FileSystem, path: &Path, archive: &mut impl Read, len: u64) -> Result<(), StoreError> {
    let mut file = fs.create(path).map_err(StoreError::io("create", path))?;
    let mut left = len;
    let mut buffer = vec![0u8; UNPACK_CHUNK_BYTES];
    while left > 0 {
        let n = (left as usize).min(buffer.len());
        archive.read_exact(&mut buffer[..n]).map_err(StoreError::io("read archive into", path))?;
        file.append(&buffer[..n]).map_err(StoreError::io("write", path))?;
        left -= n as u64;
    }
    file.sync_data().map_err(StoreError::io("fsync", path))
}

type Header = (CheckpointManifest, Vec<(String, u64)>);

fn read_header(archive: &mut impl Read) -> Result<Header, String> {
    let mut fixed = [0u8; 12];
    archive.read_exact(&mut fixed).map_err(|e| format!("cannot read the archive header: {e}"))?;
    if &fixed[..8] != ARCHIVE_MAGIC {
        return Err("not a checkpoint archive (wrong magic)".into());
    }
    let header_len = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes")) as usize;
    if !(4..=HEADER_BYTES_MAX).contains(&header_len) {
        return Err(format!("archive header of {header_len} bytes"));
    }
    let mut header = vec![0u8; header_len];
    archive.read_exact(&mut header).map_err(|e| format!("archive header is cut short: {e}"))?;
    let (body, crc) = header.split_at(header_len - 4);
    let mut covered = fixed.to_vec();
    covered.extend_from_slice(body);
    if crc32c::crc32c(&covered).to_le_bytes() != crc {
        return Err("archive header checksum mismatch".into());
    }
    parse_header(body)
}

fn parse_header(body: &[u8]) -> Result<Header, String> {
    let mut r = body;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if r.len() < n {
            return Err("archive header is cut short".into());
        }
        let (head, tail) = r.split_at(n);
        r = tail;
        Ok(head)
    };
    let manifest_len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
    let manifest = decode_manifest(take(manifest_len)?)?;
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut files = Vec::new();
    for _ in 0..count {
        let name_len = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
        let name = std::str::from_utf8(take(name_len)?).map_err(|_| "file name is not UTF-8")?.to_owned();
        let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        check_name(&name)?;
        files.push((name, len));
    }
    Ok((manifest, files))
}

/// Only the names an archive can hold: no absolute paths, no `..`, known directories.
fn check_name(name: &str) -> Result<(), String> {
    let path = PathBuf::from(name);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    let known = ["checkpoint/", "history/transfers/", "history/wallet/", "history/operators/"]
        .iter()
        .any(|dir| name.starts_with(dir));
    if !plain || !known {
        return Err(format!("archive names a file outside the checkpoint: {name:?}"));
    }
    Ok(())
}
