//! Run files: immutable sorted arrays of (key u128, value u64) in 4 KiB blocks, each block with
//! its own CRC32C, and a footer holding the fence keys, the bloom filter and a trailer. Layout,
//! invariants and recovery rules: docs/storage-format.md ("Id index").

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::bloom::{Bloom, BloomBlock, BLOOM_BLOCK_BYTES};
use crate::fs::{FileSystem, StorageFile};
use crate::StoreError;

pub(crate) const BLOCK_BYTES: usize = 4096;
const ENTRY_BYTES: usize = 24;
/// `count u32 | crc32c u32` at the end of every block.
const BLOCK_TRAILER_BYTES: usize = 8;
pub(crate) const BLOCK_ENTRIES_MAX: usize = (BLOCK_BYTES - BLOCK_TRAILER_BYTES) / ENTRY_BYTES;
const BLOCK_COUNT_OFFSET: usize = BLOCK_BYTES - BLOCK_TRAILER_BYTES;
const BLOCK_CRC_OFFSET: usize = BLOCK_BYTES - 4;
const FENCE_BYTES: usize = 16;
const RUN_MAGIC: &[u8; 8] = b"CRPIDXR\x01";
const RUN_FORMAT_VERSION: u32 = 1;
const TRAILER_BYTES: usize = 84;
/// Appends go out in chunks of this size (whole blocks), not one write per block.
const WRITE_CHUNK_BYTES: usize = 1 << 20;
/// A run writer hashes this many keys before setting their bloom bits in one pass.
const BLOOM_HASHES_BUFFERED: usize = 4096;
/// Every this-many-th fence key is also kept in a small sparse array (see `Fences`).
const SPARSE_FENCE_STRIDE: usize = 32;
/// A merge reads its inputs this many blocks at a time.
const READ_CHUNK_BLOCKS: usize = 64;

pub(crate) fn run_file_name(id: u64) -> String {
    format!("{id:020}.run")
}

pub(crate) fn parse_run_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".run")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

fn blocks_for(entries: u64) -> u64 {
    entries.div_ceil(BLOCK_ENTRIES_MAX as u64)
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"))
}

fn u128_at(bytes: &[u8], offset: usize) -> u128 {
    u128::from_le_bytes(bytes[offset..offset + 16].try_into().expect("16 bytes"))
}

fn entry_at(block: &[u8], position: usize) -> (u128, u64) {
    let offset = position * ENTRY_BYTES;
    (u128_at(block, offset), u64_at(block, offset + 16))
}

/// The trailer: the last `TRAILER_BYTES` of a run file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Trailer {
    entries: u64,
    block_count: u64,
    bloom_blocks: u64,
    bloom_seed: u64,
    covered_through: u64,
    max_key: u128,
    bloom_bits_per_key: u32,
    /// CRC32C of the fences and the bloom filter.
    footer_crc: u32,
}

impl Trailer {
    fn encode(&self) -> [u8; TRAILER_BYTES] {
        let mut bytes = [0u8; TRAILER_BYTES];
        bytes[0..8].copy_from_slice(RUN_MAGIC);
        bytes[8..12].copy_from_slice(&RUN_FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&(BLOCK_BYTES as u32).to_le_bytes());
        bytes[16..24].copy_from_slice(&self.entries.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.block_count.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.bloom_blocks.to_le_bytes());
        bytes[40..48].copy_from_slice(&self.bloom_seed.to_le_bytes());
        bytes[48..56].copy_from_slice(&self.covered_through.to_le_bytes());
        bytes[56..72].copy_from_slice(&self.max_key.to_le_bytes());
        bytes[72..76].copy_from_slice(&self.bloom_bits_per_key.to_le_bytes());
        bytes[76..80].copy_from_slice(&self.footer_crc.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..80]);
        bytes[80..84].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Checks everything that can be checked without the rest of the file.
    fn decode(bytes: &[u8; TRAILER_BYTES]) -> Result<Trailer, String> {
        if crc32c::crc32c(&bytes[..80]) != u32_at(bytes, 80) {
            return Err("trailer checksum mismatch".into());
        }
        if &bytes[0..8] != RUN_MAGIC {
            return Err("wrong magic".into());
        }
        let (version, block_bytes) = (u32_at(bytes, 8), u32_at(bytes, 12));
        if version != RUN_FORMAT_VERSION || block_bytes as usize != BLOCK_BYTES {
            return Err(format!("unsupported format version {version} with {block_bytes}-byte blocks"));
        }
        let trailer = Trailer {
            entries: u64_at(bytes, 16),
            block_count: u64_at(bytes, 24),
            bloom_blocks: u64_at(bytes, 32),
            bloom_seed: u64_at(bytes, 40),
            covered_through: u64_at(bytes, 48),
            max_key: u128_at(bytes, 56),
            bloom_bits_per_key: u32_at(bytes, 72),
            footer_crc: u32_at(bytes, 76),
        };
        if trailer.entries == 0 || trailer.block_count != blocks_for(trailer.entries) {
            return Err(format!("{} entries cannot fill {} blocks", trailer.entries, trailer.block_count));
        }
        if trailer.bloom_blocks == 0 || trailer.bloom_blocks >= 1 << 32 {
            return Err(format!("bloom filter of {} blocks", trailer.bloom_blocks));
        }
        Ok(trailer)
    }

