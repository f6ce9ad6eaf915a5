//! A Playground that keeps its state (the app's built-in one, the demo
//! package's) comes back after a restart as a real provider would: the same
//! address and certificates, the same signing keys, and the sessions it had,
//! so a client's session goes on. Over real TLS, with the engine.

use integration::*;
use playground::{Options, Playground};
use session_core::{ErrorCode, Password, Phase};
use std::path::Path;
use std::time::Duration;

fn keeping(dir: &Path) -> Options {
    Options {
        dir: Some(dir.to_owned()),
        keep_state: true,
        token_lifetime: Duration::from_secs(600),
        ..Options::default()
    }
}

/// Stop `pg` and wait until its port is free again (its listener closes
/// on a task of its own), as it is for a new process.
async fn stop(pg: Playground) {
    let port: u16 = pg.base_url().rsplit(':').next().unwrap().parse().unwrap();
    drop(pg);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpListener::bind(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "port {port} still taken");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_playground_keeps_its_address_keys_and_sessions() {
    let pg_dir = tempfile::tempdir().unwrap();
    let data = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let pg = playground_with(keeping(pg_dir.path())).await;
    let (before, config, token) = (
        pg.base_url().to_owned(),
        pg.config().to_owned(),
        pg.info().admin_token.clone(),
    );
    let (finhub, _) = memory_engine(&pg, data[0].path());
    finhub.sign_in("alice", Password::new("alice-pw-1")).await.unwrap();
    let opener = BrowserOpener::new(&pg, BrowserStep::SignIn("alice".into(), "alice-pw-1".into()));
    let (oidc, _) = oidc_engine(oidc_profile(&pg, |t| t), data[1].path(), opener);
    oidc.sign_in_browser().await.unwrap();
    stop(pg).await;

    let pg = playground_with(keeping(pg_dir.path())).await;
    assert_eq!(pg.base_url(), before, "the same address");
    assert_eq!(pg.config(), config, "the same profiles, pins and CA");
    assert_eq!(pg.info().admin_token, token, "the same admin token");
    // The access token issued before still verifies (the same keys)...
    let answer = finhub
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    // ...and both sessions renew (the refresh tokens are known).
    assert_eq!(finhub.refresh_now().await.unwrap().state, Phase::Active);
    assert_eq!(oidc.refresh_now().await.unwrap().state, Phase::Active);
    assert_eq!(pg.sessions().len(), 2, "{:?}", pg.sessions());
    // A revocation is kept too.
    assert_eq!(pg.revoke(Some("alice")), 2);
    stop(pg).await;
    let _pg = playground_with(keeping(pg_dir.path())).await;
    let e = finhub.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionRevoked, "{e}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_state_file_is_private_and_written_only_when_asked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pg = playground_with(keeping(dir.path())).await;
    let mode = std::fs::metadata(dir.path().join("state.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(pg);
    // Without keep_state nothing is written.
    let other = tempfile::tempdir().unwrap();
    let _pg = playground_with(Options {
        dir: Some(other.path().to_owned()),
        ..Options::default()
    })
    .await;
    assert!(!other.path().join("state.json").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_state_is_set_aside_and_the_playground_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("state.json"), b"{\"format\": 1, \"port\": ").unwrap();
    let pg = playground_with(keeping(dir.path())).await;
    assert_eq!(
        std::fs::read(dir.path().join("state.json.unreadable")).unwrap(),
        b"{\"format\": 1, \"port\": ",
        "the unreadable file is kept for a look"
    );
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new("alice-pw-1")).await.unwrap();
    let saved = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
    assert!(saved.contains("\"sessions\""), "a fresh state is written");
}
