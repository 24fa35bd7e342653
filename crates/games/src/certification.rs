//! Certification a node cannot vouch for by itself: the game manifest (`MANIFEST`, the SHA-256
//! of every definition file) is signed with a test lab's Ed25519 key, the signature detached in
//! `MANIFEST.sig` (the hex of the 64-byte signature over the exact MANIFEST bytes, one line).
//! A definition set is usable only as [`CertifiedGames`], which exists only once the signature
//! verified against one of the keys the operator trusts and every definition hashed to its
//! manifest line. A patched binary cannot bring its own manifest along: the trusted keys come
//! from the node's configuration.
//!
//! Also here: the development certifying key (a stand-in for a lab, so developers can re-sign
//! the shipped definitions; its secret is `definitions/DEV-LAB-KEY.secret`), key files, and the
//! seeded program verification regulators run (GLI's Game Authentication Terminal idea):
//! HMAC-SHA256 keyed with the regulator's seed over each component's bytes.
//!
//! No I/O: callers read the files and hand over their bytes.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::catalog::embedded_pairs;
use crate::{DefinitionError, Game, Manifest, GAME_NAMES};

/// The manifest's file name in a definitions directory.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// The detached signature's file name in a definitions directory.
pub const SIGNATURE_FILE: &str = "MANIFEST.sig";

/// The development certifying key's public half: the default trusted key. Production
/// configurations name their lab's key instead (`[games] trusted_keys`).
pub const DEV_LAB_PUBLIC_KEY_HEX: &str =
    "2d74570181e13aff6286d55e5cb442a77e7434c50af485ed3d4d39f5bf58e2cc";

const EMBEDDED_MANIFEST: &str = include_str!("../definitions/MANIFEST");
const EMBEDDED_SIGNATURE: &str = include_str!("../definitions/MANIFEST.sig");

/// Shortest and longest seed of a certification request, in bytes.
pub const SEED_BYTES_MIN: usize = 16;
pub const SEED_BYTES_MAX: usize = 64;

/// Why a definition set is not certified, or a key, signature or seed is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificationError {
    #[error("{what} is not valid: {reason}")]
    Format { what: &'static str, reason: String },
    #[error("no trusted certifying key is configured")]
    NoTrustedKey,
    #[error(
        "the manifest signature does not verify against any trusted certifying key \
         (trusted: {trusted}): the manifest was changed after signing, or signed by another key"
    )]
    Untrusted { trusted: String },
    #[error("definition file '{file}' is not a game this build knows (known: {known})")]
    UnknownFile { file: String, known: String },
    #[error("the manifest lists '{file}' but the definitions hold no such file")]
    Missing { file: String },
    #[error(transparent)]
    Definition(#[from] DefinitionError),
}

fn format_error(what: &'static str, reason: impl Into<String>) -> CertificationError {
    CertificationError::Format {
        what,
        reason: reason.into(),
    }
}

/// Strips `#` comment lines and blank lines: the one remaining line, trimmed.
fn single_value_line<'a>(what: &'static str, text: &'a str) -> Result<&'a str, CertificationError> {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    let line = lines
        .next()
        .ok_or_else(|| format_error(what, "it holds no value"))?;
    if lines.next().is_some() {
        return Err(format_error(what, "it holds more than one value line"));
    }
    Ok(line)
}

fn hex_array<const N: usize>(
    what: &'static str,
    text: &str,
) -> Result<[u8; N], CertificationError> {
    let bytes =
        hex::decode(text.trim()).map_err(|e| format_error(what, format!("not hex ({e})")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format_error(what, format!("{} bytes, expected {N}", b.len())))
}

/// A certifying public key (Ed25519).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// 64 hex digits.
    pub fn from_hex(text: &str) -> Result<PublicKey, CertificationError> {
        let bytes = hex_array::<32>("the public key", text)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| format_error("the public key", "not a point of Ed25519"))
    }

    /// A public key file: the hex line, `#` comment lines allowed.
    pub fn from_file_text(text: &str) -> Result<PublicKey, CertificationError> {
        PublicKey::from_hex(single_value_line("the public key file", text)?)
    }

    /// The development lab key (the default trusted key).
    pub fn dev_lab() -> PublicKey {
        PublicKey::from_hex(DEV_LAB_PUBLIC_KEY_HEX).expect("the embedded dev key is valid")
    }

    pub fn is_dev_lab(&self) -> bool {
        *self == PublicKey::dev_lab()
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A certifying secret key (Ed25519). Its `Debug` shows the public half only.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}

