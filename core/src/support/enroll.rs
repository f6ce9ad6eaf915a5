//! Adding a provider without writing TOML (`sessionctl profile add`): what
//! the host presents and the pins to propose from it, its discovery
//! document, and the profile written into the config file beside what is
//! there, after the validation a hand-written profile gets.
//!
//! The pins come from the path WebPKI verified (the system's roots, and the
//! `--ca` file a private CA needs): the leaf's and a backup from the same
//! path (the first intermediate, else the trust anchor), the two that
//! Production's rule asks for. Pins a person brings (`--pin`, from their
//! administrator) are checked against that path and named when they are
//! not on it. The config file is edited with `toml_edit`, so its comments
//! and layout stay, and written in one step (a temporary file, flushed,
//! renamed over it; 0600); a profile that does not validate, or a name that
//! exists, leaves the file as it was.

use crate::error::{ConfigError, Error};
use crate::net::pin::Pin;
use crate::net::tls::PinnedClient;
use crate::profile::{Config, TlsVersion};
use crate::provider::oidc::discovery::{Discovery, DiscoveryCache};
use crate::storage::vault::SecretStore;
use crate::support::doctor::handshake::{recorded_handshake, Handshake};
use crate::support::doctor::TlsFacts;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What an OpenID Connect provider showed.
#[derive(Debug)]
pub struct Examined {
    /// The issuer, as given (and as its discovery document names itself).
    pub issuer: String,
    /// The chain the host presented, each certificate's pin and whether it
    /// is on the verified path; the verified path's pins.
    pub tls: TlsFacts,
    /// The pins to propose: the leaf's, then a backup from the same path.
    pub proposed: Vec<Pin>,
    pub discovery: Discovery,
}

impl Examined {
    /// The scopes to propose: `openid`, and `offline_access`, `profile`
    /// and `email` where the provider lists them (all of them when it
    /// lists none).
    pub fn proposed_scopes(&self) -> Vec<String> {
        let offered = |s: &str| self.discovery.scopes.as_ref().is_none_or(|l| l.iter().any(|x| x == s));
        std::iter::once("openid")
            .chain(
                ["profile", "email", "offline_access"]
                    .into_iter()
                    .filter(|s| offered(s)),
            )
            .map(str::to_owned)
            .collect()
    }
}

fn input(problem: impl Into<String>, fix: impl Into<String>) -> Error {
    Error::Config(ConfigError::general(problem, fix))
}

/// An `https` URL's host and port, or a named error.
fn host_and_port(url: &str) -> Result<(reqwest::Url, String, u16), Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        input(
            format!("'{url}' is not a URL ({e})"),
            "give the provider's address, e.g. https://idp.example.com",
        )
    })?;
    if parsed.scheme() != "https" {
        return Err(input(
            format!("'{url}' is not https"),
            "the app talks to providers only over TLS: use the https address",
        ));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| {
            input(
                format!("'{url}' names no host"),
                "give the provider's address, e.g. https://idp.example.com",
            )
        })?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    Ok((parsed, host, port))
}

/// The TLS facts of `url`'s host: the chain it presents and the path WebPKI
/// verified, through the system's roots and `ca_file`.
pub async fn examine_tls(url: &str, ca_file: Option<&Path>, timeout: Duration) -> Result<TlsFacts, Error> {
    let (_, host, port) = host_and_port(url)?;
    let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host.as_str(), port)))
        .await
        .map_err(|_| Error::Timeout {
            host: host.clone(),
            secs: timeout.as_secs(),
            connected: false,
        })?
        .map_err(|e| Error::Network {
            host: host.clone(),
            detail: e.to_string(),
        })?;
    let (handshake, facts) = recorded_handshake(&host, stream, ca_file, &[], TlsVersion::V1_2, timeout)
        .await
        .map_err(|(problem, fix)| input(problem, fix))?;
    if facts.verified_path.is_empty() {
        let why = match handshake {
            Handshake::Failed(e) => e.to_string(),
            Handshake::TimedOut => format!("no TLS answer within {} s", timeout.as_secs()),
            Handshake::Done(_) => "no path was verified".into(),
        };
        return Err(Error::Tls {
            host,
            detail: format!(
                "its certificate is not trusted ({why}). For a private CA (a test provider, a company's own), pass --ca FILE with the CA's certificate"
            ),
        });
    }
    Ok(facts)
}

