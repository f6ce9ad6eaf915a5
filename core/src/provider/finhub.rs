//! The FinHub session API.
//!
//! - `POST /api/v2/auth/login`, body `{"username", "password"}` (defined by
//!   this project; see docs/providers.md, "API"), answers
//!   `{expires_in, token_type:"Bearer", scope, customerId, tenantId,
//!   userSessionToken, refreshToken}`.
//! - `POST /api/v2/auth/refresh`, body `{"refreshToken"}` (defined by this
//!   project), answers the same shape with a rotated refresh token; an unknown,
//!   reused or revoked refresh token is `400 {"error":"invalid_grant"}`.
//! - `POST /api/v2/auth/logout` carries exactly `X-Tenant-ID`,
//!   `X-Activity-ID`, `X-Request-ID`, `X-Session-Active: true` and
//!   `X-User-Session-Token`.
//! - Every other request carries `Authorization: Bearer`, `X-Activity-ID`,
//!   `X-Tenant-ID`, `X-Request-ID`, `X-Session-ID` and `X-Correlation-ID`
//!   (login and refresh carry all of them but `Authorization`).

use super::failover::{self, Endpoints, Route, Verdict};
use super::{ApiRequest, ApiResponse, Credentials, Grant, Provider, Replace, SessionTokens};
use crate::error::Error;
use crate::net::headers::{self, FlowContext};
use crate::net::tls::{BodyKind, PinnedClient};
use crate::profile::Profile;
use crate::token::{AccessToken, RefreshToken};
use async_trait::async_trait;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const LOGIN_PATH: &str = "/api/v2/auth/login";
pub const REFRESH_PATH: &str = "/api/v2/auth/refresh";
pub const LOGOUT_PATH: &str = "/api/v2/auth/logout";

/// The FinHub provider of one profile.
#[derive(Debug, Clone)]
pub struct FinHub {
    client: PinnedClient,
    /// Sent at login so session lists are readable.
    device_name: String,
    endpoints: Arc<Endpoints>,
    /// The idempotency key of the refresh token last presented (its hash
    /// and a random key): the same for every attempt this process makes
    /// with that token, and unknown to anyone holding only a copy of the
    /// token (a stolen keychain entry still meets reuse detection).
    idempotency: Arc<std::sync::Mutex<Option<IdempotencyKey>>>,
}

/// A refresh token's SHA-256 and the random key sent with it.
type IdempotencyKey = ([u8; 32], String);

/// The login and refresh answer. No `Debug`: it holds tokens (which are
/// wrapped in their secret types at once).
#[derive(Deserialize)]
struct TokenResponse {
    expires_in: Option<u64>,
    token_type: Option<String>,
    scope: Option<String>,
    #[serde(rename = "customerId")]
    customer_id: Option<String>,
    #[serde(rename = "tenantId")]
    tenant_id: Option<String>,
    #[serde(rename = "userSessionToken")]
    user_session_token: String,
    #[serde(rename = "refreshToken")]
    refresh_token: Option<String>,
    /// Where the server saw the login come from (this project's addition).
    #[serde(default)]
    origin: Option<crate::provider::SignInOrigin>,
}

pub const SESSIONS_PATH: &str = "/api/v2/sessions";
pub const END_OTHERS_PATH: &str = "/api/v2/sessions/end-others";