    fn footer_offset(&self) -> u64 {
        self.block_count * BLOCK_BYTES as u64
    }

    fn bloom_offset(&self) -> u64 {
        self.footer_offset() + self.block_count * FENCE_BYTES as u64
    }

    fn file_bytes(&self) -> u64 {
        self.bloom_offset() + self.bloom_blocks * BLOOM_BLOCK_BYTES as u64 + TRAILER_BYTES as u64
    }
}

/// The first key of every block, plus every `SPARSE_FENCE_STRIDE`-th of them in a small array:
/// finding a block is a binary search of the small array (its upper levels stay cached) and a
/// scan of one contiguous stretch of fences, instead of ~20 dependent reads spread over all the
/// fences (each a DRAM miss at 100M keys).
#[derive(Debug)]
struct Fences {
    keys: Vec<u128>,
    sparse: Vec<u128>,
}

impl Fences {
    fn new(keys: Vec<u128>) -> Fences {
        assert!(!keys.is_empty(), "a run holds at least one block");
        let sparse = keys.iter().step_by(SPARSE_FENCE_STRIDE).copied().collect();
        Fences { keys, sparse }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn first(&self) -> u128 {
        self.keys[0]
    }

    /// The block that can hold `key`: the last whose first key is at most `key`.
    fn block_for(&self, key: u128) -> Option<usize> {
        let segment = self.sparse.partition_point(|&fence| fence <= key).checked_sub(1)?;
        let start = segment * SPARSE_FENCE_STRIDE;
        let stretch = &self.keys[start..(start + SPARSE_FENCE_STRIDE).min(self.keys.len())];
        let within = stretch.iter().position(|&fence| fence > key).unwrap_or(stretch.len());
        debug_assert!(within >= 1, "the stretch starts at a fence <= key");
        Some(start + within - 1)
    }

    fn memory_bytes(&self) -> usize {
        (self.keys.len() + self.sparse.len()) * FENCE_BYTES
    }
}

/// An immutable run on disk with its fences and bloom filter in memory. Shared (`Arc`) by the
/// index's current version and by readers; a run replaced by a merge is marked obsolete and its
/// file is deleted when the last holder drops it.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) id: u64,
    path: PathBuf,
    fs: Arc<dyn FileSystem>,
    file: Box<dyn StorageFile>,
    entries: u64,
    covered_through: u64,
    max_key: u128,
    fences: Fences,
    bloom: Bloom,
    file_bytes: u64,
    obsolete: AtomicBool,
}

