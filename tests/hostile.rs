//! The engine against a provider that misbehaves, over real TLS on loopback:
//! endless, dripping and silent answers, stalled handshakes, implausible
//! numbers, and an attacker's chain with the genuine certificate appended.

use integration::hostile::{Behaviour, Handshake, Hostile, Pki};
use session_core::net::tls::BodyKind;
use session_core::storage::vault::MemoryStore;
use session_core::{Engine, Error, ErrorCode, Password, Phase};
use std::sync::Arc;
use std::time::Duration;

const LOGIN: &str = "/api/v2/auth/login";

fn engine_for(profile: session_core::Profile) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with_store(profile, dir.path(), Arc::new(MemoryStore::default())).unwrap();
    (engine, dir)
}

async fn sign_in(hostile: &Hostile, extra: &str) -> (Error, Engine) {
    let (engine, _dir) = engine_for(hostile.finhub_profile(extra));
    let err = tokio::time::timeout(Duration::from_secs(60), engine.sign_in("alice", Password::new("pw")))
        .await
        .expect("the sign-in ends")
        .expect_err("the sign-in fails");
    (err, engine)
}

/// A JWT-shaped token whose header names a key the JWKS must supply (its
/// signature is never reached).
fn unverifiable_jwt() -> String {
    use base64::Engine as _;
    let b = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        b(serde_json::json!({"alg":"RS256","kid":"k1"})),
        b(serde_json::json!({"sub":"alice"}))
    )
}

