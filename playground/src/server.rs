//! The Playground's HTTP side: FinHub endpoints, JWKS, a protected sample
//! endpoint and the admin API, served over TLS.

use crate::keys::KeyRing;
use crate::{demo_users, DemoUser, Mode, Options, AUDIENCE, TENANT};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use uuid::Uuid;

/// The most connections served at once; more wait in the kernel's queue.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a TLS handshake, and a request head, may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait after a failed `accept` (EMFILE and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
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

/// A session as the admin API lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub user: String,
    pub created: i64,
    pub refresh_count: u32,
    pub revoked: bool,
    pub signed_out: bool,
    pub revoke_reason: Option<String>,
}

pub(crate) struct Session {
    pub(crate) info: SessionInfo,
    pub(crate) customer: String,
    pub(crate) current_refresh: String,
    /// OpenID Connect sessions only.
    pub(crate) oidc: Option<crate::oidc::OidcSession>,
}

impl Session {
    /// A new live session `id` of `user`.
    pub(crate) fn new(id: String, user: &DemoUser, oidc: Option<crate::oidc::OidcSession>) -> Self {
        Self {
            info: SessionInfo {
                id,
                user: user.username.clone(),
                created: now(),
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
    pub(crate) current: bool,
    /// When this token stops being honoured (unix seconds).
    pub(crate) expires: i64,
}

/// How long refresh tokens live: `idle` from each use, and no longer than
/// `absolute` from the sign-in, whatever the use.
pub struct RefreshLifetimes {
    pub idle_secs: AtomicU64,
    pub absolute_secs: AtomicU64,
}

pub struct AppState {
    pub(crate) issuer: String,
    mode: Mode,
    session_limit: usize,
    pub(crate) alg: Algorithm,
    padding: usize,
    pub(crate) keys: RwLock<KeyRing>,
    pub fail_refreshes: AtomicU32,
    /// JWKS requests (both endpoints) still to answer 503.
    pub fail_jwks: AtomicU32,
    pub latency_ms: AtomicU64,
    pub lifetime_ms: AtomicU64,
    /// Access tokens of an older generation than this are refused by the
    /// API (the provider stopped honouring them early).
    pub access_generation: AtomicU64,
    pub refresh_lifetimes: RefreshLifetimes,
    pub(crate) sessions: Mutex<HashMap<String, Session>>,
    pub(crate) refresh_index: Mutex<HashMap<String, RefreshEntry>>,
    pub(crate) issued: Mutex<Bounded<String>>,
    requests: Mutex<Bounded<RecordedRequest>>,
    /// The bearer secret the admin API requires, made at start.
    pub(crate) admin_token: String,
    pub(crate) users: Vec<DemoUser>,
    config: String,
    pub(crate) oidc: crate::oidc::OidcState,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn fingerprint(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    format!(
        "sha256:{}",
        d[..6].iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": code, "message": message.into()}))).into_response()
}

/// Take one from an injected-failure counter: the failure's message, or
/// `None` when none is left.
fn take_one(counter: &AtomicU32) -> Option<String> {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .ok()
        .map(|was| format!("injected failure ({} more to come)", was - 1))
}

/// The key set, or an injected 503.
pub(crate) fn jwks_answer(state: &AppState) -> Response {
    if let Some(message) = state.injected_jwks_failure() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    }
    Json(state.keys.read().unwrap_or_else(|e| e.into_inner()).jwks()).into_response()
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl AppState {
    pub fn new(options: &Options, issuer: String, keys: KeyRing, config: String) -> Self {
        let oidc = crate::oidc::OidcState::new(&issuer);
        Self {
            issuer,
            mode: options.mode,
            session_limit: options.session_limit,
            alg: options.signing_alg,
            padding: options.token_padding,
            keys: RwLock::new(keys),
            fail_refreshes: AtomicU32::new(0),
            fail_jwks: AtomicU32::new(0),
            latency_ms: AtomicU64::new(0),
            lifetime_ms: AtomicU64::new(options.token_lifetime.as_millis() as u64),
            access_generation: AtomicU64::new(0),
            refresh_lifetimes: RefreshLifetimes {
                idle_secs: AtomicU64::new(options.refresh_idle.as_secs().max(1)),
                absolute_secs: AtomicU64::new(options.refresh_absolute.as_secs().max(1)),
            },
            sessions: Mutex::new(HashMap::new()),
            refresh_index: Mutex::new(HashMap::new()),
            issued: Mutex::new(Bounded::new(MAX_RECORDS)),
            requests: Mutex::new(Bounded::new(MAX_RECORDS)),
            admin_token: B64URL.encode(rand::random::<[u8; 32]>()),
            users: demo_users(),
            config,
            oidc,
        }
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
        n
    }

    /// Publish the RSA key that was generated after start.
    pub fn add_rsa_key(&self, key: crate::keys::SigningKey) {
        self.keys.write().unwrap_or_else(|e| e.into_inner()).set_rsa(key);
    }

    pub async fn rotate_keys(&self) {
        if let Ok(fresh) = tokio::task::spawn_blocking(KeyRing::generate).await {
            self.keys.write().unwrap_or_else(|e| e.into_inner()).rotate(fresh);
        }
    }

    /// Issue a session token and a refresh token for `session`.
    fn issue(&self, session: &mut Session) -> (String, String, u64) {
        let lifetime_ms = self.lifetime_ms.load(Ordering::SeqCst).max(1000);
        let iat = now();
        let exp = iat + (lifetime_ms / 1000) as i64;
        let mut claims = json!({
            "iss": self.issuer, "aud": AUDIENCE, "sub": session.info.user,
            "sid": session.info.id, "tid": TENANT, "cid": session.customer,
            "scope": "accounts:read profile", "iat": iat, "nbf": iat, "exp": exp,
            "jti": Uuid::new_v4().to_string(), "gen": self.access_generation.load(Ordering::SeqCst),
        });
        if self.padding > 0 {
            claims["pad"] = Value::String("p".repeat(self.padding));
        }
        let token = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .signer(self.alg)
            .sign(&claims);
        let refresh = self.rotate_refresh(session);
        lock(&self.issued).extend([token.clone(), refresh.clone()]);
        (token, refresh, (exp - iat) as u64)
    }

    /// A new refresh token for `session`; the previous one is spent (using
    /// it again is reuse).
    pub(crate) fn rotate_refresh(&self, session: &mut Session) -> String {
        let iat = now();
        let idle = self.refresh_lifetimes.idle_secs.load(Ordering::SeqCst) as i64;
        let absolute = self.refresh_lifetimes.absolute_secs.load(Ordering::SeqCst) as i64;
        let expires = (iat + idle).min(session.info.created + absolute);
        // A JWT, as FinHub's are (the guide's example reads `eyJ…`): the
        // client may read its `exp` to show until when it can renew.
        let refresh = self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .signer(self.alg)
            .sign(&json!({
                "iss": self.issuer, "sub": session.info.user, "sid": session.info.id,
                "iat": iat, "exp": expires, "jti": Uuid::new_v4().to_string(), "typ": "refresh",
            }));
        let mut index = lock(&self.refresh_index);
        if let Some(old) = index.get_mut(&session.current_refresh) {
            old.current = false;
        }
        // Forget tokens past their life (a day's grace keeps reuse detectable).
        if index.len() >= MAX_RECORDS {
            index.retain(|_, e| e.expires + 86_400 > iat);
        }
        index.insert(
            refresh.clone(),
            RefreshEntry {
                session: session.info.id.clone(),
                current: true,
                expires,
            },
        );
        session.current_refresh = refresh.clone();
        refresh
    }

    /// The session a refresh token may extend, counted as refreshed. A spent
    /// (rotated) token is reuse: someone holds a copy, so its session is
    /// revoked. `owner` says which sessions the caller may refresh. The error
    /// is the `invalid_grant` description.
    pub(crate) fn redeem_refresh<'a>(
        &self,
        sessions: &'a mut HashMap<String, Session>,
        refresh: &str,
        owner: impl Fn(&Session) -> bool,
    ) -> Result<&'a mut Session, String> {
        let entry = lock(&self.refresh_index)
            .get(refresh)
            .map(|e| (e.session.clone(), e.current, e.expires));
        let (sid, current, expires) = entry.ok_or("unknown refresh token")?;
        let session = sessions.get_mut(&sid).filter(|s| owner(s)).ok_or("unknown session")?;
        if now() >= expires {
            let absolute = self.refresh_lifetimes.absolute_secs.load(Ordering::SeqCst) as i64;
            return Err(if now() >= session.info.created + absolute {
                "the session reached its absolute lifetime; sign in again".into()
            } else {
                "the refresh token expired (unused for its idle lifetime); sign in again".into()
            });
        }
        if !current {
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
        Ok(session)
    }

    /// Consume one injected refresh failure, if any is left: the answer to
    /// send instead of refreshing.
    pub(crate) fn injected_refresh_failure(&self) -> Option<String> {
        take_one(&self.fail_refreshes)
    }

    /// Consume one injected JWKS failure, if any is left.
    pub(crate) fn injected_jwks_failure(&self) -> Option<String> {
        take_one(&self.fail_jwks)
    }

    fn token_response(&self, session: &mut Session) -> Response {
        let (token, refresh, expires_in) = self.issue(session);
        Json(json!({
            "expires_in": expires_in, "token_type": "Bearer", "scope": "accounts:read profile",
            "customerId": session.customer, "tenantId": TENANT,
            "userSessionToken": token, "refreshToken": refresh,
        }))
        .into_response()
    }

    /// The live session of a valid session token, or why there is none.
    fn session_of(&self, token: &str, check_exp: bool) -> Result<String, String> {
        let claims =
            self.keys
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .verify(token, &self.issuer, AUDIENCE, check_exp)?;
        let sid = claims
            .get("sid")
            .and_then(Value::as_str)
            .ok_or("the token has no sid")?
            .to_owned();
        if check_exp
            && claims.get("gen").and_then(Value::as_u64).unwrap_or(0) < self.access_generation.load(Ordering::SeqCst)
        {
            return Err("the token is no longer honoured (rejected through the admin API)".into());
        }
        let sessions = lock(&self.sessions);
        let s = sessions.get(&sid).ok_or("unknown session")?;
        if s.info.revoked {
            return Err(format!(
                "session revoked: {}",
                s.info.revoke_reason.clone().unwrap_or_default()
            ));
        }
        if s.info.signed_out {
            return Err("session signed out".into());
        }
        Ok(sid)
    }
}

const SECRET_HEADERS: [&str; 2] = ["authorization", "x-user-session-token"];

/// Check the required headers of an API request; each problem names the
/// header and what is wrong.
fn check_headers(path: &str, headers: &HeaderMap) -> Vec<String> {
    let mut problems = Vec::new();
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let uuid = |name: &str, v4: bool, problems: &mut Vec<String>| match get(name) {
        None => problems.push(format!("{name} is missing")),
        Some(v) => match Uuid::parse_str(v) {
            Err(_) => problems.push(format!("{name} is not a UUID: '{v}'")),
            Ok(u) if v4 && u.get_version_num() != 4 => problems.push(format!("{name} is not a UUID v4: '{v}'")),
            Ok(_) => {}
        },
    };
    uuid("x-request-id", true, &mut problems);
    uuid("x-activity-id", false, &mut problems);
    match get("x-tenant-id") {
        None => problems.push("X-Tenant-ID is missing".into()),
        Some(t) if t != TENANT => {
            problems.push(format!("X-Tenant-ID '{t}' is not this Playground's tenant '{TENANT}'"))
        }
        Some(_) => {}
    }
    if path == "/api/v2/auth/logout" {
        if get("x-session-active") != Some("true") {
            problems.push("X-Session-Active must be 'true'".into());
        }
        if get("x-user-session-token").is_none() {
            problems.push("X-User-Session-Token is missing".into());
        }
    } else {
        uuid("x-session-id", false, &mut problems);
        uuid("x-correlation-id", false, &mut problems);
        if path == "/api/v2/accounts" {
            match get("authorization") {
                None => problems.push("Authorization is missing".into()),
                Some(v) if !v.starts_with("Bearer ") => problems.push("Authorization is not 'Bearer <token>'".into()),
                Some(_) => {}
            }
        }
    }
    problems
}

/// Record every API request, apply latency, and refuse bad headers.
async fn api_guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    guard(state, request, next, true).await
}

/// Record every OpenID Connect request and apply latency (the FinHub header
/// rules do not apply to it).
pub(crate) async fn oidc_guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    guard(state, request, next, false).await
}

async fn guard(state: Arc<AppState>, request: Request, next: Next, finhub: bool) -> Response {
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let path = request.uri().path().to_owned();
    let method = request.method().to_string();
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-") || k.as_str() == "authorization" || k.as_str() == "content-type")
        .map(|(k, v)| {
            let v = v.to_str().unwrap_or("(not text)");
            let shown = if SECRET_HEADERS.contains(&k.as_str()) {
                format!("present {}", fingerprint(v))
            } else {
                v.to_owned()
            };
            (k.as_str().to_owned(), shown)
        })
        .collect();
    let problems = if finhub {
        check_headers(&path, request.headers())
    } else {
        Vec::new()
    };
    let response = if let Some(first) = problems.first() {
        error(StatusCode::BAD_REQUEST, "invalid_header", first.clone())
    } else {
        next.run(request).await
    };
    lock(&state.requests).push(RecordedRequest {
        method,
        path,
        headers,
        problems,
        status: response.status().as_u16(),
    });
    response
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Option<Json<LoginBody>>) -> Response {
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be JSON {\"username\", \"password\"}",
        );
    };
    let Some(user) = state
        .users
        .iter()
        .find(|u| u.username == body.username && u.password == body.password)
    else {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "unknown user or wrong password",
        );
    };
    let mut sessions = lock(&state.sessions);
    if !state.room_for_a_session(&mut sessions) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_sessions",
            "the Playground holds as many live sessions as it keeps; revoke some through the admin API",
        );
    }
    if state.mode == Mode::Production {
        let live = sessions
            .values()
            .filter(|s| s.info.user == user.username && !s.info.revoked && !s.info.signed_out)
            .count();
        if live >= state.session_limit {
            return error(
                StatusCode::CONFLICT,
                "session_limit",
                format!(
                    "{} already has {live} active sessions, the production limit is {}; sign out of one first",
                    user.username, state.session_limit
                ),
            );
        }
    }
    let requested = headers
        .get("x-session-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let id = if requested.is_empty() || sessions.contains_key(&requested) {
        Uuid::new_v4().to_string()
    } else {
        requested
    };
    let mut session = Session::new(id.clone(), user, None);
    let response = state.token_response(&mut session);
    sessions.insert(id, session);
    response
}

