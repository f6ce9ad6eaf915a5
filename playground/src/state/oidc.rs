//! The OpenID Connect side's data: pending sign-ins, codes, browser
//! sessions, device grants, opaque tokens, and the switches that make the
//! Playground strict (the default, as certified providers are) or lenient
//! (as some real providers also are).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The most pending sign-ins, codes, browser sessions, device grants and
/// opaque tokens the Playground keeps; expired ones go first, then any.
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// Make room in `map` for one more entry: drop what `expired` says, then,
/// if still full, any entries.
pub(crate) fn make_room<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>, expired: impl Fn(&V) -> bool) {
    map.retain(|_, v| !expired(v));
    let excess = (map.len() + 1).saturating_sub(MAX_ENTRIES);
    let doomed: Vec<K> = map.keys().take(excess).cloned().collect();
    for k in doomed {
        map.remove(&k);
    }
}

/// 32 random bytes, base64url: codes, cookies, device codes.
pub(crate) fn random() -> String {
    B64URL.encode(rand::random::<[u8; 32]>())
}

/// What an OIDC session keeps besides the FinHub fields.
pub(crate) struct OidcSession {
    pub(crate) client_id: String,
    /// The scopes granted (those requested, less `offline_access` when
    /// the Playground did not grant offline access).
    pub(crate) scope: String,
    /// The browser session it came from (empty for a device grant).
    pub(crate) sso: String,
    /// When the person authenticated (Core 2, `auth_time`).
    pub(crate) auth_time: i64,
    /// The RFC 8707 resource, the access token's audience when given.
    pub(crate) resource: Option<String>,
}

/// An authorization request, as checked.
#[derive(Clone)]
pub(crate) struct AuthorizeParams {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) challenge: String,
    pub(crate) scope: String,
    /// `prompt` values (Core 3.1.2.1), e.g. `login`, `consent`.
    pub(crate) prompt: Vec<String>,
    /// `max_age` in seconds, if sent.
    pub(crate) max_age: Option<i64>,
    pub(crate) resource: Option<String>,
}

impl AuthorizeParams {
    pub(crate) fn prompts(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }
}

/// A sign-in page in progress.
pub(crate) struct Transaction {
    pub(crate) params: AuthorizeParams,
    pub(crate) created: i64,
    /// Who signed in on the page, once they have, while the consent page
    /// is shown: (user, auth_time, browser session).
    pub(crate) signed_in: Option<(String, i64, String)>,
}

/// An authorization code.
pub(crate) struct Code {
    pub(crate) user: String,
    pub(crate) params: AuthorizeParams,
    pub(crate) sso: String,
    pub(crate) auth_time: i64,
    pub(crate) expires: i64,
    /// The person agreed on a consent page (`prompt=consent`).
    pub(crate) consented: bool,
    /// The session created when the code was redeemed (reuse revokes it).
    pub(crate) redeemed: Option<String>,
}

/// Where a device grant (RFC 8628) stands.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    /// Approved by `user` at `auth_time`.
    Approved {
        user: String,
        auth_time: i64,
    },
    Denied,
    /// Tokens were issued for it: it cannot be used again.
    Redeemed,
}

/// A device authorization (RFC 8628 section 3.2).
pub(crate) struct DeviceGrant {
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) user_code: String,
    pub(crate) expires: i64,
    /// The polling interval asked of the client, seconds.
    pub(crate) interval: i64,
    /// When the client last polled (too soon is `slow_down`).
    pub(crate) last_poll: Option<i64>,
    pub(crate) status: DeviceStatus,
}

/// The switches QA flips through `POST /admin/oidc`. Strict by default.
#[derive(Default)]
pub(crate) struct Switches {
    /// Issue opaque access tokens instead of JWTs (`typ: at+jwt`).
    pub(crate) opaque_access_tokens: AtomicBool,
    /// Answer (and advertise) `prompt=none`. On by default.
    pub(crate) prompt_none: AtomicBool,
    /// Grant `offline_access` without `prompt=consent` (Core 11 lets a
    /// provider do so "when other conditions" allow; many do).
    pub(crate) lenient_offline_access: AtomicBool,
    /// Put an ID token in refresh answers (Core 12.2 makes it optional).
    pub(crate) id_token_on_refresh: AtomicBool,
    /// Send Keycloak's `refresh_expires_in` with each refresh token.
    pub(crate) refresh_expires_in: AtomicBool,
    /// Issue opaque refresh tokens instead of JWTs.
    pub(crate) opaque_refresh_tokens: AtomicBool,
    /// Misbehave: reuse the browser's sign-in whatever its age, ignoring
    /// `max_age` (and still report the old `auth_time`).
    pub(crate) ignore_max_age: AtomicBool,
    /// JWT access tokens name the granted scopes as their `aud` (a reading
    /// of RFC 9068 some certified providers have): the client must not
    /// inspect them.
    pub(crate) access_token_aud_scopes: AtomicBool,
    /// Discovery names no `revocation_endpoint` (and `/revoke` is gone):
    /// refresh tokens live on after sign-out, as at some certified
    /// providers.
    pub(crate) no_revocation_endpoint: AtomicBool,
    /// The end-session endpoint takes GET only: a POST is answered 404 (as at a certified provider).
    pub(crate) end_session_get_only: AtomicBool,
    /// The revocation endpoint answers a public client (no secret) 401 invalid_client.
    pub(crate) revocation_refuses_public_clients: AtomicBool,
    /// A refresh token the provider does not know is answered 400 invalid_request, not invalid_grant.
    pub(crate) unknown_refresh_invalid_request: AtomicBool,
    /// Refresh answers carry no new refresh token: the one presented stays valid.
    pub(crate) no_rotation: AtomicBool,
    /// Refresh tokens also without `offline_access` (online: they end with
    /// the provider's session at end-session).
    pub(crate) online_refresh_tokens: AtomicBool,
    /// Dynamic Client Registration (RFC 7591): discovery names
    /// `registration_endpoint` and `/oidc/register` takes public native
    /// clients. Off by default.
    pub(crate) registration: AtomicBool,
    /// The polling interval asked of device clients (RFC 8628: 5 s).
    pub(crate) device_interval_secs: AtomicU64,
    /// The one loopback port registered for the redirect URI, matched
    /// exactly as some certified providers do; 0 accepts any port (RFC 8252
    /// section 7.3, the default).
    pub(crate) registered_redirect_port: AtomicU64,
}

