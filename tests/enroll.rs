//! Adding an OpenID Connect provider from its issuer alone, over real TLS
//! against the Playground's strict OpenID Connect side: the chain its host
//! presents, the pins proposed from the verified path, the discovery
//! document, and a profile that signs in. And the named errors for what a
//! person may get wrong.

use integration::*;
use session_core::error::ErrorCode;
use session_core::net::pin::Pin;
use session_core::support::enroll::{self, OidcProfile};
use session_core::{Config, Phase};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread")]
async fn an_issuer_alone_gives_pins_scopes_and_a_profile_that_signs_in() {
    let pg = playground(600).await;
    let ca = PathBuf::from(&pg.info().ca_cert);
    let issuer = pg.info().oidc_issuer.clone();
    let found = enroll::examine_issuer(&issuer, &[], Some(&ca), T).await.unwrap();
    // The Playground sends its leaf and its CA; both are on the path.
    assert_eq!(found.tls.presented.len(), 2, "{:?}", found.tls);
    assert!(found.tls.presented.iter().all(|c| c.on_verified_path));
    // Proposed: the leaf's pin, and the CA's as the backup from the same path.
    assert_eq!(found.proposed.len(), 2);
    assert_eq!(found.proposed[0].to_string(), pg.info().pins[0], "the leaf's pin first");
    assert_eq!(found.proposed[1].to_string(), found.tls.verified_path[1]);
    let scopes = found.proposed_scopes();
    assert!(
        scopes.contains(&"openid".to_owned()) && scopes.contains(&"offline_access".to_owned()),
        "{scopes:?}"
    );

    // Written beside a file's own content, it validates as Production
    // (two pins) and signs in.
    let dir = tempfile::tempdir().unwrap();
    let profile = OidcProfile {
        issuer: issuer.clone(),
        client_id: playground::CLIENT_ID.into(),
        scopes,
        pins: found.proposed.clone(),
        ca_file: Some(ca.clone()),
        environment: "production".into(),
    };
    let text = enroll::with_profile("# my providers\n", "corp", profile.table(), dir.path()).unwrap();
    assert!(text.starts_with("# my providers\n"), "{text}");
    let config = Config::parse(&text, dir.path()).unwrap();
    let opener = BrowserOpener::new(&pg, BrowserStep::SignIn("alice".into(), "alice-pw-1".into()));
    let (engine, _) = oidc_engine(config.profiles["corp"].clone(), dir.path(), opener);
    assert_eq!(engine.sign_in_browser().await.unwrap().state, Phase::Active);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_person_gets_wrong_is_named() {
    let pg = playground(600).await;
    let ca = PathBuf::from(&pg.info().ca_cert);
    let issuer = pg.info().oidc_issuer.clone();

    let e = enroll::examine_issuer(&issuer.replace("https://", "http://"), &[], Some(&ca), T)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is not https"), "{e}");

    // A private CA not given: not trusted, and the fix says --ca.
    let e = enroll::examine_issuer(&issuer, &[], None, T).await.unwrap_err();
    assert_eq!(e.info().code, ErrorCode::TlsFailure, "{e}");
    assert!(e.to_string().contains("--ca"), "{e}");

    // A pin from the administrator that is nowhere on the chain.
    let stranger = Pin([7; 32]);
    let e = enroll::examine_issuer(&issuer, &[stranger], Some(&ca), T)
        .await
        .unwrap_err();
    assert!(e.to_string().contains(&stranger.to_string()), "{e}");
    // The Playground's spare backup pin is not on the chain either: only
    // pins of the presented path are taken.
    let spare: Pin = pg.info().pins[1].parse().unwrap();
    assert!(enroll::examine_issuer(&issuer, &[spare], Some(&ca), T).await.is_err());

    // A discovery document that names another issuer (a mix-up).
    let e = enroll::examine_issuer(&format!("{issuer}/"), &[], Some(&ca), T)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("must be equal exactly"), "{e}");

    // Nobody there.
    let e = enroll::examine_issuer("https://127.0.0.1:9/oidc", &[], Some(&ca), T)
        .await
        .unwrap_err();
    assert_eq!(e.info().code, ErrorCode::NetworkUnreachable, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_registration_on_the_app_registers_itself_signs_in_and_deletes_the_registration() {
    let pg = playground(600).await;
    pg.set(playground::Switch::Registration, true);
    let ca = PathBuf::from(&pg.info().ca_cert);
    let issuer = pg.info().oidc_issuer.clone();
    let found = enroll::examine_issuer(&issuer, &[], Some(&ca), T).await.unwrap();
    assert!(found.discovery.registration_endpoint.is_some());
    let registration = enroll::register_client(&found, Some(&ca), T, "Session Manager")
        .await
        .unwrap();
    assert!(registration.client_id.starts_with("dyn-"), "{}", registration.client_id);
    assert_eq!(pg.registered_clients().len(), 1);
    assert_eq!(pg.registered_clients()[0]["client_name"], "Session Manager");

    // Signs in as that client.
    let dir = tempfile::tempdir().unwrap();
    let profile = OidcProfile {
        issuer: issuer.clone(),
        client_id: registration.client_id.clone(),
        scopes: found.proposed_scopes(),
        pins: found.proposed.clone(),
        ca_file: Some(ca.clone()),
        environment: "integration".into(),
    };
    let text = enroll::with_profile("", "corp", profile.table(), dir.path()).unwrap();
    let config = Config::parse(&text, dir.path()).unwrap();
    let opener = BrowserOpener::new(&pg, BrowserStep::SignIn("alice".into(), "alice-pw-1".into()));
    let (engine, _) = oidc_engine(config.profiles["corp"].clone(), dir.path(), opener);
    assert_eq!(engine.sign_in_browser().await.unwrap().state, Phase::Active);
    assert_eq!(engine.refresh_now().await.unwrap().state, Phase::Active);

    // Deleted (RFC 7592): gone at the provider, and its token no longer
    // manages anything.
    assert!(
        enroll::delete_registration(&registration, &found.proposed, Some(&ca), T)
            .await
            .unwrap()
    );
    assert!(pg.registered_clients().is_empty());
    let e = enroll::delete_registration(&registration, &found.proposed, Some(&ca), T)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("did not delete"), "{e}");
    // A sign-in through the deleted client is refused.
    assert!(
        engine.refresh_now().await.is_err(),
        "a deleted client's refresh token still works"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_registration_off_the_app_asks_for_a_client_id() {
    let pg = playground(600).await;
    let ca = PathBuf::from(&pg.info().ca_cert);
    let found = enroll::examine_issuer(&pg.info().oidc_issuer, &[], Some(&ca), T)
        .await
        .unwrap();
    assert!(found.discovery.registration_endpoint.is_none());
    let e = enroll::register_client(&found, Some(&ca), T, "Session Manager")
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("--client-id"), "{e}");
    assert!(pg.registered_clients().is_empty());
}

/// A provider that never answers, or answers too slowly, is named within
/// the time allowed: nothing hangs while a person waits on "Look up".
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_or_slow_provider_is_named_within_the_time_allowed() {
    let short = Duration::from_secs(2);
    // A host that accepts the connection and never says a word (no TLS).
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            open.push(c);
        }
    });
    let started = std::time::Instant::now();
    let e = enroll::examine_issuer(&format!("https://127.0.0.1:{port}/oidc"), &[], None, short)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        e.to_string().contains("not trusted") || e.to_string().contains("no TLS answer"),
        "{e}"
    );
    assert!(
        e.to_string().contains(&format!("{} s", short.as_secs())),
        "names the wait: {e}"
    );
    held.abort();

    // A real provider whose discovery takes longer than allowed.
    let pg = playground(600).await;
    let ca = PathBuf::from(&pg.info().ca_cert);
    pg.set_latency(Duration::from_secs(30));
    let started = std::time::Instant::now();
    let e = enroll::examine_issuer(&pg.info().oidc_issuer, &[], Some(&ca), short)
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(e.code(), ErrorCode::Timeout, "{e}");
}
