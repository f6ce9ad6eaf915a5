//! The desktop around the app, played on the test's D-Bus session bus: a
//! notification server that records what it is asked to show
//! (`org.freedesktop.Notifications`, the Desktop Notifications spec 1.2)
//! and a StatusNotifier watcher (`org.kde.StatusNotifierWatcher`) that the
//! app's tray item (libayatana-appindicator, through Tauri's tray-icon)
//! registers with. Through the registered item the tests read the tray's
//! menu (`com.canonical.dbusmenu`) and click its entries, as a panel does.

use dbus::arg::{PropMap, RefArg, Variant};
use dbus::blocking::Connection;
use dbus::channel::MatchingReceiver;
use dbus::message::MatchRule;
use dbus_crossroads::{Context, Crossroads, IfaceBuilder};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A notification as the app sent it.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The id the server answered with.
    pub id: u32,
    pub app_name: String,
    /// The icon named by the notification (the app's icon name).
    pub app_icon: String,
    pub summary: String,
    pub body: String,
    /// The buttons as the spec lists them: key, label, key, label.
    pub actions: Vec<String>,
}

#[derive(Default)]
struct Seen {
    notifications: Vec<Notification>,
    /// Presses to announce (`ActionInvoked`): notification id and key.
    presses: Vec<(u32, String)>,
    /// Registered tray items: (the sender's unique bus name, object path).
    items: Vec<(String, String)>,
}

/// The recording desktop; stops serving when dropped.
pub struct Desktop {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Desktop {
    /// Claim the notification and watcher names on the session bus and
    /// serve them on a thread of their own.
    pub fn start() -> Desktop {
        Self::launch(true)
    }

    /// A desktop whose panel shows no tray icons (stock GNOME): the
    /// notification server only, no StatusNotifier watcher.
    pub fn start_without_tray_host() -> Desktop {
        Self::launch(false)
    }