/// The switches as the admin API shows them.
#[derive(Serialize)]
pub(crate) struct SwitchesView {
    pub(crate) opaque_access_tokens: bool,
    pub(crate) prompt_none: bool,
    pub(crate) lenient_offline_access: bool,
    pub(crate) id_token_on_refresh: bool,
    pub(crate) refresh_expires_in: bool,
    pub(crate) opaque_refresh_tokens: bool,
    pub(crate) ignore_max_age: bool,
    pub(crate) access_token_aud_scopes: bool,
    pub(crate) no_revocation_endpoint: bool,
    pub(crate) end_session_get_only: bool,
    pub(crate) revocation_refuses_public_clients: bool,
    pub(crate) unknown_refresh_invalid_request: bool,
    pub(crate) no_rotation: bool,
    pub(crate) online_refresh_tokens: bool,
    pub(crate) registration: bool,
    pub(crate) device_interval_seconds: u64,
    pub(crate) registered_redirect_port: u64,
}

impl Switches {
    pub(crate) fn get(flag: &AtomicBool) -> bool {
        flag.load(Ordering::SeqCst)
    }

    pub(crate) fn view(&self) -> SwitchesView {
        SwitchesView {
            opaque_access_tokens: Self::get(&self.opaque_access_tokens),
            prompt_none: Self::get(&self.prompt_none),
            lenient_offline_access: Self::get(&self.lenient_offline_access),
            id_token_on_refresh: Self::get(&self.id_token_on_refresh),
            refresh_expires_in: Self::get(&self.refresh_expires_in),
            opaque_refresh_tokens: Self::get(&self.opaque_refresh_tokens),
            ignore_max_age: Self::get(&self.ignore_max_age),
            access_token_aud_scopes: Self::get(&self.access_token_aud_scopes),
            no_revocation_endpoint: Self::get(&self.no_revocation_endpoint),
            end_session_get_only: Self::get(&self.end_session_get_only),
            revocation_refuses_public_clients: Self::get(&self.revocation_refuses_public_clients),
            unknown_refresh_invalid_request: Self::get(&self.unknown_refresh_invalid_request),
            no_rotation: Self::get(&self.no_rotation),
            online_refresh_tokens: Self::get(&self.online_refresh_tokens),
            registration: Self::get(&self.registration),
            device_interval_seconds: self.device_interval_secs.load(Ordering::SeqCst),
            registered_redirect_port: self.registered_redirect_port.load(Ordering::SeqCst),
        }
    }
}

/// The OIDC side's state.
pub(crate) struct OidcState {
    pub(crate) issuer: String,
    pub(crate) transactions: Mutex<HashMap<String, Transaction>>,
    pub(crate) codes: Mutex<HashMap<String, Code>>,
    /// SSO cookie value → (user, when they authenticated).
    pub(crate) sso: Mutex<HashMap<String, (String, i64)>>,
    /// Opaque access tokens → (session id, expiry).
    pub(crate) opaque: Mutex<HashMap<String, (String, i64)>>,
    /// Device code → its grant.
    pub(crate) devices: Mutex<HashMap<String, DeviceGrant>>,
    /// Clients registered through `/oidc/register`, by client id.
    pub(crate) registered: Mutex<HashMap<String, Registered>>,
    pub(crate) switches: Switches,
}

/// A client registered through `/oidc/register` (RFC 7591), managed with
/// its registration access token (RFC 7592), kept as a fingerprint.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Registered {
    pub(crate) client_name: String,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) token_fingerprint: String,
    pub(crate) issued_at: i64,
}

impl OidcState {
    pub(crate) fn new(base_url: &str) -> Self {
        let switches = Switches::default();
        switches.prompt_none.store(true, Ordering::SeqCst);
        switches.device_interval_secs.store(5, Ordering::SeqCst);
        Self {
            issuer: format!("{base_url}/oidc"),
            transactions: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            sso: Mutex::new(HashMap::new()),
            opaque: Mutex::new(HashMap::new()),
            devices: Mutex::new(HashMap::new()),
            registered: Mutex::new(HashMap::new()),
            switches,
        }
    }
}
