//! The view says which renewal state a session is in (issue 22's rule):
//! offline and retrying, the provider reached but not renewing, stopped
//! until the profile is fixed, or ended by the provider; with the one
//! headline every front shows.

use super::*;
use crate::view::{EndReason, Renewal, Tone};

async fn failing_with(failure: Error) -> (Rig, SessionView) {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.fail_with.lock().unwrap() = Some(failure);
    let _ = rig.engine.refresh_now().await;
    let view = rig.engine.view();
    (rig, view)
}

#[tokio::test(start_paused = true)]
async fn no_network_reads_offline_retrying_with_the_next_attempt() {
    let (rig, view) = failing_with(Error::Network {
        host: "idp.test:443".into(),
        detail: "Network is unreachable".into(),
    })
    .await;
    let Renewal::Retrying {
        offline: true,
        next_attempt: Some(at),
        ..
    } = view.renewal
    else {
        panic!("{:?}", view.renewal)
    };
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.headline.tone, Tone::Attention);
    let when = crate::view::local_clock_time(at, rig.engine.now());
    assert_eq!(view.headline.text, format!("Offline, retrying at {when}"));
}

#[tokio::test(start_paused = true)]
async fn a_captive_portals_certificate_reads_offline_too() {
    let (_rig, view) = failing_with(Error::Tls {
        host: "idp.test:443".into(),
        detail: "invalid peer certificate: UnknownIssuer".into(),
    })
    .await;
    assert!(
        matches!(view.renewal, Renewal::Retrying { offline: true, .. }),
        "{:?}",
        view.renewal
    );
    assert!(
        view.headline.text.starts_with("Offline, retrying at "),
        "{}",
        view.headline.text
    );
}

#[tokio::test(start_paused = true)]
async fn a_provider_error_reads_cant_renew_retrying_at() {
    let (_rig, view) = failing_with(Error::Server {
        status: 503,
        message: "Service Unavailable".into(),
        retry_after: None,
    })
    .await;
    assert!(
        matches!(view.renewal, Renewal::Retrying { offline: false, .. }),
        "{:?}",
        view.renewal
    );
    assert!(
        view.headline
            .text
            .starts_with("Can't renew: the provider reported a problem (503), retrying at "),
        "{}",
        view.headline.text
    );
    assert_eq!(view.headline.tone, Tone::Attention);
    // A pin mismatch says it may be an interception, and is retried.
    let (_rig, view) = failing_with(Error::PinMismatch {
        host: "idp.test:443".into(),
        presented: "sha256/portal".into(),
    })
    .await;
    assert!(
        view.headline.text.contains("may be intercepted"),
        "{}",
        view.headline.text
    );
    assert!(view.headline.text.contains("retrying at"), "{}", view.headline.text);
}

#[tokio::test(start_paused = true)]
async fn a_misconfigured_client_reads_cant_renew_with_what_to_fix_and_keeps_everything() {
    let (rig, view) = failing_with(Error::Authorization {
        error: "invalid_client".into(),
        description: None,
    })
    .await;
    assert!(matches!(view.renewal, Renewal::Stopped { .. }), "{:?}", view.renewal);
    assert_eq!(view.headline.tone, Tone::Bad);
    assert!(
        view.headline.text.starts_with("Can't renew: ") && view.headline.text.contains("client_id"),
        "{}",
        view.headline.text
    );
    assert!(!view.headline.text.contains("retrying"), "{}", view.headline.text);
    assert_eq!(view.state, Phase::Active);
    assert!(rig.stored().is_some(), "a configuration error deleted the session");
}

#[tokio::test(start_paused = true)]
async fn a_revocation_reads_ended_by_the_provider() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.revoke.store(true, Ordering::SeqCst);
    let _ = rig.engine.refresh_now().await;
    let view = rig.engine.view();
    assert_eq!(view.ended_because, Some(EndReason::Revoked));
    assert_eq!(view.headline.text, "Ended by the provider");
    assert_eq!(view.headline.tone, Tone::Bad);
}

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_token_and_a_sign_out_say_so() {
    let (refused, view) = failing_with(Error::RefreshRefused("invalid_grant".into())).await;
    assert_eq!(view.ended_because, Some(EndReason::Refused));
    // The audit log says why, too: in the window's words, with the
    // provider's answer as the detail.
    let ended = events(&refused.engine)
        .into_iter()
        .find(|e| matches!(e, AuditEvent::SessionExpired { .. }))
        .expect("a SessionExpired record");
    assert_eq!(ended.describe(), EndReason::Refused.text());
    assert!(
        ended.detail().is_some_and(|d| d.contains("refused its refresh token")),
        "{ended:?}"
    );
    assert!(
        view.headline.text.starts_with("Ended by the provider"),
        "{}",
        view.headline.text
    );
    let rig = rig(60);
    sign_in(&rig).await;
    assert_eq!(rig.engine.view().headline.text, "Active");
    assert_eq!(rig.engine.view().headline.tone, Tone::Good);
    rig.engine.sign_out().await.unwrap();
    let view = rig.engine.view();
    assert_eq!(view.ended_because, Some(EndReason::SignedOut));
    assert_eq!(view.headline.text, "Signed out");
    assert_eq!(view.headline.tone, Tone::Neutral);
}

#[tokio::test(start_paused = true)]
async fn the_idle_and_absolute_timeouts_say_which() {
    for (profile, reason, word) in [
        (with_timeouts(Some(120), None), EndReason::Idle, "idle"),
        (with_timeouts(None, Some(120)), EndReason::Absolute, "time limit"),
    ] {
        let rig = rig_for(profile, 3600);
        sign_in(&rig).await;
        let _scheduler = rig.engine.start_with(None);
        tokio::time::sleep(Duration::from_secs(125)).await;
        let view = rig.engine.view();
        assert_eq!(view.ended_because, Some(reason), "{view:?}");
        assert!(view.headline.text.contains(word), "{}", view.headline.text);
    }
}
