//! The engine on paused tokio time with a test clock and a scripted
//! provider. Each engine-review finding has a test named after what it
//! guarantees; each failed on the engine before the rebuild.

use super::*;
use crate::os::clock::TestClock;
use crate::storage::audit::AuditEvent;
use crate::storage::vault::{MemoryStore, SessionRecord};
use crate::testkit::{self, keys, ScriptedProvider};
use crate::token::StaticJwks;
use crate::view::ExtendAccess;
use jsonwebtoken::Algorithm;
use std::sync::atomic::Ordering;

struct Rig {
    engine: Engine,
    provider: Arc<ScriptedProvider>,
    store: Arc<MemoryStore>,
    clock: Arc<TestClock>,
    dir: tempfile::TempDir,
}

fn parts(
    profile: Profile,
    provider: Arc<ScriptedProvider>,
    store: Arc<dyn SecretStore>,
    clock: Arc<TestClock>,
    dir: &Path,
    audit: &str,
) -> EngineParts {
    let k = keys();
    let jwks = Arc::new(StaticJwks::new(testkit::jwks(&[&k.rsa, &k.ec])));
    EngineParts {
        profile: Arc::new(profile),
        provider,
        validator: testkit::validator(jwks, vec![Algorithm::RS256, Algorithm::ES256]),
        store,
        audit: Arc::new(AuditLog::new(dir.join(audit), AuditLog::DEFAULT_MAX_BYTES)),
        clock,
        shared_dir: dir.join("shared"),
        opener: Arc::new(crate::provider::opener::NoOpener),
    }
}

fn rig_for(profile: Profile, lifetime: i64) -> Rig {
    let clock = Arc::new(TestClock::new(chrono::Utc::now()));
    let provider = Arc::new(ScriptedProvider::new(clock.clone(), lifetime));
    let store = Arc::new(MemoryStore::default());
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(parts(
        profile,
        provider.clone(),
        store.clone(),
        clock.clone(),
        dir.path(),
        "audit.jsonl",
    ));
    Rig {
        engine,
        provider,
        store,
        clock,
        dir,
    }
}

fn rig(lifetime: i64) -> Rig {
    rig_for(testkit::profile(), lifetime)
}

impl Rig {
    /// Another process on the same keychain: its own engine, audit log and
    /// data directory; the same keychain record, hence the same lock.
    fn second_process(&self) -> Engine {
        Engine::new(parts(
            (*self.engine.inner.profile).clone(),
            self.provider.clone(),
            self.store.clone(),
            self.clock.clone(),
            self.dir.path(),
            "second.jsonl",
        ))
    }

    fn refresh_calls(&self) -> u32 {
        self.provider.refresh_calls.load(Ordering::SeqCst)
    }

    fn stored(&self) -> Option<SessionRecord> {
        Vault::new(self.store.clone(), &self.engine.profile().name)
            .load()
            .unwrap()
    }
}

