//! The manifest: the live runs (newest first, each with its level), the source position they
//! cover and the next run id. Replaced atomically (`atomic_file`) after every flush and merge;
//! a run file it does not name is garbage from a crash.
//!
//! Payload: `version u32 | covered_through u64 | next_run_id u64 | run_count u32`, then per run
//! `id u64 | level u8 | entries u64 | file_bytes u64`.

use std::path::{Path, PathBuf};

use super::policy::levels_are_ordered;
use crate::atomic_file;
use crate::fs::FileSystem;
use crate::StoreError;

pub(crate) const MANIFEST_FILE: &str = "MANIFEST";
const MANIFEST_MAGIC: &[u8; 8] = b"CRPIDXM\x01";
const MANIFEST_FORMAT_VERSION: u32 = 1;
const HEADER_BYTES: usize = 4 + 8 + 8 + 4;
const RUN_RECORD_BYTES: usize = 8 + 1 + 8 + 8;
/// The atomic-file envelope before the payload (offsets in errors are file offsets).
const ENVELOPE_BYTES: u64 = 16;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) covered_through: u64,
    pub(crate) next_run_id: u64,
    /// Newest first.
    pub(crate) runs: Vec<RunRecord>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunRecord {
    pub(crate) id: u64,
    pub(crate) level: u8,
    pub(crate) entries: u64,
    pub(crate) file_bytes: u64,
}

pub(crate) fn manifest_path(dir: &Path) -> PathBuf {
    dir.join(MANIFEST_FILE)
}

impl Manifest {
    pub(crate) fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Option<Manifest>, StoreError> {
        let path = manifest_path(dir);
        let Some(payload) = atomic_file::load(fs, &path, MANIFEST_MAGIC)? else { return Ok(None) };
        Manifest::decode(&payload)
            .map(Some)
            .map_err(|(offset, reason)| StoreError::corrupt(&path, ENVELOPE_BYTES + offset as u64, None, reason))
    }

    pub(crate) fn save(&self, fs: &dyn FileSystem, dir: &Path) -> Result<(), StoreError> {
        assert!(self.is_consistent(), "manifest to save breaks its invariants: {self:?}");
        atomic_file::save(fs, &manifest_path(dir), MANIFEST_MAGIC, &self.encode())
    }

    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(HEADER_BYTES + self.runs.len() * RUN_RECORD_BYTES);
        bytes.extend_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&self.covered_through.to_le_bytes());
        bytes.extend_from_slice(&self.next_run_id.to_le_bytes());
        bytes.extend_from_slice(&(self.runs.len() as u32).to_le_bytes());
        for run in &self.runs {
            bytes.extend_from_slice(&run.id.to_le_bytes());
            bytes.push(run.level);
            bytes.extend_from_slice(&run.entries.to_le_bytes());
            bytes.extend_from_slice(&run.file_bytes.to_le_bytes());
        }
        bytes
    }

    /// Errors carry the payload offset of the problem.
    fn decode(bytes: &[u8]) -> Result<Manifest, (usize, String)> {
        if bytes.len() < HEADER_BYTES {
            return Err((0, format!("manifest payload of {} bytes is shorter than its header", bytes.len())));
        }
        let u64_at = |offset: usize| u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"));
        let u32_at = |offset: usize| u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("4 bytes"));
        let version = u32_at(0);
        if version != MANIFEST_FORMAT_VERSION {
            return Err((0, format!("unsupported manifest version {version}")));
        }
        let run_count = u32_at(20) as usize;
        if bytes.len() != HEADER_BYTES + run_count * RUN_RECORD_BYTES {
            return Err((20, format!("{run_count} runs do not fit a {}-byte payload", bytes.len())));
        }
        let runs = (0..run_count)
            .map(|i| HEADER_BYTES + i * RUN_RECORD_BYTES)
            .map(|at| RunRecord {
                id: u64_at(at),
                level: bytes[at + 8],
                entries: u64_at(at + 9),
                file_bytes: u64_at(at + 17),
            })
            .collect();
        let manifest = Manifest { covered_through: u64_at(4), next_run_id: u64_at(12), runs };
        if !manifest.is_consistent() {
            return Err((HEADER_BYTES, "run list breaks the manifest invariants (ids, levels, sizes)".into()));
        }
        Ok(manifest)
    }

    /// Ids unique and below `next_run_id`; runs non-empty; levels in order.
    fn is_consistent(&self) -> bool {
        let mut ids: Vec<u64> = self.runs.iter().map(|run| run.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() == self.runs.len()
            && self.runs.iter().all(|run| run.id < self.next_run_id && run.entries > 0)
            && levels_are_ordered(self.runs.iter().map(|run| run.level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim_fs::SimFileSystem;

    #[test]
    fn manifest_round_trips_and_a_damaged_one_is_corrupt() {
        let fs = SimFileSystem::new();
        let dir = Path::new("/index");
        fs.create_dir_all(dir).unwrap();
        assert_eq!(Manifest::load(&fs, dir).unwrap(), None);
        let record = |id, level| RunRecord { id, level, entries: 10 + id, file_bytes: 4096 * id };
        let manifest =
            Manifest { covered_through: 77, next_run_id: 9, runs: vec![record(8, 0), record(5, 1), record(2, 3)] };
        manifest.save(&fs, dir).unwrap();
        assert_eq!(Manifest::load(&fs, dir).unwrap(), Some(manifest));

        let mut bytes = fs.read(&manifest_path(dir)).unwrap();
        bytes[30] ^= 1;
        fs.overwrite(&manifest_path(dir), &bytes);
        assert!(matches!(Manifest::load(&fs, dir), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn manifest_with_misordered_levels_is_rejected() {
        let record = |id, level| RunRecord { id, level, entries: 1, file_bytes: 1 };
        let bad = Manifest { covered_through: 0, next_run_id: 9, runs: vec![record(1, 2), record(2, 1)] };
        assert!(matches!(Manifest::decode(&bad.encode()), Err((HEADER_BYTES, _))));
    }
}
