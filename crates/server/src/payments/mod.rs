//! Money in and out through banks, driven from the node: the connectors the operator
//! configured (`croupier_payments::bank`), the router that picks one, and the driver that
//! carries each deposit and withdrawal through its life by proposing ledger commands
//! (`croupier_core::payments`) from what the banks answer.
//!
//! The outbox is the ledger: the driver scans the open deposits and withdrawals the ledger
//! holds (on the node serving writes only) and does the next step of each; a request or a
//! bank's notification only makes that happen sooner. Every bank request carries an
//! idempotency key derived from the committed payment (and, for a payout, its attempt
//! number), so a step repeated after a crash or a leader change sends the same request again
//! and the bank answers the first one.

pub mod decide;
pub mod driver;
pub mod returns;
pub mod steps;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use croupier_payments::bank::{BankConnector, ConnectorConfig, Protocol, TlsClient};
use croupier_payments::connector::Party;
use croupier_payments::jws::SigningKey;
use croupier_payments::routing::{BreakerConfig, Cost, Payment, Route, Router, Rule};

/// One configured bank.
#[derive(Clone)]
pub struct ConnectorSpec {
    pub id: String,
    pub protocol: Protocol,
    pub base_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The operator's account there per currency; a currency not here is discovered from the
    /// bank's account list.
    pub operator_accounts: std::collections::BTreeMap<String, Party>,
    pub rule: Rule,
    pub cost: Cost,
    /// The bank's CA and the node's client certificate (an `https` base URL).
    pub tls: TlsClient,
}

// The client secret never reaches Debug output.
impl std::fmt::Debug for ConnectorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorSpec")
            .field("id", &self.id)
            .field("protocol", &self.protocol)
            .field("base_url", &self.base_url)
            .field("rule", &self.rule)
            .field("cost", &self.cost)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct PaymentsConfig {
    pub connectors: Vec<ConnectorSpec>,
    /// The node's base URL as the banks reach it (for their notifications); None: the node
    /// learns of changes by asking.
    pub public_url: Option<String>,
    /// How often the driver looks at the open payments.
    pub poll_interval_ms: u64,
    /// Each bank request's timeout; past it the outcome is unknown.
    pub request_timeout_ms: u64,
    /// Payments driven at once (each a task making bank requests).
    pub drivers_max: usize,
    /// Open payments the driver looks at per pass.
    pub scan_max: usize,
    pub breaker: BreakerConfig,
    /// Chance (parts per million) the router tries a connector other than the best.
    pub explore_ppm: u32,
    /// The node's request-signing key (OBIE's x-jws-signature); `croupier serve` keeps it in
    /// the data directory.
    pub signing_key: Option<Arc<SigningKey>>,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            connectors: Vec::new(),
            public_url: None,
            poll_interval_ms: 200,
            request_timeout_ms: 5_000,
            drivers_max: 2_048,
            scan_max: 4_096,
            breaker: BreakerConfig::default(),
            explore_ppm: 20_000,
            signing_key: None,
        }
    }
}

/// A deposit or a withdrawal: the driver's unit of work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    Deposit(u128),
    Withdrawal(u128),
}

/// When to look at a payment again: soon after a change, less often while nothing changes.
#[derive(Clone, Copy, Debug)]
struct Backoff {
    due: Instant,
    wait_ms: u64,
}

/// Longest wait between two looks at a payment that is not changing.
const BACKOFF_MS_MAX: u64 = 5_000;

