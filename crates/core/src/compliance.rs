//! Responsible gambling and identity as ledger state: limits, time-outs, self-exclusion, KYC
//! levels and the per-jurisdiction policy that says which level each action needs.
//!
//! These live in the state machine, not beside it, so that the check and the money move in the
//! same apply: no race between two nodes, two requests or a request and a limit change can let
//! a bet or a deposit through past a limit. Every change is a command in the log, so a
//! regulator replaying the log sees why each refusal happened.
//!
//! The rules follow the UK Gambling Commission's remote technical standards (RTS 12 and 13):
//! - a limit that makes play *safer* (lower, or a new limit) applies at once; one that makes it
//!   less safe (higher, or removed) applies only after `COOLING_OFF_NS` (24 hours), and until
//!   then the old limit holds and the change is shown as pending;
//! - a time-out lasts 1 day to 6 weeks and a self-exclusion 6 months to 5 years; neither can be
//!   lifted early, and a new request can only make them end later.
//!
//! Periods are calendar periods in UTC on the ledger's clock (the log's time): the day, the
//! ISO week (Monday to Sunday) and the calendar month. Spending is counted per player and
//! currency whether or not a limit is set, so a limit set at noon counts the morning's play.
//! The loss of a period is its stakes minus what it paid back (wins and refunds).
//!
//! Identity: the node verifies an attestation (signature, issuer, expiry, age) before it
//! proposes anything, like it hashes passwords before proposing; the log carries only the
//! verified claims a check needs (`IdentityRecord`) and the attestation's SHA-256.

use std::fmt;

use crate::ids::LedgerCode;
use crate::players::PlayerId;

pub const NANOS_PER_DAY: u64 = 86_400 * 1_000_000_000;
/// How long a less safe limit change waits (UKGC RTS 12: "a cooling-off period of 24 hours").
pub const COOLING_OFF_NS: u64 = NANOS_PER_DAY;
pub const TIME_OUT_DAYS_MIN: u16 = 1;
pub const TIME_OUT_DAYS_MAX: u16 = 42;
pub const SELF_EXCLUSION_DAYS_MIN: u16 = 182;
pub const SELF_EXCLUSION_DAYS_MAX: u16 = 1826;
pub const SESSION_MINUTES_MAX: u64 = 24 * 60;
/// Reality-check intervals a player may choose: every minute to once a day.
pub const REALITY_CHECK_MINUTES_MAX: u64 = 24 * 60;
pub const NANOS_PER_MINUTE: u64 = 60 * 1_000_000_000;
/// Bounds on what an identity record may carry (the codec refuses longer text).
pub const ISSUER_LEN_MAX: usize = 256;
pub const NAME_LEN_MAX: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum KycLevel {
    #[default]
    None,
    /// An identity attestation from a trusted issuer was verified.
    Basic,
    /// Source of funds reviewed by an operator.
    Enhanced,
}

impl KycLevel {
    pub const ALL: [KycLevel; 3] = [KycLevel::None, KycLevel::Basic, KycLevel::Enhanced];

