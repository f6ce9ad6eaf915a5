//! Why a token was refused (the checks of `token::Validator`).

/// Why a token was refused. The message names the failed check; it never
/// contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("algorithm check failed: '{alg}' is not in the profile's allow-list ({allowed})")]
    AlgorithmNotAllowed { alg: String, allowed: String },
    #[error("key check failed: the token names no key id (kid)")]
    MissingKid,
    #[error("key check failed: the provider's JWKS has no key with kid '{0}', even after fetching it again")]
    UnknownKid(String),
    #[error("key check failed: key '{kid}' cannot verify {alg} signatures")]
    KeyMismatch { kid: String, alg: String },
    #[error("signature check failed: the signature does not verify with key '{0}'")]
    BadSignature(String),
    #[error("issuer check failed: expected iss '{expected}', the token has '{found}'")]
    WrongIssuer { expected: String, found: String },
    #[error("audience check failed: expected aud '{expected}', the token has {found}")]
    WrongAudience { expected: String, found: String },
    #[error("expiry check failed: the token expired at {0}")]
    Expired(String),
    #[error("not-before check failed: the token is not valid before {0}")]
    NotYetValid(String),
    #[error("claim check failed: the required claim '{0}' is missing or not of the right type")]
    MissingClaim(&'static str),
    #[error("nonce check failed: the ID token's nonce is not the one this sign-in sent")]
    WrongNonce,
    #[error("authorized-party check failed: {0}")]
    WrongAzp(String),
    #[error("issued-at check failed: the token says it was issued at {0}, which is in the future")]
    IssuedInFuture(String),
    #[error("subject check failed: the token is for '{found}', the session is for '{expected}'")]
    WrongSubject { expected: String, found: String },
    #[error("critical-header check failed: the token requires extensions this app does not implement ({0})")]
    UnsupportedCritical(String),
    #[error("type check failed: expected {expected}, the token is {found}")]
    WrongType { expected: &'static str, found: String },
    #[error("time check failed: the claim '{claim}' ({value}) is not a plausible time")]
    ImplausibleTime { claim: &'static str, value: String },
    #[error("at_hash check failed: the ID token's at_hash does not match the access token")]
    WrongAtHash,
    #[error("auth_time check failed: {0}")]
    AuthTooOld(String),
    #[error("{check}; the provider's clock is {} s {} this machine's (its Date header says so): set the right time on this machine, or ask the provider to fix theirs", offset_secs.unsigned_abs(), if *offset_secs > 0 { "ahead of" } else { "behind" })]
    ClockSkew { check: String, offset_secs: i64 },
}

impl TokenError {
    /// Whether this is a time check (expiry, not-before, issued-at).
    pub fn is_time_check(&self) -> bool {
        matches!(
            self,
            TokenError::Expired(_) | TokenError::NotYetValid(_) | TokenError::IssuedInFuture(_)
        )
    }
}
