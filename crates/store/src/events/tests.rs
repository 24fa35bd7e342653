use std::time::Duration;

use super::*;
use crate::sim_fs::SimFileSystem;

const DIR: &str = "/data/events";
const SMALL_SEGMENT_BYTES: u64 = 1 << 10;

fn options() -> EventLogOptions {
    EventLogOptions {
        records: RecordLogOptions { segment_bytes_max: SMALL_SEGMENT_BYTES, buffer_bytes_max: 512, sync_on_seal: true },
        retention_bytes_max: None,
        retention_age_ns_max: None,
    }
}

fn open_with(fs: &SimFileSystem, options: EventLogOptions) -> (EventLog, EventFeed, EventOpenReport) {
    EventLog::open(Arc::new(fs.clone()), DIR, options).expect("event log opens")
}

fn open(fs: &SimFileSystem) -> (EventLog, EventFeed, EventOpenReport) {
    open_with(fs, options())
}

fn body(position: u64) -> Vec<u8> {
    let len = 5 + (position as usize * 7) % 50;
    (0..len).map(|i| (position as u8).wrapping_add(i as u8)).collect()
}

/// Event positions as the ledger composes them: log index × 16 + ordinal, with gaps.
fn positions(count: u64) -> Vec<u64> {
    (1..=count).map(|i| (i / 3 + 1) * 16 + i % 3).collect()
}

fn event(position: u64) -> Event {
    Event { position, timestamp_ns: position * 1_000, body: body(position) }
}

fn append_events(log: &mut EventLog, positions: &[u64]) {
    for &position in positions {
        log.append(position, position * 1_000, &body(position)).unwrap();
    }
}

/// Pages through the whole feed after `after`.
fn read_all_after(feed: &EventFeed, after: u64, limit: usize) -> Vec<Event> {
    let mut events = Vec::new();
    let mut next = after;
    loop {
        let page = feed.read_after(next, limit, usize::MAX).unwrap();
        if page.events.is_empty() {
            return events;
        }
        next = page.next_after;
        events.extend(page.events);
    }
}

#[test]
fn read_after_returns_exactly_the_later_events_from_any_position() {
    let fs = SimFileSystem::new();
    let (mut log, feed, _) = open(&fs);
    let all = positions(300);
    append_events(&mut log, &all);
    log.flush().unwrap();
    assert_eq!(feed.last_position(), *all.last().unwrap());
    let mut probes = vec![0, 1, all[0], all[0] + 1, all[150], all[150] - 1, all[299] - 1];
    probes.extend(all.iter().step_by(17).copied());
    for after in probes {
        let expected: Vec<Event> = all.iter().filter(|&&p| p > after).map(|&p| event(p)).collect();
        assert_eq!(read_all_after(&feed, after, 7), expected, "after {after}");
    }
    let page = feed.read_after(*all.last().unwrap(), 10, usize::MAX).unwrap();
    assert_eq!((page.events.len(), page.next_after, page.missed_by_retention), (0, all[299], false));
    let beyond = feed.read_after(all[299] + 100, 10, usize::MAX).unwrap();
    assert_eq!((beyond.events.len(), beyond.next_after), (0, all[299] + 100));
}

#[test]
fn pages_stop_at_the_limit_and_the_byte_budget() {
    let fs = SimFileSystem::new();
    let (mut log, feed, _) = open(&fs);
    let all = positions(50);
    append_events(&mut log, &all);
    log.flush().unwrap();
    let page = feed.read_after(0, 4, usize::MAX).unwrap();
    assert_eq!(page.events, all[..4].iter().map(|&p| event(p)).collect::<Vec<_>>());
    assert_eq!(page.next_after, all[3]);
    let budget = body(all[0]).len() + body(all[1]).len();
    assert_eq!(feed.read_after(0, 100, budget).unwrap().events.len(), 2);
    assert_eq!(feed.read_after(0, 100, 1).unwrap().events.len(), 1, "at least one event");
    assert!(feed.read_after(0, 0, 100).unwrap().events.is_empty());
}