    pub fn name(self) -> &'static str {
        match self {
            KycLevel::None => "none",
            KycLevel::Basic => "basic",
            KycLevel::Enhanced => "enhanced",
        }
    }

    pub fn parse(text: &str) -> Option<KycLevel> {
        KycLevel::ALL.into_iter().find(|level| level.name() == text)
    }

    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(value: u8) -> Option<KycLevel> {
        KycLevel::ALL.get(usize::from(value)).copied()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LimitKind {
    Deposit,
    Loss,
    Wager,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl LimitKind {
    pub const ALL: [LimitKind; 3] = [LimitKind::Deposit, LimitKind::Loss, LimitKind::Wager];

    pub fn name(self) -> &'static str {
        match self {
            LimitKind::Deposit => "deposit",
            LimitKind::Loss => "loss",
            LimitKind::Wager => "wager",
        }
    }
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The number of the period holding `time_ns` (days, weeks or months since 1970).
    pub fn index_at(self, time_ns: u64) -> u32 {
        let day = time_ns / NANOS_PER_DAY;
        let index = match self {
            Period::Day => day,
            // 1970-01-01 was a Thursday: shifting by 3 days makes weeks start on Monday.
            Period::Week => (day + 3) / 7,
            Period::Month => {
                let (year, month, _) = civil_from_days(day as i64);
                ((year - 1970) * 12 + i64::from(month) - 1) as u64
            }
        };
        u32::try_from(index).expect("ledger time is before year 10,000")
    }
}

/// A money limit's place in a wallet's table: kind × period.
pub const LIMIT_SLOTS: usize = 9;

pub fn limit_slot(kind: LimitKind, period: Period) -> usize {
    kind as usize * 3 + period as usize
}

/// The Gregorian date (year, month 1–12, day 1–31) of a day number since 1970-01-01.
/// Hand-written (Howard Hinnant's `civil_from_days`) because the state machine must not read a
/// clock or a time zone database, and this is eleven lines of integer arithmetic.
pub fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u8;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u8;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number since 1970-01-01 of a Gregorian date (the inverse of `civil_from_days`;
/// Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * shifted_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The day number of an ISO date `YYYY-MM-DD` (a real calendar date), or None.
pub fn parse_iso_date_days(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10 && bytes[4] == b'-' && bytes[7] == b'-';
    let year: i64 = text.get(0..4)?.parse().ok()?;
    let month: u8 = text.get(5..7)?.parse().ok()?;
    let day: u8 = text.get(8..10)?.parse().ok()?;
    let days = days_from_civil(year, month, day);
    (shaped && civil_from_days(days) == (year, month, day)).then_some(days)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_iso_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// One limit: the value in force (None: no limit) and a less safe change waiting for its
/// cooling-off to end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limit {
    pub current: Option<u64>,
    pub pending: Option<PendingLimit>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingLimit {
    /// None: the limit is being removed.
    pub value: Option<u64>,
    pub effective_at_ns: u64,
}

impl Limit {
    /// The limit as it stands at `now_ns` (a pending change whose time has come is in force).
    pub fn at(self, now_ns: u64) -> Limit {
        match self.pending {
            Some(pending) if pending.effective_at_ns <= now_ns => Limit {
                current: pending.value,
                pending: None,
            },
            _ => self,
        }
    }

    /// Applies a requested value (None: remove) at `now_ns`: safer at once, less safe after the
    /// cooling-off. Asking for the value in force cancels a pending change.
    pub fn request(self, value: Option<u64>, now_ns: u64) -> Limit {
        let limit = self.at(now_ns);
        let safer = match (value, limit.current) {
            (_, None) => true,
            (None, Some(_)) => false,
            (Some(new), Some(old)) => new <= old,
        };
        if safer {
            return Limit {
                current: value,
                pending: None,
            };
        }
        Limit {
            current: limit.current,
            pending: Some(PendingLimit {
                value,
                effective_at_ns: now_ns.saturating_add(COOLING_OFF_NS),
            }),
        }
    }
}

/// A player's spending in one period of one currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpendWindow {
    /// `Period::index_at` of the period these sums belong to.
    pub period_index: u32,
    pub deposited: u128,
    pub wagered: u128,
    /// Paid back to the player: wins and refunds.
    pub returned: u128,
}

impl SpendWindow {
    /// Net loss: stakes minus returns (never below zero).
    pub fn loss(&self) -> u128 {
        self.wagered.saturating_sub(self.returned)
    }
}

/// Stakes and returns of one currency in the player's current session (what a reality check
/// shows as the net position).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionSpend {
    /// The session these sums belong to (`PlayerCompliance::session_started_at_ns`).
    pub session_started_at_ns: u64,
    pub wagered: u128,
    pub returned: u128,
}

impl SessionSpend {
    /// Returns minus stakes: positive when the player is ahead.
    pub fn net(&self) -> i128 {
        // Both sums are at most u64::MAX per transfer times the transfers of one session:
        // far below i128::MAX.
        self.returned as i128 - self.wagered as i128
    }
}

/// Limits and spending of one player in one currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletCompliance {
    pub ledger: LedgerCode,
    /// By `limit_slot`.
    pub limits: [Limit; LIMIT_SLOTS],
    /// By `Period` (day, week, month).
    pub windows: [SpendWindow; 3],
    pub session: SessionSpend,
}

impl WalletCompliance {
    pub fn new(ledger: LedgerCode) -> Self {
        WalletCompliance {
            ledger,
            limits: [Limit::default(); LIMIT_SLOTS],
            windows: [SpendWindow::default(); 3],
            session: SessionSpend::default(),
        }
    }

    /// The sums of the session that started at `session_started_at_ns` (zero when the stored
    /// ones belong to an earlier session).
    pub fn session_at(&self, session_started_at_ns: u64) -> SessionSpend {
        match self.session.session_started_at_ns == session_started_at_ns {
            true => self.session,
            false => SessionSpend {
                session_started_at_ns,
                ..SessionSpend::default()
            },
        }
    }

