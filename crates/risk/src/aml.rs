//! AML and fraud scoring: the policy engine of the scoring pipeline. Pure: no I/O, no clock
//! (times come in as ns since the Unix epoch), no randomness, ordered maps wherever an order
//! can be seen; the same events in the same order give the same evaluations on every replica
//! and in an auditor's replay.
//!
//! # The pieces
//!
//! - [`MoneyEvent`]: one deposit, withdrawal, bet, win or refund of one player, reduced by the
//!   caller to amounts and SHA-256 digests of device, payment instrument and address (the
//!   engine never sees personal data).
//! - [`Activity`]: what is remembered of the feed, bounded by [`ActivityLimits`] (players,
//!   events per player, a time window, digests, rounds); [`Activity::facts`] computes the
//!   [`Facts`] of one trigger event.
//! - [`RuleSet`]: rules as data, loaded from TOML ([`RuleSet::parse`]), each condition a CEL
//!   expression over the facts; [`RuleSet::evaluate`] gives an [`Evaluation`]: a score 0–100,
//!   the reasons, the rule set's version and the [`Action`] the score maps to.
//! - [`RuleSet::observe`]: the feed pipeline's step (facts, evaluate, record);
//!   [`score_withdrawal`]: the synchronous check of a proposed withdrawal;
//!   [`decision_id`]: the idempotent id of the decision an event triggers.
//!
//! # Rule set format
//!
//! ```toml
//! version = "2026-06-01"                  # required; 1 to 64 printable ASCII
//! [params]                                # numbers (and booleans), or tables of them
//! thresholds = { EUR = 200000, GBP = 175000 }  # per ledger, minor units
//! near_threshold_percent = 80             # engine: structuring band (default 80, 1..=99)
//! round_cover_percent = 90                # engine: collusion cover (default 90, 1..=100)
//! velocity_deposits_1h = 5                # anything else: for rules, as params.NAME
//! [[rules]]
//! id = "deposit_velocity"                 # a-z, 0-9, _; unique
//! reason = "deposit_velocity"             # snake_case code, recorded with a decision
//! score = 25                              # 1..=100
//! when = 'kind == "deposit" && deposits_count_1h >= params.velocity_deposits_1h'
//! [[actions]]
//! min_score = 25                          # 0..=100, unique
//! action = "hold_withdrawals"             # allow | hold_withdrawals |
//!                                         # require_enhanced_kyc | open_case | freeze
//! ```
//!
//! An evaluation runs every rule in file order; the scores of those that fire add up, capped
//! at 100. The action is that of the highest `min_score` the score reaches (none reached:
//! `allow`), so thresholds need not be listed in order and the action does not depend on
//! which rules fired, only on the score. A rule that fails at evaluation (overflow, a missing
//! `threshold`, a panic inside the interpreter) does not fire and is listed in
//! [`Evaluation::errors`]: the pipeline goes on, and someone is told.
//!
//! Loading refuses, with a [`RuleSetError`] naming the rule: TOML errors and unknown fields,
//! a missing or bad version, bad or duplicate ids, reasons that are not snake_case, scores
//! outside 1..=100, CEL syntax errors, identifiers that are not variables, expressions
//! longer than [`RULE_EXPRESSION_BYTES_MAX`] or deeper than [`RULE_DEPTH_MAX`], and rules
//! that fail or return a non-bool on probe facts (every event kind; all numbers 0, then 1,
//! then 2^40): cel-rust has no static type checker, so probing is how a rule like
//! `amount > "x"` or `params.typo > 1` is caught at load and not on the first real event
//! (probing is not proof: a branch no probe reaches is checked only when it runs). A reload
//! is a new `parse`; the caller swaps the new set in whole.
//!
//! # Variables (CEL names)
//!
//! `kind` (`"deposit"`, `"withdrawal"`, `"bet"`, `"win"`, `"refund"`), `ledger` (`"EUR"`),
//! `amount`, `threshold`; within 24 h: `deposits_24h`, `deposits_count_24h`,
//! `withdrawals_24h`, `withdrawals_count_24h`, `bets_24h`, `wins_24h`, `linked_24h`,
//! `near_threshold_count_24h`; within 1 h: `deposits_count_1h`; within the kept window:
//! `deposits_window`, `withdrawals_window`, `bets_window`, `wins_window`; since the latest
//! deposit: `last_deposit_amount`, `wagered_since_last_deposit`, `since_last_deposit_ns`
//! (-1: none); shared digests: `players_sharing_device`, `players_sharing_instrument`,
//! `players_sharing_address`; the round: `round_opponents`, `round_stake`,
//! `round_opposed_stake`; and `params`. [`Facts`] documents each; all are `int` but `kind`
//! and `ledger`.
//!
//! # Currencies
//!
//! There are no exchange rates here. Every amount fact counts only the trigger's ledger, in
//! its minor units, and `threshold` is the rule set's `[params.thresholds]` entry for that
//! ledger (EUR 2,000 is `EUR = 200000`; a GBP ledger needs its own equivalent). A ledger
//! without an entry leaves `threshold` unbound: the rules naming it report an error instead
//! of firing, which is loud rather than silently permissive. Play split across currencies is
//! seen per currency only.

