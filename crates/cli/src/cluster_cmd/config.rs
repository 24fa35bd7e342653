//! `cluster.toml`, the membership file `croupier serve --cluster-config` reads: one `[[node]]`
//! table per member with its id, HTTP API address and node-to-node address.
//!
//! `cluster local` lays nodes out on 127.0.0.1 by index: node `i` (0-based) has id `i + 1`,
//! serves HTTP on `base_port + i` and peers on `base_port + 100 + i`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{bail, Context};

/// The host every `cluster local` node listens on.
pub const LOCAL_HOST: &str = "127.0.0.1";
/// Peer ports sit this far above the HTTP ports, so both ranges are easy to tell apart.
pub const PEER_PORT_OFFSET: u16 = 100;
/// Node `i`'s HTTP port must stay below the first peer port.
pub const LOCAL_NODES_MAX: usize = PEER_PORT_OFFSET as usize;
pub const DEFAULT_NODES: usize = 3;
pub const DEFAULT_BASE_PORT: u16 = 8000;

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub id: u64,
    /// HTTP API address (host:port).
    pub api: String,
    /// Node-to-node address (host:port).
    pub peer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    #[serde(rename = "node", default)]
    pub nodes: Vec<NodeEntry>,
}

impl ClusterConfig {
    /// The `cluster local` layout of `nodes` nodes from `base_port`.
    pub fn local(nodes: usize, base_port: u16) -> anyhow::Result<Self> {
        if nodes == 0 || nodes > LOCAL_NODES_MAX {
            bail!("--nodes: must be between 1 and {LOCAL_NODES_MAX}, got {nodes}");
        }
        let highest = u32::from(base_port) + u32::from(PEER_PORT_OFFSET) + nodes as u32 - 1;
        if base_port == 0 || highest > u32::from(u16::MAX) {
            bail!(
                "--base-port: ports {base_port}..={highest} are needed (HTTP from the base port, \
                 peers from base port + {PEER_PORT_OFFSET}); pick a base port from 1 to {}",
                u32::from(u16::MAX) + 1 - u32::from(PEER_PORT_OFFSET) - nodes as u32
            );
        }
        let nodes = (0..nodes as u16)
            .map(|index| NodeEntry {
                id: u64::from(index) + 1,
                api: format!("{LOCAL_HOST}:{}", base_port + index),
                peer: format!("{LOCAL_HOST}:{}", base_port + PEER_PORT_OFFSET + index),
            })
            .collect();
        Ok(ClusterConfig { nodes })
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let config: ClusterConfig = toml::from_str(text)?;
        if config.nodes.is_empty() {
            bail!("no [[node]] table");
        }
        let mut ids = BTreeSet::new();
        for node in &config.nodes {
            if node.id == 0 {
                bail!("node ids start at 1, found id 0");
            }
            if !ids.insert(node.id) {
                bail!("node id {} appears twice", node.id);
            }
            if node.api.trim().is_empty() || node.peer.trim().is_empty() {
                bail!("node {}: api and peer addresses must not be empty", node.id);
            }
        }
        Ok(config)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(&text)
            .with_context(|| format!("{} is not a valid cluster config", path.display()))
    }

    pub fn to_toml(&self) -> String {
        let mut text = String::from(
            "# Written by `croupier cluster local`; read by `croupier serve --cluster-config`.\n",
        );
        for node in &self.nodes {
            text.push_str(&format!(
                "\n[[node]]\nid = {}\napi = {}\npeer = {}\n",
                node.id,
                toml_string(&node.api),
                toml_string(&node.peer)
            ));
        }
        text
    }

