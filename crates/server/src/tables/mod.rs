//! Live tables on a node: the certified games a table may run (`LiveGames`: spot names for the
//! API, draws for the scheduler), the tables named in the node's configuration, and the
//! scheduler that moves every table's rounds along on the leader (`scheduler`).
//!
//! The tables themselves are ledger state (`croupier_core::tables`): the routes and the
//! scheduler read which tables exist and which game each runs from the applied ledger, never
//! from this process's memory, so a table configured over the operator API is run by whichever
//! node leads next. This module only decides *when* to propose each transition and draws the
//! outcome, and it never holds money.

pub mod scheduler;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use croupier_core::tables::{StudioConfig, TableConfig, TableId, TableLimits};
use croupier_core::LedgerCode;
use croupier_games::certification::CertifiedGames;
use croupier_games::live::{LiveTable, StudioOutcomeError};

/// What a table's configuration is when a `[[tables]]` entry or `PUT /v1/tables/{id}` leaves
/// a field out (amounts in minor units).
pub mod defaults {
    use croupier_core::tables::TableLimits;

    pub const BETTING_WINDOW_MS: u32 = 15_000;
    pub const DRAW_DELAY_MS: u32 = 500;
    pub const BETS_TOTAL_INTERVAL_MS: u32 = croupier_core::tables::BETS_TOTAL_INTERVAL_MS_DEFAULT;
    /// A studio's wheel spins for 20-40 s after the close; a minute is the result's deadline.
    pub const STUDIO_RESULT_TIMEOUT_MS: u32 = 60_000;
    pub const LIMITS: TableLimits = TableLimits {
        bet_min: 10,
        bet_max: 50_000,
        round_stake_max: 100_000_000,
        payout_max: 50_000_000,
        bets_per_round_max: 50_000,
    };
}

/// A table as the configuration describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub table_id: TableId,
    pub game: String,
    pub currency: LedgerCode,
    pub betting_window_ms: u32,
    pub draw_delay_ms: u32,
    /// Ledger time between two `bets_total` events of an open round.
    pub bets_total_interval_ms: u32,
    pub limits: TableLimits,
    /// A live-studio table: the studio whose signed results decide its rounds.
    pub studio: Option<StudioConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum TableSpecError {
    #[error("table {0}: {1}")]
    Game(TableId, GameRefused),
    #[error("table {0}: {1}")]
    Config(TableId, croupier_core::tables::TableConfigError),
    #[error("table {0} is configured twice")]
    Repeated(TableId),
}

/// Why a game name cannot be run at a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GameRefused {
    #[error("no certified game {0:?}")]
    NotCertified(String),
    #[error("{0}")]
    NotLive(croupier_games::live::NotALiveGame),
    #[error("{0}")]
    NotAStudioGame(croupier_games::live::StudioOutcomeError),
}

/// A certified game in the form a table runs it.
#[derive(Debug)]
pub struct LiveGame {
    /// SHA-256 of its certified definition file (a table's configuration names it).
    pub definition_sha256: [u8; 32],
    pub live: Arc<LiveTable>,
}

/// The certified games that run at live tables, by name.
#[derive(Debug, Default)]
pub struct LiveGames {
    games: BTreeMap<String, LiveGame>,
    /// Certified games that are not table games (crash, dice, ...), for the error's wording.
    other: BTreeMap<String, croupier_games::live::NotALiveGame>,
}

impl LiveGames {
    /// Every game of the node's certified set (its signature and hashes were checked when the
    /// set was loaded) that a table can run.
    pub fn new(games: &CertifiedGames) -> LiveGames {
        let mut live = LiveGames::default();
        for game in games.games() {
            let name = game.name().to_string();
            let Some(definition) = games.files().definitions.get(&name) else {
                continue;
            };
            match LiveTable::new(game.clone()) {
                Ok(table) => {
                    let entry = LiveGame {
                        definition_sha256: sha256(definition),
                        live: Arc::new(table),
                    };
                    live.games.insert(name, entry);
                }
                Err(refused) => {
                    live.other.insert(name, refused);
                }
            }
        }
        live
    }

    pub fn game(&self, name: &str) -> Result<&LiveGame, GameRefused> {
        if let Some(refused) = self.other.get(name) {
            return Err(GameRefused::NotLive(refused.clone()));
        }
        self.games
            .get(name)
            .ok_or_else(|| GameRefused::NotCertified(name.to_string()))
    }

    /// The game a table's configuration runs, if it is the certified definition (a table
    /// configured under a definition this node no longer certifies opens no new round).
    pub fn for_config(&self, config: &TableConfig) -> Option<&Arc<LiveTable>> {
        let game = self.games.get(&config.game)?;
        (game.definition_sha256 == config.definition_sha256).then_some(&game.live)
    }

    /// The spot names of the game a configuration runs (empty if it is not certified here).
    pub fn spots(&self, config: &TableConfig) -> Vec<String> {
        self.for_config(config)
            .map_or_else(Vec::new, |live| live.spots().to_vec())
    }

    /// A table's ledger configuration: the game's certified definition and spots, checked.
    pub fn table_config(
        &self,
        spec: &TableSpec,
        closed: bool,
    ) -> Result<TableConfig, TableSpecError> {
        let id = spec.table_id;
        let game = self
            .game(&spec.game)
            .map_err(|refused| TableSpecError::Game(id, refused))?;
        if spec.studio.is_some() && !game.live.runs_in_studio() {
            let refused = StudioOutcomeError::NotAStudioGame(game.live.game().name());
            return Err(TableSpecError::Game(
                id,
                GameRefused::NotAStudioGame(refused),
            ));
        }
        let config = TableConfig {
            table_id: id,
            game: spec.game.clone(),
            definition_sha256: game.definition_sha256,
            ledger: spec.currency,
            spots: u16::try_from(game.live.spots().len()).expect("games have few spots"),
            betting_window_ms: spec.betting_window_ms,
            draw_delay_ms: spec.draw_delay_ms,
            bets_total_interval_ms: spec.bets_total_interval_ms,
            limits: spec.limits,
            closed,
            studio: spec.studio,
        };
        config
            .check()
            .map_err(|error| TableSpecError::Config(id, error))?;
        Ok(config)
    }
}

/// The certified games, and the tables the node's configuration names.
///
/// The configuration *creates* tables: the scheduler proposes a configured table that the
/// ledger does not have yet. Once it exists the ledger is the one source of truth (changed
/// with `PUT /v1/tables/{id}`), so a node restarting with an older file, or a new leader with
/// a different one, never undoes an operator's change.
#[derive(Debug, Default)]
pub struct LiveTables {
    games: LiveGames,
    configured: Vec<TableConfig>,
}

impl LiveTables {
    /// Takes each configured table's game from the node's certified set and checks it.
    pub fn new(specs: &[TableSpec], games: &CertifiedGames) -> Result<LiveTables, TableSpecError> {
        let games = LiveGames::new(games);
        let mut ids = BTreeSet::new();
        let mut configured = Vec::with_capacity(specs.len());
        for spec in specs {
            if !ids.insert(spec.table_id) {
                return Err(TableSpecError::Repeated(spec.table_id));
            }
            configured.push(games.table_config(spec, false)?);
        }
        Ok(LiveTables { games, configured })
    }

    pub fn games(&self) -> &LiveGames {
        &self.games
    }

    /// The tables of the node's configuration (created if the ledger lacks them).
    pub fn configured(&self) -> &[TableConfig] {
        &self.configured
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}
