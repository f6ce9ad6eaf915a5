//! The state machine and refresh timing, on paused tokio time with a test
//! clock and a scripted provider.

use super::*;
use crate::audit::AuditEvent;
use crate::clock::TestClock;
use crate::testkit::{self, keys, ScriptedProvider};
use crate::token::StaticJwks;
use crate::vault::MemoryStore;
use jsonwebtoken::Algorithm;
use std::sync::atomic::Ordering;

struct Rig {
    engine: Engine,
    provider: Arc<ScriptedProvider>,
    store: Arc<MemoryStore>,
    clock: Arc<TestClock>,
    dir: tempfile::TempDir,
}

fn rig_with(
    lifetime: i64,
    store: Arc<MemoryStore>,
    dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    provider: Option<Arc<ScriptedProvider>>,
) -> Rig {
    rig_for(testkit::profile(), lifetime, store, dir, clock, provider)
}

fn rig_for(
    profile: Profile,
    lifetime: i64,
    store: Arc<MemoryStore>,
    dir: tempfile::TempDir,
    clock: Arc<TestClock>,
    provider: Option<Arc<ScriptedProvider>>,
) -> Rig {
    let provider = provider.unwrap_or_else(|| Arc::new(ScriptedProvider::new(clock.clone(), lifetime)));
    let k = keys();
    let jwks = Arc::new(StaticJwks::new(testkit::jwks(&[&k.rsa, &k.ec])));
    let engine = Engine::new(EngineParts {
        profile: Arc::new(profile),
        provider: provider.clone(),
        validator: testkit::validator(jwks, vec![Algorithm::RS256, Algorithm::ES256]),
        store: store.clone(),
        audit: Arc::new(AuditLog::in_dir(dir.path())),
        clock: clock.clone(),
        data_dir: dir.path().to_owned(),
        opener: Arc::new(crate::provider::opener::NoOpener),
    });
    Rig {
        engine,
        provider,
        store,
        clock,
        dir,
    }
}

fn rig(lifetime: i64) -> Rig {
    let clock = Arc::new(TestClock::new(chrono::Utc::now()));
    rig_with(
        lifetime,
        Arc::new(MemoryStore::default()),
        tempfile::tempdir().unwrap(),
        clock,
        None,
    )
}

fn events(rig: &Rig) -> Vec<AuditEvent> {
    let mut list: Vec<_> = rig
        .engine
        .audit_log()
        .recent(1000)
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    list.reverse();
    list
}

async fn sign_in(rig: &Rig) -> SessionView {
    rig.engine.sign_in("alice", Password::new("pw")).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn sign_in_stores_the_session_and_publishes_views() {
    let rig = rig(60);
    let mut rx = rig.engine.subscribe();
    let view = sign_in(&rig).await;
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.user.as_deref(), Some("alice"));
    assert_eq!(
        (view.tenant.as_deref(), view.customer.as_deref()),
        (Some("t1"), Some("c1"))
    );
    assert_eq!(view.persistence, Persistence::Keychain);
    // The scripted provider's clock runs 7 s ahead (its Date header).
    assert!(
        (7000..=8000).contains(&view.clock_offset_ms),
        "{}",
        view.clock_offset_ms
    );
    let first = rx.recv().await.unwrap();
    assert_eq!(first.state, Phase::SigningIn);
    assert_eq!(rx.recv().await.unwrap().state, Phase::Active);
    assert!(!rig.store.entries().is_empty());
    assert_eq!(events(&rig), vec![AuditEvent::SessionCreated]);
}

#[tokio::test(start_paused = true)]
async fn wrong_password_stays_signed_out_and_stores_nothing() {
    let rig = rig(60);
    let err = rig.engine.sign_in("alice", Password::new("nope")).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::InvalidCredentials);
    assert_eq!(rig.engine.view().state, Phase::SignedOut);
    assert_eq!(
        rig.engine.view().last_error.unwrap().code,
        crate::ErrorCode::InvalidCredentials
    );
    assert!(rig.store.entries().is_empty());
    assert!(matches!(events(&rig)[..], [AuditEvent::SignInFailed { .. }]));
}

