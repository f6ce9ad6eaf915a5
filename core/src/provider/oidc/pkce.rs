//! PKCE (RFC 7636) and the random `state` and `nonce` values.
//!
//! The verifier is 32 random bytes in base64url (43 characters, inside the
//! 43..128 range of section 4.1); the challenge is `BASE64URL(SHA-256(verifier))`
//! (method `S256`, section 4.2). `plain` is never used.

use crate::token::PkceVerifier;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 bytes from the OS-seeded CSPRNG, base64url without padding.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64URL.encode(bytes)
}

/// A PKCE pair. The verifier stays in memory for one sign-in; only the
/// challenge travels in the authorization request.
pub struct Pkce {
    verifier: PkceVerifier,
    challenge: String,
}

impl Pkce {
    /// A fresh random pair.
    pub fn generate() -> Self {
        Self::from_verifier(random_token())
    }

    /// The pair for a given verifier (tests use the RFC's vector).
    pub fn from_verifier(verifier: String) -> Self {
        let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier: PkceVerifier::new(verifier),
            challenge,
        }
    }

    /// The verifier, sent once with the code (RFC 7636 section 4.5).
    pub fn verifier(&self) -> &PkceVerifier {
        &self.verifier
    }

    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// Always `S256`.
    pub const METHOD: &'static str = "S256";
}

/// Compare two strings in time independent of where they differ (for
/// `state` and `nonce`).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    crate::token::constant_time_eq(a.as_bytes(), b.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let p = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(p.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(Pkce::METHOD, "S256");
    }

    #[test]
    fn generated_verifiers_are_fresh_and_well_formed() {
        let (a, b) = (Pkce::generate(), Pkce::generate());
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(a.verifier().expose().len(), 43);
        let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
        assert!(a.verifier().expose().chars().all(unreserved));
        assert_eq!(
            Pkce::from_verifier(a.verifier().expose().into()).challenge(),
            a.challenge()
        );
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
