//! Deterministic simulation of a Croupier cluster. The real node code (host, openraft, log
//! writer, state machine, history, checkpoints and their streaming, the peer transport) runs
//! under turmoil: every node is a simulated host on one thread with simulated time, network
//! and disk. One seed decides everything: network latency, the fault schedule (partitions,
//! held links released later, crashes with power loss, failed fsyncs), the clients' operations
//! and every election timeout; the same seed replays the same run, which `trace` digests.
//!
//! Must not know: HTTP. It drives `Node` directly, as the API layer does.

pub mod bank;
pub mod cluster;
pub mod net;

use std::time::Duration;

use croupier_cluster::simulation;
use croupier_store::sim_fs::{FaultAction, FsOp};
use rand_09::rngs::SmallRng;
use rand_09::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::bank::SharedRecord;
use crate::cluster::{host_name, Nodes};

/// The simulated wall clock starts here (2026-01-01T00:00:00Z), whatever the real date.
const EPOCH_NS: u64 = 1_767_225_600_000_000_000;
/// One simulation step.
const TICK_MS: u64 = 1;

/// How one run is shaped (the seed decides the rest).
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub nodes: u64,
    /// Client processes, and operations each.
    pub clients: u64,
    pub operations_per_client: u64,
    /// Inject faults (off: a calm run, for comparison).
    pub faults: bool,
    /// Simulated time allowed before the run counts as stuck.
    pub time_limit_s: u64,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            nodes: 3,
            clients: 3,
            operations_per_client: 40,
            faults: true,
            time_limit_s: 600,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReport {
    pub seed: u64,
    pub acknowledged: u64,
    pub refused: u64,
    pub unknown: u64,
    pub reads: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub disk_faults: u64,
    /// Frames sent twice, and frames held back behind a later one.
    pub duplicated: u64,
    pub reordered: u64,
    pub simulated_ms: u64,
    /// SHA-256 (hex) of the history and the final state: equal for equal seeds.
    pub trace: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SimFailure {
    #[error("seed {seed}: {violations:?}")]
    Violations { seed: u64, violations: Vec<String> },
    #[error("seed {seed}: the clients did not finish within {limit_s} s of simulated time")]
    Stuck { seed: u64, limit_s: u64 },
    #[error("seed {seed}: the simulation stopped: {reason}")]
    Aborted { seed: u64, reason: String },
}

fn simulated_wall_clock_ns() -> u64 {
    EPOCH_NS + turmoil::sim_elapsed().map_or(0, |d| d.as_nanos() as u64)
}

/// Runs one seed; returns the report and the Jepsen history as JSON lines.
pub fn run_seed(seed: u64, options: &SimOptions) -> Result<(SimReport, Vec<String>), SimFailure> {
    simulation::enter(seed, simulated_wall_clock_ns);
    let outcome = run_entered(seed, options);
    simulation::leave();
    outcome
}

fn run_entered(seed: u64, options: &SimOptions) -> Result<(SimReport, Vec<String>), SimFailure> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let latency_max_ms = rng.random_range(2..=25);
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(options.time_limit_s + 120))
        .tick_duration(Duration::from_millis(TICK_MS))
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(latency_max_ms))
        .enable_random_order()
        .tcp_capacity(4096)
        .rng_seed(seed)
        .build();
    // Up to 2% of frames sent twice and 5% held behind the next one (none in a calm run).
    let (duplicate_rate, reorder_rate) = match options.faults {
        true => (rng.random_range(0.0..0.02), rng.random_range(0.0..0.05)),
        false => (0.0, 0.0),
    };
    let message_faults = net::MessageFaults::new(seed ^ 0x0dd_f4a3e, duplicate_rate, reorder_rate);
    let nodes = Nodes::new(options.nodes, message_faults);
    for id in nodes.ids() {
        let nodes = nodes.clone();
        sim.host(host_name(id), move || {
            let nodes = nodes.clone();
            async move { nodes.run(id).await }
        });
    }
    let record = SharedRecord::default();
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    spawn_clients(&mut sim, &nodes, &record, options, seed, &done);
    let mut faults = Faults::new(seed, options);
    let limit_ms = options.time_limit_s * 1_000;
    let mut now_ms = 0;
    while !done.get() {
        if now_ms > limit_ms {
            return Err(SimFailure::Stuck {
                seed,
                limit_s: options.time_limit_s,
            });
        }
        faults.step(&mut sim, &nodes, now_ms);
        sim.step().map_err(|e| SimFailure::Aborted {
            seed,
            reason: e.to_string(),
        })?;
        now_ms += TICK_MS;
    }
    faults.heal(&mut sim, &nodes);
    settle(&mut sim, &nodes, &mut faults, seed, now_ms + limit_ms)?;
    finish(&mut sim, &nodes, &record, seed, &faults)
}

