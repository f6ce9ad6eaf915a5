//! The desktop notifications ([`crate::backend::notices`] says which) with
//! their buttons, and the clock that keeps the tray and them current. They
//! need a notification server, not a tray: a desktop whose panel shows no
//! tray icons (stock GNOME) still gets every one.

use crate::backend::{next_look, notices, Backend, Notice, NoticeAction};
use session_core::SessionView;
use std::sync::{Arc, Mutex};
use tauri::{AppHandle, Emitter, Manager, Runtime};

/// What the notifications were worked out from, and which were shown.
struct Shown {
    /// Each profile's view the last notifications were worked out from.
    last: Mutex<std::collections::HashMap<String, SessionView>>,
    /// The notifications shown (their `once` keys, the newest last).
    keys: Mutex<std::collections::VecDeque<String>>,
    /// The window's title as last set.
    title: Mutex<String>,
}

/// How many notifications are remembered as shown.
const SHOWN_KEPT: usize = 64;

/// Start: remember `backend`'s view as the one before the next, and keep
/// the tray's time and the notifications current when nothing else happens
/// (the status line twice a minute, a warning when it falls due).
pub fn start<R: Runtime>(app: &AppHandle<R>, backend: &Arc<Backend>) {
    app.manage(Shown {
        last: Mutex::new(backend.views().into_iter().map(|v| (v.profile.clone(), v)).collect()),
        keys: Mutex::new(Default::default()),
        title: Mutex::default(),
    });
    let handle = app.clone();
    let backend = backend.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            // The soonest any profile's next warning falls due.
            let now = chrono::Utc::now();
            let wait = backend
                .views()
                .iter()
                .map(|v| next_look(v, now, std::time::Duration::from_secs(30)))
                .min()
                .unwrap_or(std::time::Duration::from_secs(30));
            tokio::time::sleep(wait).await;
            crate::tray::update(&handle, &backend.views());
            for view in backend.views() {
                update(&handle, &view);
            }
        }
    });
}

/// Show the notifications `view` calls for that were not shown yet.
pub fn update<R: Runtime>(app: &AppHandle<R>, view: &SessionView) {
    let Some(shown) = app.try_state::<Shown>() else {
        return;
    };
    let before = shown
        .last
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(view.profile.clone(), view.clone());
    for notice in notices(before.as_ref(), view, chrono::Utc::now()) {
        let mut keys = shown.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.contains(&notice.once) {
            continue;
        }
        if keys.len() == SHOWN_KEPT {
            keys.pop_front();
        }
        keys.push_back(notice.once.clone());
        drop(keys);
        notify_with_action(app, notice);
    }
}

/// Show a notice with its button; a press does what the button says.
fn notify_with_action<R: Runtime>(app: &AppHandle<R>, notice: Notice) {
    let handle = app.clone();
    let on_action = move |key: &str| {
        // "default" is a click on the notification itself.
        let action = NoticeAction::from_key(key).unwrap_or(NoticeAction::Show);
        act(&handle, action);
    };
    #[cfg(target_os = "linux")]
    crate::desktop::notify_with_action(notice.summary, &notice.body, notice.action, on_action);
    #[cfg(not(target_os = "linux"))]
    {
        // The notification plugin has no buttons on desktop systems: the
        // window's banner has them (untested here).
        let _ = on_action;
        notify(app, notice.summary, &notice.body);
    }
}

/// What a notification's button does.
pub fn act<R: Runtime>(app: &AppHandle<R>, action: NoticeAction) {
    match action {
        NoticeAction::StaySignedIn => {
            let app = app.clone();
            tauri::async_runtime::spawn(async move {
                if let Ok(backend) = app.state::<crate::Started>().get().await {
                    backend.touch();
                }
            });
        }
        NoticeAction::SignInAgain => {
            crate::show_window(app);
            // The window starts the sign-in as its own button does.
            let _ = app.emit("notice://sign-in-again", ());
        }
        NoticeAction::Show => crate::show_window(app),
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

/// The shell's reaction to a new view of any profile: the window's title
/// (the selected profile's), the tray (every profile), notifications.
pub fn on_view<R: Runtime>(app: &AppHandle<R>, view: &SessionView) {
    let backend = app.try_state::<crate::Started>().and_then(|s| s.ready());
    let selected = backend.as_ref().map(|b| b.view());
    // Only a new title goes to the window (a trip to the main thread;
    // every profile's views come here).
    let title = crate::window_title(selected.as_ref().unwrap_or(view));
    let new_title = app.try_state::<Shown>().is_none_or(|shown| {
        let mut last = shown.title.lock().unwrap_or_else(|e| e.into_inner());
        let new = *last != title;
        last.clone_from(&title);
        new
    });
    if let Some(w) = app.get_webview_window("main").filter(|_| new_title) {
        let _ = w.set_title(&title);
    }
    let views = backend.map(|b| b.views()).unwrap_or_else(|| vec![view.clone()]);
    crate::tray::update(app, &views);
    update(app, view);
}
