//! Texts the shell shows outside the window: the line printed when the
//! built-in Playground starts, the expiry notification and the warning
//! before the session really ends.

use super::*;

/// The line the app prints when its built-in Playground starts: where the
/// admin API is and where its token is kept (never the token).
pub fn playground_announcement(admin_url: &str, ca_cert: &str) -> String {
    let token_file = std::path::Path::new(ca_cert).with_file_name(crate::embedded::ADMIN_TOKEN_FILE);
    format!(
        "playground: admin API at {admin_url}; its token is in the About and QA panel and in {}",
        token_file.display()
    )
}

/// The warning to show as a desktop notification, if any: the session will
/// expire within two minutes and refreshing it keeps failing (or is not
/// possible).
pub fn expiry_warning(view: &SessionView, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    if view.state != Phase::Active {
        return None;
    }
    let expires_at = view.expires_at?;
    if view.reauth_needed && expires_at > now {
        // Re-authenticate mode: say so at once, with the time, not only in
        // the last two minutes.
        let local = expires_at.with_timezone(&chrono::Local).format("%H:%M");
        return Some(format!(
            "Your {} session could not be extended without you. Sign in again before {local} to keep it.",
            view.profile
        ));
    }
    let left = (expires_at - now).num_seconds();
    let failing = view.last_refresh.as_ref().is_some_and(|r| !r.ok) || view.next_refresh_at.is_none();
    // The provider writes part of the error text; some notification daemons
    // render markup, so none may come through.
    let plain = |t: &str| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    if !failing || !(0..=120).contains(&left) {
        return None;
    }
    let why = view
        .last_error
        .as_ref()
        .map(|e| format!(" ({})", plain(&e.message)))
        .unwrap_or_default();
    let profile = &view.profile;
    Some(if view.next_refresh_at.is_none() {
        format!("Your {profile} session ends in {left} s and cannot be renewed{why}. Save your work and sign in again.")
    } else {
        // Still retrying: since the engine keeps a session whose provider
        // cannot be reached ("offline, retrying") for as long as its refresh
        // token lives, the access token's end is not the session's.
        let until = view
            .renewable_until
            .map(|t| format!(" until {}", t.with_timezone(&chrono::Local).format("%H:%M")))
            .unwrap_or_default();
        format!(
            "Your {profile} session's access expires in {left} s and renewing it keeps failing{why}. \
             Session Manager keeps trying{until}; save your work in case you have to sign in again."
        )
    })
}

/// How long before the session's real end (`session_end`) the app warns.
pub const END_LEAD_SECS: i64 = 120;

/// The warning before the session really ends, when a limit that no
/// renewal moves is near: the provider's limit on renewing it, or the
/// profile's absolute limit (`END_LEAD_SECS` ahead). The idle sign-out has
/// its own warning (activity moves it), and a session that cannot be
/// renewed is [`expiry_warning`]'s.
pub fn session_end_warning(view: &SessionView, now: chrono::DateTime<chrono::Utc>) -> Option<String> {
    use session_core::view::EndCause;
    if !view.state.has_session() {
        return None;
    }
    let end = view.session_end.as_ref()?;
    if !matches!(end.because, EndCause::ProviderLimit | EndCause::Absolute) {
        return None;
    }
    let left = (end.at - now).num_seconds();
    if !(0..=END_LEAD_SECS).contains(&left) {
        return None;
    }
    Some(format!(
        "Your {} session ends at {}: {}. Save your work; you will have to sign in again.",
        view.profile,
        session_core::view::local_clock_time(end.at, now),
        end.because.text()
    ))
}

/// How long before the idle sign-out the app warns (the window's countdown
/// shows from the same moment).
pub const IDLE_LEAD_SECS: i64 = 60;

/// What a notification's button does. The key is what the notification
/// server hands back when it is pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeAction {
    /// Open the window on a new sign-in (the window does what its own
    /// "Sign in again" does).
    SignInAgain,
    /// Count as activity, which moves the idle sign-out.
    StaySignedIn,
    /// Show the window.
    Show,
}

impl NoticeAction {
    pub const ALL: [NoticeAction; 3] = [
        NoticeAction::SignInAgain,
        NoticeAction::StaySignedIn,
        NoticeAction::Show,
    ];

    pub fn key(self) -> &'static str {
        match self {
            NoticeAction::SignInAgain => "sign-in-again",
            NoticeAction::StaySignedIn => "stay-signed-in",
            NoticeAction::Show => "show",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            NoticeAction::SignInAgain => "Sign in again",
            NoticeAction::StaySignedIn => "Stay signed in",
            NoticeAction::Show => "Show",
        }
    }

    pub fn from_key(key: &str) -> Option<NoticeAction> {
        NoticeAction::ALL.into_iter().find(|a| a.key() == key)
    }
}

/// One desktop notification to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Shown once per key (a session and what happened to it).
    pub once: String,
    pub summary: &'static str,
    pub body: String,
    pub action: NoticeAction,
}

