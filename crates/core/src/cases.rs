//! The AML case queue as ledger state: cases opened by the scoring pipeline or by hand, and
//! every step an operator takes on one (assign, comment, request documents, decide), each a
//! command with who (`by`) and when (the entry's time). A regulator replaying the log sees why
//! a player was frozen and who cleared it.
//!
//! Opening a case applies the action its score mapped to (hold withdrawals, require enhanced
//! KYC, freeze); deciding it applies the decision (clear lifts the freeze and the hold;
//! restrict and close keep the player frozen; report marks the case for a suspicious-
//! transaction report). A case id is chosen by the proposer — the pipeline derives it from the
//! triggering event's feed position — so a replayed decision opens nothing twice.
//!
//! Memory: only open cases stay in the hot state (bounded per case by the limits below). A
//! decided case leaves it in the apply that decides it, as an [`ArchivedCase`] history record
//! found by its id (so a repeated step still answers `case_closed`, and an AML decision
//! replayed from the feed still opens nothing twice); the decided cases form a chain, newest
//! first, from the ledger's `last_closed` case, which is how they are listed.

use std::sync::Arc;

use crate::players::PlayerId;

pub type CaseId = u128;

pub const REASONS_PER_CASE_MAX: usize = 16;
pub const REASON_LEN_MAX: usize = 64;
pub const NOTES_PER_CASE_MAX: usize = 128;
pub const NOTE_TEXT_LEN_MAX: usize = 2_048;
pub const RULESET_VERSION_LEN_MAX: usize = 64;
/// `by`: an operator key id, or the name of a pipeline (`aml`).
pub const ACTOR_LEN_MAX: usize = 32;

/// What a score maps to (`croupier_risk::aml` thresholds), applied when the case opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CaseAction {
    /// A case for review only.
    OpenCase,
    HoldWithdrawals,
    RequireEnhancedKyc,
    Freeze,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseDecision {
    /// Nothing suspicious: the freeze and the withdrawal hold are lifted.
    Clear,
    /// The player stays frozen (no bets, no deposits) pending more.
    Restrict,
    /// The relationship ends: frozen for good.
    CloseAccount,
    /// A suspicious-transaction report goes to the financial intelligence unit (goAML).
    Report,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    Comment,
    DocumentsRequested,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseNote {
    pub at_ns: u64,
    pub by: String,
    pub kind: NoteKind,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    pub id: CaseId,
    pub player_id: PlayerId,
    pub opened_at_ns: u64,
    pub opened_by: String,
    pub score: u8,
    pub reasons: Vec<String>,
    /// The rule set that scored it ("" for a case opened by hand).
    pub ruleset_version: String,
    pub action: CaseAction,
    pub assignee: Option<String>,
    pub notes: Vec<CaseNote>,
    pub decision: Option<(CaseDecision, u64, String)>,
}

impl Case {
    pub fn is_open(&self) -> bool {
        self.decision.is_none()
    }

    /// When it was decided (ns), or opened while it is open.
    pub fn updated_at_ns(&self) -> u64 {
        self.decision
            .as_ref()
            .map_or(self.opened_at_ns, |(_, at_ns, _)| *at_ns)
    }
}

/// A decided case as history keeps it (history record, never an event), with the case decided
/// before it (0: none) so the decided cases are walked newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedCase {
    pub case: Arc<Case>,
    pub previous_closed: CaseId,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCase {
    pub case_id: CaseId,
    pub player_id: PlayerId,
    pub score: u8,
    pub reasons: Vec<String>,
    pub ruleset_version: String,
    pub action: CaseAction,
    pub by: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseCommand {
    Open(NewCase),
    Assign {
        case_id: CaseId,
        assignee: String,
        by: String,
    },
    Note {
        case_id: CaseId,
        kind: NoteKind,
        text: String,
        by: String,
    },
    Decide {
        case_id: CaseId,
        decision: CaseDecision,
        text: String,
        by: String,
    },
}

fn actor_ok(by: &str) -> bool {
    (1..=ACTOR_LEN_MAX).contains(&by.len())
}

impl CaseCommand {
    /// Whether the command is well formed (the API and the decoder check it).
    pub fn check(&self) -> bool {
        match self {
            CaseCommand::Open(case) => {
                let reasons = case.reasons.len() <= REASONS_PER_CASE_MAX
                    && case
                        .reasons
                        .iter()
                        .all(|r| (1..=REASON_LEN_MAX).contains(&r.len()));
                case.case_id != 0
                    && case.score <= 100
                    && reasons
                    && case.ruleset_version.len() <= RULESET_VERSION_LEN_MAX
                    && actor_ok(&case.by)
            }
            CaseCommand::Assign { assignee, by, .. } => actor_ok(assignee) && actor_ok(by),
            CaseCommand::Note { text, by, .. } | CaseCommand::Decide { text, by, .. } => {
                text.len() <= NOTE_TEXT_LEN_MAX && actor_ok(by)
            }
        }
    }

    pub fn case_id(&self) -> CaseId {
        match self {
            CaseCommand::Open(case) => case.case_id,
            CaseCommand::Assign { case_id, .. }
            | CaseCommand::Note { case_id, .. }
            | CaseCommand::Decide { case_id, .. } => *case_id,
        }
    }
}

impl CaseAction {
    pub const ALL: [CaseAction; 4] = [
        CaseAction::OpenCase,
        CaseAction::HoldWithdrawals,
        CaseAction::RequireEnhancedKyc,
        CaseAction::Freeze,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CaseAction::OpenCase => "open_case",
            CaseAction::HoldWithdrawals => "hold_withdrawals",
            CaseAction::RequireEnhancedKyc => "require_enhanced_kyc",
            CaseAction::Freeze => "freeze",
        }
    }

    pub fn parse(text: &str) -> Option<CaseAction> {
        CaseAction::ALL.into_iter().find(|a| a.name() == text)
    }
}

impl CaseDecision {
    pub const ALL: [CaseDecision; 4] = [
        CaseDecision::Clear,
        CaseDecision::Restrict,
        CaseDecision::CloseAccount,
        CaseDecision::Report,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CaseDecision::Clear => "clear",
            CaseDecision::Restrict => "restrict",
            CaseDecision::CloseAccount => "close_account",
            CaseDecision::Report => "report",
        }
    }

    pub fn parse(text: &str) -> Option<CaseDecision> {
        CaseDecision::ALL.into_iter().find(|d| d.name() == text)
    }
}

impl NoteKind {
    pub fn name(self) -> &'static str {
        match self {
            NoteKind::Comment => "comment",
            NoteKind::DocumentsRequested => "documents_requested",
        }
    }
}
