//! The session engine of Session Manager.
//!
//! It signs a person in to an identity provider, keeps the session alive by
//! refreshing tokens before they expire, keeps secrets in the OS keychain,
//! talks only over certificate-pinned TLS and writes an audit log. It has no
//! dependency on Tauri: the desktop shell and `sessionctl` are thin fronts.
//!
//! Module map:
//! - [`profile`]: environments, the TOML config file and its validation;
//! - [`pin`]: SPKI pins and the DER they need (depends on nothing else);
//! - [`provider`]: the wire protocols (FinHub and OpenID Connect) behind
//!   one seam;
//! - [`token`]: secret newtypes by role, JWT validation and the JWKS cache;
//! - [`refresh`]: refresh timing and backoff (pure);
//! - [`engine`]: the session: state, commits, renewal, scheduler;
//! - [`proclock`]: the cross-process lock and change notices of a keychain
//!   record;
//! - [`tls`]: the pinning verifier and the pinned HTTP client;
//! - [`vault`]: the keychain;
//! - [`audit`]: the JSON Lines event log;
//! - [`headers`]: request, activity and correlation ids;
//! - [`clock`]: wall-clock time, injected so tests control it;
//! - [`paths`]: where files go, created private;
//! - [`diaglog`]: the diagnostic log (tracing, rotated, private);
//! - [`diagnostics`]: what a support team needs, with no secret in it;
//! - [`doctor`]: checks of a machine's config, keychain, data directory and
//!   provider hosts;
//! - [`view`]: `SessionView`, the one serializable picture of a session.
#![forbid(unsafe_code)]

pub mod anomaly;
pub mod audit;
pub mod clock;
pub mod diaglog;
pub mod diagnostics;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod headers;
pub mod metrics;
pub mod netwatch;
pub mod paths;
pub mod pin;
pub mod proclock;
pub mod profile;
pub mod provider;
pub mod refresh;
pub mod resume;
pub mod tls;
pub mod token;
pub mod vault;
pub mod view;

pub use engine::{Engine, EngineParts};
pub use error::{Error, ErrorCode, ErrorInfo};
pub use profile::{Config, Environment, Profile};
pub use token::{AccessToken, IdToken, Password, RefreshToken};
pub use view::{Phase, SessionView};

#[cfg(test)]
mod testkit;