/// The pins to propose from a verified path: the leaf's and the next one
/// up (an intermediate, else the trust anchor).
pub fn proposed_pins(tls: &TlsFacts) -> Vec<Pin> {
    tls.verified_path
        .iter()
        .take(2)
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The profile's pins: the proposal from the verified path, or `given`
/// (from an administrator) once each is found on it.
fn pins_for(tls: &TlsFacts, given: &[Pin]) -> Result<Vec<Pin>, Error> {
    if given.is_empty() {
        return Ok(proposed_pins(tls));
    }
    check_pins(given, tls)?;
    Ok(given.to_vec())
}

/// `given` pins that are not on the verified path, named.
pub fn check_pins(given: &[Pin], tls: &TlsFacts) -> Result<(), Error> {
    let off: Vec<String> = given
        .iter()
        .map(Pin::to_string)
        .filter(|p| !tls.verified_path.contains(p))
        .collect();
    if off.is_empty() {
        return Ok(());
    }
    Err(Error::Config(ConfigError::general(
        format!(
            "{} not on the chain the host presented: {}",
            if off.len() == 1 {
                "this pin is"
            } else {
                "these pins are"
            },
            off.join(", ")
        ),
        format!(
            "check the pin with your administrator; the verified path's pins are {}",
            tls.verified_path.join(", ")
        ),
    )))
}

/// Examine an OpenID Connect provider: its TLS chain, the pins to propose
/// (or `pins`, checked against the chain), and its discovery document
/// fetched over those pins (its `issuer` must be `issuer` exactly: a
/// document naming another is a mix-up).
pub async fn examine_issuer(
    issuer: &str,
    pins: &[Pin],
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<Examined, Error> {
    let tls = examine_tls(issuer, ca_file, timeout).await?;
    let proposed = pins_for(&tls, pins)?;
    let client = enrolment_client(&proposed, ca_file, timeout)?;
    let url = reqwest::Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
    .map_err(|e| {
        input(
            format!("'{issuer}' is not a URL ({e})"),
            "give the issuer's https address",
        )
    })?;
    let discovery = DiscoveryCache::new(client, url, issuer.to_owned())
        .get()
        .await
        .map(|d| (*d).clone())?;
    Ok(Examined {
        issuer: issuer.to_owned(),
        tls,
        proposed,
        discovery,
    })
}

/// A client registered for the app (RFC 7591), with what manages it (RFC
/// 7592). Kept in the keychain, under [`registration_account`], never in the
/// config file: its token can delete the client. No `Debug`: the token must
/// not reach a log.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    pub client_id: String,
    #[serde(default)]
    pub registration_access_token: Option<String>,
    #[serde(default)]
    pub registration_client_uri: Option<String>,
}

/// The keychain account a profile's registration is kept under.
pub fn registration_account(profile: &str) -> String {
    format!("registration:{profile}")
}

/// A pinned client for the provider's endpoints during enrolment.
fn enrolment_client(pins: &[Pin], ca_file: Option<&Path>, timeout: Duration) -> Result<PinnedClient, Error> {
    Ok(PinnedClient::new(pins, ca_file, TlsVersion::V1_2)
        .map_err(|e| input(e, "check the --ca file"))?
        .with_limits(timeout, 1 << 20))
}

/// The provider's `error_description` (or `error`), shown as text.
fn provider_said(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let said = v
        .get("error_description")
        .or_else(|| v.get("error"))
        .and_then(|e| e.as_str())
        .unwrap_or("no explanation");
    crate::net::text::printable(said, 300)
}

/// Register the app as a public native client (loopback redirect, PKCE, no
/// secret) at the provider's `registration_endpoint`.
pub async fn register_client(
    found: &Examined,
    ca_file: Option<&Path>,
    timeout: Duration,
    client_name: &str,
) -> Result<Registration, Error> {
    let Some(endpoint) = found.discovery.registration_endpoint.clone() else {
        return Err(input(
            "the provider offers no dynamic client registration",
            "pass --client-id with the id of a public, native client registered for this app (loopback redirect, PKCE, no secret)",
        ));
    };
    let client = enrolment_client(&found.proposed, ca_file, timeout)?;
    let mut grants = vec!["authorization_code", "refresh_token"];
    if found.discovery.device_authorization_endpoint.is_some() {
        grants.push("urn:ietf:params:oauth:grant-type:device_code");
    }
    let metadata = serde_json::json!({
        "client_name": client_name,
        "application_type": "native",
        "redirect_uris": [format!("http://127.0.0.1{}", crate::provider::oidc::loopback::CALLBACK_PATH)],
        "token_endpoint_auth_method": "none",
        "grant_types": grants,
        "response_types": ["code"],
    });
    let response = client
        .send(client.http().post(endpoint.clone()).json(&metadata))
        .await?;
    let status = response.status().as_u16();
    let body = client.read_body(response, crate::net::tls::BodyKind::Protocol).await?;
    if !(200..300).contains(&status) {
        return Err(Error::Server {
            status,
            message: format!(
                "the provider refused to register the app at {endpoint}: {}",
                provider_said(&body)
            ),
            retry_after: None,
        });
    }
    let registration: Registration = serde_json::from_slice(&body).map_err(|e| {
        Error::Protocol(format!(
            "the registration answer from {endpoint} has no client_id ({e})"
        ))
    })?;
    if registration.client_id.is_empty() {
        return Err(Error::Protocol(format!(
            "the registration answer from {endpoint} has an empty client_id"
        )));
    }
    Ok(registration)
}

/// Delete a registration (RFC 7592 section 2.3): `Ok(false)` when the
/// provider gave no way to (no management URI or token).
pub async fn delete_registration(
    registration: &Registration,
    pins: &[Pin],
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<bool, Error> {
    let (Some(uri), Some(token)) = (
        &registration.registration_client_uri,
        &registration.registration_access_token,
    ) else {
        return Ok(false);
    };
    let url = reqwest::Url::parse(uri)
        .map_err(|e| Error::Protocol(format!("the registration's address '{uri}' is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(Error::Protocol(format!(
            "the registration's address '{uri}' is not https"
        )));
    }
    let client = enrolment_client(pins, ca_file, timeout)?;
    let response = client
        .send(client.http().delete(url).header(
            reqwest::header::AUTHORIZATION,
            crate::provider::sensitive(&format!("Bearer {token}")),
        ))
        .await?;
    let status = response.status().as_u16();
    let body = client.read_body(response, crate::net::tls::BodyKind::Protocol).await?;
    match status {
        200..=299 => Ok(true),
        _ => Err(Error::Server {
            status,
            message: format!(
                "the provider did not delete the app's registration: {}",
                provider_said(&body)
            ),
            retry_after: None,
        }),
    }
}

/// What a FinHub host showed: its chain, the pins to propose, and how many
/// signing keys its key set (`/.well-known/jwks.json`) holds.
pub struct ExaminedFinhub {
    pub tls: TlsFacts,
    pub proposed: Vec<Pin>,
    pub keys: usize,
}

/// Examine a FinHub address: its TLS chain, the pins to propose (or `pins`,
/// checked against the chain), and its key set, fetched over those pins (a
/// FinHub session API publishes one; an address without it is not one).
pub async fn examine_finhub(
    base_url: &str,
    pins: &[Pin],
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<ExaminedFinhub, Error> {
    let tls = examine_tls(base_url, ca_file, timeout).await?;
    let proposed = pins_for(&tls, pins)?;
    let client = enrolment_client(&proposed, ca_file, timeout)?;
    let url =
        reqwest::Url::parse(&format!("{}/.well-known/jwks.json", base_url.trim_end_matches('/'))).map_err(|e| {
            input(
                format!("'{base_url}' is not a URL ({e})"),
                "give the FinHub API's https address",
            )
        })?;
    let response = client.send(client.http().get(url.clone())).await?;
    let status = response.status().as_u16();
    let body = client.read_body(response, crate::net::tls::BodyKind::Protocol).await?;
    let keys = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .filter(|_| status == 200)
        .and_then(|v| v.get("keys").and_then(|k| k.as_array()).map(Vec::len))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            input(
                format!("there is no key set at {url} (HTTP {status}): is {base_url} the FinHub API's address?"),
                "give the address the FinHub API answers on (its /.well-known/jwks.json lists the keys that sign its tokens)",
            )
        })?;
    Ok(ExaminedFinhub { tls, proposed, keys })
}

