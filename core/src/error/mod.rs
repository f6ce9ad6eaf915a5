//! The engine's errors and the closed set of codes fronts show.
//!
//! Every error maps to one [`ErrorCode`]: `sessionctl` prints it, the desktop
//! UI maps it to text. Fronts never match on message strings. No message ever
//! contains a token.

mod config;
mod sessions;
mod token;
mod vault;

pub use config::ConfigError;
use serde::{Deserialize, Serialize};
pub use sessions::RemoteSession;
pub use token::TokenError;
pub use vault::VaultError;

/// The closed set of error codes that cross to fronts (CLI, IPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The config file or a profile is invalid.
    ConfigInvalid,
    /// The provider rejected the username or password.
    InvalidCredentials,
    /// The server's certificate chain matched none of the profile's pins.
    PinMismatch,
    /// TLS failed for another reason (untrusted CA, protocol version, …).
    TlsFailure,
    /// The server could not be reached (no connection).
    NetworkUnreachable,
    /// A connection was made, but the server did not answer completely in
    /// the profile's time (`timeout_secs`).
    Timeout,
    /// The server answered with an error (5xx, 429, unexpected status).
    ServerError,
    /// The server's answer did not follow the protocol.
    ProtocolError,
    /// A token failed validation.
    TokenInvalid,
    /// The session has expired.
    SessionExpired,
    /// The profile's idle timeout or absolute limit signed the session out.
    SessionTimedOut,
    /// The provider revoked the session.
    SessionRevoked,
    /// There is no session.
    NotSignedIn,
    /// The provider refused another concurrent session.
    SessionLimit,
    /// The OS keychain is missing or locked.
    KeychainUnavailable,
    /// The operation does not fit the session's current state.
    InvalidState,
    /// The identity provider refused the sign-in (an OAuth `error` such as
    /// `access_denied`); the message carries its `error_description`.
    AuthorizationFailed,
    /// The person cancelled the browser sign-in.
    SignInCancelled,
    /// The browser sign-in did not come back in time.
    SignInTimeout,
    /// The session cannot be extended silently; the person must sign in.
    ReauthRequired,
    /// No provider is configured (no config file, no built-in Playground):
    /// the app opens on its first-run screen.
    NotConfigured,
    /// A program this needs is not installed (the demo's Playground).
    NotInstalled,
    /// Anything else (a bug or an I/O failure).
    Internal,
}

impl ErrorCode {
    /// The code's wire name, e.g. `pin_mismatch`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ConfigInvalid => "config_invalid",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::PinMismatch => "pin_mismatch",
            ErrorCode::TlsFailure => "tls_failure",
            ErrorCode::NetworkUnreachable => "network_unreachable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ServerError => "server_error",
            ErrorCode::ProtocolError => "protocol_error",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::SessionTimedOut => "session_timed_out",
            ErrorCode::SessionRevoked => "session_revoked",
            ErrorCode::NotSignedIn => "not_signed_in",
            ErrorCode::SessionLimit => "session_limit",
            ErrorCode::KeychainUnavailable => "keychain_unavailable",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::AuthorizationFailed => "authorization_failed",
            ErrorCode::SignInCancelled => "sign_in_cancelled",
            ErrorCode::SignInTimeout => "sign_in_timeout",
            ErrorCode::ReauthRequired => "reauth_required",
            ErrorCode::NotConfigured => "not_configured",
            ErrorCode::NotInstalled => "not_installed",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as fronts see it: a code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
    /// Machine-readable detail for some codes: for `pin_mismatch`, the SPKI
    /// pins the server presented (comma separated), so a UI can show them
    /// without parsing the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For `session_limit`: the person's live sessions, oldest first, as
    /// the provider listed them (one may be ended to make room).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<RemoteSession>,
}

impl ErrorInfo {
    /// An error with no detail.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
            sessions: Vec::new(),
        }
    }
}