/// The node's payments: connectors, router and the driver's bookkeeping.
pub struct Payments {
    connectors: BTreeMap<String, BankConnector>,
    router: Mutex<Router>,
    config: PaymentsConfig,
    started: Instant,
    /// Wakes the driver before its next pass (a new payment, a bank's notification).
    pub(crate) kick: tokio::sync::Notify,
    /// Payments a task is driving now (the scan skips them).
    driving: Mutex<HashSet<Work>>,
    drivers: Arc<tokio::sync::Semaphore>,
    backoff: Mutex<HashMap<Work, Backoff>>,
    /// OBIE deposits' payment ids once submitted (saves a resubmission per look; a new leader
    /// gets them back from the bank by resubmitting with the same key).
    deposit_payment_ids: Mutex<HashMap<u128, String>>,
    /// Payout attempts this process began and whose every send so far met a `Retryable`
    /// error (nothing reached the bank), with the Raft term this node led in when it created
    /// each: only these may fail over to another connector, and only by a command bound to
    /// that term (so a leader in between, which may have sent the attempt, fences it off). An
    /// attempt a previous leader (or this process before a restart) may have sent is not
    /// here, so it is resolved at its own connector, never paid twice.
    fresh_attempts: Mutex<HashMap<(u128, u8), u64>>,
    /// The bank's ids of each payment (payout payment ids, deposit consents and payments), so
    /// a notification wakes the one payment it names instead of every open one.
    bank_ids: Mutex<BankIds>,
    /// Payments a notification named while a task was driving them: that task looks again
    /// instead of waiting out its backoff.
    woken: Mutex<HashSet<Work>>,
}

/// (connector, the bank's id) → payment, and back (to forget a finished payment's ids).
#[derive(Default)]
struct BankIds {
    work_of: HashMap<(String, String), Work>,
    ids_of: HashMap<Work, Vec<(String, String)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    #[error("payments.connectors: {0}")]
    Connector(String),
    #[error("payments: connector ids must be distinct ({0} twice)")]
    DuplicateConnector(String),
    #[error("payments: connectors need the node's signing key")]
    NoSigningKey,
}

impl Payments {
    pub fn new(config: PaymentsConfig) -> Result<Payments, PaymentsError> {
        let key = config
            .signing_key
            .clone()
            .ok_or(PaymentsError::NoSigningKey)?;
        let mut connectors = BTreeMap::new();
        let mut router = Router::new(config.breaker, config.explore_ppm);
        for spec in &config.connectors {
            let connector = BankConnector::new(ConnectorConfig {
                id: spec.id.clone(),
                protocol: spec.protocol,
                base_url: spec.base_url.clone(),
                client_id: spec.client_id.clone(),
                client_secret: spec.client_secret.clone(),
                signing_key: Arc::clone(&key),
                operator_accounts: spec.operator_accounts.clone(),
                timeout_ms: config.request_timeout_ms,
                tls: spec.tls.clone(),
            })
            .map_err(|error| PaymentsError::Connector(format!("{}: {error}", spec.id)))?;
            if connectors.insert(spec.id.clone(), connector).is_some() {
                return Err(PaymentsError::DuplicateConnector(spec.id.clone()));
            }
            router.add(&spec.id, spec.rule.clone(), spec.cost);
        }
        Ok(Payments {
            connectors,
            router: Mutex::new(router),
            drivers: Arc::new(tokio::sync::Semaphore::new(config.drivers_max.max(1))),
            config,
            started: Instant::now(),
            kick: tokio::sync::Notify::new(),
            driving: Mutex::new(HashSet::new()),
            backoff: Mutex::new(HashMap::new()),
            deposit_payment_ids: Mutex::new(HashMap::new()),
            fresh_attempts: Mutex::new(HashMap::new()),
            bank_ids: Mutex::new(BankIds::default()),
            woken: Mutex::new(HashSet::new()),
        })
    }

    pub fn connector(&self, id: &str) -> Option<&BankConnector> {
        self.connectors.get(id)
    }

