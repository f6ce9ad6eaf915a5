//! The vault: the session record in the OS keychain.
//!
//! Secret Service on Linux, Keychain on macOS, Credential Manager on Windows,
//! through the `keyring` crate. Entries are namespaced by app (the keychain
//! "service", default `session-manager`) and profile (the "account").
//!
//! A record is JSON split into chunks of at most [`CHUNK_CHARS`] characters,
//! because Windows caps one credential at 2560 bytes (UTF-16, so 1280
//! characters) and tokens can be larger. The same chunking runs on every
//! platform, so the Linux tests exercise it. The manifest entry (the profile
//! name) is written last and names a generation, so a reader never mixes the
//! chunks of two writes.
//!
//! The vault never falls back to a file: a missing or locked keychain is
//! [`VaultError::Unavailable`] and the engine keeps the session in memory.

use crate::clock::Timestamp;
use crate::token::Secret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The largest chunk, in characters (below Windows' 1280 UTF-16 units).
pub const CHUNK_CHARS: usize = 1000;
/// The default keychain service name.
pub const DEFAULT_SERVICE: &str = "session-manager";
/// The environment variable that overrides the keychain service name (tests
/// use it to get a namespace of their own).
pub const SERVICE_ENV: &str = "SESSION_MANAGER_KEYCHAIN_SERVICE";

/// Keychain failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the OS keychain is not available ({0}); the session is kept in memory only and will not survive a restart. On Linux, start a Secret Service (gnome-keyring or KeePassXC) and unlock it")]
    Unavailable(String),
    #[error("the keychain entry is damaged ({0}); sign in again to replace it")]
    Corrupt(String),
    #[error("the keychain failed: {0}")]
    Failed(String),
}

/// A key-value store of secrets. The OS keychain is the real one; tests may
/// use [`MemoryStore`].
pub trait SecretStore: Send + Sync {
    /// The value under `account`, `None` when there is none.
    fn get(&self, account: &str) -> Result<Option<String>, VaultError>;
    /// Store `value` under `account`.
    fn set(&self, account: &str, value: &str) -> Result<(), VaultError>;
    /// Delete `account`; deleting a missing entry is not an error.
    fn delete(&self, account: &str) -> Result<(), VaultError>;
}

/// The OS keychain through `keyring`.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

impl KeyringStore {
    /// The keychain namespace `service`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    /// The namespace from `SESSION_MANAGER_KEYCHAIN_SERVICE`, or the default.
    pub fn from_env() -> Self {
        Self::new(
            std::env::var(SERVICE_ENV)
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_SERVICE.into()),
        )
    }

    /// The keychain service name.
    pub fn service(&self) -> &str {
        &self.service
    }

    fn entry(&self, account: &str) -> Result<keyring::Entry, VaultError> {
        keyring::Entry::new(&self.service, account).map_err(map_keyring)
    }
}

fn map_keyring(e: keyring::Error) -> VaultError {
    match e {
        keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
            VaultError::Unavailable(inner.to_string())
        }
        keyring::Error::BadEncoding(_) => VaultError::Corrupt("not UTF-8".into()),
        other => VaultError::Failed(other.to_string()),
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, account: &str) -> Result<Option<String>, VaultError> {
        match self.entry(account)?.get_password() {
            Ok(v) => Ok(Some(v)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_keyring(e)),
        }
    }

    fn set(&self, account: &str, value: &str) -> Result<(), VaultError> {
        self.entry(account)?.set_password(value).map_err(map_keyring)
    }

    fn delete(&self, account: &str) -> Result<(), VaultError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring(e)),
        }
    }
}

