//! Tokens: secret newtypes by role, JWT validation and the JWKS cache.

mod jwks;
mod jwt;
mod secret;

pub use jwks::{cache_max_age, is_signing_key, Fetched, HttpJwksFetcher, JwksCache, JwksFetcher, StaticJwks};
pub use jwt::{explain_skew, Claims, TokenError, TokenKind, Validator, MAX_FUTURE, MAX_LEEWAY};
pub use secret::{
    constant_time_eq, fingerprint, AccessToken, ClientSecret, IdToken, Jwt, Password, PkceVerifier, RefreshToken,
};

#[cfg(test)]
mod tests;
