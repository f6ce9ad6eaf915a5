//! From a [`RawProfile`] to a [`Profile`]: one named step per concern, each
//! returning the error that names the profile, the field and the fix.

mod provider;

use super::raw::{RawProfile, FINHUB_ONLY, OIDC_ONLY};
use super::{
    parse_algorithm, ConfigError, Environment, ExtendAccess, OidcSettings, PinMode, Profile, ProviderKind, TlsVersion,
    DEFAULT_REFRESH_LEAD,
};
use crate::net::pin::Pin;
use crate::token::ClientSecret;
use jsonwebtoken::Algorithm;
use provider::{finhub_fields, oidc_fields};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The character that separates a profile name from its keychain chunk
/// numbers (`profile:NAME#generation#index`), so no name may contain it.
pub const CHUNK_SEPARATOR: char = '#';
/// The default request timeout of a profile.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
/// The largest request timeout a profile may set.
pub const MAX_TIMEOUT_SECS: u64 = 300;
/// The largest API answer a profile may accept.
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// Validate the profile `name`; relative paths resolve against `base`.
pub(super) fn validate(name: &str, raw: RawProfile, base: &Path) -> Result<Profile, ConfigError> {
    profile_name(name)?;
    let provider = provider_kind(name, &raw.provider)?;
    reject_foreign_fields(name, provider, &raw)?;
    let environment = environment(name, &raw.environment)?;
    let mut profile = Profile {
        name: name.to_owned(),
        provider,
        environment,
        pins: pins(name, &raw.pins, environment)?,
        min_tls: min_tls(name, raw.min_tls.as_deref(), environment)?,
        pin_mode: pin_mode(name, raw.pin_mode.as_deref(), environment)?,
        idle_timeout: session_timeout(
            name,
            "idle_timeout_secs",
            raw.idle_timeout_secs,
            environment.session_timeouts().0,
            10,
        )?,
        anomaly_max_sessions: match raw.anomaly_max_sessions {
            None => 3,
            Some(n) if (1..=1000).contains(&n) => n,
            Some(n) => {
                return Err(ConfigError::new(
                    name,
                    "anomaly_max_sessions",
                    format!("{n} is outside 1 to 1000"),
                    "set how many sessions at once are usual for you (default 3)",
                ))
            }
        },
        anomaly_sign_out: anomaly_sign_out(name, raw.anomaly_sign_out.as_deref(), environment)?,
        absolute_timeout: session_timeout(
            name,
            "absolute_timeout_secs",
            raw.absolute_timeout_secs,
            environment.session_timeouts().1,
            10,
        )?,
        ca_file: ca_file(name, raw.ca_file.as_deref(), base)?,
        jwks_url: optional_url(name, "jwks_url", raw.jwks_url.as_deref())?,
        algorithms: algorithms(name, raw.algorithms.as_deref())?,
        refresh_lead: refresh_lead(name, raw.refresh_lead_secs, environment)?,
        timeout: timeout(name, raw.timeout_secs)?,
        max_response_bytes: max_response_bytes(name, raw.max_response_bytes)?,
        // Set by the provider's own fields below.
        base_url: reqwest::Url::parse("https://unset.invalid").expect("a valid URL"),
        backup_urls: Vec::new(),
        failback: Duration::from_secs(15),
        device_name: String::new(),
        tenant_id: String::new(),
        issuer: String::new(),
        audience: String::new(),
        check_access_token: true,
        oidc: None,
    };
    match provider {
        ProviderKind::Finhub => finhub_fields(&mut profile, raw)?,
        ProviderKind::Oidc => oidc_fields(&mut profile, raw)?,
    }
    Ok(profile)
}

