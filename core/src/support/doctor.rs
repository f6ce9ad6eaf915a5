//! `doctor`: what is wrong with this machine, one check at a time.
//!
//! Each check ends `ok`, `warning` (works, with advice) or `failed` (with
//! the fix). The report passes when nothing failed. Nothing here signs
//! anyone in or reads a stored session: the keychain check writes, reads
//! and deletes a probe entry of its own, and the host checks open
//! connections that send no credential.
//!
//! The host checks go through the same verifier as the engine (WebPKI path
//! building, then the profile's pins on the verified path), so a host that
//! passes here passes in the app; the doctor only records what the server
//! presented on the way, to show it.

use crate::net::pin::Pin;
use crate::net::tls::{self, danger::PinnedVerifier};
use crate::profile::{Config, Profile, TlsVersion};
use crate::storage::vault::SecretStore;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a name lookup may take.
pub const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one TCP connection attempt may take.
pub const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// It works, but something deserves attention.
    Warning,
    Failed,
}

impl Status {
    /// The word the text report prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
        }
    }
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked: `config`, `keychain`, `data directory`, or a
    /// profile's host and step (`playground 127.0.0.1:8443 tls`).
    pub what: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do about it (never on `ok`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// The TLS facts of a host's `tls` check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsFacts>,
    /// The provider's clock minus ours, in seconds (a `clock` check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_offset_secs: Option<i64>,
}

impl Check {
    fn new(what: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            status,
            detail: detail.into(),
            fix: None,
            tls: None,
            clock_offset_secs: None,
        }
    }

    fn ok(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(what, Status::Ok, detail)
    }

    fn failed(what: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(what, Status::Failed, detail).with_fix(fix)
    }

    fn warning(what: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(what, Status::Warning, detail).with_fix(fix)
    }

    fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// What a TLS handshake showed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsFacts {
    /// The version negotiated (`TLSv1_3`), when the handshake completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The certificates the server sent, in its order (leaf first), with
    /// each one's SPKI pin and whether it is on the verified path.
    pub presented: Vec<PresentedCert>,
    /// The pins of the path WebPKI verified: leaf, intermediates used,
    /// trust anchor (which the server need not send).
    pub verified_path: Vec<String>,
    /// The profile's pins found on the verified path.
    pub matching_pins: Vec<String>,
}

/// One certificate the server sent.
#[derive(Debug, Clone, Serialize)]
pub struct PresentedCert {
    pub pin: String,
    pub on_verified_path: bool,
}

/// A whole examination.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
    /// No check failed.
    pub passed: bool,
}

impl Report {
    fn new(checks: Vec<Check>) -> Self {
        let passed = checks.iter().all(|c| c.status != Status::Failed);
        Self { checks, passed }
    }

