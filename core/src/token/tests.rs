//! The JWT matrix: every way a token can be wrong, each refused with the
//! check that failed.

use super::*;
use crate::error::Error;
use crate::testkit::{self, claims, keys, sign, AUDIENCE, ISSUER};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::json;
use std::sync::Arc;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn setup(algs: Vec<Algorithm>) -> (Arc<StaticJwks>, Validator) {
    let k = keys();
    let jwks = Arc::new(StaticJwks::new(testkit::jwks(&[&k.rsa, &k.ec])));
    let v = testkit::validator(jwks.clone(), algs);
    (jwks, v)
}

async fn check(v: &Validator, token: String) -> Result<Claims, TokenError> {
    match v.validate(&AccessToken::new(token), now()).await {
        Ok(c) => Ok(c),
        Err(Error::Token(t)) => Err(t),
        Err(other) => panic!("not a token error: {other}"),
    }
}

fn b64(v: &serde_json::Value) -> String {
    B64URL.encode(serde_json::to_vec(v).unwrap())
}

#[tokio::test]
async fn valid_rs256_and_es256_tokens_pass() {
    let (_, v) = setup(vec![Algorithm::RS256, Algorithm::ES256]);
    let t = now().timestamp();
    let c = check(&v, sign(&keys().rsa, &claims("alice", t, 60))).await.unwrap();
    assert_eq!(c.subject, "alice");
    assert_eq!(c.str("tid"), Some("t1"));
    check(&v, sign(&keys().ec, &claims("alice", t, 60))).await.unwrap();
}

#[tokio::test]
async fn alg_none_is_refused() {
    let (_, v) = setup(vec![Algorithm::RS256]);
    let t = now().timestamp();
    let token = format!(
        "{}.{}.",
        b64(&json!({"alg":"none","kid":"rsa-1"})),
        b64(&claims("alice", t, 60))
    );
    assert!(matches!(check(&v, token).await, Err(TokenError::AlgorithmNotAllowed { alg, .. }) if alg == "none"));
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let (_, v) = setup(vec![Algorithm::RS256, Algorithm::ES256]);
    let t = now().timestamp();
    let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let key = jsonwebtoken::EncodingKey::from_secret(keys().rsa.public_pem.as_bytes());
    let token = jsonwebtoken::encode(&header, &claims("alice", t, 60), &key).unwrap();
    let err = check(&v, token).await.unwrap_err();
    assert!(
        matches!(&err, TokenError::AlgorithmNotAllowed { alg, .. } if alg == "HS256"),
        "{err}"
    );
    assert!(err.to_string().contains("algorithm check failed"));
}

#[tokio::test]
async fn algorithm_off_the_allow_list_is_refused_even_if_signed_correctly() {
    let (_, v) = setup(vec![Algorithm::ES256]);
    let t = now().timestamp();
    let err = check(&v, sign(&keys().rsa, &claims("alice", t, 60))).await.unwrap_err();
    assert!(matches!(err, TokenError::AlgorithmNotAllowed { .. }), "{err}");
}

#[tokio::test]
async fn header_alg_that_does_not_fit_the_key_is_refused() {
    let (_, v) = setup(vec![Algorithm::RS256, Algorithm::ES256]);
    let t = now().timestamp();
    // An ES256 signature that claims the RSA key's kid.
    let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
    header.kid = Some("rsa-1".into());
    let token = jsonwebtoken::encode(&header, &claims("alice", t, 60), &keys().ec.encoding).unwrap();
    assert!(matches!(check(&v, token).await, Err(TokenError::KeyMismatch { .. })));
}

#[tokio::test]
async fn wrong_iss_aud_and_kid_are_named() {
    let (_, v) = setup(vec![Algorithm::RS256]);
    let t = now().timestamp();
    let mut c = claims("alice", t, 60);
    c["iss"] = json!("https://evil.test");
    let err = check(&v, sign(&keys().rsa, &c)).await.unwrap_err();
    assert!(
        matches!(&err, TokenError::WrongIssuer { found, .. } if found == "https://evil.test"),
        "{err}"
    );
    assert!(err.to_string().starts_with("issuer check failed"));

    let mut c = claims("alice", t, 60);
    c["aud"] = json!(["other-app"]);
    let err = check(&v, sign(&keys().rsa, &c)).await.unwrap_err();
    assert!(matches!(err, TokenError::WrongAudience { .. }), "{err}");
    let mut c = claims("alice", t, 60);
    c["aud"] = json!(["other-app", AUDIENCE]);
    check(&v, sign(&keys().rsa, &c)).await.unwrap();

    let err = check(&v, sign(&keys().rsa2, &claims("alice", t, 60)))
        .await
        .unwrap_err();
    assert_eq!(err, TokenError::UnknownKid("rsa-2".into()));
    let _ = ISSUER;
}

