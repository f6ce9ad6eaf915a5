//! Certificate-pinned TLS, and HTTP reads that are bounded in size and time.
//!
//! Every connection to an identity provider goes through [`PinnedClient`]:
//! 1. standard WebPKI validation (public roots, plus the profile's own CA if
//!    it names one, as the Playground does): webpki builds a certification
//!    path from the server's certificate to a trust anchor;
//! 2. then a SHA-256 SubjectPublicKeyInfo pin must match a certificate *of a
//!    path webpki verified*: the leaf, an intermediate that path used, or its
//!    trust anchor ([`danger::PinnedVerifier`]). Extra certificates the server
//!    sent that are not on that path never count: an attacker with a
//!    certificate from any trusted CA cannot pass by appending the genuine,
//!    public certificate to its chain (the OkHttp CVE-2016-2402 pattern);
//! 3. TLS 1.3 only when the profile asks (always in Production);
//! 4. redirects are never followed;
//! 5. every answer is read with [`PinnedClient::read_body`], which stops at a
//!    size cap and a deadline.
//!
//! A pin mismatch surfaces as [`Error::PinMismatch`] carrying the SPKI pins
//! of the verified path, so an operator can tell a key rotation from an
//! attack. The pins travel inside the handshake's own error
//! ([`PinMismatch`] in `CertificateError::Other`), so two handshakes at once
//! never report each other's pins.

use crate::error::Error;
use crate::net::pin::Pin;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The most an identity provider's protocol answer may hold: discovery,
/// JWKS, token, userinfo, revocation and FinHub's auth answers are a few
/// kilobytes; a megabyte leaves room for large tokens and key sets.
pub const PROTOCOL_BODY_LIMIT: u64 = 1024 * 1024;
/// The default cap of an API answer ([`crate::profile::Profile::max_response_bytes`]).
pub const DEFAULT_API_BODY_LIMIT: u64 = 16 * 1024 * 1024;
/// How long the TCP connection may take (TLS comes on top, within the
/// profile's timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle pooled connection may be reused. Renewals come minutes
/// apart, so each one opens a fresh connection: one that died silently while
/// idle (a link that went away, a NAT that forgot it, a laptop that slept)
/// would otherwise hold the renewal for the whole request timeout before it
/// could show as offline. A fresh connection to a dead link fails at once
/// (no route) or within `CONNECT_TIMEOUT`.
pub const POOL_IDLE: Duration = Duration::from_secs(15);
/// The default time a request may take from sending to the last byte of the
/// answer ([`crate::profile::Profile::timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The pins of a verified path that matched none of the profile's pins. It
/// travels inside the handshake's error (`CertificateError::Other`), so each
/// connection reports its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    /// The pins of the verified path(s), leaf first, then the intermediates
    /// used, then the trust anchor.
    pub presented: Vec<Pin>,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no pin matches the verified path ({})", join_pins(&self.presented))
    }
}

impl std::error::Error for PinMismatch {}

/// A pin mismatch that a report-only profile let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinReport {
    pub host: String,
    /// The pins of the verified path, leaf first.
    pub presented: Vec<Pin>,
}

/// Where a report-only verifier leaves its mismatches until the engine
/// audits them. Each report names its host and pins, so handshakes at once
/// cannot be confused; at most [`PinReports::CAP`] wait (a peer cannot grow
/// it), repeats of the same report are kept once.
#[derive(Debug, Default)]
pub struct PinReports(std::sync::Mutex<Vec<PinReport>>);

impl PinReports {
    pub const CAP: usize = 16;

    fn push(&self, report: PinReport) {
        let mut r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() < Self::CAP && !r.contains(&report) {
            r.push(report);
        }
    }

    /// Take the reports collected so far.
    pub fn drain(&self) -> Vec<PinReport> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn join_pins(pins: &[Pin]) -> String {
    pins.iter().map(Pin::to_string).collect::<Vec<_>>().join(", ")
}

/// Dangerous configuration: a custom certificate verifier. It never weakens
/// WebPKI validation; it only adds the pin check on the path WebPKI verified.
pub mod danger {
    use super::*;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
    use rustls_pki_types::{ServerName, UnixTime};
    use std::cell::RefCell;

    /// WebPKI path validation with a pin check on every candidate path.
    #[derive(Debug)]
    pub struct PinnedVerifier {
        roots: RootCertStore,
        pins: Vec<Pin>,
        algorithms: WebPkiSupportedAlgorithms,
        /// Report-only (`pin_mode = "report-only"`, never in Production): a
        /// mismatch on an otherwise valid chain is recorded here and the
        /// connection proceeds.
        report_only: Option<Arc<PinReports>>,
    }

