//! Request, activity, session and correlation ids.
//!
//! - `X-Request-ID`: a fresh UUID v4 on every request ([`request_id`]).
//! - `X-Activity-ID`: one UUID v4 per user flow (a sign-in, one refresh with
//!   its retries, a sign-out); a [`FlowContext`] carries it through the flow.
//! - `X-Session-ID`: the session's id, chosen by the client at sign-in.
//! - `X-Correlation-ID`: one UUID v4 per engine instance (one app run).

use uuid::Uuid;

pub const AUTHORIZATION: &str = "Authorization";
pub const X_ACTIVITY_ID: &str = "X-Activity-ID";
pub const X_TENANT_ID: &str = "X-Tenant-ID";
pub const X_REQUEST_ID: &str = "X-Request-ID";
pub const X_SESSION_ID: &str = "X-Session-ID";
pub const X_CORRELATION_ID: &str = "X-Correlation-ID";
pub const X_SESSION_ACTIVE: &str = "X-Session-Active";
pub const X_USER_SESSION_TOKEN: &str = "X-User-Session-Token";
/// A refresh's key, random, the same for every attempt this process makes
/// with one refresh token: a provider that honours it answers a repeated
/// attempt (its first answer was lost) with the same tokens instead of
/// seeing a reuse; a copy of the token alone does not carry it.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// A fresh request id (UUID v4).
pub fn request_id() -> Uuid {
    Uuid::new_v4()
}

/// The ids shared by every request of one user flow.
#[derive(Debug, Clone)]
pub struct FlowContext {
    /// `X-Activity-ID`: the same for every request of this flow.
    pub activity_id: Uuid,
    /// `X-Tenant-ID`.
    pub tenant_id: String,
    /// `X-Session-ID`.
    pub session_id: Uuid,
    /// `X-Correlation-ID`.
    pub correlation_id: Uuid,
}

impl FlowContext {
    /// A new flow (new activity id) for a session.
    pub fn new(tenant_id: &str, session_id: Uuid, correlation_id: Uuid) -> Self {
        Self {
            activity_id: Uuid::new_v4(),
            tenant_id: tenant_id.to_owned(),
            session_id,
            correlation_id,
        }
    }
}