fn login_answer(expires_in: serde_json::Value) -> Behaviour {
    Behaviour::json(serde_json::json!({
        "expires_in": expires_in, "token_type": "Bearer", "scope": "s", "customerId": "c", "tenantId": "t",
        "userSessionToken": unverifiable_jwt(), "refreshToken": "rt"
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_login_answer_is_read_up_to_the_cap_only() {
    let hostile = Hostile::start(Pki::new("idp"), None, Handshake::Tls, vec![(LOGIN, Behaviour::Endless)]).await;
    let (err, engine) = sign_in(&hostile, "").await;
    assert_eq!(err.code(), ErrorCode::ProtocolError, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(LOGIN) && text.contains("1048576 bytes"),
        "names the endpoint and the limit: {text}"
    );
    assert_eq!(engine.view().state, Phase::SignedOut, "not stuck signing in");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_key_set_is_read_up_to_the_cap_only() {
    let hostile = Hostile::start(
        Pki::new("idp"),
        None,
        Handshake::Tls,
        vec![
            (LOGIN, login_answer(serde_json::json!(600))),
            ("/.well-known/jwks.json", Behaviour::Endless),
        ],
    )
    .await;
    let (err, _) = sign_in(&hostile, "").await;
    assert_eq!(err.code(), ErrorCode::ProtocolError, "{err}");
    assert!(err.to_string().contains("/.well-known/jwks.json"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_answer_is_capped_by_the_profile() {
    let hostile = Hostile::start(
        Pki::new("idp"),
        None,
        Handshake::Tls,
        vec![("/api/v2/accounts", Behaviour::Endless)],
    )
    .await;
    let profile = hostile.finhub_profile("max_response_bytes = 4096");
    let client = profile.pinned_client().unwrap();
    let url = format!("{}/api/v2/accounts", hostile.base_url());
    let response = client.send(client.http().get(&url)).await.unwrap();
    let err = client.read_body(response, BodyKind::Api).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::ResponseTooLarge {
                limit: 4096,
                api: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("max_response_bytes"),
        "says how to raise it: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_takes_the_connection_and_says_nothing_times_out() {
    let hostile = Hostile::start(Pki::new("idp"), None, Handshake::Stall, vec![]).await;
    let (err, engine) = sign_in(&hostile, "timeout_secs = 2").await;
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(err.to_string().contains("within 2 s"), "{err}");
    assert_eq!(engine.view().last_error.unwrap().code, ErrorCode::Timeout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_answer_times_out() {
    let hostile = Hostile::start(Pki::new("idp"), None, Handshake::Tls, vec![(LOGIN, Behaviour::Silent)]).await;
    let (err, _) = sign_in(&hostile, "timeout_secs = 2").await;
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_dripping_a_byte_a_second_times_out() {
    let hostile = Hostile::start(Pki::new("idp"), None, Handshake::Tls, vec![(LOGIN, Behaviour::Drip)]).await;
    let (err, _) = sign_in(&hostile, "timeout_secs = 3").await;
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_listening_is_network_unreachable() {
    let hostile = Hostile::start(Pki::new("idp"), None, Handshake::Tls, vec![]).await;
    let profile = hostile.finhub_profile("");
    hostile.stop().await;
    let (engine, _dir) = engine_for(profile);
    let err = engine.sign_in("alice", Password::new("pw")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NetworkUnreachable, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn implausible_numbers_are_refused_and_sign_in_can_be_tried_again() {
    let hostile = Hostile::start(
        Pki::new("idp"),
        None,
        Handshake::Tls,
        vec![(LOGIN, login_answer(serde_json::json!(9_000_000_000_000_u64)))],
    )
    .await;
    let (engine, _dir) = engine_for(hostile.finhub_profile(""));
    for _ in 0..2 {
        let err = engine.sign_in("alice", Password::new("pw")).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ProtocolError, "{err}");
        assert!(err.to_string().contains("expires_in"), "{err}");
        assert_eq!(engine.view().state, Phase::SignedOut);
    }
}

/// A CA file trusting both PKIs' CAs, as a machine trusts many public CAs.
fn trust_both(a: &Pki, b: &Pki) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{}{}", a.ca_pem, b.ca_pem)).unwrap();
    file
}

fn pinned_profile(hostile: &Hostile, pin: &session_core::net::pin::Pin, ca: &std::path::Path) -> session_core::Profile {
    let text = hostile
        .finhub_config(pin, "")
        .replace(&hostile.ca_file().display().to_string(), &ca.display().to_string());
    session_core::Config::parse(&text, std::path::Path::new("/"))
        .unwrap()
        .profile(None)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attackers_chain_with_the_genuine_certificate_appended_is_a_pin_mismatch() {
    let genuine = Pki::new("genuine");
    let attacker = Pki::new("attacker");
    let ca = trust_both(&genuine, &attacker);
    let chain = vec![
        attacker.leaf_der.clone(),
        attacker.ca_der.clone(),
        genuine.leaf_der.clone(),
    ];
    let genuine_pin = genuine.leaf_pin;
    let attacker_key = attacker.leaf_key.clone_key();
    let attacker_pins = (attacker.leaf_pin, attacker.ca_pin);
    let hostile = Hostile::start(
        attacker,
        Some((chain, attacker_key)),
        Handshake::Tls,
        vec![(LOGIN, Behaviour::json(serde_json::json!({})))],
    )
    .await;
    let (engine, _dir) = engine_for(pinned_profile(&hostile, &genuine_pin, ca.path()));
    let err = engine.sign_in("alice", Password::new("alice-pw-1")).await.unwrap_err();
    match &err {
        Error::PinMismatch { presented, .. } => {
            assert!(presented.contains(&attacker_pins.0.to_string()), "{presented}");
            assert!(presented.contains(&attacker_pins.1.to_string()), "{presented}");
            assert!(!presented.contains(&genuine_pin.to_string()), "{presented}");
        }
        other => panic!("expected a pin mismatch, got {other}"),
    }
    assert_eq!(hostile.hits(LOGIN), 0, "the password was sent to the attacker");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_root_pin_holds_when_the_server_does_not_send_the_root() {
    let pki = Pki::new("idp");
    let ca_pin = pki.ca_pin;
    let leaf_only = (vec![pki.leaf_der.clone()], pki.leaf_key.clone_key());
    let hostile = Hostile::start(
        pki,
        Some(leaf_only),
        Handshake::Tls,
        vec![(
            LOGIN,
            Behaviour::Answer {
                status: 401,
                headers: vec![],
                body: br#"{"error":"invalid_credentials","message":"no"}"#.to_vec(),
            },
        )],
    )
    .await;
    let (engine, _dir) = engine_for(pinned_profile(&hostile, &ca_pin, &hostile.ca_file()));
    let err = engine.sign_in("alice", Password::new("pw")).await.unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::InvalidCredentials,
        "TLS and the pin passed: {err}"
    );
    assert_eq!(hostile.hits(LOGIN), 1);
}

/// A FinHub profile whose base URL is `primary` and whose backup is the
/// Playground `backup` (keys and issuer the backup's).
fn with_backup(primary: &Hostile, backup: &playground::Playground, extra: &str) -> session_core::Profile {
    let ca = primary.ca_file().with_extension("both.pem");
    std::fs::write(
        &ca,
        format!(
            "{}{}",
            primary.pki.ca_pem,
            std::fs::read_to_string(&backup.info().ca_cert).unwrap()
        ),
    )
    .unwrap();
    let pins = std::iter::once(primary.pki.leaf_pin.to_string())
        .chain(backup.info().pins.iter().cloned())
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        "[profiles.p]\nprovider = \"finhub\"\nenvironment = \"integration\"\nbase_url = \"{}\"\nbackup_urls = [\"{b}\"]\ntenant_id = \"tenant-acme\"\naudience = \"session-manager\"\npins = [{pins}]\nca_file = \"{}\"\nissuer = \"{b}\"\njwks_url = \"{b}/.well-known/jwks.json\"\n{extra}\n",
        primary.base_url(),
        ca.display(),
        b = backup.base_url(),
    );
    session_core::Config::parse(&text, std::path::Path::new("/"))
        .unwrap()
        .profile(None)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_that_may_have_arrived_is_not_replayed_at_the_backup() {
    let backup = integration::playground(600).await;
    let primary = Hostile::start(
        Pki::new("primary"),
        None,
        Handshake::Tls,
        vec![(LOGIN, Behaviour::Silent)],
    )
    .await;
    let (engine, _dir) = engine_for(with_backup(&primary, &backup, "timeout_secs = 2"));
    let err = engine.sign_in("alice", Password::new("alice-pw-1")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert_eq!(primary.hits(LOGIN), 1);
    assert_eq!(backup.calls_to(LOGIN), 0, "the request was replayed at the backup");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_primary_that_cannot_be_reached_fails_over_to_the_backup() {
    let backup = integration::playground(600).await;
    let primary = Hostile::start(Pki::new("primary"), None, Handshake::Tls, vec![]).await;
    let profile = with_backup(&primary, &backup, "");
    primary.stop().await;
    let (engine, _dir) = engine_for(profile);
    let view = engine.sign_in("alice", Password::new("alice-pw-1")).await.unwrap();
    assert_eq!(view.state, Phase::Active);
    assert_eq!(backup.calls_to(LOGIN), 1);
}

/// `sessionctl doctor`'s checks (the library behind it) for an OpenID
/// Connect profile whose discovery document and API live on the hostile
/// server, which answers the document with `discovery`. The issuer is a
/// name: the doctor contacts only what the profile and the document name.
async fn doctor_on_discovery(discovery: Behaviour) -> session_core::support::doctor::Report {
    let path = "/.well-known/openid-configuration";
    let hostile = Hostile::start(Pki::new("doctor"), None, Handshake::Tls, vec![(path, discovery)]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.idp]\nprovider = \"oidc\"\nenvironment = \"integration\"\nissuer = \"https://idp.test\"\n\
             discovery_url = \"{base}{path}\"\napi_base_url = \"{base}\"\nclient_id = \"app\"\n\
             pins = [\"{pin}\"]\nca_file = \"{ca}\"\n",
            base = hostile.base_url(),
            pin = hostile.pki.leaf_pin,
            ca = hostile.ca_file().display()
        ),
    )
    .unwrap();
    let doctor = session_core::support::doctor::Doctor {
        config_file: Some(config),
        config_given: true,
        profile: None,
        data_dir: None,
        store: Arc::new(MemoryStore::default()),
    };
    doctor.examine().await
}

fn check<'a>(
    report: &'a session_core::support::doctor::Report,
    what: &str,
) -> &'a session_core::support::doctor::Check {
    let found: Vec<_> = report.checks.iter().filter(|c| c.what == what).collect();
    assert_eq!(found.len(), 1, "one check named '{what}' in {:#?}", report.checks);
    found[0]
}

#[tokio::test]
async fn doctor_checks_the_hosts_discovery_names_not_only_the_profiles() {
    use session_core::support::doctor::Status;
    // The token and device endpoints on another host (localhost, where the
    // profile names 127.0.0.1), on a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let other = format!("https://localhost:{closed}");
    let report = doctor_on_discovery(Behaviour::json(serde_json::json!({
        "issuer": "https://idp.test",
        "authorization_endpoint": format!("{other}/authorize"),
        "token_endpoint": format!("{other}/token"),
        "device_authorization_endpoint": format!("{other}/device"),
        "jwks_uri": format!("{other}/jwks"),
    })))
    .await;
    let discovery = check(&report, "idp discovery");
    assert_eq!(discovery.status, Status::Ok, "{discovery:#?}");
    assert!(
        discovery.detail.contains(&format!("localhost:{closed}")),
        "{discovery:#?}"
    );
    // The other host is checked once, however many endpoints it serves,
    // and its failure is named with its fix.
    let tcp = check(&report, &format!("idp localhost:{closed} tcp"));
    assert_eq!(tcp.status, Status::Failed, "{tcp:#?}");
    assert!(tcp.fix.is_some(), "{tcp:#?}");
    assert!(report.count(Status::Failed) >= 1);
}

#[tokio::test]
async fn doctor_names_a_discovery_document_that_is_endless_or_wrong() {
    use session_core::support::doctor::Status;
    // Endless: read up to the protocol cap, then a failure; the other checks
    // (the clock) still run.
    let report = doctor_on_discovery(Behaviour::Endless).await;
    let discovery = check(&report, "idp discovery");
    assert_eq!(discovery.status, Status::Failed, "{discovery:#?}");
    assert!(
        report.checks.iter().any(|c| c.what == "idp clock"),
        "{:#?}",
        report.checks
    );
    // Another provider's document: the issuers differ, and the fix says what to compare.
    let report = doctor_on_discovery(Behaviour::json(serde_json::json!({
        "issuer": "https://evil.test",
        "authorization_endpoint": "https://evil.test/a",
        "token_endpoint": "https://evil.test/t",
        "jwks_uri": "https://evil.test/j",
    })))
    .await;
    let discovery = check(&report, "idp discovery");
    assert_eq!(discovery.status, Status::Failed, "{discovery:#?}");
    assert!(discovery.detail.contains("must be equal exactly"), "{discovery:#?}");
    assert!(
        !report.checks.iter().any(|c| c.what.contains("evil.test")),
        "hosts of a refused document were contacted: {:#?}",
        report.checks
    );
}

#[tokio::test]
async fn diagnostics_wait_a_short_while_for_silent_providers_all_at_once() {
    // Three providers that take the request and never answer (each profile
    // allows 30 s per request): the report does not wait 90 s for them.
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(Hostile::start(Pki::new("silent"), None, Handshake::Tls, vec![("/", Behaviour::Silent)]).await);
    }
    let profiles: Vec<session_core::Profile> = servers.iter().map(|h| h.finhub_profile("")).collect();
    assert!(profiles.iter().all(|p| p.timeout >= Duration::from_secs(30)));
    let inputs = session_core::support::diagnostics::Inputs {
        config_file: None,
        profiles,
        config_error: None,
        data_dir: None,
        store: Arc::new(MemoryStore::default()),
        lines: 10,
        front: "test".into(),
    };
    let deadline = session_core::support::diagnostics::CLOCK_DEADLINE;
    let report = tokio::time::timeout(deadline * 2, session_core::support::diagnostics::collect(&inputs))
        .await
        .expect("the clocks were read one after another, or past the deadline");
    assert_eq!(report.clock.len(), 3);
    for reading in &report.clock {
        assert_eq!(reading.offset_secs, None);
        assert!(
            reading
                .note
                .contains(&format!("no answer within {} s", deadline.as_secs())),
            "{reading:?}"
        );
    }
}
