//! The pending transfers that are still pending: hot state, because posts, voids and expiry
//! need them, and bounded by what clients keep open (not by history). Slots live in a
//! copy-on-write paged vector like the accounts, so a checkpoint shares them; the id index and
//! the expiry order are rebuilt from the slots when a checkpoint is loaded.

use std::collections::BTreeSet;

use super::hashing::IdMap;
use super::transfers::pending_deadline;
use crate::history::StoredTransfer;
use crate::ids::TransferId;
use crate::paged::{FreeSlots, PagedVec};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingTransfer {
    pub(crate) stored: StoredTransfer,
}

impl PendingTransfer {
    pub(crate) fn id(&self) -> TransferId {
        self.stored.transfer.id
    }

    /// When the state machine voids it (ns), if it has a timeout.
    pub(crate) fn deadline(&self) -> Option<u64> {
        let t = &self.stored.transfer;
        pending_deadline(t.timestamp, t.timeout_s).expect("deadline checked at creation")
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct PendingSet {
    slots: FreeSlots<PendingTransfer>,
    index: IdMap<TransferId, u32>,
    /// Pendings with a timeout, by (deadline ns, id).
    expiries: BTreeSet<(u64, TransferId)>,
}

impl PendingSet {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn contains(&self, id: TransferId) -> bool {
        self.index.contains_key(&id)
    }

    pub(crate) fn get(&self, id: TransferId) -> Option<&PendingTransfer> {
        let slot = *self.index.get(&id)?;
        Some(self.slots.get(slot))
    }

    pub(crate) fn insert(&mut self, pending: PendingTransfer) {
        let id = pending.id();
        if let Some(deadline) = pending.deadline() {
            assert!(self.expiries.insert((deadline, id)));
        }
        let slot = self.slots.insert(pending);
        assert!(
            self.index.insert(id, slot).is_none(),
            "pending inserted twice"
        );
    }

    pub(crate) fn remove(&mut self, id: TransferId) -> PendingTransfer {
        let slot = self
            .index
            .remove(&id)
            .expect("removing a pending that is not there");
        let pending = self.slots.take(slot);
        if let Some(deadline) = pending.deadline() {
            assert!(self.expiries.remove(&(deadline, id)));
        }
        pending
    }

    /// The pending with the earliest deadline, if that deadline is at or before `now`.
    pub(crate) fn first_expired(&self, now: u64) -> Option<TransferId> {
        self.expiries
            .first()
            .filter(|(deadline, _)| *deadline <= now)
            .map(|&(_, id)| id)
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.expiries.first().map(|&(deadline, _)| deadline)
    }

    /// Every pending, in no particular order (callers that need an order sort).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &PendingTransfer> + '_ {
        self.slots.iter()
    }

    /// A copy that shares the slots' pages (for checkpoints): O(pages).
    pub(crate) fn share_slots(&self) -> PagedVec<Option<PendingTransfer>> {
        self.slots.share()
    }
}
