//! `bench bank`'s clients: each one, bound to one server, runs one operation at a time until
//! the run ends, writing an invoke line before and a completion line after every operation.
//!
//! As in Jepsen, a client whose transfer ended `info` (it may still take effect later) is a
//! crashed process: it goes on as a new process number, so no process ever has two
//! operations open.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};

use super::api::{BankLayout, Outcome, Session};
use super::history::{Op, OpType, OpValue, Transfer};

/// The history file; lines are written whole and in time order.
pub struct HistoryWriter {
    file: Mutex<File>,
    started: Instant,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("cannot create the history file {}", path.display()))?;
        Ok(HistoryWriter {
            file: Mutex::new(file),
            started: Instant::now(),
        })
    }

    /// Writes one line, stamped under the lock so times never go backwards in the file. Each
    /// line goes to the file at once: a run that is killed still leaves a checkable history.
    pub fn record(
        &self,
        process: u64,
        kind: OpType,
        value: OpValue,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        let mut file = self
            .file
            .lock()
            .map_err(|_| anyhow::anyhow!("another client panicked"))?;
        let op = Op {
            process,
            kind,
            value,
            time: self.started.elapsed().as_nanos() as u64,
            error,
        };
        file.write_all(op.to_json_line().as_bytes())
            .context("cannot write the history file")
    }
}

/// Operations by (f, outcome), and the reasons of those that did not end `ok`.
#[derive(Debug, Default)]
pub struct Tally {
    pub counts: BTreeMap<(&'static str, &'static str), u64>,
    pub reasons: BTreeMap<String, u64>,
}

impl Tally {
    fn add(&mut self, f: &'static str, kind: OpType, reason: Option<&str>) {
        *self.counts.entry((f, kind.name())).or_default() += 1;
        if let Some(reason) = reason {
            *self
                .reasons
                .entry(format!("{f} {}: {reason}", kind.name()))
                .or_default() += 1;
        }
    }

    pub fn merge(&mut self, other: Tally) {
        for (key, count) in other.counts {
            *self.counts.entry(key).or_default() += count;
        }
        for (key, count) in other.reasons {
            *self.reasons.entry(key).or_default() += count;
        }
    }
}

/// What every client shares.
pub struct Shared {
    pub layout: BankLayout,
    pub history: HistoryWriter,
    /// This run's tag in transfer ids, so no two runs share one.
    pub run: u32,
    pub next_sequence: AtomicU32,
    pub clients: usize,
    pub read_percent: u32,
    pub deadline: Instant,
    pub stop: AtomicBool,
}

impl Shared {
    fn over(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline
    }
}

/// One read of every balance by `process`, recorded; true when it ended `ok`.
pub async fn read(
    process: u64,
    session: &mut Session,
    shared: &Shared,
    tally: &mut Tally,
) -> anyhow::Result<bool> {
    let history = &shared.history;
    history.record(process, OpType::Invoke, OpValue::Read(None), None)?;
    match session.read_balances(&shared.layout.players).await {
        Ok(balances) => {
            history.record(process, OpType::Ok, OpValue::Read(Some(balances)), None)?;
            tally.add("read", OpType::Ok, None);
            Ok(true)
        }
        Err(error) => {
            // A read changes nothing, so a failed one is simply `fail`.
            let error = format!("{error:#}");
            tally.add("read", OpType::Fail, Some(&error));
            history.record(process, OpType::Fail, OpValue::Read(None), Some(error))?;
            Ok(false)
        }
    }
}

/// One transfer by `process`, recorded; returns how it ended.
async fn transfer(
    process: u64,
    session: &mut Session,
    shared: &Shared,
    rng: &mut ChaCha8Rng,
    tally: &mut Tally,
) -> anyhow::Result<Outcome> {
    let layout = &shared.layout;
    let players = layout.players.len();
    let from = Uniform::new(0, players)?.sample(rng);
    // Any other player: draw among the rest and skip over `from`.
    let mut to = Uniform::new(0, players - 1)?.sample(rng);
    if to >= from {
        to += 1;
    }
    let sequence = shared.next_sequence.fetch_add(1, Ordering::Relaxed);
    if sequence == u32::MAX {
        bail!("this run used up its 2^32 transfer ids");
    }
    let op = Transfer {
        id: layout.operation_id(shared.run, sequence),
        from: layout.players[from],
        to: layout.players[to],
        amount: Uniform::new_inclusive(1, layout.balance / 4)?.sample(rng),
    };
    let history = &shared.history;
    history.record(process, OpType::Invoke, OpValue::Transfer(op.clone()), None)?;
    let outcome = session.transfer(&op, layout.ledger).await;
    let (kind, error) = match &outcome {
        Outcome::Ok => (OpType::Ok, None),
        Outcome::Rejected(error) | Outcome::Fail(error) => (OpType::Fail, Some(error.clone())),
        Outcome::Info(error) => (OpType::Info, Some(error.clone())),
    };
    tally.add("transfer", kind, error.as_deref());
    history.record(process, kind, OpValue::Transfer(op), error)?;
    Ok(outcome)
}