    fn launch(tray_host: bool) -> Desktop {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || serve(seen, stop, tray_host, ready_tx))
        };
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the recording desktop claims its bus names")
            .expect("the recording desktop claims its bus names");
        Desktop {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// The notifications shown so far.
    pub fn notifications(&self) -> Vec<Notification> {
        self.seen.lock().unwrap().notifications.clone()
    }

    /// The notifications shown so far with this summary.
    pub fn notifications_titled(&self, summary: &str) -> Vec<Notification> {
        self.notifications()
            .into_iter()
            .filter(|n| n.summary == summary)
            .collect()
    }

    /// Press a notification's button (or `default`: a click on the
    /// notification), as a person does on the desktop's bubble: the server
    /// announces `ActionInvoked` and closes it (`NotificationClosed`,
    /// reason 2: dismissed by the user).
    pub fn press(&self, notification: &Notification, key: &str) {
        assert!(
            key == "default" || notification.actions.iter().step_by(2).any(|k| k == key),
            "no button {key} on {notification:?}"
        );
        self.seen
            .lock()
            .unwrap()
            .presses
            .push((notification.id, key.to_owned()));
    }

    /// The tray items registered so far.
    pub fn items(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().items.clone()
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Served(Arc<Mutex<Seen>>);

type NotifyArgs = (String, u32, String, String, String, Vec<String>, PropMap, i32);

fn serve(
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    tray_host: bool,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let conn = match Connection::new_session() {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(format!("no session bus: {e}")));
            return;
        }
    };
    let names: &[&str] = if tray_host {
        &["org.freedesktop.Notifications", "org.kde.StatusNotifierWatcher"]
    } else {
        &["org.freedesktop.Notifications"]
    };
    for name in names {
        use dbus::blocking::stdintf::org_freedesktop_dbus::RequestNameReply;
        // Another owner (a desktop not yet dropped) answers Exists, not an
        // error: then this desktop would hear nothing.
        match conn.request_name(*name, false, true, true) {
            Ok(RequestNameReply::PrimaryOwner) => {}
            Ok(other) => {
                let _ = ready.send(Err(format!("cannot own {name}: {other:?}")));
                return;
            }
            Err(e) => {
                let _ = ready.send(Err(format!("cannot own {name}: {e}")));
                return;
            }
        }
    }
    let mut cr = Crossroads::new();
    let notifications = cr.register("org.freedesktop.Notifications", |b: &mut IfaceBuilder<Served>| {
        b.method(
            "Notify",
            (
                "app_name",
                "replaces_id",
                "app_icon",
                "summary",
                "body",
                "actions",
                "hints",
                "expire_timeout",
            ),
            ("id",),
            |_: &mut Context, s: &mut Served, (app_name, _, app_icon, summary, body, actions, _, _): NotifyArgs| {
                let mut seen = s.0.lock().unwrap();
                let id = seen.notifications.len() as u32 + 1;
                seen.notifications.push(Notification {
                    id,
                    app_name,
                    app_icon,
                    summary,
                    body,
                    actions,
                });
                Ok((id,))
            },
        );
        b.method("GetCapabilities", (), ("capabilities",), |_, _, ()| {
            Ok((vec!["body".to_owned(), "actions".to_owned()],))
        });
        b.method(
            "GetServerInformation",
            (),
            ("name", "vendor", "version", "spec_version"),
            |_, _, ()| {
                Ok((
                    "recorder".to_owned(),
                    "session-manager tests".to_owned(),
                    "1".to_owned(),
                    "1.2".to_owned(),
                ))
            },
        );
        b.method("CloseNotification", ("id",), (), |_, _, (_id,): (u32,)| Ok(()));
    });
    let watcher = cr.register("org.kde.StatusNotifierWatcher", |b: &mut IfaceBuilder<Served>| {
        b.method(
            "RegisterStatusNotifierItem",
            ("service",),
            (),
            |ctx: &mut Context, s: &mut Served, (service,): (String,)| {
                let sender = ctx.message().sender().map(|n| n.to_string()).unwrap_or_default();
                // An item names its object path, or its bus name (then the
                // path is the spec's default).
                let (bus, path) = if service.starts_with('/') {
                    (sender, service)
                } else {
                    (service, "/StatusNotifierItem".to_owned())
                };
                s.0.lock().unwrap().items.push((bus, path));
                Ok(())
            },
        );
        b.method(
            "RegisterStatusNotifierHost",
            ("service",),
            (),
            |_, _, (_,): (String,)| Ok(()),
        );
        b.property("IsStatusNotifierHostRegistered").get(|_, _| Ok(true));
        b.property("ProtocolVersion").get(|_, _| Ok(0i32));
        b.property("RegisteredStatusNotifierItems").get(|_, s: &mut Served| {
            Ok(s.0
                .lock()
                .unwrap()
                .items
                .iter()
                .map(|(bus, path)| format!("{bus}{path}"))
                .collect::<Vec<_>>())
        });
    });
    cr.insert("/org/freedesktop/Notifications", &[notifications], Served(seen.clone()));
    cr.insert("/StatusNotifierWatcher", &[watcher], Served(seen.clone()));
    conn.start_receive(
        MatchRule::new_method_call(),
        Box::new(move |msg, conn| {
            let _ = cr.handle_message(msg, conn);
            true
        }),
    );
    let _ = ready.send(Ok(()));
    while !stop.load(Ordering::SeqCst) {
        if conn.process(Duration::from_millis(100)).is_err() {
            break;
        }
        let presses = std::mem::take(&mut seen.lock().unwrap().presses);
        for (id, key) in presses {
            let from = |member: &str| {
                dbus::Message::signal(
                    &"/org/freedesktop/Notifications".into(),
                    &"org.freedesktop.Notifications".into(),
                    &member.into(),
                )
            };
            use dbus::channel::Sender;
            let _ = conn.send(from("ActionInvoked").append2(id, key));
            let _ = conn.send(from("NotificationClosed").append2(id, 2u32));
        }
    }
}

/// One entry of a tray menu.
#[derive(Debug, Clone)]
pub struct MenuEntry {
    pub id: i32,
    pub label: String,
    pub enabled: bool,
}

/// A registered tray item, read over the bus as a panel reads it.
pub struct TrayItem {
    conn: dbus::blocking::SyncConnection,
    bus: String,
    path: String,
}

impl TrayItem {
    pub fn new(bus: &str, path: &str) -> TrayItem {
        TrayItem {
            conn: dbus::blocking::SyncConnection::new_session().expect("the session bus"),
            bus: bus.to_owned(),
            path: path.to_owned(),
        }
    }

