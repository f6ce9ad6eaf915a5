//! The token endpoint (RFC 6749 section 3.2): the client's authentication,
//! the token response and its errors.

use super::{Discovery, Oidc};
use crate::error::Error;
use crate::net::tls::BodyKind;
use crate::provider::{plausible_expires_in, sensitive};
use crate::token::{AccessToken, IdToken, RefreshToken};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use std::time::Duration;

/// Which token-endpoint call an error answer belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenCall {
    Code,
    Refresh,
    Device,
}

impl Oidc {
    /// POST a form to the token endpoint with the client's authentication.
    pub(super) async fn token_request(
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
    pub(super) fn authenticate(
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
    pub(super) async fn token_response(
        &self,
        call: TokenCall,
        response: reqwest::Response,
    ) -> Result<TokenResponse, Error> {
        let status = response.status().as_u16();
        let server_date = crate::provider::server_date(&response);
        let retry_after = crate::provider::retry_after(&response);
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
            // Keycloak's: how long the refresh token lasts (0: no limit).
            refresh_expires_in: plausible_expires_in(seconds("refresh_expires_in"), "refresh_expires_in")?
                .filter(|s| *s > 0),
            scope: string("scope"),
            server_date,
        })
    }
}

/// A parsed token response. No `Debug`: it holds tokens.
pub(super) struct TokenResponse {
    pub(super) access: AccessToken,
    pub(super) refresh: Option<RefreshToken>,
    pub(super) id_token: Option<IdToken>,
    pub(super) expires_in: Option<u64>,
    pub(super) refresh_expires_in: Option<u64>,
    pub(super) scope: Option<String>,
    pub(super) server_date: Option<crate::os::clock::Timestamp>,
}

/// An RFC 6749 section 5.2 error answer as an engine error.
pub(super) fn token_error(call: TokenCall, status: u16, body: &str, retry_after: Option<Duration>) -> Error {
    let json: Option<Value> = serde_json::from_str(body).ok();
    let v = json.clone().unwrap_or(Value::Null);
    let code = v
        .get("error")
        .and_then(Value::as_str)
        .map(|s| crate::net::text::printable(s, 100));
    let description = v
        .get("error_description")
        .and_then(Value::as_str)
        .map(|s| crate::net::text::printable(s, 300));
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
    if !json.as_ref().is_some_and(Value::is_object) {
        // RFC 6749 5.2 answers errors as a JSON object. Anything else is a
        // page from something in between (a captive portal, a proxy), not
        // the provider's word on the token.
        return Error::Protocol(format!(
            "the token endpoint's address answered {status} with a page that is not the token endpoint's JSON; a captive portal or a proxy may be in the way"
        ));
    }
    match (call, code) {
        // RFC 6749 5.2: an invalid, expired, revoked or reused refresh token.
        (TokenCall::Refresh, Some(c)) if c == "invalid_grant" => crate::provider::refresh_refusal(
            description.unwrap_or_else(|| "the refresh token is no longer valid (invalid_grant)".into()),
        ),
        // The client, not the token: a configuration error.
        (_, Some(error)) if crate::error::CLIENT_ERRORS.contains(&error.as_str()) => {
            Error::Authorization { error, description }
        }
        // A provider's own way of saying it does not know this refresh
        // token: a 400 with another error code, or none.
        (TokenCall::Refresh, code) if status == 400 => Error::RefreshRefused(format!(
            "the provider does not accept this refresh token ({}{})",
            code.as_deref().unwrap_or("HTTP 400 without an error code"),
            description.map(|d| format!(": {d}")).unwrap_or_default()
        )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_description_loses_its_control_characters() {
        let e = token_error(
            TokenCall::Refresh,
            400,
            r#"{"error":"invalid_grant\r\n","error_description":"gone\n\u001b[1mBOLD"}"#,
            None,
        );
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
        assert!(e.to_string().contains("gone[1mBOLD"), "{e}");
    }

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
        // A provider's own way of not knowing a refresh token (400
        // invalid_request, or no error code): refused, and said so.
        for body in [
            r#"{"error":"invalid_request","error_description":"unknown token"}"#,
            "{}",
        ] {
            let e = token_error(TokenCall::Refresh, 400, body, None);
            assert!(matches!(e, Error::RefreshRefused(_)), "{body}: {e:?}");
            assert!(!e.to_string().contains("sign-in"), "{e}");
        }
        // The client is wrong, not the token: a configuration error.
        let e = token_error(TokenCall::Refresh, 401, r#"{"error":"invalid_client"}"#, None);
        assert_eq!(
            e.renewal_verdict(),
            crate::error::RenewalVerdict::Misconfigured,
            "{e:?}"
        );
        // A captive portal's or a proxy's page: not the provider's word.
        for status in [400, 401, 403, 404] {
            let e = token_error(
                TokenCall::Refresh,
                status,
                "<html><body>Sign in to the Wi-Fi</body></html>",
                None,
            );
            assert_eq!(
                e.renewal_verdict(),
                crate::error::RenewalVerdict::Retry,
                "{status}: {e:?}"
            );
            assert!(e.to_string().contains("not the token endpoint's JSON"), "{e}");
        }
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
