//! The certified set: embedded definitions, the SHA-256 manifest that pins them, and the
//! loader that refuses any definition whose hash the manifest does not name.
//!
//! The manifest (`definitions/MANIFEST`) is in `sha256sum` format, so a lab can check the
//! files with `sha256sum -c MANIFEST` and regenerate it with `sha256sum *.toml > MANIFEST`.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::{baccarat, crash, dice, game_show_wheel, money_wheel, plinko, roulette, Game};

/// Every game this build ships, by CLI name.
pub const GAME_NAMES: [&str; 7] = [
    "roulette",
    "money-wheel",
    "game-show-wheel",
    "baccarat",
    "crash",
    "dice",
    "plinko",
];

struct Embedded {
    name: &'static str,
    text: &'static str,
}

const EMBEDDED: [Embedded; 7] = [
    Embedded {
        name: "roulette",
        text: include_str!("../definitions/roulette.toml"),
    },
    Embedded {
        name: "money-wheel",
        text: include_str!("../definitions/money-wheel.toml"),
    },
    Embedded {
        name: "game-show-wheel",
        text: include_str!("../definitions/game-show-wheel.toml"),
    },
    Embedded {
        name: "baccarat",
        text: include_str!("../definitions/baccarat.toml"),
    },
    Embedded {
        name: "crash",
        text: include_str!("../definitions/crash.toml"),
    },
    Embedded {
        name: "dice",
        text: include_str!("../definitions/dice.toml"),
    },
    Embedded {
        name: "plinko",
        text: include_str!("../definitions/plinko.toml"),
    },
];

const MANIFEST_TEXT: &str = include_str!("../definitions/MANIFEST");

/// Why a definition could not be loaded. Every variant names the game.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("unknown game '{name}'; known games: {known}")]
    UnknownGame { name: String, known: String },
    #[error(
        "game '{game}' is not in the certified manifest (its definition hashes to sha256 {actual})"
    )]
    NotCertified { game: String, actual: String },
    #[error(
        "definition of game '{game}' does not match the certified manifest: \
         expected sha256 {expected}, actual sha256 {actual}"
    )]
    HashMismatch {
        game: String,
        expected: String,
        actual: String,
    },
    #[error("definition of game '{game}' cannot be parsed: {message}")]
    Syntax { game: String, message: String },
    #[error("definition of game '{game}', field `{field}`: {reason}")]
    Invalid {
        game: String,
        field: String,
        reason: String,
    },
    #[error("manifest line {line}: {reason}")]
    Manifest { line: usize, reason: String },
}

/// Game name → expected SHA-256 (lower-case hex) of its definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    expected: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest compiled into this binary.
    pub fn embedded() -> Result<Manifest, DefinitionError> {
        Manifest::parse(MANIFEST_TEXT)
    }

    /// Parses `sha256sum` output: `<64 hex>  <game>.toml` per line; blank lines and lines
    /// starting with `#` are skipped.
    pub fn parse(text: &str) -> Result<Manifest, DefinitionError> {
        let mut expected = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |reason: &str| DefinitionError::Manifest {
                line: index + 1,
                reason: reason.to_string(),
            };
            let (hash, file) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| error("expected '<sha256>  <game>.toml'"))?;
            let file = file.trim_start().trim_start_matches('*');
            let is_hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
            if !is_hex {
                return Err(error("the hash is not 64 hex digits"));
            }
            let game = file
                .strip_suffix(".toml")
                .ok_or_else(|| error("file is not a .toml"))?;
            if expected
                .insert(game.to_string(), hash.to_ascii_lowercase())
                .is_some()
            {
                return Err(error("game listed twice"));
            }
        }
        Ok(Manifest { expected })
    }

    /// A manifest pinning exactly `definitions` (name, text), in `sha256sum` format.
    pub fn render(definitions: &[(&str, &str)]) -> String {
        let bytes: Vec<(&str, &[u8])> = definitions
            .iter()
            .map(|(name, text)| (*name, text.as_bytes()))
            .collect();
        Manifest::render_bytes(&bytes)
    }

    /// As `render`, over the files' bytes.
    pub fn render_bytes(definitions: &[(&str, &[u8])]) -> String {
        let mut sorted: Vec<_> = definitions.to_vec();
        sorted.sort_by_key(|(name, _)| format!("{name}.toml"));
        sorted
            .iter()
            .map(|(name, bytes)| format!("{}  {name}.toml\n", sha256_hex(bytes)))
            .collect()
    }

    /// The games the manifest lists, by name.
    pub fn games(&self) -> impl Iterator<Item = &str> {
        self.expected.keys().map(String::as_str)
    }

    pub fn expected(&self, game: &str) -> Option<&str> {
        self.expected.get(game).map(String::as_str)
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The embedded definition text of `name`, if this build ships that game.
pub fn embedded_definition(name: &str) -> Option<&'static str> {
    EMBEDDED.iter().find(|e| e.name == name).map(|e| e.text)
}

