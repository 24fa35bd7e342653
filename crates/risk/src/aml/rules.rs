//! [`RuleSet`]: rules as data (TOML, each condition in CEL), compiled and checked once when
//! loaded, then evaluated against [`Facts`].

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use cel::common::types::{CelInt, CelString};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, ExecutionError, Program, Value};
use serde::Deserialize;

use super::activity::{Activity, FactsParams};
use super::compile::compile_all;
pub use super::error::{RuleSetError, NAME_LEN_MAX, RULES_MAX, RULE_EXPRESSION_BYTES_MAX};
use super::event::{EventKind, LedgerCode, MoneyEvent};
use super::facts::Facts;
use super::guard::{kinds_that_can_fire, Kinds};
use super::params::Params;

/// The numbers a rule is probed with at load: nothing, one, and an amount beyond any limit
/// (EUR 10 billion in cents) that still leaves room for a rule's arithmetic.
const PROBE_VALUES: [u64; 3] = [0, 1, 1 << 40];

/// What a score maps to. The variants are in the order of their usual thresholds; the rule
/// set, not this order, decides which applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Allow,
    HoldWithdrawals,
    RequireEnhancedKyc,
    OpenCase,
    Freeze,
}

impl Action {
    /// The name a rule set writes: `hold_withdrawals`.
    pub fn code(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::HoldWithdrawals => "hold_withdrawals",
            Action::RequireEnhancedKyc => "require_enhanced_kyc",
            Action::OpenCase => "open_case",
            Action::Freeze => "freeze",
        }
    }

    pub fn parse(code: &str) -> Option<Action> {
        [
            Action::Allow,
            Action::HoldWithdrawals,
            Action::RequireEnhancedKyc,
            Action::OpenCase,
            Action::Freeze,
        ]
        .into_iter()
        .find(|action| action.code() == code)
    }
}

/// The outcome of one evaluation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// The fired rules' scores added up, capped at 100.
    pub score: u8,
    /// The fired rules' reason codes, in rule order (a reason shared by two fired rules
    /// appears twice).
    pub reasons: Vec<String>,
    /// The rule set's version: which rules decided.
    pub version: String,
    pub action: Action,
    /// Rules that failed to evaluate (counted as not fired), in rule order.
    pub errors: Vec<RuleFailure>,
}

/// A rule that could not be evaluated: it did not fire, and someone should look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    pub rule: String,
    pub message: String,
}

/// A rule set as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRuleSet {
    version: Option<String>,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    actions: Vec<RawAction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    reason: String,
    score: i64,
    when: String,
    /// For the people who read the file; not used.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    min_score: i64,
    action: String,
}

struct Rule {
    id: String,
    reason: String,
    score: u8,
    program: Program,
    /// The event kinds it can fire for (see `guard`); it is not run for the others.
    kinds: Kinds,
}

/// A loaded rule set: every rule compiled and checked. Immutable; a reload builds a new one
/// (`parse`) and the caller swaps it in, so an evaluation always sees one version whole.
pub struct RuleSet {
    version: String,
    rules: Vec<Rule>,
    /// `(min_score, action)`, ascending by score.
    actions: Vec<(u8, Action)>,
    thresholds: BTreeMap<LedgerCode, u64>,
    near_threshold_percent: u64,
    round_cover_percent: u64,
    /// `[params]` as a CEL map, built once and lent to every evaluation.
    params: Box<dyn Val>,
    env: Arc<Env>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
        f.debug_struct("RuleSet")
            .field("version", &self.version)
            .field("rules", &ids)
            .field("actions", &self.actions)
            .field("thresholds", &self.thresholds)
            .finish_non_exhaustive()
    }
}

impl RuleSet {
    /// Reads, compiles and checks a rule set (the format is in the `aml` module
    /// documentation). Every rule is compiled, its variables checked against
    /// [`VARIABLES`](super::VARIABLES), and it is run on probe facts (each event kind; all
    /// numbers 0, then 1, then 2^40) so that type errors and missing params surface now, not
    /// on the first real event.
    pub fn parse(text: &str) -> Result<RuleSet, RuleSetError> {
        let raw: RawRuleSet =
            toml::from_str(text).map_err(|e| RuleSetError::Toml(e.message().to_string()))?;
        let version = raw.version.ok_or(RuleSetError::VersionMissing)?;
        let version_ok = |c: char| c.is_ascii_graphic() || c == ' ';
        if version.is_empty() || version.len() > NAME_LEN_MAX || !version.chars().all(version_ok) {
            return Err(RuleSetError::VersionInvalid);
        }
        let params = Params::read(&raw.params)?;
        let actions = read_actions(&raw.actions)?;
        check_rules(&raw.rules)?;
        let env = Arc::new(Env::stdlib());
        let sources: Vec<(&str, &str)> = raw.rules.iter().map(|r| (&*r.id, &*r.when)).collect();
        let programs = compile_all(&env, &sources)?;
        let rules = raw.rules.into_iter().zip(programs);
        let rules = rules.map(|(raw, program)| Rule {
            score: raw.score as u8, // 1..=100, checked
            id: raw.id,
            reason: raw.reason,
            kinds: kinds_that_can_fire(program.expression()),
            program,
        });
        let rule_set = RuleSet {
            version,
            rules: rules.collect(),
            actions,
            thresholds: params.thresholds,
            near_threshold_percent: params.near_threshold_percent,
            round_cover_percent: params.round_cover_percent,
            params: params.cel,
            env,
        };
        rule_set.probe()?;
        Ok(rule_set)
    }

