use super::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::client::danger::ServerCertVerifier;
use rustls::{ClientConnection, ServerConfig, ServerConnection};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

/// A root CA, an intermediate CA and a leaf for `idp.test`.
struct Pki {
    root_der: CertificateDer<'static>,
    mid_der: CertificateDer<'static>,
    leaf_der: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
    root_pin: Pin,
    mid_pin: Pin,
    leaf_pin: Pin,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(vec![]).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p
}

/// A fresh PKI; `name` tells two apart (both chains are for idp.test).
fn pki(name: &str) -> Pki {
    let root_key = KeyPair::generate().unwrap();
    let root = ca_params(&format!("{name} root")).self_signed(&root_key).unwrap();
    let mid_key = KeyPair::generate().unwrap();
    let mid = ca_params(&format!("{name} intermediate"))
        .signed_by(&mid_key, &root, &root_key)
        .unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["idp.test".into()])
        .unwrap()
        .signed_by(&leaf_key, &mid, &mid_key)
        .unwrap();
    Pki {
        root_pin: Pin::of_spki(&root_key.public_key_der()),
        mid_pin: Pin::of_spki(&mid_key.public_key_der()),
        leaf_pin: Pin::of_spki(&leaf_key.public_key_der()),
        root_der: root.der().clone(),
        mid_der: mid.der().clone(),
        leaf_der: leaf.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

fn roots(trusted: &[&Pki]) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for p in trusted {
        roots.add(p.root_der.clone()).unwrap();
    }
    roots
}

fn verifier(trusted: &[&Pki], pins: Vec<Pin>) -> Arc<PinnedVerifier> {
    Arc::new(PinnedVerifier::new(roots(trusted), pins, crypto_provider()).unwrap())
}

/// Check `chain` (leaf first) directly with the verifier.
fn verify(v: &PinnedVerifier, chain: &[CertificateDer<'static>]) -> Result<(), rustls::Error> {
    v.verify_server_cert(
        &chain[0],
        &chain[1..],
        &ServerName::try_from("idp.test").unwrap(),
        &[],
        UnixTime::now(),
    )
    .map(|_| ())
}

/// A client with `verifier` and a server presenting `chain` with `key`.
fn connections(
    verifier: Arc<PinnedVerifier>,
    client_min: TlsVersion,
    server_versions: &[&'static rustls::SupportedProtocolVersion],
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
) -> (ClientConnection, ServerConnection) {
    let client_cfg = client_config(verifier, client_min).unwrap();
    let server_cfg = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(server_versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key.clone_key())
        .unwrap();
    let client = ClientConnection::new(Arc::new(client_cfg), ServerName::try_from("idp.test").unwrap()).unwrap();
    (client, ServerConnection::new(Arc::new(server_cfg)).unwrap())
}

/// Move one flight of records each way; `Some` once the handshake ends.
fn step(client: &mut ClientConnection, server: &mut ServerConnection) -> Option<Result<(), rustls::Error>> {
    let mut buf = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut buf).unwrap();
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        server.read_tls(&mut rd).unwrap();
    }
    if let Err(e) = server.process_new_packets() {
        return Some(Err(e));
    }
    let mut buf = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut buf).unwrap();
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        client.read_tls(&mut rd).unwrap();
    }
    if let Err(e) = client.process_new_packets() {
        return Some(Err(e));
    }
    (!client.is_handshaking() && !server.is_handshaking()).then_some(Ok(()))
}

/// A whole TLS handshake in memory: the server presents `chain`.
fn handshake(
    verifier: Arc<PinnedVerifier>,
    client_min: TlsVersion,
    server_versions: &[&'static rustls::SupportedProtocolVersion],
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
) -> Result<(), rustls::Error> {
    let (mut client, mut server) = connections(verifier, client_min, server_versions, chain, key);
    for _ in 0..10 {
        if let Some(done) = step(&mut client, &mut server) {
            return done;
        }
    }
    panic!("handshake did not finish");
}

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

fn shake(v: Arc<PinnedVerifier>, p: &Pki, chain: Vec<CertificateDer<'static>>) -> Result<(), rustls::Error> {
    handshake(v, TlsVersion::V1_2, BOTH, chain, &p.leaf_key)
}

fn usual(p: &Pki) -> Vec<CertificateDer<'static>> {
    vec![p.leaf_der.clone(), p.mid_der.clone()]
}