    /// How many checks ended with `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// What to examine.
pub struct Doctor {
    /// The config file (`None`: none was given and there is no default).
    pub config_file: Option<PathBuf>,
    /// Only this profile's hosts (default: every profile's).
    pub profile: Option<String>,
    /// The data directory (`None`: none could be determined).
    pub data_dir: Option<PathBuf>,
    /// The keychain to probe.
    pub store: Arc<dyn SecretStore>,
}

impl Doctor {
    /// Run every check.
    pub async fn examine(&self) -> Report {
        let mut checks = Vec::new();
        let (config_check, config) = check_config(self.config_file.as_deref());
        checks.push(config_check);
        checks.push(check_keychain(self.store.clone()).await);
        checks.extend(check_data_dir(self.data_dir.as_deref()));
        if let Some(config) = config {
            let profiles: Vec<&Profile> = match &self.profile {
                Some(name) => match config.profiles.get(name) {
                    Some(p) => vec![p],
                    None => {
                        checks.push(Check::failed(
                            "profile",
                            format!("there is no profile named '{name}'"),
                            format!(
                                "use one of: {}",
                                config.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                        vec![]
                    }
                },
                None => config.profiles.values().collect(),
            };
            for profile in profiles {
                checks.extend(check_profile(profile).await);
            }
        }
        Report::new(checks)
    }
}

fn check_config(path: Option<&Path>) -> (Check, Option<Config>) {
    let Some(path) = path else {
        return (
            Check::failed(
                "config",
                "no config file was given and the platform has no default location",
                "pass --config FILE or set SESSION_MANAGER_CONFIG",
            ),
            None,
        );
    };
    match Config::load(path) {
        Ok(config) => {
            let names = config.profiles.keys().cloned().collect::<Vec<_>>().join(", ");
            let default = config
                .default_profile
                .as_deref()
                .map(|d| format!(", default {d}"))
                .unwrap_or_default();
            let check = Check::ok(
                "config",
                format!(
                    "{}: {} profile(s): {names}{default}",
                    path.display(),
                    config.profiles.len()
                ),
            );
            (check, Some(config))
        }
        Err(e) => {
            let mut problem = e.clone();
            problem.fix = String::new();
            let detail = problem.to_string();
            let detail = detail.trim_end_matches(". Fix: ").to_owned();
            (Check::failed("config", detail, e.fix), None)
        }
    }
}

/// A write, read and delete round trip through the keychain, under an
/// account of its own (`doctor-probe-<uuid>`).
async fn check_keychain(store: Arc<dyn SecretStore>) -> Check {
    let outcome = tokio::task::spawn_blocking(move || {
        let account = format!("doctor-probe-{}", uuid::Uuid::new_v4());
        let value = uuid::Uuid::new_v4().to_string();
        let round_trip = (|| {
            store
                .set(&account, &value)
                .map_err(|e| format!("writing failed: {e}"))?;
            match store.get(&account).map_err(|e| format!("reading back failed: {e}"))? {
                Some(v) if v == value => {}
                Some(_) => return Err("reading back gave another value than was written".to_owned()),
                None => return Err("the entry just written is not there".to_owned()),
            }
            if !store.delete(&account).map_err(|e| format!("deleting failed: {e}"))? {
                return Err("the entry just written could not be found to delete".to_owned());
            }
            if store
                .get(&account)
                .map_err(|e| format!("reading after delete failed: {e}"))?
                .is_some()
            {
                return Err("the entry is still there after it was deleted".to_owned());
            }
            Ok(())
        })();
        if round_trip.is_err() {
            // Leave nothing behind, whatever step failed.
            let _ = store.delete(&account);
        }
        (round_trip, store.backend())
    })
    .await;
    match outcome {
        Ok((Ok(()), backend)) => Check::ok("keychain", format!("write, read and delete round trip through {backend}")),
        Ok((Err(problem), backend)) => Check::failed(
            "keychain",
            format!("{problem} ({backend})"),
            "start and unlock a Secret Service (gnome-keyring or KeePassXC) in your desktop session; without one, sessions are kept in memory only and end with the app",
        ),
        Err(e) => Check::failed("keychain", format!("the keychain probe stopped: {e}"), "run the doctor again; report it if it repeats"),
    }
}

/// The data directory (audit log, locks): this user's, and nobody else's.
fn check_data_dir(dir: Option<&Path>) -> Vec<Check> {
    const WHAT: &str = "data directory";
    let Some(dir) = dir else {
        return vec![Check::failed(
            WHAT,
            "no data directory could be determined (HOME is not set)",
            "pass --data-dir DIR or set SESSION_MANAGER_DATA_DIR",
        )];
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return vec![Check::ok(
                WHAT,
                format!(
                    "{} does not exist yet; the app creates it, private, at its first start",
                    dir.display()
                ),
            )]
        }
        Err(e) => {
            return vec![Check::failed(
                WHAT,
                format!("cannot read {}: {e}", dir.display()),
                "check the path and its parents' permissions",
            )]
        }
    };
    if !meta.is_dir() {
        return vec![Check::failed(
            WHAT,
            format!("{} is not a directory", dir.display()),
            "point --data-dir or SESSION_MANAGER_DATA_DIR at a directory",
        )];
    }
    private_to_me(dir, &meta, true)
        .map(|problem| vec![problem])
        .unwrap_or_else(|| {
            let mut checks = vec![Check::ok(WHAT, format!("{} is yours and private", dir.display()))];
            let files = std::fs::read_dir(dir).into_iter().flatten().flatten();
            for entry in files {
                let path = entry.path();
                if let Ok(meta) = std::fs::symlink_metadata(&path) {
                    if let Some(problem) = private_to_me(&path, &meta, false) {
                        checks.push(problem);
                    }
                }
            }
            checks
        })
}

/// A failed check when `path` is not this user's or others may read it.
#[cfg(unix)]
fn private_to_me(path: &Path, meta: &std::fs::Metadata, is_dir: bool) -> Option<Check> {
    use std::os::unix::fs::MetadataExt;
    let what = if is_dir { "data directory" } else { "data file" };
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Some(Check::failed(
            what,
            format!(
                "{} belongs to another user (uid {}; you are {me})",
                path.display(),
                meta.uid()
            ),
            "use a data directory of your own (--data-dir or SESSION_MANAGER_DATA_DIR)",
        ));
    }
    let mode = meta.mode() & 0o777;
    if meta.file_type().is_symlink() {
        return Some(Check::failed(
            what,
            format!(
                "{} is a symbolic link; the app never writes through one",
                path.display()
            ),
            format!("remove it: rm {}", path.display()),
        ));
    }
    if mode & 0o077 != 0 {
        // A file others could read may have been read: failed. A directory
        // shows only file names, and the app tightens it to 0700 whenever
        // it opens it: a warning.
        let (want, problem) = if is_dir {
            (
                "700",
                "others can list it; the app makes it private when it next starts",
            )
        } else {
            ("600", "others can read it, and may have")
        };
        let detail = format!("{} is mode {mode:04o}: {problem}", path.display());
        let fix = format!("chmod {want} {}", path.display());
        return Some(if is_dir {
            Check::warning(what, detail, fix)
        } else {
            Check::failed(what, detail, fix)
        });
    }
    None
}

#[cfg(not(unix))]
fn private_to_me(_path: &Path, _meta: &std::fs::Metadata, _is_dir: bool) -> Option<Check> {
    None
}

/// Every host a profile talks to, once: its base URL, backups, key set,
/// discovery, logout and API hosts.
fn hosts_of(profile: &Profile) -> Vec<(String, u16)> {
    let mut urls: Vec<&reqwest::Url> = vec![&profile.base_url];
    urls.extend(&profile.backup_urls);
    urls.extend(&profile.jwks_url);
    if let Some(o) = &profile.oidc {
        urls.push(&o.discovery_url);
        urls.extend(&o.logout_url);
        urls.extend(&o.api_base_url);
    }
    unique_hosts(urls)
}

/// The hosts of `urls`, in order, once each.
fn unique_hosts<'a>(urls: impl IntoIterator<Item = &'a reqwest::Url>) -> Vec<(String, u16)> {
    let mut hosts: Vec<(String, u16)> = Vec::new();
    for h in urls.into_iter().filter_map(host_port) {
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
}

async fn check_profile(profile: &Profile) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut failed_hosts = Vec::new();
    let hosts = hosts_of(profile);
    for (host, port) in &hosts {
        let host_checks = check_host(profile, host, *port).await;
        if host_checks.iter().any(|c| c.status == Status::Failed) {
            failed_hosts.push((host.clone(), *port));
        }
        checks.extend(host_checks);
    }
    let reachable = |url: &reqwest::Url| host_port(url).is_some_and(|h| !failed_hosts.contains(&h));
    if let Some(oidc) = &profile.oidc {
        if reachable(&oidc.discovery_url) {
            // The endpoints discovery names may live on hosts the profile
            // does not (a token service, a device endpoint): check those too.
            let (found, endpoints) = check_discovery(profile, oidc).await;
            checks.extend(found);
            for (host, port) in endpoints {
                if !hosts.contains(&(host.clone(), port)) {
                    checks.extend(check_host(profile, &host, port).await);
                }
            }
        }
    }
    if reachable(&profile.base_url) {
        checks.push(check_clock(profile).await);
    }
    checks
}

fn host_port(url: &reqwest::Url) -> Option<(String, u16)> {
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), url.port_or_known_default()?))
}

