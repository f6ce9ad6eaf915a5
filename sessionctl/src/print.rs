//! What `sessionctl` prints: sessions, metrics, session lists, doctor
//! reports. Text for people; `--json` output is serialized where it is made.

use session_core::support::doctor::{Report, Status};
use session_core::view::{ExtendAccess, Persistence};
use session_core::SessionView;

pub fn when(t: Option<chrono::DateTime<chrono::Utc>>, now: chrono::DateTime<chrono::Utc>) -> String {
    match t {
        None => "-".into(),
        Some(t) => {
            let secs = (t - now).num_seconds();
            let rel = if secs >= 0 {
                format!("in {}m {:02}s", secs / 60, secs % 60)
            } else {
                format!("{}m {:02}s ago", -secs / 60, -secs % 60)
            };
            format!("{} ({rel})", t.format("%Y-%m-%d %H:%M:%S UTC"))
        }
    }
}

pub fn print_view(view: &SessionView, json: bool) {
    if json {
        println!("{}", serde_json::to_string(view).unwrap_or_default());
        return;
    }
    let now = chrono::Utc::now();
    let state = serde_json::to_value(view.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    println!(
        "Profile      : {} ({}, {})",
        view.profile, view.environment, view.provider
    );
    println!("State        : {state}");
    println!("Status       : {}", view.headline.text);
    if let Some(user) = &view.user {
        println!("User         : {user}");
    }
    if view.name.is_some() || view.email.is_some() {
        let name = [view.name.clone(), view.email.as_ref().map(|e| format!("<{e}>"))]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        println!("Name         : {name}");
    }
    if view.state.has_session() {
        println!("Customer     : {}", view.customer.as_deref().unwrap_or("-"));
        println!("Tenant       : {}", view.tenant.as_deref().unwrap_or("-"));
        println!("Scope        : {}", view.scope.as_deref().unwrap_or("-"));
        if let Some(notice) = &view.renewal_notice {
            println!("Renewal      : not possible. {notice}");
        }
        println!("Expires      : {}", when(view.expires_at, now));
        if view.renewable_until.is_some() {
            println!("Renewable    : until {}", when(view.renewable_until, now));
        }
        if let Some(at) = view.idle_sign_out_at {
            println!(
                "Idle sign-out: {} unless there is activity (the profile's idle timeout)",
                when(Some(at), now)
            );
        }
        match &view.session_end {
            Some(end) => println!("Session ends : {} ({})", when(Some(end.at), now), end.because.text()),
            None => println!("Session ends : when you sign out (renewed for as long as the provider allows)"),
        }
        if let Some(at) = view.ends_at {
            println!("Absolute end : {} (the profile's limit)", when(Some(at), now));
        }
        if let Some(report) = &view.pin_report {
            println!("Pins         : REPORT-ONLY, mismatch: {report}");
        }
        if let Some(backup) = &view.backup_endpoint {
            println!("Endpoint     : using backup endpoint {backup} (the primary failed; it is tried again from time to time)");
        }
        if view.offline {
            println!("Connection   : offline, retrying (the session token has expired; it is renewed as soon as the provider answers)");
        }
        if let session_core::view::Renewal::Retrying { next_attempt, .. } = &view.renewal {
            println!(
                "Next attempt : {} (sooner when the network comes back)",
                when(*next_attempt, now)
            );
        }
        match view.extend_access {
            ExtendAccess::Refresh => {
                println!("Kept alive by: refresh token");
                println!("Next refresh : {}", when(view.next_refresh_at, now));
            }
            ExtendAccess::Reauthenticate => {
                println!("Kept alive by: signing in again (re-authentication)");
                println!("Next silent  : {}", when(view.next_refresh_at, now));
                let note = if view.reauth_needed || view.next_refresh_at.is_none() {
                    "run `sessionctl login`"
                } else {
                    "unless a silent sign-in extends it first"
                };
                println!("Sign in by   : {} ({note})", when(view.expires_at, now));
            }
        }
        let last = match &view.last_refresh {
            None => String::new(),
            Some(r) => format!(
                " (last {} at {})",
                if r.ok { "succeeded" } else { "failed" },
                r.at.format("%H:%M:%S")
            ),
        };
        println!("Refreshes    : {}{last}", view.refresh_count);
        println!(
            "Keychain     : {}",
            match view.persistence {
                Persistence::Keychain => "stored in the OS keychain",
                Persistence::MemoryOnly => "UNAVAILABLE: memory only, this session will not survive a restart",
            }
        );
    }
    if let Some(e) = &view.last_error {
        println!("Last error   : [{}] {}", e.code, e.message);
    }
}

pub fn warn_memory_only(view: &SessionView, json: bool) {
    if view.persistence == Persistence::MemoryOnly && !json {
        eprintln!("warning[keychain_unavailable]: the OS keychain is not available; the session is kept in memory only and ends with this process");
    }
}

pub fn print_metrics(m: &session_core::insight::metrics::Metrics) {
    let ms = |v: Option<u64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
    println!("Sessions     : {}", m.sessions.len());
    println!(
        "Refreshes    : {} (latency median {}, 95th percentile {})",
        m.refreshes,
        ms(m.refresh_latency_p50_ms),
        ms(m.refresh_latency_p95_ms)
    );
    println!("API calls    : {}", m.api_calls);
    println!("Failures     : {}", m.failures);
    println!("Offline      : {} s", m.offline_secs);
    println!(
        "Locations    : {}",
        if m.locations.is_empty() {
            "-".into()
        } else {
            m.locations.join("; ")
        }
    );
    for s in m.sessions.iter().rev() {
        println!(
            "  {}  {:>7} s  {:>13}  {:>10}  {}{}",
            s.started.format("%Y-%m-%d %H:%M"),
            s.duration_secs,
            plural(s.refreshes, "refresh", "refreshes"),
            plural(s.api_calls, "call", "calls"),
            s.end.as_deref().unwrap_or("live"),
            s.location.as_deref().map(|l| format!("  {l}")).unwrap_or_default()
        );
    }
}

pub fn print_sessions(list: &[session_core::view::RemoteSession]) {
    let now = chrono::Utc::now();
    for s in list {
        let mark = if s.current { "  (this device)" } else { "" };
        let place = [s.city.as_deref(), s.country.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        println!("{}{mark}", s.device_name);
        println!("  id         : {}", s.id);
        println!("  signed in  : {}", when(Some(s.created), now));
        println!("  last seen  : {}", when(s.last_seen, now));
        println!(
            "  from       : {}{}",
            s.ip.as_deref().unwrap_or("unknown address"),
            if place.is_empty() {
                String::new()
            } else {
                format!(" ({place})")
            }
        );
    }
}

pub fn warn_no_refresh(view: &SessionView, json: bool) {
    if let (Some(notice), false) = (&view.renewal_notice, json) {
        eprintln!("warning[no_refresh_token]: {notice}");
    }
}

/// A doctor's report: one line per check, its fix below, a summary.
pub fn print_report(report: &Report) {
    for c in &report.checks {
        println!("{:<8} {:<44} {}", c.status.as_str(), c.what, c.detail);
        if let Some(tls) = &c.tls {
            for (i, cert) in tls.presented.iter().enumerate() {
                let role = if i == 0 { "leaf" } else { "sent" };
                let path = if cert.on_verified_path {
                    "on the verified path"
                } else {
                    "NOT on the verified path"
                };
                println!(
                    "{:<8} {:<44}   certificate {} ({role}): {}, {path}",
                    "",
                    "",
                    i + 1,
                    cert.pin
                );
            }
            if let Some(anchor) = tls.verified_path.last() {
                println!("{:<8} {:<44}   trust anchor: {anchor}", "", "");
            }
        }
        if let Some(fix) = &c.fix {
            println!("{:<8} {:<44} fix: {fix}", "", "");
        }
    }
    let (failed, warnings) = (report.count(Status::Failed), report.count(Status::Warning));
    println!(
        "{}: {} ok, {}, {failed} failed.",
        plural(report.checks.len() as u64, "check", "checks"),
        report.count(Status::Ok),
        plural(warnings as u64, "warning", "warnings"),
    );
}

/// One audit record as `sessionctl audit` prints it.
pub fn audit_line(r: &session_core::storage::audit::AuditRecord) -> String {
    format!(
        "{}  {:<8} {:<10} {}",
        r.time.format("%Y-%m-%d %H:%M:%S"),
        r.user.as_deref().unwrap_or("-"),
        r.fingerprint
            .as_deref()
            .map(|f| f.chars().take(19).collect::<String>())
            .unwrap_or_else(|| "-".into()),
        r.event.line()
    )
}

/// "1 refresh", "2 refreshes": a count with its noun in the right number.
pub fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_read_in_the_right_number() {
        assert_eq!(super::plural(1u32, "refresh", "refreshes"), "1 refresh");
        assert_eq!(super::plural(0u32, "refresh", "refreshes"), "0 refreshes");
        assert_eq!(super::plural(2u64, "call", "calls"), "2 calls");
    }
}
