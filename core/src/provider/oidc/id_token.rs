//! ID token validation, OpenID Connect Core 1.0 section 3.1.3.7.
//!
//! [`Validator`] does the JWS part: the algorithm from the profile's
//! allow-list (never the header's choice, never `none`), the key by `kid`
//! from the JWKS with one rate-limited refetch for an unknown `kid`, the
//! signature, `iss` equal to the issuer, `aud` containing the client id and
//! `exp`. This module adds what is particular to ID tokens:
//! - several audiences need an `azp`, and an `azp` must be the client id;
//! - `iat` is required and may not lie in the future (beyond the leeway);
//! - the `nonce` must be the one the authorization request sent.
//!   (On a refresh there was no request: OpenID Connect Core 12.2 then asks for the
//!   same `sub`, which the engine checks.)
//! - `at_hash`, when present, must match the access token issued with it
//!   (3.1.3.8; 3.2.2.9);
//! - with `max_age` sent, `auth_time` is required and may be at most that
//!   old (3.1.2.1).

use super::pkce::constant_time_eq;
use crate::error::Error;
use crate::os::clock::Timestamp;
use crate::token::{AccessToken, Claims, IdToken, TokenError, Validator};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::time::Duration;

/// What a particular ID token is checked against besides its signature.
#[derive(Default)]
pub struct Expect<'a> {
    /// The sign-in's `nonce`; `None` on refresh.
    pub nonce: Option<&'a str>,
    /// The access token that came with it, for `at_hash`.
    pub access: Option<&'a AccessToken>,
    /// The `max_age` the sign-in sent.
    pub max_age: Option<Duration>,
    /// The provider's clock when it answered (its `Date`): `auth_time` is
    /// compared with it, both being the provider's time.
    pub server_date: Option<Timestamp>,
}

/// How far `auth_time` may pass `max_age` when compared with the provider's
/// own `Date` (whole seconds, and the time the answer took).
const MAX_AGE_SLACK: i64 = 2;

