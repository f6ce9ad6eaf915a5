//! What the engine watches between renewals: the person's activity and the
//! profile's idle and absolute timeouts, and the keychain (a session another
//! process ended, a keychain that answers again).

use super::*;

impl Engine {
    /// Activity: the person used the app. Moves the idle timeout; publishes
    /// a view only when the app may be showing the one-minute warning (the
    /// deadline is within 90 s), or the deadline moved by a minute or more,
    /// so an active person costs a view a minute at most.
    pub fn touch(&self) {
        let now = self.now();
        let rules = self.rules();
        let moved = {
            let mut st = self.state();
            if st.session.is_none() {
                return;
            }
            let before = st.idle_sign_out_at(&rules);
            st.last_activity = Some(now);
            let after = st.idle_sign_out_at(&rules);
            matches!((before, after), (Some(b), Some(a))
                if (a - b).num_seconds() >= 60 || ((b - now).num_seconds() <= 90 && a > b))
        };
        self.share_activity_if_due(now);
        if moved {
            self.publish();
        }
        self.wake();
    }

    /// Write the last activity for other processes (and the next start),
    /// at most once per [`shared::ACTIVITY_GRAIN`]; only with an idle timeout.
    pub(super) fn share_activity_if_due(&self, now: Timestamp) {
        if self.rules().idle.is_none() {
            return;
        }
        let id = {
            let mut st = self.state();
            let due = st
                .activity_shared_at
                .is_none_or(|at| now - at >= shared::ACTIVITY_GRAIN || now < at);
            match st.session.as_ref().map(|s| s.session_id) {
                Some(id) if due => {
                    st.activity_shared_at = Some(now);
                    id
                }
                _ => return,
            }
        };
        self.share_activity(id, now);
    }

    /// The last activity another process noted for this session, if later
    /// than the one known here: taken (the idle timeout moves).
    pub(super) fn take_shared_activity(&self) -> bool {
        let Some(id) = self.state().session.as_ref().map(|s| s.session_id) else {
            return false;
        };
        let Some(at) = self.shared_activity(id) else {
            return false;
        };
        let mut st = self.state();
        if st.last_activity.is_some_and(|known| at > known) && at <= self.now() {
            st.last_activity = Some(at);
            return true;
        }
        false
    }

    /// The idle timeout or the absolute limit passed: sign out (the
    /// provider is told, the keychain cleared), then show the session as
    /// Expired with the reason.
    pub(super) async fn time_out(&self) {
        let rules = self.rules();
        let due = {
            let st = self.state();
            st.timeout_at(&rules).filter(|(t, _)| self.now() >= *t)
        };
        let Some((_, kind)) = due else { return };
        if kind == state::TimeoutKind::Idle && self.take_shared_activity() {
            // Used in another process meanwhile (`sessionctl call`).
            self.publish();
            self.wake();
            return;
        }
        let (name, limit) = match kind {
            state::TimeoutKind::Idle => ("idle", rules.idle),
            state::TimeoutKind::Absolute => ("absolute", rules.absolute),
        };
        let secs = limit.map(|d| d.as_secs()).unwrap_or_default();
        let event = AuditEvent::SessionTimedOut {
            kind: name.into(),
            after_secs: secs,
        };
        let reason = event.describe();
        let record = self.state().record(&rules, self.now(), event);
        let _ = self.inner.audit.append(&record);
        let why = match kind {
            state::TimeoutKind::Idle => crate::view::EndReason::Idle,
            state::TimeoutKind::Absolute => crate::view::EndReason::Absolute,
        };
        let _ = self.sign_out_with(Some((Error::TimedOut(reason), why))).await;
    }

    /// End a session that can no longer be renewed and whose token expired.
    pub(super) async fn expire_if_due(&self) {
        let (now, rules) = (self.now(), self.rules());
        // Another process may have renewed it: its fresher record is taken,
        // not deleted.
        let stored = match self.next_step() {
            Next::Expire => self.read_stored().await,
            _ => return,
        };
        let _ = self
            .apply(None, |st| {
                if st.next_step(&rules, now) != Next::Expire {
                    return Ok((Commit::keep(), ()));
                }
                if let (store::Stored::Record(r), Some(s)) = (stored, &st.session) {
                    if r.session_id == s.session_id && r.refresh_count > s.refresh_count {
                        return Ok((st.activate(*r, None, Arrival::Adopted, &rules, now), ()));
                    }
                }
                let at = st
                    .session
                    .as_ref()
                    .map(|s| s.expires_at.to_rfc3339())
                    .unwrap_or_default();
                let why = st
                    .last_failure
                    .clone()
                    .or_else(|| st.last_error.as_ref().map(|e| Error::Internal(e.message.clone())));
                let reason = match why {
                    Some(e) => format!("{at}, and it could not be renewed: {e}"),
                    None => at,
                };
                let error = Error::Expired(reason);
                let event = AuditEvent::SessionExpired {
                    reason: error.to_string(),
                    why: String::new(),
                };
                Ok((st.end(Phase::Expired, error, event, &rules, now), ()))
            })
            .await;
    }

    /// Another process changed the keychain record: take its session (a
    /// sign-in, a refresh) or end ours (a sign-out there).
    pub(super) async fn look_at_keychain(&self) {
        let probing = {
            let st = self.state();
            match st.persistence {
                Persistence::Keychain => false,
                // Memory-only: a session of ours is written again by its own
                // retry; with none, the keychain may have come back.
                _ if st.session.is_none() => true,
                _ => return,
            }
        };
        let stored = self.read_stored().await;
        if probing {
            if matches!(stored, store::Stored::Unreadable(_)) {
                return;
            }
            self.state().keychain_is_back();
        }
        let signed_out_here = {
            let st = self.state();
            st.session
                .as_ref()
                .map(|s| s.session_id)
                .filter(|id| self.has_tombstone(*id))
        };
        let (now, rules) = (self.now(), self.rules());
        let _ = self
            .apply(None, |st| {
                if !matches!(
                    st.phase,
                    Phase::Active | Phase::SignedOut | Phase::Expired | Phase::Revoked
                ) {
                    // Look again when the change under way is done.
                    st.recheck_keychain = true;
                    return Ok((Commit::keep(), ()));
                }
                if let Some(id) = signed_out_here {
                    // Signed out in another process that could not clear the
                    // keychain: clear it, end here.
                    let mut c = st.ended_elsewhere(&rules, now);
                    c.store = Store::SignOut(id);
                    return Ok((c, ()));
                }
                let commit = match (stored, &st.session) {
                    // Signed out in another process.
                    (store::Stored::Nothing, Some(_)) => {
                        let mut c = st.ended_elsewhere(&rules, now);
                        c.store = Store::Keep;
                        c
                    }
                    // Signed in, or refreshed, in another process.
                    (store::Stored::Record(r), Some(s))
                        if r.session_id != s.session_id
                            || r.refresh != s.refresh
                            || r.refresh_count > s.refresh_count =>
                    {
                        st.activate(*r, None, Arrival::Adopted, &rules, now)
                    }
                    // Signed in in another process while we had none (never
                    // the session that just ended here).
                    (store::Stored::Record(r), None)
                        if st.ended_id != Some(r.session_id) && !self.has_tombstone(r.session_id) =>
                    {
                        st.activate(*r, None, Arrival::Adopted, &rules, now)
                    }
                    // Ours, unchanged, or unreadable mid-write: nothing to do.
                    _ => Commit::keep(),
                };
                Ok((commit, ()))
            })
            .await;
    }
}
