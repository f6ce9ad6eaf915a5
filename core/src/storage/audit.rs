//! The audit log: JSON Lines in the data directory, one record per event.
//!
//! A record holds the time, profile, user, session id and a short token
//! fingerprint, never a token. The file is capped in size: when a write would
//! pass the cap, `audit.jsonl` becomes `audit.jsonl.1` (and so on, keeping
//! [`AuditLog::KEEP`] old files).

use crate::os::clock::Timestamp;
use crate::os::paths;
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
    /// The session ended without the person: its refresh token's time ran
    /// out, or the provider refused it. `reason` says which (empty in
    /// records written before it was kept).
    SessionExpired {
        #[serde(default)]
        reason: String,
        /// Why, in the words the window uses (`EndReason::text`); empty in
        /// records written before it was kept. `reason` is the detail.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        why: String,
    },
    SessionRevoked {
        reason: String,
        /// As for `SessionExpired`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        why: String,
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
    /// A sign-in's answer failed a check after the provider issued its
    /// tokens: whether they were revoked (`revoked`), and if not, why.
    RefusedGrantRevocation {
        revoked: bool,
        detail: String,
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
    /// An ended session's event with why in plain words, unless it has one.
    pub fn with_why(mut self, text: &str) -> Self {
        if let AuditEvent::SessionExpired { why, .. } | AuditEvent::SessionRevoked { why, .. } = &mut self {
            if why.is_empty() {
                *why = text.to_owned();
            }
        }
        self
    }

    /// What the provider or the error said, for a "Details" disclosure:
    /// the raw text and the error's code, kept out of [`describe`]'s
    /// sentence.
    ///
    /// [`describe`]: AuditEvent::describe
    pub fn detail(&self) -> Option<String> {
        match self {
            AuditEvent::SessionExpired { reason, why } | AuditEvent::SessionRevoked { reason, why }
                if !why.is_empty() && !reason.is_empty() =>
            {
                Some(reason.clone())
            }
            AuditEvent::SignInFailed { code, reason } | AuditEvent::RefreshFailed { code, reason, .. } => {
                Some(format!("{code}: {reason}"))
            }
            _ => None,
        }
    }

    /// One line with both, for logs and the terminal: the sentence, then
    /// the detail in parentheses.
    pub fn line(&self) -> String {
        match self.detail() {
            Some(d) => format!("{} ({d})", self.describe()),
            None => self.describe(),
        }
    }

    /// A one-line description for people, in plain words (the raw detail
    /// is [`detail`](AuditEvent::detail)'s).
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
            AuditEvent::RefreshFailed { attempt, .. } => format!("Renewal attempt {attempt} failed"),
            AuditEvent::SessionExpired { why, .. } | AuditEvent::SessionRevoked { why, .. } if !why.is_empty() => {
                why.clone()
            }
            // Records written before `why` was kept.
            AuditEvent::SessionExpired { reason, .. } if reason.is_empty() => "Session expired".into(),
            AuditEvent::SessionExpired { reason, .. } => format!("Session expired: {reason}"),
            AuditEvent::SessionRevoked { reason, .. } => format!("Session revoked: {reason}"),
            AuditEvent::SignedOut { server_logout } => {
                format!("Signed out (server logout: {server_logout})")
            }
            AuditEvent::SignInFailed { .. } => "Sign-in failed".into(),
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
            AuditEvent::OtherSessionsEnded { count } => match count {
                1 => "Ended 1 other session".to_owned(),
                n => format!("Ended {n} other sessions"),
            },
            AuditEvent::RefusedGrantRevocation { revoked: true, .. } => {
                "The tokens of the refused sign-in were revoked at the provider".to_owned()
            }
            AuditEvent::RefusedGrantRevocation { detail, .. } => format!(
                "The tokens of the refused sign-in could not be revoked ({detail}); they stay valid at the provider until they expire"
            ),
            AuditEvent::SessionTimedOut { kind, after_secs } if kind == "idle" => {
                format!("Signed out after {} without activity (the profile's idle timeout)", crate::os::clock::duration_text(*after_secs))
            }
            AuditEvent::SessionTimedOut { after_secs, .. } => format!(
                "Signed out: the session reached the profile's limit of {}",
                crate::os::clock::duration_text(*after_secs)
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
///
/// A record is written at once ([`AuditLog::append`]) or queued
/// ([`AuditLog::append_later`]) for frequent records that are no
/// transition (one per API call): a write per call cost the engine's calls
/// about 15 % of their throughput. Queued records are written before the
/// next record written at once (so the file stays in time order), when the
/// queue reaches [`AuditLog::QUEUE_BYTES`], on [`AuditLog::flush`] (the
/// engine asks for one a second after the first queued record), when the
/// log is read and when it is dropped. A crash loses at most that second's
/// queued records.
#[derive(Debug)]
pub struct AuditLog {
    file: paths::RotatingFile,
    /// Lines queued and not yet written. Its lock also keeps writers in order.
    queue: Mutex<Vec<u8>>,
}

impl AuditLog {
    /// How many rotated files are kept besides the current one.
    pub const KEEP: usize = 3;
    /// The default cap of one file.
    pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;
    /// A queue this long is written without waiting for a flush.
    pub const QUEUE_BYTES: usize = 16 * 1024;
    /// While the file cannot be written, the queue holds this much; a
    /// record queued beyond it is refused.
    const QUEUE_MAX: usize = 256 * 1024;

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
            queue: Mutex::new(Vec::new()),
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

    /// Append one record now (and the queued ones before it).
    pub fn append(&self, record: &AuditRecord) -> std::io::Result<()> {
        // The diagnostic log sees every record too (none holds a secret: a
        // token's fingerprint at most).
        tracing::info!(
            profile = %record.profile,
            user = record.user.as_deref().unwrap_or("-"),
            event = %record.event.line(),
            "audit"
        );
        let line = line_of(record)?;
        let mut queue = self.queue();
        let queued = queue.len();
        queue.extend_from_slice(&line);
        let written = self.write(&mut queue);
        if written.is_err() {
            // This record's caller hears of the failure; the queued ones wait.
            queue.truncate(queued);
        }
        written
    }

    /// Queue one record, to be written within a flush. `Ok(true)` when the
    /// queue was empty: the caller should [`AuditLog::flush`] soon. An error
    /// when the file has not been writable for a whole queue's worth of
    /// records; this record is then dropped. Not echoed to the diagnostic
    /// log (the engine logs each API call there itself).
    pub fn append_later(&self, record: &AuditRecord) -> std::io::Result<bool> {
        let line = line_of(record)?;
        let mut queue = self.queue();
        if queue.len() + line.len() > Self::QUEUE_MAX {
            self.write(&mut queue).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "the audit log {} cannot be written ({e}); {} bytes of records wait and this one is dropped: \
                         free disk space or fix the file's permissions",
                        self.path().display(),
                        queue.len()
                    ),
                )
            })?;
        }
        let first = queue.is_empty();
        queue.extend_from_slice(&line);
        if queue.len() >= Self::QUEUE_BYTES {
            // A failure keeps the queue for the next try.
            let _ = self.write(&mut queue);
        }
        Ok(first)
    }

    /// Write the queued records.
    pub fn flush(&self) -> std::io::Result<()> {
        self.write(&mut self.queue())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, queue: &mut Vec<u8>) -> std::io::Result<()> {
        if !queue.is_empty() {
            self.file.append(queue)?;
            queue.clear();
        }
        Ok(())
    }

    /// The newest `limit` records, newest first (current file, then rotated
    /// ones). Lines that do not parse (damaged, not UTF-8) are skipped; the
    /// records around them still count.
    pub fn recent(&self, limit: usize) -> std::io::Result<Vec<AuditRecord>> {
        let mut queue = self.queue();
        // Queued records are the newest; read from memory if the file
        // cannot take them now.
        let mut out: Vec<AuditRecord> = match self.write(&mut queue) {
            Ok(()) => Vec::new(),
            Err(_) => parse_lines(&queue[..]),
        };
        out.reverse();
        for path in self.file.files() {
            let file = match fs::File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mut records = parse_lines(BufReader::new(file));
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

impl Drop for AuditLog {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// A record as one line of the file.
fn line_of(record: &AuditRecord) -> std::io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

/// The records of JSON Lines, skipping lines that do not parse.
fn parse_lines(text: impl BufRead) -> Vec<AuditRecord> {
    text.split(b'\n')
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_slice(&l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_ended_session_says_why_in_plain_words_and_keeps_the_providers_text_as_detail() {
        let ended = AuditEvent::SessionRevoked {
            reason: "session revoked: invalid_grant: token revoked".into(),
            why: String::new(),
        }
        .with_why("Ended by the provider");
        assert_eq!(ended.describe(), "Ended by the provider");
        assert_eq!(
            ended.detail().as_deref(),
            Some("session revoked: invalid_grant: token revoked")
        );
        assert_eq!(
            ended.line(),
            "Ended by the provider (session revoked: invalid_grant: token revoked)"
        );
        // A why set where the end happened is kept.
        assert_eq!(ended.with_why("Signed out").describe(), "Ended by the provider");
        // Records written before `why` existed read as they did.
        let old: AuditEvent =
            serde_json::from_str(r#"{"event":"session_expired","reason":"refresh token expired"}"#).unwrap();
        assert_eq!(old.describe(), "Session expired: refresh token expired");
        assert_eq!(old.detail(), None);
        // No raw text in the sentence of a failed sign-in; it is the detail.
        let failed = AuditEvent::SignInFailed {
            code: "invalid_credentials".into(),
            reason: "sign-in refused: unknown user".into(),
        };
        assert_eq!(failed.describe(), "Sign-in failed");
        assert_eq!(
            failed.detail().as_deref(),
            Some("invalid_credentials: sign-in refused: unknown user")
        );
    }

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

    fn lines(log: &AuditLog) -> usize {
        fs::read_to_string(log.path()).map(|t| t.lines().count()).unwrap_or(0)
    }

    #[test]
    fn a_record_appended_later_is_never_lost() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::in_dir(dir.path());
        // Queued, not written: the first one asks the caller for a flush.
        assert!(log.append_later(&record(1)).unwrap());
        assert!(!log.append_later(&record(2)).unwrap());
        assert_eq!(lines(&log), 0);
        // A record written now takes the queued ones first (time order).
        log.append(&record(3)).unwrap();
        let text = fs::read_to_string(log.path()).unwrap();
        let counts: Vec<u32> = text
            .lines()
            .map(|l| match serde_json::from_str::<AuditRecord>(l).unwrap().event {
                AuditEvent::SessionRefreshed { refresh_count, .. } => refresh_count,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(counts, vec![1, 2, 3]);
        // Reading sees the queue; so do a flush and the log's end.
        assert!(log.append_later(&record(4)).unwrap());
        assert_eq!(log.recent(10).unwrap().len(), 4);
        log.append_later(&record(5)).unwrap();
        log.flush().unwrap();
        assert_eq!(lines(&log), 5);
        log.append_later(&record(6)).unwrap();
        let path = log.path().to_owned();
        drop(log);
        assert_eq!(fs::read_to_string(path).unwrap().lines().count(), 6);
    }

    #[test]
    fn a_long_queue_is_written_without_waiting_for_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::in_dir(dir.path());
        let one = serde_json::to_string(&record(1)).unwrap().len() + 1;
        let n = AuditLog::QUEUE_BYTES / one + 1;
        for i in 0..n {
            log.append_later(&record(i as u32)).unwrap();
        }
        assert!(lines(&log) >= n - 1, "{} of {n} written", lines(&log));
    }

    #[cfg(unix)]
    #[test]
    fn an_unwritable_log_keeps_a_bounded_queue_and_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        // A directory where the file should be: every write fails.
        let log = AuditLog::in_dir(tmp.path());
        fs::create_dir(log.path()).unwrap();
        let mut refused = None;
        for i in 0..100_000u32 {
            if let Err(e) = log.append_later(&record(i)) {
                refused = Some(e);
                break;
            }
        }
        let e = refused.expect("the queue is bounded");
        assert!(e.to_string().contains("audit log"), "{e}");
        // Reading still shows the queued records, newest first.
        let recent = log.recent(2).unwrap();
        assert!(matches!(recent[0].event, AuditEvent::SessionRefreshed { refresh_count, .. } if refresh_count > 1000));
        // Once the file can be written, the queue is.
        fs::remove_dir(log.path()).unwrap();
        log.flush().unwrap();
        assert!(lines(&log) > 0);
    }
}
