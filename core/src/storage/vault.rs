//! The vault: the session record in the OS keychain.
//!
//! Secret Service on Linux, Keychain on macOS, Credential Manager on Windows,
//! through the `keyring` crate. Entries are namespaced by app (the keychain
//! "service", default `session-manager`) and profile (the "account",
//! `profile:NAME`). On any other platform there is no keychain: the store
//! says so ([`VaultError::Unavailable`]) and sessions live in memory only.
//! The `keyring` crate would otherwise fall back to its in-memory *mock*
//! store there, which answers every write with success and forgets it.
//!
//! A record is JSON split into chunks of at most [`CHUNK_UTF16_UNITS`] UTF-16
//! code units, because Windows caps one credential at 2560 bytes of UTF-16
//! and tokens can be larger; counting UTF-16 units (not characters) keeps a
//! chunk of emoji under the cap too. The same chunking runs on every
//! platform, so the Linux tests exercise it. The manifest entry (the profile
//! name) is written last and names a generation, so a reader never mixes the
//! chunks of two writes. Generations cycle through [`GENERATIONS`] values,
//! so a damaged manifest never leaves chunks no sweep can find: [`Vault::clear`]
//! deletes every chunk of every generation, whatever the manifest says.
//!
//! A record carries a format version. One written by a newer version of the
//! app is left alone ([`VaultError::NewerVersion`]).
//!
//! The vault never falls back to a file: a missing or locked keychain is
//! [`VaultError::Unavailable`] and the engine keeps the session in memory.

use crate::os::clock::Timestamp;
use crate::token::{AccessToken, IdToken, RefreshToken};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The largest chunk in UTF-16 code units: 2400 bytes, below Windows' 2560.
pub const CHUNK_UTF16_UNITS: usize = 1200;
/// The most chunks one record may take (a record of up to ~75 000 UTF-16
/// units: far above any real session).
pub const MAX_CHUNKS: usize = 64;
/// How many generation numbers chunks cycle through.
pub const GENERATIONS: u64 = 8;
/// The record format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The default keychain service name.
pub const DEFAULT_SERVICE: &str = "session-manager";
/// The environment variable that overrides the keychain service name (tests
/// use it to get a namespace of their own).
pub const SERVICE_ENV: &str = "SESSION_MANAGER_KEYCHAIN_SERVICE";

pub use crate::error::VaultError;

/// A key-value store of secrets. The OS keychain is the real one; tests may
/// use `MemoryStore`.
pub trait SecretStore: Send + Sync {
    /// The value under `account`, `None` when there is none.
    fn get(&self, account: &str) -> Result<Option<String>, VaultError>;
    /// Store `value` under `account`.
    fn set(&self, account: &str, value: &str) -> Result<(), VaultError>;
    /// Delete `account`; `Ok(false)` when there was no such entry.
    fn delete(&self, account: &str) -> Result<bool, VaultError>;
    /// Which keychain namespace this is (two stores with the same identity
    /// hold the same sessions). Processes derive their refresh lock from it.
    fn identity(&self) -> String;
    /// Which keychain answers, for diagnostics (`doctor`).
    fn backend(&self) -> String {
        self.identity()
    }
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
}

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
mod os {
    use super::*;

    fn entry(service: &str, account: &str) -> Result<keyring::Entry, VaultError> {
        keyring::Entry::new(service, account).map_err(map_keyring)
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
            match entry(&self.service, account)?.get_password() {
                Ok(v) => Ok(Some(v)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(map_keyring(e)),
            }
        }

        fn set(&self, account: &str, value: &str) -> Result<(), VaultError> {
            entry(&self.service, account)?.set_password(value).map_err(map_keyring)
        }

        fn delete(&self, account: &str) -> Result<bool, VaultError> {
            match entry(&self.service, account)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(map_keyring(e)),
            }
        }

        fn identity(&self) -> String {
            format!("os-keychain:{}", self.service)
        }

