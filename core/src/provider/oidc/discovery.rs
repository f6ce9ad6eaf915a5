//! OpenID Connect Discovery 1.0: the provider's metadata, fetched through the
//! pinned client and cached.
//!
//! The document's `issuer` must equal the profile's `issuer` exactly
//! (section 4.3): no trailing-slash or case folding. Every endpoint must be
//! https. Redirects are not followed (the pinned client follows none).

use crate::error::Error;
use crate::net::tls::{BodyKind, PinnedClient};
use crate::token::{Fetched, HttpJwksFetcher, JwksFetcher};
use async_trait::async_trait;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long a fetched document is used before it is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// The metadata the app uses.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: reqwest::Url,
    pub token_endpoint: reqwest::Url,
    pub jwks_uri: reqwest::Url,
    pub userinfo_endpoint: Option<reqwest::Url>,
    /// RFC 7009 token revocation.
    pub revocation_endpoint: Option<reqwest::Url>,
    /// RP-initiated logout.
    pub end_session_endpoint: Option<reqwest::Url>,
    /// RFC 8628 device authorization (sign in on another device).
    pub device_authorization_endpoint: Option<reqwest::Url>,
    pub code_challenge_methods: Option<Vec<String>>,
    pub prompt_values: Option<Vec<String>>,
    pub token_auth_methods: Option<Vec<String>>,
    /// RFC 9207: the provider puts `iss` in authorization responses.
    pub iss_parameter: bool,
    /// The scopes it says it supports (what a new profile proposes).
    pub scopes: Option<Vec<String>>,
    /// RFC 7591 Dynamic Client Registration.
    pub registration_endpoint: Option<reqwest::Url>,
}

#[derive(Deserialize)]
struct Raw {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    userinfo_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    code_challenge_methods_supported: Option<Vec<String>>,
    prompt_values_supported: Option<Vec<String>>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    authorization_response_iss_parameter_supported: Option<bool>,
    scopes_supported: Option<Vec<String>>,
    registration_endpoint: Option<String>,
}

impl Discovery {
    /// Parse and check a discovery document fetched from `url`.
    pub fn parse(body: &[u8], expected_issuer: &str, url: &str) -> Result<Self, Error> {
        let raw: Raw = serde_json::from_slice(body).map_err(|e| {
            Error::Protocol(format!(
                "the discovery document at {url} is not valid metadata JSON ({e})"
            ))
        })?;
        let issuer = raw
            .issuer
            .ok_or_else(|| Error::Protocol(format!("the discovery document at {url} has no issuer")))?;
        if issuer != expected_issuer {
            return Err(Error::Protocol(format!(
                "the discovery document at {url} names issuer '{issuer}', but the profile's issuer is '{expected_issuer}'; they must be equal exactly (OpenID Connect Discovery 4.3). Correct the profile's issuer, or its discovery_url"
            )));
        }
        let endpoint = |field: &str, value: Option<String>| -> Result<Option<reqwest::Url>, Error> {
            let Some(value) = value else { return Ok(None) };
            let parsed = reqwest::Url::parse(&value).map_err(|e| {
                Error::Protocol(format!(
                    "{field} '{value}' in the discovery document is not a URL ({e})"
                ))
            })?;
            if parsed.scheme() != "https" {
                return Err(Error::Protocol(format!(
                    "{field} '{value}' in the discovery document is not https; the app only talks to providers over pinned TLS"
                )));
            }
            Ok(Some(parsed))
        };
        let need = |field: &str, value: Option<String>| -> Result<reqwest::Url, Error> {
            endpoint(field, value)?
                .ok_or_else(|| Error::Protocol(format!("the discovery document at {url} has no {field}")))
        };
        Ok(Self {
            authorization_endpoint: need("authorization_endpoint", raw.authorization_endpoint)?,
            token_endpoint: need("token_endpoint", raw.token_endpoint)?,
            jwks_uri: need("jwks_uri", raw.jwks_uri)?,
            userinfo_endpoint: endpoint("userinfo_endpoint", raw.userinfo_endpoint)?,
            revocation_endpoint: endpoint("revocation_endpoint", raw.revocation_endpoint)?,
            end_session_endpoint: endpoint("end_session_endpoint", raw.end_session_endpoint)?,
            device_authorization_endpoint: endpoint(
                "device_authorization_endpoint",
                raw.device_authorization_endpoint,
            )?,
            code_challenge_methods: raw.code_challenge_methods_supported,
            prompt_values: raw.prompt_values_supported,
            token_auth_methods: raw.token_endpoint_auth_methods_supported,
            iss_parameter: raw.authorization_response_iss_parameter_supported.unwrap_or(false),
            scopes: raw.scopes_supported,
            registration_endpoint: endpoint("registration_endpoint", raw.registration_endpoint)?,
            issuer,
        })
    }

