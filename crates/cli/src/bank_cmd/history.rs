//! The history of a bank run as JSON lines in Jepsen's shape: one `invoke` line when an
//! operation starts, one `ok`, `fail` or `info` line when it ends, each with its Jepsen
//! `process`, `f` (`transfer` or `read`), `value` and `time` (ns since the run started).
//!
//! ```text
//! {"process":0,"type":"invoke","f":"transfer","value":{"id":"..","from":"..","to":"..","amount":5},"time":1200}
//! {"process":0,"type":"ok","f":"read","value":{"<account id>":1000,...},"time":9800}
//! ```
//!
//! Ids are decimal strings (they are 128-bit). A `fail` or `info` line may carry an `error`.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpType {
    Invoke,
    /// Done, with this effect.
    Ok,
    /// Certainly had no effect.
    Fail,
    /// Unknown: it may or may not have taken effect (a timeout, a lost connection, a 5xx).
    Info,
}

impl OpType {
    pub fn name(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [OpType::Invoke, OpType::Ok, OpType::Fail, OpType::Info]
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: u128,
    pub from: u128,
    pub to: u128,
    pub amount: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpValue {
    Transfer(Transfer),
    /// Balances by account id; `None` until a read completes `ok`.
    Read(Option<BTreeMap<u128, i64>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub process: u64,
    pub kind: OpType,
    pub value: OpValue,
    /// Nanoseconds since the run started.
    pub time: u64,
    pub error: Option<String>,
}

impl Op {
    pub fn f(&self) -> &'static str {
        match self.value {
            OpValue::Transfer(_) => "transfer",
            OpValue::Read(_) => "read",
        }
    }

    pub fn to_json_line(&self) -> String {
        let value = match &self.value {
            OpValue::Transfer(t) => format!(
                r#"{{"id":"{}","from":"{}","to":"{}","amount":{}}}"#,
                t.id, t.from, t.to, t.amount
            ),
            OpValue::Read(None) => "null".to_owned(),
            OpValue::Read(Some(balances)) => Value::Object(
                balances
                    .iter()
                    .map(|(account, balance)| (account.to_string(), json!(balance)))
                    .collect(),
            )
            .to_string(),
        };
        // Written by hand to keep Jepsen's field order, which makes the file easier to read
        // (serde_json sorts object keys).
        let error = match &self.error {
            Some(error) => format!(",\"error\":{}", json!(error)),
            None => String::new(),
        };
        format!(
            "{{\"process\":{},\"type\":\"{}\",\"f\":\"{}\",\"value\":{value},\"time\":{}{error}}}\n",
            self.process,
            self.kind.name(),
            self.f(),
            self.time
        )
    }
}

/// Every operation line of a history file; blank lines are skipped, anything else that does
/// not parse is an error naming its line.
pub fn parse_history(text: &str) -> anyhow::Result<Vec<Op>> {
    let mut ops = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op = parse_line(line).with_context(|| format!("history line {}", number + 1))?;
        ops.push(op);
    }
    Ok(ops)
}

fn parse_line(line: &str) -> anyhow::Result<Op> {
    let line: Value = serde_json::from_str(line).context("not JSON")?;
    let process = line["process"]
        .as_u64()
        .context("\"process\" must be a non-negative integer")?;
    let kind = line["type"]
        .as_str()
        .and_then(OpType::from_name)
        .context("\"type\" must be invoke, ok, fail or info")?;
    let time = line["time"]
        .as_u64()
        .context("\"time\" must be a non-negative integer")?;
    let error = line.get("error").and_then(Value::as_str).map(str::to_owned);
    let value = match line["f"].as_str() {
        Some("transfer") => OpValue::Transfer(parse_transfer(&line["value"])?),
        Some("read") => OpValue::Read(match &line["value"] {
            Value::Null => None,
            Value::Object(balances) => Some(parse_balances(balances)?),
            _ => bail!("a read's \"value\" must be an object of balances or null"),
        }),
        _ => bail!("\"f\" must be transfer or read"),
    };
    Ok(Op {
        process,
        kind,
        value,
        time,
        error,
    })
}

fn parse_transfer(value: &Value) -> anyhow::Result<Transfer> {
    Ok(Transfer {
        id: parse_id(value, "id")?,
        from: parse_id(value, "from")?,
        to: parse_id(value, "to")?,
        amount: value["amount"]
            .as_u64()
            .context("a transfer's \"amount\" must be a non-negative integer")?,
    })
}

fn parse_id(value: &Value, field: &str) -> anyhow::Result<u128> {
    value[field]
        .as_str()
        .and_then(|text| text.parse().ok())
        .with_context(|| format!("a transfer's \"{field}\" must be a decimal id string"))
}

fn parse_balances(balances: &Map<String, Value>) -> anyhow::Result<BTreeMap<u128, i64>> {
    balances
        .iter()
        .map(|(account, balance)| {
            let account: u128 = account
                .parse()
                .with_context(|| format!("read: {account:?} is not an account id"))?;
            let balance = balance
                .as_i64()
                .with_context(|| format!("read: account {account}'s balance is not an integer"))?;
            Ok((account, balance))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_written_as_json_lines_parse_back_the_same() {
        let ops = vec![
            Op {
                process: 3,
                kind: OpType::Invoke,
                value: OpValue::Transfer(Transfer {
                    id: u128::MAX - 1,
                    from: 10,
                    to: 11,
                    amount: 250,
                }),
                time: 17,
                error: None,
            },
            Op {
                process: 7,
                kind: OpType::Ok,
                value: OpValue::Read(Some(BTreeMap::from([(10, 1000), (11, -3)]))),
                time: 18,
                error: None,
            },
            Op {
                process: 7,
                kind: OpType::Fail,
                value: OpValue::Read(None),
                time: 19,
                error: Some("no stable snapshot".into()),
            },
        ];
        let text: String = ops.iter().map(Op::to_json_line).collect();
        assert!(text.starts_with(
            r#"{"process":3,"type":"invoke","f":"transfer","value":{"id":"340282366920938463463374607431768211454","from":"10","to":"11","amount":250},"time":17}"#
        ));
        assert_eq!(parse_history(&text).unwrap(), ops);
    }

    #[test]
    fn malformed_history_lines_are_reported_with_their_line_number() {
        let good = r#"{"process":0,"type":"invoke","f":"read","value":null,"time":1}"#;
        let text = format!("{good}\n\n{{\"process\":0,\"type\":\"done\",\"f\":\"read\",\"value\":null,\"time\":2}}\n");
        let error = format!("{:#}", parse_history(&text).unwrap_err());
        assert!(error.contains("history line 3"), "{error}");
        assert!(error.contains("\"type\""), "{error}");
        assert!(parse_history("[1,2]").is_err());
        let bad_id = r#"{"process":0,"type":"invoke","f":"transfer","value":{"id":"x","from":"1","to":"2","amount":1},"time":1}"#;
        assert!(parse_history(bad_id).is_err());
    }
}
