//! The delivery log: one JSON line per finished delivery (delivered, rejected or failed) in
//! `deliveries.jsonl` under the node's data directory, rotated past a size (one previous file
//! kept), and the newest `entries_max` of them in memory with the deliveries still retrying.
//! It is the operator's record of what reached their systems; the events themselves stay in
//! the ledger's feed, so a lost line loses no payment state. A line torn by a crash is skipped
//! when the log is read back.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::WebhooksError;

const FILE_NAME: &str = "deliveries.jsonl";
const PREVIOUS_FILE_NAME: &str = "deliveries.jsonl.1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not ended yet: queued, being sent, or sent without success and sent again after a
    /// wait.
    Retrying,
    /// The endpoint answered 2xx.
    Delivered,
    /// The endpoint refused it (4xx other than 408, 425, 429, or a redirect): not sent again
    /// unless replayed.
    Rejected,
    /// Every attempt failed: not sent again unless replayed.
    Failed,
}

/// One event's delivery to one endpoint (a replay is a delivery of its own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryRecord {
    /// `{endpoint}-{position}`; a replay's adds `-r{n}`.
    pub delivery_id: String,
    pub endpoint: String,
    /// `evt_{position}`: the `croupier-webhook-id` header, the same on every send.
    pub event_id: String,
    pub event_type: String,
    /// The event's position in the feed (decimal string).
    pub position: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The last answer's HTTP status, if there was an answer.
    pub last_status: Option<u16>,
    /// Why the last send failed without an answer (timeout, connection refused).
    pub last_error: Option<String>,
    /// Wall-clock nanoseconds since the Unix epoch.
    pub first_attempt_ns: u64,
    pub last_attempt_ns: u64,
    /// The delivery this one replays.
    pub replay_of: Option<String>,
}

pub struct DeliveryLog {
    dir: PathBuf,
    file: Option<File>,
    file_bytes: u64,
    file_bytes_max: u64,
    finished: VecDeque<DeliveryRecord>,
    entries_max: usize,
    retrying: BTreeMap<String, DeliveryRecord>,
    replays_made: u64,
}

impl DeliveryLog {
    pub fn open(
        dir: &Path,
        entries_max: usize,
        file_bytes_max: u64,
    ) -> Result<Self, WebhooksError> {
        let failed = |path: &Path, source| WebhooksError::Log {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(|e| failed(dir, e))?;
        let mut finished = VecDeque::new();
        for name in [PREVIOUS_FILE_NAME, FILE_NAME] {
            let path = dir.join(name);
            read_lines(&path, &mut finished, entries_max).map_err(|e| failed(&path, e))?;
        }
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| failed(&path, e))?;
        let file_bytes = file.metadata().map_err(|e| failed(&path, e))?.len();
        let replays_made = finished.iter().filter(|r| r.replay_of.is_some()).count() as u64;
        Ok(DeliveryLog {
            dir: dir.to_path_buf(),
            file: Some(file),
            file_bytes,
            file_bytes_max,
            finished,
            entries_max,
            retrying: BTreeMap::new(),
            replays_made,
        })
    }

    /// A send failed and another follows: visible as `retrying` until it ends.
    pub fn retrying(&mut self, record: &DeliveryRecord) {
        self.retrying
            .insert(record.delivery_id.clone(), record.clone());
    }

    /// A delivery stopped before it ended (a stop, leadership lost): it comes again.
    pub fn abandoned(&mut self, delivery_id: &str) {
        self.retrying.remove(delivery_id);
    }

    pub fn finished(&mut self, record: DeliveryRecord) {
        self.retrying.remove(&record.delivery_id);
        self.append(&record);
        if self.finished.len() == self.entries_max {
            self.finished.pop_front();
        }
        self.finished.push_back(record);
    }

    /// Writes the file's buffered lines to disk (before the feed cursor moves past them).
    pub fn sync(&mut self) {
        if let Some(Err(error)) = self.file.as_ref().map(File::sync_data) {
            tracing::warn!(%error, "webhook delivery log not synced");
        }
    }

    /// Newest first: the retrying ones, then the finished ones.
    pub fn list(
        &self,
        keep: impl Fn(&DeliveryRecord) -> bool,
        limit: usize,
    ) -> Vec<DeliveryRecord> {
        self.retrying
            .values()
            .chain(self.finished.iter().rev())
            .filter(|record| keep(record))
            .take(limit)
            .cloned()
            .collect()
    }

    pub fn get(&self, delivery_id: &str) -> Option<DeliveryRecord> {
        self.retrying
            .get(delivery_id)
            .or_else(|| {
                self.finished
                    .iter()
                    .rev()
                    .find(|r| r.delivery_id == delivery_id)
            })
            .cloned()
    }

    /// A fresh id for a replay of `of`.
    pub fn next_replay_id(&mut self, of: &DeliveryRecord) -> String {
        self.replays_made += 1;
        let original = of.replay_of.as_deref().unwrap_or(&of.delivery_id);
        format!("{original}-r{}", self.replays_made)
    }

    fn append(&mut self, record: &DeliveryRecord) {
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        if self.file_bytes + line.len() as u64 > self.file_bytes_max {
            self.rotate();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(&line) {
            Ok(()) => self.file_bytes += line.len() as u64,
            Err(error) => tracing::warn!(%error, "webhook delivery not logged"),
        }
    }

    /// The current file becomes the previous one (replacing it); a new one starts.
    fn rotate(&mut self) {
        self.sync();
        let current = self.dir.join(FILE_NAME);
        let rotated = std::fs::rename(&current, self.dir.join(PREVIOUS_FILE_NAME))
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&current));
        match rotated {
            Ok(file) => {
                self.file = Some(file);
                self.file_bytes = 0;
            }
            Err(error) => tracing::warn!(%error, "webhook delivery log not rotated"),
        }
    }
}

fn read_lines(
    path: &Path,
    into: &mut VecDeque<DeliveryRecord>,
    entries_max: usize,
) -> std::io::Result<()> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    for line in BufReader::new(file).lines() {
        let Ok(record) = serde_json::from_str::<DeliveryRecord>(&line?) else {
            continue; // torn by a crash
        };
        if into.len() == entries_max {
            into.pop_front();
        }
        into.push_back(record);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> DeliveryRecord {
        DeliveryRecord {
            delivery_id: id.into(),
            endpoint: "ops".into(),
            event_id: "evt_1".into(),
            event_type: "withdrawal_updated".into(),
            position: "1".into(),
            state: DeliveryState::Delivered,
            attempts: 1,
            last_status: Some(200),
            last_error: None,
            first_attempt_ns: 1,
            last_attempt_ns: 1,
            replay_of: None,
        }
    }

    #[test]
    fn the_log_keeps_the_newest_entries_across_a_restart_and_a_rotation_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = DeliveryLog::open(dir.path(), 3, 4_096).unwrap();
        for n in 0..40 {
            log.finished(record(&format!("ops-{n}")));
        }
        log.sync();
        drop(log);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        file.write_all(b"{\"delivery_id\":\"torn").unwrap();
        let log = DeliveryLog::open(dir.path(), 3, 4_096).unwrap();
        let ids: Vec<String> = log
            .list(|_| true, 10)
            .into_iter()
            .map(|r| r.delivery_id)
            .collect();
        assert_eq!(ids, ["ops-39", "ops-38", "ops-37"]);
        assert!(
            std::fs::metadata(dir.path().join(PREVIOUS_FILE_NAME)).is_ok(),
            "rotated"
        );
    }
}
