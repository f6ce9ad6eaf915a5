//! The end-to-end harness: the real app binary, driven through `tauri-driver`
//! and WebKitWebDriver, against a Playground of the scenario's own.
//!
//! A [`Scenario`] gets a fresh data directory, a fresh keychain namespace,
//! its own Playground and its own `tauri-driver` (whose environment the app
//! inherits). Scenarios take a file lock, so they run one at a time whatever
//! the test runner does. Waits poll explicit conditions with a timeout. When
//! a scenario fails, a screenshot and the app's log are saved under
//! `target/e2e-artifacts/<scenario>/` and the failure message names them.
//!
//! Needs: `DISPLAY` (Xvfb or a real display), `tauri-driver` and
//! `WebKitWebDriver` on PATH, a built `target/debug/session-manager`, and a
//! Secret Service on the session bus. `scripts/test.sh` provides all of them.

use fantoccini::{Client, ClientBuilder, Locator};
use playground::{Options, Playground};
use session_core::storage::vault::{KeyringStore, SecretStore};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::time::Instant;

pub use fantoccini;

pub mod a11y;
pub mod desktop;
pub mod wm;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// The app binary (built by `cargo build -p session-manager`, which
/// `scripts/test.sh` does first).
pub fn app_binary() -> PathBuf {
    let p = std::env::var_os("SESSION_MANAGER_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/debug/session-manager"));
    assert!(
        p.is_file(),
        "the app is not built at {}: run `cargo build -p session-manager` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The `sessionctl` binary built beside the app.
pub fn sessionctl_binary() -> PathBuf {
    let p = app_binary().with_file_name("sessionctl");
    assert!(
        p.is_file(),
        "sessionctl is not built at {}: run `cargo build -p sessionctl` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// What the X clipboard holds, as another program reads it (`xclip`, which
/// `scripts/test.sh` installs).
pub fn clipboard_text() -> String {
    let out = std::process::Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .output()
        .expect("xclip runs (scripts/test.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` distinct ports that are free now, from below the kernel's ephemeral
/// range (32768 to 60999 on Linux). A port found by binding port 0 comes
/// from that range, where the kernel hands ports to outgoing connections at
/// any moment, and two such calls in a row may even return the same one:
/// either way, tauri-driver or WebKitWebDriver could then fail to listen
/// ("Unable to listen for HTTP server", seen once in the package step's
/// first-run check). Below the range only another listener can take a
/// port; each candidate is bound to check it, and all are held until all
/// are chosen, so they differ.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let mut held = Vec::with_capacity(N);
    let mut pick = uuid::Uuid::new_v4().as_u128();
    while held.len() < N {
        if pick == 0 {
            pick = uuid::Uuid::new_v4().as_u128();
        }
        let port = 20_000 + (pick % 12_000) as u16;
        pick /= 12_000;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// Rewrites a Playground's config text.
pub type ConfigEdit = Box<dyn Fn(&Playground, String) -> String + Send>;

/// How a scenario starts.
pub struct Setup {
    pub playground: Options,
    /// Rewrites the Playground's config before the app reads it.
    pub edit_config: ConfigEdit,
    /// Extra environment for the app (through tauri-driver).
    pub env: Vec<(String, String)>,
    /// Give the app no config file, so it runs its embedded Playground (the
    /// scenario's own Playground then goes unused).
    pub embedded: bool,
    /// Play the desktop on the bus: record notifications and take the
    /// tray's registration ([`desktop::Desktop`]).
    pub desktop: bool,
    /// With `desktop`: no StatusNotifier watcher, so no panel shows tray
    /// icons (stock GNOME).
    pub no_tray_host: bool,
    /// Run a window manager (openbox) while the scenario runs ([`wm`]).
    pub window_manager: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            playground: Options::default(),
            edit_config: Box::new(|_, c| c),
            env: Vec::new(),
            embedded: false,
            desktop: false,
            no_tray_host: false,
            window_manager: false,
        }
    }
}

/// One running scenario: its Playground, its app and its WebDriver session.
pub struct Scenario {
    pub name: String,
    pub pg: Playground,
    pub client: Client,
    /// The app's data directory. Shared with [`Scenario::run`], which removes
    /// it only once the app has exited (an app still shutting down would
    /// otherwise create it again and leave it behind).
    pub data: std::sync::Arc<tempfile::TempDir>,
    pub keychain: String,
    pub artifacts: PathBuf,
    driver: Option<Driver>,
    driver_port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
    config: PathBuf,
    /// The recording desktop, when the setup asked for it (dropped last,
    /// after the app).
    pub desktop: Option<desktop::Desktop>,
    /// The window manager, when the setup asked for one.
    pub wm: Option<wm::WindowManager>,
    /// The lock that keeps scenarios apart: the last field, so it is let go
    /// only after everything above (fields drop in order). Held above the
    /// desktop, it was let go while the desktop still owned its bus names,
    /// and the next scenario's watcher lost the name to it silently (s23's
    /// tray never registered, once in a full run).
    _lock: std::fs::File,
}

/// The global lock that keeps scenarios from overlapping (a test that starts
/// the app without a `Scenario` holds it too).
pub fn scenario_lock() -> std::fs::File {
    let path = std::env::temp_dir().join("session-manager-e2e.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    f.lock().unwrap();
    f
}

/// A `tauri-driver` of its own, on a free port, with `env` for the apps it
/// starts; its output goes to `log`. Stopped when dropped.
pub struct Driver {
    pub child: tokio::process::Child,
    pub port: u16,
}

impl Driver {
    pub async fn start(env: &[(&str, &Path)], log: &Path) -> Driver {
        let [port, native_port] = free_ports::<2>();
        let mut cmd = tokio::process::Command::new("tauri-driver");
        cmd.args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .expect("tauri-driver starts (cargo install tauri-driver --locked)");
        wait_port(port, "tauri-driver", log).await;
        Driver { child, port }
    }

    /// Stop tauri-driver and wait until the app it started with `data` as
    /// its data directory has exited; returns what had to be killed.
    pub async fn stop(self, data: &Path) -> Vec<String> {
        stop_driver(self.child).await;
        wait_for_exit(data).await
    }
}

/// Stops tauri-driver the way that stops WebKitWebDriver too: on SIGTERM it
/// kills its native driver and exits. (SIGKILL, what `kill_on_drop` sends,
/// left a WebKitWebDriver behind per scenario.)
async fn stop_driver(mut child: tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        if tokio::time::timeout(APP_EXIT, child.wait()).await.is_ok() {
            return;
        }
    }
    let _ = child.kill().await;
}

/// Wait until something listens on `port`.
pub async fn wait_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port} within 20 s; its log: {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Scenario {
    /// Start everything for scenario `name`.
    pub async fn start(name: &str, setup: Setup) -> Scenario {
        assert!(
            std::env::var_os("DISPLAY").is_some(),
            "no DISPLAY: run through `bash scripts/test.sh`, or start `Xvfb :99 &` and set DISPLAY=:99 (or use your own display to watch)"
        );
        let lock = tokio::task::spawn_blocking(scenario_lock).await.unwrap();
        let artifacts = root().join("target/e2e-artifacts").join(name);
        let _ = std::fs::remove_dir_all(&artifacts);
        std::fs::create_dir_all(&artifacts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let pg = Playground::start(Options {
            dir: Some(dir.path().join("pg")),
            ..setup.playground
        })
        .await
        .unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, (setup.edit_config)(&pg, pg.config().to_owned())).unwrap();
        let keychain = format!("session-manager-e2e-{}", uuid::Uuid::new_v4().simple());
        let [port, native_port] = free_ports::<2>();
        let log = artifacts.join("app.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = tokio::process::Command::new("tauri-driver");
        cmd.args(["--port", &port.to_string(), "--native-port", &native_port.to_string()])
            .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &keychain)
            .env("SESSION_MANAGER_DATA_DIR", data.path())
            // The diagnostic log at its most detailed: every scenario's
            // leak scan of the data directory covers it.
            .env("SESSION_MANAGER_LOG", "trace")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .kill_on_drop(true);
        if setup.embedded {
            // No config anywhere: an empty config home, no override.
            cmd.env_remove("SESSION_MANAGER_CONFIG")
                .env("XDG_CONFIG_HOME", dir.path().join("empty-config-home"));
        } else {
            cmd.env("SESSION_MANAGER_CONFIG", &config);
        }
        for (k, v) in &setup.env {
            cmd.env(k, v);
        }
        // Before the app: its tray registers with the watcher at start.
        let desktop = setup.desktop.then(|| match setup.no_tray_host {
            true => desktop::Desktop::start_without_tray_host(),
            false => desktop::Desktop::start(),
        });
        let wm = setup.window_manager.then(wm::WindowManager::start);
        let driver = cmd
            .spawn()
            .expect("tauri-driver starts (cargo install tauri-driver --locked)");
        wait_port(port, "tauri-driver", &log).await;
        let client = connect(port).await;
        Scenario {
            desktop,
            wm,
            name: name.to_owned(),
            pg,
            client,
            data,
            keychain,
            artifacts,
            driver: Some(Driver { child: driver, port }),
            driver_port: port,
            _dir: dir,
            _lock: lock,
            log,
            config,
        }
    }

    /// Close the app (the WebDriver session) and open it again, same data,
    /// same keychain: a restart.
    pub async fn restart_app(&mut self) {
        self.close_app().await;
        self.open_app().await;
    }

    /// Close the app (the WebDriver session ends it).
    pub async fn close_app(&mut self) {
        let _ = self.client.clone().close().await;
    }

    /// Open the app again after [`Scenario::close_app`].
    pub async fn open_app(&mut self) {
        self.client = connect(self.driver_port).await;
    }

    /// Open the app again with command-line `args` (as an autostart entry
    /// or a launcher would).
    pub async fn open_app_with(&mut self, args: &[&str]) {
        self.client = connect_with(self.driver_port, &app_binary(), args).await;
    }

    /// Press a key with Ctrl held (a keyboard shortcut), in the focused
    /// window. (A shortcut that ends the app ends the WebDriver command with
    /// an error: the answer's window is gone.)
    pub async fn press_ctrl(&self, key: char) -> Result<(), String> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        use fantoccini::key::Key;
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down {
                value: Key::Control.into(),
            })
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key })
            .then(KeyAction::Up {
                value: Key::Control.into(),
            });
        self.client
            .perform_actions(keys)
            .await
            .map_err(|e| format!("Ctrl+{key}: {e}"))
    }

    /// The app's tray item, once it has registered with the recording
    /// desktop's watcher (the setup must ask for `desktop`).
    pub async fn tray(&self) -> desktop::TrayItem {
        // The newest item that answers: an app opened again registers anew,
        // and the one before it has left the bus.
        let desktop = self.desktop.as_ref().expect("a scenario with `desktop: true`");
        let live = || {
            desktop.items().into_iter().rev().find_map(|(bus, path)| {
                let item = desktop::TrayItem::new(&bus, &path);
                item.menu().is_ok().then_some(item)
            })
        };
        self.wait_until("the tray item to register", Duration::from_secs(20), || async {
            live().is_some()
        })
        .await;
        live().expect("a live tray item")
    }

    /// Whether the app runs (with this scenario's data directory; the
    /// drivers that share it are not the app).
    pub fn app_running(&self) -> bool {
        let app = app_binary();
        processes_with_data_dir(self.data.path())
            .iter()
            .any(|(_, cmd)| cmd.split(' ').next() == app.to_str())
    }

    /// The keychain entry of the `playground` profile, if any.
    pub fn stored(&self) -> Option<String> {
        self.stored_for("playground")
    }

    /// The keychain entry of `profile`, if any.
    pub fn stored_for(&self, profile: &str) -> Option<String> {
        KeyringStore::new(&self.keychain)
            .get(&format!("profile:{profile}"))
            .unwrap_or(None)
    }

    /// The config file the app reads.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The app's log so far.
    pub fn app_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run the scenario's body; on failure save a screenshot, the page source
    /// and the app log, and fail naming them.
    pub async fn run<F, Fut>(mut self, body: F)
    where
        F: FnOnce(Scenario) -> Fut + Send + 'static,
        Fut: Future<Output = Scenario> + Send + 'static,
    {
        let client = self.client.clone();
        let artifacts = self.artifacts.clone();
        let log = self.log.clone();
        let keychain = self.keychain.clone();
        let name = self.name.clone();
        // Keep the driver alive outside the body, to stop it last, and the
        // data directory, to remove it after the app has gone.
        let driver = self.driver.take();
        let data = self.data.clone();
        let outcome = tokio::spawn(body(self)).await;
        if let Err(e) = &outcome {
            // A window that is not shown (closed to the tray) never paints:
            // WebKitWebDriver's screenshot of it waits for ever.
            let shot = artifacts.join("failure.png");
            if let Ok(Ok(png)) = tokio::time::timeout(Duration::from_secs(10), screenshot(&client)).await {
                let _ = std::fs::write(&shot, png);
            }
            if let Ok(Ok(source)) = tokio::time::timeout(Duration::from_secs(10), client.source()).await {
                let _ = std::fs::write(artifacts.join("page.html"), source);
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), client.clone().close()).await;
            clean_keychain(&keychain);
            let lingering = match driver {
                Some(d) => d.stop(data.path()).await,
                None => wait_for_exit(data.path()).await,
            };
            let why = e.to_string();
            let lingering = if lingering.is_empty() {
                String::new()
            } else {
                format!(
                    "\n  still running {} s after the session ended (killed): {lingering:?}",
                    APP_EXIT.as_secs()
                )
            };
            panic!(
                "scenario '{name}' failed: {why}\n  screenshot: {}\n  app log:    {}{lingering}",
                shot.display(),
                log.display()
            );
        }
        let scenario = outcome.unwrap();
        let _ = scenario.client.clone().close().await;
        clean_keychain(&keychain);
        let lingering = match driver {
            Some(d) => d.stop(data.path()).await,
            None => wait_for_exit(data.path()).await,
        };
        drop(scenario);
        assert!(
            lingering.is_empty(),
            "scenario '{name}': the app did not exit within {} s of its WebDriver session's end: {lingering:?} (killed)",
            APP_EXIT.as_secs()
        );
    }

    /// The element with `data-testid`.
    pub async fn el(&self, testid: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!("[data-testid='{testid}']")))
            .await
            .unwrap_or_else(|e| panic!("no element [data-testid='{testid}'] within 10 s: {e}"))
    }

    /// The text of the element with `data-testid` (empty when hidden).
    pub async fn text(&self, testid: &str) -> String {
        self.el(testid).await.text().await.unwrap_or_default()
    }

    /// Whether the element with `data-testid` is displayed.
    pub async fn visible(&self, testid: &str) -> bool {
        match self
            .client
            .find(Locator::Css(&format!("[data-testid='{testid}']")))
            .await
        {
            Ok(e) => e.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// How many elements carry `data-testid`.
    pub async fn count(&self, testid: &str) -> usize {
        self.client
            .find_all(Locator::Css(&format!("[data-testid='{testid}']")))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    /// Wait until `check` holds, polling every 100 ms; fail after `timeout`
    /// naming `what`.
    pub async fn wait_until<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if check().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the element's text satisfies `check`; returns the text.
    pub async fn wait_text(&self, testid: &str, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text(testid).await;
            if check(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; [data-testid='{testid}'] reads '{text}'"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the element with `data-testid` is displayed.
    pub async fn wait_visible(&self, testid: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.visible(testid).await {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for [data-testid='{testid}'] to show"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Type into an input.
    pub async fn fill(&self, testid: &str, text: &str) {
        let e = self.el(testid).await;
        e.clear().await.unwrap();
        // (WebKitWebDriver refuses to send no keys: "Missing text parameter".)
        if !text.is_empty() {
            e.send_keys(text).await.unwrap();
        }
    }

    /// Click a button.
    pub async fn click(&self, testid: &str) {
        self.el(testid)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click [data-testid='{testid}']: {e}"));
    }

    /// Open profile `name`'s session from the home list.
    pub async fn click_account(&self, name: &str) {
        let css = format!("[data-testid=account-row][data-profile='{name}']");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Ok(row) = self.client.find(fantoccini::Locator::Css(&css)).await {
                if row.click().await.is_ok() {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no row for profile '{name}' in the home list to click"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Sign in through the form and wait for the session screen.
    pub async fn sign_in(&self, username: &str, password: &str) {
        self.wait_visible("screen-signin", Duration::from_secs(20)).await;
        self.fill("username-input", username).await;
        self.fill("password-input", password).await;
        self.click("signin-button").await;
    }

    /// Sign in and wait until the state badge reads Active.
    pub async fn sign_in_active(&self, username: &str, password: &str) {
        self.sign_in(username, password).await;
        self.wait_text(
            "state-badge",
            "the state badge to read Active",
            Duration::from_secs(20),
            |t| t == "Active",
        )
        .await;
    }

    /// Scroll the element with this id into view (`block`: where it goes,
    /// as `scrollIntoView` takes it: "start", "center", "end").
    pub async fn scroll_to(&self, id: &str, block: &str) {
        let script = format!("document.getElementById('{id}').scrollIntoView({{ block: '{block}' }})");
        self.client
            .execute(&script, vec![])
            .await
            .unwrap_or_else(|e| panic!("scroll to #{id}: {e}"));
    }

    /// The id of the element that has the keyboard focus ("" for none).
    pub async fn focused_id(&self) -> String {
        let id = self
            .client
            .execute("return document.activeElement.id", vec![])
            .await
            .expect("the page answers a script");
        id.as_str().unwrap_or_default().to_owned()
    }

    /// Save a screenshot as `artifacts/<file>`.
    pub async fn screenshot(&self, file: &str) -> PathBuf {
        let path = self.artifacts.join(file);
        let png = screenshot(&self.client)
            .await
            .unwrap_or_else(|e| panic!("screenshot {file}: {e}"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Check the screen as it is now: no serious or critical axe-core
    /// violation (WCAG 2.1 AA), and a screenshot at a small and a large
    /// window size (`artifacts/<name>-400x600.png`, `-1280x900.png`), each
    /// checked again at its size. The window is left at the large size.
    pub async fn check_screen(&self, name: &str) {
        for (w, h) in [(400u32, 600u32), (1280, 900)] {
            self.client
                .set_window_size(w, h)
                .await
                .unwrap_or_else(|e| panic!("resize to {w}x{h}: {e}"));
            let found = a11y::violations(&self.client).await;
            assert!(
                found.is_empty(),
                "{name} at {w}x{h}: axe-core found {} serious or critical violation(s):\n{}",
                found.len(),
                found.join("\n")
            );
            self.screenshot(&format!("{name}-{w}x{h}.png")).await;
        }
    }

    /// Fail if any token the Playground issued appears in `text`.
    pub fn assert_no_token(&self, what: &str, text: &str) {
        for t in self.pg.issued_tokens() {
            assert!(
                !text.contains(&t),
                "a token (fingerprint {}) appears in {what}",
                session_core::token::fingerprint(t.as_bytes())
            );
        }
    }

    /// Every file in the data directory, as text.
    pub fn data_files(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let mut stack = vec![self.data.path().to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else if let Ok(b) = std::fs::read(e.path()) {
                    out.push((e.path(), String::from_utf8_lossy(&b).into_owned()));
                }
            }
        }
        out
    }
}

/// How long an app has to exit after its WebDriver session ended.
const APP_EXIT: Duration = Duration::from_secs(10);

/// The processes started with `data` as their data directory (the app, and
/// what tauri-driver started on its behalf), as "pid command".
fn processes_with_data_dir(data: &Path) -> Vec<(i32, String)> {
    let mut needle = b"SESSION_MANAGER_DATA_DIR=".to_vec();
    needle.extend_from_slice(data.as_os_str().as_encoded_bytes());
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        // A process that has gone (or a zombie: its environment reads
        // empty) no longer counts.
        let env = std::fs::read(e.path().join("environ")).ok()?;
        env.split(|b| *b == 0).any(|v| v == needle.as_slice()).then(|| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            (pid, String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
    })
    .collect()
}

/// Waits until nothing started with `data` as its data directory runs any
/// more: the scenario's data directory is removed after this, and an app
/// still shutting down would write into it again (its audit log creates
/// the directory) and leave it behind in the temporary directory. What is
/// still running after [`APP_EXIT`] is killed and returned.
async fn wait_for_exit(data: &Path) -> Vec<String> {
    let deadline = Instant::now() + APP_EXIT;
    loop {
        let left = processes_with_data_dir(data);
        if left.is_empty() {
            return Vec::new();
        }
        if Instant::now() >= deadline {
            for (pid, _) in &left {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            return left.into_iter().map(|(pid, cmd)| format!("{pid} {cmd}")).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn clean_keychain(keychain: &str) {
    for profile in ["playground", "playground-oidc"] {
        let _ =
            session_core::storage::vault::Vault::new(std::sync::Arc::new(KeyringStore::new(keychain)), profile).clear();
    }
}

async fn connect(port: u16) -> Client {
    connect_to(port, &app_binary()).await
}

/// A WebDriver session on the tauri-driver at `port` that launches `application`.
pub async fn connect_to(port: u16, application: &Path) -> Client {
    connect_with(port, application, &[]).await
}

/// As [`connect_to`], the application started with `args`.
pub async fn connect_with(port: u16, application: &Path, args: &[&str]) -> Client {
    let mut caps = fantoccini::wd::Capabilities::new();
    caps.insert("browserName".into(), "wry".into());
    caps.insert(
        "tauri:options".into(),
        serde_json::json!({ "application": application, "args": args }),
    );
    let mut last = None;
    // WebKitWebDriver may still be starting right after tauri-driver listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        // The request itself has the deadline too: when the app dies before
        // its window exists (no display, a panic at start), WebKitWebDriver
        // never answers it.
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        let url = format!("http://127.0.0.1:{port}");
        let connect = builder.capabilities(caps.clone()).connect(&url);
        match tokio::time::timeout_at(deadline, connect).await {
            Ok(Ok(c)) => return c,
            Ok(Err(e)) => last = Some(e.to_string()),
            Err(_) => {
                last = Some("the session request was not answered (did the app start? see the driver's log)".into())
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no WebDriver session within 30 s: {}", last.unwrap_or_default())
}

/// How long a screenshot may take.
pub const SCREENSHOT_WITHIN: Duration = Duration::from_secs(10);

/// WebKitWebDriver (2.50) takes a screenshot after the page's next paint,
/// not of the last one: on a page where nothing changes (the first-run
/// screen) it never answers. This makes the page paint a 1-pixel,
/// all-but-transparent element every 50 ms for 3 s, then removes it, so
/// that a screenshot asked for next has a paint to wait for. See
/// docs/next-engineer.md, "WebKitWebDriver screenshots".
const PAINT_SOON: &str = r#"
  let dot = document.getElementById('e2e-paint');
  if (!dot) {
    dot = document.createElement('div');
    dot.id = 'e2e-paint';
    dot.setAttribute('aria-hidden', 'true');
    dot.style.cssText = 'position:fixed;left:0;bottom:0;width:1px;height:1px;background:#888;opacity:0.01;pointer-events:none';
    document.body.appendChild(dot);
    let n = 0;
    const tick = setInterval(() => {
      n += 1;
      dot.style.opacity = n % 2 ? '0.02' : '0.01';
      if (n >= 60) { clearInterval(tick); dot.remove(); }
    }, 50);
  }
  return true;
"#;

/// A PNG of the window, or why there is none within [`SCREENSHOT_WITHIN`].
pub async fn screenshot(client: &Client) -> Result<Vec<u8>, String> {
    let shot = async {
        client.execute(PAINT_SOON, vec![]).await.map_err(|e| e.to_string())?;
        client.screenshot().await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(SCREENSHOT_WITHIN, shot).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "WebKitWebDriver gave no screenshot within {} s",
            SCREENSHOT_WITHIN.as_secs()
        )),
    }
}

/// A TCP forwarder on loopback to one of two ports, switched at will (what
/// is on the wire between the app and a provider: a real host, or one that
/// presents another certificate). Connections made before a switch are cut.
pub struct Forwarder {
    pub port: u16,
    to: std::sync::Arc<tokio::sync::watch::Sender<u16>>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    /// Forward to `to` until [`Forwarder::switch`].
    pub async fn start(to: u16) -> Forwarder {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::watch::channel(to);
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut changed = rx.clone();
                let target = *changed.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = changed.changed() => {}
                    }
                });
            }
        });
        Forwarder {
            port,
            to: std::sync::Arc::new(tx),
            task,
        }
    }

    /// Forward new connections to `to`, and cut the open ones.
    pub fn switch(&self, to: u16) {
        self.to.send_replace(to);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The port of an `https://host:port…` address.
pub fn port_of(url: &str) -> u16 {
    url.trim_start_matches("https://")
        .split(['/', ':'])
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("an address with a port")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ports_are_distinct_free_and_outside_the_ephemeral_range() {
        for _ in 0..50 {
            let ports = super::free_ports::<3>();
            assert!(ports.iter().all(|p| (20_000..32_000).contains(p)), "{ports:?}");
            assert!(
                ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2],
                "{ports:?}"
            );
        }
    }
}
