//! Diagnostics for a support team: `sessionctl diagnostics` and the app's
//! "Copy diagnostics". Versions, platform, keychain backend, the profiles
//! (pins shortened, secrets and URL credentials left out), the clock
//! offset against each provider, and the newest diagnostic log lines and
//! audit records. Nothing in it can sign anyone in: no token, password,
//! client secret or whole pin ever enters it (a test scans it).

use crate::profile::{Config, PinMode, Profile, TlsVersion};
use crate::storage::audit::{AuditLog, AuditRecord};
use crate::storage::vault::SecretStore;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long diagnostics wait for a provider's clock. Support wants the
/// report now, and a provider that answers slower than this is itself the
/// finding. All providers are asked at once.
pub const CLOCK_DEADLINE: Duration = Duration::from_secs(5);

/// What to collect.
pub struct Inputs {
    /// Where the profiles came from (shown only).
    pub config_file: Option<String>,
    /// The profiles to describe and whose clocks to read.
    pub profiles: Vec<Profile>,
    /// Why the config file could not be read, if it could not.
    pub config_error: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// The keychain (only its backend is named; nothing is read).
    pub store: Arc<dyn SecretStore>,
    /// How many log lines and audit records.
    pub lines: usize,
    /// Which front asks, with its version (`sessionctl 0.1.0`).
    pub front: String,
}

/// The collected diagnostics.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostics {
    pub generated_at: chrono::DateTime<chrono::Utc>,
    pub front: String,
    pub engine_version: String,
    pub platform: String,
    pub keychain: String,
    pub config_file: Option<String>,
    /// Why the config could not be read, if it could not.
    pub config_error: Option<String>,
    pub profiles: Vec<ProfileSummary>,
    pub clock: Vec<ClockReading>,
    pub data_dir: Option<String>,
    /// The newest diagnostic log lines, oldest first.
    pub log: Vec<String>,
    /// The newest audit records, newest first.
    pub audit: Vec<AuditRecord>,
}

/// A profile as support needs to see it.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileSummary {
    pub name: String,
    pub provider: &'static str,
    pub environment: &'static str,
    pub base_url: String,
    pub backup_urls: Vec<String>,
    pub issuer: String,
    /// Each pin's first characters only.
    pub pins: Vec<String>,
    pub pin_mode: &'static str,
    pub min_tls: &'static str,
    pub ca_file: Option<String>,
    pub timeout_secs: u64,
    pub idle_timeout_secs: Option<u64>,
    pub absolute_timeout_secs: Option<u64>,
    /// OpenID Connect: the client id and scopes; whether a client secret is
    /// set (never its value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    pub client_secret_set: bool,
}

/// The provider's clock against ours.
#[derive(Debug, Clone, Serialize)]
pub struct ClockReading {
    pub profile: String,
    /// The provider's clock minus ours, in seconds.
    pub offset_secs: Option<i64>,
    /// Why there is no reading, or what it means.
    pub note: String,
}

/// The profiles of a config file, or why there are none.
pub fn load_profiles(path: Option<&std::path::Path>) -> (Vec<Profile>, Option<String>) {
    match path {
        None => (
            Vec::new(),
            Some("no config file given and no default location".to_owned()),
        ),
        Some(path) => match Config::load(path) {
            Ok(c) => (c.profiles.into_values().collect(), None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        },
    }
}

/// A pin as diagnostics show it: enough to tell pins apart, not the value.
pub fn shortened_pin(pin: &crate::net::pin::Pin) -> String {
    let whole = pin.to_string();
    let cut: String = whole.chars().take("sha256/".len() + 8).collect();
    format!("{cut}…")
}

/// A URL without user name, password, query or fragment.
fn shown_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

impl ProfileSummary {
    pub fn of(p: &Profile) -> Self {
        Self {
            name: p.name.clone(),
            provider: p.provider.as_str(),
            environment: p.environment.as_str(),
            base_url: shown_url(&p.base_url),
            backup_urls: p.backup_urls.iter().map(shown_url).collect(),
            issuer: p.issuer.clone(),
            pins: p.pins.iter().map(shortened_pin).collect(),
            pin_mode: match p.pin_mode {
                PinMode::Enforce => "enforce",
                PinMode::ReportOnly => "report-only",
            },
            min_tls: match p.min_tls {
                TlsVersion::V1_2 => "1.2",
                TlsVersion::V1_3 => "1.3",
            },
            ca_file: p.ca_file.as_ref().map(|f| f.display().to_string()),
            timeout_secs: p.timeout.as_secs(),
            idle_timeout_secs: p.idle_timeout.map(|d| d.as_secs()),
            absolute_timeout_secs: p.absolute_timeout.map(|d| d.as_secs()),
            client_id: p.oidc.as_ref().map(|o| o.client_id.clone()),
            scopes: p.oidc.as_ref().map(|o| o.scopes.clone()).unwrap_or_default(),
            client_secret_set: p.oidc.as_ref().is_some_and(|o| o.client_secret.is_some()),
        }
    }
}

/// The operating system and kernel, as far as they can be read.
fn platform() -> String {
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned()))
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!(", kernel {}", k.trim()))
        .unwrap_or_default();
    format!("{os}{kernel}, {}", std::env::consts::ARCH)
}

