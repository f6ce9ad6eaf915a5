//! The FinHub session API (docs/providers.md, "API"): login, refresh with
//! rotation and reuse detection, logout with its exact headers, the
//! accounts API, the key set, and the header rules every request obeys.

use crate::reply::{bearer, error};
use crate::state::{lock, AppState, Session};
use crate::{Mode, AUDIENCE, TENANT};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use uuid::Uuid;

/// Headers whose values the request log shows only as fingerprints.
pub(crate) const SECRET_HEADERS: [&str; 2] = ["authorization", "x-user-session-token"];

/// The FinHub routes (the server adds the header guard).
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v2/auth/login", post(login))
        .route("/api/v2/auth/refresh", post(refresh))
        .route("/api/v2/auth/logout", post(logout))
        .route("/api/v2/accounts", get(accounts))
        .route("/api/v2/sessions", get(list_sessions))
        .route("/api/v2/sessions/end-others", post(end_others))
        .route("/api/v2/sessions/{id}", axum::routing::delete(end_one))
        .route("/api/v2/moved", get(moved))
}

/// The key set at `/.well-known/jwks.json` (outside the header guard).
pub(crate) async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    crate::reply::jwks(&state)
}

/// Check the required headers of an API request; each problem names the
/// header and what is wrong.
pub(crate) fn check_headers(path: &str, headers: &HeaderMap) -> Vec<String> {
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

/// A session token and a refresh token for `session`, as FinHub answers
/// them; `presented` is the refresh token redeemed, if any.
fn token_response(state: &AppState, session: &mut Session, presented: Option<&str>) -> Value {
    let lifetime_ms = state.lifetime_ms.load(Ordering::SeqCst).max(1000);
    let iat = state.now();
    let exp = iat + (lifetime_ms / 1000) as i64;
    let mut claims = json!({
        "iss": state.issuer, "aud": AUDIENCE, "sub": session.info.user,
        "sid": session.info.id, "tid": TENANT, "cid": session.customer,
        "scope": "accounts:read profile", "iat": iat, "nbf": iat, "exp": exp,
        "jti": Uuid::new_v4().to_string(), "gen": state.access_generation.load(Ordering::SeqCst),
    });
    if state.padding > 0 {
        claims["pad"] = Value::String("p".repeat(state.padding));
    }
    let token = state.sign(None, &claims);
    let refresh = state.rotate_refresh(session, presented, false);
    state.remember_issued([token.clone(), refresh.clone()]);
    json!({
        "expires_in": exp - iat, "token_type": "Bearer", "scope": "accounts:read profile",
        "customerId": session.customer, "tenantId": TENANT,
        "userSessionToken": token, "refreshToken": refresh,
        "origin": session.info.origin,
    })
}

/// How long a refresh answer is given again to an attempt with the same
/// idempotency key and refresh token (its first answer was lost).
const IDEMPOTENT_SECS: i64 = 60;

/// The live session of a valid session token, or why there is none.
/// `check_exp` false accepts an expired token (logout).
fn session_of(state: &AppState, token: &str, check_exp: bool) -> Result<String, String> {
    let now = state.now();
    let claims = state.keys.read().unwrap_or_else(|e| e.into_inner()).verify(
        token,
        &state.issuer,
        AUDIENCE,
        check_exp.then_some(now),
    )?;
    let sid = claims
        .get("sid")
        .and_then(Value::as_str)
        .ok_or("the token has no sid")?
        .to_owned();
    if check_exp
        && claims.get("gen").and_then(Value::as_u64).unwrap_or(0) < state.access_generation.load(Ordering::SeqCst)
    {
        return Err("the token is no longer honoured (rejected through the admin API)".into());
    }
    let sessions = lock(&state.sessions);
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

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
    /// What the client calls itself in session lists (this project's
    /// addition; optional).
    #[serde(rename = "deviceName", default)]
    device_name: Option<String>,
    /// At the concurrent-session limit: end the user's oldest live session
    /// and sign in (this project's addition).
    #[serde(rename = "replaceOldest", default)]
    replace_oldest: bool,
    /// At the limit: end this live session of the user's (an id from the
    /// refusal's list) and sign in (this project's addition).
    #[serde(rename = "replaceSession", default)]
    replace_session: Option<String>,
}

/// A device name as a list shows it: control characters dropped, at most
/// 100 characters.
fn device_name(given: Option<&str>) -> String {
    let name: String = given
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    if name.trim().is_empty() {
        "unnamed device".into()
    } else {
        name
    }
}

/// One row of the sessions API.
fn session_row(s: &Session, current: Option<&str>) -> Value {
    json!({
        "id": s.info.id, "deviceName": s.info.device_name,
        "created": s.info.created, "lastSeen": s.info.last_seen,
        "ip": s.info.origin.ip, "city": s.info.origin.city, "country": s.info.origin.country,
        "current": current == Some(s.info.id.as_str()),
    })
}

fn live(s: &Session) -> bool {
    !s.info.revoked && !s.info.signed_out
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
        // The session to end to make room: the one named (if it is still
        // one of this user's live sessions), or the oldest.
        let named = body.replace_session.as_deref().filter(|id| {
            sessions
                .get(*id)
                .is_some_and(|s| s.info.user == user.username && self::live(s))
        });
        let replace = match (named, body.replace_oldest) {
            (Some(id), _) => Some(id.to_owned()),
            (None, true) => sessions
                .values()
                .filter(|s| s.info.user == user.username && self::live(s))
                .min_by_key(|s| s.serial)
                .map(|s| s.info.id.clone()),
            (None, false) => None,
        };
        if let (true, Some(id)) = (live >= state.session_limit, replace) {
            if let Some(s) = sessions.get_mut(&id) {
                s.info.revoked = true;
                s.info.revoke_reason = Some("ended from another device to make room for a new sign-in".into());
            }
        } else if live >= state.session_limit {
            let mut rows: Vec<&Session> = sessions
                .values()
                .filter(|s| s.info.user == user.username && self::live(s))
                .collect();
            rows.sort_by_key(|s| s.serial);
            return (
                StatusCode::CONFLICT,
                Json(json!({
                    "error": "session_limit",
                    "message": format!(
                        "{} already has {live} active sessions, the production limit is {}; end one of them, or sign in again with replaceOldest",
                        user.username, state.session_limit
                    ),
                    "sessions": rows.iter().map(|s| session_row(s, None)).collect::<Vec<_>>(),
                })),
            )
                .into_response();
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
    let mut session = Session::new(id.clone(), user, None, state.now());
    session.info.device_name = device_name(body.device_name.as_deref());
    session.info.origin = lock(&state.next_origin).take().unwrap_or_default();
    let response = token_response(&state, &mut session, None);
    sessions.insert(id, session);
    Json(response).into_response()
}

#[derive(Deserialize)]
struct RefreshBody {
    #[serde(rename = "refreshToken")]
    refresh_token: String,
}

async fn refresh(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Option<Json<RefreshBody>>) -> Response {
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
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| format!("{k} {}", body.refresh_token));
    let now = state.now();
    let response = {
        let mut answered = lock(&state.answered);
        answered.retain(|_, (at, _)| now - *at < IDEMPOTENT_SECS);
        if let Some((_, same)) = key.as_ref().and_then(|k| answered.get(k)) {
            return Json(same.clone()).into_response();
        }
        let mut sessions = lock(&state.sessions);
        match state.redeem_refresh(&mut sessions, &body.refresh_token, |_| true) {
            Ok(session) => {
                let answer = token_response(&state, session, Some(&body.refresh_token));
                if let Some(k) = key {
                    answered.insert(k, (now, answer.clone()));
                }
                Json(answer).into_response()
            }
            Err(why) => error(StatusCode::BAD_REQUEST, "invalid_grant", why),
        }
    };
    // Redeemed already: a client that gives up waiting has lost the answer.
    state.slow_refresh().await;
    response
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("x-user-session-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match session_of(&state, token, false) {
        Ok(sid) => {
            state.end_session(&sid);
            Json(json!({"status": "signed_out"})).into_response()
        }
        Err(why) => error(StatusCode::UNAUTHORIZED, "invalid_token", why),
    }
}

/// The live session of a request's bearer token, seen now.
fn seen(state: &AppState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let sid = session_of(state, bearer(headers), true)
        .map_err(|why| Box::new(error(StatusCode::UNAUTHORIZED, "invalid_token", why)))?;
    if let Some(s) = lock(&state.sessions).get_mut(&sid) {
        s.info.last_seen = state.now();
    }
    Ok(sid)
}

/// `GET /api/v2/sessions`: the caller's live sessions, oldest first.
async fn list_sessions(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let sid = match seen(&state, &headers) {
        Ok(sid) => sid,
        Err(r) => return *r,
    };
    let sessions = lock(&state.sessions);
    let Some(user) = sessions.get(&sid).map(|s| s.info.user.clone()) else {
        return error(StatusCode::UNAUTHORIZED, "invalid_token", "unknown session");
    };
    let mut rows: Vec<&Session> = sessions.values().filter(|s| s.info.user == user && live(s)).collect();
    rows.sort_by_key(|s| s.serial);
    Json(json!({"sessions": rows.iter().map(|s| session_row(s, Some(&sid))).collect::<Vec<_>>()})).into_response()
}

/// `DELETE /api/v2/sessions/{id}`: end one of the caller's sessions.
async fn end_one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let sid = match seen(&state, &headers) {
        Ok(sid) => sid,
        Err(r) => return *r,
    };
    let mut sessions = lock(&state.sessions);
    let user = sessions.get(&sid).map(|s| s.info.user.clone()).unwrap_or_default();
    match sessions.get_mut(&id) {
        Some(s) if s.info.user == user && live(s) => {
            s.info.revoked = true;
            s.info.revoke_reason = Some("ended from another device".into());
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no live session '{id}' of this user; list them with GET /api/v2/sessions"),
        ),
    }
}

/// `POST /api/v2/sessions/end-others`: end every session of the caller but
/// this one.
async fn end_others(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let sid = match seen(&state, &headers) {
        Ok(sid) => sid,
        Err(r) => return *r,
    };
    let mut sessions = lock(&state.sessions);
    let user = sessions.get(&sid).map(|s| s.info.user.clone()).unwrap_or_default();
    let mut ended = 0;
    for s in sessions.values_mut() {
        if s.info.user == user && s.info.id != sid && live(s) {
            s.info.revoked = true;
            s.info.revoke_reason = Some("ended from another device".into());
            ended += 1;
        }
    }
    Json(json!({"ended": ended})).into_response()
}

async fn accounts(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match seen(&state, &headers) {
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
        Err(r) => *r,
    }
}

/// A redirect off the provider (clients must not follow it).
async fn moved() -> Response {
    (StatusCode::FOUND, [("location", "https://127.0.0.1:9/elsewhere")], "").into_response()
}
