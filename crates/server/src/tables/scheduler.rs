//! The table scheduler: on the leader only, every tick, it looks at each table's current round
//! and proposes the next transition that is due (configure, open, close, draw, settle, void).
//!
//! The server seed of a round lives only in the memory of the leader that opened it, so an
//! outcome cannot be known by anyone before the draw reveals it. A leader that finds an open
//! or closed round whose seed it does not hold (it was opened by a leader that crashed or lost
//! its leadership) voids it at once; its bets are refunded by the settle steps. A drawn round is settled by
//! whichever node leads next, from the returns recorded in the log.
//!
//! The draw uses the provably-fair stream of the revealed seed (client seed `table:<id>`,
//! nonce = the round's number), so anyone can recompute the outcome (`croupier fair`).
//!
//! A live-studio table's rounds have no seed: the studio's console posts each result, signed
//! (`routes::tables::post_studio_result`), and the scheduler only opens, closes and settles
//! them, voiding a round whose result has not come by its result timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use croupier_cluster::Consensus;
use croupier_core::tables::{
    round_id, round_parts, seed_commitment, Draw, DrawProof, RoundId, RoundState, TableCommand,
    TableConfig, TableId,
};
use croupier_core::{Command, CommandResult};
use croupier_games::live::LiveTable;
use croupier_rng::fair::FairStream;
use croupier_rng::CertifiedRng;

use super::LiveTables;

/// How often the scheduler looks at the tables.
const TICK_MS: u64 = 50;
/// Seeds kept for rounds this node opened (a few per table; older ones are useless).
const SEEDS_KEPT_MAX: usize = 4_096;

/// A table's round as the scheduler needs to see it.
#[derive(Debug, Clone)]
struct RoundView {
    round_id: RoundId,
    state: RoundState,
    closes_at_ns: u64,
    draw_delay_ms: u32,
    /// A studio round: how long after the draw time its result may come.
    studio_timeout_ms: Option<u32>,
}

#[derive(Debug, Clone)]
struct TableView {
    config: TableConfig,
    next_round: u32,
    current: Option<RoundView>,
}

pub struct Scheduler<C> {
    consensus: C,
    tables: Arc<LiveTables>,
    rng: CertifiedRng,
    /// Server seeds of the rounds this node opened and has not drawn yet.
    seeds: BTreeMap<RoundId, [u8; 32]>,
    /// Tables already warned about (a game not certified here, a config file that differs
    /// from the ledger): one line each, not one a tick.
    warned: BTreeSet<TableId>,
}

impl<C: Consensus> Scheduler<C> {
    pub fn new(consensus: C, tables: Arc<LiveTables>) -> Result<Self, croupier_rng::RngError> {
        Ok(Scheduler {
            consensus,
            tables,
            rng: CertifiedRng::new()?,
            seeds: BTreeMap::new(),
            warned: BTreeSet::new(),
        })
    }