#[tokio::test(start_paused = true)]
async fn refreshes_proactively_before_expiry() {
    let rig = rig(60); // lead = min(300, 60/3) = 20 s, jitter up to 2 s
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(37)).await;
    assert_eq!(
        rig.provider.refresh_calls.load(Ordering::SeqCst),
        0,
        "refreshed too early"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(rig.provider.refresh_calls.load(Ordering::SeqCst), 1);
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.refresh_count, 1);
    assert!(view.last_refresh.unwrap().ok);
    // And again for the new token, several times.
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert!(
        rig.engine.view().refresh_count >= 5,
        "{}",
        rig.engine.view().refresh_count
    );
    assert_eq!(rig.engine.view().state, Phase::Active);
}

#[tokio::test(start_paused = true)]
async fn wall_clock_jump_past_refresh_time_refreshes_within_two_seconds() {
    let rig = rig(3600);
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    // Off the scheduler's tick, so the test sees how long noticing takes.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(rig.provider.refresh_calls.load(Ordering::SeqCst), 0);
    // The laptop sleeps 57 minutes: the wall clock moves, tokio's does not.
    rig.clock.jump(chrono::Duration::minutes(57));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(
        rig.provider.refresh_calls.load(Ordering::SeqCst),
        1,
        "the jump was not noticed within 2 s"
    );
    assert_eq!(rig.engine.view().state, Phase::Active);
}

#[tokio::test(start_paused = true)]
async fn wall_clock_jump_past_expiry_expires_within_two_seconds() {
    let rig = rig(3600);
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    rig.clock.jump(chrono::Duration::hours(2));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Expired);
    assert_eq!(view.last_error.unwrap().code, crate::ErrorCode::SessionExpired);
    assert!(
        rig.store.entries().is_empty(),
        "an expired session stays in the keychain"
    );
    assert!(events(&rig).contains(&AuditEvent::SessionExpired));
}

#[tokio::test(start_paused = true)]
async fn hundred_concurrent_callers_share_one_refresh() {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_millis(200);
    let calls = (0..100).map(|_| {
        let engine = rig.engine.clone();
        tokio::spawn(async move { engine.refresh_now().await })
    });
    let results = futures_join(calls).await;
    assert!(
        results.iter().all(|r| r.is_ok()),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(rig.provider.refresh_calls.load(Ordering::SeqCst), 1);
    assert_eq!(rig.engine.refresh_request_count(), 1);
    assert_eq!(rig.engine.view().refresh_count, 1);
}

async fn futures_join<T: Send + 'static>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_and_recover_before_expiry() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.fail_next.store(3, Ordering::SeqCst);
    let mut rx = rig.engine.subscribe();
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(rig.provider.refresh_calls.load(Ordering::SeqCst), 4);
    let view = rig.engine.view();
    assert_eq!((view.state, view.refresh_count), (Phase::Active, 1));
    let mut states = Vec::new();
    while let Ok(v) = rx.try_recv() {
        states.push(v.state);
    }
    assert!(!states.contains(&Phase::Expired), "{states:?}");
    let attempts: Vec<u32> = events(&rig)
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::RefreshFailed { attempt, code, .. } => {
                assert_eq!(code, "server_error");
                Some(attempt)
            }
            _ => None,
        })
        .collect();
    assert_eq!(attempts, vec![1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn failures_until_expiry_end_in_expired() {
    let rig = rig(30);
    sign_in(&rig).await;
    rig.provider.fail_next.store(1000, Ordering::SeqCst);
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(
        rig.engine.view().state,
        Phase::Active,
        "usable while the token is valid"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rig.engine.view().state, Phase::Expired);
    assert!(rig.store.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn invalid_grant_moves_to_revoked_and_clears_the_keychain() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.revoke.store(true, Ordering::SeqCst);
    let err = rig.engine.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::SessionRevoked);
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Revoked);
    assert!(view.last_error.unwrap().message.contains("revoked by test"));
    assert!(rig.store.entries().is_empty());
    assert!(matches!(events(&rig).last(), Some(AuditEvent::SessionRevoked { .. })));
    let err = rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::SessionRevoked);
    assert_eq!(err.to_string().matches("revoked by test").count(), 1, "{err}");
}

