//! Secret newtypes: a token can be used, but not printed or serialized.

use sha2::{Digest, Sha256};
use std::fmt;

/// A secret string (a session token, a refresh token, a password).
///
/// `Debug` prints `Secret([redacted])`; there is no `Display` and no
/// `Serialize`, so a secret cannot reach a log line, an error message or an
/// IPC payload by accident. Use [`Secret::expose`] at the one place that needs
/// the value (an HTTP header, the keychain) and [`Secret::fingerprint`]
/// everywhere else.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call it only where the value must leave the process
    /// (a request header, the keychain).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short SHA-256 fingerprint that identifies the secret in logs
    /// without revealing it.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// `sha256:` and the first 12 hex digits of the SHA-256 of `bytes`: enough to
/// tell two tokens apart in an audit log, far too little to recover one.
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret() {
        let s = Secret::new("eyJhbGciOiJSUzI1NiJ9.very-secret-value");
        let printed = format!("{s:?} {:?}", Some(&s));
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn fingerprint_is_short_stable_and_not_the_value() {
        let s = Secret::new("abc");
        assert_eq!(s.fingerprint(), "sha256:ba7816bf8f01");
        assert_eq!(s.fingerprint(), Secret::new("abc").fingerprint());
        assert_ne!(s.fingerprint(), Secret::new("abd").fingerprint());
    }
}
