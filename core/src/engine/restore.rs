//! Restoring a stored session at start: from the keychain, renewed first if
//! its access token expired while the app was closed.

use super::*;

impl Engine {
    /// Restore the session from the keychain. A session whose token has
    /// expired is renewed at once (when it can be); one that cannot be
    /// renewed and has expired ends as Expired.
    pub async fn restore(&self) -> Result<SessionView, Error> {
        let (now, rules) = (self.now(), self.rules());
        let record = match self.read_stored().await {
            store::Stored::Nothing => {
                self.state().unreadable = None;
                return Ok(self.view());
            }
            store::Stored::Record(r) => *r,
            store::Stored::Unreadable(e) if e.is_unavailable() || matches!(e, VaultError::NewerVersion { .. }) => {
                // Nothing to restore from here: say why; the record (a newer
                // version's) stays as it is.
                let _ = self
                    .apply(None, |st| {
                        st.persistence = Persistence::MemoryOnly;
                        st.last_error = Some(Error::Vault(e.clone()).info());
                        st.unreadable = e.is_unavailable().then(|| e.clone());
                        Ok((Commit::keep(), ()))
                    })
                    .await;
                return Ok(self.view());
            }
            store::Stored::Unreadable(_) => {
                // Half written by another process, or damaged: read it again
                // under the lock, when no writer is at work.
                let lock = self.process_lock(ProcessLock::WAIT).await.ok();
                match self.read_stored().await {
                    store::Stored::Record(r) => *r,
                    store::Stored::Nothing => return Ok(self.view()),
                    store::Stored::Unreadable(e) => {
                        // Damaged for good: remove it so that sign-in works.
                        let cleared = self.vault_op(|v| v.clear()).await;
                        drop(lock);
                        if cleared.is_ok() {
                            self.inner.beacon.signal();
                        }
                        let _ = self
                            .apply(None, |st| {
                                st.last_error = Some(Error::Vault(e.clone()).info());
                                Ok((Commit::keep(), ()))
                            })
                            .await;
                        return Ok(self.view());
                    }
                }
            }
        };
        let spent = |r: &crate::storage::vault::SessionRecord| {
            r.refresh
                .as_ref()
                .is_some_and(|t| self.journal_says_spent(r.session_id, t))
        };
        let mut record = record;
        if spent(&record) {
            // Another process has redeemed this token. It may be storing the
            // new one right now (it journals under its lock before it
            // writes the keychain): read again under the lock, when no
            // renewal is half done.
            let lock = self.process_lock(ProcessLock::WAIT).await.ok();
            match self.read_stored().await {
                store::Stored::Record(r) => record = *r,
                _ => return Ok(self.view()),
            }
            drop(lock);
        }
        if spent(&record) {
            // Another process renewed this session and could not store the
            // new refresh token (the keychain was locked): this one is
            // spent. It goes; that process stores the live one when it can,
            // and this one adopts it then.
            let (id, count) = (record.session_id, record.refresh_count);
            if self
                .vault_op(move |v| store::clear_if(v, id, Some(count)))
                .await
                .is_ok()
            {
                self.inner.beacon.signal();
            }
            return Ok(self.view());
        }
        if self.has_tombstone(record.session_id) {
            // Signed out while the keychain could not hear of it.
            let id = record.session_id;
            let cleared = self.vault_op(move |v| v.clear()).await;
            if cleared.is_ok() {
                self.remove_tombstone(id);
                self.inner.beacon.signal();
            }
            return Ok(self.view());
        }
        let renewable = rules.refresh_policy && record.refresh.is_some();
        let expired = {
            let st = self.state();
            st.provider_time(now) >= record.expires_at
        };
        let verdict = if expired {
            None
        } else {
            Some(self.check_bearer(&record.bearer).await)
        };
        let ended = match &verdict {
            _ if expired && !renewable => Some((Phase::Expired, Error::Expired(record.expires_at.to_rfc3339()))),
            // Only a token that cannot be trusted ends it here. A time check
            // that fails (this machine's clock is off: a dual-boot RTC, a
            // VM resumed), a key set that cannot be fetched or a key not yet
            // published keep it: it came from the keychain, where only
            // validated sessions go, and a renewal asks the provider.
            Some(Err(e)) if grant::is_security_failure(e) => Some((Phase::SignedOut, e.clone())),
            _ => None,
        };
        let unverified = match verdict {
            Some(Err(e)) if ended.is_none() => Some(e),
            _ => None,
        };
        let renew_unverified = unverified.is_some() && renewable;
        let last_activity = self.shared_activity(record.session_id);
        self.apply(None, |st| {
            if st.session.is_some() || st.phase == Phase::SigningIn {
                return Ok((Commit::keep(), ()));
            }
            let mut c = st.activate(record, None, Arrival::Restored, &rules, now);
            // The idle timeout counts from the last activity in any process,
            // not from this start.
            if let Some(at) = last_activity.filter(|at| *at <= now) {
                st.last_activity = Some(at);
                st.activity_shared_at = Some(at);
            }
            if let Some((phase, e)) = ended {
                let event = match phase {
                    Phase::Expired => AuditEvent::SessionExpired {
                        reason: e.to_string(),
                        why: String::new(),
                    },
                    _ => AuditEvent::ValidationFailed { check: e.to_string() },
                };
                c = st.end(phase, e, event, &rules, now);
            } else if let Some(e) = unverified {
                // Kept: it came from the keychain, where only validated
                // sessions go; the provider's keys could not be fetched now.
                st.last_error = Some(e.info());
            }
            Ok((c, ()))
        })
        .await?;
        // Idle for longer than the profile allows, in every process: the
        // session ends now (the provider is told).
        if self.next_step() == Next::TimeOut {
            self.time_out().await;
            return Ok(self.view());
        }
        // Renew before use: an expired token (a laptop that slept, an app
        // that was closed) or one due for renewal. With the token expired,
        // the provider is asked once even if the refresh token looks expired
        // too: its answer (and its reason) decides, not our reading of it.
        let expired_but_renewable = renewable && self.state().token_expired(self.now());
        if expired_but_renewable || renew_unverified || self.next_step() == Next::Renew {
            let _ = self.extend(Trigger::Schedule).await;
        }
        // Past renewal (no scheduler may run in this process: a command).
        if self.next_step() == Next::Expire {
            self.expire_if_due().await;
        }
        Ok(self.view())
    }
}
