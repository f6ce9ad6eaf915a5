//! The Playground: a local identity provider for QA, demos and tests.
//!
//! It serves the FinHub session API over real TLS on 127.0.0.1 with a CA and
//! a leaf certificate generated at start (so pins are real), signs tokens
//! with RS256 or ES256 keys published as a JWKS, rotates refresh tokens and
//! detects their reuse, and has an admin API for fault injection. See
//! docs/qa-guide.md.

mod admin;
pub mod browser;
mod finhub;
mod keys;
mod oidc;
mod reply;
mod server;
pub use server::BODY_TIMEOUT;
mod state;
mod tls;

pub use jsonwebtoken::Algorithm;
pub use oidc::{CLIENT_ID, CONFIDENTIAL_CLIENT_ID, CONFIDENTIAL_CLIENT_SECRET};
pub use state::{Origin, RecordedRequest, SessionInfo};

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The environment the Playground imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Everything allowed: TLS 1.2 and 1.3, unlimited sessions.
    Playground,
    /// Production rules: TLS 1.3 only, a concurrent-session limit per user.
    Production,
}

/// The OpenID Connect side's switches: off is strict (what certified
/// providers do), on is the lenient behaviour some real providers have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// Opaque access tokens instead of RFC 9068 JWTs.
    OpaqueAccessTokens,
    /// Answer and advertise `prompt=none` (on by default).
    PromptNone,
    /// Grant `offline_access` without `prompt=consent`.
    LenientOfflineAccess,
    /// Put an ID token in refresh answers.
    IdTokenOnRefresh,
    /// Send Keycloak's `refresh_expires_in`.
    RefreshExpiresIn,
    /// Opaque refresh tokens instead of JWTs.
    OpaqueRefreshTokens,
    /// Misbehave: ignore `max_age` and reuse an old browser sign-in.
    IgnoreMaxAge,
    /// JWT access tokens whose `aud` is the list of granted scopes (a
    /// certified provider's reading of RFC 9068).
    AccessTokenAudScopes,
    /// No revocation endpoint: refresh tokens outlive sign-out.
    NoRevocationEndpoint,
    /// The end-session endpoint takes GET only: a POST is answered 404 (as at a certified provider).
    EndSessionGetOnly,
    /// The revocation endpoint answers a public client (no secret) 401 invalid_client.
    RevocationRefusesPublicClients,
    /// A refresh token the provider does not know is answered 400 invalid_request, not invalid_grant.
    UnknownRefreshInvalidRequest,
    /// Refresh answers carry no new refresh token: the one presented stays valid.
    NoRotation,
    /// Refresh tokens also without `offline_access`: online ones, which end
    /// with the provider's session (at end-session), as Keycloak's do.
    OnlineRefreshTokens,
    /// Dynamic Client Registration (RFC 7591 and 7592) at `/oidc/register`.
    Registration,
}

/// How to start a Playground.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// Lifetime of issued session tokens.
    pub token_lifetime: Duration,
    /// RS256 or ES256.
    pub signing_alg: Algorithm,
    /// 0 picks a free port.
    pub port: u16,
    /// Where to write `ca.pem`; a fresh folder under the temp dir if `None`.
    pub dir: Option<PathBuf>,
    /// Extra bytes in each session token (to test large tokens).
    pub token_padding: usize,
    /// Concurrent sessions per user in production mode.
    pub session_limit: usize,
    /// A refresh token not used for this long expires.
    pub refresh_idle: Duration,
    /// No refresh token lives longer than this after the sign-in.
    pub refresh_absolute: Duration,
    /// Also serve a backup endpoint on a second port, over the same session
    /// store (the config's `backup_urls`); `/admin/primary` takes the
    /// primary down and up.
    pub backup: bool,
    /// Addresses besides 127.0.0.1 that the certificate also names. The
    /// Playground still listens on 127.0.0.1 only: this is for a forwarder
    /// on such an address (a test across a network namespace's link).
    pub extra_addresses: Vec<std::net::IpAddr>,
    /// Keep the state (port, certificates, signing keys, admin token,
    /// sessions) in `dir` across restarts; see `state::saved`. Needs `dir`.
    pub keep_state: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mode: Mode::Playground,
            token_lifetime: Duration::from_secs(3600),
            signing_alg: Algorithm::RS256,
            port: 0,
            dir: None,
            token_padding: 0,
            session_limit: 2,
            refresh_idle: Duration::from_secs(8 * 3600),
            refresh_absolute: Duration::from_secs(24 * 3600),
            backup: false,
            extra_addresses: Vec::new(),
            keep_state: false,
        }
    }
}

