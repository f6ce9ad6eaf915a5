//! Ending a session at the provider: a Transmit-style logout endpoint, RFC
//! 7009 revocation, and RP-initiated logout in the browser.

use super::{loopback, pkce, Discovery, Oidc, SIGN_OUT_PAGE_TIMEOUT};
use crate::error::Error;
use crate::profile::EndSessionMethod;
use crate::provider::opener::Opener;
use crate::provider::{bearer_header, SessionTokens};
use crate::token::IdToken;

/// What sign-out says when the provider cannot be asked to revoke the
/// refresh token.
pub const NOT_REVOCABLE: &str = "the provider offers no way to revoke this device's refresh token (its discovery names no revocation_endpoint), so it stays valid at the provider until it expires; a profile without offline_access gets an online refresh token, which ends with the provider's session";

impl Oidc {
    /// Every way the profile and the provider offer to end the session;
    /// the failures, if any, in one error.
    pub(super) async fn sign_out_everywhere(&self, tokens: &SessionTokens, opener: &dyn Opener) -> Result<(), Error> {
        let s = self.settings();
        let mut failures = Vec::new();
        // Whether the provider's session, and with it the refresh token,
        // was ended by the logout endpoint.
        let mut logged_out = false;
        // 1. Transmit-style logout with the access token.
        if let Some(url) = &s.logout_url {
            let request = self
                .client
                .http()
                .post(url.clone())
                .header("Authorization", bearer_header(&tokens.bearer));
            match self.client.send(request).await {
                Ok(r) if r.status().is_success() => logged_out = true,
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
                // No way to revoke it: an offline refresh token outlives the
                // provider's session (Core 11) and stays valid. Say so. An
                // online one (no offline_access asked) ends with the
                // provider's session, which the browser ends below.
                let offline = s.scopes.iter().any(|x| x == "offline_access");
                let ends_with_browser_session =
                    !offline && d.end_session_endpoint.is_some() && s.end_session_in_browser;
                if d.revocation_endpoint.is_none()
                    && tokens.refresh.is_some()
                    && !logged_out
                    && !ends_with_browser_session
                {
                    failures.push(NOT_REVOCABLE.to_owned());
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
        let title = "Signing you out";
        let text = "Session Manager is asking your identity provider to end its session in this browser.";
        let fields = [("id_token_hint", id_token.expose()), ("client_id", client_id.as_str())];
        let (page, csp) = match self.settings().end_session_method {
            EndSessionMethod::Post => loopback::post_page(title, text, end_session.as_str(), &fields),
            EndSessionMethod::Get => loopback::get_page(title, text, end_session, &fields),
        };
        let served = listener.serve_once(path, page, csp, SIGN_OUT_PAGE_TIMEOUT);
        self.pages.lock().unwrap_or_else(|e| e.into_inner()).push(served);
        opener
            .open(&url)
            .map_err(|e| format!("opening the provider's sign-out page: {e}"))
    }
}