#[tokio::test(start_paused = true)]
async fn sign_out_clears_everything_even_when_the_server_is_down() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.logout_fails.store(true, Ordering::SeqCst);
    let report = rig.engine.sign_out().await.unwrap();
    assert_eq!(report.view.state, Phase::SignedOut);
    assert_eq!(report.server_error.unwrap().code, crate::ErrorCode::NetworkUnreachable);
    assert!(rig.store.entries().is_empty());
    assert_eq!(rig.engine.view().expires_at, None);
    match events(&rig).last() {
        Some(AuditEvent::SignedOut { server_logout }) => {
            assert!(server_logout.starts_with("failed"), "{server_logout}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn refresh_finishing_after_sign_out_does_not_resurrect_the_session() {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_secs(1);
    let engine = rig.engine.clone();
    let refresh = tokio::spawn(async move { engine.refresh_now().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.engine.sign_out().await.unwrap();
    let _ = refresh.await.unwrap();
    assert_eq!(rig.engine.view().state, Phase::SignedOut);
    assert!(rig.store.entries().is_empty(), "{:?}", rig.store.entries().keys());
}

#[tokio::test(start_paused = true)]
async fn missing_keychain_keeps_the_session_in_memory_only() {
    let rig = rig(60);
    rig.store.unavailable.store(true, Ordering::SeqCst);
    let view = sign_in(&rig).await;
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.persistence, Persistence::MemoryOnly);
    assert_eq!(view.last_error.unwrap().code, crate::ErrorCode::KeychainUnavailable);
    rig.engine.refresh_now().await.unwrap();
    assert!(events(&rig)
        .iter()
        .any(|e| matches!(e, AuditEvent::KeychainUnavailable { .. })));
    rig.store.unavailable.store(false, Ordering::SeqCst);
    assert!(rig.store.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn restore_resumes_an_active_session_and_expires_a_stale_one() {
    let rig = rig(600);
    sign_in(&rig).await;
    // A second "process": a new engine on the same keychain.
    let other = rig_with(
        600,
        rig.store.clone(),
        tempfile::tempdir().unwrap(),
        rig.clock.clone(),
        Some(rig.provider.clone()),
    );
    let view = other.engine.restore().await.unwrap();
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.user.as_deref(), Some("alice"));
    assert!(events(&other).contains(&AuditEvent::SessionRestored));
    // Long after expiry, a restore reports Expired and clears the keychain.
    rig.clock.jump(chrono::Duration::hours(1));
    let third = rig_with(
        600,
        rig.store.clone(),
        tempfile::tempdir().unwrap(),
        rig.clock.clone(),
        Some(rig.provider.clone()),
    );
    assert_eq!(third.engine.restore().await.unwrap().state, Phase::Expired);
    assert!(rig.store.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn restore_refreshes_when_due() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.clock.jump(chrono::Duration::seconds(45));
    let other = rig_with(
        60,
        rig.store.clone(),
        tempfile::tempdir().unwrap(),
        rig.clock.clone(),
        Some(rig.provider.clone()),
    );
    let view = other.engine.restore().await.unwrap();
    assert_eq!((view.state, view.refresh_count), (Phase::Active, 1));
}

#[tokio::test(start_paused = true)]
async fn a_second_process_never_refreshes_with_the_same_token() {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_millis(300);
    // A second engine (a second process) on the same keychain and the same
    // data directory, hence the same refresh lock file.
    let second = Engine::new(parts_of(&rig));
    second.restore().await.unwrap();
    let (a, b) = tokio::join!(rig.engine.refresh_now(), second.refresh_now());
    a.unwrap();
    b.unwrap();
    assert_eq!(
        rig.provider.refresh_calls.load(Ordering::SeqCst),
        1,
        "both processes refreshed"
    );
    assert_eq!(rig.engine.view().expires_at, second.view().expires_at);
}

fn parts_of(rig: &Rig) -> EngineParts {
    let k = keys();
    EngineParts {
        profile: Arc::new(testkit::profile()),
        provider: rig.provider.clone(),
        validator: testkit::validator(
            Arc::new(StaticJwks::new(testkit::jwks(&[&k.rsa]))),
            vec![Algorithm::RS256],
        ),
        store: rig.store.clone(),
        audit: Arc::new(AuditLog::new(
            rig.dir.path().join("second.jsonl"),
            AuditLog::DEFAULT_MAX_BYTES,
        )),
        clock: rig.clock.clone(),
        data_dir: rig.dir.path().to_owned(),
        opener: Arc::new(crate::provider::opener::NoOpener),
    }
}

#[tokio::test(start_paused = true)]
async fn views_and_audit_records_carry_no_token() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.engine.refresh_now().await.unwrap();
    rig.provider.logout_fails.store(true, Ordering::SeqCst);
    let view_json = serde_json::to_string(&rig.engine.view()).unwrap();
    let debug = format!("{:?}", rig.engine.view());
    rig.engine.sign_out().await.unwrap();
    let audit = std::fs::read_to_string(rig.engine.audit_log().path()).unwrap();
    let issued = rig.provider.issued.lock().unwrap().clone();
    assert_eq!(issued.len(), 4);
    for token in issued {
        for (what, text) in [("view", &view_json), ("debug", &debug), ("audit", &audit)] {
            assert!(!text.contains(&token), "a token leaked into the {what}");
        }
    }
    // Fingerprints stand in for tokens.
    assert!(audit.contains("\"fingerprint\":\"sha256:"));
}

#[tokio::test(start_paused = true)]
async fn an_ended_session_is_gone_from_the_keychain_before_anyone_hears_of_it() {
    let rig = rig(60);
    sign_in(&rig).await;
    // The view is published after the keychain was cleared: a listener that
    // reacts at once (a UI, a test) finds nothing stored.
    let store = rig.store.clone();
    let mut rx2 = rig.engine.subscribe();
    rig.clock.jump(chrono::Duration::hours(2));
    let watcher = tokio::spawn(async move {
        loop {
            let v = rx2.recv().await.unwrap();
            if v.state == Phase::Expired {
                return store.entries().is_empty();
            }
        }
    });
    let _scheduler = rig.engine.start();
    assert!(
        watcher.await.unwrap(),
        "Expired was published while the keychain still held the session"
    );
}

fn reauth_rig(lifetime: i64) -> Rig {
    rig_for(
        testkit::oidc_profile("reauthenticate"),
        lifetime,
        Arc::new(MemoryStore::default()),
        tempfile::tempdir().unwrap(),
        Arc::new(TestClock::new(chrono::Utc::now())),
        None,
    )
}

#[tokio::test(start_paused = true)]
async fn reauthenticate_mode_extends_with_a_silent_sign_in_not_the_refresh_token() {
    let rig = reauth_rig(60);
    let view = rig.engine.sign_in_browser().await.unwrap();
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.extend_access, ExtendAccess::Reauthenticate);
    assert_eq!(view.sign_in_method, SignInMethod::Browser);
    assert!(view.next_refresh_at.is_some(), "a silent sign-in is planned");
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(45)).await;
    assert_eq!(rig.provider.silent_sign_ins.load(Ordering::SeqCst), 1);
    assert_eq!(
        rig.provider.refresh_calls.load(Ordering::SeqCst),
        0,
        "the refresh token was used"
    );
    let view = rig.engine.view();
    assert_eq!(
        (view.state, view.refresh_count, view.reauth_needed),
        (Phase::Active, 1, false)
    );
    assert!(events(&rig).contains(&AuditEvent::SessionReauthenticated { count: 1, silent: true }));
}

#[tokio::test(start_paused = true)]
async fn reauthenticate_mode_asks_the_person_when_silent_fails_then_ends_at_expiry() {
    let rig = reauth_rig(60);
    rig.engine.sign_in_browser().await.unwrap();
    rig.provider.silent_fails.store(true, Ordering::SeqCst);
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(45)).await;
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Active, "the session lives on until expiry");
    assert!(view.reauth_needed);
    assert_eq!(view.next_refresh_at, None);
    assert_eq!(view.last_error.unwrap().code, crate::ErrorCode::ReauthRequired);
    // No retry storm: one silent attempt, then the person decides.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(rig.provider.silent_sign_ins.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(rig.engine.view().state, Phase::Expired);
    assert!(rig.store.entries().is_empty(), "an ended session stays in the keychain");
}

