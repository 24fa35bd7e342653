//! `GET /v1/cluster/status` as a table for people.

use anyhow::Context;
use serde_json::Value;

const COLUMNS: [&str; 9] = [
    "NODE", "ROLE", "VOTER", "TERM", "LAST LOG", "APPLIED", "LAG", "API", "PEER",
];

/// The status answer as a summary line and one row per node; fields the server left out or
/// set to null (an unreachable node's) show as `-`.
pub fn format_status(status: &Value) -> anyhow::Result<String> {
    let nodes = status
        .get("nodes")
        .and_then(Value::as_array)
        .context("the status answer has no \"nodes\" list")?;
    let mut text = summary_line(status);
    let mut rows = vec![COLUMNS.map(str::to_owned).to_vec()];
    for node in nodes {
        rows.push(node_row(node));
    }
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    Ok(text)
}

fn summary_line(status: &Value) -> String {
    let asked = field(status, "node_id");
    let term = field(status, "term");
    match status.get("leader_id").filter(|leader| !leader.is_null()) {
        Some(leader) => {
            format!("node {asked} answered: leader is node {leader}, term {term}\n")
        }
        None => format!("node {asked} answered: no leader known, term {term}\n"),
    }
}

fn node_row(node: &Value) -> Vec<String> {
    let voter = match node.get("voter").and_then(Value::as_bool) {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => "-".to_owned(),
    };
    vec![
        field(node, "node_id"),
        field(node, "role"),
        voter,
        field(node, "term"),
        field(node, "last_log_index"),
        field(node, "applied_index"),
        field(node, "lag"),
        field(node, "api_addr"),
        field(node, "peer_addr"),
    ]
}

/// A field as text: strings without quotes, numbers as they are, absent or null as `-`.
fn field(object: &Value, name: &str) -> String {
    match object.get(name) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_table_has_one_aligned_row_per_node_and_dashes_for_unknowns() {
        let status = json!({"node_id": 1, "leader_id": 2, "term": 3, "nodes": [
            {"node_id": 1, "role": "follower", "voter": true, "term": 3, "last_log_index": 10,
             "applied_index": 10, "lag": 0, "peer_addr": "127.0.0.1:8100",
             "api_addr": "127.0.0.1:8000"},
            {"node_id": 3, "role": "unreachable", "voter": true, "term": null,
             "last_log_index": null, "applied_index": null, "lag": null,
             "peer_addr": "127.0.0.1:8102", "api_addr": "127.0.0.1:8002"}
        ]});
        let text = format_status(&status).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "node 1 answered: leader is node 2, term 3");
        assert_eq!(
            lines[1],
            "NODE  ROLE         VOTER  TERM  LAST LOG  APPLIED  LAG  API             PEER"
        );
        assert_eq!(
            lines[2],
            "1     follower     yes    3     10        10       0    127.0.0.1:8000  127.0.0.1:8100"
        );
        assert_eq!(
            lines[3],
            "3     unreachable  yes    -     -         -        -    127.0.0.1:8002  127.0.0.1:8102"
        );
    }

    #[test]
    fn status_without_a_leader_says_so() {
        let status = json!({"node_id": 4, "leader_id": null, "term": 7, "nodes": []});
        let text = format_status(&status).unwrap();
        assert!(text.starts_with("node 4 answered: no leader known, term 7\n"));
        assert!(format_status(&json!({"node_id": 1})).is_err());
    }
}