#[test]
fn spki_extraction_matches_the_key() {
    let p = pki("a");
    assert_eq!(Pin::of_certificate(&p.leaf_der).unwrap(), p.leaf_pin);
    assert_eq!(Pin::of_certificate(&p.root_der).unwrap(), p.root_pin);
}

#[test]
fn report_only_lets_a_mismatch_through_and_records_it_but_never_a_bad_chain() {
    let p = pki("a");
    let other = pki("b");
    let reports = Arc::new(PinReports::default());
    let v = Arc::new(
        PinnedVerifier::new(roots(&[&p]), vec![other.leaf_pin], crypto_provider())
            .unwrap()
            .report_only(reports.clone()),
    );
    shake(v.clone(), &p, usual(&p)).unwrap();
    let r = reports.drain();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].host, "idp.test");
    assert_eq!(r[0].presented[0], p.leaf_pin, "the leaf's pin first");
    assert!(reports.drain().is_empty(), "drained");
    // A chain WebPKI does not accept is refused all the same.
    let e = shake(v.clone(), &other, usual(&other)).unwrap_err();
    assert!(mismatch_pins(&e).is_none(), "{e}");
    assert!(reports.drain().is_empty());
    // Enforcing (the same pins): the mismatch fails the handshake.
    let e = shake(verifier(&[&p], vec![other.leaf_pin]), &p, usual(&p)).unwrap_err();
    assert!(mismatch_pins(&e).is_some(), "{e}");
    // A peer cannot grow the report list without bound.
    for _ in 0..3 * PinReports::CAP {
        let fresh = pki("c");
        let v = Arc::new(
            PinnedVerifier::new(roots(&[&fresh]), vec![other.leaf_pin], crypto_provider())
                .unwrap()
                .report_only(reports.clone()),
        );
        verify(&v, &usual(&fresh)).unwrap();
    }
    assert_eq!(reports.drain().len(), PinReports::CAP);
}

#[test]
fn a_leaf_pin_matches() {
    let p = pki("a");
    shake(verifier(&[&p], vec![p.leaf_pin]), &p, usual(&p)).unwrap();
}

#[test]
fn an_intermediate_pin_matches() {
    let p = pki("a");
    let other = pki("b");
    shake(verifier(&[&p], vec![other.leaf_pin, p.mid_pin]), &p, usual(&p)).unwrap();
}

#[test]
fn a_root_pin_matches_although_the_server_does_not_send_the_root() {
    let p = pki("a");
    // The usual chain stops at the intermediate: the root comes from the
    // trust store, and its pin still counts.
    shake(verifier(&[&p], vec![p.root_pin]), &p, usual(&p)).unwrap();
    // Sending the root too changes nothing.
    let with_root = vec![p.leaf_der.clone(), p.mid_der.clone(), p.root_der.clone()];
    shake(verifier(&[&p], vec![p.root_pin]), &p, with_root).unwrap();
}

#[test]
fn an_appended_genuine_leaf_does_not_satisfy_the_pin() {
    let genuine = pki("genuine");
    // Another publicly trusted CA issued the attacker a certificate for
    // the same name; the genuine leaf is public and goes along unused.
    let attacker = pki("attacker");
    let v = verifier(&[&genuine, &attacker], vec![genuine.leaf_pin]);
    let chain = vec![
        attacker.leaf_der.clone(),
        attacker.mid_der.clone(),
        genuine.leaf_der.clone(),
    ];
    let err = verify(&v, &chain).unwrap_err();
    let presented = mismatch_pins(&err).expect("a pin mismatch");
    assert_eq!(presented, [attacker.leaf_pin, attacker.mid_pin, attacker.root_pin]);
    // Over a real handshake too, with the attacker's key.
    let err = shake(v, &attacker, chain).unwrap_err();
    assert!(mismatch_pins(&err).is_some(), "{err:?}");
}

