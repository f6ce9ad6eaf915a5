//! The token endpoint (RFC 6749 section 3.2): the authorization code grant
//! with PKCE, the refresh grant, and the device grant (RFC 8628 section
//! 3.4); and what it issues: an RFC 9068 access token (or an opaque one),
//! an ID token (at sign-in; on refresh only when switched on), and a
//! refresh token when offline access was granted.

use super::{authenticate_client, grant_offline, invalid_client, user_named, CLIENTS};
use crate::reply::oauth_error;
use crate::state::oidc::{make_room, random, DeviceStatus, OidcSession, Switches};
use crate::state::{lock, AppState, Session};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use uuid::Uuid;

/// The device grant's `grant_type` (RFC 8628 section 3.4).
pub(super) const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /oidc/token`.
pub(super) async fn endpoint(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str);
    let Some(client) = authenticate_client(&state, &headers, &f) else {
        return invalid_client();
    };
    match get("grant_type") {
        Some("authorization_code") => code_grant(&state, &f, &client),
        Some("refresh_token") => refresh_grant(&state, get("refresh_token").unwrap_or_default(), &client).await,
        Some(DEVICE_GRANT) => device_grant(&state, get("device_code").unwrap_or_default(), &client),
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("'{other}' is not supported"),
        ),
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "grant_type is missing"),
    }
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

fn code_grant(state: &AppState, f: &HashMap<String, String>, client: &str) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let mut codes = lock(&state.oidc.codes);
    let Some(code) = codes.get_mut(get("code")) else {
        return invalid_grant("unknown authorization code");
    };
    if let Some(sid) = &code.redeemed {
        // RFC 6749 section 4.1.2: a code used twice revokes what it gave.
        if let Some(s) = lock(&state.sessions).get_mut(sid) {
            s.info.revoked = true;
            s.info.revoke_reason = Some("authorization code reuse detected".into());
        }
        return invalid_grant("the authorization code was already used");
    }
    if state.now() >= code.expires {
        return invalid_grant("the authorization code expired");
    }
    if client != code.params.client_id {
        return invalid_grant("the code was issued to another client");
    }
    if get("redirect_uri") != code.params.redirect_uri {
        return invalid_grant("redirect_uri differs from the authorization request's");
    }
    let computed = B64URL.encode(Sha256::digest(get("code_verifier").as_bytes()));
    if get("code_verifier").len() < 43 || computed != code.params.challenge {
        return invalid_grant("PKCE verification failed: code_verifier does not match code_challenge");
    }
    let id = Uuid::new_v4().to_string();
    code.redeemed = Some(id.clone());
    // Core 11: offline access needs the person's consent (or a lenient
    // provider); otherwise the request is served without it.
    let offline = code.consented || Switches::get(&state.oidc.switches.lenient_offline_access);
    let oidc = OidcSession {
        client_id: client.to_owned(),
        scope: grant_offline(&code.params.scope, offline),
        sso: code.sso.clone(),
        auth_time: code.auth_time,
        resource: code.params.resource.clone(),
    };
    let (user, nonce) = (code.user.clone(), code.params.nonce.clone());
    drop(codes);
    open_session(state, id, &user, oidc, nonce.as_deref())
}

/// A new session for `user` and its first tokens.
fn open_session(state: &AppState, id: String, user: &str, oidc: OidcSession, nonce: Option<&str>) -> Response {
    let Some(user) = user_named(state, user).cloned() else {
        return invalid_grant("unknown user");
    };
    let mut session = Session::new(id.clone(), &user, Some(oidc), state.now());
    let mut sessions = lock(&state.sessions);
    if !state.room_for_a_session(&mut sessions) {
        return oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the Playground holds as many live sessions as it keeps",
        );
    }
    let response = tokens(state, &mut session, Issue::SignIn { nonce });
    sessions.insert(id, session);
    response
}

async fn refresh_grant(state: &AppState, refresh: &str, client: &str) -> Response {
    if let Some(message) = state.injected_refresh_failure() {
        return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", message);
    }
    let response = {
        let mut sessions = lock(&state.sessions);
        let own = |s: &Session| s.oidc.as_ref().is_some_and(|o| o.client_id == client);
        match state.redeem_refresh(&mut sessions, refresh, own) {
            Ok(session) => tokens(state, session, Issue::Refresh { presented: refresh }),
            // A certified provider's reading: a token it does not know is
            // a malformed request, not a refused grant.
            Err(why)
                if why.starts_with("unknown refresh token")
                    && Switches::get(&state.oidc.switches.unknown_refresh_invalid_request) =>
            {
                oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid refresh token")
            }
            Err(why) => invalid_grant(&why),
        }
    };
    // Redeemed already: a client that gives up waiting has lost the answer.
    state.slow_refresh().await;
    response
}

fn device_grant(state: &AppState, device_code: &str, client: &str) -> Response {
    if let Some(message) = state.injected_device_poll_failure() {
        return oauth_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", message);
    }
    let now = state.now();
    let mut devices = lock(&state.oidc.devices);
    let Some(d) = devices.get_mut(device_code) else {
        return invalid_grant("unknown device_code");
    };
    if d.client_id != client {
        return invalid_grant("the device code was issued to another client");
    }
    if now >= d.expires {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "expired_token",
            "the device code expired; start again",
        );
    }
    match d.status.clone() {
        DeviceStatus::Redeemed => invalid_grant("the device code was already used"),
        DeviceStatus::Denied => oauth_error(
            StatusCode::BAD_REQUEST,
            "access_denied",
            "the person denied the request on the verification page",
        ),
        DeviceStatus::Pending => {
            let too_soon = d.last_poll.is_some_and(|t| now - t < d.interval);
            d.last_poll = Some(now);
            if too_soon {
                // RFC 8628 section 3.5: the interval grows by 5 s.
                d.interval += 5;
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "slow_down",
                    format!("poll at most every {} s", d.interval),
                );
            }
            oauth_error(
                StatusCode::BAD_REQUEST,
                "authorization_pending",
                "the person has not finished on the verification page yet",
            )
        }
        DeviceStatus::Approved { user, auth_time } => {
            d.status = DeviceStatus::Redeemed;
            // The verification page listed every scope, offline access
            // included, and the person allowed them.
            let oidc = OidcSession {
                client_id: client.to_owned(),
                scope: d.scope.clone(),
                sso: String::new(),
                auth_time,
                resource: None,
            };
            drop(devices);
            open_session(state, Uuid::new_v4().to_string(), &user, oidc, None)
        }
    }
}

/// What the token endpoint is answering.
enum Issue<'a> {
    /// A sign-in (code or device grant), with the request's nonce.
    SignIn { nonce: Option<&'a str> },
    /// A refresh, with the refresh token presented.
    Refresh { presented: &'a str },
}

/// The left half of the SHA-256 of `token`, base64url (`at_hash`, Core
/// 3.1.3.6, for RS256 and ES256).
fn left_hash(token: &str) -> String {
    B64URL.encode(&Sha256::digest(token.as_bytes())[..16])
}

/// The token response for `session`.
fn tokens(state: &AppState, session: &mut Session, issue: Issue) -> Response {
    let Some(o) = &session.oidc else {
        return invalid_grant("not an OpenID Connect session");
    };
    let switches = &state.oidc.switches;
    let (scope, auth_time, client, resource) = (o.scope.clone(), o.auth_time, o.client_id.clone(), o.resource.clone());
    let user = user_named(state, &session.info.user).cloned();
    let lifetime = (state.lifetime_ms.load(Ordering::SeqCst) / 1000).max(1) as i64;
    let iat = state.now();
    let issuer = &state.oidc.issuer;
    let sub = session.info.user.clone();
    let access = if Switches::get(&switches.opaque_access_tokens) {
        let t = format!("at_{}", random());
        let mut opaque = lock(&state.oidc.opaque);
        make_room(&mut opaque, |(_, exp)| iat >= *exp);
        opaque.insert(t.clone(), (session.info.id.clone(), iat + lifetime));
        t
    } else {
        // RFC 9068: typ at+jwt, the resource (or the client) as audience.
        let aud = match &resource {
            _ if Switches::get(&switches.access_token_aud_scopes) => json!(scope.split(' ').collect::<Vec<_>>()),
            Some(r) => json!([r, client]),
            None => json!(client),
        };
        state.sign(
            Some("at+jwt"),
            &json!({
                "iss": issuer, "aud": aud, "sub": sub, "client_id": client, "scope": scope,
                "sid": session.info.id, "iat": iat, "exp": iat + lifetime, "auth_time": auth_time,
                "jti": Uuid::new_v4().to_string(),
            }),
        )
    };
    let mut body = json!({
        "access_token": access, "token_type": "Bearer", "expires_in": lifetime, "scope": scope,
    });
    let mut issued = vec![access.clone()];
    let (with_id_token, nonce, presented) = match issue {
        Issue::SignIn { nonce } => (true, nonce, None),
        Issue::Refresh { presented } => (Switches::get(&switches.id_token_on_refresh), None, Some(presented)),
    };
    if with_id_token {
        let mut id_claims = json!({
            "iss": issuer, "aud": client, "azp": client, "sub": sub, "sid": session.info.id,
            "iat": iat, "exp": iat + lifetime, "auth_time": auth_time, "at_hash": left_hash(&access),
        });
        if let Some(n) = nonce {
            id_claims["nonce"] = json!(n);
        }
        // A device sign-in sent no max_age, and Core 2 requires auth_time
        // only then: a strict provider may leave it out (one session of a
        // browser has an SSO cookie; a device's has none).
        if session.oidc.as_ref().is_some_and(|o| o.sso.is_empty()) {
            if let Some(claims) = id_claims.as_object_mut() {
                claims.remove("auth_time");
            }
        }
        if let Some(u) = &user {
            id_claims["name"] = json!(u.name);
            id_claims["email"] = json!(u.email);
        }
        let id_token = state.sign(None, &id_claims);
        body["id_token"] = json!(id_token);
        issued.push(id_token);
    }
    // No rotation: a refresh answer carries no refresh token (RFC 6749
    // section 6: the client keeps the one it has, which stays valid).
    let rotate = presented.is_none() || !Switches::get(&switches.no_rotation);
    let offline = scope.split(' ').any(|s| s == "offline_access");
    if rotate && (offline || Switches::get(&switches.online_refresh_tokens)) {
        let opaque = Switches::get(&switches.opaque_refresh_tokens);
        let refresh = state.rotate_refresh(session, presented, opaque);
        if Switches::get(&switches.refresh_expires_in) {
            body["refresh_expires_in"] = json!(state.refresh_expiry(session) - iat);
        }
        body["refresh_token"] = json!(refresh);
        issued.push(refresh);
    }
    state.remember_issued(issued);
    (
        StatusCode::OK,
        [("cache-control", "no-store"), ("pragma", "no-cache")],
        Json(body),
    )
        .into_response()
}

/// The live session of an access token.
pub(super) fn session_of(state: &AppState, token: &str) -> Result<String, String> {
    let now = state.now();
    let sid = if let Some((sid, exp)) = lock(&state.oidc.opaque).get(token).cloned() {
        if now > exp {
            return Err("the access token expired".into());
        }
        sid
    } else {
        let claims = verify_for_any_client(state, token, Some(now))?;
        claims
            .get("sid")
            .and_then(Value::as_str)
            .ok_or("the token has no sid")?
            .to_owned()
    };
    let sessions = lock(&state.sessions);
    let s = sessions.get(&sid).ok_or("unknown session")?;
    if s.info.revoked || s.info.signed_out {
        return Err("the session has ended".into());
    }
    Ok(sid)
}

/// Verify a token this side issued to any of its clients; with `now`, an
/// expired one is refused.
pub(super) fn verify_for_any_client(
    state: &AppState,
    token: &str,
    now: Option<i64>,
) -> Result<serde_json::Map<String, Value>, String> {
    let keys = state.keys.read().unwrap_or_else(|e| e.into_inner());
    let mut last = String::new();
    // With the scope-list audience switch, its access tokens name `openid`.
    let scopes_aud = Switches::get(&state.oidc.switches.access_token_aud_scopes).then_some("openid");
    let registered: Vec<String> = crate::state::lock(&state.oidc.registered).keys().cloned().collect();
    let audiences = CLIENTS
        .iter()
        .copied()
        .chain(registered.iter().map(String::as_str))
        .chain(scopes_aud);
    for client in audiences {
        match keys.verify(token, &state.oidc.issuer, client, now) {
            Ok(claims) => return Ok(claims),
            Err(e) => last = e,
        }
    }
    Err(last)
}