/// Client `index`: operations until the run ends. Process numbers start at `index` and step
/// by the number of clients, as Jepsen's do.
pub async fn client(
    index: usize,
    mut session: Session,
    shared: Arc<Shared>,
    seed: u64,
) -> anyhow::Result<Tally> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(index as u64));
    let percent = Uniform::new(0, 100u32)?;
    let mut process = index as u64;
    let mut tally = Tally::default();
    let mut pause = TROUBLE_PAUSE_MIN;
    while !shared.over() {
        let trouble = if percent.sample(&mut rng) < shared.read_percent {
            !read(process, &mut session, &shared, &mut tally).await?
        } else {
            match transfer(process, &mut session, &shared, &mut rng, &mut tally).await? {
                Outcome::Ok | Outcome::Rejected(_) => false,
                Outcome::Fail(_) => true,
                Outcome::Info(_) => {
                    process += shared.clients as u64;
                    true
                }
            }
        };
        if !trouble {
            pause = TROUBLE_PAUSE_MIN;
            continue;
        }
        // A node that is down refuses at once: without a pause its clients would fill the
        // history with failures as fast as the loop turns.
        let left = shared.deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(TROUBLE_PAUSE_MAX);
    }
    Ok(tally)
}

/// After an operation that found the server down or unable to serve, a client pauses this
/// long, doubling while the trouble lasts, so it notices recovery within a second.
const TROUBLE_PAUSE_MIN: Duration = Duration::from_millis(10);
const TROUBLE_PAUSE_MAX: Duration = Duration::from_secs(1);

/// The summary printed after a run.
pub fn summary(tally: &Tally, elapsed: Duration) -> String {
    let mut text = format!("{:.1} s\n", elapsed.as_secs_f64());
    for f in ["transfer", "read"] {
        let count = |kind: &str| tally.counts.get(&(f, kind)).copied().unwrap_or(0);
        let total = count("ok") + count("fail") + count("info");
        text.push_str(&format!(
            "{f:<8} {total:>7} ops: {} ok, {} fail, {} info\n",
            count("ok"),
            count("fail"),
            count("info")
        ));
    }
    let mut reasons: Vec<(&String, &u64)> = tally.reasons.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (reason, count) in reasons.iter().take(REASONS_SHOWN) {
        text.push_str(&format!("  {count:>7} {reason}\n"));
    }
    if reasons.len() > REASONS_SHOWN {
        text.push_str(&format!(
            "  ... and {} other reasons\n",
            reasons.len() - REASONS_SHOWN
        ));
    }
    text
}

const REASONS_SHOWN: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_each_outcome_and_the_commonest_reasons() {
        let mut tally = Tally::default();
        tally.add("transfer", OpType::Ok, None);
        tally.add("transfer", OpType::Fail, Some("exceeds_credits"));
        tally.add("transfer", OpType::Fail, Some("exceeds_credits"));
        tally.add("read", OpType::Info, Some("no answer"));
        let mut other = Tally::default();
        other.add("read", OpType::Ok, None);
        tally.merge(other);
        let text = summary(&tally, Duration::from_millis(1500));
        assert!(
            text.contains("transfer       3 ops: 1 ok, 2 fail, 0 info"),
            "{text}"
        );
        assert!(
            text.contains("read           2 ops: 1 ok, 0 fail, 1 info"),
            "{text}"
        );
        let reasons: Vec<&str> = text.lines().skip(3).collect();
        assert_eq!(
            reasons,
            [
                "        2 transfer fail: exceeds_credits",
                "        1 read info: no answer"
            ]
        );
    }
}
