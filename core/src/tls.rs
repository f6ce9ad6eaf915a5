//! Certificate-pinned TLS.
//!
//! Every connection to an identity provider goes through [`PinnedClient`]:
//! 1. standard WebPKI validation (public roots, plus the profile's own CA if
//!    it names one, as the Playground does);
//! 2. then a SHA-256 SubjectPublicKeyInfo pin must match a certificate in the
//!    presented chain ([`danger::PinnedVerifier`]);
//! 3. TLS 1.3 only when the profile asks (always in Production);
//! 4. redirects are never followed.
//!
//! A pin mismatch surfaces as [`Error::PinMismatch`] carrying the SPKI hash the
//! server presented, so an operator can tell a key rotation from an attack.

use crate::error::Error;
use crate::profile::{Profile, TlsVersion};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A SHA-256 hash of a certificate's DER-encoded SubjectPublicKeyInfo,
/// written `sha256/<base64>` (the HPKP notation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin(pub [u8; 32]);

impl Pin {
    /// The pin of a DER-encoded SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        Pin(Sha256::digest(spki_der).into())
    }

    /// The pin of a DER-encoded X.509 certificate's public key.
    pub fn of_certificate(cert_der: &[u8]) -> Result<Self, String> {
        spki_of_certificate(cert_der).map(Self::of_spki)
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256/{}", B64.encode(self.0))
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Pin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let b64 = s
            .strip_prefix("sha256/")
            .ok_or_else(|| format!("'{s}' does not start with sha256/"))?;
        let bytes = B64
            .decode(b64)
            .map_err(|e| format!("'{s}' is not valid base64 ({e})"))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("'{s}' decodes to {} bytes, a SHA-256 hash has 32", b.len()))?;
        Ok(Pin(hash))
    }
}

/// One DER element: its tag, the whole element, its content, and what follows.
struct Der<'a> {
    tag: u8,
    whole: &'a [u8],
    rest: &'a [u8],
    content: &'a [u8],
}