/// A demo user.
#[derive(Debug, Clone, Serialize)]
pub struct DemoUser {
    pub username: String,
    pub password: String,
    pub tenant: String,
    pub customer: String,
    /// For the OpenID Connect side's ID tokens and userinfo.
    pub name: String,
    pub email: String,
}

/// The tenant every demo user belongs to.
pub const TENANT: &str = "tenant-acme";
/// The audience of issued tokens.
pub const AUDIENCE: &str = "session-manager";

/// The demo users; their credentials are printed at start.
pub fn demo_users() -> Vec<DemoUser> {
    [
        ("alice", "alice-pw-1", "cust-1001", "Alice Adams"),
        ("bob", "bob-pw-2", "cust-1002", "Bob Brown"),
    ]
    .into_iter()
    .map(|(u, p, c, n)| DemoUser {
        username: u.into(),
        password: p.into(),
        tenant: TENANT.into(),
        customer: c.into(),
        name: n.into(),
        email: format!("{u}@playground.test"),
    })
    .collect()
}

/// What the Playground prints with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub base_url: String,
    /// Path of the CA certificate (PEM).
    pub ca_cert: String,
    /// The leaf key's pin and a backup pin.
    pub pins: Vec<String>,
    pub users: Vec<DemoUser>,
    pub admin_url: String,
    /// The bearer secret every admin request needs
    /// (`Authorization: Bearer <admin_token>`), made at start.
    pub admin_token: String,
    /// A complete config file with the profiles `playground` (FinHub) and
    /// `playground-oidc` (OpenID Connect).
    pub config: String,
    /// The backup endpoint, when started with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_url: Option<String>,
    /// The OpenID Connect issuer, `{base_url}/oidc`.
    pub oidc_issuer: String,
}

/// A running Playground. Dropping it stops the server.
pub struct Playground {
    info: Info,
    state: Arc<state::AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    backup_stop: Option<tokio::sync::oneshot::Sender<server::Shutdown>>,
    /// The folder made for `ca.pem` when the caller named none: removed
    /// with the Playground (a test suite starts hundreds).
    _made_dir: Option<MadeDir>,
}

/// A folder removed when dropped.
struct MadeDir(PathBuf);

impl Drop for MadeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The file the admin API's bearer token is written to, in the
/// Playground's folder (0600): QA reads it there (or in the app's About and
/// QA panel); it is not printed at start.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Write `bytes` to a new private file (0600) at `path`, replacing what is
/// there without following a link planted at it: whatever is at the path is
/// removed (a symbolic link itself, not what it points to), then the file
/// is created exclusively, which fails rather than follow a link that
/// appears in between.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(bytes)
}

/// A new private file (0600) at `path`, whatever was there removed first
/// (a planted link itself, not what it points to) and the file created
/// exclusively, so a link appearing in between is refused, not followed.
pub(crate) fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The certificates and keys of a saved state, if they suit `options`.
fn restored(saved: &state::saved::Saved, options: &Options) -> Result<(tls::Pki, keys::KeyRing), String> {
    let pki = tls::Pki::load(&saved.pki)?;
    if pki.extra != options.extra_addresses {
        return Err("its certificate names other addresses than asked for".into());
    }
    Ok((pki, keys::KeyRing::load(&saved.keys)?))
}

