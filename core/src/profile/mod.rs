//! Profiles: named provider settings from a TOML config file.
//!
//! ```toml
//! default_profile = "playground"          # optional
//!
//! [profiles.integration]
//! provider = "finhub"
//! environment = "integration"            # playground | integration | production
//! base_url = "https://finhub.example"
//! backup_urls = ["https://finhub-dr.example"]
//! tenant_id = "tenant-acme"
//! pins = ["sha256/<base64 SPKI hash>", "sha256/<backup>"]
//! ca_file = "ca.pem"                     # optional, relative to this file
//! jwks_url = "https://finhub.example/.well-known/jwks.json"  # optional
//! issuer = "https://finhub.example"      # optional, defaults to base_url
//! audience = "session-manager"
//! algorithms = ["RS256", "ES256"]        # optional, defaults to both
//! refresh_lead_secs = 300                # optional
//! min_tls = "1.3"                        # optional: "1.2" or "1.3"
//! ```
//!
//! An OpenID Connect profile (Transmit Security or any compliant provider):
//!
//! ```toml
//! [profiles.transmit]
//! provider = "oidc"
//! environment = "production"
//! issuer = "https://userid.security"    # compared exactly with discovery's
//! discovery_url = "https://api.transmitsecurity.io/cis/oidc/.well-known/openid-configuration"  # optional
//! client_id = "<client id>"
//! # client_secret = "…"                 # discouraged: a native app cannot keep a secret
//! scopes = ["openid", "email", "offline_access"]  # openid is always sent
//! audience = "<expected aud of JWT access tokens>"  # optional: only then are they inspected
//! resource = "https://api.example"      # optional RFC 8707 resource
//! redirect_port = 0                     # loopback port, 0 = any free one
//! extend_access = "refresh"             # or "reauthenticate"
//! logout_url = "https://api.transmitsecurity.io/cis/v1/auth/logout"  # optional
//! end_session_in_browser = true         # optional
//! end_session_method = "post"           # or "get", for providers that answer a POST with 404
//! sign_in_timeout_secs = 300            # optional
//! api_base_url = "https://api.example"  # optional, for `call`
//! pins = ["sha256/…", "sha256/…"]
//! ```
//!
//! The environment sets the defaults of the design brief: Integration tokens
//! live 3600 s, Production tokens 1800 s; Production requires TLS 1.3 and at
//! least two pins (current and backup) and refuses anything less at load time.
//! Every error names the profile, the field and the fix; unknown fields are
//! errors.

mod hint;
mod raw;
mod validate;

pub use crate::error::ConfigError;
pub use validate::{CHUNK_SEPARATOR, DEFAULT_TIMEOUT_SECS, MAX_RESPONSE_BYTES, MAX_TIMEOUT_SECS};

use crate::net::pin::Pin;
use crate::token::ClientSecret;
use jsonwebtoken::Algorithm;
use raw::{RawFile, RawProfile};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The default refresh lead: refresh five minutes before expiry. With 1800 s
/// and 3600 s tokens this leaves minutes for retries with backoff; for short
/// tokens the lead is capped at a third of the token's lifetime.
pub const DEFAULT_REFRESH_LEAD: Duration = Duration::from_secs(300);

/// The identity provider's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// The FinHub session API.
    Finhub,
    /// A standards-compliant OpenID Connect provider (Transmit Security, …).
    Oidc,
}

impl ProviderKind {
    /// The name as the config file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Finhub => "finhub",
            ProviderKind::Oidc => "oidc",
        }
    }
}

/// How an OpenID Connect session is extended before its access token expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtendAccess {
    /// Use the refresh token (needs the `offline_access` scope or the
    /// provider's equivalent).
    Refresh,
    /// Sign in again: silently (`prompt=none`) when the provider allows it,
    /// else the person is asked to. Transmit's advice: refresh tokens are for
    /// offline access, not for extending sessions.
    Reauthenticate,
}

