//! Who is calling, and what they may do.
//!
//! Every request is first given a [`Caller`] by `crate::authenticate` (a middleware):
//! - `Authorization: Bearer crk.<id>.<secret>`: an operator key with a role (`keys`);
//! - `Authorization: Bearer crs.<token>`: a player's session (`passwords`, ledger state);
//! - `X-Croupier-Key: <id>` with `X-Croupier-Signature: <hex HMAC-SHA256>`: a game provider;
//!   the signed bytes are the path and query, a newline, then the body (empty for a GET);
//! - both an `Authorization` and an `X-Croupier-Key` header: refused (401), whichever is valid;
//! - nothing: `Local` in protected mode (no operator key configured and a loopback listen
//!   address, as Redis does), else `Public` (health, metrics, the API document and login only).
//!
//! Then each handler states the callers it accepts (an [`Access`]); a player caller is further
//! limited by the handler to its own objects, and anything else answers 404 so ids cannot be
//! probed. Operator writes are wrapped in `Command::ByOperator`, so the hash-chained log is the
//! audit trail of who did what and when.

pub mod keys;
pub mod limits;
pub mod passwords;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use croupier_core::players::{PlayerId, TokenHash};
use croupier_core::Command;

use crate::error::ApiError;
pub use keys::{KeyRing, KeyRingHandle, Role};

pub const PROVIDER_KEY_HEADER: &str = "x-croupier-key";
pub const PROVIDER_SIGNATURE_HEADER: &str = "x-croupier-signature";
/// The key id the audit trail names for unauthenticated operator calls in protected mode.
pub const LOOPBACK_KEY_ID: &str = "loopback";

/// How the node authenticates; fixed at start (the key ring reloads by itself).
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// The keys file (`croupier keys`); `None` means no keys at all (protected mode only).
    pub keys_file: Option<std::path::PathBuf>,
    /// Lifetime of a player session from login.
    pub session_ttl_s: u32,
    pub limits: limits::RateLimitConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            keys_file: None,
            session_ttl_s: 24 * 3600,
            limits: limits::RateLimitConfig::default(),
        }
    }
}

/// What the handlers share about authentication.
pub struct Auth {
    pub ring: KeyRingHandle,
    /// The listen address is loopback: protected mode may apply.
    pub loopback: bool,
    pub session_ttl_s: u32,
    pub limits: limits::RateLimits,
}

impl Auth {
    /// With no operator key, unauthenticated calls are accepted on a loopback listener only.
    pub fn protected_mode(&self) -> bool {
        self.loopback && !self.ring.current().has_operator_keys()
    }
}

/// Who made a request (a request extension set by `authenticate`).
#[derive(Clone, Debug)]
pub enum Caller {
    Public,
    Local,
    Operator {
        key_id: Arc<str>,
        role: Role,
    },
    Provider {
        key_id: Arc<str>,
    },
    Player {
        player_id: PlayerId,
        token_hash: TokenHash,
    },
}

/// The callers a route accepts. A player is accepted only where its own data is at stake; the
/// handler then limits it to that.
#[derive(Clone, Copy, Debug)]
pub struct Access {
    pub operator: &'static [Role],
    pub provider: bool,
    pub player: bool,
}

impl Access {
    pub const fn operators(roles: &'static [Role]) -> Access {
        Access {
            operator: roles,
            provider: false,
            player: false,
        }
    }
}

/// Every operator role: reads.
pub const ANY_ROLE: &[Role] = &[Role::Admin, Role::Finance, Role::Support, Role::ReadOnly];

