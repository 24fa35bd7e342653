//! A split-block bloom filter (the Parquet layout): the filter is an array of 256-bit blocks;
//! a key picks one block and sets one bit in each of its eight 32-bit words. A lookup touches a
//! single 32-byte-aligned block, so a negative costs one cache miss however many bits are set.
//! At 10 bits per key the false-positive rate is about 1%.
//!
//! Keys are client-chosen, so the hash takes a per-file seed (stored in the run's footer: the
//! filter can be checked and rebuilt bit for bit). The hash itself is our own fixed function, not
//! a library's, so a file written by one version of the code reads the same in the next.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

pub(crate) const BLOOM_BLOCK_BYTES: usize = 32;
const WORDS: usize = 8;
/// The Parquet salts: odd constants that spread one 32-bit hash over eight bit positions.
const SALT: [u32; WORDS] =
    [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31];
const MIX_A: u64 = 0x9E37_79B9_7F4A_7C15;
const MIX_B: u64 = 0xD6E8_FEB8_6659_FD93;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(align(32))]
pub(crate) struct BloomBlock(pub(crate) [u32; WORDS]);

#[derive(Debug)]
pub(crate) struct Bloom {
    blocks: Vec<BloomBlock>,
    seed: u64,
}

impl Bloom {
    /// An empty filter sized for `keys_max` keys at `bits_per_key`.
    pub(crate) fn with_capacity(keys_max: u64, bits_per_key: u32, seed: u64) -> Bloom {
        let bits = keys_max.saturating_mul(u64::from(bits_per_key));
        let blocks = bits.div_ceil(BLOOM_BLOCK_BYTES as u64 * 8).max(1);
        Bloom::from_blocks(vec![BloomBlock::default(); usize::try_from(blocks).expect("fits in memory")], seed)
    }

    pub(crate) fn from_blocks(blocks: Vec<BloomBlock>, seed: u64) -> Bloom {
        assert!(!blocks.is_empty() && (blocks.len() as u64) < (1 << 32), "block index is a 32-bit range reduction");
        Bloom { blocks, seed }
    }

    /// A fresh seed from OS entropy (each run file gets its own).
    pub(crate) fn random_seed() -> u64 {
        RandomState::new().hash_one(0xB100_u64)
    }

    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    pub(crate) fn blocks(&self) -> &[BloomBlock] {
        &self.blocks
    }

    pub(crate) fn bytes(&self) -> usize {
        self.blocks.len() * BLOOM_BLOCK_BYTES
    }

    /// This filter's hash of `key` (for `insert_hashes`).
    pub(crate) fn hash(&self, key: u128) -> u64 {
        hash(key, self.seed)
    }

    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: u128) {
        self.insert_hashes(&[hash(key, self.seed)]);
    }

    /// Sets the bits of many keys, hashed beforehand: a tight loop of independent
    /// read-modify-writes keeps many cache misses in flight, where hashing and inserting key by
    /// key amid other work waited for one miss at a time.
    pub(crate) fn insert_hashes(&mut self, hashes: &[u64]) {
        let blocks = self.blocks.len();
        // Touch every block first: a few instructions per key, so dozens of misses overlap;
        // the bit-setting loop below (~50 instructions per key) then finds them in cache.
        let mut touched = 0u32;
        for &hash in hashes {
            touched ^= self.blocks[block_index(hash, blocks)].0[0];
        }
        std::hint::black_box(touched);
        for &hash in hashes {
            let mask = block_mask(hash);
            let block = &mut self.blocks[block_index(hash, blocks)].0;
            for word in 0..WORDS {
                block[word] |= mask[word];
            }
        }
    }

    /// For each `hashes[i]` whose `hits[i]` is set, clears `hits[i]` unless the filter may hold
    /// that key. First one plain load per key in a loop of a few instructions (so the CPU keeps
    /// many cache misses in flight, where a full probe per iteration allowed a handful), then
    /// the tests, on blocks by now in cache.
    pub(crate) fn retain_many(&self, hashes: &[u64], hits: &mut [bool]) {
        assert_eq!(hashes.len(), hits.len());
        let blocks = self.blocks.len();
        let mut touched = 0u32;
        for (&hash, &hit) in hashes.iter().zip(hits.iter()) {
            if hit {
                touched ^= self.blocks[block_index(hash, blocks)].0[0];
            }
        }
        std::hint::black_box(touched);
        for (&hash, hit) in hashes.iter().zip(hits.iter_mut()) {
            if *hit {
                *hit = block_holds(&self.blocks[block_index(hash, blocks)], hash);
            }
        }
    }

    /// Loads the block `key` maps to (to start its cache miss early; see `IdIndex::get`).
    pub(crate) fn touch(&self, key: u128) -> u32 {
        self.blocks[block_index(hash(key, self.seed), self.blocks.len())].0[0]
    }

    /// `false` means the key is certainly absent.
    pub(crate) fn may_contain(&self, key: u128) -> bool {
        let hash = hash(key, self.seed);
        block_holds(&self.blocks[block_index(hash, self.blocks.len())], hash)
    }
}

