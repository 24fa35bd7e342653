//! Operator and provider keys: the keys file, its reloading, and checking a presented key.
//!
//! Operator keys are bearer secrets (`crk.<id>.<64 hex>`); the file keeps only the SHA-256 of
//! the secret part. A fast hash is right here (argon2 is for passwords): the secret is 256
//! random bits, so there is nothing to guess. Provider keys sign request bodies with
//! HMAC-SHA256, so the file must hold their secret itself: keep it readable by the node only
//! (the CLI creates it with mode 0600).
//!
//! The file is TOML, written by `croupier keys` and read by every node (give each node of a
//! cluster the same file). A running node re-reads it when its modification time changes, so
//! a revocation takes effect within `KEYS_RELOAD_INTERVAL` without a restart.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How often a node looks at the keys file's modification time.
pub const KEYS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// The prefix of an operator key as presented in `Authorization: Bearer`.
pub const OPERATOR_KEY_PREFIX: &str = "crk.";
const SECRET_BYTES: usize = 32;

/// What an operator key may do. Each operator route names the roles it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including membership changes and creating accounts.
    Admin,
    /// Money: accounts, transfers (and the only role that may debit a house account).
    Finance,
    /// Players: registration, session revocation, reads.
    Support,
    /// Reads only.
    ReadOnly,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Finance, Role::Support, Role::ReadOnly];

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Finance => "finance",
            Role::Support => "support",
            Role::ReadOnly => "read_only",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == text)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysFile {
    #[serde(default, rename = "operator", skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<OperatorKeyEntry>,
    #[serde(default, rename = "provider", skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderKeyEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorKeyEntry {
    pub id: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Hex SHA-256 of the secret part of the key.
    pub secret_sha256: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderKeyEntry {
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Hex HMAC-SHA256 key.
    pub secret: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl fmt::Debug for ProviderKeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderKeyEntry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read keys file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write keys file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("keys file {path} is not valid: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no key with id {0:?}")]
    UnknownKey(String),
}

impl KeysFile {
    /// The file at `path`; an absent file is an empty one.
    pub fn load(path: &Path) -> Result<KeysFile, KeyFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(KeyFileError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let file: KeysFile = toml::from_str(&text).map_err(|error| KeyFileError::Invalid {
            path: path.to_path_buf(),
            message: error.message().to_string(),
        })?;
        file.check(path)?;
        Ok(file)
    }

    fn check(&self, path: &Path) -> Result<(), KeyFileError> {
        let invalid = |message: String| KeyFileError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut seen = std::collections::HashSet::new();
        let ids = self.operators.iter().map(|k| &k.id);
        for id in ids.chain(self.providers.iter().map(|k| &k.id)) {
            if !croupier_core::command::check_operator_key_id(id) || !seen.insert(id) {
                return Err(invalid(format!("key id {id:?} is malformed or repeated")));
            }
        }
        for key in &self.operators {
            if hex_32(&key.secret_sha256).is_none() {
                return Err(invalid(format!(
                    "key {} has a malformed secret_sha256",
                    key.id
                )));
            }
        }
        for key in &self.providers {
            if hex_32(&key.secret).is_none() {
                return Err(invalid(format!("key {} has a malformed secret", key.id)));
            }
        }
        Ok(())
    }

    /// Writes the file whole (temporary file, fsync, rename), readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        let write_error = |source| KeyFileError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut text = String::from(
            "# Croupier keys, written by `croupier keys`. Operator keys are stored as the SHA-256\n\
             # of their secret; provider keys hold their HMAC secret: keep this file private.\n\n",
        );
        text.push_str(&toml::to_string(self).expect("keys serialize"));
        let temporary = path.with_extension("toml.tmp");
        write_private(&temporary, text.as_bytes()).map_err(write_error)?;
        std::fs::rename(&temporary, path).map_err(write_error)
    }

    /// Adds an operator key; answers the key to hand to the operator (shown once).
    pub fn add_operator(&mut self, role: Role, name: &str) -> String {
        let id = self.fresh_id("op");
        let secret = hex::encode(random_bytes());
        self.operators.push(OperatorKeyEntry {
            id: id.clone(),
            role,
            name: name.to_string(),
            secret_sha256: hex::encode(Sha256::digest(secret.as_bytes())),
            created_at: now_rfc3339(),
            revoked_at: None,
        });
        format!("{OPERATOR_KEY_PREFIX}{id}.{secret}")
    }

    /// Adds a provider key; answers (id, hex secret).
    pub fn add_provider(&mut self, name: &str) -> (String, String) {
        let id = self.fresh_id("pv");
        let secret = hex::encode(random_bytes());
        self.providers.push(ProviderKeyEntry {
            id: id.clone(),
            name: name.to_string(),
            secret: secret.clone(),
            created_at: now_rfc3339(),
            revoked_at: None,
        });
        (id, secret)
    }

    pub fn revoke(&mut self, id: &str) -> Result<(), KeyFileError> {
        let now = now_rfc3339();
        let operator = self.operators.iter_mut().find(|k| k.id == id);
        if let Some(key) = operator {
            key.revoked_at.get_or_insert(now);
            return Ok(());
        }
        match self.providers.iter_mut().find(|k| k.id == id) {
            Some(key) => {
                key.revoked_at.get_or_insert(now);
                Ok(())
            }
            None => Err(KeyFileError::UnknownKey(id.to_string())),
        }
    }

    fn fresh_id(&self, prefix: &str) -> String {
        loop {
            let id = format!("{prefix}-{}", hex::encode(&random_bytes()[..5]));
            let taken = self.operators.iter().any(|k| k.id == id)
                || self.providers.iter().any(|k| k.id == id);
            if !taken {
                return id;
            }
        }
    }
}

