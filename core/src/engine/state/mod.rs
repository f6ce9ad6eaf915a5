//! A session's state and every way it changes.
//!
//! Each transition is a method that changes the state in memory and returns
//! a [`Commit`]: what the keychain must do and which audit records to write.
//! The engine applies a commit in one place, in one order (persist, audit,
//! publish; see `Engine::apply`), so no transition can forget a step. The
//! methods do no I/O and need no runtime, which keeps them unit-testable.

use super::timing;
use crate::error::{Error, ErrorInfo};
use crate::os::clock::Timestamp;
use crate::provider::SessionTokens;
use crate::storage::audit::{AuditEvent, AuditRecord};
use crate::storage::vault::SessionRecord;
use crate::view::{BrowserWait, Persistence, Phase, RefreshOutcome};
use std::time::Duration;
use uuid::Uuid;

/// What the keychain does for a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Store {
    /// Nothing.
    Keep,
    /// Write the current session.
    Save,
    /// The person (or a session timeout) signed session `Uuid` out: a
    /// tombstone first, then delete its record, however fresh.
    SignOut(Uuid),
    /// Session `id` ended here (expired, revoked, refused): delete its
    /// record unless another process stored a fresher one of it (a higher
    /// `refresh_count`).
    Forget { id: Uuid, refresh_count: u32 },
}

/// The effects of a transition, applied by `Engine::apply`.
#[derive(Debug)]
pub(super) struct Commit {
    pub store: Store,
    pub audit: Vec<AuditRecord>,
}

impl Commit {
    pub fn keep() -> Self {
        Self {
            store: Store::Keep,
            audit: Vec::new(),
        }
    }
}

/// What the scheduler should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// No session, or a change under way: wait for a wake-up.
    Idle,
    /// Renew now.
    Renew,
    /// The idle timeout or the absolute limit has passed: sign out.
    TimeOut,
    /// Write the session to the keychain again (an earlier write failed).
    Persist,
    /// The session cannot be renewed and its token has expired.
    Expire,
    /// Nothing is due before this (local) time.
    WaitUntil(Timestamp),
}

/// Which session timeout ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    Idle,
    Absolute,
}

/// How the state was given a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    SignedIn,
    Restored,
    Refreshed,
    Reauthenticated {
        silent: bool,
    },
    /// Taken over from the keychain, where another process put it.
    Adopted,
}

/// The facts of the profile that transitions need.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    pub profile: String,
    pub lead: Duration,
    /// The session can be extended with its refresh token (not in
    /// re-authenticate mode).
    pub refresh_policy: bool,
    /// The profile's idle timeout and absolute session limit.
    pub idle: Option<Duration>,
    pub absolute: Option<Duration>,
}

