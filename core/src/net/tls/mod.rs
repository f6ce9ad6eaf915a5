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

mod client;
/// Dangerous configuration: a custom certificate verifier. It never weakens
/// WebPKI validation; it only adds the pin check on the path WebPKI verified.
pub mod danger;

pub use client::{mismatch_pins, PinnedClient};
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

#[cfg(test)]
mod tests;
