//! Keychain failures (`storage::vault`).

/// Keychain failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the OS keychain is not available ({0}); the session is kept in memory only and will not survive a restart. On Linux, start a Secret Service (gnome-keyring or KeePassXC) and unlock it")]
    Unavailable(String),
    #[error("the keychain entry is damaged ({0}); sign in again to replace it")]
    Corrupt(String),
    #[error("the keychain holds a session written by a newer version of Session Manager (format {found}, this one reads {reads}); it was left untouched. Use the newer version, or sign out there first")]
    NewerVersion { found: u32, reads: u32 },
    #[error("the keychain failed: {0}")]
    Failed(String),
}
