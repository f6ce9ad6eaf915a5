//! The desktop shell: Tauri commands that delegate to [`backend::Backend`] in
//! one line each, engine events forwarded to the webview as
//! `session://changed`, the window title, the tray and the expiry
//! notification. No session logic lives here, and no token crosses IPC:
//! commands return `SessionView`s, lists and `{code, message}` errors.

mod autostart;
pub mod backend;
mod background;
#[cfg(target_os = "linux")]
mod demo;
mod desktop;
mod embedded;
mod notices;
mod tray;

use backend::{About, ActivityItem, Backend, ProfileList};
use session_core::engine::SignOutReport;
use session_core::view::RemoteSession;
use session_core::{ErrorInfo, Password, SessionView};
use std::sync::Arc;
use tauri::{Emitter, Manager, Runtime, State};

/// The app's id: its desktop file, icon and AppStream component are named
/// after it (packaging/), and notifications name it.
pub const APP_ID: &str = "dev.sessionmanager.SessionManager";

/// The event that carries every new `SessionView` to the webview.
pub const SESSION_EVENT: &str = "session://changed";

/// The backend once it has started, or why it could not. The window opens
/// while the backend starts (the built-in Playground generates keys, the
/// session is restored from the keychain); commands wait for it.
#[derive(Clone)]
pub struct Started(tokio::sync::watch::Receiver<StartOutcome>);

impl Started {
    /// The backend, waiting for it to start if need be.
    pub async fn get(&self) -> Result<Arc<Backend>, ErrorInfo> {
        let mut rx = self.0.clone();
        let ready = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| ErrorInfo::new(session_core::ErrorCode::Internal, "the app is shutting down"))?;
        ready
            .clone()
            .unwrap_or_else(|| Err(ErrorInfo::new(session_core::ErrorCode::Internal, "not started")))
    }

    /// The backend if it has started, without waiting.
    fn ready(&self) -> Option<Arc<Backend>> {
        self.0.borrow().as_ref().and_then(|r| r.as_ref().ok().cloned())
    }
}

type Backed<'a> = State<'a, Started>;

/// The current session.
#[tauri::command]
async fn session_view(backend: Backed<'_>) -> Result<SessionView, ErrorInfo> {
    Ok(backend.get().await?.view())
}

/// Sign in to the current profile. The password arrives as a `Password`: it
/// can be deserialized from the page, never serialized or printed.
#[tauri::command]
async fn sign_in(
    backend: Backed<'_>,
    username: String,
    password: Password,
    replace_oldest: Option<bool>,
    replace_session: Option<String>,
) -> Result<SessionView, ErrorInfo> {
    use session_core::provider::Replace;
    let replace = match (replace_session, replace_oldest) {
        (Some(id), _) => Replace::Session(id),
        (None, Some(true)) => Replace::Oldest,
        _ => Replace::Nothing,
    };
    backend.get().await?.sign_in(&username, password, replace).await
}

/// Your sessions on other devices (FinHub).
#[tauri::command]
async fn list_sessions(backend: Backed<'_>) -> Result<Vec<RemoteSession>, ErrorInfo> {
    Ok(backend.get().await?.engine().sessions().await?)
}

/// End another device's session.
#[tauri::command]
async fn end_session(backend: Backed<'_>, id: String) -> Result<(), ErrorInfo> {
    Ok(backend.get().await?.engine().end_session(&id).await?)
}

/// Session metrics from the audit log (the Metrics panel).
#[tauri::command]
async fn metrics(backend: Backed<'_>) -> Result<session_core::insight::metrics::Metrics, ErrorInfo> {
    Ok(backend.get().await?.engine().metrics().await?)
}

/// Hide the anomaly banners (they stay in the audit log).
#[tauri::command]
async fn dismiss_anomalies(backend: Backed<'_>) -> Result<(), ErrorInfo> {
    backend.get().await?.engine().dismiss_anomalies();
    Ok(())
}

/// End every session but this one.
#[tauri::command]
async fn end_other_sessions(backend: Backed<'_>) -> Result<u64, ErrorInfo> {
    Ok(backend.get().await?.engine().end_other_sessions().await?)
}

