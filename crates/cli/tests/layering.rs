//! Guards the layering of DESIGN.md §8: dependencies point down the crate list, the pure crates
//! (core, rng, games) know nothing of tokio, HTTP, JSON, disks or networks, and only the server,
//! the binary above it and the payments edge (which speaks the banks' HTTP APIs) know HTTP. Reads the real dependency graph from `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The workspace crates from the bottom of DESIGN.md §8 up.
const LAYERS: &[&str] = &[
    "croupier-core",
    "croupier-rng",
    "croupier-games",
    "croupier-risk",
    "croupier-payments",
    "croupier-store",
    "croupier-cluster",
    "croupier-sim",
    "croupier-server",
    "croupier",
];

/// Crates that mean async runtimes, HTTP, JSON, disk or network access.
const IMPURE: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "axum",
    "hyper",
    "hyper-util",
    "reqwest",
    "ureq",
    "serde_json",
    "openraft",
    "tempfile",
    "memmap2",
    "redb",
    "sled",
    "rocksdb",
    "rusqlite",
    "fs2",
    "fs4",
    "async-trait",
    "futures",
    "metrics",
];

const HTTP: &[&str] = &[
    "axum",
    "hyper",
    "hyper-util",
    "reqwest",
    "ureq",
    "tower-http",
    "h2",
];

struct Graph {
    names: BTreeMap<String, String>,
    deps: BTreeMap<String, Vec<String>>,
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            &host_triple(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let names = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut deps = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let normal: Vec<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].as_str() != Some("dev"))
            })
            .map(|d| d["pkg"].as_str().unwrap().to_owned())
            .collect();
        deps.insert(node["id"].as_str().unwrap().to_owned(), normal);
    }
    Graph { names, deps }
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let host = text.lines().find_map(|line| line.strip_prefix("host: "));
    host.expect("rustc -vV names the host").trim().to_owned()
}

impl Graph {
    fn id_of(&self, name: &str) -> String {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id.clone())
            .expect(name)
    }

    /// Names of every crate `name` pulls in for building (not dev-dependencies).
    fn closure(&self, name: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![self.id_of(name)];
        while let Some(id) = stack.pop() {
            for dep in self.deps.get(&id).into_iter().flatten() {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen.into_iter().map(|id| self.names[&id].clone()).collect()
    }

    fn direct(&self, name: &str) -> Vec<String> {
        self.deps[&self.id_of(name)]
            .iter()
            .map(|id| self.names[id].clone())
            .collect()
    }
}

#[test]
fn pure_crates_pull_in_no_runtime_http_json_disk_or_network_crate() {
    let graph = graph();
    for pure in ["croupier-core", "croupier-rng", "croupier-games"] {
        let closure = graph.closure(pure);
        let found: Vec<_> = IMPURE
            .iter()
            .filter(|bad| closure.contains(**bad))
            .collect();
        assert!(found.is_empty(), "{pure} depends on {found:?}");
    }
}

/// Risk policy reads JSON (a JWS payload is JSON) but no clock, runtime, disk or network: time
/// is passed in and the I/O of identity checks lives in the server.
#[test]
fn the_risk_policy_crate_pulls_in_no_runtime_http_disk_or_network_crate() {
    let closure = graph().closure("croupier-risk");
    let found: Vec<_> = IMPURE
        .iter()
        .filter(|bad| **bad != "serde_json" && closure.contains(**bad))
        .collect();
    assert!(found.is_empty(), "croupier-risk depends on {found:?}");
}

#[test]
fn dependencies_point_down_the_layer_list() {
    let graph = graph();
    for (level, name) in LAYERS.iter().enumerate() {
        for dep in graph.direct(name) {
            if let Some(dep_level) = LAYERS.iter().position(|l| *l == dep) {
                assert!(
                    dep_level < level,
                    "{name} must not depend on {dep} (an upper layer)"
                );
            }
        }
    }
}

#[test]
fn only_the_server_the_binary_and_the_payments_edge_know_http() {
    let graph = graph();
    assert!(
        graph.closure("croupier-server").contains("axum"),
        "the graph must be read for real"
    );
    let http_speakers = ["croupier-payments", "croupier-server", "croupier"];
    for name in LAYERS.iter().filter(|name| !http_speakers.contains(name)) {
        let closure = graph.closure(name);
        let found: Vec<_> = HTTP.iter().filter(|bad| closure.contains(**bad)).collect();
        assert!(found.is_empty(), "{name} depends on HTTP crates {found:?}");
    }
}

#[test]
fn no_product_crate_pulls_in_the_simulation() {
    let graph = graph();
    assert!(
        graph.closure("croupier-sim").contains("turmoil"),
        "the graph must be read for real"
    );
    for name in LAYERS.iter().filter(|name| **name != "croupier-sim") {
        let closure = graph.closure(name);
        assert!(
            !closure.contains("turmoil") && !closure.contains("croupier-sim"),
            "{name} depends on the simulation"
        );
    }
}
