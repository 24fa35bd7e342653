//! Seeded program verification over HTTP (`GET /v1/certification?seed=HEX`), as a regulator's
//! authentication terminal does it: HMAC-SHA256 keyed with the regulator's fresh seed over the
//! running executable's bytes and over each certified game file this node verified at start.
//! A regulator with its own copy of the certified files computes the same HMACs; a node cannot
//! answer for files it does not hold, and a fresh seed makes a recorded answer useless.
//! Operator roles admin and read_only (and `Local` in protected mode).

use std::path::PathBuf;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_games::certification::{certify, parse_seed, DefinitionFiles};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Allowed, CertificationRead};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::state::AppState;

/// The largest executable the route reads (a release build is a few tens of MiB).
const BINARY_BYTES_MAX: u64 = 1 << 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CertificationQuery {
    /// The verifier's seed: 16 to 64 bytes as hex (32 to 128 hex digits). Use a fresh one per
    /// request.
    #[param(required = true, pattern = "^([0-9a-fA-F]{2}){16,64}$")]
    pub seed: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CertificationOut {
    /// The seed, as lower-case hex.
    pub seed: String,
    /// The public key (hex) whose signature over the manifest this node verified at start.
    pub signed_by: String,
    /// `binary` (the running executable), `definitions/MANIFEST`, then each
    /// `definitions/<game>.toml`.
    pub components: Vec<ComponentOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentOut {
    pub name: String,
    /// Hex HMAC-SHA256 keyed with the seed's bytes over the component's bytes.
    pub hmac_sha256: String,
}

fn invalid_seed(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_seed", message)
}

/// Seeded verification of the running binary and of every certified game file.
#[utoipa::path(
    get, path = crate::paths::ROUTE_CERTIFICATION, tag = "certification",
    params(CertificationQuery),
    responses(
        (status = 200, body = CertificationOut),
        (status = 400, description = "invalid_seed: the seed is missing, not hex, or not 16 to 64 bytes; invalid_query: an unknown query parameter", body = ErrorBody),
        (status = 500, description = "internal: the running executable cannot be read", body = ErrorBody),
    )
)]
pub async fn certification<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(_caller, ..): Allowed<CertificationRead>,
    crate::extract::ApiQuery(query): crate::extract::ApiQuery<CertificationQuery>,
) -> Result<Response, ApiError> {
    let text = query
        .seed
        .ok_or_else(|| invalid_seed("the query needs `seed`: 16 to 64 bytes as hex".into()))?;
    let seed = parse_seed(&text).map_err(|error| invalid_seed(error.to_string()))?;
    let games = state.games();
    let files: DefinitionFiles = games.files().clone();
    let signed_by = games.signer().to_hex();
    // An operator call, rare: read the executable each time rather than hold it in memory.
    let components = tokio::task::spawn_blocking(move || {
        read_binary().map(|binary| certify(&seed, &binary, &files))
    })
    .await
    .map_err(|_| ApiError::internal("the certification task failed"))?
    .map_err(ApiError::internal)?;
    let out = CertificationOut {
        seed: text.to_ascii_lowercase(),
        signed_by,
        components: components
            .into_iter()
            .map(|c| ComponentOut {
                name: c.name,
                hmac_sha256: c.hmac_sha256,
            })
            .collect(),
    };
    Ok(json_response(StatusCode::OK, &out))
}

/// The running executable's bytes, at most `BINARY_BYTES_MAX`. On Linux through
/// `/proc/self/exe`, which opens the image this process runs even if its file was replaced or
/// removed since (an upgrade in place): the answer is about what runs, not what is on disk.
fn read_binary() -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = match std::fs::File::open("/proc/self/exe") {
        Ok(file) => file,
        Err(_) => {
            let path: PathBuf = std::env::current_exe()
                .map_err(|e| format!("cannot locate the running executable: {e}"))?;
            std::fs::File::open(&path)
                .map_err(|e| format!("cannot read the running executable: {e}"))?
        }
    };
    let mut bytes = Vec::new();
    file.take(BINARY_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the running executable: {e}"))?;
    if bytes.len() as u64 > BINARY_BYTES_MAX {
        return Err("the running executable is larger than 1 GiB".into());
    }
    Ok(bytes)
}
