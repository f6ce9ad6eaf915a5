//! What the audit log tells about a person's sessions: unusual activity
//! (new location, odd hours, bursts, clocks) and session metrics.

pub mod anomaly;
pub mod metrics;
