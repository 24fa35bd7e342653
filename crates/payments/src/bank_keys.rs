//! The bank's key set (`GET /jwks.json`) as last fetched, and when: the cache a connector's
//! notifications are verified against. It owns only the caching and its refetch rules; the
//! caller says how to fetch, so this module needs neither the transport nor the notifications
//! that use it (both depend on it, it on neither).

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::jws::Jwks;

/// An unknown kid refetches the bank's keys at most this often: a flood of forged
/// notifications with made-up kids must not become a flood of requests to the bank.
const JWKS_REFETCH_INTERVAL_MIN_MS: u64 = 10_000;

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

    /// The keys, fetched with `fetch` if none are cached yet.
    pub(crate) async fn get<E, F>(&self, fetch: impl FnOnce() -> F) -> Result<Arc<Jwks>, E>
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
    pub(crate) async fn newer<E, F>(
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
