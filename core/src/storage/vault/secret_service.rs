//! The Secret Service (freedesktop.org's keychain API on the D-Bus session
//! bus: gnome-keyring, KeePassXC, KWallet's bridge) without the `keyring`
//! crate's connection per call.
//!
//! The `keyring` crate opens a new D-Bus connection and a new encrypted
//! Secret Service session for every read, write and delete (two for a write).
//! A vault record is a manifest and several chunks, so one sign-in made
//! dozens of them, and the sessionctl CLI tests 2,172 per run.
//! gnome-keyring-daemon has a race (42.1 on Debian 12; others report it up
//! to 50) in which an `OpenSession` finds no record of its caller and the
//! daemon aborts on a GLib assertion, and with it the keychain of every app
//! on the desktop. Clients that connect and go in quick succession hit it:
//! 8 parallel processes making 5 reads each brought the daemon down after
//! 2,000 to 4,000 connections (docs/next-engineer.md). A process here keeps
//! one connection and one session for its life and makes every call through
//! them (the same CLI tests: 95 sessions).
//!
//! Items are found and written as `keyring` 3 wrote them (attributes
//! `service`, `username` = the account, `target` = `default`), so sessions
//! stored by an earlier version are still found, and `secret-tool search
//! service session-manager` shows them.
//!
//! When a call fails for a reason a new connection can mend (the service
//! was restarted and our session is unknown to it, the bus dropped us, the
//! service did not answer), the connection is dropped and the call is made
//! once more on a new one; a keychain that is locked, or whose unlock prompt
//! was dismissed, is not retried.

use super::VaultError;
use dbus_secret_service::{EncryptionType, Error, Item, SecretService};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// The one connection of this process, made at its first keychain call.
static CONNECTION: Mutex<Option<SecretService>> = Mutex::new(None);

/// The collection `keyring` 3 wrote into: the default one.
const TARGET: &str = "default";

fn lock() -> MutexGuard<'static, Option<SecretService>> {
    CONNECTION.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a call failed: the Secret Service said so, or what it holds is not
/// what the vault can use.
enum Failure {
    Service(Error),
    Vault(VaultError),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Service(e)
    }
}

/// Run `call` on this process's connection, connecting first if there is
/// none, and once more on a new connection when the first try failed in a
/// way a new connection mends.
fn with_service<T>(call: impl Fn(&SecretService) -> Result<T, Failure>) -> Result<T, VaultError> {
    let mut guard = lock();
    let mut retried = false;
    loop {
        if guard.is_none() {
            let service = SecretService::connect(EncryptionType::Dh).map_err(unavailable)?;
            *guard = Some(service);
        }
        let service = guard.as_ref().expect("connected above");
        match call(service) {
            Ok(value) => return Ok(value),
            Err(Failure::Vault(e)) => return Err(e),
            Err(Failure::Service(e)) if !retried && reconnect_mends(&e) => {
                tracing::info!(error = %e, "the Secret Service connection failed; connecting again");
                *guard = None;
                retried = true;
            }
            Err(Failure::Service(e)) => {
                if reconnect_mends(&e) {
                    // Start the next call on a new connection too.
                    *guard = None;
                }
                return Err(map(e));
            }
        }
    }
}

/// Whether a new connection may succeed where this error came from the old
/// one: any D-Bus error (the service restarted and no longer knows our
/// session, no answer within the call's timeout, the bus connection is gone)
/// and a service that is not there. A locked item, a dismissed prompt or an
/// undecryptable answer would fail the same way again.
fn reconnect_mends(e: &Error) -> bool {
    matches!(e, Error::Dbus(_) | Error::Unavailable)
}

fn unavailable(e: Error) -> VaultError {
    VaultError::Unavailable(e.to_string())
}

fn map(e: Error) -> VaultError {
    match e {
        Error::Locked | Error::Prompt => VaultError::Locked(e.to_string()),
        Error::NoResult => VaultError::Unavailable("the Secret Service has no default collection to store in".into()),
        Error::Dbus(_) | Error::Unavailable => unavailable(e),
        other => VaultError::Failed(other.to_string()),
    }
}

fn search_attributes<'a>(service: &'a str, account: &'a str) -> HashMap<&'a str, &'a str> {
    HashMap::from([("target", TARGET), ("service", service), ("username", account)])
}

/// The one item under (`service`, `account`), unlocked; `None` when there is
/// none. More than one is an error: which to trust cannot be told.
fn the_item<'s>(ss: &'s SecretService, service: &str, account: &str) -> Result<Option<Item<'s>>, Failure> {
    let found = ss.search_items(search_attributes(service, account))?;
    let mut items: Vec<(Item<'s>, bool)> = found
        .unlocked
        .into_iter()
        .map(|i| (i, false))
        .chain(found.locked.into_iter().map(|i| (i, true)))
        .collect();
    match items.len() {
        0 => Ok(None),
        1 => {
            let (item, locked) = items.remove(0);
            if locked {
                item.unlock()?;
            }
            Ok(Some(item))
        }
        n => Err(Failure::Vault(VaultError::Failed(format!(
            "the keychain holds {n} items for {account} of {service}, so which one is current cannot be told; \
             remove them (secret-tool clear service {service} username {account}) and sign in again"
        )))),
    }
}

/// The secret under (`service`, `account`).
pub fn get(service: &str, account: &str) -> Result<Option<String>, VaultError> {
    with_service(|ss| match the_item(ss, service, account)? {
        Some(item) => {
            let bytes = item.get_secret()?;
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| Failure::Vault(VaultError::Corrupt("not UTF-8".into())))
        }
        None => Ok(None),
    })
}

/// Store `value` under (`service`, `account`), replacing what is there.
pub fn set(service: &str, account: &str, value: &str) -> Result<(), VaultError> {
    with_service(|ss| {
        if let Some(item) = the_item(ss, service, account)? {
            return Ok(item.set_secret(value.as_bytes(), "text/plain")?);
        }
        let collection = ss.get_default_collection()?;
        if collection.is_locked()? {
            collection.unlock()?;
        }
        let attributes = HashMap::from([
            ("target", TARGET),
            ("service", service),
            ("username", account),
            ("application", "session-manager"),
        ]);
        let label = format!("{account}@{service}:{TARGET} (Session Manager)");
        collection.create_item(&label, attributes, value.as_bytes(), true, "text/plain")?;
        Ok(())
    })
}

/// Delete what is under (`service`, `account`); `Ok(false)` when nothing was.
pub fn delete(service: &str, account: &str) -> Result<bool, VaultError> {
    with_service(|ss| match the_item(ss, service, account)? {
        Some(item) => {
            item.delete()?;
            Ok(true)
        }
        None => Ok(false),
    })
}
