//! What processes sharing one keychain record use to stay out of each
//! other's way: an exclusive file lock held across every change of the
//! record, and a "changed" file whose writes tell the others to look again.
//!
//! Both are named after the keychain record's identity (namespace and
//! account, hashed), not after the data directory: `sessionctl --data-dir X`
//! beside the desktop app shares the app's keychain entry, so it must share
//! its lock. They live in [`shared_dir`], a per-user directory that is the
//! same for every process of the user and survives a restart (tombstones
//! must), created 0700 and checked to be the user's.
//!
//! The lock is `flock` (`LockFileEx` on Windows) on a file that is never
//! deleted: a crashed holder's lock goes with its process, and deleting a
//! held lock file would let a newcomer lock a fresh inode.

use crate::os::paths;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The per-user directory of locks, change files and tombstones, the same
/// for every process of the user whatever its data directory, and kept
/// across restarts: `$XDG_STATE_HOME/session-manager` (or
/// `~/.local/state/session-manager`) on Linux, `~/Library/Application
/// Support/session-manager/shared` on macOS, `%LOCALAPPDATA%\session-manager`
/// on Windows; `SESSION_MANAGER_STATE_DIR` overrides it.
pub fn shared_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(STATE_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if cfg!(target_os = "windows") {
        if let Some(d) = std::env::var_os("LOCALAPPDATA") {
            return PathBuf::from(d).join("session-manager");
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if cfg!(target_os = "macos") {
        if let Some(h) = &home {
            return h.join("Library/Application Support/session-manager/shared");
        }
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("session-manager");
    }
    if let Some(h) = home {
        return h.join(".local/state/session-manager");
    }
    std::env::temp_dir().join("session-manager-shared")
}

/// The environment variable that overrides [`shared_dir`].
pub const STATE_DIR_ENV: &str = "SESSION_MANAGER_STATE_DIR";

/// The file name stem of a keychain record's lock, change and tombstone
/// files: a short hash of its identity.
pub fn stem(identity: &str) -> String {
    let digest = Sha256::digest(identity.as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// An exclusive lock on a file, held across a refresh and every keychain
/// change, so that a second process never redeems the same refresh token
/// nor writes over a change it has not seen. Released when dropped.
#[derive(Debug)]
pub struct ProcessLock {
    _file: std::fs::File,
}

/// Why a lock could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error("another process has held the session lock {path} for {secs} s")]
    Busy { path: String, secs: u64 },
    #[error("cannot lock {path}: {detail}")]
    Failed { path: String, detail: String },
}

impl ProcessLock {
    /// How long a refresh waits for another process's.
    pub const WAIT: Duration = Duration::from_secs(45);

    /// The lock file of the keychain record `identity` in `dir`.
    pub fn path(dir: &Path, identity: &str) -> PathBuf {
        dir.join(format!("{}.lock", stem(identity)))
    }

    /// Try once to take the lock; `Ok(None)` when another holds it.
    fn try_take(path: &Path) -> std::io::Result<Option<Self>> {
        if let Some(dir) = path.parent() {
            paths::private_dir(dir)?;
        }
        let file = paths::open_private(
            path,
            std::fs::OpenOptions::new().create(true).truncate(false).write(true),
        )?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Take the lock, waiting up to `wait`. The polls back off from 20 ms to
    /// 1 s. A file system without locks, or a directory that cannot be
    /// written, fails at once: the caller records a failed attempt and backs
    /// off, it does not spin.
    pub async fn acquire(path: PathBuf, wait: Duration) -> Result<Self, LockError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(20);
        loop {
            let p = path.clone();
            let taken = tokio::task::spawn_blocking(move || Self::try_take(&p))
                .await
                .map_err(|e| LockError::Failed {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?
                .map_err(|e| LockError::Failed {
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
            if let Some(lock) = taken {
                return Ok(lock);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Err(LockError::Busy {
                    path: path.display().to_string(),
                    secs: wait.as_secs(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }
}

/// The change file of a keychain record: every process writes it after it
/// changes the record, and watches it to learn of the others' changes.
#[derive(Debug, Clone)]
pub struct Beacon {
    path: PathBuf,
}

impl Beacon {
    /// The change file of the keychain record `identity` in `dir`.
    pub fn new(dir: &Path, identity: &str) -> Self {
        Self {
            path: dir.join(format!("{}.changed", stem(identity))),
        }
    }

    /// Tell the other processes the record changed. Best effort: a process
    /// that misses it still sees the change at its next action.
    pub fn signal(&self) {
        use std::io::Write;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                paths::private_dir(dir)?;
            }
            let mut f = paths::open_private(
                &self.path,
                std::fs::OpenOptions::new().create(true).write(true).truncate(true),
            )?;
            f.write_all(format!("{}\n", std::process::id()).as_bytes())
        };
        let _ = write();
    }

    /// A stream of "someone changed the record" notices: on Linux through
    /// inotify on the lock directory (no wake-up while nothing changes);
    /// elsewhere none, and a process learns of changes at its next action.
    pub fn watch(&self) -> Option<Watch> {
        watch::start(&self.path)
    }
}

pub use watch::Watch;

#[cfg(target_os = "linux")]
mod watch {
    use rustix::fs::inotify;
    use std::path::Path;
    use tokio::io::unix::AsyncFd;

    /// Notices of writes to one file, through inotify on its directory
    /// (the file may be created after the watch starts).
    pub struct Watch {
        fd: AsyncFd<std::os::fd::OwnedFd>,
        name: std::ffi::OsString,
    }

    pub fn start(path: &Path) -> Option<Watch> {
        let dir = path.parent()?;
        crate::os::paths::private_dir(dir).ok()?;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK).ok()?;
        inotify::add_watch(
            &fd,
            dir,
            inotify::WatchFlags::CLOSE_WRITE | inotify::WatchFlags::MOVED_TO,
        )
        .ok()?;
        Some(Watch {
            fd: crate::os::paths::async_fd(fd).ok()?,
            name: path.file_name()?.to_owned(),
        })
    }

    impl Watch {
        /// Wait until the file is written (by any process, this one too).
        pub async fn changed(&mut self) {
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
            loop {
                let Ok(mut ready) = self.fd.readable().await else {
                    return std::future::pending().await;
                };
                let mut hit = false;
                let mut reader = inotify::Reader::new(ready.get_inner(), &mut buf);
                loop {
                    match reader.next() {
                        Ok(event) => {
                            use std::os::unix::ffi::OsStrExt;
                            if event.file_name().is_some_and(|n| n.to_bytes() == self.name.as_bytes()) {
                                hit = true;
                            }
                        }
                        Err(e) if e == rustix::io::Errno::AGAIN => {
                            ready.clear_ready();
                            break;
                        }
                        Err(_) => return std::future::pending().await,
                    }
                }
                if hit {
                    return;
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod watch {
    use std::path::Path;

    /// No change notices on this platform.
    pub struct Watch;

    pub fn start(_path: &Path) -> Option<Watch> {
        None
    }

    impl Watch {
        pub async fn changed(&mut self) {
            std::future::pending().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_lock_excludes_a_second_holder_whatever_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = ProcessLock::path(dir.path(), "os-keychain:svc/profile:p");
        assert_eq!(path, ProcessLock::path(dir.path(), "os-keychain:svc/profile:p"));
        assert_ne!(path, ProcessLock::path(dir.path(), "os-keychain:svc/profile:q"));
        let held = ProcessLock::acquire(path.clone(), Duration::from_secs(1))
            .await
            .unwrap();
        // A second descriptor cannot take it while the first holds it.
        let err = ProcessLock::acquire(path.clone(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        drop(held);
        ProcessLock::acquire(path, Duration::from_millis(100)).await.unwrap();
    }

    #[tokio::test]
    async fn an_unusable_directory_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let started = tokio::time::Instant::now();
        let err = ProcessLock::acquire(file.join("sub/x.lock"), Duration::from_secs(30))
            .await
            .unwrap_err();
        assert!(matches!(err, LockError::Failed { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "it waited instead of failing"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_signal_reaches_a_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let beacon = Beacon::new(dir.path(), "x");
        let mut watch = beacon.watch().expect("inotify");
        let other = Beacon::new(dir.path(), "y");
        other.signal();
        // Another record's change does not count.
        assert!(tokio::time::timeout(Duration::from_millis(200), watch.changed())
            .await
            .is_err());
        beacon.signal();
        tokio::time::timeout(Duration::from_secs(2), watch.changed())
            .await
            .expect("the change was noticed");
    }
}
