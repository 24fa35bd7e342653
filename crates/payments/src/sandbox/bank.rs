//! The bank itself: its state behind one async mutex, the journal every change goes through,
//! the operator's accounts, settlement timers and the expiry sweep.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Mutex};

use super::accounts::{derived_iban, derived_sort_code, Scheme};
use super::journal::Journal;
use super::notify::{self, Issuer, Note};
use super::state::{Account, Booked, ConsentStatus, Event, Order, PayStatus, Payment, State};
use super::util::{date_of_ms, now_ms, random_id, Dice};
use super::{Config, SandboxError};
use crate::jws::SigningKey;
use crate::money::from_bank_amount;

const KEY_FILE: &str = "bank-key.der";
/// How often consents and pay-ins past their authorisation time are expired.
const SWEEP_INTERVAL_MS: u64 = 500;
/// Bearer tokens kept at most: past it, expired ones go, then the oldest.
const TOKENS_MAX: usize = 10_000;
pub(crate) const TOKEN_TTL_S: u64 = 3_600;
pub(crate) const OPERATOR_NAME: &str = "Croupier Operator";
pub(crate) const CUSTOMER_NAME: &str = "Sandbox Customer";

pub(crate) struct Bank {
    pub config: Config,
    pub base_url: String,
    pub key: SigningKey,
    pub state: Mutex<State>,
    journal: Journal,
    dice: std::sync::Mutex<Dice>,
    notes: mpsc::Sender<Note>,
    tokens: std::sync::Mutex<HashMap<String, u64>>,
    pub down: AtomicBool,
    pub stopping: watch::Receiver<bool>,
}

/// The bank's key from `DIR/bank-key.der`, made (owner-only) on first start.
fn load_or_create_key(dir: &Path) -> Result<SigningKey, SandboxError> {
    let path = dir.join(KEY_FILE);
    match fs::read(&path) {
        Ok(der) => Ok(SigningKey::from_pkcs1_der(&der)?),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate()?;
            let der = key.to_pkcs1_der()?;
            let temporary = path.with_extension("der.tmp");
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temporary)
                .map_err(|e| SandboxError::io(&temporary, e))?;
            file.write_all(&der)
                .and_then(|()| file.sync_all())
                .and_then(|()| fs::rename(&temporary, &path))
                .map_err(|e| SandboxError::io(&path, e))?;
            Ok(key)
        }
        Err(error) => Err(SandboxError::io(&path, error)),
    }
}

impl Bank {
    pub(crate) async fn open(
        config: Config,
        base_url: String,
        stopping: watch::Receiver<bool>,
    ) -> Result<(Arc<Bank>, mpsc::Receiver<Note>), SandboxError> {
        fs::create_dir_all(&config.data_dir).map_err(|e| SandboxError::io(&config.data_dir, e))?;
        let key = load_or_create_key(&config.data_dir)?;
        let (journal, events) = Journal::open(&config.data_dir)?;
        let mut state = State::default();
        let replayed = events.len();
        for event in events {
            state.apply(event);
        }
        tracing::info!(events = replayed, kid = key.kid(), "journal replayed");
        let (notes, notes_rx) = mpsc::channel(config.notify_queue_max.max(1));
        let seed = config.seed.unwrap_or_else(Dice::os_seed);
        let bank = Arc::new(Bank {
            down: AtomicBool::new(config.down),
            dice: std::sync::Mutex::new(Dice::new(seed)),
            config,
            base_url,
            key,
            state: Mutex::new(state),
            journal,
            notes,
            tokens: std::sync::Mutex::new(HashMap::new()),
            stopping,
        });
        bank.open_operator_accounts().await?;
        Ok((bank, notes_rx))
    }

    /// The client's own EUR (IBAN) and GBP (sort code) accounts, at first start only.
    async fn open_operator_accounts(&self) -> Result<(), SandboxError> {
        let mut state = self.state.lock().await;
        let client = &self.config.client_id;
        let wanted = [
            (Scheme::Iban, derived_iban(client), "EUR"),
            (Scheme::SortCode, derived_sort_code(client), "GBP"),
        ];
        let mut events = Vec::new();
        for (scheme, key, currency) in wanted {
            if state.accounts.contains_key(&key) {
                continue;
            }
            let balance =
                from_bank_amount(&self.config.operator_balance, currency).ok_or_else(|| {
                    SandboxError::Config("--operator-balance is not an amount".into())
                })?;
            events.push(Event::Account(Account {
                key,
                scheme,
                resource_id: random_id(),
                name: OPERATOR_NAME.into(),
                currency: currency.into(),
                balance_minor: i128::from(balance),
                overdraft: false,
                own: true,
            }));
        }
        if !events.is_empty() {
            self.commit(&mut state, events).await?;
        }
        Ok(())
    }

    /// Records `events` durably, then applies them: nothing is answered that is not on disk.
    pub(crate) async fn commit(
        &self,
        state: &mut State,
        events: Vec<Event>,
    ) -> Result<(), SandboxError> {
        self.journal.append(&events).await?;
        for event in events {
            state.apply(event);
        }
        Ok(())
    }