    pub fn connector_ids(&self) -> impl Iterator<Item = &str> {
        self.connectors.keys().map(String::as_str)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The best connector for `payment` other than the ones in `exclude`.
    pub fn route(&self, payment: &Payment<'_>, exclude: &[&str]) -> Option<Route> {
        // Exploration only needs to be unpredictable enough to spread load; 0 if the OS fails.
        let draw = getrandom::u32().unwrap_or(0);
        let router = self.router.lock().unwrap_or_else(PoisonError::into_inner);
        router.route(payment, exclude, self.now_ms(), draw)
    }

    /// How a request to `connector` went (for its success rate and its breaker).
    pub fn record(&self, connector: &str, answered: bool) {
        let now_ms = self.now_ms();
        let mut router = self.router.lock().unwrap_or_else(PoisonError::into_inner);
        router.record(connector, answered, now_ms);
    }

    /// Where the banks send notifications for `connector` (if the node has a public URL).
    pub fn callback_url(&self, connector: &str) -> Option<String> {
        let base = self.config.public_url.as_deref()?.trim_end_matches('/');
        Some(format!("{base}/v1/payments/notifications/{connector}"))
    }

    /// Claims `work` for one task; false if a task is driving it already.
    fn claim(&self, work: Work) -> bool {
        let mut driving = self.driving.lock().unwrap_or_else(PoisonError::into_inner);
        driving.insert(work)
    }

    fn release(&self, work: Work) {
        let mut driving = self.driving.lock().unwrap_or_else(PoisonError::into_inner);
        driving.remove(&work);
    }

    /// Whether a scan should look at `work` now.
    fn due(&self, work: Work, now: Instant) -> bool {
        let backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        backoff.get(&work).is_none_or(|b| now >= b.due)
    }

    /// Nothing changed: look again later (doubling, up to `BACKOFF_MS_MAX`).
    fn wait_longer(&self, work: Work) {
        let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        let first = self.config.poll_interval_ms.max(10);
        let wait_ms = backoff
            .get(&work)
            .map_or(first, |b| (b.wait_ms * 2).min(BACKOFF_MS_MAX));
        let due = Instant::now() + Duration::from_millis(wait_ms);
        backoff.insert(work, Backoff { due, wait_ms });
    }

    /// Something happened (a notification, a request): look at once.
    pub(crate) fn wake(&self, work: Option<Work>) {
        let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        match work {
            Some(work) => {
                backoff.remove(&work);
            }
            None => backoff.clear(),
        }
        drop(backoff);
        self.kick.notify_one();
    }

    fn forget(&self, work: Work) {
        let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        backoff.remove(&work);
        drop(backoff);
        let mut bank_ids = self.bank_ids.lock().unwrap_or_else(PoisonError::into_inner);
        for key in bank_ids.ids_of.remove(&work).unwrap_or_default() {
            bank_ids.work_of.remove(&key);
        }
        drop(bank_ids);
        if let Work::Withdrawal(id) = work {
            // Its attempts end with it (a decline before any send never met `attempt_sent`).
            let mut fresh = self
                .fresh_attempts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            fresh.retain(|&(withdrawal_id, _), _| withdrawal_id != id);
        }
        if let Work::Deposit(id) = work {
            let mut ids = self
                .deposit_payment_ids
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            ids.remove(&id);
        }
    }

    /// `bank_id` at `connector` is `work`'s (a payout's payment id, a deposit's consent or
    /// payment id): a notification naming it wakes `work`.
    fn remember_bank_id(&self, connector: &str, bank_id: &str, work: Work) {
        if bank_id.is_empty() {
            return;
        }
        let key = (connector.to_string(), bank_id.to_string());
        let mut bank_ids = self.bank_ids.lock().unwrap_or_else(PoisonError::into_inner);
        if bank_ids.work_of.insert(key.clone(), work).is_none() {
            bank_ids.ids_of.entry(work).or_default().push(key);
        }
    }

    /// The payment a notification from `connector` naming `bank_id` is about, if known here
    /// (after a restart or a leader change it may not be yet: the caller wakes every one).
    pub(crate) fn notified(&self, connector: &str, bank_id: &str) -> Option<Work> {
        let bank_ids = self.bank_ids.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (connector.to_string(), bank_id.to_string());
        bank_ids.work_of.get(&key).copied()
    }

    /// A notification named `work`: whoever drives it next looks at once.
    fn mark_woken(&self, work: Work) {
        let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        backoff.remove(&work);
        drop(backoff);
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        woken.insert(work);
    }

    /// Whether a notification named `work` since the last call (and clears it).
    fn take_woken(&self, work: Work) -> bool {
        let mut woken = self.woken.lock().unwrap_or_else(PoisonError::into_inner);
        woken.remove(&work)
    }

    /// This process, leading in `term`, just created payout attempt `attempt` (an approval,
    /// a fail-over).
    fn attempt_created(&self, withdrawal_id: u128, attempt: u8, term: u64) {
        let mut fresh = self
            .fresh_attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        fresh.insert((withdrawal_id, attempt), term);
    }

    /// The term the attempt was created in, if nothing of it can have reached its bank (see
    /// `fresh_attempts`).
    fn fresh_term(&self, withdrawal_id: u128, attempt: u8) -> Option<u64> {
        let fresh = self
            .fresh_attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        fresh.get(&(withdrawal_id, attempt)).copied()
    }

    /// This node stopped serving writes: another leader may now send any of these attempts,
    /// so none of them is fresh any more, even if this node leads again later.
    fn forget_fresh_attempts(&self) {
        let mut fresh = self
            .fresh_attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        fresh.clear();
    }

    /// A send of the attempt may have reached the bank (or did): no fail-over from now on.
    fn attempt_sent(&self, withdrawal_id: u128, attempt: u8) {
        let mut fresh = self
            .fresh_attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        fresh.remove(&(withdrawal_id, attempt));
    }

    fn deposit_payment_id(&self, id: u128) -> Option<String> {
        let ids = self
            .deposit_payment_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ids.get(&id).cloned()
    }

    fn remember_deposit_payment_id(&self, id: u128, payment_id: String) {
        let mut ids = self
            .deposit_payment_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ids.insert(id, payment_id);
    }
}

/// The idempotency key of a deposit's consent and of its payment submission.
pub fn deposit_key(deposit_id: u128, step: &str) -> String {
    format!("dep-{deposit_id:x}-{step}")
}

/// The idempotency key of a withdrawal's payout attempt: the same attempt always sends the
/// same key, a new attempt (another connector) a new one.
pub fn payout_key(withdrawal_id: u128, attempt: u8) -> String {
    format!("wd-{withdrawal_id:x}-{attempt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payments_without_connectors() -> Payments {
        let key = croupier_payments::jws::SigningKey::generate().unwrap();
        let config = PaymentsConfig {
            signing_key: Some(Arc::new(key)),
            ..PaymentsConfig::default()
        };
        Payments::new(config).unwrap()
    }

    /// Regression: an attempt a decline ended before any send stayed among the fresh
    /// attempts for as long as the process ran.
    #[test]
    fn a_finished_withdrawal_forgets_its_payout_attempts() {
        let payments = payments_without_connectors();
        payments.attempt_created(7, 0, 3);
        payments.attempt_created(7, 1, 3);
        payments.attempt_created(8, 0, 3);
        payments.forget(Work::Withdrawal(7));
        assert_eq!(payments.fresh_term(7, 0), None);
        assert_eq!(payments.fresh_term(7, 1), None);
        assert_eq!(
            payments.fresh_term(8, 0),
            Some(3),
            "another withdrawal's stays"
        );
    }

    /// Regression: a node that lost leadership kept its fresh attempts, so after leading
    /// again it could fail over an attempt the leader in between had sent to its bank.
    #[test]
    fn a_node_that_stops_serving_writes_forgets_every_fresh_attempt() {
        let payments = payments_without_connectors();
        payments.attempt_created(7, 0, 3);
        payments.attempt_created(8, 2, 4);
        payments.forget_fresh_attempts();
        assert_eq!(payments.fresh_term(7, 0), None);
        assert_eq!(payments.fresh_term(8, 2), None);
    }
}
