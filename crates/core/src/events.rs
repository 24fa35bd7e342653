//! Event positions. Every history record an entry yields is also an event of the committed
//! event feed, at a position composed from the entry's Raft log index and the record's ordinal
//! within the entry: positions strictly increase along the log, every replica and every replay
//! derives the same ones, and a position names its entry (useful to an auditor).

/// Bits of a position that hold the ordinal within the entry.
pub const EVENT_ORDINAL_BITS: u32 = 24;
/// Most events one log entry may yield. Group commit keeps entries far below this (each item
/// yields at most three records); `event_position` asserts it.
pub const EVENTS_PER_ENTRY_MAX: u64 = 1 << EVENT_ORDINAL_BITS;
/// Largest log index a position can name (2^40, about a trillion entries).
pub const EVENT_LOG_INDEX_MAX: u64 = (1 << (64 - EVENT_ORDINAL_BITS)) - 1;

/// The position of the `ordinal`-th event (0-based) of log entry `log_index`.
pub fn event_position(log_index: u64, ordinal: u64) -> u64 {
    assert!(
        ordinal < EVENTS_PER_ENTRY_MAX,
        "too many events in one entry"
    );
    assert!(
        log_index <= EVENT_LOG_INDEX_MAX,
        "log index beyond event positions"
    );
    (log_index << EVENT_ORDINAL_BITS) | ordinal
}

/// The (log index, ordinal) a position names.
pub fn split_event_position(position: u64) -> (u64, u64) {
    (
        position >> EVENT_ORDINAL_BITS,
        position & (EVENTS_PER_ENTRY_MAX - 1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_increase_along_the_log_and_within_an_entry() {
        assert!(event_position(7, 0) < event_position(7, 1));
        assert!(event_position(7, EVENTS_PER_ENTRY_MAX - 1) < event_position(8, 0));
        assert_eq!(split_event_position(event_position(9, 42)), (9, 42));
    }
}