    fn menu_path(&self) -> Result<dbus::Path<'static>, dbus::Error> {
        use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
        let item = self.conn.with_proxy(&self.bus, &self.path, Duration::from_secs(5));
        item.get("org.kde.StatusNotifierItem", "Menu")
    }

    /// The menu's top-level entries (separators have no label).
    pub fn menu(&self) -> Result<Vec<MenuEntry>, dbus::Error> {
        let menu_path = self.menu_path()?;
        let menu = self.conn.with_proxy(&self.bus, menu_path, Duration::from_secs(5));
        type Layout = (i32, PropMap, Vec<Variant<Box<dyn RefArg>>>);
        let (_revision, (_, _, children)): (u32, Layout) = menu.method_call(
            "com.canonical.dbusmenu",
            "GetLayout",
            (0i32, 1i32, Vec::<String>::new()),
        )?;
        let mut entries = Vec::new();
        for child in &children {
            // Each child is a variant holding the struct (id, properties,
            // children); some readers give it one more level.
            let Some(mut fields) = child.0.as_iter() else { continue };
            let mut first = fields.next();
            if first.is_some_and(|f| f.as_i64().is_none()) {
                let Some(inner) = first.and_then(|f| f.as_iter()) else {
                    continue;
                };
                fields = inner;
                first = fields.next();
            }
            let id = first.and_then(|v| v.as_i64()).unwrap_or(-1) as i32;
            let (mut label, mut enabled) = (String::new(), true);
            if let Some(mut kv) = fields.next().and_then(|p| p.as_iter()) {
                while let (Some(k), Some(v)) = (kv.next(), kv.next()) {
                    let text = v.as_str().or_else(|| v.as_iter()?.next()?.as_str());
                    let number = v.as_i64().or_else(|| v.as_iter()?.next()?.as_i64());
                    match k.as_str() {
                        Some("label") => label = text.unwrap_or_default().to_owned(),
                        Some("enabled") => enabled = number.is_none_or(|b| b != 0),
                        _ => {}
                    }
                }
            }
            entries.push(MenuEntry { id, label, enabled });
        }
        Ok(entries)
    }

    /// The icon the item shows, as a panel loads it: the file its
    /// `IconName` names (a path, or a name in `IconThemePath`), decoded to
    /// (width, height, RGBA).
    pub fn icon(&self) -> Result<(u32, u32, Vec<u8>), String> {
        use dbus::blocking::stdintf::org_freedesktop_dbus::Properties;
        let item = self.conn.with_proxy(&self.bus, &self.path, Duration::from_secs(5));
        let name: String = item
            .get("org.kde.StatusNotifierItem", "IconName")
            .map_err(|e| format!("IconName: {e}"))?;
        let mut file = std::path::PathBuf::from(&name);
        if !file.is_absolute() {
            let dir: String = item
                .get("org.kde.StatusNotifierItem", "IconThemePath")
                .map_err(|e| format!("IconThemePath: {e}"))?;
            file = std::path::Path::new(&dir).join(format!("{name}.png"));
        }
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
            return Err(format!("{}: not 8-bit RGBA ({:?})", file.display(), info.color_type));
        }
        buf.truncate(info.buffer_size());
        Ok((info.width, info.height, buf))
    }

    /// The colour at the centre of the icon's state dot (its lower right
    /// quarter, as `session-manager`'s `tray::icon_for` draws it).
    pub fn dot(&self) -> Result<[u8; 3], String> {
        let (w, h, rgba) = self.icon()?;
        let r = w.min(h) as f32 * 0.22;
        let (x, y) = ((w as f32 - r - 1.0) as u32, (h as f32 - r - 1.0) as u32);
        let i = ((y * w + x) * 4) as usize;
        Ok([rgba[i], rgba[i + 1], rgba[i + 2]])
    }

    /// Click the entry with this label, as a panel does.
    pub fn click(&self, label: &str) -> Result<(), dbus::Error> {
        let entry = self
            .menu()?
            .into_iter()
            .find(|e| e.label == label)
            .ok_or_else(|| dbus::Error::new_failed(&format!("no menu entry labelled {label}")))?;
        let menu = self
            .conn
            .with_proxy(&self.bus, self.menu_path()?, Duration::from_secs(5));
        menu.method_call::<(), _, _, _>(
            "com.canonical.dbusmenu",
            "Event",
            (entry.id, "clicked", Variant(0i32), 0u32),
        )
    }
}
