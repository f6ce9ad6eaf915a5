//! Dynamic Client Registration (RFC 7591) and its management (RFC 7592),
//! behind the `registration` switch: a public native client (loopback
//! redirect URIs, PKCE, `token_endpoint_auth_method` `none`) registers at
//! `POST /oidc/register` and gets a client id, a registration access token
//! and its `registration_client_uri`, where it reads (`GET`) or deletes
//! (`DELETE`) itself with that token.

use crate::reply::oauth_error;
use crate::state::oidc::random;
use crate::state::oidc::{Registered, Switches, MAX_ENTRIES};
use crate::state::{fingerprint, lock, AppState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Deserialize)]
pub(super) struct Metadata {
    #[serde(default)]
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
}

fn not_offered() -> Response {
    oauth_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "this provider offers no dynamic client registration",
    )
}

/// A loopback redirect a native app listens on (RFC 8252 section 7.3).
fn loopback(uri: &str) -> bool {
    reqwest::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]")) && u.fragment().is_none()
    })
}

/// `POST /oidc/register`.
pub(super) async fn register(State(state): State<Arc<AppState>>, body: Option<Json<Metadata>>) -> Response {
    if !Switches::get(&state.oidc.switches.registration) {
        return not_offered();
    }
    let Some(Json(m)) = body else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the body must be JSON client metadata (RFC 7591 section 2)",
        );
    };
    if m.redirect_uris.is_empty() || !m.redirect_uris.iter().all(|u| loopback(u)) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "a native client's redirect_uris must be http://127.0.0.1 or http://[::1] loopback addresses (RFC 8252 section 7.3)",
        );
    }
    if m.token_endpoint_auth_method.as_deref() != Some("none") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "only public clients register here: token_endpoint_auth_method must be \"none\" (PKCE protects the code)",
        );
    }
    let grants = m
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    let mut registered = lock(&state.oidc.registered);
    if registered.len() >= MAX_ENTRIES {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the Playground holds as many registered clients as it keeps; delete some",
        );
    }
    let client_id = format!("dyn-{}", &random()[..22]);
    let token = random();
    let now = state.now();
    let client_name = m.client_name.unwrap_or_else(|| "unnamed client".into());
    registered.insert(
        client_id.clone(),
        Registered {
            client_name: client_name.clone(),
            redirect_uris: m.redirect_uris.clone(),
            token_fingerprint: fingerprint(&token),
            issued_at: now,
        },
    );
    (
        StatusCode::CREATED,
        Json(json!({
            "client_id": client_id,
            "client_id_issued_at": now,
            "client_secret_expires_at": 0,
            "registration_access_token": token,
            "registration_client_uri": format!("{}/register/{client_id}", state.oidc.issuer),
            "redirect_uris": m.redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": grants,
            "client_name": client_name,
        })),
    )
        .into_response()
}

/// The registered client `id` when the request carries its registration
/// access token; otherwise the answer to send (401, the same whether the
/// client is unknown or the token wrong).
fn authorized(state: &AppState, headers: &HeaderMap, id: &str) -> Result<Registered, Box<Response>> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    lock(&state.oidc.registered)
        .get(id)
        .filter(|r| !token.is_empty() && r.token_fingerprint == fingerprint(token))
        .cloned()
        .ok_or_else(|| {
            Box::new(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "no such registration, or not its registration access token",
            ))
        })
}

/// `GET /oidc/register/{id}` (RFC 7592 section 2.1).
pub(super) async fn read(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match authorized(&state, &headers, &id) {
        Ok(r) => Json(json!({
            "client_id": id,
            "client_name": r.client_name,
            "redirect_uris": r.redirect_uris,
            "token_endpoint_auth_method": "none",
            "client_id_issued_at": r.issued_at,
        }))
        .into_response(),
        Err(answer) => *answer,
    }
}

/// `DELETE /oidc/register/{id}` (RFC 7592 section 2.3): the client is gone,
/// and with it every sign-in through it.
pub(super) async fn delete(State(state): State<Arc<AppState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(answer) = authorized(&state, &headers, &id) {
        return *answer;
    }
    lock(&state.oidc.registered).remove(&id);
    StatusCode::NO_CONTENT.into_response()
}

/// What the admin API lists.
pub(crate) fn listed(state: &AppState) -> Value {
    let registered = lock(&state.oidc.registered);
    Value::Array(
        registered
            .iter()
            .map(|(id, r)| json!({"client_id": id, "client_name": r.client_name, "redirect_uris": r.redirect_uris}))
            .collect(),
    )
}
