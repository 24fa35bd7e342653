//! Merging the settings' sources with figment, and saying in one line which key of which source
//! is wrong.
//!
//! Environment: `CROUPIER_` + the key path in upper case, a section and its key joined by two
//! underscores (`CROUPIER_NODE_ID`, `CROUPIER_STORAGE__CACHE_SIZE_MAX`). Only variables whose
//! name after `CROUPIER_` is a top-level key or section, or starts with one and `_`, are
//! settings: so `CROUPIER_STORAGE_CACHE_SIZE_MAX` (one underscore) or `CROUPIER_NODE_ID_X` is
//! refused as an unknown key, while `CROUPIER_CONFIG` and `CROUPIER_TEST_KEEP` are left to
//! whoever reads them.

use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::providers::{Env, Serialized};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;

use super::{ServeSettings, SettingsFlags};

const ENV_PREFIX: &str = "CROUPIER_";
/// The file to read when `--config` is not given; not a setting itself.
const CONFIG_VAR: &str = "CROUPIER_CONFIG";

/// The settings from the built-in defaults, the file (`--config`, else `CROUPIER_CONFIG`),
/// the environment and the flags given, each overriding the ones before; checked by
/// `ServeSettings::validate`. Errors are one line naming the key and where its value came from.
pub fn load(flags: &SettingsFlags) -> anyhow::Result<ServeSettings> {
    let file = flags.config.clone().or_else(|| {
        std::env::var_os(CONFIG_VAR)
            .filter(|path| !path.is_empty())
            .map(PathBuf::from)
    });
    let mut figment = Figment::new().merge(Sourced::new(
        Serialized::defaults(ServeSettings::default()),
        Metadata::named("built-in defaults")
            .interpolater(|_: &Profile, _: &[&str]| "(built-in default)".to_string()),
    ));
    if let Some(path) = &file {
        figment = figment.merge(file_provider(path)?);
    }
    let env = Env::prefixed(ENV_PREFIX)
        .filter(|name| is_setting(name.as_str()))
        .split("__");
    let flag_values = drop_unset(Value::serialize(flags).context("cannot read the flags")?);
    let figment = figment
        .merge(Sourced::new(env, env_metadata()))
        .merge(Sourced::new(
            Serialized::defaults(flag_values),
            flag_metadata(),
        ));
    let settings: ServeSettings = figment.extract().map_err(describe)?;
    settings.validate().map_err(|invalid| {
        let keys: Vec<&str> = invalid.key.split('.').collect();
        let place = figment
            .find_metadata(invalid.key)
            .map(|metadata| metadata.interpolate(&Profile::Default, &keys))
            .unwrap_or_default();
        anyhow::anyhow!("{} {place}: {}", invalid.key, invalid.message)
    })?;
    Ok(settings)
}

/// figment's errors (usually one) as one line each: the key, where its value came from, what
/// is wrong.
fn describe(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error.into_iter().map(|error| one_line(&error)).collect();
    anyhow::anyhow!(lines.join("\n"))
}

fn one_line(error: &figment::Error) -> String {
    let keys: Vec<&str> = error.path.iter().map(String::as_str).collect();
    let place = error
        .metadata
        .as_ref()
        .map(|metadata| metadata.interpolate(&Profile::Default, &keys))
        .unwrap_or_default();
    let message = match &error.kind {
        figment::error::Kind::UnknownField(_, expected) => {
            let within = match keys.len() {
                0 | 1 => "at the top level".to_string(),
                _ => format!("in [{}]", keys[..keys.len() - 1].join(".")),
            };
            let mut message = format!("unknown key; {within} the keys are {}", expected.join(", "));
            if place.starts_with("from CROUPIER_") && keys.len() == 1 {
                message.push_str(" (a key in a section is CROUPIER_<SECTION>__<KEY>)");
            }
            message
        }
        other => other.to_string(),
    };
    let head: Vec<String> = [keys.join("."), place]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect();
    match head.is_empty() {
        true => message,
        false => format!("{}: {message}", head.join(" ")),
    }
}

/// The TOML file as a figment provider. Read and parsed here rather than by figment's `toml`
/// feature, which would bring a second TOML parser into the build (Cargo.toml).
fn file_provider(path: &Path) -> anyhow::Result<impl Provider> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    let values: Dict = toml::from_str(&text)
        .map_err(|error| anyhow::anyhow!("{}: {}", path.display(), error.to_string().trim()))?;
    let shown = path.display().to_string();
    let metadata = Metadata::from("config file", path)
        .interpolater(move |_: &Profile, _: &[&str]| format!("in {shown}"));
    Ok(Sourced::new(Serialized::defaults(values), metadata))
}