/// What a new FinHub profile says.
#[derive(Debug, Clone)]
pub struct FinhubProfile {
    pub base_url: String,
    pub tenant_id: String,
    /// The `aud` the provider puts in its tokens.
    pub audience: String,
    pub pins: Vec<Pin>,
    pub ca_file: Option<PathBuf>,
    pub environment: String,
}

impl FinhubProfile {
    /// The profile as a TOML table.
    pub fn table(&self) -> toml_edit::Table {
        let mut t = toml_edit::Table::new();
        t["provider"] = toml_edit::value("finhub");
        t["environment"] = toml_edit::value(&self.environment);
        t["base_url"] = toml_edit::value(&self.base_url);
        t["tenant_id"] = toml_edit::value(&self.tenant_id);
        t["audience"] = toml_edit::value(&self.audience);
        pins_and_ca(&mut t, &self.pins, self.ca_file.as_deref());
        t
    }
}

/// What a new OpenID Connect profile says.
#[derive(Debug, Clone)]
pub struct OidcProfile {
    pub issuer: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub pins: Vec<Pin>,
    pub ca_file: Option<PathBuf>,
    /// `playground`, `integration` or `production`.
    pub environment: String,
}

impl OidcProfile {
    /// The profile as a TOML table.
    pub fn table(&self) -> toml_edit::Table {
        let mut t = toml_edit::Table::new();
        t["provider"] = toml_edit::value("oidc");
        t["environment"] = toml_edit::value(&self.environment);
        t["issuer"] = toml_edit::value(&self.issuer);
        t["client_id"] = toml_edit::value(&self.client_id);
        t["scopes"] = toml_edit::value(self.scopes.iter().collect::<toml_edit::Array>());
        pins_and_ca(&mut t, &self.pins, self.ca_file.as_deref());
        t
    }
}