/// One engine's session state. Guarded by a std mutex that is never held
/// across an await.
#[derive(Debug)]
pub(super) struct State {
    pub phase: Phase,
    pub session: Option<SessionRecord>,
    /// Bumped whenever the session's tokens change or it ends: a write that
    /// saw another generation is stale.
    pub generation: u64,
    /// Bumped for every published view.
    pub seq: u64,
    /// Local time of the next renewal attempt.
    pub next_refresh_at: Option<Timestamp>,
    pub retry_attempt: u32,
    /// Why the last attempt failed, while retrying: callers inside the
    /// backoff window get it instead of a new attempt.
    pub last_failure: Option<Error>,
    pub last_refresh: Option<RefreshOutcome>,
    pub last_error: Option<ErrorInfo>,
    pub persistence: Persistence,
    /// Identity kept after the session ended, for the view.
    pub last_user: Option<String>,
    /// Provider clock minus local clock, from the last token answer.
    pub clock_offset_ms: i64,
    /// Why the last session ended.
    pub ended: Option<Error>,
    /// A browser sign-in waiting for the person.
    pub browser: Option<BrowserWait>,
    /// Silent re-authentication failed: the person must sign in.
    pub reauth_needed: bool,
    /// Renewing failed because the client or profile is misconfigured
    /// (`invalid_client`, …): no more attempts until the person acts; the
    /// session and its refresh token are kept until the refresh token's
    /// stated end (see `renewal_step`). The error that stopped it.
    pub stopped_by: Option<Error>,
    /// Why the last session ended (with `ended`, which says it in words).
    pub end_reason: Option<crate::view::EndReason>,
    /// Tokens a renewal of session `Uuid` brought back after that session
    /// ended here, while its sign-out waited for the renewal: the sign-out
    /// revokes them.
    pub superseded: Option<(Uuid, SessionTokens)>,
    /// The sign-out of this session is waiting for a renewal in flight to
    /// land (then it takes `superseded`); after that, a renewal that lands
    /// revokes what it brought itself.
    pub awaiting_flight: Option<Uuid>,
    /// The session's record is (or was) in the keychain: a sign-out that
    /// cannot clear it leaves a tombstone; a memory-only session needs none.
    pub in_keychain: bool,
    /// When the last activity was written for other processes to see.
    pub activity_shared_at: Option<Timestamp>,
    /// A change notice from another process came while a change was under
    /// way here: look at the keychain when it is done.
    pub recheck_keychain: bool,
    /// A keychain write failed and is owed: when to try it again.
    pub persist_retry_at: Option<Timestamp>,
    /// The session that ended here last: never adopted back from the
    /// keychain (it may still be there while the sign-out clears it).
    pub ended_id: Option<Uuid>,
    /// The backup endpoint in use, when the primary failed.
    pub backup_endpoint: Option<String>,
    /// Report-only pinning: the last mismatch let through.
    pub pin_report: Option<String>,
    /// The last activity (the person in the app, an API call), local time,
    /// for the idle timeout.
    pub last_activity: Option<Timestamp>,
    /// Findings shown until dismissed (at most 10).
    pub anomalies: Vec<crate::insight::anomaly::Finding>,
    /// Recent API calls, for the pattern detector.
    pub calls: std::collections::VecDeque<crate::insight::anomaly::Call>,
    /// When the pattern detector last reported.
    pub last_api_finding: Option<Timestamp>,
    /// How long the refresh being committed took at the provider.
    pub refresh_latency_ms: Option<u64>,
    /// The keychain could not be read when the session was restored
    /// (missing, not answering, locked): a session may be stored there.
    /// What needs a session says this instead of "not signed in" until a
    /// session is here.
    pub unreadable: Option<crate::storage::vault::VaultError>,
}

impl State {
    pub fn new() -> Self {
        Self {
            phase: Phase::SignedOut,
            session: None,
            generation: 0,
            seq: 0,
            next_refresh_at: None,
            retry_attempt: 0,
            last_failure: None,
            last_refresh: None,
            last_error: None,
            persistence: Persistence::Keychain,
            last_user: None,
            clock_offset_ms: 0,
            ended: None,
            browser: None,
            reauth_needed: false,
            stopped_by: None,
            end_reason: None,
            superseded: None,
            awaiting_flight: None,
            in_keychain: false,
            activity_shared_at: None,
            recheck_keychain: false,
            persist_retry_at: None,
            ended_id: None,
            backup_endpoint: None,
            pin_report: None,
            last_activity: None,
            anomalies: Vec::new(),
            calls: std::collections::VecDeque::new(),
            last_api_finding: None,
            refresh_latency_ms: None,
            unreadable: None,
        }
    }

    /// The provider's clock now.
    pub fn provider_time(&self, now: Timestamp) -> Timestamp {
        now.checked_add_signed(chrono::Duration::milliseconds(self.clock_offset_ms))
            .unwrap_or(now)
    }

    /// The local time of a provider time.
    fn local_time(&self, at: Timestamp) -> Timestamp {
        at.checked_sub_signed(chrono::Duration::milliseconds(self.clock_offset_ms))
            .unwrap_or(at)
    }

    /// An audit record about the current session (or the last user).
    pub fn record(&self, rules: &Rules, now: Timestamp, event: AuditEvent) -> AuditRecord {
        record_of(self.session.as_ref(), self.last_user.clone(), rules, now, event)
    }

