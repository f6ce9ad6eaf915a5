//! The session engine of Session Manager.
//!
//! It signs a person in to an identity provider, keeps the session alive for
//! as long as the provider allows, keeps secrets in the OS keychain, talks
//! only over certificate-pinned TLS and writes an audit log. It has no
//! dependency on Tauri: the desktop shell and `sessionctl` are thin fronts
//! over [`Engine`] and the [`SessionView`] it publishes.
//!
//! # Layers
//!
//! Each layer uses only the layers above it in this list (imports point
//! one way, down the stack of what a module stands on):
//!
//! 1. [`error`]: the engine's errors, the closed set of codes fronts show,
//!    and the error types of the layers below (config, token, keychain).
//! 2. [`os`]: what the operating system gives: private files and
//!    directories ([`os::paths`]), wall-clock time and waiting for it
//!    ([`os::clock`]), the machine waking up ([`os::resume`]) and the network
//!    coming back ([`os::netwatch`]).
//! 3. [`net`]: SPKI pins ([`net::pin`]), the pinning verifier and the pinned
//!    HTTP client ([`net::tls`]), request and correlation ids
//!    ([`net::headers`]).
//! 4. [`token`]: secret newtypes by role, JWT validation, the JWKS cache.
//! 5. [`storage`]: the keychain ([`storage::vault`]), the cross-process lock
//!    and change notices ([`storage::proclock`]), the audit log
//!    ([`storage::audit`]).
//! 6. [`insight`]: what the audit log tells: anomalies
//!    ([`insight::anomaly`]) and session metrics ([`insight::metrics`]).
//! 7. [`profile`]: environments, the TOML config file and its validation.
//! 8. [`view`]: [`SessionView`], the one serializable picture of a session.
//! 9. [`provider`]: the wire protocols (FinHub, OpenID Connect) behind one
//!    seam.
//! 10. [`engine`]: the session: state and its transitions, the one commit
//!     path, renewal, timing, the scheduler.
//! 11. [`support`]: what helps people run it: `doctor`
//!     ([`support::doctor`]), diagnostics for a support team
//!     ([`support::diagnostics`]) and the diagnostic log
//!     ([`support::diaglog`]).
#![forbid(unsafe_code)]

pub mod engine;
pub mod error;
pub mod insight;
pub mod net;
pub mod os;
pub mod profile;
pub mod provider;
pub mod storage;
pub mod support;
pub mod token;
pub mod view;

pub use engine::{Engine, EngineParts};
pub use error::{Error, ErrorCode, ErrorInfo};
pub use profile::{Config, Environment, Profile};
pub use token::{AccessToken, IdToken, Password, RefreshToken};
pub use view::{Phase, SessionView};

#[cfg(test)]
mod testkit;