/// The OpenID Connect settings of a profile.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub client_id: String,
    /// Only for confidential clients; a native app cannot keep a secret
    /// (RFC 8252 section 8.5), so public clients with PKCE are the norm.
    pub client_secret: Option<ClientSecret>,
    /// Always contains `openid`.
    pub scopes: Vec<String>,
    /// Sent as the RFC 8707 `resource` parameter.
    pub resource: Option<String>,
    /// The loopback port of the redirect URI; 0 picks a free one.
    pub redirect_port: u16,
    pub extend_access: ExtendAccess,
    /// With `offline_access` among the scopes, ask for `prompt=consent` in
    /// interactive sign-ins: OpenID Connect Core 11 has providers grant
    /// offline access only then (unless other conditions allow it).
    /// `offline_access_prompt = false` for providers that grant refresh
    /// tokens without it and would show a needless consent page.
    pub offline_access_prompt: bool,
    /// `max_age` (Core 3.1.2.1): the person's authentication at the
    /// provider may be at most this old; the ID token's `auth_time` is
    /// then required and checked.
    pub max_age: Option<Duration>,
    /// Where the discovery document lives.
    pub discovery_url: reqwest::Url,
    /// Transmit's `POST /cis/v1/auth/logout`, called with the access token.
    pub logout_url: Option<reqwest::Url>,
    /// Open the provider's `end_session_endpoint` in the browser at sign-out.
    pub end_session_in_browser: bool,
    /// How the browser asks for it: a POST keeps the ID token out of URLs;
    /// some certified providers take only a GET (RP-Initiated Logout 1.0
    /// requires both, not every provider reads it so).
    pub end_session_method: EndSessionMethod,
    /// How long to wait for the browser.
    pub sign_in_timeout: Duration,
    /// Where `call` sends API requests with the access token.
    pub api_base_url: Option<reqwest::Url>,
}

/// How the browser sends the end-session request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSessionMethod {
    /// A form POST from a one-shot loopback page: no token in any URL.
    Post,
    /// A form GET from the same page: the ID token is in the provider's URL
    /// (the browser's history), still never in a command line.
    Get,
}

/// The provider's environment; it sets defaults and requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// The built-in Playground identity provider (QA, demos, tests).
    Playground,
    /// Integration: 3600 s tokens, basic requirements.
    Integration,
    /// Production: 1800 s tokens, TLS 1.3 only, at least two pins.
    Production,
}

impl Environment {
    /// The default idle timeout and absolute session limit: none in the
    /// Playground; 8 h idle and 7 days in Integration; 30 min idle and
    /// 12 h in Production.
    pub fn session_timeouts(self) -> (Option<Duration>, Option<Duration>) {
        let h = |n: u64| Some(Duration::from_secs(n * 3600));
        match self {
            Environment::Playground => (None, None),
            Environment::Integration => (h(8), h(7 * 24)),
            Environment::Production => (Some(Duration::from_secs(30 * 60)), h(12)),
        }
    }

    /// The token lifetime this environment documents.
    pub fn token_lifetime(self) -> Duration {
        match self {
            Environment::Production => Duration::from_secs(1800),
            Environment::Integration | Environment::Playground => Duration::from_secs(3600),
        }
    }

    /// The fewest pins a profile of this environment may have.
    pub fn min_pins(self) -> usize {
        match self {
            Environment::Production => 2,
            _ => 1,
        }
    }

    /// The lowest TLS version this environment allows.
    pub fn min_tls(self) -> TlsVersion {
        match self {
            Environment::Production => TlsVersion::V1_3,
            _ => TlsVersion::V1_2,
        }
    }

    /// The environment's name as the config file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Playground => "playground",
            Environment::Integration => "integration",
            Environment::Production => "production",
        }
    }
}

pub use crate::net::tls::{PinMode, TlsVersion};