impl Playground {
    /// Start a Playground (must be called inside a tokio runtime).
    pub async fn start(options: Options) -> std::io::Result<Self> {
        let (dir, made_dir) = match &options.dir {
            Some(d) => {
                // Private, like the data directory it usually sits in
                // (sessionctl doctor checks both).
                let mut made = std::fs::DirBuilder::new();
                made.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut made, 0o700);
                made.create(d)?;
                (d.clone(), None)
            }
            None => {
                let d = std::env::temp_dir().join(format!(
                    "session-manager-playground-{}-{}",
                    std::process::id(),
                    rand::random::<u32>()
                ));
                std::fs::create_dir(&d)?;
                (d.clone(), Some(MadeDir(d)))
            }
        };
        let keep_state = options.keep_state && options.dir.is_some();
        let saved = match keep_state {
            true => state::saved::read(&dir).and_then(|saved| match restored(&saved, &options) {
                Ok((pki, keys)) => Some((saved, pki, keys)),
                Err(why) => state::saved::set_aside(&dir.join(state::saved::FILE), &why),
            }),
            false => None,
        };
        let (pki, keys, saved) = match saved {
            Some((saved, pki, keys)) => (pki, Some(keys), Some(saved)),
            None => (
                tls::Pki::generate(&options.extra_addresses).map_err(std::io::Error::other)?,
                None,
                None,
            ),
        };
        let ca_path = dir.join("ca.pem");
        write_private(&ca_path, pki.ca_pem.as_bytes())?;
        // The port it had, so the config written before still points here.
        let listener = match (options.port, &saved) {
            (0, Some(saved)) => match tokio::net::TcpListener::bind(("127.0.0.1", saved.port)).await {
                Ok(listener) => listener,
                Err(e) => {
                    eprintln!(
                        "warning: the Playground's port {} is taken ({e}); it listens on another one, and profiles written for the old port must be written again",
                        saved.port
                    );
                    tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?
                }
            },
            (port, _) => tokio::net::TcpListener::bind(("127.0.0.1", port)).await?,
        };
        let port = listener.local_addr()?.port();
        let base_url = format!("https://127.0.0.1:{port}");
        // An ES256 Playground signs with its EC key at once and publishes the
        // RSA key when it is ready; an RS256 one waits for its RSA key.
        let keys = match keys {
            Some(keys) if keys.rsa.is_some() || options.signing_alg == Algorithm::ES256 => keys,
            Some(mut keys) => {
                keys.set_rsa(
                    tokio::task::spawn_blocking(keys::SigningKey::rsa)
                        .await
                        .map_err(std::io::Error::other)?,
                );
                keys
            }
            None if options.signing_alg == Algorithm::ES256 => keys::KeyRing::ec_first(),
            None => tokio::task::spawn_blocking(keys::KeyRing::generate)
                .await
                .map_err(std::io::Error::other)?,
        };
        let needs_rsa = keys.rsa.is_none();
        let pins = vec![pki.leaf_pin.clone(), pki.backup_pin.clone()];
        let backup = match options.backup {
            true => Some(tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?),
            false => None,
        };
        let backup_url = match &backup {
            Some(l) => Some(format!("https://127.0.0.1:{}", l.local_addr()?.port())),
            None => None,
        };
        let config = config_text(&base_url, backup_url.as_deref(), &pins, &ca_path, options.mode);
        let mut state = state::AppState::new(&options, base_url.clone(), keys, config.clone());
        if let Some(saved) = saved {
            state.admin_token = saved.admin_token;
            *state::lock(&state.oidc.registered) = saved.registered;
            state.restore_sessions(saved.sessions, saved.refresh_tokens);
        }
        if keep_state {
            state.keeper = Some(state::saved::Keeper::new(dir.clone(), port, pki.save()));
            state.save()?;
        }
        let state = Arc::new(state);
        write_private(&dir.join(ADMIN_TOKEN_FILE), state.admin_token.as_bytes())?;
        let server_config = pki.server_config(options.mode).map_err(std::io::Error::other)?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        if needs_rsa {
            let state = state.clone();
            tokio::spawn(async move {
                if let Ok(rsa) = tokio::task::spawn_blocking(keys::SigningKey::rsa).await {
                    state.add_rsa_key(rsa);
                }
            });
        }
        let backup_stop = backup.map(|l| {
            let (stop, stopped) = tokio::sync::oneshot::channel();
            server::serve(l, server_config.clone(), state.clone(), stopped);
            stop
        });
        tokio::spawn(primary(listener, port, server_config, state.clone(), stopped));
        Ok(Self {
            info: Info {
                admin_url: format!("{base_url}/admin"),
                admin_token: state.admin_token.clone(),
                oidc_issuer: format!("{base_url}/oidc"),
                backup_url,
                base_url,
                ca_cert: ca_path.display().to_string(),
                pins,
                users: demo_users(),
                config,
            },
            state,
            stop: Some(stop),
            backup_stop,
            _made_dir: made_dir,
        })
    }

    /// What the Playground prints with `--json`.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The base URL, `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.info.base_url
    }

    /// The config file text (profile `playground`).
    pub fn config(&self) -> &str {
        &self.info.config
    }

    /// Every session token and refresh token issued so far (for leak tests;
    /// not exposed over HTTP).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.state.issued_tokens()
    }

    /// Every API request received, with secrets replaced by fingerprints.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorded()
    }

    /// How many refresh requests reached the refresh endpoint.
    pub fn refresh_calls(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path == "/api/v2/auth/refresh")
            .count()
    }

    /// Fail the next `n` refreshes with 503.
    pub fn fail_next_refreshes(&self, n: u32) {
        self.state.fail_refreshes.store(n, Ordering::SeqCst);
    }

    /// Answer the next `n` device-grant polls of the token endpoint with 503
    /// (a provider under load).
    pub fn fail_next_device_polls(&self, n: u32) {
        self.state.fail_device_polls.store(n, Ordering::SeqCst);
    }

    /// Answer the next `n` JWKS requests (FinHub's and OpenID Connect's)
    /// with 503.
    pub fn fail_next_jwks(&self, n: u32) {
        self.state.fail_jwks.store(n, Ordering::SeqCst);
    }

    /// Delay every API answer by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.state
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Set the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state
            .lifetime_ms
            .store(lifetime.as_millis() as u64, Ordering::SeqCst);
    }

    /// Revoke every session of `user` (all sessions when `None`); returns how many.
    pub fn revoke(&self, user: Option<&str>) -> usize {
        self.state.revoke(None, user)
    }

    /// Set the refresh tokens' idle and absolute lifetimes (tokens issued
    /// from now on).
    pub fn set_refresh_lifetimes(&self, idle: Duration, absolute: Duration) {
        let l = &self.state.refresh_lifetimes;
        l.idle_secs.store(idle.as_secs().max(1), Ordering::SeqCst);
        l.absolute_secs.store(absolute.as_secs().max(1), Ordering::SeqCst);
    }

    /// Stop honouring every FinHub session token issued so far (the API
    /// answers 401; refresh tokens still work).
    pub fn reject_current_access_tokens(&self) {
        self.state.access_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Rotate the signing keys; the old ones stay published one more
    /// generation.
    pub async fn rotate_keys(&self) {
        self.state.rotate_keys(true).await
    }

    /// Rotate the signing keys and drop the old ones at once: tokens signed
    /// before no longer verify.
    pub async fn rotate_keys_dropping_old(&self) {
        self.state.rotate_keys(false).await
    }

    /// Turn one of the OpenID Connect side's switches on or off.
    pub fn set(&self, switch: Switch, on: bool) {
        let s = &self.state.oidc.switches;
        let flag = match switch {
            Switch::OpaqueAccessTokens => &s.opaque_access_tokens,
            Switch::PromptNone => &s.prompt_none,
            Switch::LenientOfflineAccess => &s.lenient_offline_access,
            Switch::IdTokenOnRefresh => &s.id_token_on_refresh,
            Switch::RefreshExpiresIn => &s.refresh_expires_in,
            Switch::OpaqueRefreshTokens => &s.opaque_refresh_tokens,
            Switch::IgnoreMaxAge => &s.ignore_max_age,
            Switch::AccessTokenAudScopes => &s.access_token_aud_scopes,
            Switch::NoRevocationEndpoint => &s.no_revocation_endpoint,
            Switch::EndSessionGetOnly => &s.end_session_get_only,
            Switch::RevocationRefusesPublicClients => &s.revocation_refuses_public_clients,
            Switch::UnknownRefreshInvalidRequest => &s.unknown_refresh_invalid_request,
            Switch::NoRotation => &s.no_rotation,
            Switch::OnlineRefreshTokens => &s.online_refresh_tokens,
            Switch::Registration => &s.registration,
        };
        flag.store(on, Ordering::SeqCst);
    }

    /// Issue opaque OIDC access tokens instead of JWTs.
    pub fn set_opaque_access_tokens(&self, on: bool) {
        self.set(Switch::OpaqueAccessTokens, on)
    }

    /// Answer (and advertise) `prompt=none`.
    pub fn set_prompt_none(&self, on: bool) {
        self.set(Switch::PromptNone, on)
    }

    /// Ask every device client waiting now to poll 5 s more slowly: its
    /// next poll sooner than that is answered `slow_down` (a provider
    /// under load).
    pub fn demand_slower_polling(&self) {
        for d in self
            .state
            .oidc
            .devices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            d.interval += 5;
        }
    }

    /// The polling interval the device authorization endpoint asks for.
    pub fn set_device_interval(&self, interval: Duration) {
        self.state
            .oidc
            .switches
            .device_interval_secs
            .store(interval.as_secs(), Ordering::SeqCst);
    }

    /// Register one loopback port for the redirect URI and refuse any other
    /// (as some certified providers do); 0 accepts any port again.
    pub fn set_registered_redirect_port(&self, port: u16) {
        self.state
            .oidc
            .switches
            .registered_redirect_port
            .store(u64::from(port), Ordering::SeqCst);
    }

    /// For how long a rotated refresh token may still be presented without
    /// counting as reuse.
    pub fn set_reuse_grace(&self, grace: Duration) {
        self.state
            .refresh_lifetimes
            .reuse_grace_secs
            .store(grace.as_secs(), Ordering::SeqCst);
    }

    /// Offset the Playground's clock (token times, `Date`) by `seconds`.
    pub fn set_clock_offset(&self, seconds: i64) {
        self.state.clock_offset_secs.store(seconds, Ordering::SeqCst);
    }

    /// Forget every refresh token issued so far (a provider whose token
    /// store was reset): each is then unknown.
    pub fn forget_refresh_tokens(&self) {
        state::lock(&self.state.refresh_index).clear();
        self.state.save_or_warn();
    }

    /// Make the next refresh answer after `delay`, once.
    pub fn slow_next_refresh(&self, delay: Duration) {
        self.state
            .slow_next_refresh_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// How many requests reached `path`.
    pub fn calls_to(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }

    /// Take the primary endpoint down (`false`: its port refuses
    /// connections; requests in flight get their answers) or bring it up
    /// again on the same port. Returns once the change took effect.
    pub async fn set_primary(&self, up: bool) {
        state::set_primary(&self.state, up).await;
    }

    /// The IP and location the next FinHub login reports.
    pub fn set_next_login_origin(&self, ip: &str, city: &str, country: &str) {
        *state::lock(&self.state.next_origin) = Some(state::Origin {
            ip: ip.into(),
            city: city.into(),
            country: country.into(),
        });
    }

    /// The sessions the Playground knows.
    /// The clients registered through `/oidc/register`: each `{client_id,
    /// client_name, redirect_uris}`.
    pub fn registered_clients(&self) -> Vec<serde_json::Value> {
        match oidc::registered_clients(&self.state) {
            serde_json::Value::Array(list) => list,
            _ => Vec::new(),
        }
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.state.sessions()
    }
}