impl SecretKey {
    /// A key from 32 secret bytes the caller drew from a good generator.
    pub fn from_bytes(secret: [u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(&secret))
    }

    /// A secret key file: 64 hex digits on one line, `#` comment lines allowed.
    pub fn from_file_text(text: &str) -> Result<SecretKey, CertificationError> {
        let line = single_value_line("the secret key file", text)?;
        Ok(SecretKey::from_bytes(hex_array::<32>(
            "the secret key file",
            line,
        )?))
    }

    /// The file text `from_file_text` reads back.
    pub fn to_file_text(&self) -> String {
        self.to_file_text_titled("Croupier games certifying key")
    }

    /// The same, for a key with another use (a live studio's key is an Ed25519 key too).
    pub fn to_file_text_titled(&self, title: &str) -> String {
        format!(
            "# {title} (Ed25519 secret, hex). Keep it secret.\n# Public key: {}\n{}\n",
            self.public(),
            hex::encode(self.0.to_bytes())
        )
    }

    /// Ed25519 signature of `message` (RFC 8032).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The `MANIFEST.sig` text for `manifest`: hex of the signature over its exact bytes.
    pub fn sign_manifest(&self, manifest: &[u8]) -> String {
        format!("{}\n", hex::encode(self.0.sign(manifest).to_bytes()))
    }
}

/// Parses trusted keys, refusing an empty list.
pub fn parse_trusted_keys<S: AsRef<str>>(keys: &[S]) -> Result<Vec<PublicKey>, CertificationError> {
    if keys.is_empty() {
        return Err(CertificationError::NoTrustedKey);
    }
    keys.iter()
        .map(|k| PublicKey::from_hex(k.as_ref()))
        .collect()
}