fn env_metadata() -> Metadata {
    Metadata::named("environment").interpolater(|_: &Profile, keys: &[&str]| {
        format!("from {ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase())
    })
}

fn flag_metadata() -> Metadata {
    Metadata::named("flags").interpolater(|_: &Profile, keys: &[&str]| {
        let key = keys.last().copied().unwrap_or_default();
        format!("from --{}", key.replace('_', "-"))
    })
}

/// Whether `name` (after `CROUPIER_`) is meant as a setting; see the module comment.
fn is_setting(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    setting_names().iter().any(|top| {
        name == *top
            || name
                .strip_prefix(top)
                .is_some_and(|rest| rest.starts_with('_'))
    })
}

/// The top-level keys and sections of `ServeSettings`, as serde names them: derived, so a new
/// section is taken from the environment with no list to update.
fn setting_names() -> &'static [&'static str] {
    match ServeSettings::deserialize(FieldNames) {
        Err(FieldNamesFound(names)) => names,
        Ok(_) => unreachable!("FieldNames yields no data"),
    }
}

/// A deserializer that only records the field names serde asks a struct for.
struct FieldNames;

#[derive(Debug)]
struct FieldNamesFound(&'static [&'static str]);

impl std::fmt::Display for FieldNamesFound {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "fields {:?}", self.0)
    }
}

impl std::error::Error for FieldNamesFound {}

impl serde::de::Error for FieldNamesFound {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        FieldNamesFound(&[])
    }
}

impl<'de> serde::Deserializer<'de> for FieldNames {
    type Error = FieldNamesFound;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(FieldNamesFound(&[]))
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        Err(FieldNamesFound(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The flags that were not given serialize as `None`, which would override the file and the
/// environment with nothing: drop them (an empty section merges as nothing).
fn drop_unset(value: Value) -> Dict {
    let Value::Dict(_, dict) = value else {
        return Dict::new();
    };
    dict.into_iter()
        .filter_map(|(key, value)| match value {
            Value::Empty(..) => None,
            Value::Dict(..) => Some((key, Value::from(drop_unset(value)))),
            other => Some((key, other)),
        })
        .collect()
}

/// A provider under our own name and interpolater, so an error says `in croupier.toml`,
/// `from CROUPIER_NODE_ID` or `from --node-id` rather than figment's generic names.
struct Sourced<P> {
    inner: P,
    metadata: Metadata,
}

impl<P: Provider> Sourced<P> {
    fn new(inner: P, metadata: Metadata) -> Self {
        Sourced { inner, metadata }
    }
}

impl<P: Provider> Provider for Sourced<P> {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.inner.data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_in_the_environment_are_told_by_their_name() {
        assert_eq!(
            setting_names(),
            [
                "data_dir",
                "node_id",
                "listen",
                "cluster",
                "storage",
                "group_commit",
                "auth",
                "rate_limit",
                "edge",
                "live",
                "games",
                "compliance",
                "payments",
                "webhooks",
                "tables"
            ]
        );
        for name in [
            "NODE_ID",
            "STORAGE__CACHE_SIZE_MAX",
            "storage_cache_size_max",
            "LISTEN",
        ] {
            assert!(is_setting(name), "{name}");
        }
        for name in [
            "CONFIG",
            "TEST_KEEP",
            "TEST_LOCK_CHILD_DIR",
            "NODE",
            "STORAGEX",
        ] {
            assert!(!is_setting(name), "{name}");
        }
    }

    #[test]
    fn only_the_flags_given_are_kept() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            flags: SettingsFlags,
        }
        let given = Wrapper::parse_from(["x", "--node-id", "3", "--cache-size-max", "64MiB"]);
        let dict = drop_unset(Value::serialize(&given.flags).unwrap());
        let node_id = dict["node_id"].to_u128();
        assert_eq!(node_id, Some(3));
        let storage = dict["storage"].as_dict().unwrap();
        assert_eq!(storage.len(), 1);
        assert_eq!(storage["cache_size_max"].to_u128(), Some(64 << 20));
        assert!(dict["cluster"].as_dict().unwrap().is_empty());
        // node_id and one dict per flag section (cluster, storage, group_commit, auth).
        assert_eq!(dict.len(), 5);
    }
}
