//! The Playground's OpenID Connect side, issuer `{base_url}/oidc`, as strict
//! as a certified provider by default (docs/providers.md and docs/qa-guide.md, part of
//! the Playground section):
//! - discovery, and authorize: a sign-in page for the demo users, SSO by
//!   cookie, `prompt=none|login|consent`, `max_age` ([`authorize`]);
//! - token: `authorization_code` with PKCE S256 only, `refresh_token` with
//!   rotation and reuse detection, and the device grant ([`token`]);
//! - device authorization (RFC 8628) with a verification page ([`device`]);
//! - JWKS, userinfo, RFC 7009 revocation, RP-initiated end-session and
//!   Transmit's `POST /cis/v1/auth/logout` ([`session`]).
//!
//! Strict means: `offline_access` is granted only with `prompt=consent`
//! (Core 11) or on the device page where the person sees it, refresh
//! answers carry no ID token (Core 12.2 allows it), access tokens are
//! RFC 9068 JWTs (`typ: at+jwt`). `/admin/oidc` switches each to the lenient
//! behaviour real providers also have.
//!
//! Two clients are registered: the public [`CLIENT_ID`] (PKCE, no secret:
//! what a desktop app should be) and the confidential
//! [`CONFIDENTIAL_CLIENT_ID`] with [`CONFIDENTIAL_CLIENT_SECRET`]
//! (`client_secret_basic` or `client_secret_post`). Their redirect URIs are
//! the loopback ones of RFC 8252 section 7.3 (`http://127.0.0.1:{any
//! port}/callback`).

mod authorize;
mod device;
mod register;
mod session;
mod token;

use crate::reply::oauth_error;
use crate::state::oidc::Switches;
use crate::state::AppState;
use crate::DemoUser;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The client id of the desktop app at the Playground.
pub const CLIENT_ID: &str = "session-manager-desktop";
/// A confidential client, for profiles with a `client_secret`.
pub const CONFIDENTIAL_CLIENT_ID: &str = "session-manager-confidential";
/// Its secret (a Playground value, not a secret).
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "playground-client-secret";
const CLIENTS: [&str; 2] = [CLIENT_ID, CONFIDENTIAL_CLIENT_ID];
/// The SSO cookie of the Playground's sign-in page.
const SSO_COOKIE: &str = "pg_sso";

/// The OpenID Connect routes (the server adds the recording guard).
pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/oidc/.well-known/openid-configuration", get(discovery))
        .route("/oidc/authorize", get(authorize::start).post(authorize::form))
        .route("/oidc/token", post(token::endpoint))
        .route("/oidc/device_authorization", post(device::authorization))
        .route("/oidc/device", get(device::page_get).post(device::decide))
        .route("/oidc/jwks", get(jwks))
        .route("/oidc/userinfo", get(session::userinfo))
        .route("/oidc/revoke", post(session::revoke))
        .route(
            "/oidc/end-session",
            get(session::end_session).post(session::end_session_post),
        )
        .route("/cis/v1/auth/logout", post(session::transmit_logout))
        .route("/oidc/register", post(register::register))
        .route("/oidc/register/{id}", get(register::read).delete(register::delete))
}

