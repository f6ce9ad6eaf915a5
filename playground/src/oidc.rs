//! The Playground's OpenID Connect side, issuer `{base_url}/oidc`:
//! discovery, authorize (a small sign-in page for the demo users, SSO by
//! cookie, `prompt=none`), token (authorization_code with PKCE S256 only,
//! refresh_token with rotation and reuse detection), JWKS, userinfo, RFC 7009
//! revocation, RP-initiated end-session, and Transmit's
//! `POST /cis/v1/auth/logout`.
//!
//! Two clients are registered: the public [`CLIENT_ID`] (PKCE, no secret: what a
//! desktop app should be) and the confidential [`CONFIDENTIAL_CLIENT_ID`] with
//! [`CONFIDENTIAL_CLIENT_SECRET`] (`client_secret_basic` or
//! `client_secret_post`), to test profiles that set `client_secret`. Their
//! redirect URIs are the
//! loopback ones of RFC 8252 section 7.3 (`http://127.0.0.1:{any port}/callback`).

use crate::server::{lock, now, oidc_guard, AppState, Session};
use crate::DemoUser;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Form, Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// The client id of the desktop app at the Playground.
pub const CLIENT_ID: &str = "session-manager-desktop";
/// A confidential client, for profiles with a `client_secret`.
pub const CONFIDENTIAL_CLIENT_ID: &str = "session-manager-confidential";
/// Its secret (a Playground value, not a secret).
pub const CONFIDENTIAL_CLIENT_SECRET: &str = "playground-client-secret";
const CLIENTS: [&str; 2] = [CLIENT_ID, CONFIDENTIAL_CLIENT_ID];
/// The SSO cookie of the Playground's sign-in page.
const SSO_COOKIE: &str = "pg_sso";
/// How long an authorization code lives.
const CODE_LIFETIME: i64 = 60;

/// What an OIDC session keeps besides the FinHub fields.
pub(crate) struct OidcSession {
    client_id: &'static str,
    scope: String,
    sso: String,
    auth_time: i64,
}

struct Transaction {
    params: AuthorizeParams,
    created: i64,
}

/// The most pending sign-ins, codes, browser sessions and opaque tokens the
/// Playground keeps; expired ones go first, then any.
const MAX_ENTRIES: usize = 10_000;
/// How long a sign-in page (a transaction) stays usable.
const TRANSACTION_LIFETIME: i64 = 600;

/// Make room in `map` for one more entry: drop what `expired` says, then,
/// if still full, any entries.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, expired: impl Fn(&V) -> bool) {
    map.retain(|_, v| !expired(v));
    let excess = (map.len() + 1).saturating_sub(MAX_ENTRIES);
    let doomed: Vec<K> = map.keys().take(excess).cloned().collect();
    for k in doomed {
        map.remove(&k);
    }
}

#[derive(Clone)]
struct AuthorizeParams {
    client_id: &'static str,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    challenge: String,
    scope: String,
}

struct Code {
    user: String,
    params: AuthorizeParams,
    sso: String,
    auth_time: i64,
    expires: i64,
    /// The session created when the code was redeemed (reuse revokes it).
    redeemed: Option<String>,
}

/// The OIDC side's state.
pub(crate) struct OidcState {
    pub(crate) issuer: String,
    transactions: Mutex<HashMap<String, Transaction>>,
    codes: Mutex<HashMap<String, Code>>,
    /// SSO cookie value → user.
    sso: Mutex<HashMap<String, String>>,
    /// Opaque access tokens → session id, expiry.
    opaque: Mutex<HashMap<String, (String, i64)>>,
    /// Issue opaque access tokens instead of JWTs.
    pub(crate) opaque_access_tokens: AtomicBool,
    /// Answer `prompt=none` (else it is not advertised and refused).
    pub(crate) prompt_none: AtomicBool,
}

impl OidcState {
    pub(crate) fn new(base_url: &str) -> Self {
        Self {
            issuer: format!("{base_url}/oidc"),
            transactions: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            sso: Mutex::new(HashMap::new()),
            opaque: Mutex::new(HashMap::new()),
            opaque_access_tokens: AtomicBool::new(false),
            prompt_none: AtomicBool::new(true),
        }
    }
}