/// Everything that can go wrong in the engine. `Clone`, so that every caller
/// that shared one refresh gets the same outcome.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("sign-in refused: {0}. Check the username and password and try again")]
    InvalidCredentials(String),
    #[error("certificate pin mismatch for {host}: the server presented {presented}, which is not among the profile's pins. If the provider rotated its key, add the new pin to the profile; otherwise someone may be intercepting the connection")]
    PinMismatch { host: String, presented: String },
    #[error("TLS to {host} failed: {detail}")]
    Tls { host: String, detail: String },
    #[error("cannot reach {host}: {detail}. Check the network and the profile's base_url")]
    Network { host: String, detail: String },
    /// The connection broke after the request may have been sent: unlike
    /// [`Error::Network`], the server may have processed it.
    #[error("the connection to {host} broke before the answer was complete: {detail}")]
    ConnectionLost { host: String, detail: String },
    #[error("{host} {} within {secs} s; the provider may be overloaded or something between may be holding the connection. Try again, or raise the profile's timeout_secs", if *connected { "accepted the connection but did not answer completely" } else { "did not answer" })]
    Timeout { host: String, secs: u64, connected: bool },
    #[error("the answer from {url} is larger than {limit} bytes, so reading stopped there. {}", if *api { "If the answer is legitimate, raise the profile's max_response_bytes" } else { "An identity provider's protocol answer is far smaller: the provider, or something in front of it, is misbehaving" })]
    ResponseTooLarge { url: String, limit: u64, api: bool },
    #[error("the server answered {status}: {message}")]
    Server {
        status: u16,
        message: String,
        /// The answer's `Retry-After` (429, 503), if it had one.
        retry_after: Option<std::time::Duration>,
    },
    #[error("the provider's sign-out did not complete ({0}); the local session is cleared all the same")]
    Logout(String),
    #[error("the server's answer does not follow the protocol: {0}")]
    Protocol(String),
    #[error("token rejected: {0}")]
    Token(#[from] TokenError),
    #[error("the session expired at {0}; sign in again")]
    Expired(String),
    /// The profile's idle timeout or absolute limit ended the session.
    #[error("{0}; sign in again")]
    TimedOut(String),
    #[error("the session was revoked by the provider ({0}); sign in again")]
    Revoked(String),
    /// The provider refused the refresh token as expired or unknown
    /// (`invalid_grant` without a word of revocation or reuse).
    #[error("the session can no longer be renewed: the provider refused its refresh token ({0}); sign in again")]
    RefreshRefused(String),
    /// The session was ended in another process (a sign-out there).
    #[error("the session was ended in another process ({0})")]
    EndedElsewhere(String),
    /// Another process holds the session lock, or it cannot be taken.
    #[error("{0}")]
    Lock(String),
    #[error("not signed in; sign in first")]
    NotSignedIn,
    #[error("the provider refused another session: {message}")]
    SessionLimit {
        message: String,
        /// The live sessions, oldest first, when the provider listed them.
        live: Vec<RemoteSession>,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("the identity provider refused the sign-in: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Authorization { error: String, description: Option<String> },
    #[error("the sign-in was cancelled")]
    SignInCancelled,
    #[error("the sign-in did not finish within {0} s; start it again")]
    SignInTimedOut(u64),
    #[error("the session cannot be extended without you: {0}. Sign in again before it expires")]
    ReauthRequired(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Config(_) => ErrorCode::ConfigInvalid,
            Error::InvalidCredentials(_) => ErrorCode::InvalidCredentials,
            Error::PinMismatch { .. } => ErrorCode::PinMismatch,
            Error::Tls { .. } => ErrorCode::TlsFailure,
            Error::Network { .. } | Error::ConnectionLost { .. } => ErrorCode::NetworkUnreachable,
            Error::Timeout { .. } => ErrorCode::Timeout,
            Error::ResponseTooLarge { .. } => ErrorCode::ProtocolError,
            Error::Server { .. } | Error::Logout(_) => ErrorCode::ServerError,
            Error::Protocol(_) => ErrorCode::ProtocolError,
            Error::Token(_) => ErrorCode::TokenInvalid,
            Error::Expired(_) => ErrorCode::SessionExpired,
            Error::TimedOut(_) => ErrorCode::SessionTimedOut,
            Error::Revoked(_) => ErrorCode::SessionRevoked,
            Error::RefreshRefused(_) => ErrorCode::SessionExpired,
            Error::EndedElsewhere(_) => ErrorCode::NotSignedIn,
            Error::Lock(_) => ErrorCode::Internal,
            Error::NotSignedIn => ErrorCode::NotSignedIn,
            Error::SessionLimit { .. } => ErrorCode::SessionLimit,
            Error::Vault(e) if e.is_unavailable() => ErrorCode::KeychainUnavailable,
            Error::Vault(_) => ErrorCode::Internal,
            Error::InvalidState(_) => ErrorCode::InvalidState,
            Error::Authorization { .. } => ErrorCode::AuthorizationFailed,
            Error::SignInCancelled => ErrorCode::SignInCancelled,
            Error::SignInTimedOut(_) => ErrorCode::SignInTimeout,
            Error::ReauthRequired(_) => ErrorCode::ReauthRequired,
            Error::Internal(_) => ErrorCode::Internal,
        }
    }

    /// Network failures, timeouts, 5xx and 429: worth retrying with backoff.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Network { .. } | Error::ConnectionLost { .. } | Error::Timeout { .. } | Error::Lock(_) => true,
            Error::Vault(e) if e.is_unavailable() => true,
            Error::Server { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// What this error, as the outcome of a renewal, means for the
    /// session. Only the provider's word on the refresh token ends it;
    /// a misconfigured client stops the retries; everything else (the
    /// network, TLS, a page that is not the protocol's, any 4xx or 5xx
    /// without that word, a token that fails a time check, the keychain)
    /// may pass and is retried with backoff.
    pub fn renewal_verdict(&self) -> RenewalVerdict {
        match self {
            Error::Revoked(_) => RenewalVerdict::Revoked,
            Error::RefreshRefused(_) => RenewalVerdict::Refused,
            Error::ReauthRequired(_) => RenewalVerdict::Reauthenticate,
            Error::Config(_) | Error::InvalidState(_) => RenewalVerdict::Misconfigured,
            Error::Authorization { error, .. } if CLIENT_ERRORS.contains(&error.as_str()) => {
                RenewalVerdict::Misconfigured
            }
            _ => RenewalVerdict::Retry,
        }
    }

    /// How long the server asked to wait before the next attempt.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The `{code, message}` picture of this error.
    pub fn info(&self) -> ErrorInfo {
        ErrorInfo {
            code: self.code(),
            message: self.to_string(),
            detail: match self {
                Error::PinMismatch { presented, .. } => Some(presented.clone()),
                _ => None,
            },
            sessions: match self {
                Error::SessionLimit { live, .. } => live.clone(),
                _ => Vec::new(),
            },
        }
    }
}

/// The OAuth errors (RFC 6749 section 5.2) that say the client or the
/// profile is wrong, not the refresh token: retrying cannot help.
pub const CLIENT_ERRORS: [&str; 4] = [
    "invalid_client",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
];

/// What a failed renewal means for the session ([`Error::renewal_verdict`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewalVerdict {
    /// The provider revoked the refresh token (or its family): Revoked.
    Revoked,
    /// The provider refused the refresh token as expired or unknown: Expired.
    Refused,
    /// The session can only be extended by the person (re-authenticate).
    Reauthenticate,
    /// The client or profile is misconfigured: no more attempts until the
    /// person acts; nothing is deleted.
    Misconfigured,
    /// It may pass: keep the session and its refresh token, retry.
    Retry,
}

impl From<Error> for ErrorInfo {
    fn from(e: Error) -> Self {
        e.info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_their_serde_names() {
        let all = [
            ErrorCode::ConfigInvalid,
            ErrorCode::InvalidCredentials,
            ErrorCode::PinMismatch,
            ErrorCode::TlsFailure,
            ErrorCode::NetworkUnreachable,
            ErrorCode::Timeout,
            ErrorCode::ServerError,
            ErrorCode::ProtocolError,
            ErrorCode::TokenInvalid,
            ErrorCode::SessionExpired,
            ErrorCode::SessionTimedOut,
            ErrorCode::SessionRevoked,
            ErrorCode::NotSignedIn,
            ErrorCode::SessionLimit,
            ErrorCode::KeychainUnavailable,
            ErrorCode::InvalidState,
            ErrorCode::AuthorizationFailed,
            ErrorCode::SignInCancelled,
            ErrorCode::SignInTimeout,
            ErrorCode::ReauthRequired,
            ErrorCode::Internal,
        ];
        for code in all {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str(), "{code:?}");
        }
    }
}
