//! The compliance part of the codec: command 14, result 7 and the checkpoint's compliance
//! section (version 8). Layouts are in the parent module's docs.

use super::{DecodeError, Reader, Writer};
use crate::cases::{
    ArchivedCase, Case, CaseAction, CaseCommand, CaseDecision, CaseNote, NewCase, NoteKind,
    ACTOR_LEN_MAX, NOTES_PER_CASE_MAX, NOTE_TEXT_LEN_MAX, REASONS_PER_CASE_MAX, REASON_LEN_MAX,
    RULESET_VERSION_LEN_MAX,
};
use crate::compliance::{
    ComplianceCommand, ComplianceOutcome, CompliancePolicy, Deposit, ExclusionSource,
    IdentityRecord, KycLevel, KycRequirements, Limit, LimitChange, LimitsRequest, PendingLimit,
    PlayerCompliance, Refusal, SeenIdentifiers, SessionSpend, SpendWindow, WalletCompliance,
    ISSUER_LEN_MAX, JURISDICTIONS_MAX, LIMIT_SLOTS, NAME_LEN_MAX,
};
use crate::players::CURRENCIES_PER_PLAYER_MAX;
use crate::types::CreateTransferResult;

pub(super) const TAG_COMPLIANCE: u8 = 14;
pub(super) const RESULT_TAG_COMPLIANCE: u8 = 7;

const SET_LIMITS: u8 = 1;
const SELF_EXCLUDE: u8 = 2;
const LIFT_SELF_EXCLUSION: u8 = 3;
const TIME_OUT: u8 = 4;
const RECORD_IDENTITY: u8 = 5;
const SET_KYC_LEVEL: u8 = 6;
const SET_POLICY: u8 = 7;
const DEPOSIT: u8 = 8;
const CASE: u8 = 9;
const SET_REALITY_CHECK: u8 = 10;
const ACKNOWLEDGE_REALITY_CHECK: u8 = 11;
const OBSERVE_IDENTIFIERS: u8 = 12;

/// Which identifier digests follow (`SeenIdentifiers`), in this order.
const SEEN_DEVICE: u8 = 1;
const SEEN_INSTRUMENT: u8 = 2;
const SEEN_ADDRESS: u8 = 4;

const CASE_OPEN: u8 = 1;
const CASE_ASSIGN: u8 = 2;
const CASE_NOTE: u8 = 3;
const CASE_DECIDE: u8 = 4;

/// A player's case flags in a checkpoint.
const FLAG_FROZEN: u8 = 1;
const FLAG_WITHDRAWALS_HELD: u8 = 2;
const FLAG_ENHANCED_KYC_REQUIRED: u8 = 4;

const OUTCOME_OK: u8 = 0;
const OUTCOME_DEPOSITED: u8 = 1;
const OUTCOME_REFUSED: u8 = 2;
const OUTCOME_PLAYER_NOT_FOUND: u8 = 3;
const OUTCOME_NO_WALLET: u8 = 4;
const OUTCOME_SELF_EXCLUSION_ACTIVE: u8 = 5;
const OUTCOME_DEPOSIT_REFUSED: u8 = 6;
const OUTCOME_CASE_NOT_FOUND: u8 = 7;
const OUTCOME_CASE_CLOSED: u8 = 8;
const OUTCOME_CASE_CONFLICT: u8 = 9;

/// A limit change: 0 absent, 1 set + u64, 2 remove.
const CHANGE_ABSENT: u8 = 0;
const CHANGE_SET: u8 = 1;
const CHANGE_REMOVE: u8 = 2;

const SOURCES: [ExclusionSource; 3] = [
    ExclusionSource::Player,
    ExclusionSource::Operator,
    ExclusionSource::Register,
];

