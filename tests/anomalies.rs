//! The anomaly detectors through the engine over real TLS, with the
//! Playground reporting the origins QA asks for.

use integration::*;
use playground::{Mode, Options, Playground};
use session_core::insight::anomaly::Kind;
use session_core::storage::audit::AuditEvent;
use session_core::{Engine, Password, Phase};

const PW: &str = "alice-pw-1";

fn with_line(pg: &Playground, dir: &std::path::Path, line: &str) -> Engine {
    let line = line.to_owned();
    let p = profile(pg, move |t| {
        t.replacen("tenant_id =", &format!("{line}\ntenant_id ="), 1)
    });
    memory_engine_for(p, dir).0
}

fn anomalies(engine: &Engine) -> Vec<(String, String, bool)> {
    engine
        .audit_log()
        .recent(1000)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            AuditEvent::Anomaly {
                kind,
                reason,
                signed_out,
            } => Some((kind, reason, signed_out)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_from_a_new_city_is_reported_and_can_be_dismissed() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    for _ in 0..2 {
        let v = engine.sign_in("alice", Password::new(PW)).await.unwrap();
        assert!(v.anomalies.is_empty(), "{:?}", v.anomalies);
        engine.sign_out().await.unwrap();
    }
    pg.set_next_login_origin("203.0.113.7", "Lisbon", "PT");
    let v = engine.sign_in("alice", Password::new(PW)).await.unwrap();
    assert_eq!(v.anomalies.len(), 1, "{:?}", v.anomalies);
    assert_eq!(v.anomalies[0].kind, Kind::NewLocation);
    assert_eq!(
        v.anomalies[0].reason,
        "signed in from Lisbon, PT; your last 2 sessions were in Berlin, DE"
    );
    assert_eq!(anomalies(&engine).len(), 1);
    engine.dismiss_anomalies();
    assert!(engine.view().anomalies.is_empty());
    assert_eq!(anomalies(&engine).len(), 1, "still in the audit log");
    assert_eq!(engine.view().state, Phase::Active, "advisory outside production");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_production_profile_signs_out_on_the_kinds_it_names() {
    let pg = playground_with(Options {
        mode: Mode::Production,
        session_limit: 5,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let engine = with_line(&pg, dir.path(), "anomaly_sign_out = [\"new_location\"]");
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    engine.sign_out().await.unwrap();
    pg.set_next_login_origin("198.51.100.9", "Lisbon", "PT");
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    let v = engine.view();
    assert_eq!(v.state, Phase::SignedOut, "signed out on the finding");
    let found = anomalies(&engine);
    assert!(found.iter().any(|(k, _, out)| k == "new_location" && *out), "{found:?}");
    assert!(
        pg.sessions().iter().all(|s| s.revoked || s.signed_out),
        "the provider was told"
    );
    // Outside production the setting is refused at load.
    let text =
        playground(60)
            .await
            .config()
            .replacen("tenant_id =", "anomaly_sign_out = [\"new_location\"]\ntenant_id =", 1);
    let e = session_core::profile::Config::parse(&text, std::path::Path::new("/")).unwrap_err();
    assert!(e.to_string().contains("for production profiles"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn more_sessions_than_usual_and_a_storm_of_401s_are_reported() {
    let pg = playground(600).await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = with_line(&pg, dirs[0].path(), "anomaly_max_sessions = 1");
    first.sign_in("alice", Password::new(PW)).await.unwrap();
    let second = with_line(&pg, dirs[1].path(), "anomaly_max_sessions = 1");
    let v = second.sign_in("alice", Password::new(PW)).await.unwrap();
    assert!(
        v.anomalies.iter().any(|a| a.kind == Kind::ConcurrentSessions
            && a.reason == "2 sessions are signed in at once; you usually allow at most 1"),
        "{:?}",
        v.anomalies
    );
    // Five calls refused with 401 within a minute (each is renewed and
    // retried, so every call still succeeds).
    for _ in 0..5 {
        pg.reject_current_access_tokens();
        let r = first
            .call(reqwest::Method::GET, "/api/v2/accounts", None)
            .await
            .unwrap();
        assert_eq!(r.status, 200);
    }
    let v = first.view();
    assert!(
        v.anomalies
            .iter()
            .any(|a| a.kind == Kind::ApiPattern && a.reason.contains("401")),
        "{:?}",
        v.anomalies
    );
    let storms = anomalies(&first).iter().filter(|(k, _, _)| k == "api_pattern").count();
    assert_eq!(storms, 1, "one finding per window");
}
