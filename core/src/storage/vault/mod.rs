//! The vault: the session record in the OS keychain.
//!
//! Secret Service on Linux (one connection per process, [`secret_service`]),
//! Keychain on macOS and Credential Manager on Windows through the `keyring`
//! crate. Entries are namespaced by app (the keychain
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

#[cfg(target_os = "linux")]
pub mod secret_service;
mod store;
#[cfg(test)]
mod tests;

pub use crate::error::VaultError;
#[cfg(any(test, feature = "test-support"))]
pub use store::MemoryStore;
pub use store::{KeyringStore, SecretStore, DEFAULT_SERVICE, SERVICE_ENV};

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