/// The trusted key that signed `manifest`, if any did.
pub fn verify_manifest_signature(
    manifest: &[u8],
    signature_text: &str,
    trusted: &[PublicKey],
) -> Result<PublicKey, CertificationError> {
    if trusted.is_empty() {
        return Err(CertificationError::NoTrustedKey);
    }
    let line = single_value_line("the manifest signature (MANIFEST.sig)", signature_text)?;
    let bytes = hex_array::<64>("the manifest signature (MANIFEST.sig)", line)?;
    let signature = Signature::from_bytes(&bytes);
    trusted
        .iter()
        .find(|key| key.0.verify(manifest, &signature).is_ok())
        .copied()
        .ok_or_else(|| CertificationError::Untrusted {
            trusted: trusted
                .iter()
                .map(PublicKey::to_hex)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A definition set as files: the manifest, its signature and each `<game>.toml`, by game name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionFiles {
    pub manifest: Vec<u8>,
    pub signature: String,
    /// Game name (the file name without `.toml`) → the file's bytes.
    pub definitions: BTreeMap<String, Vec<u8>>,
}

impl DefinitionFiles {
    /// The set compiled into this binary (signed by the development lab key).
    pub fn embedded() -> DefinitionFiles {
        DefinitionFiles {
            manifest: EMBEDDED_MANIFEST.as_bytes().to_vec(),
            signature: EMBEDDED_SIGNATURE.to_string(),
            definitions: embedded_pairs()
                .into_iter()
                .map(|(name, text)| (name.to_string(), text.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// The manifest pinning exactly these definitions (what `games sign` signs).
    pub fn render_manifest(&self) -> String {
        let pairs: Vec<(&str, &[u8])> = self
            .definitions
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        Manifest::render_bytes(&pairs)
    }

    /// The seeded-verification components besides the binary: the manifest, then each
    /// definition, named as in a definitions directory (`definitions/<file>`).
    pub fn components(&self) -> Vec<(String, &[u8])> {
        let mut components = vec![(
            format!("definitions/{MANIFEST_FILE}"),
            self.manifest.as_slice(),
        )];
        components.extend(
            self.definitions
                .iter()
                .map(|(name, bytes)| (format!("definitions/{name}.toml"), bytes.as_slice())),
        );
        components
    }
}

/// One game of a signed set: its hash, the manifest's and why it failed to load, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetReport {
    /// The key that signed the manifest, or why none of the trusted ones did.
    pub signer: Result<PublicKey, CertificationError>,
    /// A manifest that cannot be parsed, or a file that is not a known game.
    pub set_error: Option<CertificationError>,
    pub games: Vec<crate::VerifyReport>,
}

impl SetReport {
    pub fn ok(&self) -> bool {
        self.signer.is_ok() && self.set_error.is_none() && self.games.iter().all(|g| g.ok())
    }
}

/// Everything `games verify` reports about a set, without stopping at the first problem.
pub fn verify_set(files: &DefinitionFiles, trusted: &[PublicKey]) -> SetReport {
    let signer = verify_manifest_signature(&files.manifest, &files.signature, trusted);
    let manifest = match manifest_of(files) {
        Ok(manifest) => manifest,
        Err(error) => {
            return SetReport {
                signer,
                set_error: Some(error),
                games: vec![],
            }
        }
    };
    let mut set_error = None;
    let mut games = vec![];
    for (name, bytes) in &files.definitions {
        match known_game(name) {
            Ok(game) => games.push(crate::catalog::report(game, bytes, &manifest)),
            Err(error) => set_error = set_error.or(Some(error)),
        }
    }
    if let Some(file) = missing_file(files, &manifest) {
        set_error = set_error.or(Some(CertificationError::Missing { file }));
    }
    SetReport {
        signer,
        set_error,
        games,
    }
}

fn manifest_of(files: &DefinitionFiles) -> Result<Manifest, CertificationError> {
    let text = std::str::from_utf8(&files.manifest)
        .map_err(|e| format_error("the manifest", format!("not UTF-8 ({e})")))?;
    Ok(Manifest::parse(text)?)
}

fn known_game(name: &str) -> Result<&'static str, CertificationError> {
    GAME_NAMES
        .iter()
        .find(|known| **known == name)
        .copied()
        .ok_or_else(|| CertificationError::UnknownFile {
            file: format!("{name}.toml"),
            known: GAME_NAMES.join(", "),
        })
}

/// A game the manifest lists without a file for it.
fn missing_file(files: &DefinitionFiles, manifest: &Manifest) -> Option<String> {
    manifest
        .games()
        .find(|game| !files.definitions.contains_key(*game))
        .map(|game| format!("{game}.toml"))
}

/// A definition set that passed certification: the only way a node gets its games.
#[derive(Debug, Clone)]
pub struct CertifiedGames {
    files: DefinitionFiles,
    signer: PublicKey,
    games: Vec<Game>,
}

impl CertifiedGames {
    /// Checks the signature against `trusted`, then every definition against the manifest
    /// (hash before parse), then loads each one. Any failure refuses the whole set.
    pub fn verify(
        files: DefinitionFiles,
        trusted: &[PublicKey],
    ) -> Result<CertifiedGames, CertificationError> {
        let signer = verify_manifest_signature(&files.manifest, &files.signature, trusted)?;
        let manifest = manifest_of(&files)?;
        if let Some(file) = missing_file(&files, &manifest) {
            return Err(CertificationError::Missing { file });
        }
        let mut games = Vec::with_capacity(files.definitions.len());
        for (name, bytes) in &files.definitions {
            let name = known_game(name)?;
            games.push(crate::load_checked(name, bytes, &manifest)?);
        }
        Ok(CertifiedGames {
            files,
            signer,
            games,
        })
    }

    /// The embedded set, verified against `trusted`.
    pub fn embedded(trusted: &[PublicKey]) -> Result<CertifiedGames, CertificationError> {
        CertifiedGames::verify(DefinitionFiles::embedded(), trusted)
    }

    pub fn signer(&self) -> PublicKey {
        self.signer
    }

    pub fn files(&self) -> &DefinitionFiles {
        &self.files
    }

    /// The certified games, in file name order.
    pub fn games(&self) -> &[Game] {
        &self.games
    }

    pub fn game(&self, name: &str) -> Option<&Game> {
        self.games.iter().find(|game| game.name() == name)
    }
}

/// Parses a certification seed: 16 to 64 bytes written as hex.
pub fn parse_seed(text: &str) -> Result<Vec<u8>, CertificationError> {
    let what = "the seed";
    let bytes =
        hex::decode(text.trim()).map_err(|e| format_error(what, format!("not hex ({e})")))?;
    if !(SEED_BYTES_MIN..=SEED_BYTES_MAX).contains(&bytes.len()) {
        return Err(format_error(
            what,
            format!(
                "{} bytes; it must be {SEED_BYTES_MIN} to {SEED_BYTES_MAX} bytes of hex",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// HMAC-SHA256 keyed with `seed` over `bytes`, lower-case hex.
pub fn seeded_hmac_hex(seed: &[u8], bytes: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(seed).expect("HMAC takes any key length");
    mac.update(bytes);
    hex::encode(mac.finalize().into_bytes())
}

/// One answer of seeded program verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentHmac {
    pub name: String,
    pub hmac_sha256: String,
}

/// Seeded verification of the running program: `binary` (the executable's bytes) first, then
/// the manifest and each definition of `files`.
pub fn certify(seed: &[u8], binary: &[u8], files: &DefinitionFiles) -> Vec<ComponentHmac> {
    std::iter::once(("binary".to_string(), binary))
        .chain(files.components())
        .map(|(name, bytes)| ComponentHmac {
            name,
            hmac_sha256: seeded_hmac_hex(seed, bytes),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV_LAB_SECRET: &str = include_str!("../definitions/DEV-LAB-KEY.secret");

    fn dev_secret() -> SecretKey {
        SecretKey::from_file_text(DEV_LAB_SECRET).unwrap()
    }

    fn other_secret() -> SecretKey {
        SecretKey::from_bytes([7; 32])
    }

    /// The embedded set with `edit` applied to one definition, re-signed by `signer` (or with
    /// the manifest re-hashed but the old signature kept, when `signer` is None).
    fn patched(
        game: &str,
        edit: impl Fn(&str) -> String,
        signer: Option<&SecretKey>,
    ) -> DefinitionFiles {
        let mut files = DefinitionFiles::embedded();
        let text = String::from_utf8(files.definitions[game].clone()).unwrap();
        let edited = edit(&text);
        assert_ne!(edited, text, "the edit must change the definition");
        files
            .definitions
            .insert(game.to_string(), edited.into_bytes());
        files.manifest = files.render_manifest().into_bytes();
        if let Some(key) = signer {
            files.signature = key.sign_manifest(&files.manifest);
        }
        files
    }

    #[test]
    fn the_checked_in_dev_secret_is_the_embedded_dev_public_key() {
        assert_eq!(dev_secret().public(), PublicKey::dev_lab());
        assert!(PublicKey::dev_lab().is_dev_lab());
    }

    #[test]
    fn the_embedded_manifest_is_signed_by_the_dev_lab_key() {
        let certified = CertifiedGames::embedded(&[PublicKey::dev_lab()]).unwrap_or_else(|e| {
            panic!(
                "{e}; after changing a definition run `croupier games sign --key \
                 crates/games/definitions/DEV-LAB-KEY.secret --definitions crates/games/definitions`"
            )
        });
        assert_eq!(certified.signer(), PublicKey::dev_lab());
        assert_eq!(certified.games().len(), GAME_NAMES.len());
        assert!(verify_set(certified.files(), &[PublicKey::dev_lab()]).ok());
    }

    #[test]
    fn sign_then_verify_round_trips_with_the_signing_key_only() {
        let key = other_secret();
        let files = patched("roulette", |t| format!("{t}\n# re-issued\n"), Some(&key));
        let certified =
            CertifiedGames::verify(files.clone(), &[PublicKey::dev_lab(), key.public()]);
        assert_eq!(certified.unwrap().signer(), key.public());
        let refused = CertifiedGames::verify(files, &[PublicKey::dev_lab()]).unwrap_err();
        assert!(
            matches!(refused, CertificationError::Untrusted { .. }),
            "{refused}"
        );
    }

    #[test]
    fn a_patched_definition_with_its_manifest_line_and_the_old_signature_is_refused() {
        // The attack of issue #9: a split paying 18 and a manifest line to match.
        let files = patched("roulette", |t| t.replace("split = 17", "split = 18"), None);
        let error = CertifiedGames::verify(files.clone(), &[PublicKey::dev_lab()]).unwrap_err();
        assert!(
            matches!(error, CertificationError::Untrusted { .. }),
            "{error}"
        );
        let report = verify_set(&files, &[PublicKey::dev_lab()]);
        assert!(report.signer.is_err() && !report.ok());
    }

    #[test]
    fn a_patched_definition_under_the_signed_manifest_is_refused_naming_the_game() {
        let mut files = DefinitionFiles::embedded();
        files.definitions.insert(
            "dice".into(),
            [files.definitions["dice"].as_slice(), b"\n"].concat(),
        );
        let error = CertifiedGames::verify(files, &[PublicKey::dev_lab()]).unwrap_err();
        assert!(
            matches!(error, CertificationError::Definition(DefinitionError::HashMismatch { ref game, .. }) if game == "dice"),
            "{error}"
        );
    }

    #[test]
    fn a_manifest_signed_by_an_untrusted_key_is_refused() {
        let files = patched("dice", |t| format!("{t}\n"), Some(&other_secret()));
        let error = CertifiedGames::verify(files, &[PublicKey::dev_lab()]).unwrap_err();
        assert!(
            error.to_string().contains(DEV_LAB_PUBLIC_KEY_HEX),
            "{error}"
        );
    }

    #[test]
    fn files_missing_or_unknown_to_the_manifest_are_refused() {
        let key = other_secret();
        let mut files = DefinitionFiles::embedded();
        files.signature = key.sign_manifest(&files.manifest);
        files.definitions.remove("plinko");
        let error = CertifiedGames::verify(files.clone(), &[key.public()]).unwrap_err();
        assert_eq!(
            error,
            CertificationError::Missing {
                file: "plinko.toml".into()
            }
        );
        let mut files = DefinitionFiles::embedded();
        files
            .definitions
            .insert("blackjack".into(), b"game = \"blackjack\"".to_vec());
        files.manifest = files.render_manifest().into_bytes();
        files.signature = key.sign_manifest(&files.manifest);
        let error = CertifiedGames::verify(files, &[key.public()]).unwrap_err();
        assert!(
            matches!(error, CertificationError::UnknownFile { .. }),
            "{error}"
        );
    }

    #[test]
    fn malformed_keys_signatures_and_seeds_are_format_errors() {
        assert!(PublicKey::from_hex("abcd").is_err());
        assert!(PublicKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(parse_trusted_keys::<&str>(&[]).is_err());
        let mut files = DefinitionFiles::embedded();
        files.signature = "not hex".into();
        let error = CertifiedGames::verify(files, &[PublicKey::dev_lab()]).unwrap_err();
        assert!(
            matches!(error, CertificationError::Format { .. }),
            "{error}"
        );
        assert!(parse_seed("00").is_err());
        assert!(parse_seed(&"ab".repeat(65)).is_err());
        assert!(parse_seed("xyz").is_err());
        assert_eq!(parse_seed(&"ab".repeat(16)).unwrap(), vec![0xab; 16]);
    }

    #[test]
    fn secret_key_files_read_back_and_never_show_the_secret_in_debug() {
        let key = other_secret();
        let text = key.to_file_text();
        assert_eq!(
            SecretKey::from_file_text(&text).unwrap().public(),
            key.public()
        );
        assert!(!format!("{key:?}").contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn certify_changes_when_one_byte_of_a_definition_changes() {
        let seed = [0x5a; 16];
        let files = DefinitionFiles::embedded();
        let before = certify(&seed, b"binary bytes", &files);
        let names: Vec<_> = before.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names[..3],
            [
                "binary",
                "definitions/MANIFEST",
                "definitions/baccarat.toml"
            ]
        );
        assert_eq!(before.len(), 2 + GAME_NAMES.len());
        let mut patched = files.clone();
        patched.definitions.get_mut("crash").unwrap()[0] ^= 1;
        let after = certify(&seed, b"binary bytes", &patched);
        let changed: Vec<_> = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| b.hmac_sha256 != a.hmac_sha256)
            .map(|(b, _)| b.name.as_str())
            .collect();
        assert_eq!(changed, ["definitions/crash.toml"]);
        // Another seed gives other answers: a recorded answer cannot be replayed.
        assert_ne!(certify(&[0x5b; 16], b"binary bytes", &files)[0], before[0]);
    }

    /// RFC 4231 test case 2 (key "Jefe"), so the convention is plain HMAC-SHA256.
    #[test]
    fn seeded_hmac_is_plain_hmac_sha256() {
        assert_eq!(
            seeded_hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