    /// The sums of `period` at `now_ns` (zero when the stored window is an earlier period).
    pub fn window_at(&self, period: Period, now_ns: u64) -> SpendWindow {
        let index = period.index_at(now_ns);
        let window = self.windows[period as usize];
        if window.period_index == index {
            window
        } else {
            SpendWindow {
                period_index: index,
                ..SpendWindow::default()
            }
        }
    }
}

/// The verified claims the ledger keeps of an identity attestation. Personal data: `Debug`
/// shows none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityRecord {
    pub issuer: String,
    /// SHA-256 of the issuer and the subject: the same person verified on two accounts shows
    /// as the same value, without the ledger keeping the issuer's subject id.
    pub subject_sha256: [u8; 32],
    /// Kept for the national self-exclusion register's checks (name and birth date).
    pub name: String,
    /// Days since 1970-01-01, if the attestation carried a birth date.
    pub birth_date_days: Option<i32>,
    /// ISO 3166-1 alpha-2, uppercase: the jurisdiction whose policy applies.
    pub country: [u8; 2],
    pub expires_at_s: u64,
    pub attestation_sha256: [u8; 32],
}

impl fmt::Debug for IdentityRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityRecord")
            .field("issuer", &self.issuer)
            .field("country", &String::from_utf8_lossy(&self.country))
            .field("name", &"<redacted>")
            .field("birth_date_days", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl IdentityRecord {
    pub fn check(&self) -> bool {
        (1..=ISSUER_LEN_MAX).contains(&self.issuer.len())
            && self.name.len() <= NAME_LEN_MAX
            && self.country.iter().all(u8::is_ascii_uppercase)
    }
}

/// What a jurisdiction requires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KycRequirements {
    pub play: KycLevel,
    pub deposit: KycLevel,
    pub withdraw: KycLevel,
    /// Deposits of at least this amount (minor units; 0: no such rule) need `large_deposit`.
    pub large_deposit_min: u64,
    pub large_deposit: KycLevel,
}

/// Which KYC level each action needs, by the player's country (from their verified identity);
/// `default` for players without one and countries not listed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompliancePolicy {
    pub default: KycRequirements,
    /// Sorted by country, distinct.
    pub jurisdictions: Vec<([u8; 2], KycRequirements)>,
}

/// Most jurisdictions a policy may list.
pub const JURISDICTIONS_MAX: usize = 256;

impl CompliancePolicy {
    pub fn check(&self) -> bool {
        let sorted = self.jurisdictions.windows(2).all(|w| w[0].0 < w[1].0);
        let countries = self
            .jurisdictions
            .iter()
            .all(|(country, _)| country.iter().all(u8::is_ascii_uppercase));
        sorted && countries && self.jurisdictions.len() <= JURISDICTIONS_MAX
    }

    pub fn requirements(&self, country: Option<[u8; 2]>) -> KycRequirements {
        country
            .and_then(|country| {
                self.jurisdictions
                    .binary_search_by_key(&country, |(c, _)| *c)
                    .ok()
            })
            .map_or(self.default, |at| self.jurisdictions[at].1)
    }
}

/// Everything the ledger knows of one player's compliance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlayerCompliance {
    pub kyc_level: KycLevel,
    pub identity: Option<Box<IdentityRecord>>,
    /// 0: not self-excluded (or never was). Past values stay for the record.
    pub self_excluded_until_ns: u64,
    pub timed_out_until_ns: u64,
    /// Minutes of play per session (login).
    pub session_limit: Limit,
    /// When the player's current session began (their last login), 0 if never.
    pub session_started_at_ns: u64,
    /// One per currency the player has played or deposited in, or set a limit for.
    pub wallets: Vec<WalletCompliance>,
    /// Set by a case (`crate::cases`): no bets and no deposits until a decision clears it.
    pub frozen: bool,
    /// Set by a case: withdrawals wait for its decision.
    pub withdrawals_held: bool,
    /// Set by a case: deposits and withdrawals need KYC `enhanced` (source of funds).
    pub enhanced_kyc_required: bool,
    /// Minutes between reality checks (UKGC RTS 13B); a longer interval or none waits out
    /// the cooling-off like any less safe change.
    pub reality_check: Limit,
    /// When the player last acknowledged a reality check.
    pub reality_check_acknowledged_at_ns: u64,
    /// Digests of the identifiers the player was last seen with (for the AML scoring's
    /// shared-identifier facts).
    pub seen: SeenIdentifiers,
}

