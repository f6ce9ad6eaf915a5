//! The Playground's shared state and its token ledger: sessions, refresh
//! tokens (rotation, reuse detection, idle and absolute lifetimes), the
//! request log, the fault switches, and the OpenID Connect side's data.
//! Every route module uses it; it uses none of them.

pub(crate) mod oidc;
pub(crate) mod saved;

use crate::keys::KeyRing;
use crate::{demo_users, DemoUser, Mode, Options};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use oidc::{OidcSession, OidcState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use uuid::Uuid;

/// How many requests, and issued tokens, the Playground remembers.
pub const MAX_RECORDS: usize = 10_000;
/// The most sessions it keeps; ended ones go first.
pub const MAX_SESSIONS: usize = 10_000;

/// A list that keeps only its newest `cap` items.
pub(crate) struct Bounded<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T: Clone> Bounded<T> {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            items: VecDeque::new(),
            cap,
        }
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub(crate) fn extend(&mut self, items: impl IntoIterator<Item = T>) {
        for item in items {
            self.push(item);
        }
    }

    pub(crate) fn to_vec(&self) -> Vec<T> {
        self.items.iter().cloned().collect()
    }
}

/// One API request as the Playground saw it. Secret header values are
/// replaced by `present sha256:<fingerprint>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// What was wrong with the required headers; empty when all were fine.
    pub problems: Vec<String>,
    pub status: u16,
}

/// Where a sign-in came from, as a server reports it (IP, approximate
/// location). The Playground reports `127.0.0.1` in Berlin unless told
/// otherwise for the next login (`/admin/next-login`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    pub ip: String,
    pub city: String,
    pub country: String,
}

impl Default for Origin {
    fn default() -> Self {
        Self {
            ip: "127.0.0.1".into(),
            city: "Berlin".into(),
            country: "DE".into(),
        }
    }
}

/// A session as the admin API lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub user: String,
    pub created: i64,
    /// What the client called itself at sign-in (`deviceName`).
    #[serde(default)]
    pub device_name: String,
    /// The last sign-in, refresh or API call (unix seconds).
    #[serde(default)]
    pub last_seen: i64,
    /// Where the sign-in came from, as the server sees it.
    #[serde(default)]
    pub origin: Origin,
    pub refresh_count: u32,
    pub revoked: bool,
    pub signed_out: bool,
    pub revoke_reason: Option<String>,
}

/// Creation order of sessions, across Playgrounds in one process (a
/// restored Playground continues after its highest).
pub(crate) static SERIAL: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Session {
    pub(crate) info: SessionInfo,
    /// Creation order (`created` has whole seconds only).
    pub(crate) serial: u64,
    pub(crate) customer: String,
    pub(crate) current_refresh: String,
    /// OpenID Connect sessions only.
    pub(crate) oidc: Option<OidcSession>,
}

impl Session {
    /// A new live session `id` of `user`.
    pub(crate) fn new(id: String, user: &DemoUser, oidc: Option<OidcSession>, now: i64) -> Self {
        Self {
            serial: SERIAL.fetch_add(1, Ordering::SeqCst),
            info: SessionInfo {
                id,
                user: user.username.clone(),
                created: now,
                device_name: String::new(),
                last_seen: now,
                origin: Origin::default(),
                refresh_count: 0,
                revoked: false,
                signed_out: false,
                revoke_reason: None,
            },
            customer: user.customer.clone(),
            current_refresh: String::new(),
            oidc,
        }
    }
}

pub(crate) struct RefreshEntry {
    pub(crate) session: String,
    /// When it was redeemed (rotated away), if it was: presenting it again
    /// is reuse, unless within the reuse grace period.
    pub(crate) spent_at: Option<i64>,
    /// When this token stops being honoured (unix seconds).
    pub(crate) expires: i64,
}

/// How long refresh tokens live: `idle` from each use, and no longer than
/// `absolute` from the sign-in, whatever the use.
pub struct RefreshLifetimes {
    pub idle_secs: AtomicU64,
    pub absolute_secs: AtomicU64,
    /// For how long a rotated refresh token may still be presented without
    /// counting as reuse (Okta's "grace period", Auth0's "reuse interval");
    /// 0, strict, by default.
    pub reuse_grace_secs: AtomicU64,
}