fn events(engine: &Engine) -> Vec<AuditEvent> {
    let mut list: Vec<_> = engine
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

async fn join_all<T: Send + 'static>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

// ---------------------------------------------------------------- basics

#[tokio::test(start_paused = true)]
async fn a_date_within_a_second_of_our_clock_is_taken_as_in_step() {
    // A `Date` has whole seconds: half a second off is what it cannot tell
    // apart, and two processes would measure two different fractions (the
    // app and sessionctl then showed one session ending 0.47 s apart).
    let rig = rig(60);
    rig.provider.date_ahead_ms.store(0, Ordering::SeqCst);
    assert_eq!(sign_in(&rig).await.clock_offset_ms, 0);
    rig.provider.date_ahead_ms.store(1_400, Ordering::SeqCst);
    let view = rig.engine.refresh_now().await.unwrap();
    assert_eq!(view.clock_offset_ms, 1_900, "a second or more is an offset");
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
    assert_eq!(rx.recv().await.unwrap().state, Phase::SigningIn);
    assert_eq!(rx.recv().await.unwrap().state, Phase::Active);
    assert!(rig.stored().is_some());
    assert_eq!(events(&rig.engine), vec![AuditEvent::SessionCreated]);
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
    assert!(matches!(events(&rig.engine)[..], [AuditEvent::SignInFailed { .. }]));
}

#[tokio::test(start_paused = true)]
async fn refreshes_proactively_before_expiry() {
    let rig = rig(60); // lead = min(300, 60/3) = 20 s, jitter up to 2 s
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    // The refresh falls between 29.5 and 32.5 s: `exp` has whole seconds
    // (up to 1 s early), the provider's clock reads 7.5 s ahead of ours (its
    // Date header, centred), and the lead is 20 s plus up to 2 s of jitter.
    tokio::time::sleep(Duration::from_millis(29_400)).await;
    assert_eq!(rig.refresh_calls(), 0, "refreshed too early");
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    assert_eq!(rig.refresh_calls(), 1);
    let view = rig.engine.view();
    assert_eq!((view.state, view.refresh_count), (Phase::Active, 1));
    assert!(view.last_refresh.unwrap().ok);
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert!(
        rig.engine.view().refresh_count >= 5,
        "{}",
        rig.engine.view().refresh_count
    );
    assert_eq!(rig.engine.view().state, Phase::Active);
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
    let results = join_all(calls).await;
    assert!(
        results.iter().all(|r| r.is_ok()),
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(rig.refresh_calls(), 1);
    assert_eq!(rig.engine.view().refresh_count, 1);
}

#[tokio::test(start_paused = true)]
async fn transient_failures_back_off_and_recover() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.fail_next.store(3, Ordering::SeqCst);
    let mut rx = rig.engine.subscribe();
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(rig.refresh_calls(), 4);
    let view = rig.engine.view();
    assert_eq!((view.state, view.refresh_count), (Phase::Active, 1));
    let mut states = Vec::new();
    while let Ok(v) = rx.try_recv() {
        states.push(v.state);
    }
    assert!(!states.contains(&Phase::Expired), "{states:?}");
    let attempts: Vec<u32> = events(&rig.engine)
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
async fn sign_out_clears_everything_even_when_the_server_is_down() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.logout_fails.store(true, Ordering::SeqCst);
    let report = rig.engine.sign_out().await.unwrap();
    assert_eq!(report.view.state, Phase::SignedOut);
    assert_eq!(report.server_error.unwrap().code, crate::ErrorCode::NetworkUnreachable);
    assert!(rig.store.entries().is_empty());
    assert_eq!(rig.engine.view().expires_at, None);
    match events(&rig.engine).last() {
        Some(AuditEvent::SignedOut { server_logout }) => {
            assert!(server_logout.starts_with("failed"), "{server_logout}")
        }
        other => panic!("{other:?}"),
    }
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
    assert!(events(&rig.engine)
        .iter()
        .any(|e| matches!(e, AuditEvent::KeychainUnavailable { .. })));
    rig.store.unavailable.store(false, Ordering::SeqCst);
    assert!(rig.store.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_keychain_that_comes_back_is_used_again() {
    let rig = rig(60);
    rig.store.unavailable.store(true, Ordering::SeqCst);
    sign_in(&rig).await;
    rig.store.unavailable.store(false, Ordering::SeqCst);
    let view = rig.engine.refresh_now().await.unwrap();
    assert_eq!(view.persistence, Persistence::Keychain);
    assert_eq!(rig.stored().unwrap().refresh_count, 1);
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
    assert!(audit.contains("\"fingerprint\":\"sha256:"));
}

#[tokio::test(start_paused = true)]
async fn an_ended_session_is_gone_from_the_keychain_before_anyone_hears_of_it() {
    let rig = rig(60);
    rig.provider.no_refresh.store(true, Ordering::SeqCst);
    sign_in(&rig).await;
    let store = rig.store.clone();
    let mut rx = rig.engine.subscribe();
    rig.clock.jump(chrono::Duration::hours(2));
    let watcher = tokio::spawn(async move {
        loop {
            let v = rx.recv().await.unwrap();
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

// ------------------------------------------------------------- lifecycle

#[tokio::test(start_paused = true)]
async fn a_token_found_expired_after_a_sleep_is_renewed_not_ended() {
    let rig = rig(3600);
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    // The laptop sleeps two hours: past the token's expiry. Its refresh
    // token is still good: the session is renewed, within 2 s of waking.
    rig.clock.jump(chrono::Duration::hours(2));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Active, "{:?}", view.last_error);
    assert_eq!(view.refresh_count, 1);
    assert_eq!(rig.refresh_calls(), 1);
    assert!(!events(&rig.engine)
        .iter()
        .any(|e| matches!(e, AuditEvent::SessionExpired { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_wall_clock_jump_past_the_refresh_time_is_noticed_within_two_seconds() {
    let rig = rig(3600);
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(rig.refresh_calls(), 0);
    rig.clock.jump(chrono::Duration::minutes(57));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(rig.refresh_calls(), 1, "the jump was not noticed within 2 s");
}

/// logind's resume signal wakes the scheduler, even when the timer missed
/// the resume. Real D-Bus (the session bus of the test run, where the test
/// plays logind) and real time: a signal from another thread cannot drive
/// paused time.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn loginds_resume_signal_is_noticed_within_two_seconds() {
    use crate::os::resume::SleepBus;
    fn send_prepare_for_sleep(sleeping: bool) {
        let bus = dbus::blocking::Connection::new_session()
            .expect("a D-Bus session bus (run the tests through scripts/test.sh)");
        let signal = dbus::Message::new_signal(
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager",
            "PrepareForSleep",
        )
        .unwrap()
        .append1(sleeping);
        use dbus::channel::Sender;
        bus.send(signal).unwrap();
        bus.channel().flush();
    }
    let rig = rig(3600);
    sign_in(&rig).await;
    let _scheduler = rig.engine.start_with(Some(SleepBus::Session));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The machine slept for 57 minutes; its timer did not notice.
    rig.clock.jump_unnoticed(chrono::Duration::minutes(57));
    send_prepare_for_sleep(true); // "about to sleep": nothing to do
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(rig.refresh_calls(), 0, "renewed without being told of a resume");
    send_prepare_for_sleep(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while rig.refresh_calls() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the resume signal was not noticed within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn restore_after_expiry_renews_with_the_refresh_token() {
    let rig = rig(600);
    sign_in(&rig).await;
    // The app was closed for an hour: the token expired, the refresh token
    // did not.
    rig.clock.jump(chrono::Duration::hours(1));
    let second = rig.second_process();
    let view = second.restore().await.unwrap();
    assert_eq!(
        (view.state, view.refresh_count),
        (Phase::Active, 1),
        "{:?}",
        view.last_error
    );
    assert!(view.expires_at.unwrap() > second.now());
    assert!(events(&second).contains(&AuditEvent::SessionRestored));
    assert_eq!(rig.stored().unwrap().refresh_count, 1);
}

#[tokio::test(start_paused = true)]
async fn restore_refreshes_when_due() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.clock.jump(chrono::Duration::seconds(45));
    let view = rig.second_process().restore().await.unwrap();
    assert_eq!((view.state, view.refresh_count), (Phase::Active, 1));
}

#[tokio::test(start_paused = true)]
async fn a_call_with_an_expired_token_renews_it_first() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.clock.jump(chrono::Duration::hours(3));
    let r = rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(rig.refresh_calls(), 1, "the call did not renew the token first");
}

/// How many API-call records the audit file at `path` holds (none if it
/// is missing or unreadable).
fn api_call_records(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .matches(r#""event":"api_call""#)
        .count()
}

#[tokio::test(start_paused = true)]
async fn api_calls_are_audited_within_a_second_not_with_a_write_each() {
    let rig = rig(600);
    sign_in(&rig).await;
    let path = rig.engine.audit_log().path().to_owned();
    let written = || api_call_records(&path);
    for _ in 0..3 {
        rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap();
    }
    assert_eq!(written(), 0, "each call wrote its record");
    tokio::time::sleep(AUDIT_FLUSH_AFTER + Duration::from_millis(1)).await;
    assert_eq!(
        written(),
        3,
        "the queued records were not written within the flush delay"
    );
    // A transition's record follows the calls before it in the file.
    rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap();
    rig.engine.sign_out().await.unwrap();
    assert_eq!(written(), 4);
    let events: Vec<_> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<crate::storage::audit::AuditRecord>(l)
                .unwrap()
                .event
        })
        .collect();
    let call = events.iter().rposition(|e| matches!(e, AuditEvent::ApiCall { .. }));
    let out = events.iter().position(|e| matches!(e, AuditEvent::SignedOut { .. }));
    assert!(call < out, "{events:?}");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_engine_writes_its_queued_records_and_its_flush_task_keeps_nothing_alive() {
    let Rig { engine, dir, .. } = rig(600);
    engine.sign_in("alice", Password::new("pw")).await.unwrap();
    engine.call(reqwest::Method::GET, "/x", None).await.unwrap();
    let path = engine.audit_log().path().to_owned();
    drop(engine);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(r#""event":"api_call""#),
        "the record waits on a task: {text}"
    );
    // The data directory goes (a test's, or a person's): the flush task,
    // due a second later, must not write it anew.
    let data = dir.path().to_owned();
    drop(dir);
    tokio::time::sleep(AUDIT_FLUSH_AFTER * 2).await;
    assert!(!data.exists(), "the flush task recreated {}", data.display());
}

/// The same with the scheduler running: while it waits it keeps no engine
/// alive, so dropping the last handle drops the engine then and there (its
/// queued records written) even before the scheduler's guard goes, which
/// only asks the task to stop. Seen: an integration test's engine, kept by
/// its scheduler task past the test, wrote into the removed directory.
#[tokio::test(start_paused = true)]
async fn a_waiting_scheduler_keeps_no_dropped_engine_alive() {
    let Rig { engine, dir, .. } = rig(600);
    engine.sign_in("alice", Password::new("pw")).await.unwrap();
    let scheduler = engine.start();
    // The scheduler plans the renewal minutes away and waits.
    tokio::time::sleep(Duration::from_millis(10)).await;
    engine.call(reqwest::Method::GET, "/x", None).await.unwrap();
    let path = engine.audit_log().path().to_owned();
    drop(engine);
    assert_eq!(api_call_records(&path), 1, "the engine lives on in its scheduler");
    // Nothing is left for the task to do: it ends when asked.
    drop(dir);
    scheduler.shutdown().await;
}

#[cfg(unix)]
#[tokio::test(start_paused = true)]
async fn queued_call_records_wait_out_an_unwritable_log() {
    let rig = rig(600);
    sign_in(&rig).await;
    let path = rig.engine.audit_log().path().to_owned();
    let written = || api_call_records(&path);
    // A directory where the log goes: every write fails for now.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    for _ in 0..2 {
        rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap();
    }
    tokio::time::sleep(AUDIT_FLUSH_AFTER * 2).await;
    assert_eq!(written(), 0);
    // Writable again: the next try writes them, with no other activity.
    std::fs::remove_dir(&path).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(written(), 2, "the queued records were lost or never retried");
}

#[tokio::test(start_paused = true)]
async fn without_a_refresh_token_the_session_ends_when_its_token_does() {
    let rig = rig(60);
    rig.provider.no_refresh.store(true, Ordering::SeqCst);
    let view = sign_in(&rig).await;
    assert_eq!(view.next_refresh_at, None);
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(61)).await;
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Expired);
    assert_eq!(view.last_error.unwrap().code, crate::ErrorCode::SessionExpired);
    assert!(rig.store.entries().is_empty());
    // A restore past expiry says the same.
    let rig = rig_for(testkit::profile(), 60);
    rig.provider.no_refresh.store(true, Ordering::SeqCst);
    sign_in(&rig).await;
    rig.clock.jump(chrono::Duration::hours(1));
    assert_eq!(rig.second_process().restore().await.unwrap().state, Phase::Expired);
    assert!(rig.store.entries().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_token_ends_as_expired_a_revoked_one_as_revoked() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.refuse.store(true, Ordering::SeqCst);
    let err = rig.engine.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::SessionExpired);
    assert_eq!(rig.engine.view().state, Phase::Expired);
    assert!(rig.store.entries().is_empty());
    let rig = rig_for(testkit::profile(), 60);
    sign_in(&rig).await;
    rig.provider.revoke.store(true, Ordering::SeqCst);
    let err = rig.engine.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::SessionRevoked);
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Revoked);
    assert!(view.last_error.unwrap().message.contains("revoked by test"));
    assert!(rig.store.entries().is_empty());
    let err = rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::SessionRevoked);
    assert_eq!(err.to_string().matches("revoked by test").count(), 1, "{err}");
}

#[tokio::test(start_paused = true)]
async fn offline_past_expiry_it_keeps_retrying_and_says_so() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.fail_next.store(1_000, Ordering::SeqCst);
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let view = rig.engine.view();
    assert_eq!(
        view.state,
        Phase::Active,
        "the session is not over while it can be renewed"
    );
    assert!(view.offline, "the view says offline, retrying");
    let tried = rig.refresh_calls();
    // The network comes back: renewed at the next attempt (backoff ≤ 60 s).
    rig.provider.fail_next.store(0, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(61)).await;
    let view = rig.engine.view();
    assert!(rig.refresh_calls() > tried);
    assert_eq!(view.state, Phase::Active);
    assert!(!view.offline);
    assert!(view.expires_at.unwrap() > rig.engine.now());
}

#[tokio::test(start_paused = true)]
async fn retries_stop_when_the_refresh_token_itself_has_expired() {
    let rig = rig(60);
    *rig.provider.refresh_jwt_lifetime.lock().unwrap() = Some(300);
    let view = sign_in(&rig).await;
    let until = view.renewable_until.expect("a JWT refresh token's exp is shown");
    assert!(until > view.expires_at.unwrap());
    rig.provider.fail_next.store(1_000, Ordering::SeqCst);
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(200)).await;
    assert_eq!(rig.engine.view().state, Phase::Active);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(rig.engine.view().state, Phase::Expired);
    assert!(rig.store.entries().is_empty());
}

// ------------------------------------------------- engine review findings

/// Finding 1: a refresh the provider redeemed but whose answer fails a
/// passing check keeps the new refresh token; the retry uses it.
#[tokio::test(start_paused = true)]
async fn a_refresh_whose_answer_fails_validation_keeps_the_rotated_refresh_token() {
    let rig = rig(60);
    sign_in(&rig).await;
    // Rotates, then hands out an already expired bearer (clock skew, say).
    *rig.provider.lifetime.lock().unwrap() = -120;
    assert!(rig.engine.refresh_now().await.is_err());
    assert_eq!(
        rig.stored().unwrap().refresh.unwrap().expose(),
        rig.provider.current_refresh(),
        "the keychain holds the spent refresh token"
    );
    *rig.provider.lifetime.lock().unwrap() = 60;
    rig.engine.state().next_refresh_at = None; // past the backoff
    rig.engine.state().last_failure = None;
    rig.engine
        .refresh_now()
        .await
        .expect("the retry presents the new refresh token");
    assert_eq!(rig.engine.view().state, Phase::Active);
}

/// Finding 1, the other half: an answer that fails a security check ends
/// the session, and what it brought is revoked.
#[tokio::test(start_paused = true)]
async fn an_answer_that_fails_a_security_check_ends_the_session_and_revokes_it() {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.subject.lock().unwrap() = Some("mallory".into());
    let err = rig.engine.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::TokenInvalid, "{err}");
    assert_eq!(rig.engine.view().state, Phase::Revoked);
    assert!(rig.store.entries().is_empty());
    let revoked = rig.provider.signed_out.lock().unwrap().clone();
    assert_eq!(
        revoked
            .last()
            .and_then(|t| t.refresh.as_ref())
            .map(|r| r.expose().to_owned()),
        Some(rig.provider.current_refresh()),
        "the new refresh token was not revoked"
    );
}

/// Finding 2: a lock that cannot be taken is a failed attempt with backoff,
/// never a busy loop. Real time: paused time would not advance while the
/// loop spins.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_lock_that_cannot_be_taken_backs_off_instead_of_spinning() {
    let clock = Arc::new(TestClock::new(chrono::Utc::now()));
    let provider = Arc::new(ScriptedProvider::new(clock.clone(), 3));
    let dir = tempfile::tempdir().unwrap();
    // The shared directory is a regular file: no lock can ever be taken.
    let mut p = parts(
        testkit::profile(),
        provider.clone(),
        Arc::new(MemoryStore::default()),
        clock.clone(),
        dir.path(),
        "audit.jsonl",
    );
    std::fs::write(dir.path().join("shared"), "").unwrap();
    p.shared_dir = dir.path().join("shared/sub");
    let engine = Engine::new(p);
    engine.sign_in("alice", Password::new("pw")).await.unwrap();
    let _scheduler = engine.start();
    let failures = |engine: &Engine| {
        events(engine)
            .iter()
            .filter(|e| matches!(e, AuditEvent::RefreshFailed { .. }))
            .count()
    };
    // The first attempt comes at the refresh time (about 2 s in); on a busy
    // machine later, so wait for it rather than for a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while engine.view().last_error.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no failed attempt recorded in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then a window of real time: a busy loop would fail hundreds of times.
    let before = failures(&engine);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let attempts = failures(&engine) - before;
    // The next attempt is in the future. Sampled at one instant on a busy
    // machine, an attempt that is due but whose task has not run yet reads
    // as the past (the full suite failed so once): so wait for the
    // schedule to be ahead, which a schedule stuck in the past never is.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while engine.view().next_refresh_at.unwrap() <= engine.now() {
        assert!(std::time::Instant::now() < deadline, "the schedule stayed in the past");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(attempts < 40, "{attempts} attempts in 1.5 s: a busy loop");
    assert_eq!(provider.refresh_calls.load(Ordering::SeqCst), 0);
}