#[tokio::test]
async fn expired_and_not_yet_valid_are_refused_with_leeway() {
    let (_, v) = setup(vec![Algorithm::RS256]);
    let t = now().timestamp();
    // Expired 10 s ago: within the 30 s leeway, accepted.
    check(&v, sign(&keys().rsa, &claims("alice", t - 70, 60)))
        .await
        .unwrap();
    // Expired 2 minutes ago: refused.
    let err = check(&v, sign(&keys().rsa, &claims("alice", t - 180, 60)))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Expired(_)), "{err}");
    assert!(err.to_string().starts_with("expiry check failed"));
    // Not valid for another 5 minutes.
    let mut c = claims("alice", t, 600);
    c["nbf"] = json!(t + 300);
    let err = check(&v, sign(&keys().rsa, &c)).await.unwrap_err();
    assert!(matches!(err, TokenError::NotYetValid(_)), "{err}");
    // A token without exp is refused.
    let mut c = claims("alice", t, 600);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        check(&v, sign(&keys().rsa, &c)).await.unwrap_err(),
        TokenError::MissingClaim("exp")
    );
}

#[tokio::test]
async fn leeway_is_capped_at_sixty_seconds() {
    let k = keys();
    let jwks = Arc::new(StaticJwks::new(testkit::jwks(&[&k.rsa])));
    struct Shared(Arc<StaticJwks>);
    #[async_trait::async_trait]
    impl JwksFetcher for Shared {
        async fn fetch(&self) -> Result<Fetched, Error> {
            self.0.fetch().await
        }
    }
    let cache = Arc::new(JwksCache::new(
        Box::new(Shared(jwks)),
        std::time::Duration::from_millis(10),
    ));
    let v = Validator::new(
        ISSUER,
        AUDIENCE,
        vec![Algorithm::RS256],
        std::time::Duration::from_secs(3600),
        cache,
    );
    let t = now().timestamp();
    let err = check(&v, sign(&k.rsa, &claims("alice", t - 200, 100)))
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::Expired(_)));
}

