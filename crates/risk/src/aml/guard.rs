//! Which event kinds a rule can fire for, read once from the shape of its expression, so that
//! an evaluation skips the rules that are certainly false for its event's kind.
//!
//! Most rules open with a guard on `kind` (`kind == "deposit" && ...`). Under `croupier bench
//! live` the AML pipeline ran all nine default rules on every bet although seven are guarded to
//! deposits and withdrawals; evaluation was a third of the pipeline's CPU. The analysis is
//! conservative: it answers "every kind" for any shape it does not know, and it names a kind
//! as impossible only where CEL's own semantics make the whole expression `false` for it
//! (`false && x` is `false` in CEL even when `x` is an error), so skipping gives exactly the
//! result evaluating would have.

use cel::common::ast::{operators, Expr, IdedExpr, LiteralValue};

use super::event::EventKind;

/// A set of event kinds, one bit each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Kinds(u8);

impl Kinds {
    const ALL: Kinds = Kinds((1 << EventKind::ALL.len()) - 1);
    const NONE: Kinds = Kinds(0);

    fn of(kind: EventKind) -> Kinds {
        Kinds(1 << kind as u8)
    }

    fn named(code: &str) -> Kinds {
        let kind = EventKind::ALL.iter().find(|kind| kind.code() == code);
        // A name no event has: the comparison is false for every event.
        kind.map_or(Kinds::NONE, |kind| Kinds::of(*kind))
    }

    pub(super) fn contains(self, kind: EventKind) -> bool {
        self.0 & Kinds::of(kind).0 != 0
    }
}

/// The kinds of event `expression` can be true (or an error) for; for the others it is
/// certainly `false`.
pub(super) fn kinds_that_can_fire(expression: &IdedExpr) -> Kinds {
    let Expr::Call(call) = &expression.expr else {
        return Kinds::ALL;
    };
    match (
        call.func_name.as_str(),
        call.target.as_ref(),
        &call.args[..],
    ) {
        (operators::LOGICAL_AND, None, [left, right]) => {
            Kinds(kinds_that_can_fire(left).0 & kinds_that_can_fire(right).0)
        }
        (operators::LOGICAL_OR, None, [left, right]) => {
            Kinds(kinds_that_can_fire(left).0 | kinds_that_can_fire(right).0)
        }
        (operators::EQUALS, None, [left, right]) => match compared_kind(left, right) {
            Some(code) => Kinds::named(code),
            None => Kinds::ALL,
        },
        (operators::NOT_EQUALS, None, [left, right]) => match compared_kind(left, right) {
            Some(code) => Kinds(Kinds::ALL.0 & !Kinds::named(code).0),
            None => Kinds::ALL,
        },
        _ => Kinds::ALL,
    }
}

/// `kind == "x"` or `"x" == kind`: the `x`.
fn compared_kind<'a>(left: &'a IdedExpr, right: &'a IdedExpr) -> Option<&'a str> {
    match (&left.expr, &right.expr) {
        (Expr::Ident(name), Expr::Literal(LiteralValue::String(code)))
        | (Expr::Literal(LiteralValue::String(code)), Expr::Ident(name))
            if name == "kind" =>
        {
            Some(code.inner())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cel::Program;

    fn kinds(source: &str) -> Vec<&'static str> {
        let program = Program::compile(source).unwrap();
        let set = kinds_that_can_fire(program.expression());
        EventKind::ALL
            .iter()
            .filter(|kind| set.contains(**kind))
            .map(|kind| kind.code())
            .collect()
    }

    #[test]
    fn a_guard_on_kind_names_the_kinds_a_rule_can_fire_for() {
        assert_eq!(kinds(r#"kind == "deposit" && amount > 1"#), ["deposit"]);
        assert_eq!(kinds(r#"amount > 1 && "win" == kind"#), ["win"]);
        assert_eq!(
            kinds(r#"(kind == "deposit" || kind == "withdrawal") && amount > 1"#),
            ["deposit", "withdrawal"]
        );
        assert_eq!(
            kinds(r#"kind != "refund" && amount >= 5"#),
            ["deposit", "withdrawal", "bet", "win"]
        );
        assert_eq!(
            kinds(r#"kind == "deposit" && kind == "bet""#),
            Vec::<&str>::new()
        );
        assert_eq!(kinds(r#"kind == "nonsense""#), Vec::<&str>::new());
    }

    #[test]
    fn any_other_shape_may_fire_for_every_kind() {
        let every = ["deposit", "withdrawal", "bet", "win", "refund"];
        assert_eq!(kinds("amount > 1"), every);
        assert_eq!(kinds(r#"kind == "deposit" || amount > 1"#), every);
        assert_eq!(kinds(r#"!(kind == "deposit")"#), every);
        assert_eq!(kinds(r#"kind == ledger"#), every);
        // A comprehension's own `kind` is not the event's.
        assert_eq!(kinds(r#"["bet"].exists(kind, kind == "bet")"#), every);
    }
}
