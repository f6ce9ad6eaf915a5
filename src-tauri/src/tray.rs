//! The tray icon (state, time left, Sign out) and the desktop notification
//! when a session is about to expire and renewing it fails.

use crate::backend::{expiry_warning, session_end_warning, Backend};
use session_core::SessionView;
use std::sync::{Arc, Mutex};
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

/// The tray's status line for a view: the engine's headline (what the
/// window and `sessionctl status` say) and, while there is a session, when
/// it really ends (the view's `session_end`, the time the window shows).
/// No seconds: the line is redrawn twice a minute.
pub fn status_line(view: &SessionView, now: chrono::DateTime<chrono::Utc>) -> String {
    match &view.session_end {
        Some(end) => format!(
            "{} · {} · ends {}",
            view.profile,
            view.headline.text,
            session_core::view::local_clock_time(end.at, now)
        ),
        None => format!("{} · {}", view.profile, view.headline.text),
    }
}

struct TrayState<R: Runtime> {
    status: MenuItem<R>,
    sign_out: MenuItem<R>,
    warned_session: Mutex<Option<String>>,
    /// The session warned that its real end is near (once per session).
    warned_end: Mutex<Option<String>>,
}

/// Create the tray icon with its menu.
pub fn create<R: Runtime>(app: &AppHandle<R>, backend: &Arc<Backend>) -> tauri::Result<()> {
    let view = &backend.view();
    let status = MenuItem::with_id(
        app,
        "status",
        status_line(view, chrono::Utc::now()),
        false,
        None::<&str>,
    )?;
    let show = MenuItem::with_id(app, "show", "Show window", true, None::<&str>)?;
    let sign_out = MenuItem::with_id(app, "sign_out", "Sign out", view.state.has_session(), None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(
        app,
        &[&status, &PredefinedMenuItem::separator(app)?, &show, &sign_out, &quit],
    )?;
    let for_menu = backend.clone();
    let mut tray = TrayIconBuilder::with_id("main")
        .menu(&menu)
        .tooltip("Session Manager")
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "show" => {
                if let Some(w) = app.get_webview_window("main") {
                    let _ = w.show();
                    let _ = w.set_focus();
                }
            }
            "sign_out" => {
                let backend = for_menu.clone();
                tauri::async_runtime::spawn(async move {
                    let _ = backend.sign_out().await;
                });
            }
            "quit" => app.exit(0),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(TrayState {
        status,
        sign_out,
        warned_session: Mutex::new(None),
        warned_end: Mutex::new(None),
    });
    // The time left moves: refresh the status line twice a minute (no IPC).
    let handle = app.clone();
    let backend = backend.clone();
    tauri::async_runtime::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            tick.tick().await;
            update(&handle, &backend.view());
        }
    });
    Ok(())
}

/// Whether the tray icon was made (a hidden window can be shown from it).
pub fn exists<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.try_state::<TrayState<R>>().is_some()
}

fn update<R: Runtime>(app: &AppHandle<R>, view: &SessionView) {
    let now = chrono::Utc::now();
    if let Some(tray) = app.try_state::<TrayState<R>>() {
        let _ = tray.status.set_text(status_line(view, now));
        let _ = tray.sign_out.set_enabled(view.state.has_session());
        if let Some(message) = expiry_warning(view, now) {
            let mut warned = tray.warned_session.lock().unwrap_or_else(|e| e.into_inner());
            if *warned != view.session_id {
                *warned = view.session_id.clone();
                notify(app, "Session about to expire", &message);
            }
        }
        if let Some(message) = session_end_warning(view, now) {
            let mut warned = tray.warned_end.lock().unwrap_or_else(|e| e.into_inner());
            if *warned != view.session_id {
                *warned = view.session_id.clone();
                notify(app, "Session ending soon", &message);
            }
        }
    }
}

/// Show a desktop notification (none shown is not an error).
#[cfg(target_os = "linux")]
pub fn notify<R: Runtime>(_: &AppHandle<R>, summary: &str, body: &str) {
    crate::desktop::notify(summary, body);
}

/// Show a desktop notification (none shown is not an error).
#[cfg(not(target_os = "linux"))]
pub fn notify<R: Runtime>(app: &AppHandle<R>, summary: &str, body: &str) {
    use tauri_plugin_notification::NotificationExt;
    // No notification service is not an error.
    let _ = app.notification().builder().title(summary).body(body).show();
}

/// The shell's reaction to a new view: window title, tray, notification.
pub fn on_view<R: Runtime>(app: &AppHandle<R>, view: &SessionView) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.set_title(&crate::window_title(view));
    }
    update(app, view);
}
