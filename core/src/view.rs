//! The one serializable picture of a session. It carries no token.

use crate::error::{ErrorCode, ErrorInfo};
use crate::os::clock::Timestamp;
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
    pub anomalies: Vec<crate::insight::anomaly::Finding>,
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
    /// How renewal stands: on schedule, retrying after a failure that may
    /// pass (offline, or the provider not answering with tokens), or stopped
    /// until someone fixes the profile. See [`SessionView::headline`].
    pub renewal: Renewal,
    /// Why the last session ended, once it has (`Expired`, `Revoked`, or
    /// `SignedOut` after a session).
    pub ended_because: Option<EndReason>,
    /// The one line every front shows for this view (the window's state,
    /// the tray, `sessionctl status`), times in this machine's local time.
    pub headline: Headline,
    /// Why this session cannot be renewed although its policy is to renew
    /// with a refresh token: the provider granted none. It says what was
    /// granted, that the session ends with its access token, and how to fix
    /// the profile.
    pub renewal_notice: Option<String>,
    /// When the session really ends unless someone acts first, and what
    /// ends it (see [`SessionView::session_end`]): what the window's
    /// "Session ends at", the tray and `sessionctl status` show.
    pub session_end: Option<SessionEnd>,
}

/// When a session really ends, on this machine's clock, and what ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    pub at: Timestamp,
    pub because: EndCause,
}

/// What ends a session at [`SessionEnd::at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndCause {
    /// The provider's limit on renewing it (its refresh token's end, as the
    /// provider stated it).
    ProviderLimit,
    /// The profile's idle timeout, unless there is activity first.
    Idle,
    /// The profile's absolute limit.
    Absolute,
    /// Its access token's end: it cannot be renewed (nothing to renew with,
    /// renewal stopped, or the person must sign in again).
    AccessEnds,
}

impl EndCause {
    /// Why, in words ("Session ends at 14:02: the provider's limit").
    pub fn text(self) -> &'static str {
        match self {
            EndCause::ProviderLimit => "the provider's limit",
            EndCause::Idle => "idle sign-out, unless you use the app",
            EndCause::Absolute => "the profile's time limit",
            EndCause::AccessEnds => "it cannot be renewed",
        }
    }
}

/// How renewal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Renewal {
    /// Nothing to renew, or renewing on schedule.
    OnSchedule,
    /// The last attempt failed for a reason that may pass; the session and
    /// its refresh token are kept and the next attempt is at `next_attempt`
    /// (sooner if the network comes back). `offline`: the provider could
    /// not be reached at all (no network, a timeout, TLS cut short or
    /// intercepted, as behind a captive portal). Otherwise it was reached
    /// but did not answer with tokens; `reason` says how, for people.
    Retrying {
        offline: bool,
        reason: String,
        code: ErrorCode,
        next_attempt: Option<Timestamp>,
    },
    /// No more attempts until the profile or the provider's client settings
    /// are fixed (`reason` says what to fix); the session lasts until its
    /// access token ends, and nothing is deleted.
    Stopped { reason: String, code: ErrorCode },
    /// The session cannot be extended without the person: sign in again
    /// before it ends.
    SignInNeeded,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The provider revoked it (or detected a reused refresh token).
    Revoked,
    /// The provider says it was ended from another of the person's
    /// sessions (another device's "Your sessions" list, "This wasn't me").
    EndedOnAnotherDevice,
    /// The provider no longer accepts its refresh token.
    Refused,
    /// The refresh token's lifetime, as the provider stated it, has passed.
    RefreshTokenExpired,
    /// The profile's idle timeout.
    Idle,
    /// The profile's absolute limit.
    Absolute,
    /// The person signed out here.
    SignedOut,
    /// The person signed out in another process (the app, `sessionctl`).
    SignedOutElsewhere,
    /// A token the provider sent failed a security check, so the session
    /// was ended rather than trusted.
    CheckFailed,
}

