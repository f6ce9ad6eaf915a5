//! The one serializable picture of a session. It carries no token.

use crate::clock::Timestamp;
use crate::error::ErrorInfo;
pub use crate::profile::ExtendAccess;
use serde::{Deserialize, Serialize};

/// Where a session is in its lifecycle:
/// `SignedOut → SigningIn → Active ⇄ Refreshing → Active`, and from Active to
/// `Expired`, `Revoked` or `SignedOut`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    SignedOut,
    SigningIn,
    Active,
    Refreshing,
    Expired,
    Revoked,
}

impl Phase {
    /// Whether the session has a usable token in this phase.
    pub fn has_session(self) -> bool {
        matches!(self, Phase::Active | Phase::Refreshing)
    }
}

/// Whether the session survives a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// Kept in the OS keychain.
    Keychain,
    /// The keychain is unavailable: kept in memory only.
    MemoryOnly,
}

/// The outcome of the last refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshOutcome {
    pub at: Timestamp,
    pub ok: bool,
}

/// What fronts (CLI, IPC, UI) know of a session. No token, ever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Grows with every view the engine publishes: a front that receives
    /// views by several paths (a command's answer, an event) keeps the one
    /// with the highest `seq` of its profile and ignores older ones.
    pub seq: u64,
    pub profile: String,
    pub environment: String,
    pub provider: String,
    pub state: Phase,
    pub user: Option<String>,
    pub tenant: Option<String>,
    pub customer: Option<String>,
    /// The scopes the provider granted (which may be fewer than asked).
    pub scope: Option<String>,
    pub session_id: Option<String>,
    pub issued_at: Option<Timestamp>,
    /// When the session token expires (provider time). Past it, the token is
    /// renewed before any use: the session lives as long as its refresh token.
    pub expires_at: Option<Timestamp>,
    /// Until when the session can be renewed, when the provider said (the
    /// refresh token's own expiry).
    pub renewable_until: Option<Timestamp>,
    /// The session token has expired and renewing it keeps failing for a
    /// passing reason (network, provider down): "offline, retrying".
    pub offline: bool,
    /// The backup endpoint requests go to while the primary fails
    /// ("using backup endpoint"); `None` on the primary.
    pub backup_endpoint: Option<String>,
    /// The provider lists the person's sessions on other devices (FinHub);
    /// OpenID Connect has no standard API for it.
    pub sessions_api: bool,
    /// Unusual things seen (new location, odd hours, …), until dismissed.
    pub anomalies: Vec<crate::anomaly::Finding>,
    /// The profile's idle timeout: the session is signed out at this (local)
    /// time unless there is activity first (the app warns a minute before).
    pub idle_sign_out_at: Option<Timestamp>,
    /// The profile's absolute limit: the session ends at this (local) time
    /// whatever happens.
    pub ends_at: Option<Timestamp>,
    /// Report-only pinning: a server presented none of the pins and the
    /// connection went ahead (what and where).
    pub pin_report: Option<String>,
    pub next_refresh_at: Option<Timestamp>,
    pub refresh_count: u32,
    pub last_refresh: Option<RefreshOutcome>,
    pub last_error: Option<ErrorInfo>,
    pub persistence: Persistence,
    /// The provider's clock minus this machine's, in milliseconds, from the
    /// `Date` header of its last token answer (0 when unknown). A countdown
    /// to `expires_at` (provider time) uses `local now + clock_offset_ms`.
    pub clock_offset_ms: i64,
    /// How the person signs in: `password` (FinHub) or `browser` (OIDC).
    pub sign_in_method: SignInMethod,
    /// How the session is extended before it expires.
    pub extend_access: ExtendAccess,
    /// The person's name and email, when the provider gave them.
    pub name: Option<String>,
    pub email: Option<String>,
    /// While a browser sign-in waits for the person.
    pub browser: Option<BrowserWait>,
    /// Re-authenticate mode: the session could not be extended silently, so
    /// the person must sign in again before `expires_at`.
    pub reauth_needed: bool,
    /// Why this session cannot be renewed although its policy is to renew
    /// with a refresh token: the provider granted none. It says what was
    /// granted, that the session ends with its access token, and how to fix
    /// the profile.
    pub renewal_notice: Option<String>,
}