    pub(crate) fn roll(&self, percent: u8) -> bool {
        let mut dice = self.dice.lock().unwrap_or_else(|p| p.into_inner());
        dice.roll(percent)
    }

    pub(crate) fn issue_token(&self) -> String {
        let token = random_id();
        let now = now_ms();
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= TOKENS_MAX {
            tokens.retain(|_, expires_ms| *expires_ms > now);
        }
        if tokens.len() >= TOKENS_MAX {
            let oldest = tokens
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(t, _)| t.clone());
            if let Some(oldest) = oldest {
                tokens.remove(&oldest);
            }
        }
        tokens.insert(token.clone(), now + TOKEN_TTL_S * 1000);
        token
    }

    pub(crate) fn token_valid(&self, token: &str) -> bool {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(token)
            .is_some_and(|expires_ms| *expires_ms > now_ms())
    }

    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// The timeout-after-accept fault: the work is done and recorded; the answer waits until
    /// the client gives up (the connection drops and this future with it) or the bank stops.
    pub(crate) async fn maybe_hold(&self) {
        if !self.roll(self.config.faults.timeout_after_accept_percent) {
            return;
        }
        tracing::info!("fault: holding an accepted request's answer");
        let mut stopping = self.stopping.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(self.config.hold_s)) => {}
            _ = stopping.wait_for(|stop| *stop) => {}
        }
    }

    /// Sends a notification through the queue, with the duplicate and out-of-order faults.
    pub(crate) fn enqueue(&self, mut note: Note) {
        let faults = &self.config.faults;
        if self.roll(faults.duplicate_notification_percent) {
            note.copies = 2;
        }
        if self.roll(faults.out_of_order_notification_percent) {
            // Late enough that the next status's notification (after settlement) goes first.
            note.delay_ms = self.config.settle_ms * 2 + 200;
        }
        if let Err(error) = self.notes.try_send(note) {
            tracing::warn!(%error, "notification queue full or closed: notification dropped");
        }
    }

    /// What the notifications are signed and addressed with.
    fn issuer(&self) -> Issuer<'_> {
        Issuer {
            base_url: &self.base_url,
            client_id: &self.config.client_id,
            key: &self.key,
        }
    }

    /// Tells the client about a payment's new status, where it asked to be told.
    pub(crate) fn notify_payment(&self, state: &State, payment: &Payment) {
        let note = match &payment.consent_id {
            Some(_) => state.callback_url.as_ref().and_then(|url| {
                notify::obie_note(&self.issuer(), url, &payment.id, "domestic-payment")
            }),
            None => payment
                .notification_uri
                .as_ref()
                .and_then(|url| notify::berlin_note(&self.issuer(), url, payment)),
        };
        if let Some(note) = note {
            self.enqueue(note);
        }
    }

    pub(crate) fn notify_consent(&self, state: &State, consent_id: &str) {
        let note = state.callback_url.as_ref().and_then(|url| {
            notify::obie_note(&self.issuer(), url, consent_id, "domestic-payment-consent")
        });
        if let Some(note) = note {
            self.enqueue(note);
        }
    }
}

/// Can `order`'s debtor pay it now? The debtor must be held, in the order's currency, and
/// have the money (or an overdraft).
pub(crate) fn funds_check(state: &State, order: &Order) -> Result<(), &'static str> {
    let Some(debtor) = order.debtor.as_ref().and_then(|d| state.accounts.get(d)) else {
        return Err("AC01");
    };
    if debtor.currency != order.currency {
        return Err("AC01");
    }
    if !debtor.overdraft && debtor.balance_minor < i128::from(order.amount_minor) {
        return Err("AM04");
    }
    Ok(())
}

impl Bank {
    /// Accepts an authorised payment (to `accepted`, its settlement due in `--settle-ms`) or
    /// rejects it: the error fault, or the debtor cannot pay.
    pub(crate) fn accept(&self, state: &State, payment: &mut Payment, accepted: PayStatus) {
        let now = now_ms();
        payment.updated_ms = now;
        let verdict = if self.roll(self.config.faults.error_percent) {
            Err("AM04")
        } else {
            funds_check(state, &payment.order)
        };
        match verdict {
            Ok(()) => {
                payment.status = accepted;
                payment.settle_at_ms = Some(now + self.config.settle_ms);
            }
            Err(reason) => {
                payment.status = PayStatus::Rejected;
                payment.reason = Some(reason.into());
            }
        }
    }

    /// Settles `id` at its due time.
    pub(crate) fn arm_settlement(self: &Arc<Self>, id: String, due_ms: u64) {
        let bank = Arc::clone(self);
        tokio::spawn(async move {
            let wait_ms = due_ms.saturating_sub(now_ms());
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            bank.settle(&id).await;
        });
    }

