//! The person's sessions as the provider lists them. They live with the
//! errors because a refusal at the session limit carries the list
//! ([`super::Error::SessionLimit`]): the window lets the person pick the
//! one to end.

use serde::{Deserialize, Serialize};

/// One of the person's sessions as the provider lists them (the FinHub
/// sessions API, `GET /api/v2/sessions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSession {
    pub id: String,
    /// What the client called itself at sign-in.
    pub device_name: String,
    pub created: chrono::DateTime<chrono::Utc>,
    pub last_seen: Option<chrono::DateTime<chrono::Utc>>,
    pub ip: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    /// This app's own session.
    pub current: bool,
}

impl RemoteSession {
    /// `device, signed in <time>, <city, country>` for a list in text.
    pub fn describe(&self) -> String {
        let place = match (&self.city, &self.country) {
            (Some(c), Some(k)) => format!(", {c}, {k}"),
            (Some(c), None) | (None, Some(c)) => format!(", {c}"),
            (None, None) => String::new(),
        };
        format!(
            "{} (signed in {}{place}; id {})",
            self.device_name,
            self.created.format("%Y-%m-%d %H:%M UTC"),
            self.id
        )
    }
}
