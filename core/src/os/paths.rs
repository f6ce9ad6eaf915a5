//! Where the app keeps its files (the audit log and refresh locks; never a
//! token).

use std::path::{Path, PathBuf};

/// The environment variable that overrides the data directory.
pub const DATA_DIR_ENV: &str = "SESSION_MANAGER_DATA_DIR";
/// The environment variable that overrides the config file.
pub const CONFIG_ENV: &str = "SESSION_MANAGER_CONFIG";

const APP_DIR: &str = "session-manager";

/// The platform's data directory for the app, unless `SESSION_MANAGER_DATA_DIR`
/// says otherwise: `$XDG_DATA_HOME/session-manager` (or
/// `~/.local/share/session-manager`) on Linux, `~/Library/Application
/// Support/session-manager` on macOS, `%APPDATA%\session-manager` on Windows.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    platform_dir("XDG_DATA_HOME", ".local/share")
}

/// The platform's config file for the app, unless `SESSION_MANAGER_CONFIG` says
/// otherwise: `$XDG_CONFIG_HOME/session-manager/config.toml` (or
/// `~/.config/...`) on Linux, and the platform's equivalent elsewhere.
pub fn default_config_file() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(file));
    }
    platform_dir("XDG_CONFIG_HOME", ".config").map(|d| d.join("config.toml"))
}

/// Whether the person named the config file: `given` (`--config`), or
/// `SESSION_MANAGER_CONFIG` set and not empty. Otherwise the file is the
/// platform's default, which a first run has not written yet: its absence
/// is a fact, not an error.
pub fn config_named(given: bool) -> bool {
    given || std::env::var_os(CONFIG_ENV).is_some_and(|v| !v.is_empty())
}

/// Where, in the data directory, the app's Playground leaves its profiles:
/// the built-in one (QA's build) and the demo package's ("Try the demo").
/// sessionctl reads them from there, so the Playground the app runs is the
/// one the CLI talks to.
pub const PLAYGROUND_CONFIGS: [&str; 2] = ["playground/config.toml", "demo/config.toml"];

/// The app's Playground profiles in `data_dir`, if it left any: the newest
/// of [`PLAYGROUND_CONFIGS`].
pub fn playground_config(data_dir: &Path) -> Option<PathBuf> {
    PLAYGROUND_CONFIGS
        .iter()
        .map(|name| data_dir.join(name))
        .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
        .max_by_key(|(modified, _)| *modified)
        .map(|(_, path)| path)
}

fn platform_dir(xdg_var: &str, home_fallback: &str) -> Option<PathBuf> {
    if cfg!(target_os = "windows") {
        return std::env::var_os("APPDATA").map(|d| PathBuf::from(d).join(APP_DIR));
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        return home.map(|h| h.join("Library/Application Support").join(APP_DIR));
    }
    if let Some(xdg) = std::env::var_os(xdg_var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg).join(APP_DIR));
    }
    home.map(|h| h.join(home_fallback).join(APP_DIR))
}

#[cfg(unix)]
/// Register an owned descriptor with tokio. `AsyncFd::new` is deprecated
/// (tokio#8587) because it accepts any `AsRawFd`, whose raw value might be
/// closed or reused while tokio polls it (tokio#6984); its replacement,
/// `register`, is `unsafe` and this crate forbids `unsafe`. For an
/// [`std::os::fd::OwnedFd`] the condition `register` asks the caller to
/// uphold holds by construction: the descriptor stays open, and the same,
/// until the `AsyncFd` drops it. Only `OwnedFd` goes through here.
#[allow(deprecated)]
pub(crate) fn async_fd(fd: std::os::fd::OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>> {
    tokio::io::unix::AsyncFd::new(fd)
}

/// Create `dir` (and its parents) for this user's files only: mode 0700 on
/// Unix, tightened if it exists with wider permissions. A directory that
/// belongs to another user is refused: its owner could read or replace what
/// the app writes there.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let meta = std::fs::symlink_metadata(dir)?;
        let me = rustix::process::getuid().as_raw();
        if meta.uid() != me {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "the data directory {} belongs to another user (uid {}, you are {me}); use a directory of your own with --data-dir or SESSION_MANAGER_DATA_DIR",
                    dir.display(),
                    meta.uid()
                ),
            ));
        }
        if !meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not a directory; point --data-dir at a directory", dir.display()),
            ));
        }
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Open `path` for this user only (mode 0600 on Unix, tightened if wider),
/// never through a symbolic link: a link planted in a shared directory
/// would send the app's writes wherever it points.
pub fn open_private(path: &Path, options: &mut std::fs::OpenOptions) -> std::io::Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = options
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                    std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        format!(
                            "{} is a symbolic link; the app writes only to its own files. Remove the link",
                            path.display()
                        ),
                    )
                } else {
                    e
                }
            })?;
        let meta = file.metadata()?;
        if std::os::unix::fs::MetadataExt::mode(&meta) & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