fn random() -> String {
    B64URL.encode(rand::random::<[u8; 32]>())
}

fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (
        status,
        [("cache-control", "no-store")],
        Json(json!({"error": error, "error_description": description.into()})),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
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
             <body><h1>{t}</h1>{body}</body></html>",
            t = escape(title)
        )),
    )
        .into_response()
}

/// A loopback redirect URI of RFC 8252 section 7.3 with path `/callback`.
fn valid_redirect(uri: &str) -> bool {
    let Some(rest) = uri
        .strip_prefix("http://127.0.0.1:")
        .or_else(|| uri.strip_prefix("http://[::1]:"))
    else {
        return false;
    };
    let Some((port, path)) = rest.split_once('/') else {
        return false;
    };
    port.parse::<u16>().is_ok_and(|p| p > 0) && path == "callback"
}

/// Redirect to the client with `params` (and always `state` and `iss`).
fn back_to_client(redirect_uri: &str, state: Option<&str>, issuer: &str, params: &[(&str, &str)]) -> Response {
    let mut url = match reqwest_free_url(redirect_uri) {
        Some(u) => u,
        None => {
            return page(
                StatusCode::BAD_REQUEST,
                "Bad redirect",
                "<p>The redirect URI is not valid.</p>",
            )
        }
    };
    for (k, v) in params {
        url.push_str(&format!(
            "{}{}={}",
            if url.contains('?') { "&" } else { "?" },
            k,
            urlencode(v)
        ));
    }
    if let Some(s) = state {
        url.push_str(&format!("&state={}", urlencode(s)));
    }
    url.push_str(&format!("&iss={}", urlencode(issuer)));
    (
        StatusCode::FOUND,
        [("location", url), ("cache-control", "no-store".into())],
    )
        .into_response()
}