impl Writer<'_> {
    pub(super) fn compliance_command(&mut self, command: &ComplianceCommand) {
        assert!(command.check(), "unchecked compliance command");
        self.u8(TAG_COMPLIANCE);
        match command {
            ComplianceCommand::SetLimits(request) => {
                self.u8(SET_LIMITS);
                self.u128(request.player_id);
                self.u64(request.ledger.to_u64());
                for change in &request.money {
                    self.limit_change(*change);
                }
                self.limit_change(request.session_minutes);
            }
            ComplianceCommand::SelfExclude {
                player_id,
                days,
                source,
            } => {
                self.u8(SELF_EXCLUDE);
                self.u128(*player_id);
                self.u16(*days);
                self.u8(SOURCES.iter().position(|s| s == source).expect("listed") as u8);
            }
            ComplianceCommand::LiftSelfExclusion { player_id } => {
                self.u8(LIFT_SELF_EXCLUSION);
                self.u128(*player_id);
            }
            ComplianceCommand::TimeOut { player_id, days } => {
                self.u8(TIME_OUT);
                self.u128(*player_id);
                self.u16(*days);
            }
            ComplianceCommand::RecordIdentity {
                player_id,
                identity,
            } => {
                self.u8(RECORD_IDENTITY);
                self.u128(*player_id);
                self.identity(identity);
            }
            ComplianceCommand::SetKycLevel { player_id, level } => {
                self.u8(SET_KYC_LEVEL);
                self.u128(*player_id);
                self.u8(level.to_u8());
            }
            ComplianceCommand::SetPolicy(policy) => {
                self.u8(SET_POLICY);
                self.policy(policy);
            }
            ComplianceCommand::Case(case) => {
                self.u8(CASE);
                self.case_command(case);
            }
            ComplianceCommand::Deposit(deposit) => {
                self.u8(DEPOSIT);
                self.u128(deposit.deposit_id);
                self.u128(deposit.player_id);
                self.u64(deposit.ledger.to_u64());
                self.u64(deposit.amount);
                self.u128(deposit.source_account_id);
            }
            ComplianceCommand::SetRealityCheck { player_id, minutes } => {
                self.u8(SET_REALITY_CHECK);
                self.u128(*player_id);
                self.limit_change(Some(*minutes));
            }
            ComplianceCommand::AcknowledgeRealityCheck { player_id } => {
                self.u8(ACKNOWLEDGE_REALITY_CHECK);
                self.u128(*player_id);
            }
            ComplianceCommand::ObserveIdentifiers { player_id, seen } => {
                self.u8(OBSERVE_IDENTIFIERS);
                self.u128(*player_id);
                self.seen(seen);
            }
        }
    }

    /// u8 mask (1 device, 2 instrument, 4 address), then the present digests in that order.
    fn seen(&mut self, seen: &SeenIdentifiers) {
        let digests = [
            (seen.device, SEEN_DEVICE),
            (seen.instrument, SEEN_INSTRUMENT),
            (seen.address, SEEN_ADDRESS),
        ];
        self.u8(digests
            .iter()
            .filter(|(digest, _)| digest.is_some())
            .map(|(_, bit)| bit)
            .sum());
        for digest in digests.iter().filter_map(|(digest, _)| digest.as_ref()) {
            self.0.extend_from_slice(digest);
        }
    }

    fn limit_change(&mut self, change: Option<LimitChange>) {
        match change {
            None => self.u8(CHANGE_ABSENT),
            Some(LimitChange::Set(value)) => {
                self.u8(CHANGE_SET);
                self.u64(value);
            }
            Some(LimitChange::Remove) => self.u8(CHANGE_REMOVE),
        }
    }

    pub(super) fn optional_text(&mut self, text: &str) {
        self.u16(u16::try_from(text.len()).expect("short text"));
        self.0.extend_from_slice(text.as_bytes());
    }

    fn identity(&mut self, identity: &IdentityRecord) {
        self.optional_text(&identity.issuer);
        self.0.extend_from_slice(&identity.subject_sha256);
        self.optional_text(&identity.name);
        match identity.birth_date_days {
            Some(days) => {
                self.u8(1);
                self.u32(days as u32);
            }
            None => self.u8(0),
        }
        self.0.extend_from_slice(&identity.country);
        self.u64(identity.expires_at_s);
        self.0.extend_from_slice(&identity.attestation_sha256);
    }

    fn requirements(&mut self, required: &KycRequirements) {
        self.u8(required.play.to_u8());
        self.u8(required.deposit.to_u8());
        self.u8(required.withdraw.to_u8());
        self.u64(required.large_deposit_min);
        self.u8(required.large_deposit.to_u8());
    }

    fn policy(&mut self, policy: &CompliancePolicy) {
        self.requirements(&policy.default);
        self.u16(policy.jurisdictions.len() as u16);
        for (country, required) in &policy.jurisdictions {
            self.0.extend_from_slice(country);
            self.requirements(required);
        }
    }

    pub(super) fn compliance_outcome(&mut self, outcome: &ComplianceOutcome) {
        match *outcome {
            ComplianceOutcome::Ok => self.u8(OUTCOME_OK),
            ComplianceOutcome::Deposited { balance } => {
                self.u8(OUTCOME_DEPOSITED);
                self.u128(balance);
            }
            ComplianceOutcome::Refused(refusal) => {
                self.u8(OUTCOME_REFUSED);
                self.u8(refusal.to_u8());
            }
            ComplianceOutcome::PlayerNotFound => self.u8(OUTCOME_PLAYER_NOT_FOUND),
            ComplianceOutcome::NoWalletInCurrency => self.u8(OUTCOME_NO_WALLET),
            ComplianceOutcome::SelfExclusionActive => self.u8(OUTCOME_SELF_EXCLUSION_ACTIVE),
            ComplianceOutcome::DepositRefused(result) => {
                self.u8(OUTCOME_DEPOSIT_REFUSED);
                self.u8(result.to_u8());
            }
            ComplianceOutcome::CaseNotFound => self.u8(OUTCOME_CASE_NOT_FOUND),
            ComplianceOutcome::CaseClosed => self.u8(OUTCOME_CASE_CLOSED),
            ComplianceOutcome::CaseConflict => self.u8(OUTCOME_CASE_CONFLICT),
        }
    }

    fn limit(&mut self, limit: &Limit) {
        self.optional_u64(limit.current);
        match limit.pending {
            None => self.u8(0),
            Some(pending) => {
                self.u8(1);
                self.optional_u64(pending.value);
                self.u64(pending.effective_at_ns);
            }
        }
    }

    fn optional_u64(&mut self, value: Option<u64>) {
        match value {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                self.u64(value);
            }
        }
    }

    /// One player's state in the checkpoint's compliance section (which holds the policy, a
    /// u64 count, then every player's state in registration order).
    pub(super) fn checkpoint_player_compliance(&mut self, player: &PlayerCompliance) {
        self.u8(player.kyc_level.to_u8());
        match &player.identity {
            None => self.u8(0),
            Some(identity) => {
                self.u8(1);
                self.identity(identity);
            }
        }
        self.u64(player.self_excluded_until_ns);
        self.u64(player.timed_out_until_ns);
        self.limit(&player.session_limit);
        self.u64(player.session_started_at_ns);
        let flags = [
            (player.frozen, FLAG_FROZEN),
            (player.withdrawals_held, FLAG_WITHDRAWALS_HELD),
            (player.enhanced_kyc_required, FLAG_ENHANCED_KYC_REQUIRED),
        ];
        self.u8(flags
            .iter()
            .filter(|(set, _)| *set)
            .map(|(_, bit)| bit)
            .sum());
        self.limit(&player.reality_check);
        self.u64(player.reality_check_acknowledged_at_ns);
        self.seen(&player.seen);
        self.u8(player.wallets.len() as u8);
        for wallet in &player.wallets {
            self.u64(wallet.ledger.to_u64());
            wallet.limits.iter().for_each(|limit| self.limit(limit));
            for window in &wallet.windows {
                self.u32(window.period_index);
                self.u128(window.deposited);
                self.u128(window.wagered);
                self.u128(window.returned);
            }
            self.u64(wallet.session.session_started_at_ns);
            self.u128(wallet.session.wagered);
            self.u128(wallet.session.returned);
        }
    }

    pub(super) fn checkpoint_policy(&mut self, policy: &CompliancePolicy) {
        self.policy(policy);
    }
}

