//! From a provider's grant to a session record: validation, the record's
//! fields, the provider's clock.

use super::Engine;
use crate::error::Error;
use crate::os::clock::{from_unix_seconds, Timestamp};
use crate::profile::ProviderKind;
use crate::provider::Grant;
use crate::storage::vault::SessionRecord;
use crate::token::{AccessToken, Claims, RefreshToken, TokenError};
use base64::Engine as _;
use std::time::Duration;
use uuid::Uuid;

/// Clocks closer than this (ms) are taken to agree; see
/// [`Engine::clock_offset`].
pub(super) const IN_STEP_MS: i64 = 1000;

/// Whether `token` has the shape of a JWS: three parts and a JSON header
/// that names an algorithm.
pub(super) fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .is_some_and(|h| h.get("alg").is_some())
}

/// The `exp` of a refresh token that is a JWT, read without verifying it
/// (only the provider can): for display and to stop retrying a refresh
/// token that has surely expired, never to grant access.
pub(super) fn refresh_token_expiry(token: &RefreshToken) -> Option<Timestamp> {
    let payload = token.expose().split('.').nth(1)?;
    if !looks_like_jwt(token.expose()) {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    from_unix_seconds(claims.get("exp")?.as_i64()?)
}

/// Whether a failed check of a provider's answer means the answer cannot be
/// trusted (as opposed to a passing condition: clock skew, a key set that
/// could not be fetched, a key not yet published).
pub(super) fn is_security_failure(error: &Error) -> bool {
    match error {
        Error::Token(t) => !matches!(
            t,
            TokenError::Expired(_)
                | TokenError::NotYetValid(_)
                | TokenError::IssuedInFuture(_)
                | TokenError::ClockSkew { .. }
                | TokenError::UnknownKid(_)
        ),
        _ => false,
    }
}

impl Engine {
    async fn validate(&self, token: &AccessToken) -> Result<Claims, Error> {
        self.inner.validator.validate(token, self.now()).await
    }

    /// The time a renewal's answer is checked at: the provider's clock
    /// when its `Date` header told it (a machine whose clock is off keeps
    /// its session), else ours corrected by the last known offset. A
    /// sign-in is checked against this machine's clock, so that a wrong
    /// clock is named before a session starts.
    fn renewal_check_time(&self, grant: &Grant) -> Timestamp {
        match self.clock_offset(grant) {
            Some(offset) => super::timing::after_signed(self.now(), offset),
            None => self.provider_now(),
        }
    }

    /// Whether the bearer token must be validated as a JWT: always for
    /// FinHub; for OIDC only when the profile names the `audience` it
    /// expects and the token is a JWT. Otherwise the access token is for
    /// the resource server and the client treats it as opaque (RFC 9068
    /// section 6; RFC 6749 section 1.4): its lifetime is `expires_in`.
    pub(super) fn bearer_is_checked(&self, token: &AccessToken) -> bool {
        let p = &self.inner.profile;
        p.provider == ProviderKind::Finhub || (p.check_access_token && looks_like_jwt(token.expose()))
    }

    /// Validate a stored bearer (restore).
    pub(super) async fn check_bearer(&self, token: &AccessToken) -> Result<(), Error> {
        if self.bearer_is_checked(token) {
            self.validate(token).await?;
        }
        Ok(())
    }

    /// Check a grant before it is used: its bearer token (when checkable),
    /// and, when it extends a session, that it is for the same person.
    pub(super) async fn verify_grant(&self, grant: &Grant, same_user: Option<&str>) -> Result<Claims, Error> {
        let claims = if self.bearer_is_checked(&grant.bearer) {
            let at = match same_user {
                Some(_) => self.renewal_check_time(grant),
                None => self.now(),
            };
            self.inner
                .validator
                .validate(&grant.bearer, at)
                .await
                .map_err(|e| crate::token::explain_skew(e, grant.server_date, at, super::LEEWAY))?
        } else {
            // An opaque access token: its lifetime is what the provider
            // announced (checked to be at most a year), and its subject is
            // the ID token's, or, on a refresh that brings no ID token
            // (OpenID Connect Core 12.2), the session's.
            let now = self.provider_now();
            let lifetime = grant
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or_else(|| self.inner.profile.environment.token_lifetime());
            let expires_at = chrono::Duration::from_std(lifetime)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .ok_or_else(|| Error::Protocol(format!("expires_in {lifetime:?} does not fit a date")))?;
            Claims {
                subject: grant
                    .subject
                    .clone()
                    .or_else(|| same_user.map(str::to_owned))
                    .ok_or(TokenError::MissingClaim("sub"))?,
                issued_at: Some(now),
                expires_at,
                not_before: None,
                all: Default::default(),
            }
        };
        if let Some(expected) = same_user {
            let found = grant.subject.as_deref().unwrap_or(&claims.subject);
            if found != expected {
                return Err(TokenError::WrongSubject {
                    expected: expected.to_owned(),
                    found: found.to_owned(),
                }
                .into());
            }
        }
        Ok(claims)
    }

    /// The provider's clock minus ours, from a grant's `Date` (whole seconds,
    /// so half a second is added to centre the error). Within
    /// [`IN_STEP_MS`] the clocks are taken to agree: a `Date` cannot tell
    /// them apart more finely, and a measured fraction differs from one
    /// process to the next, so the app and sessionctl would show the same
    /// session ending at times a fraction of a second apart.
    pub(super) fn clock_offset(&self, grant: &Grant) -> Option<i64> {
        grant.server_date.map(
            |d| match (d + chrono::Duration::milliseconds(500) - self.now()).num_milliseconds() {
                ms if ms.abs() < IN_STEP_MS => 0,
                ms => ms,
            },
        )
    }

    /// Turn a validated grant into the session record.
    pub(super) fn record_from(
        &self,
        grant: Grant,
        claims: &Claims,
        session_id: Uuid,
        refresh_count: u32,
        previous: Option<&SessionRecord>,
    ) -> SessionRecord {
        let now = self.provider_now();
        // A provider that does not rotate keeps the old refresh token valid.
        let rotated = grant.refresh.is_some();
        let refresh = grant.refresh.or_else(|| previous.and_then(|p| p.refresh.clone()));
        // Until when it can be renewed: what the provider said with this
        // answer (Keycloak's refresh_expires_in), else the refresh token's
        // own `exp` when it is a JWT, else what was known before.
        let renewable_until = match grant.refresh_expires_in {
            Some(secs) => Some(super::timing::after(now, Duration::from_secs(secs))),
            None => refresh
                .as_ref()
                .and_then(refresh_token_expiry)
                .or_else(|| previous.filter(|_| !rotated).and_then(|p| p.renewable_until)),
        };
        SessionRecord {
            session_id,
            user: grant.subject.clone().unwrap_or_else(|| claims.subject.clone()),
            name: grant.name.or_else(|| previous.and_then(|p| p.name.clone())),
            email: grant.email.or_else(|| previous.and_then(|p| p.email.clone())),
            tenant: grant.tenant.or_else(|| claims.str("tid").map(str::to_owned)),
            customer: grant.customer.or_else(|| claims.str("cid").map(str::to_owned)),
            // RFC 6749 5.1: an answer without scope granted what was asked;
            // on a refresh, what the session had.
            scope: grant
                .scope
                .or_else(|| claims.str("scope").map(str::to_owned))
                .or_else(|| previous.and_then(|p| p.scope.clone())),
            issued_at: claims.issued_at.unwrap_or(now).min(now),
            expires_at: claims.expires_at,
            refresh_count,
            bearer: grant.bearer,
            refresh,
            id_token: grant.id_token.or_else(|| previous.and_then(|p| p.id_token.clone())),
            renewable_until,
            signed_in_at: previous.and_then(|p| p.signed_in_at).or(Some(self.now())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwt_refresh_tokens_expiry_is_read_for_display() {
        let b = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let jwt = format!(
            "{}.{}.sig",
            b(serde_json::json!({"alg":"ES256"})),
            b(serde_json::json!({"exp": 2_000_000_000}))
        );
        assert_eq!(
            refresh_token_expiry(&RefreshToken::new(jwt)),
            from_unix_seconds(2_000_000_000)
        );
        assert_eq!(refresh_token_expiry(&RefreshToken::new("rt_opaque")), None);
        assert_eq!(refresh_token_expiry(&RefreshToken::new("a.b.c")), None);
    }

    #[test]
    fn only_untrustworthy_answers_are_security_failures() {
        assert!(is_security_failure(&TokenError::BadSignature("k".into()).into()));
        assert!(is_security_failure(
            &TokenError::WrongSubject {
                expected: "a".into(),
                found: "b".into()
            }
            .into()
        ));
        assert!(!is_security_failure(&TokenError::NotYetValid("t".into()).into()));
        assert!(!is_security_failure(&TokenError::UnknownKid("k".into()).into()));
        assert!(!is_security_failure(&Error::Server {
            status: 503,
            message: "x".into(),
            retry_after: None
        }));
    }
}