/// SHA-256 digests of identifiers a player was seen with, the latest of each kind: a device,
/// a payment instrument, a postal address. The node digests them (domain-separated) before
/// proposing; the ledger never holds the identifiers themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeenIdentifiers {
    pub device: Option<[u8; 32]>,
    pub instrument: Option<[u8; 32]>,
    pub address: Option<[u8; 32]>,
}

impl SeenIdentifiers {
    pub fn is_empty(&self) -> bool {
        self.device.is_none() && self.instrument.is_none() && self.address.is_none()
    }

    /// `newer`'s digests where it has them, ours elsewhere.
    pub fn updated_with(self, newer: SeenIdentifiers) -> SeenIdentifiers {
        SeenIdentifiers {
            device: newer.device.or(self.device),
            instrument: newer.instrument.or(self.instrument),
            address: newer.address.or(self.address),
        }
    }
}

impl PlayerCompliance {
    /// When the next reality check falls due (bets wait for its acknowledgement from then),
    /// if the player has an interval and a session: one interval after the later of the
    /// session's start and the last acknowledgement.
    pub fn reality_check_due_at(&self, now_ns: u64) -> Option<u64> {
        let minutes = self.reality_check.at(now_ns).current?;
        if self.session_started_at_ns == 0 {
            return None;
        }
        let since = self
            .session_started_at_ns
            .max(self.reality_check_acknowledged_at_ns);
        Some(since.saturating_add(minutes.saturating_mul(NANOS_PER_MINUTE)))
    }

    pub fn wallet(&self, ledger: LedgerCode) -> Option<&WalletCompliance> {
        self.wallets.iter().find(|wallet| wallet.ledger == ledger)
    }

    pub fn country(&self) -> Option<[u8; 2]> {
        self.identity.as_ref().map(|identity| identity.country)
    }
}

/// A requested change of one limit: a new value or its removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitChange {
    Set(u64),
    Remove,
}

impl LimitChange {
    pub fn value(self) -> Option<u64> {
        match self {
            LimitChange::Set(value) => Some(value),
            LimitChange::Remove => None,
        }
    }
}

/// A player's (or an operator's) request to change limits; absent entries stay as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitsRequest {
    pub player_id: PlayerId,
    pub ledger: LedgerCode,
    /// By `limit_slot`.
    pub money: [Option<LimitChange>; LIMIT_SLOTS],
    /// Minutes, 1 to `SESSION_MINUTES_MAX`.
    pub session_minutes: Option<LimitChange>,
}

impl LimitsRequest {
    pub fn check(&self) -> bool {
        let money = self.money.iter().flatten().all(|change| match change {
            LimitChange::Set(value) => *value > 0,
            LimitChange::Remove => true,
        });
        let session = match self.session_minutes {
            Some(LimitChange::Set(minutes)) => (1..=SESSION_MINUTES_MAX).contains(&minutes),
            _ => true,
        };
        money && session
    }
}

/// Who asked for a self-exclusion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExclusionSource {
    Player,
    Operator,
    /// A positive match in the national self-exclusion register.
    Register,
}

/// Money in: a credit of the player's wallet from an operator or payment clearing account,
/// checked against the player's deposit limits and KYC in the same apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deposit {
    /// The transfer's id: a retry answers the original deposit.
    pub deposit_id: u128,
    pub player_id: PlayerId,
    pub ledger: LedgerCode,
    pub amount: u64,
    pub source_account_id: u128,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ComplianceCommand {
    SetLimits(LimitsRequest),
    SelfExclude {
        player_id: PlayerId,
        days: u16,
        source: ExclusionSource,
    },
    /// Always refused while the exclusion runs; logged so the attempt is on the record.
    LiftSelfExclusion {
        player_id: PlayerId,
    },
    TimeOut {
        player_id: PlayerId,
        days: u16,
    },
    /// A verified attestation: the player becomes at least `basic`.
    RecordIdentity {
        player_id: PlayerId,
        identity: Box<IdentityRecord>,
    },
    /// An operator's decision (enhanced after a source-of-funds review, or a downgrade).
    SetKycLevel {
        player_id: PlayerId,
        level: KycLevel,
    },
    SetPolicy(CompliancePolicy),
    Deposit(Deposit),
    /// The AML case queue (`crate::cases`).
    Case(crate::cases::CaseCommand),
    /// Sets (or removes) the player's reality-check interval in minutes.
    SetRealityCheck {
        player_id: PlayerId,
        minutes: LimitChange,
    },
    /// The player saw the reality check: play goes on for another interval.
    AcknowledgeRealityCheck {
        player_id: PlayerId,
    },
    /// The player was seen with these identifiers (at a login, a deposit, an identity check).
    ObserveIdentifiers {
        player_id: PlayerId,
        seen: SeenIdentifiers,
    },
}

