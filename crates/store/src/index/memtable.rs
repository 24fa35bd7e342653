//! The index's in-memory part: recent inserts in a hash map whose capacity is fixed when it is
//! created, so inserting never rehashes on the apply thread.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;

/// Bytes per hash-map bucket: the entry (a `(u128, u64)` pads to 32 bytes) and its control byte.
const BUCKET_BYTES: usize = std::mem::size_of::<(u128, u64)>() + 1;
/// hashbrown's control bytes carry one extra SIMD group past the last bucket.
const GROUP_BYTES: usize = 16;

/// The hasher for client-chosen ids, seeded from OS entropy once per process and once per map,
/// as the ledger's `IdHashState` is (foldhash's default seed is a public constant; with it,
/// ids whose high half equals that seed would all collide).
#[derive(Clone, Debug)]
pub(crate) struct IdHashState(SeedableRandomState);

impl Default for IdHashState {
    fn default() -> Self {
        static SHARED_SEED: OnceLock<SharedSeed> = OnceLock::new();
        let shared = SHARED_SEED.get_or_init(|| SharedSeed::from_u64(RandomState::new().hash_one(0x5EED_u64)));
        let per_map = RandomState::new().hash_one(0x5EED_u64);
        IdHashState(SeedableRandomState::with_seed(per_map, shared))
    }
}

impl BuildHasher for IdHashState {
    type Hasher = foldhash::fast::FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// Recent inserts. Mutable only while active (under the index's write lock); once frozen it is
/// shared read-only until a flush has written it to a run.
#[derive(Debug)]
pub(crate) struct Memtable {
    map: HashMap<u128, u64, IdHashState>,
    /// Entries the map holds without growing; fixed at creation.
    capacity_entries: usize,
    /// The caller's source position through which every key is in this memtable or older data.
    pub(crate) covered_through: u64,
}

impl Memtable {
    pub(crate) fn with_capacity(capacity_entries: usize, covered_through: u64) -> Memtable {
        assert!(capacity_entries > 0, "a memtable must hold at least one entry");
        let map = HashMap::with_capacity_and_hasher(capacity_entries, IdHashState::default());
        assert!(map.capacity() >= capacity_entries);
        Memtable { capacity_entries: map.capacity(), map, covered_through }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many more keys fit without growing the map.
    pub(crate) fn room(&self) -> usize {
        self.capacity_entries - self.map.len()
    }

    /// Newest wins: a present key takes the new value (only re-inserts after a crash do this,
    /// with the same value).
    pub(crate) fn insert(&mut self, entries: &[(u128, u64)]) {
        assert!(entries.len() <= self.room(), "the caller freezes a full memtable first");
        for &(key, value) in entries {
            self.map.insert(key, value);
        }
        debug_assert_eq!(self.map.capacity(), self.capacity_entries, "a memtable never grows");
    }

    pub(crate) fn get(&self, key: u128) -> Option<u64> {
        self.map.get(&key).copied()
    }

    /// The allocation, counted from the map's real capacity (not its length).
    pub(crate) fn bytes(&self) -> usize {
        map_bytes(self.map.capacity())
    }

    /// The entries in key order, for writing a run.
    pub(crate) fn sorted_entries(&self) -> Vec<(u128, u64)> {
        let mut entries: Vec<(u128, u64)> = self.map.iter().map(|(&key, &value)| (key, value)).collect();
        entries.sort_unstable_by_key(|&(key, _)| key);
        entries
    }

    /// Empties the map but keeps its allocation (recycling a flushed memtable spares the apply
    /// thread an allocation and its page faults).
    pub(crate) fn reset(&mut self, covered_through: u64) {
        self.map.clear();
        self.covered_through = covered_through;
    }
}

/// Bytes a map with this capacity allocates: hashbrown keeps a power-of-two number of buckets
/// at most 7/8 full (below 8 buckets, all but one).
pub(crate) fn map_bytes(capacity: usize) -> usize {
    let buckets =
        if capacity < 8 { (capacity + 1).next_power_of_two() } else { (capacity * 8 / 7).next_power_of_two() };
    buckets * BUCKET_BYTES + GROUP_BYTES
}

/// The largest map capacity whose allocation fits in `bytes_max` (0 when none does).
pub(crate) fn capacity_for_bytes(bytes_max: usize) -> usize {
    let mut buckets = 4usize;
    if buckets * BUCKET_BYTES + GROUP_BYTES > bytes_max {
        return 0;
    }
    while let Some(next) = buckets.checked_mul(2).filter(|&next| next * BUCKET_BYTES + GROUP_BYTES <= bytes_max) {
        buckets = next;
    }
    if buckets < 8 {
        buckets - 1
    } else {
        buckets / 8 * 7
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memtable_never_allocates_past_its_byte_limit() {
        for bytes_max in [200, 1000, 4096, 1 << 20, 64 << 20, (64 << 20) + 12345] {
            let capacity = capacity_for_bytes(bytes_max);
            let mut memtable = Memtable::with_capacity(capacity, 0);
            assert_eq!(memtable.room(), capacity, "the map got exactly the capacity asked for");
            assert!(memtable.bytes() <= bytes_max);
            assert!(map_bytes(capacity + 1) > bytes_max, "the next capacity up would not fit");
            if bytes_max <= 4096 {
                let entries: Vec<(u128, u64)> = (0..capacity as u128).map(|key| (key << 64, key as u64)).collect();
                memtable.insert(&entries);
                assert_eq!(memtable.room(), 0);
                assert!(memtable.bytes() <= bytes_max);
            }
        }
    }

    #[test]
    fn sorted_entries_come_out_in_key_order_with_newest_values() {
        let mut memtable = Memtable::with_capacity(7, 0);
        memtable.insert(&[(5, 1), (1, 2), (u128::MAX, 3)]);
        memtable.insert(&[(5, 9)]);
        assert_eq!(memtable.sorted_entries(), vec![(1, 2), (5, 9), (u128::MAX, 3)]);
    }
}
