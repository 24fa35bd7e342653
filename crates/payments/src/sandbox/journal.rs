//! The append-only journal: one JSON event per line in `DATA_DIR/bank-journal.jsonl`, synced
//! (`sync_data`) before the request that wrote it is answered, replayed at start.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::state::Event;
use super::SandboxError;

pub(crate) const FILE: &str = "bank-journal.jsonl";

pub(crate) struct Journal {
    file: Arc<Mutex<File>>,
}

impl Journal {
    /// Opens (or creates) the journal and reads its events. A last line cut short by a crash
    /// mid-write was never acknowledged: it is dropped (and cut from the file). A bad line
    /// before the last is corruption: an error.
    pub(crate) fn open(dir: &Path) -> Result<(Journal, Vec<Event>), SandboxError> {
        let path = dir.join(FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| SandboxError::io(&path, e))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| SandboxError::io(&path, e))?;
        let mut events = Vec::new();
        let mut good_len = 0usize;
        for (number, line) in text.split_inclusive('\n').enumerate() {
            match serde_json::from_str::<Event>(line) {
                Ok(event) if line.ends_with('\n') => {
                    events.push(event);
                    good_len += line.len();
                }
                _ if good_len + line.len() == text.len() => {
                    tracing::warn!(line = number + 1, "dropping a torn last journal line");
                    file.set_len(good_len as u64)
                        .map_err(|e| SandboxError::io(&path, e))?;
                }
                other => {
                    let why = other.err().map(|e| e.to_string()).unwrap_or_default();
                    return Err(SandboxError::Journal(format!(
                        "{}: line {}: {why}",
                        path.display(),
                        number + 1
                    )));
                }
            }
        }
        let journal = Journal {
            file: Arc::new(Mutex::new(file)),
        };
        Ok((journal, events))
    }

    /// Appends `events` and syncs them to disk (off the async threads).
    pub(crate) async fn append(&self, events: &[Event]) -> Result<(), SandboxError> {
        let mut bytes = Vec::new();
        for event in events {
            serde_json::to_writer(&mut bytes, event)
                .map_err(|e| SandboxError::Journal(e.to_string()))?;
            bytes.push(b'\n');
        }
        let file = Arc::clone(&self.file);
        let written = tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            file.write_all(&bytes)?;
            file.sync_data()
        })
        .await
        .map_err(|e| SandboxError::Journal(e.to_string()))?;
        written.map_err(|e| SandboxError::Journal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(url: &str) -> Event {
        Event::Subscription {
            callback_url: url.into(),
        }
    }

    #[tokio::test]
    async fn events_replay_and_a_torn_last_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, events) = Journal::open(dir.path()).unwrap();
        assert!(events.is_empty());
        journal
            .append(&[subscription("http://a"), subscription("http://b")])
            .await
            .unwrap();
        drop(journal);
        let path = dir.path().join(FILE);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"type\":\"subscr").unwrap();
        let (journal, events) = Journal::open(dir.path()).unwrap();
        assert_eq!(events.len(), 2);
        journal.append(&[subscription("http://c")]).await.unwrap();
        let (_, events) = Journal::open(dir.path()).unwrap();
        let urls: Vec<String> = events
            .into_iter()
            .map(|e| match e {
                Event::Subscription { callback_url } => callback_url,
                _ => String::new(),
            })
            .collect();
        assert_eq!(urls, ["http://a", "http://b", "http://c"]);
        std::fs::write(&path, b"garbage\n{}\n").unwrap();
        assert!(matches!(
            Journal::open(dir.path()),
            Err(SandboxError::Journal(_))
        ));
    }
}
