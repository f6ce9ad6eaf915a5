//! What the desktop app does, without Tauri: the profiles (the config file's
//! and the embedded Playground's), an engine per profile with its scheduler
//! (every profile can be signed in at once, each renewing on its own), the
//! profile the window shows, and one event stream of every profile's
//! `SessionView`s.
//! The Tauri commands in `lib.rs` delegate here in one line each.

mod notice;
mod providers;
mod shown;
#[cfg(test)]
pub(crate) mod tests;

pub use notice::{
    expiry_warning, next_look, notices, playground_announcement, session_end_warning, Notice, NoticeAction,
    END_LEAD_SECS, IDLE_LEAD_SECS,
};
pub use providers::{add_first, examine_first, Found, NewProvider, ProviderKind, Removed};
pub use shown::{About, ActivityItem, DemoUserInfo, EndedEverywhere, PlaygroundQa, ProfileInfo, ProfileList};

use crate::embedded::{DemoUser, Playground};
use serde::Serialize;
use session_core::engine::SchedulerGuard;
use session_core::engine::SignOutReport;
use session_core::os::paths;
use session_core::profile::Config;
use session_core::provider::opener::{Opener, SystemOpener};
use session_core::storage::audit::AuditRecord;
use session_core::storage::vault::KeyringStore;
use session_core::{Engine, Error, ErrorCode, ErrorInfo, Password, Phase, Profile, SessionView};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::broadcast;

/// The name of the embedded Playground's profile.
pub const PLAYGROUND_PROFILE: &str = "playground";
/// Token lifetime of the embedded Playground, unless
/// `SESSION_MANAGER_PLAYGROUND_LIFETIME` says otherwise: short enough to see
/// refreshes happen within a couple of minutes.
pub const DEFAULT_PLAYGROUND_LIFETIME: Duration = Duration::from_secs(120);

/// How the app starts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--config FILE` (else `SESSION_MANAGER_CONFIG`, else the platform's
    /// config file, used only if it exists).
    pub config: Option<PathBuf>,
    /// `--data-dir DIR` (else `SESSION_MANAGER_DATA_DIR`, else the platform's).
    pub data_dir: Option<PathBuf>,
    /// `--profile NAME`: the profile selected at start.
    pub profile: Option<String>,
    /// Token lifetime of the embedded Playground.
    pub playground_lifetime: Option<Duration>,
    /// The keychain namespace (else `SESSION_MANAGER_KEYCHAIN_SERVICE`,
    /// else the default). Tests running side by side in one process each
    /// name their own: the environment is the whole process's.
    pub keychain_service: Option<String>,
    /// The demo users of a Playground started beside the app ("Try the
    /// demo"), shown with its profiles as the built-in one's are.
    pub demo_users: Vec<DemoUserInfo>,
    /// `--hidden`: start in the tray, the window not shown (the autostart
    /// entry's way; shown anyway when there is no tray).
    pub hidden: bool,
}

impl Options {
    /// The data directory (`--data-dir`, else `SESSION_MANAGER_DATA_DIR`,
    /// else the platform's), made this user's alone (created 0700, or
    /// tightened to it; another user's is refused) before anything is
    /// written into it: a folder others can write to could hold a planted
    /// link.
    pub fn private_data_dir(&self) -> Result<PathBuf, ErrorInfo> {
        let data_dir = self.data_dir.clone().or_else(paths::default_data_dir).ok_or_else(|| {
            ErrorInfo::new(
                ErrorCode::ConfigInvalid,
                "no data directory: pass --data-dir DIR or set SESSION_MANAGER_DATA_DIR",
            )
        })?;
        paths::private_dir(&data_dir).map_err(|e| ErrorInfo::new(ErrorCode::ConfigInvalid, e.to_string()))?;
        Ok(data_dir)
    }