fn reqwest_free_url(uri: &str) -> Option<String> {
    valid_redirect(uri).then(|| uri.to_owned())
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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

async fn discovery(State(state): State<Arc<AppState>>) -> Response {
    let i = &state.oidc.issuer;
    let prompts: Vec<&str> = if state.oidc.prompt_none.load(Ordering::SeqCst) {
        vec!["none", "login"]
    } else {
        vec!["login"]
    };
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "revocation_endpoint": format!("{i}/revoke"),
        "end_session_endpoint": format!("{i}/end-session"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "claims_supported": ["sub", "name", "email", "preferred_username"],
        "prompt_values_supported": prompts,
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

fn sign_in_form(tx: &str, error: Option<&str>, users: &[DemoUser]) -> Response {
    let error = error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let demo: String = users
        .iter()
        .map(|u| {
            format!(
                "<li><code>{}</code> / <code>{}</code></li>",
                escape(&u.username),
                escape(&u.password)
            )
        })
        .collect();
    page(
        StatusCode::OK,
        "Sign in to the Playground",
        &format!(
            "<p>Session Manager asks you to sign in.</p>{error}\
             <form method=\"post\" action=\"authorize\">\
             <input type=\"hidden\" name=\"tx\" value=\"{tx}\">\
             <label for=\"username\">Username</label><input id=\"username\" name=\"username\" autocomplete=\"username\">\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">\
             <button name=\"action\" value=\"sign_in\">Sign in</button>\
             <button name=\"action\" value=\"cancel\">Cancel</button></form>\
             <p>Demo users:</p><ul>{demo}</ul>",
            tx = escape(tx)
        ),
    )
}

/// Issue a code for `user` and send the browser back to the client.
fn issue_code(state: &AppState, user: &str, sso: &str, auth_time: i64, params: AuthorizeParams) -> Response {
    let code = random();
    let (redirect, st) = (params.redirect_uri.clone(), params.state.clone());
    let mut codes = lock(&state.oidc.codes);
    // A redeemed code is kept until it expires, so its reuse is noticed.
    make_room(&mut codes, |c| now() >= c.expires);
    codes.insert(
        code.clone(),
        Code {
            user: user.to_owned(),
            params,
            sso: sso.to_owned(),
            auth_time,
            expires: now() + CODE_LIFETIME,
            redeemed: None,
        },
    );
    drop(codes);
    back_to_client(&redirect, st.as_deref(), &state.oidc.issuer, &[("code", &code)])
}

async fn authorize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str);
    // Until client and redirect URI are known good, errors stay here
    // (RFC 6749 section 4.1.2.1: never redirect to an unchecked URI).
    let Some(client_id) = CLIENTS.into_iter().find(|c| get("client_id") == Some(c)) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            &format!("<p>client_id must be <code>{CLIENT_ID}</code> or <code>{CONFIDENTIAL_CLIENT_ID}</code>.</p>"),
        );
    };
    let Some(redirect_uri) = get("redirect_uri").filter(|r| valid_redirect(r)) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Redirect URI not registered",
            "<p>Only http://127.0.0.1:PORT/callback is registered.</p>",
        );
    };
    let st = get("state");
    let issuer = &state.oidc.issuer;
    let fail = |error: &str, description: &str| {
        back_to_client(
            redirect_uri,
            st,
            issuer,
            &[("error", error), ("error_description", description)],
        )
    };
    if get("response_type") != Some("code") {
        return fail("unsupported_response_type", "only response_type=code is supported");
    }
    let scope = get("scope").unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return fail("invalid_scope", "the openid scope is required");
    }
    let Some(challenge) = get("code_challenge").filter(|c| c.len() >= 43) else {
        return fail("invalid_request", "PKCE is required: send code_challenge");
    };
    if get("code_challenge_method") != Some("S256") {
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    let params = AuthorizeParams {
        client_id,
        redirect_uri: redirect_uri.to_owned(),
        state: st.map(str::to_owned),
        nonce: get("nonce").map(str::to_owned),
        challenge: challenge.to_owned(),
        scope: scope.to_owned(),
    };
    let sso = cookie(&headers, SSO_COOKIE);
    let signed_in = sso.as_ref().and_then(|c| lock(&state.oidc.sso).get(c).cloned());
    match get("prompt") {
        Some("none") if !state.oidc.prompt_none.load(Ordering::SeqCst) => {
            return fail("invalid_request", "prompt=none is turned off at this Playground")
        }
        Some("none") => {
            return match (signed_in, sso) {
                (Some(user), Some(sso)) => issue_code(&state, &user, &sso, now(), params),
                _ => fail(
                    "login_required",
                    "nobody is signed in to the Playground in this browser",
                ),
            }
        }
        Some("login") => {}
        _ => {
            if let (Some(user), Some(sso)) = (signed_in, sso) {
                return issue_code(&state, &user, &sso, now(), params);
            }
        }
    }
    let tx = random();
    let mut transactions = lock(&state.oidc.transactions);
    make_room(&mut transactions, |t| now() - t.created > TRANSACTION_LIFETIME);
    transactions.insert(tx.clone(), Transaction { params, created: now() });
    drop(transactions);
    sign_in_form(&tx, None, &state.users)
}

async fn authorize_post(State(state): State<Arc<AppState>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let tx_id = get("tx").to_owned();
    let Some(params) = lock(&state.oidc.transactions).get(&tx_id).map(|t| t.params.clone()) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "<p>Start the sign-in again from the app.</p>",
        );
    };
    if get("action") == "cancel" {
        lock(&state.oidc.transactions).remove(&tx_id);
        return back_to_client(
            &params.redirect_uri,
            params.state.as_deref(),
            &state.oidc.issuer,
            &[
                ("error", "access_denied"),
                ("error_description", "the person cancelled the sign-in"),
            ],
        );
    }
    let user = state
        .users
        .iter()
        .find(|u| u.username == get("username") && u.password == get("password"))
        .map(|u| u.username.clone());
    let Some(user) = user else {
        return sign_in_form(&tx_id, Some("Unknown user or wrong password."), &state.users);
    };
    lock(&state.oidc.transactions).remove(&tx_id);
    let sso = random();
    let mut browsers = lock(&state.oidc.sso);
    make_room(&mut browsers, |_| false);
    browsers.insert(sso.clone(), user.clone());
    drop(browsers);
    let mut response = issue_code(&state, &user, &sso, now(), params);
    if let Ok(v) = format!("{SSO_COOKIE}={sso}; Path=/oidc; Secure; HttpOnly; SameSite=Lax").parse() {
        response.headers_mut().append("set-cookie", v);
    }
    response
}