/// Validate `token` as an ID token for `client_id`; `validator` must expect
/// `client_id` as audience.
pub async fn verify(
    validator: &Validator,
    token: &IdToken,
    client_id: &str,
    expect: &Expect<'_>,
    now: Timestamp,
) -> Result<Claims, Error> {
    let claims = validator.validate(token, now).await?;
    let several = matches!(claims.all.get("aud"), Some(Value::Array(a)) if a.len() > 1);
    match claims.all.get("azp") {
        Some(Value::String(azp)) if azp != client_id => {
            return Err(TokenError::WrongAzp(format!("azp is '{azp}', not this app's client id '{client_id}'")).into())
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(TokenError::WrongAzp("azp is not a string".into()).into()),
        None if several => {
            return Err(TokenError::WrongAzp("the token has several audiences and no azp".into()).into())
        }
        None => {}
    }
    let iat = claims.issued_at.ok_or(TokenError::MissingClaim("iat"))?;
    let leeway = chrono::Duration::from_std(validator.leeway()).unwrap_or_default();
    if iat > now + leeway {
        return Err(TokenError::IssuedInFuture(iat.to_rfc3339()).into());
    }
    if let Some(expected) = expect.nonce {
        match claims.str("nonce") {
            Some(found) if constant_time_eq(found, expected) => {}
            _ => return Err(TokenError::WrongNonce.into()),
        }
    }
    if let (Some(found), Some(access)) = (claims.all.get("at_hash"), expect.access) {
        let alg = jsonwebtoken::decode_header(token.expose())
            .map(|h| h.alg)
            .map_err(|e| TokenError::Malformed(e.to_string()))?;
        let expected = at_hash(alg, access.expose());
        if found.as_str().is_none_or(|f| !constant_time_eq(f, &expected)) {
            return Err(TokenError::WrongAtHash.into());
        }
    }
    if let Some(max_age) = expect.max_age {
        let auth_time = claims
            .all
            .get("auth_time")
            .and_then(Value::as_i64)
            .ok_or(TokenError::MissingClaim("auth_time"))?;
        // Against the provider's own clock when its Date is known (no skew
        // between the two), else ours with the leeway.
        let oldest = match expect.server_date {
            Some(date) => date.timestamp() - max_age.as_secs() as i64 - MAX_AGE_SLACK,
            None => now.timestamp() - max_age.as_secs() as i64 - leeway.num_seconds(),
        };
        if auth_time < oldest {
            return Err(TokenError::AuthTooOld(format!(
                "the person authenticated at {auth_time} (unix time), longer ago than the profile's max_age of {} s; the provider did not ask them to sign in again",
                max_age.as_secs()
            ))
            .into());
        }
    }
    Ok(claims)
}

/// `at_hash` of `access` for an ID token signed with `alg`: the left half
/// of the hash the algorithm uses, base64url (Core 3.1.3.6).
pub fn at_hash(alg: jsonwebtoken::Algorithm, access: &str) -> String {
    use jsonwebtoken::Algorithm::*;
    let digest: Vec<u8> = match alg {
        HS384 | RS384 | PS384 | ES384 => Sha384::digest(access.as_bytes()).to_vec(),
        HS512 | RS512 | PS512 | EdDSA => Sha512::digest(access.as_bytes()).to_vec(),
        _ => Sha256::digest(access.as_bytes()).to_vec(),
    };
    B64URL.encode(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, keys, sign, ISSUER};
    use crate::token::StaticJwks;
    use jsonwebtoken::Algorithm;
    use serde_json::json;
    use std::sync::Arc;

    const CLIENT: &str = "desktop-app";
    const NONCE: &str = "n-0S6_WzA2Mj";

    fn setup() -> (Arc<StaticJwks>, Validator) {
        let k = keys();
        let jwks = Arc::new(StaticJwks::new(testkit::jwks(&[&k.rsa, &k.ec])));
        let v = testkit::validator(jwks.clone(), vec![Algorithm::RS256, Algorithm::ES256]).for_id_tokens(CLIENT);
        (jwks, v)
    }

    fn good() -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({"iss": ISSUER, "sub": "alice", "aud": CLIENT, "exp": now + 300, "iat": now, "nonce": NONCE})
    }

    fn with(mut claims: Value, key: &str, value: Value) -> Value {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value;
        }
        claims
    }

    async fn check(v: &Validator, token: String, nonce: Option<&str>) -> Result<Claims, Error> {
        let expect = Expect {
            nonce,
            ..Expect::default()
        };
        verify(v, &IdToken::new(token), CLIENT, &expect, chrono::Utc::now()).await
    }

    fn token_error(r: Result<Claims, Error>) -> TokenError {
        match r {
            Err(Error::Token(t)) => t,
            other => panic!("expected a token error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_matrix_of_oidc_core_3_1_3_7() {
        let (_, v) = setup();
        let k = keys();
        let now = chrono::Utc::now().timestamp();
        assert_eq!(
            check(&v, sign(&k.rsa, &good()), Some(NONCE)).await.unwrap().subject,
            "alice"
        );
        assert!(check(&v, sign(&k.ec, &good()), Some(NONCE)).await.is_ok(), "ES256");
        // Several audiences with our azp pass.
        let multi = with(with(good(), "aud", json!([CLIENT, "api"])), "azp", json!(CLIENT));
        assert!(check(&v, sign(&k.rsa, &multi), Some(NONCE)).await.is_ok());

        type Case = (&'static str, Value, fn(&TokenError) -> bool);
        let cases: Vec<Case> = vec![
            ("wrong iss", with(good(), "iss", json!("https://evil.test")), |e| {
                matches!(e, TokenError::WrongIssuer { .. })
            }),
            ("wrong aud", with(good(), "aud", json!("other-app")), |e| {
                matches!(e, TokenError::WrongAudience { .. })
            }),
            (
                "several aud, no azp",
                with(good(), "aud", json!([CLIENT, "api"])),
                |e| matches!(e, TokenError::WrongAzp(_)),
            ),
            ("wrong azp", with(good(), "azp", json!("other-app")), |e| {
                matches!(e, TokenError::WrongAzp(_))
            }),
            ("wrong nonce", with(good(), "nonce", json!("replayed")), |e| {
                matches!(e, TokenError::WrongNonce)
            }),
            ("no nonce", with(good(), "nonce", Value::Null), |e| {
                matches!(e, TokenError::WrongNonce)
            }),
            (
                "expired",
                with(with(good(), "exp", json!(now - 120)), "iat", json!(now - 400)),
                |e| matches!(e, TokenError::Expired(_)),
            ),
            ("no iat", with(good(), "iat", Value::Null), |e| {
                matches!(e, TokenError::MissingClaim("iat"))
            }),
            ("iat in the future", with(good(), "iat", json!(now + 600)), |e| {
                matches!(e, TokenError::IssuedInFuture(_))
            }),
        ];
        for (name, claims, expected) in cases {
            let e = token_error(check(&v, sign(&k.rsa, &claims), Some(NONCE)).await);
            assert!(expected(&e), "{name}: {e}");
        }
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let (_, v) = setup();
        let header = B64URL.encode(br#"{"alg":"none","kid":"rsa-1"}"#);
        let body = B64URL.encode(good().to_string());
        let e = token_error(check(&v, format!("{header}.{body}."), Some(NONCE)).await);
        assert!(matches!(e, TokenError::AlgorithmNotAllowed { .. }), "{e}");
    }

    #[tokio::test]
    async fn unknown_kid_refetches_the_jwks_then_validates() {
        let (jwks, v) = setup();
        let k = keys();
        // Warm the cache with the old set, then the provider rotates to rsa-2.
        check(&v, sign(&k.rsa, &good()), Some(NONCE)).await.unwrap();
        jwks.replace(testkit::jwks(&[&k.rsa2]));
        let fetches = v.jwks().fetch_count();
        let claims = check(&v, sign(&k.rsa2, &good()), Some(NONCE)).await.unwrap();
        assert_eq!(claims.subject, "alice");
        assert_eq!(v.jwks().fetch_count(), fetches + 1, "one refetch for the new kid");
    }

    #[tokio::test]
    async fn refresh_id_tokens_need_no_nonce() {
        let (_, v) = setup();
        let token = sign(&keys().rsa, &with(good(), "nonce", Value::Null));
        assert!(check(&v, token, None).await.is_ok());
    }

    #[test]
    fn at_hash_matches_core_3_1_3_6() {
        // The access token and at_hash of the example in OpenID Connect
        // Core A.3 (RS256).
        assert_eq!(
            at_hash(Algorithm::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[tokio::test]
    async fn at_hash_when_present_must_match_the_access_token() {
        let (_, v) = setup();
        let k = keys();
        let access = AccessToken::new("the-access-token");
        let right = with(good(), "at_hash", json!(at_hash(Algorithm::RS256, "the-access-token")));
        let wrong = with(good(), "at_hash", json!(at_hash(Algorithm::RS256, "another-token")));
        let expect = Expect {
            nonce: Some(NONCE),
            access: Some(&access),
            ..Expect::default()
        };
        let now = chrono::Utc::now();
        assert!(verify(&v, &IdToken::new(sign(&k.rsa, &right)), CLIENT, &expect, now)
            .await
            .is_ok());
        let e = verify(&v, &IdToken::new(sign(&k.rsa, &wrong)), CLIENT, &expect, now).await;
        assert!(matches!(token_error(e), TokenError::WrongAtHash));
        // Absent, it is not required (the code flow makes it optional).
        assert!(verify(&v, &IdToken::new(sign(&k.rsa, &good())), CLIENT, &expect, now)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn max_age_needs_a_recent_enough_auth_time() {
        let (_, v) = setup();
        let k = keys();
        let now = chrono::Utc::now();
        let mut expect = Expect {
            nonce: Some(NONCE),
            max_age: Some(Duration::from_secs(300)),
            ..Expect::default()
        };
        let recent = with(good(), "auth_time", json!(now.timestamp() - 100));
        let old = with(good(), "auth_time", json!(now.timestamp() - 3600));
        // Compared with the provider's own Date, 10 s past max_age is too old.
        expect.server_date = Some(now);
        let just_too_old = with(good(), "auth_time", json!(now.timestamp() - 310));
        let e = verify(&v, &IdToken::new(sign(&k.rsa, &just_too_old)), CLIENT, &expect, now).await;
        assert!(matches!(token_error(e), TokenError::AuthTooOld(_)));
        // A provider whose clock is an hour behind: its auth_time is an hour
        // "old" here, yet recent by its own clock.
        let behind = now - chrono::Duration::hours(1);
        expect.server_date = Some(behind);
        let theirs = with(good(), "auth_time", json!(behind.timestamp() - 100));
        assert!(verify(&v, &IdToken::new(sign(&k.rsa, &theirs)), CLIENT, &expect, now)
            .await
            .is_ok());
        expect.server_date = None;
        assert!(verify(&v, &IdToken::new(sign(&k.rsa, &recent)), CLIENT, &expect, now)
            .await
            .is_ok());
        let e = verify(&v, &IdToken::new(sign(&k.rsa, &old)), CLIENT, &expect, now).await;
        assert!(matches!(token_error(e), TokenError::AuthTooOld(_)));
        let e = verify(&v, &IdToken::new(sign(&k.rsa, &good())), CLIENT, &expect, now).await;
        assert!(matches!(token_error(e), TokenError::MissingClaim("auth_time")));
    }
}
