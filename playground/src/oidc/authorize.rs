//! The authorization endpoint (Core 3.1.2): the request's checks, the
//! sign-in page, the consent page, SSO by cookie, `prompt` and `max_age`,
//! and the redirect back to the app with a code or an error.

use super::{
    check_password, cookie, demo_list, escape, page, scope_list, CLIENT_ID, CONFIDENTIAL_CLIENT_ID, SSO_COOKIE,
};
use crate::state::oidc::{make_room, random, AuthorizeParams, Code, Switches, Transaction};
use crate::state::{lock, AppState};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use std::collections::HashMap;
use std::sync::Arc;

/// How long an authorization code lives.
const CODE_LIFETIME: i64 = 60;
/// How long a sign-in page (a transaction) stays usable.
const TRANSACTION_LIFETIME: i64 = 600;

/// A loopback redirect URI of RFC 8252 section 7.3 with path `/callback`.
/// A loopback redirect URI to `/callback`; on `registered` only, unless it
/// is 0 (any port, RFC 8252 section 7.3).
fn valid_redirect(uri: &str, registered: u16) -> bool {
    let Some(rest) = uri
        .strip_prefix("http://127.0.0.1:")
        .or_else(|| uri.strip_prefix("http://[::1]:"))
    else {
        return false;
    };
    let Some((port, path)) = rest.split_once('/') else {
        return false;
    };
    port.parse::<u16>()
        .is_ok_and(|p| p > 0 && (registered == 0 || p == registered))
        && path == "callback"
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

/// Redirect to the client with `params` (and always `state` and `iss`).
fn back_to_client(redirect_uri: &str, state: Option<&str>, issuer: &str, params: &[(&str, &str)]) -> Response {
    // Checked against the registered port when the request came in.
    if !valid_redirect(redirect_uri, 0) {
        return page(
            StatusCode::BAD_REQUEST,
            "error",
            "Bad redirect",
            "<p>The redirect URI is not valid.</p>",
        );
    }
    let mut url = redirect_uri.to_owned();
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

fn fail(state: &AppState, params: &AuthorizeParams, error: &str, description: &str) -> Response {
    back_to_client(
        &params.redirect_uri,
        params.state.as_deref(),
        &state.oidc.issuer,
        &[("error", error), ("error_description", description)],
    )
}

fn sign_in_form(state: &AppState, tx: &str, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "sign-in",
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
            tx = escape(tx),
            demo = demo_list(&state.users),
        ),
    )
}

fn consent_form(tx: &str, user: &str, scope: &str) -> Response {
    page(
        StatusCode::OK,
        "consent",
        "Allow Session Manager?",
        &format!(
            "<p>Signed in as <code>{user}</code>. Session Manager asks for:</p><ul>{scopes}</ul>\
             <form method=\"post\" action=\"authorize\">\
             <input type=\"hidden\" name=\"tx\" value=\"{tx}\">\
             <button name=\"action\" value=\"allow\">Allow</button>\
             <button name=\"action\" value=\"deny\">Deny</button></form>",
            user = escape(user),
            scopes = scope_list(scope),
            tx = escape(tx),
        ),
    )
}

/// Issue a code for `user` and send the browser back to the client.
fn issue_code(
    state: &AppState,
    user: &str,
    sso: &str,
    auth_time: i64,
    consented: bool,
    params: AuthorizeParams,
) -> Response {
    let code = random();
    let (redirect, st) = (params.redirect_uri.clone(), params.state.clone());
    let now = state.now();
    let mut codes = lock(&state.oidc.codes);
    // A redeemed code is kept until it expires, so its reuse is noticed.
    make_room(&mut codes, |c| now >= c.expires);
    codes.insert(
        code.clone(),
        Code {
            user: user.to_owned(),
            params,
            sso: sso.to_owned(),
            auth_time,
            expires: now + CODE_LIFETIME,
            consented,
            redeemed: None,
        },
    );
    drop(codes);
    back_to_client(&redirect, st.as_deref(), &state.oidc.issuer, &[("code", &code)])
}

