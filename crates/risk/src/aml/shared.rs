//! Which players were seen with one device, payment instrument or address digest: many
//! accounts on one device or card is the mark of multi-accounting, bonus abuse and money
//! mules. Bounded in digests and in players per digest.

use std::collections::{BTreeMap, BTreeSet};

use super::event::Digest;

/// One kind of digest (devices, instruments or addresses) and the players seen with each.
#[derive(Clone, Debug)]
pub(crate) struct DigestIndex {
    entries: BTreeMap<Digest, DigestEntry>,
    /// `(last_at_ns, digest)` of every entry: the first is the one to forget when full, the
    /// same one on every replica (ties broken by the digest, never by hash order).
    by_recency: BTreeSet<(u64, Digest)>,
    digests_max: usize,
    players_per_digest_max: usize,
}

#[derive(Clone, Debug)]
struct DigestEntry {
    last_at_ns: u64,
    players: BTreeSet<u128>,
}

impl DigestIndex {
    pub(crate) fn new(digests_max: usize, players_per_digest_max: usize) -> DigestIndex {
        DigestIndex {
            entries: BTreeMap::new(),
            by_recency: BTreeSet::new(),
            digests_max: digests_max.max(1),
            players_per_digest_max: players_per_digest_max.max(1),
        }
    }

    /// Notes that `player_id` used `digest` at `at_ns`. Past `players_per_digest_max` players
    /// the set stops growing: the count it gives then means "at least that many".
    pub(crate) fn record(&mut self, digest: &Digest, player_id: u128, at_ns: u64) {
        if let Some(entry) = self.entries.get_mut(digest) {
            if at_ns > entry.last_at_ns {
                self.by_recency.remove(&(entry.last_at_ns, *digest));
                self.by_recency.insert((at_ns, *digest));
                entry.last_at_ns = at_ns;
            }
            if entry.players.len() < self.players_per_digest_max {
                entry.players.insert(player_id);
            }
            return;
        }
        if self.entries.len() >= self.digests_max {
            if let Some(oldest) = self.by_recency.pop_first() {
                self.entries.remove(&oldest.1);
            }
        }
        let players = BTreeSet::from([player_id]);
        let entry = DigestEntry {
            last_at_ns: at_ns,
            players,
        };
        self.entries.insert(*digest, entry);
        self.by_recency.insert((at_ns, *digest));
    }

    /// How many distinct players used `digest`, `player_id` counted as one of them whether
    /// recorded yet or not (capped like the set).
    pub(crate) fn players_with(&self, digest: &Digest, player_id: u128) -> u64 {
        let Some(entry) = self.entries.get(digest) else {
            return 1;
        };
        let known = entry.players.len();
        let newcomer = !entry.players.contains(&player_id) && known < self.players_per_digest_max;
        (known + usize::from(newcomer)) as u64
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
