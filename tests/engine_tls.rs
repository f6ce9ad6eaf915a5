//! The engine against the Playground over real TLS on loopback.

use integration::*;
use playground::{Mode, Options};
use session_core::storage::audit::AuditEvent;
use session_core::storage::vault::MemoryStore;
use session_core::{ErrorCode, Password, Phase};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

const PW: &str = "alice-pw-1";

fn audit_events(engine: &session_core::Engine) -> Vec<AuditEvent> {
    engine
        .audit_log()
        .recent(10_000)
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn login_refreshes_itself_then_logs_out() {
    let pg = playground(3).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = memory_engine(&pg, dir.path());
    let view = engine.sign_in("alice", Password::new(PW)).await.unwrap();
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.customer.as_deref(), Some("cust-1001"));
    assert_eq!(view.tenant.as_deref(), Some("tenant-acme"));
    let _scheduler = engine.start();
    let view = wait_for(&engine, "three automatic refreshes", Duration::from_secs(20), |v| {
        v.refresh_count >= 3
    })
    .await;
    assert_eq!(view.state, Phase::Active);
    assert!(pg.refresh_calls() >= 3);
    // The session works for API calls.
    let accounts = engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    assert_eq!(accounts.status, 200, "{}", accounts.body);
    assert!(accounts.body.contains("cust-1001"));
    let report = engine.sign_out().await.unwrap();
    assert_eq!(report.server_error, None);
    assert_eq!(report.view.state, Phase::SignedOut);
    assert!(store.entries().is_empty());
    assert!(pg.sessions().iter().all(|s| s.signed_out));
    // Nothing leaked into the data directory (the audit log).
    let tokens = pg.issued_tokens();
    for (path, text) in files_text(dir.path()) {
        assert_no_token(&tokens, &path.display().to_string(), &text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_carries_well_formed_headers() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    engine.refresh_now().await.unwrap();
    engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    engine.sign_out().await.unwrap();
    let requests = pg.requests();
    // Sign-in, the sessions list (the concurrent-sessions check after a
    // sign-in), call, refresh, call, sign-out.
    assert_eq!(
        requests.len(),
        6,
        "{:?}",
        requests.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert_eq!(requests[1].path, "/api/v2/sessions");
    let mut request_ids = BTreeSet::new();
    for r in &requests {
        assert!(r.problems.is_empty(), "{} {}: {:?}", r.method, r.path, r.problems);
        assert_eq!(r.status, 200, "{} {}", r.method, r.path);
        assert!(
            request_ids.insert(r.headers["x-request-id"].clone()),
            "X-Request-ID reused"
        );
    }
    // One activity per flow: each of the six differs.
    let activities: BTreeSet<_> = requests.iter().map(|r| r.headers["x-activity-id"].clone()).collect();
    assert_eq!(activities.len(), 6);
    // The correlation id is the engine's, the session id the session's.
    let non_logout: Vec<_> = requests.iter().filter(|r| !r.path.ends_with("/logout")).collect();
    assert_eq!(
        non_logout
            .iter()
            .map(|r| &r.headers["x-correlation-id"])
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );
    assert_eq!(
        non_logout
            .iter()
            .map(|r| &r.headers["x-session-id"])
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );
    for r in requests.iter().filter(|r| r.path == "/api/v2/accounts") {
        assert!(r.headers["authorization"].starts_with("present sha256:"));
    }
    // Logout carries exactly the headers the API lists.
    let logout = requests.iter().find(|r| r.path == "/api/v2/auth/logout").unwrap();
    let names: BTreeSet<&str> = logout.headers.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "x-activity-id",
            "x-request-id",
            "x-session-active",
            "x-tenant-id",
            "x-user-session-token"
        ])
    );
    assert_eq!(logout.headers["x-session-active"], "true");
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_503s_are_retried_and_recover_before_expiry() {
    let pg = playground(10).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.fail_next_refreshes(3);
    let mut states = engine.subscribe();
    let _scheduler = engine.start();
    let view = wait_for(
        &engine,
        "a successful refresh after three 503s",
        Duration::from_secs(15),
        |v| v.refresh_count >= 1,
    )
    .await;
    assert_eq!(view.state, Phase::Active);
    assert_eq!(pg.refresh_calls(), 4);
    while let Ok(v) = states.try_recv() {
        assert_ne!(v.state, Phase::Expired);
    }
    let failed: Vec<u32> = audit_events(&engine)
        .into_iter()
        .filter_map(|e| match e {
            AuditEvent::RefreshFailed { attempt, .. } => Some(attempt),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn revoked_session_moves_to_revoked_through_a_401() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    assert_eq!(pg.revoke(Some("alice")), 1);
    // The API answers 401, the engine refreshes once, the refresh says
    // invalid_grant: the session is revoked.
    let err = engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    assert_eq!(engine.view().state, Phase::Revoked);
    assert!(engine
        .view()
        .last_error
        .unwrap()
        .message
        .contains("revoked by an administrator"));
    assert!(store.entries().is_empty());
    assert_eq!(pg.refresh_calls(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn reused_refresh_token_is_detected_and_revokes_the_session() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    let stolen = store.entries();
    engine.refresh_now().await.unwrap();
    // A copy of the old keychain entry (an attacker's, or a stale process's).
    let other_dir = tempfile::tempdir().unwrap();
    let copy = engine_for_entries(&pg, other_dir.path(), stolen);
    assert_eq!(copy.restore().await.unwrap().state, Phase::Active);
    let err = copy.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    assert!(err.to_string().contains("reuse"), "{err}");
    // The legitimate holder is revoked as well.
    let err = engine.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionRevoked);
    assert!(pg.sessions()[0].revoked);
}

fn engine_for_entries(
    pg: &playground::Playground,
    dir: &std::path::Path,
    entries: std::collections::HashMap<String, String>,
) -> session_core::Engine {
    engine(profile(pg, |t| t), dir, Arc::new(MemoryStore::with_entries(entries)))
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_mismatch_fails_with_the_presented_pin_and_stores_nothing() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let real_pins = pg.info().pins.clone();
    let wrong = profile(&pg, |t| {
        t.replace(&real_pins[0], "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .replace(&real_pins[1], "sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=")
    });
    let store = Arc::new(MemoryStore::default());
    let engine = engine(wrong, dir.path(), store.clone());
    let err = engine.sign_in("alice", Password::new(PW)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::PinMismatch);
    let message = err.to_string();
    assert!(
        message.contains(&real_pins[0]),
        "the presented pin is not named: {message}"
    );
    assert!(store.entries().is_empty());
    assert_eq!(engine.view().state, Phase::SignedOut);
    assert!(audit_events(&engine)
        .iter()
        .any(|e| matches!(e, AuditEvent::PinMismatch { presented, .. } if presented.contains(&real_pins[0]))));
    // The server never saw a login (the handshake failed first).
    assert!(pg.requests().is_empty());
}

/// Report-only pinning (TrustKit's rollout model) outside Production: the
/// mismatch is audited and shown, the session works; Production refuses
/// the setting at load time, and enforcing is the default.
#[tokio::test(flavor = "multi_thread")]
async fn report_only_pins_audit_and_show_a_mismatch_and_production_refuses_them() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let real_pins = pg.info().pins.clone();
    let report_only = profile(&pg, |t| {
        t.replacen(&real_pins[0], "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", 1)
            .replacen(&real_pins[1], "sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=", 1)
            .replacen("tenant_id =", "pin_mode = \"report-only\"\ntenant_id =", 1)
            // As the rollout does it: report-only in Integration.
            .replacen("environment = \"playground\"", "environment = \"integration\"", 1)
    });
    assert_eq!(report_only.environment, session_core::profile::Environment::Integration);
    let store = Arc::new(MemoryStore::default());
    let engine = engine(report_only, dir.path(), store.clone());
    let view = engine.sign_in("alice", Password::new(PW)).await.unwrap();
    assert_eq!(view.state, Phase::Active);
    let report = view.pin_report.expect("the mismatch is shown");
    assert!(
        report.contains("127.0.0.1") && report.contains(&real_pins[0]),
        "{report}"
    );
    assert!(audit_events(&engine)
        .iter()
        .any(|e| matches!(e, AuditEvent::PinMismatchReported { presented, .. } if presented.contains(&real_pins[0]))));
    assert!(!audit_events(&engine)
        .iter()
        .any(|e| matches!(e, AuditEvent::PinMismatch { .. })));

    let prod = playground_with(Options {
        mode: Mode::Production,
        ..Options::default()
    })
    .await;
    let text = prod
        .config()
        .replacen("tenant_id =", "pin_mode = \"report-only\"\ntenant_id =", 1);
    let e = session_core::profile::Config::parse(&text, std::path::Path::new("/")).unwrap_err();
    assert!(e.to_string().contains("production always enforces pins"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_pin_alone_is_enough() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let pins = pg.info().pins.clone();
    // The "current" pin is a key the server does not have; the backup is the
    // server's real key.
    let p = profile(&pg, |t| {
        t.replace(
            &format!("pins = [\"{}\", \"{}\"]", pins[0], pins[1]),
            &format!(
                "pins = [\"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\", \"{}\"]",
                pins[0]
            ),
        )
    });
    assert!(!p.pins.iter().any(|x| x.to_string() == pins[1]));
    let e = engine(p, dir.path(), Arc::new(MemoryStore::default()));
    e.sign_in("alice", Password::new(PW)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn untrusted_ca_is_refused_even_with_a_matching_pin() {
    let pg = playground(60).await;
    let other = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    // pg's pins, but the other Playground's CA.
    let other_ca = other.info().ca_cert.clone();
    let p = profile(&pg, |t| t.replace(&pg.info().ca_cert, &other_ca));
    let e = engine(p, dir.path(), Arc::new(MemoryStore::default()));
    let err = e.sign_in("alice", Password::new(PW)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TlsFailure, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn production_limits_concurrent_sessions() {
    let pg = playground_with(Options {
        mode: Mode::Production,
        session_limit: 2,
        ..Options::default()
    })
    .await;
    assert!(pg.config().contains("environment = \"production\""));
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let engines: Vec<_> = dirs.iter().map(|d| memory_engine(&pg, d.path()).0).collect();
    engines[0].sign_in("alice", Password::new(PW)).await.unwrap();
    engines[1].sign_in("alice", Password::new(PW)).await.unwrap();
    let err = engines[2].sign_in("alice", Password::new(PW)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionLimit);
    assert!(err.to_string().contains("limit is 2"), "{err}");
    // Another user is not affected; signing out frees a slot.
    engines[0].sign_out().await.unwrap();
    engines[2].sign_in("alice", Password::new(PW)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_is_picked_up_through_the_jwks() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.rotate_keys().await;
    engine.refresh_now().await.unwrap();
    assert_eq!(engine.view().refresh_count, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn es256_tokens_validate() {
    let pg = playground_with(Options {
        signing_alg: jsonwebtoken_alg_es256(),
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("bob", Password::new("bob-pw-2")).await.unwrap();
    assert_eq!(engine.view().customer.as_deref(), Some("cust-1002"));
    // A profile that allows only RS256 refuses them.
    let strict = profile(&pg, |t| {
        t.replace("algorithms = [\"RS256\", \"ES256\"]", "algorithms = [\"RS256\"]")
    });
    let e = integration::engine(strict, dir.path(), Arc::new(MemoryStore::default()));
    let err = e.sign_in("bob", Password::new("bob-pw-2")).await.unwrap_err();
    assert!(err.to_string().contains("algorithm check failed"), "{err}");
}

fn jsonwebtoken_alg_es256() -> playground::Algorithm {
    playground::Algorithm::ES256
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unreachable_server_have_their_own_errors() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = memory_engine(&pg, dir.path());
    let err = engine.sign_in("alice", Password::new("wrong")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidCredentials);
    assert!(store.entries().is_empty());
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let p = profile(&pg, |t| {
        t.replace(
            &format!("base_url = \"{}\"", pg.base_url()),
            &format!("base_url = \"https://127.0.0.1:{closed_port}\""),
        )
    });
    assert_eq!(p.base_url.port(), Some(closed_port));
    let e = integration::engine(p, dir.path(), Arc::new(MemoryStore::default()));
    let err = e.sign_in("alice", Password::new(PW)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NetworkUnreachable, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_renewed_before_the_call_not_sent() {
    let pg = playground(2).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.set_token_lifetime(Duration::from_secs(600));
    // No scheduler: the token expires while the engine holds it (a test
    // about time passing).
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let r = engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(pg.refresh_calls(), 1);
    // The expired token never went to the API: renewed before use.
    let accounts: Vec<_> = pg
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v2/accounts")
        .collect();
    assert_eq!(accounts.iter().map(|r| r.status).collect::<Vec<_>>(), vec![200]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_401_for_a_token_the_engine_holds_valid_refreshes_once_and_retries() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    // The provider stops honouring the current token early (its own clock,
    // or a key it withdrew): the API answers 401 while the engine still
    // holds the token valid.
    pg.reject_current_access_tokens();
    let r = engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(pg.refresh_calls(), 1);
    let accounts: Vec<_> = pg
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v2/accounts")
        .collect();
    assert_eq!(accounts.iter().map(|r| r.status).collect::<Vec<_>>(), vec![401, 200]);
    assert_eq!(
        accounts[0].headers["x-activity-id"], accounts[1].headers["x-activity-id"],
        "the retry belongs to the same flow"
    );
    assert_ne!(accounts[0].headers["x-request-id"], accounts[1].headers["x-request-id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_not_followed() {
    let pg = playground(60).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    let r = engine.call(reqwest::Method::GET, "/api/v2/moved", None).await.unwrap();
    assert_eq!(r.status, 302, "the redirect was followed");
    // A path that tries to leave the provider's host is refused before sending.
    let err = engine
        .call(reqwest::Method::GET, "//evil.example/x", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidState);
}

/// Engine review, finding 1, over real TLS: the provider redeems the refresh
/// token and signs the new session token with a key the app cannot fetch yet
/// (the key set answers 503 once). The rotated refresh token must be the one
/// used next; presenting the spent one would make the Playground detect
/// reuse and revoke the session.
#[tokio::test(flavor = "multi_thread")]
async fn a_new_signing_key_behind_a_failing_key_set_does_not_cost_the_session() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    // Past the key set's refetch interval, so the new kid makes the engine
    // fetch the key set again, and that fetch meets the 503.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    pg.rotate_keys().await;
    pg.fail_next_jwks(1);
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(pg.refresh_calls(), 1);
    assert!(e.to_string().contains("JWKS"), "not the key set's 503: {e}");
    assert_eq!(engine.view().state, Phase::Active, "{e}");
    // The scheduler tries again after the backoff, with the rotated token.
    let _scheduler = engine.start();
    let view = wait_for(
        &engine,
        "a refresh after the key set's 503",
        Duration::from_secs(15),
        |v| v.last_refresh.as_ref().is_some_and(|r| r.ok) || !v.state.has_session(),
    )
    .await;
    assert_eq!(view.state, Phase::Active, "{:?}", view.last_error);
    assert!(
        pg.sessions().iter().all(|s| !s.revoked),
        "the Playground saw a reused refresh token"
    );
    let r = engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

/// Lifecycle: an outage that outlasts the session token leaves the session
/// Active and "offline, retrying", and it recovers when the provider does.
#[tokio::test(flavor = "multi_thread")]
async fn an_outage_past_expiry_says_offline_and_recovers() {
    let pg = playground(2).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.fail_next_refreshes(u32::MAX);
    let _scheduler = engine.start();
    let view = wait_for(&engine, "offline after expiry", Duration::from_secs(10), |v| v.offline).await;
    // Active, or Refreshing while a retry is in flight: never Expired.
    assert!(view.state.has_session(), "{:?}", view.state);
    // Expired by the provider's clock, which the engine follows (the offset
    // from its whole-second `Date` header is centred, so up to 0.5 s ahead).
    let provider_now = chrono::Utc::now() + chrono::Duration::milliseconds(view.clock_offset_ms);
    assert!(view.expires_at.unwrap() <= provider_now, "{view:?}");
    assert_eq!(view.last_error.unwrap().code, ErrorCode::ServerError);
    pg.set_token_lifetime(Duration::from_secs(600));
    pg.fail_next_refreshes(0);
    let view = wait_for(&engine, "renewed after the outage", Duration::from_secs(15), |v| {
        !v.offline && v.last_refresh.as_ref().is_some_and(|r| r.ok)
    })
    .await;
    assert_eq!(view.state, Phase::Active);
    assert!(view.last_error.is_none());
}
