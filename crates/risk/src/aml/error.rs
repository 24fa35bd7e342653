//! Why a rule set is refused, and the bounds a rule set must stay within (their own module,
//! so the parser, the compiler and the rule set all name them without naming each other).

/// Rules per set: a rule set is a reviewed document, not a data dump; the bound keeps one
/// evaluation's cost (every rule runs on every event) predictable.
pub const RULES_MAX: usize = 256;

/// A rule's expression, in bytes: conditions are a few lines.
pub const RULE_EXPRESSION_BYTES_MAX: usize = 2_048;

/// Ids, reason codes and the version: what a case records (`croupier_core::cases` keeps 64).
pub const NAME_LEN_MAX: usize = 64;

/// Nesting of a rule's expression tree. Evaluation recurses once per level on the caller's
/// stack; the default rules nest at most 6 deep, and 32 levels stay far below any thread's
/// stack even in an unoptimised build.
pub const RULE_DEPTH_MAX: usize = 32;

/// The stack of the thread rules are compiled on. cel's parser is ANTLR-generated recursive
/// descent with large frames: unoptimised, a 128-byte nested expression overflowed a 2 MiB
/// stack (measured), and a stack overflow aborts the process. Virtual memory only.
pub const COMPILE_STACK_BYTES: usize = 64 << 20;

/// Why a rule set was refused. [`RuleSetError::code`] is a stable name; a rule's problem
/// names the rule's id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleSetError {
    #[error("not a rule set in TOML: {0}")]
    Toml(String),
    #[error("the rule set has no version")]
    VersionMissing,
    #[error("the version must be 1 to {NAME_LEN_MAX} printable ASCII characters")]
    VersionInvalid,
    #[error("{count} rules, at most {RULES_MAX}")]
    TooManyRules { count: usize },
    #[error("rule id {rule:?}: 1 to {NAME_LEN_MAX} of a-z, 0-9, _ expected")]
    RuleIdInvalid { rule: String },
    #[error("rule id {rule:?} is used twice")]
    RuleIdDuplicate { rule: String },
    #[error("rule {rule}: reason {reason:?} is not a snake_case code of at most {NAME_LEN_MAX}")]
    ReasonInvalid { rule: String, reason: String },
    #[error("rule {rule}: score {score} is not in 1..=100")]
    ScoreOutOfRange { rule: String, score: i64 },
    #[error("rule {rule}: the expression has {bytes} bytes, at most {RULE_EXPRESSION_BYTES_MAX}")]
    ExpressionTooLong { rule: String, bytes: usize },
    #[error("rule {rule}: CEL syntax: {message}")]
    Syntax { rule: String, message: String },
    #[error("rule {rule}: the expression nests deeper than {RULE_DEPTH_MAX}")]
    ExpressionTooDeep { rule: String },
    #[error("rule {rule}: unknown variable {name:?}")]
    UnknownVariable { rule: String, name: String },
    #[error("rule {rule}: fails on test facts: {message}")]
    TypeError { rule: String, message: String },
    #[error("rule {rule}: evaluates to {value}, not a bool")]
    NotBoolean { rule: String, value: String },
    #[error("rule {rule}: the CEL compiler failed on it")]
    CompilerFailed { rule: String },
    #[error("the compiler thread could not start: {0}")]
    CompilerUnavailable(String),
    #[error("param {name}: {why}")]
    ParamInvalid { name: String, why: &'static str },
    #[error("action {action:?} (at min_score {min_score}) is not a known action")]
    ActionUnknown { min_score: i64, action: String },
    #[error("action min_score {min_score} is not in 0..=100")]
    ActionScoreOutOfRange { min_score: i64 },
    #[error("two actions have min_score {min_score}")]
    ActionScoreDuplicate { min_score: i64 },
}

impl RuleSetError {
    pub fn code(&self) -> &'static str {
        match self {
            RuleSetError::Toml(_) => "toml",
            RuleSetError::VersionMissing => "version_missing",
            RuleSetError::VersionInvalid => "version_invalid",
            RuleSetError::TooManyRules { .. } => "too_many_rules",
            RuleSetError::RuleIdInvalid { .. } => "rule_id_invalid",
            RuleSetError::RuleIdDuplicate { .. } => "rule_id_duplicate",
            RuleSetError::ReasonInvalid { .. } => "reason_invalid",
            RuleSetError::ScoreOutOfRange { .. } => "score_out_of_range",
            RuleSetError::ExpressionTooLong { .. } => "expression_too_long",
            RuleSetError::Syntax { .. } => "syntax",
            RuleSetError::ExpressionTooDeep { .. } => "expression_too_deep",
            RuleSetError::UnknownVariable { .. } => "unknown_variable",
            RuleSetError::TypeError { .. } => "type_error",
            RuleSetError::NotBoolean { .. } => "not_boolean",
            RuleSetError::CompilerFailed { .. } => "compiler_failed",
            RuleSetError::CompilerUnavailable(_) => "compiler_unavailable",
            RuleSetError::ParamInvalid { .. } => "param_invalid",
            RuleSetError::ActionUnknown { .. } => "action_unknown",
            RuleSetError::ActionScoreOutOfRange { .. } => "action_score_out_of_range",
            RuleSetError::ActionScoreDuplicate { .. } => "action_score_duplicate",
        }
    }
}