/// Finding 3: a refresh whose caller gives up leaves the session usable:
/// the renewal goes on without that caller (N10) and ends Active.
#[tokio::test(start_paused = true)]
async fn a_cancelled_refresh_leaves_the_session_usable() {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_secs(1);
    let _ = tokio::time::timeout(Duration::from_millis(100), rig.engine.refresh_now()).await;
    assert_eq!(
        rig.engine.view().state,
        Phase::Refreshing,
        "the renewal was cancelled with its caller"
    );
    rig.engine.drain(Duration::from_secs(5)).await;
    assert_eq!(rig.engine.view().state, Phase::Active);
    *rig.provider.refresh_delay.lock().unwrap() = Duration::ZERO;
    rig.engine.refresh_now().await.unwrap();
    assert_eq!(rig.refresh_calls(), 2);
}

/// Finding 3: a panic inside a refresh leaves no session stuck.
#[tokio::test(start_paused = true)]
async fn a_panicking_refresh_leaves_the_session_usable() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.panic_next.store(true, Ordering::SeqCst);
    let err = rig.engine.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::Internal, "{err}");
    assert_eq!(rig.engine.view().state, Phase::Active);
    rig.engine.refresh_now().await.unwrap();
}

/// Finding 4: callers that share a flight share its failure too.
#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_a_failed_refresh_too() {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_millis(200);
    rig.provider.fail_next.store(1000, Ordering::SeqCst);
    let calls = (0..100).map(|_| {
        let e = rig.engine.clone();
        tokio::spawn(async move { e.refresh_now().await })
    });
    let results = join_all(calls).await;
    assert!(results.iter().all(|r| r.is_err()));
    assert_eq!(rig.refresh_calls(), 1);
}

