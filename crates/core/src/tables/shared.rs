//! A round's bets and its per-bet and per-player maps, stored so that a checkpoint's frozen
//! copy of the hot state shares them instead of copying them.
//!
//! A table is one `Arc` in the hot state; the first write to it after a checkpoint froze the
//! state copies the table (`Arc::make_mut`). With plain vectors and maps that copy took every
//! bet of the current round and of the ten kept rounds (up to 2.2 million bets) while every
//! other write waited: 4.5-24 ms with 110,000 bets held, against 17-195 us now (the ignored
//! measurement `first_bet_after_a_freeze_cost` in `tests/tables.rs`). Here the copy takes page
//! and shard pointers, and each later write copies at most the one page (64 bets) or shard
//! (1/64 of a map) it changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::paged::PagedVec;

use super::PlacedBet;

/// A round's bets in bet order, in pages shared copy-on-write.
#[derive(Clone, Debug, Default)]
pub struct RoundBets(PagedVec<PlacedBet>);

impl RoundBets {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    pub fn get(&self, at: usize) -> Option<&PlacedBet> {
        (at < self.0.len()).then(|| self.0.get(at))
    }

    pub fn iter(&self) -> impl Iterator<Item = &PlacedBet> + '_ {
        self.0.iter()
    }

    /// The bets from position `start` on, without walking the ones before it.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &PlacedBet> + '_ {
        self.0.iter_from(start)
    }

    pub(crate) fn push(&mut self, bet: PlacedBet) {
        self.0.push(bet);
    }

    pub(crate) fn get_mut(&mut self, at: usize) -> &mut PlacedBet {
        self.0.get_mut(at)
    }

    #[cfg(test)]
    pub(crate) fn pages_shared_with(&self, other: &RoundBets) -> (usize, usize) {
        self.0.pages_shared_with(&other.0)
    }
}

impl std::ops::Index<usize> for RoundBets {
    type Output = PlacedBet;

    fn index(&self, at: usize) -> &PlacedBet {
        self.0.get(at)
    }
}

impl PartialEq for RoundBets {
    fn eq(&self, other: &RoundBets) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for RoundBets {}

impl FromIterator<PlacedBet> for RoundBets {
    fn from_iter<I: IntoIterator<Item = PlacedBet>>(bets: I) -> RoundBets {
        let mut out = RoundBets::default();
        for bet in bets {
            out.push(bet);
        }
        out
    }
}

/// Shards of an id map: 64 keep each shard's copy small (a 200,000-entry map copies ~3,100
/// entries per shard touched).
const SHARDS: usize = 64;

/// A map from 128-bit ids (bet ids, player ids) in shards shared copy-on-write. Lookups only:
/// nothing iterates it, so the shard layout never shows in a result.
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedIdMap<V: Clone> {
    /// Empty until the first insert, so an empty map allocates nothing.
    shards: Vec<Arc<BTreeMap<u128, V>>>,
}

/// The shard of `id`: Fibonacci hashing of both halves, so ids that differ only in their
/// high bits (or only in their low bits) still spread.
fn shard_of(id: u128) -> usize {
    let folded = (id as u64) ^ ((id >> 64) as u64).rotate_left(32);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
}

impl<V: Clone> SharedIdMap<V> {
    pub(crate) fn get(&self, id: &u128) -> Option<&V> {
        self.shards.get(shard_of(*id))?.get(id)
    }

    /// The value of `id`, inserting `V::default()` first if there is none.
    pub(crate) fn entry_or_default(&mut self, id: u128) -> &mut V
    where
        V: Default,
    {
        self.shard_mut(id).entry(id).or_default()
    }

    /// Inserts; answers the value `id` had.
    pub(crate) fn insert(&mut self, id: u128, value: V) -> Option<V> {
        self.shard_mut(id).insert(id, value)
    }

    pub(crate) fn clear(&mut self) {
        self.shards.clear();
    }

