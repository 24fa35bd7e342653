//! The money a bank moved for the operator as the ledger recorded it, for reconciliation
//! against the bank's statement (`croupier payments reconcile`).
//!
//! Open payments are in the hot state; final ones are in history, found by walking the
//! connector's clearing accounts back from their newest transfer to the first day asked for,
//! each transfer naming the payment that made it. Pages are read one after another, each under
//! the ledger's read lock for one page only.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::{Consensus, LedgerView};
use croupier_core::ids::clearing_account_id;
use croupier_core::payments::ArchivedPayment;
use croupier_core::{AccountId, Transfer};
use croupier_risk::identity::CivilDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Allowed;
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::ApiPath;
use crate::routes::payments::payments_of;
use crate::state::AppState;

/// Most movements one answer lists: reconciliation never gets a silently cut list.
const MOVEMENTS_MAX: usize = 100_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MovementsQuery {
    /// First day (UTC, YYYY-MM-DD) whose settled payments are listed.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", example = "2026-12-01")]
    from: String,
    /// Last day (UTC, YYYY-MM-DD), included.
    #[param(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", example = "2026-12-31")]
    to: String,
}

/// One movement of money at a bank as the ledger recorded it.
#[derive(Serialize, ToSchema)]
pub struct MovementOut {
    /// The deposit or withdrawal id (a deposit's return: `R` and the deposit id): the bank
    /// statement's end-to-end id.
    reference: String,
    /// deposit (money in: a credit on the bank statement), withdrawal or deposit_return (a
    /// refused deposit sent back: debits).
    kind: &'static str,
    amount: u64,
    ledger: String,
    state: &'static str,
    /// The day (UTC) the ledger recorded the bank's settlement.
    date: String,
}

#[derive(Serialize, ToSchema)]
pub struct MovementsOut {
    connector: String,
    movements: Vec<MovementOut>,
}

