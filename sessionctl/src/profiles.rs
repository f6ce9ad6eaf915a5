//! `sessionctl profile`: add a provider from its address (pins proposed from
//! the chain its host presents, its discovery document read), list, show
//! and remove profiles. The config file is edited in place, keeping its
//! comments (`session_core::support::enroll`).

use super::*;
use cli::ProfileCommand;
use session_core::net::pin::Pin;
use session_core::support::enroll;
use std::io::Write;
use std::str::FromStr;

/// How long the provider may take to answer while a profile is added.
const EXAMINE_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn run(cli: &Cli, command: &ProfileCommand) -> Result<(), Failure> {
    let path = config_path(cli).ok_or_else(|| {
        failure(
            ErrorCode::ConfigInvalid,
            "no config file: pass --config FILE or set SESSION_MANAGER_CONFIG",
        )
    })?;
    match command {
        ProfileCommand::Add {
            name,
            issuer,
            finhub,
            tenant,
            audience,
            client_id,
            pins,
            ca,
            environment,
            yes,
        } => {
            let pins = pins
                .iter()
                .map(|p| {
                    Pin::from_str(p).map_err(|e| {
                        failure(
                            ErrorCode::ConfigInvalid,
                            format!("--pin {p} is not a pin ({e}); a pin reads sha256/ and 44 characters of base64"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let ca = ca
                .as_ref()
                .map(|c| {
                    std::fs::canonicalize(c)
                        .map_err(|e| failure(ErrorCode::ConfigInvalid, format!("--ca {}: {e}", c.display())))
                })
                .transpose()?;
            if let Some(base) = finhub {
                let add = FinhubAdd {
                    name,
                    base,
                    tenant: tenant.as_deref().unwrap_or_default(),
                    audience: audience.as_deref().unwrap_or_default(),
                    pins: &pins,
                    ca,
                    environment,
                    yes: *yes,
                };
                return add_finhub(cli, &path, add).await;
            }
            let issuer = issuer.as_deref().unwrap_or_default();
            let found = enroll::examine_issuer(issuer, &pins, ca.as_deref(), EXAMINE_TIMEOUT).await?;
            // No client id: register one where the provider lets the app
            // (after the person confirms, below).
            let register = client_id.is_none();
            if register && found.discovery.registration_endpoint.is_none() {
                return Err(failure(
                    ErrorCode::ConfigInvalid,
                    "the provider offers no dynamic client registration: pass --client-id with the id of a public, native client registered for this app (loopback redirect, PKCE, no secret)",
                ));
            }
            let profile = enroll::OidcProfile {
                issuer: issuer.to_owned(),
                client_id: client_id
                    .clone()
                    .unwrap_or_else(|| "(registered on confirmation)".into()),
                scopes: found.proposed_scopes(),
                pins: found.proposed.clone(),
                ca_file: ca,
                environment: environment.clone(),
            };
            // Checked before anything is registered or written.
            let base = path.parent().unwrap_or(std::path::Path::new("/"));
            enroll::with_profile(&enroll::read_config(&path)?, name, profile.table(), base)?;
            if !cli.json {
                print_found(&found, &profile, !pins.is_empty());
            }
            let question = match register {
                true => format!(
                    "Register Session Manager with the provider and write profile '{name}' to {}?",
                    path.display()
                ),
                false => format!("Write profile '{name}' to {}?", path.display()),
            };
            if !*yes && !confirm(&question)? {
                println!("Nothing written.");
                return Ok(());
            }
            let keychain = KeyringStore::from_env();
            let (profile, registration) =
                enroll::add_oidc(&path, name, &found, profile, register, &keychain, EXAMINE_TIMEOUT).await?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "profile": name,
                        "config_file": path,
                        "pins": profile.pins.iter().map(Pin::to_string).collect::<Vec<_>>(),
                        "client_id": profile.client_id,
                        "registered": registration.is_some(),
                        "scopes": profile.scopes,
                        "tls": found.tls,
                    })
                );
            } else {
                if registration.is_some() {
                    println!(
                        "Registered Session Manager with the provider as client {} (its management token is in the keychain; removing the profile deletes the registration).",
                        profile.client_id
                    );
                }
                println!(
                    "Added profile '{name}' to {}. Sign in with: sessionctl --profile {name} login",
                    path.display()
                );
            }
        }
        ProfileCommand::List => {
            let (config, _) = config_and_data(cli)?;
            for (name, p) in &config.profiles {
                let address = p.address();
                println!("{name}\t{}\t{}\t{address}", p.provider.as_str(), p.environment.as_str());
            }
        }
        ProfileCommand::Show { name } => {
            let (config, data_dir) = config_and_data(cli)?;
            if !config.profiles.contains_key(name) {
                return Err(Error::Config(session_core::error::ConfigError::general(
                    format!("there is no profile named '{name}'"),
                    "sessionctl profile list shows the names",
                ))
                .into());
            }
            // Where it is written: the config file, else the app's Playground's.
            let files = [Some(path.clone()), paths::playground_config(&data_dir)];
            for file in files.into_iter().flatten() {
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
                    continue;
                };
                if let Some(table) = doc.get("profiles").and_then(|p| p.get(name.as_str())) {
                    println!(
                        "# in {}\n[profiles.{name}]\n{}",
                        file.display(),
                        table.to_string().trim_start()
                    );
                    return Ok(());
                }
            }
        }
        ProfileCommand::Remove { name, yes } => {
            // Checked first: a name that is not there is named.
            enroll::without_profile(&enroll::read_config(&path)?, name)?;
            if !*yes && !confirm(&format!("Sign out of '{name}' and remove it from {}?", path.display()))? {
                println!("Nothing removed.");
                return Ok(());
            }
            // Signed out first: no refresh token stays behind for a profile
            // nobody can see any more.
            let (config, data_dir) = config_and_data(cli)?;
            if let Some(profile) = config.profiles.get(name) {
                let engine = open_profile(cli, profile.clone(), &data_dir)?;
                if engine.restore().await.is_ok_and(|v| v.state.has_session()) {
                    let report = engine.sign_out().await?;
                    if let Some(e) = report.server_error {
                        eprintln!(
                            "warning[{}]: signed out here, but the provider's logout failed: {}",
                            e.code, e.message
                        );
                    }
                }
                engine.drain(DRAIN_AT_EXIT).await;
                // The app's registration with the provider goes too, where
                // it was registered by `profile add` (RFC 7592).
                let keychain = KeyringStore::from_env();
                let pins = &profile.pins;
                match enroll::forget_registration(name, pins, profile.ca_file.as_deref(), &keychain, EXAMINE_TIMEOUT).await {
                    enroll::Forgotten::NotRegistered => {}
                    enroll::Forgotten::Deleted { client_id } => {
                        println!("Deleted the app's registration (client {client_id}) at the provider.")
                    }
                    enroll::Forgotten::NoWay { client_id } => println!(
                        "The provider gave no way to delete the app's registration (client {client_id}); ask its administrator."
                    ),
                    enroll::Forgotten::Failed { client_id, error } => eprintln!(
                        "warning[{}]: the app's registration (client {client_id}) was not deleted at the provider: {error}",
                        error.code()
                    ),
                }
            }
            enroll::remove_from_config(&path, name)?;
            println!("Removed profile '{name}' from {}.", path.display());
        }
    }
    Ok(())
}

/// `profile add --finhub`: what it needs.
struct FinhubAdd<'a> {
    name: &'a str,
    base: &'a str,
    tenant: &'a str,
    audience: &'a str,
    pins: &'a [Pin],
    ca: Option<std::path::PathBuf>,
    environment: &'a str,
    yes: bool,
}