impl EndReason {
    /// The sentence people see.
    pub fn text(self) -> &'static str {
        match self {
            EndReason::Revoked => "Ended by the provider",
            EndReason::EndedOnAnotherDevice => "Ended from another device",
            EndReason::Refused => "Ended by the provider: it no longer accepts this session",
            EndReason::RefreshTokenExpired => "Ended: the provider's time limit for this session has passed",
            EndReason::Idle => "Ended: idle for longer than the profile allows",
            EndReason::Absolute => "Ended: the profile's time limit was reached",
            EndReason::SignedOut => "Signed out",
            EndReason::SignedOutElsewhere => "Signed out in another window or terminal",
            EndReason::CheckFailed => "Ended: the provider's new token failed a security check",
        }
    }
}

/// How a headline should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tone {
    /// Active and renewing on schedule.
    Good,
    /// Working on it, or waiting for something (offline, retrying, signing in).
    Attention,
    /// Renewal stopped, or the session ended other than by the person.
    Bad,
    /// Nothing going on (signed out).
    Neutral,
}

/// One line that says how the session is: what the window's state badge,
/// the tray and `sessionctl status` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headline {
    pub tone: Tone,
    pub text: String,
}

impl SessionView {
    /// The session in one line, as a list of several shows it (the tray's
    /// menu, `sessionctl status --all`): the profile, the headline (what the
    /// window says) and, while there is a session, when it really ends, in
    /// this machine's local time without seconds.
    pub fn status_line(&self, now: Timestamp) -> String {
        match &self.session_end {
            Some(end) => format!(
                "{} · {} · ends {}",
                self.profile,
                self.headline.text,
                local_clock_time(end.at, now)
            ),
            None => format!("{} · {}", self.profile, self.headline.text),
        }
    }

