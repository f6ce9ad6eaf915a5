//! Where the vault's entries go: the [`SecretStore`] seam, the OS keychain
//! behind it ([`KeyringStore`]) and, for tests, [`MemoryStore`].

use super::*;

/// The default keychain service name.
pub const DEFAULT_SERVICE: &str = "session-manager";
/// The environment variable that overrides the keychain service name (tests
/// use it to get a namespace of their own).
pub const SERVICE_ENV: &str = "SESSION_MANAGER_KEYCHAIN_SERVICE";

/// A key-value store of secrets. The OS keychain is the real one; tests may
/// use `MemoryStore`.
pub trait SecretStore: Send + Sync {
    /// The value under `account`, `None` when there is none.
    fn get(&self, account: &str) -> Result<Option<String>, VaultError>;
    /// Store `value` under `account`.
    fn set(&self, account: &str, value: &str) -> Result<(), VaultError>;
    /// Delete `account`; `Ok(false)` when there was no such entry.
    fn delete(&self, account: &str) -> Result<bool, VaultError>;
    /// Which keychain namespace this is (two stores with the same identity
    /// hold the same sessions). Processes derive their refresh lock from it.
    fn identity(&self) -> String;
    /// Which keychain answers, for diagnostics (`doctor`).
    fn backend(&self) -> String {
        self.identity()
    }
}

/// The OS keychain through `keyring`.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

impl KeyringStore {
    /// The keychain namespace `service`.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    /// The namespace from `SESSION_MANAGER_KEYCHAIN_SERVICE`, or the default.
    pub fn from_env() -> Self {
        Self::new(
            std::env::var(SERVICE_ENV)
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_SERVICE.into()),
        )
    }

    /// The keychain service name.
    pub fn service(&self) -> &str {
        &self.service
    }
}

/// Linux: the Secret Service, one connection per process
/// ([`super::secret_service`]).
#[cfg(target_os = "linux")]
mod os {
    use super::super::secret_service;
    use super::*;

    impl SecretStore for KeyringStore {
        fn get(&self, account: &str) -> Result<Option<String>, VaultError> {
            secret_service::get(&self.service, account)
        }

        fn set(&self, account: &str, value: &str) -> Result<(), VaultError> {
            secret_service::set(&self.service, account, value)
        }

        fn delete(&self, account: &str) -> Result<bool, VaultError> {
            secret_service::delete(&self.service, account)
        }

        fn identity(&self) -> String {
            format!("os-keychain:{}", self.service)
        }

        fn backend(&self) -> String {
            match secret_service_owner() {
                Some(owner) => format!("the Secret Service on the session bus, served by {owner}"),
                None => "the Secret Service on the session bus (its process is unknown)".into(),
            }
        }
    }

    /// The process that owns `org.freedesktop.secrets` on the session bus
    /// (gnome-keyring-daemon, KeePassXC, …), by asking the bus for its pid.
    fn secret_service_owner() -> Option<String> {
        let conn = dbus::blocking::Connection::new_session().ok()?;
        let bus = conn.with_proxy(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            std::time::Duration::from_secs(2),
        );
        let (pid,): (u32,) = bus
            .method_call(
                "org.freedesktop.DBus",
                "GetConnectionUnixProcessID",
                ("org.freedesktop.secrets",),
            )
            .ok()?;
        let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        Some(format!("{} (pid {pid})", name.trim()))
    }
}

/// macOS and Windows: the platform's keychain through the `keyring` crate.
#[cfg(any(target_os = "macos", target_os = "windows"))]
mod os {
    use super::*;

    fn entry(service: &str, account: &str) -> Result<keyring::Entry, VaultError> {
        keyring::Entry::new(service, account).map_err(map_keyring)
    }

