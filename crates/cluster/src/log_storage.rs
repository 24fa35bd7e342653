//! openraft's `RaftLogStorage` over the log writer thread, the entry cache and the vote file.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use croupier_store::VoteFile;
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, OptionalSend, StorageIOError};

use crate::entry_cache::EntryCache;
use crate::log_writer::{openraft_flushed, StorageFailure, WriterHandle};
use crate::raft_codec::{decode_vote, encode_vote};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

pub(crate) struct LogStorage {
    reader: LogReader,
    vote_file: Arc<Mutex<VoteFile>>,
}

impl LogStorage {
    pub(crate) fn new(
        writer: WriterHandle,
        vote_file: VoteFile,
        cache_size_max_bytes: usize,
    ) -> Self {
        let cache = Arc::new(Mutex::new(EntryCache::new(cache_size_max_bytes)));
        LogStorage {
            reader: LogReader { writer, cache },
            vote_file: Arc::new(Mutex::new(vote_file)),
        }
    }
}

/// Reads entries from the cache, falling back to the disk through the writer thread.
#[derive(Clone)]
pub(crate) struct LogReader {
    writer: WriterHandle,
    cache: Arc<Mutex<EntryCache>>,
}

impl LogReader {
    fn cache(&self) -> std::sync::MutexGuard<'_, EntryCache> {
        // The cache holds no invariant a panicking holder could break halfway.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn read_error(failure: StorageFailure) -> StorageError {
    StorageIOError::read_logs(AnyError::error(failure)).into()
}

fn write_error(failure: StorageFailure) -> StorageError {
    StorageIOError::write_logs(AnyError::error(failure)).into()
}

fn index_range<RB: RangeBounds<u64>>(range: &RB) -> (u64, u64) {
    let from = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i + 1,
        Bound::Unbounded => 0,
    };
    let to = match range.end_bound() {
        Bound::Included(&i) => i + 1,
        Bound::Excluded(&i) => i,
        Bound::Unbounded => u64::MAX,
    };
    (from, to)
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (from, to) = index_range(&range);
        if to != u64::MAX {
            if let Some(entries) = self.cache().range(from, to) {
                return Ok(entries);
            }
        }
        self.writer.read(from, to).await.map_err(read_error)
    }
}

impl RaftLogReader<TypeConfig> for LogStorage {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.reader.try_get_log_entries(range).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStorage {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let bounds = self.reader.writer.bounds().await.map_err(read_error)?;
        Ok(LogState {
            last_purged_log_id: bounds.last_purged,
            last_log_id: bounds.last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        // Rare (elections only) and small: written and fsynced in place before returning.
        let bytes = encode_vote(vote);
        let vote_file = self
            .vote_file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        vote_file
            .save(&bytes)
            .map_err(|e| StorageIOError::write_vote(AnyError::error(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        let vote_file = self
            .vote_file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let bytes = vote_file
            .load()
            .map_err(|e| StorageError::from(StorageIOError::read_vote(AnyError::error(e))))?;
        bytes
            .map(|bytes| {
                decode_vote(&bytes)
                    .map_err(|e| StorageIOError::read_vote(AnyError::error(e)).into())
            })
            .transpose()
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        {
            let mut cache = self.reader.cache();
            for entry in &entries {
                cache.insert(entry.clone());
            }
        }
        self.reader
            .writer
            .append(entries, openraft_flushed(callback))
            .map_err(write_error)
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.reader.cache().truncate_from(log_id.index);
        self.reader
            .writer
            .truncate_from(log_id.index)
            .await
            .map_err(write_error)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.reader.cache().purge_through(log_id.index);
        self.reader
            .writer
            .purge_through(log_id.index)
            .await
            .map_err(write_error)
    }
}