#[tokio::test]
async fn tampered_payload_and_stripped_signature_are_refused() {
    let (_, v) = setup(vec![Algorithm::RS256]);
    let t = now().timestamp();
    let token = sign(&keys().rsa, &claims("alice", t, 60));
    let parts: Vec<&str> = token.split('.').collect();
    let mut evil = claims("mallory", t, 60);
    evil["scope"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], b64(&evil), parts[2]);
    assert_eq!(
        check(&v, tampered).await.unwrap_err(),
        TokenError::BadSignature("rsa-1".into())
    );
    let stripped = format!("{}.{}.", parts[0], parts[1]);
    assert!(matches!(check(&v, stripped).await.unwrap_err(), TokenError::Malformed(m) if m.contains("signature")));
    let two_parts = format!("{}.{}", parts[0], parts[1]);
    assert!(matches!(
        check(&v, two_parts).await.unwrap_err(),
        TokenError::Malformed(_)
    ));
    assert!(matches!(
        check(&v, "garbage".into()).await.unwrap_err(),
        TokenError::Malformed(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn unknown_kid_refetches_once_rate_limited() {
    let k = keys();
    let (jwks, v) = setup(vec![Algorithm::RS256, Algorithm::ES256]);
    let t = now().timestamp();
    check(&v, sign(&k.rsa, &claims("alice", t, 600))).await.unwrap();
    assert_eq!(v.jwks().fetch_count(), 1);
    // Cached: no fetch.
    check(&v, sign(&k.rsa, &claims("alice", t, 600))).await.unwrap();
    assert_eq!(v.jwks().fetch_count(), 1);
    // The provider rotates to rsa-2: one refetch, then it validates.
    jwks.replace(testkit::jwks(&[&k.rsa2]));
    let started = tokio::time::Instant::now();
    check(&v, sign(&k.rsa2, &claims("alice", t, 600))).await.unwrap();
    assert_eq!(v.jwks().fetch_count(), 2);
    // A kid nobody publishes: one more fetch, spaced by the rate limit, then refused.
    let err = check(&v, sign(&k.ec, &claims("alice", t, 600))).await.unwrap_err();
    assert_eq!(err, TokenError::UnknownKid("ec-1".into()));
    assert_eq!(v.jwks().fetch_count(), 3);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "fetches were not spaced: {:?}",
        started.elapsed()
    );
}

fn signed_with(header: serde_json::Value, claims: &serde_json::Value) -> String {
    // Sign header and claims as given (jsonwebtoken's Header cannot carry `crit`).
    let input = format!("{}.{}", b64(&header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &keys().rsa.encoding, Algorithm::RS256).unwrap();
    format!("{input}.{sig}")
}

#[tokio::test]
async fn a_critical_header_extension_is_refused() {
    let (_, v) = setup(vec![Algorithm::RS256]);
    let t = now().timestamp();
    let plain = signed_with(json!({"alg":"RS256","kid":"rsa-1"}), &claims("alice", t, 60));
    check(&v, plain).await.unwrap();
    let crit = signed_with(
        json!({"alg":"RS256","kid":"rsa-1","crit":["x-unknown"],"x-unknown":1}),
        &claims("alice", t, 60),
    );
    let err = check(&v, crit).await.unwrap_err();
    assert!(matches!(err, TokenError::UnsupportedCritical(_)), "{err}");
}

#[tokio::test]
async fn an_id_token_is_never_an_access_token_nor_the_reverse() {
    let (_, v) = setup(vec![Algorithm::RS256]);
    let access = v.for_access_tokens();
    let id = v.for_id_tokens(AUDIENCE);
    let t = now().timestamp();
    let at = signed_with(
        json!({"alg":"RS256","kid":"rsa-1","typ":"at+jwt"}),
        &claims("alice", t, 60),
    );
    let mut id_claims = claims("alice", t, 60);
    id_claims["nonce"] = json!("n-1");
    let idt = signed_with(json!({"alg":"RS256","kid":"rsa-1","typ":"JWT"}), &id_claims);
    // Each where it belongs.
    check(&access, at.clone()).await.unwrap();
    check(&id, idt.clone()).await.unwrap();
    // And refused where it does not.
    assert!(matches!(
        check(&id, at).await.unwrap_err(),
        TokenError::WrongType { .. }
    ));
    assert!(matches!(
        check(&access, idt).await.unwrap_err(),
        TokenError::WrongType { .. }
    ));
    // Keycloak marks its tokens in the payload: typ ID and typ Bearer.
    let mut kc_id = claims("alice", t, 60);
    kc_id["typ"] = json!("ID");
    let kc_id = signed_with(json!({"alg":"RS256","kid":"rsa-1","typ":"JWT"}), &kc_id);
    assert!(matches!(
        check(&access, kc_id).await.unwrap_err(),
        TokenError::WrongType { .. }
    ));
    let mut kc_at = claims("alice", t, 60);
    kc_at["typ"] = json!("Bearer");
    let kc_at = signed_with(json!({"alg":"RS256","kid":"rsa-1","typ":"JWT"}), &kc_at);
    assert!(matches!(
        check(&id, kc_at).await.unwrap_err(),
        TokenError::WrongType { .. }
    ));
    // Some other JWT type (a logout token, say) is neither.
    let other = signed_with(
        json!({"alg":"RS256","kid":"rsa-1","typ":"logout+jwt"}),
        &claims("alice", t, 60),
    );
    assert!(matches!(
        check(&access, other).await.unwrap_err(),
        TokenError::WrongType { .. }
    ));
}

#[tokio::test]
async fn implausible_times_are_refused_without_panicking() {
    let (_, v) = setup(vec![Algorithm::RS256]);
    let t = now().timestamp();
    for (claim, value) in [
        ("exp", json!(8_210_266_876_799_i64)),
        ("exp", json!(i64::MAX)),
        ("exp", json!(t + 20 * 366 * 24 * 3600)),
        ("exp", json!(-5)),
        ("nbf", json!(8_210_266_876_799_i64)),
        ("iat", json!(1e300)),
    ] {
        let mut c = claims("alice", t, 60);
        c[claim] = value.clone();
        let err = check(&v, sign(&keys().rsa, &c)).await.unwrap_err();
        assert!(
            matches!(err, TokenError::ImplausibleTime { .. } | TokenError::MissingClaim(_)),
            "{claim}={value}: {err}"
        );
    }
}

#[tokio::test]
async fn encryption_keys_never_verify_signatures() {
    let k = keys();
    let mut enc = k.rsa.jwk.clone();
    enc["use"] = json!("enc");
    let jwks = Arc::new(StaticJwks::new(serde_json::from_value(json!({"keys":[enc]})).unwrap()));
    let v = testkit::validator(jwks.clone(), vec![Algorithm::RS256]);
    let t = now().timestamp();
    let err = check(&v, sign(&k.rsa, &claims("alice", t, 60))).await.unwrap_err();
    assert_eq!(err, TokenError::UnknownKid("rsa-1".into()));
    // key_ops without verify likewise.
    let mut ops = k.rsa.jwk.clone();
    ops["key_ops"] = json!(["encrypt"]);
    jwks.replace(serde_json::from_value(json!({"keys":[ops]})).unwrap());
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let err = check(&v, sign(&k.rsa, &claims("alice", t, 60))).await.unwrap_err();
    assert_eq!(err, TokenError::UnknownKid("rsa-1".into()));
}

#[tokio::test(start_paused = true)]
async fn a_withdrawn_key_stops_being_trusted_when_the_key_set_ages() {
    let k = keys();
    let (jwks, v) = setup(vec![Algorithm::RS256, Algorithm::ES256]);
    let t = now().timestamp();
    let old = sign(&k.rsa, &claims("alice", t, 4 * 3600));
    check(&v, old.clone()).await.unwrap();
    // The provider withdraws rsa-1 (a compromise, say).
    jwks.replace(testkit::jwks(&[&k.rsa2]));
    tokio::time::advance(std::time::Duration::from_secs(30 * 60)).await;
    check(&v, old.clone()).await.expect("still within the key set's hour");
    tokio::time::advance(std::time::Duration::from_secs(31 * 60)).await;
    assert_eq!(
        check(&v, old).await.unwrap_err(),
        TokenError::UnknownKid("rsa-1".into())
    );
}

#[tokio::test(start_paused = true)]
async fn the_key_sets_max_age_is_honoured_within_bounds() {
    let k = keys();
    let (jwks, v) = setup(vec![Algorithm::RS256, Algorithm::ES256]);
    jwks.set_max_age(Some(std::time::Duration::from_secs(600)));
    let t = now().timestamp();
    let token = sign(&k.rsa, &claims("alice", t, 4 * 3600));
    check(&v, token.clone()).await.unwrap();
    assert_eq!(v.jwks().fetch_count(), 1);
    tokio::time::advance(std::time::Duration::from_secs(601)).await;
    check(&v, token.clone()).await.unwrap();
    assert_eq!(v.jwks().fetch_count(), 2, "refetched after max-age");
    // A provider that forbids caching still gets the five-minute floor.
    jwks.set_max_age(Some(std::time::Duration::ZERO));
    tokio::time::advance(std::time::Duration::from_secs(601)).await;
    check(&v, token.clone()).await.unwrap();
    assert_eq!(v.jwks().fetch_count(), 3);
    check(&v, token.clone()).await.unwrap();
    tokio::time::advance(std::time::Duration::from_secs(200)).await;
    check(&v, token).await.unwrap();
    assert_eq!(v.jwks().fetch_count(), 3, "no fetch per token");
    assert_eq!(
        cache_max_age("public, max-age=120"),
        Some(std::time::Duration::from_secs(120))
    );
    assert_eq!(cache_max_age("no-store"), Some(std::time::Duration::ZERO));
    assert_eq!(cache_max_age("public"), None);
}

#[tokio::test]
async fn clock_skew_beyond_the_leeway_is_named_with_its_direction() {
    let (_, v) = setup(vec![Algorithm::RS256]);
    let n = now();
    let t = n.timestamp();
    let leeway = std::time::Duration::from_secs(60);
    // A provider ten minutes ahead: its fresh token is not yet valid here.
    let ahead = v
        .validate(&AccessToken::new(sign(&keys().rsa, &claims("alice", t + 600, 60))), n)
        .await
        .unwrap_err();
    let explained = explain_skew(ahead, Some(n + chrono::Duration::seconds(600)), n, leeway);
    let text = explained.to_string();
    assert!(text.contains("600 s ahead of this machine's"), "{text}");
    assert!(
        matches!(explained, Error::Token(TokenError::ClockSkew { offset_secs: 600, .. })),
        "{text}"
    );
    // Twenty minutes behind: its token expired before it arrived.
    let behind = v
        .validate(&AccessToken::new(sign(&keys().rsa, &claims("alice", t - 1200, 600))), n)
        .await
        .unwrap_err();
    let text = explain_skew(behind, Some(n - chrono::Duration::seconds(1200)), n, leeway).to_string();
    assert!(text.contains("1200 s behind this machine's"), "{text}");
    // Clocks within the leeway, or no Date header: the plain error stays.
    let expired = v
        .validate(&AccessToken::new(sign(&keys().rsa, &claims("alice", t - 1200, 600))), n)
        .await
        .unwrap_err();
    let plain = expired.to_string();
    let same = explain_skew(expired, Some(n + chrono::Duration::seconds(30)), n, leeway).to_string();
    assert_eq!(same, plain);
    assert!(!same.contains("clock is"), "{same}");
    // Not a time check: a bad signature is never blamed on the clock.
    let forged = Error::Token(TokenError::WrongAtHash);
    let text = explain_skew(forged, Some(n + chrono::Duration::seconds(600)), n, leeway).to_string();
    assert!(!text.contains("clock is"), "{text}");
}