impl Run {
    /// Opens a run named by the manifest: the trailer and footer are verified here (damage is
    /// `Corrupt` naming the file and offset), blocks only when they are read.
    pub(crate) fn open(fs: &Arc<dyn FileSystem>, dir: &Path, id: u64) -> Result<Run, StoreError> {
        let path = dir.join(run_file_name(id));
        let file = match fs.open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::corrupt(&path, 0, None, "the manifest names this run but its file is missing"));
            }
            Err(error) => return Err(StoreError::io("open", &path)(error)),
        };
        let size = file.size().map_err(StoreError::io("stat", &path))?;
        if size < TRAILER_BYTES as u64 {
            return Err(StoreError::corrupt(
                &path,
                0,
                None,
                format!("run file is {size} bytes, shorter than its trailer"),
            ));
        }
        let trailer_offset = size - TRAILER_BYTES as u64;
        let mut bytes = [0u8; TRAILER_BYTES];
        file.read_exact_at(&mut bytes, trailer_offset).map_err(StoreError::io("read", &path))?;
        let trailer =
            Trailer::decode(&bytes).map_err(|reason| StoreError::corrupt(&path, trailer_offset, None, reason))?;
        if trailer.file_bytes() != size {
            let reason = format!("trailer describes a {}-byte file, the file has {size} bytes", trailer.file_bytes());
            return Err(StoreError::corrupt(&path, trailer_offset, None, reason));
        }
        let (fences, bloom) = read_footer(file.as_ref(), &path, &trailer)?;
        if trailer.max_key < *fences.last().expect("at least one block") {
            return Err(StoreError::corrupt(&path, trailer_offset, None, "largest key is below the last fence"));
        }
        Ok(Run {
            id,
            path,
            fs: Arc::clone(fs),
            file,
            entries: trailer.entries,
            covered_through: trailer.covered_through,
            max_key: trailer.max_key,
            fences: Fences::new(fences),
            bloom,
            file_bytes: size,
            obsolete: AtomicBool::new(false),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    pub(crate) fn covered_through(&self) -> u64 {
        self.covered_through
    }

    pub(crate) fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Fences and bloom filter.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.fences.memory_bytes() + self.bloom.bytes()
    }

    /// The next holder to drop this run deletes its file (it was merged into another).
    pub(crate) fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// `false` means the key is certainly not in this run: outside its key range or not in its
    /// bloom filter. Touches no disk.
    pub(crate) fn may_contain(&self, key: u128) -> bool {
        self.fences.first() <= key && key <= self.max_key && self.bloom.may_contain(key)
    }

    /// Starts loading what `may_contain(key)` will read.
    pub(crate) fn touch(&self, key: u128) -> u32 {
        if self.fences.first() <= key && key <= self.max_key {
            self.bloom.touch(key)
        } else {
            0
        }
    }

    /// `may_contain` for `keys[i]`, `i` in `pending`, into `hits` (`hashes` is scratch space).
    pub(crate) fn may_contain_many(&self, keys: &[u128], pending: &[u32], hits: &mut Vec<bool>, hashes: &mut Vec<u64>) {
        let (min_key, max_key) = (self.fences.first(), self.max_key);
        hits.clear();
        hits.extend(pending.iter().map(|&i| (min_key..=max_key).contains(&keys[i as usize])));
        hashes.clear();
        hashes.extend(pending.iter().map(|&i| self.bloom.hash(keys[i as usize])));
        self.bloom.retain_many(hashes, hits);
    }

    /// Reads the one block that can hold `key` and binary-searches it.
    pub(crate) fn search(&self, key: u128) -> Result<Option<u64>, StoreError> {
        let Some(block) = self.fences.block_for(key) else { return Ok(None) };
        let mut bytes = [0u8; BLOCK_BYTES];
        let offset = (block * BLOCK_BYTES) as u64;
        self.file.read_exact_at(&mut bytes, offset).map_err(StoreError::io("read", &self.path))?;
        let count = self.check_block(&bytes, block as u64)?;
        let (mut low, mut high) = (0usize, count);
        while low < high {
            let middle = (low + high) / 2;
            let (found, value) = entry_at(&bytes, middle);
            match found.cmp(&key) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Ok(Some(value)),
            }
        }
        Ok(None)
    }

    /// Verifies a block's checksum and entry count; returns the count.
    fn check_block(&self, bytes: &[u8], block: u64) -> Result<usize, StoreError> {
        let offset = block * BLOCK_BYTES as u64;
        if crc32c::crc32c(&bytes[..BLOCK_CRC_OFFSET]) != u32_at(bytes, BLOCK_CRC_OFFSET) {
            return Err(StoreError::corrupt(&self.path, offset, None, "block checksum mismatch"));
        }
        let count = u32_at(bytes, BLOCK_COUNT_OFFSET) as usize;
        let block_count = self.fences.len() as u64;
        let expected = if block + 1 < block_count {
            BLOCK_ENTRIES_MAX
        } else {
            (self.entries - (block_count - 1) * BLOCK_ENTRIES_MAX as u64) as usize
        };
        if count != expected {
            return Err(StoreError::corrupt(
                &self.path,
                offset,
                None,
                format!("block holds {count} entries, expected {expected}"),
            ));
        }
        if count == 0 || entry_at(bytes, 0).0 != self.fences.keys[block as usize] {
            return Err(StoreError::corrupt(&self.path, offset, None, "block does not start at its fence key"));
        }
        Ok(count)
    }

    /// Appends the entries of blocks `first..first + count` to `out`, verifying each block.
    fn read_blocks(
        &self,
        first: u64,
        count: usize,
        bytes: &mut Vec<u8>,
        out: &mut Vec<(u128, u64)>,
    ) -> Result<(), StoreError> {
        bytes.resize(count * BLOCK_BYTES, 0);
        let offset = first * BLOCK_BYTES as u64;
        self.file.read_exact_at(bytes, offset).map_err(StoreError::io("read", &self.path))?;
        for (position, block) in bytes.chunks_exact(BLOCK_BYTES).enumerate() {
            let index = first + position as u64;
            let entries = self.check_block(block, index)?;
            let start = out.len();
            out.extend((0..entries).map(|i| entry_at(block, i)));
            if out[start..].windows(2).any(|pair| pair[0].0 >= pair[1].0) {
                let reason = "block keys are not strictly ascending";
                return Err(StoreError::corrupt(&self.path, index * BLOCK_BYTES as u64, None, reason));
            }
        }
        Ok(())
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            // Best effort: a file that survives (error, crash) is not in the manifest, so the
            // next open deletes it.
            let _ = self.fs.remove_file(&self.path);
        }
    }
}