    fn shard_mut(&mut self, id: u128) -> &mut BTreeMap<u128, V> {
        if self.shards.is_empty() {
            self.shards = (0..SHARDS).map(|_| Arc::new(BTreeMap::new())).collect();
        }
        Arc::make_mut(&mut self.shards[shard_of(id)])
    }

    /// Every entry, shard by shard: for equality only (the order is the layout's).
    fn entries(&self) -> impl Iterator<Item = (&u128, &V)> + '_ {
        self.shards.iter().flat_map(|shard| shard.iter())
    }

    #[cfg(test)]
    pub(crate) fn shards_shared_with(&self, other: &SharedIdMap<V>) -> usize {
        let pairs = self.shards.iter().zip(&other.shards);
        pairs.filter(|(a, b)| Arc::ptr_eq(a, b)).count()
    }
}

/// Equal when they hold the same entries, whether or not the shards were ever allocated.
impl<V: Clone + PartialEq> PartialEq for SharedIdMap<V> {
    fn eq(&self, other: &SharedIdMap<V>) -> bool {
        self.entries().eq(other.entries())
    }
}

impl<V: Clone + Eq> Eq for SharedIdMap<V> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn bet(n: u128) -> PlacedBet {
        PlacedBet {
            bet_id: n,
            player_id: n % 7,
            wallet: 1,
            spots: Vec::new(),
            stake: n as u64,
            balance_after_bet: 0,
            paid: None,
            balance_after_settlement: 0,
        }
    }

    #[test]
    fn a_copy_shares_every_page_and_a_write_copies_only_its_own() {
        let mut bets: RoundBets = (0..1_000).map(bet).collect();
        let frozen = bets.clone();
        bets.get_mut(10).paid = Some(5);
        bets.push(bet(1_000));
        let (shared, pages) = bets.pages_shared_with(&frozen);
        // 1,000 bets fill 16 pages: page 0 was written, page 15 took the new bet.
        assert_eq!((shared, pages), (14, 16));
        assert_eq!(frozen[10].paid, None);
        assert_eq!(bets[10].paid, Some(5));
        assert_eq!((frozen.len(), bets.len()), (1_000, 1_001));
        assert_eq!(
            bets.iter_from(998).map(|b| b.bet_id).collect::<Vec<_>>(),
            [998, 999, 1_000]
        );
        assert!(bets.iter_from(2_000).next().is_none());
        assert_eq!(bets.get(1_001), None);
    }

    #[test]
    fn an_id_map_copy_shares_every_shard_but_the_one_written() {
        let mut map = SharedIdMap::default();
        for id in 0..10_000u128 {
            assert_eq!(map.insert(id << 64 | id, id as u32), None);
        }
        let frozen = map.clone();
        *map.entry_or_default(5 << 64 | 5) += 1;
        assert_eq!(map.shards_shared_with(&frozen), SHARDS - 1);
        assert_eq!(frozen.get(&(5 << 64 | 5)), Some(&5));
        assert_eq!(map.get(&(5 << 64 | 5)), Some(&6));
        assert_eq!(map.get(&7), None);
        map.clear();
        assert_eq!(map.get(&(5 << 64 | 5)), None);
        assert_eq!(
            map,
            SharedIdMap::default(),
            "a cleared map equals a new one"
        );
        let mut zero = SharedIdMap::default();
        zero.insert(1, 0);
        assert_ne!(zero, SharedIdMap::default());
    }

    #[test]
    fn ids_spread_over_the_shards_whichever_half_varies() {
        for ids in [
            (0..6_400u128).collect::<Vec<_>>(),
            (0..6_400u128).map(|n| n << 64).collect(),
            (0..6_400u128).map(|n| n << 100).collect(),
        ] {
            let mut counts = [0u32; SHARDS];
            for id in ids {
                counts[shard_of(id)] += 1;
            }
            assert!(
                counts.iter().all(|&n| (50..=150).contains(&n)),
                "{counts:?}"
            );
        }
    }
}
