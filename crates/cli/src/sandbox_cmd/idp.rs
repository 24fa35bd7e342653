//! `croupier sandbox idp`: a sandbox identity provider. It holds one signing key (made from OS
//! randomness on first start, kept owner-only in `DIR/idp-key.json`, reused after), serves its
//! public JWKS and an OpenID discovery document, and signs whatever identity attestation it is
//! asked for: expired and under-age ones included, since tests need those. Only input it cannot
//! turn into a well-formed attestation is refused (400 or 422, `{"code","message"}`).
//!
//! The signing is `croupier_risk::identity::issue::Issuer`, so what it issues is exactly what
//! the node's verifier reads.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::common::{init_tracing, write_owner_only, Problem, StopSignals};
use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::{Args, ValueEnum};
use croupier_risk::identity::issue::{Issuer, IssuerKeyError};
use croupier_risk::identity::{AddressClaim, AttestationClaims, CivilDate, Jwks, SigningAlg};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const KEY_FILE: &str = "idp-key.json";
/// An attestation's lifetime when the request names none: long enough for a demo, short
/// enough that a copied token goes stale the same day.
const TTL_S_DEFAULT: u64 = 3_600;
/// The latest expiry a request may ask for, from now: a year. Further is a typo, not a test.
const TTL_S_MAX: u64 = 366 * 86_400;
/// A P-256 key needs its 32 bytes below the curve order (each draw fails with chance ~2^-32):
/// a few draws, and failing them all means the random source is broken.
const KEY_DRAWS_MAX: u32 = 4;

#[derive(Args, Debug)]
pub struct IdpArgs {
    /// Address to listen on; port 0 takes any free port (the ready line on stdout names it).
    #[arg(long, default_value = "127.0.0.1:9201")]
    listen: String,
    /// Directory of the signing key (idp-key.json, created on first start, owner-only).
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// The issuer (`iss`) of the attestations [default: http://<listen address>].
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
    /// Signature algorithm of a new key [default: es256]. A kept key keeps its algorithm: a
    /// different one here is an error (remove DIR/idp-key.json to change it).
    #[arg(long, value_enum)]
    alg: Option<AlgArg>,
    /// Print the public JWKS (creating the key if there is none yet) and exit: what a node's
    /// trusted-issuers configuration takes.
    #[arg(long)]
    print_jwks: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum AlgArg {
    Es256,
    Eddsa,
}

impl From<AlgArg> for SigningAlg {
    fn from(alg: AlgArg) -> SigningAlg {
        match alg {
            AlgArg::Es256 => SigningAlg::Es256,
            AlgArg::Eddsa => SigningAlg::EdDsa,
        }
    }
}

pub fn run(args: IdpArgs) -> anyhow::Result<ExitCode> {
    let requested_alg = args.alg.map(SigningAlg::from);
    if args.print_jwks {
        let key = load_or_create_key(&args.data_dir, requested_alg)?;
        // The JWKS does not depend on the issuer's name (the kid is the key's thumbprint).
        let issuer = Issuer::from_secret("sandbox", key.alg, &key.secret)?;
        println!("{}", serde_json::to_string_pretty(&issuer.jwks())?);
        return Ok(ExitCode::SUCCESS);
    }
    init_tracing();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args, requested_alg))?;
    Ok(ExitCode::SUCCESS)
}

struct Sandbox {
    issuer: Issuer,
    jwks_uri: String,
}

async fn serve(args: IdpArgs, requested_alg: Option<SigningAlg>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let name = args.issuer.unwrap_or_else(|| format!("http://{addr}"));
    let key = load_or_create_key(&args.data_dir, requested_alg)?;
    let issuer = Issuer::from_secret(name, key.alg, &key.secret)?;
    tracing::info!(
        alg = issuer.alg().jws_name(),
        kid = issuer.kid(),
        "signing key loaded"
    );
    let sandbox = Arc::new(Sandbox {
        issuer,
        jwks_uri: format!("http://{addr}/.well-known/jwks.json"),
    });
    let app = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/v1/attestations", post(attestations))
        .fallback(not_found)
        .with_state(Arc::clone(&sandbox));
    // Listening for the stop signals before the ready line: a SIGTERM right after it must
    // stop us cleanly, not kill us by the default action.
    let stop = StopSignals::listen()?;
    println!(
        "sandbox idp listening on {addr} issuer {}",
        sandbox.issuer.issuer()
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.wait())
        .await
        .context("serving")?;
    tracing::info!("sandbox idp stopped");
    Ok(())
}

async fn jwks(State(sandbox): State<Arc<Sandbox>>) -> Json<Jwks> {
    Json(sandbox.issuer.jwks())
}

async fn openid_configuration(State(sandbox): State<Arc<Sandbox>>) -> Json<Value> {
    Json(json!({
        "issuer": sandbox.issuer.issuer(),
        "jwks_uri": sandbox.jwks_uri,
    }))
}

async fn not_found() -> Response {
    Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route".into()).into_response()
}

