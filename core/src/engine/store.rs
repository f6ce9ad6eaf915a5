//! The one commit path, and the keychain side of it.
//!
//! [`Engine::apply`] runs a transition of [`State`] and then, in this order
//! and in one place: persists (keychain save or compare-and-delete, under
//! the cross-process lock), writes the audit records, publishes the view.
//! Commits are serialized, so whoever hears of a change finds it persisted.
//!
//! A sign-out writes a tombstone naming the session in the shared state
//! directory before it clears the keychain (see `shared.rs`): a process
//! renewing the session at that moment finds it after its own write and
//! undoes that write, and the next start of any process honours it, so a
//! session the person ended never comes back.

use super::state::{Commit, State, Store};
use super::Engine;
use crate::error::Error;
use crate::provider::SessionTokens;
use crate::storage::audit::AuditEvent;
use crate::storage::proclock::ProcessLock;
use crate::storage::vault::{SessionRecord, Vault, VaultError};
use crate::view::{Persistence, SessionView};
use std::time::Duration;
use uuid::Uuid;

/// How long a commit waits for the cross-process lock before it writes
/// anyway (a compare-and-delete stays safe without it).
const COMMIT_LOCK_WAIT: Duration = Duration::from_secs(5);

/// How often a keychain write that failed is tried again, while it is owed.
const PERSIST_RETRY: Duration = Duration::from_secs(30);

/// How a keychain read came out.
pub(super) enum Stored {
    Nothing,
    Record(Box<SessionRecord>),
    /// Not readable now (locked, gone, half written by another process).
    Unreadable(VaultError),
}

impl Engine {
    /// Run `transition` on the state and apply its commit: persist, audit,
    /// publish. `held` is the process lock when the caller holds it. An
    /// `Err` from the transition changes nothing and is returned.
    pub(super) async fn apply<T>(
        &self,
        held: Option<&ProcessLock>,
        transition: impl FnOnce(&mut State) -> Result<(Commit, T), Error>,
    ) -> Result<T, Error> {
        let _one_at_a_time = self.inner.commits.lock().await;
        let (commit, value, generation) = {
            let mut st = self.state();
            let (commit, value) = transition(&mut st)?;
            (commit, value, st.generation)
        };
        if self.persist(commit.store, generation, held).await == Persisted::SignedOutElsewhere {
            self.signed_out_meanwhile().await;
        }
        // The audit log must never stop a session: a full disk loses
        // records, not sign-ins. Written here, not on the blocking pool: a
        // record is a write to a file kept open (microseconds), and one
        // handed to the pool could land after its engine's owner removed
        // the directory (a test that had returned, once in five runs).
        for r in &commit.audit {
            let _ = self.inner.audit.append(r);
        }
        self.publish();
        self.wake();
        Ok(value)
    }

    /// Publish the current view, with a `seq` drawn from one counter for
    /// the whole process and sent under the state lock: views reach every
    /// listener in the order of the states they show, and a view of an
    /// engine that was replaced never outranks its successor's.
    pub(super) fn publish(&self) {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut st = self.state();
        st.seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let _ = self.inner.events.send(self.view_of(&st));
    }

    /// A view-only change (the browser page): publish, nothing to persist.
    pub(super) fn show_browser(&self, wait: crate::view::BrowserWait) {
        self.state().browser = Some(wait);
        self.publish();
    }

