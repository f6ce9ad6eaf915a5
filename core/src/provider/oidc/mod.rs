//! OpenID Connect: Authorization Code with PKCE through the system browser
//! and a loopback redirect (RFC 8252, RFC 7636), ID token validation (Core
//! 3.1.3.7), refresh with rotation (RFC 6749 section 6), silent
//! re-authentication (`prompt=none`), userinfo, and three ways to end a
//! session: a Transmit-style logout endpoint, token revocation (RFC 7009)
//! and RP-initiated logout (`end_session_endpoint`).
//!
//! Transmit Security is the named example; nothing here is specific to it
//! except the optional `logout_url` (Transmit's `POST /cis/v1/auth/logout`).

pub mod discovery;
pub mod id_token;
pub mod loopback;
pub mod pkce;

use super::opener::Opener;
use super::{
    bearer_header, join_below, plausible_expires_in, sensitive, ApiRequest, ApiResponse, BrowserSignIn, Credentials,
    Grant, Provider, SessionTokens,
};
use crate::clock::Clock;
use crate::error::Error;
use crate::headers::FlowContext;
use crate::profile::{OidcSettings, Profile};
use crate::tls::{BodyKind, PinnedClient};
use crate::token::{AccessToken, IdToken, RefreshToken, Validator};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use discovery::{Discovery, DiscoveryCache};
use loopback::Loopback;
use pkce::Pkce;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Which token-endpoint call an error answer belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenCall {
    Code,
    Refresh,
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
            }
        }
        url
    }

    /// POST a form to the token endpoint with the client's authentication.
    async fn token_request(
        &self,
        d: &Discovery,
        mut form: Vec<(&'static str, String)>,
    ) -> Result<reqwest::Response, Error> {
        let s = self.settings();
        let request = self.authenticate(d, self.client.http().post(d.token_endpoint.clone()), &mut form);
        if let Some(r) = &s.resource {
            form.push(("resource", r.clone()));
        }
        self.client
            .send(request.header("Accept", "application/json").form(&form))
            .await
    }

    /// The client's authentication on a token or revocation request: a
    /// public client sends `client_id`; a confidential one uses
    /// `client_secret_basic` unless discovery offers only
    /// `client_secret_post` (RFC 6749 section 2.3.1).
    fn authenticate(
        &self,
        d: &Discovery,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(&'static str, String)>,
    ) -> reqwest::RequestBuilder {
        let s = self.settings();
        let Some(secret) = &s.client_secret else {
            form.push(("client_id", s.client_id.clone()));
            return request;
        };
        let post_only = d.token_auth_methods.as_ref().is_some_and(|m| {
            !m.iter().any(|x| x == "client_secret_basic") && m.iter().any(|x| x == "client_secret_post")
        });
        if post_only {
            form.push(("client_id", s.client_id.clone()));
            form.push(("client_secret", secret.expose().to_owned()));
            return request;
        }
        let enc = |v: &str| form_urlencoded_component(v);
        let basic = B64.encode(format!("{}:{}", enc(&s.client_id), enc(secret.expose())));
        request.header("Authorization", sensitive(&format!("Basic {basic}")))
    }

    /// Parse a token response (RFC 6749 section 5.1) or its error (5.2).
    async fn token_response(&self, call: TokenCall, response: reqwest::Response) -> Result<TokenResponse, Error> {
        let status = response.status().as_u16();
        let server_date = super::server_date(&response);
        let retry_after = super::retry_after(&response);
        let body = self.client.read_body(response, BodyKind::Protocol).await?;
        if status != 200 {
            return Err(token_error(call, status, &String::from_utf8_lossy(&body), retry_after));
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            // The position only: serde's message could quote a token.
            Error::Protocol(format!(
                "the token endpoint's answer is not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let string = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
        let access = string("access_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Protocol("the token response has no access_token".into()))?;
        match string("token_type") {
            Some(t) if t.eq_ignore_ascii_case("bearer") => {}
            Some(t) => {
                return Err(Error::Protocol(format!(
                    "token_type is '{t}', only Bearer is supported"
                )))
            }
            None => return Err(Error::Protocol("the token response has no token_type".into())),
        }
        let seconds = |name: &str| match v.get(name) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        Ok(TokenResponse {
            access: AccessToken::new(access),
            refresh: string("refresh_token").filter(|t| !t.is_empty()).map(RefreshToken::new),
            id_token: string("id_token").map(IdToken::new),
            expires_in: plausible_expires_in(seconds("expires_in"), "expires_in")?,
            scope: string("scope"),
            server_date,
        })
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
        let s = |n: &str| v.get(n).and_then(Value::as_str).map(str::to_owned);
        Some((s("name"), s("email")))
    }

    /// Turn a token response into a grant: the ID token is validated
    /// (with `nonce` at sign-in), then userinfo is asked.
    async fn grant(&self, d: &Discovery, t: TokenResponse, nonce: Option<&str>) -> Result<Grant, Error> {
        let s = self.settings();
        let (subject, mut name, mut email) = match &t.id_token {
            Some(id) => {
                let claims = id_token::verify(&self.id_tokens, id, &s.client_id, nonce, self.clock.now()).await?;
                let c = |n: &str| claims.str(n).map(str::to_owned);
                (Some(claims.subject.clone()), c("name"), c("email"))
            }
            // An authorization-code answer to an `openid` request must have
            // one (Core 3.1.3.3); a refresh answer may omit it (12.2).
            None if nonce.is_some() => {
                return Err(Error::Protocol(
                    "the token response has no id_token, although the openid scope was requested".into(),
                ))
            }
            None => (None, None, None),
        };
        if let Some(sub) = &subject {
            if let Some((n, e)) = self.userinfo(d, &t.access, sub).await {
                name = n.or(name);
                email = e.or(email);
            }
        }
        Ok(Grant {
            bearer: t.access,
            refresh: t.refresh,
            id_token: t.id_token,
            expires_in: t.expires_in,
            scope: t.scope,
            tenant: None,
            customer: None,
            server_date: t.server_date,
            subject,
            name,
            email,
        })
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
        self.grant(&d, tokens, Some(&nonce)).await
    }

    /// POST a token to an RFC 7009 revocation endpoint.
    async fn revoke(&self, d: &Discovery, url: &reqwest::Url, token: &str, hint: &str) -> Result<(), String> {
        let mut form = vec![("token", token.to_owned()), ("token_type_hint", hint.to_owned())];
        let request = self.authenticate(d, self.client.http().post(url.clone()), &mut form);
        let response = self.client.send(request.form(&form)).await.map_err(|e| e.to_string())?;
        match response.status().as_u16() {
            200 => Ok(()),
            status => Err(format!("revoking the {hint} answered {status}")),
        }
    }

    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) in the
    /// browser. With an ID token as hint, the request is a POST from a
    /// one-shot page on loopback, so the token never travels in a URL (a
    /// process command line, browser history, the provider's access log).
    /// Without one, the page's address is enough: `client_id` only.
    async fn end_session(
        &self,
        end_session: &reqwest::Url,
        id_token: Option<&IdToken>,
        opener: &dyn Opener,
    ) -> Result<(), String> {
        let client_id = &self.settings().client_id;
        let Some(id_token) = id_token else {
            let mut url = end_session.clone();
            url.query_pairs_mut().append_pair("client_id", client_id);
            return opener
                .open(url.as_str())
                .map_err(|e| format!("opening the provider's sign-out page: {e}"));
        };
        let listener = loopback::Loopback::bind(0).await.map_err(|e| e.to_string())?;
        let path = format!("/sign-out/{}", pkce::random_token());
        let url = format!("http://127.0.0.1:{}{path}", listener.port());
        let (page, csp) = loopback::post_page(
            "Signing you out",
            "Session Manager is asking your identity provider to end its session in this browser.",
            end_session.as_str(),
            &[("id_token_hint", id_token.expose()), ("client_id", client_id)],
        );
        let served = listener.serve_once(path, page, csp, SIGN_OUT_PAGE_TIMEOUT);
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).push(served);
        opener
            .open(&url)
            .map_err(|e| format!("opening the provider's sign-out page: {e}"))
    }
}

/// A parsed token response. No `Debug`: it holds tokens.
struct TokenResponse {
    access: AccessToken,
    refresh: Option<RefreshToken>,
    id_token: Option<IdToken>,
    expires_in: Option<u64>,
    scope: Option<String>,
    server_date: Option<crate::clock::Timestamp>,
}

/// An RFC 6749 section 5.2 error answer as an engine error.
fn token_error(call: TokenCall, status: u16, body: &str, retry_after: Option<Duration>) -> Error {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v
        .get("error")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(100).collect::<String>());
    let description = v
        .get("error_description")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(300).collect::<String>());
    if (300..400).contains(&status) {
        return Error::Protocol("the token endpoint redirected; redirects are not followed".into());
    }
    if status == 429 || status >= 500 {
        return Error::Server {
            status,
            message: description.or(code).unwrap_or_else(|| format!("HTTP {status}")),
            retry_after,
        };
    }
    match (call, code) {
        // RFC 6749 5.2: an invalid, expired, revoked or reused refresh token.
        (TokenCall::Refresh, Some(c)) if c == "invalid_grant" => super::refresh_refusal(
            description.unwrap_or_else(|| "the refresh token is no longer valid (invalid_grant)".into()),
        ),
        (_, Some(error)) => Error::Authorization { error, description },
        (_, None) => Error::Server {
            status,
            message: format!("the token endpoint answered {status} without an OAuth error"),
            retry_after,
        },
    }
}

/// `application/x-www-form-urlencoded` encoding of one component, as
/// client_secret_basic requires before base64 (RFC 6749 section 2.3.1).
fn form_urlencoded_component(v: &str) -> String {
    let mut url = reqwest::Url::parse("https://x/").expect("a valid URL");
    url.query_pairs_mut().append_pair("v", v);
    url.query().unwrap_or_default().trim_start_matches("v=").to_owned()
}

#[async_trait]
impl Provider for Oidc {
    fn name(&self) -> &'static str {
        "oidc"
    }

    async fn sign_in(&self, credentials: &Credentials, _flow: &FlowContext) -> Result<Grant, Error> {
        match credentials {
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
        self.grant(&d, tokens, None).await
    }

    async fn sign_out(&self, tokens: &SessionTokens, _flow: &FlowContext, opener: &dyn Opener) -> Result<(), Error> {
        let s = self.settings();
        let mut failures = Vec::new();
        // 1. Transmit-style logout with the access token.
        if let Some(url) = &s.logout_url {
            let request = self
                .client
                .http()
                .post(url.clone())
                .header("Authorization", bearer_header(&tokens.bearer));
            match self.client.send(request).await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => failures.push(format!("the logout endpoint answered {}", r.status().as_u16())),
                Err(e) => failures.push(format!("the logout endpoint: {e}")),
            }
        }
        match self.discovery.get().await {
            Err(e) => failures.push(format!("discovery: {e}")),
            Ok(d) => {
                // 2. RFC 7009: the refresh token first (it outlives the access token).
                if let Some(url) = &d.revocation_endpoint {
                    if let Some(r) = &tokens.refresh {
                        if let Err(e) = self.revoke(&d, url, r.expose(), "refresh_token").await {
                            failures.push(e);
                        }
                    }
                    if let Err(e) = self.revoke(&d, url, tokens.bearer.expose(), "access_token").await {
                        failures.push(e);
                    }
                }
                // 3. RP-initiated logout: the browser holds the provider's session.
                if let (Some(url), true) = (&d.end_session_endpoint, s.end_session_in_browser) {
                    if let Err(e) = self.end_session(url, tokens.id_token.as_ref(), opener).await {
                        failures.push(e);
                    }
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Logout(failures.join("; ")))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_map_per_rfc6749() {
        let e = token_error(
            TokenCall::Refresh,
            400,
            r#"{"error":"invalid_grant","error_description":"reused"}"#,
            None,
        );
        assert!(matches!(e, Error::Revoked(m) if m == "reused"));
        let e = token_error(
            TokenCall::Refresh,
            400,
            r#"{"error":"invalid_grant","error_description":"Token is not active"}"#,
            None,
        );
        assert!(matches!(e, Error::RefreshRefused(_)), "{e:?}");
        let e = token_error(
            TokenCall::Code,
            400,
            r#"{"error":"invalid_grant","error_description":"code used"}"#,
            None,
        );
        assert!(
            matches!(e, Error::Authorization { ref error, .. } if error == "invalid_grant"),
            "{e:?}"
        );
        assert!(token_error(TokenCall::Refresh, 503, "", None).is_transient());
        assert!(matches!(
            token_error(TokenCall::Code, 401, r#"{"error":"invalid_client"}"#, None),
            Error::Authorization { .. }
        ));
    }

    #[test]
    fn basic_auth_components_are_form_encoded() {
        assert_eq!(form_urlencoded_component("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }
}