/// A new page transaction: the sign-in form, or the consent page for
/// someone already signed in.
fn new_transaction(state: &AppState, params: AuthorizeParams, signed_in: Option<(String, i64, String)>) -> Response {
    let tx = random();
    let scope = params.scope.clone();
    let user = signed_in.as_ref().map(|(u, _, _)| u.clone());
    let now = state.now();
    let mut transactions = lock(&state.oidc.transactions);
    make_room(&mut transactions, |t| now - t.created > TRANSACTION_LIFETIME);
    transactions.insert(
        tx.clone(),
        Transaction {
            params,
            created: now,
            signed_in,
        },
    );
    drop(transactions);
    match user {
        Some(user) => consent_form(&tx, &user, &scope),
        None => sign_in_form(state, &tx, None),
    }
}

/// `GET /oidc/authorize`.
pub(super) async fn start(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str);
    // Until client and redirect URI are known good, errors stay here
    // (RFC 6749 section 4.1.2.1: never redirect to an unchecked URI).
    let Some(client_id) = get("client_id").and_then(|id| super::known_client(&state, id)) else {
        return page(
            StatusCode::BAD_REQUEST,
            "error",
            "Unknown client",
            &format!("<p>client_id must be <code>{CLIENT_ID}</code> or <code>{CONFIDENTIAL_CLIENT_ID}</code>.</p>"),
        );
    };
    let registered = state
        .oidc
        .switches
        .registered_redirect_port
        .load(std::sync::atomic::Ordering::SeqCst) as u16;
    // A registered client's redirect is one it registered, whatever the
    // loopback port (RFC 8252 section 7.3).
    let without_port = |u: &str| {
        reqwest::Url::parse(u).ok().map(|mut u| {
            let _ = u.set_port(None);
            u.to_string()
        })
    };
    let its_own = |r: &str| match crate::state::lock(&state.oidc.registered).get(&client_id) {
        Some(c) => c.redirect_uris.iter().any(|u| without_port(u) == without_port(r)),
        None => true,
    };
    let Some(redirect_uri) = get("redirect_uri").filter(|r| valid_redirect(r, registered) && its_own(r)) else {
        let port = match registered {
            0 => "PORT".to_owned(),
            p => p.to_string(),
        };
        return page(
            StatusCode::BAD_REQUEST,
            "error",
            "Redirect URI not registered",
            &format!("<p>Only http://127.0.0.1:{port}/callback is registered.</p>"),
        );
    };
    let mut params = AuthorizeParams {
        client_id,
        redirect_uri: redirect_uri.to_owned(),
        state: get("state").map(str::to_owned),
        nonce: get("nonce").map(str::to_owned),
        challenge: String::new(),
        scope: get("scope").unwrap_or_default().to_owned(),
        prompt: get("prompt")
            .unwrap_or_default()
            .split(' ')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        max_age: None,
        resource: get("resource").map(str::to_owned),
    };
    if get("response_type") != Some("code") {
        return fail(
            &state,
            &params,
            "unsupported_response_type",
            "only response_type=code is supported",
        );
    }
    if !params.scope.split(' ').any(|s| s == "openid") {
        return fail(&state, &params, "invalid_scope", "the openid scope is required");
    }
    let Some(challenge) = get("code_challenge").filter(|c| c.len() >= 43) else {
        return fail(
            &state,
            &params,
            "invalid_request",
            "PKCE is required: send code_challenge",
        );
    };
    if get("code_challenge_method") != Some("S256") {
        return fail(&state, &params, "invalid_request", "code_challenge_method must be S256");
    }
    params.challenge = challenge.to_owned();
    if let Some(m) = get("max_age") {
        match m.parse::<i64>() {
            Ok(v) if v >= 0 => params.max_age = Some(v),
            _ => {
                return fail(
                    &state,
                    &params,
                    "invalid_request",
                    "max_age must be a number of seconds",
                )
            }
        }
    }
    if params.prompts("none") && params.prompt.len() > 1 {
        return fail(
            &state,
            &params,
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }
    let sso = cookie(&headers, SSO_COOKIE);
    let now = state.now();
    // The browser's session, if it has one young enough for max_age.
    let ignore_max_age = Switches::get(&state.oidc.switches.ignore_max_age);
    let signed_in = sso
        .as_ref()
        .and_then(|c| lock(&state.oidc.sso).get(c).cloned())
        .filter(|(_, auth_time)| ignore_max_age || params.max_age.is_none_or(|m| now - auth_time <= m));
    if params.prompts("none") {
        if !Switches::get(&state.oidc.switches.prompt_none) {
            return fail(
                &state,
                &params,
                "invalid_request",
                "prompt=none is turned off at this Playground",
            );
        }
        return match (signed_in, sso) {
            // No consent page can be shown: offline access only if lenient.
            (Some((user, auth_time)), Some(sso)) => issue_code(&state, &user, &sso, auth_time, false, params),
            _ => fail(
                &state,
                &params,
                "login_required",
                "nobody is signed in to the Playground in this browser (or not recently enough for max_age)",
            ),
        };
    }
    match (signed_in, sso) {
        (Some((user, auth_time)), Some(sso)) if !params.prompts("login") => {
            if params.prompts("consent") {
                new_transaction(&state, params, Some((user, auth_time, sso)))
            } else {
                issue_code(&state, &user, &sso, auth_time, false, params)
            }
        }
        _ => new_transaction(&state, params, None),
    }
}