#[derive(Deserialize)]
struct RefreshBody {
    #[serde(rename = "refreshToken")]
    refresh_token: String,
}

async fn refresh(State(state): State<Arc<AppState>>, body: Option<Json<RefreshBody>>) -> Response {
    let Some(Json(body)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be JSON {\"refreshToken\"}",
        );
    };
    if let Some(message) = state.injected_refresh_failure() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    }
    let mut sessions = lock(&state.sessions);
    match state.redeem_refresh(&mut sessions, &body.refresh_token, |_| true) {
        Ok(session) => state.token_response(session),
        Err(why) => error(StatusCode::BAD_REQUEST, "invalid_grant", why),
    }
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("x-user-session-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match state.session_of(token, false) {
        Ok(sid) => {
            if let Some(s) = lock(&state.sessions).get_mut(&sid) {
                s.info.signed_out = true;
            }
            Json(json!({"status": "signed_out"})).into_response()
        }
        Err(why) => error(StatusCode::UNAUTHORIZED, "invalid_token", why),
    }
}

async fn accounts(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match state.session_of(token, true) {
        Ok(sid) => {
            let customer = lock(&state.sessions)
                .get(&sid)
                .map(|s| s.customer.clone())
                .unwrap_or_default();
            Json(json!({
                "customerId": customer,
                "accounts": [
                    {"id": "acc-001", "name": "Everyday", "currency": "EUR", "balance": "1520.40"},
                    {"id": "acc-002", "name": "Savings", "currency": "EUR", "balance": "10250.00"}
                ]
            }))
            .into_response()
        }
        Err(why) => error(StatusCode::UNAUTHORIZED, "invalid_token", why),
    }
}