/// Finding 4: a 401 inside the backoff window does not send another
/// refresh; neither does "refresh now".
#[tokio::test(start_paused = true)]
async fn a_401_during_backoff_waits_for_the_next_attempt() {
    let rig = rig(60);
    sign_in(&rig).await;
    rig.provider.fail_next.store(1000, Ordering::SeqCst);
    assert!(rig.engine.refresh_now().await.is_err());
    assert_eq!(rig.refresh_calls(), 1);
    rig.provider.unauthorized.store(true, Ordering::SeqCst);
    let err = rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::ServerError);
    assert!(rig.engine.refresh_now().await.is_err());
    assert_eq!(rig.refresh_calls(), 1, "a trigger ignored the backoff");
}

/// Finding 4: `Retry-After` sets the next attempt.
#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let rig = rig(600);
    sign_in(&rig).await;
    rig.provider.fail_next.store(1, Ordering::SeqCst);
    *rig.provider.retry_after.lock().unwrap() = Some(Duration::from_secs(120));
    assert!(rig.engine.refresh_now().await.is_err());
    let view = rig.engine.view();
    let wait = (view.next_refresh_at.unwrap() - rig.engine.now()).num_seconds();
    assert!((118..=121).contains(&wait), "{wait}");
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(110)).await;
    assert_eq!(rig.refresh_calls(), 1, "retried before Retry-After");
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(rig.refresh_calls(), 2);
}

/// Finding 5: a sign-out in another process is not undone by this one's
/// refresh.
#[tokio::test(start_paused = true)]
async fn a_sign_out_in_another_process_is_not_undone_by_its_refresh() {
    let rig = rig(60);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    rig.provider.logout_fails.store(true, Ordering::SeqCst); // the server kept it
    rig.engine.sign_out().await.unwrap();
    let err = second.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::NotSignedIn, "{err}");
    assert!(
        rig.store.entries().is_empty(),
        "the signed-out session is back in the keychain"
    );
    assert_eq!(second.view().state, Phase::SignedOut);
    assert_eq!(rig.refresh_calls(), 0);
}

/// Finding 5: a new session signed in elsewhere is adopted, not
/// overwritten by a stale refresh.
#[tokio::test(start_paused = true)]
async fn a_new_session_signed_in_elsewhere_is_adopted_not_overwritten() {
    let rig = rig(60);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    // The first process signs out and in again: a new session.
    rig.engine.sign_out().await.unwrap();
    let fresh = sign_in(&rig).await;
    second.refresh_now().await.unwrap();
    assert_eq!(
        second.view().session_id,
        fresh.session_id,
        "the new session was not adopted"
    );
    assert_eq!(rig.stored().unwrap().session_id.to_string(), fresh.session_id.unwrap());
    assert_eq!(rig.refresh_calls(), 0, "the old session was refreshed over the new one");
}

/// Finding 5: adoption does not depend on which token expires later.
#[tokio::test(start_paused = true)]
async fn adoption_does_not_depend_on_expiry_order() {
    let rig = rig(60);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    // The provider shortens lifetimes: the first process's refresh brings
    // an earlier expiry than the second process holds.
    *rig.provider.lifetime.lock().unwrap() = 30;
    rig.engine.refresh_now().await.unwrap();
    second.refresh_now().await.unwrap();
    assert_eq!(rig.refresh_calls(), 1, "the second process redeemed a spent token");
    assert_eq!(second.view().state, Phase::Active);
    assert!(events(&second).contains(&AuditEvent::SessionAdopted));
}