/// Reads and checks the fences and the bloom filter.
fn read_footer(file: &dyn StorageFile, path: &Path, trailer: &Trailer) -> Result<(Vec<u128>, Bloom), StoreError> {
    let footer_offset = trailer.footer_offset();
    let mut fence_bytes = vec![0u8; usize::try_from(trailer.block_count).expect("fits") * FENCE_BYTES];
    file.read_exact_at(&mut fence_bytes, footer_offset).map_err(StoreError::io("read", path))?;
    let mut crc = crc32c::crc32c(&fence_bytes);
    let fences: Vec<u128> = fence_bytes.chunks_exact(FENCE_BYTES).map(|bytes| u128_at(bytes, 0)).collect();
    drop(fence_bytes);

    let bloom_blocks = usize::try_from(trailer.bloom_blocks).expect("fits");
    let mut blocks = Vec::with_capacity(bloom_blocks);
    let chunk_blocks = WRITE_CHUNK_BYTES / BLOOM_BLOCK_BYTES;
    let mut chunk = vec![0u8; chunk_blocks * BLOOM_BLOCK_BYTES];
    while blocks.len() < bloom_blocks {
        let take = chunk_blocks.min(bloom_blocks - blocks.len());
        let bytes = &mut chunk[..take * BLOOM_BLOCK_BYTES];
        let offset = trailer.bloom_offset() + (blocks.len() * BLOOM_BLOCK_BYTES) as u64;
        file.read_exact_at(bytes, offset).map_err(StoreError::io("read", path))?;
        crc = crc32c::crc32c_append(crc, bytes);
        blocks.extend(
            bytes
                .chunks_exact(BLOOM_BLOCK_BYTES)
                .map(|block| BloomBlock(std::array::from_fn(|word| u32_at(block, word * 4)))),
        );
    }
    if crc != trailer.footer_crc {
        let reason = "footer checksum mismatch (fence keys or bloom filter)";
        return Err(StoreError::corrupt(path, footer_offset, None, reason));
    }
    if fences.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(StoreError::corrupt(path, footer_offset, None, "fence keys are not strictly ascending"));
    }
    Ok((fences, Bloom::from_blocks(blocks, trailer.bloom_seed)))
}