    impl PinnedVerifier {
        /// A verifier that trusts `roots` and requires one of `pins` on the
        /// verified path.
        pub fn new(roots: RootCertStore, pins: Vec<Pin>, provider: Arc<CryptoProvider>) -> Result<Self, String> {
            if roots.is_empty() {
                return Err("cannot build the certificate verifier: no trust anchor".into());
            }
            Ok(Self {
                roots,
                pins,
                algorithms: provider.signature_verification_algorithms,
                report_only: None,
            })
        }

        /// The same verifier in report-only mode: mismatches go to `reports`.
        pub fn report_only(mut self, reports: Arc<PinReports>) -> Self {
            self.report_only = Some(reports);
            self
        }

        /// The pins of the first path WebPKI verifies for this chain,
        /// whatever the configured pins say: what `doctor` compares them
        /// with. Certificates the server sent off that path are not in it.
        pub fn verified_path_pins(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            now: UnixTime,
        ) -> Result<Vec<Pin>, rustls::Error> {
            let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
            let found: RefCell<Vec<Pin>> = RefCell::new(Vec::new());
            let take = |path: &webpki::VerifiedPath<'_>| {
                *found.borrow_mut() = Self::path_pins(path);
                Ok(())
            };
            self.verify_paths(&cert, intermediates, now, &take).map_err(pki_error)?;
            Ok(found.into_inner())
        }