/// Fetch the discovery document as the engine does (pinned, capped, the
/// issuer compared exactly); returns the verdict and the hosts of the
/// endpoints it names, in the order it names them, once each.
async fn check_discovery(profile: &Profile, oidc: &crate::profile::OidcSettings) -> (Vec<Check>, Vec<(String, u16)>) {
    let what = format!("{} discovery", profile.name);
    let client = match profile.pinned_client() {
        Ok(c) => c,
        Err(e) => {
            return (
                vec![Check::failed(what, e.to_string(), "fix the profile's ca_file")],
                vec![],
            )
        }
    };
    let cache = crate::provider::oidc::discovery::DiscoveryCache::new(
        client,
        oidc.discovery_url.clone(),
        profile.issuer.clone(),
    );
    let d = match cache.get().await {
        Ok(d) => d,
        Err(e) => {
            return (
                vec![Check::failed(
                    what,
                    e.to_string(),
                    "check the profile's issuer and discovery_url against the provider's metadata",
                )],
                vec![],
            )
        }
    };
    let hosts = unique_hosts(
        [
            Some(&d.authorization_endpoint),
            Some(&d.token_endpoint),
            Some(&d.jwks_uri),
            d.userinfo_endpoint.as_ref(),
            d.revocation_endpoint.as_ref(),
            d.end_session_endpoint.as_ref(),
            d.device_authorization_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten(),
    );
    let named: Vec<String> = hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect();
    let detail = format!("issuer {}; endpoints on {}", d.issuer, named.join(", "));
    let mut checks = vec![Check::ok(what, detail)];
    if let Some(w) = unrevocable(profile, oidc, d.revocation_endpoint.is_some()) {
        checks.push(w);
    }
    (checks, hosts)
}

/// A warning when sign-out cannot end this device's refresh token: the
/// provider has no revocation endpoint, the profile no logout URL, and it
/// asks for an offline token, which outlives the provider's session.
fn unrevocable(profile: &Profile, oidc: &crate::profile::OidcSettings, revocation: bool) -> Option<Check> {
    let offline = oidc.scopes.iter().any(|s| s == "offline_access");
    (!revocation && oidc.logout_url.is_none() && offline).then(|| {
        Check::warning(
            format!("{} sign-out", profile.name),
            "the provider offers no way to revoke this device's refresh token (no revocation_endpoint): \
             after sign-out it stays valid until it expires",
            "remove offline_access from the profile's scopes if a refresh token that ends with the \
             provider's session is enough, or ask the provider for a revocation endpoint",
        )
    })
}

/// DNS, TCP, then TLS with the profile's verifier; stops at the first step
/// that fails.
async fn check_host(profile: &Profile, host: &str, port: u16) -> Vec<Check> {
    let label = |step: &str| format!("{} {host}:{port} {step}", profile.name);
    let mut checks = Vec::new();
    let addrs: Vec<std::net::SocketAddr> =
        match tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => {
                checks.push(Check::failed(
                    label("dns"),
                    format!("{host} does not resolve: {e}"),
                    "check the host name in the profile, and this machine's DNS (resolvectl status; /etc/resolv.conf)",
                ));
                return checks;
            }
            Err(_) => {
                checks.push(Check::failed(
                    label("dns"),
                    format!("no answer for {host} within {} s", DNS_TIMEOUT.as_secs()),
                    "check this machine's DNS servers (resolvectl status; /etc/resolv.conf)",
                ));
                return checks;
            }
        };
    let shown: Vec<String> = addrs.iter().take(4).map(|a| a.ip().to_string()).collect();
    checks.push(Check::ok(label("dns"), shown.join(", ")));
    let mut last_error = String::from("no address");
    let mut stream = None;
    for addr in addrs.iter().take(3) {
        match tokio::time::timeout(TCP_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some((s, *addr));
                break;
            }
            Ok(Err(e)) => last_error = format!("{addr}: {e}"),
            Err(_) => last_error = format!("{addr}: no answer within {} s", TCP_TIMEOUT.as_secs()),
        }
    }
    let Some((stream, addr)) = stream else {
        checks.push(Check::failed(
            label("tcp"),
            format!("cannot connect: {last_error}"),
            "check that the provider is up and that no firewall or proxy blocks this port",
        ));
        return checks;
    };
    checks.push(Check::ok(label("tcp"), format!("connected to {addr}")));
    checks.push(check_tls(profile, host, stream, label("tls")).await);
    checks
}