/// Reads a run's entries in key order, a chunk of blocks at a time (for merges).
pub(crate) struct RunCursor<'a> {
    run: &'a Run,
    next_block: u64,
    bytes: Vec<u8>,
    entries: Vec<(u128, u64)>,
    position: usize,
}

impl<'a> RunCursor<'a> {
    pub(crate) fn new(run: &'a Run) -> Result<RunCursor<'a>, StoreError> {
        let mut cursor = RunCursor { run, next_block: 0, bytes: Vec::new(), entries: Vec::new(), position: 0 };
        cursor.refill()?;
        Ok(cursor)
    }

    pub(crate) fn peek(&self) -> Option<(u128, u64)> {
        self.entries.get(self.position).copied()
    }

    pub(crate) fn advance(&mut self) -> Result<(), StoreError> {
        self.position += 1;
        if self.position == self.entries.len() {
            self.refill()?;
        }
        Ok(())
    }

    fn refill(&mut self) -> Result<(), StoreError> {
        self.entries.clear();
        self.position = 0;
        let block_count = self.run.fences.len() as u64;
        let count = READ_CHUNK_BLOCKS.min((block_count - self.next_block) as usize);
        if count > 0 {
            self.run.read_blocks(self.next_block, count, &mut self.bytes, &mut self.entries)?;
            self.next_block += count as u64;
        }
        Ok(())
    }
}

/// Writes a run from entries pushed in strictly ascending key order.
pub(crate) struct RunWriter {
    fs: Arc<dyn FileSystem>,
    path: PathBuf,
    id: u64,
    file: Box<dyn StorageFile>,
    /// Whole blocks not yet appended, then the block being filled (from `block_start`).
    buf: Vec<u8>,
    block_start: usize,
    block_entries: usize,
    fences: Vec<u128>,
    bloom: Bloom,
    /// Hashes of pushed keys not yet in `bloom` (inserted in batches, see `insert_hashes`).
    bloom_hashes: Vec<u64>,
    bloom_bits_per_key: u32,
    entries: u64,
    last_key: Option<u128>,
    bytes_written: u64,
}

impl RunWriter {
    /// `keys_max` sizes the bloom filter: at least the number of entries that will be pushed.
    pub(crate) fn create(
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        id: u64,
        keys_max: u64,
        bloom_bits_per_key: u32,
    ) -> Result<RunWriter, StoreError> {
        let path = dir.join(run_file_name(id));
        let file = fs.create(&path).map_err(StoreError::io("create", &path))?;
        Ok(RunWriter {
            fs: Arc::clone(fs),
            path,
            id,
            file,
            buf: Vec::with_capacity(WRITE_CHUNK_BYTES + BLOCK_BYTES),
            block_start: 0,
            block_entries: 0,
            fences: Vec::new(),
            bloom: Bloom::with_capacity(keys_max, bloom_bits_per_key, Bloom::random_seed()),
            bloom_hashes: Vec::with_capacity(BLOOM_HASHES_BUFFERED + BLOCK_ENTRIES_MAX),
            bloom_bits_per_key,
            entries: 0,
            last_key: None,
            bytes_written: 0,
        })
    }

    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    pub(crate) fn push(&mut self, key: u128, value: u64) -> Result<(), StoreError> {
        assert!(self.last_key.is_none_or(|last| last < key), "run entries must be strictly ascending");
        self.last_key = Some(key);
        if self.block_entries == 0 {
            self.block_start = self.buf.len();
            self.buf.resize(self.block_start + BLOCK_BYTES, 0);
            self.fences.push(key);
        }
        let offset = self.block_start + self.block_entries * ENTRY_BYTES;
        self.buf[offset..offset + 16].copy_from_slice(&key.to_le_bytes());
        self.buf[offset + 16..offset + ENTRY_BYTES].copy_from_slice(&value.to_le_bytes());
        self.block_entries += 1;
        self.entries += 1;
        self.bloom_hashes.push(self.bloom.hash(key));
        if self.block_entries == BLOCK_ENTRIES_MAX {
            self.seal_block();
            if self.buf.len() >= WRITE_CHUNK_BYTES {
                self.write_buf()?;
            }
        }
        Ok(())
    }

