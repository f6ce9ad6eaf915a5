//! What helps people run the app: `doctor` (checks of a machine's config,
//! keychain, data directory and provider hosts), diagnostics for a support
//! team (with no secret in them) and the diagnostic log.

pub mod diaglog;
pub mod diagnostics;
pub mod doctor;
pub mod enroll;
