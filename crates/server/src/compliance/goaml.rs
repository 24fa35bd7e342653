//! A case as a goAML suspicious-transaction report: the node gathers the case, the player's
//! verified identity and the player's wallet transfers in the reporting currency around the
//! case from its state and history, and `croupier_risk::goaml` writes the XML.

use croupier_cluster::LedgerView;
use croupier_core::cases::Case;
use croupier_core::compliance::civil_from_days;
use croupier_core::{ids, AccountId, LedgerCode, Transfer};
use croupier_risk::goaml::{Direction, Movement, ReportedCase, ReportedPerson, ReportingEntity};
use croupier_risk::identity::CivilDate;

const NS_PER_S: u64 = 1_000_000_000;
const SECONDS_PER_DAY: u64 = 86_400;
/// Transfers read from history per page while gathering a report's movements.
const HISTORY_PAGE_ITEMS: usize = 1_000;

/// `[compliance.goaml]`: who reports, and how much of a player's history a report carries.
#[derive(Clone, Debug)]
pub struct GoamlConfig {
    pub entity: ReportingEntity,
    /// Movements from this many days before the case opened until the report are included.
    pub window_days: u32,
    /// The newest this many movements at most (an FIU takes large files badly).
    pub movements_max: usize,
}

/// Everything a report needs, read in one view of the ledger.
pub struct ReportInput {
    pub case: ReportedCase,
    pub person: ReportedPerson,
    pub movements: Vec<Movement>,
}

/// Why a report cannot be gathered.
#[derive(Debug)]
pub enum GatherError {
    CaseNotFound,
    History(croupier_cluster::ReadError),
}

/// Reads the case `case_id` and its player's movements in the reporting currency.
pub fn gather(
    view: &LedgerView<'_>,
    config: &GoamlConfig,
    case_id: u128,
) -> Result<ReportInput, GatherError> {
    let ledger = view.ledger();
    let case = view
        .case(case_id)
        .map_err(GatherError::History)?
        .ok_or(GatherError::CaseNotFound)?;
    let player = ledger.player(case.player_id);
    let identity = ledger
        .player_compliance(case.player_id)
        .and_then(|compliance| compliance.identity.as_deref());
    let person = ReportedPerson {
        full_name: identity.map(|identity| identity.name.clone()),
        birth_date: identity
            .and_then(|identity| identity.birth_date_days)
            .and_then(|days| {
                let (year, month, day) = civil_from_days(i64::from(days));
                CivilDate::new(i32::try_from(year).ok()?, month, day)
            }),
        residence: identity.map(|identity| String::from_utf8_lossy(&identity.country).into_owned()),
        username: player.map(|p| p.username.clone()).unwrap_or_default(),
        player_id: case.player_id,
    };
    let wallet = LedgerCode::parse(&config.entity.currency_code_local)
        .ok()
        .and_then(|code| player.and_then(|p| p.wallet(code)));
    let since_ns = case
        .opened_at_ns
        .saturating_sub(u64::from(config.window_days) * SECONDS_PER_DAY * NS_PER_S);
    let movements = match wallet {
        None => Vec::new(),
        Some(wallet) => {
            movements(view, wallet, since_ns, config.movements_max).map_err(GatherError::History)?
        }
    };
    Ok(ReportInput {
        case: reported_case(&case),
        person,
        movements,
    })
}

fn reported_case(case: &Case) -> ReportedCase {
    let notes = case
        .notes
        .iter()
        .map(|note| {
            let at = crate::live::messages::rfc3339(note.at_ns);
            format!("{at}, {} ({}): {}", note.by, note.kind.name(), note.text)
        })
        .collect();
    ReportedCase {
        case_id: case.id,
        reasons: case.reasons.clone(),
        score: case.score,
        ruleset_version: case.ruleset_version.clone(),
        opened_at_s: case.opened_at_ns / NS_PER_S,
        opened_by: case.opened_by.clone(),
        decision: case.decision.as_ref().map(|(decision, at_ns, by)| {
            let at = crate::live::messages::rfc3339(*at_ns);
            format!("{} by {by} at {at}", decision.name())
        }),
        notes,
    }
}

/// The wallet's transfers from `since_ns` on, newest first in history, oldest first here,
/// at most `count_max`.
fn movements(
    view: &LedgerView<'_>,
    wallet: AccountId,
    since_ns: u64,
    count_max: usize,
) -> Result<Vec<Movement>, croupier_cluster::ReadError> {
    let mut found = Vec::new();
    let mut cursor = None;
    'pages: loop {
        let page = view.account_transfers(wallet, HISTORY_PAGE_ITEMS, cursor)?;
        for transfer in &page.transfers {
            if transfer.timestamp < since_ns || found.len() == count_max {
                break 'pages;
            }
            found.push(movement(wallet, transfer));
        }
        match page.next_before {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    found.reverse();
    Ok(found)
}

fn movement(wallet: AccountId, transfer: &Transfer) -> Movement {
    let to_player = transfer.credit_account_id == wallet;
    let counterparty = match to_player {
        true => transfer.debit_account_id,
        false => transfer.credit_account_id,
    };
    let kind = match (to_player, ids::is_house_account_id(counterparty)) {
        (false, true) => "bet",
        (true, true) => "payout",
        (true, false) => "deposit",
        (false, false) => "withdrawal",
    };
    Movement {
        transfer_id: transfer.id,
        at_s: transfer.timestamp / NS_PER_S,
        amount_minor: transfer.amount,
        direction: match to_player {
            true => Direction::ToPlayer,
            false => Direction::FromPlayer,
        },
        kind,
        counterparty_account: counterparty,
    }
}
