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
//! audience = "<expected aud of JWT access tokens>"  # optional, default client_id
//! resource = "https://api.example"      # optional RFC 8707 resource
//! redirect_port = 0                     # loopback port, 0 = any free one
//! extend_access = "refresh"             # or "reauthenticate"
//! logout_url = "https://api.transmitsecurity.io/cis/v1/auth/logout"  # optional
//! end_session_in_browser = true         # optional
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

use crate::tls::Pin;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// The default refresh lead: refresh five minutes before expiry. With 1800 s
/// and 3600 s tokens this leaves minutes for retries with backoff; for short
/// tokens the lead is capped at a third of the token's lifetime.
pub const DEFAULT_REFRESH_LEAD: Duration = Duration::from_secs(300);

/// A config file or profile error: names the profile, the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The config file, when the error came from one.
    pub file: Option<PathBuf>,
    /// The profile, when the error is about one.
    pub profile: Option<String>,
    /// The field, when the error is about one.
    pub field: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration")?;
        if let Some(file) = &self.file {
            write!(f, " in {}", file.display())?;
        }
        if let Some(profile) = &self.profile {
            write!(f, ", profile '{profile}'")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field '{field}'")?;
        }
        write!(f, ": {}. Fix: {}", self.problem, self.fix)
    }
}