impl Reader<'_> {
    pub(super) fn compliance_command(&mut self) -> Result<ComplianceCommand, DecodeError> {
        let offset = self.offset;
        let command = match self.u8()? {
            SET_LIMITS => ComplianceCommand::SetLimits(self.limits_request()?),
            SELF_EXCLUDE => {
                let (player_id, days) = (self.u128()?, self.u16()?);
                let source_offset = self.offset;
                let source = *SOURCES
                    .get(usize::from(self.u8()?))
                    .ok_or_else(|| self.invalid("exclusion source", source_offset))?;
                ComplianceCommand::SelfExclude {
                    player_id,
                    days,
                    source,
                }
            }
            LIFT_SELF_EXCLUSION => ComplianceCommand::LiftSelfExclusion {
                player_id: self.u128()?,
            },
            TIME_OUT => ComplianceCommand::TimeOut {
                player_id: self.u128()?,
                days: self.u16()?,
            },
            RECORD_IDENTITY => ComplianceCommand::RecordIdentity {
                player_id: self.u128()?,
                identity: Box::new(self.identity()?),
            },
            SET_KYC_LEVEL => ComplianceCommand::SetKycLevel {
                player_id: self.u128()?,
                level: self.kyc_level()?,
            },
            SET_POLICY => ComplianceCommand::SetPolicy(self.policy()?),
            CASE => ComplianceCommand::Case(self.case_command()?),
            DEPOSIT => ComplianceCommand::Deposit(Deposit {
                deposit_id: self.u128()?,
                player_id: self.u128()?,
                ledger: self.ledger()?,
                amount: self.u64()?,
                source_account_id: self.u128()?,
            }),
            SET_REALITY_CHECK => ComplianceCommand::SetRealityCheck {
                player_id: self.u128()?,
                minutes: self
                    .limit_change()?
                    .ok_or_else(|| self.invalid("reality check interval", offset))?,
            },
            ACKNOWLEDGE_REALITY_CHECK => ComplianceCommand::AcknowledgeRealityCheck {
                player_id: self.u128()?,
            },
            OBSERVE_IDENTIFIERS => ComplianceCommand::ObserveIdentifiers {
                player_id: self.u128()?,
                seen: self.seen()?,
            },
            _ => return Err(self.invalid("compliance command", offset)),
        };
        if !command.check() {
            return Err(self.invalid("compliance command", offset));
        }
        Ok(command)
    }

    fn limits_request(&mut self) -> Result<LimitsRequest, DecodeError> {
        let player_id = self.u128()?;
        let ledger = self.ledger()?;
        let mut money = [None; LIMIT_SLOTS];
        for change in &mut money {
            *change = self.limit_change()?;
        }
        Ok(LimitsRequest {
            player_id,
            ledger,
            money,
            session_minutes: self.limit_change()?,
        })
    }

    fn limit_change(&mut self) -> Result<Option<LimitChange>, DecodeError> {
        let offset = self.offset;
        match self.u8()? {
            CHANGE_ABSENT => Ok(None),
            CHANGE_SET => Ok(Some(LimitChange::Set(self.u64()?))),
            CHANGE_REMOVE => Ok(Some(LimitChange::Remove)),
            _ => Err(self.invalid("limit change", offset)),
        }
    }

    fn kyc_level(&mut self) -> Result<KycLevel, DecodeError> {
        let offset = self.offset;
        KycLevel::from_u8(self.u8()?).ok_or_else(|| self.invalid("kyc level", offset))
    }

    pub(super) fn optional_text(&mut self, len_max: usize) -> Result<String, DecodeError> {
        let offset = self.offset;
        let len = usize::from(self.u16()?);
        let bytes = self.slice(len)?;
        match std::str::from_utf8(bytes) {
            Ok(text) if len <= len_max => Ok(text.to_owned()),
            _ => Err(self.invalid("text", offset)),
        }
    }

    pub(super) fn present(&mut self) -> Result<bool, DecodeError> {
        let offset = self.offset;
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.invalid("presence flag", offset)),
        }
    }

    fn identity(&mut self) -> Result<IdentityRecord, DecodeError> {
        let offset = self.offset;
        let record = IdentityRecord {
            issuer: self.optional_text(ISSUER_LEN_MAX)?,
            subject_sha256: self.take::<32>()?,
            name: self.optional_text(NAME_LEN_MAX)?,
            birth_date_days: match self.present()? {
                true => Some(self.u32()? as i32),
                false => None,
            },
            country: self.take::<2>()?,
            expires_at_s: self.u64()?,
            attestation_sha256: self.take::<32>()?,
        };
        match record.check() {
            true => Ok(record),
            false => Err(self.invalid("identity", offset)),
        }
    }

    fn requirements(&mut self) -> Result<KycRequirements, DecodeError> {
        Ok(KycRequirements {
            play: self.kyc_level()?,
            deposit: self.kyc_level()?,
            withdraw: self.kyc_level()?,
            large_deposit_min: self.u64()?,
            large_deposit: self.kyc_level()?,
        })
    }

    fn policy(&mut self) -> Result<CompliancePolicy, DecodeError> {
        const JURISDICTION_BYTES: usize = 2 + 3 + 8 + 1;
        let default = self.requirements()?;
        let offset = self.offset;
        let count = usize::from(self.u16()?);
        if count > JURISDICTIONS_MAX || count * JURISDICTION_BYTES > self.remaining() {
            return Err(self.invalid("jurisdiction count", offset));
        }
        let mut jurisdictions = Vec::with_capacity(count);
        for _ in 0..count {
            jurisdictions.push((self.take::<2>()?, self.requirements()?));
        }
        let policy = CompliancePolicy {
            default,
            jurisdictions,
        };
        match policy.check() {
            true => Ok(policy),
            false => Err(self.invalid("compliance policy", offset)),
        }
    }

    pub(super) fn compliance_outcome(&mut self) -> Result<ComplianceOutcome, DecodeError> {
        let offset = self.offset;
        Ok(match self.u8()? {
            OUTCOME_OK => ComplianceOutcome::Ok,
            OUTCOME_DEPOSITED => ComplianceOutcome::Deposited {
                balance: self.u128()?,
            },
            OUTCOME_REFUSED => ComplianceOutcome::Refused(
                Refusal::from_u8(self.u8()?).ok_or_else(|| self.invalid("refusal", offset))?,
            ),
            OUTCOME_PLAYER_NOT_FOUND => ComplianceOutcome::PlayerNotFound,
            OUTCOME_NO_WALLET => ComplianceOutcome::NoWalletInCurrency,
            OUTCOME_SELF_EXCLUSION_ACTIVE => ComplianceOutcome::SelfExclusionActive,
            OUTCOME_CASE_NOT_FOUND => ComplianceOutcome::CaseNotFound,
            OUTCOME_CASE_CLOSED => ComplianceOutcome::CaseClosed,
            OUTCOME_CASE_CONFLICT => ComplianceOutcome::CaseConflict,
            OUTCOME_DEPOSIT_REFUSED => ComplianceOutcome::DepositRefused(
                CreateTransferResult::from_u8(self.u8()?)
                    .ok_or_else(|| self.invalid("transfer result", offset))?,
            ),
            _ => return Err(self.invalid("compliance outcome", offset)),
        })
    }

    fn optional_u64(&mut self) -> Result<Option<u64>, DecodeError> {
        Ok(match self.present()? {
            true => Some(self.u64()?),
            false => None,
        })
    }

    fn seen(&mut self) -> Result<SeenIdentifiers, DecodeError> {
        let offset = self.offset;
        let mask = self.u8()?;
        if mask & !(SEEN_DEVICE | SEEN_INSTRUMENT | SEEN_ADDRESS) != 0 {
            return Err(self.invalid("identifier mask", offset));
        }
        let mut digest = |bit: u8| -> Result<Option<[u8; 32]>, DecodeError> {
            match mask & bit != 0 {
                true => Ok(Some(self.slice(32)?.try_into().expect("32 bytes"))),
                false => Ok(None),
            }
        };
        Ok(SeenIdentifiers {
            device: digest(SEEN_DEVICE)?,
            instrument: digest(SEEN_INSTRUMENT)?,
            address: digest(SEEN_ADDRESS)?,
        })
    }

    fn limit(&mut self) -> Result<Limit, DecodeError> {
        let current = self.optional_u64()?;
        let pending = match self.present()? {
            true => Some(PendingLimit {
                value: self.optional_u64()?,
                effective_at_ns: self.u64()?,
            }),
            false => None,
        };
        Ok(Limit { current, pending })
    }

    fn wallet_compliance(&mut self, reality: bool) -> Result<WalletCompliance, DecodeError> {
        let mut wallet = WalletCompliance::new(self.ledger()?);
        for limit in &mut wallet.limits {
            *limit = self.limit()?;
        }
        for window in &mut wallet.windows {
            *window = SpendWindow {
                period_index: self.u32()?,
                deposited: self.u128()?,
                wagered: self.u128()?,
                returned: self.u128()?,
            };
        }
        if reality {
            wallet.session = SessionSpend {
                session_started_at_ns: self.u64()?,
                wagered: self.u128()?,
                returned: self.u128()?,
            };
        }
        Ok(wallet)
    }

    /// `reality`: the checkpoint has the reality-check fields (version 9 on).
    fn player_compliance(&mut self, reality: bool) -> Result<PlayerCompliance, DecodeError> {
        let kyc_level = self.kyc_level()?;
        let identity = match self.present()? {
            true => Some(Box::new(self.identity()?)),
            false => None,
        };
        let (self_excluded_until_ns, timed_out_until_ns) = (self.u64()?, self.u64()?);
        let session_limit = self.limit()?;
        let session_started_at_ns = self.u64()?;
        let flags_offset = self.offset;
        let flags = self.u8()?;
        if flags & !(FLAG_FROZEN | FLAG_WITHDRAWALS_HELD | FLAG_ENHANCED_KYC_REQUIRED) != 0 {
            return Err(self.invalid("case flags", flags_offset));
        }
        let (reality_check, reality_check_acknowledged_at_ns, seen) = match reality {
            true => (self.limit()?, self.u64()?, self.seen()?),
            false => (Limit::default(), 0, SeenIdentifiers::default()),
        };
        let offset = self.offset;
        let count = usize::from(self.u8()?);
        if count > CURRENCIES_PER_PLAYER_MAX {
            return Err(self.invalid("compliance wallet count", offset));
        }
        let wallets: Vec<WalletCompliance> = (0..count)
            .map(|_| self.wallet_compliance(reality))
            .collect::<Result<_, _>>()?;
        let distinct = wallets
            .iter()
            .enumerate()
            .all(|(i, w)| wallets[..i].iter().all(|other| other.ledger != w.ledger));
        if !distinct {
            return Err(self.invalid("compliance wallets", offset));
        }
        Ok(PlayerCompliance {
            kyc_level,
            identity,
            self_excluded_until_ns,
            timed_out_until_ns,
            session_limit,
            session_started_at_ns,
            wallets,
            frozen: flags & FLAG_FROZEN != 0,
            withdrawals_held: flags & FLAG_WITHDRAWALS_HELD != 0,
            enhanced_kyc_required: flags & FLAG_ENHANCED_KYC_REQUIRED != 0,
            reality_check,
            reality_check_acknowledged_at_ns,
            seen,
        })
    }

    /// The checkpoint section; `players` is how many players the directory section held.
    pub(super) fn checkpoint_compliance(
        &mut self,
        players: usize,
        reality: bool,
    ) -> Result<(CompliancePolicy, Vec<PlayerCompliance>), DecodeError> {
        const PLAYER_BYTES_MIN: usize = 1 + 1 + 8 + 8 + 2 + 8 + 1 + 1;
        let policy = self.policy()?;
        let offset = self.offset;
        let count = self.count_u64(PLAYER_BYTES_MIN)?;
        if count != players {
            return Err(self.invalid("compliance player count", offset));
        }
        let states = (0..count)
            .map(|_| self.player_compliance(reality))
            .collect::<Result<_, _>>()?;
        Ok((policy, states))
    }
}

