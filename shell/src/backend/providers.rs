//! Providers added and removed in the window, as `sessionctl profile` adds
//! and removes them (the steps are core's `support::enroll`): the host's
//! chain and the pins proposed from it are shown first, and what the
//! person confirmed is checked against the live chain again before the
//! profile is written. The new profile's engine opens beside the others;
//! a removed one is signed out first, and the app's registration with its
//! provider deleted where the app registered itself.

use super::*;
use session_core::net::pin::Pin;
use session_core::support::doctor::PresentedCert;
use session_core::support::enroll;
use std::path::Path;
use std::str::FromStr;

/// How long a provider may take to answer while it is added.
const EXAMINE_TIMEOUT: Duration = Duration::from_secs(15);

/// Which kind of provider is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// An OpenID Connect provider, found from its issuer.
    #[default]
    Oidc,
    /// A FinHub session API, found from its address.
    Finhub,
}

/// What the person gave on the "Add a provider" screen.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct NewProvider {
    pub kind: ProviderKind,
    /// The profile's name.
    pub name: String,
    /// The issuer (OpenID Connect) or the API's address (FinHub).
    pub url: String,
    /// FinHub: the tenant and the audience its tokens carry.
    pub tenant_id: String,
    pub audience: String,
    /// OpenID Connect: a client id the administrator gave; empty to have
    /// the app register itself where the provider allows.
    pub client_id: String,
    /// A private CA's certificate file (test providers, a company's own).
    pub ca_file: String,
    /// `playground`, `integration` or `production` (`integration` if empty).
    pub environment: String,
    /// The pins the person saw and confirmed; empty to have them proposed.
    pub pins: Vec<String>,
}

/// What was found at the provider, for the person to confirm.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub kind: ProviderKind,
    /// The certificates the host presented, leaf first, each with its pin
    /// and whether it is on the verified path.
    pub presented: Vec<PresentedCert>,
    /// The verified path's pins, leaf first, trust anchor last.
    pub verified_path: Vec<String>,
    /// The pins the profile will have: the leaf's and a backup from the
    /// same path, or the person's own, found on it.
    pub pins: Vec<String>,
    /// OpenID Connect: the scopes proposed from discovery.
    pub scopes: Vec<String>,
    /// OpenID Connect: the app will register itself (no client id given,
    /// and the provider offers dynamic client registration).
    pub registers: bool,
    /// FinHub: how many signing keys its key set holds.
    pub keys: Option<usize>,
    /// Where the profile will be written.
    pub config_file: String,
}

impl Found {
    /// What the host showed and the pins the profile will have; the rest
    /// is the provider kind's.
    fn of(kind: ProviderKind, tls: &session_core::support::doctor::TlsFacts, pins: &[Pin], config_file: &Path) -> Self {
        Found {
            kind,
            presented: tls.presented.clone(),
            verified_path: tls.verified_path.clone(),
            pins: pins.iter().map(Pin::to_string).collect(),
            scopes: Vec::new(),
            registers: false,
            keys: None,
            config_file: config_file.display().to_string(),
        }
    }
}

/// What removing a profile did, in sentences for the window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Removed {
    pub message: String,
}

fn named(problem: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(ErrorCode::ConfigInvalid, problem)
}

