use super::*;
use session_core::view::{Persistence, RefreshOutcome};

/// Security review 2: the app's start line names where the admin API
/// and its token are, never the token (stdout lands in the journal).
#[test]
fn the_playground_announcement_holds_no_token() {
    let line = playground_announcement("https://127.0.0.1:4000/admin", "/data/playground/ca.pem");
    assert_eq!(
        line,
        "playground: admin API at https://127.0.0.1:4000/admin; its token is in the About and QA panel and in /data/playground/admin-token"
    );
}

pub(crate) fn view(state: Phase, secs_left: i64, last_ok: Option<bool>, next: bool) -> SessionView {
    let now = chrono::Utc::now();
    SessionView {
        seq: 1,
        renewable_until: None,
        idle_sign_out_at: None,
        ends_at: None,
        offline: false,
        backup_endpoint: None,
        sessions_api: true,
        anomalies: Vec::new(),
        pin_report: None,
        profile: "p".into(),
        environment: "playground".into(),
        provider: "finhub".into(),
        state,
        user: Some("alice".into()),
        tenant: None,
        customer: None,
        scope: None,
        session_id: Some("s1".into()),
        issued_at: Some(now - chrono::Duration::seconds(60)),
        expires_at: Some(now + chrono::Duration::seconds(secs_left)),
        next_refresh_at: next.then_some(now),
        refresh_count: 0,
        last_refresh: last_ok.map(|ok| RefreshOutcome { at: now, ok }),
        last_error: None,
        persistence: Persistence::Keychain,
        clock_offset_ms: 0,
        sign_in_method: session_core::view::SignInMethod::Password,
        extend_access: session_core::view::ExtendAccess::Refresh,
        name: None,
        email: None,
        browser: None,
        reauth_needed: false,
        renewal: session_core::view::Renewal::OnSchedule,
        ended_because: None,
        headline: session_core::view::Headline {
            tone: session_core::view::Tone::Good,
            text: "Active".into(),
        },
        renewal_notice: None,
        session_end: None,
    }
}

#[test]
fn warns_before_a_limit_no_renewal_moves() {
    use session_core::view::{EndCause, SessionEnd};
    let now = chrono::Utc::now();
    let mut v = view(Phase::Active, 900, Some(true), true);
    assert!(session_end_warning(&v, now).is_none(), "no end set");
    let at = |secs| now + chrono::Duration::seconds(secs);
    v.session_end = Some(SessionEnd {
        at: at(90),
        because: EndCause::Absolute,
    });
    let text = session_end_warning(&v, now).expect("90 s before the absolute limit");
    assert!(
        text.contains("the profile's time limit") && text.contains("sign in again"),
        "{text}"
    );
    v.session_end = Some(SessionEnd {
        at: at(90),
        because: EndCause::ProviderLimit,
    });
    assert!(session_end_warning(&v, now).unwrap().contains("the provider's limit"));
    v.session_end = Some(SessionEnd {
        at: at(END_LEAD_SECS + 30),
        because: EndCause::Absolute,
    });
    assert!(session_end_warning(&v, now).is_none(), "too early");
    // The idle sign-out and an unrenewable access token have their own warnings.
    v.session_end = Some(SessionEnd {
        at: at(90),
        because: EndCause::Idle,
    });
    assert!(session_end_warning(&v, now).is_none());
    v.session_end = Some(SessionEnd {
        at: at(90),
        because: EndCause::AccessEnds,
    });
    assert!(session_end_warning(&v, now).is_none());
    v.session_end = Some(SessionEnd {
        at: at(90),
        because: EndCause::Absolute,
    });
    v.state = Phase::SignedOut;
    assert!(session_end_warning(&v, now).is_none(), "no session");
}

#[test]
fn warns_only_when_expiry_is_near_and_refresh_fails() {
    let now = chrono::Utc::now();
    assert!(expiry_warning(&view(Phase::Active, 90, Some(false), true), now).is_some());
    assert!(
        expiry_warning(&view(Phase::Active, 90, None, false), now).is_some(),
        "no refresh possible"
    );
    assert!(expiry_warning(&view(Phase::Active, 90, Some(true), true), now).is_none());
    assert!(expiry_warning(&view(Phase::Active, 900, Some(false), true), now).is_none());
    assert!(expiry_warning(&view(Phase::Expired, 90, Some(false), true), now).is_none());
    // Re-authenticate mode: as soon as the person is needed, long before the end.
    let mut reauth = view(Phase::Active, 900, Some(false), false);
    reauth.reauth_needed = true;
    assert!(expiry_warning(&reauth, now).unwrap().contains("Sign in again before"));
}

