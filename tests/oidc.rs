//! OpenID Connect against the Playground over real TLS: the browser step is
//! played by the Playground's scripted browser through the opener seam.

use integration::*;
use session_core::profile::ExtendAccess;
use session_core::storage::audit::AuditEvent;
use session_core::storage::vault::{MemoryStore, Vault};
use session_core::view::SignInMethod;
use session_core::{Engine, ErrorCode, Phase};
use std::sync::Arc;
use std::time::Duration;

fn alice() -> BrowserStep {
    BrowserStep::SignIn("alice".into(), "alice-pw-1".into())
}

fn reauth(text: String) -> String {
    text.replace("extend_access = \"refresh\"", "extend_access = \"reauthenticate\"")
}

fn query(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `url` with the query parameter `name` set to `value` (replaced if there).
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut u = reqwest::Url::parse(url).unwrap();
    let kept: Vec<(String, String)> = u
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut().clear().extend_pairs(kept).append_pair(name, value);
    u.to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn code_flow_with_pkce_signs_in_and_fills_the_view() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(&pg, alice());
    let (engine, store) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener.clone());
    let mut events = engine.subscribe();
    let view = engine.sign_in_browser().await.unwrap();
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.provider, "oidc");
    assert_eq!(view.sign_in_method, SignInMethod::Browser);
    assert_eq!(view.extend_access, ExtendAccess::Refresh);
    assert_eq!(view.user.as_deref(), Some("alice"));
    assert_eq!(view.name.as_deref(), Some("Alice Adams"));
    assert_eq!(view.email.as_deref(), Some("alice@playground.test"));
    assert!(view.scope.unwrap().contains("offline_access"));
    assert!(view.browser.is_none(), "the wait is over");
    // The authorization request: code flow, PKCE S256, state, nonce, loopback.
    let url = &opener.opened()[0];
    assert!(
        url.starts_with(&format!("{}/authorize?", pg.info().oidc_issuer)),
        "{url}"
    );
    assert_eq!(query(url, "response_type").as_deref(), Some("code"));
    assert_eq!(query(url, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(query(url, "code_challenge").unwrap().len(), 43);
    assert!(
        query(url, "code_verifier").is_none(),
        "the verifier never leaves the app"
    );
    assert!(query(url, "state").unwrap().len() >= 43 && query(url, "nonce").unwrap().len() >= 43);
    let redirect = query(url, "redirect_uri").unwrap();
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
        "{redirect}"
    );
    // The person saw the app's page in the browser.
    assert!(opener.pages()[0].contains("You are signed in"), "{:?}", opener.pages());
    // While it waited, the view carried the page to open.
    let mut saw_wait = false;
    while let Ok(v) = events.try_recv() {
        saw_wait |= v.state == Phase::SigningIn && v.browser.as_ref().is_some_and(|b| b.url == *url && !b.silent);
    }
    assert!(saw_wait, "no view showed the browser wait");
    // The session is in the keychain with its ID token, and restores.
    let record = Vault::new(store.clone(), "playground-oidc").load().unwrap().unwrap();
    assert!(record.id_token.is_some() && record.refresh.is_some());
    let other = Engine::open_with(oidc_profile(&pg, |t| t), dir.path(), store.clone(), opener.clone()).unwrap();
    assert_eq!(other.restore().await.unwrap().state, Phase::Active);
    assert_eq!(pg.calls_to("/oidc/token"), 1);
    assert_eq!(pg.calls_to("/oidc/userinfo"), 1);
    // No token in the audit log.
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap_or_default();
    assert_no_token(&pg.issued_tokens(), "the audit log", &audit);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_rotates_and_a_stolen_copy_revokes_the_session() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(&pg, alice());
    let (engine, store) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener.clone());
    engine.sign_in_browser().await.unwrap();
    let before = Vault::new(store.clone(), "playground-oidc").load().unwrap().unwrap();
    let stolen = Arc::new(MemoryStore::with_entries(store.entries()));
    engine.refresh_now().await.unwrap();
    let view = engine.refresh_now().await.unwrap();
    assert_eq!((view.state, view.refresh_count), (Phase::Active, 2));
    let after = Vault::new(store.clone(), "playground-oidc").load().unwrap().unwrap();
    assert_ne!(before.refresh, after.refresh, "the refresh token rotates");
    assert_eq!(
        after.name.as_deref(),
        Some("Alice Adams"),
        "identity kept across refreshes"
    );
    // A copy of the first refresh token is used: the provider sees reuse.
    let thief = Engine::open_with(oidc_profile(&pg, |t| t), dir.path(), stolen, opener.clone()).unwrap();
    thief.restore().await.unwrap();
    let e = thief.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionRevoked, "{e}");
    assert!(e.to_string().contains("reuse"), "{e}");
    // The whole session is gone at the provider: the real owner is revoked too.
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionRevoked);
    assert_eq!(engine.view().state, Phase::Revoked);
    assert!(store.entries().is_empty(), "a revoked session stays in the keychain");
}

