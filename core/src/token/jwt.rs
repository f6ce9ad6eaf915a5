//! JWT validation (RFC 7519, with the checks of RFC 8725, "JWT Best Current
//! Practices").
//!
//! The profile's allow-list chooses the algorithm, never the token's header:
//! `none`, HMAC and anything else off the list are refused before any key is
//! looked at (RFC 8725 section 3.1). The key comes from the provider's JWKS by
//! `kid`, and its type must fit the algorithm. Then the signature, `iss`,
//! `aud`, `exp` and `nbf` are checked, with a leeway of at most 60 s. Each
//! refusal names the check that failed.
//!
//! Also from RFC 8725 and RFC 7515:
//! - a header with `crit` is refused: this validator implements no
//!   extension, and section 4.1.11 of RFC 7515 says unknown critical ones
//!   must be refused;
//! - explicit typing (RFC 8725 section 3.11, RFC 9068): the validator knows
//!   which [`TokenKind`] it expects. An ID token is never accepted as an
//!   access token, nor the reverse (see [`Validator::validate`]);
//! - time claims must be plausible (not negative, not more than ten years
//!   ahead) before any arithmetic, so no value can overflow a date.

use super::jwks::JwksCache;
use super::secret::Jwt;
use crate::error::Error;
use crate::os::clock::{from_unix_seconds, Timestamp};
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

/// How far ahead a token's time claims may lie: further is not a real token.
pub const MAX_FUTURE: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// What a validator expects a token to be (RFC 8725 section 3.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// FinHub's `userSessionToken`: no OpenID Connect tokens exist beside
    /// it, so a header `typ` of `JWT` or `at+jwt` (or none) is accepted.
    Session,
    /// An OAuth access token. `typ: at+jwt` (RFC 9068) proves it. Without
    /// it, a token that carries an ID token's marks (`nonce`, a payload
    /// `typ` of `ID`) is refused.
    Access,
    /// An OpenID Connect ID token: `typ` absent or `JWT`, never `at+jwt`.
    Id,
}

pub use crate::error::TokenError;