/// The primary listener's supervisor: serves while `/admin/primary` (or
/// [`Playground::set_primary`]) wants it, closes the port gracefully when
/// taken down, binds the same port again when brought up, and reports each
/// change once it took effect. Ends with the Playground.
async fn primary(
    listener: tokio::net::TcpListener,
    port: u16,
    config: Arc<rustls::ServerConfig>,
    state: Arc<state::AppState>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let mut wanted = state.primary_wanted.subscribe();
    let mut listener = Some(listener);
    loop {
        if let Some(l) = listener.take() {
            let (stop, serving) = tokio::sync::oneshot::channel();
            let handle = server::serve(l, config.clone(), state.clone(), serving);
            state.primary_serving.send_replace(true);
            let down = tokio::select! {
                r = wanted.wait_for(|up| !*up) => r.is_ok(),
                _ = &mut stopped => false,
            };
            if !down {
                let _ = stop.send(server::Shutdown::Hard);
                return;
            }
            let _ = stop.send(server::Shutdown::Graceful);
            let _ = handle.await;
            state.primary_serving.send_replace(false);
        }
        let up = tokio::select! {
            r = wanted.wait_for(|up| *up) => r.is_ok(),
            _ = &mut stopped => false,
        };
        if !up {
            return;
        }
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => listener = Some(l),
            // The port was taken meanwhile: stay down, and say so.
            Err(_) => {
                state.primary_wanted.send_replace(false);
                state.primary_serving.send_replace(false);
            }
        }
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.backup_stop.take() {
            let _ = stop.send(server::Shutdown::Hard);
        }
    }
}