fn spawn_clients(
    sim: &mut turmoil::Sim<'_>,
    nodes: &Nodes,
    record: &SharedRecord,
    options: &SimOptions,
    seed: u64,
    done: &std::rc::Rc<std::cell::Cell<bool>>,
) {
    let (nodes, record, done) = (nodes.clone(), record.clone(), done.clone());
    let (clients, operations) = (options.clients, options.operations_per_client);
    // Never "finishes" for turmoil (the final checks need it running); `done` tells the loop.
    sim.client("clients", async move {
        bank::set_up(&nodes).await;
        let mut running = Vec::new();
        for process in 0..clients {
            let client_seed = seed.wrapping_mul(31).wrapping_add(process);
            running.push(tokio::task::spawn_local(bank::client(
                nodes.clone(),
                record.clone(),
                process,
                operations,
                client_seed,
            )));
        }
        for client in running {
            client.await?;
        }
        done.set(true);
        std::future::pending::<()>().await;
        Ok(())
    });
}

/// Runs until every node is up and has applied the same index (the faults are over).
fn settle(
    sim: &mut turmoil::Sim<'_>,
    nodes: &Nodes,
    faults: &mut Faults,
    seed: u64,
    deadline_ms: u64,
) -> Result<(), SimFailure> {
    let mut now_ms = sim.elapsed().as_millis() as u64;
    loop {
        faults.restart_stopped(sim, nodes, now_ms);
        let live = nodes.live();
        let applied: Vec<u64> = live.values().map(|n| n.applied_index()).collect();
        let caught_up = live.len() as u64 == nodes.ids().len() as u64
            && applied.windows(2).all(|w| w[0] == w[1])
            && live.values().any(|n| n.is_leader());
        if caught_up {
            // A few more steps: the leader's last commit reaches every follower's state.
            for _ in 0..200 {
                step(sim, seed)?;
            }
            let applied: Vec<u64> = nodes.live().values().map(|n| n.applied_index()).collect();
            if applied.windows(2).all(|w| w[0] == w[1]) {
                return Ok(());
            }
        }
        if now_ms > deadline_ms {
            return Err(SimFailure::Aborted {
                seed,
                reason: format!(
                    "the nodes did not converge after the faults stopped: {}",
                    summaries(nodes)
                ),
            });
        }
        step(sim, seed)?;
        now_ms += TICK_MS;
    }
}

