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
//! - `sign_in`, `restore`, `sign_out`, `call`: the operations fronts call;
//! - `watch`: activity, the idle and absolute timeouts, the keychain;
//! - `scheduler`: the background task.

mod anomalies;
mod browser;
mod call;
mod flight;
mod grant;
mod restore;
mod scheduler;
mod sessions;
mod shared;
mod sign_in;
mod sign_out;
mod state;
mod store;
pub mod timing;
mod watch;

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
use crate::provider::{ApiRequest, ApiResponse, Credentials, Provider, Replace, SessionTokens};
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
            session_end: None,
        };
        view.session_end = view.session_end();
        view.headline = view.headline(|at| crate::view::local_clock_time(at, now));
        view
    }

    /// What the scheduler should do now.
    pub(crate) fn next_step(&self) -> Next {
        self.state().next_step(&self.rules(), self.now())
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
        // A session may be in the keychain we could not read: say why.
        (Phase::SignedOut, _) if st.session.is_none() && st.unreadable.is_some() => {
            Error::Vault(st.unreadable.clone().expect("checked above"))
        }
        _ => Error::NotSignedIn,
    }
}

#[cfg(test)]
mod tests;