/// An append-only file capped in size: when a write would pass the cap,
/// `NAME` becomes `NAME.1` (`NAME.1` becomes `NAME.2`, and so on, keeping
/// `keep` old files). Every file is private ([`open_private`]) in a private
/// directory ([`private_dir`]). The open file is kept between appends
/// only while it is still the file at `path`: one rotated or removed by
/// another process (the app and `sessionctl` share the audit log) is never
/// written after it moved.
///
/// Its directory is made at the first write; one removed after that (a
/// person resetting the app while it runs, or a test's temporary directory)
/// is not made again by a late write: that write fails with `NotFound`.
#[derive(Debug, Clone)]
pub struct RotatingFile {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    open: std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>,
    wrote: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RotatingFile {
    /// The file at `path`, rotated past `max_bytes`, with `keep` old files.
    pub fn new(path: PathBuf, max_bytes: u64, keep: usize) -> Self {
        Self {
            path,
            max_bytes,
            keep,
            open: Default::default(),
            wrote: Default::default(),
        }
    }

    /// The current file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current file, then the rotated ones, newest first.
    pub fn files(&self) -> impl Iterator<Item = PathBuf> + '_ {
        std::iter::once(self.path.clone()).chain((1..=self.keep).map(|n| self.rotated(n)))
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Append `bytes` (whole lines), rotating first if they would pass the
    /// cap. Callers in one process serialize their appends.
    pub fn append(&self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        // The file kept open, while it is still the one at `path` and has
        // room: two stats and a write instead of eight system calls (an
        // audit record per API call made the engine's calls 20 % slower).
        if let Some(file) = open.as_mut() {
            if let (Ok(at_path), Ok(held)) = (std::fs::symlink_metadata(&self.path), file.metadata()) {
                if same_private_file(&at_path, &held) && held.len() + bytes.len() as u64 <= self.max_bytes {
                    return file.write_all(bytes);
                }
            }
        }
        *open = None;
        if let Some(dir) = self.path.parent() {
            if self.wrote.load(std::sync::atomic::Ordering::SeqCst) && !dir.exists() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!(
                        "{} was removed while this process wrote to it; it is not made again",
                        dir.display()
                    ),
                ));
            }
            private_dir(dir)?;
        }
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        if size > 0 && size + bytes.len() as u64 > self.max_bytes {
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))?;
        }
        let mut file = open_private(&self.path, std::fs::OpenOptions::new().create(true).append(true))?;
        file.write_all(bytes)?;
        *open = Some(file);
        self.wrote.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// `held` is still the file at the path (same device and inode) and still
/// private; otherwise (and on other platforms) the append opens afresh,
/// which tightens a widened file.
fn same_private_file(at_path: &std::fs::Metadata, held: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        at_path.dev() == held.dev() && at_path.ino() == held.ino() && held.mode() & 0o077 == 0
    }
    #[cfg(not(unix))]
    {
        let _ = (at_path, held);
        false
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// Two writers with a file open each, as the app and `sessionctl` are:
    /// a line is never written into a file the other one rotated away, nor
    /// into one removed under it.
    #[test]
    fn a_kept_file_is_dropped_once_another_writer_rotates_it_or_it_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log/x.log");
        let (app, cli) = (
            RotatingFile::new(path.clone(), 20, 2),
            RotatingFile::new(path.clone(), 20, 2),
        );
        app.append(b"app-1\n").unwrap();
        cli.append(b"cli-1\n").unwrap();
        cli.append(b"cli-2\n").unwrap();
        cli.append(b"cli-3\n").unwrap(); // 24 bytes: cli rotates x.log to x.log.1
        app.append(b"app-2\n").unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&app.rotated(1)), "app-1\ncli-1\ncli-2\n");
        assert_eq!(read(&path), "cli-3\napp-2\n");
        std::fs::remove_file(&path).unwrap();
        app.append(b"app-3\n").unwrap();
        assert_eq!(read(&path), "app-3\n");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    /// A directory removed after the first write is not made again by a
    /// later one (a late write of an engine that outlived its test made
    /// the test's removed temporary directory again, once in five runs).
    #[test]
    fn a_directory_removed_after_the_first_write_is_not_made_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let log = RotatingFile::new(dir.join("x.log"), 1000, 2);
        log.append(b"one\n").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let err = log.append(b"two\n").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        assert!(!dir.exists(), "the removed directory was made again");
        // A fresh writer (a new start) makes it.
        RotatingFile::new(dir.join("x.log"), 1000, 2)
            .append(b"three\n")
            .unwrap();
        assert!(dir.exists());
    }

    /// A file kept open between appends is still tightened when someone
    /// widens it, and a link planted at its path is never written through.
    #[test]
    fn a_kept_file_is_tightened_if_widened_and_a_planted_link_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        let log = RotatingFile::new(path.clone(), 1000, 2);
        log.append(b"one\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        log.append(b"two\n").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::write(&elsewhere, "").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        let err = log.append(b"three\n").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "");
    }

    #[test]
    fn a_private_dir_is_0700_and_a_wide_one_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_private_file_is_0600_and_never_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let mut options = std::fs::OpenOptions::new();
        open_private(&path, options.create(true).append(true)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let target = tmp.path().join("elsewhere");
        std::fs::write(&target, "x").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_private(&link, std::fs::OpenOptions::new().create(true).append(true)).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "x");
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let theirs = if rustix::process::getuid().is_root() {
            // As root, make one that belongs to `nobody`.
            let dir = tmp.path().join("theirs");
            std::fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            dir
        } else {
            std::path::PathBuf::from("/")
        };
        let err = private_dir(&theirs).unwrap_err();
        assert!(err.to_string().contains("belongs to another user"), "{err}");
    }
}
