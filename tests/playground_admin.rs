//! The Playground's admin API: reachable by every local user on loopback,
//! so every call needs the bearer secret the Playground made at start.

use integration::{playground, playground_with};
use std::sync::Arc;

/// A client that trusts the Playground's CA (as `curl --cacert` does).
fn client(pg: &::playground::Playground) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&pg.info().ca_cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_api_needs_the_admin_token() {
    let pg = playground(60).await;
    let http = client(&pg);
    let admin = &pg.info().admin_url;
    let token = &pg.info().admin_token;
    assert!(token.len() >= 40, "a real secret: {} characters", token.len());
    // No token, a wrong one, a token in the wrong place: refused, nothing done.
    for request in [
        http.post(format!("{admin}/revoke")).body(""),
        http.post(format!("{admin}/revoke")).bearer_auth("guess").body(""),
        http.post(format!("{admin}/revoke?token={token}")).body(""),
        http.post(format!("{admin}/latency")).body(r#"{"ms":5000}"#),
        http.post(format!("{admin}/oidc")).body(r#"{"prompt_none":false}"#),
        http.get(format!("{admin}/sessions")),
        http.get(format!("{admin}/requests")),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let body = r.text().await.unwrap();
        assert!(body.contains("admin_token"), "says what is needed: {body}");
    }
    let r = http
        .post(format!("{admin}/latency"))
        .bearer_auth(token)
        .body(r#"{"ms":0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{admin}/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Each Playground makes its own.
    assert_ne!(playground(60).await.info().admin_token, *token);
}

/// The QA guide's fault switches over HTTP, as `curl` sends them: each one
/// acts, and a body of the wrong shape is a 400 that shows the right one.
#[tokio::test(flavor = "multi_thread")]
async fn the_qa_guides_switches_act_and_bad_bodies_show_the_shape() {
    let pg = playground(60).await;
    let http = client(&pg);
    let admin = &pg.info().admin_url;
    let token = &pg.info().admin_token;
    let post = |path: &str, body: &'static str| {
        http.post(format!("{admin}/{path}"))
            .bearer_auth(token)
            .body(body)
            .send()
    };
    let jwks = format!("{}/.well-known/jwks.json", pg.base_url());
    assert_eq!(post("fail-jwks", r#"{"count":1}"#).await.unwrap().status(), 200);
    assert_eq!(http.get(&jwks).send().await.unwrap().status(), 503);
    assert_eq!(http.get(&jwks).send().await.unwrap().status(), 200, "one failure only");
    for (path, body, shape) in [
        ("fail-jwks", r#"{"n":1}"#, "count"),
        ("refresh-lifetime", r#"{"idle_seconds":0}"#, "at least 1 second"),
        ("refresh-lifetime", r#"{"idle":5}"#, "idle_seconds"),
    ] {
        let r = post(path, body).await.unwrap();
        assert_eq!(r.status(), 400, "{path} {body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(shape), "{path} {body}: {text}");
    }
    let r = post("refresh-lifetime", r#"{"idle_seconds":30,"absolute_seconds":120}"#)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["idle_seconds"].as_u64(), v["absolute_seconds"].as_u64()),
        (Some(30), Some(120))
    );
    let r = post("reject-access-tokens", "").await.unwrap();
    assert_eq!(r.status(), 200);
}

/// `/admin/primary` as the QA guide uses it: down through the primary (its
/// own answer still arrives), then the port refuses; the backup serves the
/// same sessions and brings the primary back on the same port.
#[tokio::test(flavor = "multi_thread")]
async fn the_primary_goes_down_and_up_through_the_admin_api() {
    let pg = playground_with(::playground::Options {
        backup: true,
        ..::playground::Options::default()
    })
    .await;
    let http = client(&pg);
    let token = &pg.info().admin_token;
    let backup = pg.info().backup_url.clone().unwrap();
    let primary = pg.base_url().to_owned();
    let r = http
        .post(format!("{primary}/admin/primary"))
        .bearer_auth(token)
        .body(r#"{"up":false}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["primary_up"], false);
    let e = client(&pg)
        .get(format!("{primary}/admin/primary"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    let r = http
        .get(format!("{backup}/admin/primary"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["primary_up"], false);
    let r = http
        .post(format!("{backup}/admin/primary"))
        .bearer_auth(token)
        .body(r#"{"up":"yes"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("send JSON") && text.contains("bool"),
        "shows the shape: {text}"
    );
    let r = http
        .post(format!("{backup}/admin/primary"))
        .bearer_auth(token)
        .body(r#"{"up":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["primary_up"], true);
    let r = client(&pg)
        .get(format!("{primary}/admin/primary"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "back on the same port");
}

/// A Playground started without a folder of its own makes one in the
/// temporary directory for its CA certificate and removes it when it
/// stops; a folder the caller named is the caller's and stays. (Seen: a
/// test suite left 1241 of them behind.)
#[tokio::test(flavor = "multi_thread")]
async fn a_playground_removes_the_folder_it_made_and_keeps_a_given_one() {
    let pg = playground(60).await;
    let ca = std::path::PathBuf::from(&pg.info().ca_cert);
    let made = ca.parent().unwrap().to_owned();
    assert!(ca.is_file(), "{}", ca.display());
    drop(pg);
    assert!(!made.exists(), "left behind: {}", made.display());

    let given = tempfile::tempdir().unwrap();
    let pg = ::playground::Playground::start(::playground::Options {
        dir: Some(given.path().join("pg")),
        ..Default::default()
    })
    .await
    .unwrap();
    drop(pg);
    assert!(
        given.path().join("pg/ca.pem").is_file(),
        "the caller's folder was emptied"
    );
}

/// Security review 2: the Playground's files in its folder are private and
/// a link planted at `ca.pem` is replaced, never written through (a data
/// directory in a shared folder); the admin token is in a 0600 file for QA.
#[tokio::test]
async fn a_planted_link_is_replaced_and_the_admin_token_is_in_a_private_file() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("playground");
    std::fs::create_dir(&dir).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "the victim's file").unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("ca.pem")).unwrap();
    let pg = ::playground::Playground::start(::playground::Options {
        dir: Some(dir.clone()),
        ..::playground::Options::default()
    })
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "the victim's file");
    let ca = std::fs::symlink_metadata(dir.join("ca.pem")).unwrap();
    assert!(ca.is_file(), "ca.pem is still a link");
    let token = dir.join(::playground::ADMIN_TOKEN_FILE);
    assert_eq!(std::fs::read_to_string(&token).unwrap(), pg.info().admin_token);
    for f in [dir.join("ca.pem"), token] {
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600,
            "{f:?}"
        );
    }
}

/// Security review 2 (finding 2b): a request whose body never comes does
/// not hold its connection slot: 408 within the body timeout, and the
/// connection closes.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_never_comes_is_answered_408_in_time() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pg = playground(60).await;
    let (mut tls, addr) = tls_to(&pg).await;
    let head = format!(
        "POST /api/v2/auth/login HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"user"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        ::playground::BODY_TIMEOUT + std::time::Duration::from_secs(3),
        tls.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the connection was held past the body timeout");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() >= ::playground::BODY_TIMEOUT - std::time::Duration::from_millis(100));
}

/// A TLS connection to the Playground's primary, trusting its CA; and the
/// `host:port` it is at.
async fn tls_to(pg: &::playground::Playground) -> (tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(&pg.info().ca_cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = pg.base_url().trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    (tls, addr)
}

/// A primary reported down answers nothing more on a connection it had
/// accepted (a client's pool keeps such connections): once in the full
/// suite, a pooled refresh went through to a primary already reported down
/// (tests/failover.rs). `set_primary(false)` now returns only when every
/// open connection has taken the stop in.
#[tokio::test(flavor = "multi_thread")]
async fn a_primary_reported_down_answers_nothing_on_connections_it_had_open() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pg = playground_with(::playground::Options {
        backup: true,
        ..::playground::Options::default()
    })
    .await;
    let (mut tls, addr) = tls_to(&pg).await;
    pg.set_primary(false).await;
    let request = format!("GET /.well-known/jwks.json HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    // The write may fail already: the connection is gone.
    let _ = tls.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
    assert!(
        read.is_ok(),
        "the connection stayed open after the primary was reported down"
    );
    assert!(
        answer.is_empty(),
        "the primary answered after it was reported down: {}",
        String::from_utf8_lossy(&answer)
    );
}