    /// Whether the session's token has expired (provider time).
    pub fn token_expired(&self, now: Timestamp) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| self.provider_time(now) >= s.expires_at)
    }

    /// Whether the session can be renewed at all.
    fn renewable(&self, rules: &Rules) -> bool {
        let Some(s) = &self.session else { return false };
        if self.stopped_by.is_some() || self.reauth_needed {
            return false;
        }
        if rules.refresh_policy {
            s.refresh.is_some()
        } else {
            true
        }
    }

    /// Plan the next renewal: `exp − lead` (jittered), in local time.
    fn schedule(&mut self, rules: &Rules) {
        self.next_refresh_at = match &self.session {
            Some(s) if self.renewable(rules) => {
                let at = timing::refresh_at(s.issued_at, s.expires_at, rules.lead, &mut rand::thread_rng());
                Some(self.local_time(at))
            }
            _ => None,
        };
        self.retry_attempt = 0;
        self.last_failure = None;
    }

    /// What the scheduler should do at local time `now`.
    pub fn next_step(&self, rules: &Rules, now: Timestamp) -> Next {
        let step = self.session_step(rules, now);
        match (self.persist_retry_at.filter(|_| self.session.is_some()), step) {
            (Some(at), _) if now >= at => Next::Persist,
            (Some(at), Next::Idle) => Next::WaitUntil(at),
            (Some(at), Next::WaitUntil(t)) => Next::WaitUntil(t.min(at)),
            _ => step,
        }
    }

    /// When the profile's idle timeout signs the session out.
    pub fn idle_sign_out_at(&self, rules: &Rules) -> Option<Timestamp> {
        let idle = rules.idle?;
        self.session.as_ref()?;
        Some(super::timing::after(self.last_activity?, idle))
    }

    /// When the profile's absolute limit ends the session.
    pub fn ends_at(&self, rules: &Rules) -> Option<Timestamp> {
        Some(super::timing::after(
            self.session.as_ref()?.signed_in_at?,
            rules.absolute?,
        ))
    }

    /// The sooner of the two session timeouts, and which one.
    pub fn timeout_at(&self, rules: &Rules) -> Option<(Timestamp, TimeoutKind)> {
        let idle = self.idle_sign_out_at(rules).map(|t| (t, TimeoutKind::Idle));
        let absolute = self.ends_at(rules).map(|t| (t, TimeoutKind::Absolute));
        match (idle, absolute) {
            (Some(i), Some(a)) => Some(if a.0 <= i.0 { a } else { i }),
            (i, a) => i.or(a),
        }
    }

    fn session_step(&self, rules: &Rules, now: Timestamp) -> Next {
        let Some(s) = &self.session else { return Next::Idle };
        if self.phase != Phase::Active {
            // SigningIn and Refreshing end by themselves and wake the
            // scheduler; the others have no session.
            return Next::Idle;
        }
        let timeout = self.timeout_at(rules).map(|(t, _)| t);
        if timeout.is_some_and(|t| now >= t) {
            return Next::TimeOut;
        }
        match self.renewal_step(s, rules, now) {
            Next::WaitUntil(at) => Next::WaitUntil(timeout.map_or(at, |t| t.min(at))),
            Next::Idle => timeout.map_or(Next::Idle, Next::WaitUntil),
            other => other,
        }
    }

    fn renewal_step(&self, s: &SessionRecord, rules: &Rules, now: Timestamp) -> Next {
        let provider_now = self.provider_time(now);
        let expired = provider_now >= s.expires_at;
        // When both tokens are dead (provider time) the session ends,
        // whatever the retries: after one last attempt.
        let dead_at = s.renewable_until.map(|until| until.max(s.expires_at));
        let dead = dead_at.is_some_and(|d| provider_now >= d);
        if self.stopped_by.is_some() && rules.refresh_policy && s.refresh.is_some() {
            // A misconfigured client: no attempts until the person acts, and
            // the refresh token is kept for then, as long as it may live.
            return match dead_at {
                Some(_) if dead => Next::Expire,
                Some(d) => Next::WaitUntil(self.local_time(d)),
                None => Next::Idle,
            };
        }
        if !self.renewable(rules) {
            return if expired {
                Next::Expire
            } else {
                Next::WaitUntil(self.local_time(s.expires_at))
            };
        }
        if dead {
            // Our reading of the refresh token's end (its `exp`, the
            // provider's `refresh_expires_in`) may be wrong, or the clock
            // jumped: the provider's answer to one last attempt decides.
            let tried_since = self
                .last_refresh
                .as_ref()
                .is_some_and(|r| !r.ok && dead_at.is_some_and(|d| self.provider_time(r.at) >= d));
            return if tried_since { Next::Expire } else { Next::Renew };
        }
        let dead_at = dead_at.map(|d| self.local_time(d));
        let sooner = |t: Timestamp| dead_at.map_or(t, |d| t.min(d));
        match self.next_refresh_at {
            Some(at) if now >= at => Next::Renew,
            Some(at) => Next::WaitUntil(sooner(at)),
            // Renewable but nothing planned: renew before use.
            None if expired => Next::Renew,
            None => Next::WaitUntil(sooner(self.local_time(s.expires_at))),
        }
    }

    /// A sign-in starts. Refused while one runs or a session is live.
    pub fn begin_sign_in(&mut self) -> Result<u64, Error> {
        match self.phase {
            Phase::SigningIn => return Err(Error::InvalidState("a sign-in is already in progress".into())),
            Phase::Active | Phase::Refreshing => {
                return Err(Error::InvalidState(format!(
                    "already signed in as {}; sign out first",
                    self.session.as_ref().map(|s| s.user.as_str()).unwrap_or("someone")
                )))
            }
            _ => {}
        }
        self.phase = Phase::SigningIn;
        self.last_error = None;
        self.generation += 1;
        Ok(self.generation)
    }

    /// The sign-in of generation `generation` failed.
    pub fn sign_in_failed(&mut self, generation: u64, error: &Error, rules: &Rules, now: Timestamp) -> Commit {
        if self.generation != generation || self.phase != Phase::SigningIn {
            return Commit::keep();
        }
        self.phase = Phase::SignedOut;
        self.browser = None;
        self.last_error = Some(error.info());
        let mut audit = failure_records(self, error, rules, now);
        audit.push(self.record(
            rules,
            now,
            AuditEvent::SignInFailed {
                code: error.code().to_string(),
                reason: error.to_string(),
            },
        ));
        Commit {
            store: Store::Keep,
            audit,
        }
    }

    /// The session `record` is the session now.
    pub fn activate(
        &mut self,
        record: SessionRecord,
        offset_ms: Option<i64>,
        arrival: Arrival,
        rules: &Rules,
        now: Timestamp,
    ) -> Commit {
        if let Some(o) = offset_ms {
            self.clock_offset_ms = o;
        }
        self.unreadable = None;
        let event = match arrival {
            Arrival::SignedIn => AuditEvent::SessionCreated,
            Arrival::Restored => AuditEvent::SessionRestored,
            Arrival::Refreshed => AuditEvent::SessionRefreshed {
                refresh_count: record.refresh_count,
                latency_ms: self.refresh_latency_ms.take(),
            },
            Arrival::Reauthenticated { silent } => AuditEvent::SessionReauthenticated {
                count: record.refresh_count,
                silent,
            },
            Arrival::Adopted => AuditEvent::SessionAdopted,
        };
        self.last_user = Some(record.user.clone());
        let mut record = record;
        // A record from before the absolute limit existed starts it now.
        record.signed_in_at.get_or_insert(now);
        if matches!(arrival, Arrival::SignedIn | Arrival::Restored) || self.last_activity.is_none() {
            self.last_activity = Some(now);
        }
        match arrival {
            Arrival::Restored | Arrival::Adopted => self.in_keychain = true,
            Arrival::SignedIn => {
                self.in_keychain = false;
                self.superseded = None;
                self.activity_shared_at = None;
            }
            _ => {}
        }
        self.session = Some(record);
        self.phase = Phase::Active;
        self.generation += 1;
        self.browser = None;
        self.reauth_needed = false;
        self.stopped_by = None;
        self.ended = None;
        self.end_reason = None;
        self.last_error = None;
        if matches!(arrival, Arrival::Refreshed | Arrival::Reauthenticated { .. }) {
            self.last_refresh = Some(RefreshOutcome { at: now, ok: true });
        }
        if arrival == Arrival::SignedIn {
            self.last_refresh = None;
        }
        self.schedule(rules);
        let store = match arrival {
            // It came from the keychain.
            Arrival::Restored | Arrival::Adopted => Store::Keep,
            _ => Store::Save,
        };
        let mut audit = vec![self.record(rules, now, event)];
        let no_refresh = self.session.as_ref().filter(|s| s.refresh.is_none());
        if let (Arrival::SignedIn, true, Some(s)) = (arrival, rules.refresh_policy, no_refresh) {
            let granted_scope = s.scope.clone().unwrap_or_else(|| "not stated".into());
            audit.push(self.record(rules, now, AuditEvent::NoRefreshToken { granted_scope }));
        }
        Commit { store, audit }
    }

    /// Write-ahead: the provider redeemed the refresh token and handed out
    /// `new`, the only valid one from now on. It replaces the spent one at
    /// once, before anything else can fail.
    pub fn rotate(&mut self, new: crate::token::RefreshToken) -> Commit {
        if let Some(s) = self.session.as_mut() {
            s.refresh = Some(new);
            self.generation += 1;
            return Commit {
                store: Store::Save,
                audit: Vec::new(),
            };
        }
        Commit::keep()
    }

    /// The records of a failed renewal attempt: what the failure itself
    /// calls for (a pin mismatch, a failed check), then `refresh_failed`.
    fn refresh_failed(&self, error: &Error, attempt: u32, rules: &Rules, now: Timestamp) -> Vec<AuditRecord> {
        let mut audit = failure_records(self, error, rules, now);
        audit.push(self.record(
            rules,
            now,
            AuditEvent::RefreshFailed {
                reason: error.to_string(),
                code: error.code().to_string(),
                attempt,
            },
        ));
        audit
    }

    /// A renewal attempt failed for a reason that may pass: try again after
    /// the backoff (or the server's `Retry-After`), whatever the token's
    /// expiry, for as long as the refresh token may be good.
    pub fn retry_later(&mut self, error: &Error, rules: &Rules, now: Timestamp) -> Commit {
        self.phase_back_to_active();
        self.retry_attempt += 1;
        let attempt = self.retry_attempt;
        let audit = self.refresh_failed(error, attempt, rules, now);
        self.last_error = Some(error.info());
        self.last_failure = Some(error.clone());
        self.last_refresh = Some(RefreshOutcome { at: now, ok: false });
        if let Some(s) = &self.session {
            let lifetime = (s.expires_at - s.issued_at).to_std().unwrap_or(Duration::from_secs(1));
            let backoff = timing::backoff(timing::backoff_base(lifetime), attempt, &mut rand::thread_rng());
            self.next_refresh_at = Some(timing::after(now, timing::retry_delay(backoff, error.retry_after())));
        }
        Commit {
            store: Store::Keep,
            audit,
        }
    }

    /// Renewing failed because the client or profile is misconfigured (the
    /// session is kept, with its refresh token, until that token's stated
    /// end), or the person must act (`reauth`: the session lasts as long as
    /// its token). No more attempts either way.
    pub fn stop_renewing(&mut self, error: &Error, reauth: bool, rules: &Rules, now: Timestamp) -> Commit {
        self.phase_back_to_active();
        let audit = self.refresh_failed(error, self.retry_attempt + 1, rules, now);
        if reauth {
            self.reauth_needed = true;
        } else {
            self.stopped_by = Some(error.clone());
        }
        self.next_refresh_at = None;
        self.last_error = Some(error.info());
        self.last_failure = None;
        self.last_refresh = Some(RefreshOutcome { at: now, ok: false });
        Commit {
            store: Store::Keep,
            audit,
        }
    }

    /// The session ends: `phase` (Expired, Revoked or SignedOut) because of
    /// `error`. The keychain forgets it, if it still holds this one.
    pub fn end(&mut self, phase: Phase, error: Error, event: AuditEvent, rules: &Rules, now: Timestamp) -> Commit {
        let Some(session) = self.session.take() else {
            self.phase = phase;
            return Commit::keep();
        };
        let end_reason = end_reason_of(phase, &error);
        let event = event.with_why(end_reason.text());
        let audit = vec![record_of(Some(&session), None, rules, now, event)];
        self.last_user = Some(session.user.clone());
        self.ended_id = Some(session.session_id);
        self.phase = phase;
        self.generation += 1;
        self.next_refresh_at = None;
        self.retry_attempt = 0;
        self.last_failure = None;
        self.browser = None;
        self.reauth_needed = false;
        self.stopped_by = None;
        self.last_error =
            (phase != Phase::SignedOut || matches!(error, Error::EndedElsewhere(_))).then(|| error.info());
        self.end_reason = Some(end_reason);
        self.ended = Some(error);
        Commit {
            store: Store::Forget {
                id: session.session_id,
                refresh_count: session.refresh_count,
            },
            audit,
        }
    }

    /// The session was signed out in another process (which told the
    /// provider): it ends here too. The caller says what the keychain does.
    pub fn ended_elsewhere(&mut self, rules: &Rules, now: Timestamp) -> Commit {
        self.end(
            Phase::SignedOut,
            Error::EndedElsewhere("signed out in another process".into()),
            AuditEvent::SignedOut {
                server_logout: "done by another process".into(),
            },
            rules,
            now,
        )
    }

    /// The keychain answers again: sessions are kept there, and the error
    /// that said it was unavailable is gone.
    pub fn keychain_is_back(&mut self) {
        self.persistence = Persistence::Keychain;
        if self
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == crate::ErrorCode::KeychainUnavailable)
        {
            self.last_error = None;
        }
    }

    /// A flight that did not finish (cancelled, panicked) leaves no trace.
    pub fn phase_back_to_active(&mut self) {
        if self.phase == Phase::Refreshing {
            self.phase = if self.session.is_some() {
                Phase::Active
            } else {
                Phase::SignedOut
            };
        }
    }
}

