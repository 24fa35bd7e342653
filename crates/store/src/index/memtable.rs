//! The index's in-memory part: recent inserts in a hash map whose capacity is fixed when it is
//! created, so inserting never rehashes on the apply thread.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use foldhash::fast::SeedableRandomState;
use foldhash::SharedSeed;

/// Keys probed per pass in the batched operations: their slots (64 KiB of cache lines) stay
/// cached between the touch pass and the probe pass.
const PROBE_CHUNK_KEYS: usize = 2048;

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

/// A slot: 32 bytes, 32-aligned, so two share a cache line and none straddles one.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(32))]
struct Slot {
    key: u128,
    value: u64,
    occupied: u64,
}

/// Recent inserts, in an open-addressing hash table (linear probing, at most half full, so a
/// miss ends after ~2.5 slots). Not std's `HashMap`: lookups and inserts come in batches of
/// thousands, and a batch can first touch every key's home slot in a tight loop (dozens of
/// cache misses in flight) and then probe, where one `HashMap` call per key let only a few
/// misses overlap. Mutable only while active (under the index's write lock); once frozen it is
/// shared read-only until a flush has written it to a run.
#[derive(Debug)]
pub(crate) struct Memtable {
    slots: Vec<Slot>,
    hasher: IdHashState,
    len: usize,
    /// Entries the table takes: half its slots.
    capacity_entries: usize,
    /// The caller's source position through which every key is in this memtable or older data.
    pub(crate) covered_through: u64,
}

