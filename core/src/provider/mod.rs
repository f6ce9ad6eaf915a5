//! Identity providers: the wire protocols behind one seam.
//!
//! The session model knows bearer tokens, refresh tokens and identities; it
//! never sees a provider's field names. FinHub ([`finhub::FinHub`]) signs in
//! with a password; OpenID Connect ([`oidc::Oidc`]) through the browser
//! ([`Credentials::Browser`], with an [`opener::Opener`]).

pub mod failover;
pub mod finhub;
pub mod oidc;
pub mod opener;

/// The HTTP method type of [`ApiRequest`].
pub use reqwest::Method;
/// URLs as the providers use them.
pub use reqwest::Url;

use crate::error::Error;
use crate::net::headers::FlowContext;
use crate::net::tls::{BodyKind, PinnedClient};
use crate::token::{AccessToken, IdToken, Password, RefreshToken};
use async_trait::async_trait;
use opener::Opener;
use std::sync::Arc;
use std::time::Duration;

/// The longest lifetime (`expires_in`) a provider may announce: a year. A
/// larger number is a provider bug or an attack, never a real token.
pub const MAX_EXPIRES_IN: u64 = 366 * 24 * 3600;

/// What a person signs in with.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A username and a password (FinHub). `replace`: at the
    /// concurrent-session limit, which live session to end to make room.
    Password {
        username: String,
        password: Password,
        replace: Replace,
    },
    /// The browser (OpenID Connect).
    Browser(BrowserSignIn),
}

/// At the provider's concurrent-session limit, the live session a sign-in
/// ends to make room (the choice a `session_limit` refusal offers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Replace {
    /// None: at the limit the sign-in is refused with the list.
    #[default]
    Nothing,
    /// The oldest live session.
    Oldest,
    /// This one (an id from the refusal's list); if it is no longer live
    /// and the limit still holds, the refusal comes again with a new list.
    Session(String),
}

/// A browser sign-in: where to open the provider's page, and how to stop
/// waiting for it.
#[derive(Clone)]
pub struct BrowserSignIn {
    /// `prompt=none`: the provider must answer without asking the person.
    pub silent: bool,
    /// The device authorization grant (RFC 8628): the person signs in on
    /// another device with a code; nothing is opened here.
    pub device: bool,
    pub opener: Arc<dyn Opener>,
    /// Becomes `true` when the person cancels.
    pub cancel: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for BrowserSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSignIn")
            .field("silent", &self.silent)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// What the person needs on another device to finish a device sign-in
/// (RFC 8628).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    /// The page to visit (`verification_uri`).
    pub verification_uri: String,
    /// The same page with the code filled in, when the provider offers it.
    pub verification_uri_complete: Option<String>,
    /// The code to enter there.
    pub user_code: String,
    /// How long the code is valid.
    pub expires_in: Duration,
}

/// The server's clock from a response's `Date` header, if it has one.
pub fn server_date(response: &reqwest::Response) -> Option<crate::os::clock::Timestamp> {
    response
        .headers()
        .get("date")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// How long the server asks to wait (`Retry-After`, RFC 9110 section
/// 10.2.3: seconds, or an HTTP date), at most an hour.
pub fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            let base = server_date(response).unwrap_or_else(chrono::Utc::now);
            (at.with_timezone(&chrono::Utc) - base)
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(Duration::from_secs(3600)))
}

/// What a refused refresh token means for the session (RFC 6749 section
/// 5.2 `invalid_grant`, FinHub's 400): revoked when the provider says the
/// token was revoked, reused or its session signed out; otherwise expired
/// (the token's own lifetime ran out, or the provider no longer knows it).
pub fn refresh_refusal(message: String) -> Error {
    let lower = message.to_ascii_lowercase();
    let revoked = ["revok", "reuse", "signed out", "logged out"]
        .iter()
        .any(|w| lower.contains(w));
    if revoked {
        Error::Revoked(message)
    } else {
        Error::RefreshRefused(message)
    }
}

/// Whether a revocation's message says the session was ended from another
/// of the person's sessions ("ended from another device", as the FinHub
/// Playground words it). No provider has a code for it, so the words
/// decide; a revocation that does not say so stays "ended by the provider".
pub fn from_another_device(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["another device", "other device", "another session"]
        .iter()
        .any(|w| lower.contains(w))
}

/// A lifetime a provider announced, refused when it is not plausible.
pub fn plausible_expires_in(value: Option<u64>, field: &str) -> Result<Option<u64>, Error> {
    match value {
        Some(v) if v > MAX_EXPIRES_IN => Err(Error::Protocol(format!(
            "{field} is {v} s, more than a year; no real token lives that long"
        ))),
        other => Ok(other),
    }
}

/// An `Authorization: Bearer` value, marked sensitive so that no `Debug` of
/// a request shows it and HTTP/2 would never index it.
pub fn bearer_header(token: &AccessToken) -> reqwest::header::HeaderValue {
    sensitive(&format!("Bearer {}", token.expose()))
}

