//! What the backend hands the window: the profile list, the About panel,
//! activity items. Plain data that crosses IPC; no token in any of it.

use super::*;

/// A profile as the profile picker shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProfileInfo {
    pub name: String,
    pub environment: String,
    pub provider: String,
    pub selected: bool,
    /// The issuer (OpenID Connect) or the API's address (FinHub).
    pub address: String,
    /// In the config file, so the window can remove it (the built-in
    /// Playground's are not).
    pub removable: bool,
    /// Its session now, for the home list (`None` until its engine opens).
    pub view: Option<SessionView>,
    /// The demo users, for the embedded Playground only.
    pub demo_users: Vec<DemoUserInfo>,
}

/// A demo user's credentials (a Playground's; not secrets).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DemoUserInfo {
    pub username: String,
    pub password: String,
}

impl From<&DemoUser> for DemoUserInfo {
    fn from(u: &DemoUser) -> Self {
        Self {
            username: u.username.clone(),
            password: u.password.clone(),
        }
    }
}

/// The profile list and any problem with the config file.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProfileList {
    pub profiles: Vec<ProfileInfo>,
    /// Why the config file's profiles are missing, if they are.
    pub config_error: Option<ErrorInfo>,
}

/// The About panel: what this app is and where it keeps things, and for QA
/// the built-in Playground's admin API. No session token: the admin token
/// is the Playground's own secret, shown to the person at the keyboard as
/// the Playground itself prints it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct About {
    pub version: String,
    pub data_dir: String,
    pub keychain_service: String,
    /// The built-in Playground, when it runs.
    pub playground: Option<PlaygroundQa>,
    /// Why the built-in Playground is not running, if it failed to start.
    pub playground_error: Option<ErrorInfo>,
}

/// How QA reaches the built-in Playground's admin API.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlaygroundQa {
    pub base_url: String,
    pub admin_url: String,
    /// Send as `Authorization: Bearer <admin_token>`.
    pub admin_token: String,
    /// The CA to trust (`curl --cacert`).
    pub ca_cert: String,
}

/// One line of the Activity list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ActivityItem {
    pub time: chrono::DateTime<chrono::Utc>,
    /// The event's kind, e.g. `session_refreshed`.
    pub kind: String,
    /// For people, e.g. "Session refreshed (refresh #2)".
    pub text: String,
    /// The provider's or the error's own words and code, for "Details".
    pub detail: Option<String>,
    pub user: Option<String>,
}

impl From<AuditRecord> for ActivityItem {
    fn from(r: AuditRecord) -> Self {
        let kind = serde_json::to_value(&r.event)
            .ok()
            .and_then(|v| v.get("event").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_default();
        Self {
            time: r.time,
            kind,
            text: r.event.describe(),
            detail: r.event.detail(),
            user: r.user,
        }
    }
}

/// What "This wasn't me" did: how many other sessions the provider ended
/// (`None`: the provider has no API for that, so only this one ended here),
/// and the view after this one's sign-out.
#[derive(Debug, Clone, Serialize)]
pub struct EndedEverywhere {
    pub others: Option<u64>,
    pub view: SessionView,
}