#[test]
fn feed_sees_events_only_after_flush() {
    let fs = SimFileSystem::new();
    let (mut log, feed, _) = open(&fs);
    log.append(5, 1, b"body").unwrap();
    assert_eq!(log.last_position(), 5);
    assert_eq!((feed.last_position(), feed.read_after(0, 10, 100).unwrap().events.len()), (0, 0));
    log.flush().unwrap();
    assert_eq!(feed.last_position(), 5);
    assert_eq!(
        feed.read_after(0, 10, 100).unwrap().events,
        vec![Event { position: 5, timestamp_ns: 1, body: b"body".to_vec() }]
    );
}

#[test]
#[should_panic(expected = "strictly increase")]
fn non_increasing_event_position_is_a_caller_bug() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    log.append(5, 1, b"a").unwrap();
    log.append(5, 1, b"b").unwrap();
}

#[test]
fn reopen_rebuilds_the_index_and_every_read_matches() {
    let fs = SimFileSystem::new();
    let (mut log, _, _) = open(&fs);
    let all = positions(400);
    append_events(&mut log, &all);
    log.sync().unwrap();
    drop(log);
    fs.crash(3);
    let (log, feed, report) = open(&fs);
    assert_eq!((report.events, report.first_position, report.last_position), (400, Some(all[0]), all[399]));
    assert_eq!(log.last_position(), all[399]);
    for after in all.iter().step_by(23).copied().chain([0]) {
        let expected: Vec<Event> = all.iter().filter(|&&p| p > after).map(|&p| event(p)).collect();
        assert_eq!(read_all_after(&feed, after, 50), expected, "after {after}");
    }
}

#[test]
fn sparse_index_stays_proportional_to_retained_bytes() {
    let fs = SimFileSystem::new();
    let mut options = options();
    options.records.segment_bytes_max = 1 << 20;
    let (mut log, _, _) = open_with(&fs, options);
    let all: Vec<u64> = (1..=20_000).collect();
    append_events(&mut log, &all);
    log.flush().unwrap();
    let retained = log.records.end() - log.records.start();
    let bound = retained / EVENT_INDEX_INTERVAL_BYTES + log.segments.len() as u64 + 1;
    assert!((log.shared.index_read().len() as u64) <= bound, "index larger than retained / interval");
    assert!(log.shared.index_read().len() > 2, "the index has interior points");
}

#[test]
fn retention_by_bytes_deletes_old_segments_and_readers_learn_they_missed_events() {
    let fs = SimFileSystem::new();
    let mut options = options();
    options.retention_bytes_max = Some(3 * SMALL_SEGMENT_BYTES);
    let (mut log, feed, _) = open_with(&fs, options.clone());
    let all = positions(400);
    append_events(&mut log, &all);
    log.flush().unwrap();
    let report = log.enforce_retention(0).unwrap();
    assert!(report.segments_deleted > 0);
    assert!(log.records.end() - log.records.start() <= 3 * SMALL_SEGMENT_BYTES);
    let oldest = all.iter().copied().find(|&p| p > report.deleted_through).unwrap();
    assert_eq!(log.deleted_through(), report.deleted_through);
    let page = feed.read_after(0, 5, usize::MAX).unwrap();
    assert!(page.missed_by_retention);
    assert_eq!(page.events[0].position, oldest);
    let page = feed.read_after(all[3], 5, usize::MAX).unwrap();
    assert!(page.missed_by_retention);
    assert_eq!(page.events[0].position, oldest);
    let page = feed.read_after(report.deleted_through, 5, usize::MAX).unwrap();
    assert!(!page.missed_by_retention, "nothing after the last deleted event is missing");
    assert_eq!(page.events[0].position, oldest);
    let kept: Vec<Event> = all.iter().filter(|&&p| p >= oldest).map(|&p| event(p)).collect();
    assert_eq!(read_all_after(&feed, 0, 9), kept);
    drop(log);
    let (_, feed, reopened) = open_with(&fs, options);
    assert_eq!(reopened.first_position, Some(oldest));
    assert!(feed.read_after(all[3], 5, usize::MAX).unwrap().missed_by_retention, "known after reopen too");
}

