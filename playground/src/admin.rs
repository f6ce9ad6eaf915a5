//! The admin API (docs/qa-guide.md): fault injection and inspection,
//! every call behind the bearer secret the Playground made at start.

use crate::reply::{error, oauth_error};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The admin routes (the server adds [`guard`]).
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/sessions", get(sessions))
        .route("/admin/requests", get(requests))
        .route("/admin/config", get(config))
        .route("/admin/fail-refresh", post(fail_refresh))
        .route("/admin/fail-jwks", post(fail_jwks))
        .route("/admin/slow-refresh", post(slow_refresh))
        .route("/admin/latency", post(latency))
        .route("/admin/token-lifetime", post(token_lifetime))
        .route("/admin/refresh-lifetime", post(refresh_lifetime))
        .route("/admin/clock-offset", post(clock_offset))
        .route("/admin/revoke", post(revoke))
        .route("/admin/rotate-keys", post(rotate_keys))
        .route("/admin/reject-access-tokens", post(reject_access_tokens))
        .route("/admin/oidc", get(oidc_switches).post(set_oidc_switches))
        .route("/admin/primary", get(primary).post(set_primary))
        .route("/admin/next-login", post(next_login))
}

/// Every `/admin/*` request must carry `Authorization: Bearer <admin_token>`,
/// the secret the Playground made at start (printed with `--json`, shown in
/// the app's QA panel): loopback is shared by every local user.
pub(crate) async fn guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let given = crate::reply::bearer(request.headers());
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Offset {
    seconds: i64,
}
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    session_id: Option<String>,
    user: Option<String>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrimaryBody {
    up: bool,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    keep_old: bool,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshLifetimeBody {
    idle_seconds: Option<u64>,
    absolute_seconds: Option<u64>,
    reuse_grace_seconds: Option<u64>,
}
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcSwitchesBody {
    opaque_access_tokens: Option<bool>,
    prompt_none: Option<bool>,
    lenient_offline_access: Option<bool>,
    id_token_on_refresh: Option<bool>,
    refresh_expires_in: Option<bool>,
    opaque_refresh_tokens: Option<bool>,
    ignore_max_age: Option<bool>,
    access_token_aud_scopes: Option<bool>,
    no_revocation_endpoint: Option<bool>,
    end_session_get_only: Option<bool>,
    revocation_refuses_public_clients: Option<bool>,
    unknown_refresh_invalid_request: Option<bool>,
    no_rotation: Option<bool>,
    online_refresh_tokens: Option<bool>,
    registration: Option<bool>,
    device_interval_seconds: Option<u64>,
    registered_redirect_port: Option<u16>,
}

/// Parse an admin request body; the error says what shape to send. An
/// empty body is `default` when there is one.
fn body<T: serde::de::DeserializeOwned>(body: &str, shape: &str, default: Option<T>) -> Result<T, String> {
    match default {
        Some(d) if body.trim().is_empty() => Ok(d),
        _ => serde_json::from_str(body).map_err(|e| format!("{e}; send JSON {shape}")),
    }
}

fn bad_request(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request", message)
}

async fn fail_refresh(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<Count>(&text, "{\"count\": N}", None) {
        Ok(c) => {
            state.fail_refreshes.store(c.count, Ordering::SeqCst);
            Json(json!({"fail_next_refreshes": c.count})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn fail_jwks(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<Count>(&text, "{\"count\": N}", None) {
        Ok(c) => {
            state.fail_jwks.store(c.count, Ordering::SeqCst);
            Json(json!({"fail_next_jwks": c.count})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn slow_refresh(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<Millis>(&text, "{\"ms\": N}", None) {
        Ok(m) => {
            state.slow_next_refresh_ms.store(m.ms, Ordering::SeqCst);
            Json(json!({"slow_next_refresh_ms": m.ms})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn latency(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<Millis>(&text, "{\"ms\": N}", None) {
        Ok(m) => {
            state.latency_ms.store(m.ms, Ordering::SeqCst);
            Json(json!({"latency_ms": m.ms})).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn token_lifetime(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<Seconds>(&text, "{\"seconds\": N}", None) {
        Ok(s) if s.seconds >= 1 => {
            state.lifetime_ms.store(s.seconds * 1000, Ordering::SeqCst);
            Json(json!({"token_lifetime_seconds": s.seconds})).into_response()
        }
        Ok(_) => bad_request("seconds must be at least 1".into()),
        Err(e) => bad_request(e),
    }
}

async fn refresh_lifetime(State(state): State<Arc<AppState>>, text: String) -> Response {
    let shape = "{\"idle_seconds\": N, \"absolute_seconds\": M, \"reuse_grace_seconds\": G}";
    match body::<RefreshLifetimeBody>(&text, shape, None) {
        Ok(b) if b.idle_seconds == Some(0) || b.absolute_seconds == Some(0) => {
            bad_request("lifetimes must be at least 1 second".into())
        }
        Ok(b) => {
            let l = &state.refresh_lifetimes;
            for (value, slot) in [
                (b.idle_seconds, &l.idle_secs),
                (b.absolute_seconds, &l.absolute_secs),
                (b.reuse_grace_seconds, &l.reuse_grace_secs),
            ] {
                if let Some(v) = value {
                    slot.store(v, Ordering::SeqCst);
                }
            }
            Json(json!({
                "idle_seconds": l.idle_secs.load(Ordering::SeqCst),
                "absolute_seconds": l.absolute_secs.load(Ordering::SeqCst),
                "reuse_grace_seconds": l.reuse_grace_secs.load(Ordering::SeqCst),
            }))
            .into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn clock_offset(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<Offset>(&text, "{\"seconds\": N} (negative: behind)", None) {
        Ok(o) if o.seconds.unsigned_abs() <= 366 * 24 * 3600 => {
            state.clock_offset_secs.store(o.seconds, Ordering::SeqCst);
            Json(json!({"clock_offset_seconds": o.seconds})).into_response()
        }
        Ok(_) => bad_request("the offset may be at most a year either way".into()),
        Err(e) => bad_request(e),
    }
}

async fn revoke(State(state): State<Arc<AppState>>, text: String) -> Response {
    let shape = "{\"session_id\": ID} or {\"user\": NAME} or {}";
    match body::<RevokeBody>(&text, shape, Some(RevokeBody::default())) {
        Ok(b) => Json(json!({"revoked": state.revoke(b.session_id.as_deref(), b.user.as_deref())})).into_response(),
        Err(e) => bad_request(e),
    }
}

async fn rotate_keys(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<RotateBody>(
        &text,
        "{\"keep_old\": bool} (or no body: keep)",
        Some(RotateBody { keep_old: true }),
    ) {
        Ok(b) => {
            state.rotate_keys(b.keep_old).await;
            Json(state.keys.read().unwrap_or_else(|e| e.into_inner()).jwks()).into_response()
        }
        Err(e) => bad_request(e),
    }
}

async fn reject_access_tokens(State(state): State<Arc<AppState>>) -> Response {
    let generation = state.access_generation.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({"access_generation": generation})).into_response()
}

async fn sessions(State(state): State<Arc<AppState>>) -> Response {
    Json(state.sessions()).into_response()
}

async fn requests(State(state): State<Arc<AppState>>) -> Response {
    Json(state.recorded()).into_response()
}

async fn config(State(state): State<Arc<AppState>>) -> Response {
    ([("content-type", "text/plain; charset=utf-8")], state.config.clone()).into_response()
}

async fn oidc_switches(State(state): State<Arc<AppState>>) -> Response {
    Json(state.oidc.switches.view()).into_response()
}

/// `POST /admin/oidc` with any of the switches; answers all of them.
async fn set_oidc_switches(State(state): State<Arc<AppState>>, text: String) -> Response {
    let b = match serde_json::from_str::<OidcSwitchesBody>(&text) {
        Ok(b) => b,
        Err(e) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!(
                    "{e}; send JSON with any of opaque_access_tokens, prompt_none, lenient_offline_access, \
                     id_token_on_refresh, refresh_expires_in, opaque_refresh_tokens, ignore_max_age, access_token_aud_scopes, no_revocation_endpoint, \
                     end_session_get_only, revocation_refuses_public_clients, unknown_refresh_invalid_request, no_rotation, online_refresh_tokens, registration (bool), \
                     device_interval_seconds (N) and registered_redirect_port (a port; 0 = any)"
                ),
            )
        }
    };
    let s = &state.oidc.switches;
    for (value, flag) in [
        (b.opaque_access_tokens, &s.opaque_access_tokens),
        (b.prompt_none, &s.prompt_none),
        (b.lenient_offline_access, &s.lenient_offline_access),
        (b.id_token_on_refresh, &s.id_token_on_refresh),
        (b.refresh_expires_in, &s.refresh_expires_in),
        (b.opaque_refresh_tokens, &s.opaque_refresh_tokens),
        (b.ignore_max_age, &s.ignore_max_age),
        (b.access_token_aud_scopes, &s.access_token_aud_scopes),
        (b.no_revocation_endpoint, &s.no_revocation_endpoint),
        (b.end_session_get_only, &s.end_session_get_only),
        (
            b.revocation_refuses_public_clients,
            &s.revocation_refuses_public_clients,
        ),
        (b.unknown_refresh_invalid_request, &s.unknown_refresh_invalid_request),
        (b.no_rotation, &s.no_rotation),
        (b.online_refresh_tokens, &s.online_refresh_tokens),
        (b.registration, &s.registration),
    ] {
        if let Some(v) = value {
            flag.store(v, Ordering::SeqCst);
        }
    }
    if let Some(v) = b.device_interval_seconds {
        s.device_interval_secs.store(v, Ordering::SeqCst);
    }
    if let Some(v) = b.registered_redirect_port {
        s.registered_redirect_port.store(u64::from(v), Ordering::SeqCst);
    }
    Json(s.view()).into_response()
}

async fn primary(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({"primary_up": *state.primary_serving.borrow()})).into_response()
}

/// Take the primary endpoint down or up (with `--backup`, the backup keeps
/// serving; call this through the backup's URL to bring the primary back).
async fn set_primary(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<PrimaryBody>(&text, "{\"up\": bool}", None) {
        Ok(b) => {
            let done = crate::state::set_primary(&state, b.up).await;
            let up = *state.primary_serving.borrow();
            match done {
                true => Json(json!({"primary_up": up})).into_response(),
                false => error(
                    StatusCode::CONFLICT,
                    "primary_unchanged",
                    format!(
                        "the primary could not be brought {} (its port may be taken); it is {}",
                        if b.up { "up" } else { "down" },
                        if up { "up" } else { "down" }
                    ),
                ),
            }
        }
        Err(e) => bad_request(e),
    }
}

/// The IP and location the next FinHub login reports (then back to
/// `127.0.0.1`, Berlin), to provoke the new-location detector.
async fn next_login(State(state): State<Arc<AppState>>, text: String) -> Response {
    match body::<crate::state::Origin>(
        &text,
        "{\"ip\": \"203.0.113.7\", \"city\": \"Lisbon\", \"country\": \"PT\"}",
        None,
    ) {
        Ok(origin) => {
            *crate::state::lock(&state.next_origin) = Some(origin.clone());
            Json(json!({"next_login": origin})).into_response()
        }
        Err(e) => bad_request(e),
    }
}