#[test]
fn an_appended_genuine_intermediate_does_not_satisfy_the_pin() {
    let genuine = pki("genuine");
    let attacker = pki("attacker");
    let v = verifier(&[&genuine, &attacker], vec![genuine.mid_pin, genuine.root_pin]);
    let chain = vec![
        attacker.leaf_der.clone(),
        attacker.mid_der.clone(),
        genuine.mid_der.clone(),
        genuine.root_der.clone(),
    ];
    let err = verify(&v, &chain).unwrap_err();
    let presented = mismatch_pins(&err).expect("a pin mismatch");
    assert!(!presented.contains(&genuine.mid_pin), "{presented:?}");
    assert!(!presented.contains(&genuine.root_pin), "{presented:?}");
}

#[test]
fn no_matching_pin_is_refused_with_the_path_pins() {
    let p = pki("a");
    let other = pki("b");
    let err = shake(verifier(&[&p], vec![other.leaf_pin, other.root_pin]), &p, usual(&p)).unwrap_err();
    assert_eq!(
        mismatch_pins(&err).expect("a pin mismatch"),
        [p.leaf_pin, p.mid_pin, p.root_pin]
    );
}

#[test]
fn a_pin_does_not_rescue_an_untrusted_chain() {
    let p = pki("a");
    let stranger = pki("b");
    // Only the stranger's root is trusted; the chain's own leaf is pinned.
    let v = verifier(&[&stranger], vec![p.leaf_pin, p.root_pin]);
    let err = verify(&v, &usual(&p)).unwrap_err();
    assert_eq!(
        err,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    );
    assert!(mismatch_pins(&err).is_none());
}

#[test]
fn a_wrong_name_is_a_webpki_failure_not_a_pin_verdict() {
    let p = pki("a");
    let v = verifier(&[&p], vec![p.leaf_pin]);
    let err = v
        .verify_server_cert(
            &p.leaf_der,
            std::slice::from_ref(&p.mid_der),
            &ServerName::try_from("other.test").unwrap(),
            &[],
            UnixTime::now(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn two_handshakes_at_once_report_their_own_pins() {
    let a = pki("a");
    let b = pki("b");
    let nobody = pki("c");
    // One verifier (one client) for both connections, as with backup
    // URLs or parallel discovery and JWKS fetches.
    let v = verifier(&[&a, &b], vec![nobody.leaf_pin]);
    let (mut ca, mut sa) = connections(v.clone(), TlsVersion::V1_2, BOTH, usual(&a), &a.leaf_key);
    let (mut cb, mut sb) = connections(v, TlsVersion::V1_2, BOTH, usual(&b), &b.leaf_key);
    // Interleave the two handshakes flight by flight until both fail.
    let (mut ra, mut rb) = (None, None);
    for _ in 0..10 {
        if ra.is_none() {
            ra = step(&mut ca, &mut sa);
        }
        if rb.is_none() {
            rb = step(&mut cb, &mut sb);
        }
    }
    let (ea, eb) = (ra.unwrap().unwrap_err(), rb.unwrap().unwrap_err());
    assert_eq!(
        mismatch_pins(&ea).unwrap()[0],
        a.leaf_pin,
        "connection A got another's pins"
    );
    assert_eq!(
        mismatch_pins(&eb).unwrap()[0],
        b.leaf_pin,
        "connection B got another's pins"
    );
}

#[test]
fn tls12_only_server_is_refused_when_tls13_required() {
    let p = pki("a");
    let tls12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    let v = || verifier(&[&p], vec![p.leaf_pin]);
    assert!(handshake(v(), TlsVersion::V1_2, tls12, usual(&p), &p.leaf_key).is_ok());
    let err = handshake(v(), TlsVersion::V1_3, tls12, usual(&p), &p.leaf_key).unwrap_err();
    assert!(
        matches!(
            err,
            rustls::Error::PeerIncompatible(_) | rustls::Error::AlertReceived(_)
        ),
        "{err:?}"
    );
}