#[test]
fn retention_never_deletes_the_active_segment() {
    let fs = SimFileSystem::new();
    let mut options = options();
    options.retention_bytes_max = Some(0);
    options.retention_age_ns_max = Some(0);
    let (mut log, feed, _) = open_with(&fs, options);
    let all = positions(200);
    append_events(&mut log, &all);
    log.flush().unwrap();
    log.enforce_retention(u64::MAX).unwrap();
    assert_eq!(log.records.segments().len(), 1);
    assert_eq!(read_all_after(&feed, 0, 100).last(), Some(&event(all[199])));
}

#[test]
fn retention_by_age_uses_each_segments_newest_event() {
    let fs = SimFileSystem::new();
    let mut options = options();
    options.retention_age_ns_max = Some(1_000);
    let (mut log, feed, _) = open_with(&fs, options);
    // Timestamps: position × 1000 ns.
    let all = positions(200);
    append_events(&mut log, &all);
    log.flush().unwrap();
    let segments = log.segments.clone();
    let second_newest = segments[1].newest_timestamp_ns;
    // At this instant only the first segment's newest event is more than 1 µs old.
    let report = log.enforce_retention(second_newest + 1_000).unwrap();
    assert_eq!(report.segments_deleted, 1);
    assert_eq!(report.deleted_through, segments[0].last_event);
    let oldest = all.iter().copied().find(|&p| p > segments[0].last_event).unwrap();
    assert_eq!(feed.read_after(0, 1, 100).unwrap().events[0].position, oldest);
}

#[test]
fn truncate_after_rolls_back_to_a_checkpoint_and_survives_a_crash() {
    let fs = SimFileSystem::new();
    let (mut log, feed, _) = open(&fs);
    let all = positions(300);
    append_events(&mut log, &all);
    log.sync().unwrap();
    let checkpoint = all[120];
    log.truncate_after(checkpoint).unwrap();
    assert_eq!((log.last_position(), feed.last_position()), (checkpoint, checkpoint));
    let kept: Vec<Event> = all[..=120].iter().map(|&p| event(p)).collect();
    assert_eq!(read_all_after(&feed, 0, 13), kept);
    // The rolled-back positions are written again, differently.
    log.append(all[121], 7, b"replayed").unwrap();
    log.flush().unwrap();
    assert_eq!(feed.read_after(checkpoint, 10, 100).unwrap().events[0].body, b"replayed");
    log.sync().unwrap();
    drop(log);
    fs.crash(9);
    let (log, feed, report) = open(&fs);
    assert_eq!((report.last_position, log.last_position()), (all[121], all[121]));
    assert_eq!(read_all_after(&feed, 0, 1000).len(), 122);
}

#[test]
fn truncate_after_into_deleted_history_is_refused() {
    let fs = SimFileSystem::new();
    let mut options = options();
    options.retention_bytes_max = Some(2 * SMALL_SEGMENT_BYTES);
    let (mut log, feed, _) = open_with(&fs, options);
    let all = positions(300);
    append_events(&mut log, &all);
    let floor = log.enforce_retention(0).unwrap().deleted_through;
    assert!(matches!(log.truncate_after(floor - 1), Err(StoreError::BeforeRetention { .. })));
    log.truncate_after(floor).unwrap();
    assert_eq!(log.last_position(), floor);
    assert!(read_all_after(&feed, 0, 10).is_empty());
    let next = all.iter().copied().find(|&p| p > floor).unwrap();
    log.append(next, 1, b"again").unwrap();
    log.flush().unwrap();
    assert_eq!(read_all_after(&feed, 0, 10).len(), 1);
}

#[test]
fn wait_beyond_wakes_on_flush_and_times_out_otherwise() {
    let fs = SimFileSystem::new();
    let (mut log, feed, _) = open(&fs);
    assert_eq!(feed.wait_beyond(0, Duration::from_millis(10)), 0);
    let waiter = {
        let feed = feed.clone();
        std::thread::spawn(move || feed.wait_beyond(0, Duration::from_secs(30)))
    };
    std::thread::sleep(Duration::from_millis(20));
    log.append(3, 1, b"x").unwrap();
    log.flush().unwrap();
    assert_eq!(waiter.join().unwrap(), 3);
    assert_eq!(feed.wait_beyond(2, Duration::ZERO), 3, "already beyond: no wait");
}

