//! Keychain failures (`storage::vault`).

/// Keychain failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the OS keychain is not available ({0}); the session is kept in memory only and will not survive a restart. On Linux, start a Secret Service (gnome-keyring or KeePassXC) and unlock it")]
    Unavailable(String),
    /// The keychain is there but locked, and unlocking it was refused or no
    /// prompt could be shown. What it holds stays there.
    #[error("the OS keychain is locked ({0}): the stored session cannot be read, nor a new one stored, until it is unlocked. Unlock it (on Linux the Login keyring: in Passwords and Keys, or by signing in to the desktop again) and try again; meanwhile a new session is kept in memory only")]
    Locked(String),
    #[error("the keychain entry is damaged ({0}); sign in again to replace it")]
    Corrupt(String),
    #[error("the keychain holds a session written by a newer version of Session Manager (format {found}, this one reads {reads}); it was left untouched. Use the newer version, or sign out there first")]
    NewerVersion { found: u32, reads: u32 },
    #[error("the keychain failed: {0}")]
    Failed(String),
}

impl VaultError {
    /// The keychain cannot be used now (missing, not answering, locked):
    /// the session lives in memory meanwhile. A damaged or newer record, or
    /// any other failure, is not this.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, VaultError::Unavailable(_) | VaultError::Locked(_))
    }
}
