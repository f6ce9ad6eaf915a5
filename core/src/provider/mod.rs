//! Identity providers: the wire protocols behind one seam.
//!
//! The session model knows bearer tokens, refresh tokens and identities; it
//! never sees a provider's field names. FinHub ([`finhub::FinHub`]) is the
//! first provider; an OpenID Connect provider (Authorization Code + PKCE with
//! refresh-token rotation) fits the same trait: [`Credentials`] grows an
//! interactive variant and [`Grant`] already carries an optional `id_token`.

pub mod finhub;

/// The HTTP method type of [`ApiRequest`].
pub use reqwest::Method;

use crate::error::Error;
use crate::headers::FlowContext;
use crate::token::Secret;
use async_trait::async_trait;

/// What a person signs in with.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// A username and a password (FinHub).
    Password { username: String, password: Secret },
}

/// What a provider hands out at sign-in and at each refresh.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The token sent as `Authorization: Bearer` (FinHub's `userSessionToken`,
    /// an OIDC access token). Always a JWT the engine validates.
    pub bearer: Secret,
    /// The refresh token, if the provider issues one.
    pub refresh: Option<Secret>,
    /// An OIDC `id_token`, if any.
    pub id_token: Option<Secret>,
    /// The lifetime the provider announced.
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
    pub tenant: Option<String>,
    pub customer: Option<String>,
    /// The server's clock when it answered (its `Date` header), if known.
    pub server_date: Option<crate::clock::Timestamp>,
}

/// The tokens of a session, as a provider needs them to end it.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub bearer: Secret,
    pub refresh: Option<Secret>,
}

/// A call to the provider's API on the session's behalf.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    pub method: reqwest::Method,
    /// A path below the provider's base URL, starting with `/`.
    pub path: String,
    pub body: Option<serde_json::Value>,
}

/// The provider's answer to an [`ApiRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// The seam every identity provider implements.
#[async_trait]
pub trait Provider: Send + Sync {
    /// A short name (`finhub`).
    fn name(&self) -> &'static str;

    /// Sign in. Wrong credentials are [`Error::InvalidCredentials`].
    async fn sign_in(&self, credentials: &Credentials, flow: &FlowContext) -> Result<Grant, Error>;

    /// Exchange a refresh token for a new grant. A refresh token the provider
    /// no longer honours is [`Error::Revoked`]; network failures, 5xx and 429
    /// are transient ([`Error::is_transient`]).
    async fn refresh(&self, refresh: &Secret, flow: &FlowContext) -> Result<Grant, Error>;

    /// End the session at the provider.
    async fn sign_out(&self, tokens: &SessionTokens, flow: &FlowContext) -> Result<(), Error>;

    /// Call the provider's API with the session's credentials and headers.
    async fn call(&self, request: &ApiRequest, bearer: &Secret, flow: &FlowContext) -> Result<ApiResponse, Error>;
}