impl ComplianceCommand {
    /// The player the command is about (None for the policy).
    pub fn player_id(&self) -> Option<PlayerId> {
        match self {
            ComplianceCommand::SetLimits(request) => Some(request.player_id),
            ComplianceCommand::SelfExclude { player_id, .. }
            | ComplianceCommand::LiftSelfExclusion { player_id }
            | ComplianceCommand::TimeOut { player_id, .. }
            | ComplianceCommand::RecordIdentity { player_id, .. }
            | ComplianceCommand::SetKycLevel { player_id, .. }
            | ComplianceCommand::SetRealityCheck { player_id, .. }
            | ComplianceCommand::AcknowledgeRealityCheck { player_id }
            | ComplianceCommand::ObserveIdentifiers { player_id, .. } => Some(*player_id),
            ComplianceCommand::Deposit(deposit) => Some(deposit.player_id),
            ComplianceCommand::Case(crate::cases::CaseCommand::Open(case)) => Some(case.player_id),
            ComplianceCommand::SetPolicy(_) | ComplianceCommand::Case(_) => None,
        }
    }

    /// Whether the command is well formed (the API checks before proposing; the decoder too).
    pub fn check(&self) -> bool {
        match self {
            ComplianceCommand::SetLimits(request) => request.check(),
            // The register's own term decides how long its matches last (any length up to
            // the longest); a player or an operator asks for 6 months to 5 years.
            ComplianceCommand::SelfExclude {
                days,
                source: ExclusionSource::Register,
                ..
            } => (1..=SELF_EXCLUSION_DAYS_MAX).contains(days),
            ComplianceCommand::SelfExclude { days, .. } => {
                (SELF_EXCLUSION_DAYS_MIN..=SELF_EXCLUSION_DAYS_MAX).contains(days)
            }
            ComplianceCommand::TimeOut { days, .. } => {
                (TIME_OUT_DAYS_MIN..=TIME_OUT_DAYS_MAX).contains(days)
            }
            ComplianceCommand::RecordIdentity { identity, .. } => identity.check(),
            ComplianceCommand::SetPolicy(policy) => policy.check(),
            ComplianceCommand::Case(case) => case.check(),
            ComplianceCommand::SetRealityCheck { minutes, .. } => match minutes {
                LimitChange::Set(minutes) => (1..=REALITY_CHECK_MINUTES_MAX).contains(minutes),
                LimitChange::Remove => true,
            },
            ComplianceCommand::ObserveIdentifiers { seen, .. } => !seen.is_empty(),
            ComplianceCommand::LiftSelfExclusion { .. }
            | ComplianceCommand::SetKycLevel { .. }
            | ComplianceCommand::AcknowledgeRealityCheck { .. }
            | ComplianceCommand::Deposit(_) => true,
        }
    }
}

/// Why a bet or a deposit was refused by responsible-gambling rules or KYC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    SelfExcluded,
    TimedOut,
    KycRequired,
    SessionLimitReached,
    DepositLimitReached,
    LossLimitReached,
    WagerLimitReached,
    /// An AML case froze the player.
    AccountFrozen,
    /// A reality check is due: the player acknowledges it before betting again.
    RealityCheckDue,
}