/// The money a bank moved for the operator as the ledger recorded it, for reconciliation
/// against the bank's statement (`croupier payments reconcile`): settled (or refused)
/// deposits and paid withdrawals through this connector, settled within the days given.
#[utoipa::path(
    get, path = crate::paths::ROUTE_CONNECTOR_MOVEMENTS, tag = "payments",
    params(("connector" = String, Path, description = "The configured connector id"), MovementsQuery),
    security(("operator_key" = [])),
    responses(
        (status = 200, body = MovementsOut),
        (status = 400, description = "Malformed dates", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "connector_not_found", body = ErrorBody),
        (status = 409, description = "payments_not_configured", body = ErrorBody),
        (status = 413, description = "too_many_movements: ask for fewer days", body = ErrorBody),
        (status = 503, description = "Not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn movements<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<crate::auth::OperatorRead>,
    path: ApiPath,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<MovementsQuery>,
) -> Result<Response, ApiError> {
    let day = |field: &str, text: &str| {
        CivilDate::parse_iso(text)
            .ok_or_else(|| ApiError::invalid_query(format!("{field} must be a date YYYY-MM-DD")))
    };
    let days = MovementDays {
        from: day("from", &query.from)?,
        to: day("to", &query.to)?,
    };
    let payments = payments_of(&state)?;
    if payments.connector(&path.0).is_none() {
        return Err(ApiError::not_found(
            "connector_not_found",
            "no such connector",
        ));
    }
    let movements = all_movements(&state, &path.0, days).await?;
    Ok(json_response(
        StatusCode::OK,
        &MovementsOut {
            connector: path.0.clone(),
            movements,
        },
    ))
}

/// Records one read of the movements looks at: the ledger's read lock (which the state
/// machine's writes wait for) is held for one page of the payment book, never all of it.
const MOVEMENTS_PAGE_RECORDS: usize = 4_096;

/// The days (UTC, both included) whose movements are asked for.
#[derive(Clone, Copy)]
struct MovementDays {
    from: CivilDate,
    to: CivilDate,
}

impl MovementDays {
    fn day_of(at_ns: u64) -> CivilDate {
        CivilDate::from_unix_s(at_ns / 1_000_000_000)
    }

    fn holds(self, at_ns: u64) -> bool {
        (self.from..=self.to).contains(&Self::day_of(at_ns))
    }
}

/// Where a paged scan of the payment book stands: deposits by id, then withdrawals by id.
#[derive(Clone, Copy)]
enum ScanAt {
    Deposits(u128),
    Withdrawals(u128),
}

/// The connector's movements the ledger recorded within `days`: the open payments' from the
/// hot state, then the final ones' from the clearing accounts' chains. More than
/// `MOVEMENTS_MAX` is `too_many_movements` (reconciliation never gets a silently cut list). A
/// payment that changes meanwhile may or may not be listed, as if it had changed just after or
/// just before the answer, but never twice: the list is deduplicated by kind and reference.
async fn all_movements<C: Consensus>(
    state: &AppState<C>,
    connector: &str,
    days: MovementDays,
) -> Result<Vec<MovementOut>, ApiError> {
    let mut movements = Movements::default();
    let mut at = Some(ScanAt::Deposits(0));
    while let Some(scan) = at {
        let connector = connector.to_string();
        let (page, next) = state
            .read(move |view| {
                let ledger = view.ledger();
                movements_page(ledger, &connector, days, scan, MOVEMENTS_PAGE_RECORDS)
            })
            .await?;
        movements.add(page)?;
        at = next;
    }
    let name = connector.to_string();
    let accounts = state
        .read(move |view| clearing_accounts(view, &name))
        .await?;
    for account in accounts {
        walk_clearing_account(state, account, connector, days, &mut movements).await?;
    }
    Ok(movements.list)
}

/// The movements found so far, each once.
#[derive(Default)]
struct Movements {
    list: Vec<MovementOut>,
    seen: HashSet<(&'static str, String)>,
}

impl Movements {
    fn add(&mut self, found: Vec<MovementOut>) -> Result<(), ApiError> {
        for movement in found {
            if self
                .seen
                .insert((movement.kind, movement.reference.clone()))
            {
                self.list.push(movement);
            }
        }
        if self.list.len() > MOVEMENTS_MAX {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_movements",
                format!("more than {MOVEMENTS_MAX} movements: ask for fewer days"),
            ));
        }
        Ok(())
    }
}

/// The connector's clearing accounts (one per currency it moved money in).
fn clearing_accounts(view: &LedgerView<'_>, connector: &str) -> Vec<AccountId> {
    let ledger = view.ledger();
    let Some(number) = ledger
        .payment_connectors()
        .iter()
        .position(|c| c == connector)
    else {
        return Vec::new();
    };
    let accounts = ledger.totals().per_ledger.into_iter();
    accounts
        .map(|sums| clearing_account_id(number as u8, sums.ledger))
        .filter(|&id| view.account(id).is_some())
        .collect()
}

/// Transfers of a clearing account one read of the walk looks at (each may cost an index
/// probe and a record read, under the ledger's read lock).
const WALK_PAGE_TRANSFERS: usize = 1_024;