mod activity;
mod compile;
mod error;
mod event;
mod facts;
mod guard;
mod params;
mod rounds;
mod rules;
mod shared;

#[cfg(test)]
mod tests;

use sha2::{Digest as _, Sha256};

pub use activity::{Activity, ActivityLimits, FactsParams, DAY_NS, HOUR_NS};
pub use error::{COMPILE_STACK_BYTES, RULE_DEPTH_MAX};
pub use event::{Digest, EventKind, LedgerCode, MoneyEvent, LEDGER_CODE_LEN_MAX};
pub use facts::{Facts, VARIABLES};
pub use rounds::SPOTS_PER_ROUND_BET_MAX;
pub use rules::{
    Action, Evaluation, RuleFailure, RuleSet, RuleSetError, DEFAULT_RULES, NAME_LEN_MAX, RULES_MAX,
    RULE_EXPRESSION_BYTES_MAX,
};

/// Scores a withdrawal of `amount` from `player_id`'s `ledger` wallet proposed at `now_ns`,
/// as if it were the trigger, without recording it: the withdrawal pipeline's synchronous
/// check (it does the work of one feed event: one scan of the player's window and one
/// evaluation). A withdrawal has no device or round: the player's kept digests and latest
/// round stand in.
pub fn score_withdrawal(
    rules: &RuleSet,
    activity: &Activity,
    player_id: u128,
    amount: u64,
    ledger: LedgerCode,
    now_ns: u64,
) -> Evaluation {
    let trigger = MoneyEvent::new(now_ns, player_id, ledger, EventKind::Withdrawal, amount);
    score_withdrawal_event(rules, activity, &trigger)
}

/// [`score_withdrawal`] of a withdrawal the caller built (with the identifier digests it
/// knows of the player, say); its `at_ns` is the time of the scoring.
pub fn score_withdrawal_event(
    rules: &RuleSet,
    activity: &Activity,
    trigger: &MoneyEvent,
) -> Evaluation {
    let facts = activity.facts(trigger, trigger.at_ns, &rules.facts_params(trigger.ledger));
    rules.evaluate(&facts)
}

/// The domain tag of [`decision_id`]: a digest made for another purpose never collides.
const DECISION_ID_TAG: &[u8] = b"croupier/aml/decision/v1";

/// The id of the decision (case, decision command) triggered by the event at feed position
/// `(log index, ordinal within the entry)`: SHA-256 of the tag `croupier/aml/decision/v1`,
/// the index (8 bytes) and the ordinal (4 bytes), big-endian; its first 16 bytes, big-endian,
/// with the top bit cleared. So a replay proposes the same id, and the ledger opens nothing
/// twice. The range is `1..2^127`: never 0, and never one of the ledger's reserved ids (those
/// have their top 32 bits set).
pub fn decision_id(trigger_position: (u64, u32)) -> u128 {
    let (index, ordinal) = trigger_position;
    let mut hasher = Sha256::new();
    hasher.update(DECISION_ID_TAG);
    hasher.update(index.to_be_bytes());
    hasher.update(ordinal.to_be_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    let id = u128::from_be_bytes(first) & (u128::MAX >> 1);
    id.max(1)
}
