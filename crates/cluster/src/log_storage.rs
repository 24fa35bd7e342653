//! openraft's `RaftLogStorage` over the log writer thread, the entry cache and the vote file.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::{Arc, Mutex};

use croupier_store::VoteFile;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;

use crate::entry_cache::EntryCache;
use crate::log_writer::{openraft_flushed, StorageFailure, WriterHandle};
use crate::raft_codec::{decode_vote, encode_vote};
use crate::types::{Entry, LogId, TypeConfig, Vote};

pub(crate) struct LogStorage {
    reader: LogReader,
}

impl LogStorage {
    pub(crate) fn new(
        writer: WriterHandle,
        vote_file: VoteFile,
        cache_size_max_bytes: usize,
    ) -> Self {
        let cache = Arc::new(Mutex::new(EntryCache::new(cache_size_max_bytes)));
        let votes = Arc::new(Mutex::new(Votes {
            file: vote_file,
            last_read: None,
        }));
        LogStorage {
            reader: LogReader {
                writer,
                cache,
                votes,
            },
        }
    }
}

/// The vote file and the vote it last held. openraft reads the vote around every replication
/// read (to notice a leader change), so the file is read once and then only written.
struct Votes {
    file: VoteFile,
    last_read: Option<Vote>,
}

/// Reads entries from the cache, falling back to the disk through the writer thread.
#[derive(Clone)]
pub(crate) struct LogReader {
    writer: WriterHandle,
    cache: Arc<Mutex<EntryCache>>,
    votes: Arc<Mutex<Votes>>,
}

impl LogReader {
    fn cache(&self) -> std::sync::MutexGuard<'_, EntryCache> {
        // The cache holds no invariant a panicking holder could break halfway.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn votes(&self) -> std::sync::MutexGuard<'_, Votes> {
        // `last_read` is set only after the file holds that vote: never ahead of the disk.
        self.votes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn storage_error(failure: StorageFailure) -> io::Error {
    io::Error::other(failure)
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
    ) -> Result<Vec<Entry>, io::Error> {
        let (from, to) = index_range(&range);
        if to != u64::MAX {
            if let Some(entries) = self.cache().range(from, to) {
                return Ok(entries);
            }
        }
        self.writer.read(from, to).await.map_err(storage_error)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        let mut votes = self.votes();
        if votes.last_read.is_none() {
            if let Some(bytes) = votes.file.load().map_err(io::Error::other)? {
                let vote = decode_vote(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                votes.last_read = Some(vote);
            }
        }
        Ok(votes.last_read)
    }
}

impl RaftLogStorage<TypeConfig> for LogStorage {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let bounds = self.reader.writer.bounds().await.map_err(storage_error)?;
        Ok(LogState {
            last_purged_log_id: bounds.last_purged,
            last_log_id: bounds.last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        // Rare (elections only) and small: written and fsynced in place before returning.
        let mut votes = self.reader.votes();
        votes
            .file
            .save(&encode_vote(vote))
            .map_err(io::Error::other)?;
        votes.last_read = Some(*vote);
        Ok(())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), io::Error>
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
        // Returns once the entries are queued: openraft goes on (heartbeats, votes, the next
        // append) and hears of durability through `callback`, so appends queued during an
        // fsync share the next one.
        self.reader
            .writer
            .append(entries, openraft_flushed(callback))
            .map_err(storage_error)
    }

    async fn truncate_after(&mut self, last_kept: Option<LogId>) -> Result<(), io::Error> {
        let first_removed = last_kept.map_or(0, |id| id.index + 1);
        self.reader.cache().truncate_from(first_removed);
        self.reader
            .writer
            .truncate_from(first_removed)
            .await
            .map_err(storage_error)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.reader.cache().purge_through(log_id.index);
        self.reader
            .writer
            .purge_through(log_id.index)
            .await
            .map_err(storage_error)?;
        // Operators (and the failover tests) need to see when a stopped member can no longer
        // catch up from the log and will be sent a checkpoint instead.
        tracing::info!(through_index = log_id.index, "log purged");
        Ok(())
    }
}