impl Caller {
    /// `Ok` if this caller may use a route with `access`: 401 without credentials, 403 for a
    /// caller of the wrong kind or role.
    pub fn require(&self, access: Access) -> Result<(), ApiError> {
        let allowed = match self {
            Caller::Local => true,
            Caller::Operator { role, .. } => access.operator.contains(role),
            Caller::Provider { .. } => access.provider,
            Caller::Player { .. } => access.player,
            Caller::Public => return Err(unauthorized("credentials required")),
        };
        if allowed {
            return Ok(());
        }
        let roles: Vec<&str> = access.operator.iter().map(|r| r.name()).collect();
        let mut accepted = Vec::new();
        if !roles.is_empty() {
            accepted.push(format!("operator keys with role {}", roles.join(", ")));
        }
        if access.provider {
            accepted.push("signed provider calls".to_string());
        }
        if access.player {
            accepted.push("player sessions".to_string());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this route accepts {}", accepted.join(" or ")),
        ))
    }

    /// The player a session belongs to, for routes that limit players to their own data.
    pub fn player(&self) -> Option<PlayerId> {
        match self {
            Caller::Player { player_id, .. } => Some(*player_id),
            _ => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Operator { role, .. } => Some(*role),
            Caller::Local => Some(Role::Admin),
            _ => None,
        }
    }

    /// An operator's write carries the operator's key id into the log (the audit trail).
    pub fn attribute(&self, command: Command) -> Command {
        let Some(key_id) = self.operator_key_id() else {
            return command;
        };
        Command::ByOperator {
            key_id: key_id.to_string(),
            command: Box::new(command),
            recorded: true,
        }
    }

    /// The operator key id this caller acts under (`loopback` in protected mode), if any.
    pub fn operator_key_id(&self) -> Option<&str> {
        match self {
            Caller::Operator { key_id, .. } => Some(key_id),
            Caller::Local => Some(LOOPBACK_KEY_ID),
            _ => None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or(Caller::Public))
    }
}

/// The client's address (set by the accept loop).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

pub fn unauthorized(message: &'static str) -> ApiError {
    let mut error = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    error.www_authenticate = true;
    error
}

pub(crate) fn wall_clock_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A route's access rule as a type, so the check runs as an extractor: before the body is read
/// (a caller without credentials gets 401 whatever it sent).
pub trait Policy {
    const ACCESS: Access;
}

/// The caller, once it passed the route's `P`.
pub struct Allowed<P>(pub Caller, pub std::marker::PhantomData<P>);

impl<S: Send + Sync, P: Policy> FromRequestParts<S> for Allowed<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::ACCESS)?;
        Ok(Allowed(caller, std::marker::PhantomData))
    }
}

macro_rules! policy {
    ($(#[$doc:meta])* $name:ident, $roles:expr, provider: $provider:expr, player: $player:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl Policy for $name {
            const ACCESS: Access = Access {
                operator: $roles,
                provider: $provider,
                player: $player,
            };
        }
    };
}

policy!(
    /// Reads of operator data: accounts, transfers, events, cluster status.
    OperatorRead, ANY_ROLE, provider: false, player: false
);
policy!(
    /// Seeded verification of the running program and its certified games (regulators act
    /// through an admin or a read-only key).
    CertificationRead, &[Role::Admin, Role::ReadOnly], provider: false, player: false
);
policy!(
    /// Reads a player may make of its own objects (others answer 404).
    OperatorOrOwnerRead, ANY_ROLE, provider: false, player: true
);
policy!(
    /// Money: creating accounts and transfers.
    MoneyWrite, &[Role::Admin, Role::Finance], provider: false, player: false
);
policy!(
    /// Registering players, revoking sessions.
    PlayerAdmin, &[Role::Admin, Role::Support], provider: false, player: false
);
policy!(
    /// A player's own sessions, or support acting for it.
    PlayerAdminOrSelf, &[Role::Admin, Role::Support], provider: false, player: true
);
policy!(
    /// Seamless-wallet calls of game providers.
    ProviderCall, &[], provider: true, player: false
);
policy!(
    /// A wallet balance: the provider, an operator or the player itself.
    BalanceRead, ANY_ROLE, provider: true, player: true
);
policy!(
    /// A player's session only (`/v1/players/me`, logout).
    PlayerOnly, &[], provider: false, player: true
);
policy!(
    /// Creating and changing live tables (game, currency, timing, limits).
    TableAdmin, &[Role::Admin], provider: false, player: false
);
policy!(
    /// Membership and leadership changes.
    ClusterAdmin, &[Role::Admin], provider: false, player: false
);