/// Writes a file only its owner may read (0600), fsynced: for secrets.
#[cfg(unix)]
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// A fresh 256-bit secret from the OS, as 64 hex digits (a cluster's peer secret).
pub fn new_secret_hex() -> String {
    hex::encode(random_bytes())
}

fn random_bytes() -> [u8; SECRET_BYTES] {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn hex_32(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// The keys a node checks requests against: the file's active keys, indexed.
#[derive(Default)]
pub struct KeyRing {
    operators: HashMap<String, (Role, [u8; 32])>,
    providers: HashMap<String, [u8; 32]>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("operators", &self.operators.len())
            .field("providers", &self.providers.len())
            .finish()
    }
}

impl KeyRing {
    pub fn from_file(file: &KeysFile) -> KeyRing {
        let active_operators = file.operators.iter().filter(|k| k.revoked_at.is_none());
        let active_providers = file.providers.iter().filter(|k| k.revoked_at.is_none());
        KeyRing {
            operators: active_operators
                .filter_map(|k| Some((k.id.clone(), (k.role, hex_32(&k.secret_sha256)?))))
                .collect(),
            providers: active_providers
                .filter_map(|k| Some((k.id.clone(), hex_32(&k.secret)?)))
                .collect(),
        }
    }

    pub fn has_operator_keys(&self) -> bool {
        !self.operators.is_empty()
    }

    /// The key id and role of a presented operator key (`crk.<id>.<secret>`), if it is active
    /// and its secret matches. The comparison is of hashes, so its timing tells nothing
    /// about the secret.
    pub fn operator(&self, presented: &str) -> Option<(&str, Role)> {
        let rest = presented.strip_prefix(OPERATOR_KEY_PREFIX)?;
        let (id, secret) = rest.split_once('.')?;
        let (stored_id, (role, hash)) = self.operators.get_key_value(id)?;
        let presented_hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        (presented_hash == *hash).then_some((stored_id.as_str(), *role))
    }

    /// The HMAC key of an active provider.
    pub fn provider_secret(&self, id: &str) -> Option<&[u8; 32]> {
        self.providers.get(id)
    }
}

/// The current key ring of a running node, replaced when the file changes.
#[derive(Clone)]
pub struct KeyRingHandle {
    ring: Arc<RwLock<Arc<KeyRing>>>,
    path: Option<PathBuf>,
}

impl KeyRingHandle {
    /// Loads `path` now: a node must not start on a keys file it cannot read.
    pub fn load(path: &Path) -> Result<KeyRingHandle, KeyFileError> {
        let ring = KeyRing::from_file(&KeysFile::load(path)?);
        Ok(KeyRingHandle {
            ring: Arc::new(RwLock::new(Arc::new(ring))),
            path: Some(path.to_path_buf()),
        })
    }

    /// A fixed ring (tests and embedders without a file).
    pub fn fixed(ring: KeyRing) -> KeyRingHandle {
        KeyRingHandle {
            ring: Arc::new(RwLock::new(Arc::new(ring))),
            path: None,
        }
    }

    pub fn current(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Re-reads the file whenever its modification time changes. A file that became
    /// unreadable or invalid keeps the previous keys (and says so): a typo must not lock every
    /// operator out, nor open the node.
    pub async fn watch(self) {
        let Some(path) = self.path.clone() else {
            return;
        };
        let mut seen = modified(&path);
        let mut interval = tokio::time::interval(KEYS_RELOAD_INTERVAL);
        loop {
            interval.tick().await;
            let now = modified(&path);
            if now == seen {
                continue;
            }
            seen = now;
            match KeysFile::load(&path) {
                Ok(file) => {
                    let ring = KeyRing::from_file(&file);
                    tracing::info!(
                        operators = ring.operators.len(),
                        providers = ring.providers.len(),
                        "keys reloaded"
                    );
                    *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
                }
                Err(error) => {
                    tracing::warn!(%error, "keys file not reloaded; keeping the previous keys")
                }
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_operator_key_is_accepted_and_a_revoked_one_is_not() {
        let mut file = KeysFile::default();
        let key = file.add_operator(Role::Finance, "alice");
        let ring = KeyRing::from_file(&file);
        let (id, role) = ring.operator(&key).expect("accepted");
        assert_eq!((id, role), (file.operators[0].id.as_str(), Role::Finance));
        let mut tampered = key.clone();
        tampered.pop();
        tampered.push('x');
        assert!(ring.operator(&tampered).is_none());
        file.revoke(&file.operators[0].id.clone()).unwrap();
        assert!(KeyRing::from_file(&file).operator(&key).is_none());
    }

    #[test]
    fn the_keys_file_round_trips_and_never_holds_an_operator_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let mut file = KeysFile::default();
        let key = file.add_operator(Role::Admin, "");
        file.add_provider("studio");
        file.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let secret = key.rsplit('.').next().unwrap();
        assert!(!text.contains(secret));
        let loaded = KeysFile::load(&path).unwrap();
        assert_eq!(loaded.operators.len(), 1);
        assert_eq!(loaded.providers.len(), 1);
    }

    #[test]
    fn an_unknown_field_in_the_keys_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        std::fs::write(&path, "[[operator]]\nid = \"a\"\nrole = \"admin\"\nsecret_sha256 = \"00\"\ncreated_at = \"x\"\ncolour = 1\n").unwrap();
        assert!(matches!(
            KeysFile::load(&path),
            Err(KeyFileError::Invalid { .. })
        ));
    }
}