fn config_text(base_url: &str, backup_url: Option<&str>, pins: &[String], ca: &Path, mode: Mode) -> String {
    let environment = match mode {
        Mode::Playground => "playground",
        Mode::Production => "production",
    };
    let pins = pins.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "# Generated by the Playground at {base_url}.\n\
         default_profile = \"playground\"\n\n\
         [profiles.playground]\n\
         provider = \"finhub\"\n\
         environment = \"{environment}\"\n\
         base_url = \"{base_url}\"\n\
         {backup}\
         tenant_id = \"{TENANT}\"\n\
         pins = [{pins}]\n\
         ca_file = {ca}\n\
         jwks_url = \"{base_url}/.well-known/jwks.json\"\n\
         issuer = \"{base_url}\"\n\
         audience = \"{AUDIENCE}\"\n\
         algorithms = [\"RS256\", \"ES256\"]\n\n\
         # OpenID Connect: sign in through the browser (the Playground's page).\n\
         [profiles.playground-oidc]\n\
         provider = \"oidc\"\n\
         environment = \"{environment}\"\n\
         issuer = \"{base_url}/oidc\"\n\
         client_id = \"{CLIENT_ID}\"\n\
         scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]\n\
         extend_access = \"refresh\"\n\
         logout_url = \"{base_url}/cis/v1/auth/logout\"\n\
         pins = [{pins}]\n\
         ca_file = {ca}\n\
         algorithms = [\"RS256\", \"ES256\"]\n",
        ca = toml_string(&ca.display().to_string()),
        backup = backup_url
            .map(|b| format!("backup_urls = [\"{b}\"]\n"))
            .unwrap_or_default(),
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
