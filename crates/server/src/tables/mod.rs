//! Live tables on a node: which game each configured table runs (spot names for the API), and
//! the scheduler that moves their rounds along on the leader (`scheduler`).
//!
//! The rounds themselves are ledger state (`croupier_core::tables`); this module only decides
//! *when* to propose each transition and draws the outcome, and it never holds money.

pub mod scheduler;

use std::collections::BTreeMap;
use std::sync::Arc;

use croupier_core::tables::{TableConfig, TableId, TableLimits};
use croupier_core::LedgerCode;
use croupier_games::certification::CertifiedGames;
use croupier_games::live::LiveTable;

/// A table as the configuration describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub table_id: TableId,
    pub game: String,
    pub currency: LedgerCode,
    pub betting_window_ms: u32,
    pub draw_delay_ms: u32,
    pub limits: TableLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum TableSpecError {
    #[error("table {0}: {1}")]
    Game(TableId, String),
    #[error("table {0}: {1}")]
    Config(TableId, croupier_core::tables::TableConfigError),
    #[error("table {0} is configured twice")]
    Repeated(TableId),
}

/// The tables this node knows how to run, by id.
#[derive(Debug, Default)]
pub struct LiveTables {
    tables: BTreeMap<TableId, (TableConfig, Arc<LiveTable>)>,
}

impl LiveTables {
    /// Takes each table's game from the node's certified set (its signature and hashes were
    /// checked when the set was loaded) and checks its configuration.
    pub fn new(specs: &[TableSpec], games: &CertifiedGames) -> Result<LiveTables, TableSpecError> {
        let mut tables = BTreeMap::new();
        for spec in specs {
            let id = spec.table_id;
            let uncertified =
                || TableSpecError::Game(id, format!("no certified game {:?}", spec.game));
            let game = games.game(&spec.game).cloned().ok_or_else(uncertified)?;
            let definition = games
                .files()
                .definitions
                .get(&spec.game)
                .ok_or_else(uncertified)?;
            let live = LiveTable::new(game)
                .map_err(|error| TableSpecError::Game(id, error.to_string()))?;
            let config = TableConfig {
                table_id: id,
                game: spec.game.clone(),
                definition_sha256: sha256(definition),
                ledger: spec.currency,
                spots: u16::try_from(live.spots().len()).expect("games have few spots"),
                betting_window_ms: spec.betting_window_ms,
                draw_delay_ms: spec.draw_delay_ms,
                limits: spec.limits,
                closed: false,
            };
            config
                .check()
                .map_err(|error| TableSpecError::Config(id, error))?;
            if tables.insert(id, (config, Arc::new(live))).is_some() {
                return Err(TableSpecError::Repeated(id));
            }
        }
        Ok(LiveTables { tables })
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    pub fn get(&self, table_id: TableId) -> Option<&Arc<LiveTable>> {
        self.tables.get(&table_id).map(|(_, live)| live)
    }

    pub fn configs(&self) -> impl Iterator<Item = &TableConfig> + '_ {
        self.tables.values().map(|(config, _)| config)
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).into()
}