#[tokio::test(flavor = "multi_thread")]
async fn reauthenticate_mode_uses_prompt_none_then_asks_the_person() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(&pg, alice());
    let (engine, _store) = oidc_engine(oidc_profile(&pg, reauth), dir.path(), opener.clone());
    let first = engine.sign_in_browser().await.unwrap();
    assert_eq!(first.extend_access, ExtendAccess::Reauthenticate);
    assert!(first.next_refresh_at.is_some());
    // Silent: the browser still has the Playground's session cookie.
    let view = engine.refresh_now().await.unwrap();
    assert_eq!(
        (view.state, view.refresh_count, view.reauth_needed),
        (Phase::Active, 1, false)
    );
    assert_eq!(view.session_id, first.session_id);
    let silent = &opener.opened()[1];
    assert_eq!(query(silent, "prompt").as_deref(), Some("none"), "{silent}");
    assert_eq!(pg.calls_to("/oidc/token"), 2, "two code exchanges, no refresh grant");
    assert!(engine
        .audit_log()
        .recent(100)
        .unwrap()
        .iter()
        .any(|r| r.event == AuditEvent::SessionReauthenticated { count: 1, silent: true }));
    // The provider's session is gone from the browser: prompt=none answers
    // login_required, and the person is asked.
    opener.browser.clear_cookies();
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ReauthRequired, "{e}");
    assert!(e.to_string().contains("login_required"), "{e}");
    let view = engine.view();
    assert_eq!(view.state, Phase::Active, "the session lives until it expires");
    assert!(view.reauth_needed);
    assert_eq!(view.next_refresh_at, None);
    // One click: an interactive sign-in extends the same session.
    let view = engine.sign_in_browser().await.unwrap();
    assert!(!view.reauth_needed);
    assert_eq!(view.session_id, first.session_id);
    assert_eq!(query(opener.opened().last().unwrap(), "prompt"), None);
    // A provider that does not offer prompt=none: no silent attempt at all,
    // the person is asked at once (a new engine reads discovery afresh).
    pg.set_prompt_none(false);
    let (engine, _) = oidc_engine(oidc_profile(&pg, reauth), dir.path(), opener.clone());
    engine.sign_in_browser().await.unwrap();
    let opened = opener.opened().len();
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ReauthRequired);
    assert!(e.to_string().contains("does not support silent sign-in"), "{e}");
    assert_eq!(
        opener.opened().len(),
        opened,
        "no browser for a silent attempt the provider refuses"
    );
    assert!(engine.view().reauth_needed);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_uses_all_three_logout_styles() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(&pg, alice());
    let (engine, store) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener.clone());
    engine.sign_in_browser().await.unwrap();
    let report = engine.sign_out().await.unwrap();
    assert_eq!(report.server_error, None);
    assert_eq!(report.view.state, Phase::SignedOut);
    assert!(store.entries().is_empty());
    // Transmit-style logout with the bearer token.
    let logout: Vec<_> = pg
        .requests()
        .into_iter()
        .filter(|r| r.path == "/cis/v1/auth/logout")
        .collect();
    assert_eq!(logout.len(), 1);
    assert_eq!(logout[0].status, 200);
    assert!(logout[0].headers["authorization"].starts_with("present sha256:"));
    // RFC 7009: refresh token and access token.
    assert_eq!(pg.calls_to("/oidc/revoke"), 2);
    // RP-initiated logout in the browser, with the ID token as hint: the
    // browser opens a one-shot page on loopback that POSTs the request, so
    // the token is in no URL (no command line, no history, no access log).
    let end = opener.opened().last().unwrap().clone();
    assert!(
        end.starts_with("http://127.0.0.1:") && end.contains("/sign-out/"),
        "{end}"
    );
    for token in pg.issued_tokens() {
        assert!(!end.contains(&token), "a token in the sign-out URL");
    }
    // The browser's visit ends the provider's SSO session: a silent sign-in
    // now needs the person.
    wait_until("the end-session page was visited", || opener.pages().len() >= 2).await;
    assert!(opener.pages().last().unwrap().contains("You are signed out"));
    assert!(pg.sessions().iter().all(|s| s.signed_out));
    let end_session: Vec<_> = pg
        .requests()
        .into_iter()
        .filter(|r| r.path == "/oidc/end-session")
        .collect();
    assert_eq!(end_session.len(), 1);
    assert_eq!(end_session[0].method, "POST", "the ID token travels in a POST body");
    // The page was served once: the listener is gone.
    assert!(opener
        .browser
        .open(&end, playground::browser::Action::Look)
        .await
        .is_err());
    let visit = opener
        .browser
        .open(
            &with_param(&opener.opened()[0], "prompt", "none"),
            playground::browser::Action::Look,
        )
        .await;
    // The provider answers with a redirect carrying login_required (the
    // app's listener for that old request is gone, so following it fails;
    // the failure names the URL).
    let landed = match visit {
        Ok(v) => v.url,
        Err(e) => e,
    };
    assert!(landed.contains("error=login_required"), "{landed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_errors_cancel_and_opaque_tokens() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    // The person presses Cancel on the provider's page: access_denied, as sent.
    let opener = BrowserOpener::new(&pg, BrowserStep::Cancel);
    let (engine, store) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener.clone());
    let e = engine.sign_in_browser().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthorizationFailed);
    assert!(
        e.to_string().contains("access_denied") && e.to_string().contains("cancelled"),
        "{e}"
    );
    assert_eq!(engine.view().state, Phase::SignedOut);
    // The person walks away and presses Cancel in the app.
    opener.set_step(BrowserStep::Ignore);
    let waiting = tokio::spawn({
        let engine = engine.clone();
        async move { engine.sign_in_browser().await }
    });
    wait_for(&engine, "the browser wait", Duration::from_secs(10), |v| {
        v.browser.is_some()
    })
    .await;
    engine.cancel_sign_in().unwrap();
    let e = waiting.await.unwrap().unwrap_err();
    assert_eq!(e.code(), ErrorCode::SignInCancelled);
    assert!(engine.view().browser.is_none());
    assert!(store.entries().is_empty());
    // Opaque access tokens are used as they are; the expiry comes from expires_in.
    pg.set_opaque_access_tokens(true);
    opener.set_step(alice());
    let view = engine.sign_in_browser().await.unwrap();
    assert_eq!(view.state, Phase::Active);
    let left = (view.expires_at.unwrap() - chrono::Utc::now()).num_seconds();
    assert!((590..=600).contains(&left), "{left}");
    assert_eq!(
        view.name.as_deref(),
        Some("Alice Adams"),
        "userinfo accepts the opaque token"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_issuer_must_match_exactly() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let issuer = pg.info().oidc_issuer.clone();
    let profile = oidc_profile(&pg, |t| {
        t.replace(
            &format!("issuer = \"{issuer}\""),
            &format!("issuer = \"{issuer}/\"\ndiscovery_url = \"{issuer}/.well-known/openid-configuration\""),
        )
    });
    let opener = BrowserOpener::new(&pg, alice());
    let (engine, _) = oidc_engine(profile, dir.path(), opener.clone());
    let e = engine.sign_in_browser().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ProtocolError);
    assert!(e.to_string().contains("must be equal exactly"), "{e}");
    assert!(
        opener.opened().is_empty(),
        "no browser for a provider that failed discovery"
    );
}