    /// Whether silent sign-in (`prompt=none`) can be tried. Core requires
    /// every provider to support `prompt`; a provider that lists its prompt
    /// values without `none` says it does not.
    pub fn supports_prompt_none(&self) -> bool {
        self.prompt_values
            .as_ref()
            .is_none_or(|v| v.iter().any(|p| p == "none"))
    }
}

/// The discovery document of one profile, fetched once and reused.
pub struct DiscoveryCache {
    client: PinnedClient,
    url: reqwest::Url,
    issuer: String,
    cached: Mutex<Option<(Arc<Discovery>, Instant)>>,
}

impl DiscoveryCache {
    pub fn new(client: PinnedClient, url: reqwest::Url, issuer: String) -> Self {
        Self {
            client,
            url,
            issuer,
            cached: Mutex::new(None),
        }
    }

    /// The document, fetched if there is none younger than [`MAX_AGE`].
    /// Concurrent callers share one fetch; a failed fetch is not cached.
    pub async fn get(&self) -> Result<Arc<Discovery>, Error> {
        let mut cached = self.cached.lock().await;
        if let Some((d, at)) = cached.as_ref() {
            if at.elapsed() < MAX_AGE {
                return Ok(d.clone());
            }
        }
        let response = self.client.send(self.client.http().get(self.url.clone())).await?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(Error::Server {
                status,
                message: format!("fetching the discovery document from {} failed", self.url),
                retry_after: crate::provider::retry_after(&response),
            });
        }
        let body = self.client.read_body(response, BodyKind::Protocol).await?;
        let d = Arc::new(Discovery::parse(&body, &self.issuer, self.url.as_str())?);
        *cached = Some((d.clone(), Instant::now()));
        Ok(d)
    }
}

/// JWKS from the `jwks_uri` that discovery names.
pub struct DiscoveredJwks {
    pub client: PinnedClient,
    pub discovery: Arc<DiscoveryCache>,
}

#[async_trait]
impl JwksFetcher for DiscoveredJwks {
    async fn fetch(&self) -> Result<Fetched, Error> {
        let d = self.discovery.get().await?;
        HttpJwksFetcher::new(self.client.clone(), d.jwks_uri.clone())
            .fetch()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(issuer: &str, extra: &str) -> Vec<u8> {
        format!(
            r#"{{"issuer":"{issuer}","authorization_endpoint":"https://idp/authorize","token_endpoint":"https://idp/token","jwks_uri":"https://idp/jwks"{extra}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn issuer_must_match_exactly() {
        assert!(Discovery::parse(&doc("https://idp", ""), "https://idp", "u").is_ok());
        for other in ["https://idp/", "https://IDP", "https://evil"] {
            let e = Discovery::parse(&doc(other, ""), "https://idp", "u").unwrap_err();
            assert!(e.to_string().contains("must be equal exactly"), "{e}");
        }
    }

    #[test]
    fn endpoints_must_be_https_and_present() {
        let e = Discovery::parse(
            &doc("https://idp", r#","userinfo_endpoint":"http://idp/me""#),
            "https://idp",
            "u",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not https"), "{e}");
        let e = Discovery::parse(
            br#"{"issuer":"https://idp","token_endpoint":"https://idp/t","jwks_uri":"https://idp/j"}"#,
            "https://idp",
            "u",
        )
        .unwrap_err();
        assert!(e.to_string().contains("authorization_endpoint"), "{e}");
    }

    #[test]
    fn prompt_none_support() {
        let d = Discovery::parse(&doc("https://idp", ""), "https://idp", "u").unwrap();
        assert!(d.supports_prompt_none());
        let d = Discovery::parse(
            &doc("https://idp", r#","prompt_values_supported":["login","consent"]"#),
            "https://idp",
            "u",
        )
        .unwrap();
        assert!(!d.supports_prompt_none());
    }
}