    /// After a restart: every payment still to settle gets its timer back (one due while the
    /// bank was down settles now).
    pub(crate) async fn rearm_settlements(self: &Arc<Self>) {
        let state = self.state.lock().await;
        for payment in state.payments.values() {
            if let (true, Some(due_ms)) = (payment.status.settling(), payment.settle_at_ms) {
                self.arm_settlement(payment.id.clone(), due_ms);
            }
        }
    }

    /// Moves the money: the debtor debited, the creditor credited if the bank holds it (else
    /// it went to another bank), an entry on each statement.
    async fn settle(self: &Arc<Self>, id: &str) {
        let mut state = self.state.lock().await;
        let Some(mut payment) = state.payments.get(id).cloned() else {
            return;
        };
        if !payment.status.settling() {
            return;
        }
        let now = now_ms();
        let mut events = Vec::new();
        payment.updated_ms = now;
        payment.settle_at_ms = None;
        match funds_check(&state, &payment.order) {
            Err(reason) => {
                payment.status = PayStatus::Rejected;
                payment.reason = Some(reason.into());
            }
            Ok(()) => {
                events = movements(&state, &payment, now);
                payment.status = PayStatus::Settled;
            }
        }
        events.push(Event::Payment(payment.clone()));
        if let Err(error) = self.commit(&mut state, events).await {
            tracing::error!(%error, "settlement not recorded; it is retried at the next start");
            return;
        }
        tracing::info!(payment = %payment.id, status = payment.status.berlin(), "settled");
        self.notify_payment(&state, &payment);
    }
}

/// The account and statement events of settling `payment`.
fn movements(state: &State, payment: &Payment, now: u64) -> Vec<Event> {
    let order = &payment.order;
    let amount = i128::from(order.amount_minor);
    let booking_date = date_of_ms(now);
    let mut events = Vec::new();
    let legs = [
        (order.debtor.as_deref(), -amount),
        (Some(order.creditor.as_str()), amount),
    ];
    for (key, delta) in legs {
        let Some(mut account) = key.and_then(|k| state.accounts.get(k)).cloned() else {
            continue; // the creditor is at another bank
        };
        account.balance_minor += delta;
        events.push(Event::Entry {
            account: account.key.clone(),
            entry: Booked {
                payment_id: payment.id.clone(),
                end_to_end_id: order.end_to_end_id.clone(),
                amount_minor: order.amount_minor,
                credit: delta > 0,
                booking_date: booking_date.clone(),
            },
        });
        events.push(Event::Account(account));
    }
    events
}

/// Every `SWEEP_INTERVAL_MS`, consents and pay-ins nobody authorised in time expire.
pub(crate) fn spawn_sweeper(bank: Arc<Bank>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(SWEEP_INTERVAL_MS));
        loop {
            tick.tick().await;
            bank.expire_due().await;
        }
    });
}

impl Bank {
    async fn expire_due(&self) {
        let now = now_ms();
        let mut state = self.state.lock().await;
        let mut events = Vec::new();
        let mut consents = Vec::new();
        let mut payments = Vec::new();
        for consent in state.consents.values() {
            if consent.status == ConsentStatus::AwaitingAuthorisation && consent.expires_ms <= now {
                let mut consent = consent.clone();
                consent.status = ConsentStatus::Rejected;
                consent.expired = true;
                consent.updated_ms = now;
                consents.push(consent.id.clone());
                events.push(Event::Consent(consent));
            }
        }
        for payment in state.payments.values() {
            if payment.status == PayStatus::Received && payment.expires_ms <= now {
                let mut payment = payment.clone();
                payment.status = PayStatus::Cancelled;
                payment.updated_ms = now;
                payments.push(payment.clone());
                events.push(Event::Payment(payment));
            }
        }
        if events.is_empty() {
            return;
        }
        if let Err(error) = self.commit(&mut state, events).await {
            tracing::error!(%error, "expiry not recorded; retried at the next sweep");
            return;
        }
        for id in consents {
            self.notify_consent(&state, &id);
        }
        for payment in payments {
            self.notify_payment(&state, &payment);
        }
    }
}

/// Are the order's accounts usable? A debtor it names must be held here, in the order's
/// currency; a creditor held here must be in that currency (one not held is at another bank).
pub(crate) fn check_parties(state: &State, order: &Order) -> Result<(), String> {
    if let Some(debtor) = &order.debtor {
        match state.accounts.get(debtor) {
            None => return Err("AC01: the debtor account is not held at this bank".into()),
            Some(a) if a.currency != order.currency => {
                return Err(format!("AC01: the debtor account is in {}", a.currency))
            }
            Some(_) => {}
        }
    }
    match state.accounts.get(&order.creditor) {
        Some(a) if a.currency != order.currency => {
            Err(format!("AC01: the creditor account is in {}", a.currency))
        }
        _ => Ok(()),
    }
}

/// Is the order's debtor one of the client's own accounts (so its payment is pre-authorised)?
pub(crate) fn debtor_is_own(state: &State, order: &Order) -> bool {
    let debtor = order.debtor.as_ref().and_then(|d| state.accounts.get(d));
    debtor.is_some_and(|a| a.own)
}
