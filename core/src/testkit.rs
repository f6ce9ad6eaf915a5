//! Test helpers: signing keys, token minting and a scripted provider.

use crate::error::Error;
use crate::net::headers::FlowContext;
use crate::os::clock::{Clock, TestClock};
use crate::profile::{Config, Profile};
use crate::provider::{ApiRequest, ApiResponse, Credentials, Grant, Provider, SessionTokens};
use crate::token::{AccessToken, JwksCache, RefreshToken, StaticJwks, Validator};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub const ISSUER: &str = "https://idp.test";
pub const AUDIENCE: &str = "session-manager";

/// A signing key with its JWK.
pub struct Key {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as PEM (for the HMAC key-confusion test).
    pub public_pem: String,
}

fn rsa_key(kid: &str) -> Key {
    use rsa::pkcs8::EncodePublicKey;
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let n = B64URL.encode(private.n().to_bytes_be());
    let e = B64URL.encode(private.e().to_bytes_be());
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes()),
        jwk: json!({"kty":"RSA","alg":"RS256","use":"sig","kid":kid,"n":n,"e":e}),
        public_pem: private
            .to_public_key()
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .unwrap(),
    }
}

fn ec_key(kid: &str) -> Key {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
        jwk: json!({"kty":"EC","alg":"ES256","crv":"P-256","use":"sig","kid":kid,
                    "x":B64URL.encode(&raw[1..33]),"y":B64URL.encode(&raw[33..65])}),
        public_pem: pair.public_key_pem(),
    }
}

/// Keys generated once per test binary (RSA generation is slow).
pub struct Keys {
    pub rsa: Key,
    pub ec: Key,
    pub rsa2: Key,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: rsa_key("rsa-1"),
        ec: ec_key("ec-1"),
        rsa2: rsa_key("rsa-2"),
    })
}

pub fn jwks(list: &[&Key]) -> JwkSet {
    serde_json::from_value(json!({"keys": list.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})).unwrap()
}

/// Sign `claims` with `key`.
pub fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// Standard claims for `sub`, issued at `iat` (unix seconds), valid `life` s.
pub fn claims(sub: &str, iat: i64, life: i64) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": iat, "nbf": iat, "exp": iat + life,
           "tid": "t1", "cid": "c1", "scope": "accounts:read"})
}

pub fn validator(fetcher: Arc<StaticJwks>, algorithms: Vec<Algorithm>) -> Validator {
    struct Shared(Arc<StaticJwks>);
    #[async_trait]
    impl crate::token::JwksFetcher for Shared {
        async fn fetch(&self) -> Result<crate::token::Fetched, Error> {
            self.0.fetch().await
        }
    }
    let cache = JwksCache::new(Box::new(Shared(fetcher)), Duration::from_millis(500));
    Validator::new(ISSUER, AUDIENCE, algorithms, crate::engine::LEEWAY, Arc::new(cache))
}

pub fn profile() -> Profile {
    let text = "[profiles.test]\nprovider = \"finhub\"\nenvironment = \"integration\"\nbase_url = \"https://idp.test\"\ntenant_id = \"t1\"\naudience = \"session-manager\"\npins = [\"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\n";
    Config::parse(text, Path::new("."))
        .unwrap()
        .profile(None)
        .unwrap()
        .clone()
}

/// An OIDC profile for the scripted provider, with `extend_access`.
pub fn oidc_profile(extend_access: &str) -> Profile {
    let text = format!("[profiles.test]\nprovider = \"oidc\"\nenvironment = \"integration\"\nissuer = \"https://idp.test\"\nclient_id = \"app\"\naudience = \"session-manager\"\nextend_access = \"{extend_access}\"\npins = [\"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\n");
    Config::parse(&text, Path::new("."))
        .unwrap()
        .profile(None)
        .unwrap()
        .clone()
}