const NOTE_KINDS: [NoteKind; 2] = [NoteKind::Comment, NoteKind::DocumentsRequested];

impl Writer<'_> {
    fn case_command(&mut self, command: &CaseCommand) {
        match command {
            CaseCommand::Open(case) => {
                self.u8(CASE_OPEN);
                self.u128(case.case_id);
                self.u128(case.player_id);
                self.u8(case.score);
                self.reasons(&case.reasons);
                self.optional_text(&case.ruleset_version);
                self.u8(case_action_code(case.action));
                self.optional_text(&case.by);
            }
            CaseCommand::Assign {
                case_id,
                assignee,
                by,
            } => {
                self.u8(CASE_ASSIGN);
                self.u128(*case_id);
                self.optional_text(assignee);
                self.optional_text(by);
            }
            CaseCommand::Note {
                case_id,
                kind,
                text,
                by,
            } => {
                self.u8(CASE_NOTE);
                self.u128(*case_id);
                self.u8(NOTE_KINDS.iter().position(|k| k == kind).expect("listed") as u8);
                self.optional_text(text);
                self.optional_text(by);
            }
            CaseCommand::Decide {
                case_id,
                decision,
                text,
                by,
            } => {
                self.u8(CASE_DECIDE);
                self.u128(*case_id);
                self.u8(decision_code(*decision));
                self.optional_text(text);
                self.optional_text(by);
            }
        }
    }

    pub(super) fn reasons(&mut self, reasons: &[String]) {
        self.u8(reasons.len() as u8);
        reasons.iter().for_each(|reason| self.optional_text(reason));
    }

    /// The checkpoint's cases: a count, then every case by id.
    pub(super) fn checkpoint_cases<'c>(&mut self, cases: impl ExactSizeIterator<Item = &'c Case>) {
        self.u64(cases.len() as u64);
        for case in cases {
            self.checkpoint_case(case);
        }
    }

    /// A decided case in the wallet log: the case as the checkpoint writes it, then u128 the
    /// case decided before it.
    pub(super) fn archived_case(&mut self, archived: &ArchivedCase) {
        self.checkpoint_case(&archived.case);
        self.u128(archived.previous_closed);
    }

    fn checkpoint_case(&mut self, case: &Case) {
        {
            self.u128(case.id);
            self.u128(case.player_id);
            self.u64(case.opened_at_ns);
            self.optional_text(&case.opened_by);
            self.u8(case.score);
            self.reasons(&case.reasons);
            self.optional_text(&case.ruleset_version);
            self.u8(case_action_code(case.action));
            self.optional_text(case.assignee.as_deref().unwrap_or(""));
            self.u8(case.notes.len() as u8);
            for note in &case.notes {
                self.u64(note.at_ns);
                self.optional_text(&note.by);
                self.u8(NOTE_KINDS
                    .iter()
                    .position(|k| *k == note.kind)
                    .expect("listed") as u8);
                self.optional_text(&note.text);
            }
            match &case.decision {
                None => self.u8(0),
                Some((decision, at_ns, by)) => {
                    self.u8(1);
                    self.u8(decision_code(*decision));
                    self.u64(*at_ns);
                    self.optional_text(by);
                }
            }
        }
    }
}

