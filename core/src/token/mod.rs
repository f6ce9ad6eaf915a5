//! Tokens: secret newtypes, JWT validation and the JWKS cache.

mod jwks;
mod jwt;
mod secret;

pub use jwks::{HttpJwksFetcher, JwksCache, JwksFetcher, StaticJwks};
pub use jwt::{Claims, TokenError, Validator, MAX_LEEWAY};
pub use secret::{fingerprint, Secret};

#[cfg(test)]
mod tests;
