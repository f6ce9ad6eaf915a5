//! The audit log: JSON Lines in the data directory, one record per event.
//!
//! A record holds the time, profile, user, session id and a short token
//! fingerprint, never a token. The file is capped in size: when a write would
//! pass the cap, `audit.jsonl` becomes `audit.jsonl.1` (and so on, keeping
//! [`AuditLog::KEEP`] old files).

use crate::clock::Timestamp;
use crate::paths;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    SessionCreated,
    SessionRestored,
    SessionRefreshed {
        refresh_count: u32,
        /// How long the provider took to answer the refresh.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        latency_ms: Option<u64>,
    },
    /// Re-authenticate mode: a new sign-in extended the session.
    SessionReauthenticated {
        count: u32,
        silent: bool,
    },
    /// Another process refreshed; this one took over its result.
    SessionAdopted,
    RefreshFailed {
        reason: String,
        code: String,
        attempt: u32,
    },
    SessionExpired,
    SessionRevoked {
        reason: String,
    },
    SignedOut {
        server_logout: String,
    },
    SignInFailed {
        code: String,
        reason: String,
    },
    PinMismatch {
        host: String,
        presented: String,
    },
    ValidationFailed {
        check: String,
    },
    KeychainUnavailable {
        reason: String,
    },
    /// The policy renews with a refresh token, but the provider granted
    /// none: the session ends with its access token.
    NoRefreshToken {
        granted_scope: String,
    },
    /// An API call through the engine (no path: it may hold ids).
    ApiCall {
        method: String,
        status: u16,
        latency_ms: u64,
    },
    /// Where the provider saw a sign-in come from.
    SignInOrigin {
        ip: String,
        city: String,
        country: String,
    },
    /// A detector found something unusual (see `anomaly`).
    Anomaly {
        kind: String,
        reason: String,
        /// A Production profile signed out because of it.
        #[serde(default)]
        signed_out: bool,
    },
    /// Another device's session was ended from here.
    RemoteSessionEnded {
        session: String,
    },
    /// Every other session of the person was ended from here.
    OtherSessionsEnded {
        count: u64,
    },
    /// The profile's idle timeout or absolute limit signed the session out.
    SessionTimedOut {
        /// `idle` or `absolute`.
        kind: String,
        after_secs: u64,
    },
    /// Report-only pinning: a server presented none of the pins, and the
    /// connection went ahead.
    PinMismatchReported {
        host: String,
        presented: String,
    },
    /// Requests moved to a backup endpoint, or back to the primary.
    EndpointSwitched {
        /// The backup's URL, or `primary`.
        to: String,
        reason: String,
    },
}