    /// When the session really ends unless someone acts first: the earliest
    /// of the provider's limit (the refresh token's stated end), the idle
    /// sign-out, the absolute limit, and, when it cannot be renewed, its
    /// access token's end. Provider times are moved to this machine's clock
    /// by [`SessionView::clock_offset_ms`]. `None` without a session, or
    /// when nothing sets an end (renewed for as long as the provider
    /// allows, and it has not said how long).
    pub fn session_end(&self) -> Option<SessionEnd> {
        if !self.state.has_session() {
            return None;
        }
        let local = |t: Timestamp| t - chrono::Duration::milliseconds(self.clock_offset_ms);
        let cannot_renew =
            self.renewal_notice.is_some() || matches!(self.renewal, Renewal::Stopped { .. } | Renewal::SignInNeeded);
        [
            // (An access token that outlives its refresh token still
            // serves: the engine ends the session at the later of the two.)
            self.renewable_until
                .map(|t| (local(self.expires_at.map_or(t, |e| e.max(t))), EndCause::ProviderLimit)),
            self.idle_sign_out_at.map(|t| (t, EndCause::Idle)),
            self.ends_at.map(|t| (t, EndCause::Absolute)),
            self.expires_at
                .filter(|_| cannot_renew)
                .map(|t| (local(t), EndCause::AccessEnds)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(at, _)| *at)
        .map(|(at, because)| SessionEnd { at, because })
    }

    /// The headline, with times written by `time` (local clock time, say).
    pub fn headline(&self, time: impl Fn(Timestamp) -> String) -> Headline {
        let (tone, text) = match self.state {
            Phase::SigningIn => (Tone::Attention, "Signing in…".to_owned()),
            Phase::SignedOut | Phase::Expired | Phase::Revoked => match self.ended_because {
                None | Some(EndReason::SignedOut) => (Tone::Neutral, "Signed out".to_owned()),
                Some(EndReason::SignedOutElsewhere) => (Tone::Neutral, EndReason::SignedOutElsewhere.text().to_owned()),
                Some(r) => (Tone::Bad, r.text().to_owned()),
            },
            Phase::Active | Phase::Refreshing => match &self.renewal {
                Renewal::SignInNeeded => (
                    Tone::Attention,
                    match self.expires_at {
                        Some(at) => format!("Sign in again by {}", time(at)),
                        None => "Sign in again".to_owned(),
                    },
                ),
                Renewal::Stopped { reason, .. } => (Tone::Bad, format!("Can't renew: {reason}")),
                Renewal::Retrying {
                    offline, next_attempt, ..
                } if *offline => (
                    Tone::Attention,
                    match next_attempt {
                        Some(at) if self.state == Phase::Active => format!("Offline, retrying at {}", time(*at)),
                        _ => "Offline, retrying".to_owned(),
                    },
                ),
                Renewal::Retrying {
                    reason, next_attempt, ..
                } => (
                    Tone::Attention,
                    match next_attempt {
                        Some(at) if self.state == Phase::Active => {
                            format!("Can't renew: {reason}, retrying at {}", time(*at))
                        }
                        _ => format!("Can't renew: {reason}, retrying"),
                    },
                ),
                Renewal::OnSchedule if self.state == Phase::Refreshing => (Tone::Good, "Renewing…".to_owned()),
                Renewal::OnSchedule => (Tone::Good, "Active".to_owned()),
            },
        };
        Headline { tone, text }
    }
}

/// A time as the headline writes it: `14:02` today, `Tue 8 Dec 14:02`
/// another day (this machine's local time).
pub fn local_clock_time(at: Timestamp, now: Timestamp) -> String {
    let (at, now) = (at.with_timezone(&chrono::Local), now.with_timezone(&chrono::Local));
    if at.date_naive() == now.date_naive() {
        at.format("%H:%M").to_string()
    } else {
        at.format("%a %-d %b %H:%M").to_string()
    }
}

/// How renewal stands after a failed attempt `error` that is retried:
/// whether it means offline, and the reason for people.
pub(crate) fn retrying(error: &crate::error::Error, next_attempt: Option<Timestamp>) -> Renewal {
    use crate::error::Error;
    let offline = matches!(
        error,
        Error::Network { .. } | Error::ConnectionLost { .. } | Error::Timeout { .. } | Error::Tls { .. }
    );
    let reason = match error {
        Error::PinMismatch { .. } => {
            "the server's certificate does not match the pinned keys (the connection may be intercepted)".to_owned()
        }
        Error::Server { status: 429, .. } => "the provider asks to slow down (429)".to_owned(),
        Error::Server { status, .. } if *status >= 500 => format!("the provider reported a problem ({status})"),
        Error::Server { status, .. } => format!("the provider answered {status}"),
        Error::Protocol(_) | Error::ResponseTooLarge { .. } => {
            "the answer was not the provider's (a captive portal or a proxy may be in the way)".to_owned()
        }
        Error::Token(_) => "the provider's new token failed a time check (a clock may be off)".to_owned(),
        Error::Vault(_) => "the keychain is locked or unavailable".to_owned(),
        Error::Lock(_) => "another process holds the session lock".to_owned(),
        _ if offline => "the provider cannot be reached".to_owned(),
        other => other.to_string(),
    };
    Renewal::Retrying {
        offline,
        reason,
        code: error.code(),
        next_attempt,
    }
}

/// What to fix when renewing stopped because of `error` (a configuration
/// error: the client or the profile, not the refresh token).
pub(crate) fn stopped(error: &crate::error::Error) -> Renewal {
    use crate::error::Error;
    let reason = match error {
        Error::Authorization { error: e, .. } => match e.as_str() {
            "invalid_client" => "the provider does not accept this client: check the profile's client_id and that the client is registered at the provider as a public client".to_owned(),
            "unauthorized_client" => "this client may not use refresh tokens at the provider: allow the refresh_token grant for it, or set extend_access = \"reauthenticate\"".to_owned(),
            "unsupported_grant_type" => "the provider does not offer refresh tokens to this client: set extend_access = \"reauthenticate\"".to_owned(),
            "invalid_scope" => "the provider refuses the scopes the session was granted: check the profile's scopes".to_owned(),
            other => format!("the provider refused the client ({other})"),
        },
        other => other.to_string(),
    };
    Renewal::Stopped {
        reason,
        code: error.code(),
    }
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

pub use crate::os::clock::duration_text;

pub use crate::error::RemoteSession;

#[cfg(test)]
mod tests {
    use super::*;

    fn active(now: Timestamp) -> SessionView {
        SessionView {
            seq: 1,
            profile: "p".into(),
            environment: "playground".into(),
            provider: "finhub".into(),
            state: Phase::Active,
            user: Some("alice".into()),
            tenant: None,
            customer: None,
            scope: None,
            session_id: Some("s1".into()),
            issued_at: Some(now),
            expires_at: Some(now + chrono::Duration::minutes(5)),
            renewable_until: None,
            offline: false,
            backup_endpoint: None,
            sessions_api: true,
            anomalies: Vec::new(),
            idle_sign_out_at: None,
            ends_at: None,
            pin_report: None,
            next_refresh_at: None,
            refresh_count: 0,
            last_refresh: None,
            last_error: None,
            persistence: Persistence::Keychain,
            clock_offset_ms: 0,
            sign_in_method: SignInMethod::Password,
            extend_access: ExtendAccess::Refresh,
            name: None,
            email: None,
            browser: None,
            reauth_needed: false,
            renewal: Renewal::OnSchedule,
            ended_because: None,
            headline: Headline {
                tone: Tone::Good,
                text: "Active".into(),
            },
            renewal_notice: None,
            session_end: None,
        }
    }

    #[test]
    fn the_session_ends_at_the_earliest_limit_and_says_which() {
        let now = chrono::Utc::now();
        let min = chrono::Duration::minutes;
        let mut v = active(now);
        // Renewed for as long as the provider allows, no stated limit.
        assert_eq!(v.session_end(), None);
        // The refresh token's stated end; an access token that outlives it
        // still serves until its own end.
        v.renewable_until = Some(now + min(3));
        let end = v.session_end().unwrap();
        assert_eq!((end.at, end.because), (now + min(5), EndCause::ProviderLimit));
        v.renewable_until = Some(now + min(60));
        assert_eq!(v.session_end().unwrap().at, now + min(60));
        v.ends_at = Some(now + min(50));
        assert_eq!(v.session_end().unwrap().because, EndCause::Absolute);
        v.idle_sign_out_at = Some(now + min(30));
        let end = v.session_end().unwrap();
        assert_eq!((end.at, end.because), (now + min(30), EndCause::Idle));
        // Renewal stopped: it ends with its access token (5 min).
        v.renewal = Renewal::Stopped {
            reason: "the client is not allowed to refresh".into(),
            code: ErrorCode::SessionExpired,
        };
        let end = v.session_end().unwrap();
        assert_eq!((end.at, end.because), (now + min(5), EndCause::AccessEnds));
        // Signed out: no end to show.
        v.state = Phase::SignedOut;
        assert_eq!(v.session_end(), None);
    }

    #[test]
    fn provider_times_move_to_this_machines_clock() {
        let now = chrono::Utc::now();
        let mut v = active(now);
        // The provider's clock is 90 s ahead: its limit comes 90 s earlier here.
        v.clock_offset_ms = 90_000;
        v.renewable_until = Some(now + chrono::Duration::minutes(10));
        v.ends_at = Some(now + chrono::Duration::seconds(600 - 60));
        let end = v.session_end().unwrap();
        assert_eq!(end.because, EndCause::ProviderLimit, "{end:?}");
        assert_eq!(end.at, now + chrono::Duration::seconds(600 - 90));
    }
}