/// "This wasn't me": every other session, then this one.
#[tauri::command]
async fn end_everywhere(backend: Backed<'_>) -> Result<backend::EndedEverywhere, ErrorInfo> {
    backend.get().await?.end_everywhere().await
}

/// Sign in through the browser (OpenID Connect profiles).
#[tauri::command]
async fn sign_in_browser(backend: Backed<'_>) -> Result<SessionView, ErrorInfo> {
    backend.get().await?.sign_in_browser().await
}

/// Stop waiting for the browser; the sign-in's own answer and the next
/// `session://changed` event carry the outcome.
#[tauri::command]
async fn cancel_sign_in(backend: Backed<'_>) -> Result<(), ErrorInfo> {
    backend.get().await?.cancel_sign_in()
}

/// Sign out (local state is always cleared).
#[tauri::command]
async fn sign_out(backend: Backed<'_>) -> Result<SignOutReport, ErrorInfo> {
    backend.get().await?.sign_out().await
}

/// Refresh now.
#[tauri::command]
async fn refresh_now(backend: Backed<'_>) -> Result<SessionView, ErrorInfo> {
    backend.get().await?.refresh_now().await
}

/// The person is using the app (the idle timeout moves). The page calls it
/// at most every 15 s while there is input.
#[tauri::command]
async fn touch(backend: Backed<'_>) -> Result<(), ErrorInfo> {
    backend.get().await?.touch();
    Ok(())
}

/// The newest audit events of the current profile.
#[tauri::command]
async fn recent_activity(backend: Backed<'_>, limit: Option<usize>) -> Result<Vec<ActivityItem>, ErrorInfo> {
    backend.get().await?.recent_activity(limit.unwrap_or(20)).await
}

/// The profiles to choose from.
#[tauri::command]
async fn list_profiles(backend: Backed<'_>) -> Result<ProfileList, ErrorInfo> {
    // The page's first question (the start's timeline in the diagnostic log).
    tracing::debug!("start: the page asks for its profiles");
    Ok(backend.get().await?.list_profiles())
}

/// The About panel (version, data directory, the built-in Playground's admin
/// API for QA).
#[tauri::command]
async fn about(backend: Backed<'_>) -> Result<About, ErrorInfo> {
    Ok(backend.get().await?.about())
}

/// "Copy diagnostics": what a support team needs, as text, with no secret
/// in it (see `session_core::support::diagnostics`).
#[tauri::command]
async fn diagnostics(backend: Backed<'_>) -> Result<String, ErrorInfo> {
    Ok(backend.get().await?.diagnostics().await)
}

/// Ctrl+W: close the window; the app goes on in the tray.
#[tauri::command]
fn close_window<R: Runtime>(app: tauri::AppHandle<R>) {
    background::close_window(&app);
}

/// Ctrl+Q: quit the app (renewals stop until it starts again).
#[tauri::command]
fn quit<R: Runtime>(app: tauri::AppHandle<R>) {
    app.exit(0);
}

/// "Copy diagnostics": the report, put on the clipboard by the shell (the
/// webview's clipboard API refuses), and whether that worked.
#[tauri::command]
async fn copy_diagnostics<R: Runtime>(app: tauri::AppHandle<R>, backend: Backed<'_>) -> Result<Copied, ErrorInfo> {
    let text = backend.get().await?.diagnostics().await;
    Ok(Copied {
        copied: to_clipboard(&app, &text).await,
        text,
    })
}

/// Whether the app starts at login (the About panel's setting).
#[tauri::command]
fn autostart() -> bool {
    autostart::entry_path().is_some_and(|p| autostart::enabled(&p))
}

/// Start at login, or not; answers whether it now does.
#[tauri::command]
fn set_autostart(enabled: bool) -> Result<bool, ErrorInfo> {
    let fail = |m: String| ErrorInfo::new(session_core::ErrorCode::InvalidState, m);
    let entry = autostart::entry_path().ok_or_else(|| fail("no home folder to put the autostart entry in.".into()))?;
    let exe = std::env::current_exe().map_err(|e| fail(format!("cannot tell where this program is: {e}")))?;
    autostart::set(&entry, enabled, &exe).map_err(fail)
}

