//! The TLS check: a handshake through the engine's own verifier (WebPKI
//! path building, then the profile's pins), recording what the server
//! presented so the report can show it; and the verdicts on what it found
//! (pins, versions, the clock against the server's `Date`).

use super::*;

/// The engine's own verifier, recording what the server presented.
#[derive(Debug)]
pub(super) struct Recorder {
    inner: PinnedVerifier,
    seen: Mutex<TlsFacts>,
    pins: Vec<Pin>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let path = self
            .inner
            .verified_path_pins(end_entity, intermediates, now)
            .unwrap_or_default();
        let presented = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| {
                let pin = Pin::of_certificate(c.as_ref()).ok();
                PresentedCert {
                    pin: pin
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "(unreadable certificate)".into()),
                    on_verified_path: pin.is_some_and(|p| path.contains(&p)),
                }
            })
            .collect();
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = TlsFacts {
            version: None,
            presented,
            matching_pins: path
                .iter()
                .filter(|p| self.pins.contains(p))
                .map(Pin::to_string)
                .collect(),
            verified_path: path.iter().map(Pin::to_string).collect(),
        };
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
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

/// How a recorded handshake went.
pub(crate) enum Handshake {
    /// Completed, in this TLS version.
    Done(Option<String>),
    /// Refused (by the verifier, the server or the network).
    Failed(std::io::Error),
    /// No TLS answer within the timeout.
    TimedOut,
}

/// A TLS handshake over `stream` through the engine's verifier (the roots
/// and `ca_file`, then `pins`), with what the server presented. With no
/// pins it always ends refused, after WebPKI built (or failed to build) its
/// path: what a new profile's pins are chosen from.
pub(crate) async fn recorded_handshake(
    host: &str,
    stream: tokio::net::TcpStream,
    ca_file: Option<&Path>,
    pins: &[Pin],
    min_tls: TlsVersion,
    timeout: Duration,
) -> Result<(Handshake, TlsFacts), (String, &'static str)> {
    let verifier = tls::root_store(ca_file)
        .and_then(|roots| PinnedVerifier::new(roots, pins.to_vec(), tls::crypto_provider()))
        .map_err(|e| (e, "point ca_file at a PEM file with the CA certificate"))?;
    let recorder = Arc::new(Recorder {
        inner: verifier,
        seen: Mutex::default(),
        pins: pins.to_vec(),
    });
    let config = tls::client_config(recorder.clone(), min_tls)
        .map_err(|e| (e, "report this; the TLS configuration could not be built"))?;
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        (
            format!("'{host}' is not a name TLS can check"),
            "use a DNS name or an IP address in the profile's URLs",
        )
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let outcome = tokio::time::timeout(timeout, connector.connect(name, stream)).await;
    let facts = std::mem::take(&mut *recorder.seen.lock().unwrap_or_else(|e| e.into_inner()));
    let handshake = match outcome {
        Err(_) => Handshake::TimedOut,
        Ok(Ok(conn)) => Handshake::Done(conn.get_ref().1.protocol_version().map(|v| format!("{v:?}"))),
        Ok(Err(e)) => Handshake::Failed(e),
    };
    Ok((handshake, facts))
}

pub(super) async fn check_tls(profile: &Profile, host: &str, stream: tokio::net::TcpStream, what: String) -> Check {
    let recorded = recorded_handshake(
        host,
        stream,
        profile.ca_file.as_deref(),
        &profile.pins,
        profile.min_tls,
        profile.timeout,
    )
    .await;
    let (handshake, mut facts) = match recorded {
        Ok(r) => r,
        Err((why, fix)) => return Check::failed(what, why, fix),
    };
    let mut check = match handshake {
        Handshake::TimedOut => Check::failed(
            &what,
            format!("connected, but no TLS answer within {} s", profile.timeout.as_secs()),
            "the port may not speak TLS, or the server is overloaded; check the URL's port",
        ),
        Handshake::Done(version) => {
            facts.version = version;
            tls_verdict(profile, &what, &facts)
        }
        Handshake::Failed(e) => tls_failure(profile, &what, &e, &facts),
    };
    check.tls = Some(facts);
    check
}

pub(super) fn tls_verdict(profile: &Profile, what: &str, facts: &TlsFacts) -> Check {
    let version = facts.version.clone().unwrap_or_else(|| "unknown version".into());
    if facts.matching_pins.is_empty() {
        // Only a report-only profile gets here with no pin on the path.
        return Check::warning(
            what,
            format!(
                "{version}; no configured pin matches the verified path ({}); the profile is report-only, so the app connects anyway",
                facts.verified_path.join(", ")
            ),
            "add one of the verified path's pins to `pins` (after checking it out of band), then switch pin_mode back to enforce",
        );
    }
    let mut check = Check::ok(
        what,
        format!(
            "{version}; pin {} is on the verified path",
            facts.matching_pins.join(", ")
        ),
    );
    if profile.pins.len() < 2 {
        check = Check::warning(
            what,
            check.detail,
            "add a backup pin (the SPKI of an offline spare key, or the issuing CA's) so a key rotation does not lock the app out",
        );
    }
    check
}