/// A redirect off the provider (clients must not follow it).
async fn moved() -> Response {
    (StatusCode::FOUND, [("location", "https://127.0.0.1:9/elsewhere")], "").into_response()
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    jwks_answer(&state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Count {
    count: u32,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Millis {
    ms: u64,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Seconds {
    seconds: u64,
}
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    session_id: Option<String>,
    user: Option<String>,
}

/// Parse an admin request body; the error says what shape to send.
fn admin_body<T: serde::de::DeserializeOwned>(body: &str, shape: &str) -> Result<T, String> {
    serde_json::from_str(body).map_err(|e| format!("{e}; send JSON {shape}"))
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

async fn admin_fail_refresh(State(state): State<Arc<AppState>>, body: String) -> Response {
    match admin_body::<Count>(&body, "{\"count\": N}") {
        Ok(c) => {
            state.fail_refreshes.store(c.count, Ordering::SeqCst);
            Json(json!({"fail_next_refreshes": c.count})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn admin_fail_jwks(State(state): State<Arc<AppState>>, body: String) -> Response {
    match admin_body::<Count>(&body, "{\"count\": N}") {
        Ok(c) => {
            state.fail_jwks.store(c.count, Ordering::SeqCst);
            Json(json!({"fail_next_jwks": c.count})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn admin_latency(State(state): State<Arc<AppState>>, body: String) -> Response {
    match admin_body::<Millis>(&body, "{\"ms\": N}") {
        Ok(m) => {
            state.latency_ms.store(m.ms, Ordering::SeqCst);
            Json(json!({"latency_ms": m.ms})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn admin_lifetime(State(state): State<Arc<AppState>>, body: String) -> Response {
    match admin_body::<Seconds>(&body, "{\"seconds\": N}") {
        Ok(s) if s.seconds >= 1 => {
            state.lifetime_ms.store(s.seconds * 1000, Ordering::SeqCst);
            Json(json!({"token_lifetime_seconds": s.seconds})).into_response()
        }
        Ok(_) => error(StatusCode::BAD_REQUEST, "invalid_request", "seconds must be at least 1"),
        Err(e) => bad_request(e),
    }
}

async fn admin_revoke(State(state): State<Arc<AppState>>, body: String) -> Response {
    let parsed = if body.trim().is_empty() {
        Ok(RevokeBody::default())
    } else {
        admin_body::<RevokeBody>(&body, "{\"session_id\": ID} or {\"user\": NAME} or {}")
    };
    match parsed {
        Ok(b) => Json(json!({"revoked": state.revoke(b.session_id.as_deref(), b.user.as_deref())})).into_response(),
        Err(e) => bad_request(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshLifetimeBody {
    idle_seconds: Option<u64>,
    absolute_seconds: Option<u64>,
}

async fn admin_refresh_lifetime(State(state): State<Arc<AppState>>, body: String) -> Response {
    match admin_body::<RefreshLifetimeBody>(&body, "{\"idle_seconds\": N, \"absolute_seconds\": M}") {
        Ok(b) if b.idle_seconds == Some(0) || b.absolute_seconds == Some(0) => {
            bad_request("lifetimes must be at least 1 second".into())
        }
        Ok(b) => {
            let l = &state.refresh_lifetimes;
            if let Some(v) = b.idle_seconds {
                l.idle_secs.store(v, Ordering::SeqCst);
            }
            if let Some(v) = b.absolute_seconds {
                l.absolute_secs.store(v, Ordering::SeqCst);
            }
            Json(json!({
                "idle_seconds": l.idle_secs.load(Ordering::SeqCst),
                "absolute_seconds": l.absolute_secs.load(Ordering::SeqCst),
            }))
            .into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn admin_reject_access_tokens(State(state): State<Arc<AppState>>) -> Response {
    let generation = state.access_generation.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({"access_generation": generation})).into_response()
}

async fn admin_rotate(State(state): State<Arc<AppState>>) -> Response {
    state.rotate_keys().await;
    Json(state.keys.read().unwrap_or_else(|e| e.into_inner()).jwks()).into_response()
}

async fn admin_sessions(State(state): State<Arc<AppState>>) -> Response {
    Json(state.sessions()).into_response()
}

async fn admin_requests(State(state): State<Arc<AppState>>) -> Response {
    Json(state.recorded()).into_response()
}

async fn admin_config(State(state): State<Arc<AppState>>) -> Response {
    ([("content-type", "text/plain; charset=utf-8")], state.config.clone()).into_response()
}

/// Every `/admin/*` request must carry `Authorization: Bearer <admin_token>`,
/// the secret the Playground made at start (printed with `--json`, shown in
/// the app's QA panel): loopback is shared by every local user.
async fn admin_guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let ok = given.len() == state.admin_token.len()
        && given
            .bytes()
            .zip(state.admin_token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer realm=\"playground-admin\"")],
            Json(json!({"error": "unauthorized", "message": "the admin API needs Authorization: Bearer <admin_token>; the Playground prints admin_token with --json, and the app shows it in its QA panel"})),
        )
            .into_response();
    }
    next.run(request).await
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see the README's API section",
    )
}

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v2/auth/login", post(login))
        .route("/api/v2/auth/refresh", post(refresh))
        .route("/api/v2/auth/logout", post(logout))
        .route("/api/v2/accounts", get(accounts))
        .route("/api/v2/moved", get(moved))
        .route_layer(middleware::from_fn_with_state(state.clone(), api_guard));
    let admin = Router::new()
        .route("/admin/sessions", get(admin_sessions))
        .route("/admin/requests", get(admin_requests))
        .route("/admin/config", get(admin_config))
        .route("/admin/fail-refresh", post(admin_fail_refresh))
        .route("/admin/fail-jwks", post(admin_fail_jwks))
        .route("/admin/latency", post(admin_latency))
        .route("/admin/token-lifetime", post(admin_lifetime))
        .route("/admin/revoke", post(admin_revoke))
        .route("/admin/rotate-keys", post(admin_rotate))
        .route("/admin/reject-access-tokens", post(admin_reject_access_tokens))
        .route("/admin/refresh-lifetime", post(admin_refresh_lifetime))
        .merge(crate::oidc::admin_router())
        .route_layer(middleware::from_fn_with_state(state.clone(), admin_guard));
    Router::new()
        .merge(api)
        .merge(admin)
        .merge(crate::oidc::router(state.clone()))
        .route("/.well-known/jwks.json", get(jwks))
        .fallback(not_found)
        .with_state(state)
}

/// Accept TLS connections until `stop` fires. Loopback is reachable by every
/// local user, and the Playground runs inside the desktop app: at most
/// [`MAX_CONNECTIONS`] are served at once (more wait in the kernel's queue),
/// a TLS handshake and each request head must arrive within
/// [`HANDSHAKE_TIMEOUT`] (so an idle keep-alive connection closes too), and
/// an accept error backs off instead of spinning.
pub fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let app = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    // Stopping also closes the open (keep-alive) connections, so a stopped
    // Playground is really gone for its clients.
    let (closing, closed) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                s = slots.clone().acquire_owned() => s,
                _ = &mut stop => {
                    let _ = closing.send(true);
                    return;
                }
            };
            let Ok(slot) = slot else { return };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = &mut stop => {
                    let _ = closing.send(true);
                    return;
                }
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            let mut closed = closed.clone();
            tokio::spawn(async move {
                let _slot = slot;
                // A failed handshake (a client that refused our pin, say)
                // ends this connection only.
                let serve = async {
                    let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await else {
                        return;
                    };
                    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
                    builder
                        .http1()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HANDSHAKE_TIMEOUT);
                    let _ = builder
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                };
                tokio::select! {
                    _ = serve => {}
                    _ = closed.wait_for(|c| *c) => {}
                }
            });
        }
    });
}
