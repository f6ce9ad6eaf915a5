//! Dangerous configuration: a custom certificate verifier. It never weakens
//! WebPKI validation; it only adds the pin check on the path WebPKI verified.

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