    fn map_keyring(e: keyring::Error) -> VaultError {
        match e {
            keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
                VaultError::Unavailable(inner.to_string())
            }
            keyring::Error::BadEncoding(_) => VaultError::Corrupt("not UTF-8".into()),
            other => VaultError::Failed(other.to_string()),
        }
    }

    impl SecretStore for KeyringStore {
        fn get(&self, account: &str) -> Result<Option<String>, VaultError> {
            match entry(&self.service, account)?.get_password() {
                Ok(v) => Ok(Some(v)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(map_keyring(e)),
            }
        }

        fn set(&self, account: &str, value: &str) -> Result<(), VaultError> {
            entry(&self.service, account)?.set_password(value).map_err(map_keyring)
        }

        fn delete(&self, account: &str) -> Result<bool, VaultError> {
            match entry(&self.service, account)?.delete_credential() {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(map_keyring(e)),
            }
        }

        fn identity(&self) -> String {
            format!("os-keychain:{}", self.service)
        }

        fn backend(&self) -> String {
            if cfg!(target_os = "macos") {
                "the macOS Keychain".into()
            } else {
                "the Windows Credential Manager".into()
            }
        }
    }
}

/// No keychain the app supports on this platform: say so, truthfully.
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
mod os {
    use super::*;

    fn none() -> VaultError {
        VaultError::Unavailable("this platform has no keychain Session Manager supports".into())
    }

    impl SecretStore for KeyringStore {
        fn get(&self, _account: &str) -> Result<Option<String>, VaultError> {
            Err(none())
        }
        fn set(&self, _account: &str, _value: &str) -> Result<(), VaultError> {
            Err(none())
        }
        fn delete(&self, _account: &str) -> Result<bool, VaultError> {
            Err(none())
        }
        fn identity(&self) -> String {
            format!("os-keychain:{}", self.service)
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use memory::MemoryStore;

#[cfg(any(test, feature = "test-support"))]
mod memory {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Mutex;

    /// An in-memory store for tests. It can pretend to be unavailable, or to
    /// fail after a number of writes.
    #[derive(Debug, Default)]
    pub struct MemoryStore {
        entries: Mutex<HashMap<String, String>>,
        /// When set, every call fails as a missing keychain does.
        pub unavailable: AtomicBool,
        /// When above zero, counts writes down; the write that reaches zero
        /// and every later one fail as a locked keychain does.
        pub writes_left: AtomicU32,
        id: Mutex<Option<String>>,
    }

    impl MemoryStore {
        /// A store holding `entries`.
        pub fn with_entries(entries: HashMap<String, String>) -> Self {
            Self {
                entries: Mutex::new(entries),
                ..Self::default()
            }
        }

        /// A snapshot of every entry.
        pub fn entries(&self) -> HashMap<String, String> {
            self.entries.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }

        /// Give this store the identity of another (two handles on one
        /// keychain, as two processes have).
        pub fn same_keychain_as(self, other: &MemoryStore) -> Self {
            *self.id.lock().unwrap_or_else(|e| e.into_inner()) = Some(other.identity());
            self
        }

        /// Let `n` more writes succeed, then fail every one.
        pub fn fail_after_writes(&self, n: u32) {
            self.writes_left.store(n + 1, Ordering::SeqCst);
        }

        fn check(&self) -> Result<(), VaultError> {
            if self.unavailable.load(Ordering::SeqCst) {
                return Err(VaultError::Unavailable(
                    "no Secret Service on the session bus (simulated)".into(),
                ));
            }
            Ok(())
        }

        fn check_write(&self) -> Result<(), VaultError> {
            self.check()?;
            let left = self
                .writes_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n > 1).then(|| n - 1));
            match left {
                Err(1) => Err(VaultError::Unavailable("the keychain was locked (simulated)".into())),
                _ => Ok(()),
            }
        }
    }

    impl SecretStore for MemoryStore {
        fn get(&self, account: &str) -> Result<Option<String>, VaultError> {
            self.check()?;
            Ok(self
                .entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(account)
                .cloned())
        }
        fn set(&self, account: &str, value: &str) -> Result<(), VaultError> {
            self.check_write()?;
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(account.into(), value.into());
            Ok(())
        }
        fn delete(&self, account: &str) -> Result<bool, VaultError> {
            self.check()?;
            Ok(self
                .entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(account)
                .is_some())
        }
        fn identity(&self) -> String {
            self.id
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| format!("memory:{:p}", self as *const Self))
                .clone()
        }
    }
}