    /// Runs until `stop` turns true.
    pub async fn run(mut self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.wait_for(|stopped| *stopped) => return,
                _ = tick.tick() => {}
            }
            if !self.consensus.is_serving_writes() {
                continue;
            }
            if let Err(error) = self.step().await {
                tracing::debug!(%error, "table scheduler step");
            }
        }
    }

    /// Proposes every transition that is due now, as one log entry: the configured tables the
    /// ledger lacks, then each ledger table's next step (tables configured over the API
    /// included: the ledger, not this process, says which tables exist).
    async fn step(&mut self) -> Result<(), String> {
        let configured: Vec<TableId> = self
            .tables
            .configured()
            .iter()
            .map(|c| c.table_id)
            .collect();
        let (views, missing) = self
            .consensus
            .read_stale(move |view| {
                let ledger = view.ledger();
                let views: Vec<TableView> = ledger.tables().map(table_view).collect();
                let missing: BTreeSet<TableId> = configured
                    .into_iter()
                    .filter(|id| ledger.table(*id).is_none())
                    .collect();
                (views, missing)
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut commands: Vec<Command> = self
            .tables
            .configured()
            .iter()
            .filter(|config| missing.contains(&config.table_id))
            .map(|config| Command::Table(TableCommand::Configure(config.clone())))
            .collect();
        self.warn_on_config_file_drift(&views);
        let now_ns = unix_now_ns();
        for view in &views {
            if let Some(command) = self.due(view, now_ns)? {
                commands.push(Command::Table(command));
            }
        }
        if commands.is_empty() {
            return Ok(());
        }
        let results = self
            .consensus
            .propose(commands.clone())
            .await
            .map_err(|e| e.to_string())?;
        for (command, result) in commands.iter().zip(results) {
            if let CommandResult::Table(outcome) = result {
                if !outcome.is_ok() {
                    tracing::warn!(?command, code = outcome.code(), "table transition refused");
                }
            }
        }
        Ok(())
    }

    /// The transition due for one table, if any.
    fn due(&mut self, view: &TableView, now_ns: u64) -> Result<Option<TableCommand>, String> {
        let live = self.tables.games().for_config(&view.config).cloned();
        let Some(round) = &view.current else {
            if view.config.closed {
                return Ok(None);
            }
            if live.is_none() {
                self.warn_once(
                    view.config.table_id,
                    "its game's definition is not certified on this node: no round opens",
                );
                return Ok(None);
            }
            return self.open(view, now_ns).map(Some);
        };
        let round_id = round.round_id;
        let seedless = round.studio_timeout_ms.is_none() && !self.seeds.contains_key(&round_id);
        Ok(match round.state {
            // Opened by a leader that is gone with its seed: it can never be drawn, so it is
            // voided now rather than taking bets until its close only to refund them.
            RoundState::Open if seedless => Some(TableCommand::Void { round_id }),
            RoundState::Open if now_ns >= round.closes_at_ns => {
                Some(TableCommand::Close { round_id })
            }
            RoundState::Closed => {
                let draw_at = round.closes_at_ns + u64::from(round.draw_delay_ms) * 1_000_000;
                if let Some(timeout_ms) = round.studio_timeout_ms {
                    // Void strictly after the deadline, as the state machine judges a result
                    // late (a result stamped at the deadline itself still counts).
                    let deadline = draw_at + u64::from(timeout_ms) * 1_000_000;
                    return Ok((now_ns > deadline).then_some(TableCommand::Void { round_id }));
                }
                match (self.seeds.get(&round_id), live) {
                    (None, _) | (_, None) => Some(TableCommand::Void { round_id }),
                    (Some(_), _) if now_ns < draw_at => None,
                    (Some(seed), Some(live)) => Some(TableCommand::Draw {
                        round_id,
                        draw: draw(&live, round_id, *seed),
                    }),
                }
            }
            RoundState::Drawn | RoundState::Voiding => {
                self.seeds.remove(&round_id);
                Some(TableCommand::Settle { round_id })
            }
            _ => None,
        })
    }

    fn open(&mut self, view: &TableView, now_ns: u64) -> Result<TableCommand, String> {
        let round_id = round_id(view.config.table_id, view.next_round);
        let window_ns = u64::from(view.config.betting_window_ms) * 1_000_000;
        if view.config.studio.is_some() {
            // The studio's wheel decides: no seed, nothing to commit to.
            return Ok(TableCommand::Open {
                round_id,
                commitment: [0; 32],
                closes_at_ns: now_ns + window_ns,
            });
        }
        let mut seed = [0u8; 32];
        self.rng
            .fill(&mut seed)
            .map_err(|e| format!("certified generator: {e}"))?;
        if self.seeds.len() >= SEEDS_KEPT_MAX {
            self.seeds.pop_first();
        }
        self.seeds.insert(round_id, seed);
        Ok(TableCommand::Open {
            round_id,
            commitment: seed_commitment(&seed),
            closes_at_ns: now_ns + window_ns,
        })
    }

    /// A configured table that the ledger holds with another configuration keeps the
    /// ledger's (an operator may have changed it over the API): said once per table.
    fn warn_on_config_file_drift(&mut self, views: &[TableView]) {
        let tables = Arc::clone(&self.tables);
        for config in tables.configured() {
            let drifted = views
                .iter()
                .find(|view| view.config.table_id == config.table_id)
                .is_some_and(|view| view.config != *config);
            if drifted {
                self.warn_once(
                    config.table_id,
                    "the config file differs from the table's configuration in the ledger, \
                     which applies: change a table with PUT /v1/tables/{table_id}",
                );
            }
        }
    }

    fn warn_once(&mut self, table_id: TableId, message: &'static str) {
        if self.warned.insert(table_id) {
            tracing::warn!(table_id, "table: {message}");
        }
    }
}

/// Draws a round from the provably-fair stream of its revealed server seed.
fn draw(live: &LiveTable, round_id: RoundId, seed: [u8; 32]) -> Draw {
    let (table_id, number) = round_parts(round_id);
    let mut stream = FairStream::new(
        &hex::encode(seed),
        &client_seed(table_id),
        u64::from(number),
    );
    let drawn = live.draw(&mut stream);
    Draw {
        proof: DrawProof::ServerSeed(seed),
        outcome: drawn.outcome,
        returns: drawn.returns,
    }
}

/// The provably-fair client seed of a table's rounds (the nonce is the round number).
pub fn client_seed(table_id: TableId) -> String {
    format!("table:{table_id}")
}

fn table_view(table: &croupier_core::tables::Table) -> TableView {
    TableView {
        config: table.config.clone(),
        next_round: table.next_round,
        current: table.current.as_ref().map(|round| RoundView {
            round_id: round.round_id,
            state: round.state,
            closes_at_ns: round.closes_at_ns,
            draw_delay_ms: round.draw_delay_ms,
            studio_timeout_ms: round.studio.map(|studio| studio.result_timeout_ms),
        }),
    }
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}
