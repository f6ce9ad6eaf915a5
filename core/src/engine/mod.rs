//! The session engine: one profile's session and the operations fronts call
//! (sign in, restore, renew, call the API, sign out).
//!
//! A session lives as long as its refresh token, not as long as its session
//! (access) token: an expired token means "renew before use", wherever it is
//! found (the scheduler after a sleep, a restore, a call). It ends when the
//! provider refuses the refresh token (`Expired`, or `Revoked` when the
//! provider says revoked or reused), when there is no way to renew and the
//! token expired (`Expired`), or on sign-out, here or in another process.
//!
//! Where things are:
//! - `state`: the state and its transitions (pure);
//! - `store`: the one commit path (persist, audit, publish), the keychain;
//! - `flight`: the whole refresh decision;
//! - `grant`: checking a provider's answer;
//! - `browser`: the browser step of a sign-in;
//! - `scheduler`: the background task.

mod anomalies;
mod browser;
mod flight;
mod grant;
mod scheduler;
mod sessions;
mod shared;
mod state;
mod store;
pub mod timing;

pub use scheduler::SchedulerGuard;

use crate::error::{Error, ErrorInfo};
use crate::net::headers::FlowContext;
use crate::os::clock::{Clock, SystemClock, Timestamp};
use crate::os::resume::SleepBus;
use crate::profile::{ExtendAccess, Profile, ProviderKind};
use crate::provider::finhub::FinHub;
use crate::provider::oidc::discovery::{DiscoveredJwks, DiscoveryCache};
use crate::provider::oidc::Oidc;
use crate::provider::opener::{Opener, SystemOpener};
use crate::provider::{ApiRequest, ApiResponse, Credentials, Provider, SessionTokens};
use crate::storage::audit::{AuditEvent, AuditLog};
use crate::storage::proclock::{self, Beacon, ProcessLock};
use crate::storage::vault::{KeyringStore, SecretStore, Vault, VaultError};
use crate::token::{AccessToken, HttpJwksFetcher, JwksCache, Password, Validator};
use crate::view::{Persistence, Phase, SessionView, SignInMethod};
use flight::{FlightLog, Trigger};
use state::{Arrival, Commit, Next, Rules, State, Store};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, Notify};
use tracing::Instrument;
use uuid::Uuid;

/// The leeway for token time checks.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// How long a sign-out waits for a renewal under way to finish (so that it
/// revokes what that renewal brings back).
const SIGN_OUT_WAITS_FOR_RENEWAL: Duration = Duration::from_secs(40);
/// How long an API call's audit record may wait in the log's queue (a
/// crash loses at most this much of them).
pub(crate) const AUDIT_FLUSH_AFTER: Duration = Duration::from_secs(1);

/// Everything an engine is built from. [`Engine::open`] builds the real
/// parts; tests replace the provider, store and clock.
pub struct EngineParts {
    pub profile: Arc<Profile>,
    pub provider: Arc<dyn Provider>,
    pub validator: Validator,
    pub store: Arc<dyn SecretStore>,
    pub audit: Arc<AuditLog>,
    pub clock: Arc<dyn Clock>,
    /// Where the cross-process lock, change file and tombstones of the
    /// keychain record live: the same for every process of the user
    /// ([`proclock::shared_dir`]), whatever its data directory.
    pub shared_dir: PathBuf,
    /// Opens the provider's pages in a browser (OIDC).
    pub opener: Arc<dyn Opener>,
}

/// Who makes an API call through the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Caller {
    /// The person (the app, `sessionctl call`, [`Engine::call`]).
    Person,
    /// The engine's own checks.
    Engine,
}

