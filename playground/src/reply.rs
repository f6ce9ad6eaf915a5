//! Answers every route module shares: the JSON error shape, and the key
//! set (with its injected failures).

use crate::state::AppState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A FinHub-style error: `{"error": code, "message": text}`.
pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": code, "message": message.into()}))).into_response()
}

/// An OAuth error (RFC 6749 section 5.2): `{"error", "error_description"}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: impl Into<String>) -> Response {
    (
        status,
        [("cache-control", "no-store")],
        Json(json!({"error": error, "error_description": description.into()})),
    )
        .into_response()
}

/// The key set, or an injected 503.
pub(crate) fn jwks(state: &AppState) -> Response {
    if let Some(message) = state.injected_jwks_failure() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    }
    Json(state.keys.read().unwrap_or_else(|e| e.into_inner()).jwks()).into_response()
}

/// A `Bearer` token from the `Authorization` header, or "".
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
}
