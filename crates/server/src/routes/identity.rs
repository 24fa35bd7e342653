//! `POST /v1/players/{id}/identity`: a player's identity, proved by a signed attestation from
//! a trusted identity provider. The node verifies it (signature, issuer, expiry, age) before
//! proposing anything; the ledger keeps the claims its checks need and the attestation's
//! SHA-256, and the player becomes KYC `basic`. Then the national self-exclusion register, if
//! one is configured, is asked about the verified person.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use croupier_cluster::Consensus;
use croupier_core::compliance::ComplianceCommand;
use croupier_core::{Command, CommandResult};
use croupier_risk::identity::{verify_attestation, ATTESTATION_BYTES_MAX};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Allowed, PlayerAdminOrSelf};
use crate::compliance::identifiers;
use crate::compliance::{identity_record, register};
use crate::error::{json_response, ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::state::AppState;
use crate::wire::IdOut;
use croupier_core::compliance::SeenIdentifiers;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityIn {
    /// A compact JWS (ES256 or EdDSA) from a trusted identity provider with `iss`, `sub`,
    /// `iat`, `exp`, `country` and `birthdate` or `age_over_18`.
    #[schema(
        max_length = 16384,
        example = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOi….MEUCIQ…"
    )]
    attestation: String,
}

impl std::fmt::Debug for IdentityIn {
    /// An attestation carries personal data: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentityIn { attestation: <redacted> }")
    }
}

#[derive(Serialize, ToSchema)]
pub struct IdentityOut {
    player_id: IdOut,
    /// none, basic or enhanced.
    kyc_level: &'static str,
    /// ISO 3166-1 alpha-2 from the attestation: whose policy applies.
    country: String,
    /// True when the national self-exclusion register named the player (who is now
    /// self-excluded); null when no register is configured or it could not be asked.
    register_match: Option<bool>,
}

fn rejected(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// Verify a player's identity attestation (the player itself, support or admin).
#[utoipa::path(
    post, path = crate::paths::ROUTE_PLAYER_IDENTITY, tag = "compliance",
    params(("player_id" = IdOut, Path, description = "Player id (decimal)")),
    request_body = IdentityIn,
    security(("operator_key" = []), ("player_session" = [])),
    responses(
        (status = 200, body = IdentityOut),
        (status = 400, description = "Malformed input", body = ErrorBody),
        (status = 401, description = "unauthorized", body = ErrorBody),
        (status = 403, description = "forbidden: wrong role", body = ErrorBody),
        (status = 404, description = "player_not_found", body = ErrorBody),
        (status = 413, description = "body_too_large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "attestation_expired, attestation_not_yet_valid, issuer_not_trusted, signature_invalid, under_age, claims_missing, attestation_malformed", body = ErrorBody),
        (status = 503, description = "Overloaded, not leader or shutting down", body = ErrorBody),
    )
)]
pub async fn verify<C: Consensus>(
    State(state): State<AppState<C>>,
    Allowed(caller, ..): Allowed<PlayerAdminOrSelf>,
    path: ApiPath,
    ApiJson(request): ApiJson<IdentityIn>,
) -> Result<Response, ApiError> {
    let player_id = path.id("player id")?;
    if caller.player().is_some_and(|own| own != player_id) {
        return Err(ApiError::not_found("player_not_found", "no such player"));
    }
    if request.attestation.len() > ATTESTATION_BYTES_MAX {
        return Err(rejected(
            "attestation_malformed",
            "the attestation is longer than 16 KiB".into(),
        ));
    }
    let config = state.compliance();
    let now_s = crate::auth::wall_clock_ns() / 1_000_000_000;
    let identity = verify_attestation(
        &request.attestation,
        &config.identity_issuers,
        now_s,
        &config.age,
    )
    .map_err(|rejection| rejected(rejection.code(), rejection.to_string()))?;
    let record = identity_record(&identity)
        .map_err(|error| rejected("attestation_malformed", error.to_string()))?;
    let command = ComplianceCommand::RecordIdentity {
        player_id,
        identity: Box::new(record),
    };
    match state
        .commit(caller.attribute(Command::Compliance(command)))
        .await?
    {
        CommandResult::Compliance(croupier_core::compliance::ComplianceOutcome::Ok) => {}
        CommandResult::Compliance(_) => {
            return Err(ApiError::not_found("player_not_found", "no such player"))
        }
        _ => {
            return Err(ApiError::internal(
                "the ledger answered in an unexpected shape",
            ))
        }
    }
    if let Some(address) = identity
        .address
        .as_deref()
        .filter(|a| identifiers::acceptable(a))
    {
        let seen = SeenIdentifiers {
            address: Some(identifiers::address(address)),
            ..SeenIdentifiers::default()
        };
        // An observation for the AML scoring: the verification stands without it.
        if let Err(error) = state.commit(identifiers::observe(player_id, seen)).await {
            tracing::warn!(code = error.code, "the verified address was not recorded");
        }
    }
    let register_match = match &config.register {
        None => None,
        Some(register) => {
            match register::check_player(state.consensus(), register, player_id).await {
                Ok(matched) => Some(matched),
                Err(error) => {
                    tracing::warn!(%error, %player_id, "national register check failed; the sweep retries");
                    None
                }
            }
        }
    };
    let status = super::compliance::compliance_view(&state, player_id).await?;
    let body = IdentityOut {
        player_id: IdOut(player_id),
        kyc_level: status.kyc_level(),
        country: identity.country,
        register_match,
    };
    Ok(json_response(StatusCode::OK, &body))
}