    /// Run a vault operation off the runtime (keychain calls block).
    pub(super) async fn vault_op<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Vault) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, VaultError> {
        let vault = self.inner.vault.clone();
        tokio::task::spawn_blocking(move || op(&vault))
            .await
            .unwrap_or_else(|e| Err(VaultError::Failed(format!("keychain task failed: {e}"))))
    }

    /// Read the keychain record.
    pub(super) async fn read_stored(&self) -> Stored {
        match self.vault_op(|v| v.load()).await {
            Ok(None) => Stored::Nothing,
            Ok(Some(r)) => Stored::Record(Box::new(r)),
            Err(e) => Stored::Unreadable(e),
        }
    }

    /// The cross-process lock, waiting at most `wait`.
    pub(super) async fn process_lock(&self, wait: Duration) -> Result<ProcessLock, Error> {
        ProcessLock::acquire(self.inner.lock_path.clone(), wait)
            .await
            .map_err(|e| Error::Lock(e.to_string()))
    }

    /// The keychain side of a commit.
    async fn persist(&self, store: Store, generation: u64, held: Option<&ProcessLock>) -> Persisted {
        if store == Store::Keep {
            return Persisted::Done;
        }
        // Another process's commit must not interleave with ours; if its
        // lock is held too long, a save still goes ahead (our record is the
        // newest we know) and a delete stays a compare-and-delete.
        let own = match held {
            Some(_) => None,
            None => self.process_lock(COMMIT_LOCK_WAIT).await.ok(),
        };
        let mut outcome = Persisted::Done;
        match store {
            Store::Keep => {}
            Store::Save => {
                let record = {
                    let st = self.state();
                    if st.generation != generation {
                        return Persisted::Done; // a newer transition owns the keychain now
                    }
                    match st.session.clone() {
                        Some(r) => r,
                        None => return Persisted::Done,
                    }
                };
                let id = record.session_id;
                let result = self.vault_op(move |v| v.save(&record)).await;
                let stored = result.is_ok();
                self.saved(result).await;
                // A sign-out elsewhere writes its tombstone before it clears
                // the keychain: found now, it came after our write, whose
                // record its clear may have missed.
                if stored && self.has_tombstone(id) {
                    let _ = self.vault_op(move |v| clear_if(v, id, None)).await;
                    outcome = Persisted::SignedOutElsewhere;
                }
            }
            Store::SignOut(id) => {
                let stored = self.state().in_keychain;
                if stored {
                    self.write_tombstone(id);
                }
                let result = self.vault_op(move |v| clear_if(v, id, None)).await;
                match &result {
                    // Cleared while no other process could be writing it:
                    // nobody needs the tombstone.
                    Ok(()) if own.is_some() || held.is_some() => self.remove_tombstone(id),
                    Ok(()) => {}
                    Err(e) => {
                        let mut st = self.state();
                        if e.is_unavailable() {
                            st.persistence = Persistence::MemoryOnly;
                        }
                        if stored {
                            st.last_error = Some(Error::Vault(e.clone()).info());
                        }
                    }
                }
                self.state().in_keychain = false;
            }
            Store::Forget { id, refresh_count } => {
                let result = self.vault_op(move |v| clear_if(v, id, Some(refresh_count))).await;
                if let Err(e) = &result {
                    let mut st = self.state();
                    if e.is_unavailable() {
                        st.persistence = Persistence::MemoryOnly;
                    }
                    st.last_error = Some(Error::Vault(e.clone()).info());
                }
            }
        }
        drop(own);
        self.inner.beacon.signal();
        outcome
    }

    /// A sign-out in another process came while this one stored the
    /// session: it ends here too, and what this process holds (tokens the
    /// other process never saw) is revoked, best effort.
    async fn signed_out_meanwhile(&self) {
        let (now, rules) = (self.now(), self.rules());
        let tokens = {
            let mut st = self.state();
            let Some(s) = st.session.clone() else { return };
            let mut c = st.ended_elsewhere(&rules, now);
            for r in c.audit.drain(..) {
                let _ = self.inner.audit.append(&r);
            }
            SessionTokens {
                bearer: s.bearer,
                refresh: s.refresh,
                id_token: s.id_token,
            }
        };
        self.revoke_quietly(&tokens).await;
    }

    /// After a save: back to keychain persistence, or memory-only with the
    /// reason, and never a spent refresh token left behind.
    async fn saved(&self, result: Result<(), VaultError>) {
        match result {
            Ok(()) => {
                let mut st = self.state();
                st.persist_retry_at = None;
                st.in_keychain = true;
                if st.persistence == Persistence::MemoryOnly {
                    st.keychain_is_back();
                }
            }
            Err(e) => {
                // The keychain still holds the previous record, whose refresh
                // token may be spent by now: remove it (best effort) so that
                // no later start presents it; the session lives on in memory.
                // If even that fails, the journal says the token is spent.
                let _ = self.vault_op(|v| v.clear()).await;
                let now = self.now();
                let first = {
                    let mut st = self.state();
                    let first = st.persistence == Persistence::Keychain;
                    st.persistence = Persistence::MemoryOnly;
                    st.persist_retry_at = Some(super::timing::after(now, PERSIST_RETRY));
                    st.last_error = Some(Error::Vault(e.clone()).info());
                    first
                };
                if first {
                    let record = self.state().record(
                        &self.rules(),
                        self.now(),
                        AuditEvent::KeychainUnavailable { reason: e.to_string() },
                    );
                    let _ = self.inner.audit.append(&record);
                }
            }
        }
    }

    /// Write the session again, after a write that failed.
    pub(super) async fn retry_persist(&self) {
        let _ = self
            .apply(None, |st| {
                st.persist_retry_at = None;
                let store = if st.session.is_some() { Store::Save } else { Store::Keep };
                Ok((
                    Commit {
                        store,
                        audit: Vec::new(),
                    },
                    (),
                ))
            })
            .await;
    }

    /// The current view.
    pub fn view(&self) -> SessionView {
        self.view_of(&self.state())
    }
}

/// Delete the record if it is session `id` (or unreadable, so no token of
/// it can stay); leave another session, signed in elsewhere, alone, and,
/// with `not_after` (the refresh count this process holds), a fresher
/// record of the same session that another process renewed.
pub(super) fn clear_if(v: &Vault, id: Uuid, not_after: Option<u32>) -> Result<(), VaultError> {
    match v.load() {
        Ok(Some(r)) if r.session_id != id => Ok(()),
        Ok(Some(r)) if not_after.is_some_and(|n| r.refresh_count > n) => Ok(()),
        Ok(None) => v.clear(),
        Ok(Some(_)) | Err(VaultError::Corrupt(_)) => v.clear(),
        Err(e) => Err(e),
    }
}

/// What the keychain side of a commit found.
#[derive(Debug, PartialEq, Eq)]
enum Persisted {
    Done,
    /// The session was signed out in another process while it was stored.
    SignedOutElsewhere,
}