/// The config file's text as an editable document (comments and layout
/// kept), or a named error.
fn config_document(text: &str) -> Result<toml_edit::DocumentMut, Error> {
    text.parse().map_err(|e: toml_edit::TomlError| {
        input(
            format!("the config file is not valid TOML ({})", e.message()),
            "fix the file first (sessionctl doctor shows where)",
        )
    })
}

/// The last fields of every new profile: its pins and its extra CA.
fn pins_and_ca(t: &mut toml_edit::Table, pins: &[Pin], ca_file: Option<&Path>) {
    t["pins"] = toml_edit::value(pins.iter().map(Pin::to_string).collect::<toml_edit::Array>());
    if let Some(ca) = ca_file {
        t["ca_file"] = toml_edit::value(ca.display().to_string());
    }
}

/// The config file's text with `[profiles.NAME]` added: refused when the
/// name exists or the result does not validate (the validator's own
/// message), so what is written is what the app would load.
pub fn with_profile(text: &str, name: &str, table: toml_edit::Table, base: &Path) -> Result<String, Error> {
    let mut doc = config_document(text)?;
    if !doc.contains_key("profiles") {
        let mut profiles = toml_edit::Table::new();
        profiles.set_implicit(true);
        doc["profiles"] = toml_edit::Item::Table(profiles);
    }
    let profiles = doc["profiles"]
        .as_table_mut()
        .ok_or_else(|| input("`profiles` in the config file is not a table", "fix the file first"))?;
    if profiles.contains_key(name) {
        return Err(input(
            format!("there is a profile named '{name}' already"),
            format!("pick another name, or remove it first (sessionctl profile remove {name})"),
        ));
    }
    let mut table = table;
    profiles.insert(name, toml_edit::Item::Table(table.clone()));
    // A file of comments only keeps them at its end, where a new table
    // would go after them: they stay on top instead.
    if text
        .trim()
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        let comments = doc.trailing().as_str().unwrap_or_default().to_owned();
        doc.set_trailing("");
        table.decor_mut().set_prefix(comments);
        if let Some(profiles) = doc["profiles"].as_table_mut() {
            profiles.insert(name, toml_edit::Item::Table(table));
        }
    }
    let text = doc.to_string();
    Config::parse(&text, base)?;
    Ok(text)
}