impl Memtable {
    pub(crate) fn with_capacity(capacity_entries: usize, covered_through: u64) -> Memtable {
        assert!(capacity_entries > 0, "a memtable must hold at least one entry");
        let slot_count = capacity_entries.checked_mul(2).expect("slot count fits");
        assert!((slot_count as u64) < 1 << 32, "home slots are a 32-bit range reduction");
        Memtable {
            slots: vec![Slot::default(); slot_count],
            hasher: IdHashState::default(),
            len: 0,
            capacity_entries,
            covered_through,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many more keys fit.
    pub(crate) fn room(&self) -> usize {
        self.capacity_entries - self.len
    }

    fn home(&self, key: u128) -> usize {
        let hash = self.hasher.hash_one(key);
        (((hash >> 32) * self.slots.len() as u64) >> 32) as usize
    }

    fn next(&self, slot: usize) -> usize {
        if slot + 1 == self.slots.len() {
            0
        } else {
            slot + 1
        }
    }

    /// Loads each home slot once, in a loop of a few instructions, so the misses overlap.
    fn touch(&self, homes: &[usize]) {
        let touched = homes.iter().fold(0u64, |touched, &home| touched ^ self.slots[home].occupied);
        std::hint::black_box(touched);
    }

    /// Newest wins: a present key takes the new value (only re-inserts after a crash do this,
    /// with the same value).
    pub(crate) fn insert(&mut self, entries: &[(u128, u64)]) {
        assert!(entries.len() <= self.room(), "the caller freezes a full memtable first");
        let mut homes = Vec::with_capacity(PROBE_CHUNK_KEYS.min(entries.len()));
        for chunk in entries.chunks(PROBE_CHUNK_KEYS) {
            homes.clear();
            homes.extend(chunk.iter().map(|&(key, _)| self.home(key)));
            self.touch(&homes);
            for (&(key, value), &home) in chunk.iter().zip(&homes) {
                self.insert_at(key, value, home);
            }
        }
        assert!(self.len <= self.capacity_entries);
    }

    fn insert_at(&mut self, key: u128, value: u64, home: usize) {
        let mut at = home;
        loop {
            let slot = &mut self.slots[at];
            if slot.occupied == 0 {
                *slot = Slot { key, value, occupied: 1 };
                self.len += 1;
                return;
            }
            if slot.key == key {
                slot.value = value;
                return;
            }
            at = self.next(at);
        }
    }

    /// Starts loading what `get(key)` will read first.
    pub(crate) fn touch_key(&self, key: u128) -> u64 {
        if self.is_empty() {
            return 0;
        }
        self.slots[self.home(key)].occupied
    }

    pub(crate) fn get(&self, key: u128) -> Option<u64> {
        // An empty table (just after a freeze or a flush) costs no cache miss.
        if self.is_empty() {
            return None;
        }
        self.get_at(key, self.home(key))
    }

    fn get_at(&self, key: u128, home: usize) -> Option<u64> {
        // Terminates: the table is at most half full, so an empty slot follows every run.
        let mut at = home;
        loop {
            let slot = &self.slots[at];
            if slot.occupied == 0 {
                return None;
            }
            if slot.key == key {
                return Some(slot.value);
            }
            at = self.next(at);
        }
    }

    /// `get` for each `keys[i]` whose `out[i]` is still `None`.
    pub(crate) fn get_missing(&self, keys: &[u128], out: &mut [Option<u64>]) {
        assert_eq!(keys.len(), out.len());
        if self.is_empty() {
            return;
        }
        let mut homes = Vec::with_capacity(PROBE_CHUNK_KEYS.min(keys.len()));
        for (keys, out) in keys.chunks(PROBE_CHUNK_KEYS).zip(out.chunks_mut(PROBE_CHUNK_KEYS)) {
            homes.clear();
            homes.extend(
                keys.iter().zip(out.iter()).filter(|(_, found)| found.is_none()).map(|(&key, _)| self.home(key)),
            );
            self.touch(&homes);
            let mut next_home = homes.iter();
            for (&key, found) in keys.iter().zip(out.iter_mut()).filter(|(_, found)| found.is_none()) {
                *found = self.get_at(key, *next_home.next().expect("one home per missing key"));
            }
        }
    }

    /// The allocation, counted from the table's real size (not its length).
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
    }

    /// The entries in key order, for writing a run.
    pub(crate) fn sorted_entries(&self) -> Vec<(u128, u64)> {
        let mut entries: Vec<(u128, u64)> =
            self.slots.iter().filter(|slot| slot.occupied != 0).map(|slot| (slot.key, slot.value)).collect();
        entries.sort_unstable_by_key(|&(key, _)| key);
        assert_eq!(entries.len(), self.len);
        entries
    }

    /// Empties the table but keeps its allocation (recycling a flushed memtable spares the apply
    /// thread an allocation and its page faults).
    pub(crate) fn reset(&mut self, covered_through: u64) {
        self.slots.fill(Slot::default());
        self.len = 0;
        self.covered_through = covered_through;
    }
}

/// The largest capacity whose table fits in `bytes_max` (0 when none does): two 32-byte slots
/// per entry.
pub(crate) fn capacity_for_bytes(bytes_max: usize) -> usize {
    bytes_max / (2 * std::mem::size_of::<Slot>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memtable_uses_its_byte_limit_and_holds_what_it_promises() {
        for bytes_max in [64, 200, 1000, 4096, 1 << 20] {
            let capacity = capacity_for_bytes(bytes_max);
            let mut memtable = Memtable::with_capacity(capacity, 0);
            assert!(memtable.bytes() <= bytes_max && memtable.bytes() + 64 > bytes_max);
            let entries: Vec<(u128, u64)> = (0..capacity as u128).map(|key| (key << 64, key as u64)).collect();
            memtable.insert(&entries);
            assert_eq!((memtable.room(), memtable.len()), (0, capacity));
            assert!(entries.iter().all(|&(key, value)| memtable.get(key) == Some(value)));
            assert_eq!(memtable.get(u128::MAX), None);
        }
    }

    #[test]
    fn batched_lookups_match_single_lookups_and_skip_found_keys() {
        let mut memtable = Memtable::with_capacity(5000, 0);
        let entries: Vec<(u128, u64)> = (0..5000u128).map(|i| (i * 7919, i as u64)).collect();
        memtable.insert(&entries);
        let keys: Vec<u128> = (0..6000u128).map(|i| i * 7919 + (i % 3)).collect();
        let mut out: Vec<Option<u64>> = keys.iter().map(|&key| (key == 0).then_some(99)).collect();
        memtable.get_missing(&keys, &mut out);
        for (&key, found) in keys.iter().zip(&out) {
            let expected = if key == 0 { Some(99) } else { memtable.get(key) };
            assert_eq!(*found, expected, "key {key}");
        }
        let present = (0..6000).filter(|i| i % 3 == 0 && *i < 5000).count();
        assert_eq!(out.iter().filter(|found| found.is_some()).count(), present);
    }

    #[test]
    fn sorted_entries_come_out_in_key_order_with_newest_values() {
        let mut memtable = Memtable::with_capacity(7, 0);
        memtable.insert(&[(5, 1), (1, 2), (u128::MAX, 3), (0, 4)]);
        memtable.insert(&[(5, 9)]);
        assert_eq!(memtable.len(), 4);
        assert_eq!(memtable.sorted_entries(), vec![(0, 4), (1, 2), (5, 9), (u128::MAX, 3)]);
        memtable.reset(3);
        assert!(memtable.is_empty() && memtable.get(5).is_none() && memtable.room() == 7);
    }
}