impl ConfigError {
    fn new(profile: &str, field: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            file: None,
            profile: Some(profile.to_owned()),
            field: Some(field.to_owned()),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// An error about the whole file or the profile selection.
    pub fn general(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            file: None,
            profile: None,
            field: None,
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn in_file(mut self, file: &Path) -> Self {
        self.file = Some(file.to_owned());
        self
    }
}

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
    pub client_secret: Option<crate::token::Secret>,
    /// Always contains `openid`.
    pub scopes: Vec<String>,
    /// Sent as the RFC 8707 `resource` parameter.
    pub resource: Option<String>,
    /// The loopback port of the redirect URI; 0 picks a free one.
    pub redirect_port: u16,
    pub extend_access: ExtendAccess,
    /// Where the discovery document lives.
    pub discovery_url: reqwest::Url,
    /// Transmit's `POST /cis/v1/auth/logout`, called with the access token.
    pub logout_url: Option<reqwest::Url>,
    /// Open the provider's `end_session_endpoint` in the browser at sign-out.
    pub end_session_in_browser: bool,
    /// How long to wait for the browser.
    pub sign_in_timeout: Duration,
    /// Where `call` sends API requests with the access token.
    pub api_base_url: Option<reqwest::Url>,
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

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// One validated profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name in the config file.
    pub name: String,
    pub provider: ProviderKind,
    pub environment: Environment,
    /// The provider's base URL (https).
    pub base_url: reqwest::Url,
    /// Tried in order when the base URL cannot be reached.
    pub backup_urls: Vec<reqwest::Url>,
    /// `X-Tenant-ID`.
    pub tenant_id: String,
    /// SHA-256 SPKI pins; one must match a certificate in the server's chain.
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
    /// The JWT algorithms this profile accepts; the token header never chooses.
    pub algorithms: Vec<Algorithm>,
    /// How long before expiry to refresh.
    pub refresh_lead: Duration,
    /// The lowest TLS version to negotiate.
    pub min_tls: TlsVersion,
    /// The OpenID Connect settings (provider `oidc` only).
    pub oidc: Option<OidcSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    default_profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    provider: String,
    environment: String,
    base_url: Option<String>,
    backup_urls: Option<Vec<String>>,
    tenant_id: Option<String>,
    #[serde(default)]
    pins: Vec<String>,
    ca_file: Option<PathBuf>,
    jwks_url: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    algorithms: Option<Vec<String>>,
    refresh_lead_secs: Option<u64>,
    min_tls: Option<String>,
    // OpenID Connect
    client_id: Option<String>,
    client_secret: Option<String>,
    scopes: Option<Vec<String>>,
    resource: Option<String>,
    redirect_port: Option<u16>,
    extend_access: Option<String>,
    discovery_url: Option<String>,
    logout_url: Option<String>,
    end_session_in_browser: Option<bool>,
    sign_in_timeout_secs: Option<u64>,
    api_base_url: Option<String>,
}

/// The fields only one provider kind takes.
const FINHUB_ONLY: [&str; 3] = ["base_url", "backup_urls", "tenant_id"];
const OIDC_ONLY: [&str; 11] = [
    "client_id",
    "client_secret",
    "scopes",
    "resource",
    "redirect_port",
    "extend_access",
    "discovery_url",
    "logout_url",
    "end_session_in_browser",
    "sign_in_timeout_secs",
    "api_base_url",
];

impl RawProfile {
    /// Whether the field named `name` is set.
    fn has(&self, name: &str) -> bool {
        match name {
            "base_url" => self.base_url.is_some(),
            "backup_urls" => self.backup_urls.is_some(),
            "tenant_id" => self.tenant_id.is_some(),
            "client_id" => self.client_id.is_some(),
            "client_secret" => self.client_secret.is_some(),
            "scopes" => self.scopes.is_some(),
            "resource" => self.resource.is_some(),
            "redirect_port" => self.redirect_port.is_some(),
            "extend_access" => self.extend_access.is_some(),
            "discovery_url" => self.discovery_url.is_some(),
            "logout_url" => self.logout_url.is_some(),
            "end_session_in_browser" => self.end_session_in_browser.is_some(),
            "sign_in_timeout_secs" => self.sign_in_timeout_secs.is_some(),
            "api_base_url" => self.api_base_url.is_some(),
            _ => false,
        }
    }
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
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            ConfigError::general(
                format!("not a valid config file: {}", e.message()),
                "the file holds `default_profile` and `[profiles.NAME]` tables; see the README's Configuration section",
            )
        })?;
        let mut profiles = BTreeMap::new();
        for (name, value) in raw.profiles {
            let raw: RawProfile = value.try_into().map_err(|e: toml::de::Error| {
                let msg = e.message().to_owned();
                let field = msg.split('`').nth(1).unwrap_or("(unknown)").to_owned();
                ConfigError::new(
                    &name,
                    &field,
                    msg,
                    "remove or correct the field; the README's Configuration section lists every field",
                )
            })?;
            profiles.insert(name.clone(), validate(&name, raw, base)?);
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

fn https_url(profile: &str, field: &str, value: &str) -> Result<reqwest::Url, ConfigError> {
    let url = reqwest::Url::parse(value).map_err(|e| {
        ConfigError::new(
            profile,
            field,
            format!("'{value}' is not a URL ({e})"),
            "write a full URL such as https://idp.example.com",
        )
    })?;
    if url.scheme() != "https" {
        return Err(ConfigError::new(
            profile,
            field,
            format!("'{value}' does not use https"),
            "the app talks to identity providers only over pinned TLS: use an https:// URL",
        ));
    }
    if url.host_str().is_none() {
        return Err(ConfigError::new(
            profile,
            field,
            format!("'{value}' has no host"),
            "write a full URL such as https://idp.example.com",
        ));
    }
    Ok(url)
}

fn required<'a>(
    name: &str,
    provider: &str,
    field: &str,
    value: &'a Option<String>,
    fix: &str,
) -> Result<&'a str, ConfigError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(ConfigError::new(name, field, format!("{field} is empty"), fix)),
        None => Err(ConfigError::new(
            name,
            field,
            format!("a {provider} profile needs {field}"),
            fix,
        )),
    }
}