        fn backend(&self) -> String {
            backend_name()
        }
    }

    #[cfg(target_os = "linux")]
    fn backend_name() -> String {
        match secret_service_owner() {
            Some(owner) => format!("the Secret Service on the session bus, served by {owner}"),
            None => "the Secret Service on the session bus (its process is unknown)".into(),
        }
    }

    /// The process that owns `org.freedesktop.secrets` on the session bus
    /// (gnome-keyring-daemon, KeePassXC, …), by asking the bus for its pid.
    #[cfg(target_os = "linux")]
    fn secret_service_owner() -> Option<String> {
        let conn = dbus::blocking::Connection::new_session().ok()?;
        let bus = conn.with_proxy(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            std::time::Duration::from_secs(2),
        );
        let (pid,): (u32,) = bus
            .method_call(
                "org.freedesktop.DBus",
                "GetConnectionUnixProcessID",
                ("org.freedesktop.secrets",),
            )
            .ok()?;
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(format!("{} (pid {pid})", name.trim()))
    }

    #[cfg(target_os = "macos")]
    fn backend_name() -> String {
        "the macOS Keychain".into()
    }

    #[cfg(target_os = "windows")]
    fn backend_name() -> String {
        "the Windows Credential Manager".into()
    }
}

/// No keychain the app supports on this platform: say so, truthfully.
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod os {
    use super::*;

    fn none() -> VaultError {
        VaultError::Unavailable("this platform has no keychain Session Manager supports".into())
    }

    impl SecretStore for KeyringStore {
        fn get(&self, _account: &str) -> Result<Option<String>, VaultError> {
            Err(none())
        }
        fn set(&self, _account: &str, _value: &str) -> Result<(), VaultError> {
            Err(none())
        }
        fn delete(&self, _account: &str) -> Result<bool, VaultError> {
            Err(none())
        }
        fn identity(&self) -> String {
            format!("os-keychain:{}", self.service)
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use memory::MemoryStore;

#[cfg(any(test, feature = "test-support"))]
mod memory {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Mutex;

    /// An in-memory store for tests. It can pretend to be unavailable, or to
    /// fail after a number of writes.
    #[derive(Debug, Default)]
    pub struct MemoryStore {
        entries: Mutex<HashMap<String, String>>,
        /// When set, every call fails as a missing keychain does.
        pub unavailable: AtomicBool,
        /// When above zero, counts writes down; the write that reaches zero
        /// and every later one fail as a locked keychain does.
        pub writes_left: AtomicU32,
        id: Mutex<Option<String>>,
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

        /// Give this store the identity of another (two handles on one
        /// keychain, as two processes have).
        pub fn same_keychain_as(self, other: &MemoryStore) -> Self {
            *self.id.lock().unwrap_or_else(|e| e.into_inner()) = Some(other.identity());
            self
        }

        /// Let `n` more writes succeed, then fail every one.
        pub fn fail_after_writes(&self, n: u32) {
            self.writes_left.store(n + 1, Ordering::SeqCst);
        }

        fn check(&self) -> Result<(), VaultError> {
            if self.unavailable.load(Ordering::SeqCst) {
                return Err(VaultError::Unavailable(
                    "no Secret Service on the session bus (simulated)".into(),
                ));
            }
            Ok(())
        }

        fn check_write(&self) -> Result<(), VaultError> {
            self.check()?;
            let left = self
                .writes_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n > 1).then(|| n - 1));
            match left {
                Err(1) => Err(VaultError::Unavailable("the keychain was locked (simulated)".into())),
                _ => Ok(()),
            }
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
            self.check_write()?;
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(account.into(), value.into());
            Ok(())
        }
        fn delete(&self, account: &str) -> Result<bool, VaultError> {
            self.check()?;
            Ok(self
                .entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(account)
                .is_some())
        }
        fn identity(&self) -> String {
            self.id
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| format!("memory:{:p}", self as *const Self))
                .clone()
        }
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
    pub bearer: AccessToken,
    pub refresh: Option<RefreshToken>,
    pub id_token: Option<IdToken>,
    /// The person's name and email, when the provider gave them (OIDC).
    pub name: Option<String>,
    pub email: Option<String>,
    /// Until when the refresh token can renew the session, when the
    /// provider said (a JWT refresh token's `exp`, `refresh_expires_in`):
    /// for display and to stop retrying, never for access decisions.
    pub renewable_until: Option<Timestamp>,
    /// When the person signed in (local time), for the profile's absolute
    /// session limit; kept across renewals and restarts.
    pub signed_in_at: Option<Timestamp>,
}

/// The serialized form; it exists only inside this module, on its way to the
/// keychain, and its token fields are wiped when it is dropped.
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
    bearer: Zeroizing<String>,
    refresh: Option<Zeroizing<String>>,
    id_token: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    renewable_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signed_in_at: Option<Timestamp>,
}