impl NewProvider {
    /// The fields, checked before anything is sent: an empty one is named.
    fn checked(&self) -> Result<(Vec<Pin>, Option<PathBuf>), ErrorInfo> {
        let missing = [
            (
                self.name.trim().is_empty(),
                "Give the profile a name (for example: work).",
            ),
            (self.url.trim().is_empty(), "Give the provider's https address."),
            (
                self.kind == ProviderKind::Finhub && self.tenant_id.trim().is_empty(),
                "Give the FinHub tenant id.",
            ),
            (
                self.kind == ProviderKind::Finhub && self.audience.trim().is_empty(),
                "Give the audience FinHub's tokens carry.",
            ),
        ];
        if let Some((_, what)) = missing.iter().find(|(empty, _)| *empty) {
            return Err(named(*what));
        }
        let pins = self
            .pins
            .iter()
            .map(|p| {
                Pin::from_str(p.trim()).map_err(|e| {
                    named(format!(
                        "'{p}' is not a pin ({e}): a pin reads sha256/ and 44 characters of base64"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ca = match self.ca_file.trim() {
            "" => None,
            file => Some(std::fs::canonicalize(file).map_err(|e| {
                named(format!(
                    "the CA file {file} cannot be read ({e}): give the full path of a PEM file"
                ))
            })?),
        };
        Ok((pins, ca))
    }

    fn environment(&self) -> String {
        match self.environment.trim() {
            "" => "integration".to_owned(),
            e => e.to_owned(),
        }
    }
}

/// What is at the provider, and the profile that would be written: each
/// step's failure named (an unreachable host, an untrusted certificate, a
/// discovery document from another issuer, a pin not on the chain, a name
/// taken, a profile that does not validate). Nothing is written.
pub async fn examine(new: &NewProvider, config_file: &Path) -> Result<(Found, Examination), ErrorInfo> {
    let (pins, ca) = new.checked()?;
    let (name, url) = (new.name.trim(), new.url.trim());
    let base = config_file.parent().unwrap_or(Path::new("/"));
    let existing = enroll::read_config(config_file)?;
    let (found, examination) = match new.kind {
        ProviderKind::Oidc => {
            let examined = enroll::examine_issuer(url, &pins, ca.as_deref(), EXAMINE_TIMEOUT).await?;
            let client_id = new.client_id.trim();
            let registers = client_id.is_empty();
            if registers && examined.discovery.registration_endpoint.is_none() {
                return Err(named(
                    "This provider does not let apps register themselves: give the client id your administrator registered for Session Manager (a public, native client with a loopback redirect and PKCE).",
                ));
            }
            let profile = enroll::OidcProfile {
                issuer: url.to_owned(),
                client_id: if registers {
                    "registered-on-confirmation".into()
                } else {
                    client_id.to_owned()
                },
                scopes: examined.proposed_scopes(),
                pins: examined.proposed.clone(),
                ca_file: ca,
                environment: new.environment(),
            };
            enroll::with_profile(&existing, name, profile.table(), base)?;
            let found = Found {
                scopes: profile.scopes.clone(),
                registers,
                ..Found::of(new.kind, &examined.tls, &profile.pins, config_file)
            };
            (found, Examination::Oidc(Box::new(examined), profile, registers))
        }
        ProviderKind::Finhub => {
            let examined = enroll::examine_finhub(url, &pins, ca.as_deref(), EXAMINE_TIMEOUT).await?;
            let profile = enroll::FinhubProfile {
                base_url: url.trim_end_matches('/').to_owned(),
                tenant_id: new.tenant_id.trim().to_owned(),
                audience: new.audience.trim().to_owned(),
                pins: examined.proposed.clone(),
                ca_file: ca,
                environment: new.environment(),
            };
            enroll::with_profile(&existing, name, profile.table(), base)?;
            let found = Found {
                keys: Some(examined.keys),
                ..Found::of(new.kind, &examined.tls, &profile.pins, config_file)
            };
            (found, Examination::Finhub(profile))
        }
    };
    Ok((found, examination))
}

/// The profile an examination would write.
pub enum Examination {
    Oidc(Box<enroll::Examined>, enroll::OidcProfile, bool),
    Finhub(enroll::FinhubProfile),
}

/// Write the profile: the app registered with the provider first where it
/// registers itself (its management token in `keychain`).
async fn write(
    name: &str,
    examination: Examination,
    config_file: &Path,
    keychain: &KeyringStore,
) -> Result<(), ErrorInfo> {
    match examination {
        Examination::Oidc(found, profile, registers) => {
            enroll::add_oidc(config_file, name, &found, profile, registers, keychain, EXAMINE_TIMEOUT).await?;
        }
        Examination::Finhub(profile) => enroll::add_to_config(config_file, name, profile.table())?,
    }
    Ok(())
}

/// Where the window writes profiles: the config file the app read, else
/// the platform's.
fn config_file_of(config_file: Option<&Path>) -> Result<PathBuf, ErrorInfo> {
    config_file
        .map(Path::to_owned)
        .or_else(paths::default_config_file)
        .ok_or_else(|| named("There is no config file to write to: start the app with --config FILE."))
}

/// The first-run screen's "Add your identity provider", before any backend
/// exists: what is at the provider.
pub async fn examine_first(new: &NewProvider, config: Option<&Path>) -> Result<Found, ErrorInfo> {
    Ok(examine(new, &config_file_of(config)?).await?.0)
}

/// The first-run screen's add: the profile written (the app then starts
/// on it). The pins are the ones the person confirmed, checked again.
pub async fn add_first(
    new: &NewProvider,
    config: Option<&Path>,
    keychain_service: Option<&str>,
) -> Result<PathBuf, ErrorInfo> {
    let path = config_file_of(config)?;
    let (_, examination) = examine(new, &path).await?;
    let keychain = match keychain_service {
        Some(service) => KeyringStore::new(service.to_owned()),
        None => KeyringStore::from_env(),
    };
    write(new.name.trim(), examination, &path, &keychain).await?;
    Ok(path)
}

impl Backend {
    fn writable_config(&self) -> Result<PathBuf, ErrorInfo> {
        config_file_of(self.config_file.as_deref())
    }

    /// "Add a provider": what is at it, for the person to confirm.
    pub async fn examine_provider(&self, new: &NewProvider) -> Result<Found, ErrorInfo> {
        Ok(examine(new, &self.writable_config()?).await?.0)
    }

    /// "Add a provider", confirmed: examined again with the pins the
    /// person saw (each must still be on the live chain), written, its
    /// engine opened beside the others and shown.
    pub async fn add_provider(&self, new: &NewProvider) -> Result<SessionView, ErrorInfo> {
        let path = self.writable_config()?;
        let name = new.name.trim().to_owned();
        let (_, examination) = examine(new, &path).await?;
        write(&name, examination, &path, &self.keychain).await?;
        let config = Config::load(&path).map_err(|e| Error::Config(e).info())?;
        let profile = profile_named(&config.profiles, &name)?;
        self.profiles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), profile);
        self.switch_profile(&name).await
    }

    /// Remove profile `name` from the config file: signed out first (no
    /// refresh token stays behind for a profile nobody can see), the app's
    /// registration with the provider deleted where it registered itself.
    /// The built-in Playground's profiles are not in the file, and the last
    /// profile stays (the window needs one to show).
    pub async fn remove_profile(&self, name: &str) -> Result<Removed, ErrorInfo> {
        let path = self.writable_config()?;
        let profile = profile_named(&self.profiles(), name)?;
        if enroll::without_profile(&enroll::read_config(&path)?, name).is_err() {
            return Err(named(format!(
                "'{name}' is not in your config file ({}): the built-in Playground's profiles come and go with the app.",
                path.display()
            )));
        }
        let Some(other) = self.profiles().into_keys().find(|n| n != name) else {
            return Err(named(format!(
                "'{name}' is the only profile: add another provider first, or remove it with sessionctl profile remove {name}."
            )));
        };
        // Another profile is shown first, so the window never shows one
        // that is going.
        let shown = self.selected.read().unwrap_or_else(|e| e.into_inner()).clone();
        if shown == name {
            self.switch_profile(&other).await?;
        }
        let _one_at_a_time = self.switching.lock().await;
        let mut said = Vec::new();
        let engine = self
            .engines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|c| c.engine.clone());
        if let Some(engine) = engine.filter(|e| e.view().state.has_session()) {
            let report = engine.sign_out().await?;
            said.push(match report.server_error {
                None => format!("Signed out of {name}."),
                Some(e) => format!(
                    "Signed out of {name} here; the provider's sign-out failed ({}).",
                    e.message
                ),
            });
        }
        let forgotten = enroll::forget_registration(
            name,
            &profile.pins,
            profile.ca_file.as_deref(),
            self.keychain.as_ref(),
            EXAMINE_TIMEOUT,
        )
        .await;
        enroll::remove_from_config(&path, name)?;
        said.push(format!("Removed {name} from {}.", path.display()));
        said.extend(match forgotten {
            enroll::Forgotten::NotRegistered => None,
            enroll::Forgotten::Deleted { .. } => Some("Deleted the app's registration at the provider.".to_owned()),
            enroll::Forgotten::NoWay { client_id } => Some(format!(
                "The provider gave no way to delete the app's registration (client {client_id}): ask its administrator."
            )),
            enroll::Forgotten::Failed { client_id, error } => Some(format!(
                "The app's registration (client {client_id}) was not deleted at the provider: {error}"
            )),
        });
        let removed = self.engines.write().unwrap_or_else(|e| e.into_inner()).remove(name);
        if let Some(current) = removed {
            current.engine.drain(Duration::from_secs(5)).await;
        }
        self.profiles.write().unwrap_or_else(|e| e.into_inner()).remove(name);
        Ok(Removed {
            message: said.join(" "),
        })
    }
}
