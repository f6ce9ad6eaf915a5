//! What the engine keeps: the session in the OS keychain, the lock and
//! change notices processes share for one keychain record, and the audit
//! log.

pub mod audit;
pub mod proclock;
pub mod vault;
