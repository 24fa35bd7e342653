//! A rule set's `[params]`: the numbers its rules read as `params.NAME`, three of which the
//! engine reads too (`thresholds`, `near_threshold_percent`, `round_cover_percent`).

use std::collections::{BTreeMap, HashMap};

use cel::common::value::Val;
use cel::Value;

use super::error::RuleSetError;
use super::event::LedgerCode;

/// The structuring band's start, as a percentage of the threshold, when a set does not say.
const NEAR_THRESHOLD_PERCENT_DEFAULT: u64 = 80;
/// The share of a round's outcomes two opposed players cover, when a set does not say.
const ROUND_COVER_PERCENT_DEFAULT: u64 = 90;

/// `[params]`, read: the engine's own parameters, and the whole table as a CEL map.
pub(super) struct Params {
    pub(super) thresholds: BTreeMap<LedgerCode, u64>,
    pub(super) near_threshold_percent: u64,
    pub(super) round_cover_percent: u64,
    pub(super) cel: Box<dyn Val>,
}

impl Params {
    /// Values are integers, floats or booleans, or tables of them one level deep (as
    /// `thresholds`). `thresholds`, `near_threshold_percent` and `round_cover_percent` are
    /// read by the engine too, so they are checked more closely.
    pub(super) fn read(table: &toml::Table) -> Result<Params, RuleSetError> {
        let mut cel = HashMap::new();
        for (name, value) in table {
            cel.insert(name.clone(), param_value(name, value, true)?);
        }
        let cel: Box<dyn Val> = Value::from(cel)
            .try_into()
            .map_err(|_| param_error("params", "not representable in CEL"))?;
        Ok(Params {
            thresholds: read_thresholds(table.get("thresholds"))?,
            near_threshold_percent: read_percent(
                table,
                "near_threshold_percent",
                NEAR_THRESHOLD_PERCENT_DEFAULT,
                1..=99,
            )?,
            round_cover_percent: read_percent(
                table,
                "round_cover_percent",
                ROUND_COVER_PERCENT_DEFAULT,
                1..=100,
            )?,
            cel,
        })
    }
}

fn param_error(name: &str, why: &'static str) -> RuleSetError {
    RuleSetError::ParamInvalid {
        name: name.to_string(),
        why,
    }
}

fn param_value(name: &str, value: &toml::Value, nested_ok: bool) -> Result<Value, RuleSetError> {
    match value {
        toml::Value::Integer(i) => Ok(Value::Int(*i)),
        toml::Value::Float(f) => Ok(Value::Float(*f)),
        toml::Value::Boolean(b) => Ok(Value::Bool(*b)),
        toml::Value::Table(table) if nested_ok => {
            let mut map = HashMap::new();
            for (key, inner) in table {
                map.insert(key.clone(), param_value(name, inner, false)?);
            }
            Ok(Value::from(map))
        }
        _ => Err(param_error(
            name,
            "a number or a boolean, or a table of them, expected",
        )),
    }
}

fn read_thresholds(value: Option<&toml::Value>) -> Result<BTreeMap<LedgerCode, u64>, RuleSetError> {
    let mut thresholds = BTreeMap::new();
    let Some(value) = value else {
        return Ok(thresholds);
    };
    let table = value
        .as_table()
        .ok_or_else(|| param_error("thresholds", "a table of ledger = amount expected"))?;
    for (code, amount) in table {
        let name = format!("thresholds.{code}");
        let ledger = LedgerCode::parse(code)
            .ok_or_else(|| param_error(&name, "not a ledger code (A-Z, 0-9, _; 1 to 8)"))?;
        let amount = amount
            .as_integer()
            .and_then(|a| u64::try_from(a).ok())
            .filter(|a| *a > 0)
            .ok_or_else(|| param_error(&name, "a positive integer (minor units) expected"))?;
        thresholds.insert(ledger, amount);
    }
    Ok(thresholds)
}

fn read_percent(
    table: &toml::Table,
    name: &str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, RuleSetError> {
    let Some(value) = table.get(name) else {
        return Ok(default);
    };
    value
        .as_integer()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| range.contains(v))
        .ok_or_else(|| param_error(name, "an integer percentage in range expected"))
}