/// One validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name in the config file.
    pub name: String,
    pub provider: ProviderKind,
    pub environment: Environment,
    /// The provider's base URL (https).
    pub base_url: reqwest::Url,
    /// Tried in order when the base URL fails (see `provider::failover`).
    pub backup_urls: Vec<reqwest::Url>,
    /// How long to stay on a backup before probing the primary again (the
    /// first time; it doubles at each failed probe, up to 5 minutes).
    pub failback: Duration,
    /// `X-Tenant-ID`.
    pub tenant_id: String,
    /// What the login tells the provider this client is called, for
    /// session lists (`device_name`; default: the host name and the app).
    pub device_name: String,
    /// SHA-256 SPKI pins, distinct; one must match a certificate of the
    /// certification path WebPKI verified (leaf, intermediate or anchor).
    pub pins: Vec<Pin>,
    /// An extra CA (PEM) trusted besides the public WebPKI roots.
    pub ca_file: Option<PathBuf>,
    /// Where the provider publishes its signing keys (OIDC: from discovery
    /// unless set).
    pub jwks_url: Option<reqwest::Url>,
    /// The expected `iss` claim.
    pub issuer: String,
    /// The expected `aud` claim.
    pub audience: String,
    /// Whether the access token is checked as a JWT (signature, `iss`,
    /// `aud` = `audience`, times): always for FinHub; for OpenID Connect
    /// only when the profile names an `audience`, since the client must
    /// otherwise treat the access token as opaque (RFC 9068 section 6).
    pub check_access_token: bool,
    /// The JWT algorithms this profile accepts; the token header never chooses.
    pub algorithms: Vec<Algorithm>,
    /// How long before expiry to refresh.
    pub refresh_lead: Duration,
    /// The lowest TLS version to negotiate.
    pub min_tls: TlsVersion,
    /// Whether a pin mismatch stops the connection (always in Production)
    /// or is only reported (TrustKit's report-only model, for rollout).
    pub pin_mode: PinMode,
    /// No activity in the app and no API call for this long signs the
    /// session out (`idle_timeout_secs`; the environment's default; `None`
    /// when 0).
    pub idle_timeout: Option<Duration>,
    /// The session ends this long after the sign-in, whatever happens
    /// (`absolute_timeout_secs`; the environment's default; `None` when 0).
    pub absolute_timeout: Option<Duration>,
    /// More live sessions than this is an anomaly (`anomaly_max_sessions`,
    /// default 3).
    pub anomaly_max_sessions: usize,
    /// Production only: the anomaly kinds that sign the session out
    /// (`anomaly_sign_out`, default none).
    pub anomaly_sign_out: Vec<crate::insight::anomaly::Kind>,
    /// How long one request may take, from sending it to the last byte of
    /// the answer (`timeout_secs`, default 30).
    pub timeout: Duration,
    /// The largest API answer `call` reads (`max_response_bytes`, default
    /// 16 MiB). Protocol answers have a fixed 1 MiB cap.
    pub max_response_bytes: u64,
    /// The OpenID Connect settings (provider `oidc` only).
    pub oidc: Option<OidcSettings>,
}

