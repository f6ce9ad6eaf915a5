//! The network: SPKI pins, the pinning TLS verifier and the pinned HTTP
//! client every request goes through, and the ids requests carry.

pub mod headers;
pub mod pin;
pub mod text;
pub mod tls;