    fn seal_block(&mut self) {
        if self.bloom_hashes.len() >= BLOOM_HASHES_BUFFERED {
            self.bloom.insert_hashes(&self.bloom_hashes);
            self.bloom_hashes.clear();
        }
        let block = &mut self.buf[self.block_start..self.block_start + BLOCK_BYTES];
        block[BLOCK_COUNT_OFFSET..BLOCK_CRC_OFFSET].copy_from_slice(&(self.block_entries as u32).to_le_bytes());
        let crc = crc32c::crc32c(&block[..BLOCK_CRC_OFFSET]);
        block[BLOCK_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        self.block_entries = 0;
    }

    fn write_buf(&mut self) -> Result<(), StoreError> {
        assert_eq!(self.block_entries, 0, "only whole blocks are written");
        self.file.append(&self.buf).map_err(StoreError::io("write", &self.path))?;
        self.bytes_written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Writes the footer and fdatasyncs the file. The caller must still fsync the directory
    /// before a manifest names the run.
    pub(crate) fn finish(mut self, covered_through: u64) -> Result<Run, StoreError> {
        let max_key = self.last_key.expect("a run holds at least one entry");
        if self.block_entries > 0 {
            self.seal_block();
        }
        self.bloom.insert_hashes(&self.bloom_hashes);
        self.bloom_hashes.clear();
        self.write_buf()?;
        for fence in &self.fences {
            self.buf.extend_from_slice(&fence.to_le_bytes());
        }
        let mut crc = crc32c::crc32c(&self.buf);
        self.write_buf()?;
        let bloom_blocks = self.bloom.blocks().len();
        let chunk_blocks = WRITE_CHUNK_BYTES / BLOOM_BLOCK_BYTES;
        for start in (0..bloom_blocks).step_by(chunk_blocks) {
            for block in &self.bloom.blocks()[start..bloom_blocks.min(start + chunk_blocks)] {
                block.0.iter().for_each(|word| self.buf.extend_from_slice(&word.to_le_bytes()));
            }
            crc = crc32c::crc32c_append(crc, &self.buf);
            self.write_buf()?;
        }
        let trailer = Trailer {
            entries: self.entries,
            block_count: self.fences.len() as u64,
            bloom_blocks: self.bloom.blocks().len() as u64,
            bloom_seed: self.bloom.seed(),
            covered_through,
            max_key,
            bloom_bits_per_key: self.bloom_bits_per_key,
            footer_crc: crc,
        };
        self.buf.extend_from_slice(&trailer.encode());
        self.write_buf()?;
        self.file.sync_data().map_err(StoreError::io("fsync", &self.path))?;
        assert_eq!(self.bytes_written, trailer.file_bytes());
        Ok(self.into_run(trailer))
    }

    fn into_run(self, trailer: Trailer) -> Run {
        Run {
            id: self.id,
            path: self.path,
            fs: self.fs,
            file: self.file,
            entries: trailer.entries,
            covered_through: trailer.covered_through,
            max_key: trailer.max_key,
            fences: Fences::new(self.fences),
            bloom: self.bloom,
            file_bytes: self.bytes_written,
            obsolete: AtomicBool::new(false),
        }
    }

    /// Deletes the half-written file (a merge that was stopped or failed).
    pub(crate) fn abandon(self) {
        drop(self.file);
        let _ = self.fs.remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_fences_find_the_same_block_as_a_full_binary_search() {
        for blocks in [1usize, 2, 31, 32, 33, 64, 100, 1000] {
            let keys: Vec<u128> = (0..blocks as u128).map(|block| 10 + block * 10).collect();
            let fences = Fences::new(keys.clone());
            for key in 0..(blocks as u128 * 10 + 30) {
                let expected = keys.partition_point(|&fence| fence <= key).checked_sub(1);
                assert_eq!(fences.block_for(key), expected, "{blocks} blocks, key {key}");
            }
            assert_eq!(fences.block_for(u128::MAX), Some(blocks - 1));
        }
    }
}