/// Only its version, to refuse a newer format before reading the rest.
#[derive(Deserialize)]
struct Versioned {
    v: u32,
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

/// `text` cut into pieces of at most `units` UTF-16 code units, never inside
/// a character.
fn chunks_utf16(text: &str, units: usize) -> Vec<Zeroizing<String>> {
    let mut out = Vec::new();
    let mut current = Zeroizing::new(String::new());
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() > units {
            out.push(std::mem::replace(&mut current, Zeroizing::new(String::new())));
            used = 0;
        }
        current.push(c);
        used += c.len_utf16();
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl Vault {
    /// The vault of `profile` in `store`.
    pub fn new(store: Arc<dyn SecretStore>, profile: &str) -> Self {
        Self {
            store,
            account: format!("profile:{profile}"),
        }
    }

    /// The keychain namespace and account: who else shares this record.
    pub fn identity(&self) -> String {
        format!("{}/{}", self.store.identity(), self.account)
    }

    fn chunk_account(&self, generation: u64, index: usize) -> String {
        format!("{}#{generation}#{index}", self.account)
    }

    fn manifest(&self) -> Result<Option<Manifest>, VaultError> {
        let Some(text) = self.store.get(&self.account)? else {
            return Ok(None);
        };
        if let Ok(Versioned { v }) = serde_json::from_str::<Versioned>(&text) {
            if v > FORMAT_VERSION {
                return Err(VaultError::NewerVersion {
                    found: v,
                    reads: FORMAT_VERSION,
                });
            }
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| VaultError::Corrupt(format!("manifest: {}", e.classify_name())))
    }

    /// Delete the chunks of `generation` from index 0 up to the first that
    /// is not there (chunks are written in order, so a partial write leaves
    /// a prefix).
    fn delete_generation(&self, generation: u64) -> Result<(), VaultError> {
        for i in 0..MAX_CHUNKS {
            if !self.store.delete(&self.chunk_account(generation, i))? {
                break;
            }
        }
        Ok(())
    }

    /// Store `record`, replacing any previous one. A failed write deletes
    /// what it wrote; the previous record stays as it was.
    pub fn save(&self, record: &SessionRecord) -> Result<(), VaultError> {
        let stored = Stored {
            v: FORMAT_VERSION,
            session_id: record.session_id,
            user: record.user.clone(),
            tenant: record.tenant.clone(),
            customer: record.customer.clone(),
            scope: record.scope.clone(),
            issued_at: record.issued_at,
            expires_at: record.expires_at,
            refresh_count: record.refresh_count,
            bearer: Zeroizing::new(record.bearer.expose().to_owned()),
            refresh: record.refresh.as_ref().map(|s| Zeroizing::new(s.expose().to_owned())),
            id_token: record.id_token.as_ref().map(|s| Zeroizing::new(s.expose().to_owned())),
            name: record.name.clone(),
            email: record.email.clone(),
            renewable_until: record.renewable_until,
            signed_in_at: record.signed_in_at,
        };
        let json = Zeroizing::new(serde_json::to_string(&stored).map_err(|e| VaultError::Failed(e.to_string()))?);
        let chunks = chunks_utf16(&json, CHUNK_UTF16_UNITS);
        if chunks.len() > MAX_CHUNKS {
            return Err(VaultError::Failed(format!(
                "the session record needs {} keychain entries, more than the {MAX_CHUNKS} allowed",
                chunks.len()
            )));
        }
        let old = match self.manifest() {
            Ok(m) => m,
            Err(VaultError::Corrupt(_)) => None,
            Err(e) => return Err(e),
        };
        let generation = old.as_ref().map(|m| m.generation % GENERATIONS + 1).unwrap_or(1);
        // Leftovers of an earlier failed write under this generation.
        self.delete_generation(generation)?;
        let written = chunks
            .iter()
            .enumerate()
            .try_for_each(|(i, chunk)| self.store.set(&self.chunk_account(generation, i), chunk));
        let manifest = Manifest {
            v: FORMAT_VERSION,
            generation,
            chunks: chunks.len(),
        };
        let written = written.and_then(|()| {
            let text = serde_json::to_string(&manifest).map_err(|e| VaultError::Failed(e.to_string()))?;
            self.store.set(&self.account, &text)
        });
        if let Err(e) = written {
            // Best effort: no half record with tokens stays behind.
            let _ = self.delete_generation(generation);
            return Err(e);
        }
        // The new record is in place; old chunks that cannot be deleted now
        // are swept by the next save of their generation or by `clear`.
        match old {
            Some(old) => {
                let _ = self.delete_generation(old.generation);
            }
            None => {
                let _ = self.sweep(Some(generation));
            }
        }
        Ok(())
    }

    /// The stored record; `None` when there is no session.
    pub fn load(&self) -> Result<Option<SessionRecord>, VaultError> {
        let Some(manifest) = self.manifest()? else {
            return Ok(None);
        };
        if manifest.chunks > MAX_CHUNKS {
            return Err(VaultError::Corrupt(format!(
                "the manifest names {} chunks",
                manifest.chunks
            )));
        }
        let mut json = Zeroizing::new(String::new());
        for i in 0..manifest.chunks {
            let chunk = Zeroizing::new(
                self.store
                    .get(&self.chunk_account(manifest.generation, i))?
                    .ok_or_else(|| VaultError::Corrupt(format!("chunk {i} of {} is missing", manifest.chunks)))?,
            );
            json.push_str(&chunk);
        }
        if let Ok(Versioned { v }) = serde_json::from_str::<Versioned>(&json) {
            if v > FORMAT_VERSION {
                return Err(VaultError::NewerVersion {
                    found: v,
                    reads: FORMAT_VERSION,
                });
            }
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
            bearer: AccessToken::new(s.bearer.as_str()),
            refresh: s.refresh.as_ref().map(|t| RefreshToken::new(t.as_str())),
            id_token: s.id_token.as_ref().map(|t| IdToken::new(t.as_str())),
            name: s.name,
            email: s.email,
            renewable_until: s.renewable_until,
            signed_in_at: s.signed_in_at,
        }))
    }

