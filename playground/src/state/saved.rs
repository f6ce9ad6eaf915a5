//! A Playground that keeps its state (the app's built-in one, the demo
//! package's) writes it to `state.json` in its folder after every request
//! that reached it, and reads it back at start: its port, its certificates,
//! its signing keys, its admin token, the sessions and their refresh
//! tokens. A restarted app then finds the provider it signed in to, and its
//! session goes on, as with a real provider. What is fleeting is not kept:
//! pending browser sign-ins, codes, device grants, the request log, the
//! fault switches.
//!
//! The file is private (0600, written to a temporary file, flushed and
//! renamed over the old one, never through a planted link). One that cannot
//! be read is moved aside (`state.json.unreadable`) and the Playground
//! starts afresh, saying so on stderr: its sessions are lost, nothing else.

use super::oidc::OidcSession;
use super::{lock, AppState, RefreshEntry, Session, SessionInfo, SERIAL};
use crate::keys::SavedRing;
use crate::tls::SavedPki;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// The file's name in the Playground's folder.
pub const FILE: &str = "state.json";
/// What the file's format is called; another one is not read.
pub(crate) const FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
pub(crate) struct Saved {
    pub(crate) format: u32,
    pub(crate) port: u16,
    pub(crate) admin_token: String,
    pub(crate) pki: SavedPki,
    pub(crate) keys: SavedRing,
    pub(crate) sessions: Vec<SavedSession>,
    pub(crate) refresh_tokens: Vec<SavedRefresh>,
    /// Clients registered through `/oidc/register`.
    #[serde(default)]
    pub(crate) registered: std::collections::HashMap<String, super::oidc::Registered>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SavedSession {
    info: SessionInfo,
    serial: u64,
    customer: String,
    current_refresh: String,
    oidc: Option<SavedOidc>,
}

#[derive(Serialize, Deserialize)]
struct SavedOidc {
    client_id: String,
    scope: String,
    sso: String,
    auth_time: i64,
    resource: Option<String>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SavedRefresh {
    token: String,
    session: String,
    spent_at: Option<i64>,
    expires: i64,
}

/// Read `dir`'s state file: `None` when there is none, or when it could not
/// be read (then it is moved aside and the reason printed on stderr).
pub(crate) fn read(dir: &Path) -> Option<Saved> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return set_aside(&path, &e.to_string()),
    };
    match serde_json::from_str::<Saved>(&text) {
        Ok(saved) if saved.format == FORMAT => Some(saved),
        Ok(saved) => set_aside(&path, &format!("format {} is not {FORMAT}", saved.format)),
        Err(e) => set_aside(&path, &e.to_string()),
    }
}

/// Move an unreadable state file aside, say so, and start afresh.
pub(crate) fn set_aside<T>(path: &Path, why: &str) -> Option<T> {
    let aside = PathBuf::from(format!("{}.unreadable", path.display()));
    let moved = std::fs::rename(path, &aside).is_ok();
    eprintln!(
        "warning: the Playground's saved state ({}) could not be read ({why}); it starts afresh, without the sessions it had{}",
        path.display(),
        if moved {
            format!(" (the file is kept as {})", aside.display())
        } else {
            String::new()
        }
    );
    None
}

/// Write `saved` to `dir`'s state file, replacing it in one step.
pub(crate) fn write(dir: &Path, saved: &Saved) -> std::io::Result<()> {
    use std::io::Write;
    let bytes = serde_json::to_vec(saved).map_err(std::io::Error::other)?;
    let temporary = dir.join(format!("{FILE}.new"));
    let mut file = crate::create_private(&temporary)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, dir.join(FILE))
}

/// Where and what a Playground that keeps its state writes; one write at a
/// time.
pub(crate) struct Keeper {
    dir: PathBuf,
    port: u16,
    pki: SavedPki,
    writing: std::sync::Mutex<()>,
}

impl Keeper {
    pub(crate) fn new(dir: PathBuf, port: u16, pki: SavedPki) -> Self {
        Self {
            dir,
            port,
            pki,
            writing: std::sync::Mutex::new(()),
        }
    }
}

impl AppState {
    /// Write the state down now (when the Playground keeps it). It blocks
    /// for the write: call it off the async threads.
    pub(crate) fn save(&self) -> std::io::Result<()> {
        let Some(keeper) = &self.keeper else { return Ok(()) };
        let _one_at_a_time = lock(&keeper.writing);
        let (sessions, refresh_tokens) = self.save_sessions();
        let saved = Saved {
            format: FORMAT,
            port: keeper.port,
            admin_token: self.admin_token.clone(),
            pki: keeper.pki.clone(),
            keys: self.keys.read().unwrap_or_else(|e| e.into_inner()).save(),
            sessions,
            refresh_tokens,
            registered: lock(&self.oidc.registered).clone(),
        };
        write(&keeper.dir, &saved)
    }

    /// [`AppState::save`], saying on stderr when it failed (the Playground
    /// goes on serving).
    pub(crate) fn save_or_warn(&self) {
        if let Err(e) = self.save() {
            eprintln!("warning: the Playground could not save its state: {e}");
        }
    }

    /// The sessions and refresh tokens as written down.
    pub(crate) fn save_sessions(&self) -> (Vec<SavedSession>, Vec<SavedRefresh>) {
        let sessions = lock(&self.sessions)
            .values()
            .map(|s| SavedSession {
                info: s.info.clone(),
                serial: s.serial,
                customer: s.customer.clone(),
                current_refresh: s.current_refresh.clone(),
                oidc: s.oidc.as_ref().map(|o| SavedOidc {
                    client_id: o.client_id.to_owned(),
                    scope: o.scope.clone(),
                    sso: o.sso.clone(),
                    auth_time: o.auth_time,
                    resource: o.resource.clone(),
                }),
            })
            .collect();
        let refresh = lock(&self.refresh_index)
            .iter()
            .map(|(token, e)| SavedRefresh {
                token: token.clone(),
                session: e.session.clone(),
                spent_at: e.spent_at,
                expires: e.expires,
            })
            .collect();
        (sessions, refresh)
    }

    /// Take back sessions and refresh tokens written down by
    /// [`AppState::save_sessions`]. A session of a client the Playground
    /// no longer knows is left out, with its refresh tokens.
    pub(crate) fn restore_sessions(&self, sessions: Vec<SavedSession>, refresh: Vec<SavedRefresh>) {
        let mut kept = lock(&self.sessions);
        for s in sessions {
            let oidc = match s.oidc {
                None => None,
                Some(o) => match crate::oidc::known_client(self, &o.client_id) {
                    Some(client_id) => Some(OidcSession {
                        client_id,
                        scope: o.scope,
                        sso: o.sso,
                        auth_time: o.auth_time,
                        resource: o.resource,
                    }),
                    None => continue,
                },
            };
            SERIAL.fetch_max(s.serial + 1, Ordering::SeqCst);
            kept.insert(
                s.info.id.clone(),
                Session {
                    info: s.info,
                    serial: s.serial,
                    customer: s.customer,
                    current_refresh: s.current_refresh,
                    oidc,
                },
            );
        }
        let mut index = lock(&self.refresh_index);
        for r in refresh.into_iter().filter(|r| kept.contains_key(&r.session)) {
            index.insert(
                r.token,
                RefreshEntry {
                    session: r.session,
                    spent_at: r.spent_at,
                    expires: r.expires,
                },
            );
        }
    }
}