#[tokio::test(start_paused = true)]
async fn reauthenticate_mode_one_click_sign_in_extends_the_same_session() {
    let rig = reauth_rig(60);
    let first = rig.engine.sign_in_browser().await.unwrap();
    rig.provider.silent_fails.store(true, Ordering::SeqCst);
    rig.engine.refresh_now().await.unwrap_err();
    assert!(rig.engine.view().reauth_needed);
    let view = rig.engine.sign_in_browser().await.unwrap();
    assert_eq!(view.session_id, first.session_id, "the same session, extended");
    assert!(!view.reauth_needed);
    assert!(view.next_refresh_at.is_some());
    assert_eq!(rig.provider.browser_sign_ins.load(Ordering::SeqCst), 3);
    assert_eq!(rig.provider.silent_sign_ins.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn browser_sign_in_is_refused_for_a_password_profile_and_cancel_needs_a_wait() {
    let rig = rig(60);
    assert_eq!(
        rig.engine.sign_in_browser().await.unwrap_err().code(),
        crate::ErrorCode::InvalidState
    );
    assert_eq!(
        rig.engine.cancel_sign_in().unwrap_err().code(),
        crate::ErrorCode::InvalidState
    );
}

#[tokio::test(start_paused = true)]
async fn an_opaque_refresh_without_an_id_token_keeps_the_sessions_subject() {
    // OpenID Connect Core 12.2: a refresh answer may omit the ID token, and
    // the access token may be opaque.
    let clock = Arc::new(TestClock::new(chrono::Utc::now()));
    let provider = Arc::new(ScriptedProvider::new(clock.clone(), 60));
    let rig = rig_for(
        testkit::oidc_profile("refresh"),
        60,
        Arc::new(MemoryStore::default()),
        tempfile::tempdir().unwrap(),
        clock,
        Some(provider.clone()),
    );
    rig.engine.sign_in_browser().await.unwrap();
    provider.opaque.store(true, Ordering::SeqCst);
    let view = rig.engine.refresh_now().await.expect("the refresh keeps the session");
    assert_eq!(view.user.as_deref(), Some("alice"));
    assert_eq!(view.refresh_count, 1);
}

#[tokio::test(start_paused = true)]
async fn a_huge_expires_in_is_an_error_not_a_panic_or_a_stuck_session() {
    let clock = Arc::new(TestClock::new(chrono::Utc::now()));
    let provider = Arc::new(ScriptedProvider::new(clock.clone(), 60));
    let rig = rig_for(
        testkit::oidc_profile("refresh"),
        60,
        Arc::new(MemoryStore::default()),
        tempfile::tempdir().unwrap(),
        clock,
        Some(provider.clone()),
    );
    provider.opaque.store(true, Ordering::SeqCst);
    *provider.expires_in.lock().unwrap() = Some(10_000_000_000_000);
    let signing_in = tokio::spawn({
        let engine = rig.engine.clone();
        async move { engine.sign_in_browser().await }
    });
    let result = signing_in.await.expect("no panic");
    assert!(result.is_err());
    assert_eq!(rig.engine.view().state, Phase::SignedOut, "not stuck in SigningIn");
}
