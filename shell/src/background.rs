//! The app in the background: closing the window (the window manager's
//! close, Ctrl+W) hides it and the session goes on being renewed; Quit (the
//! tray menu, Ctrl+Q) ends the app. The first time the window goes away the
//! app says once, in a notification, where it went: a marker file in the
//! data directory remembers that it did.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use tauri::{AppHandle, Manager, Runtime};

/// The marker file, in the data directory, that says the person was told.
const TOLD: &str = "told-where-the-window-went";

/// What the first close says.
pub const SUMMARY: &str = "Session Manager is still running";
pub const BODY: &str = "Your session is kept renewed in the background. Open the window from the tray icon; quit from its menu or with Ctrl+Q.";
/// The same where no panel shows tray icons: the window is minimized.
pub const BODY_NO_TRAY: &str = "Your session is kept renewed in the background. This desktop shows no tray icons, so the window is minimized: open it from the taskbar or dock, or start Session Manager again. Quit with Ctrl+Q.";

/// Whether the person has been told where the window went.
pub struct Background {
    marker: Option<PathBuf>,
    told: AtomicBool,
}

impl Background {
    /// For an app whose data directory is `data_dir` (none: told at every
    /// run, since nothing can remember it).
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        let marker = data_dir.map(|d| d.join(TOLD));
        let told = marker.as_ref().is_some_and(|m| m.exists());
        Self {
            marker,
            told: AtomicBool::new(told),
        }
    }

    /// True the first time only (and remembered across runs when the data
    /// directory can be written).
    fn first_time(&self) -> bool {
        if self.told.swap(true, Ordering::SeqCst) {
            return false;
        }
        if let Some(marker) = &self.marker {
            // 0600 and never through a link, like every file of the data
            // directory (sessionctl doctor fails a file others can read).
            let mut create = std::fs::OpenOptions::new();
            create.write(true).create(true);
            if let Err(e) = session_core::os::paths::open_private(marker, &mut create) {
                tracing::info!(error = %e, "cannot remember that the first close was explained");
            }
        }
        true
    }
}

/// Put the main window away; the app and its renewals go on. With a tray
/// a panel shows, the window is hidden (the tray brings it back). With a
/// tray icon nobody sees (no StatusNotifier host: stock GNOME), a hidden
/// window could come back only by starting the app again, so it is
/// minimized instead: it stays in the taskbar or dock. Without a tray icon
/// at all, the window closes for real and the app ends.
pub fn close_window<R: Runtime>(app: &AppHandle<R>) {
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    if !crate::tray::exists(app) {
        let _ = window.destroy();
        return;
    }
    let body = if tray_shown() {
        let _ = window.hide();
        BODY
    } else {
        let _ = window.minimize();
        BODY_NO_TRAY
    };
    if app.try_state::<Background>().is_some_and(|b| b.first_time()) {
        crate::notices::notify(app, SUMMARY, body);
    }
}

/// Whether a panel shows the tray icon (on Linux, a StatusNotifier host on
/// the bus; elsewhere the platform's tray is always there).
fn tray_shown() -> bool {
    #[cfg(target_os = "linux")]
    return crate::desktop::tray_host_present();
    #[cfg(not(target_os = "linux"))]
    return true;
}

/// The window manager asked the main window to close: hide it instead.
pub fn on_window_event<R: Runtime>(window: &tauri::Window<R>, event: &tauri::WindowEvent) {
    if let tauri::WindowEvent::CloseRequested { api, .. } = event {
        if window.label() == "main" && crate::tray::exists(window.app_handle()) {
            api.prevent_close();
            close_window(window.app_handle());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_close_is_explained_once_and_remembered_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let b = Background::new(Some(dir.path().to_owned()));
        assert!(b.first_time());
        assert!(!b.first_time());
        // The next run of the app has been told already.
        assert!(!Background::new(Some(dir.path().to_owned())).first_time());
        // The marker is private, as doctor wants every data file.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOLD)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another data directory has not.
        let other = tempfile::tempdir().unwrap();
        assert!(Background::new(Some(other.path().to_owned())).first_time());
    }

    #[test]
    fn without_a_data_directory_it_is_explained_once_per_run() {
        let b = Background::new(None);
        assert!(b.first_time());
        assert!(!b.first_time());
    }
}