/// "Open again" on the browser-wait screen.
#[tauri::command]
async fn open_sign_in_page(backend: Backed<'_>) -> Result<(), ErrorInfo> {
    backend.get().await?.open_sign_in_page()
}

/// "Copy" on the browser-wait screen: the sign-in page's address on the
/// clipboard (the shell's, as for the diagnostics).
#[tauri::command]
async fn copy_sign_in_address<R: Runtime>(app: tauri::AppHandle<R>, backend: Backed<'_>) -> Result<Copied, ErrorInfo> {
    let text = backend.get().await?.sign_in_address()?;
    Ok(Copied {
        copied: to_clipboard(&app, &text).await,
        text,
    })
}

/// The shell's clipboard: true when `text` is on it.
async fn to_clipboard<R: Runtime>(app: &tauri::AppHandle<R>, text: &str) -> bool {
    #[cfg(target_os = "linux")]
    return desktop::to_clipboard(app, text.to_owned()).await;
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (app, text);
        false
    }
}

/// Text and whether it reached the clipboard.
#[derive(serde::Serialize)]
struct Copied {
    text: String,
    copied: bool,
}

/// Switch to another profile.
#[tauri::command]
async fn switch_profile(backend: Backed<'_>, name: String) -> Result<SessionView, ErrorInfo> {
    backend.get().await?.switch_profile(&name).await
}

/// Whether the main window may show `url`: only the app's own pages. A link
/// or a script that tries to take the window elsewhere is refused (the
/// provider's pages open in the system browser, RFC 8252 section 8.12).
pub fn is_app_page(url: &tauri::Url) -> bool {
    matches!(
        (url.scheme(), url.host_str()),
        ("tauri", Some("localhost")) | ("http" | "https", Some("tauri.localhost"))
    )
}

/// The window title for a view: the environment is always visible.
pub fn window_title(view: &SessionView) -> String {
    let env = match view.environment.as_str() {
        "production" => "PRODUCTION",
        "integration" => "Integration",
        _ => "Playground",
    };
    format!("Session Manager — {} [{env}]", view.profile)
}

/// The app's commands, for any runtime.
fn with_commands<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        session_view,
        sign_in,
        sign_in_browser,
        cancel_sign_in,
        sign_out,
        refresh_now,
        touch,
        list_sessions,
        end_session,
        end_other_sessions,
        end_everywhere,
        dismiss_anomalies,
        metrics,
        recent_activity,
        list_profiles,
        switch_profile,
        about,
        diagnostics,
        try_demo,
        examine_provider,
        add_provider,
        remove_profile,
        copy_diagnostics,
        open_sign_in_page,
        copy_sign_in_address,
        autostart,
        set_autostart,
        close_window,
        quit
    ])
}

/// Open the main window at once and start the backend beside it. When the
/// backend is up, its views are forwarded to the webview (and to `on_view` in
/// the shell: title, tray, notification), `on_ready` runs, and the commands
/// that were waiting go ahead.
fn attach<R: Runtime, F>(
    app: &tauri::AppHandle<R>,
    start: F,
    on_view: impl Fn(&tauri::AppHandle<R>, &SessionView) + Send + Sync + 'static,
    on_ready: impl Fn(&tauri::AppHandle<R>, &Arc<Backend>) + Send + Sync + 'static,
) -> tauri::Result<()>
where
    F: std::future::Future<Output = Result<Arc<Backend>, ErrorInfo>> + Send + 'static,
{
    let (ready, started) = tokio::sync::watch::channel(None);
    app.manage(Started(started));
    let hooks = Hooks::<R> {
        ready: Arc::new(ready),
        on_view: Arc::new(on_view),
        on_ready: Arc::new(on_ready),
    };
    app.manage(hooks.clone());
    if let Some(config) = app.config().app.windows.iter().find(|w| w.label == "main") {
        // `--hidden` (the autostart entry): in the tray, the window not
        // shown until asked for (shown anyway if no tray comes up).
        let hidden = app.try_state::<StartOptions>().is_some_and(|o| o.0.hidden);
        let builder = tauri::WebviewWindowBuilder::from_config(app, config)?
            .on_navigation(is_app_page)
            .visible(!hidden);
        // The platform's own font where sans-serif is not it (ui/styles.css;
        // untested here: macOS and Windows cannot be built on this machine).
        #[cfg(not(target_os = "linux"))]
        let builder = builder.initialization_script(
            "document.documentElement?.style.setProperty('--platform-font', 'system-ui, sans-serif');",
        );
        builder.build()?;
    }
    tracing::debug!("start: window built");
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        match start.await {
            Ok(backend) => hooks.serve(&handle, backend),
            Err(e) => {
                // A first run with nothing configured is not an error: the
                // window shows its first-run screen.
                if e.code != session_core::ErrorCode::NotConfigured {
                    eprintln!("error[{}]: {}", e.code, e.message);
                }
                let _ = hooks.ready.send(Some(Err(e)));
            }
        }
    });
    Ok(())
}