/// The engine's own verifier, recording what the server presented.
#[derive(Debug)]
struct Recorder {
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

async fn check_tls(profile: &Profile, host: &str, stream: tokio::net::TcpStream, what: String) -> Check {
    let verifier = tls::root_store(profile.ca_file.as_deref())
        .and_then(|roots| PinnedVerifier::new(roots, profile.pins.clone(), tls::crypto_provider()));
    let verifier = match verifier {
        Ok(v) => v,
        Err(e) => return Check::failed(what, e, "point ca_file at a PEM file with the CA certificate"),
    };
    let recorder = Arc::new(Recorder {
        inner: verifier,
        seen: Mutex::default(),
        pins: profile.pins.clone(),
    });
    let config = match tls::client_config(recorder.clone(), profile.min_tls) {
        Ok(c) => c,
        Err(e) => return Check::failed(what, e, "report this; the TLS configuration could not be built"),
    };
    let Ok(name) = ServerName::try_from(host.to_owned()) else {
        return Check::failed(
            what,
            format!("'{host}' is not a name TLS can check"),
            "use a DNS name or an IP address in the profile's URLs",
        );
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let outcome = tokio::time::timeout(profile.timeout, connector.connect(name, stream)).await;
    let mut facts = std::mem::take(&mut *recorder.seen.lock().unwrap_or_else(|e| e.into_inner()));
    let mut check = match outcome {
        Err(_) => Check::failed(
            &what,
            format!("connected, but no TLS answer within {} s", profile.timeout.as_secs()),
            "the port may not speak TLS, or the server is overloaded; check the URL's port",
        ),
        Ok(Ok(conn)) => {
            let (_, session) = conn.get_ref();
            facts.version = session.protocol_version().map(|v| format!("{v:?}"));
            tls_verdict(profile, &what, &facts)
        }
        Ok(Err(e)) => tls_failure(profile, &what, &e, &facts),
    };
    check.tls = Some(facts);
    check
}

fn tls_verdict(profile: &Profile, what: &str, facts: &TlsFacts) -> Check {
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

fn tls_failure(profile: &Profile, what: &str, error: &std::io::Error, facts: &TlsFacts) -> Check {
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
        format!("; the server presented {} certificate(s)", facts.presented.len())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refresh_token_that_sign_out_cannot_end_is_a_warning_with_its_fix() {
        let mut profile = crate::testkit::oidc_profile("refresh");
        let mut oidc = profile.oidc.take().unwrap();
        oidc.logout_url = None;
        oidc.scopes = vec!["openid".into(), "offline_access".into()];
        let w = unrevocable(&profile, &oidc, false).expect("a warning");
        assert_eq!(w.status, Status::Warning);
        assert!(w.detail.contains("no way to revoke"), "{w:?}");
        assert!(w.fix.as_deref().unwrap_or_default().contains("offline_access"), "{w:?}");
        assert!(
            unrevocable(&profile, &oidc, true).is_none(),
            "with a revocation endpoint"
        );
        oidc.scopes.retain(|s| s != "offline_access");
        assert!(
            unrevocable(&profile, &oidc, false).is_none(),
            "an online token ends with the session"
        );
    }

    #[test]
    fn clock_offsets_within_the_leeway_pass_beyond_the_anomaly_limit_fail() {
        assert_eq!(clock_verdict("c", 0).status, Status::Ok);
        assert_eq!(clock_verdict("c", -30).status, Status::Ok);
        assert_eq!(clock_verdict("c", 31).status, Status::Warning);
        assert_eq!(clock_verdict("c", -300).status, Status::Warning);
        assert_eq!(clock_verdict("c", 301).status, Status::Failed);
        assert!(
            clock_verdict("c", 400).detail.contains("400 s behind"),
            "{:?}",
            clock_verdict("c", 400)
        );
        assert!(clock_verdict("c", -400).detail.contains("400 s ahead of"));
    }

    #[cfg(unix)]
    #[test]
    fn a_data_directory_others_can_read_fails_with_the_chmod_that_fixes_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        assert_eq!(
            check_data_dir(Some(&data))[0].status,
            Status::Ok,
            "not created yet is fine"
        );
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let log = data.join("audit.log");
        std::fs::write(&log, "{}").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
        let checks = check_data_dir(Some(&data));
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");

        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        let checks = check_data_dir(Some(&data));
        let bad = checks
            .iter()
            .find(|c| c.status == Status::Failed)
            .expect("the readable log fails");
        assert_eq!(
            bad.fix.as_deref(),
            Some(format!("chmod 600 {}", log.display()).as_str())
        );

        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let checks = check_data_dir(Some(&data));
        assert_eq!(checks[0].status, Status::Warning, "the app tightens a directory itself");
        assert!(checks[0].detail.contains("mode 0755"), "{checks:?}");
        assert_eq!(
            checks[0].fix.as_deref(),
            Some(format!("chmod 700 {}", data.display()).as_str())
        );

        std::fs::remove_dir_all(&data).unwrap();
        std::os::unix::fs::symlink(dir.path(), &data).unwrap();
        assert_eq!(
            check_data_dir(Some(&data))[0].status,
            Status::Failed,
            "a link is not a directory"
        );
    }

    #[tokio::test]
    async fn the_keychain_probe_leaves_nothing_behind_and_fails_on_a_broken_store() {
        let store = Arc::new(crate::storage::vault::MemoryStore::default());
        let check = check_keychain(store.clone()).await;
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(store.entries().is_empty(), "the probe entry is deleted");

        let broken = Arc::new(crate::storage::vault::MemoryStore::default());
        broken.fail_after_writes(0);
        let check = check_keychain(broken.clone()).await;
        assert_eq!(check.status, Status::Failed, "{check:?}");
        assert!(check.detail.starts_with("writing failed"), "{check:?}");
        assert!(broken.entries().is_empty());
    }

    #[test]
    fn a_broken_config_fails_with_its_fix_and_no_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[profiles.x]\nprovider = \"finhub\"\nbogus = 1\n").unwrap();
        let (check, config) = check_config(Some(&path));
        assert!(config.is_none());
        assert_eq!(check.status, Status::Failed);
        assert!(check.detail.contains("bogus"), "{check:?}");
        assert!(!check.detail.contains("Fix:"), "the fix is its own field: {check:?}");
        assert!(check.fix.as_deref().is_some_and(|f| !f.is_empty()));
        assert_eq!(check_config(None).0.status, Status::Failed);
    }
}