/// A failed time check explained by the clocks: when the provider's clock
/// (from its `Date` header) differs from ours by more than `leeway`, the
/// error says so, since no token can pass until one of the clocks is set
/// right. Other errors pass unchanged.
pub fn explain_skew(error: Error, server_date: Option<Timestamp>, now: Timestamp, leeway: Duration) -> Error {
    let Error::Token(t) = &error else {
        return error;
    };
    let Some(date) = server_date.filter(|_| t.is_time_check()) else {
        return error;
    };
    let offset_secs = (date - now).num_seconds();
    if offset_secs.unsigned_abs() <= leeway.as_secs() {
        return error;
    }
    TokenError::ClockSkew {
        check: t.to_string(),
        offset_secs,
    }
    .into()
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
    kind: TokenKind,
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

/// A NumericDate claim, if present, refused when it is not a plausible time:
/// negative, or more than [`MAX_FUTURE`] after `now`.
fn time_claim(
    claims: &serde_json::Map<String, Value>,
    name: &'static str,
    now: Timestamp,
) -> Result<Option<Timestamp>, TokenError> {
    let Some(v) = claims.get(name) else {
        return Ok(None);
    };
    let implausible = || TokenError::ImplausibleTime {
        claim: name,
        value: v.to_string().chars().take(40).collect(),
    };
    let secs = match (v.as_i64(), v.as_f64()) {
        (Some(s), _) => s,
        (None, Some(f)) if f.is_finite() && f >= 0.0 && f < i64::MAX as f64 => f as i64,
        _ => return Err(TokenError::MissingClaim(name)),
    };
    let latest = now.timestamp().saturating_add(MAX_FUTURE.as_secs() as i64);
    if !(0..=latest).contains(&secs) {
        return Err(implausible());
    }
    from_unix_seconds(secs).map(Some).ok_or_else(implausible)
}

/// A header's `typ`, lower case, without an `application/` prefix (RFC 7515
/// section 4.1.9).
fn media_type(header: &serde_json::Map<String, Value>) -> Option<String> {
    header.get("typ").map(|t| {
        let t = t.as_str().unwrap_or("(not text)").to_ascii_lowercase();
        t.strip_prefix("application/").map(str::to_owned).unwrap_or(t)
    })
}

/// Explicit typing: whether `header` and `claims` fit `kind`.
fn check_type(
    kind: TokenKind,
    header: &serde_json::Map<String, Value>,
    claims: &serde_json::Map<String, Value>,
) -> Result<(), TokenError> {
    let typ = media_type(header);
    let payload_typ = claims.get("typ").and_then(Value::as_str).map(str::to_ascii_lowercase);
    let found = |what: &str| TokenError::WrongType {
        expected: match kind {
            TokenKind::Session => "a session token",
            TokenKind::Access => "an access token",
            TokenKind::Id => "an ID token",
        },
        found: what.to_owned(),
    };
    match (kind, typ.as_deref()) {
        (TokenKind::Id, None | Some("jwt")) if payload_typ.as_deref() == Some("bearer") => {
            Err(found("an access token (payload typ Bearer)"))
        }
        (TokenKind::Id, None | Some("jwt")) => Ok(()),
        (TokenKind::Id, Some("at+jwt")) => Err(found("an access token (typ at+jwt)")),
        (TokenKind::Access, Some("at+jwt")) => Ok(()),
        (TokenKind::Access, None | Some("jwt"))
            if claims.contains_key("nonce") || payload_typ.as_deref() == Some("id") =>
        {
            Err(found("an ID token"))
        }
        (TokenKind::Access, None | Some("jwt")) => Ok(()),
        (TokenKind::Session, None | Some("jwt") | Some("at+jwt")) => Ok(()),
        (_, Some(other)) => Err(found(&format!(
            "of type '{}'",
            other.chars().take(40).collect::<String>()
        ))),
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
            kind: TokenKind::Session,
        }
    }

    /// The same checks and keys, for OAuth access tokens.
    pub fn for_access_tokens(&self) -> Self {
        Self {
            kind: TokenKind::Access,
            ..self.clone()
        }
    }

    /// The same keys, for ID tokens of the client `client_id` (which is
    /// their audience).
    pub fn for_id_tokens(&self, client_id: &str) -> Self {
        Self {
            audience: client_id.to_owned(),
            kind: TokenKind::Id,
            ..self.clone()
        }
    }

    /// The kind of token this validator accepts.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The clock leeway of time checks.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// The JWKS cache this validator uses.
    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.jwks
    }

    /// Validate `token` at time `now`.
    pub async fn validate(&self, token: &impl Jwt, now: Timestamp) -> Result<Claims, Error> {
        let raw = token.text();
        let parts: Vec<&str> = raw.split('.').collect();
        if parts.len() != 3 {
            return Err(TokenError::Malformed(format!("a JWS has 3 parts, this token has {}", parts.len())).into());
        }
        let header = decode_json_part(parts[0], "header")?;
        // RFC 7515 4.1.11: no extension is implemented, so any is refused.
        if let Some(crit) = header.get("crit") {
            return Err(TokenError::UnsupportedCritical(crit.to_string().chars().take(100).collect()).into());
        }
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
        check_type(self.kind, &header, &claims)?;
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
        let expires_at = time_claim(&claims, "exp", now)?.ok_or(TokenError::MissingClaim("exp"))?;
        // Plausible times cannot overflow with a leeway of a minute.
        if expires_at.checked_add_signed(leeway).is_none_or(|latest| now >= latest) {
            return Err(TokenError::Expired(expires_at.to_rfc3339()).into());
        }
        let not_before = time_claim(&claims, "nbf", now)?;
        if let Some(nbf) = not_before {
            if now.checked_add_signed(leeway).is_none_or(|t| t < nbf) {
                return Err(TokenError::NotYetValid(nbf.to_rfc3339()).into());
            }
        }
        let issued_at = time_claim(&claims, "iat", now)?;
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