fn block_holds(block: &BloomBlock, hash: u64) -> bool {
    let mask = block_mask(hash);
    // No early exit: eight independent ANDs vectorise, one branch at the end.
    let missing = mask.iter().zip(&block.0).fold(0u32, |missing, (&bits, &word)| missing | (bits & !word));
    missing == 0
}

/// 64-bit hash of a key under a seed: two folded 64×64→128 multiplies (foldhash's construction
/// for a u128, with our own constants so the result never changes under us).
pub(crate) fn hash(key: u128, seed: u64) -> u64 {
    let low = key as u64;
    let high = (key >> 64) as u64;
    let folded = folded_multiply(low ^ seed, high ^ seed.rotate_left(32) ^ MIX_A);
    folded_multiply(folded ^ MIX_B, seed | 1)
}

fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The high 32 bits pick the block (Lemire's multiply-shift range reduction, no division)...
fn block_index(hash: u64, blocks: usize) -> usize {
    (((hash >> 32) * blocks as u64) >> 32) as usize
}

/// ...and the low 32 bits pick one bit in each word.
fn block_mask(hash: u64) -> [u32; WORDS] {
    let low = hash as u32;
    SALT.map(|salt| 1u32 << (low.wrapping_mul(salt) >> 27))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_keys_are_always_found() {
        let mut bloom = Bloom::with_capacity(10_000, 10, 7);
        let keys: Vec<u128> = (0..10_000u128).map(|i| i * 0x1_0000_0001 + (i << 100)).collect();
        keys.iter().for_each(|&key| bloom.insert(key));
        assert!(keys.iter().all(|&key| bloom.may_contain(key)));
    }

    #[test]
    fn ten_bits_per_key_give_about_one_percent_false_positives() {
        for (seed, sequential) in [(1u64, true), (2, false)] {
            let mut bloom = Bloom::with_capacity(100_000, 10, seed);
            let key = |i: u128| if sequential { i } else { i.wrapping_mul(0x2545_F491_4F6C_DD1D_9E37_79B9_7F4A_7C15) };
            (0..100_000u128).for_each(|i| bloom.insert(key(i)));
            let false_positives = (100_000..300_000u128).filter(|&i| bloom.may_contain(key(i))).count();
            let rate = false_positives as f64 / 200_000.0;
            assert!(rate < 0.015, "false-positive rate {rate} (sequential keys: {sequential})");
        }
    }

    #[test]
    fn the_hash_depends_on_the_seed_and_never_changes() {
        assert_ne!(hash(42, 1), hash(42, 2));
        // Pinned: run files on disk hold filters built with this function.
        assert_eq!(hash(0x0123_4567_89ab_cdef_0011_2233_4455_6677, 99), 14_071_434_113_046_010_294);
    }
}
