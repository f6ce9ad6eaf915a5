//! The one commit path, and the keychain side of it.
//!
//! [`Engine::apply`] runs a transition of [`State`] and then, in this order
//! and in one place: persists (keychain save or compare-and-delete, under
//! the cross-process lock), writes the audit records, publishes the view.
//! Commits are serialized, so whoever hears of a change finds it persisted.
//!
//! A sign-out that cannot reach the keychain (locked, gone) leaves a
//! tombstone naming the session in the shared state directory; the next
//! start of any process honours it, so a session the person ended never
//! comes back.

use super::state::{Commit, State, Store};
use super::Engine;
use crate::audit::AuditEvent;
use crate::error::Error;
use crate::proclock::ProcessLock;
use crate::vault::{SessionRecord, Vault, VaultError};
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
        self.persist(commit.store, generation, held).await;
        let audit = self.inner.audit.clone();
        let records = commit.audit;
        if !records.is_empty() {
            // The audit log must never stop a session: a full disk loses
            // records, not sign-ins.
            let _ = tokio::task::spawn_blocking(move || {
                for r in &records {
                    let _ = audit.append(r);
                }
            })
            .await;
        }
        self.publish();
        self.wake();
        Ok(value)
    }

    /// Publish the current view (each with a new `seq`).
    pub(super) fn publish(&self) {
        let view = {
            let mut st = self.state();
            st.seq += 1;
            self.view_of(&st)
        };
        let _ = self.inner.events.send(view);
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
    async fn persist(&self, store: Store, generation: u64, held: Option<&ProcessLock>) {
        if store == Store::Keep {
            return;
        }
        // Another process's commit must not interleave with ours; if its
        // lock is held too long, a save still goes ahead (our record is the
        // newest we know) and a delete stays a compare-and-delete.
        let own = match held {
            Some(_) => None,
            None => self.process_lock(COMMIT_LOCK_WAIT).await.ok(),
        };
        match store {
            Store::Keep => {}
            Store::Save => {
                let record = {
                    let st = self.state();
                    if st.generation != generation {
                        return; // a newer transition owns the keychain now
                    }
                    match st.session.clone() {
                        Some(r) => r,
                        None => return,
                    }
                };
                let id = record.session_id;
                let result = self.vault_op(move |v| v.save(&record)).await;
                if result.is_ok() {
                    // Stored again after a failure: the record is good.
                    self.remove_tombstone(id);
                }
                self.saved(result).await;
            }
            Store::Clear(id) => {
                let result = self.vault_op(move |v| clear_if(v, id)).await;
                if let Err(e) = &result {
                    self.write_tombstone(id);
                    let mut st = self.state();
                    if matches!(e, VaultError::Unavailable(_)) {
                        st.persistence = Persistence::MemoryOnly;
                    }
                    st.last_error = Some(Error::Vault(e.clone()).info());
                }
            }
        }
        drop(own);
        self.inner.beacon.signal();
    }

    /// After a save: back to keychain persistence, or memory-only with the
    /// reason, and never a spent refresh token left behind.
    async fn saved(&self, result: Result<(), VaultError>) {
        match result {
            Ok(()) => {
                let mut st = self.state();
                st.persist_retry_at = None;
                if st.persistence == Persistence::MemoryOnly {
                    st.persistence = Persistence::Keychain;
                    if st
                        .last_error
                        .as_ref()
                        .is_some_and(|e| e.code == crate::ErrorCode::KeychainUnavailable)
                    {
                        st.last_error = None;
                    }
                }
            }
            Err(e) => {
                // The keychain still holds the previous record, whose refresh
                // token may be spent by now: remove it (best effort) so that
                // no later start presents it; the session lives on in memory.
                let cleared = self.vault_op(|v| v.clear()).await;
                let now = self.now();
                let (first, id) = {
                    let mut st = self.state();
                    let first = st.persistence == Persistence::Keychain;
                    st.persistence = Persistence::MemoryOnly;
                    st.persist_retry_at = Some(crate::refresh::after(now, PERSIST_RETRY));
                    st.last_error = Some(Error::Vault(e.clone()).info());
                    (first, st.session.as_ref().map(|s| s.session_id))
                };
                if let (Err(_), Some(id)) = (&cleared, id) {
                    // Not even that: remember that this record is not to be
                    // used again.
                    self.write_tombstone(id);
                }
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

    fn tombstone_path(&self, id: Uuid) -> std::path::PathBuf {
        self.inner.shared_dir.join(format!("{}.ended-{id}", self.inner.stem))
    }

    /// Remember that session `id` ended here although the keychain could not
    /// forget it (it was locked, or gone).
    pub(super) fn write_tombstone(&self, id: Uuid) {
        let path = self.tombstone_path(id);
        let _ = crate::paths::private_dir(&self.inner.shared_dir).and_then(|()| {
            crate::paths::open_private(
                &path,
                std::fs::OpenOptions::new().create(true).write(true).truncate(true),
            )
            .map(|_| ())
        });
    }

    /// Whether session `id` was ended where the keychain could not hear of it.
    pub(super) fn has_tombstone(&self, id: Uuid) -> bool {
        self.tombstone_path(id).exists()
    }

    pub(super) fn remove_tombstone(&self, id: Uuid) {
        let _ = std::fs::remove_file(self.tombstone_path(id));
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
/// it can stay); leave another session, signed in elsewhere, alone.
fn clear_if(v: &Vault, id: Uuid) -> Result<(), VaultError> {
    match v.load() {
        Ok(Some(r)) if r.session_id != id => Ok(()),
        Ok(None) => v.clear(),
        Ok(Some(_)) | Err(VaultError::Corrupt(_)) => v.clear(),
        Err(e) => Err(e),
    }
}
