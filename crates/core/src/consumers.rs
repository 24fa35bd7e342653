//! Where the durable consumers of the event feed that run on the node serving writes (the
//! webhooks, the AML pipeline) stand, replicated with the ledger. Each consumer also keeps a
//! cursor on its own node's disk; this one is what a node that takes over serving writes
//! resumes from, so a leader change resends at most what the old leader had not yet
//! acknowledged here (about a second), not everything its own stale cursor is behind.
//!
//! A cursor only moves forward: an acknowledgement behind the replicated one (a late proposal
//! of a deposed leader) changes nothing.
//!
//! At most `CONSUMERS_MAX` cursors are kept. A consumer removed from the configuration (a
//! webhook endpoint deleted) acknowledges nothing any more, so nothing would ever drop its
//! cursor; instead a new consumer arriving at the limit takes the place of the one furthest
//! behind (the lowest position, then the first name), which is where an abandoned one ends up.
//! Losing a replicated cursor costs a consumer nothing but resends: it still has its own on
//! disk, and delivery is at least once.

use std::collections::BTreeMap;

/// Consumers the ledger keeps a cursor for: configuration names them, so this bounds memory.
pub const CONSUMERS_MAX: usize = 256;
/// A consumer's name: 1 to this many bytes of `a-z`, `0-9`, `_`, `-`, `.`.
pub const CONSUMER_NAME_BYTES_MAX: usize = 96;

/// "Every event up to `position` was handled by consumer `name`."
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerAck {
    pub name: String,
    pub position: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerOutcome {
    /// Recorded (or already behind the replicated cursor: nothing to do).
    Ok,
    /// `CONSUMERS_MAX` consumers had cursors already and this was a new one. No longer
    /// answered (the one furthest behind now makes room); kept so logs that carry it still read.
    TooManyConsumers,
}

impl ConsumerOutcome {
    pub fn code(self) -> &'static str {
        match self {
            ConsumerOutcome::Ok => "ok",
            ConsumerOutcome::TooManyConsumers => "too_many_consumers",
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            ConsumerOutcome::Ok => 0,
            ConsumerOutcome::TooManyConsumers => 1,
        }
    }

    pub fn from_u8(value: u8) -> Option<ConsumerOutcome> {
        match value {
            0 => Some(ConsumerOutcome::Ok),
            1 => Some(ConsumerOutcome::TooManyConsumers),
            _ => None,
        }
    }
}

pub fn check_consumer_name(name: &str) -> bool {
    let allowed =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.');
    (1..=CONSUMER_NAME_BYTES_MAX).contains(&name.len()) && name.bytes().all(allowed)
}

/// The replicated cursors, by consumer name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsumerCursors {
    cursors: BTreeMap<String, u64>,
}

