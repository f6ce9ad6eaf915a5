//! What the shell asks of the Linux desktop: one instance per keychain
//! namespace and notifications with a button (both over the session bus), and how
//! WebKitGTK paints the window.
//!
//! Both go through libdbus (the `dbus` crate the engine already links for
//! the keychain and logind), not through Tauri's single-instance and
//! notification plugins: on Linux those bring two versions of zbus (5 and
//! 6) and an async executor of their own, 42 crates in all, for two method
//! calls. Other platforms keep the plugins (`lib.rs`).
//!
//! A second launch asks for the instance's well-known name with
//! `DO_NOT_QUEUE`. The bus gives it to one process only, so two launches at
//! once cannot both win; the loser calls `Show` on the owner and exits.
//! The name goes when the owner's connection closes, with the process, so
//! a crashed instance leaves nothing behind that blocks the next launch.

use dbus::blocking::stdintf::org_freedesktop_dbus::RequestNameReply;
use dbus::blocking::Connection;
use dbus::channel::{MatchingReceiver, Sender};
use dbus::message::MatchRule;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const PATH: &str = "/dev/session_manager/Instance";
const INTERFACE: &str = "dev.session_manager.Instance";
const SHOW: &str = "Show";
/// How long a second launch waits for the first to answer `Show`, and a
/// notification for the notification server.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What happened when this process asked to be the only instance.
pub enum Claim {
    /// This process is the instance; keep the value for as long as it runs.
    First(Instance),
    /// Another process is the instance and has been asked to show itself.
    HandedOver,
    /// Another process owns the name but did not answer: starting beside it
    /// could refresh with the same token, so this one must not start.
    Unanswered(String),
    /// No session bus: other instances cannot be found. The app starts.
    NoBus(String),
}

/// The running instance: answers `Show` from later launches.
pub struct Instance {
    on_show: Arc<OnceLock<Box<dyn Fn() + Send + Sync>>>,
}

impl Instance {
    /// What to do when a later launch asks this instance to show itself.
    /// Calls that arrive before this is set are answered and do nothing
    /// (the window is opening then anyway).
    pub fn on_show(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_show.set(Box::new(f));
    }
}

/// Ask the session bus for `name`.
pub fn claim(name: &str) -> Claim {
    claim_within(name, CALL_TIMEOUT)
}

fn claim_within(name: &str, timeout: Duration) -> Claim {
    let connection = match Connection::new_session() {
        Ok(c) => c,
        Err(e) => return Claim::NoBus(describe(&e)),
    };
    match connection.request_name(name, false, false, true) {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => serve(connection),
        Ok(RequestNameReply::Exists | RequestNameReply::InQueue) => {
            let proxy = connection.with_proxy(name, PATH, timeout);
            match proxy.method_call::<(), _, _, _>(INTERFACE, SHOW, ()) {
                Ok(()) => Claim::HandedOver,
                Err(e) => Claim::Unanswered(describe(&e)),
            }
        }
        Err(e) => Claim::NoBus(describe(&e)),
    }
}

fn serve(connection: Connection) -> Claim {
    let on_show: Arc<OnceLock<Box<dyn Fn() + Send + Sync>>> = Arc::default();
    let handler = on_show.clone();
    let rule = MatchRule::new_method_call()
        .with_path(PATH)
        .with_interface(INTERFACE)
        .with_member(SHOW);
    connection.start_receive(
        rule,
        Box::new(move |call, conn| {
            if let Some(show) = handler.get() {
                show();
            }
            let _ = conn.send(call.method_return());
            true
        }),
    );
    // Other calls to this connection get libdbus's UnknownMethod answer
    // from `process` itself. The thread lives as long as the process (the
    // name goes with it).
    let spawned = std::thread::Builder::new()
        .name("instance-bus".into())
        .spawn(move || while connection.process(Duration::from_secs(3600)).is_ok() {});
    match spawned {
        Ok(_) => Claim::First(Instance { on_show }),
        Err(e) => Claim::NoBus(format!("cannot start the bus thread: {e}")),
    }
}