/// The engine's insides, shared by its handles.
struct Inner {
    profile: Arc<Profile>,
    provider: Arc<dyn Provider>,
    validator: Validator,
    vault: Vault,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    correlation_id: Uuid,
    /// The session's state. A std mutex, because it is held for short,
    /// synchronous sections only and never across an await (the engine's
    /// futures are `Send`, so the compiler refuses a guard held across one).
    state: Mutex<State>,
    /// Serializes commits (tokio mutex: held across the keychain write), so
    /// persist, audit and publish of one transition finish before the next.
    commits: tokio::sync::Mutex<()>,
    /// The single flight of refresh-token renewals and its last outcome;
    /// held across the provider's answer (tokio mutex).
    flights: tokio::sync::Mutex<FlightLog>,
    /// How many renewals have finished: a caller that saw another number
    /// than the one it finds after waiting shares the renewal that ran.
    flights_run: AtomicU64,
    /// One browser re-authentication at a time; 401 callers only try it.
    browser_flight: tokio::sync::Mutex<()>,
    /// The cross-process lock of the keychain record.
    lock_path: PathBuf,
    /// The change file of the keychain record.
    beacon: Beacon,
    /// Where tombstones go, and their name stem.
    shared_dir: PathBuf,
    stem: String,
    events: broadcast::Sender<SessionView>,
    /// Rung by every commit: the scheduler plans again (shared with it: it
    /// waits without holding the engine).
    wake: Arc<Notify>,
    refresh_requests: AtomicU64,
    /// How many times the scheduler has looked at the session (each time it
    /// woke up): what an idle session costs.
    turns: AtomicU64,
    opener: Arc<dyn Opener>,
    /// Cancels the browser step in progress.
    cancel: Mutex<browser::CancelSlot>,
}

/// A handle to one profile's session engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("profile", &self.inner.profile.name)
            .finish_non_exhaustive()
    }
}

/// The result of a sign-out: local state is always cleared; the server call
/// may have failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SignOutReport {
    pub view: SessionView,
    /// `None` when the server confirmed the logout.
    pub server_error: Option<ErrorInfo>,
}

impl Engine {
    /// The real engine for `profile`: pinned client, the profile's provider,
    /// JWKS over HTTP, the OS keychain (namespace from
    /// `SESSION_MANAGER_KEYCHAIN_SERVICE`), the audit log in `data_dir`, the
    /// system clock.
    pub fn open(profile: Profile, data_dir: &Path) -> Result<Self, Error> {
        Self::open_with_store(profile, data_dir, Arc::new(KeyringStore::from_env()))
    }

    /// The real engine for `profile`, keeping its session in `store`.
    pub fn open_with_store(profile: Profile, data_dir: &Path, store: Arc<dyn SecretStore>) -> Result<Self, Error> {
        Self::open_with(profile, data_dir, store, Arc::new(SystemOpener))
    }

    /// The real engine for `profile`, keeping its session in `store` and
    /// opening provider pages with `opener`.
    pub fn open_with(
        profile: Profile,
        data_dir: &Path,
        store: Arc<dyn SecretStore>,
        opener: Arc<dyn Opener>,
    ) -> Result<Self, Error> {
        let profile = Arc::new(profile);
        let client = profile.pinned_client()?;
        let discovery = profile.oidc.as_ref().map(|o| {
            Arc::new(DiscoveryCache::new(
                client.clone(),
                o.discovery_url.clone(),
                profile.issuer.clone(),
            ))
        });
        let fetcher: Box<dyn crate::token::JwksFetcher> = match (&profile.jwks_url, &discovery) {
            (Some(url), _) => Box::new(HttpJwksFetcher::new(client.clone(), url.clone())),
            (None, Some(d)) => Box::new(DiscoveredJwks {
                client: client.clone(),
                discovery: d.clone(),
            }),
            (None, None) => return Err(Error::Internal(format!("profile '{}' has no JWKS", profile.name))),
        };
        let jwks = JwksCache::new(fetcher, JwksCache::DEFAULT_MIN_INTERVAL);
        let validator = Validator::new(
            &profile.issuer,
            &profile.audience,
            profile.algorithms.clone(),
            LEEWAY,
            Arc::new(jwks),
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let (provider, validator): (Arc<dyn Provider>, Validator) = match (profile.provider, discovery) {
            (ProviderKind::Oidc, Some(d)) => (
                Arc::new(Oidc::new(profile.clone(), client, d, &validator, clock.clone())?),
                // RFC 8725 3.11: an OIDC bearer is checked as an access token.
                validator.for_access_tokens(),
            ),
            _ => (Arc::new(FinHub::new(profile.clone(), client)), validator),
        };
        // The data directory is this user's alone, and the audit log a file
        // of its own (not a link planted there): checked before any session.
        let audit = AuditLog::open_in(data_dir).map_err(|e| {
            Error::Config(crate::profile::ConfigError::general(
                format!("the data directory cannot be used: {e}"),
                "pass --data-dir (or SESSION_MANAGER_DATA_DIR) with a directory of your own",
            ))
        })?;
        Ok(Self::new(EngineParts {
            profile,
            provider,
            validator,
            store,
            audit: Arc::new(audit),
            clock,
            shared_dir: proclock::shared_dir(),
            opener,
        }))
    }

    /// An engine from its parts.
    pub fn new(parts: EngineParts) -> Self {
        let (events, _) = broadcast::channel(64);
        let vault = Vault::new(parts.store, &parts.profile.name);
        let identity = vault.identity();
        Self {
            inner: Arc::new(Inner {
                lock_path: ProcessLock::path(&parts.shared_dir, &identity),
                beacon: Beacon::new(&parts.shared_dir, &identity),
                stem: proclock::stem(&identity),
                shared_dir: parts.shared_dir,
                vault,
                profile: parts.profile,
                provider: parts.provider,
                validator: parts.validator,
                audit: parts.audit,
                clock: parts.clock,
                correlation_id: Uuid::new_v4(),
                state: Mutex::new(State::new()),
                commits: tokio::sync::Mutex::new(()),
                flights: tokio::sync::Mutex::new(FlightLog::default()),
                flights_run: AtomicU64::new(0),
                browser_flight: tokio::sync::Mutex::new(()),
                events,
                wake: Arc::new(Notify::new()),
                refresh_requests: AtomicU64::new(0),
                turns: AtomicU64::new(0),
                opener: parts.opener,
                cancel: Mutex::new(None),
            }),
        }
    }

    /// The profile this engine serves.
    pub fn profile(&self) -> &Profile {
        &self.inner.profile
    }

    /// The audit log.
    pub fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }

