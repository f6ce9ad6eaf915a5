//! Shared helpers of the cross-crate tests: a Playground, an engine pointed at
//! it, and waits on explicit conditions.

pub mod hostile;

use playground::{Options, Playground};
use session_core::profile::Config;
use session_core::storage::vault::{MemoryStore, SecretStore};
use session_core::{Engine, Profile, SessionView};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Start a Playground with tokens of `lifetime_secs`.
pub async fn playground(lifetime_secs: u64) -> Playground {
    playground_with(Options {
        token_lifetime: Duration::from_secs(lifetime_secs),
        ..Options::default()
    })
    .await
}

/// Start a Playground with `options`.
pub async fn playground_with(options: Options) -> Playground {
    Playground::start(options).await.expect("the Playground starts")
}

/// The `playground` profile of a running Playground, optionally edited.
pub fn profile(pg: &Playground, edit: impl FnOnce(String) -> String) -> Profile {
    let text = edit(pg.config().to_owned());
    Config::parse(&text, Path::new("/"))
        .expect("the Playground's config is valid")
        .profile(Some("playground"))
        .unwrap()
        .clone()
}

/// An engine on the real pinned client and provider, with `store` as keychain.
pub fn engine(profile: Profile, dir: &Path, store: Arc<dyn SecretStore>) -> Engine {
    Engine::open_with_store(profile, dir, store).expect("the engine opens")
}

/// An engine on a fresh in-memory keychain.
pub fn memory_engine(pg: &Playground, dir: &Path) -> (Engine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    (engine(profile(pg, |t| t), dir, store.clone()), store)
}

/// An engine for `profile` on a fresh in-memory keychain.
pub fn memory_engine_for(profile: Profile, dir: &Path) -> (Engine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    (engine(profile, dir, store.clone()), store)
}

/// Wait until `engine`'s view satisfies `done`, or fail after `timeout`
/// naming `what`. Returns the view that satisfied it.
pub async fn wait_for(
    engine: &Engine,
    what: &str,
    timeout: Duration,
    mut done: impl FnMut(&SessionView) -> bool,
) -> SessionView {
    let mut rx = engine.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let view = engine.view();
        if done(&view) {
            return view;
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(_) => {}
            Err(_) => panic!(
                "timed out after {timeout:?} waiting for {what}; last view: {:?}",
                engine.view()
            ),
        }
    }
}

/// Every file under `dir`, read as lossy text.
pub fn files_text(dir: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    out
}

/// Fail if any of `tokens` appears in `haystack`.
pub fn assert_no_token(tokens: &[String], what: &str, haystack: &str) {
    assert!(
        !tokens.is_empty(),
        "no token was issued, the leak check would prove nothing"
    );
    for t in tokens {
        assert!(
            !haystack.contains(t.as_str()),
            "a token (fingerprint {}) leaked into {what}",
            session_core::token::fingerprint(t.as_bytes())
        );
    }
}

/// The `playground-oidc` profile of a running Playground, optionally edited.
pub fn oidc_profile(pg: &Playground, edit: impl FnOnce(String) -> String) -> Profile {
    let text = edit(pg.config().to_owned());
    Config::parse(&text, Path::new("/"))
        .expect("the Playground's config is valid")
        .profile(Some("playground-oidc"))
        .unwrap()
        .clone()
}

/// What the test browser does with a sign-in page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserStep {
    SignIn(String, String),
    Cancel,
    /// Leave the page alone (the person walked away).
    Ignore,
}

/// The opener seam played by [`playground::browser::Browser`]: each URL the
/// engine opens is visited in the background, with the cookie jar kept
/// between visits (so `prompt=none` finds the Playground's SSO session).
pub struct BrowserOpener {
    pub browser: Arc<playground::browser::Browser>,
    pub step: std::sync::Mutex<BrowserStep>,
    pub opened: std::sync::Mutex<Vec<String>>,
    /// Device sign-ins' codes, in order.
    pub codes: std::sync::Mutex<Vec<session_core::provider::DeviceCode>>,
    pub visits: Arc<std::sync::Mutex<Vec<Result<playground::browser::Visit, String>>>>,
}

impl BrowserOpener {
    pub fn new(pg: &Playground, step: BrowserStep) -> Arc<Self> {
        Arc::new(Self {
            browser: Arc::new(playground::browser::Browser::for_playground(pg)),
            step: std::sync::Mutex::new(step),
            opened: Default::default(),
            codes: Default::default(),
            visits: Default::default(),
        })
    }

    pub fn set_step(&self, step: BrowserStep) {
        *self.step.lock().unwrap() = step;
    }

    pub fn opened(&self) -> Vec<String> {
        self.opened.lock().unwrap().clone()
    }

    /// The pages the browser ended on.
    pub fn pages(&self) -> Vec<String> {
        self.visits
            .lock()
            .unwrap()
            .iter()
            .map(|v| match v {
                Ok(v) => v.body.clone(),
                Err(e) => e.clone(),
            })
            .collect()
    }
}

impl session_core::provider::opener::Opener for BrowserOpener {
    fn open(&self, url: &str) -> Result<(), String> {
        use playground::browser::Action;
        self.opened.lock().unwrap().push(url.to_owned());
        let step = self.step.lock().unwrap().clone();
        if step == BrowserStep::Ignore {
            return Ok(());
        }
        let (browser, visits, url) = (self.browser.clone(), self.visits.clone(), url.to_owned());
        tokio::spawn(async move {
            let action = match &step {
                BrowserStep::SignIn(u, p) => Action::SignIn {
                    username: u,
                    password: p,
                },
                _ => Action::Cancel,
            };
            let visit = browser.open(&url, action).await;
            visits.lock().unwrap().push(visit);
        });
        Ok(())
    }

    /// A device sign-in: the person, on "another device" (this browser),
    /// enters the code on the verification page and allows (`SignIn`) or
    /// denies (`Cancel`).
    fn show_code(&self, code: &session_core::provider::DeviceCode) {
        self.codes.lock().unwrap().push(code.clone());
        let step = self.step.lock().unwrap().clone();
        let (browser, visits, code) = (self.browser.clone(), self.visits.clone(), code.clone());
        let (user, password, allow) = match step {
            BrowserStep::Ignore => return,
            BrowserStep::SignIn(u, p) => (u, p, true),
            BrowserStep::Cancel => ("alice".into(), String::new(), false),
        };
        tokio::spawn(async move {
            let visit = browser
                .verify_device(&code.verification_uri, &code.user_code, &user, &password, allow)
                .await;
            visits.lock().unwrap().push(visit);
        });
    }
}

/// An OIDC engine on a fresh in-memory keychain, with `opener` as browser.
pub fn oidc_engine(profile: Profile, dir: &Path, opener: Arc<BrowserOpener>) -> (Engine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let engine = Engine::open_with(profile, dir, store.clone(), opener).expect("the engine opens");
    (engine, store)
}
