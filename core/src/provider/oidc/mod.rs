//! OpenID Connect: Authorization Code with PKCE through the system browser
//! and a loopback redirect (RFC 8252, RFC 7636), ID token validation (Core
//! 3.1.3.7), refresh with rotation (RFC 6749 section 6), silent
//! re-authentication (`prompt=none`), the device authorization grant (RFC
//! 8628, `device`), userinfo, and three ways to end a session
//! (`sign_out`): a Transmit-style logout endpoint, token revocation (RFC
//! 7009) and RP-initiated logout (`end_session_endpoint`).
//!
//! Offline access (Core 11): with `offline_access` among the scopes, an
//! interactive sign-in asks for `prompt=consent`, because providers that
//! follow the specification grant a refresh token only then (the profile's
//! `offline_access_prompt = false` turns that off for providers that do
//! not need it). A silent sign-in cannot show a consent page and does not
//! ask.
//!
//! Transmit Security is the named example; nothing here is specific to it
//! except the optional `logout_url` (Transmit's `POST /cis/v1/auth/logout`).

mod device;
pub mod discovery;
pub mod id_token;
pub mod loopback;
pub mod pkce;
mod sign_out;
mod token;

use super::opener::Opener;
use super::{
    bearer_header, join_below, ApiRequest, ApiResponse, BrowserSignIn, Credentials, Grant, Provider, SessionTokens,
};
use crate::error::Error;
use crate::net::headers::FlowContext;
use crate::net::tls::{BodyKind, PinnedClient};
use crate::os::clock::Clock;
use crate::profile::{OidcSettings, Profile};
use crate::token::{AccessToken, RefreshToken, Validator};
use async_trait::async_trait;
use discovery::{Discovery, DiscoveryCache};
use loopback::Loopback;
use pkce::Pkce;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use token::{TokenCall, TokenResponse};

/// How long the one-shot sign-out page waits for the browser to load it.
pub const SIGN_OUT_PAGE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a silent (`prompt=none`) sign-in may take: the browser answers
/// at once when it can.
pub const SILENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Authorization errors that mean "the person has to take part" (Core 3.1.2.6).
const INTERACTION_ERRORS: [&str; 4] = [
    "login_required",
    "interaction_required",
    "consent_required",
    "account_selection_required",
];

/// The OpenID Connect provider of one profile.
pub struct Oidc {
    profile: Arc<Profile>,
    client: PinnedClient,
    discovery: Arc<DiscoveryCache>,
    /// Validates ID tokens: audience = client id, kind ID token.
    id_tokens: Validator,
    clock: Arc<dyn Clock>,
    /// Sign-out pages waiting for the browser.
    pages: Mutex<Vec<tokio::task::JoinHandle<bool>>>,
}

/// What a sign-in's ID token is checked against besides the usual claims.
#[derive(Debug, Clone, Copy)]
pub(super) struct SignInChecks<'a> {
    /// The nonce the authorization request sent, if it sent one.
    pub nonce: Option<&'a str>,
    /// Whether the request sent the profile's `max_age` (a browser sign-in
    /// does; a device sign-in has no such parameter, so its ID token need
    /// not carry `auth_time`).
    pub max_age_sent: bool,
}

impl SignInChecks<'_> {
    /// A device sign-in (RFC 8628): no nonce, no `max_age`.
    pub const DEVICE: Self = SignInChecks {
        nonce: None,
        max_age_sent: false,
    };
}