/// Poll `done` (a condition on test state, not on time) for up to 10 s.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn automatic_refresh_and_the_admin_faults_work_on_the_oidc_side() {
    let pg = playground(3).await;
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(&pg, alice());
    let (engine, _store) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener.clone());
    engine.sign_in_browser().await.unwrap();
    // The scheduler refreshes 3 s tokens by itself.
    let _scheduler = engine.start();
    wait_for(&engine, "two automatic refreshes", Duration::from_secs(20), |v| {
        v.refresh_count >= 2
    })
    .await;
    // Injected 503s are retried with backoff and the session recovers.
    // First make the scheduler quiet: a refresh already in flight may still
    // bring a 3 s token, so renew until the token lives for minutes; only
    // then are the two failures the next ones the scheduler or we can meet.
    pg.set_token_lifetime(Duration::from_secs(600));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let view = engine.refresh_now().await.unwrap();
        let left = view.expires_at.unwrap() - chrono::Utc::now();
        if left > chrono::Duration::seconds(60) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the 600 s token never came");
    }
    pg.fail_next_refreshes(2);
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::ServerError);
    let view = wait_for(&engine, "a refresh after the failures", Duration::from_secs(20), |v| {
        v.last_refresh.as_ref().is_some_and(|r| r.ok) && v.last_error.is_none()
    })
    .await;
    assert_eq!(view.state, Phase::Active);
    // Rotated signing keys: the new kid is fetched from discovery's jwks_uri.
    pg.rotate_keys().await;
    let view = engine.refresh_now().await.unwrap();
    assert_eq!(view.state, Phase::Active);
    // Revoked by an administrator: the next refresh ends the session.
    assert_eq!(pg.revoke(Some("alice")), 1);
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionRevoked);
    assert_eq!(engine.view().state, Phase::Revoked);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_confidential_client_authenticates_with_its_secret() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let confidential = |secret: &str| {
        let secret = secret.to_owned();
        oidc_profile(&pg, move |t| {
            t.replace(
                &format!("client_id = \"{}\"", playground::CLIENT_ID),
                &format!(
                    "client_id = \"{}\"\nclient_secret = \"{secret}\"",
                    playground::CONFIDENTIAL_CLIENT_ID
                ),
            )
        })
    };
    // client_secret_basic (discovery offers it): sign-in, refresh, revocation.
    let opener = BrowserOpener::new(&pg, alice());
    let (engine, _) = oidc_engine(
        confidential(playground::CONFIDENTIAL_CLIENT_SECRET),
        dir.path(),
        opener.clone(),
    );
    assert_eq!(engine.sign_in_browser().await.unwrap().state, Phase::Active);
    assert_eq!(engine.refresh_now().await.unwrap().refresh_count, 1);
    let token_calls: Vec<_> = pg.requests().into_iter().filter(|r| r.path == "/oidc/token").collect();
    assert!(
        token_calls.iter().all(|r| r
            .headers
            .get("authorization")
            .is_some_and(|a| a.starts_with("present "))),
        "the secret goes in an Authorization header"
    );
    assert_eq!(engine.sign_out().await.unwrap().server_error, None);
    // A wrong secret: the provider's invalid_client reaches the person.
    let (engine, store) = oidc_engine(confidential("not-the-secret"), dir.path(), opener);
    let e = engine.sign_in_browser().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthorizationFailed);
    assert!(e.to_string().contains("invalid_client"), "{e}");
    assert!(store.entries().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_oidc_connection_is_pinned_and_sign_out_survives_a_dead_provider() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    // A pin of no key the Playground has: discovery is refused, no browser opens.
    let wrong = oidc_profile(&pg, |t| {
        let pins = t.lines().find(|l| l.starts_with("pins = ")).unwrap().to_owned();
        t.replace(
            &pins,
            "pins = [\"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]",
        )
    });
    let opener = BrowserOpener::new(&pg, alice());
    let (engine, _) = oidc_engine(wrong, dir.path(), opener.clone());
    let e = engine.sign_in_browser().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::PinMismatch, "{e}");
    assert!(opener.opened().is_empty());
    // Signed in, then the provider goes away: sign-out still clears everything
    // and reports the failed server calls.
    let (engine, store) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener.clone());
    engine.sign_in_browser().await.unwrap();
    assert!(!store.entries().is_empty());
    drop(pg);
    let report = engine.sign_out().await.unwrap();
    assert_eq!(report.view.state, Phase::SignedOut);
    assert!(store.entries().is_empty());
    let server = report.server_error.expect("the failed logout is reported");
    assert!(server.message.contains("logout endpoint"), "{}", server.message);
}