    /// The rule set shipped with Croupier (`aml/default_rules.toml`).
    pub fn default_rules() -> RuleSet {
        match RuleSet::parse(DEFAULT_RULES) {
            Ok(rules) => rules,
            // A test parses it; a broken default file never ships.
            Err(error) => panic!("the default AML rules do not load: {error}"),
        }
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The rule ids, in evaluation order.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// The reporting threshold for `ledger` (`[params.thresholds]`), in its minor units.
    pub fn threshold(&self, ledger: LedgerCode) -> Option<u64> {
        self.thresholds.get(&ledger).copied()
    }

    /// What [`Activity::facts`] needs from this rule set for an event in `ledger`.
    pub fn facts_params(&self, ledger: LedgerCode) -> FactsParams {
        FactsParams {
            threshold: self.threshold(ledger),
            near_threshold_percent: self.near_threshold_percent,
            round_cover_percent: self.round_cover_percent,
        }
    }

    /// Runs every rule that can fire for `facts.kind` (see `guard`: the others are certainly
    /// false for it, so skipping them answers the same). A rule that fails (a CEL error, a
    /// non-bool result, a panic in the interpreter) does not fire and is listed in `errors`.
    pub fn evaluate(&self, facts: &Facts) -> Evaluation {
        self.evaluate_rules(facts, false)
    }

    /// Runs the rules that can fire for the event's kind, or with `every_rule` all of them
    /// (to check and measure the skipping).
    pub(super) fn evaluate_rules(&self, facts: &Facts, every_rule: bool) -> Evaluation {
        let bindings = Bindings {
            facts,
            params: &*self.params,
        };
        let mut context = Context::with_env(Arc::clone(&self.env));
        context.set_variable_resolver(&bindings);
        let mut total: u32 = 0;
        let mut reasons = Vec::new();
        let mut errors = Vec::new();
        let runs = |rule: &&Rule| every_rule || rule.kinds.contains(facts.kind);
        for rule in self.rules.iter().filter(runs) {
            match run(&rule.program, &context) {
                Ok(true) => {
                    total += u32::from(rule.score);
                    reasons.push(rule.reason.clone());
                }
                Ok(false) => {}
                Err(message) => errors.push(RuleFailure {
                    rule: rule.id.clone(),
                    message,
                }),
            }
        }
        let score = total.min(100) as u8;
        Evaluation {
            score,
            reasons,
            version: self.version.clone(),
            action: self.action_for(score),
            errors,
        }
    }

    /// The action of the highest `min_score` at or below `score`; `Allow` if none.
    pub fn action_for(&self, score: u8) -> Action {
        let reached = self.actions.iter().rev().find(|(min, _)| *min <= score);
        reached.map_or(Action::Allow, |(_, action)| *action)
    }

    /// The feed pipeline's step: the facts of `event` (at its own time), their evaluation,
    /// then `event` recorded into `activity`.
    pub fn observe(&self, activity: &mut Activity, event: &MoneyEvent) -> Evaluation {
        let facts = activity.facts(event, event.at_ns, &self.facts_params(event.ledger));
        let evaluation = self.evaluate(&facts);
        activity.record(event);
        evaluation
    }

    /// Runs every rule on probe facts; refuses the set on the first error that is not about
    /// the probe's values (division by zero, overflow, an index out of range). Three values
    /// and every kind, so that a guard (`kind == "win" && ...`, `amount > 500 && ...`) does
    /// not hide the rest of a rule from the probe.
    fn probe(&self) -> Result<(), RuleSetError> {
        let Some(ledger) = LedgerCode::parse("EUR") else {
            return Ok(()); // unreachable: "EUR" is a ledger code
        };
        for value in PROBE_VALUES {
            for kind in EventKind::ALL {
                let facts = Facts::uniform(kind, ledger, value);
                self.probe_with(&facts)?;
            }
        }
        Ok(())
    }

    fn probe_with(&self, facts: &Facts) -> Result<(), RuleSetError> {
        let bindings = Bindings {
            facts,
            params: &*self.params,
        };
        let mut context = Context::with_env(Arc::clone(&self.env));
        context.set_variable_resolver(&bindings);
        for rule in &self.rules {
            let rule_id = || rule.id.clone();
            let result = catch_unwind(AssertUnwindSafe(|| rule.program.execute(&context)));
            match result {
                Ok(Ok(Value::Bool(_))) => {}
                Ok(Ok(other)) => {
                    let value = format!("{other:?}");
                    return Err(RuleSetError::NotBoolean {
                        rule: rule_id(),
                        value,
                    });
                }
                Ok(Err(error)) if depends_on_values(&error) => {}
                Ok(Err(error)) => {
                    let message = error.to_string();
                    return Err(RuleSetError::TypeError {
                        rule: rule_id(),
                        message,
                    });
                }
                Err(_) => return Err(RuleSetError::CompilerFailed { rule: rule_id() }),
            }
        }
        Ok(())
    }
}

/// The default rule set's text.
pub const DEFAULT_RULES: &str = include_str!("default_rules.toml");

/// Errors that depend on the numbers, not on the rule's shape: a probe with made-up numbers
/// may hit them, real facts may not.
fn depends_on_values(error: &ExecutionError) -> bool {
    matches!(
        error,
        ExecutionError::DivisionByZero(_)
            | ExecutionError::RemainderByZero(_)
            | ExecutionError::Overflow(..)
            | ExecutionError::IndexOutOfBounds(_)
    )
}

/// One rule on one context: `Ok(fired)`, or why it could not say.
fn run(program: &Program, context: &Context) -> Result<bool, String> {
    // The interpreter is third-party code on untrusted-shaped input: a panic in it must not
    // take the scoring pipeline down.
    match catch_unwind(AssertUnwindSafe(|| program.execute(context))) {
        Ok(Ok(Value::Bool(fired))) => Ok(fired),
        Ok(Ok(other)) => Err(format!("evaluated to {other:?}, not a bool")),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("the CEL interpreter panicked".to_string()),
    }
}

/// The variables of one evaluation, looked up by name as CEL meets them: nothing is built
/// for a variable no rule reads.
struct Bindings<'a> {
    facts: &'a Facts,
    params: &'a dyn Val,
}