    /// Parse the command line (`--config`, `--data-dir`, `--profile`) and
    /// `SESSION_MANAGER_PLAYGROUND_LIFETIME`.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut o = Options::default();
        let mut args = args.into_iter().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--config" => o.config = Some(value("--config")?.into()),
                "--data-dir" => o.data_dir = Some(value("--data-dir")?.into()),
                "--profile" => o.profile = Some(value("--profile")?),
                "--hidden" => o.hidden = true,
                // Arguments the platform or a WebDriver may add are ignored.
                _ => {}
            }
        }
        if let Ok(secs) = std::env::var("SESSION_MANAGER_PLAYGROUND_LIFETIME") {
            let secs: u64 = secs.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                format!("SESSION_MANAGER_PLAYGROUND_LIFETIME='{secs}' is not a number of seconds above 0")
            })?;
            o.playground_lifetime = Some(Duration::from_secs(secs));
        }
        Ok(o)
    }
}

struct Current {
    engine: Engine,
    _scheduler: SchedulerGuard,
    forward: tokio::task::JoinHandle<()>,
}

impl Drop for Current {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

/// Run `futures` side by side (polled together, so that the profiles'
/// keychain reads and renewals at start overlap) and collect their outputs
/// in order.
async fn futures_join<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut running: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in running.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        match pending {
            true => std::task::Poll::Pending,
            false => std::task::Poll::Ready(()),
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// The environment variable that, in builds with the `test-opener` feature
/// only, starts the app without its built-in Playground, as the packaged
/// app starts (end-to-end tests reach the first-run screen with it).
pub const TEST_NO_PLAYGROUND_ENV: &str = "SESSION_MANAGER_TEST_NO_PLAYGROUND";

/// Whether this app starts its built-in Playground when nothing else
/// provides one: builds with the `playground` feature do.
fn builtin_playground() -> bool {
    #[cfg(feature = "test-opener")]
    if std::env::var_os(TEST_NO_PLAYGROUND_ENV).is_some() {
        return false;
    }
    cfg!(feature = "playground")
}

/// The profile `name`, or a named error.
fn profile_named(profiles: &BTreeMap<String, Profile>, name: &str) -> Result<Profile, ErrorInfo> {
    profiles
        .get(name)
        .cloned()
        .ok_or_else(|| ErrorInfo::new(ErrorCode::ConfigInvalid, format!("there is no profile named '{name}'")))
}

/// How many log lines and audit records "Copy diagnostics" includes.
pub const DIAGNOSTIC_LINES: usize = 50;

/// The desktop app's state.
pub struct Backend {
    /// The profiles: the config file's, the built-in Playground's, and
    /// those added or removed in the window since.
    profiles: RwLock<BTreeMap<String, Profile>>,
    /// The built-in Playground's profiles (not in the config file).
    builtin_profiles: std::collections::BTreeSet<String>,
    /// The config file the profiles came from, if one was read.
    config_file: Option<PathBuf>,
    /// The Playground's demo users (the built-in one's or the demo's);
    /// empty for a config of real providers.
    demo_users: Vec<DemoUserInfo>,
    config_error: Option<ErrorInfo>,
    data_dir: PathBuf,
    /// Every profile's engine, each with its own keychain entry, lock,
    /// timers and renewals: all signed in at once if the person wants. A
    /// profile that could not be opened at start is opened when selected.
    engines: RwLock<BTreeMap<String, Arc<Current>>>,
    /// The profile the window shows.
    selected: RwLock<String>,
    switching: tokio::sync::Mutex<()>,
    events: broadcast::Sender<SessionView>,
    playground: Option<Playground>,
    playground_error: Option<ErrorInfo>,
    opener: Arc<dyn Opener>,
    keychain: Arc<KeyringStore>,
}

/// The environment variable that, in builds with the `test-opener` feature
/// only, makes the app write browser URLs to numbered files in a folder
/// instead of opening a browser (end-to-end tests play the browser).
pub const TEST_OPENER_ENV: &str = "SESSION_MANAGER_TEST_OPENER_DIR";

/// The system browser; in `test-opener` builds, the folder named by
/// [`TEST_OPENER_ENV`] if it is set. Release and normal builds never read it.
pub fn choose_opener() -> Arc<dyn Opener> {
    #[cfg(feature = "test-opener")]
    if let Some(dir) = std::env::var_os(TEST_OPENER_ENV) {
        eprintln!("warning: test build: browser pages are written to {dir:?}, not opened");
        return Arc::new(session_core::provider::opener::FolderOpener::new(dir));
    }
    Arc::new(SystemOpener)
}

impl Backend {
    /// Start: load the config file if there is one, start the embedded
    /// Playground, open and restore the selected profile's session.
    pub async fn start(options: Options) -> Result<Self, ErrorInfo> {
        // Checked first: the built-in Playground writes into it before any
        // engine opens it.
        let data_dir = options.private_data_dir()?;
        let mut profiles = BTreeMap::new();
        let mut config_error = None;
        let mut default_profile = None;
        let explicit = paths::config_named(options.config.is_some());
        let mut config_file = None;
        if let Some(path) = options.config.clone().or_else(paths::default_config_file) {
            if explicit || path.exists() {
                config_file = Some(path.clone());
                match Config::load(&path) {
                    Ok(config) => {
                        default_profile = config.default_profile.clone();
                        profiles = config.profiles;
                    }
                    Err(e) => config_error = Some(Error::Config(e).info()),
                }
            }
        }
        tracing::debug!("start: config read");
        let mut playground = None;
        let mut playground_error = None;
        let mut builtin_profiles = std::collections::BTreeSet::new();
        if !profiles.contains_key(PLAYGROUND_PROFILE) {
            let started = match builtin_playground() {
                true => Self::start_playground(&options, &data_dir).await,
                false => Err(ErrorInfo::new(ErrorCode::NotConfigured, "no built-in Playground")),
            };
            match started {
                Ok((pg, config)) => {
                    // The config file's profile of the same name is the
                    // person's: the built-in one does not replace it.
                    for (name, profile) in config.profiles {
                        if let std::collections::btree_map::Entry::Vacant(free) = profiles.entry(name.clone()) {
                            free.insert(profile);
                            builtin_profiles.insert(name);
                        }
                    }
                    playground = Some(pg);
                }
                // The config file's profiles still work without it.
                Err(e) if !profiles.is_empty() => {
                    eprintln!("warning[{}]: {}", e.code, e.message);
                    playground_error = Some(e);
                }
                // Nothing configured and no built-in Playground (the
                // packaged app): the window's first-run screen.
                Err(_) if !builtin_playground() && config_error.is_none() => {
                    return Err(ErrorInfo::new(
                        ErrorCode::NotConfigured,
                        format!(
                            "no identity provider is configured yet: add a profile to {}, or try the demo (the Session Manager Playground)",
                            paths::default_config_file()
                                .map(|p| p.display().to_string())
                                .unwrap_or_else(|| "the config file".into())
                        ),
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        tracing::debug!("start: built-in Playground done");
        let selected = options
            .profile
            .clone()
            .or(default_profile)
            .filter(|p| profiles.contains_key(p))
            .unwrap_or_else(|| PLAYGROUND_PROFILE.to_owned());
        if let Some(wanted) = &options.profile {
            if !profiles.contains_key(wanted) {
                return Err(ErrorInfo::new(
                    ErrorCode::ConfigInvalid,
                    format!(
                        "there is no profile named '{wanted}'; use one of: {}",
                        profiles.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        let (events, _) = broadcast::channel(64);
        let opener = choose_opener();
        let keychain = Arc::new(match &options.keychain_service {
            Some(service) => KeyringStore::new(service.clone()),
            None => KeyringStore::from_env(),
        });
        // The selected profile first (its failure is the app's), then the
        // others side by side; one that cannot be opened now is opened (and
        // its error shown) when the person selects it.
        let first = Self::open(
            profile_named(&profiles, &selected)?,
            &data_dir,
            &events,
            &opener,
            &keychain,
        )
        .await?;
        let mut engines = BTreeMap::from([(selected.clone(), Arc::new(first))]);
        let others = profiles.keys().filter(|n| **n != selected).map(|name| {
            let (profiles, data_dir, events, opener, keychain) = (&profiles, &data_dir, &events, &opener, &keychain);
            async move {
                let opened = match profile_named(profiles, name) {
                    Ok(profile) => Self::open(profile, data_dir, events, opener, keychain).await,
                    Err(e) => Err(e),
                };
                (name.clone(), opened)
            }
        });
        for (name, opened) in futures_join(others).await {
            match opened {
                Ok(current) => {
                    engines.insert(name, Arc::new(current));
                }
                Err(e) => tracing::warn!(profile = %name, code = %e.code, "not opened at start: {}", e.message),
            }
        }
        Ok(Self {
            demo_users: match &playground {
                Some(p) => p.info().users.iter().map(DemoUserInfo::from).collect(),
                None => options.demo_users.clone(),
            },
            profiles: RwLock::new(profiles),
            builtin_profiles,
            config_file,
            config_error,
            data_dir,
            engines: RwLock::new(engines),
            selected: RwLock::new(selected),
            switching: tokio::sync::Mutex::new(()),
            events,
            playground,
            playground_error,
            opener,
            keychain,
        })
    }

    /// Start the built-in Playground in `data_dir/playground` and announce
    /// it on stdout (one JSON line, `admin_token` included) for QA.
    async fn start_playground(
        options: &Options,
        data_dir: &std::path::Path,
    ) -> Result<(Playground, Config), ErrorInfo> {
        let lifetime = options.playground_lifetime.unwrap_or(DEFAULT_PLAYGROUND_LIFETIME);
        let pg = crate::embedded::start(lifetime, data_dir.join("playground"))
            .await
            .map_err(|e| {
                ErrorInfo::new(
                    ErrorCode::Internal,
                    format!("the built-in Playground did not start ({e}); the profiles of the config file still work"),
                )
            })?;
        // QA finds the admin API here; its token is in the About and QA
        // panel and in a 0600 file, never on stdout (which lands in the
        // journal when the app starts from a desktop menu).
        println!("{}", playground_announcement(&pg.info().admin_url, &pg.info().ca_cert));
        let config = Config::parse(pg.config(), data_dir).map_err(|e| Error::Config(e).info())?;
        // Where sessionctl finds it (paths::PLAYGROUND_CONFIGS), so the CLI
        // talks to this Playground. Without it the CLI says there is no
        // config, and the app goes on.
        let written = data_dir.join(paths::PLAYGROUND_CONFIGS[0]);
        let write = |path: &std::path::Path| -> std::io::Result<()> {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            paths::open_private(path, &mut options)?.write_all(pg.config().as_bytes())
        };
        if let Err(e) = write(&written) {
            tracing::warn!(
                "could not write the built-in Playground's profiles to {}: {e}",
                written.display()
            );
        }
        Ok((pg, config))
    }

    async fn open(
        profile: Profile,
        data_dir: &std::path::Path,
        events: &broadcast::Sender<SessionView>,
        opener: &Arc<dyn Opener>,
        keychain: &Arc<KeyringStore>,
    ) -> Result<Current, ErrorInfo> {
        let name = profile.name.clone();
        let engine = Engine::open_with(profile, data_dir, keychain.clone(), opener.clone())?;
        tracing::debug!(profile = %name, "start: engine opened");
        let mut rx = engine.subscribe();
        let tx = events.clone();
        let forward = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(view) => {
                        let _ = tx.send(view);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        let scheduler = engine.start();
        let current = Current {
            engine,
            _scheduler: scheduler,
            forward,
        };
        current.engine.restore().await?;
        tracing::debug!(profile = %name, "start: session restored from the keychain");
        let _ = events.send(current.engine.view());
        Ok(current)
    }

    /// The profiles as they are now.
    fn profiles(&self) -> BTreeMap<String, Profile> {
        self.profiles.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The selected profile's engine.
    pub fn engine(&self) -> Engine {
        let selected = self.selected.read().unwrap_or_else(|e| e.into_inner()).clone();
        let engines = self.engines.read().unwrap_or_else(|e| e.into_inner());
        match engines.get(&selected) {
            Some(current) => current.engine.clone(),
            // Selected only once opened (switch_profile): not reached.
            None => engines
                .values()
                .next()
                .map(|c| c.engine.clone())
                .expect("one engine is open"),
        }
    }

    /// Every open profile's session, by profile name.
    pub fn views(&self) -> Vec<SessionView> {
        self.engines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|c| c.engine.view())
            .collect()
    }

    /// Sign out of the profile `name` (the tray's "Sign out of NAME"),
    /// whichever the window shows.
    pub async fn sign_out_of(&self, name: &str) -> Result<SignOutReport, ErrorInfo> {
        let engine = self
            .engines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|c| c.engine.clone())
            .ok_or_else(|| ErrorInfo::new(ErrorCode::ConfigInvalid, format!("there is no profile named '{name}'")))?;
        Ok(engine.sign_out().await?)
    }

    /// Sign out of every profile signed in ("Sign out everywhere" in the
    /// tray); each is tried, and the first failure is reported.
    pub async fn sign_out_everywhere(&self) -> Result<(), ErrorInfo> {
        let engines: Vec<Engine> = self
            .engines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|c| c.engine.clone())
            .filter(|e| e.view().state.has_session())
            .collect();
        let mut first_error = None;
        for engine in engines {
            if let Err(e) = engine.sign_out().await {
                first_error.get_or_insert(ErrorInfo::from(e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Session views of whichever profile is current.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionView> {
        self.events.subscribe()
    }

    /// The embedded Playground, if it runs.
    pub fn playground(&self) -> Option<&Playground> {
        self.playground.as_ref()
    }

    /// The About panel.
    pub fn about(&self) -> About {
        About {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            data_dir: self.data_dir.display().to_string(),
            keychain_service: self.keychain.service().to_owned(),
            playground: self.playground.as_ref().map(|pg| PlaygroundQa {
                base_url: pg.info().base_url.clone(),
                admin_url: pg.info().admin_url.clone(),
                admin_token: pg.info().admin_token.clone(),
                ca_cert: pg.info().ca_cert.clone(),
            }),
            playground_error: self.playground_error.clone(),
        }
    }

    /// The diagnostics a support team needs ("Copy diagnostics").
    pub async fn diagnostics(&self) -> String {
        // The report reads the audit file: write the engine's queued
        // records (API calls) first.
        let _ = self.engine().audit_log().flush();
        let inputs = session_core::support::diagnostics::Inputs {
            config_file: self.config_file.as_ref().map(|p| p.display().to_string()),
            profiles: self.profiles().values().cloned().collect(),
            config_error: self.config_error.as_ref().map(|e| e.message.clone()),
            data_dir: Some(self.data_dir.clone()),
            store: self.keychain.clone(),
            lines: DIAGNOSTIC_LINES,
            front: format!("Session Manager app {}", env!("CARGO_PKG_VERSION")),
        };
        session_core::support::diagnostics::collect(&inputs).await.to_text()
    }

    /// The current session view.
    pub fn view(&self) -> SessionView {
        self.engine().view()
    }

    /// Sign in to the selected profile.
    pub async fn sign_in(
        &self,
        username: &str,
        password: Password,
        replace: session_core::provider::Replace,
    ) -> Result<SessionView, ErrorInfo> {
        if username.trim().is_empty() || password.expose().is_empty() {
            return Err(ErrorInfo::new(
                ErrorCode::InvalidCredentials,
                "enter a username and a password",
            ));
        }
        Ok(self
            .engine()
            .sign_in_password(username.trim(), password, replace)
            .await?)
    }

    /// Sign in to the current (OpenID Connect) profile through the browser.
    pub async fn sign_in_browser(&self) -> Result<SessionView, ErrorInfo> {
        Ok(self.engine().sign_in_browser().await?)
    }

    /// Stop waiting for the browser.
    pub fn cancel_sign_in(&self) -> Result<(), ErrorInfo> {
        Ok(self.engine().cancel_sign_in()?)
    }

    /// The address of the provider's page a browser sign-in waits on (the
    /// engine's own, never one the page supplies).
    pub fn sign_in_address(&self) -> Result<String, ErrorInfo> {
        self.engine()
            .view()
            .browser
            .map(|b| b.url)
            .ok_or_else(|| ErrorInfo::new(ErrorCode::InvalidState, "no sign-in is waiting for the browser."))
    }

    /// Open the waiting sign-in's page again: the tab was closed, or no
    /// browser came up the first time.
    pub fn open_sign_in_page(&self) -> Result<(), ErrorInfo> {
        let url = self.sign_in_address()?;
        self.opener.open(&url).map_err(|e| {
            ErrorInfo::new(
                ErrorCode::Internal,
                format!("no browser could be started ({e}); copy the address into a browser instead."),
            )
        })
    }

    /// Sign out of the selected profile (local state always cleared).
    pub async fn sign_out(&self) -> Result<SignOutReport, ErrorInfo> {
        Ok(self.engine().sign_out().await?)
    }

    /// "This wasn't me": end every other session at the provider first
    /// (where it has an API for that), then this one. If the provider
    /// cannot end the others, nothing is signed out and the error says why.
    pub async fn end_everywhere(&self) -> Result<EndedEverywhere, ErrorInfo> {
        let engine = self.engine();
        let others = match engine.view().sessions_api {
            true => Some(engine.end_other_sessions().await?),
            false => None,
        };
        let report = engine.sign_out().await?;
        Ok(EndedEverywhere {
            others,
            view: report.view,
        })
    }

    /// The person is using the app: moves the idle timeout.
    pub fn touch(&self) {
        self.engine().touch()
    }

    /// Refresh now.
    pub async fn refresh_now(&self) -> Result<SessionView, ErrorInfo> {
        Ok(self.engine().refresh_now().await?)
    }

    /// The newest audit records of the selected profile, newest first.
    pub async fn recent_activity(&self, limit: usize) -> Result<Vec<ActivityItem>, ErrorInfo> {
        let engine = self.engine();
        let name = engine.profile().name.clone();
        tokio::task::spawn_blocking(move || engine.audit_log().recent(limit.clamp(1, 500) * 4))
            .await
            .map_err(|e| ErrorInfo::new(ErrorCode::Internal, e.to_string()))?
            .map(|records| {
                records
                    .into_iter()
                    .filter(|r| r.profile == name)
                    .take(limit)
                    .map(ActivityItem::from)
                    .collect()
            })
            .map_err(|e| ErrorInfo::new(ErrorCode::Internal, format!("cannot read the audit log: {e}")))
    }

    /// The profiles, the selected one marked.
    pub fn list_profiles(&self) -> ProfileList {
        let selected = self.engine().profile().name.clone();
        let views: BTreeMap<String, SessionView> = self.views().into_iter().map(|v| (v.profile.clone(), v)).collect();
        ProfileList {
            profiles: self
                .profiles()
                .values()
                .map(|p| ProfileInfo {
                    name: p.name.clone(),
                    environment: p.environment.as_str().to_owned(),
                    provider: p.provider.as_str().to_owned(),
                    selected: p.name == selected,
                    address: p.address(),
                    removable: !self.builtin_profiles.contains(&p.name),
                    view: views.get(&p.name).cloned(),
                    demo_users: if p.name.starts_with(PLAYGROUND_PROFILE) {
                        self.demo_users.clone()
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            config_error: self.config_error.clone(),
        }
    }

    /// Show `name`'s session in the window. Its engine runs already (every
    /// profile's does, side by side); one that could not be opened at start
    /// is opened now. The others go on as they were.
    pub async fn switch_profile(&self, name: &str) -> Result<SessionView, ErrorInfo> {
        let _one_at_a_time = self.switching.lock().await;
        let open = self
            .engines
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name);
        if !open {
            let next = Self::open(
                profile_named(&self.profiles(), name)?,
                &self.data_dir,
                &self.events,
                &self.opener,
                &self.keychain,
            )
            .await?;
            self.engines
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.to_owned(), Arc::new(next));
        }
        *self.selected.write().unwrap_or_else(|e| e.into_inner()) = name.to_owned();
        let view = self.engine().view();
        let _ = self.events.send(view.clone());
        Ok(view)
    }
}