fn summaries(nodes: &Nodes) -> String {
    let live = nodes.live();
    nodes
        .ids()
        .iter()
        .map(|id| match live.get(id) {
            Some(node) => node.raft_summary(),
            None => format!(
                "node {id} down ({})",
                nodes
                    .last_stop(*id)
                    .unwrap_or_else(|| "crashed".to_string())
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn step(sim: &mut turmoil::Sim<'_>, seed: u64) -> Result<(), SimFailure> {
    sim.step().map(|_| ()).map_err(|e| SimFailure::Aborted {
        seed,
        reason: e.to_string(),
    })
}

fn finish(
    sim: &mut turmoil::Sim<'_>,
    nodes: &Nodes,
    record: &SharedRecord,
    seed: u64,
    faults: &Faults,
) -> Result<(SimReport, Vec<String>), SimFailure> {
    let violations = std::rc::Rc::new(std::cell::RefCell::new(None));
    let (checking, into) = (nodes.clone(), violations.clone());
    let checker_record = record.clone();
    sim.client("checker", async move {
        let found = bank::check_final(&checking, &checker_record).await;
        *into.borrow_mut() = Some(found);
        Ok(())
    });
    while violations.borrow().is_none() {
        step(sim, seed)?;
    }
    let violations = violations.borrow_mut().take().expect("checked above");
    if !violations.is_empty() {
        return Err(SimFailure::Violations { seed, violations });
    }
    let record = record.lock().unwrap_or_else(|p| p.into_inner());
    let history: Vec<String> = record
        .history
        .iter()
        .map(|e| e.to_json().to_string())
        .collect();
    Ok((report(seed, sim, nodes, &record, faults, &history), history))
}

fn report(
    seed: u64,
    sim: &turmoil::Sim<'_>,
    nodes: &Nodes,
    record: &bank::Record,
    faults: &Faults,
    history: &[String],
) -> SimReport {
    let count = |outcome| {
        record
            .transfers
            .values()
            .filter(|(_, o)| *o == outcome)
            .count() as u64
    };
    let mut digest = Sha256::new();
    for line in history {
        digest.update(line.as_bytes());
        digest.update(b"\n");
    }
    SimReport {
        seed,
        acknowledged: count(bank::Outcome::Ok),
        refused: count(bank::Outcome::Fail),
        unknown: count(bank::Outcome::Unknown),
        reads: record
            .history
            .iter()
            .filter(|e| e.f == "read" && e.kind == "ok")
            .count() as u64,
        crashes: faults.crashes,
        partitions: faults.partitions,
        disk_faults: faults.disk_faults,
        duplicated: nodes
            .message_faults
            .duplicated
            .load(std::sync::atomic::Ordering::Relaxed),
        reordered: nodes
            .message_faults
            .reordered
            .load(std::sync::atomic::Ordering::Relaxed),
        simulated_ms: sim.elapsed().as_millis() as u64,
        trace: digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    }
}

/// The fault schedule: one decision every few hundred simulated ms, at most one node down.
struct Faults {
    rng: SmallRng,
    enabled: bool,
    next_ms: u64,
    down: Option<(u64, u64)>,
    crashes: u64,
    partitions: u64,
    disk_faults: u64,
}

impl Faults {
    fn new(seed: u64, options: &SimOptions) -> Faults {
        Faults {
            rng: SmallRng::seed_from_u64(seed ^ 0x5eed_fa17),
            enabled: options.faults,
            next_ms: 500,
            down: None,
            crashes: 0,
            partitions: 0,
            disk_faults: 0,
        }
    }

    fn step(&mut self, sim: &mut turmoil::Sim<'_>, nodes: &Nodes, now_ms: u64) {
        self.restart_stopped(sim, nodes, now_ms);
        if !self.enabled || now_ms < self.next_ms {
            return;
        }
        self.next_ms = now_ms + self.rng.random_range(200..1_500);
        let ids = nodes.ids();
        let victim = ids[self.rng.random_range(0..ids.len())];
        let choice = self.rng.random_range(0..10);
        tracing::info!(now_ms, victim, choice, "fault schedule");
        match choice {
            0..=2 => {
                for other in ids.iter().filter(|id| **id != victim) {
                    sim.partition(host_name(victim), host_name(*other));
                }
                self.partitions += 1;
            }
            3 => {
                let other = ids[self.rng.random_range(0..ids.len())];
                if other != victim {
                    sim.hold(host_name(victim), host_name(other));
                }
            }
            4..=5 => self.repair_all(sim, nodes),
            6 if self.down.is_none() => {
                nodes.kill(victim, self.rng.random());
                sim.crash(host_name(victim));
                self.down = Some((victim, now_ms + self.rng.random_range(100..2_000)));
                self.crashes += 1;
            }
            7 => {
                let op = [FsOp::SyncData, FsOp::Append, FsOp::Rename][self.rng.random_range(0..3)];
                nodes.disk(victim).fault_at(
                    op,
                    self.rng.random_range(1..50),
                    FaultAction::FailOnce,
                );
                self.disk_faults += 1;
            }
            _ => {}
        }
    }

    /// Brings back the crashed node when its time comes, and any node whose software ended
    /// (a storage fault stopped it): power loss, then a restart.
    fn restart_stopped(&mut self, sim: &mut turmoil::Sim<'_>, nodes: &Nodes, now_ms: u64) {
        if let Some((id, at_ms)) = self.down {
            if now_ms >= at_ms {
                sim.bounce(host_name(id));
                self.down = None;
            }
        }
        for id in nodes.ids() {
            let crashed = self.down.is_some_and(|(down, _)| down == id);
            if !crashed && !sim.is_host_running(host_name(id)) {
                nodes.kill(id, self.rng.random());
                sim.bounce(host_name(id));
            }
        }
    }

    fn repair_all(&mut self, sim: &mut turmoil::Sim<'_>, nodes: &Nodes) {
        let ids = nodes.ids();
        for a in &ids {
            for b in &ids {
                if a < b {
                    sim.repair(host_name(*a), host_name(*b));
                    sim.release(host_name(*a), host_name(*b));
                }
            }
        }
    }

    /// The end of the faults: links repaired, planned disk faults dropped, every node up.
    fn heal(&mut self, sim: &mut turmoil::Sim<'_>, nodes: &Nodes) {
        self.enabled = false;
        self.repair_all(sim, nodes);
        for id in nodes.ids() {
            nodes.disk(id).clear_faults();
        }
        if let Some((id, _)) = self.down.take() {
            sim.bounce(host_name(id));
        }
    }
}
