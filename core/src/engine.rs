//! The session engine: one profile's session, its state machine and the
//! operations fronts call (sign in, refresh, call the API, sign out).
//!
//! Every transition writes one audit record and publishes one
//! [`SessionView`] on the event channel.
//!
//! Concurrency rules:
//! - refreshes are single-flight: callers that saw the same session
//!   generation share one refresh ([`Engine::refresh_generation`]);
//! - a file lock ([`ProcessLock`]) keeps a second process from refreshing
//!   with the same refresh token, and a process that waited for the lock
//!   takes over the other's result from the keychain instead of refreshing;
//! - keychain writes are serialized and re-check the generation, so a refresh
//!   that finishes after a sign-out never writes the old session back.

use crate::audit::{AuditEvent, AuditLog, AuditRecord};
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::error::{Error, ErrorInfo};
use crate::headers::FlowContext;
use crate::profile::{ExtendAccess, Profile, ProviderKind};
use crate::provider::finhub::FinHub;
use crate::provider::oidc::discovery::{DiscoveredJwks, DiscoveryCache};
use crate::provider::oidc::{Oidc, SILENT_TIMEOUT};
use crate::provider::opener::{Opener, SystemOpener};
use crate::provider::{ApiRequest, ApiResponse, BrowserSignIn, Credentials, Grant, Provider, SessionTokens};
use crate::refresh::{self, Next, ProcessLock, SchedulerGuard};
use crate::tls::PinnedClient;
use crate::token::{AccessToken, Claims, HttpJwksFetcher, JwksCache, Password, TokenError, Validator};
use crate::vault::{KeyringStore, SecretStore, SessionRecord, Vault, VaultError};
use crate::view::{BrowserWait, Persistence, Phase, RefreshOutcome, SessionView, SignInMethod};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};
use uuid::Uuid;

/// The leeway for token time checks.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Everything an engine is built from. [`Engine::open`] builds the real
/// parts; tests replace the provider, store and clock.
pub struct EngineParts {
    pub profile: Arc<Profile>,
    pub provider: Arc<dyn Provider>,
    pub validator: Validator,
    pub store: Arc<dyn SecretStore>,
    pub audit: Arc<AuditLog>,
    pub clock: Arc<dyn Clock>,
    /// Where the cross-process refresh lock lives.
    pub data_dir: PathBuf,
    /// Opens the provider's pages in a browser (OIDC).
    pub opener: Arc<dyn Opener>,
}

/// How a session is extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extend {
    /// The profile's policy: a refresh token, or a silent sign-in.
    Auto,
    /// A sign-in the person asked for, with the provider's page.
    Interactive,
}

struct State {
    phase: Phase,
    session: Option<SessionRecord>,
    /// Bumped whenever the session's tokens change or it ends.
    generation: u64,
    next_refresh_at: Option<Timestamp>,
    retry_attempt: u32,
    last_refresh: Option<RefreshOutcome>,
    last_error: Option<ErrorInfo>,
    persistence: Persistence,
    /// Identity kept after the session ended, for the view.
    last_user: Option<String>,
    /// Provider clock minus local clock, from the last token answer.
    clock_offset_ms: i64,
    /// The provider's reason, when it revoked the session.
    revoked_reason: Option<String>,
    /// A browser sign-in waiting for the person.
    browser: Option<BrowserWait>,
    /// Silent re-authentication failed: the person must sign in.
    reauth_needed: bool,
}