#[test]
fn events_out_of_order_on_disk_are_corrupt() {
    let fs = SimFileSystem::new();
    let (mut records, _, _) = RecordLog::open(Arc::new(fs.clone()), DIR, RecordLogOptions::default()).unwrap();
    for position in [10u64, 20, 15] {
        records.append_parts(&[&position.to_le_bytes(), &0u64.to_le_bytes()], 0).unwrap();
    }
    records.sync().unwrap();
    drop(records);
    match EventLog::open(Arc::new(fs), DIR, options()) {
        Err(StoreError::Corrupt { offset, reason, .. }) => {
            assert_eq!(offset, (crate::records::RECORD_SEGMENT_HEADER_BYTES + 2 * 24) as u64);
            assert!(reason.contains("does not follow"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn subscription_restarted_without_ack_sees_the_events_again() {
    let fs = SimFileSystem::new();
    let (mut log, feed, _) = open(&fs);
    let all = positions(40);
    append_events(&mut log, &all);
    log.sync().unwrap();
    let cursors = Arc::new(ConsumerCursors::open(Arc::new(fs.clone()), "/data/cursors").unwrap());
    let mut subscription = Subscription::open(feed.clone(), Arc::clone(&cursors), "risk").unwrap();
    let first = subscription.next_batch(10).unwrap();
    assert_eq!(first.events[0].position, all[0]);
    let second = subscription.next_batch(10).unwrap();
    assert_eq!(second.events[0].position, all[10]);
    drop(subscription);

    let mut restarted = Subscription::open(feed.clone(), Arc::clone(&cursors), "risk").unwrap();
    assert_eq!(restarted.next_batch(10).unwrap().events, first.events, "nothing was acknowledged");
    restarted.ack(all[9]).unwrap();
    assert!(matches!(restarted.ack(all[30]), Err(StoreError::AckBeyondDelivered { .. })));
    drop(restarted);
    drop((cursors, log, feed));
    fs.crash(4);

    let (_, feed, _) = open(&fs);
    let cursors = Arc::new(ConsumerCursors::open(Arc::new(fs.clone()), "/data/cursors").unwrap());
    let mut resumed = Subscription::open(feed, cursors, "risk").unwrap();
    assert_eq!(resumed.acked(), Some(all[9]));
    assert_eq!(resumed.next_batch(10).unwrap().events, second.events, "resumes after the ack");
    resumed.rewind();
    assert_eq!(resumed.next_batch(1).unwrap().events[0].position, all[10]);
}

#[test]
fn feeds_and_readers_can_be_shared_across_threads_and_writers_moved() {
    fn shareable<T: Clone + Send + Sync>() {}
    fn movable<T: Send>() {}
    shareable::<EventFeed>();
    shareable::<RecordReader>();
    movable::<EventLog>();
    movable::<RecordLog>();
    movable::<Subscription>();
    fn shared<T: Send + Sync>() {}
    shared::<ConsumerCursors>();
}

#[test]
fn feed_thread_reads_in_order_while_the_writer_appends_rotates_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn FileSystem> = Arc::new(crate::fs::OsFileSystem);
    let mut options = options();
    options.records.segment_bytes_max = 8 << 10;
    options.retention_bytes_max = Some(64 << 10);
    let (mut log, feed, _) = EventLog::open(fs, dir.path(), options).unwrap();
    let all = positions(30_000);
    let last = *all.last().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut after, mut seen, mut missed) = (0u64, 0u64, 0u64);
        while after < last {
            feed.wait_beyond(after, Duration::from_secs(10));
            let page = feed.read_after(after, 100, 16 << 10).unwrap();
            missed += u64::from(page.missed_by_retention);
            for event in &page.events {
                assert!(event.position > after, "in order");
                assert_eq!(event.body, body(event.position));
                after = event.position;
                seen += 1;
            }
        }
        (seen, missed)
    });
    for (i, &position) in all.iter().enumerate() {
        log.append(position, position * 1_000, &body(position)).unwrap();
        if i % 50 == 0 {
            log.flush().unwrap();
        }
        if i % 500 == 0 {
            log.enforce_retention(0).unwrap();
        }
    }
    log.flush().unwrap();
    let (seen, missed) = reader.join().unwrap();
    assert!(seen > 0 && (seen == all.len() as u64 || missed > 0), "saw {seen}, missed {missed} times");
    assert!(log.deleted_through() > 0, "retention ran");
}