/// `POST /oidc/authorize`: the sign-in form (sign in, cancel) and the
/// consent page (allow, deny).
pub(super) async fn form(State(state): State<Arc<AppState>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let tx_id = get("tx").to_owned();
    let Some((params, signed_in)) = lock(&state.oidc.transactions)
        .get(&tx_id)
        .map(|t| (t.params.clone(), t.signed_in.clone()))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "error",
            "Sign-in expired",
            "<p>Start the sign-in again from the app.</p>",
        );
    };
    let done = || lock(&state.oidc.transactions).remove(&tx_id);
    match (get("action"), signed_in) {
        ("cancel", _) | ("deny", _) => {
            done();
            let why = if get("action") == "deny" {
                "the person did not allow the access"
            } else {
                "the person cancelled the sign-in"
            };
            fail(&state, &params, "access_denied", why)
        }
        ("allow", Some((user, auth_time, sso))) => {
            done();
            issue_code(&state, &user, &sso, auth_time, true, params)
        }
        ("sign_in", _) => {
            let Some(user) = check_password(&state, get("username"), get("password")).map(|u| u.username.clone())
            else {
                return sign_in_form(&state, &tx_id, Some("Unknown user or wrong password."));
            };
            let sso = random();
            let auth_time = state.now();
            let mut browsers = lock(&state.oidc.sso);
            make_room(&mut browsers, |_| false);
            browsers.insert(sso.clone(), (user.clone(), auth_time));
            drop(browsers);
            let mut response = if params.prompts("consent") {
                let scope = params.scope.clone();
                if let Some(t) = lock(&state.oidc.transactions).get_mut(&tx_id) {
                    t.signed_in = Some((user.clone(), auth_time, sso.clone()));
                }
                consent_form(&tx_id, &user, &scope)
            } else {
                done();
                issue_code(&state, &user, &sso, auth_time, false, params)
            };
            if let Ok(v) = format!("{SSO_COOKIE}={sso}; Path=/oidc; Secure; HttpOnly; SameSite=Lax").parse() {
                response.headers_mut().append("set-cookie", v);
            }
            response
        }
        _ => page(
            StatusCode::BAD_REQUEST,
            "error",
            "Unknown action",
            "<p>Use the page's buttons.</p>",
        ),
    }
}