fn case_action_code(action: CaseAction) -> u8 {
    CaseAction::ALL
        .iter()
        .position(|a| *a == action)
        .expect("listed") as u8
}

fn decision_code(decision: CaseDecision) -> u8 {
    CaseDecision::ALL
        .iter()
        .position(|d| *d == decision)
        .expect("listed") as u8
}

impl Reader<'_> {
    fn case_command(&mut self) -> Result<CaseCommand, DecodeError> {
        let offset = self.offset;
        let command = match self.u8()? {
            CASE_OPEN => CaseCommand::Open(NewCase {
                case_id: self.u128()?,
                player_id: self.u128()?,
                score: self.u8()?,
                reasons: self.reasons()?,
                ruleset_version: self.optional_text(RULESET_VERSION_LEN_MAX)?,
                action: self.case_action()?,
                by: self.optional_text(ACTOR_LEN_MAX)?,
            }),
            CASE_ASSIGN => CaseCommand::Assign {
                case_id: self.u128()?,
                assignee: self.optional_text(ACTOR_LEN_MAX)?,
                by: self.optional_text(ACTOR_LEN_MAX)?,
            },
            CASE_NOTE => CaseCommand::Note {
                case_id: self.u128()?,
                kind: self.note_kind()?,
                text: self.optional_text(NOTE_TEXT_LEN_MAX)?,
                by: self.optional_text(ACTOR_LEN_MAX)?,
            },
            CASE_DECIDE => CaseCommand::Decide {
                case_id: self.u128()?,
                decision: self.decision()?,
                text: self.optional_text(NOTE_TEXT_LEN_MAX)?,
                by: self.optional_text(ACTOR_LEN_MAX)?,
            },
            _ => return Err(self.invalid("case command", offset)),
        };
        Ok(command)
    }

    pub(super) fn reasons(&mut self) -> Result<Vec<String>, DecodeError> {
        let offset = self.offset;
        let count = usize::from(self.u8()?);
        if count > REASONS_PER_CASE_MAX {
            return Err(self.invalid("case reasons", offset));
        }
        (0..count)
            .map(|_| self.optional_text(REASON_LEN_MAX))
            .collect()
    }

    fn case_action(&mut self) -> Result<CaseAction, DecodeError> {
        let offset = self.offset;
        let code = usize::from(self.u8()?);
        CaseAction::ALL
            .get(code)
            .copied()
            .ok_or_else(|| self.invalid("case action", offset))
    }

    fn decision(&mut self) -> Result<CaseDecision, DecodeError> {
        let offset = self.offset;
        let code = usize::from(self.u8()?);
        CaseDecision::ALL
            .get(code)
            .copied()
            .ok_or_else(|| self.invalid("case decision", offset))
    }

    fn note_kind(&mut self) -> Result<NoteKind, DecodeError> {
        let offset = self.offset;
        let code = usize::from(self.u8()?);
        NOTE_KINDS
            .get(code)
            .copied()
            .ok_or_else(|| self.invalid("note kind", offset))
    }

    pub(super) fn archived_case(&mut self) -> Result<ArchivedCase, DecodeError> {
        let case = self.checkpoint_case()?;
        if case.is_open() {
            return Err(self.invalid("archived case still open", self.offset));
        }
        Ok(ArchivedCase {
            case: std::sync::Arc::new(case),
            previous_closed: self.u128()?,
        })
    }

    fn checkpoint_case(&mut self) -> Result<Case, DecodeError> {
        let offset = self.offset;
        let (id, player_id, opened_at_ns) = (self.u128()?, self.u128()?, self.u64()?);
        let opened_by = self.optional_text(ACTOR_LEN_MAX)?;
        let score = self.u8()?;
        let reasons = self.reasons()?;
        let ruleset_version = self.optional_text(RULESET_VERSION_LEN_MAX)?;
        let action = self.case_action()?;
        let assignee = Some(self.optional_text(ACTOR_LEN_MAX)?).filter(|a| !a.is_empty());
        let notes_offset = self.offset;
        let note_count = usize::from(self.u8()?);
        if note_count > NOTES_PER_CASE_MAX + 1 {
            return Err(self.invalid("case notes", notes_offset));
        }
        let mut notes = Vec::with_capacity(note_count);
        for _ in 0..note_count {
            notes.push(CaseNote {
                at_ns: self.u64()?,
                by: self.optional_text(ACTOR_LEN_MAX)?,
                kind: self.note_kind()?,
                text: self.optional_text(NOTE_TEXT_LEN_MAX)?,
            });
        }
        let decision = match self.present()? {
            false => None,
            true => Some((
                self.decision()?,
                self.u64()?,
                self.optional_text(ACTOR_LEN_MAX)?,
            )),
        };
        let case = Case {
            id,
            player_id,
            opened_at_ns,
            opened_by,
            score,
            reasons,
            ruleset_version,
            action,
            assignee,
            notes,
            decision,
        };
        match score <= 100 && id != 0 {
            true => Ok(case),
            false => Err(self.invalid("case", offset)),
        }
    }

    /// The checkpoint's cases, by id (canonical: any other order is damage).
    pub(super) fn checkpoint_cases(
        &mut self,
    ) -> Result<std::collections::BTreeMap<u128, std::sync::Arc<Case>>, DecodeError> {
        const CASE_BYTES_MIN: usize = 16 + 16 + 8 + 2 + 1 + 1 + 2 + 1 + 2 + 1 + 1;
        let count = self.count_u64(CASE_BYTES_MIN)?;
        let mut cases = std::collections::BTreeMap::new();
        for _ in 0..count {
            let offset = self.offset;
            let case = self.checkpoint_case()?;
            if cases
                .last_key_value()
                .is_some_and(|(last, _)| *last >= case.id)
            {
                return Err(self.invalid("case order", offset));
            }
            cases.insert(case.id, std::sync::Arc::new(case));
        }
        Ok(cases)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Reader, Writer};
    use crate::compliance::{
        Limit, PlayerCompliance, SeenIdentifiers, SessionSpend, WalletCompliance,
    };
    use crate::ids::LedgerCode;

    fn player() -> PlayerCompliance {
        let mut wallet = WalletCompliance::new(LedgerCode::parse("EUR").unwrap());
        wallet.windows[0].wagered = 7;
        PlayerCompliance {
            session_started_at_ns: 5,
            wallets: vec![wallet],
            ..PlayerCompliance::default()
        }
    }

    #[test]
    fn a_player_written_before_reality_checks_reads_without_them() {
        let mut bytes = Vec::new();
        Writer(&mut bytes).checkpoint_player_compliance(&player());
        // Version 8 lacked, after the case flags, the interval (2 bytes, none), the
        // acknowledgement (8) and the identifiers (1, none), and after each wallet's windows
        // its session sums (40).
        let flags_end = 1 + 1 + 8 + 8 + 2 + 8 + 1;
        let mut version_8 = bytes[..flags_end].to_vec();
        version_8.extend_from_slice(&bytes[flags_end + 11..bytes.len() - 40]);
        let read = Reader::new(&version_8).player_compliance(false).unwrap();
        assert_eq!(read, player());
    }

    #[test]
    fn reality_check_state_round_trips() {
        let mut player = player();
        player.reality_check = Limit::default().request(Some(30), 1);
        player.reality_check_acknowledged_at_ns = 99;
        player.seen = SeenIdentifiers {
            device: Some([3; 32]),
            instrument: None,
            address: Some([4; 32]),
        };
        player.wallets[0].session = SessionSpend {
            session_started_at_ns: 5,
            wagered: 100,
            returned: 40,
        };
        let mut bytes = Vec::new();
        Writer(&mut bytes).checkpoint_player_compliance(&player);
        let read = Reader::new(&bytes).player_compliance(true).unwrap();
        assert_eq!(read, player);
    }
}