/// How a profile signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInMethod {
    Password,
    Browser,
}

/// A browser sign-in in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserWait {
    /// The provider's sign-in page the browser was sent to (no secret: the
    /// PKCE verifier never leaves the engine).
    pub url: String,
    /// When the app stops waiting.
    pub deadline: Timestamp,
    /// `prompt=none`: no page should need the person.
    pub silent: bool,
    /// Why the browser could not be started, if it could not: the person can
    /// open `url` by hand.
    pub open_error: Option<String>,
    /// A device sign-in (RFC 8628): the code to enter at `url` on another
    /// device; nothing was opened here.
    pub user_code: Option<String>,
    /// A device sign-in: `url` with the code filled in, when the provider
    /// offers one.
    pub url_complete: Option<String>,
    /// Which browser request this is (inside the engine only).
    #[serde(skip)]
    pub request: u64,
}

/// What the view says when the provider granted no refresh token although
/// the policy renews with one: what was granted, what that means, and the
/// fix that fits what the profile asked for.
/// `oidc` is the profile's requested scopes and `offline_access_prompt`
/// (`None` for FinHub, whose API always answers with a refresh token).
pub(crate) fn no_refresh_notice(oidc: Option<(&[String], bool)>, granted: Option<&str>) -> String {
    let Some((requested, offline_access_prompt)) = oidc else {
        return "The server answered the sign-in without a refreshToken, which the FinHub API always sends: this session ends when its session token expires. Report it to the provider.".into();
    };
    let asked = requested.iter().any(|s| s == "offline_access");
    let got = granted.is_some_and(|g| g.split(' ').any(|s| s == "offline_access"));
    let head = format!(
        "The provider granted no refresh token (granted scopes: {}). This session ends when its access token expires; then sign in again.",
        granted.unwrap_or("not stated")
    );
    let fix = match (asked, got, offline_access_prompt) {
        (false, _, _) => {
            "To stay signed in, add \"offline_access\" to the profile's scopes (most providers grant a refresh token only for it)."
        }
        (true, false, false) => {
            "It did not grant offline_access: set offline_access_prompt = true, so that sign-in asks for consent (prompt=consent), which OpenID Connect Core 11 requires for offline access."
        }
        (true, false, true) => {
            "It did not grant offline_access although sign-in asked for consent: allow refresh tokens (offline access) for this client at the provider, or set extend_access = \"reauthenticate\"."
        }
        (true, true, _) => {
            "It granted offline_access but sent no refresh token: check the client's refresh-token settings at the provider, or set extend_access = \"reauthenticate\"."
        }
    };
    format!("{head} {fix}")
}

/// A whole number of seconds for people: `45 s`, `30 min`, `12 h`, `7 days`
/// (the largest unit that divides it, else the next smaller one).
pub fn duration_text(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// One of the person's sessions as the provider lists them (the FinHub
/// sessions API, `GET /api/v2/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSession {
    pub id: String,
    /// What the client called itself at sign-in.
    pub device_name: String,
    pub created: Timestamp,
    pub last_seen: Option<Timestamp>,
    pub ip: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// This app's own session.
    pub current: bool,
}

impl RemoteSession {
    /// `device, signed in <time>, <city, country>` for a list in text.
    pub fn describe(&self) -> String {
        let place = match (&self.city, &self.country) {
            (Some(c), Some(k)) => format!(", {c}, {k}"),
            (Some(c), None) | (None, Some(c)) => format!(", {c}"),
            (None, None) => String::new(),
        };
        format!(
            "{} (signed in {}{place}; id {})",
            self.device_name,
            self.created.format("%Y-%m-%d %H:%M UTC"),
            self.id
        )
    }
}