#[test]
fn the_warning_says_whether_the_session_ends_or_renewal_keeps_trying() {
    let now = chrono::Utc::now();
    // Renewal is failing but still tried: the access token expires, the
    // session does not end with it (it goes offline and keeps trying for
    // as long as the refresh token lives).
    let mut retrying = view(Phase::Active, 90, Some(false), true);
    retrying.renewable_until = Some(now + chrono::Duration::hours(1));
    let text = expiry_warning(&retrying, now).unwrap();
    assert!(text.contains("access expires in 90 s"), "{text}");
    assert!(text.contains("renewing it keeps failing"), "{text}");
    let until = retrying
        .renewable_until
        .unwrap()
        .with_timezone(&chrono::Local)
        .format("%H:%M");
    assert!(text.contains(&format!("keeps trying until {until}")), "{text}");
    assert!(!text.contains("ends in"), "{text}");
    // No renewal possible: the session ends with its token.
    let ending = expiry_warning(&view(Phase::Active, 90, None, false), now).unwrap();
    assert!(
        ending.contains("session ends in 90 s and cannot be renewed"),
        "{ending}"
    );
}

#[test]
fn provider_text_reaches_a_notification_without_markup() {
    let now = chrono::Utc::now();
    let mut v = view(Phase::Active, 90, Some(false), true);
    v.last_error = Some(ErrorInfo::new(
        ErrorCode::ServerError,
        "<a href=\"https://evil.example\">click</a> & more",
    ));
    let text = expiry_warning(&v, now).unwrap();
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    assert!(text.contains("&lt;a href") && text.contains("&amp; more"), "{text}");
}

#[test]
fn options_parse_flags_and_ignore_the_rest() {
    let o = Options::from_args(
        [
            "app",
            "--config",
            "c.toml",
            "--data-dir",
            "d",
            "--profile",
            "prod",
            "--other",
        ]
        .map(String::from),
    )
    .unwrap();
    assert_eq!(o.config, Some("c.toml".into()));
    assert_eq!(o.data_dir, Some("d".into()));
    assert_eq!(o.profile.as_deref(), Some("prod"));
    assert!(Options::from_args(["app", "--config"].map(String::from))
        .unwrap_err()
        .contains("--config needs a value"));
}

fn summaries(notices: &[Notice]) -> Vec<&'static str> {
    notices.iter().map(|n| n.summary).collect()
}

#[test]
fn a_session_ended_by_anyone_but_this_person_is_a_notification_with_sign_in_again() {
    use session_core::view::EndReason;
    let now = chrono::Utc::now();
    let active = view(Phase::Active, 900, Some(true), true);
    for (reason, summary) in [
        (EndReason::Revoked, Some("Session ended by the provider")),
        (EndReason::Refused, Some("Session ended by the provider")),
        (EndReason::EndedOnAnotherDevice, Some("Session ended on another device")),
        (EndReason::RefreshTokenExpired, Some("Session reached its time limit")),
        (EndReason::Absolute, Some("Session reached its time limit")),
        (EndReason::Idle, Some("Signed out for inactivity")),
        (EndReason::SignedOutElsewhere, Some("Signed out elsewhere")),
        (EndReason::CheckFailed, Some("Session ended for your safety")),
        (EndReason::SignedOut, None),
    ] {
        let mut ended = view(Phase::Revoked, 900, Some(true), false);
        ended.session_id = None;
        ended.ended_because = Some(reason);
        let got = notices(Some(&active), &ended, now);
        assert_eq!(summaries(&got), summary.into_iter().collect::<Vec<_>>(), "{reason:?}");
        if let Some(n) = got.first() {
            assert_eq!(n.action, NoticeAction::SignInAgain);
            assert_eq!(n.once, "ended:s1", "keyed by the session that ended");
            assert!(
                n.body.contains(" p session") && n.body.ends_with(" Sign in again to go on."),
                "{}",
                n.body
            );
        }
        // Only on the change: a view that was already ended says nothing.
        assert!(notices(Some(&ended), &ended, now).is_empty(), "{reason:?}");
        assert!(notices(None, &ended, now).is_empty(), "{reason:?} at the start");
    }
}

