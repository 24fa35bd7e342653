//! The bank's key set (`GET /jwks.json`) as last fetched, and when: the cache a connector's
//! notifications and OBIE answers are verified against. It owns only the caching, its refetch
//! rules and the check-then-refetch-once loop; the caller says how to fetch, so this module
//! needs neither the transport nor the notifications and answers that use it (they depend on
//! it, it on none of them).

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::connector::ConnectorError;
use crate::jws::{Jwks, JwsError};

/// An unknown kid refetches the bank's keys at most this often: a flood of forged
/// notifications with made-up kids must not become a flood of requests to the bank.
const JWKS_REFETCH_INTERVAL_MIN_MS: u64 = 10_000;

/// Why a signature checked against the bank's keys was not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BankKeysError {
    /// The keys could not be fetched: our side or the bank's, not proof of a forgery.
    #[error("the bank's keys cannot be had: {0}")]
    Unavailable(ConnectorError),
    /// Checked against the keys, and refused.
    #[error("{0}")]
    Refused(JwsError),
}

/// The bank's keys as last fetched, and when.
#[derive(Default)]
pub(crate) struct BankKeys {
    current: RwLock<Option<(Arc<Jwks>, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl BankKeys {
    fn cached(&self) -> Option<(Arc<Jwks>, Instant)> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `check` with the bank's keys (fetched with `fetch` if none are cached), and once
    /// more with refetched keys if it names a kid the cached set does not have (the bank
    /// rotated its key). The cached set serves every later check: no fetch per signature.
    pub(crate) async fn verify<T, F>(
        &self,
        fetch: impl Fn() -> F,
        check: impl Fn(&Jwks) -> Result<T, JwsError>,
    ) -> Result<T, BankKeysError>
    where
        F: Future<Output = Result<Jwks, ConnectorError>>,
    {
        let keys = self.get(&fetch).await.map_err(BankKeysError::Unavailable)?;
        match check(&keys) {
            Err(JwsError::UnknownKey(_)) => {
                let keys = self
                    .newer(&keys, &fetch)
                    .await
                    .map_err(BankKeysError::Unavailable)?;
                check(&keys).map_err(BankKeysError::Refused)
            }
            other => other.map_err(BankKeysError::Refused),
        }
    }

    /// The keys, fetched with `fetch` if none are cached yet.
    async fn get<E, F>(&self, fetch: impl FnOnce() -> F) -> Result<Arc<Jwks>, E>
    where
        F: Future<Output = Result<Jwks, E>>,
    {
        if let Some((keys, _)) = self.cached() {
            return Ok(keys);
        }
        let _one_at_a_time = self.refresh.lock().await;
        if let Some((keys, _)) = self.cached() {
            return Ok(keys);
        }
        self.store(fetch).await
    }

    /// Keys newer than `stale` (which lacked a kid): fetched again unless another caller just
    /// did, or the last fetch is too recent (`JWKS_REFETCH_INTERVAL_MIN_MS`).
    async fn newer<E, F>(
        &self,
        stale: &Arc<Jwks>,
        fetch: impl FnOnce() -> F,
    ) -> Result<Arc<Jwks>, E>
    where
        F: Future<Output = Result<Jwks, E>>,
    {
        let _one_at_a_time = self.refresh.lock().await;
        if let Some((keys, fetched)) = self.cached() {
            let recent = fetched.elapsed() < Duration::from_millis(JWKS_REFETCH_INTERVAL_MIN_MS);
            if !Arc::ptr_eq(&keys, stale) || recent {
                return Ok(keys);
            }
        }
        self.store(fetch).await
    }

    /// Fetches and caches; called with `refresh` held, so one fetch runs at a time.
    async fn store<E, F>(&self, fetch: impl FnOnce() -> F) -> Result<Arc<Jwks>, E>
    where
        F: Future<Output = Result<Jwks, E>>,
    {
        let keys = Arc::new(fetch().await?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            Some((Arc::clone(&keys), Instant::now()));
        Ok(keys)
    }
}