/// Paint the page without accelerated compositing.
///
/// The page is a small form whose only motion is the countdown's text once a
/// second. Composited, WebKitGTK renders every frame through GL and hands it
/// over as a DMA-BUF; where there is no GPU (a VM, a remote session, Xvfb)
/// Mesa does that on the CPU, for the whole window. Painted directly, it
/// redraws the changed rectangle. Measured with the one-page app and a 1 Hz
/// text tick under Xvfb, 30 s each: 1.73 % of a core composited, 0.56 %
/// with this policy (`bench/`, docs/benchmarks.md). It is also what
/// `WEBKIT_DISABLE_COMPOSITING_MODE=1` does, the usual advice for blank
/// WebKitGTK windows on some GPU drivers.
///
/// It is set through that variable, before WebKit starts, and not through
/// the web view's settings (`HardwareAccelerationPolicy::Never`) as it was:
/// with WebKitGTK 2.50.6 that setting, applied to a window built hidden
/// (`--hidden`, the autostart entry) and shown later, crashed the web
/// process in about one start in three (a null pointer inside
/// libwebkit2gtk; s28 failed with "session deleted because of page crash
/// or hang", the kernel log showed the segfault). With the variable, 21
/// runs of s28 passed, and the idle CPU is the same. A value the person
/// set is kept.
pub fn paint_without_compositing() {
    const VAR: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    if std::env::var_os(VAR).is_none() {
        // Single-threaded still: called first thing in `run`.
        std::env::set_var(VAR, "1");
    }
}

/// Show a notification through `org.freedesktop.Notifications`, on a thread
/// of its own (the server answers when it likes). Without a session bus or
/// a notification server (a bare X server) there is nothing to show on, and
/// that is not an error: the window and the tray show the same state.
pub fn notify(summary: &str, body: &str) {
    spawn_notification(summary, body, None);
}

/// The button a notification offers and what to run when it is pressed
/// (given the key pressed: the action's, or `default` for a click on the
/// notification itself).
pub type OnAction = Box<dyn FnOnce(&str) + Send>;

/// [`notify`] with a button. The notification's thread listens for the
/// press (`ActionInvoked`) until the notification is closed, or for an hour
/// at most (a notification kept in the desktop's list after that shows the
/// window only through its app entry).
pub fn notify_with_action(
    summary: &str,
    body: &str,
    action: crate::backend::NoticeAction,
    on_action: impl FnOnce(&str) + Send + 'static,
) {
    spawn_notification(summary, body, Some((action, Box::new(on_action))));
}

/// How long a notification's thread waits for its button.
const ACTION_WAIT: Duration = Duration::from_secs(3600);

fn spawn_notification(summary: &str, body: &str, action: Option<(crate::backend::NoticeAction, OnAction)>) {
    let (summary, body) = (summary.to_owned(), body.to_owned());
    let sent = std::thread::Builder::new().name("notify".into()).spawn(move || {
        if let Err(e) = show_notification(&summary, &body, action) {
            tracing::info!(error = %e, "no desktop notification shown");
        }
    });
    if let Err(e) = sent {
        tracing::info!(error = %e, "no desktop notification shown");
    }
}

/// What the notification server said about our notifications.
enum Heard {
    Pressed(u32, String),
    Closed(u32),
}

/// Whether a panel shows tray icons: a StatusNotifier watcher is on the
/// session bus and says a host (a panel) registered with it. Stock GNOME
/// has neither (its AppIndicator extension adds both); Tauri's tray icon is
/// made either way, and without a host nobody sees it. Asked at each close
/// (a panel can come and go while the app runs); no bus, no watcher or no
/// answer within a second is "no".
pub fn tray_host_present() -> bool {
    use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
    let Ok(connection) = Connection::new_session() else {
        return false;
    };
    connection
        .with_proxy(
            "org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            Duration::from_secs(1),
        )
        .get::<bool>("org.kde.StatusNotifierWatcher", "IsStatusNotifierHostRegistered")
        .unwrap_or(false)
}