/// An in-memory store for unit tests. It can pretend to be unavailable.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, String>>,
    /// When set, every call fails as a missing keychain does.
    pub unavailable: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    /// A store holding `entries`.
    pub fn with_entries(entries: HashMap<String, String>) -> Self {
        Self {
            entries: Mutex::new(entries),
            ..Self::default()
        }
    }

    /// A snapshot of every entry.
    pub fn entries(&self) -> HashMap<String, String> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn check(&self) -> Result<(), VaultError> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(VaultError::Unavailable(
                "no Secret Service on the session bus (simulated)".into(),
            ));
        }
        Ok(())
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<String>, VaultError> {
        self.check()?;
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(account)
            .cloned())
    }
    fn set(&self, account: &str, value: &str) -> Result<(), VaultError> {
        self.check()?;
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account.into(), value.into());
        Ok(())
    }
    fn delete(&self, account: &str) -> Result<(), VaultError> {
        self.check()?;
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(account);
        Ok(())
    }
}

/// What the vault keeps of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub session_id: Uuid,
    pub user: String,
    pub tenant: Option<String>,
    pub customer: Option<String>,
    pub scope: Option<String>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub refresh_count: u32,
    /// The bearer token (FinHub's `userSessionToken`, an OIDC access token).
    pub bearer: Secret,
    pub refresh: Option<Secret>,
    pub id_token: Option<Secret>,
    /// The person's name and email, when the provider gave them (OIDC).
    pub name: Option<String>,
    pub email: Option<String>,
}

/// The serialized form; it exists only inside this module, on its way to the
/// keychain.
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u32,
    session_id: Uuid,
    user: String,
    tenant: Option<String>,
    customer: Option<String>,
    scope: Option<String>,
    issued_at: Timestamp,
    expires_at: Timestamp,
    refresh_count: u32,
    bearer: String,
    refresh: Option<String>,
    id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    v: u32,
    generation: u64,
    chunks: usize,
}

/// The session record of one profile in a [`SecretStore`].
#[derive(Clone)]
pub struct Vault {
    store: Arc<dyn SecretStore>,
    account: String,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// The vault of `profile` in `store`.
    pub fn new(store: Arc<dyn SecretStore>, profile: &str) -> Self {
        Self {
            store,
            account: format!("profile:{profile}"),
        }
    }

    fn chunk_account(&self, generation: u64, index: usize) -> String {
        format!("{}#{generation}#{index}", self.account)
    }