/// Finding 6: a keychain write that fails after a rotation leaves no spent
/// refresh token behind.
#[tokio::test(start_paused = true)]
async fn a_failed_persist_after_rotation_leaves_no_spent_token_in_the_keychain() {
    let rig = rig(600);
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    let spent = rig.stored().unwrap().refresh.unwrap();
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_secs(1);
    let engine = rig.engine.clone();
    let refresh = tokio::spawn(async move { engine.refresh_now().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.store.unavailable.store(true, Ordering::SeqCst); // the keyring locks
    let _ = refresh.await.unwrap();
    assert_eq!(rig.engine.view().persistence, Persistence::MemoryOnly);
    // Whoever starts while the keychain is unreadable finds nothing usable;
    // once it is back, the record with the spent token is not used either.
    rig.store.unavailable.store(false, Ordering::SeqCst);
    let meanwhile = rig.second_process().restore().await.unwrap();
    assert_ne!(meanwhile.state, Phase::Revoked);
    assert_ne!(
        rig.stored().and_then(|r| r.refresh),
        Some(spent.clone()),
        "the spent refresh token is still stored"
    );
    // The owed write happens within 30 s: the keychain holds the live session.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let stored = rig.stored().expect("the session was written again");
    assert_eq!(stored.refresh.unwrap().expose(), rig.provider.current_refresh());
    assert_eq!(rig.engine.view().persistence, Persistence::Keychain);
    let second = rig.second_process();
    assert_eq!(second.restore().await.unwrap().state, Phase::Active);
    second
        .refresh_now()
        .await
        .expect("the second process holds the live token");
}

/// Finding 7: a restore that overlaps another process's write does not
/// delete the record that process wrote.
#[tokio::test(start_paused = true)]
async fn restore_does_not_delete_a_record_that_is_being_rewritten() {
    let rig = rig(600);
    sign_in(&rig).await;
    let newer = {
        let mut r = rig.stored().unwrap();
        r.refresh_count = 7;
        r
    };
    // A store that, at the first chunk read, lets "another process" write a
    // newer record (new generation) first.
    struct Racing {
        inner: Arc<MemoryStore>,
        newer: Mutex<Option<SessionRecord>>,
    }
    impl SecretStore for Racing {
        fn get(&self, account: &str) -> Result<Option<String>, VaultError> {
            if account.contains('#') {
                if let Some(r) = self.newer.lock().unwrap().take() {
                    Vault::new(self.inner.clone(), "test").save(&r).unwrap();
                }
            }
            self.inner.get(account)
        }
        fn set(&self, account: &str, value: &str) -> Result<(), VaultError> {
            self.inner.set(account, value)
        }
        fn delete(&self, account: &str) -> Result<bool, VaultError> {
            self.inner.delete(account)
        }
        fn identity(&self) -> String {
            self.inner.identity()
        }
    }
    let racing = Arc::new(Racing {
        inner: rig.store.clone(),
        newer: Mutex::new(Some(newer)),
    });
    let second = Engine::new(parts(
        testkit::profile(),
        rig.provider.clone(),
        racing,
        rig.clock.clone(),
        rig.dir.path(),
        "second.jsonl",
    ));
    let view = second.restore().await.unwrap();
    assert_eq!(view.state, Phase::Active);
    assert_eq!(rig.stored().expect("the newer record was deleted").refresh_count, 7);
}

/// Finding 7: a record of a newer format is left alone.
#[tokio::test(start_paused = true)]
async fn a_record_written_by_a_newer_version_is_left_alone() {
    let rig = rig(600);
    sign_in(&rig).await;
    rig.store
        .set("profile:test", r#"{"v":9,"generation":1,"chunks":1}"#)
        .unwrap();
    let before = rig.store.entries();
    let second = rig.second_process();
    let view = second.restore().await.unwrap();
    assert_eq!(view.state, Phase::SignedOut);
    assert!(view.last_error.unwrap().message.contains("newer version"));
    assert_eq!(rig.store.entries(), before);
}

/// Finding 8: two processes with different data directories share one
/// lock (it follows the keychain record, not the data directory).
#[tokio::test(start_paused = true)]
async fn processes_with_different_data_dirs_still_exclude_each_other() {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_millis(300);
    let elsewhere = tempfile::tempdir().unwrap();
    let mut p = parts(
        testkit::profile(),
        rig.provider.clone(),
        rig.store.clone(),
        rig.clock.clone(),
        elsewhere.path(),
        "audit.jsonl",
    );
    p.shared_dir = rig.dir.path().join("shared"); // the user's one shared dir
    let second = Engine::new(p);
    second.restore().await.unwrap();
    let (a, b) = tokio::join!(rig.engine.refresh_now(), second.refresh_now());
    a.unwrap();
    b.unwrap();
    assert_eq!(rig.refresh_calls(), 1, "both processes refreshed");
    assert_eq!(rig.engine.view().expires_at, second.view().expires_at);
}

/// Finding 9: a sign-out during a refresh revokes what the refresh brings
/// back, and nothing is written back.
#[tokio::test(start_paused = true)]
async fn sign_out_during_a_refresh_revokes_the_new_refresh_token() {
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
    let told = rig.provider.signed_out.lock().unwrap().clone();
    assert_eq!(
        told.last()
            .and_then(|t| t.refresh.as_ref())
            .map(|r| r.expose().to_owned()),
        Some(rig.provider.current_refresh()),
        "the logout did not carry the newest refresh token"
    );
}

fn reauth_rig(lifetime: i64) -> Rig {
    rig_for(testkit::oidc_profile("reauthenticate"), lifetime)
}

/// Finding 10: the person in the browser holds no cross-process lock.
#[tokio::test(start_paused = true)]
async fn a_reauth_browser_wait_does_not_hold_the_process_lock() {
    let rig = reauth_rig(600);
    rig.engine.sign_in_browser().await.unwrap();
    rig.provider.browser_waits.store(true, Ordering::SeqCst);
    let engine = rig.engine.clone();
    let waiting = tokio::spawn(async move { engine.sign_in_browser().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rig.engine.view().browser.is_some(), "the browser step runs");
    ProcessLock::acquire(rig.engine.inner.lock_path.clone(), Duration::from_millis(200))
        .await
        .expect("the lock is free while the person is in the browser");
    // A 401 meanwhile does not wait on the browser either.
    rig.provider.unauthorized.store(true, Ordering::SeqCst);
    let err = rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::ReauthRequired);
    rig.engine.cancel_sign_in().unwrap();
    let _ = waiting.await.unwrap();
}

/// Finding 11: a sign-out during a browser wait takes the wait off the view.
#[tokio::test(start_paused = true)]
async fn sign_out_during_a_browser_wait_publishes_a_view_without_the_wait() {
    let rig = reauth_rig(600);
    rig.engine.sign_in_browser().await.unwrap();
    rig.provider.browser_waits.store(true, Ordering::SeqCst);
    let engine = rig.engine.clone();
    let waiting = tokio::spawn(async move { engine.sign_in_browser().await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rig.engine.view().browser.is_some());
    let mut rx = rig.engine.subscribe();
    rig.engine.sign_out().await.unwrap();
    let _ = waiting.await.unwrap();
    let mut last = None;
    while let Ok(v) = rx.try_recv() {
        last = Some(v);
    }
    let last = last.expect("views were published");
    assert_eq!(last.browser, None, "the last view still shows the browser wait");
    assert_eq!(last.state, Phase::SignedOut);
}

/// Finding 11: views carry a sequence number, increasing.
#[tokio::test(start_paused = true)]
async fn views_carry_a_sequence_number() {
    let rig = rig(60);
    let mut rx = rig.engine.subscribe();
    sign_in(&rig).await;
    rig.engine.refresh_now().await.unwrap();
    rig.engine.sign_out().await.unwrap();
    let mut seqs = Vec::new();
    while let Ok(v) = rx.try_recv() {
        seqs.push(v.seq);
    }
    assert!(seqs.len() >= 5, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(rig.engine.view().seq >= *seqs.last().unwrap());
}

/// Finding 12: a second browser sign-in does not cancel the first.
#[tokio::test(start_paused = true)]
async fn a_second_browser_sign_in_does_not_cancel_the_first() {
    let rig = rig_for(testkit::oidc_profile("refresh"), 600);
    rig.provider.browser_waits.store(true, Ordering::SeqCst);
    let engine = rig.engine.clone();
    let first = tokio::spawn(async move { engine.sign_in_browser().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = rig.engine.sign_in_browser().await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::InvalidState);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!first.is_finished(), "the first sign-in was cancelled");
    assert_eq!(rig.engine.view().state, Phase::SigningIn);
    rig.engine.cancel_sign_in().unwrap();
    assert_eq!(
        first.await.unwrap().unwrap_err().code(),
        crate::ErrorCode::SignInCancelled
    );
}

/// Finding 13: a sign-out during a sign-in is not undone when the provider
/// answers.
#[tokio::test(start_paused = true)]
async fn a_sign_out_during_a_sign_in_is_not_undone() {
    let rig = rig(60);
    *rig.provider.sign_in_delay.lock().unwrap() = Duration::from_secs(1);
    let engine = rig.engine.clone();
    let signing_in = tokio::spawn(async move { engine.sign_in("alice", Password::new("pw")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.engine.sign_out().await.unwrap();
    assert!(signing_in.await.unwrap().is_err());
    assert_eq!(rig.engine.view().state, Phase::SignedOut);
    assert!(rig.store.entries().is_empty());
    assert_eq!(
        rig.provider.logouts.load(Ordering::SeqCst),
        1,
        "the unwanted session was not ended at the provider"
    );
}

/// Finding 14: a sign-out while the keychain is locked is remembered; the
/// next start does not bring the session back.
#[tokio::test(start_paused = true)]
async fn sign_out_with_a_locked_keychain_is_not_undone_at_the_next_start() {
    let rig = rig(600);
    sign_in(&rig).await;
    rig.store.unavailable.store(true, Ordering::SeqCst);
    rig.engine.sign_out().await.unwrap();
    rig.store.unavailable.store(false, Ordering::SeqCst);
    assert!(!rig.store.entries().is_empty(), "the test needs the record left behind");
    let second = rig.second_process();
    assert_eq!(second.restore().await.unwrap().state, Phase::SignedOut);
    assert!(rig.store.entries().is_empty(), "the tombstone was not honoured");
    // And the tombstone is gone: a new sign-in is not refused later.
    let view = second.sign_in("alice", Password::new("pw")).await.unwrap();
    assert_eq!(
        rig.second_process().restore().await.unwrap().session_id,
        view.session_id
    );
}

/// Finding P: an idle session costs no wake-ups: the scheduler sleeps until
/// the renewal time, and a clock jump still wakes it.
#[tokio::test(start_paused = true)]
async fn an_idle_session_sleeps_until_its_renewal_time() {
    let rig = rig(1800);
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    let turns = || rig.engine.scheduler_turns();
    tokio::time::sleep(Duration::from_secs(60)).await;
    let before = turns();
    tokio::time::sleep(Duration::from_secs(1200)).await;
    assert!(
        turns() - before <= 1,
        "{} scheduler turns in 20 idle minutes",
        turns() - before
    );
    assert_eq!(rig.refresh_calls(), 0);
    tokio::time::sleep(Duration::from_secs(400)).await;
    assert_eq!(rig.refresh_calls(), 1);
}

/// Cross-process: a sign-out in another process ends the session here
/// within about 2 s (real time: the notice is a file-system event).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_sign_out_in_another_process_ends_the_session_here_within_two_seconds() {
    let rig = rig(600);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    let _scheduler = second.start();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = tokio::time::Instant::now();
    rig.engine.sign_out().await.unwrap();
    while second.view().state != Phase::SignedOut {
        assert!(started.elapsed() < Duration::from_secs(2), "not noticed within 2 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And a sign-in there is adopted here.
    let view = rig.engine.sign_in("alice", Password::new("pw")).await.unwrap();
    let started = tokio::time::Instant::now();
    while second.view().session_id != view.session_id {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the new sign-in was not adopted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(second.view().state, Phase::Active);
}

// ---------------------------------------------------- re-authenticate mode

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
    assert_eq!(rig.refresh_calls(), 0, "the refresh token was used");
    let view = rig.engine.view();
    assert_eq!(
        (view.state, view.refresh_count, view.reauth_needed),
        (Phase::Active, 1, false)
    );
    assert!(events(&rig.engine).contains(&AuditEvent::SessionReauthenticated { count: 1, silent: true }));
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
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rig.provider.silent_sign_ins.load(Ordering::SeqCst), 1, "a retry storm");
    tokio::time::sleep(Duration::from_secs(15)).await;
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

// ------------------------------------------------------------- robustness

#[tokio::test(start_paused = true)]
async fn an_opaque_refresh_without_an_id_token_keeps_the_sessions_subject() {
    // OpenID Connect Core 12.2: a refresh answer may omit the ID token, and
    // the access token may be opaque.
    let rig = rig_for(testkit::oidc_profile("refresh"), 60);
    rig.engine.sign_in_browser().await.unwrap();
    rig.provider.opaque.store(true, Ordering::SeqCst);
    let view = rig.engine.refresh_now().await.expect("the refresh keeps the session");
    assert_eq!(view.user.as_deref(), Some("alice"));
    assert_eq!(view.refresh_count, 1);
}

#[tokio::test(start_paused = true)]
async fn a_huge_expires_in_is_an_error_not_a_panic_or_a_stuck_session() {
    let rig = rig_for(testkit::oidc_profile("refresh"), 60);
    rig.provider.opaque.store(true, Ordering::SeqCst);
    *rig.provider.expires_in.lock().unwrap() = Some(10_000_000_000_000);
    let engine = rig.engine.clone();
    let result = tokio::spawn(async move { engine.sign_in_browser().await })
        .await
        .expect("no panic");
    assert!(result.is_err());
    assert_eq!(rig.engine.view().state, Phase::SignedOut, "not stuck in SigningIn");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_sign_in_does_not_stay_signing_in() {
    let rig = rig(60);
    *rig.provider.sign_in_delay.lock().unwrap() = Duration::from_secs(5);
    let _ = tokio::time::timeout(
        Duration::from_millis(100),
        rig.engine.sign_in("alice", Password::new("pw")),
    )
    .await;
    assert_eq!(rig.engine.view().state, Phase::SignedOut);
    *rig.provider.sign_in_delay.lock().unwrap() = Duration::ZERO;
    sign_in(&rig).await;
}

/// A change notice that arrives while a sign-out is under way (the keychain
/// still holds the record) does not bring the session back.
#[tokio::test(start_paused = true)]
async fn a_session_being_signed_out_is_not_adopted_back() {
    let rig = rig(600);
    sign_in(&rig).await;
    // Memory says signed out, the keychain not yet: the moment a notice
    // could arrive.
    let id = {
        let mut st = rig.engine.state();
        let s = st.session.take().unwrap();
        st.phase = Phase::SignedOut;
        st.ended_id = Some(s.session_id);
        s.session_id
    };
    rig.engine.look_at_keychain().await;
    assert_eq!(rig.engine.view().state, Phase::SignedOut, "the ended session came back");
    assert_eq!(rig.stored().unwrap().session_id, id);
}

fn with_timeouts(idle: Option<u64>, absolute: Option<u64>) -> Profile {
    let mut p = testkit::profile();
    p.idle_timeout = idle.map(Duration::from_secs);
    p.absolute_timeout = absolute.map(Duration::from_secs);
    p
}

/// The idle timeout: activity moves it, its passing signs out (the provider
/// is told, the keychain cleared) and the view says why. Injected time.
#[tokio::test(start_paused = true)]
async fn the_idle_timeout_signs_out_and_activity_moves_it() {
    let rig = rig_for(with_timeouts(Some(120), None), 3600);
    let signed_in = sign_in(&rig).await;
    let first = signed_in.idle_sign_out_at.expect("an idle deadline");
    assert_eq!(signed_in.ends_at, None);
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(70)).await;
    rig.engine.touch();
    let moved = rig.engine.view().idle_sign_out_at.unwrap();
    assert!((moved - first).num_seconds() >= 69, "{first} -> {moved}");
    // 160 s after the sign-in, 90 s after the activity: still signed in.
    tokio::time::sleep(Duration::from_secs(90)).await;
    assert_eq!(rig.engine.view().state, Phase::Active);
    // An API call is activity too.
    rig.engine.call(reqwest::Method::GET, "/x", None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(110)).await;
    assert_eq!(rig.engine.view().state, Phase::Active);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Expired);
    let e = view.last_error.expect("a reason");
    assert!(e.message.contains("2 min without activity"), "{}", e.message);
    assert!(rig.store.entries().is_empty());
    assert_eq!(rig.provider.logouts.load(Ordering::SeqCst), 1, "the provider was told");
    assert!(events(&rig.engine)
        .iter()
        .any(|e| matches!(e, AuditEvent::SessionTimedOut { kind, after_secs: 120 } if kind == "idle")));
}

/// A timed-out session goes from Active to Expired-with-its-reason in one
/// published view: no signed-out view without a reason between them (the
/// window would show the sign-in screen with no word of why, and a
/// scripted reader could take it for a plain sign-out).
#[tokio::test(start_paused = true)]
async fn a_timeout_is_published_once_with_its_reason() {
    let rig = rig_for(with_timeouts(Some(120), None), 3600);
    sign_in(&rig).await;
    let mut views = rig.engine.subscribe();
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(125)).await;
    assert_eq!(rig.engine.view().state, Phase::Expired);
    let mut seen = Vec::new();
    while let Ok(v) = views.try_recv() {
        seen.push((v.state, v.last_error.map(|e| e.code)));
    }
    assert!(!seen.is_empty());
    for (state, code) in &seen {
        assert!(
            *state == Phase::Active || (*state == Phase::Expired && *code == Some(crate::ErrorCode::SessionTimedOut)),
            "a view between the session and its reason: {seen:?}"
        );
    }
}

/// The absolute limit ends the session whatever the activity, counted
/// from the sign-in across renewals and processes.
#[tokio::test(start_paused = true)]
async fn the_absolute_limit_ends_the_session_whatever_the_activity() {
    let rig = rig_for(with_timeouts(Some(300), Some(600)), 120);
    let signed_in = sign_in(&rig).await;
    let ends_at = signed_in.ends_at.expect("an absolute limit");
    let _scheduler = rig.engine.start();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(100)).await;
        rig.engine.touch();
    }
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Active);
    assert!(view.refresh_count >= 3, "renewed meanwhile: {}", view.refresh_count);
    assert_eq!(view.ends_at, Some(ends_at), "renewals keep the sign-in time");
    // Another process restoring the session keeps the same limit.
    let other = rig.second_process();
    assert_eq!(other.restore().await.unwrap().ends_at, Some(ends_at));
    tokio::time::sleep(Duration::from_secs(101)).await;
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Expired);
    assert!(view.last_error.unwrap().message.contains("limit of 10 min"));
    assert!(rig.store.entries().is_empty());
}

#[test]
fn durations_read_as_people_say_them() {
    use crate::view::duration_text;
    assert_eq!(duration_text(45), "45 s");
    assert_eq!(duration_text(1800), "30 min");
    assert_eq!(duration_text(12 * 3600), "12 h");
    assert_eq!(duration_text(7 * 86_400), "7 days");
    assert_eq!(duration_text(90), "90 s");
}

// ------------------------------------- a session ends only for its reasons
//
// Issue 22 / engine review, second pass: a session ends when its provider
// refuses or revokes its refresh token, the refresh token's stated lifetime
// passes, a timeout of the profile fires, or the person signs out. Every
// other failure keeps the session and its refresh token and renewal goes on.

/// N2: failures that are not the provider's word on the refresh token (a
/// captive portal's TLS, a proxy's HTML page, a 408, a pin mismatch, a
/// failing keychain) are retried past the token's expiry, and nothing is
/// deleted.
#[tokio::test(start_paused = true)]
async fn a_refresh_that_fails_on_tls_html_or_a_4xx_is_retried_and_keeps_the_session() {
    let failures = [
        Error::Tls {
            host: "idp.test:443".into(),
            detail: "invalid peer certificate: UnknownIssuer".into(),
        },
        Error::Protocol("the token endpoint's answer is not JSON (line 1, column 1)".into()),
        Error::Server {
            status: 408,
            message: "Request Timeout".into(),
            retry_after: None,
        },
        Error::PinMismatch {
            host: "idp.test:443".into(),
            presented: "sha256/portal".into(),
        },
        Error::Vault(crate::storage::vault::VaultError::Failed(
            "the keychain answered an error".into(),
        )),
    ];
    for failure in failures {
        let rig = rig(60);
        sign_in(&rig).await;
        *rig.provider.fail_with.lock().unwrap() = Some(failure.clone());
        let _scheduler = rig.engine.start();
        // Ten token lifetimes on the captive portal.
        tokio::time::sleep(Duration::from_secs(600)).await;
        let view = rig.engine.view();
        assert_eq!(view.state, Phase::Active, "{failure}: {:?}", view.last_error);
        assert!(rig.stored().is_some(), "{failure}: the keychain was cleared");
        let tried = rig.refresh_calls();
        assert!(tried >= 5, "{failure}: renewal stopped after {tried} attempts");
        // The real network is back: renewed within the backoff cap.
        *rig.provider.fail_with.lock().unwrap() = None;
        tokio::time::sleep(crate::engine::timing::MAX_BACKOFF + Duration::from_secs(1)).await;
        let view = rig.engine.view();
        assert_eq!(view.state, Phase::Active, "{failure}");
        assert!(
            view.refresh_count >= 1,
            "{failure}: not renewed after the failure passed"
        );
        assert!(view.expires_at.unwrap() > rig.engine.provider_now(), "{failure}");
    }
}

/// N2: a refresh whose new token fails only a time check (the provider's
/// clock, or ours, is off) is retried by the scheduler; the rotated refresh
/// token is kept and used.
#[tokio::test(start_paused = true)]
async fn a_refresh_that_fails_only_on_time_is_retried_by_the_scheduler() {
    let rig = rig(60);
    sign_in(&rig).await;
    // Rotates, then hands out a bearer that expired two minutes ago.
    *rig.provider.lifetime.lock().unwrap() = -120;
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(45)).await;
    *rig.provider.lifetime.lock().unwrap() = -120;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(rig.refresh_calls() >= 2, "{}", rig.refresh_calls());
    assert!(rig.stored().is_some(), "the keychain was cleared");
    *rig.provider.lifetime.lock().unwrap() = 60;
    tokio::time::sleep(Duration::from_secs(61)).await;
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Active, "{:?}", view.last_error);
    assert!(view.expires_at.unwrap() > rig.engine.provider_now());
    assert_eq!(
        rig.stored().unwrap().refresh.unwrap().expose(),
        rig.provider.current_refresh()
    );
}

/// N2: a configuration error (`invalid_client`) stops renewing with a
/// message that says what to fix, and deletes nothing: past the token's
/// expiry the session and its refresh token are still there.
#[tokio::test(start_paused = true)]
async fn a_configuration_error_stops_renewing_but_deletes_nothing() {
    let rig = rig(60);
    sign_in(&rig).await;
    *rig.provider.fail_with.lock().unwrap() = Some(Error::Authorization {
        error: "invalid_client".into(),
        description: Some("client authentication failed".into()),
    });
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(rig.refresh_calls(), 1, "a configuration error is not retried");
    let view = rig.engine.view();
    assert_eq!(view.state, Phase::Active, "{:?}", view.last_error);
    assert!(rig.stored().is_some(), "the keychain was cleared");
    assert!(view.last_error.unwrap().message.contains("invalid_client"));
    // Fixed: "Refresh now" renews.
    *rig.provider.fail_with.lock().unwrap() = None;
    let view = rig.engine.refresh_now().await.expect("renews once the client is fixed");
    assert_eq!(view.refresh_count, 1);
    assert!(view.expires_at.unwrap() > rig.engine.provider_now());
}

/// N3: the local clock is ten minutes behind the provider's (a dual-boot
/// RTC, a VM resumed): the stored bearer is not yet valid here. The
/// session is kept and renewed, and the new token is checked against the
/// provider's clock.
#[tokio::test(start_paused = true)]
async fn restore_with_a_clock_behind_keeps_the_session() {
    let rig = rig(3600);
    sign_in(&rig).await;
    rig.clock.jump(chrono::Duration::seconds(-600));
    *rig.provider.clock_ahead_secs.lock().unwrap() = 600;
    let second = rig.second_process();
    let view = second.restore().await.unwrap();
    assert_eq!(view.state, Phase::Active, "{:?}", view.last_error);
    assert!(rig.stored().is_some(), "the keychain was cleared");
    assert_eq!(rig.refresh_calls(), 1, "the session was not renewed");
    assert_eq!(view.refresh_count, 1, "{:?}", view.last_error);
    assert!(!events(&second)
        .iter()
        .any(|e| matches!(e, AuditEvent::SignedOut { .. } | AuditEvent::SessionExpired { .. })));
}

/// N9: calls sent with the old bearer whose 401 arrives after a renewal
/// has already replaced it retry with the new bearer; they start no new
/// renewal.
#[tokio::test(start_paused = true)]
async fn late_401s_sent_with_the_old_bearer_do_not_refresh_again() {
    let rig = rig(3600);
    sign_in(&rig).await;
    // A second later, so the renewed bearer differs from the first (the
    // scripted provider's tokens are deterministic per second).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old = rig.engine.state().session.as_ref().unwrap().bearer.expose().to_owned();
    *rig.provider.rejected_bearer.lock().unwrap() = Some(old);
    *rig.provider.call_delays.lock().unwrap() = [100, 500, 900].into_iter().map(Duration::from_millis).collect();
    let calls = (0..3).map(|_| {
        let engine = rig.engine.clone();
        tokio::spawn(async move { engine.call(reqwest::Method::GET, "/x", None).await })
    });
    for r in join_all(calls).await {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert_eq!(rig.refresh_calls(), 1, "late 401s started new renewals");
}

/// N13: a forward clock jump past the refresh token's stated end: the
/// provider is asked once before the session is called expired, and its
/// answer decides.
#[tokio::test(start_paused = true)]
async fn a_forward_jump_past_renewable_until_asks_the_provider_once() {
    let rig = rig(60);
    *rig.provider.refresh_jwt_lifetime.lock().unwrap() = Some(300);
    sign_in(&rig).await;
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.clock.jump(chrono::Duration::hours(1));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.refresh_calls(), 1, "expired without asking the provider");
    assert_eq!(rig.engine.view().state, Phase::Active, "the provider renewed it");
    // And when the provider refuses, the session ends after that one try.
    let rig = rig_for(testkit::profile(), 60);
    *rig.provider.refresh_jwt_lifetime.lock().unwrap() = Some(300);
    sign_in(&rig).await;
    rig.provider.fail_next.store(1_000, Ordering::SeqCst);
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    rig.clock.jump(chrono::Duration::hours(1));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(rig.refresh_calls(), 1);
    assert_eq!(rig.engine.view().state, Phase::Expired);
}

mod headline;
mod processes;

/// A restore in another process that reads the record while a renewal is
/// between redeeming the token (journaled) and storing the new one does not
/// delete the record: it waits for the renewing process's lock and takes
/// what that process stored. (Lock-free, it read the old token as spent and
/// cleared the keychain, and the renewing app then ended its own session as
/// "signed out elsewhere": seen beside `sessionctl status --all`, E2E s40.)
#[tokio::test(start_paused = true)]
async fn a_restore_during_another_process_renewal_keeps_the_session() {
    let rig = rig(600);
    sign_in(&rig).await;
    let old = rig.stored().unwrap();
    // "Process A" mid-renewal: holds the lock, has journaled the new live
    // token, has not stored it yet.
    let lock = rig.engine.process_lock(Duration::from_secs(1)).await.unwrap();
    let live = crate::token::RefreshToken::new("the-renewed-refresh-token");
    rig.engine.journal_redemption(old.session_id, &live);
    let renewed = SessionRecord {
        refresh: Some(live),
        refresh_count: old.refresh_count + 1,
        ..old.clone()
    };
    let (store, name) = (rig.store.clone(), rig.engine.profile().name.clone());
    let finishing = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Vault::new(store, &name).save(&renewed).unwrap();
        drop(lock);
    });
    let second = rig.second_process();
    let view = second.restore().await.unwrap();
    finishing.await.unwrap();
    assert_eq!(view.state, Phase::Active, "{:?}", view.last_error);
    assert_eq!(
        rig.stored().expect("the record was deleted mid-renewal").refresh_count,
        old.refresh_count + 1
    );
}
