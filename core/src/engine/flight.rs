//! How a session is renewed: the whole refresh decision, in one file.
//!
//! 1. **Backoff governs every trigger.** The scheduler, a 401 and "refresh
//!    now" alike: inside the backoff window after a failure, a caller gets
//!    that failure again, not a new request.
//! 2. **Single flight, shared outcome.** Callers that arrive while a renewal
//!    runs wait for it and take its outcome, success or failure
//!    ([`FlightLog`]): N callers during an outage cost one request.
//! 3. **The keychain is the truth, under the cross-process lock.** With the
//!    lock held, the stored record is read first: gone means the session
//!    was signed out in another process (it ends here too); another session
//!    means another process signed in (it is adopted); a newer refresh of
//!    ours means another process refreshed (adopted). Only our own current
//!    record is redeemed. A record that cannot be read fails the attempt:
//!    never redeem what may be spent.
//! 4. **Write-ahead rotation.** The moment the provider answers with a new
//!    refresh token, it replaces the spent one in memory and in the
//!    keychain, before any other network call (JWKS, validation). A passing
//!    failure afterwards retries with the new token; an answer that fails a
//!    security check ends the session and the new token is revoked.
//! 5. **A flight outlives its caller.** It runs as a task of its own: a
//!    caller that gives up (Ctrl-C, a timeout, a closed window) does not
//!    cancel a request the provider may already have answered with a new
//!    refresh token; [`Engine::drain`] lets it land before the process
//!    exits. A [`FlightGuard`] puts a panicking flight's session back to
//!    Active.
//! 6. **No token is presented twice.** After each redemption the journal
//!    beside the lock names the live token (`shared.rs`); a process whose
//!    token differs waits for the keychain instead of presenting a spent
//!    one. A tombstone (a sign-out elsewhere) ends the session here.
//!
//! Re-authenticate mode renews with a browser sign-in instead: it holds no
//! lock while the person is in the browser, and 401 callers never wait on it.

use super::grant::is_security_failure;
use super::state::{Arrival, Commit};
use super::Engine;
use crate::error::{Error, RenewalVerdict};
use crate::provider::{Credentials, SessionTokens};
use crate::storage::audit::AuditEvent;
use crate::storage::proclock::ProcessLock;
use crate::storage::vault::VaultError;
use crate::view::{Persistence, Phase};
use std::sync::atomic::Ordering;
use tracing::Instrument;

/// What started a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The scheduler: the renewal time came.
    Schedule,
    /// The provider answered 401, or the token was found expired before use.
    Unauthorized,
    /// The person asked ("Refresh now", `sessionctl refresh`).
    Manual,
    /// The person asked to sign in again (re-authenticate mode's one click).
    Interactive,
}

/// Where a renewal's new tokens went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Landed {
    /// Into the session (and the keychain).
    Kept,
    /// To the sign-out that waits for this flight.
    Parked,
    /// The session ended and nobody waits: this flight revokes them.
    Orphaned,
}

/// The single flight: how many renewals have run and how the last ended.
#[derive(Debug, Default)]
pub(super) struct FlightLog {
    pub outcome: Option<Result<(), Error>>,
}

/// Puts a renewal's session back to Active if the renewal does not finish
/// (its future was dropped, or it panicked).
struct FlightGuard<'a> {
    engine: &'a Engine,
    armed: bool,
}

impl<'a> FlightGuard<'a> {
    fn begin(engine: &'a Engine) -> Self {
        {
            let mut st = engine.state();
            if st.phase == Phase::Active {
                st.phase = Phase::Refreshing;
            }
        }
        engine.publish();
        Self { engine, armed: true }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.engine.state().phase_back_to_active();
            self.engine.publish();
            self.engine.wake();
        }
    }
}

impl Engine {
    /// Renew the session (refresh token, or a browser sign-in in
    /// re-authenticate mode).
    pub(crate) async fn extend(&self, trigger: Trigger) -> Result<(), Error> {
        if self.rules().refresh_policy {
            self.refresh_flight(trigger).await
        } else {
            self.reauth_flight(trigger).await
        }
    }

    /// The failure a caller inside the backoff window gets, if any.
    fn in_backoff(&self, trigger: Trigger) -> Option<Error> {
        if trigger == Trigger::Schedule {
            return None;
        }
        let st = self.state();
        let failure = st.last_failure.clone()?;
        st.next_refresh_at.filter(|at| self.now() < *at).map(|_| failure)
    }

    /// Why a session cannot be renewed in this state, if it cannot.
    fn not_renewable(&self) -> Option<Error> {
        let st = self.state();
        match (&st.session, st.phase) {
            (Some(_), Phase::Active | Phase::Refreshing) => None,
            _ => Some(super::no_session(&st)),
        }
    }

