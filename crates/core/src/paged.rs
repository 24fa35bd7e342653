//! A vector in fixed pages shared copy-on-write, so a checkpoint can take a consistent copy of
//! the whole hot state in O(pages) (cloning page pointers) between two entries, and the next
//! entries pay only for copying the pages they then change (`Arc::make_mut`). This is what lets
//! checkpoints run beside writes instead of stalling them.

use std::sync::Arc;

/// Slots per page: 64 accounts are ~8 KiB, so the first write after a checkpoint copies at
/// most that much per page touched.
pub(crate) const PAGE_SLOTS: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct PagedVec<T> {
    pages: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for PagedVec<T> {
    fn default() -> Self {
        PagedVec {
            pages: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> PagedVec<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, slot: usize) -> &T {
        assert!(slot < self.len, "slot {slot} out of {}", self.len);
        &self.pages[slot / PAGE_SLOTS][slot % PAGE_SLOTS]
    }

    pub(crate) fn get_mut(&mut self, slot: usize) -> &mut T {
        assert!(slot < self.len, "slot {slot} out of {}", self.len);
        &mut Arc::make_mut(&mut self.pages[slot / PAGE_SLOTS])[slot % PAGE_SLOTS]
    }

    pub(crate) fn last(&self) -> Option<&T> {
        self.len.checked_sub(1).map(|slot| self.get(slot))
    }

    pub(crate) fn push(&mut self, value: T) {
        if self.len.is_multiple_of(PAGE_SLOTS) {
            self.pages.push(Arc::new(Vec::with_capacity(PAGE_SLOTS)));
        }
        let page = self.pages.last_mut().expect("a page with room");
        Arc::make_mut(page).push(value);
        self.len += 1;
    }

    pub(crate) fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let page = self.pages.last_mut().expect("a non-empty page");
        let value = Arc::make_mut(page).pop().expect("page holds the last slot");
        if page.is_empty() {
            self.pages.pop();
        }
        self.len -= 1;
        Some(value)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.pages.iter().flat_map(|page| page.iter())
    }

    /// The values from slot `start` on (none if `start` is past the end), found in O(1).
    pub(crate) fn iter_from(&self, start: usize) -> impl Iterator<Item = &T> + '_ {
        let start = start.min(self.len);
        let skip_in_first = start % PAGE_SLOTS;
        let pages = self.pages[start / PAGE_SLOTS..].iter().enumerate();
        pages.flat_map(move |(n, page)| {
            let skip = if n == 0 { skip_in_first } else { 0 };
            page[skip..].iter()
        })
    }

    /// (pages this copy shares with `other`, pages it has): what a write has copied so far.
    #[cfg(test)]
    pub(crate) fn pages_shared_with(&self, other: &PagedVec<T>) -> (usize, usize) {
        let pairs = self.pages.iter().zip(&other.pages);
        let shared = pairs.filter(|(a, b)| Arc::ptr_eq(a, b)).count();
        (shared, self.pages.len())
    }

    pub(crate) fn reserve_pages(&mut self, slots: usize) {
        self.pages.reserve(slots.div_ceil(PAGE_SLOTS));
    }
}

/// Paged slots that come and go (pending transfers, sessions): a removed slot is reused,
/// lowest first, so the pages stay as dense as what is live. The free list is not shared with
/// a checkpoint: loading one rebuilds it.
#[derive(Clone, Debug)]
pub(crate) struct FreeSlots<T> {
    slots: PagedVec<Option<T>>,
    free: std::collections::BTreeSet<u32>,
}

impl<T> Default for FreeSlots<T> {
    fn default() -> Self {
        FreeSlots {
            slots: PagedVec::default(),
            free: std::collections::BTreeSet::new(),
        }
    }
}

impl<T: Clone> FreeSlots<T> {
    /// Stores `value` in the lowest free slot (or a new one) and answers the slot.
    pub(crate) fn insert(&mut self, value: T) -> u32 {
        match self.free.pop_first() {
            Some(slot) => {
                let place = self.slots.get_mut(slot as usize);
                assert!(place.is_none(), "free slot {slot} is occupied");
                *place = Some(value);
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("slots fit u32");
                self.slots.push(Some(value));
                slot
            }
        }
    }

    pub(crate) fn take(&mut self, slot: u32) -> T {
        let value = self
            .slots
            .get_mut(slot as usize)
            .take()
            .expect("taking an empty slot");
        assert!(self.free.insert(slot));
        value
    }

    pub(crate) fn get(&self, slot: u32) -> &T {
        self.slots
            .get(slot as usize)
            .as_ref()
            .expect("reading an empty slot")
    }

    /// Every occupied slot's value, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.slots.iter().flatten()
    }

    /// A copy sharing the pages (for checkpoints): O(pages).
    pub(crate) fn share(&self) -> PagedVec<Option<T>> {
        self.slots.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_copy_keeps_its_values_while_the_original_changes() {
        let mut values = PagedVec::default();
        for i in 0..200u32 {
            values.push(i);
        }
        let frozen = values.clone();
        *values.get_mut(5) = 1_000;
        values.push(200);
        assert_eq!(*frozen.get(5), 5);
        assert_eq!(frozen.len(), 200);
        assert_eq!(*values.get(5), 1_000);
        assert_eq!(values.len(), 201);
        assert_eq!(frozen.iter().copied().sum::<u32>(), (0..200).sum());
    }

    #[test]
    fn a_freed_slot_is_reused_lowest_first() {
        let mut slots = FreeSlots::default();
        let (a, b, c) = (slots.insert('a'), slots.insert('b'), slots.insert('c'));
        assert_eq!((a, b, c), (0, 1, 2));
        assert_eq!(slots.take(2), 'c');
        assert_eq!(slots.take(0), 'a');
        assert_eq!(slots.insert('d'), 0);
        assert_eq!(slots.iter().copied().collect::<String>(), "db");
    }

    #[test]
    fn pop_removes_from_the_end_and_drops_empty_pages() {
        let mut values = PagedVec::default();
        for i in 0..(PAGE_SLOTS + 1) {
            values.push(i);
        }
        assert_eq!(values.pop(), Some(PAGE_SLOTS));
        assert_eq!(values.pages.len(), 1);
        assert_eq!(values.last(), Some(&(PAGE_SLOTS - 1)));
    }
}
