//! The diagnostic log: what the app did and why, for a support team.
//!
//! - One file per front in the data directory: `logs/app.log`,
//!   `logs/sessionctl.log`; mode 0600 in a 0700 directory, never through a
//!   symbolic link, rotated at [`MAX_BYTES`] keeping [`KEEP`] old files
//!   ([`crate::os::paths::RotatingFile`], as the audit log).
//! - Level: `SESSION_MANAGER_LOG` (`error` … `trace`, for the app's own
//!   crates; others stay at `warn`), or `RUST_LOG` with full directives
//!   (`info,h2=debug`); default `info`.
//! - Sign-in, refresh and API calls run in spans that carry their activity
//!   id (`X-Activity-ID`) and session id; FinHub requests log their
//!   `X-Request-ID` at `debug`. Every audit record is logged as it is
//!   written.
//! - No secret can reach it: the secret types have no `Display`, so
//!   formatting one into a field does not compile:
//!
//! ```compile_fail
//! let token = session_core::AccessToken::new("eyJ…");
//! tracing::info!(token = %token, "refreshed");
//! ```
//!
//! and their `Debug` prints `AccessToken([redacted])`.
//! - Writing the log can never stop the app: a failed write loses the line.

use crate::os::paths::RotatingFile;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// The environment variable with the level of the app's own crates.
pub const LOG_ENV: &str = "SESSION_MANAGER_LOG";
/// The cap of one log file.
pub const MAX_BYTES: u64 = 1024 * 1024;
/// How many rotated files are kept besides the current one.
pub const KEEP: usize = 3;
/// The crates whose level `SESSION_MANAGER_LOG` sets.
const OWN_CRATES: &[&str] = &["session_core", "sessionctl", "session_manager"];

/// The folder of the log files in a data directory.
pub fn log_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("logs")
}

/// The log file of `front` (`app`, `sessionctl`).
pub fn log_file(data_dir: &Path, front: &str) -> RotatingFile {
    RotatingFile::new(log_dir(data_dir).join(format!("{front}.log")), MAX_BYTES, KEEP)
}

/// The filter from the environment; a directive that does not parse is
/// reported on standard error and the default is used.
pub fn filter_from_env() -> Targets {
    let own = |level: LevelFilter| {
        OWN_CRATES
            .iter()
            .fold(Targets::new().with_default(LevelFilter::WARN), |t, c| {
                t.with_target(*c, level)
            })
    };
    if let Some(level) = std::env::var(LOG_ENV).ok().filter(|v| !v.is_empty()) {
        match level.parse::<LevelFilter>() {
            Ok(l) => return own(l),
            Err(_) => eprintln!(
                "warning[config_invalid]: {LOG_ENV}={level} is not a level; use error, warn, info, debug or trace (using info)"
            ),
        }
    } else if let Some(directives) = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()) {
        match directives.parse::<Targets>() {
            Ok(t) => return t,
            Err(e) => eprintln!("warning[config_invalid]: RUST_LOG={directives} does not parse ({e}); using info"),
        }
    }
    own(LevelFilter::INFO)
}

/// Where the formatter writes: one line per event, appended whole.
#[derive(Clone)]
struct Sink(Arc<(RotatingFile, Mutex<()>)>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (file, lock) = &*self.0;
        let _one_at_a_time = lock.lock().unwrap_or_else(|e| e.into_inner());
        file.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Send this process's diagnostic log to `data_dir/logs/<front>.log`.
/// Returns the file, or `None` when there is no data directory or a log
/// is already set up (tests, a second call).
pub fn init(data_dir: Option<&Path>, front: &str) -> Option<PathBuf> {
    let file = log_file(data_dir?, front);
    let path = file.path().to_owned();
    let sink = Sink(Arc::new((file, Mutex::new(()))));
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(true)
        .log_internal_errors(false)
        .with_writer(move || sink.clone())
        .with_filter(filter_from_env());
    tracing_subscriber::registry().with(layer).try_init().ok()?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), front, "started");
    Some(path)
}

/// The newest `n` lines of every front's log, oldest first. Lines start
/// with their RFC 3339 time, so the fronts' lines interleave by time.
pub fn tail(data_dir: &Path, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let Ok(entries) = std::fs::read_dir(log_dir(data_dir)) else {
        return lines;
    };
    let mut fronts: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|f| f.strip_suffix(".log"))
                .map(str::to_owned)
        })
        .collect();
    fronts.sort();
    for front in fronts {
        let file = log_file(data_dir, &front);
        let mut own: Vec<String> = Vec::new();
        for path in file.files() {
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let text = String::from_utf8_lossy(&bytes);
            let mut older: Vec<String> = text.lines().map(str::to_owned).collect();
            older.append(&mut own);
            own = older;
            if own.len() >= n {
                break;
            }
        }
        let skip = own.len().saturating_sub(n);
        lines.extend(own.into_iter().skip(skip));
    }
    lines.sort();
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_interleaves_fronts_by_time_and_reaches_into_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let app = log_file(dir.path(), "app");
        let cli = log_file(dir.path(), "sessionctl");
        app.append(b"2026-01-01T00:00:01Z a1\n2026-01-01T00:00:03Z a3\n")
            .unwrap();
        cli.append(b"2026-01-01T00:00:02Z c2\n").unwrap();
        assert_eq!(
            tail(dir.path(), 2),
            vec!["2026-01-01T00:00:02Z c2", "2026-01-01T00:00:03Z a3"]
        );
        // Lines from a rotated file come before the current file's.
        let small = RotatingFile::new(log_dir(dir.path()).join("x.log"), 30, KEEP);
        small.append(b"2026-01-01T00:00:04Z x4......\n").unwrap();
        small.append(b"2026-01-01T00:00:05Z x5......\n").unwrap();
        assert!(log_dir(dir.path()).join("x.log.1").exists());
        assert_eq!(
            tail(dir.path(), 2),
            vec!["2026-01-01T00:00:04Z x4......", "2026-01-01T00:00:05Z x5......"]
        );
        assert!(tail(&dir.path().join("none"), 5).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn log_files_are_private() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let file = log_file(dir.path(), "app");
        file.append(b"line\n").unwrap();
        assert_eq!(std::fs::metadata(file.path()).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(log_dir(dir.path())).unwrap().mode() & 0o777, 0o700);
    }
}
