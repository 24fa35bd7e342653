//! Rule expressions compiled with cel, then checked: depth and identifiers.

use std::panic::{catch_unwind, AssertUnwindSafe};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Env, Program};

use super::error::{RuleSetError, COMPILE_STACK_BYTES, RULE_DEPTH_MAX};
use super::facts::VARIABLES;

/// The identifiers CEL itself defines (type names, as in `type(x) == int`): allowed in rules.
const CEL_TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// Compiles every rule on a thread with a [`COMPILE_STACK_BYTES`] stack, then checks each
/// tree's depth and variables.
/// `rules` are `(id, expression)` pairs.
pub(super) fn compile_all(env: &Env, rules: &[(&str, &str)]) -> Result<Vec<Program>, RuleSetError> {
    let compiled = std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("aml-rules-compile".into())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn_scoped(scope, || {
                let compile = |(_, expression): &(&str, &str)| {
                    catch_unwind(AssertUnwindSafe(|| env.compile(expression)))
                        .map(|result| result.map_err(|errors| errors.to_string()))
                };
                rules.iter().map(compile).collect::<Vec<_>>()
            })
            .map_err(|e| RuleSetError::CompilerUnavailable(e.to_string()))?;
        worker
            .join()
            .map_err(|_| RuleSetError::CompilerUnavailable("the thread panicked".into()))
    })?;
    let mut programs = Vec::with_capacity(rules.len());
    for ((id, _), result) in rules.iter().zip(compiled) {
        let rule_id = || id.to_string();
        let program = match result {
            Ok(Ok(program)) => program,
            Ok(Err(message)) => {
                return Err(RuleSetError::Syntax {
                    rule: rule_id(),
                    message,
                })
            }
            Err(_) => return Err(RuleSetError::CompilerFailed { rule: rule_id() }),
        };
        let mut bound = Vec::new();
        match check_tree(program.expression(), 1, &mut bound) {
            Ok(()) => programs.push(program),
            Err(TreeProblem::TooDeep) => {
                return Err(RuleSetError::ExpressionTooDeep { rule: rule_id() })
            }
            Err(TreeProblem::Unknown(name)) => {
                return Err(RuleSetError::UnknownVariable {
                    rule: rule_id(),
                    name,
                })
            }
        }
    }
    Ok(programs)
}

enum TreeProblem {
    TooDeep,
    Unknown(String),
}

/// Walks an expression tree: no deeper than [`RULE_DEPTH_MAX`], and every identifier a
/// variable of [`VARIABLES`], `params`, a CEL type name or a variable a macro (`exists`,
/// `all`, `map`, `filter`) binds around it (`bound`). Recursion stops at the depth bound.
fn check_tree<'e>(
    expr: &'e IdedExpr,
    depth: usize,
    bound: &mut Vec<&'e str>,
) -> Result<(), TreeProblem> {
    if depth > RULE_DEPTH_MAX {
        return Err(TreeProblem::TooDeep);
    }
    let next = depth + 1;
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) => Ok(()),
        Expr::Ident(name) => {
            let known = VARIABLES.contains(&name.as_str())
                || name == "params"
                || CEL_TYPE_NAMES.contains(&name.as_str())
                || bound.contains(&name.as_str());
            if known {
                Ok(())
            } else {
                Err(TreeProblem::Unknown(name.clone()))
            }
        }
        Expr::Select(select) => check_tree(&select.operand, next, bound),
        Expr::Call(call) => {
            let target = call.target.as_deref().into_iter();
            target
                .chain(&call.args)
                .try_for_each(|arg| check_tree(arg, next, bound))
        }
        Expr::List(list) => list
            .elements
            .iter()
            .try_for_each(|element| check_tree(element, next, bound)),
        Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
            EntryExpr::MapEntry(entry) => {
                check_tree(&entry.key, next, bound)?;
                check_tree(&entry.value, next, bound)
            }
            EntryExpr::StructField(field) => check_tree(&field.value, next, bound),
        }),
        Expr::Struct(structure) => {
            structure
                .entries
                .iter()
                .try_for_each(|entry| match &entry.expr {
                    EntryExpr::MapEntry(entry) => check_tree(&entry.value, next, bound),
                    EntryExpr::StructField(field) => check_tree(&field.value, next, bound),
                })
        }
        Expr::Comprehension(comprehension) => {
            check_tree(&comprehension.iter_range, next, bound)?;
            check_tree(&comprehension.accu_init, next, bound)?;
            let outer = bound.len();
            bound.push(&comprehension.iter_var);
            bound.extend(comprehension.iter_var2.as_deref());
            bound.push(&comprehension.accu_var);
            let inner = [
                &comprehension.loop_cond,
                &comprehension.loop_step,
                &comprehension.result,
            ];
            let checked = inner
                .into_iter()
                .try_for_each(|e| check_tree(e, next, bound));
            bound.truncate(outer);
            checked
        }
    }
}