pub(super) fn tls_failure(profile: &Profile, what: &str, error: &std::io::Error, facts: &TlsFacts) -> Check {
    let tls_error = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
    if let Some(presented) = tls_error.and_then(tls::mismatch_pins) {
        let pins = presented.iter().map(Pin::to_string).collect::<Vec<_>>().join(", ");
        return Check::failed(
            what,
            format!("no configured pin matches the verified path ({pins}); the app refuses this server"),
            "if the provider rotated its key, check the new pin out of band (ask the provider), then put it into the profile's `pins`; otherwise someone may be intercepting this connection",
        );
    }
    use rustls::{CertificateError as C, Error as E};
    let fix = match tls_error {
        Some(E::InvalidCertificate(C::UnknownIssuer)) => {
            "the certificate's issuer is not trusted: for a private CA, point the profile's ca_file at its PEM certificate"
        }
        Some(E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
            "the certificate is for another name: check the host in the profile's URLs"
        }
        Some(E::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        )) => "the certificate is outside its validity period: check this machine's clock; otherwise the provider must renew it",
        Some(E::PeerIncompatible(_)) if profile.min_tls == TlsVersion::V1_3 => {
            "the server does not speak TLS 1.3, which this profile requires (min_tls, always in Production)"
        }
        _ => "check that the URL's port speaks TLS and that no proxy intercepts it",
    };
    let detail = match tls_error {
        Some(e) => e.to_string(),
        None => error.to_string(),
    };
    let seen = if facts.presented.is_empty() {
        String::new()
    } else {
        match facts.presented.len() {
            1 => "; the server presented 1 certificate".to_owned(),
            n => format!("; the server presented {n} certificates"),
        }
    };
    Check::failed(what, format!("handshake failed: {detail}{seen}"), fix)
}

/// The provider's clock (its `Date`) against ours, over the pinned client.
pub(crate) async fn check_clock(profile: &Profile) -> Check {
    let what = format!("{} clock", profile.name);
    let url = match &profile.oidc {
        Some(o) => o.discovery_url.clone(),
        None => profile.base_url.clone(),
    };
    let client = match profile.pinned_client() {
        Ok(c) => c,
        Err(e) => return Check::failed(what, e.to_string(), "fix the profile's ca_file"),
    };
    let before = chrono::Utc::now();
    let response = match client.send(client.http().get(url.clone())).await {
        Ok(r) => r,
        Err(e) => {
            return Check::warning(
                what,
                format!("could not be measured: {e}"),
                "run the doctor again once the provider answers",
            )
        }
    };
    let after = chrono::Utc::now();
    let Some(date) = crate::provider::server_date(&response) else {
        return Check::warning(
            what,
            format!("{url} sent no Date header, so the offset is unknown"),
            "keep this machine's clock synchronised (timedatectl set-ntp true)",
        );
    };
    let ours = before + (after - before) / 2;
    let mut check = clock_verdict(&what, (date - ours).num_seconds());
    check.clock_offset_secs = Some((date - ours).num_seconds());
    check
}

/// The verdict on a clock offset: within the token leeway is fine; up to
/// the anomaly limit the app copes (it reads token times against the
/// provider's `Date`) but says so; beyond, something is wrong.
pub fn clock_verdict(what: &str, offset_secs: i64) -> Check {
    let leeway = crate::engine::LEEWAY.as_secs() as i64;
    let limit = crate::insight::anomaly::CLOCK_LIMIT.as_secs() as i64;
    let side = if offset_secs > 0 { "behind" } else { "ahead of" };
    let detail = format!(
        "this machine's clock is {} s {side} the provider's",
        offset_secs.unsigned_abs()
    );
    let fix = "synchronise this machine's clock (timedatectl set-ntp true), or ask the provider to fix theirs";
    if offset_secs.abs() <= leeway {
        Check::ok(what, format!("within {leeway} s of the provider's ({offset_secs:+} s)"))
    } else if offset_secs.abs() <= limit {
        Check::warning(
            what,
            format!("{detail}; tokens are still accepted (read against the provider's clock)"),
            fix,
        )
    } else {
        Check::failed(what, format!("{detail}; sign-in and token checks may fail"), fix)
    }
}