/// Loads the embedded definition of `name`, checked against the embedded manifest.
pub fn load(name: &str) -> Result<Game, DefinitionError> {
    let text = embedded_definition(name).ok_or_else(|| DefinitionError::UnknownGame {
        name: name.to_string(),
        known: GAME_NAMES.join(", "),
    })?;
    load_checked(name, text.as_bytes(), &Manifest::embedded()?)
}

/// Loads definition `bytes` as game `name`, refusing it unless its SHA-256 is the one
/// `manifest` names for that game. The hash is checked before the bytes are parsed.
pub fn load_checked(
    name: &str,
    bytes: &[u8],
    manifest: &Manifest,
) -> Result<Game, DefinitionError> {
    let actual = sha256_hex(bytes);
    match manifest.expected(name) {
        None => {
            return Err(DefinitionError::NotCertified {
                game: name.to_string(),
                actual,
            })
        }
        Some(expected) if expected != actual => {
            return Err(DefinitionError::HashMismatch {
                game: name.to_string(),
                expected: expected.to_string(),
                actual,
            })
        }
        Some(_) => {}
    }
    let text = std::str::from_utf8(bytes).map_err(|e| DefinitionError::Syntax {
        game: name.to_string(),
        message: e.to_string(),
    })?;
    parse(name, text)
}

fn parse(name: &str, text: &str) -> Result<Game, DefinitionError> {
    Ok(match name {
        "roulette" => Game::Roulette(roulette::Roulette::from_toml(text)?),
        "money-wheel" => Game::MoneyWheel(money_wheel::MoneyWheel::from_toml(text)?),
        "game-show-wheel" => Game::GameShowWheel(game_show_wheel::GameShowWheel::from_toml(text)?),
        "baccarat" => Game::Baccarat(baccarat::Baccarat::from_toml(text)?),
        "crash" => Game::Crash(crash::Crash::from_toml(text)?),
        "dice" => Game::Dice(dice::Dice::from_toml(text)?),
        "plinko" => Game::Plinko(plinko::Plinko::from_toml(text)?),
        _ => {
            return Err(DefinitionError::UnknownGame {
                name: name.to_string(),
                known: GAME_NAMES.join(", "),
            })
        }
    })
}

/// One line of `croupier games verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub game: &'static str,
    pub actual: String,
    /// `None` when the manifest does not list the game.
    pub expected: Option<String>,
    /// The load error when the hash matched but the definition is invalid.
    pub load_error: Option<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.expected.as_deref() == Some(self.actual.as_str()) && self.load_error.is_none()
    }
}

/// Checks every embedded definition against the embedded manifest, and loads each one.
pub fn verify_embedded() -> Result<Vec<VerifyReport>, DefinitionError> {
    let manifest = Manifest::embedded()?;
    Ok(EMBEDDED
        .iter()
        .map(|embedded| report(embedded.name, embedded.text.as_bytes(), &manifest))
        .collect())
}

