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