impl Oidc {
    /// The provider for `profile` (which must be an `oidc` profile).
    /// `validator` is the engine's (access tokens); ID tokens get the same
    /// keys with the client id as audience. `clock` is the engine's: every
    /// time check of a sign-in uses the same time.
    pub fn new(
        profile: Arc<Profile>,
        client: PinnedClient,
        discovery: Arc<DiscoveryCache>,
        validator: &Validator,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let settings = profile
            .oidc
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("profile '{}' is not an oidc profile", profile.name)))?;
        let id_tokens = validator.for_id_tokens(&settings.client_id);
        Ok(Self {
            profile,
            client,
            discovery,
            id_tokens,
            clock,
            pages: Mutex::new(Vec::new()),
        })
    }

    fn settings(&self) -> &OidcSettings {
        self.profile.oidc.as_ref().expect("checked in Oidc::new")
    }

    /// The authorization request URL (Core 3.1.2.1 with RFC 7636).
    fn authorization_url(
        &self,
        d: &Discovery,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        pkce: &Pkce,
        silent: bool,
    ) -> reqwest::Url {
        let s = self.settings();
        let mut url = d.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &s.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &s.scopes.join(" "))
                .append_pair("state", state)
                .append_pair("nonce", nonce)
                .append_pair("code_challenge", pkce.challenge())
                .append_pair("code_challenge_method", Pkce::METHOD);
            if let Some(r) = &s.resource {
                q.append_pair("resource", r);
            }
            if silent {
                q.append_pair("prompt", "none");
            } else if self.asks_consent() {
                q.append_pair("prompt", "consent");
            }
            if let Some(age) = s.max_age {
                q.append_pair("max_age", &age.as_secs().to_string());
            }
        }
        url
    }

    /// Whether an interactive sign-in asks for `prompt=consent`: the profile
    /// renews with a refresh token, wants offline access and has not turned
    /// the prompt off. (Re-authenticate mode never uses a refresh token.)
    fn asks_consent(&self) -> bool {
        let s = self.settings();
        s.extend_access == crate::profile::ExtendAccess::Refresh
            && s.offline_access_prompt
            && s.scopes.iter().any(|x| x == "offline_access")
    }

    /// Name and email from the userinfo endpoint, if discovery names one.
    /// Its `sub` must be the ID token's (Core 5.3.2); otherwise, or when it
    /// fails, its values are not used and the ID token's claims stand.
    async fn userinfo(
        &self,
        d: &Discovery,
        access: &AccessToken,
        subject: &str,
    ) -> Option<(Option<String>, Option<String>)> {
        let url = d.userinfo_endpoint.clone()?;
        let request = self
            .client
            .http()
            .get(url)
            .header("Authorization", bearer_header(access))
            .header("Accept", "application/json");
        let response = self.client.send(request).await.ok()?;
        if response.status().as_u16() != 200 {
            return None;
        }
        let body = self.client.read_body(response, BodyKind::Protocol).await.ok()?;
        let v: Value = serde_json::from_slice(&body).ok()?;
        if v.get("sub").and_then(Value::as_str) != Some(subject) {
            return None;
        }
        let s = |n: &str| {
            v.get(n)
                .and_then(Value::as_str)
                .map(|t| crate::net::text::printable(t, 200))
        };
        Some((s("name"), s("email")))
    }

    /// Turn a token response into a grant and check who it is for: the ID
    /// token is validated (`sign_in`: the sign-in's `nonce`, if the flow
    /// had one, and the profile's `max_age`), then userinfo is asked.
    async fn grant(&self, d: &Discovery, t: TokenResponse, sign_in: Option<SignInChecks<'_>>) -> Result<Grant, Error> {
        self.identify(d, raw_grant(t), sign_in).await
    }

    /// Validate a grant's ID token and fill in the subject, name and email
    /// (ID token, then userinfo).
    async fn identify(&self, d: &Discovery, mut g: Grant, sign_in: Option<SignInChecks<'_>>) -> Result<Grant, Error> {
        let s = self.settings();
        let (subject, mut name, mut email) = match &g.id_token {
            Some(id) => {
                let expect = id_token::Expect {
                    nonce: sign_in.and_then(|c| c.nonce),
                    access: Some(&g.bearer),
                    max_age: sign_in.filter(|c| c.max_age_sent).and(s.max_age),
                    server_date: g.server_date,
                };
                let now = self.clock.now();
                let claims = id_token::verify(&self.id_tokens, id, &s.client_id, &expect, now)
                    .await
                    .map_err(|e| crate::token::explain_skew(e, g.server_date, now, self.id_tokens.leeway()))?;
                let c = |n: &str| claims.str(n).map(|t| crate::net::text::printable(t, 200));
                (Some(claims.subject.clone()), c("name"), c("email"))
            }
            // A sign-in's answer to an `openid` request must have one (Core
            // 3.1.3.3); a refresh answer may omit it (12.2).
            None if sign_in.is_some() => {
                return Err(Error::Protocol(
                    "the token response has no id_token, although the openid scope was requested".into(),
                ))
            }
            None => (None, None, None),
        };
        if let Some(sub) = &subject {
            if let Some((n, e)) = self.userinfo(d, &g.bearer, sub).await {
                name = n.or(name);
                email = e.or(email);
            }
        }
        g.subject = subject;
        g.name = name;
        g.email = email;
        Ok(g)
    }

    async fn browser_sign_in(&self, b: &BrowserSignIn) -> Result<Grant, Error> {
        let d = self.discovery.get().await?;
        if let Some(methods) = &d.code_challenge_methods {
            if !methods.iter().any(|m| m == Pkce::METHOD) {
                return Err(Error::Protocol(format!(
                    "the provider does not offer PKCE with S256 (it lists: {}); this app signs in only with S256",
                    methods.join(", ")
                )));
            }
        }
        if b.silent && !d.supports_prompt_none() {
            return Err(Error::ReauthRequired(
                "the provider does not support silent sign-in (prompt=none)".into(),
            ));
        }
        let listener = Loopback::bind(self.settings().redirect_port).await?;
        let redirect_uri = listener.redirect_uri();
        let (pkce, state, nonce) = (Pkce::generate(), pkce::random_token(), pkce::random_token());
        let url = self.authorization_url(&d, &redirect_uri, &state, &nonce, &pkce, b.silent);
        // The opener reports its own failure to the person; the URL is shown
        // to copy by hand, so the wait goes on.
        let _ = b.opener.open(url.as_str());
        let timeout = if b.silent {
            SILENT_TIMEOUT
        } else {
            self.settings().sign_in_timeout
        };
        let callback = listener
            .wait(&state, &d.issuer, d.iss_parameter, timeout, b.cancel.clone())
            .await
            .map_err(|e| match e {
                Error::Authorization { error, description }
                    if b.silent && INTERACTION_ERRORS.contains(&error.as_str()) =>
                {
                    Error::ReauthRequired(format!(
                        "the provider answered {error}{}",
                        description.map(|d| format!(" ({d})")).unwrap_or_default()
                    ))
                }
                Error::SignInTimedOut(_) if b.silent => {
                    Error::ReauthRequired("the browser did not answer the silent sign-in".into())
                }
                other => other,
            })?;
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", callback.code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce.verifier().expose().to_owned()),
        ];
        let response = self.token_request(&d, form).await?;
        let tokens = self.token_response(TokenCall::Code, response).await?;
        self.grant(
            &d,
            tokens,
            Some(SignInChecks {
                nonce: Some(&nonce),
                max_age_sent: true,
            }),
        )
        .await
    }
}