    /// Delete every chunk of every generation but `keep`.
    fn sweep(&self, keep: Option<u64>) -> Result<(), VaultError> {
        for generation in 1..=GENERATIONS {
            if Some(generation) != keep {
                self.delete_generation(generation)?;
            }
        }
        Ok(())
    }

    /// Delete the record: every chunk of every generation (whatever the
    /// manifest says, or if it cannot be read), then the manifest. A record
    /// of a newer format is left alone.
    pub fn clear(&self) -> Result<(), VaultError> {
        if let Err(e @ VaultError::NewerVersion { .. }) = self.manifest() {
            return Err(e);
        }
        self.sweep(None)?;
        self.store.delete(&self.account).map(|_| ())
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
            bearer: AccessToken::new("b".repeat(token_len)),
            refresh: Some(RefreshToken::new("r".repeat(token_len))),
            id_token: None,
            name: None,
            email: None,
            renewable_until: None,
            signed_in_at: None,
        }
    }

    fn no_token_left(store: &MemoryStore) {
        for (k, v) in store.entries() {
            assert!(
                !v.contains(&"b".repeat(50)) && !v.contains(&"r".repeat(50)),
                "token material left in {k}"
            );
        }
    }

    #[test]
    fn round_trip_with_4k_tokens_in_small_chunks() {
        let store = Arc::new(MemoryStore::default());
        let vault = Vault::new(store.clone(), "p");
        assert_eq!(vault.load().unwrap(), None);
        let rec = record(4096);
        vault.save(&rec).unwrap();
        assert!(store
            .entries()
            .values()
            .all(|v| v.encode_utf16().count() <= CHUNK_UTF16_UNITS));
        assert!(store.entries().len() > 6);
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
    fn generations_cycle_and_every_rewrite_reads_back() {
        let store = Arc::new(MemoryStore::default());
        let vault = Vault::new(store.clone(), "p");
        for n in 0..(GENERATIONS as usize * 2 + 3) {
            let rec = record(1500 + n);
            vault.save(&rec).unwrap();
            assert_eq!(vault.load().unwrap(), Some(rec));
        }
        vault.clear().unwrap();
        assert!(store.entries().is_empty(), "{:?}", store.entries().keys());
    }

    #[test]
    fn chunks_fit_windows_even_for_astral_characters() {
        let store = Arc::new(MemoryStore::default());
        let vault = Vault::new(store.clone(), "p");
        let mut rec = record(100);
        rec.name = Some("😀".repeat(700));
        vault.save(&rec).unwrap();
        for (k, v) in store.entries() {
            // keyring refuses a Windows credential above 2560 bytes of UTF-16.
            assert!(
                v.encode_utf16().count() * 2 <= 2560,
                "{k} is {} bytes",
                v.encode_utf16().count() * 2
            );
        }
        assert_eq!(vault.load().unwrap(), Some(rec));
    }

    #[test]
    fn clear_removes_chunks_even_when_the_manifest_is_unreadable() {
        let store = Arc::new(MemoryStore::default());
        let vault = Vault::new(store.clone(), "p");
        vault.save(&record(4096)).unwrap();
        vault.save(&record(4096)).unwrap();
        store.set("profile:p", "garbage").unwrap();
        vault.clear().unwrap();
        assert!(store.entries().is_empty(), "{:?}", store.entries().keys());
    }

    #[test]
    fn a_failed_save_leaves_no_half_record() {
        let store = Arc::new(MemoryStore::default());
        let vault = Vault::new(store.clone(), "p");
        let first = record(4096);
        vault.save(&first).unwrap();
        let before = store.entries();
        // The keychain locks after two more writes, mid-record.
        store.fail_after_writes(2);
        let mut second = record(4096);
        second.bearer = AccessToken::new("x".repeat(4096));
        assert!(vault.save(&second).is_err());
        store.writes_left.store(0, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(store.entries(), before, "the failed write left entries behind");
        assert_eq!(vault.load().unwrap(), Some(first));
        vault.clear().unwrap();
        assert!(store.entries().is_empty());
        no_token_left(&store);
    }

    #[test]
    fn a_record_written_by_a_newer_version_is_left_alone() {
        let store = Arc::new(MemoryStore::default());
        let vault = Vault::new(store.clone(), "p");
        vault.save(&record(10)).unwrap();
        let chunk = store.entries().keys().find(|k| k.contains('#')).unwrap().clone();
        store
            .set("profile:p", r#"{"v":2,"generation":1,"chunks":1,"layout":"new"}"#)
            .unwrap();
        store.set(&chunk, r#"{"v":2,"renamed":"field"}"#).unwrap();
        let before = store.entries();
        assert_eq!(
            vault.load().unwrap_err(),
            VaultError::NewerVersion {
                found: 2,
                reads: FORMAT_VERSION
            }
        );
        assert_eq!(
            vault.clear().unwrap_err(),
            VaultError::NewerVersion {
                found: 2,
                reads: FORMAT_VERSION
            }
        );
        assert_eq!(
            vault.save(&record(10)).unwrap_err(),
            VaultError::NewerVersion {
                found: 2,
                reads: FORMAT_VERSION
            }
        );
        assert_eq!(store.entries(), before, "a newer version's record was touched");
    }

    #[test]
    fn profiles_do_not_collide() {
        let store = Arc::new(MemoryStore::default());
        let a = Vault::new(store.clone(), "a");
        let b = Vault::new(store.clone(), "b");
        a.save(&record(5)).unwrap();
        assert_eq!(b.load().unwrap(), None);
        b.clear().unwrap();
        assert!(a.load().unwrap().is_some());
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