    fn manifest(&self) -> Result<Option<Manifest>, VaultError> {
        match self.store.get(&self.account)? {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| VaultError::Corrupt(format!("manifest: {e}"))),
        }
    }

    /// Store `record`, replacing any previous one.
    pub fn save(&self, record: &SessionRecord) -> Result<(), VaultError> {
        let stored = Stored {
            v: 1,
            session_id: record.session_id,
            user: record.user.clone(),
            tenant: record.tenant.clone(),
            customer: record.customer.clone(),
            scope: record.scope.clone(),
            issued_at: record.issued_at,
            expires_at: record.expires_at,
            refresh_count: record.refresh_count,
            bearer: record.bearer.expose().to_owned(),
            refresh: record.refresh.as_ref().map(|s| s.expose().to_owned()),
            id_token: record.id_token.as_ref().map(|s| s.expose().to_owned()),
            name: record.name.clone(),
            email: record.email.clone(),
        };
        let json = serde_json::to_string(&stored).map_err(|e| VaultError::Failed(e.to_string()))?;
        let chars: Vec<char> = json.chars().collect();
        let old = self.manifest().ok().flatten();
        let generation = old.as_ref().map(|m| m.generation + 1).unwrap_or(1);
        let chunks: Vec<String> = chars.chunks(CHUNK_CHARS).map(|c| c.iter().collect()).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            self.store.set(&self.chunk_account(generation, i), chunk)?;
        }
        let manifest = Manifest {
            v: 1,
            generation,
            chunks: chunks.len(),
        };
        self.store.set(
            &self.account,
            &serde_json::to_string(&manifest).map_err(|e| VaultError::Failed(e.to_string()))?,
        )?;
        if let Some(old) = old {
            for i in 0..old.chunks {
                self.store.delete(&self.chunk_account(old.generation, i))?;
            }
        }
        Ok(())
    }

    /// The stored record; `None` when there is no session.
    pub fn load(&self) -> Result<Option<SessionRecord>, VaultError> {
        let Some(manifest) = self.manifest()? else {
            return Ok(None);
        };
        let mut json = String::new();
        for i in 0..manifest.chunks {
            let chunk = self
                .store
                .get(&self.chunk_account(manifest.generation, i))?
                .ok_or_else(|| VaultError::Corrupt(format!("chunk {i} of {} is missing", manifest.chunks)))?;
            json.push_str(&chunk);
        }
        let s: Stored =
            serde_json::from_str(&json).map_err(|e| VaultError::Corrupt(format!("record: {}", e.classify_name())))?;
        Ok(Some(SessionRecord {
            session_id: s.session_id,
            user: s.user,
            tenant: s.tenant,
            customer: s.customer,
            scope: s.scope,
            issued_at: s.issued_at,
            expires_at: s.expires_at,
            refresh_count: s.refresh_count,
            bearer: Secret::new(s.bearer),
            refresh: s.refresh.map(Secret::new),
            id_token: s.id_token.map(Secret::new),
            name: s.name,
            email: s.email,
        }))
    }

    /// Delete the record (all chunks, then the manifest).
    pub fn clear(&self) -> Result<(), VaultError> {
        if let Ok(Some(m)) = self.manifest() {
            for i in 0..m.chunks {
                self.store.delete(&self.chunk_account(m.generation, i))?;
            }
        }
        self.store.delete(&self.account)
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    /// A serde error's category only: its message could quote the record.
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "unexpected fields",
            serde_json::error::Category::Eof => "truncated",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn record(token_len: usize) -> SessionRecord {
        let now = chrono::Utc::now();
        SessionRecord {
            session_id: Uuid::new_v4(),
            user: "Zoë".into(),
            tenant: Some("t".into()),
            customer: Some("c".into()),
            scope: Some("accounts:read".into()),
            issued_at: now,
            expires_at: now + chrono::Duration::seconds(60),
            refresh_count: 2,
            bearer: Secret::new("b".repeat(token_len)),
            refresh: Some(Secret::new("r".repeat(token_len))),
            id_token: None,
            name: None,
            email: None,
        }
    }

    #[test]
    fn round_trip_with_4k_tokens_in_small_chunks() {
        let store = Arc::new(MemoryStore::default());
        let vault = Vault::new(store.clone(), "p");
        assert_eq!(vault.load().unwrap(), None);
        let rec = record(4096);
        vault.save(&rec).unwrap();
        assert!(store.entries().values().all(|v| v.chars().count() <= CHUNK_CHARS));
        assert!(store.entries().len() > 8);
        assert_eq!(vault.load().unwrap(), Some(rec.clone()));
        // A rewrite replaces the old generation's chunks.
        let rec2 = record(10);
        vault.save(&rec2).unwrap();
        assert_eq!(vault.load().unwrap(), Some(rec2));
        assert_eq!(store.entries().len(), 2, "{:?}", store.entries().keys());
        vault.clear().unwrap();
        assert!(store.entries().is_empty());
        assert_eq!(vault.load().unwrap(), None);
    }

    #[test]
    fn profiles_do_not_collide() {
        let store = Arc::new(MemoryStore::default());
        let a = Vault::new(store.clone(), "a");
        let b = Vault::new(store.clone(), "b");
        a.save(&record(5)).unwrap();
        assert_eq!(b.load().unwrap(), None);
    }

    #[test]
    fn damaged_entry_is_reported_without_its_content() {
        let store = Arc::new(MemoryStore::default());
        let vault = Vault::new(store.clone(), "p");
        vault.save(&record(5)).unwrap();
        store
            .set("profile:p#1#0", "{\"v\":1,\"bearer\":\"SECRET-VALUE")
            .unwrap();
        let err = vault.load().unwrap_err();
        assert!(matches!(err, VaultError::Corrupt(_)));
        assert!(!err.to_string().contains("SECRET-VALUE"), "{err}");
    }
}
