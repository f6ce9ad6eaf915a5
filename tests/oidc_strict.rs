//! The engine against the Playground's OpenID Connect side at its strict
//! default (what a certified provider does), over real TLS: offline access
//! only with consent, no ID token on refresh, RFC 9068 access tokens,
//! `max_age`, the device grant; then each admin fault QA uses (a failing
//! key set, a skewed clock, an idle refresh token, a lost refresh answer).

use integration::*;
use playground::Switch;
use session_core::storage::audit::AuditEvent;
use session_core::{Engine, ErrorCode, Phase};
use std::sync::Arc;
use std::time::Duration;

fn alice() -> BrowserStep {
    BrowserStep::SignIn("alice".into(), "alice-pw-1".into())
}

fn query(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// An OIDC engine for `pg`'s `playground-oidc` profile, edited by `edit`,
/// with a browser that signs in as alice.
fn strict(
    pg: &playground::Playground,
    edit: impl FnOnce(String) -> String,
) -> (Engine, Arc<BrowserOpener>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(pg, alice());
    let (engine, _) = oidc_engine(oidc_profile(pg, edit), dir.path(), opener.clone());
    (engine, opener, dir)
}

/// Insert `line` into the `playground-oidc` profile.
fn with_line(line: &str) -> impl FnOnce(String) -> String + '_ {
    move |t: String| {
        t.replace(
            "[profiles.playground-oidc]\n",
            &format!("[profiles.playground-oidc]\n{line}\n"),
        )
    }
}