impl AppState {
    /// Access token, ID token and (with `offline_access`) a rotated refresh
    /// token for `session`, as a token response.
    fn oidc_tokens(&self, session: &mut Session, nonce: Option<&str>) -> Response {
        let Some(o) = &session.oidc else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "not an OpenID Connect session",
            );
        };
        let (scope, auth_time, client) = (o.scope.clone(), o.auth_time, o.client_id);
        let user = user_named(self, &session.info.user).cloned();
        let lifetime = (self.lifetime_ms.load(Ordering::SeqCst) / 1000).max(1) as i64;
        let iat = now();
        let issuer = &self.oidc.issuer;
        let sub = session.info.user.clone();
        let signer = |claims: &Value| {
            self.keys
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .signer(self.alg)
                .sign(claims)
        };
        let access = if self.oidc.opaque_access_tokens.load(Ordering::SeqCst) {
            let t = format!("at_{}", random());
            let mut opaque = lock(&self.oidc.opaque);
            make_room(&mut opaque, |(_, exp)| now() >= *exp);
            opaque.insert(t.clone(), (session.info.id.clone(), iat + lifetime));
            t
        } else {
            signer(&json!({
                "iss": issuer, "aud": client, "sub": sub, "client_id": client, "scope": scope,
                "sid": session.info.id, "iat": iat, "exp": iat + lifetime, "jti": Uuid::new_v4().to_string(),
            }))
        };
        let mut id_claims = json!({
            "iss": issuer, "aud": client, "azp": client, "sub": sub, "sid": session.info.id,
            "iat": iat, "exp": iat + lifetime, "auth_time": auth_time,
        });
        if let Some(n) = nonce {
            id_claims["nonce"] = json!(n);
        }
        if let Some(u) = &user {
            id_claims["name"] = json!(u.name);
            id_claims["email"] = json!(u.email);
        }
        let id_token = signer(&id_claims);
        let mut body = json!({
            "access_token": access, "token_type": "Bearer", "expires_in": lifetime,
            "id_token": id_token, "scope": scope,
        });
        let mut issued = vec![access.clone(), id_token.clone()];
        if scope.split(' ').any(|s| s == "offline_access") {
            let refresh = self.rotate_refresh(session);
            issued.push(refresh.clone());
            body["refresh_token"] = json!(refresh);
        }
        lock(&self.issued).extend(issued);
        (
            StatusCode::OK,
            [("cache-control", "no-store"), ("pragma", "no-cache")],
            Json(body),
        )
            .into_response()
    }

    /// The live session of an access token.
    fn oidc_session_of(&self, token: &str) -> Result<String, String> {
        let sid = if let Some((sid, exp)) = lock(&self.oidc.opaque).get(token).cloned() {
            if now() >= exp {
                return Err("the access token expired".into());
            }
            sid
        } else {
            let claims = self.verify_for_any_client(token, true)?;
            claims
                .get("sid")
                .and_then(Value::as_str)
                .ok_or("the token has no sid")?
                .to_owned()
        };
        let sessions = lock(&self.sessions);
        let s = sessions.get(&sid).ok_or("unknown session")?;
        if s.info.revoked || s.info.signed_out {
            return Err("the session has ended".into());
        }
        Ok(sid)
    }

    /// Verify a token this side issued to any of its clients.
    fn verify_for_any_client(&self, token: &str, check_exp: bool) -> Result<serde_json::Map<String, Value>, String> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let mut last = String::new();
        for client in CLIENTS {
            match keys.verify(token, &self.oidc.issuer, client, check_exp) {
                Ok(claims) => return Ok(claims),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Mark a session signed out.
    fn end_oidc_session(&self, sid: &str) {
        if let Some(s) = lock(&self.sessions).get_mut(sid) {
            s.info.signed_out = true;
        }
    }
}

/// The client a token or revocation request authenticates as (RFC 6749
/// section 2.3.1): HTTP Basic with form-encoded id and secret, or
/// `client_id` (and `client_secret`) in the body.
fn authenticate_client(headers: &HeaderMap, f: &HashMap<String, String>) -> Option<&'static str> {
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
        (Some(CLIENT_ID), None) => Some(CLIENT_ID),
        (Some(CONFIDENTIAL_CLIENT_ID), Some(CONFIDENTIAL_CLIENT_SECRET)) => Some(CONFIDENTIAL_CLIENT_ID),
        _ => None,
    }
}

