//! What the app does with a session once it has one: userinfo, RFC 7009
//! revocation, RP-initiated logout in the browser, and Transmit's logout.

use super::token::{session_of, verify_for_any_client};
use super::{authenticate_client, cookie, invalid_client, page, user_named, SSO_COOKIE};
use crate::reply::{bearer, oauth_error};
use crate::state::oidc::Switches;
use crate::state::{lock, AppState};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// `GET /oidc/userinfo`.
pub(super) async fn userinfo(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session_of(&state, bearer(&headers)) {
        Ok(sid) => {
            let name = lock(&state.sessions)
                .get(&sid)
                .map(|s| s.info.user.clone())
                .unwrap_or_default();
            let Some(u) = user_named(&state, &name) else {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "unknown user");
            };
            Json(json!({"sub": u.username, "name": u.name, "email": u.email, "preferred_username": u.username}))
                .into_response()
        }
        Err(why) => (
            StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                format!("Bearer error=\"invalid_token\", error_description=\"{why}\""),
            )],
        )
            .into_response(),
    }
}

/// `POST /oidc/revoke` (RFC 7009): ends the session of a refresh or access
/// token.
pub(super) async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let Some(client) = authenticate_client(&state, &headers, &f) else {
        return invalid_client();
    };
    if client == super::CLIENT_ID && Switches::get(&state.oidc.switches.revocation_refuses_public_clients) {
        // Some providers revoke only for confidential clients.
        return invalid_client();
    }
    let token = f.get("token").map(String::as_str).unwrap_or_default();
    let by_refresh = lock(&state.refresh_index).get(token).map(|e| e.session.clone());
    if let Some(sid) = by_refresh.or_else(|| session_of(&state, token).ok()) {
        state.end_session(&sid);
    }
    // RFC 7009 section 2.2: 200 also for tokens that are unknown or spent.
    StatusCode::OK.into_response()
}

/// `GET /oidc/end-session`.
pub(super) async fn end_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    sign_out_browser(&state, &headers, &q)
}

/// RP-Initiated Logout 1.0 section 2: the OP accepts the request as a POST
/// too, which keeps the ID token out of the URL.
pub(super) async fn end_session_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if Switches::get(&state.oidc.switches.end_session_get_only) {
        // As at a certified provider that reads RP-Initiated Logout as GET only.
        return StatusCode::NOT_FOUND.into_response();
    }
    sign_out_browser(&state, &headers, &f)
}

/// End the sessions of the `id_token_hint` and of the browser's cookie.
fn sign_out_browser(state: &AppState, headers: &HeaderMap, q: &HashMap<String, String>) -> Response {
    // A provider without a revocation endpoint keeps offline sessions past
    // the browser's sign-out (Core 11: offline access outlives the
    // provider's session), as Keycloak does; online ones end with it.
    let keep_offline = Switches::get(&state.oidc.switches.no_revocation_endpoint);
    let ends = |s: &crate::state::Session| {
        !keep_offline
            || !s
                .oidc
                .as_ref()
                .is_some_and(|o| o.scope.split(' ').any(|x| x == "offline_access"))
    };
    let mut ended: Vec<String> = Vec::new();
    if let Some(hint) = q.get("id_token_hint") {
        let claims = verify_for_any_client(state, hint, None);
        if let Some(sid) = claims
            .ok()
            .and_then(|c| c.get("sid").and_then(Value::as_str).map(str::to_owned))
        {
            ended.push(sid);
        }
    }
    if let Some(sso) = cookie(headers, SSO_COOKIE) {
        lock(&state.oidc.sso).remove(&sso);
        ended.extend(
            lock(&state.sessions)
                .iter()
                .filter(|(_, s)| s.oidc.as_ref().is_some_and(|o| !o.sso.is_empty() && o.sso == sso))
                .map(|(id, _)| id.clone()),
        );
    }
    let ended: Vec<String> = {
        let sessions = lock(&state.sessions);
        ended
            .into_iter()
            .filter(|id| sessions.get(id).is_some_and(&ends))
            .collect()
    };
    for id in ended {
        state.end_session(&id);
    }
    let mut response = page(
        StatusCode::OK,
        "signed-out",
        "You are signed out",
        "<p>You are signed out of the Playground. You can close this tab.</p>",
    );
    if let Ok(v) = format!("{SSO_COOKIE}=; Path=/oidc; Secure; HttpOnly; SameSite=Lax; Max-Age=0").parse() {
        response.headers_mut().append("set-cookie", v);
    }
    response
}

/// Transmit's `POST /cis/v1/auth/logout` with `Authorization: Bearer`.
pub(super) async fn transmit_logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session_of(&state, bearer(&headers)) {
        Ok(sid) => {
            state.end_session(&sid);
            Json(json!({"message": "the session was logged out"})).into_response()
        }
        Err(why) => (StatusCode::UNAUTHORIZED, Json(json!({"message": why}))).into_response(),
    }
}