async fn discovery(State(state): State<Arc<AppState>>) -> Response {
    let i = &state.oidc.issuer;
    let prompts: Vec<&str> = if Switches::get(&state.oidc.switches.prompt_none) {
        vec!["none", "login", "consent"]
    } else {
        vec!["login", "consent"]
    };
    let mut doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "device_authorization_endpoint": format!("{i}/device_authorization"),
        "jwks_uri": format!("{i}/jwks"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "revocation_endpoint": format!("{i}/revoke"),
        "end_session_endpoint": format!("{i}/end-session"),
        "response_types_supported": ["code"],
        "grant_types_supported": [
            "authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "name", "email", "preferred_username", "auth_time"],
        "prompt_values_supported": prompts,
        "authorization_response_iss_parameter_supported": true,
    });
    if Switches::get(&state.oidc.switches.registration) {
        doc["registration_endpoint"] = json!(format!("{i}/register"));
    }
    if Switches::get(&state.oidc.switches.no_revocation_endpoint) {
        doc.as_object_mut().map(|o| o.remove("revocation_endpoint"));
    }
    Json(doc).into_response()
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    crate::reply::jwks(&state)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// One of the Playground's HTML pages. `kind` names it for scripts
/// (`data-page` on the body: `sign-in`, `consent`, `device`, …).
fn page(status: StatusCode, kind: &str, title: &str, body: &str) -> Response {
    (
        status,
        [
            ("cache-control", "no-store"),
            ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
        ],
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Playground: {t}</title>\
             <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:28em;margin:3em auto;padding:0 1em}}\
             label,input,button{{display:block;margin:.3em 0}}input{{width:100%;padding:.4em}}.err{{color:#b00020}}</style></head>\
             <body data-page=\"{kind}\"><h1>{t}</h1>{body}</body></html>",
            t = escape(title)
        )),
    )
        .into_response()
}

/// The demo users, as the pages list them.
fn demo_list(users: &[DemoUser]) -> String {
    users
        .iter()
        .map(|u| {
            format!(
                "<li><code>{}</code> / <code>{}</code></li>",
                escape(&u.username),
                escape(&u.password)
            )
        })
        .collect()
}

/// The scopes, as the consent and device pages list them.
fn scope_list(scope: &str) -> String {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let what = match s {
                "openid" => "who you are",
                "profile" => "your name",
                "email" => "your email address",
                "offline_access" => "stay signed in: renew your session without asking you (a refresh token)",
                _ => "",
            };
            format!("<li><code>{}</code> {}</li>", escape(s), escape(what))
        })
        .collect()
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn user_named<'a>(state: &'a AppState, name: &str) -> Option<&'a DemoUser> {
    state.users.iter().find(|u| u.username == name)
}

/// The demo user with this password, if any.
fn check_password<'a>(state: &'a AppState, username: &str, password: &str) -> Option<&'a DemoUser> {
    state
        .users
        .iter()
        .find(|u| u.username == username && u.password == password)
}

/// The client a token, device or revocation request authenticates as (RFC
/// 6749 section 2.3.1): HTTP Basic with form-encoded id and secret, or
/// `client_id` (and `client_secret`) in the body.
fn authenticate_client(state: &AppState, headers: &HeaderMap, f: &HashMap<String, String>) -> Option<String> {
    let decode = |v: &str| {
        reqwest::Url::parse(&format!("http://x/?v={v}"))
            .ok()
            .and_then(|u| u.query_pairs().next().map(|(_, v)| v.into_owned()))
    };
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match &basic {
        Some(pair) => {
            let (id, secret) = pair.split_once(':').unwrap_or((pair.as_str(), ""));
            (decode(id), decode(secret))
        }
        None => (f.get("client_id").cloned(), f.get("client_secret").cloned()),
    };
    match (id.as_deref(), secret.as_deref()) {
        (Some(CONFIDENTIAL_CLIENT_ID), Some(CONFIDENTIAL_CLIENT_SECRET)) => Some(CONFIDENTIAL_CLIENT_ID.to_owned()),
        (Some(CONFIDENTIAL_CLIENT_ID), _) => None,
        // Public clients: the app's, and those registered (RFC 7591).
        (Some(id), None) => known_client(state, id),
        _ => None,
    }
}

pub(crate) use register::listed as registered_clients;

/// The client named `id`, if there is one: built in, or registered
/// through `/oidc/register` (RFC 7591).
pub(crate) fn known_client(state: &AppState, id: &str) -> Option<String> {
    let known = CLIENTS.contains(&id) || crate::state::lock(&state.oidc.registered).contains_key(id);
    known.then(|| id.to_owned())
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed: unknown client_id or wrong client_secret",
    )
}

/// `scope` without `offline_access`, unless `granted`.
fn grant_offline(scope: &str, granted: bool) -> String {
    scope
        .split(' ')
        .filter(|s| !s.is_empty() && (granted || *s != "offline_access"))
        .collect::<Vec<_>>()
        .join(" ")
}