/// A header value marked sensitive; one that is not a valid header value
/// (a control character in a token) becomes empty, which the server refuses.
pub fn sensitive(value: &str) -> reqwest::header::HeaderValue {
    let mut v = reqwest::header::HeaderValue::from_str(value).unwrap_or(reqwest::header::HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// An API response as [`ApiResponse`], its body read within the profile's
/// `max_response_bytes`.
pub async fn read_api_response(client: &PinnedClient, response: reqwest::Response) -> Result<ApiResponse, Error> {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = client.read_body(response, BodyKind::Api).await?;
    Ok(ApiResponse {
        status,
        content_type,
        body: String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    })
}

/// `path` joined to `base`, refusing anything that would leave the
/// provider's host (`//other.host/…`, absolute URLs).
pub fn join_below(base: &reqwest::Url, path: &str) -> Result<reqwest::Url, Error> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(Error::InvalidState(format!(
            "'{path}' is not a path below the provider's base URL; write it as /api/…"
        )));
    }
    let url = base
        .join(path)
        .map_err(|e| Error::InvalidState(format!("'{path}' is not a valid path: {e}")))?;
    if url.host_str() != base.host_str() || url.port_or_known_default() != base.port_or_known_default() {
        return Err(Error::InvalidState(format!("'{path}' leaves the provider's host")));
    }
    Ok(url)
}

/// What a provider hands out at sign-in and at each refresh.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token sent as `Authorization: Bearer` (FinHub's `userSessionToken`,
    /// an OIDC access token). FinHub's is always a JWT the engine validates;
    /// an OIDC access token may be opaque.
    pub bearer: AccessToken,
    /// The refresh token, if the provider issues one.
    pub refresh: Option<RefreshToken>,
    /// An OIDC `id_token`, if any.
    pub id_token: Option<IdToken>,
    /// The lifetime the provider announced (checked: at most a year).
    pub expires_in: Option<u64>,
    /// How long the refresh token lasts, when the provider says so
    /// (Keycloak's `refresh_expires_in`).
    pub refresh_expires_in: Option<u64>,
    pub scope: Option<String>,
    pub tenant: Option<String>,
    pub customer: Option<String>,
    /// The server's clock when it answered (its `Date` header), if known.
    pub server_date: Option<crate::os::clock::Timestamp>,
    /// The validated ID token's `sub` (OpenID Connect).
    pub subject: Option<String>,
    /// The person's name and email (ID token or userinfo).
    pub name: Option<String>,
    pub email: Option<String>,
    /// Where the provider saw the sign-in come from (FinHub's `origin`).
    pub origin: Option<SignInOrigin>,
}

/// A sign-in's origin as the server reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct SignInOrigin {
    pub ip: Option<String>,
    pub city: String,
    pub country: String,
}

impl SignInOrigin {
    /// The same origin with only printable text (an address is at most 45
    /// characters, the longest IPv6 text form).
    pub fn printable(self) -> Self {
        use crate::net::text::printable;
        Self {
            ip: self.ip.map(|ip| printable(&ip, 45)),
            city: printable(&self.city, 100),
            country: printable(&self.country, 100),
        }
    }
}

/// The tokens of a session, as a provider needs them to end it.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub bearer: AccessToken,
    pub refresh: Option<RefreshToken>,
    pub id_token: Option<IdToken>,
}

/// A call to the provider's API on the session's behalf.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: reqwest::Method,
    /// A path below the provider's base URL, starting with `/`.
    pub path: String,
    pub body: Option<serde_json::Value>,
}

/// The provider's answer to an [`ApiRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// The seam every identity provider implements.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name (`finhub`).
    fn name(&self) -> &'static str;

    /// Which endpoint requests go to, for providers with backups
    /// ([`failover`]); `None` for those without.
    fn route(&self) -> Option<failover::Route> {
        None
    }

    /// Report-only profiles: the pin mismatches let through since the last
    /// call (each names its host and the pins presented).
    fn take_pin_reports(&self) -> Vec<crate::net::tls::PinReport> {
        Vec::new()
    }

    /// Sign in. Wrong credentials are [`Error::InvalidCredentials`].
    async fn sign_in(&self, credentials: &Credentials, flow: &FlowContext) -> Result<Grant, Error>;

    /// Exchange a refresh token for a new grant. A refresh token the provider
    /// no longer honours is [`Error::Revoked`]; network failures, 5xx and 429
    /// are transient ([`Error::is_transient`]).
    async fn refresh(&self, refresh: &RefreshToken, flow: &FlowContext) -> Result<Grant, Error>;

    /// Check a refresh's answer once the engine has kept its rotated
    /// refresh token: an OpenID Connect provider validates the new ID token
    /// here (its key set may be out of reach, its times skewed), and asks
    /// userinfo. A failure must never cost the token the provider just
    /// handed out, so it is not checked inside [`Provider::refresh`].
    async fn check_refresh(&self, grant: Grant) -> Result<Grant, Error> {
        Ok(grant)
    }

    /// End the session at the provider. `opener` shows the provider's own
    /// sign-out page when the protocol ends sessions in the browser.
    async fn sign_out(&self, tokens: &SessionTokens, flow: &FlowContext, opener: &dyn Opener) -> Result<(), Error>;

    /// Call the provider's API with the session's credentials and headers.
    async fn call(&self, request: &ApiRequest, bearer: &AccessToken, flow: &FlowContext) -> Result<ApiResponse, Error>;

    /// Wait, at most `timeout`, for work a sign-out left running: a sign-out
    /// page the browser has yet to load. Fronts that exit right after a
    /// sign-out (`sessionctl logout`) call it; the desktop app need not.
    async fn settle(&self, _timeout: Duration) {}

    /// Whether a sign-out left a page for the browser that it has not loaded.
    fn page_pending(&self) -> bool {
        false
    }
}