/// The sessions of a `GET /api/v2/sessions` answer (or of a
/// `session_limit` refusal), in the shape docs/providers.md ("API") gives. At most 1000 rows
/// are read; a row without an id or a creation time is skipped.
pub fn parse_sessions(body: &str) -> Result<Vec<crate::view::RemoteSession>, Error> {
    let v: Value = serde_json::from_str(body).map_err(|e| {
        Error::Protocol(format!(
            "the sessions answer is not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let rows = v
        .get("sessions")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Protocol("the sessions answer has no \"sessions\" list".into()))?;
    let text = |r: &Value, k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .map(|s| crate::net::text::printable(s, 100))
    };
    let time = |r: &Value, k: &str| {
        r.get(k)
            .and_then(Value::as_i64)
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
    };
    Ok(rows
        .iter()
        .take(1000)
        .filter_map(|r| {
            Some(crate::view::RemoteSession {
                id: text(r, "id")?,
                device_name: text(r, "deviceName").unwrap_or_else(|| "unnamed device".into()),
                created: time(r, "created")?,
                last_seen: time(r, "lastSeen"),
                ip: text(r, "ip"),
                city: text(r, "city"),
                country: text(r, "country"),
                current: r.get("current").and_then(Value::as_bool).unwrap_or(false),
            })
        })
        .collect())
}

/// Which call an error answer belongs to; it decides what a status means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Login,
    Refresh,
    Logout,
}

/// The server's own words from an error body (`message`, `error_description`
/// or `error`), shortened.
fn server_message(body: &str) -> Option<(Option<String>, String)> {
    let v: Value = serde_json::from_str(body).ok()?;
    let code = v.get("error").and_then(Value::as_str).map(str::to_owned);
    let message = v
        .get("message")
        .or_else(|| v.get("error_description"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| code.clone())?;
    Some((
        code.map(|c| crate::net::text::printable(&c, 100)),
        crate::net::text::printable(&message, 300),
    ))
}

fn error_for(call: Call, status: u16, body: &str, location: Option<&str>, retry_after: Option<Duration>) -> Error {
    let (code, message) = server_message(body).unwrap_or((None, format!("HTTP {status}")));
    if (300..400).contains(&status) {
        return Error::Protocol(format!(
            "the server redirected to {}; redirects are not followed",
            location.unwrap_or("(no location)")
        ));
    }
    match (call, status) {
        (Call::Login, 401 | 403) => Error::InvalidCredentials(message),
        (_, 409) if code.as_deref() == Some("session_limit") => {
            let live = parse_sessions(body).unwrap_or_default();
            let listed = live
                .iter()
                .map(|s| format!("\n  - {}", s.describe()))
                .collect::<String>();
            Error::SessionLimit {
                message: match listed.is_empty() {
                    true => message,
                    false => format!("{message}. Live sessions, oldest first:{listed}"),
                },
                live,
            }
        }
        (Call::Refresh, 401) => Error::Revoked(message),
        (Call::Refresh, 400) if code.as_deref() == Some("invalid_grant") => super::refresh_refusal(message),
        _ => Error::Server {
            status,
            message,
            retry_after,
        },
    }
}

/// The parts of an answer an error needs, read within the protocol cap.
async fn error_answer(client: &PinnedClient, call: Call, response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let retry_after = super::retry_after(&response);
    match client.read_body(response, BodyKind::Protocol).await {
        Ok(body) => error_for(
            call,
            status,
            &String::from_utf8_lossy(&body),
            location.as_deref(),
            retry_after,
        ),
        Err(e) => e,
    }
}

impl FinHub {
    /// The provider for `profile`, talking through `client`.
    pub fn new(profile: Arc<Profile>, client: PinnedClient) -> Self {
        let endpoints = Arc::new(Endpoints::new(
            profile.base_url.clone(),
            profile.backup_urls.clone(),
            profile.failback,
        ));
        Self {
            client,
            endpoints,
            device_name: profile.device_name.clone(),
            idempotency: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// The refresh's idempotency key for `refresh`: kept while the same
    /// token is presented again, a new random one for another token.
    fn idempotency_key(&self, refresh: &RefreshToken) -> String {
        use sha2::{Digest, Sha256};
        let hash: [u8; 32] = Sha256::digest(refresh.expose().as_bytes()).into();
        let mut slot = self.idempotency.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some((h, key)) if *h == hash => key.clone(),
            _ => {
                let key: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
                *slot = Some((hash, key.clone()));
                key
            }
        }
    }

    fn url(base: &reqwest::Url, path: &str) -> Result<reqwest::Url, Error> {
        super::join_below(base, path)
    }

    /// Send to the endpoint the breaker picks, moving on to the next one
    /// only when the request surely did not arrive or was surely not
    /// processed (see [`super::failover`]): a refresh token presented twice
    /// is a reuse that revokes the session.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: Vec<(&'static str, HeaderValue)>,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, Error> {
        let order = self.endpoints.order(std::time::Instant::now());
        let last_try = order.len().saturating_sub(1);
        for (n, index) in order.into_iter().enumerate() {
            let base = self.endpoints.url(index);
            let mut request = self.client.http().request(method.clone(), Self::url(base, path)?);
            for (name, value) in &headers {
                request = request.header(*name, value.clone());
            }
            // X-Request-ID: fresh for every request, retries included.
            let request_id = headers::request_id();
            // The path without its query (`sessionctl call` may carry
            // anything there).
            let logged = path.split('?').next().unwrap_or_default();
            tracing::debug!(%request_id, %method, path = logged, endpoint = index, "request");
            request = request.header(headers::X_REQUEST_ID, request_id.to_string());
            if let Some(body) = body {
                request = request.json(body);
            }
            let outcome = self.client.send(request).await;
            let failed = match &outcome {
                Err(e) if failover::error_verdict(e) == Verdict::FailOver => Some(e.to_string()),
                Ok(r) if failover::status_verdict(&method, r.status()) == Verdict::FailOver => {
                    Some(format!("it answered {}", r.status()))
                }
                _ => None,
            };
            self.endpoints
                .record(index, failed.as_deref(), std::time::Instant::now());
            if failed.is_none() || n == last_try {
                return outcome;
            }
        }
        Err(Error::Internal("no base URL".into()))
    }

    /// The headers every request but logout carries (without `X-Request-ID`,
    /// which [`FinHub::send`] adds fresh).
    fn flow_headers(flow: &FlowContext) -> Vec<(&'static str, HeaderValue)> {
        vec![
            (headers::X_ACTIVITY_ID, plain(&flow.activity_id.to_string())),
            (headers::X_TENANT_ID, plain(&flow.tenant_id)),
            (headers::X_SESSION_ID, plain(&flow.session_id.to_string())),
            (headers::X_CORRELATION_ID, plain(&flow.correlation_id.to_string())),
        ]
    }

    async fn token_call(
        &self,
        call: Call,
        path: &str,
        body: Value,
        headers: Vec<(&'static str, HeaderValue)>,
    ) -> Result<Grant, Error> {
        let response = self.send(reqwest::Method::POST, path, headers, Some(&body)).await?;
        if response.status().as_u16() != 200 {
            return Err(error_answer(&self.client, call, response).await);
        }
        let server_date = super::server_date(&response);
        let text = self.client.read_body(response, BodyKind::Protocol).await?;
        let parsed: TokenResponse = serde_json::from_slice(&text).map_err(|e| {
            // The category only: serde's message could quote a token.
            Error::Protocol(format!(
                "the {path} answer is not the documented JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        if let Some(tt) = &parsed.token_type {
            if !tt.eq_ignore_ascii_case("bearer") {
                return Err(Error::Protocol(format!("token_type is '{tt}', expected 'Bearer'")));
            }
        }
        Ok(Grant {
            refresh_expires_in: None,
            origin: parsed
                .origin
                .filter(|o| o.city.chars().count() <= 100 && o.country.chars().count() <= 100)
                .map(|o| o.printable()),
            expires_in: super::plausible_expires_in(parsed.expires_in, "expires_in")?,
            bearer: AccessToken::new(parsed.user_session_token),
            refresh: parsed.refresh_token.map(RefreshToken::new),
            id_token: None,
            scope: parsed.scope.map(|s| crate::net::text::printable(&s, 1000)),
            tenant: parsed.tenant_id.map(|s| crate::net::text::printable(&s, 200)),
            customer: parsed.customer_id.map(|s| crate::net::text::printable(&s, 200)),
            server_date,
            subject: None,
            name: None,
            email: None,
        })
    }
}

#[async_trait]
impl Provider for FinHub {
    fn name(&self) -> &'static str {
        "finhub"
    }

    fn route(&self) -> Option<Route> {
        Some(self.endpoints.route())
    }

    fn take_pin_reports(&self) -> Vec<crate::net::tls::PinReport> {
        self.client.pin_reports().map(|r| r.drain()).unwrap_or_default()
    }

    async fn sign_in(&self, credentials: &Credentials, flow: &FlowContext) -> Result<Grant, Error> {
        let Credentials::Password {
            username,
            password,
            replace,
        } = credentials
        else {
            return Err(Error::InvalidState(
                "this profile signs in with a username and password, not through the browser".into(),
            ));
        };
        let mut body = json!({
            "username": username,
            "password": password.expose(),
            "deviceName": self.device_name,
        });
        match replace {
            Replace::Nothing => {}
            Replace::Oldest => body["replaceOldest"] = Value::Bool(true),
            Replace::Session(id) => body["replaceSession"] = Value::String(id.clone()),
        }
        self.token_call(Call::Login, LOGIN_PATH, body, Self::flow_headers(flow))
            .await
    }

    async fn refresh(&self, refresh: &RefreshToken, flow: &FlowContext) -> Result<Grant, Error> {
        let body = json!({ "refreshToken": refresh.expose() });
        let mut headers = Self::flow_headers(flow);
        headers.push((headers::IDEMPOTENCY_KEY, plain(&self.idempotency_key(refresh))));
        self.token_call(Call::Refresh, REFRESH_PATH, body, headers).await
    }

    async fn sign_out(
        &self,
        tokens: &SessionTokens,
        flow: &FlowContext,
        _opener: &dyn super::opener::Opener,
    ) -> Result<(), Error> {
        let headers = vec![
            (headers::X_TENANT_ID, plain(&flow.tenant_id)),
            (headers::X_ACTIVITY_ID, plain(&flow.activity_id.to_string())),
            (headers::X_SESSION_ACTIVE, HeaderValue::from_static("true")),
            (headers::X_USER_SESSION_TOKEN, super::sensitive(tokens.bearer.expose())),
        ];
        let response = self.send(reqwest::Method::POST, LOGOUT_PATH, headers, None).await?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(error_answer(&self.client, Call::Logout, response).await)
    }

    async fn call(&self, request: &ApiRequest, bearer: &AccessToken, flow: &FlowContext) -> Result<ApiResponse, Error> {
        let mut headers = Self::flow_headers(flow);
        headers.push((headers::AUTHORIZATION, super::bearer_header(bearer)));
        let response = self
            .send(request.method.clone(), &request.path, headers, request.body.as_ref())
            .await?;
        super::read_api_response(&self.client, response).await
    }
}

/// A header value from text the engine made (ids, the tenant from the
/// config); one that is not a valid header value becomes empty, which the
/// server refuses as a bad header.
fn plain(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review 2: text a server chose reaches terminals and log
    /// lines only without control characters (an ANSI escape in a device
    /// name, a line break in a city that would forge a log line).
    #[test]
    fn server_text_loses_its_control_characters() {
        let body = r#"{"sessions":[{"id":"s1","deviceName":"\u001b[31mlaptop\u001b[0m","created":1700000000,
            "ip":"10.0.0.1\r\n","city":"Berlin\n2026-12-05T00:00:00Z  INFO forged","country":"DE\u202e"}]}"#;
        let s = &parse_sessions(body).unwrap()[0];
        assert_eq!(s.device_name, "[31mlaptop[0m");
        assert_eq!(s.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(s.city.as_deref(), Some("Berlin2026-12-05T00:00:00Z  INFO forged"));
        assert_eq!(s.country.as_deref(), Some("DE"));
        let e = error_for(
            Call::Refresh,
            503,
            r#"{"message":"down\n\u001b[2Jfor maintenance"}"#,
            None,
            None,
        );
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
        assert!(e.to_string().contains("down[2Jfor maintenance"), "{e}");
    }

    #[test]
    fn statuses_map_to_errors() {
        let body = r#"{"error":"invalid_grant","message":"refresh token reuse detected"}"#;
        assert!(matches!(error_for(Call::Refresh, 400, body, None, None), Error::Revoked(m) if m.contains("reuse")));
        let body = r#"{"error":"invalid_grant","message":"the refresh token expired"}"#;
        assert!(matches!(
            error_for(Call::Refresh, 400, body, None, None),
            Error::RefreshRefused(_)
        ));
        assert!(matches!(
            error_for(Call::Refresh, 401, "", None, None),
            Error::Revoked(_)
        ));
        assert!(error_for(Call::Refresh, 503, "", None, None).is_transient());
        assert!(error_for(Call::Refresh, 429, "", None, None).is_transient());
        assert!(
            matches!(error_for(Call::Login, 401, r#"{"error":"invalid_credentials","message":"bad password"}"#, None, None), Error::InvalidCredentials(m) if m == "bad password")
        );
        assert!(matches!(
            error_for(
                Call::Login,
                409,
                r#"{"error":"session_limit","message":"2 sessions"}"#,
                None,
                None
            ),
            Error::SessionLimit { .. }
        ));
        assert!(
            matches!(error_for(Call::Logout, 302, "", Some("https://evil"), None), Error::Protocol(m) if m.contains("not followed"))
        );
    }

    #[test]
    fn paths_cannot_leave_the_host() {
        let base = reqwest::Url::parse("https://idp.example:8443/").unwrap();
        assert!(FinHub::url(&base, "/api/v2/accounts").is_ok());
        for bad in ["//evil.example/x", "https://evil.example/", "api", "/\\evil.example"] {
            let r = FinHub::url(&base, bad);
            assert!(r.is_err() || r.unwrap().host_str() == Some("idp.example"), "{bad}");
        }
    }
}