impl VariableResolver for Bindings<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "params" => Some(CowVal::Borrowed(self.params)),
            "kind" => Some(CowVal::owned(CelString::from(self.facts.kind.code()))),
            "ledger" => Some(CowVal::owned(CelString::from(self.facts.ledger.as_str()))),
            name => self
                .facts
                .int_variable(name)
                .map(|value| CowVal::owned(CelInt::from(value))),
        }
    }
}

fn read_actions(raw: &[RawAction]) -> Result<Vec<(u8, Action)>, RuleSetError> {
    let mut actions = BTreeMap::new();
    for entry in raw {
        let min_score = entry.min_score;
        let score = u8::try_from(min_score)
            .ok()
            .filter(|s| *s <= 100)
            .ok_or(RuleSetError::ActionScoreOutOfRange { min_score })?;
        let action = Action::parse(&entry.action).ok_or_else(|| RuleSetError::ActionUnknown {
            min_score,
            action: entry.action.clone(),
        })?;
        if actions.insert(score, action).is_some() {
            return Err(RuleSetError::ActionScoreDuplicate { min_score });
        }
    }
    Ok(actions.into_iter().collect())
}

/// Everything about the rules but their expressions.
fn check_rules(rules: &[RawRule]) -> Result<(), RuleSetError> {
    if rules.len() > RULES_MAX {
        return Err(RuleSetError::TooManyRules { count: rules.len() });
    }
    let mut ids = BTreeSet::new();
    for rule in rules {
        let id = || rule.id.clone();
        if !is_code(&rule.id) {
            return Err(RuleSetError::RuleIdInvalid { rule: id() });
        }
        if !ids.insert(rule.id.as_str()) {
            return Err(RuleSetError::RuleIdDuplicate { rule: id() });
        }
        if !is_code(&rule.reason) || !rule.reason.starts_with(|c: char| c.is_ascii_lowercase()) {
            let reason = rule.reason.clone();
            return Err(RuleSetError::ReasonInvalid { rule: id(), reason });
        }
        if !(1..=100).contains(&rule.score) {
            let score = rule.score;
            return Err(RuleSetError::ScoreOutOfRange { rule: id(), score });
        }
        let bytes = rule.when.len();
        if bytes > RULE_EXPRESSION_BYTES_MAX {
            return Err(RuleSetError::ExpressionTooLong { rule: id(), bytes });
        }
    }
    Ok(())
}

/// 1 to [`NAME_LEN_MAX`] of `a-z`, `0-9`, `_`.
fn is_code(text: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
    !text.is_empty() && text.len() <= NAME_LEN_MAX && text.bytes().all(allowed)
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    /// Skipping the rules a kind guard rules out answers exactly what running them all does:
    /// the same score, reasons and errors, for every kind, amount and aggregate tried.
    #[test]
    fn skipping_guarded_rules_answers_as_running_every_rule() {
        let rules = RuleSet::default_rules();
        let ledgers = ["EUR", "XYZ"].map(|code| LedgerCode::parse(code).unwrap());
        let mut skipped = 0;
        for ledger in ledgers {
            for kind in EventKind::ALL {
                for value in [0, 1, 99_999, 150_000, 200_000, 1 << 40] {
                    let facts = Facts::uniform(kind, ledger, value);
                    let every = rules.evaluate_rules(&facts, true);
                    assert_eq!(rules.evaluate(&facts), every, "{kind:?} {value}");
                    skipped += rules
                        .rules
                        .iter()
                        .filter(|r| !r.kinds.contains(kind))
                        .count();
                }
            }
        }
        assert!(skipped > 0, "the default rules have kind guards");
    }
}
