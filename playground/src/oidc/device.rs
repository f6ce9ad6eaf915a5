//! The device authorization grant (RFC 8628): the device authorization
//! endpoint the app asks for a code, and the verification page where the
//! person, on another device, enters that code, signs in and allows.

use super::{authenticate_client, check_password, demo_list, escape, invalid_client, page, scope_list};
use crate::reply::oauth_error;
use crate::state::oidc::{make_room, random, DeviceGrant, DeviceStatus};
use crate::state::{lock, AppState};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How long a device code lives.
const DEVICE_CODE_LIFETIME: i64 = 600;
/// The user code's alphabet: no vowels and no look-alikes (RFC 8628
/// section 6.1).
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// `BCDF-GHJK`: 8 characters, about 34 bits.
fn user_code() -> String {
    let bytes: [u8; 8] = rand::random();
    let chars: String = bytes
        .iter()
        .map(|b| USER_CODE_ALPHABET[*b as usize % USER_CODE_ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// A user code as typed: upper case, without separators.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `POST /oidc/device_authorization` (RFC 8628 section 3.1).
pub(super) async fn authorization(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let Some(client) = authenticate_client(&state, &headers, &f) else {
        return invalid_client();
    };
    let scope = f.get("scope").cloned().unwrap_or_default();
    if !scope.split(' ').any(|s| s == "openid") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "the openid scope is required");
    }
    let (device_code, code) = (random(), user_code());
    let now = state.now();
    let interval = state.oidc.switches.device_interval_secs.load(Ordering::SeqCst) as i64;
    let mut devices = lock(&state.oidc.devices);
    make_room(&mut devices, |d| now >= d.expires);
    devices.insert(
        device_code.clone(),
        DeviceGrant {
            client_id: client,
            scope,
            user_code: code.clone(),
            expires: now + DEVICE_CODE_LIFETIME,
            interval,
            last_poll: None,
            status: DeviceStatus::Pending,
        },
    );
    drop(devices);
    let uri = format!("{}/device", state.oidc.issuer);
    (
        StatusCode::OK,
        [("cache-control", "no-store")],
        Json(json!({
            "device_code": device_code,
            "user_code": code,
            "verification_uri": uri,
            "verification_uri_complete": format!("{uri}?user_code={code}"),
            "expires_in": DEVICE_CODE_LIFETIME,
            "interval": interval,
        })),
    )
        .into_response()
}

fn device_form(state: &AppState, code: &str, scope: Option<&str>, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let asks = scope
        .map(|s| format!("<p>The device asks for:</p><ul>{}</ul>", scope_list(s)))
        .unwrap_or_default();
    page(
        StatusCode::OK,
        "device",
        "Sign in a device",
        &format!(
            "<p>Enter the code your device shows, sign in, and allow.</p>{error}{asks}\
             <form method=\"post\" action=\"device\">\
             <label for=\"user_code\">Code</label><input id=\"user_code\" name=\"user_code\" value=\"{code}\">\
             <label for=\"username\">Username</label><input id=\"username\" name=\"username\" autocomplete=\"username\">\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\">\
             <button name=\"action\" value=\"allow\">Allow</button>\
             <button name=\"action\" value=\"deny\">Deny</button></form>\
             <p>Demo users:</p><ul>{demo}</ul>",
            code = escape(code),
            demo = demo_list(&state.users),
        ),
    )
}

/// The pending grant with this user code: its device code and scope.
fn pending(state: &AppState, code: &str) -> Option<(String, String)> {
    let now = state.now();
    let wanted = normalize(code);
    lock(&state.oidc.devices)
        .iter()
        .find(|(_, d)| normalize(&d.user_code) == wanted && d.status == DeviceStatus::Pending && now < d.expires)
        .map(|(k, d)| (k.clone(), d.scope.clone()))
}

/// `GET /oidc/device[?user_code=…]`: the verification page.
pub(super) async fn page_get(State(state): State<Arc<AppState>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let code = q.get("user_code").map(String::as_str).unwrap_or_default();
    let scope = pending(&state, code).map(|(_, s)| s);
    device_form(&state, code, scope.as_deref(), None)
}

/// `POST /oidc/device`: allow or deny.
pub(super) async fn decide(State(state): State<Arc<AppState>>, Form(f): Form<HashMap<String, String>>) -> Response {
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let code = get("user_code");
    let Some((device_code, scope)) = pending(&state, code) else {
        return device_form(
            &state,
            code,
            None,
            Some("No device is waiting for this code (mistyped, expired or already used)."),
        );
    };
    let deny = get("action") == "deny";
    let user = if deny {
        None
    } else {
        match check_password(&state, get("username"), get("password")) {
            Some(u) => Some(u.username.clone()),
            None => return device_form(&state, code, Some(&scope), Some("Unknown user or wrong password.")),
        }
    };
    let now = state.now();
    if let Some(d) = lock(&state.oidc.devices).get_mut(&device_code) {
        d.status = match user {
            Some(user) => DeviceStatus::Approved { user, auth_time: now },
            None => DeviceStatus::Denied,
        };
    }
    let (title, text) = if deny {
        ("Request denied", "The device will not be signed in.")
    } else {
        ("Device signed in", "You can go back to your device.")
    };
    page(StatusCode::OK, "device-done", title, &format!("<p>{text}</p>"))
}