#[async_trait]
impl Provider for Oidc {
    fn name(&self) -> &'static str {
        "oidc"
    }

    fn take_pin_reports(&self) -> Vec<crate::net::tls::PinReport> {
        self.client.pin_reports().map(|r| r.drain()).unwrap_or_default()
    }

    async fn sign_in(&self, credentials: &Credentials, _flow: &FlowContext) -> Result<Grant, Error> {
        match credentials {
            Credentials::Browser(b) if b.device => self.device_sign_in(b).await,
            Credentials::Browser(b) => self.browser_sign_in(b).await,
            Credentials::Password { .. } => Err(Error::InvalidState(
                "this profile signs in through the browser (OpenID Connect), not with a password".into(),
            )),
        }
    }

    async fn refresh(&self, refresh: &RefreshToken, _flow: &FlowContext) -> Result<Grant, Error> {
        let d = self.discovery.get().await?;
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.expose().to_owned()),
        ];
        let response = self.token_request(&d, form).await?;
        let tokens = self.token_response(TokenCall::Refresh, response).await?;
        // Unchecked: the engine keeps the rotated refresh token first.
        Ok(raw_grant(tokens))
    }

    async fn check_refresh(&self, grant: Grant) -> Result<Grant, Error> {
        let d = self.discovery.get().await?;
        self.identify(&d, grant, None).await
    }

    async fn sign_out(&self, tokens: &SessionTokens, _flow: &FlowContext, opener: &dyn Opener) -> Result<(), Error> {
        self.sign_out_everywhere(tokens, opener).await
    }

    async fn call(
        &self,
        request: &ApiRequest,
        bearer: &AccessToken,
        _flow: &FlowContext,
    ) -> Result<ApiResponse, Error> {
        let base = self.settings().api_base_url.clone().ok_or_else(|| {
            Error::InvalidState(format!(
                "profile '{}' has no api_base_url; set it to the API that accepts this session's access token",
                self.profile.name
            ))
        })?;
        let url = join_below(&base, &request.path)?;
        let mut r = self
            .client
            .http()
            .request(request.method.clone(), url)
            .header("Authorization", bearer_header(bearer));
        if let Some(body) = &request.body {
            r = r.json(body);
        }
        let response = self.client.send(r).await?;
        super::read_api_response(&self.client, response).await
    }

    fn page_pending(&self) -> bool {
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|p| !p.is_finished())
    }

    async fn settle(&self, timeout: Duration) {
        let pages: Vec<_> = std::mem::take(&mut *self.pages.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::time::timeout(timeout, async {
            for page in pages {
                let _ = page.await;
            }
        })
        .await;
    }
}

/// A token response as a grant, before its ID token is checked: no
/// subject, name or email yet.
fn raw_grant(t: TokenResponse) -> Grant {
    Grant {
        bearer: t.access,
        refresh: t.refresh,
        id_token: t.id_token,
        expires_in: t.expires_in,
        refresh_expires_in: t.refresh_expires_in,
        origin: None,
        scope: t.scope,
        tenant: None,
        customer: None,
        server_date: t.server_date,
        subject: None,
        name: None,
        email: None,
    }
}