struct Inner {
    profile: Arc<Profile>,
    provider: Arc<dyn Provider>,
    validator: Validator,
    vault: Vault,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    lock_path: PathBuf,
    correlation_id: Uuid,
    state: Mutex<State>,
    refresh_gate: tokio::sync::Mutex<()>,
    vault_gate: tokio::sync::Mutex<()>,
    events: broadcast::Sender<SessionView>,
    wake: Notify,
    refresh_requests: AtomicU64,
    opener: Arc<dyn Opener>,
    /// Cancels the browser sign-in in progress.
    cancel: Mutex<Option<watch::Sender<bool>>>,
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
    /// The real engine for `profile`: pinned client, FinHub, JWKS over HTTP,
    /// the OS keychain (namespace from `SESSION_MANAGER_KEYCHAIN_SERVICE`),
    /// the audit log in `data_dir`, the system clock.
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
        let client = PinnedClient::for_profile(&profile)?;
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
            data_dir: data_dir.to_owned(),
            opener,
        }))
    }

    /// An engine from its parts.
    pub fn new(parts: EngineParts) -> Self {
        let (events, _) = broadcast::channel(64);
        let lock_path = ProcessLock::path(&parts.data_dir, &parts.profile.name);
        Self {
            inner: Arc::new(Inner {
                vault: Vault::new(parts.store, &parts.profile.name),
                profile: parts.profile,
                provider: parts.provider,
                validator: parts.validator,
                audit: parts.audit,
                clock: parts.clock,
                lock_path,
                correlation_id: Uuid::new_v4(),
                state: Mutex::new(State {
                    phase: Phase::SignedOut,
                    session: None,
                    generation: 0,
                    next_refresh_at: None,
                    retry_attempt: 0,
                    last_refresh: None,
                    last_error: None,
                    persistence: Persistence::Keychain,
                    last_user: None,
                    clock_offset_ms: 0,
                    revoked_reason: None,
                    browser: None,
                    reauth_needed: false,
                }),
                refresh_gate: tokio::sync::Mutex::new(()),
                vault_gate: tokio::sync::Mutex::new(()),
                events,
                wake: Notify::new(),
                refresh_requests: AtomicU64::new(0),
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

    /// How many refresh requests this engine has sent to the provider.
    pub fn refresh_request_count(&self) -> u64 {
        self.inner.refresh_requests.load(Ordering::SeqCst)
    }

    /// Session views, one per transition.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionView> {
        self.inner.events.subscribe()
    }

    /// Start refreshing in the background; stops when the guard drops.
    pub fn start(&self) -> SchedulerGuard {
        refresh::spawn(self.clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session as fronts see it.
    pub fn view(&self) -> SessionView {
        self.view_of(&self.state())
    }

    fn view_of(&self, st: &State) -> SessionView {
        let p = &self.inner.profile;
        let s = st.session.as_ref();
        SessionView {
            profile: p.name.clone(),
            environment: p.environment.as_str().to_owned(),
            provider: self.inner.provider.name().to_owned(),
            state: st.phase,
            user: s.map(|s| s.user.clone()).or_else(|| st.last_user.clone()),
            tenant: s.and_then(|s| s.tenant.clone()),
            customer: s.and_then(|s| s.customer.clone()),
            scope: s.and_then(|s| s.scope.clone()),
            session_id: s.map(|s| s.session_id.to_string()),
            issued_at: s.map(|s| s.issued_at),
            expires_at: s.map(|s| s.expires_at),
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
            name: s.and_then(|s| s.name.clone()),
            email: s.and_then(|s| s.email.clone()),
            browser: st.browser.clone(),
            reauth_needed: s.is_some() && st.reauth_needed,
        }
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

    fn publish(&self, st: &State) {
        let _ = self.inner.events.send(self.view_of(st));
    }

    fn audit(&self, st: &State, event: AuditEvent) {
        self.audit_session(st.session.as_ref(), st.last_user.clone(), event)
    }

    /// One audit record about `session` (or, with none, about `last_user`).
    fn audit_session(&self, s: Option<&SessionRecord>, last_user: Option<String>, event: AuditEvent) {
        let record = AuditRecord {
            time: self.now(),
            profile: self.inner.profile.name.clone(),
            user: s.map(|s| s.user.clone()).or(last_user),
            session_id: s.map(|s| s.session_id.to_string()),
            fingerprint: s.map(|s| s.bearer.fingerprint()),
            event,
        };
        // The audit log must never stop a session; a full disk loses records,
        // not sign-ins.
        let _ = self.inner.audit.append(&record);
    }

    /// Record a failure's extra audit event (pin mismatch, validation).
    fn audit_failure(&self, st: &State, error: &Error) {
        match error {
            Error::PinMismatch { host, presented } => self.audit(
                st,
                AuditEvent::PinMismatch {
                    host: host.clone(),
                    presented: presented.clone(),
                },
            ),
            Error::Token(t) => self.audit(st, AuditEvent::ValidationFailed { check: t.to_string() }),
            _ => {}
        }
    }

    /// A failed refresh (or re-authentication) in the audit log.
    fn audit_refresh_failure(&self, st: &State, e: &Error, attempt: u32) {
        self.audit_failure(st, e);
        self.audit(
            st,
            AuditEvent::RefreshFailed {
                reason: e.to_string(),
                code: e.code().to_string(),
                attempt,
            },
        );
    }

    fn flow(&self, session_id: Uuid) -> FlowContext {
        FlowContext::new(&self.inner.profile.tenant_id, session_id, self.inner.correlation_id)
    }

    fn schedule(&self, st: &mut State) {
        let reauthenticate = self.policy() == ExtendAccess::Reauthenticate;
        let can_extend = |s: &SessionRecord| {
            if reauthenticate {
                !st.reauth_needed
            } else {
                s.refresh.is_some()
            }
        };
        st.next_refresh_at = st.session.as_ref().filter(|s| can_extend(s)).map(|s| {
            refresh::refresh_at(
                s.issued_at,
                s.expires_at,
                self.inner.profile.refresh_lead,
                &mut rand::thread_rng(),
            )
        });
        st.retry_attempt = 0;
    }

    /// Wait for a wake-up of the scheduler.
    pub(crate) async fn woken(&self) {
        self.inner.wake.notified().await
    }

    fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// What the scheduler should do at `now`.
    pub(crate) fn next_step(&self, now: Timestamp) -> Next {
        let st = self.state();
        let Some(s) = st.session.as_ref() else {
            return Next::Idle;
        };
        match st.phase {
            Phase::Active if now >= s.expires_at => Next::Expire,
            Phase::Active => match st.next_refresh_at {
                Some(at) if now >= at => Next::Refresh(st.generation),
                Some(at) => Next::WaitUntil(at.min(s.expires_at)),
                None => Next::WaitUntil(s.expires_at),
            },
            // A refresh someone else started: look again shortly.
            Phase::Refreshing => Next::WaitUntil(now + chrono::Duration::seconds(1)),
            _ => Next::Idle,
        }
    }

    async fn vault_op<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Vault) -> Result<T, VaultError> + Send + 'static,
    ) -> Result<T, VaultError> {
        let vault = self.inner.vault.clone();
        tokio::task::spawn_blocking(move || op(&vault))
            .await
            .unwrap_or_else(|e| Err(VaultError::Failed(format!("keychain task failed: {e}"))))
    }

    /// Store the session of generation `generation`, unless it has been
    /// replaced or ended meanwhile. A missing keychain switches to memory-only.
    async fn persist(&self, generation: u64) {
        let _gate = self.inner.vault_gate.lock().await;
        let record = {
            let st = self.state();
            if st.generation != generation || st.persistence == Persistence::MemoryOnly {
                return;
            }
            match st.session.clone() {
                Some(r) => r,
                None => return,
            }
        };
        if let Err(e) = self.vault_op(move |v| v.save(&record)).await {
            self.keychain_failed(e);
        }
    }

    fn keychain_failed(&self, e: VaultError) {
        let mut st = self.state();
        if st.persistence == Persistence::Keychain {
            st.persistence = Persistence::MemoryOnly;
            self.audit(&st, AuditEvent::KeychainUnavailable { reason: e.to_string() });
            st.last_error = Some(Error::Vault(e).info());
            self.publish(&st);
        }
    }

    /// Delete the stored session.
    async fn forget(&self) -> Result<(), VaultError> {
        let _gate = self.inner.vault_gate.lock().await;
        self.vault_op(|v| v.clear()).await
    }

    async fn validate(&self, token: &AccessToken) -> Result<Claims, Error> {
        self.inner.validator.validate(token, self.now()).await
    }

    /// Whether the bearer token must be validated as a JWT: always for
    /// FinHub; for OIDC when it is one (an opaque access token is only
    /// readable by the provider, RFC 6749 section 1.4).
    fn bearer_is_checked(&self, token: &AccessToken) -> bool {
        self.inner.profile.provider == ProviderKind::Finhub || looks_like_jwt(token)
    }

    /// Check a grant before it is used: its bearer token (when checkable),
    /// and, when it extends a session, that it is for the same person.
    async fn verify_grant(&self, grant: &Grant, same_user: Option<&str>) -> Result<Claims, Error> {
        let claims = if self.bearer_is_checked(&grant.bearer) {
            self.validate(&grant.bearer).await?
        } else {
            // An opaque access token: its lifetime is what the provider
            // announced (checked to be at most a year), and its subject is
            // the ID token's, or, on a refresh that brings no ID token
            // (OpenID Connect Core 12.2), the session's.
            let now = self.now();
            let lifetime = grant
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or_else(|| self.inner.profile.environment.token_lifetime());
            let expires_at = chrono::Duration::from_std(lifetime)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| Error::Protocol(format!("expires_in {lifetime:?} does not fit a date")))?;
            Claims {
                subject: grant
                    .subject
                    .clone()
                    .or_else(|| same_user.map(str::to_owned))
                    .ok_or(TokenError::MissingClaim("sub"))?,
                issued_at: Some(now),
                expires_at,
                not_before: None,
                all: Default::default(),
            }
        };
        if let Some(expected) = same_user {
            let found = grant.subject.as_deref().unwrap_or(&claims.subject);
            if found != expected {
                return Err(TokenError::WrongSubject {
                    expected: expected.to_owned(),
                    found: found.to_owned(),
                }
                .into());
            }
        }
        Ok(claims)
    }

    /// A browser sign-in request whose page the view shows, cancellable with
    /// [`Engine::cancel_sign_in`].
    fn browser_request(&self, silent: bool) -> BrowserSignIn {
        let (tx, rx) = watch::channel(false);
        *self.inner.cancel.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        let timeout = if silent {
            SILENT_TIMEOUT
        } else {
            self.inner
                .profile
                .oidc
                .as_ref()
                .map(|o| o.sign_in_timeout)
                .unwrap_or(SILENT_TIMEOUT)
        };
        BrowserSignIn {
            silent,
            opener: Arc::new(ViewOpener {
                engine: self.clone(),
                silent,
                timeout,
            }),
            cancel: rx,
        }
    }

    /// Stop waiting for the browser: the sign-in in progress ends with
    /// `sign_in_cancelled`, and its outcome arrives as usual (its own result,
    /// a published view). Nothing is returned here on purpose: a view taken
    /// now would still show the wait, and a front that applied it after the
    /// outcome would go back in time.
    pub fn cancel_sign_in(&self) -> Result<(), Error> {
        let cancel = self.inner.cancel.lock().unwrap_or_else(|e| e.into_inner()).take();
        match cancel {
            Some(tx) => {
                let _ = tx.send(true);
                Ok(())
            }
            None => Err(Error::InvalidState("no browser sign-in is waiting".into())),
        }
    }

    /// The browser step is over.
    fn browser_done(&self, st: &mut State) {
        st.browser = None;
        *self.inner.cancel.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The provider's clock minus ours, from a grant's `Date` (whole seconds,
    /// so half a second is added to centre the error).
    fn clock_offset(&self, grant: &Grant) -> Option<i64> {
        grant
            .server_date
            .map(|d| (d + chrono::Duration::milliseconds(500) - self.now()).num_milliseconds())
    }

    /// Turn a validated grant into the session record.
    fn record_from(
        &self,
        grant: Grant,
        claims: &Claims,
        session_id: Uuid,
        refresh_count: u32,
        previous: Option<&SessionRecord>,
    ) -> SessionRecord {
        let now = self.now();
        let old_refresh = previous.and_then(|p| p.refresh.clone());
        SessionRecord {
            session_id,
            user: grant.subject.clone().unwrap_or_else(|| claims.subject.clone()),
            name: grant.name.or_else(|| previous.and_then(|p| p.name.clone())),
            email: grant.email.or_else(|| previous.and_then(|p| p.email.clone())),
            tenant: grant.tenant.or_else(|| claims.str("tid").map(str::to_owned)),
            customer: grant.customer.or_else(|| claims.str("cid").map(str::to_owned)),
            scope: grant.scope.or_else(|| claims.str("scope").map(str::to_owned)),
            issued_at: claims.issued_at.unwrap_or(now).min(now),
            expires_at: claims.expires_at,
            refresh_count,
            bearer: grant.bearer,
            // A provider that does not rotate keeps the old refresh token valid.
            refresh: grant.refresh.or(old_refresh),
            id_token: grant.id_token.or_else(|| previous.and_then(|p| p.id_token.clone())),
        }
    }

    /// Restore the session from the keychain: validate it, refresh it if it
    /// is due, or report it expired.
    pub async fn restore(&self) -> Result<SessionView, Error> {
        let record = match self.vault_op(|v| v.load()).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(self.view()),
            Err(e @ VaultError::Unavailable(_)) => {
                self.keychain_failed(e);
                return Ok(self.view());
            }
            Err(e) => {
                // A damaged entry cannot be used; remove it so sign-in works.
                let _ = self.forget().await;
                let mut st = self.state();
                st.last_error = Some(Error::Vault(e).info());
                self.publish(&st);
                return Ok(self.view_of(&st));
            }
        };
        let now = self.now();
        let verdict = if now >= record.expires_at {
            Err(Error::Token(TokenError::Expired(record.expires_at.to_rfc3339())))
        } else if self.bearer_is_checked(&record.bearer) {
            self.validate(&record.bearer).await.map(|_| ())
        } else {
            Ok(())
        };
        let generation = {
            let mut st = self.state();
            st.last_user = Some(record.user.clone());
            st.session = Some(record);
            match verdict {
                Err(Error::Token(TokenError::Expired(_))) => {
                    self.audit(&st, AuditEvent::SessionExpired);
                    st.session = None;
                    st.phase = Phase::Expired;
                    st.generation += 1;
                    st.last_error = Some(Error::Expired(now.to_rfc3339()).info());
                    None
                }
                Err(e @ Error::Token(_)) => {
                    self.audit_failure(&st, &e);
                    st.session = None;
                    st.phase = Phase::SignedOut;
                    st.generation += 1;
                    st.last_error = Some(e.info());
                    None
                }
                other => {
                    // The record comes from the keychain, where only validated
                    // sessions go; if the JWKS cannot be fetched right now,
                    // keep the session and say why it is unverified.
                    st.phase = Phase::Active;
                    st.generation += 1;
                    st.last_error = other.err().map(|e| e.info());
                    self.schedule(&mut st);
                    self.audit(&st, AuditEvent::SessionRestored);
                    self.publish(&st);
                    Some(st.generation)
                }
            }
        };
        match generation {
            None => {
                let _ = self.forget().await;
                self.publish(&self.state());
            }
            Some(generation) => {
                if matches!(self.next_step(self.now()), Next::Refresh(_)) {
                    let _ = self.refresh_generation(generation).await;
                }
                self.wake();
            }
        }
        Ok(self.view())
    }

    /// Sign in with a username and password.
    pub async fn sign_in(&self, username: &str, password: Password) -> Result<SessionView, Error> {
        self.sign_in_with(Credentials::Password {
            username: username.to_owned(),
            password,
        })
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
        let live = {
            let st = self.state();
            (st.phase.has_session() && self.policy() == ExtendAccess::Reauthenticate).then_some(st.generation)
        };
        if let Some(generation) = live {
            self.extend(generation, Extend::Interactive).await?;
            return Ok(self.view());
        }
        self.sign_in_with(Credentials::Browser(self.browser_request(false)))
            .await
    }

    async fn sign_in_with(&self, credentials: Credentials) -> Result<SessionView, Error> {
        {
            let mut st = self.state();
            match st.phase {
                Phase::SigningIn => return Err(Error::InvalidState("a sign-in is already in progress".into())),
                Phase::Active | Phase::Refreshing => {
                    return Err(Error::InvalidState(format!(
                        "already signed in as {}; sign out first",
                        st.session.as_ref().map(|s| s.user.as_str()).unwrap_or("someone")
                    )))
                }
                _ => {}
            }
            st.phase = Phase::SigningIn;
            st.last_error = None;
            self.publish(&st);
        }
        let session_id = Uuid::new_v4();
        let flow = self.flow(session_id);
        let result = async {
            let grant = self.inner.provider.sign_in(&credentials, &flow).await?;
            let claims = self.verify_grant(&grant, None).await?;
            let offset = self.clock_offset(&grant);
            Ok::<_, Error>((self.record_from(grant, &claims, session_id, 0, None), offset))
        }
        .await;
        let generation = {
            let mut st = self.state();
            self.browser_done(&mut st);
            match result {
                Err(e) => {
                    st.phase = Phase::SignedOut;
                    st.last_error = Some(e.info());
                    self.audit_failure(&st, &e);
                    self.audit(
                        &st,
                        AuditEvent::SignInFailed {
                            code: e.code().to_string(),
                            reason: e.to_string(),
                        },
                    );
                    self.publish(&st);
                    return Err(e);
                }
                Ok((record, offset)) => {
                    st.clock_offset_ms = offset.unwrap_or(0);
                    st.last_user = Some(record.user.clone());
                    st.session = Some(record);
                    st.phase = Phase::Active;
                    st.generation += 1;
                    st.last_refresh = None;
                    st.persistence = Persistence::Keychain;
                    st.reauth_needed = false;
                    self.schedule(&mut st);
                    self.audit(&st, AuditEvent::SessionCreated);
                    st.generation
                }
            }
        };
        self.persist(generation).await;
        self.publish(&self.state());
        self.wake();
        Ok(self.view())
    }

    /// Refresh now (the "Refresh now" button, `sessionctl refresh`). Shares a
    /// refresh already in flight.
    pub async fn refresh_now(&self) -> Result<SessionView, Error> {
        let generation = {
            let st = self.state();
            match st.phase {
                Phase::Active | Phase::Refreshing => st.generation,
                _ => return Err(no_session(&st)),
            }
        };
        self.refresh_generation(generation).await?;
        Ok(self.view())
    }

    /// Refresh the session of generation `seen`. Concurrent callers that saw
    /// the same generation share one refresh: the first does it, the others
    /// find the generation moved on and take its result.
    pub async fn refresh_generation(&self, seen: u64) -> Result<(), Error> {
        self.extend(seen, Extend::Auto).await
    }

    /// Extend the session of generation `seen`: with the refresh token, or
    /// in re-authenticate mode with a new sign-in (silent for
    /// [`Extend::Auto`]). One implementation for every provider: the same
    /// single flight, process lock, adoption and backoff.
    async fn extend(&self, seen: u64, how: Extend) -> Result<(), Error> {
        let _gate = self.inner.refresh_gate.lock().await;
        let (current, persistent) = {
            let st = self.state();
            if st.generation != seen {
                return match st.phase {
                    Phase::Active | Phase::Refreshing => Ok(()),
                    _ => Err(no_session(&st)),
                };
            }
            match (&st.session, st.phase) {
                (Some(s), Phase::Active) => (s.clone(), st.persistence == Persistence::Keychain),
                _ => return Err(Error::NotSignedIn),
            }
        };
        let reauthenticate = self.policy() == ExtendAccess::Reauthenticate;
        let refresh_token = if reauthenticate {
            None
        } else {
            Some(current.refresh.clone().ok_or_else(|| {
                Error::InvalidState(
                    "the provider issued no refresh token; sign in again when the session expires".into(),
                )
            })?)
        };
        let _process_lock = ProcessLock::acquire(self.inner.lock_path.clone()).await?;
        if persistent {
            // Another process may have refreshed while we waited for the lock:
            // its refresh token replaced ours, which is now spent.
            if let Ok(Some(stored)) = self.vault_op(|v| v.load()).await {
                if stored.session_id == current.session_id
                    && stored.refresh != current.refresh
                    && stored.expires_at >= current.expires_at
                {
                    let mut st = self.state();
                    if st.generation == seen {
                        st.session = Some(stored);
                        st.generation += 1;
                        st.last_error = None;
                        self.schedule(&mut st);
                        self.audit(&st, AuditEvent::SessionAdopted);
                        self.publish(&st);
                    }
                    return Ok(());
                }
            }
        }
        {
            let mut st = self.state();
            st.phase = Phase::Refreshing;
            self.publish(&st);
        }
        let flow = self.flow(current.session_id);
        self.inner.refresh_requests.fetch_add(1, Ordering::SeqCst);
        let silent = how == Extend::Auto;
        let result = async {
            let grant = match &refresh_token {
                Some(token) => self.inner.provider.refresh(token, &flow).await?,
                None => {
                    let credentials = Credentials::Browser(self.browser_request(silent));
                    match self.inner.provider.sign_in(&credentials, &flow).await {
                        Err(Error::SignInCancelled) if silent => {
                            return Err(Error::ReauthRequired("the silent sign-in was cancelled".into()))
                        }
                        other => other?,
                    }
                }
            };
            let claims = self.verify_grant(&grant, Some(&current.user)).await?;
            let offset = self.clock_offset(&grant);
            let record = self.record_from(
                grant,
                &claims,
                current.session_id,
                current.refresh_count + 1,
                Some(&current),
            );
            Ok::<_, Error>((record, offset))
        }
        .await;
        let now = self.now();
        // Decide under the lock, then do the keychain work without it.
        let (persist, outcome) = {
            let mut st = self.state();
            if reauthenticate {
                self.browser_done(&mut st);
            }
            if st.generation != seen {
                // Signed out (or replaced) while the request was in flight.
                return Err(Error::NotSignedIn);
            }
            match result {
                Ok((record, offset)) => {
                    if let Some(offset) = offset {
                        st.clock_offset_ms = offset;
                    }
                    let count = record.refresh_count;
                    st.session = Some(record);
                    st.phase = Phase::Active;
                    st.generation += 1;
                    st.last_error = None;
                    st.last_refresh = Some(RefreshOutcome { at: now, ok: true });
                    st.reauth_needed = false;
                    self.schedule(&mut st);
                    let event = if reauthenticate {
                        AuditEvent::SessionReauthenticated { count, silent }
                    } else {
                        AuditEvent::SessionRefreshed { refresh_count: count }
                    };
                    self.audit(&st, event);
                    (Some(st.generation), Ok(()))
                }
                Err(Error::Revoked(reason)) => {
                    let e = Error::Revoked(reason.clone());
                    st.revoked_reason = Some(reason);
                    self.audit(&st, AuditEvent::SessionRevoked { reason: e.to_string() });
                    self.end(&mut st, Phase::Revoked, e.info());
                    (None, Err(e))
                }
                Err(e) if matches!(e, Error::ReauthRequired(_)) || how == Extend::Interactive => {
                    // No retry: the person has to act (sign in, or try again).
                    if let Error::ReauthRequired(_) = e {
                        st.reauth_needed = true;
                        st.next_refresh_at = None;
                        st.last_refresh = Some(RefreshOutcome { at: now, ok: false });
                    }
                    self.audit_refresh_failure(&st, &e, st.retry_attempt + 1);
                    st.phase = Phase::Active;
                    st.last_error = Some(e.info());
                    self.publish(&st);
                    return Err(e);
                }
                Err(e) => {
                    st.retry_attempt += 1;
                    let attempt = st.retry_attempt;
                    self.audit_refresh_failure(&st, &e, attempt);
                    st.phase = Phase::Active;
                    st.last_error = Some(e.info());
                    st.last_refresh = Some(RefreshOutcome { at: now, ok: false });
                    // Retry with backoff until expiry; the session stays usable
                    // while its token is valid.
                    if let Some(s) = &st.session {
                        let lifetime = (s.expires_at - s.issued_at).to_std().unwrap_or(Duration::from_secs(1));
                        let delay = refresh::backoff(refresh::backoff_base(lifetime), attempt, &mut rand::thread_rng());
                        st.next_refresh_at =
                            Some((now + chrono::Duration::from_std(delay).unwrap_or_default()).min(s.expires_at));
                    }
                    self.publish(&st);
                    return Err(e);
                }
            }
        };
        match persist {
            Some(generation) => {
                self.persist(generation).await;
                self.publish(&self.state());
            }
            None => {
                let _ = self.forget().await;
                self.publish(&self.state());
            }
        }
        outcome
    }

    /// End the session in memory. The caller clears the keychain and then
    /// publishes, so that whoever sees the ended session also finds the
    /// keychain empty.
    fn end(&self, st: &mut State, phase: Phase, error: ErrorInfo) {
        st.session = None;
        st.phase = phase;
        st.generation += 1;
        st.next_refresh_at = None;
        st.retry_attempt = 0;
        st.last_error = Some(error);
    }

    /// Move an Active session whose token has expired to Expired.
    pub(crate) async fn expire_if_due(&self) {
        let now = self.now();
        {
            let mut st = self.state();
            let due = st.phase == Phase::Active && st.session.as_ref().is_some_and(|s| now >= s.expires_at);
            if !due {
                return;
            }
            let at = st
                .session
                .as_ref()
                .map(|s| s.expires_at.to_rfc3339())
                .unwrap_or_default();
            self.audit(&st, AuditEvent::SessionExpired);
            self.end(&mut st, Phase::Expired, Error::Expired(at).info());
        }
        let _ = self.forget().await;
        self.publish(&self.state());
    }

    /// Sign out: local state (memory, keychain, view) is cleared first and
    /// always; then the provider is told. A failed server call is recorded
    /// in the report and the audit log.
    pub async fn sign_out(&self) -> Result<SignOutReport, Error> {
        let ended = {
            let mut st = self.state();
            let session = st.session.take();
            st.phase = Phase::SignedOut;
            st.generation += 1;
            st.next_refresh_at = None;
            st.retry_attempt = 0;
            st.last_error = None;
            session
        };
        let vault_result = self.forget().await;
        let server = match &ended {
            Some(s) => {
                let tokens = SessionTokens {
                    bearer: s.bearer.clone(),
                    refresh: s.refresh.clone(),
                    id_token: s.id_token.clone(),
                };
                let flow = self.flow(s.session_id);
                Some(self.inner.provider.sign_out(&tokens, &flow, &*self.inner.opener).await)
            }
            None => None,
        };
        let mut st = self.state();
        let server_error = match &server {
            Some(Err(e)) => Some(e.info()),
            _ => None,
        };
        if let Some(s) = ended {
            let outcome = match &server_error {
                None => "ok".to_owned(),
                Some(e) => format!("failed: {}", e.message),
            };
            // Audit with the ended session's identity.
            self.audit_session(Some(&s), None, AuditEvent::SignedOut { server_logout: outcome });
        }
        if let Err(e) = vault_result {
            if matches!(e, VaultError::Unavailable(_)) {
                st.persistence = Persistence::MemoryOnly;
            } else {
                st.last_error = Some(Error::Vault(e).info());
            }
        }
        self.publish(&st);
        Ok(SignOutReport {
            view: self.view_of(&st),
            server_error,
        })
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

    /// Call the provider's API with the session's token and headers. A 401
    /// triggers one shared refresh and one retry.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<ApiResponse, Error> {
        let request = ApiRequest {
            method,
            path: path.to_owned(),
            body,
        };
        let (bearer, generation, session_id) = self.current_bearer()?;
        let flow = self.flow(session_id);
        let response = self.inner.provider.call(&request, &bearer, &flow).await?;
        if response.status != 401 {
            return Ok(response);
        }
        self.refresh_generation(generation).await?;
        let (bearer, _, _) = self.current_bearer()?;
        self.inner.provider.call(&request, &bearer, &flow).await
    }

    fn current_bearer(&self) -> Result<(AccessToken, u64, Uuid), Error> {
        let st = self.state();
        match (&st.session, st.phase) {
            (Some(s), Phase::Active | Phase::Refreshing) => Ok((s.bearer.clone(), st.generation, s.session_id)),
            _ => Err(no_session(&st)),
        }
    }
}

/// Records the browser page in the view, then opens it with the engine's
/// opener; a failure to start the browser is shown, not fatal.
struct ViewOpener {
    engine: Engine,
    silent: bool,
    timeout: Duration,
}

impl Opener for ViewOpener {
    fn open(&self, url: &str) -> Result<(), String> {
        {
            let mut st = self.engine.state();
            st.browser = Some(BrowserWait {
                url: url.to_owned(),
                deadline: self.engine.now()
                    + chrono::Duration::from_std(self.timeout).unwrap_or_else(|_| chrono::Duration::hours(1)),
                silent: self.silent,
                open_error: None,
            });
            self.engine.publish(&st);
        }
        let result = self.engine.inner.opener.open(url);
        if let Err(e) = &result {
            let mut st = self.engine.state();
            if let Some(b) = st.browser.as_mut() {
                b.open_error = Some(e.clone());
            }
            self.engine.publish(&st);
        }
        result
    }
}

/// Whether `token` has the shape of a JWS: three parts and a JSON header
/// that names an algorithm.
fn looks_like_jwt(token: &AccessToken) -> bool {
    use base64::Engine as _;
    let mut parts = token.expose().split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .is_some_and(|h| h.get("alg").is_some())
}

/// Why an operation that needs a session cannot run in this state.
fn no_session(st: &State) -> Error {
    match st.phase {
        Phase::Expired => Error::Expired("an earlier time".into()),
        Phase::Revoked => Error::Revoked(st.revoked_reason.clone().unwrap_or_else(|| "reason unknown".into())),
        _ => Error::NotSignedIn,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
