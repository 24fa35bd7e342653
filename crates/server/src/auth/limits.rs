//! Rate limits per operator or provider key, per player and per client address (GCRA through
//! `governor`), and the stricter limits on login attempts per username and per address.
//! Refusals answer 429 `rate_limited` with `Retry-After`.
//!
//! Keyed limiters remember each key they saw; `upkeep` forgets keys back at a full quota,
//! and a table that still holds more than `keys_max` is emptied (losing some limits for a
//! moment beats unbounded memory under a flood of new addresses).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use axum::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::Caller;
use crate::error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Requests per second per operator or provider key (0: unlimited).
    pub per_key_per_s: u32,
    /// Requests per second per player session holder (0: unlimited).
    pub per_player_per_s: u32,
    /// Requests per second per client address, whoever calls (0: unlimited).
    pub per_address_per_s: u32,
    /// Login attempts per minute per username and per client address.
    pub login_per_username_per_min: u32,
    pub login_per_address_per_min: u32,
    /// Keys each table remembers at most.
    pub keys_max: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_key_per_s: 0,
            per_player_per_s: 50,
            per_address_per_s: 0,
            login_per_username_per_min: 10,
            login_per_address_per_min: 60,
            keys_max: 100_000,
        }
    }
}

/// A keyed limiter that can be replaced whole when it remembers too many keys.
struct Limiter<K: Hash + Eq + Clone> {
    quota: Quota,
    table: RwLock<DefaultKeyedRateLimiter<K>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(quota: Quota) -> Self {
        Limiter {
            quota,
            table: RwLock::new(RateLimiter::keyed(quota)),
        }
    }

    fn table(&self) -> std::sync::RwLockReadGuard<'_, DefaultKeyedRateLimiter<K>> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn tidy(&self, keys_max: usize) {
        let table = self.table();
        table.retain_recent();
        table.shrink_to_fit();
        let keys = table.len();
        drop(table);
        if keys > keys_max {
            tracing::warn!(keys, keys_max, "rate-limit table full; starting it afresh");
            *self.table.write().unwrap_or_else(|p| p.into_inner()) = RateLimiter::keyed(self.quota);
        }
    }
}

pub struct RateLimits {
    per_key: Option<Limiter<Arc<str>>>,
    per_player: Option<Limiter<u128>>,
    per_address: Option<Limiter<IpAddr>>,
    login_username: Option<Limiter<String>>,
    login_address: Option<Limiter<IpAddr>>,
    keys_max: usize,
}

fn per_second<K: Hash + Eq + Clone>(rate: u32) -> Option<Limiter<K>> {
    // A burst of twice the rate: clients that batch a little are not punished.
    let rate = NonZeroU32::new(rate)?;
    let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
    Some(Limiter::new(Quota::per_second(rate).allow_burst(burst)))
}

fn per_minute<K: Hash + Eq + Clone>(rate: u32) -> Option<Limiter<K>> {
    let rate = NonZeroU32::new(rate)?;
    Some(Limiter::new(Quota::per_minute(rate)))
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> RateLimits {
        RateLimits {
            per_key: per_second(config.per_key_per_s),
            per_player: per_second(config.per_player_per_s),
            per_address: per_second(config.per_address_per_s),
            login_username: per_minute(config.login_per_username_per_min),
            login_address: per_minute(config.login_per_address_per_min),
            keys_max: config.keys_max,
        }
    }

    /// Every request: its caller's quota and its address's.
    pub fn check(&self, caller: &Caller, address: Option<IpAddr>) -> Result<(), ApiError> {
        if let (Some(limiter), Some(address)) = (&self.per_address, address) {
            take(limiter, &address, "too many requests from this address")?;
        }
        match caller {
            Caller::Operator { key_id, .. } | Caller::Provider { key_id } => {
                if let Some(limiter) = &self.per_key {
                    take(limiter, key_id, "too many requests with this key")?;
                }
            }
            Caller::Player { player_id, .. } => {
                if let Some(limiter) = &self.per_player {
                    take(limiter, player_id, "too many requests for this player")?;
                }
            }
            Caller::Public | Caller::Local => {}
        }
        Ok(())
    }

    /// A login attempt, before the password is checked (so guessing costs quota).
    pub fn check_login(&self, username: &str, address: Option<IpAddr>) -> Result<(), ApiError> {
        if let (Some(limiter), Some(address)) = (&self.login_address, address) {
            take(
                limiter,
                &address,
                "too many login attempts from this address",
            )?;
        }
        if let Some(limiter) = &self.login_username {
            take(
                limiter,
                &username.to_string(),
                "too many login attempts for this username",
            )?;
        }
        Ok(())
    }

    /// Forgets keys at a full quota; starts afresh a table that is still too large.
    pub fn upkeep(&self) {
        fn tidy<K: Hash + Eq + Clone>(limiter: &Option<Limiter<K>>, keys_max: usize) {
            if let Some(limiter) = limiter {
                limiter.tidy(keys_max);
            }
        }
        tidy(&self.per_key, self.keys_max);
        tidy(&self.per_player, self.keys_max);
        tidy(&self.per_address, self.keys_max);
        tidy(&self.login_username, self.keys_max);
        tidy(&self.login_address, self.keys_max);
    }
}

fn take<K: Hash + Eq + Clone>(
    limiter: &Limiter<K>,
    key: &K,
    message: &'static str,
) -> Result<(), ApiError> {
    limiter.table().check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        error.retry_after_s =
            std::num::NonZeroU32::new(u32::try_from(seconds.max(1)).unwrap_or(u32::MAX));
        error
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_player_past_its_quota_is_told_when_to_retry() {
        let limits = RateLimits::new(&RateLimitConfig {
            per_player_per_s: 1,
            ..RateLimitConfig::default()
        });
        let caller = Caller::Player {
            player_id: 7,
            token_hash: croupier_core::players::TokenHash([0; 32]),
        };
        assert!(limits.check(&caller, None).is_ok());
        assert!(limits.check(&caller, None).is_ok()); // burst of 2
        let refused = limits.check(&caller, None).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.retry_after_s.is_some());
    }

    #[test]
    fn login_attempts_are_limited_per_username() {
        let limits = RateLimits::new(&RateLimitConfig {
            login_per_username_per_min: 2,
            ..RateLimitConfig::default()
        });
        assert!(limits.check_login("alice", None).is_ok());
        assert!(limits.check_login("alice", None).is_ok());
        assert!(limits.check_login("alice", None).is_err());
        assert!(limits.check_login("bob", None).is_ok());
    }
}
