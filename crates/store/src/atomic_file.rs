//! Small files replaced atomically (the vote, the purge marker): write `NAME.tmp`, fsync it,
//! rename it over `NAME`, fsync the directory. A reader sees the old or the new content, never
//! a mix; a leftover `.tmp` is garbage from a crash and is ignored.
//!
//! Layout: `magic 8 | payload_len u32 | crc32c u32 | payload`, the CRC over everything else.

use std::path::{Path, PathBuf};

use crate::fs::{read_all, FileSystem};
use crate::StoreError;

const PREFIX_BYTES: usize = 16;
/// Atomic files hold a few hundred bytes; anything near this is damage, not data.
const PAYLOAD_MAX_BYTES: usize = 1 << 20;

pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

pub(crate) fn save(fs: &dyn FileSystem, path: &Path, magic: &[u8; 8], payload: &[u8]) -> Result<(), StoreError> {
    assert!(payload.len() <= PAYLOAD_MAX_BYTES, "atomic files are small");
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tmp_path(path);
    let mut bytes = Vec::with_capacity(PREFIX_BYTES + payload.len());
    bytes.extend_from_slice(magic);
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&[0u8; 4]);
    bytes.extend_from_slice(payload);
    let crc = checksum(&bytes);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());

    let mut file = fs.create(&tmp).map_err(StoreError::io("create", &tmp))?;
    file.append(&bytes).map_err(StoreError::io("write", &tmp))?;
    file.sync_data().map_err(StoreError::io("fsync", &tmp))?;
    drop(file);
    fs.rename(&tmp, path).map_err(StoreError::io("rename", &tmp))?;
    fs.sync_dir(dir).map_err(StoreError::io("fsync directory", dir))
}

/// `Ok(None)` when the file does not exist; `Corrupt` when it exists but is damaged.
pub(crate) fn load(fs: &dyn FileSystem, path: &Path, magic: &[u8; 8]) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match fs.open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::io("open", path)(error)),
    };
    let bytes = read_all(file.as_ref()).map_err(StoreError::io("read", path))?;
    decode(&bytes, magic).map(Some).map_err(|(offset, reason)| StoreError::corrupt(path, offset, None, reason))
}

fn decode(bytes: &[u8], magic: &[u8; 8]) -> Result<Vec<u8>, (u64, String)> {
    if bytes.len() < PREFIX_BYTES {
        return Err((bytes.len() as u64, format!("file is {} bytes, shorter than its header", bytes.len())));
    }
    if &bytes[..8] != magic {
        return Err((0, "wrong magic".into()));
    }
    let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    if len > PAYLOAD_MAX_BYTES || bytes.len() != PREFIX_BYTES + len {
        return Err((8, format!("length field says {len} payload bytes, file holds {}", bytes.len() - PREFIX_BYTES)));
    }
    let stored_crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if checksum(bytes) != stored_crc {
        return Err((PREFIX_BYTES as u64, "checksum mismatch".into()));
    }
    Ok(bytes[PREFIX_BYTES..].to_vec())
}

/// CRC32C of the file with its CRC field read as zeros.
fn checksum(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&bytes[..12]);
    let crc = crc32c::crc32c_append(crc, &[0u8; 4]);
    crc32c::crc32c_append(crc, &bytes[PREFIX_BYTES..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim_fs::SimFileSystem;

    const MAGIC: &[u8; 8] = b"TESTFILE";

    #[test]
    fn saved_payload_loads_back_and_missing_file_is_none() {
        let fs = SimFileSystem::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/f");
        assert_eq!(load(&fs, path, MAGIC).unwrap(), None);
        save(&fs, path, MAGIC, b"first").unwrap();
        save(&fs, path, MAGIC, b"second").unwrap();
        assert_eq!(load(&fs, path, MAGIC).unwrap().as_deref(), Some(&b"second"[..]));
        assert!(fs.read(&tmp_path(path)).is_none(), "the temporary file was renamed away");
    }

    #[test]
    fn damaged_atomic_file_is_corrupt_not_missing() {
        let fs = SimFileSystem::new();
        fs.create_dir_all(Path::new("/d")).unwrap();
        let path = Path::new("/d/f");
        save(&fs, path, MAGIC, b"payload").unwrap();
        let mut bytes = fs.read(path).unwrap();
        bytes[18] ^= 0xFF;
        fs.overwrite(path, &bytes);
        assert!(matches!(load(&fs, path, MAGIC), Err(StoreError::Corrupt { offset: 16, .. })));
        fs.overwrite(path, &bytes[..10]);
        assert!(matches!(load(&fs, path, MAGIC), Err(StoreError::Corrupt { .. })));
    }
}