/// A loaded config file: named profiles.
#[derive(Debug, Clone)]
pub struct Config {
    /// The profiles, by name.
    pub profiles: BTreeMap<String, Profile>,
    /// The profile to use when none is named.
    pub default_profile: Option<String>,
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::general(
                format!("cannot read the config file: {e}"),
                "check the path given with --config or SESSION_MANAGER_CONFIG",
            )
            .in_file(path)
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| e.in_file(path))
    }

    /// Parse and validate config text; relative paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| match hint::unknown_field(e.message()) {
            Some((field, Some(meant))) => ConfigError::general(
                format!("there is no top-level field `{field}`"),
                format!("did you mean `{meant}`?"),
            ),
            _ => ConfigError::general(
                format!("not a valid config file: {}", e.message()),
                "the file holds `default_profile` and `[profiles.NAME]` tables; see docs/configuration.md",
            ),
        })?;
        let mut profiles = BTreeMap::new();
        for (name, value) in raw.profiles {
            let raw: RawProfile = value.try_into().map_err(|e: toml::de::Error| {
                let msg = e.message().to_owned();
                match hint::unknown_field(&msg) {
                    Some((field, Some(meant))) => ConfigError::new(
                        &name,
                        &field,
                        format!("there is no field `{field}`"),
                        format!("did you mean `{meant}`?"),
                    ),
                    Some((field, None)) => ConfigError::new(
                        &name,
                        &field,
                        format!("there is no field `{field}`"),
                        "remove it; docs/configuration.md lists every field",
                    ),
                    None => {
                        let field = msg.split('`').nth(1).unwrap_or("(unknown)").to_owned();
                        ConfigError::new(
                            &name,
                            &field,
                            msg,
                            "correct the field; docs/configuration.md lists every field",
                        )
                    }
                }
            })?;
            profiles.insert(name.clone(), validate::validate(&name, raw, base)?);
        }
        if profiles.is_empty() {
            return Err(ConfigError::general(
                "the file defines no profile",
                "add a [profiles.NAME] table",
            ));
        }
        if let Some(default) = &raw.default_profile {
            if !profiles.contains_key(default) {
                return Err(ConfigError::general(
                    format!("default_profile names '{default}', which the file does not define"),
                    format!(
                        "use one of: {}",
                        profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(Self {
            profiles,
            default_profile: raw.default_profile,
        })
    }

    /// The named profile, or the default one, or the only one.
    /// Add `other`'s profiles that this config does not name (the app's
    /// Playground beside a config file). The profile used when none is
    /// named stays this config's: its default, or its only profile; `other`'s
    /// default only when this config has no profile at all.
    pub fn add_missing(&mut self, other: Config) {
        if self.default_profile.is_none() {
            self.default_profile = match self.profiles.len() {
                0 => other.default_profile,
                1 => self.profiles.keys().next().cloned(),
                _ => None,
            };
        }
        for (name, profile) in other.profiles {
            self.profiles.entry(name).or_insert(profile);
        }
    }

    pub fn profile(&self, name: Option<&str>) -> Result<&Profile, ConfigError> {
        let names = || self.profiles.keys().cloned().collect::<Vec<_>>().join(", ");
        let wanted = match name.or(self.default_profile.as_deref()) {
            Some(n) => n,
            None if self.profiles.len() == 1 => self.profiles.keys().next().map(String::as_str).unwrap_or_default(),
            None => {
                return Err(ConfigError::general(
                    "several profiles are defined and none was chosen",
                    format!("pass --profile with one of: {}", names()),
                ))
            }
        };
        self.profiles.get(wanted).ok_or_else(|| {
            ConfigError::general(
                format!("there is no profile named '{wanted}'"),
                format!("use one of: {}", names()),
            )
        })
    }
}

/// Parse an algorithm name, refusing `none` and the symmetric HMAC family: a
/// provider's tokens are verified with its public keys only.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("'none' would accept unsigned tokens".to_owned());
    }
    let alg = Algorithm::from_str(name).map_err(|_| format!("unknown algorithm '{name}'"))?;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(format!(
            "'{name}' is a shared-secret algorithm; provider tokens must be verified with public keys"
        )),
        other => Ok(other),
    }
}

impl Profile {
    /// Where the provider is, as a list of profiles shows it: the issuer
    /// (OpenID Connect) or the API's address (FinHub).
    pub fn address(&self) -> String {
        match self.provider {
            ProviderKind::Oidc => self.issuer.clone(),
            _ => self.base_url.to_string(),
        }
    }

    /// The pinned client for this profile: its pins (report-only or
    /// enforced), extra CA, minimum TLS version, timeout and API body cap.
    pub fn pinned_client(&self) -> Result<crate::net::tls::PinnedClient, crate::error::Error> {
        crate::net::tls::PinnedClient::with_options(
            &self.pins,
            self.ca_file.as_deref(),
            self.min_tls,
            self.pin_mode == PinMode::ReportOnly,
            self.timeout,
            self.max_response_bytes,
        )
        .map_err(|problem| {
            crate::error::Error::Config(ConfigError::new(
                &self.name,
                "ca_file",
                problem,
                "point ca_file at a PEM file with the CA certificate",
            ))
        })
    }
}

#[cfg(test)]
mod tests;