fn invalid_client() -> Response {
    oauth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "client authentication failed: unknown client_id or wrong client_secret",
    )
}

async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str);
    let Some(client) = authenticate_client(&headers, &f) else {
        return invalid_client();
    };
    match get("grant_type") {
        Some("authorization_code") => code_grant(&state, &f, client),
        Some("refresh_token") => refresh_grant(&state, get("refresh_token").unwrap_or_default(), client),
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("'{other}' is not supported"),
        ),
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is missing"),
    }
}

fn code_grant(state: &AppState, f: &HashMap<String, String>, client: &'static str) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let mut codes = lock(&state.oidc.codes);
    let Some(code) = codes.get_mut(get("code")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown authorization code");
    };
    if let Some(sid) = &code.redeemed {
        // RFC 6749 section 4.1.2: a code used twice revokes what it gave.
        if let Some(s) = lock(&state.sessions).get_mut(sid) {
            s.info.revoked = true;
            s.info.revoke_reason = Some("authorization code reuse detected".into());
        }
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the authorization code was already used",
        );
    }
    if now() >= code.expires {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the authorization code expired",
        );
    }
    if client != code.params.client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code was issued to another client",
        );
    }
    if get("redirect_uri") != code.params.redirect_uri {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        );
    }
    let computed = B64URL.encode(Sha256::digest(get("code_verifier").as_bytes()));
    if get("code_verifier").len() < 43 || computed != code.params.challenge {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed: code_verifier does not match code_challenge",
        );
    }
    let Some(user) = user_named(state, &code.user).cloned() else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown user");
    };
    let id = Uuid::new_v4().to_string();
    code.redeemed = Some(id.clone());
    let nonce = code.params.nonce.clone();
    let oidc = OidcSession {
        client_id: client,
        scope: code.params.scope.clone(),
        sso: code.sso.clone(),
        auth_time: code.auth_time,
    };
    let mut session = Session::new(id.clone(), &user, Some(oidc));
    drop(codes);
    let mut sessions = lock(&state.sessions);
    if !state.room_for_a_session(&mut sessions) {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the Playground holds as many live sessions as it keeps",
        );
    }
    let response = state.oidc_tokens(&mut session, nonce.as_deref());
    sessions.insert(id, session);
    response
}

fn refresh_grant(state: &AppState, refresh: &str, client: &'static str) -> Response {
    if let Some(message) = state.injected_refresh_failure() {
        return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", message);
    }
    let mut sessions = lock(&state.sessions);
    let own = |s: &Session| s.oidc.as_ref().is_some_and(|o| o.client_id == client);
    match state.redeem_refresh(&mut sessions, refresh, own) {
        Ok(session) => state.oidc_tokens(session, None),
        Err(why) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why),
    }
}

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}

async fn userinfo(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match state.oidc_session_of(bearer(&headers)) {
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

async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if authenticate_client(&headers, &f).is_none() {
        return invalid_client();
    }
    let token = f.get("token").map(String::as_str).unwrap_or_default();
    let by_refresh = lock(&state.refresh_index).get(token).map(|e| e.session.clone());
    if let Some(sid) = by_refresh.or_else(|| state.oidc_session_of(token).ok()) {
        state.end_oidc_session(&sid);
    }
    // RFC 7009 section 2.2: 200 also for tokens that are unknown or spent.
    StatusCode::OK.into_response()
}

async fn end_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    sign_out_browser(&state, &headers, &q)
}