/// A provider that issues real signed tokens and can be told to fail.
pub struct ScriptedProvider {
    pub clock: Arc<TestClock>,
    pub lifetime: Mutex<i64>,
    pub refresh_calls: AtomicU32,
    pub fail_next: AtomicU32,
    pub revoke: AtomicBool,
    pub logout_fails: AtomicBool,
    pub refresh_delay: Mutex<Duration>,
    pub current_refresh: Mutex<String>,
    pub issued: Mutex<Vec<String>>,
    pub logouts: AtomicU32,
    /// Browser sign-ins: silent ones answer `login_required` when set.
    pub silent_fails: AtomicBool,
    /// Browser sign-ins made, and how many of them were silent.
    pub browser_sign_ins: AtomicU32,
    pub silent_sign_ins: AtomicU32,
    /// Hand out opaque access tokens with no subject and no ID token (an
    /// OpenID Connect provider's refresh answer, Core 12.2).
    pub opaque: AtomicBool,
    /// The `expires_in` to announce instead of the lifetime.
    pub expires_in: Mutex<Option<u64>>,
    /// Grant no refresh token.
    pub no_refresh: AtomicBool,
    /// Refuse the next refresh as expired (`invalid_grant`, not revoked).
    pub refuse: AtomicBool,
    /// The `Retry-After` of injected failures.
    pub retry_after: Mutex<Option<Duration>>,
    /// Sign tokens for this subject instead of the one asked for.
    pub subject: Mutex<Option<String>>,
    /// Hand out refresh tokens that are JWTs with this lifetime (seconds).
    pub refresh_jwt_lifetime: Mutex<Option<i64>>,
    /// How far ahead of its own clock the provider's `Date` runs (ms).
    pub date_ahead_ms: std::sync::atomic::AtomicI64,
    /// Panic inside the next refresh.
    pub panic_next: AtomicBool,
    /// Browser sign-ins wait until cancelled (the person never comes back).
    pub browser_waits: AtomicBool,
    /// How long a sign-in takes.
    pub sign_in_delay: Mutex<Duration>,
    /// The tokens every sign-out was given.
    pub signed_out: Mutex<Vec<SessionTokens>>,
    /// Answers of `call`: 401 while set.
    pub unauthorized: AtomicBool,
    pub api_calls: AtomicU32,
    /// Every refresh fails with this error while it is set (a captive
    /// portal's TLS, a proxy's HTML page, a misconfigured client).
    pub fail_with: Mutex<Option<Error>>,
    /// The provider's clock minus the test clock, in seconds: its tokens and
    /// its `Date` header follow its own clock.
    pub clock_ahead_secs: Mutex<i64>,
    /// Answers of `call`: 401 to this bearer.
    pub rejected_bearer: Mutex<Option<String>>,
    /// How long each `call` takes, in the order the calls come (then none).
    pub call_delays: Mutex<std::collections::VecDeque<Duration>>,
    /// Rotate the refresh token at once, then answer after this long (an
    /// answer the caller may no longer be waiting for).
    pub answer_delay: Mutex<Duration>,
}

impl ScriptedProvider {
    pub fn new(clock: Arc<TestClock>, lifetime: i64) -> Self {
        Self {
            clock,
            lifetime: Mutex::new(lifetime),
            refresh_calls: AtomicU32::new(0),
            fail_next: AtomicU32::new(0),
            revoke: AtomicBool::new(false),
            logout_fails: AtomicBool::new(false),
            refresh_delay: Mutex::new(Duration::ZERO),
            current_refresh: Mutex::new(String::new()),
            issued: Mutex::new(Vec::new()),
            logouts: AtomicU32::new(0),
            silent_fails: AtomicBool::new(false),
            browser_sign_ins: AtomicU32::new(0),
            silent_sign_ins: AtomicU32::new(0),
            opaque: AtomicBool::new(false),
            expires_in: Mutex::new(None),
            no_refresh: AtomicBool::new(false),
            refuse: AtomicBool::new(false),
            retry_after: Mutex::new(None),
            subject: Mutex::new(None),
            refresh_jwt_lifetime: Mutex::new(None),
            date_ahead_ms: std::sync::atomic::AtomicI64::new(7000),
            panic_next: AtomicBool::new(false),
            browser_waits: AtomicBool::new(false),
            sign_in_delay: Mutex::new(Duration::ZERO),
            signed_out: Mutex::new(Vec::new()),
            unauthorized: AtomicBool::new(false),
            api_calls: AtomicU32::new(0),
            fail_with: Mutex::new(None),
            clock_ahead_secs: Mutex::new(0),
            rejected_bearer: Mutex::new(None),
            call_delays: Mutex::new(Default::default()),
            answer_delay: Mutex::new(Duration::ZERO),
        }
    }

    /// The refresh token the provider will honour next.
    pub fn current_refresh(&self) -> String {
        self.current_refresh.lock().unwrap().clone()
    }

    /// The provider's clock now.
    fn provider_now(&self) -> crate::os::clock::Timestamp {
        self.clock.now() + chrono::Duration::seconds(*self.clock_ahead_secs.lock().unwrap())
    }