fn validate(name: &str, raw: RawProfile, base: &Path) -> Result<Profile, ConfigError> {
    let provider = match raw.provider.as_str() {
        "finhub" => ProviderKind::Finhub,
        "oidc" => ProviderKind::Oidc,
        other => {
            return Err(ConfigError::new(
                name,
                "provider",
                format!("unknown provider '{other}'"),
                "use provider = \"finhub\" or provider = \"oidc\"",
            ))
        }
    };
    let (foreign, other): (&[&str], &str) = match provider {
        ProviderKind::Finhub => (&OIDC_ONLY, "oidc"),
        ProviderKind::Oidc => (&FINHUB_ONLY, "finhub"),
    };
    if let Some(field) = foreign.iter().find(|f| raw.has(f)) {
        return Err(ConfigError::new(
            name,
            field,
            format!(
                "{field} applies to {other} profiles only, and this profile's provider is {}",
                provider.as_str()
            ),
            format!("remove {field}, or set provider = \"{other}\""),
        ));
    }
    let environment = match raw.environment.as_str() {
        "playground" => Environment::Playground,
        "integration" => Environment::Integration,
        "production" => Environment::Production,
        other => {
            return Err(ConfigError::new(
                name,
                "environment",
                format!("unknown environment '{other}'"),
                "use \"playground\", \"integration\" or \"production\"",
            ))
        }
    };
    let pins = raw
        .pins
        .iter()
        .map(|p| {
            p.parse::<Pin>().map_err(|problem| {
                ConfigError::new(
                    name,
                    "pins",
                    problem,
                    "write each pin as sha256/<base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo>",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let min_pins = environment.min_pins();
    if pins.len() < min_pins {
        let problem = if environment == Environment::Production {
            format!(
                "production needs at least two pins (current and backup); {} given",
                pins.len()
            )
        } else {
            "no pin is given; every connection must be pinned".to_owned()
        };
        return Err(ConfigError::new(
            name,
            "pins",
            problem,
            "add the SHA-256 SPKI hash of the provider's current key, and of its backup key, as sha256/<base64>",
        ));
    }
    let min_tls = match raw.min_tls.as_deref() {
        None => environment.min_tls(),
        Some("1.2") => TlsVersion::V1_2,
        Some("1.3") => TlsVersion::V1_3,
        Some(other) => {
            return Err(ConfigError::new(
                name,
                "min_tls",
                format!("unknown TLS version '{other}'"),
                "use \"1.2\" or \"1.3\"",
            ))
        }
    };
    if min_tls < environment.min_tls() {
        return Err(ConfigError::new(
            name,
            "min_tls",
            "production allows TLS 1.3 only",
            "remove min_tls or set it to \"1.3\"",
        ));
    }
    let ca_file = raw
        .ca_file
        .clone()
        .map(|p| if p.is_relative() { base.join(p) } else { p });
    if let Some(ca) = &ca_file {
        if !ca.is_file() {
            return Err(ConfigError::new(
                name,
                "ca_file",
                format!("{} does not exist or is not a file", ca.display()),
                "point ca_file at a PEM file with the extra CA certificate, or remove it",
            ));
        }
    }
    let jwks_url = raw
        .jwks_url
        .as_deref()
        .map(|u| https_url(name, "jwks_url", u))
        .transpose()?;
    let algorithms = match &raw.algorithms {
        None => vec![Algorithm::RS256, Algorithm::ES256],
        Some(list) if list.is_empty() => {
            return Err(ConfigError::new(name, "algorithms", "the list is empty", "list the algorithms your provider signs with, e.g. [\"RS256\"]"))
        }
        Some(list) => list
            .iter()
            .map(|a| parse_algorithm(a).map_err(|problem| ConfigError::new(name, "algorithms", problem, "use asymmetric algorithms only: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let refresh_lead = match raw.refresh_lead_secs {
        None => DEFAULT_REFRESH_LEAD,
        Some(0) => {
            return Err(ConfigError::new(
                name,
                "refresh_lead_secs",
                "a lead of 0 refreshes only after the token expired",
                "use a lead of at least a few seconds (default 300)",
            ))
        }
        Some(s) if Duration::from_secs(s) >= environment.token_lifetime() => {
            return Err(ConfigError::new(
                name,
                "refresh_lead_secs",
                format!(
                    "a lead of {s} s is not shorter than the {} s token lifetime",
                    environment.token_lifetime().as_secs()
                ),
                "use a lead well below the token lifetime (default 300)",
            ))
        }
        Some(s) => Duration::from_secs(s),
    };
    let mut profile = Profile {
        name: name.to_owned(),
        provider,
        environment,
        base_url: reqwest::Url::parse("https://unset.invalid").expect("a valid URL"),
        backup_urls: Vec::new(),
        tenant_id: String::new(),
        pins,
        ca_file,
        jwks_url,
        issuer: String::new(),
        audience: String::new(),
        algorithms,
        refresh_lead,
        min_tls,
        oidc: None,
    };
    match provider {
        ProviderKind::Finhub => finhub_fields(&mut profile, raw)?,
        ProviderKind::Oidc => oidc_fields(&mut profile, raw)?,
    }
    Ok(profile)
}

fn finhub_fields(p: &mut Profile, raw: RawProfile) -> Result<(), ConfigError> {
    let name = p.name.clone();
    let name = name.as_str();
    let base = required(
        name,
        "finhub",
        "base_url",
        &raw.base_url,
        "set base_url to the provider's https:// address",
    )?;
    p.base_url = https_url(name, "base_url", base)?;
    p.backup_urls = raw
        .backup_urls
        .unwrap_or_default()
        .iter()
        .map(|u| https_url(name, "backup_urls", u))
        .collect::<Result<Vec<_>, _>>()?;
    p.tenant_id = required(
        name,
        "finhub",
        "tenant_id",
        &raw.tenant_id,
        "set tenant_id to the tenant you sign in to",
    )?
    .to_owned();
    if p.jwks_url.is_none() {
        p.jwks_url = Some(
            p.base_url
                .join("/.well-known/jwks.json")
                .map_err(|e| ConfigError::new(name, "jwks_url", e.to_string(), "set jwks_url explicitly"))?,
        );
    }
    p.issuer = raw.issuer.unwrap_or_else(|| base.trim_end_matches('/').to_owned());
    p.audience = required(
        name,
        "finhub",
        "audience",
        &raw.audience,
        "set audience to the `aud` your provider puts in tokens",
    )?
    .to_owned();
    Ok(())
}

fn oidc_fields(p: &mut Profile, raw: RawProfile) -> Result<(), ConfigError> {
    let name = p.name.clone();
    let name = name.as_str();
    let issuer = required(
        name,
        "oidc",
        "issuer",
        &raw.issuer,
        "set issuer to the provider's issuer identifier, e.g. https://idp.example.com",
    )?;
    let issuer_url = https_url(name, "issuer", issuer)?;
    if issuer_url.query().is_some() || issuer_url.fragment().is_some() {
        return Err(ConfigError::new(
            name,
            "issuer",
            "an issuer has no query or fragment (OpenID Connect Discovery 2)",
            "remove the ?… or #… part",
        ));
    }
    let client_id = required(
        name,
        "oidc",
        "client_id",
        &raw.client_id,
        "set client_id to the client id your provider registered for this app",
    )?
    .to_owned();
    let client_secret = match raw.client_secret {
        Some(s) if s.is_empty() => {
            return Err(ConfigError::new(
                name,
                "client_secret",
                "client_secret is empty",
                "remove it: native apps are public clients with PKCE",
            ))
        }
        s => s.map(crate::token::Secret::new),
    };
    let mut scopes = raw
        .scopes
        .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\'))
    {
        return Err(ConfigError::new(
            name,
            "scopes",
            format!("'{bad}' is not a scope"),
            "list scopes one per string, e.g. [\"openid\", \"offline_access\"]",
        ));
    }
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".into());
    }
    let extend_access = match raw.extend_access.as_deref() {
        None | Some("refresh") => ExtendAccess::Refresh,
        Some("reauthenticate") => ExtendAccess::Reauthenticate,
        Some(other) => {
            return Err(ConfigError::new(
                name,
                "extend_access",
                format!("unknown policy '{other}'"),
                "use \"refresh\" or \"reauthenticate\"",
            ))
        }
    };
    let discovery_url = match raw.discovery_url.as_deref() {
        Some(u) => https_url(name, "discovery_url", u)?,
        None => https_url(
            name,
            "issuer",
            &format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
        )?,
    };
    let logout_url = raw
        .logout_url
        .as_deref()
        .map(|u| https_url(name, "logout_url", u))
        .transpose()?;
    let api_base_url = raw
        .api_base_url
        .as_deref()
        .map(|u| https_url(name, "api_base_url", u))
        .transpose()?;
    let sign_in_timeout = match raw.sign_in_timeout_secs {
        None => Duration::from_secs(300),
        Some(s) if (10..=3600).contains(&s) => Duration::from_secs(s),
        Some(s) => {
            return Err(ConfigError::new(
                name,
                "sign_in_timeout_secs",
                format!("{s} s is outside 10..3600"),
                "use a timeout between 10 and 3600 seconds (default 300)",
            ))
        }
    };
    p.base_url = api_base_url.clone().unwrap_or_else(|| issuer_url.clone());
    p.issuer = issuer.to_owned();
    // Access tokens name their API in `aud`; with no audience configured the
    // client id is expected, as most providers do for first-party apps.
    p.audience = match raw.audience.as_deref().map(str::trim) {
        Some("") => {
            return Err(ConfigError::new(
                name,
                "audience",
                "the audience is empty",
                "remove it (the client id is then expected) or set it to your API's identifier",
            ))
        }
        Some(a) => a.to_owned(),
        None => client_id.clone(),
    };
    p.oidc = Some(OidcSettings {
        client_id,
        client_secret,
        scopes,
        resource: raw.resource.filter(|r| !r.trim().is_empty()),
        redirect_port: raw.redirect_port.unwrap_or(0),
        extend_access,
        discovery_url,
        logout_url,
        end_session_in_browser: raw.end_session_in_browser.unwrap_or(true),
        sign_in_timeout,
        api_base_url,
    });
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    const PIN_A: &str = "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const PIN_B: &str = "sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=";

    fn profile(env: &str, extra: &str) -> String {
        format!(
            "[profiles.p]\nprovider = \"finhub\"\nenvironment = \"{env}\"\nbase_url = \"https://idp.example\"\ntenant_id = \"t1\"\naudience = \"app\"\n{extra}\n"
        )
    }

    fn err(text: &str) -> ConfigError {
        Config::parse(text, Path::new(".")).expect_err("config should be refused")
    }

    #[test]
    fn integration_profile_gets_defaults() {
        let c = Config::parse(
            &profile("integration", &format!("pins = [\"{PIN_A}\"]")),
            Path::new("."),
        )
        .unwrap();
        let p = c.profile(None).unwrap();
        assert_eq!(p.environment, Environment::Integration);
        assert_eq!(p.min_tls, TlsVersion::V1_2);
        assert_eq!(p.refresh_lead, DEFAULT_REFRESH_LEAD);
        assert_eq!(p.issuer, "https://idp.example");
        assert_eq!(
            p.jwks_url.as_ref().unwrap().as_str(),
            "https://idp.example/.well-known/jwks.json"
        );
        assert_eq!(p.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
    }

    #[test]
    fn production_needs_two_pins() {
        let e = err(&profile("production", &format!("pins = [\"{PIN_A}\"]")));
        assert_eq!(e.profile.as_deref(), Some("p"));
        assert_eq!(e.field.as_deref(), Some("pins"));
        assert!(e.to_string().contains("at least two pins"), "{e}");
        let ok = Config::parse(
            &profile("production", &format!("pins = [\"{PIN_A}\", \"{PIN_B}\"]")),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(ok.profile(Some("p")).unwrap().min_tls, TlsVersion::V1_3);
    }

    #[test]
    fn production_refuses_tls12() {
        let e = err(&profile(
            "production",
            &format!("pins = [\"{PIN_A}\", \"{PIN_B}\"]\nmin_tls = \"1.2\""),
        ));
        assert_eq!(e.field.as_deref(), Some("min_tls"));
        assert!(e.fix.contains("1.3"));
    }

    #[test]
    fn unknown_field_is_named() {
        let e = err(&profile("integration", &format!("pins = [\"{PIN_A}\"]\npinz = []")));
        assert_eq!(e.profile.as_deref(), Some("p"));
        assert_eq!(e.field.as_deref(), Some("pinz"));
    }

    #[test]
    fn bad_values_name_field_and_fix() {
        let cases = [
            (profile("staging", &format!("pins = [\"{PIN_A}\"]")), "environment"),
            (profile("integration", "pins = [\"md5/abc\"]"), "pins"),
            (profile("integration", ""), "pins"),
            (profile("integration", &format!("pins = [\"{PIN_A}\"]\nalgorithms = [\"HS256\"]")), "algorithms"),
            (profile("integration", &format!("pins = [\"{PIN_A}\"]\nalgorithms = [\"none\"]")), "algorithms"),
            (profile("integration", &format!("pins = [\"{PIN_A}\"]\nrefresh_lead_secs = 0")), "refresh_lead_secs"),
            (profile("integration", &format!("pins = [\"{PIN_A}\"]\nca_file = \"/nonexistent/ca.pem\"")), "ca_file"),
            (
                format!("[profiles.p]\nprovider = \"finhub\"\nenvironment = \"integration\"\nbase_url = \"http://idp.example\"\ntenant_id = \"t\"\naudience = \"a\"\npins = [\"{PIN_A}\"]\n"),
                "base_url",
            ),
        ];
        for (text, field) in cases {
            let e = err(&text);
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert!(!e.fix.is_empty());
        }
    }

    #[test]
    fn missing_profile_lists_the_known_ones() {
        let c = Config::parse(
            &profile("integration", &format!("pins = [\"{PIN_A}\"]")),
            Path::new("."),
        )
        .unwrap();
        let e = c.profile(Some("nope")).unwrap_err();
        assert!(e.to_string().contains("use one of: p"), "{e}");
    }

    fn oidc(extra: &str) -> String {
        format!("[profiles.o]\nprovider = \"oidc\"\nenvironment = \"integration\"\nissuer = \"https://idp.example/tenant\"\nclient_id = \"desktop\"\npins = [\"{PIN_A}\"]\n{extra}\n")
    }

    #[test]
    fn oidc_profile_gets_defaults() {
        let c = Config::parse(&oidc("scopes = [\"profile\", \"offline_access\"]"), Path::new(".")).unwrap();
        let p = c.profile(None).unwrap();
        assert_eq!(p.provider, ProviderKind::Oidc);
        assert_eq!(p.issuer, "https://idp.example/tenant");
        assert_eq!(
            p.audience, "desktop",
            "access tokens are for the client unless audience says otherwise"
        );
        assert_eq!(p.jwks_url, None, "from discovery");
        let o = p.oidc.as_ref().unwrap();
        assert_eq!(
            o.scopes,
            vec!["openid", "profile", "offline_access"],
            "openid is always asked for"
        );
        assert_eq!(
            o.discovery_url.as_str(),
            "https://idp.example/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            (o.redirect_port, o.extend_access, o.end_session_in_browser),
            (0, ExtendAccess::Refresh, true)
        );
        assert!(o.client_secret.is_none());
        assert_eq!(o.sign_in_timeout, Duration::from_secs(300));
        let c = Config::parse(
            &oidc("extend_access = \"reauthenticate\"\naudience = \"https://api.example\"\nredirect_port = 8765"),
            Path::new("."),
        )
        .unwrap();
        let p = c.profile(None).unwrap();
        let o = p.oidc.as_ref().unwrap();
        assert_eq!((o.extend_access, o.redirect_port), (ExtendAccess::Reauthenticate, 8765));
        assert_eq!(p.audience, "https://api.example");
    }

    #[test]
    fn oidc_errors_name_field_and_fix() {
        let cases = [
            (oidc("extend_access = \"sometimes\""), "extend_access"),
            (oidc("sign_in_timeout_secs = 5"), "sign_in_timeout_secs"),
            (oidc("tenant_id = \"t\""), "tenant_id"),
            (oidc("base_url = \"https://idp.example\""), "base_url"),
            (oidc("client_secret = \"\""), "client_secret"),
            (oidc("scopes = [\"open id\"]"), "scopes"),
            (oidc("logout_url = \"http://idp.example/logout\""), "logout_url"),
            (oidc("").replace("client_id = \"desktop\"\n", ""), "client_id"),
            (
                oidc("").replace(
                    "issuer = \"https://idp.example/tenant\"",
                    "issuer = \"http://idp.example\"",
                ),
                "issuer",
            ),
            (
                oidc("").replace("issuer = \"https://idp.example/tenant\"\n", ""),
                "issuer",
            ),
            (
                profile("integration", &format!("pins = [\"{PIN_A}\"]\nclient_id = \"x\"")),
                "client_id",
            ),
        ];
        for (text, field) in cases {
            let e = err(&text);
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
            assert!(!e.fix.is_empty(), "{e}");
        }
    }
}