/// The final payments' movements within `days` from one clearing account, newest first, until
/// the walk reaches a transfer older than the first day. A movement's date is its transfer's
/// entry time, never later than the transfer itself, so nothing in `days` lies further back.
async fn walk_clearing_account<C: Consensus>(
    state: &AppState<C>,
    account: AccountId,
    connector: &str,
    days: MovementDays,
    movements: &mut Movements,
) -> Result<(), ApiError> {
    let mut cursor = None;
    loop {
        let (payments, next) = state
            .read(move |view| {
                let keep = |t: &Transfer| MovementDays::day_of(t.timestamp) >= days.from;
                view.archived_payments_along(account, WALK_PAGE_TRANSFERS, cursor, keep)
            })
            .await?
            .map_err(ApiError::from_read)?;
        let found = archived_movements(&payments, connector, days);
        movements.add(found)?;
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// The movements within `days` of final payments at `connector`.
fn archived_movements(
    payments: &[ArchivedPayment],
    connector: &str,
    days: MovementDays,
) -> Vec<MovementOut> {
    let mut found = Vec::new();
    for payment in payments {
        match payment {
            ArchivedPayment::Deposit(d) => deposit_movements(d, connector, days, &mut found),
            ArchivedPayment::Withdrawal(w) => found.extend(withdrawal_movement(w, connector, days)),
        }
    }
    found
}

/// One page of the scan: the movements it found and where the next page starts (None: done).
fn movements_page(
    ledger: &croupier_core::Ledger,
    connector: &str,
    days: MovementDays,
    at: ScanAt,
    page_records: usize,
) -> (Vec<MovementOut>, Option<ScanAt>) {
    let mut found = Vec::new();
    match at {
        ScanAt::Deposits(after) => {
            let page = ledger.deposits_after(after, page_records);
            for deposit in &page {
                deposit_movements(deposit, connector, days, &mut found);
            }
            let next = match page.last() {
                Some(last) if page.len() == page_records => ScanAt::Deposits(last.deposit_id),
                _ => ScanAt::Withdrawals(0),
            };
            (found, Some(next))
        }
        ScanAt::Withdrawals(after) => {
            let page = ledger.withdrawals_after(after, page_records);
            for withdrawal in &page {
                found.extend(withdrawal_movement(withdrawal, connector, days));
            }
            let next = page
                .last()
                .filter(|_| page.len() == page_records)
                .map(|last| ScanAt::Withdrawals(last.withdrawal_id));
            (found, next)
        }
    }
}

fn movement(
    reference: String,
    kind: &'static str,
    amount: u64,
    ledger: croupier_core::LedgerCode,
    state: &'static str,
    at_ns: u64,
) -> MovementOut {
    MovementOut {
        reference,
        kind,
        amount,
        ledger: ledger.to_string(),
        state,
        date: MovementDays::day_of(at_ns).to_string(),
    }
}

/// A settled (or refused: the money reached the bank) deposit's credit on the day it settled,
/// and its return's debit on the day the return was paid.
fn deposit_movements(
    d: &croupier_core::payments::DepositRecord,
    connector: &str,
    days: MovementDays,
    found: &mut Vec<MovementOut>,
) {
    use croupier_core::payments::DepositState;
    if d.connector != connector || !d.state.was_settled() {
        return;
    }
    // Recorded before version 11 kept the settlement's time: its last change is the best.
    let settled_at = match d.settled_at_ns {
        0 => d.updated_at_ns,
        at => at,
    };
    if days.holds(settled_at) {
        let id = d.deposit_id.to_string();
        let state = d.state.name();
        found.push(movement(
            id, "deposit", d.amount, d.ledger, state, settled_at,
        ));
    }
    if d.state == DepositState::Returned && days.holds(d.updated_at_ns) {
        let reference = crate::payments::returns::return_reference(d.deposit_id);
        let (kind, state) = ("deposit_return", d.state.name());
        found.push(movement(
            reference,
            kind,
            d.amount,
            d.ledger,
            state,
            d.updated_at_ns,
        ));
    }
}

/// A paid withdrawal's debit on the day it was paid, at the connector of its last attempt.
fn withdrawal_movement(
    w: &croupier_core::payments::WithdrawalRecord,
    connector: &str,
    days: MovementDays,
) -> Option<MovementOut> {
    use croupier_core::payments::WithdrawalState;
    let paid_here = w.state == WithdrawalState::Paid
        && w.attempts.last().is_some_and(|a| a.connector == connector)
        && days.holds(w.updated_at_ns);
    paid_here.then(|| {
        let id = w.withdrawal_id.to_string();
        let state = w.state.name();
        movement(id, "withdrawal", w.amount, w.ledger, state, w.updated_at_ns)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use croupier_core::compliance::{
        limit_slot, ComplianceCommand, LimitChange, LimitKind, LimitsRequest, Period, LIMIT_SLOTS,
    };
    use croupier_core::ids::player_id;
    use croupier_core::payments::{
        Payee, PayeeAccount, PaymentCommand as P, PaymentOutcome, WithdrawalDecision,
    };
    use croupier_core::players::NewPlayer;
    use croupier_core::{Command, CommandResult, LedgerCode, MemoryLedger};

    const SECOND_NS: u64 = 1_000_000_000;
    /// 2025-01-01 00:00 UTC.
    const NEW_YEAR_NS: u64 = 1_735_689_600 * SECOND_NS;

    fn eur() -> LedgerCode {
        LedgerCode::parse("EUR").unwrap()
    }

    fn payee() -> Payee {
        Payee {
            account: PayeeAccount::Iban("DE89370400440532013000".into()),
            name: "Alice Example".into(),
        }
    }

    fn apply(ledger: &mut MemoryLedger, command: Command) {
        let at = ledger.last_timestamp().max(NEW_YEAR_NS) + SECOND_NS;
        let result = ledger.apply(at, &[command]).pop();
        let ok = matches!(
            result,
            Some(CommandResult::Payment(PaymentOutcome::Ok))
                | Some(CommandResult::Player(_))
                | Some(CommandResult::Compliance(_))
        );
        assert!(ok, "{result:?}");
    }

    fn pay(ledger: &mut MemoryLedger, steps: impl IntoIterator<Item = P>) {
        steps
            .into_iter()
            .for_each(|step| apply(ledger, Command::Payment(step)));
    }

    fn deposit(id: u128, connector: &str) -> [P; 2] {
        let opened = P::OpenDeposit {
            deposit_id: id,
            player_id: player_id(0),
            ledger: eur(),
            amount: 1_000,
            connector: connector.into(),
        };
        let started = P::DepositStarted {
            deposit_id: id,
            consent_id: format!("consent-{id}"),
            authorisation_url: String::new(),
        };
        [opened, started]
    }

    /// On 2025-01-01 (UTC): deposits 1 to 5 settled at bank-a and 6 at bank-b, withdrawal 50
    /// paid at bank-a (all final: in history), and deposit 7 at bank-a settled but refused by
    /// the player's deposit limit (being returned: in the hot state).
    fn ledger_with_movements() -> MemoryLedger {
        let mut ledger = MemoryLedger::new();
        apply(
            &mut ledger,
            Command::CreatePlayer(NewPlayer {
                username: "alice".into(),
                password_hash: "$argon2id$v=19$x".into(),
                currencies: vec![eur()],
            }),
        );
        let mut money = [None; LIMIT_SLOTS];
        money[limit_slot(LimitKind::Deposit, Period::Day)] = Some(LimitChange::Set(6_000));
        let limits = LimitsRequest {
            player_id: player_id(0),
            ledger: eur(),
            money,
            session_minutes: None,
        };
        apply(
            &mut ledger,
            Command::Compliance(ComplianceCommand::SetLimits(limits)),
        );
        for id in 1..=7 {
            pay(
                &mut ledger,
                deposit(id, if id == 6 { "bank-b" } else { "bank-a" }),
            );
        }
        for deposit_id in 1..=7 {
            pay(&mut ledger, [P::SettleDeposit { deposit_id }]);
        }
        let withdrawal_id = 50;
        pay(
            &mut ledger,
            [
                P::RequestWithdrawal {
                    withdrawal_id,
                    player_id: player_id(0),
                    ledger: eur(),
                    amount: 700,
                    payee: payee(),
                },
                P::DecideWithdrawal {
                    withdrawal_id,
                    decision: WithdrawalDecision::Approve {
                        connector: "bank-a".into(),
                    },
                    reasons: vec![],
                },
                P::PayoutAccepted {
                    withdrawal_id,
                    attempt: 0,
                    payment_id: "pay-50".into(),
                },
                P::SettlePayout {
                    withdrawal_id,
                    attempt: 0,
                },
            ],
        );
        ledger
    }

    fn hot_scan(ledger: &MemoryLedger, days: MovementDays, page: usize, into: &mut Movements) {
        let mut at = Some(ScanAt::Deposits(0));
        while let Some(scan) = at {
            let (found, next) = movements_page(&ledger.ledger, "bank-a", days, scan, page);
            into.add(found).unwrap();
            at = next;
        }
    }

    fn walk(ledger: &MemoryLedger, days: MovementDays, page: usize, into: &mut Movements) {
        let account = clearing_account_id(0, eur());
        let keep = |t: &Transfer| MovementDays::day_of(t.timestamp) >= days.from;
        let mut cursor = None;
        loop {
            let Ok((payments, next)) = croupier_core::reads::archived_payments_along(
                &ledger.ledger,
                &ledger.history,
                account,
                page,
                cursor,
                keep,
            );
            into.add(archived_movements(&payments, "bank-a", days))
                .unwrap();
            match next {
                Some(next) => cursor = Some(next),
                None => return,
            }
        }
    }

    fn listed(movements: Movements) -> Vec<String> {
        let mut listed: Vec<String> = movements
            .list
            .iter()
            .map(|m| format!("{} {}", m.kind, m.reference))
            .collect();
        listed.sort();
        listed
    }

    fn days(from: &str, to: &str) -> MovementDays {
        let day = |text| CivilDate::parse_iso(text).unwrap();
        MovementDays {
            from: day(from),
            to: day(to),
        }
    }

    #[test]
    fn movements_come_from_the_hot_state_and_the_clearing_chain_in_pages_with_no_gap_and_no_repeat()
    {
        let ledger = ledger_with_movements();
        assert!(
            ledger.ledger.deposit_record(1).is_none(),
            "final: in history"
        );
        let new_year = days("2025-01-01", "2025-01-01");
        let expected = [
            "deposit 1",
            "deposit 2",
            "deposit 3",
            "deposit 4",
            "deposit 5",
            "deposit 7",
            "withdrawal 50",
        ];
        for page in [1, 2, 5, 6, 4_096] {
            let mut movements = Movements::default();
            hot_scan(&ledger, new_year, page, &mut movements);
            walk(&ledger, new_year, page, &mut movements);
            assert_eq!(listed(movements), expected, "page {page}");
        }
        let mut later = Movements::default();
        let later_days = days("2025-01-02", "2025-12-31");
        hot_scan(&ledger, later_days, 2, &mut later);
        walk(&ledger, later_days, 2, &mut later);
        assert!(listed(later).is_empty(), "other days list nothing");
    }

    /// A refused deposit listed from the hot state, then returned and archived before the walk
    /// reaches it, is listed once (with its return).
    #[test]
    fn a_payment_archived_between_the_scan_and_the_walk_is_listed_once() {
        let mut ledger = ledger_with_movements();
        let new_year = days("2025-01-01", "2025-01-01");
        let mut movements = Movements::default();
        hot_scan(&ledger, new_year, 4_096, &mut movements);
        assert_eq!(listed(movements), ["deposit 7"]);
        let mut movements = Movements::default();
        hot_scan(&ledger, new_year, 4_096, &mut movements);
        pay(
            &mut ledger,
            [
                P::ReturnDeposit {
                    deposit_id: 7,
                    payee: payee(),
                },
                P::ReturnAccepted {
                    deposit_id: 7,
                    payment_id: "ret-7".into(),
                },
                P::SettleReturn { deposit_id: 7 },
            ],
        );
        assert!(
            ledger.ledger.deposit_record(7).is_none(),
            "returned: in history"
        );
        walk(&ledger, new_year, 3, &mut movements);
        let listed = listed(movements);
        assert_eq!(listed.iter().filter(|m| *m == "deposit 7").count(), 1);
        assert!(
            listed.contains(&"deposit_return R7".to_string()),
            "{listed:?}"
        );
    }
}