    /// Writes the file whole or not at all (a node starting meanwhile never reads half of it).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        write_atomically(path, self.to_toml().as_bytes())
    }

    /// The entry of the node at 0-based `index` (node id `index + 1`).
    pub fn node(&self, index: usize) -> Option<&NodeEntry> {
        self.nodes.iter().find(|node| node.id == index as u64 + 1)
    }

    /// Checks that this file describes nodes 1..=N, and that it is the layout `--nodes` and
    /// `--base-port` ask for when they were given; the error says what differs.
    pub fn check_local(&self, nodes: Option<usize>, base_port: Option<u16>) -> anyhow::Result<()> {
        let count = self.nodes.len();
        if (0..count).any(|index| self.node(index).is_none()) {
            bail!("the node ids must be 1 to {count} for `cluster local`");
        }
        if let Some(nodes) = nodes.filter(|&nodes| nodes != count) {
            bail!("it has {count} nodes, --nodes asks for {nodes}");
        }
        if let Some(base_port) = base_port {
            let expected = ClusterConfig::local(count, base_port)?;
            for want in &expected.nodes {
                let have = self.node(want.id as usize - 1).expect("checked above");
                if have != want {
                    bail!(
                        "node {} has api {} and peer {}, --base-port {base_port} means api {} \
                         and peer {}",
                        want.id,
                        have.api,
                        have.peer,
                        want.api,
                        want.peer
                    );
                }
            }
        }
        Ok(())
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| {
        format!(
            "cannot rename {} to {}",
            temporary.display(),
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_layout_numbers_nodes_from_one_and_peers_a_hundred_ports_up() {
        let config = ClusterConfig::local(3, 8000).unwrap();
        assert_eq!(
            config.node(1).unwrap(),
            &NodeEntry {
                id: 2,
                api: "127.0.0.1:8001".into(),
                peer: "127.0.0.1:8101".into()
            }
        );
        assert_eq!(config.nodes.len(), 3);
        assert!(config.node(3).is_none());
    }

    #[test]
    fn written_config_reads_back_the_same() {
        let config = ClusterConfig::local(5, 9000).unwrap();
        let text = config.to_toml();
        assert!(text
            .contains("[[node]]\nid = 1\napi = \"127.0.0.1:9000\"\npeer = \"127.0.0.1:9100\"\n"));
        assert_eq!(ClusterConfig::parse(&text).unwrap(), config);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.toml");
        config.write(&path).unwrap();
        assert_eq!(ClusterConfig::read(&path).unwrap(), config);
    }

    #[test]
    fn local_layout_refuses_node_counts_and_ports_out_of_range() {
        assert!(ClusterConfig::local(0, 8000).is_err());
        assert!(ClusterConfig::local(LOCAL_NODES_MAX + 1, 8000).is_err());
        assert!(ClusterConfig::local(3, 0).is_err());
        assert!(ClusterConfig::local(3, 65_433).is_ok());
        let error = ClusterConfig::local(3, 65_434).unwrap_err().to_string();
        assert!(error.contains("65434..=65536"), "{error}");
    }

    #[test]
    fn configs_without_nodes_or_with_duplicate_or_zero_ids_are_refused() {
        assert!(ClusterConfig::parse("").is_err());
        let node = |id: u64| format!("[[node]]\nid = {id}\napi = \"a:1\"\npeer = \"a:2\"\n");
        assert!(ClusterConfig::parse(&node(0)).is_err());
        assert!(ClusterConfig::parse(&(node(1) + &node(1))).is_err());
        assert!(ClusterConfig::parse("[[node]]\nid = 1\napi = \"a:1\"\n").is_err());
        assert!(ClusterConfig::parse(&(node(2) + &node(1))).is_ok());
    }

    #[test]
    fn rerun_refuses_a_node_count_or_base_port_that_disagrees_with_the_file() {
        let config = ClusterConfig::local(3, 8000).unwrap();
        config.check_local(None, None).unwrap();
        config.check_local(Some(3), Some(8000)).unwrap();
        let error = config.check_local(Some(4), None).unwrap_err().to_string();
        assert!(error.contains("has 3 nodes, --nodes asks for 4"), "{error}");
        let error = config
            .check_local(None, Some(9000))
            .unwrap_err()
            .to_string();
        assert!(error.contains("--base-port 9000"), "{error}");
        let gap =
            ClusterConfig::parse("[[node]]\nid = 2\napi = \"a:1\"\npeer = \"a:2\"\n").unwrap();
        assert!(gap.check_local(None, None).is_err());
    }

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        assert_eq!(toml_string(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