/// Why a session ended, from the phase it ended in and the error that says
/// why (the idle and absolute timeouts, and checks that failed, are set
/// where they happen).
pub(crate) fn end_reason_of(phase: Phase, error: &Error) -> crate::view::EndReason {
    use crate::view::EndReason;
    match error {
        Error::Revoked(m) if crate::provider::from_another_device(m) => EndReason::EndedOnAnotherDevice,
        Error::Revoked(_) => EndReason::Revoked,
        Error::RefreshRefused(_) => EndReason::Refused,
        Error::Expired(_) => EndReason::RefreshTokenExpired,
        Error::EndedElsewhere(_) => EndReason::SignedOutElsewhere,
        _ if phase == Phase::SignedOut => EndReason::SignedOut,
        _ => EndReason::CheckFailed,
    }
}

/// An audit record about `session` (or, with none, about `last_user`).
pub(super) fn record_of(
    session: Option<&SessionRecord>,
    last_user: Option<String>,
    rules: &Rules,
    now: Timestamp,
    event: AuditEvent,
) -> AuditRecord {
    AuditRecord {
        time: now,
        profile: rules.profile.clone(),
        user: session.map(|s| s.user.clone()).or(last_user),
        session_id: session.map(|s| s.session_id.to_string()),
        fingerprint: session.map(|s| s.bearer.fingerprint()),
        event,
    }
}

/// The extra record a failure deserves (pin mismatch, failed validation).
pub(super) fn failure_records(st: &State, error: &Error, rules: &Rules, now: Timestamp) -> Vec<AuditRecord> {
    let event = match error {
        Error::PinMismatch { host, presented } => AuditEvent::PinMismatch {
            host: host.clone(),
            presented: presented.clone(),
        },
        Error::Token(t) => AuditEvent::ValidationFailed { check: t.to_string() },
        _ => return Vec::new(),
    };
    vec![st.record(rules, now, event)]
}

#[cfg(test)]
mod tests;