    async fn refresh_flight(&self, trigger: Trigger) -> Result<(), Error> {
        if let Some(e) = self.not_renewable().or_else(|| self.in_backoff(trigger)) {
            return Err(e);
        }
        let seen = self.inner.flights_run.load(Ordering::SeqCst);
        let engine = self.clone();
        let flight = tokio::spawn(async move {
            let mut log = engine.inner.flights.lock().await;
            if engine.inner.flights_run.load(Ordering::SeqCst) != seen {
                // A renewal ran while this caller waited: its outcome is ours.
                return log.outcome.clone().unwrap_or(Ok(()));
            }
            let outcome = engine.refresh_once().await;
            log.outcome = Some(outcome.clone());
            engine.inner.flights_run.fetch_add(1, Ordering::SeqCst);
            outcome
        });
        let outcome = flight
            .await
            .unwrap_or_else(|e| Err(Error::Internal(format!("the renewal stopped: {e}"))));
        // A change notice from another process that came during the flight
        // was put off: look at the keychain now.
        if std::mem::take(&mut self.state().recheck_keychain) {
            self.look_at_keychain().await;
        }
        outcome
    }

    /// One renewal with the refresh token.
    async fn refresh_once(&self) -> Result<(), Error> {
        let Some((current, persistent)) = ({
            let st = self.state();
            st.session
                .clone()
                .filter(|_| st.phase == Phase::Active)
                .map(|s| (s, st.persistence == Persistence::Keychain))
        }) else {
            return Err(self.not_renewable().unwrap_or(Error::NotSignedIn));
        };
        let Some(token) = current.refresh.clone() else {
            let e = Error::InvalidState(
                "the provider issued no refresh token; sign in again when the session expires".into(),
            );
            return self.failed(None, e).await;
        };
        let lock = match self.process_lock(ProcessLock::WAIT).await {
            Ok(l) => l,
            // Another process holds it too long, or it cannot be taken (a
            // file system without locks): a failed attempt, with backoff.
            Err(e) => return self.failed(None, e).await,
        };
        if self.has_tombstone(current.session_id) {
            // Signed out in another process that could not clear the
            // keychain (or is clearing it now).
            return self.ended_elsewhere(&lock, true).await;
        }
        // Memory-only too: the keychain may be back, with another process's
        // renewal of this session in it.
        {
            match self.read_stored().await {
                super::store::Stored::Nothing if persistent => {
                    return self.ended_elsewhere(&lock, false).await;
                }
                super::store::Stored::Nothing => {}
                super::store::Stored::Record(stored)
                    if stored.session_id != current.session_id
                        || stored.refresh != current.refresh
                        || stored.refresh_count > current.refresh_count =>
                {
                    // Another process signed in anew, or refreshed ours:
                    // its record is the session now; our token may be spent.
                    let now = self.now();
                    let rules = self.rules();
                    return self
                        .apply(Some(&lock), |st| {
                            st.persistence = Persistence::Keychain;
                            Ok((st.activate(*stored, None, Arrival::Adopted, &rules, now), ()))
                        })
                        .await;
                }
                super::store::Stored::Record(_) => {}
                super::store::Stored::Unreadable(e) if e.is_unavailable() => {
                    // The keychain went away: memory is all there is, and no
                    // other process can have used it meanwhile.
                    self.state().persistence = Persistence::MemoryOnly;
                }
                super::store::Stored::Unreadable(e) => {
                    // Fail closed: a record we cannot read may hold a newer
                    // token than ours.
                    return self.failed(Some(&lock), Error::Vault(e)).await;
                }
            }
        }
        if self.journal_says_spent(current.session_id, &token) {
            // Another process redeemed this token and could not store the
            // new one: presenting ours would look like a reuse to the
            // provider. Wait for that process to store it.
            let e = Error::Vault(VaultError::Unavailable(
                "another process renewed this session and could not store its new refresh token yet; \
                 renewal goes on here once the keychain has it"
                    .into(),
            ));
            return self.failed(Some(&lock), e).await;
        }
        let guard = FlightGuard::begin(self);
        let flow = self.flow(current.session_id);
        self.inner.refresh_requests.fetch_add(1, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let span = tracing::info_span!("refresh", activity_id = %flow.activity_id, session_id = %current.session_id);
        let grant = match self
            .routed(self.inner.provider.refresh(&token, &flow))
            .instrument(span)
            .await
        {
            Ok(g) => g,
            Err(e) => {
                guard.disarm();
                return self.failed(Some(&lock), e).await;
            }
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        // Write-ahead: the provider redeemed `token`; the new refresh token
        // is the only valid one and goes to the keychain before anything
        // else can fail.
        if let Some(new) = grant.refresh.clone().filter(|new| *new != token) {
            self.journal_redemption(current.session_id, &new);
            let tokens = SessionTokens {
                bearer: grant.bearer.clone(),
                refresh: Some(new.clone()),
                id_token: grant.id_token.clone(),
            };
            let landed = self
                .apply(Some(&lock), |st| {
                    if st.session.as_ref().map(|s| s.session_id) != Some(current.session_id) {
                        // Signed out meanwhile: a sign-out waiting for this
                        // flight revokes these; otherwise this flight does.
                        if st.awaiting_flight == Some(current.session_id) {
                            st.superseded = Some((current.session_id, tokens.clone()));
                            return Ok((Commit::keep(), Landed::Parked));
                        }
                        return Ok((Commit::keep(), Landed::Orphaned));
                    }
                    Ok((st.rotate(new.clone()), Landed::Kept))
                })
                .await?;
            if landed != Landed::Kept {
                guard.disarm();
                if landed == Landed::Orphaned {
                    self.revoke_quietly(&tokens).await;
                }
                return Err(self.not_renewable().unwrap_or(Error::NotSignedIn));
            }
        }
        // Now that the new refresh token is kept: the provider's own check
        // of its answer (an ID token against its key set), then ours.
        let (grant, checked) = match self.inner.provider.check_refresh(grant.clone()).await {
            Ok(checked) => {
                let claims = self.verify_grant(&checked, Some(&current.user)).await;
                (checked, claims)
            }
            Err(e) => (grant, Err(e)),
        };
        let offset = self.clock_offset(&grant);
        guard.disarm();
        match checked {
            Ok(claims) => {
                let previous = self.state().session.clone();
                let record = self.record_from(
                    grant,
                    &claims,
                    current.session_id,
                    current.refresh_count + 1,
                    previous.as_ref(),
                );
                let (now, rules) = (self.now(), self.rules());
                self.apply(Some(&lock), |st| {
                    if st.session.as_ref().map(|s| s.session_id) != Some(current.session_id) {
                        return Err(super::no_session(st));
                    }
                    st.refresh_latency_ms = Some(latency_ms);
                    Ok((st.activate(record, offset, Arrival::Refreshed, &rules, now), ()))
                })
                .await
            }
            Err(e) if is_security_failure(&e) => {
                // The answer cannot be trusted: end the session, and revoke
                // what it brought (best effort).
                let tokens = SessionTokens {
                    bearer: grant.bearer,
                    refresh: grant.refresh,
                    id_token: grant.id_token,
                };
                let (now, rules) = (self.now(), self.rules());
                let ended = Error::Revoked(format!(
                    "the provider's new token failed a check, so the session was ended: {e}"
                ));
                let _ = self
                    .apply(Some(&lock), |st| {
                        let mut c = st.end(
                            Phase::Revoked,
                            ended.clone(),
                            AuditEvent::SessionRevoked {
                                reason: ended.to_string(),
                                why: crate::view::EndReason::CheckFailed.text().into(),
                            },
                            &rules,
                            now,
                        );
                        c.audit.splice(0..0, super::state::failure_records(st, &e, &rules, now));
                        st.end_reason = Some(crate::view::EndReason::CheckFailed);
                        Ok((c, ()))
                    })
                    .await;
                drop(lock);
                let flow = self.flow(current.session_id);
                let _ = self
                    .inner
                    .provider
                    .sign_out(&tokens, &flow, &crate::provider::opener::NoOpener)
                    .await;
                Err(e)
            }
            // A passing condition (the key set could not be fetched, clock
            // skew): retry later, with the new refresh token already kept.
            Err(e) => self.failed(Some(&lock), e).await,
        }
    }

    /// A renewal failed: end the session, retry later, or stop trying,
    /// as the error says. Returns the error.
    async fn failed(&self, lock: Option<&ProcessLock>, e: Error) -> Result<(), Error> {
        let (now, rules) = (self.now(), self.rules());
        let outcome = e.clone();
        self.apply(lock, move |st| {
            let c = match e.renewal_verdict() {
                RenewalVerdict::Revoked => st.end(
                    Phase::Revoked,
                    e.clone(),
                    AuditEvent::SessionRevoked {
                        reason: e.to_string(),
                        why: String::new(),
                    },
                    &rules,
                    now,
                ),
                RenewalVerdict::Refused => st.end(
                    Phase::Expired,
                    e.clone(),
                    AuditEvent::SessionExpired {
                        reason: e.to_string(),
                        why: String::new(),
                    },
                    &rules,
                    now,
                ),
                RenewalVerdict::Reauthenticate => st.stop_renewing(&e, true, &rules, now),
                RenewalVerdict::Misconfigured => st.stop_renewing(&e, false, &rules, now),
                RenewalVerdict::Retry => st.retry_later(&e, &rules, now),
            };
            Ok((c, ()))
        })
        .await?;
        Err(outcome)
    }

    /// The keychain no longer holds the session: it was signed out in
    /// another process. It ends here too (the other process told the
    /// provider).
    /// `clear`: the keychain may still hold it (the sign-out could not clear
    /// it), so this process does.
    async fn ended_elsewhere(&self, lock: &ProcessLock, clear: bool) -> Result<(), Error> {
        let (now, rules) = (self.now(), self.rules());
        self.apply(Some(lock), move |st| {
            let mut c = st.ended_elsewhere(&rules, now);
            c.store = match (clear, st.ended_id) {
                (true, Some(id)) => super::state::Store::SignOut(id),
                // Already gone from the keychain.
                _ => super::state::Store::Keep,
            };
            Ok((c, ()))
        })
        .await?;
        Err(Error::EndedElsewhere("signed out in another process".into()))
    }

    /// Re-authenticate mode: a browser sign-in extends the session, silent
    /// (`prompt=none`) unless the person asked. No lock is held while the
    /// browser works; 401 callers never wait on it.
    async fn reauth_flight(&self, trigger: Trigger) -> Result<(), Error> {
        if let Some(e) = self.not_renewable() {
            return Err(e);
        }
        let silent = trigger != Trigger::Interactive;
        if silent && self.state().reauth_needed {
            return Err(Error::ReauthRequired(
                "a sign-in is needed; the silent one failed".into(),
            ));
        }
        let _one = match trigger {
            Trigger::Unauthorized => match self.inner.browser_flight.try_lock() {
                Ok(g) => g,
                Err(_) => return Err(Error::ReauthRequired("a sign-in in the browser is under way".into())),
            },
            _ => self.inner.browser_flight.lock().await,
        };
        let Some(current) = self.state().session.clone() else {
            return Err(self.not_renewable().unwrap_or(Error::NotSignedIn));
        };
        let generation = self.state().generation;
        let guard = FlightGuard::begin(self);
        let flow = self.flow(current.session_id);
        let (request, credentials) = self.browser_request(silent, false);
        self.inner.refresh_requests.fetch_add(1, Ordering::SeqCst);
        let result = async {
            let grant = match self
                .inner
                .provider
                .sign_in(&Credentials::Browser(credentials), &flow)
                .await
            {
                Err(Error::SignInCancelled) if silent => {
                    return Err(Error::ReauthRequired("the silent sign-in was cancelled".into()))
                }
                other => other?,
            };
            let claims = self.verify_grant(&grant, Some(&current.user)).await?;
            Ok::<_, Error>((grant, claims))
        }
        .await;
        self.browser_done(request);
        guard.disarm();
        let (grant, claims) = match result {
            Ok(v) => v,
            // The person has to act: say so, no retry storm.
            Err(e) if silent || matches!(e, Error::ReauthRequired(_)) => {
                let e = match e {
                    e @ Error::ReauthRequired(_) => e,
                    e if e.is_transient() => e,
                    other => Error::ReauthRequired(other.to_string()),
                };
                return self.failed(None, e).await;
            }
            Err(e) => {
                // An interactive attempt that failed: the person may try
                // again; the session goes on until it expires.
                let (now, rules) = (self.now(), self.rules());
                let err = e.clone();
                self.apply(None, move |st| {
                    st.phase_back_to_active();
                    st.last_error = Some(e.info());
                    Ok((
                        Commit {
                            store: super::state::Store::Keep,
                            audit: vec![st.record(
                                &rules,
                                now,
                                AuditEvent::RefreshFailed {
                                    reason: e.to_string(),
                                    code: e.code().to_string(),
                                    attempt: st.retry_attempt + 1,
                                },
                            )],
                        },
                        (),
                    ))
                })
                .await?;
                return Err(err);
            }
        };
        let offset = self.clock_offset(&grant);
        let record = self.record_from(
            grant,
            &claims,
            current.session_id,
            current.refresh_count + 1,
            Some(&current),
        );
        let (now, rules) = (self.now(), self.rules());
        self.apply(None, |st| {
            if st.generation != generation || st.session.is_none() {
                return Err(super::no_session(st));
            }
            Ok((
                st.activate(record, offset, Arrival::Reauthenticated { silent }, &rules, now),
                (),
            ))
        })
        .await
    }
}
