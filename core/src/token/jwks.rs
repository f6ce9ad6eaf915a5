//! The JWKS cache: the provider's signing keys, fetched through the pinned
//! client, cached, and fetched again (rate-limited) when a token names a key
//! id the cache does not know, which is how key rotation shows itself.

use crate::error::Error;
use crate::tls::PinnedClient;
use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Where a JWKS comes from. The HTTP fetcher is the real one; tests may serve
/// a fixed set.
#[async_trait]
pub trait JwksFetcher: Send + Sync {
    /// Fetch the current key set.
    async fn fetch(&self) -> Result<JwkSet, Error>;
}

/// Fetches a JWKS over the pinned client.
#[derive(Debug)]
pub struct HttpJwksFetcher {
    client: PinnedClient,
    url: reqwest::Url,
}

impl HttpJwksFetcher {
    pub fn new(client: PinnedClient, url: reqwest::Url) -> Self {
        Self { client, url }
    }
}

#[async_trait]
impl JwksFetcher for HttpJwksFetcher {
    async fn fetch(&self) -> Result<JwkSet, Error> {
        let response = self.client.send(self.client.http().get(self.url.clone())).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Server {
                status: status.as_u16(),
                message: format!("fetching the JWKS from {} failed", self.url),
            });
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Protocol(format!("reading the JWKS failed: {}", e.without_url())))?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol(format!("the JWKS at {} is not a JWK set: {e}", self.url)))
    }
}

/// A fixed key set (tests, benchmarks). It can be replaced to simulate rotation.
#[derive(Debug)]
pub struct StaticJwks(pub RwLock<JwkSet>);

impl StaticJwks {
    pub fn new(set: JwkSet) -> Self {
        Self(RwLock::new(set))
    }

    /// Replace the served key set.
    pub fn replace(&self, set: JwkSet) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = set;
    }
}

#[async_trait]
impl JwksFetcher for StaticJwks {
    async fn fetch(&self) -> Result<JwkSet, Error> {
        Ok(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// Cached signing keys by key id.
pub struct JwksCache {
    fetcher: Box<dyn JwksFetcher>,
    keys: RwLock<HashMap<String, Jwk>>,
    /// Held while fetching: concurrent callers that miss share one fetch.
    last_fetch: Mutex<Option<Instant>>,
    min_interval: Duration,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("min_interval", &self.min_interval)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// The default spacing between two fetches.
    pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(2);

    /// A cache that fetches at most once per `min_interval`.
    pub fn new(fetcher: Box<dyn JwksFetcher>, min_interval: Duration) -> Self {
        Self {
            fetcher,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            min_interval,
            fetches: Default::default(),
        }
    }

    /// How many times the key set has been fetched.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cached(&self, kid: &str) -> Option<Jwk> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(kid).cloned()
    }

    /// The key with id `kid`. An unknown id triggers one fetch; fetches are
    /// spaced at least `min_interval` apart (a caller that needs one sooner
    /// waits for the next slot rather than hammering the provider). `None`
    /// when the provider does not publish the key even after a fetch.
    pub async fn key(&self, kid: &str) -> Result<Option<Jwk>, Error> {
        if let Some(jwk) = self.cached(kid) {
            return Ok(Some(jwk));
        }
        let mut last = self.last_fetch.lock().await;
        // Someone else may have fetched while we waited for the lock.
        if let Some(jwk) = self.cached(kid) {
            return Ok(Some(jwk));
        }
        if let Some(at) = *last {
            tokio::time::sleep_until(at + self.min_interval).await;
        }
        let set = self.fetcher.fetch().await;
        *last = Some(Instant::now());
        let set = set?;
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let map: HashMap<String, Jwk> = set
            .keys
            .into_iter()
            .filter_map(|k| k.common.key_id.clone().map(|id| (id, k)))
            .collect();
        let found = map.get(kid).cloned();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = map;
        Ok(found)
    }
}
