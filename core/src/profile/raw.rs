//! The config file as written: every field optional, unknown fields refused.
//! [`super::validate`] turns a [`RawProfile`] into a [`super::Profile`].

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) default_profile: Option<String>,
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub(super) provider: String,
    pub(super) environment: String,
    pub(super) base_url: Option<String>,
    pub(super) backup_urls: Option<Vec<String>>,
    pub(super) failback_secs: Option<u64>,
    pub(super) device_name: Option<String>,
    pub(super) tenant_id: Option<String>,
    #[serde(default)]
    pub(super) pins: Vec<String>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) jwks_url: Option<String>,
    pub(super) issuer: Option<String>,
    pub(super) audience: Option<String>,
    pub(super) algorithms: Option<Vec<String>>,
    pub(super) refresh_lead_secs: Option<u64>,
    pub(super) min_tls: Option<String>,
    pub(super) pin_mode: Option<String>,
    pub(super) idle_timeout_secs: Option<u64>,
    pub(super) anomaly_max_sessions: Option<usize>,
    pub(super) anomaly_sign_out: Option<Vec<String>>,
    pub(super) absolute_timeout_secs: Option<u64>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) max_response_bytes: Option<u64>,
    // OpenID Connect
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) scopes: Option<Vec<String>>,
    pub(super) resource: Option<String>,
    pub(super) redirect_port: Option<u16>,
    pub(super) extend_access: Option<String>,
    pub(super) discovery_url: Option<String>,
    pub(super) logout_url: Option<String>,
    pub(super) end_session_in_browser: Option<bool>,
    pub(super) end_session_method: Option<String>,
    pub(super) sign_in_timeout_secs: Option<u64>,
    pub(super) api_base_url: Option<String>,
    pub(super) offline_access_prompt: Option<bool>,
    pub(super) max_age_secs: Option<u64>,
}

/// The fields only one provider kind takes.
pub(super) const FINHUB_ONLY: [&str; 5] = ["base_url", "backup_urls", "failback_secs", "device_name", "tenant_id"];
pub(super) const OIDC_ONLY: [&str; 14] = [
    "client_id",
    "client_secret",
    "scopes",
    "resource",
    "redirect_port",
    "extend_access",
    "discovery_url",
    "logout_url",
    "end_session_in_browser",
    "end_session_method",
    "sign_in_timeout_secs",
    "api_base_url",
    "offline_access_prompt",
    "max_age_secs",
];

impl RawProfile {
    /// Whether the field named `name` is set.
    pub(super) fn has(&self, name: &str) -> bool {
        match name {
            "base_url" => self.base_url.is_some(),
            "backup_urls" => self.backup_urls.is_some(),
            "failback_secs" => self.failback_secs.is_some(),
            "device_name" => self.device_name.is_some(),
            "tenant_id" => self.tenant_id.is_some(),
            "client_id" => self.client_id.is_some(),
            "client_secret" => self.client_secret.is_some(),
            "scopes" => self.scopes.is_some(),
            "resource" => self.resource.is_some(),
            "redirect_port" => self.redirect_port.is_some(),
            "extend_access" => self.extend_access.is_some(),
            "discovery_url" => self.discovery_url.is_some(),
            "logout_url" => self.logout_url.is_some(),
            "end_session_in_browser" => self.end_session_in_browser.is_some(),
            "end_session_method" => self.end_session_method.is_some(),
            "sign_in_timeout_secs" => self.sign_in_timeout_secs.is_some(),
            "api_base_url" => self.api_base_url.is_some(),
            "offline_access_prompt" => self.offline_access_prompt.is_some(),
            "max_age_secs" => self.max_age_secs.is_some(),
            _ => false,
        }
    }
}