/// The config file's text without `[profiles.NAME]` (a named error when
/// there is none); the rest stays as it was.
pub fn without_profile(text: &str, name: &str) -> Result<String, Error> {
    let mut doc = config_document(text)?;
    // The comments above the file's first table are the file's own
    // (`with_profile` puts a comment-only file's there): they stay.
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.replace(' ', "") == format!("[profiles.{name}]"));
    let removed = doc
        .get_mut("profiles")
        .and_then(|p| p.as_table_like_mut())
        .and_then(|p| p.remove(name));
    let Some(removed) = removed else {
        return Err(input(
            format!("there is no profile named '{name}'"),
            "sessionctl profile list shows the names",
        ));
    };
    if first {
        let above = removed
            .as_table()
            .and_then(|t| t.decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_owned();
        if !give_comments_to_first(doc.as_table_mut(), &above) {
            let trailing = doc.trailing().as_str().unwrap_or_default().to_owned();
            doc.set_trailing(format!("{above}{trailing}"));
        }
    }
    if doc.get("default_profile").and_then(|d| d.as_str()) == Some(name) {
        // Its comments above it go to what comes first now.
        let above = doc
            .as_table()
            .key("default_profile")
            .and_then(|k| k.leaf_decor().prefix())
            .and_then(|p| p.as_str())
            .unwrap_or_default()
            .to_owned();
        doc.remove("default_profile");
        if !give_comments_to_first(doc.as_table_mut(), &above) {
            let trailing = doc.trailing().as_str().unwrap_or_default().to_owned();
            doc.set_trailing(format!("{above}{trailing}"));
        }
    }
    Ok(doc.to_string())
}

/// Put `comments` above the first thing in `table`: its first key, or its
/// first table's header (through implicit parents like `[profiles]`).
/// `false` when there is nothing to put them above.
fn give_comments_to_first(table: &mut toml_edit::Table, comments: &str) -> bool {
    if comments.trim().is_empty() {
        return true;
    }
    let Some((mut key, item)) = table.iter_mut().next() else {
        return false;
    };
    match item {
        toml_edit::Item::Table(t) if t.is_implicit() => give_comments_to_first(t, comments),
        toml_edit::Item::Table(t) => {
            let had = t
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_owned();
            t.decor_mut()
                .set_prefix(format!("{comments}{}", had.trim_start_matches('\n')));
            true
        }
        _ => {
            let had = key
                .leaf_decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_owned();
            key.leaf_decor_mut().set_prefix(format!("{comments}{had}"));
            true
        }
    }
}

