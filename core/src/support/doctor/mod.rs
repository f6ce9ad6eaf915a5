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

pub(crate) mod handshake;
mod hosts;
#[cfg(test)]
mod tests;

pub(crate) use handshake::check_clock;
pub use handshake::clock_verdict;
use hosts::check_profile;

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
    /// Whether the person named the config file (`--config`): then a
    /// missing file is a failure. The default file not existing yet is how
    /// every first run starts (the app opens on its built-in Playground or
    /// its first-run screen), not a problem.
    pub config_given: bool,
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
        let (config_check, config) = check_config(self.config_file.as_deref(), self.config_given);
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

fn check_config(path: Option<&Path>, given: bool) -> (Check, Option<Config>) {
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
    if !path.exists() {
        let check = if given {
            Check::failed(
                "config",
                format!("{}: not found", path.display()),
                "check the path given with --config or SESSION_MANAGER_CONFIG",
            )
        } else {
            Check::ok(
                "config",
                format!(
                    "no config file at {} yet: the app opens on its built-in Playground (or its first-run screen); profiles go in this file (docs/configuration.md)",
                    path.display()
                ),
            )
        };
        return (check, None);
    }
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
                    "{}: {} {}: {names}{default}",
                    path.display(),
                    config.profiles.len(),
                    if config.profiles.len() == 1 {
                        "profile"
                    } else {
                        "profiles"
                    }
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
                    if let Some(problem) = private_to_me(&path, &meta, meta.is_dir()) {
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
            ("700", "others can list the files in it")
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