fn audit(engine: &Engine) -> Vec<AuditEvent> {
    engine
        .audit_log()
        .recent(100)
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_access_comes_with_consent_and_the_session_renews_without_id_tokens() {
    let pg = playground(600).await;
    let (engine, opener, _dir) = strict(&pg, |t| t);
    let view = engine.sign_in_browser().await.unwrap();
    // The strict Playground grants offline access only after its consent
    // page, which it shows only for prompt=consent.
    assert_eq!(query(&opener.opened()[0], "prompt").as_deref(), Some("consent"));
    assert!(
        view.scope.as_deref().unwrap_or_default().contains("offline_access"),
        "{:?}",
        view.scope
    );
    assert_eq!(view.renewal_notice, None);
    assert!(view.next_refresh_at.is_some());
    let name = view.name.clone();
    assert!(name.is_some());
    // Refresh answers carry no ID token here (Core 12.2): the session keeps
    // its subject and name, and renews again and again.
    for _ in 0..2 {
        let v = engine.refresh_now().await.unwrap();
        assert_eq!((v.state, v.user.as_deref()), (Phase::Active, Some("alice")));
        assert_eq!(v.name, name);
    }
    assert_eq!(engine.view().refresh_count, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_consent_a_strict_provider_grants_no_refresh_token_and_the_app_says_so() {
    let pg = playground(600).await;
    let (engine, opener, _dir) = strict(&pg, with_line("offline_access_prompt = false"));
    let view = engine.sign_in_browser().await.unwrap();
    assert_eq!(query(&opener.opened()[0], "prompt"), None);
    assert_eq!(view.state, Phase::Active);
    let granted = view.scope.clone().unwrap_or_default();
    assert!(!granted.contains("offline_access"), "{granted}");
    let notice = view
        .renewal_notice
        .clone()
        .expect("a notice, not a silent 'Next refresh: -'");
    assert!(notice.contains("offline_access_prompt = true"), "{notice}");
    assert!(notice.contains(&granted), "names what was granted: {notice}");
    assert_eq!(view.next_refresh_at, None);
    assert!(audit(&engine)
        .iter()
        .any(|e| matches!(e, AuditEvent::NoRefreshToken { .. })));
    // A provider that grants offline access without consent (as some do).
    pg.set(Switch::LenientOfflineAccess, true);
    let (engine, _, _dir) = strict(&pg, with_line("offline_access_prompt = false"));
    let view = engine.sign_in_browser().await.unwrap();
    assert_eq!(view.renewal_notice, None);
    assert!(view.next_refresh_at.is_some());
    // Without offline_access among the scopes, the notice says to add it.
    let (engine, _, _dir) = strict(&pg, |t| {
        t.replace(
            "scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]",
            "scopes = [\"openid\", \"profile\"]",
        )
    });
    let view = engine.sign_in_browser().await.unwrap();
    let notice = view.renewal_notice.unwrap();
    assert!(notice.contains("add \"offline_access\""), "{notice}");
}

#[tokio::test(flavor = "multi_thread")]
async fn access_tokens_are_rfc9068_jwts_or_opaque_and_both_renew() {
    let pg = playground(600).await;
    let (engine, _, _dir) = strict(&pg, |t| t);
    engine.sign_in_browser().await.unwrap();
    let access = pg.issued_tokens()[0].clone();
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    engine.refresh_now().await.unwrap();
    pg.set(Switch::OpaqueAccessTokens, true);
    let v = engine.refresh_now().await.unwrap();
    assert_eq!((v.state, v.user.as_deref()), (Phase::Active, Some("alice")));
    let (engine, _, _dir) = strict(&pg, |t| t);
    let v = engine.sign_in_browser().await.unwrap();
    assert_eq!(v.user.as_deref(), Some("alice"));
    assert!(engine.refresh_now().await.is_ok());
}

/// RFC 9068 section 6: the client treats the access token as opaque. A
/// certified provider whose JWT access tokens name the granted scopes as
/// `aud` signs in, renews and signs out with the generic profile (no
/// `audience`); a profile that names an `audience` asks for the check, and
/// a sign-in that fails it revokes what it was given.
#[tokio::test(flavor = "multi_thread")]
async fn an_access_token_for_another_audience_is_not_the_clients_business() {
    let pg = playground(600).await;
    pg.set(Switch::AccessTokenAudScopes, true);
    let (engine, _, _dir) = strict(&pg, |t| t);
    let v = engine.sign_in_browser().await.expect("the generic profile signs in");
    assert_eq!(v.user.as_deref(), Some("alice"));
    let v = engine.refresh_now().await.expect("and renews");
    assert_eq!(v.refresh_count, 1);
    let report = engine.sign_out().await.unwrap();
    assert!(report.server_error.is_none(), "{:?}", report.server_error);
    // Naming an audience asks for the check, and this token fails it.
    let (engine, _, _dir) = strict(&pg, with_line("audience = \"https://api.example\""));
    let e = engine.sign_in_browser().await.unwrap_err();
    assert!(e.to_string().contains("audience check failed"), "{e}");
    let live = pg
        .sessions()
        .into_iter()
        .filter(|s| !s.revoked && !s.signed_out)
        .count();
    assert_eq!(live, 0, "the tokens of a refused sign-in were not revoked");
}

/// A provider with no revocation endpoint keeps an offline refresh token
/// alive after sign-out: the sign-out says so (report and audit) instead
/// of nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_that_cannot_be_revoked_is_named_at_sign_out() {
    let pg = playground(600).await;
    pg.set(Switch::NoRevocationEndpoint, true);
    let (engine, _, _dir) = strict(&pg, |t| t.replace("logout_url = ", "# logout_url = "));
    engine.sign_in_browser().await.unwrap();
    let report = engine.sign_out().await.unwrap();
    assert_eq!(report.view.state, Phase::SignedOut);
    let said = report.server_error.map(|e| e.message).unwrap_or_default();
    assert!(said.contains("no way to revoke"), "{said:?}");
    assert!(
        audit(&engine).iter().any(
            |e| matches!(e, AuditEvent::SignedOut { server_logout } if server_logout.contains("no way to revoke"))
        ),
        "{:?}",
        audit(&engine)
    );
    // With a revocation endpoint, nothing to say.
    pg.set(Switch::NoRevocationEndpoint, false);
    let (engine, _, _dir) = strict(&pg, |t| t.replace("logout_url = ", "# logout_url = "));
    engine.sign_in_browser().await.unwrap();
    let report = engine.sign_out().await.unwrap();
    assert!(report.server_error.is_none(), "{:?}", report.server_error);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_token_on_refresh_is_checked_and_used() {
    let pg = playground(600).await;
    pg.set(Switch::IdTokenOnRefresh, true);
    let (engine, _, _dir) = strict(&pg, |t| t);
    engine.sign_in_browser().await.unwrap();
    let before = pg.issued_tokens().len();
    let v = engine.refresh_now().await.unwrap();
    assert_eq!(v.user.as_deref(), Some("alice"));
    // Access, ID and refresh token: the ID token came and passed its checks
    // (signature, audience, at_hash against the access token).
    assert_eq!(pg.issued_tokens().len(), before + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_expires_in_or_the_jwt_exp_says_until_when_it_can_be_renewed() {
    let pg = playground(600).await;
    pg.set_refresh_lifetimes(Duration::from_secs(1000), Duration::from_secs(86_400));
    // A JWT refresh token: its exp.
    let (engine, _, _dir) = strict(&pg, |t| t);
    let v = engine.sign_in_browser().await.unwrap();
    let left = (v.renewable_until.unwrap() - chrono::Utc::now()).num_seconds();
    assert!((990..=1001).contains(&left), "{left}");
    // An opaque one: nothing known, until the provider says it
    // (Keycloak's refresh_expires_in).
    pg.set(Switch::OpaqueRefreshTokens, true);
    let v = engine.refresh_now().await.unwrap();
    assert_eq!(v.renewable_until, None);
    pg.set(Switch::RefreshExpiresIn, true);
    pg.set_refresh_lifetimes(Duration::from_secs(500), Duration::from_secs(86_400));
    let v = engine.refresh_now().await.unwrap();
    let left = (v.renewable_until.unwrap() - chrono::Utc::now()).num_seconds();
    assert!((490..=501).contains(&left), "{left}");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_age_is_sent_and_an_older_sign_in_is_refused() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(&pg, alice());
    let profile = || oidc_profile(&pg, with_line("max_age_secs = 1"));
    let (first, _) = oidc_engine(profile(), &dir.path().join("1"), opener.clone());
    first.sign_in_browser().await.unwrap();
    assert_eq!(query(&opener.opened()[0], "max_age").as_deref(), Some("1"));
    // This test is about time passing: the browser's sign-in gets older
    // than max_age. A strict provider asks again (the browser signs in).
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (second, _) = oidc_engine(profile(), &dir.path().join("2"), opener.clone());
    second.sign_in_browser().await.unwrap();
    // Each sign-in posted the sign-in form and the consent page: the second
    // one did not just reuse the browser's session.
    let posts = || {
        pg.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/oidc/authorize")
            .count()
    };
    assert_eq!(posts(), 4);
    // A provider that ignores max_age reuses the old sign-in: its
    // auth_time gives it away, and the app refuses it.
    // (Older than max_age plus the 2 s slack the app allows for the
    // provider's whole-second clock.)
    pg.set(Switch::IgnoreMaxAge, true);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let (third, _) = oidc_engine(profile(), &dir.path().join("3"), opener.clone());
    let e = third.sign_in_browser().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::TokenInvalid, "{e}");
    assert!(e.to_string().contains("auth_time"), "{e}");
    assert_eq!(third.view().state, Phase::SignedOut);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_sign_in_waits_for_the_person_on_another_device() {
    let pg = playground(600).await;
    pg.set_device_interval(Duration::from_secs(1));
    let (engine, opener, _dir) = strict(&pg, |t| t);
    let mut views = engine.subscribe();
    let view = engine.sign_in_device().await.unwrap();
    assert_eq!((view.state, view.user.as_deref()), (Phase::Active, Some("alice")));
    assert!(opener.opened().is_empty(), "nothing is opened on this machine");
    // The person allowed every scope on the device page: offline access too.
    assert_eq!(view.renewal_notice, None);
    assert!(engine.refresh_now().await.is_ok());
    // While it waited, the view showed the page and the code.
    let code = opener.codes.lock().unwrap()[0].clone();
    let mut shown = false;
    while let Ok(v) = views.try_recv() {
        if let Some(b) = v.browser {
            assert_eq!(b.user_code.as_deref(), Some(code.user_code.as_str()));
            assert_eq!(b.url, code.verification_uri);
            shown = true;
        }
    }
    assert!(shown, "no view showed the code");
    // Denied on the device: the provider's error, and still signed out.
    opener.set_step(BrowserStep::Cancel);
    let (engine, _, _dir) = {
        let dir = tempfile::tempdir().unwrap();
        let (e, s) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener.clone());
        (e, s, dir)
    };
    let e = engine.sign_in_device().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthorizationFailed, "{e}");
    assert!(e.to_string().contains("access_denied"), "{e}");
    assert_eq!(engine.view().state, Phase::SignedOut);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_sign_in_slows_down_when_asked() {
    let pg = playground(600).await;
    pg.set_device_interval(Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(&pg, BrowserStep::Ignore);
    let (engine, _) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener.clone());
    let task = tokio::spawn({
        let engine = engine.clone();
        async move { engine.sign_in_device().await }
    });
    let wait = tokio::time::Instant::now() + Duration::from_secs(10);
    while opener.codes.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < wait, "no code was shown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The provider, under load, wants polls 5 s further apart. This test is
    // about time passing: 8 s of polling.
    pg.demand_slower_polling();
    let polls_before = pg.calls_to("/oidc/token");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let polls = pg.calls_to("/oidc/token") - polls_before;
    // At 1 s that would be 8; after one slow_down the app waits 6 s.
    assert!((1..=3).contains(&polls), "{polls} polls in 8 s");
    let code = opener.codes.lock().unwrap()[0].clone();
    opener
        .browser
        .verify_device(&code.verification_uri, &code.user_code, "alice", "alice-pw-1", true)
        .await
        .unwrap();
    let view = tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(view.state, Phase::Active);
}

/// Sign in with `edit`'s profile, rotate the keys dropping the old ones and
/// fail the next key-set fetch: the refresh fails on the key set, the
/// session stays, and the scheduler's retry renews it without reusing a
/// spent refresh token (the provider would revoke the family).
async fn survives_a_key_set_outage_while_keys_rotate(pg: &playground::Playground, edit: impl FnOnce(String) -> String) {
    let (engine, _, _dir) = strict(pg, edit);
    engine.sign_in_browser().await.unwrap();
    // Past the key set's refetch interval, so the new kid is fetched.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    pg.rotate_keys_dropping_old().await;
    pg.fail_next_jwks(1);
    let e = engine.refresh_now().await.unwrap_err();
    assert!(e.to_string().contains("JWKS"), "{e}");
    assert!(engine.view().state.has_session(), "{:?}", engine.view().last_error);
    let _scheduler = engine.start();
    let v = wait_for(
        &engine,
        "a refresh after the key set's 503",
        Duration::from_secs(15),
        |v| v.last_refresh.as_ref().is_some_and(|r| r.ok) || !v.state.has_session(),
    )
    .await;
    assert!(v.state.has_session(), "{:?}", v.last_error);
    assert!(
        pg.sessions().iter().all(|s| !s.revoked),
        "the rotated refresh token was lost and the spent one reused"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_set_that_fails_while_keys_rotate_costs_no_session() {
    let pg = playground(600).await;
    // The profile names the access tokens' audience, so they are checked.
    let audience = format!("audience = \"{}\"", playground::CLIENT_ID);
    survives_a_key_set_outage_while_keys_rotate(&pg, with_line(&audience)).await;
}

/// Engine review N1: a provider that sends an ID token with each refresh
/// answer, and its key set fails while its keys rotate. The ID token cannot
/// be checked, but the rotated refresh token was kept before the check.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_set_outage_with_an_id_token_on_refresh_costs_no_session() {
    let pg = playground(600).await;
    pg.set(Switch::IdTokenOnRefresh, true);
    survives_a_key_set_outage_while_keys_rotate(&pg, |t| t).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skewed_provider_clock_is_measured_and_named_when_too_far() {
    let pg = playground(600).await;
    // Within the leeway: signed in, and the offset is known for countdowns.
    pg.set_clock_offset(20);
    let (engine, _, _dir) = strict(&pg, |t| t);
    let v = engine.sign_in_browser().await.unwrap();
    assert!((18_500..=21_500).contains(&v.clock_offset_ms), "{}", v.clock_offset_ms);
    // Ten minutes ahead: no token can pass, and the error says why.
    pg.set_clock_offset(600);
    let (engine, _, _dir) = strict(&pg, |t| t);
    let e = engine.sign_in_browser().await.unwrap_err();
    assert!(e.to_string().contains("the provider's clock is"), "{e}");
    assert!(e.to_string().contains("s ahead of this machine"), "{e}");
    // Twenty minutes behind: its 10-minute tokens expired before they came.
    pg.set_clock_offset(-1200);
    let (engine, _, _dir) = strict(&pg, |t| t);
    let e = engine.sign_in_browser().await.unwrap_err();
    assert!(e.to_string().contains("behind this machine"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_refresh_token_ends_the_session_as_expired() {
    let pg = playground(600).await;
    pg.set_refresh_lifetimes(Duration::from_secs(2), Duration::from_secs(3600));
    let (engine, _, _dir) = strict(&pg, |t| t);
    engine.sign_in_browser().await.unwrap();
    // This test is about time passing: the refresh token idles out.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let e = engine.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionExpired, "{e}");
    assert!(e.to_string().contains("idle lifetime"), "{e}");
    assert_eq!(engine.view().state, Phase::Expired);
}

/// A refresh the provider redeemed but whose answer never arrived (the app
/// gave up after its timeout): the old refresh token is spent. A strict
/// provider then sees reuse and revokes the session; one with a reuse
/// grace period (Okta, Auth0) lets the retry through.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_refresh_answer_is_survived_within_a_reuse_grace_period() {
    for grace in [0, 30] {
        let pg = playground(600).await;
        pg.set_reuse_grace(Duration::from_secs(grace));
        let (engine, _, _dir) = strict(&pg, with_line("timeout_secs = 1"));
        engine.sign_in_browser().await.unwrap();
        pg.slow_next_refresh(Duration::from_millis(2500));
        let e = engine.refresh_now().await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Timeout, "{e}");
        let _scheduler = engine.start();
        let v = wait_for(&engine, "the retry's outcome", Duration::from_secs(15), |v| {
            v.last_refresh.as_ref().is_some_and(|r| r.ok) || !v.state.has_session()
        })
        .await;
        if grace == 0 {
            assert_eq!(v.state, Phase::Revoked, "{:?}", v.last_error);
            assert!(v.last_error.unwrap().message.contains("reuse"));
        } else {
            assert_eq!(v.state, Phase::Active, "{:?}", v.last_error);
            assert!(pg.sessions().iter().all(|s| !s.revoked));
        }
    }
}

/// A provider whose end-session endpoint takes GET only answers the POST
/// with 404: with `end_session_method = "get"` the sign-out page submits a
/// GET, the provider's session ends, and the ID token is still in no
/// command line (the loopback page's address carries none).
#[tokio::test(flavor = "multi_thread")]
async fn a_get_only_end_session_endpoint_is_reached_with_a_get() {
    for (method, ends) in [("post", false), ("get", true)] {
        let pg = playground(600).await;
        pg.set(Switch::EndSessionGetOnly, true);
        let (engine, opener, _dir) = strict(&pg, with_line(&format!("end_session_method = \"{method}\"")));
        engine.sign_in_browser().await.unwrap();
        // Only the browser may end the provider's session here.
        let revoked = pg.calls_to("/oidc/revoke");
        let _ = engine.sign_out().await.unwrap();
        let opened = opener.opened().last().unwrap().clone();
        assert!(opened.starts_with("http://127.0.0.1:"), "{opened}");
        for token in pg.issued_tokens() {
            assert!(!opened.contains(&token), "a token in the opened URL");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while opener.pages().len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let visits: Vec<_> = pg
            .requests()
            .into_iter()
            .filter(|r| r.path == "/oidc/end-session")
            .collect();
        assert_eq!(visits.len(), 1, "{method}: {visits:?}");
        let page = opener.pages().last().cloned().unwrap_or_default();
        assert_eq!(page.contains("You are signed out"), ends, "{method}: {page}");
        assert_eq!(visits[0].method, method.to_uppercase());
        assert!(pg.calls_to("/oidc/revoke") > revoked);
    }
}

/// A provider that refuses revocation to public clients (401
/// invalid_client): the sign-out says the refresh token could not be
/// revoked; the local session is gone all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_revocation_refused_to_a_public_client_is_reported_at_sign_out() {
    let pg = playground(600).await;
    pg.set(Switch::RevocationRefusesPublicClients, true);
    let (engine, _, _dir) = strict(&pg, |t| t.replace("logout_url = ", "# logout_url = "));
    engine.sign_in_browser().await.unwrap();
    let report = engine.sign_out().await.unwrap();
    assert_eq!(report.view.state, Phase::SignedOut);
    let said = report.server_error.map(|e| e.message).unwrap_or_default();
    assert!(said.contains("revoking the refresh_token answered 401"), "{said:?}");
}

/// A refresh token the provider does not know, answered 400
/// invalid_request (a certified provider's reading): the session ends as
/// Expired and the message says what happened, not "sign-in refused".
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_refresh_token_answered_invalid_request_ends_the_session_plainly() {
    let pg = playground(600).await;
    pg.set(Switch::UnknownRefreshInvalidRequest, true);
    let (engine, _, _dir) = strict(&pg, |t| t);
    engine.sign_in_browser().await.unwrap();
    pg.forget_refresh_tokens();
    let e = engine.refresh_now().await.unwrap_err();
    let v = engine.view();
    assert_eq!(v.state, Phase::Expired, "{e}");
    assert!(e.to_string().contains("does not accept this refresh token"), "{e}");
    assert!(!e.to_string().contains("sign-in"), "{e}");
}

/// A provider that does not rotate: the answer has no refresh token, the
/// one the session holds is kept and used again.
#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_does_not_rotate_keeps_the_session_on_its_one_refresh_token() {
    let pg = playground(600).await;
    pg.set(Switch::NoRotation, true);
    let (engine, _, _dir) = strict(&pg, |t| t);
    engine.sign_in_browser().await.unwrap();
    for _ in 0..3 {
        engine.refresh_now().await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let v = engine.view();
    assert_eq!(v.state, Phase::Active);
    assert_eq!(v.refresh_count, 3);
    assert!(pg.sessions().iter().all(|s| !s.revoked));
}

/// A provider that matches the redirect URI exactly, port included (one
/// registered loopback port, not RFC 8252's any port): the default profile
/// (any free port) lands on the provider's "not registered" page; with
/// `redirect_port` set to the registered port it signs in, renews and signs
/// out.
#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_matches_the_redirect_port_exactly_needs_redirect_port() {
    let pg = playground(600).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    pg.set_registered_redirect_port(port);
    // Any free port: refused at the provider, which never redirects back.
    let (engine, opener, _dir) = strict(&pg, |t| t);
    let attempt = tokio::spawn({
        let engine = engine.clone();
        async move { engine.sign_in_browser().await }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !opener.pages().iter().any(|p| p.contains("Redirect URI not registered")) {
        assert!(std::time::Instant::now() < deadline, "{:?}", opener.pages());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(opener
        .pages()
        .iter()
        .any(|p| p.contains(&format!("127.0.0.1:{port}/callback"))));
    engine.cancel_sign_in().unwrap();
    assert!(attempt.await.unwrap().is_err());
    // The registered port: the whole lifecycle works.
    let (engine, opener, _dir) = strict(&pg, with_line(&format!("redirect_port = {port}")));
    engine.sign_in_browser().await.unwrap();
    assert!(
        opener.opened()[0].contains(&format!("127.0.0.1%3A{port}%2Fcallback")),
        "{:?}",
        opener.opened()
    );
    engine.refresh_now().await.unwrap();
    let report = engine.sign_out().await.unwrap();
    assert_eq!(report.view.state, Phase::SignedOut);
}

/// Wait until the test browser has loaded `n` pages.
async fn pages(opener: &BrowserOpener, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while opener.pages().len() < n {
        assert!(std::time::Instant::now() < deadline, "{:?}", opener.pages());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A provider without a revocation endpoint that keeps offline sessions
/// past the browser's sign-out (as Keycloak does): the offline refresh
/// token stays valid there, and sign-out says so. A profile that asks for
/// no offline_access gets an online refresh token, which renews the
/// session the same way and ends with the provider's session at
/// end-session: nothing stays behind, and sign-out has nothing to confess.
#[tokio::test(flavor = "multi_thread")]
async fn an_online_refresh_token_ends_with_the_providers_session() {
    let pg = playground(600).await;
    pg.set(Switch::NoRevocationEndpoint, true);
    pg.set(Switch::OnlineRefreshTokens, true);
    // The provider's own session ids are not the app's: count the live ones.
    let live = || pg.sessions().iter().filter(|s| !s.revoked && !s.signed_out).count();
    let no_logout = |t: String| t.replace("logout_url = ", "# logout_url = ");
    // Offline: it outlives the sign-out at the provider.
    let (engine, opener, _dir) = strict(&pg, no_logout);
    engine.sign_in_browser().await.unwrap();
    let report = engine.sign_out().await.unwrap();
    let said = report.server_error.map(|e| e.message).unwrap_or_default();
    assert!(said.contains("no way to revoke"), "{said:?}");
    pages(&opener, 2).await;
    assert_eq!(live(), 1, "the offline session ended at the provider after all");
    // Online: the same renewals, and the browser's sign-out ends it.
    let (engine, opener, _dir) = strict(&pg, |t| no_logout(t).replace(", \"offline_access\"]", "]"));
    let v = engine.sign_in_browser().await.unwrap();
    assert_eq!(live(), 2);
    assert!(!v.scope.unwrap_or_default().contains("offline_access"));
    assert_eq!(v.renewal_notice, None, "no refresh token granted");
    assert_eq!(engine.refresh_now().await.unwrap().refresh_count, 1);
    let report = engine.sign_out().await.unwrap();
    assert!(report.server_error.is_none(), "{:?}", report.server_error);
    pages(&opener, 2).await;
    assert_eq!(live(), 1, "the online session outlived the provider's session");
}

/// Security review 2: a device sign-in polls on through a provider's
/// passing trouble (503 twice) instead of giving up, and a profile's
/// `max_age` (which only a browser sign-in sends) does not demand an
/// `auth_time` the device sign-in never asked for.
#[tokio::test(flavor = "multi_thread")]
async fn a_device_sign_in_polls_on_through_passing_errors_and_ignores_max_age() {
    let pg = playground(600).await;
    pg.set_device_interval(Duration::from_secs(1));
    pg.fail_next_device_polls(2);
    let (engine, _opener, _dir) = strict(&pg, with_line("max_age_secs = 600"));
    let view = engine.sign_in_device().await.unwrap();
    assert_eq!((view.state, view.user.as_deref()), (Phase::Active, Some("alice")));
    assert!(pg.calls_to("/oidc/token") >= 3, "the failed polls were not retried");
}
