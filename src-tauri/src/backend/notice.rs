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