/// Read one DER TLV from the front of `input`.
fn der_element(input: &[u8]) -> Option<Der<'_>> {
    let tag = *input.first()?;
    let first_len = *input.get(1)?;
    let (len, header) = if first_len & 0x80 == 0 {
        (first_len as usize, 2)
    } else {
        let n = (first_len & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some(Der {
        tag,
        whole: input.get(..end)?,
        content: input.get(header..end)?,
        rest: input.get(end..)?,
    })
}

/// The DER SubjectPublicKeyInfo inside a DER X.509 certificate (RFC 5280
/// section 4.1: it is the seventh field of `tbsCertificate`, or the sixth
/// when the optional version is absent).
pub fn spki_of_certificate(cert_der: &[u8]) -> Result<&[u8], String> {
    let bad = || "the certificate is not valid DER X.509".to_owned();
    let cert = der_element(cert_der).ok_or_else(bad)?;
    let tbs = der_element(cert.content).ok_or_else(bad)?;
    let mut field = der_element(tbs.content).ok_or_else(bad)?;
    if field.tag == 0xa0 {
        // skip [0] EXPLICIT version
        field = der_element(field.rest).ok_or_else(bad)?;
    }
    // serialNumber, signature, issuer, validity, subject
    for _ in 0..5 {
        field = der_element(field.rest).ok_or_else(bad)?;
    }
    if field.tag != 0x30 {
        return Err(bad());
    }
    let spki = field.whole;
    Ok(spki)
}

/// Dangerous configuration: a custom certificate verifier. It never weakens
/// WebPKI validation; it only adds the pin check after it.
pub mod danger {
    use super::*;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
    use rustls_pki_types::{ServerName, UnixTime};

    /// Wraps [`WebPkiServerVerifier`] and then requires a pin to match.
    #[derive(Debug)]
    pub struct PinnedVerifier {
        inner: Arc<WebPkiServerVerifier>,
        pins: Vec<Pin>,
        last_mismatch: Mutex<Option<Vec<Pin>>>,
    }

    impl PinnedVerifier {
        /// A verifier that trusts `roots` and requires one of `pins`.
        pub fn new(roots: RootCertStore, pins: Vec<Pin>, provider: Arc<CryptoProvider>) -> Result<Self, String> {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
            Ok(Self {
                inner,
                pins,
                last_mismatch: Mutex::new(None),
            })
        }

        /// The pins of the last chain that matched none; `None` if there was none.
        pub fn last_mismatch(&self) -> Option<Vec<Pin>> {
            self.last_mismatch.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    impl ServerCertVerifier for PinnedVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            // Step 1: the ordinary WebPKI checks (chain to a trusted root,
            // validity period, name). A pin never rescues a bad chain.
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)?;
            // Step 2: one certificate of the presented chain must carry a
            // pinned public key.
            let mut presented = Vec::new();
            for cert in std::iter::once(end_entity).chain(intermediates) {
                let pin = Pin::of_certificate(cert)
                    .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
                if self.pins.contains(&pin) {
                    return Ok(ServerCertVerified::assertion());
                }
                presented.push(pin);
            }
            *self.last_mismatch.lock().unwrap_or_else(|e| e.into_inner()) = Some(presented);
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    }
}

use danger::PinnedVerifier;

/// The crypto provider every TLS connection of the engine uses (ring, the same
/// one reqwest's rustls is built with).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The public WebPKI roots plus the certificates of an extra CA file.
pub fn root_store(extra_ca: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca {
        let mut added = 0;
        for cert in
            CertificateDer::pem_file_iter(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?
        {
            let cert = cert.map_err(|e| format!("CA file {} is not valid PEM: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA file {} holds an unusable certificate: {e}", path.display()))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("CA file {} holds no certificate", path.display()));
        }
    }
    Ok(roots)
}

/// A rustls client config that verifies with `verifier` and speaks only the
/// allowed TLS versions.
pub fn client_config(verifier: Arc<PinnedVerifier>, min_tls: TlsVersion) -> Result<ClientConfig, String> {
    let versions: &[&rustls::SupportedProtocolVersion] = match min_tls {
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    Ok(ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .map_err(|e| format!("cannot configure TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// An HTTP client whose every connection is pinned, that follows no redirect
/// and that maps transport failures to the engine's errors.
#[derive(Debug, Clone)]
pub struct PinnedClient {
    http: reqwest::Client,
    verifier: Arc<PinnedVerifier>,
}

impl PinnedClient {
    /// The pinned client for a profile.
    pub fn for_profile(profile: &Profile) -> Result<Self, Error> {
        Self::new(&profile.pins, profile.ca_file.as_deref(), profile.min_tls).map_err(|problem| {
            Error::Config(crate::profile::ConfigError {
                file: None,
                profile: Some(profile.name.clone()),
                field: Some("ca_file".into()),
                problem,
                fix: "point ca_file at a PEM file with the CA certificate".into(),
            })
        })
    }

    /// A pinned client from its parts.
    pub fn new(pins: &[Pin], extra_ca: Option<&Path>, min_tls: TlsVersion) -> Result<Self, String> {
        let verifier = Arc::new(PinnedVerifier::new(
            root_store(extra_ca)?,
            pins.to_vec(),
            crypto_provider(),
        )?);
        let config = client_config(verifier.clone(), min_tls)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, verifier })
    }

    /// The underlying client (already pinned); send with [`PinnedClient::send`]
    /// so that failures map to engine errors.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Send a request, mapping transport failures (pin mismatch, TLS, network)
    /// to engine errors.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
        let request = request
            .build()
            .map_err(|e| Error::Internal(format!("cannot build the request: {}", e.without_url())))?;
        let host = request.url().host_str().unwrap_or("the server").to_owned();
        let port = request.url().port_or_known_default().unwrap_or(443);
        let host = format!("{host}:{port}");
        self.http.execute(request).await.map_err(|e| self.classify(&host, e))
    }

    /// Map a reqwest error to an engine error.
    pub fn classify(&self, host: &str, err: reqwest::Error) -> Error {
        if let Some(tls) = find_rustls_error(&err) {
            if matches!(
                tls,
                rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
            ) {
                let presented = self
                    .verifier
                    .last_mismatch()
                    .unwrap_or_default()
                    .iter()
                    .map(Pin::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                return Error::PinMismatch {
                    host: host.to_owned(),
                    presented,
                };
            }
            return Error::Tls {
                host: host.to_owned(),
                detail: tls.to_string(),
            };
        }
        let timeout = err.is_timeout();
        let detail = error_chain(&err.without_url());
        if timeout {
            return Error::Network {
                host: host.to_owned(),
                detail: format!("timed out ({detail})"),
            };
        }
        Error::Network {
            host: host.to_owned(),
            detail,
        }
    }
}

/// The first rustls error in an error's source chain. `io::Error::source`
/// skips the error it wraps (it returns the wrapped error's source), so the
/// walk also looks inside each `io::Error` with `get_ref`.
fn find_rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if let Some(tls) = find_rustls_error(inner) {
                return Some(tls);
            }
        }
        current = e.source();
    }
    None
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let s = e.to_string();
        if !parts.contains(&s) {
            parts.push(s);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use rustls::{ClientConnection, ServerConfig, ServerConnection};
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    struct Pki {
        ca_der: CertificateDer<'static>,
        leaf_der: CertificateDer<'static>,
        leaf_key: PrivateKeyDer<'static>,
        leaf_pin: Pin,
        ca_pin: Pin,
    }

    fn pki() -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(vec![]).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "test CA");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["idp.test".into()])
            .unwrap()
            .signed_by(&leaf_key, &ca_cert, &ca_key)
            .unwrap();
        Pki {
            leaf_pin: Pin::of_spki(&leaf_key.public_key_der()),
            ca_pin: Pin::of_spki(&ca_key.public_key_der()),
            ca_der: ca_cert.der().clone(),
            leaf_der: leaf.der().clone(),
            leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        }
    }

    /// Run a TLS handshake between a client and a server entirely in memory.
    fn handshake(
        pki: &Pki,
        pins: Vec<Pin>,
        client_min: TlsVersion,
        server_versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<(), rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier = Arc::new(PinnedVerifier::new(roots, pins, crypto_provider()).unwrap());
        let client_cfg = client_config(verifier, client_min).unwrap();
        let server_cfg = ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(server_versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.leaf_der.clone(), pki.ca_der.clone()], pki.leaf_key.clone_key())
            .unwrap();
        let mut client =
            ClientConnection::new(Arc::new(client_cfg), ServerName::try_from("idp.test").unwrap()).unwrap();
        let mut server = ServerConnection::new(Arc::new(server_cfg)).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).unwrap();
            }
            if let Err(e) = server.process_new_packets() {
                // Let the client see the server's alert before reporting.
                let mut alert = Vec::new();
                let _ = server.write_tls(&mut alert);
                return Err(e);
            }
            let mut buf = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
            }
            client.process_new_packets()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                return Ok(());
            }
        }
        panic!("handshake did not finish");
    }

    const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

    #[test]
    fn spki_extraction_matches_the_key() {
        let p = pki();
        assert_eq!(Pin::of_certificate(&p.leaf_der).unwrap(), p.leaf_pin);
        assert_eq!(Pin::of_certificate(&p.ca_der).unwrap(), p.ca_pin);
        assert!(Pin::of_certificate(b"\x30\x82\xff").is_err());
        assert!(Pin::of_certificate(&[]).is_err());
    }

    #[test]
    fn pin_round_trips_and_rejects_garbage() {
        let pin = pki().leaf_pin;
        assert_eq!(pin.to_string().parse::<Pin>().unwrap(), pin);
        assert!("sha1/AAAA".parse::<Pin>().is_err());
        assert!("sha256/AAAA".parse::<Pin>().is_err());
        assert!("sha256/!!!".parse::<Pin>().is_err());
    }

    #[test]
    fn leaf_pin_matches() {
        let p = pki();
        handshake(&p, vec![p.leaf_pin], TlsVersion::V1_2, BOTH).unwrap();
    }

    #[test]
    fn backup_pin_matches() {
        let p = pki();
        let other = pki();
        // The current pin is some other key; the backup is the CA in the chain.
        handshake(&p, vec![other.leaf_pin, p.ca_pin], TlsVersion::V1_3, BOTH).unwrap();
    }

    #[test]
    fn no_matching_pin_is_refused_and_recorded() {
        let p = pki();
        let other = pki();
        let err = handshake(&p, vec![other.leaf_pin, other.ca_pin], TlsVersion::V1_2, BOTH).unwrap_err();
        assert_eq!(
            err,
            rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure)
        );
    }

    #[test]
    fn pin_does_not_rescue_an_untrusted_chain() {
        let p = pki();
        let mut roots = RootCertStore::empty();
        roots.add(pki().ca_der).unwrap(); // a different CA
        let verifier = PinnedVerifier::new(roots, vec![p.leaf_pin], crypto_provider()).unwrap();
        use rustls::client::danger::ServerCertVerifier;
        let err = verifier
            .verify_server_cert(
                &p.leaf_der,
                &[],
                &ServerName::try_from("idp.test").unwrap(),
                &[],
                rustls_pki_types::UnixTime::now(),
            )
            .unwrap_err();
        // WebPKI refuses it (a bad signature: the other CA has the same name).
        assert!(
            matches!(&err, rustls::Error::InvalidCertificate(e)
                if *e != rustls::CertificateError::ApplicationVerificationFailure),
            "{err:?}"
        );
        assert!(verifier.last_mismatch().is_none());
    }

    #[test]
    fn tls12_only_server_is_refused_when_tls13_required() {
        let p = pki();
        let tls12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
        assert!(handshake(&p, vec![p.leaf_pin], TlsVersion::V1_2, tls12).is_ok());
        let err = handshake(&p, vec![p.leaf_pin], TlsVersion::V1_3, tls12).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::PeerIncompatible(_) | rustls::Error::AlertReceived(_)
            ),
            "{err:?}"
        );
    }
}
