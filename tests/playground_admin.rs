//! The Playground's admin API: reachable by every local user on loopback,
//! so every call needs the bearer secret the Playground made at start.

use integration::playground;
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