/// Collect everything. Reaches each provider once (for its clock), all at
/// once, each within [`CLOCK_DEADLINE`].
pub async fn collect(inputs: &Inputs) -> Diagnostics {
    let store = inputs.store.clone();
    let keychain = tokio::task::spawn_blocking(move || store.backend())
        .await
        .unwrap_or_else(|_| "unknown".into());
    let reads: Vec<_> = inputs
        .profiles
        .iter()
        .cloned()
        .map(|p| {
            tokio::spawn(
                async move { tokio::time::timeout(CLOCK_DEADLINE, crate::support::doctor::check_clock(&p)).await },
            )
        })
        .collect();
    let mut clock = Vec::new();
    for (p, read) in inputs.profiles.iter().zip(reads) {
        let (offset_secs, note) = match read.await {
            Ok(Ok(check)) => (check.clock_offset_secs, check.detail),
            Ok(Err(_)) => (None, format!("no answer within {} s", CLOCK_DEADLINE.as_secs())),
            Err(e) => (None, format!("not measured ({e})")),
        };
        clock.push(ClockReading {
            profile: p.name.clone(),
            offset_secs,
            note,
        });
    }
    let (log, audit) = match &inputs.data_dir {
        Some(dir) => (
            crate::support::diaglog::tail(dir, inputs.lines),
            AuditLog::in_dir(dir).recent(inputs.lines).unwrap_or_default(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    Diagnostics {
        generated_at: chrono::Utc::now(),
        front: inputs.front.clone(),
        engine_version: env!("CARGO_PKG_VERSION").to_owned(),
        platform: platform(),
        keychain,
        config_file: inputs.config_file.clone(),
        config_error: inputs.config_error.clone(),
        profiles: inputs.profiles.iter().map(ProfileSummary::of).collect(),
        clock,
        data_dir: inputs.data_dir.as_ref().map(|p| p.display().to_string()),
        log,
        audit,
    }
}

impl Diagnostics {
    /// Plain text to paste into a support ticket.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let none = || "-".to_owned();
        let _ = writeln!(t, "Session Manager diagnostics, {}", self.generated_at.to_rfc3339());
        let _ = writeln!(t, "Front      : {}", self.front);
        let _ = writeln!(t, "Engine     : session-core {}", self.engine_version);
        let _ = writeln!(t, "Platform   : {}", self.platform);
        let _ = writeln!(t, "Keychain   : {}", self.keychain);
        let _ = writeln!(t, "Config     : {}", self.config_file.clone().unwrap_or_else(none));
        if let Some(e) = &self.config_error {
            let _ = writeln!(t, "Config err : {e}");
        }
        let _ = writeln!(t, "Data dir   : {}", self.data_dir.clone().unwrap_or_else(none));
        for p in &self.profiles {
            let _ = writeln!(t, "\nProfile {} ({}, {})", p.name, p.provider, p.environment);
            let _ = writeln!(t, "  base_url    : {}", p.base_url);
            if !p.backup_urls.is_empty() {
                let _ = writeln!(t, "  backup_urls : {}", p.backup_urls.join(", "));
            }
            let _ = writeln!(t, "  issuer      : {}", p.issuer);
            let _ = writeln!(t, "  pins        : {} ({})", p.pins.join(", "), p.pin_mode);
            let _ = writeln!(t, "  min_tls     : {}", p.min_tls);
            let _ = writeln!(t, "  ca_file     : {}", p.ca_file.clone().unwrap_or_else(none));
            let _ = writeln!(
                t,
                "  timeouts    : request {} s, idle {}, absolute {}",
                p.timeout_secs,
                p.idle_timeout_secs.map(|s| format!("{s} s")).unwrap_or_else(none),
                p.absolute_timeout_secs.map(|s| format!("{s} s")).unwrap_or_else(none)
            );
            if let Some(id) = &p.client_id {
                let _ = writeln!(
                    t,
                    "  client      : {id}, scopes {}, client secret {}",
                    p.scopes.join(" "),
                    if p.client_secret_set { "set (not shown)" } else { "none" }
                );
            }
        }
        let _ = writeln!(t, "\nClock offsets (provider minus this machine)");
        for c in &self.clock {
            let offset = c
                .offset_secs
                .map(|s| format!("{s:+} s"))
                .unwrap_or_else(|| "unknown".into());
            let _ = writeln!(t, "  {:<20} {offset:>8}  {}", c.profile, c.note);
        }
        let _ = writeln!(t, "\nDiagnostic log (newest {} lines)", self.log.len());
        for l in &self.log {
            let _ = writeln!(t, "  {l}");
        }
        let _ = writeln!(t, "\nAudit log (newest {} records, newest first)", self.audit.len());
        for r in &self.audit {
            let _ = writeln!(
                t,
                "  {}  {:<12} {:<8} {}",
                r.time.format("%Y-%m-%d %H:%M:%S"),
                r.profile,
                r.user.as_deref().unwrap_or("-"),
                r.event.line()
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_and_urls_are_shown_without_their_secrets() {
        let pin = crate::net::pin::Pin([7; 32]);
        let short = shortened_pin(&pin);
        assert!(pin.to_string().starts_with(short.trim_end_matches('…')));
        assert!(short.len() < pin.to_string().len());
        let url = reqwest::Url::parse("https://u:secret@idp.test/x?code=abc#f").unwrap();
        assert_eq!(shown_url(&url), "https://idp.test/x");
    }
}