pub struct AppState {
    pub(crate) issuer: String,
    pub(crate) mode: Mode,
    pub(crate) session_limit: usize,
    pub(crate) alg: Algorithm,
    pub(crate) padding: usize,
    pub(crate) keys: RwLock<KeyRing>,
    pub fail_refreshes: AtomicU32,
    /// Device-grant polls of the token endpoint still to answer 503.
    pub fail_device_polls: AtomicU32,
    /// JWKS requests (both endpoints) still to answer 503.
    pub fail_jwks: AtomicU32,
    pub latency_ms: AtomicU64,
    /// The next refresh (FinHub or OpenID Connect) is redeemed at once but
    /// answered after this many milliseconds, once: a client that gives up
    /// waiting has lost its new tokens, and its old refresh token is spent.
    pub slow_next_refresh_ms: AtomicU64,
    /// Added to the Playground's clock: token times and the `Date` header.
    pub clock_offset_secs: AtomicI64,
    pub lifetime_ms: AtomicU64,
    /// Access tokens of an older generation than this are refused by the
    /// API (the provider stopped honouring them early).
    pub access_generation: AtomicU64,
    pub refresh_lifetimes: RefreshLifetimes,
    pub(crate) sessions: Mutex<HashMap<String, Session>>,
    pub(crate) refresh_index: Mutex<HashMap<String, RefreshEntry>>,
    /// FinHub refresh answers by idempotency key and presented token, with
    /// when they were given: a repeated attempt within a minute gets the
    /// same answer.
    pub(crate) answered: Mutex<HashMap<String, (i64, serde_json::Value)>>,
    pub(crate) issued: Mutex<Bounded<String>>,
    pub(crate) requests: Mutex<Bounded<RecordedRequest>>,
    /// The bearer secret the admin API requires, made at start.
    pub(crate) admin_token: String,
    /// The origin the next login reports (then back to the default).
    pub(crate) next_origin: Mutex<Option<Origin>>,
    /// Whether the primary listener should serve (`/admin/primary`), and
    /// whether it does (set by its supervisor once the change took effect).
    pub(crate) primary_wanted: tokio::sync::watch::Sender<bool>,
    pub(crate) primary_serving: tokio::sync::watch::Sender<bool>,
    pub(crate) users: Vec<DemoUser>,
    pub(crate) config: String,
    pub(crate) oidc: OidcState,
    /// Writes the state down after every change, when the Playground keeps
    /// it (see [`saved`]).
    pub(crate) keeper: Option<saved::Keeper>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn fingerprint(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    format!(
        "sha256:{}",
        d[..6].iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Take one from an injected-failure counter: the failure's message, or
/// `None` when none is left.
fn take_one(counter: &AtomicU32) -> Option<String> {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .ok()
        .map(|was| format!("injected failure ({} more to come)", was - 1))
}

impl AppState {
    pub fn new(options: &Options, issuer: String, keys: KeyRing, config: String) -> Self {
        let oidc = OidcState::new(&issuer);
        Self {
            issuer,
            mode: options.mode,
            session_limit: options.session_limit,
            alg: options.signing_alg,
            padding: options.token_padding,
            keys: RwLock::new(keys),
            fail_refreshes: AtomicU32::new(0),
            fail_device_polls: AtomicU32::new(0),
            fail_jwks: AtomicU32::new(0),
            latency_ms: AtomicU64::new(0),
            slow_next_refresh_ms: AtomicU64::new(0),
            clock_offset_secs: AtomicI64::new(0),
            lifetime_ms: AtomicU64::new(options.token_lifetime.as_millis() as u64),
            access_generation: AtomicU64::new(0),
            refresh_lifetimes: RefreshLifetimes {
                idle_secs: AtomicU64::new(options.refresh_idle.as_secs().max(1)),
                absolute_secs: AtomicU64::new(options.refresh_absolute.as_secs().max(1)),
                reuse_grace_secs: AtomicU64::new(0),
            },
            sessions: Mutex::new(HashMap::new()),
            refresh_index: Mutex::new(HashMap::new()),
            answered: Mutex::new(HashMap::new()),
            issued: Mutex::new(Bounded::new(MAX_RECORDS)),
            requests: Mutex::new(Bounded::new(MAX_RECORDS)),
            admin_token: B64URL.encode(rand::random::<[u8; 32]>()),
            next_origin: Mutex::new(None),
            primary_wanted: tokio::sync::watch::channel(true).0,
            primary_serving: tokio::sync::watch::channel(true).0,
            users: demo_users(),
            config,
            oidc,
            keeper: None,
        }
    }

    /// The Playground's clock (unix seconds): the real one plus the offset
    /// set through the admin API.
    pub(crate) fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.clock_offset_secs.load(Ordering::SeqCst)
    }

    /// Sign `claims` with the current key for the Playground's algorithm;
    /// `typ` goes into the header when given (`at+jwt`).
    pub(crate) fn sign(&self, typ: Option<&str>, claims: &Value) -> String {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .signer(self.alg)
            .sign_typed(typ, claims)
    }

    /// Remember tokens it issued (the tests' leak checks look for them).
    pub(crate) fn remember_issued(&self, tokens: impl IntoIterator<Item = String>) {
        lock(&self.issued).extend(tokens);
    }

    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.issued).to_vec()
    }