/// The report of one definition against `manifest`: hashes, then a load if they agree.
pub(crate) fn report(game: &'static str, bytes: &[u8], manifest: &Manifest) -> VerifyReport {
    let actual = sha256_hex(bytes);
    let expected = manifest.expected(game).map(str::to_string);
    let load_error = if expected.as_deref() == Some(actual.as_str()) {
        load_checked(game, bytes, manifest)
            .err()
            .map(|e| e.to_string())
    } else {
        None
    };
    VerifyReport {
        game,
        actual,
        expected,
        load_error,
    }
}

/// The embedded (name, text) pairs.
pub(crate) fn embedded_pairs() -> Vec<(&'static str, &'static str)> {
    EMBEDDED.iter().map(|e| (e.name, e.text)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_pins_every_shipped_definition() {
        let expected = Manifest::render(&embedded_pairs());
        assert_eq!(
            MANIFEST_TEXT, expected,
            "a definition changed without updating the certified manifest; if the change is \
             intended, write this as crates/games/definitions/MANIFEST \
             (or run `sha256sum *.toml > MANIFEST` there):\n{expected}"
        );
    }

    #[test]
    fn every_shipped_definition_loads_and_verifies() {
        for name in GAME_NAMES {
            let game = load(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(game.name(), name);
        }
        assert!(verify_embedded().unwrap().iter().all(VerifyReport::ok));
    }

    #[test]
    fn tampered_definition_is_refused_naming_game_and_both_hashes() {
        let manifest = Manifest::embedded().unwrap();
        let original = embedded_definition("roulette").unwrap();
        let tampered = original.replace("straight = 35", "straight = 36");
        assert_ne!(original, tampered, "the tamper must change the text");
        let error = load_checked("roulette", tampered.as_bytes(), &manifest).unwrap_err();
        let expected = manifest.expected("roulette").unwrap().to_string();
        let actual = sha256_hex(tampered.as_bytes());
        assert_eq!(
            error,
            DefinitionError::HashMismatch {
                game: "roulette".into(),
                expected: expected.clone(),
                actual: actual.clone()
            }
        );
        let message = error.to_string();
        assert!(
            message.contains("roulette")
                && message.contains(&expected)
                && message.contains(&actual)
        );
    }

    #[test]
    fn definition_missing_from_manifest_is_refused() {
        let manifest = Manifest::parse("").unwrap();
        let text = embedded_definition("dice").unwrap();
        let error = load_checked("dice", text.as_bytes(), &manifest).unwrap_err();
        assert!(matches!(error, DefinitionError::NotCertified { ref game, .. } if game == "dice"));
    }

    #[test]
    fn definition_certified_for_another_game_is_refused() {
        // The dice text is certified as "dice", not as "roulette".
        let manifest = Manifest::embedded().unwrap();
        let text = embedded_definition("dice").unwrap();
        let error = load_checked("roulette", text.as_bytes(), &manifest).unwrap_err();
        assert!(matches!(error, DefinitionError::HashMismatch { .. }));
    }

    #[test]
    fn invalid_definition_with_a_matching_hash_names_game_and_field() {
        let text = embedded_definition("plinko")
            .unwrap()
            .replace("win_cap = 1000", "win_cap = 0");
        let manifest = Manifest::parse(&Manifest::render(&[("plinko", &text)])).unwrap();
        let error = load_checked("plinko", text.as_bytes(), &manifest).unwrap_err();
        assert!(
            matches!(error, DefinitionError::Invalid { ref game, ref field, .. } if game == "plinko" && field == "win_cap"),
            "{error}"
        );
    }

    #[test]
    fn malformed_manifest_line_is_an_error() {
        assert!(matches!(
            Manifest::parse("nothex  roulette.toml"),
            Err(DefinitionError::Manifest { line: 1, .. })
        ));
    }
}
