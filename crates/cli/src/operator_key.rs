//! `--key KEY` (or `CROUPIER_KEY`): the operator key a command sends to a node as
//! `Authorization: Bearer`. One definition flattened into every command that talks to a node
//! (`cluster`, `bench ledger --server`, `bench bank`, `check bank`), so the flag, its checks and
//! the messages about a refused key are the same everywhere.
//!
//! The key is a secret: it is never echoed, neither in Debug output nor in a parse error (clap
//! quotes a rejected value, so the check below builds its own message), and `--help` hides the
//! environment's value.

use std::ffi::OsStr;
use std::fmt;

use croupier_server::auth::keys::OPERATOR_KEY_PREFIX;

#[derive(clap::Args, Clone, Default)]
pub struct KeyArgs {
    /// An operator key (`croupier keys create`), sent as `Authorization: Bearer`; not needed
    /// while the node is in protected mode (no operator key, loopback address).
    #[arg(
        long = "key",
        env = "CROUPIER_KEY",
        hide_env_values = true,
        value_name = "KEY",
        value_parser = KeyParser
    )]
    key: Option<OperatorKey>,
}

impl KeyArgs {
    /// The key given, if any: an empty one (`CROUPIER_KEY= croupier …`) is none.
    pub fn key(&self) -> Option<&OperatorKey> {
        self.key.as_ref().filter(|key| !key.0.is_empty())
    }

    /// The key as the HTTP client takes it.
    pub fn bearer(&self) -> Option<&str> {
        self.key().map(OperatorKey::expose)
    }
}

/// An operator key as given on the command line: `crk.<id>.<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorKey(String);

impl OperatorKey {
    /// Checks the shape only (the node checks the secret). Visible ASCII only: the key is
    /// written into a request head by hand, where a line break would start a new header.
    pub fn parse(text: &str) -> Result<OperatorKey, &'static str> {
        let shaped = text
            .strip_prefix(OPERATOR_KEY_PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(id, secret)| !id.is_empty() && !secret.is_empty());
        if !shaped {
            return Err("not an operator key: expected crk.<id>.<secret>, as `croupier keys create` prints it");
        }
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err("an operator key has no spaces, control or non-ASCII characters");
        }
        Ok(OperatorKey(text.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorKey(<redacted>)")
    }
}

/// clap's value parser for `--key`: its errors name the flag, never the value.
#[derive(Clone)]
struct KeyParser;

impl clap::builder::TypedValueParser for KeyParser {
    type Value = OperatorKey;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<OperatorKey, clap::Error> {
        let refuse = |problem: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("--key (or CROUPIER_KEY): {problem}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("an operator key is ASCII"))?;
        if text.is_empty() {
            // Kept as "no key" (see `KeyArgs::key`) rather than refused: clearing the variable
            // for one command is how a shell says "not this time".
            return Ok(OperatorKey(String::new()));
        }
        OperatorKey::parse(text).map_err(refuse)
    }
}

/// A node refused a request for its credentials. Asking again with the same ones cannot help,
/// so callers that retry (the bank's setup) stop at this error.
#[derive(Debug)]
pub struct CredentialsRefused {
    status: u16,
    hint: &'static str,
}

impl CredentialsRefused {
    /// The refusal an answer's status means, given whether a key was sent; None for any
    /// other answer.
    pub fn from_status(status: u16, sent_key: bool) -> Option<CredentialsRefused> {
        let hint = match (status, sent_key) {
            (401, false) => {
                "the node has operator keys: give one with --key or CROUPIER_KEY \
                 (`croupier keys create`)"
            }
            (401, true) => {
                "the node does not accept this key: unknown, revoked, or not an operator key"
            }
            (403, true) => {
                "this key's role may not do this (`croupier keys list` shows each key's role)"
            }
            _ => return None,
        };
        Some(CredentialsRefused { status, hint })
    }

    pub fn hint(&self) -> &'static str {
        self.hint
    }
}

impl fmt::Display for CredentialsRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.status == 403 {
            "forbidden"
        } else {
            "unauthorized"
        };
        write!(f, "http {} {what}: {}", self.status, self.hint)
    }
}

impl std::error::Error for CredentialsRefused {}

/// True when `error` or one of its causes is a [`CredentialsRefused`].
pub fn is_refused(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<CredentialsRefused>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        key: KeyArgs,
    }

    const KEY: &str = "crk.op-0a1b2c3d4e.5f00d5ec7e7";

    #[test]
    fn keys_parse_from_the_flag_and_never_show_in_debug_output() {
        let cli = Cli::try_parse_from(["test", "--key", KEY]).unwrap();
        assert_eq!(cli.key.bearer(), Some(KEY));
        let debug = format!("{:?}", cli.key.key());
        assert!(!debug.contains("5f00d5ec7e7"), "{debug}");
        let without = Cli::try_parse_from(["test"]).unwrap();
        assert_eq!(without.key.bearer(), None);
        let empty = Cli::try_parse_from(["test", "--key", ""]).unwrap();
        assert_eq!(empty.key.bearer(), None);
    }

    #[test]
    fn a_malformed_key_is_refused_without_quoting_it() {
        for bad in [
            "op-0a1b2c3d4e.5f00d5ec7e7",
            "crk.op-0a1b2c3d4e",
            "crk..5f00d5ec7e7",
            "crk.op-0a1b2c3d4e.5f00d5ec7e7\r\nx-injected: 1",
            "crk.op-0a1b2c3d4e.5f00 d5ec7e7",
        ] {
            let error = Cli::try_parse_from(["test", "--key", bad])
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"))
                .to_string();
            assert!(error.contains("--key"), "{error}");
            assert!(!error.contains("5f00"), "the key is quoted: {error}");
        }
    }

    #[test]
    fn refusals_for_credentials_say_what_to_do() {
        let missing = CredentialsRefused::from_status(401, false).unwrap();
        assert!(missing.to_string().contains("--key or CROUPIER_KEY"));
        assert!(CredentialsRefused::from_status(401, true)
            .unwrap()
            .hint()
            .contains("does not accept this key"));
        assert!(CredentialsRefused::from_status(403, true).is_some());
        assert!(CredentialsRefused::from_status(403, false).is_none());
        assert!(CredentialsRefused::from_status(404, true).is_none());
        let error = anyhow::Error::new(missing).context("setting up");
        assert!(is_refused(&error));
        assert!(!is_refused(&anyhow::anyhow!("http 503")));
    }
}