    pub fn recorded(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).to_vec()
    }

    /// Make room for one more session: forget the oldest ended ones past
    /// [`MAX_SESSIONS`]. `false` when every session is live and there is no
    /// room.
    pub(crate) fn room_for_a_session(&self, sessions: &mut HashMap<String, Session>) -> bool {
        if sessions.len() < MAX_SESSIONS {
            return true;
        }
        let mut ended: Vec<(i64, String)> = sessions
            .iter()
            .filter(|(_, s)| s.info.revoked || s.info.signed_out)
            .map(|(id, s)| (s.info.created, id.clone()))
            .collect();
        ended.sort();
        let excess = sessions.len() + 1 - MAX_SESSIONS;
        for (_, id) in ended.into_iter().take(excess) {
            sessions.remove(&id);
        }
        sessions.len() < MAX_SESSIONS
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut list: Vec<_> = lock(&self.sessions).values().map(|s| s.info.clone()).collect();
        list.sort_by_key(|s| s.created);
        list
    }

    pub fn revoke(&self, session_id: Option<&str>, user: Option<&str>) -> usize {
        let mut n = 0;
        for s in lock(&self.sessions).values_mut() {
            let hit = session_id.is_none_or(|id| s.info.id == id) && user.is_none_or(|u| s.info.user == u);
            if hit && !s.info.revoked {
                s.info.revoked = true;
                s.info.revoke_reason = Some("revoked by an administrator".into());
                n += 1;
            }
        }
        self.save_or_warn();
        n
    }

    /// Publish the RSA key that was generated after start.
    pub fn add_rsa_key(&self, key: crate::keys::SigningKey) {
        self.keys.write().unwrap_or_else(|e| e.into_inner()).set_rsa(key);
        self.save_or_warn();
    }

    /// New signing keys; `keep_old` keeps the previous ones published (so
    /// tokens already issued still verify), else they are dropped at once.
    pub async fn rotate_keys(&self, keep_old: bool) {
        if let Ok(fresh) = tokio::task::spawn_blocking(KeyRing::generate).await {
            self.keys
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .rotate(fresh, keep_old);
            self.save_or_warn();
        }
    }

    /// When a refresh token issued now for `session` stops being honoured:
    /// its idle lifetime from now, and never past the session's absolute
    /// lifetime.
    pub(crate) fn refresh_expiry(&self, session: &Session) -> i64 {
        let idle = self.refresh_lifetimes.idle_secs.load(Ordering::SeqCst) as i64;
        let absolute = self.refresh_lifetimes.absolute_secs.load(Ordering::SeqCst) as i64;
        (self.now() + idle).min(session.info.created + absolute)
    }

    /// A new refresh token for `session`: a JWT (as FinHub's are; the
    /// guide's example reads `eyJ…`, and a client may read its `exp` to
    /// show until when it can renew), or opaque. `presented`, the token it
    /// was redeemed with, is spent from now on: presenting it again is reuse.
    pub(crate) fn rotate_refresh(&self, session: &mut Session, presented: Option<&str>, opaque: bool) -> String {
        let (iat, expires) = (self.now(), self.refresh_expiry(session));
        let refresh = if opaque {
            format!("rt_{}", oidc::random())
        } else {
            self.sign(
                None,
                &json!({
                    "iss": self.issuer, "sub": session.info.user, "sid": session.info.id,
                    "iat": iat, "exp": expires, "jti": Uuid::new_v4().to_string(), "typ": "refresh",
                }),
            )
        };
        self.index_refresh(session, presented, &refresh, expires);
        refresh
    }

    /// Record `token` as `session`'s refresh token until `expires`, and
    /// `presented` as spent.
    fn index_refresh(&self, session: &mut Session, presented: Option<&str>, token: &str, expires: i64) {
        let now = self.now();
        let mut index = lock(&self.refresh_index);
        if let Some(old) = presented.and_then(|p| index.get_mut(p)) {
            old.spent_at.get_or_insert(now);
        }
        // Forget tokens past their life (a day's grace keeps reuse detectable).
        if index.len() >= MAX_RECORDS {
            index.retain(|_, e| e.expires + 86_400 > now);
        }
        index.insert(
            token.to_owned(),
            RefreshEntry {
                session: session.info.id.clone(),
                spent_at: None,
                expires,
            },
        );
        session.current_refresh = token.to_owned();
    }

    /// The session a refresh token may extend, counted as refreshed. A spent
    /// (rotated) token is reuse, unless within the reuse grace period:
    /// someone holds a copy, so its session is revoked. `owner` says which
    /// sessions the caller may refresh. The error is the `invalid_grant`
    /// description.
    pub(crate) fn redeem_refresh<'a>(
        &self,
        sessions: &'a mut HashMap<String, Session>,
        refresh: &str,
        owner: impl Fn(&Session) -> bool,
    ) -> Result<&'a mut Session, String> {
        let now = self.now();
        let entry = lock(&self.refresh_index)
            .get(refresh)
            .map(|e| (e.session.clone(), e.spent_at, e.expires));
        let (sid, spent_at, expires) = entry.ok_or("unknown refresh token")?;
        let session = sessions.get_mut(&sid).filter(|s| owner(s)).ok_or("unknown session")?;
        if now >= expires {
            let absolute = self.refresh_lifetimes.absolute_secs.load(Ordering::SeqCst) as i64;
            return Err(if now >= session.info.created + absolute {
                "the session reached its absolute lifetime; sign in again".into()
            } else {
                "the refresh token expired (unused for its idle lifetime); sign in again".into()
            });
        }
        let grace = self.refresh_lifetimes.reuse_grace_secs.load(Ordering::SeqCst) as i64;
        if spent_at.is_some_and(|at| now - at >= grace) {
            session.info.revoked = true;
            session.info.revoke_reason = Some("refresh token reuse detected".into());
            return Err("refresh token reuse detected; the session has been revoked".into());
        }
        if session.info.revoked {
            let why = session.info.revoke_reason.clone().unwrap_or_default();
            return Err(format!("the session was revoked: {why}"));
        }
        if session.info.signed_out {
            return Err("the session was signed out".into());
        }
        session.info.refresh_count += 1;
        session.info.last_seen = self.now();
        Ok(session)
    }

    /// Mark a session signed out.
    pub(crate) fn end_session(&self, sid: &str) {
        if let Some(s) = lock(&self.sessions).get_mut(sid) {
            s.info.signed_out = true;
        }
    }

    /// Wait once for the injected slow refresh, if one is set.
    pub(crate) async fn slow_refresh(&self) {
        let ms = self.slow_next_refresh_ms.swap(0, Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }

    /// Consume one injected refresh failure, if any is left: the answer to
    /// send instead of refreshing.
    pub(crate) fn injected_refresh_failure(&self) -> Option<String> {
        take_one(&self.fail_refreshes)
    }

    /// Consume one injected device-poll failure, if any is left.
    pub(crate) fn injected_device_poll_failure(&self) -> Option<String> {
        take_one(&self.fail_device_polls)
    }

    /// Consume one injected JWKS failure, if any is left.
    pub(crate) fn injected_jwks_failure(&self) -> Option<String> {
        take_one(&self.fail_jwks)
    }
}

/// Take the primary listener down or up, and wait (at most 10 s) until it
/// took effect.
pub(crate) async fn set_primary(state: &AppState, up: bool) -> bool {
    state.primary_wanted.send_replace(up);
    let mut serving = state.primary_serving.subscribe();
    let done = tokio::time::timeout(std::time::Duration::from_secs(10), serving.wait_for(|s| *s == up))
        .await
        .is_ok_and(|r| r.is_ok());
    done
}