#[test]
fn the_idle_sign_out_warns_a_minute_ahead_with_stay_signed_in() {
    let now = chrono::Utc::now();
    let mut v = view(Phase::Active, 900, Some(true), true);
    v.idle_sign_out_at = Some(now + chrono::Duration::seconds(IDLE_LEAD_SECS + 5));
    assert!(notices(Some(&v), &v, now).is_empty(), "too early");
    v.idle_sign_out_at = Some(now + chrono::Duration::seconds(45));
    let got = notices(Some(&v), &v, now);
    assert_eq!(summaries(&got), ["Signing out for inactivity"]);
    assert_eq!(got[0].action, NoticeAction::StaySignedIn);
    // Activity moves the sign-out: a later warning is a new one.
    let mut later = v.clone();
    later.idle_sign_out_at = Some(now + chrono::Duration::seconds(50));
    assert_ne!(notices(Some(&v), &later, now)[0].once, got[0].once);
    // Within the same second too (a press right after the warning).
    let whole = chrono::DateTime::from_timestamp(now.timestamp() + 45, 0).unwrap();
    v.idle_sign_out_at = Some(whole);
    later.idle_sign_out_at = Some(whole + chrono::Duration::milliseconds(200));
    assert_ne!(
        notices(Some(&v), &later, now)[0].once,
        notices(Some(&v), &v, now)[0].once
    );
    v.state = Phase::Refreshing;
    assert!(notices(Some(&v), &v, now).is_empty(), "only while active");
}

#[test]
fn renewal_stopping_and_new_findings_are_told_once_on_the_change() {
    use session_core::insight::anomaly::{Finding, Kind};
    use session_core::view::Renewal;
    let now = chrono::Utc::now();
    let before = view(Phase::Active, 900, Some(true), true);
    let mut stopped = before.clone();
    stopped.renewal = Renewal::Stopped {
        reason: "the provider refused this client <b>".into(),
        code: session_core::ErrorCode::ConfigInvalid,
    };
    let got = notices(Some(&before), &stopped, now);
    assert_eq!(summaries(&got), ["Session can't be renewed"]);
    assert!(
        got[0].body.contains("refused this client &lt;b&gt;"),
        "no markup: {}",
        got[0].body
    );
    assert!(notices(Some(&stopped), &stopped, now).is_empty(), "already stopped");

    let mut found = before.clone();
    found.anomalies = vec![Finding {
        kind: Kind::NewLocation,
        reason: "A sign-in from Lisbon, PT.".into(),
    }];
    let got = notices(Some(&before), &found, now);
    assert_eq!(summaries(&got), ["New sign-in location"]);
    assert_eq!(got[0].action, NoticeAction::Show);
    assert_eq!(got[0].body, "Your p session: A sign-in from Lisbon, PT.");
    assert!(notices(Some(&found), &found, now).is_empty(), "already told");
}

#[test]
fn the_tray_looks_again_when_a_warning_falls_due() {
    let now = chrono::Utc::now();
    let max = std::time::Duration::from_secs(30);
    let mut v = view(Phase::Active, 3600, Some(true), true);
    assert_eq!(next_look(&v, now, max), max);
    v.idle_sign_out_at = Some(now + chrono::Duration::seconds(IDLE_LEAD_SECS + 7));
    assert_eq!(next_look(&v, now, max).as_secs(), 7, "when the idle lead begins");
    v.idle_sign_out_at = Some(now + chrono::Duration::seconds(10));
    assert_eq!(next_look(&v, now, max), max, "the lead has passed: the warning is out");
    v.expires_at = Some(now + chrono::Duration::seconds(120));
    assert_eq!(next_look(&v, now, max), max);
}

#[test]
fn notification_buttons_read_back_from_their_keys() {
    for a in NoticeAction::ALL {
        assert_eq!(NoticeAction::from_key(a.key()), Some(a));
    }
    assert_eq!(NoticeAction::from_key("default"), None);
}