/// The notifications a view calls for, given the view before it (`None` at
/// the start): the session about to end (a limit no renewal moves, or
/// renewal failing), the idle sign-out near, renewal stopped, the session
/// ended by anything but this person here, and a new sign-in location or
/// other unusual activity. Each names the profile; the caller shows each
/// `once` key once.
pub fn notices(before: Option<&SessionView>, view: &SessionView, now: chrono::DateTime<chrono::Utc>) -> Vec<Notice> {
    let session = view.session_id.as_deref().unwrap_or("-");
    let profile = &view.profile;
    let mut out = Vec::new();
    let notice = |kind: &str, summary: &'static str, body: String, action: NoticeAction| Notice {
        once: format!("{kind}:{session}"),
        summary,
        body,
        action,
    };
    if let Some(body) = expiry_warning(view, now) {
        out.push(notice(
            "expiry",
            "Session about to expire",
            body,
            NoticeAction::SignInAgain,
        ));
    }
    if let Some(body) = session_end_warning(view, now) {
        out.push(notice("end", "Session ending soon", body, NoticeAction::SignInAgain));
    }
    if let Some(at) = view.idle_sign_out_at.filter(|_| view.state == Phase::Active) {
        if (0..=IDLE_LEAD_SECS).contains(&(at - now).num_seconds()) {
            // Activity moves the sign-out, and a later one warns again.
            out.push(Notice {
                once: format!("idle:{session}:{}", at.timestamp_millis()),
                summary: "Signing out for inactivity",
                body: format!(
                    "Your {profile} session signs out at {} unless you use it.",
                    session_core::view::local_clock_time(at, now)
                ),
                action: NoticeAction::StaySignedIn,
            });
        }
    }
    let was_stopped = before.is_some_and(|b| matches!(b.renewal, session_core::view::Renewal::Stopped { .. }));
    if let session_core::view::Renewal::Stopped { reason, .. } = &view.renewal {
        if view.state.has_session() && !was_stopped {
            let until = view
                .session_end
                .as_ref()
                .map(|e| format!(" It ends at {}.", session_core::view::local_clock_time(e.at, now)))
                .unwrap_or_default();
            out.push(notice(
                "stopped",
                "Session can't be renewed",
                format!("Your {profile} session can't be renewed: {}.{until}", sentence(reason)),
                NoticeAction::SignInAgain,
            ));
        }
    }
    // Ended, and not by this person here.
    let had_session = before.is_some_and(|b| b.state.has_session());
    if let (true, false, Some(reason)) = (had_session, view.state.has_session(), view.ended_because) {
        use session_core::view::EndReason;
        let told = match reason {
            EndReason::SignedOut => None,
            EndReason::Revoked => Some((
                "Session ended by the provider",
                format!("The provider ended your {profile} session."),
            )),
            EndReason::EndedOnAnotherDevice => Some((
                "Session ended on another device",
                format!("Your {profile} session was ended from another of your devices."),
            )),
            EndReason::Refused => Some((
                "Session ended by the provider",
                format!("The provider no longer accepts your {profile} session."),
            )),
            EndReason::RefreshTokenExpired => Some((
                "Session reached its time limit",
                format!("Your {profile} session reached the provider's time limit."),
            )),
            EndReason::Absolute => Some((
                "Session reached its time limit",
                format!("Your {profile} session reached the profile's time limit."),
            )),
            EndReason::Idle => Some((
                "Signed out for inactivity",
                format!("Your {profile} session was idle for longer than the profile allows."),
            )),
            EndReason::SignedOutElsewhere => Some((
                "Signed out elsewhere",
                format!("Your {profile} session was signed out in another window or terminal."),
            )),
            EndReason::CheckFailed => Some((
                "Session ended for your safety",
                format!("Your {profile} session was ended: a new token from the provider failed a security check."),
            )),
        };
        if let Some((summary, body)) = told {
            let ended = before.and_then(|b| b.session_id.as_deref()).unwrap_or(session);
            out.push(Notice {
                once: format!("ended:{ended}"),
                summary,
                body: format!("{body} Sign in again to go on."),
                action: NoticeAction::SignInAgain,
            });
        }
    }
    // Findings this view has that the one before did not.
    for finding in &view.anomalies {
        if before.is_some_and(|b| b.anomalies.contains(finding)) || !view.state.has_session() {
            continue;
        }
        use session_core::insight::anomaly::Kind;
        let summary = match finding.kind {
            Kind::NewLocation => "New sign-in location",
            Kind::ConcurrentSessions => "More sessions than expected",
            Kind::ApiPattern => "Unusual activity",
            Kind::UnusualHours => "Sign-in at an unusual hour",
            Kind::Clock => "This computer's clock is off",
        };
        out.push(Notice {
            once: format!("finding:{session}:{}", finding.reason),
            summary,
            body: format!("Your {profile} session: {}.", sentence(&finding.reason)),
            action: NoticeAction::Show,
        });
    }
    out
}

/// A server-written or engine reason as the middle of a sentence: no
/// markup (some notification daemons render it), no final full stop.
fn sentence(text: &str) -> String {
    text.trim_end_matches('.')
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// When the shell should look at the view again for a notification that
/// time alone brings (the idle, end and expiry warnings): the soonest such
/// moment, at most `max` from now, at least a second.
pub fn next_look(
    view: &SessionView,
    now: chrono::DateTime<chrono::Utc>,
    max: std::time::Duration,
) -> std::time::Duration {
    let leads = [
        view.idle_sign_out_at
            .map(|t| t - chrono::Duration::seconds(IDLE_LEAD_SECS)),
        view.session_end
            .as_ref()
            .map(|e| e.at - chrono::Duration::seconds(END_LEAD_SECS)),
        view.expires_at.map(|t| t - chrono::Duration::seconds(120)),
    ];
    leads
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .map(|t| (t - now).to_std().unwrap_or(max))
        .fold(max, std::cmp::min)
        .max(std::time::Duration::from_secs(1))
}