        /// WebPKI path building for a server certificate against this
        /// verifier's roots and algorithms; `each_path` sees every path
        /// webpki verified and may refuse it (webpki then tries the next).
        fn verify_paths(
            &self,
            cert: &webpki::EndEntityCert<'_>,
            intermediates: &[CertificateDer<'_>],
            now: UnixTime,
            each_path: &dyn Fn(&webpki::VerifiedPath<'_>) -> Result<(), webpki::Error>,
        ) -> Result<(), webpki::Error> {
            cert.verify_for_usage(
                self.algorithms.all,
                &self.roots.roots,
                intermediates,
                now,
                webpki::KeyUsage::server_auth(),
                None,
                Some(each_path),
            )
            .map(|_| ())
        }

        /// The pins of one verified path: leaf, intermediates used, anchor.
        fn path_pins(path: &webpki::VerifiedPath<'_>) -> Vec<Pin> {
            let mut pins = vec![Pin::of_spki(path.end_entity().subject_public_key_info().as_ref())];
            pins.extend(
                path.intermediate_certificates()
                    .map(|c| Pin::of_spki(c.subject_public_key_info().as_ref())),
            );
            // A trust anchor keeps its SPKI without the outer SEQUENCE.
            pins.push(Pin::of_spki_content(path.anchor().subject_public_key_info.as_ref()));
            pins
        }
    }

    impl ServerCertVerifier for PinnedVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
            // Step 1: WebPKI builds a path to a trust anchor. webpki offers
            // each candidate path it has verified (signatures, validity,
            // usage, name constraints) to this callback; refusing one makes
            // it try the next, so cross-signed chains still find a pinned
            // path when there is one. Only certificates on the path count.
            let unpinned: RefCell<Vec<Pin>> = RefCell::new(Vec::new());
            let check_pins = |path: &webpki::VerifiedPath<'_>| {
                let pins = Self::path_pins(path);
                if pins.iter().any(|p| self.pins.contains(p)) {
                    return Ok(());
                }
                let mut seen = unpinned.borrow_mut();
                for p in pins {
                    if !seen.contains(&p) {
                        seen.push(p);
                    }
                }
                // Not fatal: webpki goes on with other candidate paths.
                Err(webpki::Error::UnknownIssuer)
            };
            let verified = self.verify_paths(&cert, intermediates, now, &check_pins);
            let presented = unpinned.into_inner();
            if let Err(e) = &verified {
                if presented.is_empty() {
                    // No valid path at all: an ordinary WebPKI failure. A
                    // pin never rescues a bad chain.
                    return Err(pki_error(e.clone()));
                }
            }
            // Step 2: the name, as WebPKI requires, before any pin verdict.
            cert.verify_is_valid_for_subject_name(server_name).map_err(pki_error)?;
            match (verified, &self.report_only) {
                (Ok(_), _) => Ok(ServerCertVerified::assertion()),
                // Report-only: the chain is valid for the name (checked
                // above); only the pin failed. Recorded, let through.
                (Err(_), Some(reports)) => {
                    reports.push(PinReport {
                        host: server_name.to_str().into_owned(),
                        presented,
                    });
                    Ok(ServerCertVerified::assertion())
                }
                // Valid paths exist, but none carries a pinned key.
                (Err(_), None) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(
                    Arc::new(PinMismatch { presented }),
                )))),
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }

    /// A webpki error as the rustls error a handshake reports (the same
    /// categories rustls' own verifier uses).
    fn pki_error(error: webpki::Error) -> rustls::Error {
        use webpki::Error as W;
        let e = match error {
            W::BadDer | W::BadDerTime | W::TrailingData(_) => CertificateError::BadEncoding,
            W::CertNotValidYet { time, not_before } => CertificateError::NotValidYetContext { time, not_before },
            W::CertExpired { time, not_after } => CertificateError::ExpiredContext { time, not_after },
            W::InvalidCertValidity => CertificateError::Expired,
            W::UnknownIssuer => CertificateError::UnknownIssuer,
            W::CertNotValidForName(ctx) => CertificateError::NotValidForNameContext {
                expected: ctx.expected,
                presented: ctx.presented,
            },
            W::CertRevoked => CertificateError::Revoked,
            W::InvalidSignatureForPublicKey => CertificateError::BadSignature,
            #[allow(deprecated)]
            W::UnsupportedSignatureAlgorithm | W::UnsupportedSignatureAlgorithmForPublicKey => {
                CertificateError::UnsupportedSignatureAlgorithm
            }
            #[allow(deprecated)]
            W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
            other => CertificateError::Other(OtherError(Arc::new(other))),
        };
        rustls::Error::InvalidCertificate(e)
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
/// allowed TLS versions. It offers HTTP/1.1 only (ALPN): one protocol, one
/// set of limits to reason about.
pub fn client_config(
    verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    min_tls: TlsVersion,
) -> Result<ClientConfig, String> {
    let versions: &[&rustls::SupportedProtocolVersion] = match min_tls {
        TlsVersion::V1_3 => &[&rustls::version::TLS13],
        TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .map_err(|e| format!("cannot configure TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// What kind of answer a body is, which decides its size cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// A protocol answer of the identity provider (discovery, JWKS, token,
    /// userinfo, FinHub auth): at most [`PROTOCOL_BODY_LIMIT`].
    Protocol,
    /// An API answer (`Engine::call`, `sessionctl call`): at most the
    /// profile's `max_response_bytes`.
    Api,
}

/// What a pin mismatch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinMode {
    /// The connection fails (the default, and always in Production).
    Enforce,
    /// The mismatch is audited and shown; the connection proceeds (the
    /// chain must still be valid WebPKI for the name).
    ReportOnly,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// An HTTP client whose every connection is pinned, that follows no redirect,
/// reads every answer within a size cap and a deadline, and maps transport
/// failures to the engine's errors.
#[derive(Debug, Clone)]
pub struct PinnedClient {
    http: reqwest::Client,
    timeout: Duration,
    api_limit: u64,
    /// Report-only profiles: the mismatches let through.
    reports: Option<Arc<PinReports>>,
}

impl PinnedClient {
    /// A pinned client with the given limits; `report_only` lets a pin
    /// mismatch through (recorded in [`PinnedClient::pin_reports`]).
    pub fn with_options(
        pins: &[Pin],
        extra_ca: Option<&Path>,
        min_tls: TlsVersion,
        report_only: bool,
        timeout: Duration,
        api_limit: u64,
    ) -> Result<Self, String> {
        let reports = report_only.then(Arc::default);
        Self::build(pins, extra_ca, min_tls, reports).map(|c| c.with_limits(timeout, api_limit))
    }

    /// A pinned client from its parts, with the default limits.
    pub fn new(pins: &[Pin], extra_ca: Option<&Path>, min_tls: TlsVersion) -> Result<Self, String> {
        Self::build(pins, extra_ca, min_tls, None)
    }

    fn build(
        pins: &[Pin],
        extra_ca: Option<&Path>,
        min_tls: TlsVersion,
        reports: Option<Arc<PinReports>>,
    ) -> Result<Self, String> {
        let mut verifier = PinnedVerifier::new(root_store(extra_ca)?, pins.to_vec(), crypto_provider())?;
        if let Some(r) = &reports {
            verifier = verifier.report_only(r.clone());
        }
        let verifier = Arc::new(verifier);
        let config = client_config(verifier, min_tls)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(POOL_IDLE)
            .timeout(DEFAULT_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            timeout: DEFAULT_TIMEOUT,
            api_limit: DEFAULT_API_BODY_LIMIT,
            reports,
        })
    }

    /// The same client with another request timeout and API body cap.
    pub fn with_limits(mut self, timeout: Duration, api_limit: u64) -> Self {
        self.timeout = timeout;
        self.api_limit = api_limit;
        self
    }

    /// Report-only profiles: where pin mismatches wait to be audited.
    pub fn pin_reports(&self) -> Option<Arc<PinReports>> {
        self.reports.clone()
    }

    /// The time one request may take, from sending to the last byte.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The underlying client (already pinned); send with [`PinnedClient::send`]
    /// so that failures map to engine errors.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Send a request, mapping transport failures (pin mismatch, TLS, network,
    /// timeout) to engine errors.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
        let mut request = request
            .build()
            .map_err(|e| Error::Internal(format!("cannot build the request: {}", e.without_url())))?;
        *request.timeout_mut() = Some(self.timeout);
        // Kept for an error message only; formatted only if one is needed.
        let url = request.url().clone();
        match self.http.execute(request).await {
            Ok(r) => Ok(r),
            Err(e) => Err(self.classify(&host_of(&url), e).await),
        }
    }

    /// Read an answer's body, at most the cap of `kind` and within the
    /// request timeout. Reading stops at the cap: a peer that streams forever
    /// costs a bounded amount of memory and time.
    pub async fn read_body(&self, mut response: reqwest::Response, kind: BodyKind) -> Result<Vec<u8>, Error> {
        let limit = match kind {
            BodyKind::Protocol => PROTOCOL_BODY_LIMIT,
            BodyKind::Api => self.api_limit,
        };
        let url = response.url().clone();
        let too_large = || Error::ResponseTooLarge {
            url: shown_url(&url),
            limit,
            api: kind == BodyKind::Api,
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
        loop {
            let chunk = match tokio::time::timeout_at(deadline, response.chunk()).await {
                Err(_) => {
                    return Err(Error::Timeout {
                        host: host_of(&url),
                        secs: self.timeout.as_secs(),
                        connected: true,
                    })
                }
                Ok(Err(e)) => return Err(self.classify(&host_of(&url), e).await),
                Ok(Ok(None)) => return Ok(body),
                Ok(Ok(Some(c))) => c,
            };
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
    }

    /// Map a reqwest error to an engine error.
    pub async fn classify(&self, host: &str, err: reqwest::Error) -> Error {
        if let Some(tls) = find_rustls_error(&err) {
            if let Some(presented) = mismatch_pins(tls) {
                return Error::PinMismatch {
                    host: host.to_owned(),
                    presented: join_pins(presented),
                };
            }
            return Error::Tls {
                host: host.to_owned(),
                detail: tls.to_string(),
            };
        }
        let (timeout, connect) = (err.is_timeout(), err.is_connect());
        let detail = error_chain(&err.without_url());
        if timeout {
            // reqwest's connect timeout covers TCP and TLS together. Tell
            // "nobody answers the connection attempt" from "a server took the
            // connection and then said nothing" with one short probe.
            let connected = !connect || tcp_answers(host).await;
            if connected {
                return Error::Timeout {
                    host: host.to_owned(),
                    secs: self.timeout.as_secs(),
                    connected: true,
                };
            }
            return Error::Network {
                host: host.to_owned(),
                detail: format!(
                    "no answer to the connection attempt within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ),
            };
        }
        if connect {
            return Error::Network {
                host: host.to_owned(),
                detail,
            };
        }
        // The connection was there: the request may have been processed.
        Error::ConnectionLost {
            host: host.to_owned(),
            detail,
        }
    }
}

/// Whether a TCP connection to `host` (`name:port`) opens within 2 s.
async fn tcp_answers(host: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(host)).await,
        Ok(Ok(_))
    )
}

/// `host:port` of a URL, for messages.
fn host_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("the server");
    let port = url.port_or_known_default().unwrap_or(443);
    format!("{host}:{port}")
}

/// A URL as messages show it: without query or fragment, which may carry
/// values the message should not repeat.
fn shown_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
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

/// The pins a failed handshake's error carries, if it is a pin mismatch.
pub fn mismatch_pins(err: &rustls::Error) -> Option<&[Pin]> {
    match err {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<PinMismatch>().map(|m| m.presented.as_slice())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
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
}