/// A name that is one keychain account: not empty, no chunk separator, no
/// control characters.
fn profile_name(name: &str) -> Result<(), ConfigError> {
    let bad = if name.trim().is_empty() {
        Some("the profile name is empty".to_owned())
    } else if name.contains(CHUNK_SEPARATOR) {
        Some(format!(
            "the name contains '{CHUNK_SEPARATOR}', which separates a profile from its keychain entries"
        ))
    } else if name.chars().any(char::is_control) {
        Some("the name contains a control character".to_owned())
    } else {
        None
    };
    match bad {
        None => Ok(()),
        Some(problem) => Err(ConfigError::new(
            name,
            "(profile name)",
            problem,
            "rename the [profiles.NAME] table: letters, digits, '-', '_' and '.' are safe",
        )),
    }
}

fn provider_kind(name: &str, value: &str) -> Result<ProviderKind, ConfigError> {
    match value {
        "finhub" => Ok(ProviderKind::Finhub),
        "oidc" => Ok(ProviderKind::Oidc),
        other => Err(ConfigError::new(
            name,
            "provider",
            format!("unknown provider '{other}'"),
            "use provider = \"finhub\" or provider = \"oidc\"",
        )),
    }
}

/// A field of the other provider kind is a mistake worth naming.
fn reject_foreign_fields(name: &str, provider: ProviderKind, raw: &RawProfile) -> Result<(), ConfigError> {
    let (foreign, other): (&[&str], &str) = match provider {
        ProviderKind::Finhub => (&OIDC_ONLY, "oidc"),
        ProviderKind::Oidc => (&FINHUB_ONLY, "finhub"),
    };
    match foreign.iter().find(|f| raw.has(f)) {
        None => Ok(()),
        Some(field) => Err(ConfigError::new(
            name,
            field,
            format!(
                "{field} applies to {other} profiles only, and this profile's provider is {}",
                provider.as_str()
            ),
            format!("remove {field}, or set provider = \"{other}\""),
        )),
    }
}

fn environment(name: &str, value: &str) -> Result<Environment, ConfigError> {
    match value {
        "playground" => Ok(Environment::Playground),
        "integration" => Ok(Environment::Integration),
        "production" => Ok(Environment::Production),
        other => Err(ConfigError::new(
            name,
            "environment",
            format!("unknown environment '{other}'"),
            "use \"playground\", \"integration\" or \"production\"",
        )),
    }
}

/// Parsed pins, duplicates dropped, at least as many distinct ones as the
/// environment asks for (Production: a current and a backup key).
fn pins(name: &str, raw: &[String], environment: Environment) -> Result<Vec<Pin>, ConfigError> {
    let mut pins: Vec<Pin> = Vec::new();
    for text in raw {
        let pin = text.parse::<Pin>().map_err(|problem| {
            ConfigError::new(
                name,
                "pins",
                problem,
                "write each pin as sha256/<base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo>",
            )
        })?;
        if !pins.contains(&pin) {
            pins.push(pin);
        }
    }
    if pins.len() >= environment.min_pins() {
        return Ok(pins);
    }
    let problem = match (environment, raw.len()) {
        (_, 0) => "no pin is given; every connection must be pinned".to_owned(),
        (Environment::Production, n) if n > pins.len() => format!(
            "production needs at least two different pins (current and backup); the {n} given hold {} distinct",
            pins.len()
        ),
        (Environment::Production, n) => {
            format!("production needs at least two pins (current and backup); {n} given")
        }
        _ => "no pin is given; every connection must be pinned".to_owned(),
    };
    Err(ConfigError::new(
        name,
        "pins",
        problem,
        "add the SHA-256 SPKI hash of the provider's current key, and of its backup key, as sha256/<base64>",
    ))
}