/// What a started backend is handed to: the window's `Started`, the shell's
/// reaction to each view (title, tray, notification) and to the start (the
/// tray). Kept so that a backend started later ("Try the demo") is served
/// the same way.
struct Hooks<R: Runtime> {
    ready: Arc<tokio::sync::watch::Sender<StartOutcome>>,
    on_view: Arc<OnView<R>>,
    on_ready: Arc<OnReady<R>>,
}

/// The backend once started, or why it could not start (`None` meanwhile).
type StartOutcome = Option<Result<Arc<Backend>, ErrorInfo>>;
/// The shell's reaction to each view.
type OnView<R> = dyn Fn(&tauri::AppHandle<R>, &SessionView) + Send + Sync;
/// The shell's reaction to a started backend.
type OnReady<R> = dyn Fn(&tauri::AppHandle<R>, &Arc<Backend>) + Send + Sync;

impl<R: Runtime> Clone for Hooks<R> {
    fn clone(&self) -> Self {
        Self {
            ready: self.ready.clone(),
            on_view: self.on_view.clone(),
            on_ready: self.on_ready.clone(),
        }
    }
}

impl<R: Runtime> Hooks<R> {
    /// Make `backend` the one commands use, and forward its views to the
    /// webview and the shell until it closes.
    fn serve(&self, handle: &tauri::AppHandle<R>, backend: Arc<Backend>) {
        // Subscribe before any command can run, so no transition is missed.
        let mut events = backend.subscribe();
        (self.on_view)(handle, &backend.view());
        (self.on_ready)(handle, &backend);
        let _ = self.ready.send(Some(Ok(backend)));
        let (handle, on_view) = (handle.clone(), self.on_view.clone());
        tauri::async_runtime::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(view) => {
                        on_view(&handle, &view);
                        let _ = handle.emit(SESSION_EVENT, &view);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
}

/// The demo Playground the first-run screen started, stopped at exit.
#[derive(Default)]
struct DemoPlayground(std::sync::Mutex<Option<std::process::Child>>);

impl DemoPlayground {
    fn stop(&self) {
        if let Some(mut child) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// "Try the demo" on the first-run screen: start the Session Manager
/// Playground (its own package) with a folder in the data directory, and a
/// backend on the config it writes. The window reloads once this returns.
#[tauri::command]
async fn try_demo<R: Runtime>(app: tauri::AppHandle<R>) -> Result<(), ErrorInfo> {
    let started = app.state::<Started>();
    if started.ready().is_some() {
        return Ok(());
    }
    let options = app.state::<StartOptions>().0.clone();
    let demo = demo::start(&options).await?;
    app.state::<DemoPlayground>()
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(demo.child);
    let backend = Backend::start(backend::Options {
        config: Some(demo.config),
        demo_users: demo.users,
        ..options
    })
    .await
    .map(Arc::new)?;
    let hooks = app.state::<Hooks<R>>().inner().clone();
    hooks.serve(&app, backend);
    Ok(())
}

/// "Add a provider": what is at the provider, for the person to confirm.
/// On the first-run screen (nothing configured, no backend yet) too.
#[tauri::command]
async fn examine_provider<R: Runtime>(
    app: tauri::AppHandle<R>,
    provider: backend::NewProvider,
) -> Result<backend::Found, ErrorInfo> {
    match app.state::<Started>().get().await {
        Ok(backend) => backend.examine_provider(&provider).await,
        Err(_) => backend::examine_first(&provider, app.state::<StartOptions>().0.config.as_deref()).await,
    }
}

/// "Add a provider", confirmed: the profile written and shown. On the
/// first-run screen the app then starts on it (the window reloads).
#[tauri::command]
async fn add_provider<R: Runtime>(
    app: tauri::AppHandle<R>,
    provider: backend::NewProvider,
) -> Result<SessionView, ErrorInfo> {
    if let Ok(backend) = app.state::<Started>().get().await {
        let view = backend.add_provider(&provider).await?;
        tray::rebuild(&app, &backend);
        return Ok(view);
    }
    let options = app.state::<StartOptions>().0.clone();
    let path = backend::add_first(
        &provider,
        options.config.as_deref(),
        options.keychain_service.as_deref(),
    )
    .await?;
    let backend = Backend::start(backend::Options {
        config: Some(path),
        profile: Some(provider.name.trim().to_owned()),
        ..options
    })
    .await
    .map(Arc::new)?;
    let view = backend.view();
    let hooks = app.state::<Hooks<R>>().inner().clone();
    hooks.serve(&app, backend);
    Ok(view)
}

/// Remove a profile from the config file (signed out first).
#[tauri::command]
async fn remove_profile<R: Runtime>(
    app: tauri::AppHandle<R>,
    backend: Backed<'_>,
    name: String,
) -> Result<backend::Removed, ErrorInfo> {
    let backend = backend.get().await?;
    let removed = backend.remove_profile(&name).await?;
    tray::rebuild(&app, &backend);
    Ok(removed)
}

/// The options the app started with (the demo's backend uses them too).
struct StartOptions(backend::Options);

/// The app on any runtime with a ready backend (tests use the mock runtime).
pub fn build<R: Runtime>(
    builder: tauri::Builder<R>,
    backend: Arc<Backend>,
    on_view: impl Fn(&tauri::AppHandle<R>, &SessionView) + Send + Sync + 'static,
) -> tauri::Builder<R> {
    with_commands(builder).setup(move |app| Ok(attach(app.handle(), async move { Ok(backend) }, on_view, |_, _| {})?))
}

/// One instance per keychain namespace: a second launch hands over to the
/// first (which shows its window) and exits before it touches any session,
/// so two instances never refresh with the same token. Apps with different
/// namespaces (`SESSION_MANAGER_KEYCHAIN_SERVICE`, which tests set) share no
/// session and may run side by side.
fn instance_name() -> String {
    match std::env::var(session_core::storage::vault::SERVICE_ENV) {
        Ok(ns) => {
            let ns: String = ns
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("dev.session_manager.desktop.n{ns}")
        }
        Err(_) => "dev.session_manager.desktop".into(),
    }
}

/// Bring the main window up: shown, not minimized, focused.
pub(crate) fn show_window<R: Runtime>(app: &tauri::AppHandle<R>) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Become the one instance, or hand over to it and exit. On Linux over
/// libdbus ([`desktop`]); without a session bus other instances cannot be
/// found, and the app says so and starts.
#[cfg(target_os = "linux")]
fn one_instance<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    match desktop::claim(&format!("{}.SingleInstance", instance_name())) {
        desktop::Claim::First(instance) => builder.plugin(
            tauri::plugin::Builder::<R, ()>::new("one-instance")
                .setup(move |app, _| {
                    let handle = app.clone();
                    instance.on_show(move || show_window(&handle));
                    app.manage(instance);
                    Ok(())
                })
                .build(),
        ),
        desktop::Claim::HandedOver => {
            tracing::info!("another instance is running; asked it to show its window");
            std::process::exit(0);
        }
        desktop::Claim::Unanswered(e) => {
            eprintln!(
                "error[already_running]: another Session Manager is running but does not answer ({e}). \
                 Close it (or end its process) and start again."
            );
            std::process::exit(1);
        }
        desktop::Claim::NoBus(e) => {
            eprintln!("warning: no D-Bus session bus ({e}): cannot check for another running instance");
            builder
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn one_instance<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    let plugin = tauri_plugin_single_instance::Builder::new()
        .callback(|app, _args, _cwd| show_window(app))
        .dbus_id(instance_name())
        .build();
    builder.plugin(plugin).plugin(tauri_plugin_notification::init())
}

/// The app's part in the event loop's events. On `Exit`: the loop ends the
/// process without dropping the backend, so the audit records the engine
/// still holds in its queue (API calls) are written here.
pub fn on_run_event<R: Runtime>(app: &tauri::AppHandle<R>, event: &tauri::RunEvent) {
    if let tauri::RunEvent::Exit = event {
        if let Some(demo) = app.try_state::<DemoPlayground>() {
            demo.stop();
        }
        if let Some(backend) = app.try_state::<Started>().and_then(|s| s.ready()) {
            // A renewal in flight may hold a refresh token the provider
            // already rotated: let it land (bounded) before the process ends.
            let engine = backend.engine().clone();
            tauri::async_runtime::block_on(engine.drain(std::time::Duration::from_secs(10)));
            let _ = backend.engine().audit_log().flush();
        }
    }
}

/// SIGTERM (the end of the desktop session, `kill`), SIGINT (Ctrl-C in the
/// terminal the app was started from) and SIGHUP end the app as its Quit
/// does: the loop's `Exit` lets a renewal in flight land and writes the
/// queued audit records ([`on_run_event`]). Their default action ended the
/// process mid-request. Installed before the backend starts its first
/// renewal.
fn quit_when_asked_to_stop<R: Runtime>(app: &tauri::AppHandle<R>) {
    let stop = {
        let _inside = tauri::async_runtime::handle().inner().enter();
        session_core::os::stop::asked_to_stop()
    };
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        stop.await;
        tracing::info!("asked to stop by a signal: quitting as Quit does");
        app.exit(0);
    });
}

/// Run the desktop app with Tauri's `context` (the page, the configuration
/// and the permissions, which the app's own crate generates).
pub fn run(context: tauri::Context<tauri::Wry>) {
    // Before any thread or WebKit starts (it reads the environment).
    #[cfg(target_os = "linux")]
    desktop::paint_without_compositing();
    let options = match backend::Options::from_args(std::env::args()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error[config_invalid]: {e}");
            std::process::exit(2);
        }
    };
    // The diagnostic log (data_dir/logs/app.log); without a data directory
    // the backend reports that on the window.
    let data_dir = options
        .data_dir
        .clone()
        .or_else(session_core::os::paths::default_data_dir);
    session_core::support::diaglog::init(data_dir.as_deref(), "app");
    // A second launch hands over to the first instance and exits before
    // any session is touched.
    let builder = one_instance(tauri::Builder::default());
    let app = with_commands(builder)
        .setup(move |app| {
            quit_when_asked_to_stop(app.handle());
            app.manage(background::Background::new(data_dir));
            app.manage(StartOptions(options.clone()));
            app.manage(DemoPlayground::default());
            let start = async move { Backend::start(options).await.map(Arc::new) };
            attach(app.handle(), start, notices::on_view, |app, backend| {
                notices::start(app, backend);
                // A tray needs a status notifier host; without one the app
                // works on, just without the icon.
                if let Err(e) = tray::create(app, backend) {
                    eprintln!("warning: no tray icon: {e}");
                    // Started hidden with nowhere to show from: show it.
                    if let Some(w) = app.get_webview_window("main") {
                        let _ = w.show();
                    }
                }
            })?;
            Ok(())
        })
        .on_window_event(background::on_window_event)
        .build(context);
    match app {
        Ok(app) => app.run(|app, event| on_run_event(app, &event)),
        Err(e) => {
            eprintln!("error[internal]: cannot start the window: {e}");
            std::process::exit(1);
        }
    }
}