/// Add a FinHub profile: its chain and proposed pins, its key set found.
async fn add_finhub(cli: &Cli, path: &std::path::Path, add: FinhubAdd<'_>) -> Result<(), Failure> {
    let found = enroll::examine_finhub(add.base, add.pins, add.ca.as_deref(), EXAMINE_TIMEOUT).await?;
    let profile = enroll::FinhubProfile {
        base_url: add.base.trim_end_matches('/').to_owned(),
        tenant_id: add.tenant.to_owned(),
        audience: add.audience.to_owned(),
        pins: found.proposed.clone(),
        ca_file: add.ca,
        environment: add.environment.to_owned(),
    };
    let base = path.parent().unwrap_or(std::path::Path::new("/"));
    enroll::with_profile(&enroll::read_config(path)?, add.name, profile.table(), base)?;
    if !cli.json {
        print_chain(&found.tls, &profile.pins, !add.pins.is_empty());
        println!(
            "Key set: {} signing key{} at {}/.well-known/jwks.json",
            found.keys,
            if found.keys == 1 { "" } else { "s" },
            profile.base_url
        );
    }
    if !add.yes && !confirm(&format!("Write profile '{}' to {}?", add.name, path.display()))? {
        println!("Nothing written.");
        return Ok(());
    }
    enroll::add_to_config(path, add.name, profile.table())?;
    if cli.json {
        println!(
            "{}",
            serde_json::json!({
                "profile": add.name,
                "config_file": path,
                "pins": profile.pins.iter().map(Pin::to_string).collect::<Vec<_>>(),
                "tls": found.tls,
            })
        );
    } else {
        println!(
            "Added profile '{}' to {}. Sign in with: sessionctl --profile {} login --username NAME --password-stdin",
            add.name,
            path.display(),
            add.name
        );
    }
    Ok(())
}

/// The chain the host presented, its verified path and the profile's pins.
fn print_chain(tls: &session_core::support::doctor::TlsFacts, pins: &[Pin], given: bool) {
    println!("The host presented {} certificate(s):", tls.presented.len());
    for (i, c) in tls.presented.iter().enumerate() {
        println!(
            "  {}. {}{}",
            i + 1,
            c.pin,
            if c.on_verified_path {
                "  (on the verified path)"
            } else {
                "  (not on the verified path)"
            }
        );
    }
    println!("Verified path (leaf first, trust anchor last):");
    for p in &tls.verified_path {
        println!("  {p}");
    }
    println!(
        "Pins for the profile ({}):",
        if given {
            "yours, found on the verified path"
        } else {
            "the leaf's, and a backup from the same path"
        }
    );
    for p in pins {
        println!("  {p}");
    }
}

/// What the host and its discovery document showed, and what the profile
/// will say.
fn print_found(found: &enroll::Examined, profile: &enroll::OidcProfile, given: bool) {
    print_chain(&found.tls, &profile.pins, given);
    let d = &found.discovery;
    println!("Discovery: issuer {}", d.issuer);
    println!("  scopes proposed: {}", profile.scopes.join(" "));
    println!(
        "  sign-out page: {}; sign in on another device: {}; dynamic client registration: {}",
        yes_no(d.end_session_endpoint.is_some()),
        yes_no(d.device_authorization_endpoint.is_some()),
        yes_no(d.registration_endpoint.is_some())
    );
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "offered"
    } else {
        "not offered"
    }
}

/// Ask on the terminal; only "y" or "yes" is yes. No answer (standard input
/// closed) is no.
fn confirm(question: &str) -> Result<bool, Failure> {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| failure(ErrorCode::Internal, format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}
