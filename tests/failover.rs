//! Failover to a backup endpoint over real TLS: the Playground serves a
//! primary and a backup over one session store, and takes the primary down
//! and up while the engine works.

use integration::*;
use playground::{Options, Playground};
use session_core::storage::audit::AuditEvent;
use session_core::{Engine, ErrorCode, Password, Phase};
use std::time::Duration;

const PW: &str = "alice-pw-1";

async fn with_backup(lifetime: u64) -> Playground {
    playground_with(Options {
        token_lifetime: Duration::from_secs(lifetime),
        backup: true,
        ..Options::default()
    })
    .await
}

fn switches(engine: &Engine) -> Vec<(String, String)> {
    engine
        .audit_log()
        .recent(1000)
        .unwrap()
        .into_iter()
        .rev()
        .filter_map(|r| match r.event {
            AuditEvent::EndpointSwitched { to, reason } => Some((to, reason)),
            _ => None,
        })
        .collect()
}

/// The primary goes down mid-session: the refresh and the API calls go to
/// the backup (the same pins hold), the view and the audit log say so, and
/// once the primary is back the engine returns to it after the cool-down.
#[tokio::test(flavor = "multi_thread")]
async fn the_primary_going_down_moves_to_the_backup_and_back() {
    let pg = with_backup(600).await;
    let backup = pg.info().backup_url.clone().expect("a backup URL");
    assert!(pg.config().contains(&format!("backup_urls = [\"{backup}\"]")));
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(&pg, |t| t.replace("tenant_id =", "failback_secs = 1\ntenant_id ="));
    let (engine, _) = memory_engine_for(profile, dir.path());
    let v = engine.sign_in("alice", Password::new(PW)).await.unwrap();
    assert_eq!(v.backup_endpoint, None);

    pg.set_primary(false).await;
    let v = engine.refresh_now().await.unwrap();
    assert_eq!(v.state, Phase::Active);
    assert_eq!(v.backup_endpoint.as_deref(), Some(backup.as_str()));
    let r = engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let s = switches(&engine);
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(s[0].1.contains("failed"), "{s:?}");
    assert!(pg.sessions().iter().all(|s| !s.revoked));

    // Back up: within the cool-down the backup is still used; after it the
    // primary is probed and taken again.
    pg.set_primary(true).await;
    let seen = pg.requests().len();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the 1 s cool-down
    let r = engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let v = engine.view();
    assert_eq!(v.backup_endpoint, None, "back on the primary");
    let s = switches(&engine);
    assert_eq!(s.last().map(|s| s.0.as_str()), Some("primary"), "{s:?}");
    assert!(pg.requests().len() > seen);
}

/// A refresh that timed out after the connection was made may have been
/// redeemed: it is never replayed at the backup (which shares the session
/// store, so a replay would be a reuse that revokes the session).
#[tokio::test(flavor = "multi_thread")]
async fn a_timed_out_refresh_is_not_replayed_at_the_backup() {
    let pg = with_backup(600).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(&pg, |t| t.replace("tenant_id =", "timeout_secs = 1\ntenant_id ="));
    let (engine, _) = memory_engine_for(profile, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.slow_next_refresh(Duration::from_millis(2500));
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout, "{e}");
    // The primary redeemed it (the answer was lost); nothing else came.
    let refreshes: u32 = pg.sessions().iter().map(|s| s.refresh_count).sum();
    assert_eq!(refreshes, 1, "the refresh was redeemed once, at the primary");
    assert!(pg.sessions().iter().all(|s| !s.revoked), "no reuse was presented");
    assert_eq!(engine.view().backup_endpoint, None);
    assert!(switches(&engine).is_empty());
}

/// A gateway may answer 503 after its upstream rotated the refresh token:
/// a refresh is not replayed at the backup for a status (engine review
/// N15); it is a passing failure, retried at the primary, and the session
/// stays. Nobody listening at all: every endpoint is tried, and the error
/// is the last one's.
#[tokio::test(flavor = "multi_thread")]
async fn a_503_to_a_refresh_is_not_replayed_and_all_endpoints_down_is_network_unreachable() {
    let pg = with_backup(600).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.fail_next_refreshes(1);
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ServerError, "{e}");
    let v = engine.view();
    assert_eq!(v.state, Phase::Active);
    assert_eq!(v.backup_endpoint, None);
    assert_eq!(pg.refresh_calls(), 1, "the refresh was replayed at the backup");
    drop(engine);

    let pg = with_backup(600).await;
    let dir = tempfile::tempdir().unwrap();
    let text = pg.config().to_owned();
    let dead = text.replace(&pg.info().backup_url.clone().unwrap(), "https://127.0.0.1:1");
    let profile = profile(&pg, |_| dead);
    let (engine, _) = memory_engine_for(profile, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.set_primary(false).await;
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NetworkUnreachable, "{e}");
    assert_eq!(engine.view().state, Phase::Active, "an outage does not end the session");
}

/// A FinHub refresh whose answer was lost (the provider rotated, the
/// client timed out) is tried again with the same idempotency key: the
/// provider gives the same answer instead of seeing a reuse, and the
/// session stays (engine review N10).
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_finhub_refresh_answer_is_given_again_not_taken_for_a_reuse() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let profile = profile(&pg, |t| t.replace("tenant_id =", "timeout_secs = 1\ntenant_id ="));
    let (engine, _) = memory_engine_for(profile, dir.path());
    engine.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.slow_next_refresh(Duration::from_millis(2500));
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Timeout, "{e}");
    let _scheduler = engine.start();
    let v = wait_for(&engine, "the retry's outcome", Duration::from_secs(15), |v| {
        v.last_refresh.as_ref().is_some_and(|r| r.ok) || !v.state.has_session()
    })
    .await;
    assert_eq!(v.state, Phase::Active, "{:?}", v.last_error);
    assert!(
        pg.sessions().iter().all(|s| !s.revoked),
        "the retry was taken for a reuse"
    );
    let refreshes: u32 = pg.sessions().iter().map(|s| s.refresh_count).sum();
    assert_eq!(refreshes, 1, "the retry was redeemed again instead of answered again");
}