    fn grant(&self, user: &str, refreshing: bool) -> Grant {
        let iat = self.provider_now().timestamp();
        let subject = self.subject.lock().unwrap().clone();
        let user = subject.as_deref().unwrap_or(user);
        let token = if self.opaque.load(Ordering::SeqCst) {
            format!("opaque-{}", uuid::Uuid::new_v4())
        } else {
            sign(&keys().rsa, &claims(user, iat, *self.lifetime.lock().unwrap()))
        };
        let refresh = match *self.refresh_jwt_lifetime.lock().unwrap() {
            Some(life) => sign(
                &keys().ec,
                &json!({"iss": ISSUER, "sub": user, "iat": iat, "exp": iat + life, "jti": uuid::Uuid::new_v4().to_string()}),
            ),
            None => format!("rt-{}", uuid::Uuid::new_v4()),
        };
        *self.current_refresh.lock().unwrap() = refresh.clone();
        self.issued.lock().unwrap().extend([token.clone(), refresh.clone()]);
        Grant {
            refresh_expires_in: None,
            origin: None,
            bearer: AccessToken::new(token),
            refresh: (!self.no_refresh.load(Ordering::SeqCst)).then(|| RefreshToken::new(refresh)),
            id_token: None,
            expires_in: self
                .expires_in
                .lock()
                .unwrap()
                .or(Some(*self.lifetime.lock().unwrap() as u64)),
            scope: Some("accounts:read".into()),
            tenant: Some("t1".into()),
            customer: Some("c1".into()),
            server_date: Some(
                self.provider_now() + chrono::Duration::milliseconds(self.date_ahead_ms.load(Ordering::SeqCst)),
            ),
            // An opaque token's subject comes with the sign-in's ID token;
            // a refresh answer may bring none (OpenID Connect Core 12.2).
            subject: (self.opaque.load(Ordering::SeqCst) && !refreshing).then(|| user.to_owned()),
            name: None,
            email: None,
        }
    }
}

#[async_trait]
impl Provider for ScriptedProvider {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn sign_in(&self, credentials: &Credentials, _flow: &FlowContext) -> Result<Grant, Error> {
        let delay = *self.sign_in_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let (username, password) = match credentials {
            Credentials::Password { username, password, .. } => (username, password),
            Credentials::Browser(b) => {
                self.browser_sign_ins.fetch_add(1, Ordering::SeqCst);
                let _ = b.opener.open("https://idp.test/authorize?state=s");
                if self.browser_waits.load(Ordering::SeqCst) {
                    let mut cancel = b.cancel.clone();
                    loop {
                        if cancel.changed().await.is_err() || *cancel.borrow() {
                            return Err(Error::SignInCancelled);
                        }
                    }
                }
                if b.silent {
                    self.silent_sign_ins.fetch_add(1, Ordering::SeqCst);
                    if self.silent_fails.load(Ordering::SeqCst) {
                        return Err(Error::ReauthRequired("the provider answered login_required".into()));
                    }
                }
                return Ok(self.grant("alice", false));
            }
        };
        if password.expose() != "pw" {
            return Err(Error::InvalidCredentials("wrong password".into()));
        }
        Ok(self.grant(username, false))
    }

    async fn refresh(&self, refresh: &RefreshToken, _flow: &FlowContext) -> Result<Grant, Error> {
        self.refresh_calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.refresh_delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("the provider code panicked (injected)");
        }
        if self.revoke.load(Ordering::SeqCst) {
            return Err(Error::Revoked("revoked by test".into()));
        }
        if self.refuse.swap(false, Ordering::SeqCst) {
            return Err(Error::RefreshRefused("the refresh token expired".into()));
        }
        if let Some(e) = self.fail_with.lock().unwrap().clone() {
            return Err(e);
        }
        if self.fail_next.load(Ordering::SeqCst) > 0 {
            self.fail_next.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Server {
                status: 503,
                message: "injected".into(),
                retry_after: *self.retry_after.lock().unwrap(),
            });
        }
        if refresh.expose() != *self.current_refresh.lock().unwrap() {
            return Err(Error::Revoked("refresh token reuse detected".into()));
        }
        let grant = self.grant("alice", true);
        let late = *self.answer_delay.lock().unwrap();
        if !late.is_zero() {
            tokio::time::sleep(late).await;
        }
        Ok(grant)
    }

    async fn sign_out(
        &self,
        tokens: &SessionTokens,
        _flow: &FlowContext,
        _opener: &dyn crate::provider::opener::Opener,
    ) -> Result<(), Error> {
        self.logouts.fetch_add(1, Ordering::SeqCst);
        self.signed_out.lock().unwrap().push(tokens.clone());
        if self.logout_fails.load(Ordering::SeqCst) {
            return Err(Error::Network {
                host: "idp.test:443".into(),
                detail: "connection refused".into(),
            });
        }
        Ok(())
    }

    async fn call(
        &self,
        _request: &ApiRequest,
        bearer: &AccessToken,
        _flow: &FlowContext,
    ) -> Result<ApiResponse, Error> {
        self.api_calls.fetch_add(1, Ordering::SeqCst);
        let delay = self.call_delays.lock().unwrap().pop_front();
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        let rejected = self.rejected_bearer.lock().unwrap().as_deref() == Some(bearer.expose());
        Ok(ApiResponse {
            status: if rejected || self.unauthorized.load(Ordering::SeqCst) {
                401
            } else {
                200
            },
            content_type: None,
            body: "{}".into(),
        })
    }
}