fn min_tls(name: &str, value: Option<&str>, environment: Environment) -> Result<TlsVersion, ConfigError> {
    let version = match value {
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
    if version < environment.min_tls() {
        return Err(ConfigError::new(
            name,
            "min_tls",
            "production allows TLS 1.3 only",
            "remove min_tls or set it to \"1.3\"",
        ));
    }
    Ok(version)
}

fn ca_file(name: &str, value: Option<&Path>, base: &Path) -> Result<Option<PathBuf>, ConfigError> {
    let Some(path) = value else { return Ok(None) };
    let path = if path.is_relative() {
        base.join(path)
    } else {
        path.to_owned()
    };
    if !path.is_file() {
        return Err(ConfigError::new(
            name,
            "ca_file",
            format!("{} does not exist or is not a file", path.display()),
            "point ca_file at a PEM file with the extra CA certificate, or remove it",
        ));
    }
    Ok(Some(path))
}

fn algorithms(name: &str, value: Option<&[String]>) -> Result<Vec<Algorithm>, ConfigError> {
    match value {
        None => Ok(vec![Algorithm::RS256, Algorithm::ES256]),
        Some([]) => Err(ConfigError::new(
            name,
            "algorithms",
            "the list is empty",
            "list the algorithms your provider signs with, e.g. [\"RS256\"]",
        )),
        Some(list) => list
            .iter()
            .map(|a| {
                parse_algorithm(a).map_err(|problem| {
                    ConfigError::new(
                        name,
                        "algorithms",
                        problem,
                        "use asymmetric algorithms only: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA",
                    )
                })
            })
            .collect(),
    }
}

fn refresh_lead(name: &str, value: Option<u64>, environment: Environment) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(DEFAULT_REFRESH_LEAD),
        Some(0) => Err(ConfigError::new(
            name,
            "refresh_lead_secs",
            "a lead of 0 refreshes only after the token expired",
            "use a lead of at least a few seconds (default 300)",
        )),
        Some(s) if s >= environment.token_lifetime().as_secs() => Err(ConfigError::new(
            name,
            "refresh_lead_secs",
            format!(
                "a lead of {s} s is not shorter than the {} s token lifetime",
                environment.token_lifetime().as_secs()
            ),
            "use a lead well below the token lifetime (default 300)",
        )),
        Some(s) => Ok(Duration::from_secs(s)),
    }
}

fn timeout(name: &str, value: Option<u64>) -> Result<Duration, ConfigError> {
    match value.unwrap_or(DEFAULT_TIMEOUT_SECS) {
        s @ 1..=MAX_TIMEOUT_SECS => Ok(Duration::from_secs(s)),
        s => Err(ConfigError::new(
            name,
            "timeout_secs",
            format!("{s} s is outside 1..{MAX_TIMEOUT_SECS}"),
            format!("use a timeout between 1 and {MAX_TIMEOUT_SECS} seconds (default {DEFAULT_TIMEOUT_SECS})"),
        )),
    }
}

fn max_response_bytes(name: &str, value: Option<u64>) -> Result<u64, ConfigError> {
    match value.unwrap_or(crate::net::tls::DEFAULT_API_BODY_LIMIT) {
        n @ 1024..=MAX_RESPONSE_BYTES => Ok(n),
        n => Err(ConfigError::new(
            name,
            "max_response_bytes",
            format!("{n} bytes is outside 1024..{MAX_RESPONSE_BYTES}"),
            format!(
                "set the largest API answer to accept, between 1 KiB and 256 MiB (default {} bytes)",
                crate::net::tls::DEFAULT_API_BODY_LIMIT
            ),
        )),
    }
}