impl ConsumerCursors {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.cursors.get(name).copied()
    }

    /// In name order (the checkpoint's order).
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.cursors
            .iter()
            .map(|(name, position)| (name.as_str(), *position))
    }

    pub fn len(&self) -> usize {
        self.cursors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cursors.is_empty()
    }

    pub(crate) fn apply(&mut self, ack: &ConsumerAck) -> ConsumerOutcome {
        assert!(
            check_consumer_name(&ack.name),
            "unchecked consumer name reached the ledger"
        );
        if let Some(position) = self.cursors.get_mut(&ack.name) {
            *position = (*position).max(ack.position);
            return ConsumerOutcome::Ok;
        }
        if self.cursors.len() >= CONSUMERS_MAX {
            self.forget_furthest_behind();
        }
        self.cursors.insert(ack.name.clone(), ack.position);
        assert!(self.cursors.len() <= CONSUMERS_MAX);
        ConsumerOutcome::Ok
    }

    /// Drops the cursor with the lowest position (the first in name order among equals: the
    /// choice must be the same on every replica).
    fn forget_furthest_behind(&mut self) {
        let furthest_behind = self
            .cursors
            .iter()
            .min_by_key(|(_, position)| **position)
            .map(|(name, _)| name.clone());
        if let Some(name) = furthest_behind {
            self.cursors.remove(&name);
        }
    }

    /// Restores one cursor from a checkpoint; false if the name is bad, repeated, out of order
    /// or one too many.
    pub(crate) fn restore(&mut self, name: String, position: u64) -> bool {
        let in_order = self
            .cursors
            .last_key_value()
            .is_none_or(|(last, _)| *last < name);
        if !check_consumer_name(&name) || !in_order || self.cursors.len() >= CONSUMERS_MAX {
            return false;
        }
        self.cursors.insert(name, position);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(name: &str, position: u64) -> ConsumerAck {
        ConsumerAck {
            name: name.into(),
            position,
        }
    }

    #[test]
    fn a_cursor_only_moves_forward() {
        let mut cursors = ConsumerCursors::default();
        assert_eq!(cursors.apply(&ack("webhook-a", 10)), ConsumerOutcome::Ok);
        assert_eq!(cursors.apply(&ack("webhook-a", 4)), ConsumerOutcome::Ok);
        assert_eq!(cursors.get("webhook-a"), Some(10));
        assert_eq!(cursors.apply(&ack("webhook-a", 12)), ConsumerOutcome::Ok);
        assert_eq!(cursors.get("webhook-a"), Some(12));
        assert_eq!(cursors.get("aml"), None);
    }

    /// Regression: a removed consumer's cursor stayed for good, and once 256 names had been
    /// seen no new consumer got a replicated cursor.
    #[test]
    fn a_new_consumer_at_the_limit_replaces_the_one_furthest_behind() {
        let mut cursors = ConsumerCursors::default();
        for n in 0..CONSUMERS_MAX {
            let position = 100 + n as u64;
            assert_eq!(
                cursors.apply(&ack(&format!("c{n:03}"), position)),
                ConsumerOutcome::Ok
            );
        }
        // c000 (at 100) and c001 (at 101) were removed; the others moved on.
        for n in 2..CONSUMERS_MAX {
            assert_eq!(
                cursors.apply(&ack(&format!("c{n:03}"), 1_000)),
                ConsumerOutcome::Ok
            );
        }
        assert_eq!(cursors.apply(&ack("new-one", 5)), ConsumerOutcome::Ok);
        assert_eq!(
            (cursors.len(), cursors.get("new-one")),
            (CONSUMERS_MAX, Some(5))
        );
        assert_eq!(
            cursors.get("c000"),
            None,
            "the one furthest behind made room"
        );
        assert_eq!(cursors.get("c001"), Some(101));
        // The newcomer is now the furthest behind, but a known consumer never evicts anyone.
        assert_eq!(cursors.apply(&ack("c002", 2_000)), ConsumerOutcome::Ok);
        assert_eq!(cursors.get("new-one"), Some(5));
        assert_eq!(cursors.apply(&ack("another", 7)), ConsumerOutcome::Ok);
        assert_eq!(cursors.get("new-one"), None, "lowest position goes first");
        assert_eq!(cursors.get("c001"), Some(101));
    }

    #[test]
    fn equally_far_behind_the_first_name_goes_first() {
        let mut cursors = ConsumerCursors::default();
        for n in 0..CONSUMERS_MAX {
            cursors.apply(&ack(&format!("c{n:03}"), 7));
        }
        cursors.apply(&ack("zz", 7));
        assert_eq!((cursors.get("c000"), cursors.get("c001")), (None, Some(7)));
    }

    #[test]
    fn consumer_names_are_short_and_plain() {
        assert!(check_consumer_name("webhook-ops.a_1"));
        assert!(!check_consumer_name(""));
        assert!(!check_consumer_name("Webhook"));
        assert!(!check_consumer_name(
            &"a".repeat(CONSUMER_NAME_BYTES_MAX + 1)
        ));
    }
}