/// Write `text` to `path` in one step: a temporary file beside it (0600),
/// flushed, renamed over it. The folder is made (0700) when missing.
pub fn write_config(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    let failed = |e: std::io::Error| {
        input(
            format!("cannot write {}: {e}", path.display()),
            "check the folder's owner and permissions",
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::os::paths::private_dir(dir).map_err(failed)?;
    }
    let temporary = path.with_extension("toml.new");
    match std::fs::remove_file(&temporary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let mut file = crate::os::paths::open_private(&temporary, &mut options).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

/// The config file's text; a file not there yet is empty.
pub fn read_config(path: &Path) -> Result<String, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(input(
            format!("cannot read {}: {e}", path.display()),
            "check the file's owner and permissions",
        )),
    }
}

/// Write profile `name` into the config file at `path` (checked first:
/// the name is free and the file validates with it).
pub fn add_to_config(path: &Path, name: &str, table: toml_edit::Table) -> Result<(), Error> {
    let base = path.parent().unwrap_or(Path::new("/"));
    let text = with_profile(&read_config(path)?, name, table, base)?;
    write_config(path, &text)
}

/// Add an OpenID Connect profile: checked against the config file first;
/// then, when `register`, the app registered with the provider (its
/// management token kept in `keychain` under [`registration_account`]);
/// then written. A failure after the registration takes it back, so no
/// client is left at the provider that nothing can delete. The profile as
/// written, with its client id.
pub async fn add_oidc(
    path: &Path,
    name: &str,
    found: &Examined,
    mut profile: OidcProfile,
    register: bool,
    keychain: &dyn SecretStore,
    timeout: Duration,
) -> Result<(OidcProfile, Option<Registration>), Error> {
    let base = path.parent().unwrap_or(Path::new("/"));
    with_profile(&read_config(path)?, name, profile.table(), base)?;
    let registration = match register {
        true => {
            let r = register_client(found, profile.ca_file.as_deref(), timeout, "Session Manager").await?;
            let kept = serde_json::to_string(&r).unwrap_or_default();
            if let Err(e) = keychain.set(&registration_account(name), &kept) {
                let _ = delete_registration(&r, &profile.pins, profile.ca_file.as_deref(), timeout).await;
                return Err(e.into());
            }
            profile.client_id = r.client_id.clone();
            Some(r)
        }
        false => None,
    };
    if let Err(e) = add_to_config(path, name, profile.table()) {
        if let Some(r) = &registration {
            let _ = delete_registration(r, &profile.pins, profile.ca_file.as_deref(), timeout).await;
            let _ = keychain.delete(&registration_account(name));
        }
        return Err(e);
    }
    Ok((profile, registration))
}

/// What became of the app's registration with a removed profile's provider.
#[derive(Debug)]
pub enum Forgotten {
    /// The profile's client was not registered by the app.
    NotRegistered,
    /// Deleted at the provider (RFC 7592).
    Deleted { client_id: String },
    /// The provider gave no way to delete it.
    NoWay { client_id: String },
    /// The provider did not delete it.
    Failed { client_id: String, error: Error },
}

/// Delete the app's registration for profile `name` at its provider, where
/// `add_oidc` registered one, and its management token from the keychain.
pub async fn forget_registration(
    name: &str,
    pins: &[Pin],
    ca_file: Option<&Path>,
    keychain: &dyn SecretStore,
    timeout: Duration,
) -> Forgotten {
    let account = registration_account(name);
    let kept = keychain.get(&account).ok().flatten();
    let Some(r) = kept.and_then(|k| serde_json::from_str::<Registration>(&k).ok()) else {
        return Forgotten::NotRegistered;
    };
    let client_id = r.client_id.clone();
    let outcome = match delete_registration(&r, pins, ca_file, timeout).await {
        Ok(true) => Forgotten::Deleted { client_id },
        Ok(false) => Forgotten::NoWay { client_id },
        Err(error) => Forgotten::Failed { client_id, error },
    };
    let _ = keychain.delete(&account);
    outcome
}

/// Remove profile `name` from the config file at `path` (a named error
/// when it is not there; the rest of the file stays as it was).
pub fn remove_from_config(path: &Path, name: &str) -> Result<(), Error> {
    let text = read_config(path)?;
    write_config(path, &without_profile(&text, name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXISTING: &str = "# my providers\ndefault_profile = \"work\"  # the usual one\n\n[profiles.work]\nprovider = \"oidc\"\nenvironment = \"integration\"\nissuer = \"https://idp.example\"\nclient_id = \"a\"\npins = [\"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\n";

    fn profile() -> OidcProfile {
        OidcProfile {
            issuer: "https://corp.example/oidc".into(),
            client_id: "desktop".into(),
            scopes: vec!["openid".into(), "offline_access".into()],
            pins: vec![Pin([1; 32]), Pin([2; 32])],
            ca_file: None,
            environment: "integration".into(),
        }
    }

    #[test]
    fn a_profile_is_added_beside_the_others_keeping_comments() {
        let text = with_profile(EXISTING, "corp", profile().table(), Path::new("/")).unwrap();
        assert!(
            text.starts_with("# my providers\ndefault_profile = \"work\"  # the usual one\n"),
            "{text}"
        );
        let config = Config::parse(&text, Path::new("/")).unwrap();
        assert_eq!(config.profiles.len(), 2);
        assert_eq!(config.profiles["corp"].pins, vec![Pin([1; 32]), Pin([2; 32])]);
        // Into an empty file too.
        let text = with_profile("", "corp", profile().table(), Path::new("/")).unwrap();
        assert!(Config::parse(&text, Path::new("/"))
            .unwrap()
            .profiles
            .contains_key("corp"));
    }

    #[test]
    fn a_name_that_exists_or_a_profile_that_does_not_validate_is_refused() {
        let e = with_profile(EXISTING, "work", profile().table(), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("a profile named 'work' already"), "{e}");
        let mut bad = profile();
        bad.environment = "staging".into();
        let e = with_profile(EXISTING, "corp", bad.table(), Path::new("/")).unwrap_err();
        assert!(e.to_string().contains("environment"), "{e}");
    }

    #[test]
    fn removing_keeps_the_rest_and_drops_a_default_that_named_it() {
        let text = with_profile(EXISTING, "corp", profile().table(), Path::new("/")).unwrap();
        let back = without_profile(&text, "corp").unwrap();
        assert_eq!(back, EXISTING);
        let none = without_profile(EXISTING, "work").unwrap();
        assert!(
            !none.contains("default_profile") && none.starts_with("# my providers"),
            "{none}"
        );
        assert!(without_profile(EXISTING, "nope")
            .unwrap_err()
            .to_string()
            .contains("no profile named 'nope'"));
        // A file of comments only: they stay on top, and stay when it goes.
        let text = with_profile("# mine\n# really\n", "corp", profile().table(), Path::new("/")).unwrap();
        assert!(text.starts_with("# mine\n# really\n[profiles.corp]"), "{text}");
        assert_eq!(without_profile(&text, "corp").unwrap(), "# mine\n# really\n");
    }

    #[test]
    fn pins_off_the_verified_path_are_named() {
        let tls = TlsFacts {
            verified_path: vec![Pin([1; 32]).to_string(), Pin([9; 32]).to_string()],
            ..TlsFacts::default()
        };
        assert_eq!(proposed_pins(&tls), vec![Pin([1; 32]), Pin([9; 32])]);
        assert!(check_pins(&[Pin([9; 32])], &tls).is_ok());
        let e = check_pins(&[Pin([1; 32]), Pin([5; 32])], &tls).unwrap_err().to_string();
        assert!(
            e.contains(&Pin([5; 32]).to_string()) && !e.contains("these pins"),
            "{e}"
        );
    }

    #[test]
    fn only_https_addresses_are_examined() {
        for url in ["http://idp.example", "idp.example", "https://"] {
            assert!(host_and_port(url).is_err(), "{url}");
        }
        assert_eq!(host_and_port("https://idp.example/x").unwrap().2, 443);
    }
}