impl Refusal {
    pub const ALL: [Refusal; 9] = [
        Refusal::SelfExcluded,
        Refusal::TimedOut,
        Refusal::KycRequired,
        Refusal::SessionLimitReached,
        Refusal::DepositLimitReached,
        Refusal::LossLimitReached,
        Refusal::WagerLimitReached,
        Refusal::AccountFrozen,
        Refusal::RealityCheckDue,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Refusal::SelfExcluded => "self_excluded",
            Refusal::TimedOut => "timed_out",
            Refusal::KycRequired => "kyc_required",
            Refusal::SessionLimitReached => "session_limit_reached",
            Refusal::DepositLimitReached => "deposit_limit_reached",
            Refusal::LossLimitReached => "loss_limit_reached",
            Refusal::WagerLimitReached => "wager_limit_reached",
            Refusal::AccountFrozen => "account_frozen",
            Refusal::RealityCheckDue => "reality_check_due",
        }
    }

    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(value: u8) -> Option<Refusal> {
        Refusal::ALL.get(usize::from(value)).copied()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComplianceOutcome {
    Ok,
    /// The deposit was credited (or had been: a retry). `balance` is the wallet's available
    /// balance now.
    Deposited {
        balance: u128,
    },
    Refused(Refusal),
    PlayerNotFound,
    NoWalletInCurrency,
    /// A lift of a self-exclusion that is still running.
    SelfExclusionActive,
    /// The deposit's transfer was refused by the ledger (source account missing, of another
    /// currency, out of funds, or the id used by another transfer).
    DepositRefused(crate::types::CreateTransferResult),
    CaseNotFound,
    /// The case has its decision: nothing more changes it.
    CaseClosed,
    /// The case id is taken by another player's case.
    CaseConflict,
}

impl ComplianceOutcome {
    pub fn code(self) -> &'static str {
        match self {
            ComplianceOutcome::Ok | ComplianceOutcome::Deposited { .. } => "ok",
            ComplianceOutcome::Refused(refusal) => refusal.code(),
            ComplianceOutcome::PlayerNotFound => "player_not_found",
            ComplianceOutcome::NoWalletInCurrency => "no_wallet_in_currency",
            ComplianceOutcome::SelfExclusionActive => "self_exclusion_active",
            ComplianceOutcome::DepositRefused(result) => result.code(),
            ComplianceOutcome::CaseNotFound => "case_not_found",
            ComplianceOutcome::CaseClosed => "case_closed",
            ComplianceOutcome::CaseConflict => "case_conflict",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = NANOS_PER_DAY;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_788), (2026, 12, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in [-800_000, -1, 0, 59, 11_016, 20_788, 2_000_000] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
        assert_eq!(parse_iso_date_days("1970-01-02"), Some(1));
        assert_eq!(format_iso_date(20_788), "2026-12-01");
        for bad in ["2026-02-30", "2026-2-3", "soon", "2026-12-01x"] {
            assert_eq!(parse_iso_date_days(bad), None, "{bad}");
        }
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-11-30 is a Monday (day 20,787); the Sunday before is in the previous week.
        assert_eq!(
            Period::Week.index_at(20_787 * DAY),
            Period::Week.index_at(20_793 * DAY)
        );
        assert_ne!(
            Period::Week.index_at(20_786 * DAY),
            Period::Week.index_at(20_787 * DAY)
        );
        assert_ne!(
            Period::Month.index_at(20_787 * DAY),
            Period::Month.index_at(20_789 * DAY)
        );
        assert_eq!(
            Period::Month.index_at(20_789 * DAY),
            (2026 - 1970) * 12 + 11
        );
    }

    #[test]
    fn a_lower_limit_applies_at_once_and_a_higher_one_after_the_cooling_off() {
        let now = 100 * DAY;
        let limit = Limit::default().request(Some(1_000), now);
        assert_eq!(limit.current, Some(1_000));
        let lower = limit.request(Some(500), now + 1);
        assert_eq!((lower.current, lower.pending), (Some(500), None));
        let higher = lower.request(Some(2_000), now + 2);
        assert_eq!(higher.current, Some(500));
        assert_eq!(higher.at(now + 2 + COOLING_OFF_NS - 1).current, Some(500));
        assert_eq!(higher.at(now + 2 + COOLING_OFF_NS).current, Some(2_000));
        let removed = lower.request(None, now + 3);
        assert_eq!(removed.current, Some(500));
        assert_eq!(removed.at(now + 3 + COOLING_OFF_NS).current, None);
        // Asking again for the value in force cancels the pending increase.
        assert_eq!(higher.request(Some(500), now + 4).pending, None);
    }

    #[test]
    fn identity_debug_shows_no_personal_data() {
        let record = IdentityRecord {
            issuer: "https://idp.example".into(),
            subject_sha256: [1; 32],
            name: "Alice Example".into(),
            birth_date_days: Some(7_000),
            country: *b"GB",
            expires_at_s: 1,
            attestation_sha256: [2; 32],
        };
        let shown = format!("{record:?}");
        assert!(
            !shown.contains("Alice") && !shown.contains("7000"),
            "{shown}"
        );
    }
}