    /// The current wall-clock time of the engine's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The provider's clock now (the engine's clock corrected by the offset
    /// measured from the provider's `Date` header).
    fn provider_now(&self) -> Timestamp {
        self.state().provider_time(self.now())
    }

    /// How many renewal requests this engine has sent to the provider.
    pub fn refresh_request_count(&self) -> u64 {
        self.inner.refresh_requests.load(Ordering::SeqCst)
    }

    /// How many times the background scheduler has woken up to look at the
    /// session (benchmarks count what an idle session costs).
    pub fn scheduler_turns(&self) -> u64 {
        self.inner.turns.load(Ordering::Relaxed)
    }

    /// Session views, one per transition.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionView> {
        self.inner.events.subscribe()
    }

    /// Start renewing in the background; stops when the guard drops. Besides
    /// its wall-clock timer, the scheduler also wakes on logind's resume
    /// signal where the system bus has one, and on the network coming back.
    pub fn start(&self) -> SchedulerGuard {
        self.start_with(Some(SleepBus::System))
    }

    /// [`Engine::start`], hearing resumes on `sleep_bus` (or on no bus).
    pub fn start_with(&self, sleep_bus: Option<SleepBus>) -> SchedulerGuard {
        scheduler::spawn(
            self.clone(),
            sleep_bus.and_then(crate::os::resume::resumes),
            crate::os::netwatch::changes(),
        )
    }

    /// The network may be back: a session retrying after a passing failure
    /// tries again now instead of at the end of its backoff (the attempt
    /// count stays, so if it fails the next wait is as long as it would have
    /// been). Nothing else changes: news from the network never ends a
    /// session.
    pub(crate) fn network_changed(&self) {
        let now = self.now();
        let mut st = self.state();
        // `last_failure` is set only while retrying (not after a refusal or
        // a misconfiguration, which no network change mends).
        let retrying = st.session.is_some() && st.last_failure.is_some();
        if retrying && st.next_refresh_at.is_some_and(|at| at > now) {
            st.next_refresh_at = Some(now);
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// How this profile's sessions are extended.
    fn policy(&self) -> ExtendAccess {
        self.inner
            .profile
            .oidc
            .as_ref()
            .map(|o| o.extend_access)
            .unwrap_or(ExtendAccess::Refresh)
    }

    fn rules(&self) -> Rules {
        Rules {
            profile: self.inner.profile.name.clone(),
            lead: self.inner.profile.refresh_lead,
            refresh_policy: self.policy() == ExtendAccess::Refresh,
            idle: self.inner.profile.idle_timeout,
            absolute: self.inner.profile.absolute_timeout,
        }
    }

    fn flow(&self, session_id: Uuid) -> FlowContext {
        FlowContext::new(&self.inner.profile.tenant_id, session_id, self.inner.correlation_id)
    }

    fn view_of(&self, st: &State) -> SessionView {
        let p = &self.inner.profile;
        let s = st.session.as_ref();
        let now = self.now();
        let mut view = SessionView {
            seq: st.seq,
            profile: p.name.clone(),
            environment: p.environment.as_str().to_owned(),
            provider: self.inner.provider.name().to_owned(),
            state: st.phase,
            // What a provider sent, shown without control characters
            // (they are dropped where the answers are parsed, too).
            user: s
                .map(|s| s.user.clone())
                .or_else(|| st.last_user.clone())
                .map(|u| shown(&u)),
            tenant: s.and_then(|s| s.tenant.as_deref().map(shown)),
            customer: s.and_then(|s| s.customer.as_deref().map(shown)),
            scope: s.and_then(|s| s.scope.as_deref().map(shown)),
            session_id: s.map(|s| s.session_id.to_string()),
            issued_at: s.map(|s| s.issued_at),
            expires_at: s.map(|s| s.expires_at),
            renewable_until: s.and_then(|s| s.renewable_until),
            offline: s.is_some() && st.token_expired(now) && st.last_failure.as_ref().is_some_and(Error::is_transient),
            backup_endpoint: st.backup_endpoint.clone(),
            sessions_api: self.has_sessions_api(),
            anomalies: st.anomalies.clone(),
            pin_report: st.pin_report.clone(),
            idle_sign_out_at: st.idle_sign_out_at(&self.rules()),
            ends_at: st.ends_at(&self.rules()),
            next_refresh_at: s.and(st.next_refresh_at),
            refresh_count: s.map(|s| s.refresh_count).unwrap_or(0),
            last_refresh: st.last_refresh.clone(),
            last_error: st.last_error.clone(),
            persistence: st.persistence,
            clock_offset_ms: st.clock_offset_ms,
            sign_in_method: match p.provider {
                ProviderKind::Finhub => SignInMethod::Password,
                ProviderKind::Oidc => SignInMethod::Browser,
            },
            extend_access: self.policy(),
            name: s.and_then(|s| s.name.as_deref().map(shown)),
            email: s.and_then(|s| s.email.as_deref().map(shown)),
            browser: st.browser.clone(),
            reauth_needed: s.is_some() && st.reauth_needed,
            renewal: match (s, &st.stopped_by, &st.last_failure) {
                (None, _, _) => crate::view::Renewal::OnSchedule,
                (Some(_), _, _) if st.reauth_needed => crate::view::Renewal::SignInNeeded,
                (Some(_), Some(e), _) => crate::view::stopped(e),
                (Some(_), None, Some(e)) => crate::view::retrying(e, st.next_refresh_at),
                (Some(_), None, None) => crate::view::Renewal::OnSchedule,
            },
            ended_because: s.is_none().then_some(st.end_reason).flatten(),
            headline: crate::view::Headline {
                tone: crate::view::Tone::Neutral,
                text: String::new(),
            },
            renewal_notice: s
                .filter(|s| s.refresh.is_none() && self.policy() == ExtendAccess::Refresh)
                .map(|s| {
                    let oidc = p.oidc.as_ref().map(|o| (o.scopes.as_slice(), o.offline_access_prompt));
                    crate::view::no_refresh_notice(oidc, s.scope.as_deref())
                }),
        };
        view.headline = view.headline(|at| crate::view::local_clock_time(at, now));
        view
    }

    /// What the scheduler should do now.
    pub(crate) fn next_step(&self) -> Next {
        self.state().next_step(&self.rules(), self.now())
    }

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
    fn share_activity_if_due(&self, now: Timestamp) {
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
    fn take_shared_activity(&self) -> bool {
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
    async fn time_out(&self) {
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
    async fn expire_if_due(&self) {
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
                };
                Ok((st.end(Phase::Expired, error, event, &rules, now), ()))
            })
            .await;
    }

    /// Another process changed the keychain record: take its session (a
    /// sign-in, a refresh) or end ours (a sign-out there).
    async fn look_at_keychain(&self) {
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

    /// Restore the session from the keychain. A session whose token has
    /// expired is renewed at once (when it can be); one that cannot be
    /// renewed and has expired ends as Expired.
    pub async fn restore(&self) -> Result<SessionView, Error> {
        let (now, rules) = (self.now(), self.rules());
        let record = match self.read_stored().await {
            store::Stored::Nothing => return Ok(self.view()),
            store::Stored::Record(r) => *r,
            store::Stored::Unreadable(e @ (VaultError::Unavailable(_) | VaultError::NewerVersion { .. })) => {
                // Nothing to restore from here: say why; the record (a newer
                // version's) stays as it is.
                let _ = self
                    .apply(None, |st| {
                        st.persistence = Persistence::MemoryOnly;
                        st.last_error = Some(Error::Vault(e.clone()).info());
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
        if record
            .refresh
            .as_ref()
            .is_some_and(|t| self.journal_says_spent(record.session_id, t))
        {
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
                    Phase::Expired => AuditEvent::SessionExpired { reason: e.to_string() },
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

    /// Sign in with a username and password.
    pub async fn sign_in(&self, username: &str, password: Password) -> Result<SessionView, Error> {
        self.sign_in_password(username, password, false).await
    }

    /// Sign in with a password; `replace_oldest`: at the provider's
    /// concurrent-session limit, end the oldest live session first (the
    /// choice the `session_limit` error offers).
    pub async fn sign_in_password(
        &self,
        username: &str,
        password: Password,
        replace_oldest: bool,
    ) -> Result<SessionView, Error> {
        self.sign_in_with(
            Credentials::Password {
                username: username.to_owned(),
                password,
                replace_oldest,
            },
            None,
        )
        .await
    }

    /// Sign in through the browser (OpenID Connect). In re-authenticate mode
    /// with a live session, this is the one-click sign-in that extends it.
    pub async fn sign_in_browser(&self) -> Result<SessionView, Error> {
        if self.inner.profile.provider != ProviderKind::Oidc {
            return Err(Error::InvalidState(
                "this profile signs in with a username and password".into(),
            ));
        }
        let (phase, live) = {
            let st = self.state();
            (
                st.phase,
                st.phase.has_session() && self.policy() == ExtendAccess::Reauthenticate,
            )
        };
        if live {
            self.extend(Trigger::Interactive).await?;
            return Ok(self.view());
        }
        // Checked before a browser request exists: a second sign-in must
        // not replace (and so cancel) the first one's wait.
        if phase == Phase::SigningIn {
            return Err(Error::InvalidState("a sign-in is already in progress".into()));
        }
        let (id, request) = self.browser_request(false, false);
        self.sign_in_with(Credentials::Browser(request), Some(id)).await
    }

    /// Sign in on another device (OpenID Connect device authorization
    /// grant, RFC 8628): the view's browser wait carries the page and the
    /// code to enter there; nothing is opened here. Cancel with
    /// [`Engine::cancel_sign_in`].
    pub async fn sign_in_device(&self) -> Result<SessionView, Error> {
        if self.inner.profile.provider != ProviderKind::Oidc {
            return Err(Error::InvalidState(
                "this profile signs in with a username and password".into(),
            ));
        }
        if self.state().phase == Phase::SigningIn {
            return Err(Error::InvalidState("a sign-in is already in progress".into()));
        }
        let (id, request) = self.browser_request(false, true);
        self.sign_in_with(Credentials::Browser(request), Some(id)).await
    }

    async fn sign_in_with(&self, credentials: Credentials, browser: Option<u64>) -> Result<SessionView, Error> {
        let generation = self.apply(None, |st| Ok((Commit::keep(), st.begin_sign_in()?))).await?;
        // A cancelled sign-in (its future dropped) must not stay SigningIn.
        struct Guard<'a>(&'a Engine, u64, bool);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if self.2 {
                    let mut st = self.0.state();
                    if st.generation == self.1 && st.phase == Phase::SigningIn {
                        st.phase = Phase::SignedOut;
                        st.browser = None;
                        drop(st);
                        self.0.publish();
                    }
                }
            }
        }
        let mut guard = Guard(self, generation, true);
        let session_id = Uuid::new_v4();
        let flow = self.flow(session_id);
        let span = tracing::info_span!("sign_in", activity_id = %flow.activity_id, session_id = %session_id);
        let result = async {
            let grant = self.routed(self.inner.provider.sign_in(&credentials, &flow)).await?;
            let claims = match self.verify_grant(&grant, None).await {
                Ok(claims) => claims,
                Err(e) => {
                    self.revoke_refused(&grant, &flow).await;
                    return Err(e);
                }
            };
            let offset = self.clock_offset(&grant);
            let tokens = SessionTokens {
                bearer: grant.bearer.clone(),
                refresh: grant.refresh.clone(),
                id_token: grant.id_token.clone(),
            };
            let origin = grant.origin.clone();
            Ok::<_, Error>((
                self.record_from(grant, &claims, session_id, 0, None),
                offset,
                tokens,
                origin,
            ))
        }
        .instrument(span)
        .await;
        if let Some(id) = browser {
            self.browser_done(id);
        }
        guard.2 = false;
        let (now, rules) = (self.now(), self.rules());
        match result {
            Err(e) => {
                let err = e.clone();
                self.apply(None, |st| Ok((st.sign_in_failed(generation, &e, &rules, now), ())))
                    .await?;
                Err(err)
            }
            Ok((record, offset, tokens, origin)) => {
                let committed = self
                    .apply(None, |st| {
                        if st.generation != generation || st.phase != Phase::SigningIn {
                            // Signed out (or replaced) while the provider
                            // answered: this session is not wanted.
                            return Ok((Commit::keep(), false));
                        }
                        st.persistence = Persistence::Keychain;
                        Ok((st.activate(record, offset, Arrival::SignedIn, &rules, now), true))
                    })
                    .await?;
                if !committed {
                    let _ = self
                        .inner
                        .provider
                        .sign_out(&tokens, &flow, &crate::provider::opener::NoOpener)
                        .await;
                    return Err(Error::InvalidState("the sign-in was overtaken by a sign-out".into()));
                }
                self.share_activity_if_due(now);
                self.after_sign_in(origin).await;
                Ok(self.view())
            }
        }
    }

    /// Renew now (the "Refresh now" button, `sessionctl refresh`). Shares a
    /// renewal already in flight; inside the backoff window after a failure
    /// it answers that failure.
    pub async fn refresh_now(&self) -> Result<SessionView, Error> {
        self.extend(Trigger::Manual).await?;
        Ok(self.view())
    }

    /// Let a renewal in flight finish (its caller may have gone: Ctrl-C, a
    /// window closed), for at most `within`: the provider may already have
    /// rotated the refresh token, and only that flight holds the new one.
    /// Call it before the process exits.
    pub async fn drain(&self, within: Duration) {
        let _ = tokio::time::timeout(within, self.inner.flights.lock()).await;
    }

    /// Sign out: local state (memory, keychain, view) is cleared first and
    /// always; then the provider is told, with the newest tokens (a renewal
    /// under way is waited for, and what it brings back is revoked). A
    /// failed server call is recorded in the report and the audit log.
    pub async fn sign_out(&self) -> Result<SignOutReport, Error> {
        self.sign_out_with(None).await
    }

    /// Sign out, the person's choice (`why` is `None`: the view goes to
    /// Signed out) or the engine's (`Some`: the view goes to Expired with
    /// that reason, in the same commit, so no view in between says
    /// "signed out" without why).
    async fn sign_out_with(&self, why: Option<(Error, crate::view::EndReason)>) -> Result<SignOutReport, Error> {
        self.cancel_browser();
        // Memory first: from here on every operation sees no session.
        let ended = {
            let mut st = self.state();
            let session = st.session.take();
            st.generation += 1;
            st.next_refresh_at = None;
            st.retry_attempt = 0;
            st.last_failure = None;
            match why {
                Some((error, reason)) => {
                    st.phase = Phase::Expired;
                    st.last_error = Some(error.info());
                    st.ended = Some(error);
                    st.end_reason = Some(reason);
                }
                None => {
                    st.phase = Phase::SignedOut;
                    st.last_error = None;
                    if session.is_some() {
                        st.end_reason = Some(crate::view::EndReason::SignedOut);
                    }
                }
            }
            st.reauth_needed = false;
            st.browser = None;
            if let Some(s) = &session {
                st.last_user = Some(s.user.clone());
                st.ended_id = Some(s.session_id);
            }
            session
        };
        // A renewal in flight finishes (bounded by the request timeout); its
        // new tokens are then ours to revoke. One that lands later revokes
        // them itself.
        let id = ended.as_ref().map(|s| s.session_id);
        self.state().awaiting_flight = id;
        let _ = tokio::time::timeout(SIGN_OUT_WAITS_FOR_RENEWAL, self.inner.flights.lock()).await;
        let superseded = {
            let mut st = self.state();
            st.awaiting_flight = None;
            st.superseded.take().filter(|(of, _)| Some(*of) == id).map(|(_, t)| t)
        };
        let store = id.map(Store::SignOut).unwrap_or(Store::Keep);
        self.apply(None, |_| {
            Ok((
                Commit {
                    store,
                    audit: Vec::new(),
                },
                (),
            ))
        })
        .await?;
        let server = match &ended {
            Some(s) => {
                let tokens = superseded.unwrap_or_else(|| SessionTokens {
                    bearer: s.bearer.clone(),
                    refresh: s.refresh.clone(),
                    id_token: s.id_token.clone(),
                });
                let flow = self.flow(s.session_id);
                let span = tracing::info_span!("sign_out", activity_id = %flow.activity_id, session_id = %s.session_id);
                Some(
                    self.routed(self.inner.provider.sign_out(&tokens, &flow, &*self.inner.opener))
                        .instrument(span)
                        .await,
                )
            }
            None => None,
        };
        let server_error = match &server {
            Some(Err(e)) => Some(e.info()),
            _ => None,
        };
        if let Some(s) = &ended {
            let outcome = match &server_error {
                None => "ok".to_owned(),
                Some(e) => format!("failed: {}", e.message),
            };
            let record = state::record_of(
                Some(s),
                None,
                &self.rules(),
                self.now(),
                AuditEvent::SignedOut { server_logout: outcome },
            );
            let _ = self.inner.audit.append(&record);
        }
        Ok(SignOutReport {
            view: self.view(),
            server_error,
        })
    }

    /// Revoke `tokens` at the provider without a browser, best effort: what
    /// a renewal brought back for a session that ended meanwhile.
    pub(super) async fn revoke_quietly(&self, tokens: &SessionTokens) {
        let flow = self.flow(Uuid::new_v4());
        let _ = self
            .inner
            .provider
            .sign_out(tokens, &flow, &crate::provider::opener::NoOpener)
            .await;
    }

    /// A sign-in's answer failed a check after the provider issued its
    /// tokens: revoke them (best effort), and record whether that worked.
    async fn revoke_refused(&self, grant: &crate::provider::Grant, flow: &crate::net::headers::FlowContext) {
        let tokens = SessionTokens {
            bearer: grant.bearer.clone(),
            refresh: grant.refresh.clone(),
            id_token: None,
        };
        let outcome = self
            .inner
            .provider
            .sign_out(&tokens, flow, &crate::provider::opener::NoOpener)
            .await;
        self.audit_now(AuditEvent::RefusedGrantRevocation {
            revoked: outcome.is_ok(),
            detail: outcome.err().map(|e| e.to_string()).unwrap_or_default(),
        });
    }

    /// Call the provider's API with the session's token and headers. An
    /// expired token is renewed first; a 401 renews (sharing a renewal in
    /// flight, respecting the backoff) and retries once.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<ApiResponse, Error> {
        self.call_as(method, path, body, Caller::Person).await
    }

    /// An API call; a [`Caller::Engine`] call (the app's own checks, such
    /// as the sessions list after a sign-in) is neither activity for the
    /// idle timeout nor an API call in the metrics and anomaly detectors.
    pub(super) async fn call_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        caller: Caller,
    ) -> Result<ApiResponse, Error> {
        let request = ApiRequest {
            method,
            path: path.to_owned(),
            body,
        };
        if caller == Caller::Person {
            // An API call is activity (the idle timeout).
            self.touch();
        }
        if self.state().token_expired(self.now()) {
            self.extend(Trigger::Unauthorized).await?;
        }
        let (mut bearer, session_id) = self.current_bearer()?;
        let flow = self.flow(session_id);
        let mut retried = false;
        let path_only = request.path.split('?').next().unwrap_or_default().to_owned();
        loop {
            let started = std::time::Instant::now();
            let span = tracing::info_span!("call", activity_id = %flow.activity_id, method = %request.method, path = %path_only);
            let response = self
                .routed(self.inner.provider.call(&request, &bearer, &flow))
                .instrument(span)
                .await?;
            tracing::info!(status = response.status, elapsed_ms = started.elapsed().as_millis() as u64, path = %path_only, "api call");
            if caller == Caller::Person {
                self.after_call(&request.method, response.status, started.elapsed())
                    .await;
            }
            // A 401 renews (sharing a renewal in flight) and retries once.
            if response.status != 401 || retried {
                return Ok(response);
            }
            // A 401 to a bearer the session no longer holds came late: a
            // renewal already replaced it, so the retry needs no other.
            let (now_bearer, _) = self.current_bearer()?;
            bearer = if now_bearer.expose() != bearer.expose() {
                now_bearer
            } else {
                self.extend(Trigger::Unauthorized).await?;
                self.current_bearer()?.0
            };
            retried = true;
        }
    }

    /// Await a provider call, then audit and show a change of endpoint
    /// (failover to a backup, or back to the primary).
    async fn routed<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let out = call.await;
        self.note_route().await;
        out
    }

    /// Audit and show what the transport noticed during a provider call:
    /// a change of endpoint, pin mismatches a report-only profile let
    /// through.
    async fn note_route(&self) {
        let route = self.inner.provider.route();
        let reports = self.inner.provider.take_pin_reports();
        let moved = route.as_ref().is_some_and(|r| self.state().backup_endpoint != r.backup);
        if !moved && reports.is_empty() {
            return;
        }
        let (rules, now) = (self.rules(), self.now());
        let _ = self
            .apply(None, |st| {
                let mut audit = Vec::new();
                for r in &reports {
                    let presented = r.presented.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
                    st.pin_report = Some(format!(
                        "{} presented none of the configured pins ({presented}); report-only, so the connection was allowed",
                        r.host
                    ));
                    let event = AuditEvent::PinMismatchReported {
                        host: r.host.clone(),
                        presented,
                    };
                    audit.push(st.record(&rules, now, event));
                }
                if let Some(route) = route.filter(|r| st.backup_endpoint != r.backup) {
                    st.backup_endpoint = route.backup.clone();
                    let event = AuditEvent::EndpointSwitched {
                        to: route.backup.unwrap_or_else(|| "primary".into()),
                        reason: route.reason,
                    };
                    audit.push(st.record(&rules, now, event));
                }
                Ok((
                    Commit {
                        store: state::Store::Keep,
                        audit,
                    },
                    (),
                ))
            })
            .await;
    }

    fn current_bearer(&self) -> Result<(AccessToken, Uuid), Error> {
        let st = self.state();
        match (&st.session, st.phase) {
            (Some(s), Phase::Active | Phase::Refreshing) => Ok((s.bearer.clone(), s.session_id)),
            _ => Err(no_session(&st)),
        }
    }

    /// Wait, at most `timeout`, for what a sign-out left running (the
    /// provider's sign-out page, which the browser has yet to load). Fronts
    /// that exit right after signing out call it.
    pub async fn settle(&self, timeout: Duration) {
        self.inner.provider.settle(timeout).await
    }

    /// Whether a sign-out left a page the browser has yet to load.
    pub fn sign_out_page_pending(&self) -> bool {
        self.inner.provider.page_pending()
    }
}

/// Provider text as the view shows it.
fn shown(text: &str) -> String {
    crate::net::text::printable(text, 1000)
}

/// Why an operation that needs a session cannot run in this state.
fn no_session(st: &State) -> Error {
    match (st.phase, &st.ended) {
        (Phase::Expired | Phase::Revoked, Some(e)) => e.clone(),
        (Phase::Expired, None) => Error::Expired("an earlier time".into()),
        (Phase::Revoked, None) => Error::Revoked("reason unknown".into()),
        (Phase::SignedOut, Some(e @ Error::EndedElsewhere(_))) => e.clone(),
        _ => Error::NotSignedIn,
    }
}

#[cfg(test)]
mod tests;
