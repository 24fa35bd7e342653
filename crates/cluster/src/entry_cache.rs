//! Recent log entries kept in memory, so the state machine never reads the disk on the hot path
//! (openraft reads every committed entry back through the log reader before applying it).
//! Bounded by an estimate of the bytes the entries hold; an evicted entry is read from disk.

use std::collections::BTreeMap;

use croupier_core::Command;
use openraft::EntryPayload;

use crate::types::{Entry, ProposalData};

/// Bytes charged for an entry whose payload is not a transfer/account batch.
const ENTRY_OVERHEAD_BYTES: usize = 128;

pub(crate) struct EntryCache {
    entries: BTreeMap<u64, (Entry, usize)>,
    bytes: usize,
    bytes_max: usize,
}

impl EntryCache {
    pub(crate) fn new(bytes_max: usize) -> Self {
        EntryCache {
            entries: BTreeMap::new(),
            bytes: 0,
            bytes_max,
        }
    }

    /// Caches an appended entry. An append at an index already cached replaces that suffix
    /// (openraft truncates first, but the cache must never serve a stale suffix).
    pub(crate) fn insert(&mut self, entry: Entry) {
        let index = entry.log_id.index;
        self.truncate_from(index);
        let size = entry_size_estimate(&entry);
        self.entries.insert(index, (entry, size));
        self.bytes += size;
        // Keep at least the newest entry: it is the one about to be applied.
        while self.bytes > self.bytes_max && self.entries.len() > 1 {
            let (_, (_, evicted)) = self.entries.pop_first().expect("non-empty");
            self.bytes -= evicted;
        }
    }

    /// All entries in `[from, to)`, or `None` if any of them is not cached.
    pub(crate) fn range(&self, from: u64, to: u64) -> Option<Vec<Entry>> {
        if from >= to {
            return Some(Vec::new());
        }
        let (&first, _) = self.entries.first_key_value()?;
        let (&last, _) = self.entries.last_key_value()?;
        // Cached indices are contiguous: insert truncates the suffix, eviction pops the prefix.
        if from < first || to > last + 1 {
            return None;
        }
        Some(
            self.entries
                .range(from..to)
                .map(|(_, (entry, _))| entry.clone())
                .collect(),
        )
    }

    pub(crate) fn truncate_from(&mut self, index: u64) {
        let removed = self.entries.split_off(&index);
        self.bytes -= removed.values().map(|(_, size)| size).sum::<usize>();
    }

    pub(crate) fn purge_through(&mut self, index: u64) {
        let kept = self.entries.split_off(&(index.saturating_add(1)));
        let purged = std::mem::replace(&mut self.entries, kept);
        self.bytes -= purged.values().map(|(_, size)| size).sum::<usize>();
    }
}

fn entry_size_estimate(entry: &Entry) -> usize {
    let EntryPayload::Normal(ProposalData::Decoded(proposal)) = &entry.payload else {
        return match &entry.payload {
            EntryPayload::Normal(ProposalData::Encoded(bytes)) => {
                bytes.len() + ENTRY_OVERHEAD_BYTES
            }
            _ => ENTRY_OVERHEAD_BYTES,
        };
    };
    let commands: usize = proposal
        .commands
        .iter()
        .map(|command| match command {
            Command::CreateAccounts(items) => std::mem::size_of_val(items.as_slice()),
            Command::CreateTransfers(items) => std::mem::size_of_val(items.as_slice()),
            _ => 0,
        })
        .sum();
    commands + proposal.commands.len() * std::mem::size_of::<Command>() + ENTRY_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::log_id;

    fn blank(index: u64) -> Entry {
        Entry {
            log_id: log_id(1, index),
            payload: EntryPayload::Blank,
        }
    }

    fn indices(entries: &[Entry]) -> Vec<u64> {
        entries.iter().map(|e| e.log_id.index).collect()
    }

    #[test]
    fn range_is_served_only_when_every_entry_is_cached() {
        let mut cache = EntryCache::new(1 << 20);
        for index in 1..=5 {
            cache.insert(blank(index));
        }
        assert_eq!(indices(&cache.range(2, 5).unwrap()), vec![2, 3, 4]);
        assert!(cache.range(0, 3).is_none());
        assert!(cache.range(4, 7).is_none());
    }

    #[test]
    fn eviction_drops_the_oldest_entries_beyond_the_byte_budget() {
        let mut cache = EntryCache::new(ENTRY_OVERHEAD_BYTES * 3);
        for index in 1..=10 {
            cache.insert(blank(index));
        }
        assert!(cache.range(7, 8).is_none());
        assert_eq!(indices(&cache.range(8, 11).unwrap()), vec![8, 9, 10]);
    }

    #[test]
    fn reinserting_an_index_drops_the_stale_suffix() {
        let mut cache = EntryCache::new(1 << 20);
        for index in 1..=5 {
            cache.insert(blank(index));
        }
        cache.insert(Entry {
            log_id: log_id(2, 3),
            payload: EntryPayload::Blank,
        });
        assert!(cache.range(3, 5).is_none());
        assert_eq!(cache.range(3, 4).unwrap()[0].log_id, log_id(2, 3));
    }

    #[test]
    fn purge_and_truncate_keep_the_byte_count_exact() {
        let mut cache = EntryCache::new(1 << 20);
        for index in 1..=6 {
            cache.insert(blank(index));
        }
        cache.purge_through(2);
        cache.truncate_from(5);
        assert_eq!(indices(&cache.range(3, 5).unwrap()), vec![3, 4]);
        assert_eq!(cache.bytes, 2 * ENTRY_OVERHEAD_BYTES);
    }
}
