//! The pinned HTTP client: every request pinned, no redirect followed, every
//! answer read within a size cap and a deadline, transport failures mapped
//! to the engine's errors.

use super::*;

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
