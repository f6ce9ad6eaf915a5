//! JWT validation (RFC 7519, with the checks of RFC 8725, "JWT Best Current
//! Practices").
//!
//! The profile's allow-list chooses the algorithm, never the token's header:
//! `none`, HMAC and anything else off the list are refused before any key is
//! looked at (RFC 8725 section 3.1). The key comes from the provider's JWKS by
//! `kid`, and its type must fit the algorithm. Then the signature, `iss`,
//! `aud`, `exp` and `nbf` are checked, with a leeway of at most 60 s. Each
//! refusal names the check that failed.

use super::jwks::JwksCache;
use super::secret::Secret;
use crate::clock::{from_unix_seconds, Timestamp};
use crate::error::Error;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The largest clock leeway the engine accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);

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
}

/// The claims the engine uses from a validated token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub subject: String,
    pub issued_at: Option<Timestamp>,
    pub expires_at: Timestamp,
    pub not_before: Option<Timestamp>,
    /// Every claim, for provider-specific fields (tenant, customer, …).
    pub all: serde_json::Map<String, Value>,
}

impl Claims {
    /// A string claim, if present.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.all.get(name).and_then(Value::as_str)
    }
}

/// Validates provider tokens for one profile.
#[derive(Debug, Clone)]
pub struct Validator {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    jwks: Arc<JwksCache>,
}

fn decode_json_part(part: &str, what: &str) -> Result<serde_json::Map<String, Value>, TokenError> {
    let bytes = B64URL
        .decode(part)
        .map_err(|_| TokenError::Malformed(format!("the {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed(format!("the {what} is not a JSON object"))),
    }
}

fn time_claim(claims: &serde_json::Map<String, Value>, name: &'static str) -> Result<Option<Timestamp>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .and_then(from_unix_seconds)
            .map(Some)
            .ok_or(TokenError::MissingClaim(name)),
    }
}

impl Validator {
    /// A validator; `leeway` is capped at [`MAX_LEEWAY`].
    pub fn new(
        issuer: &str,
        audience: &str,
        algorithms: Vec<Algorithm>,
        leeway: Duration,
        jwks: Arc<JwksCache>,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            algorithms,
            leeway: leeway.min(MAX_LEEWAY),
            jwks,
        }
    }

    /// The clock leeway of time checks.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The same checks and keys, for tokens meant for `audience`.
    pub fn for_audience(&self, audience: &str) -> Self {
        Self {
            audience: audience.to_owned(),
            ..self.clone()
        }
    }

    /// The JWKS cache this validator uses.
    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.jwks
    }

    /// Validate `token` at time `now`.
    pub async fn validate(&self, token: &Secret, now: Timestamp) -> Result<Claims, Error> {
        let raw = token.expose();
        let parts: Vec<&str> = raw.split('.').collect();
        if parts.len() != 3 {
            return Err(TokenError::Malformed(format!("a JWS has 3 parts, this token has {}", parts.len())).into());
        }
        let header = decode_json_part(parts[0], "header")?;
        // RFC 8725 3.1: the allow-list decides, not the header.
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("(missing)");
        let allowed = || {
            self.algorithms
                .iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let alg = Algorithm::from_str(alg_name)
            .ok()
            .filter(|a| self.algorithms.contains(a))
            .ok_or_else(|| TokenError::AlgorithmNotAllowed {
                alg: alg_name.to_owned(),
                allowed: allowed(),
            })?;
        if parts[2].is_empty() {
            return Err(TokenError::Malformed("the signature is missing".into()).into());
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(TokenError::MissingKid)?;
        let jwk = self
            .jwks
            .key(kid)
            .await?
            .ok_or_else(|| TokenError::UnknownKid(kid.to_owned()))?;
        let key_fits = matches!(
            (&jwk.algorithm, alg),
            (
                AlgorithmParameters::RSA(_),
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512,
            ) | (
                AlgorithmParameters::EllipticCurve(_),
                Algorithm::ES256 | Algorithm::ES384
            ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
        );
        let declared_fits = jwk
            .common
            .key_algorithm
            .map(|ka| format!("{ka:?}") == format!("{alg:?}"))
            .unwrap_or(true);
        if !key_fits || !declared_fits {
            return Err(TokenError::KeyMismatch {
                kid: kid.to_owned(),
                alg: format!("{alg:?}"),
            }
            .into());
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::KeyMismatch {
            kid: kid.to_owned(),
            alg: format!("{alg:?}"),
        })?;
        // Signature only: the claims are checked below against the injected
        // clock, with messages that name the check.
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(raw, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => {
                    TokenError::BadSignature(kid.to_owned())
                }
                ErrorKind::InvalidAlgorithm => TokenError::AlgorithmNotAllowed {
                    alg: alg_name.to_owned(),
                    allowed: allowed(),
                },
                _ => TokenError::Malformed("the payload is not valid".into()),
            }
        })?;
        let claims = data.claims;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(TokenError::MissingClaim("iss"))?;
        if iss != self.issuer {
            return Err(TokenError::WrongIssuer {
                expected: self.issuer.clone(),
                found: iss.to_owned(),
            }
            .into());
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => *a == self.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !aud_ok {
            return Err(TokenError::WrongAudience {
                expected: self.audience.clone(),
                found: claims
                    .get("aud")
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "none".into()),
            }
            .into());
        }
        let leeway = chrono::Duration::from_std(self.leeway).unwrap_or_default();
        let expires_at = time_claim(&claims, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
        if now >= expires_at + leeway {
            return Err(TokenError::Expired(expires_at.to_rfc3339()).into());
        }
        let not_before = time_claim(&claims, "nbf")?;
        if let Some(nbf) = not_before {
            if now + leeway < nbf {
                return Err(TokenError::NotYetValid(nbf.to_rfc3339()).into());
            }
        }
        let issued_at = time_claim(&claims, "iat")?;
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or(TokenError::MissingClaim("sub"))?
            .to_owned();
        Ok(Claims {
            subject,
            issued_at,
            expires_at,
            not_before,
            all: claims,
        })
    }
}