/// RP-Initiated Logout 1.0 section 2: the OP accepts the request as a POST
/// too, which keeps the ID token out of the URL.
async fn end_session_post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    sign_out_browser(&state, &headers, &f)
}

/// End the sessions of the `id_token_hint` and of the browser's cookie.
fn sign_out_browser(state: &AppState, headers: &HeaderMap, q: &HashMap<String, String>) -> Response {
    if let Some(hint) = q.get("id_token_hint") {
        let claims = state.verify_for_any_client(hint, false);
        if let Some(sid) = claims
            .ok()
            .and_then(|c| c.get("sid").and_then(Value::as_str).map(str::to_owned))
        {
            state.end_oidc_session(&sid);
        }
    }
    if let Some(sso) = cookie(headers, SSO_COOKIE) {
        lock(&state.oidc.sso).remove(&sso);
        let ended: Vec<String> = lock(&state.sessions)
            .iter()
            .filter(|(_, s)| s.oidc.as_ref().is_some_and(|o| o.sso == sso))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            state.end_oidc_session(&id);
        }
    }
    let mut response = page(
        StatusCode::OK,
        "You are signed out",
        "<p>You are signed out of the Playground. You can close this tab.</p>",
    );
    if let Ok(v) = format!("{SSO_COOKIE}=; Path=/oidc; Secure; HttpOnly; SameSite=Lax; Max-Age=0").parse() {
        response.headers_mut().append("set-cookie", v);
    }
    response
}

/// Transmit's `POST /cis/v1/auth/logout` with `Authorization: Bearer`.
async fn transmit_logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match state.oidc_session_of(bearer(&headers)) {
        Ok(sid) => {
            state.end_oidc_session(&sid);
            Json(json!({"message": "the session was logged out"})).into_response()
        }
        Err(why) => (StatusCode::UNAUTHORIZED, Json(json!({"message": why}))).into_response(),
    }
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    crate::server::jwks_answer(&state)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcConfig {
    opaque_access_tokens: Option<bool>,
    prompt_none: Option<bool>,
}

/// `POST /admin/oidc {"opaque_access_tokens": bool, "prompt_none": bool}`.
async fn admin_oidc(State(state): State<Arc<AppState>>, body: String) -> Response {
    match serde_json::from_str::<OidcConfig>(&body) {
        Ok(c) => {
            if let Some(v) = c.opaque_access_tokens {
                state.oidc.opaque_access_tokens.store(v, Ordering::SeqCst);
            }
            if let Some(v) = c.prompt_none {
                state.oidc.prompt_none.store(v, Ordering::SeqCst);
            }
            Json(json!({
                "opaque_access_tokens": state.oidc.opaque_access_tokens.load(Ordering::SeqCst),
                "prompt_none": state.oidc.prompt_none.load(Ordering::SeqCst),
            }))
            .into_response()
        }
        Err(e) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{e}; send JSON {{\"opaque_access_tokens\": bool, \"prompt_none\": bool}}"),
        ),
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/oidc/.well-known/openid-configuration", get(discovery))
        .route("/oidc/authorize", get(authorize).post(authorize_post))
        .route("/oidc/token", post(token))
        .route("/oidc/jwks", get(jwks))
        .route("/oidc/userinfo", get(userinfo))
        .route("/oidc/revoke", post(revoke))
        .route("/oidc/end-session", get(end_session).post(end_session_post))
        .route("/cis/v1/auth/logout", post(transmit_logout))
        .route_layer(middleware::from_fn_with_state(state, oidc_guard))
}

/// The OpenID Connect side's admin routes (behind the admin guard).
pub(crate) fn admin_router() -> Router<Arc<AppState>> {
    Router::new().route("/admin/oidc", post(admin_oidc))
}
