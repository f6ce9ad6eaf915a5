//! Secret newtypes, one per role: a token can be used, but not printed,
//! serialized or mistaken for another kind of token.
//!
//! Each type has a redacted `Debug` (`RefreshToken([redacted])`), no
//! `Display` and no `Serialize`, so a secret cannot reach a log line, an
//! error message or an IPC payload by accident. Its memory is overwritten
//! when it is dropped. Use `expose()` at the one place that needs the value
//! (an HTTP header or body, the keychain) and `fingerprint()` everywhere else.
//!
//! The types do not convert into each other, so a function that takes a
//! refresh token cannot be handed an access token:
//!
//! ```compile_fail
//! use session_core::token::{AccessToken, RefreshToken};
//! fn redeem(_: &RefreshToken) {}
//! redeem(&AccessToken::new("eyJ…"));
//! ```
//!
//! and none of them can be serialized:
//!
//! ```compile_fail
//! use session_core::token::Password;
//! serde_json::to_string(&Password::new("hunter2")).unwrap();
//! ```

use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Compare two byte strings in time that does not depend on where they
/// differ (only on their lengths).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

macro_rules! secret_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<String>);

        impl $name {
            /// Wrap a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Zeroizing::new(value.into()))
            }

            /// The secret value.
            ///
            /// # Security
            /// Call it only where the value must leave the process (a
            /// request, the keychain). Never format it into a message.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// A short SHA-256 fingerprint that identifies the secret in logs
            /// without revealing it.
            pub fn fingerprint(&self) -> String {
                fingerprint(self.0.as_bytes())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        /// Equal values compare in constant time.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl Eq for $name {}
    };
}

secret_type!(
    /// The token sent as `Authorization: Bearer`: an OpenID Connect access
    /// token, or FinHub's `userSessionToken`.
    AccessToken
);
secret_type!(
    /// A refresh token: redeemed once for a new grant.
    RefreshToken
);
secret_type!(
    /// An OpenID Connect ID token: proof of the sign-in for this app, never
    /// a credential for an API.
    IdToken
);
secret_type!(
    /// A person's password. It can be read from a front (IPC, stdin) but
    /// never written anywhere.
    Password
);
secret_type!(
    /// An OAuth client secret (confidential clients only).
    ClientSecret
);
secret_type!(
    /// A PKCE code verifier (RFC 7636): it stays in memory for one sign-in.
    PkceVerifier
);

/// A password arrives from fronts as a string (the desktop app's `sign_in`
/// command); it can be deserialized, never serialized.
impl<'de> serde::Deserialize<'de> for Password {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Password::new)
    }
}

/// A token the JWT validator may read: access tokens (FinHub's session token
/// included) and ID tokens.
pub trait Jwt: private::Sealed {
    /// The compact JWS text.
    fn text(&self) -> &str;
}

impl Jwt for AccessToken {
    fn text(&self) -> &str {
        self.expose()
    }
}

impl Jwt for IdToken {
    fn text(&self) -> &str {
        self.expose()
    }
}

mod private {
    pub trait Sealed {}
    impl Sealed for super::AccessToken {}
    impl Sealed for super::IdToken {}
}

/// `sha256:` and the first 12 hex digits of the SHA-256 of `bytes`: enough to
/// tell two tokens apart in an audit log, far too little to recover one.
pub fn fingerprint(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    // One allocation: the engine writes one with every API call's record.
    let mut out = String::with_capacity(19);
    out.push_str("sha256:");
    for b in &digest[..6] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_secret_and_names_the_role() {
        let s = RefreshToken::new("eyJhbGciOiJSUzI1NiJ9.very-secret-value");
        let printed = format!("{s:?} {:?}", Some(&s));
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(printed.contains("RefreshToken([redacted])"), "{printed}");
        assert_eq!(format!("{:?}", Password::new("pw")), "Password([redacted])");
    }

    #[test]
    fn fingerprint_is_short_stable_and_not_the_value() {
        let s = AccessToken::new("abc");
        assert_eq!(s.fingerprint(), "sha256:ba7816bf8f01");
        assert_eq!(s.fingerprint(), AccessToken::new("abc").fingerprint());
        assert_ne!(s.fingerprint(), AccessToken::new("abd").fingerprint());
    }

    #[test]
    fn a_password_deserializes_from_a_front() {
        let p: Password = serde_json::from_str("\"correct horse\"").unwrap();
        assert_eq!(p.expose(), "correct horse");
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(RefreshToken::new("a"), RefreshToken::new("a"));
        assert_ne!(RefreshToken::new("a"), RefreshToken::new("b"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
