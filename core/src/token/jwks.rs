//! The JWKS cache: the provider's signing keys, fetched through the pinned
//! client and cached for as long as the provider says (`Cache-Control:
//! max-age`, clamped to [`JwksCache::MIN_AGE`]..[`JwksCache::MAX_AGE`], one
//! hour when it says nothing), then fetched again. An unknown `kid` also
//! fetches again, which is how key rotation shows itself; a key the provider
//! withdrew stops being trusted at the next fetch. Fetches are rate-limited.
//!
//! Only signing keys are kept (RFC 7517 section 4.2 and 4.3): a key whose
//! `use` is not `sig`, or whose `key_ops` lacks `verify`, never verifies a
//! signature.

use crate::error::Error;
use crate::net::tls::{BodyKind, PinnedClient};
use async_trait::async_trait;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyOperations, PublicKeyUse};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A fetched key set and how long the provider lets it be cached.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub set: JwkSet,
    /// The answer's `Cache-Control: max-age`, if it had one.
    pub max_age: Option<Duration>,
}

impl From<JwkSet> for Fetched {
    fn from(set: JwkSet) -> Self {
        Self { set, max_age: None }
    }
}

/// Where a JWKS comes from. The HTTP fetcher is the real one; tests may serve
/// a fixed set.
#[async_trait]
pub trait JwksFetcher: Send + Sync {
    /// Fetch the current key set.
    async fn fetch(&self) -> Result<Fetched, Error>;
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

/// The `max-age` of a `Cache-Control` header value (RFC 9111 section
/// 5.2.2.1); `no-store` and `no-cache` mean zero.
pub fn cache_max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age
}

#[async_trait]
impl JwksFetcher for HttpJwksFetcher {
    async fn fetch(&self) -> Result<Fetched, Error> {
        let response = self.client.send(self.client.http().get(self.url.clone())).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Server {
                status: status.as_u16(),
                message: format!("fetching the JWKS from {} failed", self.url),
                retry_after: None,
            });
        }
        let max_age = response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok())
            .and_then(cache_max_age);
        let body = self.client.read_body(response, BodyKind::Protocol).await?;
        let set = serde_json::from_slice(&body)
            .map_err(|e| Error::Protocol(format!("the JWKS at {} is not a JWK set: {e}", self.url)))?;
        Ok(Fetched { set, max_age })
    }
}

/// A fixed key set (tests, benchmarks). It can be replaced to simulate
/// rotation, and can be told to fail.
#[derive(Debug)]
pub struct StaticJwks {
    set: RwLock<JwkSet>,
    max_age: RwLock<Option<Duration>>,
    failures: std::sync::atomic::AtomicU32,
}

impl StaticJwks {
    pub fn new(set: JwkSet) -> Self {
        Self {
            set: RwLock::new(set),
            max_age: RwLock::new(None),
            failures: Default::default(),
        }
    }

    /// Replace the served key set.
    pub fn replace(&self, set: JwkSet) {
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = set;
    }

    /// Answer with this `Cache-Control: max-age`.
    pub fn set_max_age(&self, age: Option<Duration>) {
        *self.max_age.write().unwrap_or_else(|e| e.into_inner()) = age;
    }

    /// Fail the next `n` fetches with a 503.
    pub fn fail_next(&self, n: u32) {
        self.failures.store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl JwksFetcher for StaticJwks {
    async fn fetch(&self) -> Result<Fetched, Error> {
        use std::sync::atomic::Ordering;
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Error::Server {
                status: 503,
                message: "the JWKS is unavailable (simulated)".into(),
                retry_after: None,
            });
        }
        Ok(Fetched {
            set: self.set.read().unwrap_or_else(|e| e.into_inner()).clone(),
            max_age: *self.max_age.read().unwrap_or_else(|e| e.into_inner()),
        })
    }
}

/// Whether a JWK may verify signatures: its `use`, when given, is `sig`, and
/// its `key_ops`, when given, include `verify`.
pub fn is_signing_key(jwk: &Jwk) -> bool {
    let use_ok = match &jwk.common.public_key_use {
        None | Some(PublicKeyUse::Signature) => true,
        Some(_) => false,
    };
    let ops_ok = jwk
        .common
        .key_operations
        .as_ref()
        .is_none_or(|ops| ops.iter().any(|op| matches!(op, KeyOperations::Verify)));
    use_ok && ops_ok
}

struct Keys {
    by_kid: HashMap<String, Jwk>,
    /// When the set stops being trusted without a new fetch.
    fresh_until: Option<Instant>,
}

/// Cached signing keys by key id.
pub struct JwksCache {
    fetcher: Box<dyn JwksFetcher>,
    keys: RwLock<Keys>,
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
    /// How long a key set is trusted when the provider does not say.
    pub const DEFAULT_AGE: Duration = Duration::from_secs(3600);
    /// The shortest a key set is trusted, whatever the provider says (so a
    /// `no-cache` JWKS is not fetched for every token).
    pub const MIN_AGE: Duration = Duration::from_secs(300);
    /// The longest a key set is trusted, whatever the provider says.
    pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

    /// A cache that fetches at most once per `min_interval`.
    pub fn new(fetcher: Box<dyn JwksFetcher>, min_interval: Duration) -> Self {
        Self {
            fetcher,
            keys: RwLock::new(Keys {
                by_kid: HashMap::new(),
                fresh_until: None,
            }),
            last_fetch: Mutex::new(None),
            min_interval,
            fetches: Default::default(),
        }
    }

    /// How many times the key set has been fetched.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The key `kid` if the cached set is still fresh and has it.
    fn cached(&self, kid: &str) -> Option<Jwk> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let fresh = keys.fresh_until.is_some_and(|t| Instant::now() < t);
        fresh.then(|| keys.by_kid.get(kid).cloned()).flatten()
    }

    /// The key with id `kid`. An unknown id, or a key set past its age,
    /// triggers one fetch; fetches are spaced at least `min_interval` apart
    /// (a caller that needs one sooner waits for the next slot rather than
    /// hammering the provider). `None` when the provider does not publish the
    /// key even after a fetch.
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
        let fetched = self.fetcher.fetch().await;
        *last = Some(Instant::now());
        let fetched = fetched?;
        self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let age = fetched
            .max_age
            .unwrap_or(Self::DEFAULT_AGE)
            .clamp(Self::MIN_AGE, Self::MAX_AGE);
        let by_kid: HashMap<String, Jwk> = fetched
            .set
            .keys
            .into_iter()
            .filter(is_signing_key)
            .filter_map(|k| k.common.key_id.clone().map(|id| (id, k)))
            .collect();
        let found = by_kid.get(kid).cloned();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Keys {
            by_kid,
            fresh_until: Some(Instant::now() + age),
        };
        Ok(found)
    }
}
