//! The node's side of compliance that needs I/O or configuration: which identity providers it
//! trusts (attestations are verified here, before anything is proposed; the ledger keeps only
//! the claims its checks need) and, in `register`, the national self-exclusion register.

use std::sync::Arc;

use croupier_core::compliance::{days_from_civil, IdentityRecord, ISSUER_LEN_MAX, NAME_LEN_MAX};
use croupier_risk::identity::{AgePolicy, TrustedIssuers, VerifiedIdentity};
use sha2::{Digest, Sha256};

pub mod aml;
pub mod goaml;
pub mod identifiers;
pub mod reality;
pub mod register;

/// Identity and register settings (`[compliance]` in the node's configuration).
#[derive(Clone, Debug)]
pub struct ComplianceConfig {
    /// Identity providers whose attestations verify a player (none: every attestation is
    /// refused `issuer_not_trusted`).
    pub identity_issuers: Arc<TrustedIssuers>,
    pub age: AgePolicy,
    /// The national self-exclusion register, if the jurisdiction has one.
    pub register: Option<register::RegisterConfig>,
    /// The AML scoring pipeline's rule set and windows.
    pub aml: Arc<aml::AmlShared>,
    /// Whether this node runs the AML pipeline (it proposes only while serving writes).
    pub aml_enabled: bool,
    /// The reporting entity for goAML exports of cases; none: exports answer 409.
    pub goaml: Option<Arc<goaml::GoamlConfig>>,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        ComplianceConfig {
            identity_issuers: Arc::default(),
            age: AgePolicy::default(),
            register: None,
            aml: Arc::default(),
            aml_enabled: true,
            goaml: None,
        }
    }
}

/// Why a verified identity cannot be kept (its claims do not fit the ledger's record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityShapeError {
    #[error("the country claim is not an ISO 3166-1 alpha-2 code")]
    Country,
    #[error("the issuer or name claim is longer than the ledger keeps")]
    TooLong,
    #[error("the birth date is outside the dates the ledger keeps")]
    BirthDate,
}

/// The claims the ledger keeps of a verified identity: issuer, a digest of issuer and subject
/// (the same person on two accounts shows as the same value), name and birth date (for the
/// self-exclusion register), country (which policy applies), expiry and the attestation's
/// SHA-256.
pub fn identity_record(identity: &VerifiedIdentity) -> Result<IdentityRecord, IdentityShapeError> {
    let country: [u8; 2] = identity
        .country
        .as_bytes()
        .try_into()
        .ok()
        .filter(|code: &[u8; 2]| code.iter().all(u8::is_ascii_uppercase))
        .ok_or(IdentityShapeError::Country)?;
    let name = identity.name.clone().unwrap_or_default();
    if identity.issuer.len() > ISSUER_LEN_MAX || name.len() > NAME_LEN_MAX {
        return Err(IdentityShapeError::TooLong);
    }
    let mut subject = Sha256::new();
    subject.update(identity.issuer.as_bytes());
    subject.update([0]);
    subject.update(identity.subject.as_bytes());
    Ok(IdentityRecord {
        issuer: identity.issuer.clone(),
        subject_sha256: subject.finalize().into(),
        name,
        birth_date_days: match identity.birth_date {
            None => None,
            Some(date) => {
                let days = days_from_civil(date.year.into(), date.month, date.day);
                Some(i32::try_from(days).map_err(|_| IdentityShapeError::BirthDate)?)
            }
        },
        country,
        expires_at_s: identity.expires_at_unix_s,
        attestation_sha256: identity.attestation_sha256,
    })
}