fn optional_url(name: &str, field: &str, value: Option<&str>) -> Result<Option<reqwest::Url>, ConfigError> {
    value.map(|u| https_url(name, field, u)).transpose()
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

/// The anomaly kinds that sign out: Production profiles only, known kinds.
fn anomaly_sign_out(
    name: &str,
    kinds: Option<&[String]>,
    environment: Environment,
) -> Result<Vec<crate::insight::anomaly::Kind>, ConfigError> {
    let Some(kinds) = kinds else { return Ok(Vec::new()) };
    if environment != Environment::Production && !kinds.is_empty() {
        return Err(ConfigError::new(
            name,
            "anomaly_sign_out",
            "signing out on anomalies is for production profiles",
            "remove anomaly_sign_out here; elsewhere findings are shown and audited",
        ));
    }
    kinds
        .iter()
        .map(|k| {
            crate::insight::anomaly::Kind::parse(k).ok_or_else(|| {
                let known: Vec<&str> = crate::insight::anomaly::Kind::ALL.iter().map(|k| k.as_str()).collect();
                ConfigError::new(
                    name,
                    "anomaly_sign_out",
                    format!("'{k}' is not an anomaly kind"),
                    format!("use some of {}", known.join(", ")),
                )
            })
        })
        .collect()
}

/// A session timeout: the environment's default when unset, none when 0,
/// else at least `min` seconds and at most 90 days.
fn session_timeout(
    name: &str,
    field: &str,
    value: Option<u64>,
    default: Option<Duration>,
    min: u64,
) -> Result<Option<Duration>, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Ok(None),
        Some(s) if (min..=90 * 24 * 3600).contains(&s) => Ok(Some(Duration::from_secs(s))),
        Some(s) => Err(ConfigError::new(
            name,
            field,
            format!("{s} s is outside {min} s to 90 days"),
            "set a number of seconds in that range, or 0 to turn it off",
        )),
    }
}

fn pin_mode(name: &str, value: Option<&str>, environment: Environment) -> Result<PinMode, ConfigError> {
    match (value, environment) {
        (None | Some("enforce"), _) => Ok(PinMode::Enforce),
        (Some("report-only"), Environment::Production) => Err(ConfigError::new(
            name,
            "pin_mode",
            "report-only is not allowed in production",
            "production always enforces pins: remove pin_mode, or try the new pins in an integration profile first",
        )),
        (Some("report-only"), _) => Ok(PinMode::ReportOnly),
        (Some(other), _) => Err(ConfigError::new(
            name,
            "pin_mode",
            format!("'{other}' is not a pin mode"),
            "use \"enforce\" (the default) or \"report-only\"",
        )),
    }
}

/// `max_age` (Core 3.1.2.1): how recent the person's authentication at the
/// provider must be, at most a year.
fn max_age(name: &str, value: Option<u64>) -> Result<Option<Duration>, ConfigError> {
    match value {
        Some(s) if s > 366 * 24 * 3600 => Err(ConfigError::new(
            name,
            "max_age_secs",
            format!("{s} s is more than a year"),
            "use the number of seconds a sign-in at the provider may be old (0 asks for a fresh one), or remove it",
        )),
        s => Ok(s.map(Duration::from_secs)),
    }
}

fn sign_in_timeout(name: &str, value: Option<u64>) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(Duration::from_secs(300)),
        Some(s) if (10..=3600).contains(&s) => Ok(Duration::from_secs(s)),
        Some(s) => Err(ConfigError::new(
            name,
            "sign_in_timeout_secs",
            format!("{s} s is outside 10..3600"),
            "use a timeout between 10 and 3600 seconds (default 300)",
        )),
    }
}

/// The `aud` expected of JWT access tokens when the profile asks for them to
/// be checked (it names an `audience`); without one the client id stands in,
/// but access tokens are then not inspected (RFC 9068 section 6).
fn audience(name: &str, value: Option<&str>, client_id: &str) -> Result<String, ConfigError> {
    match value.map(str::trim) {
        Some("") => Err(ConfigError::new(
            name,
            "audience",
            "the audience is empty",
            "remove it (the client id is then expected) or set it to your API's identifier",
        )),
        Some(a) => Ok(a.to_owned()),
        None => Ok(client_id.to_owned()),
    }
}

/// `<host name> · Session Manager`: the host name from the kernel (Linux),
/// `HOSTNAME`, or `this computer`.
pub(super) fn default_device_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(60)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this computer".into());
    format!("{host} · Session Manager")
}