/// The body is read as bytes and parsed here, not by axum's `Json`, so that every refusal has
/// the `{"code","message"}` shape.
async fn attestations(State(sandbox): State<Arc<Sandbox>>, body: Bytes) -> Response {
    let request = match serde_json::from_slice::<AttestationRequest>(&body) {
        Ok(request) => request,
        Err(error) => return Problem::from_json_error(&error).into_response(),
    };
    let claims = match request.into_claims(now_unix_s()) {
        Ok(claims) => claims,
        Err(problem) => return problem.into_response(),
    };
    match sandbox.issuer.sign(&claims) {
        Ok(attestation) => {
            // No personal data in the log: the expiry and the age claims' presence only.
            tracing::info!(
                exp = claims.exp,
                birthdate = claims.birthdate.is_some(),
                age_over_18 = claims.age_over_18,
                "attestation issued"
            );
            Json(json!({ "attestation": attestation })).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "signing failed");
            let message = format!("signing failed: {error}");
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message).into_response()
        }
    }
}

/// `POST /v1/attestations`. Times in Unix seconds; `ttl_s` (from now) or `expires_at`, not
/// both (neither: an hour).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttestationRequest {
    subject: String,
    #[serde(default)]
    name: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    birth_date: Option<String>,
    #[serde(default)]
    age_over_18: Option<bool>,
    /// ISO 3166-1 alpha-2, upper case.
    country: String,
    /// The postal address as one line (signed as OIDC's `address.formatted`).
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    ttl_s: Option<u64>,
    #[serde(default)]
    expires_at: Option<u64>,
    #[serde(default)]
    not_before: Option<u64>,
}

impl AttestationRequest {
    /// The claims to sign, issued now. Only the form is checked; an expired, not-yet-valid or
    /// under-age attestation is issued as asked.
    fn into_claims(self, now_unix_s: u64) -> Result<AttestationClaims, Problem> {
        let invalid = |message: &str| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                message.into(),
            )
        };
        if self.subject.is_empty() {
            return Err(invalid("subject is empty"));
        }
        if let Some(date) = &self.birth_date {
            CivilDate::parse_iso(date).ok_or_else(|| invalid("birth_date is not YYYY-MM-DD"))?;
        }
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(
                "country is not ISO 3166-1 alpha-2 in capitals (GB)",
            ));
        }
        let expires_at_max = now_unix_s + TTL_S_MAX;
        let exp = match (self.ttl_s, self.expires_at) {
            (Some(_), Some(_)) => return Err(invalid("give ttl_s or expires_at, not both")),
            (Some(ttl_s), None) => now_unix_s.saturating_add(ttl_s),
            (None, Some(expires_at)) => expires_at,
            (None, None) => now_unix_s + TTL_S_DEFAULT,
        };
        if exp > expires_at_max {
            return Err(invalid("the expiry is more than TTL_S_MAX (a year) away"));
        }
        Ok(AttestationClaims {
            iss: None, // the issuer's own
            sub: Some(self.subject),
            iat: Some(now_unix_s),
            exp: Some(exp),
            nbf: self.not_before,
            name: self.name,
            birthdate: self.birth_date,
            age_over_18: self.age_over_18,
            country: Some(self.country),
            address: self.address.map(|formatted| AddressClaim {
                formatted: Some(formatted),
                ..AddressClaim::default()
            }),
        })
    }
}

fn now_unix_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `DIR/idp-key.json`: the key's algorithm and its 32 secret bytes (hex). A sandbox's key, so
/// a plain owner-only file; a real provider's would live in an HSM or KMS.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    alg: SigningAlg,
    secret_hex: String,
}

struct StoredKey {
    alg: SigningAlg,
    secret: [u8; 32],
}

/// The kept key, or a new one (ES256 unless `requested_alg` says otherwise) written first.
fn load_or_create_key(dir: &Path, requested_alg: Option<SigningAlg>) -> anyhow::Result<StoredKey> {
    let path = dir.join(KEY_FILE);
    if path.exists() {
        let key = read_key_file(&path)?;
        if let Some(alg) = requested_alg.filter(|alg| *alg != key.alg) {
            bail!(
                "{} holds an {} key, not {}: remove it to change the algorithm",
                path.display(),
                key.alg.jws_name(),
                alg.jws_name()
            );
        }
        return Ok(key);
    }
    let key = new_key(requested_alg.unwrap_or(SigningAlg::Es256))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = KeyFile {
        alg: key.alg,
        secret_hex: hex::encode(key.secret),
    };
    write_owner_only(&path, serde_json::to_string_pretty(&file)?.as_bytes())?;
    tracing::info!(path = %path.display(), alg = key.alg.jws_name(), "new signing key");
    Ok(key)
}

fn new_key(alg: SigningAlg) -> anyhow::Result<StoredKey> {
    for _ in 0..KEY_DRAWS_MAX {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).context("the OS random source failed")?;
        match Issuer::from_secret("sandbox", alg, &secret) {
            Ok(_) => return Ok(StoredKey { alg, secret }),
            Err(IssuerKeyError::SecretOutOfRange) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    bail!("{KEY_DRAWS_MAX} random draws made no valid key: the OS random source is broken")
}

fn read_key_file(path: &Path) -> anyhow::Result<StoredKey> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: KeyFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a key file", path.display()))?;
    let secret = hex::decode(&file.secret_hex)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .with_context(|| format!("{}: secret_hex is not 32 bytes of hex", path.display()))?;
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        let mode = format!("{mode:o}");
        tracing::warn!(path = %path.display(), %mode, "the key file is readable by others");
    }
    Ok(StoredKey {
        alg: file.alg,
        secret,
    })
}