impl AuditEvent {
    /// A one-line description for people.
    pub fn describe(&self) -> String {
        match self {
            AuditEvent::SessionCreated => "Signed in".into(),
            AuditEvent::SessionRestored => "Session restored from the keychain".into(),
            AuditEvent::SessionRefreshed { refresh_count, .. } => {
                format!("Session refreshed (refresh #{refresh_count})")
            }
            AuditEvent::SessionReauthenticated { count, silent } => format!(
                "Session extended by {} sign-in (#{count})",
                if *silent { "a silent" } else { "a new" }
            ),
            AuditEvent::SessionAdopted => "Took over a refresh made by another process".into(),
            AuditEvent::RefreshFailed { reason, attempt, .. } => format!("Refresh attempt {attempt} failed: {reason}"),
            AuditEvent::SessionExpired => "Session expired".into(),
            AuditEvent::SessionRevoked { reason } => format!("Session revoked: {reason}"),
            AuditEvent::SignedOut { server_logout } => {
                format!("Signed out (server logout: {server_logout})")
            }
            AuditEvent::SignInFailed { reason, .. } => format!("Sign-in failed: {reason}"),
            AuditEvent::PinMismatch { host, presented } => {
                format!("Certificate pin mismatch at {host}: presented {presented}")
            }
            AuditEvent::ValidationFailed { check } => format!("Token validation failed: {check}"),
            AuditEvent::KeychainUnavailable { reason } => {
                format!("Keychain unavailable, session kept in memory only: {reason}")
            }
            AuditEvent::NoRefreshToken { granted_scope } => format!(
                "The provider granted no refresh token (granted scopes: {granted_scope}); the session ends when its access token expires"
            ),
            AuditEvent::ApiCall { method, status, latency_ms } => {
                format!("API call {method} answered {status} in {latency_ms} ms")
            }
            AuditEvent::SignInOrigin { ip, city, country } => format!("Signed in from {city}, {country} ({ip})"),
            AuditEvent::Anomaly { reason, signed_out, .. } => format!(
                "Unusual: {reason}{}",
                if *signed_out { "; signed out, as the profile asks" } else { "" }
            ),
            AuditEvent::RemoteSessionEnded { session } => format!("Ended the session {session} on another device"),
            AuditEvent::OtherSessionsEnded { count } => format!("Ended {count} other session(s)"),
            AuditEvent::SessionTimedOut { kind, after_secs } if kind == "idle" => {
                format!("Signed out after {} without activity (the profile's idle timeout)", crate::view::duration_text(*after_secs))
            }
            AuditEvent::SessionTimedOut { after_secs, .. } => format!(
                "Signed out: the session reached the profile's limit of {}",
                crate::view::duration_text(*after_secs)
            ),
            AuditEvent::PinMismatchReported { host, presented } => format!(
                "Report-only pinning: {host} presented none of the configured pins ({presented}); the connection was allowed"
            ),
            AuditEvent::EndpointSwitched { to, reason } if to == "primary" => {
                format!("Back on the primary endpoint: {reason}")
            }
            AuditEvent::EndpointSwitched { to, reason } => format!("Using the backup endpoint {to}: {reason}"),
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub time: Timestamp,
    pub profile: String,
    pub user: Option<String>,
    pub session_id: Option<String>,
    /// `sha256:…` of the session token in force, never the token.
    pub fingerprint: Option<String>,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// An append-only, size-capped JSON Lines file.
#[derive(Debug)]
pub struct AuditLog {
    file: paths::RotatingFile,
    lock: Mutex<()>,
}

impl AuditLog {
    /// How many rotated files are kept besides the current one.
    pub const KEEP: usize = 3;
    /// The default cap of one file.
    pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;

    /// The log at `dir/audit.jsonl`.
    pub fn in_dir(dir: &Path) -> Self {
        Self::new(dir.join("audit.jsonl"), Self::DEFAULT_MAX_BYTES)
    }

    /// The log at `dir/audit.jsonl`, checked now: `dir` is made private to
    /// this user (0700) and the file (0600) opens without following a link.
    /// An error names what is wrong and what to do.
    pub fn open_in(dir: &Path) -> std::io::Result<Self> {
        let log = Self::in_dir(dir);
        paths::private_dir(dir)?;
        paths::open_private(log.path(), OpenOptions::new().create(true).append(true))?;
        Ok(log)
    }

    /// A log at `path`, rotated when it would pass `max_bytes`.
    pub fn new(path: PathBuf, max_bytes: u64) -> Self {
        Self {
            file: paths::RotatingFile::new(path, max_bytes, Self::KEEP),
            lock: Mutex::new(()),
        }
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    #[cfg(test)]
    fn rotated(&self, n: usize) -> PathBuf {
        self.file.files().nth(n).unwrap_or_default()
    }

    /// Append one record.
    pub fn append(&self, record: &AuditRecord) -> std::io::Result<()> {
        // The diagnostic log sees every record too (none holds a secret: a
        // token's fingerprint at most).
        tracing::info!(
            profile = %record.profile,
            user = record.user.as_deref().unwrap_or("-"),
            event = %record.event.describe(),
            "audit"
        );
        let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        line.push('\n');
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        self.file.append(line.as_bytes())
    }

    /// The newest `limit` records, newest first (current file, then rotated
    /// ones). Lines that do not parse (damaged, not UTF-8) are skipped; the
    /// records around them still count.
    pub fn recent(&self, limit: usize) -> std::io::Result<Vec<AuditRecord>> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for path in self.file.files() {
            let file = match fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mut records: Vec<AuditRecord> = BufReader::new(file)
                .split(b'\n')
                .map_while(Result::ok)
                .filter_map(|l| serde_json::from_slice(&l).ok())
                .collect();
            records.reverse();
            out.extend(records);
            if out.len() >= limit {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn record(n: u32) -> AuditRecord {
        AuditRecord {
            time: chrono::Utc::now(),
            profile: "p".into(),
            user: Some("alice".into()),
            session_id: None,
            fingerprint: Some("sha256:0123456789ab".into()),
            event: AuditEvent::SessionRefreshed {
                refresh_count: n,
                latency_ms: None,
            },
        }
    }

    #[test]
    fn rotates_and_reads_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.jsonl"), 600);
        for n in 0..40 {
            log.append(&record(n)).unwrap();
        }
        assert!(fs::metadata(log.path()).unwrap().len() <= 600);
        assert!(log.rotated(1).exists() && log.rotated(3).exists());
        assert!(!log.rotated(4).exists(), "keeps only {} old files", AuditLog::KEEP);
        let recent = log.recent(5).unwrap();
        let counts: Vec<_> = recent
            .iter()
            .map(|r| match r.event {
                AuditEvent::SessionRefreshed { refresh_count, .. } => refresh_count,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(counts, vec![39, 38, 37, 36, 35]);
    }

    #[test]
    fn a_damaged_line_hides_no_other_record() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::in_dir(dir.path());
        log.append(&record(1)).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(log.path())
            .unwrap()
            .write_all(b"\xff\xfe not UTF-8\n{broken\n")
            .unwrap();
        log.append(&record(2)).unwrap();
        assert_eq!(log.recent(10).unwrap().len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_and_a_planted_link_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let log = AuditLog::open_in(&dir).unwrap();
        log.append(&record(1)).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(log.path()), 0o600);
        // Rotated files keep it.
        let small = AuditLog::new(dir.join("small.jsonl"), 200);
        for n in 0..10 {
            small.append(&record(n)).unwrap();
        }
        assert_eq!(mode(&small.rotated(1)), 0o600);
        // Someone plants a link where the log goes: refused, target untouched.
        let other = tmp.path().join("other");
        fs::create_dir(&other).unwrap();
        let victim = tmp.path().join("victim");
        fs::write(&victim, "x").unwrap();
        std::os::unix::fs::symlink(&victim, other.join("audit.jsonl")).unwrap();
        let err = AuditLog::open_in(&other).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(AuditLog::in_dir(&other).append(&record(1)).is_err());
        assert_eq!(fs::read_to_string(&victim).unwrap(), "x");
    }

    #[test]
    fn records_are_one_json_object_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::in_dir(dir.path());
        log.append(&record(1)).unwrap();
        let text = fs::read_to_string(log.path()).unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["event"], "session_refreshed");
        assert_eq!(v["user"], "alice");
        assert!(v["time"].is_string());
    }
}