fn show_notification(
    summary: &str,
    body: &str,
    action: Option<(crate::backend::NoticeAction, OnAction)>,
) -> Result<(), String> {
    use dbus::arg::{PropMap, RefArg, Variant};
    let connection = Connection::new_session().map_err(|e| describe(&e))?;
    // Listen before asking, so that no press can come before the listener.
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    if action.is_some() {
        let into = heard.clone();
        connection
            .add_match(
                MatchRule::new_signal("org.freedesktop.Notifications", "ActionInvoked"),
                move |(id, key): (u32, String), _, _| {
                    into.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Heard::Pressed(id, key));
                    true
                },
            )
            .map_err(|e| describe(&e))?;
        let into = heard.clone();
        connection
            .add_match(
                MatchRule::new_signal("org.freedesktop.Notifications", "NotificationClosed"),
                move |(id, _reason): (u32, u32), _, _| {
                    into.lock().unwrap_or_else(|e| e.into_inner()).push(Heard::Closed(id));
                    true
                },
            )
            .map_err(|e| describe(&e))?;
    }
    let proxy = connection.with_proxy(
        "org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        CALL_TIMEOUT,
    );
    let mut hints = PropMap::new();
    // Lets the desktop group it under the app's entry and icon.
    hints.insert(
        "desktop-entry".into(),
        Variant(Box::new(crate::APP_ID.to_owned()) as Box<dyn RefArg>),
    );
    // The spec's list: key, label, key, label; "default" is the click on
    // the notification itself (shows the window).
    let buttons: Vec<String> = match &action {
        Some((a, _)) => vec!["default".into(), "Show".into(), a.key().into(), a.label().into()],
        None => Vec::new(),
    };
    let (id,): (u32,) = proxy
        .method_call(
            "org.freedesktop.Notifications",
            "Notify",
            (
                "Session Manager",
                0u32,
                crate::APP_ID,
                summary,
                body,
                buttons,
                hints,
                -1i32,
            ),
        )
        .map_err(|e| describe(&e))?;
    let Some((_, on_action)) = action else {
        return Ok(());
    };
    let deadline = std::time::Instant::now() + ACTION_WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        connection.process(left).map_err(|e| describe(&e))?;
        let events = std::mem::take(&mut *heard.lock().unwrap_or_else(|e| e.into_inner()));
        for event in events {
            match event {
                Heard::Pressed(pressed, key) if pressed == id => {
                    on_action(&key);
                    return Ok(());
                }
                Heard::Closed(closed) if closed == id => return Ok(()),
                _ => {}
            }
        }
    }
}

fn describe(e: &dbus::Error) -> String {
    format!("{}: {}", e.name().unwrap_or("D-Bus error"), e.message().unwrap_or(""))
}

/// Put `text` on the clipboard (GTK's, on the main thread) and offer it to
/// a clipboard manager so it outlives the app. True once it is there.
/// WebKitGTK's `navigator.clipboard.writeText` and `execCommand('copy')`
/// refused a real click's copy (the UX review saw the clipboard stay empty),
/// so "Copy diagnostics" goes through the shell.
pub async fn to_clipboard<R: tauri::Runtime>(app: &tauri::AppHandle<R>, text: String) -> bool {
    let (done, copied) = tokio::sync::oneshot::channel();
    let queued = app.run_on_main_thread(move || {
        let clipboard = gtk::Clipboard::get(&gtk::gdk::SELECTION_CLIPBOARD);
        clipboard.set_text(&text);
        clipboard.store();
        let _ = done.send(true);
    });
    queued.is_ok() && copied.await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    //! Against the real session bus (the test command runs every test in a
    //! `dbus-run-session`).
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn unique(name: &str) -> String {
        format!("dev.session_manager.test.{name}.p{}", std::process::id())
    }

    #[test]
    fn the_second_claim_hands_over_to_the_first_which_is_asked_to_show() {
        let name = unique("handover");
        let Claim::First(first) = claim(&name) else {
            panic!("the first claim did not get the name")
        };
        let shown = Arc::new(AtomicUsize::new(0));
        let counter = shown.clone();
        first.on_show(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        for launch in 1..=2 {
            assert!(
                matches!(claim(&name), Claim::HandedOver),
                "launch {launch} was not handed over"
            );
            assert_eq!(shown.load(Ordering::SeqCst), launch);
        }
    }

    #[test]
    fn launches_at_once_leave_exactly_one_instance() {
        let name = unique("race");
        let claims: Vec<Claim> = std::thread::scope(|s| {
            let launches: Vec<_> = (0..8).map(|_| s.spawn(|| claim(&name))).collect();
            launches.into_iter().map(|l| l.join().unwrap()).collect()
        });
        let first = claims.iter().filter(|c| matches!(c, Claim::First(_))).count();
        let handed = claims.iter().filter(|c| matches!(c, Claim::HandedOver)).count();
        assert_eq!((first, handed), (1, 7));
    }

    #[test]
    fn an_owner_that_does_not_answer_stops_the_launch() {
        let name = unique("hung");
        // Owns the name and never reads its messages: a hung instance.
        let hung = Connection::new_session().unwrap();
        assert_eq!(
            hung.request_name(name.as_str(), false, false, true).unwrap(),
            RequestNameReply::PrimaryOwner
        );
        match claim_within(&name, Duration::from_millis(300)) {
            Claim::Unanswered(why) => assert!(why.contains("NoReply"), "{why}"),
            _ => panic!("a launch beside a hung instance was let through"),
        }
        // When the hung instance goes (crashes), the name goes with it.
        drop(hung);
        assert!(matches!(claim(&name), Claim::First(_)));
    }
}
