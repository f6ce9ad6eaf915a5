//! Desktop benchmarks: `cargo bench -p e2e --bench desktop` (needs what the
//! end-to-end tests need: a display, tauri-driver, a Secret Service; and
//! `cargo build -p session-manager -p minimal-tauri-app` first). Prints
//! figures and ratios from one run; asserts nothing about time.
//!
//! - cold start to a rendered sign-in screen, vs a minimal Tauri v2 app (one
//!   static page) built the same way (debug, or release with
//!   `DESKTOP_BENCH_PROFILE=release`), median of 9 alternating starts;
//! - resident memory of the app's processes (the app and its WebKit
//!   children) after sign-in and one minute of countdown, vs the minimal app
//!   after one minute;
//! - CPU of those processes over that minute, and over another minute with
//!   the window minimized (the countdown stops ticking while hidden);
//! - CPU of both apps started directly, as a person starts them (no
//!   WebDriver: its automation makes every repaint of the webview cost
//!   several times what it costs otherwise), Session Manager signed in: the
//!   session is made here, against a Playground in this process, kept in a
//!   keychain namespace of its own, and restored by the app at start;
//! - the size of both binaries.
//!
//! - the size of the packaged app's binary (taken out of the newest `.deb`
//!   `scripts/package.sh` built, without the built-in Playground) against
//!   the same minimal app.
//!
//! `DESKTOP_BENCH_ONLY=start` stops after the sizes and the cold starts.

use e2e::fantoccini::{Client, Locator};
use e2e::{connect_to, root, Driver};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Start `app`, wait for `ready` (a CSS selector) to be displayed; returns the
/// client and the time from the session request to that moment.
///
/// The page itself watches for `ready` (every 5 ms, in one asynchronous
/// script), so the time is the session request plus one round trip for
/// either app. Polling from here with a find and a visibility check per
/// try added 10 to 50 ms to an app whose first screen appears after its
/// script ran, and nothing to the one-page app, whose ready element is in
/// its HTML when the session starts.
async fn cold_start(d: &Driver, app: &Path, ready: &str) -> (Client, Duration) {
    const WAIT: &str = "const [selector, done] = [arguments[0], arguments[arguments.length - 1]]; \
                        const until = Date.now() + 25000; \
                        const look = () => { \
                          const e = document.querySelector(selector); \
                          if (e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden') done(true); \
                          else if (Date.now() > until) done(false); \
                          else setTimeout(look, 5); \
                        }; \
                        look();";
    let start = Instant::now();
    let client = connect_to(d.port, app).await;
    let shown = client.execute_async(WAIT, vec![serde_json::json!(ready)]).await;
    // A build of the wrong kind never shows `ready` (package.sh builds
    // target/release/session-manager without the built-in Playground,
    // which opens on the first-run screen): say so instead of waiting.
    assert!(
        matches!(shown, Ok(serde_json::Value::Bool(true))),
        "{} did not show {ready} within 25 s ({shown:?}); after bash scripts/package.sh, \
         build the app again: cargo build --release -p session-manager",
        app.display()
    );
    (client, start.elapsed())
}

/// The process whose executable is `exe`, and all its descendants.
fn tree_of(exe: &Path) -> Vec<u32> {
    let procs: Vec<(u32, u32, PathBuf)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()?;
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            Some((pid, ppid, exe))
        })
        .collect();
    let mut tree: Vec<u32> = procs.iter().filter(|p| p.2 == exe).map(|p| p.0).collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    tree
}

fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .sum()
}

/// utime + stime of `pids`, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// RSS after `idle`, and the CPU share over it.
async fn settle(exe: &Path, idle: Duration) -> (u64, f64) {
    // The kernel names a process by its real path: a symlinked build
    // otherwise matched nothing and measured 0 % and 0 MiB.
    let exe = &exe.canonicalize().unwrap_or_else(|_| exe.to_owned());
    let pids = tree_of(exe);
    assert!(
        !pids.is_empty(),
        "no running process of {}: nothing to measure",
        exe.display()
    );
    let before = cpu_ticks(&pids);
    tokio::time::sleep(idle).await;
    let pids = tree_of(exe);
    let ticks = cpu_ticks(&pids).saturating_sub(before);
    (rss_kib(&pids), ticks as f64 / 100.0 / idle.as_secs_f64() * 100.0)
}

/// Cold starts per app, alternating (DESKTOP_BENCH_RUNS for a quick look).
fn runs() -> usize {
    std::env::var("DESKTOP_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(9)
}

/// The packaged app: its binary taken out of the newest `.deb` that
/// `scripts/package.sh` built for a profile (built without the built-in
/// Playground) into a temporary folder, to be measured and started as is.
struct Packaged {
    deb: PathBuf,
    binary: PathBuf,
    _dir: tempfile::TempDir,
}

impl Packaged {
    fn extract(profile: &str) -> Option<Packaged> {
        let dir = root().join("target").join(profile).join("bundle/deb");
        let deb = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("session-manager_") && n.ends_with(".deb"))
            })
            .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())?;
        let out = tempfile::tempdir().ok()?;
        let tar = std::process::Command::new("dpkg-deb")
            .arg("--fsys-tarfile")
            .arg(&deb)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let ok = std::process::Command::new("tar")
            .args(["-xf", "-", "-C"])
            .arg(out.path())
            .arg("./usr/bin/session-manager")
            .stdin(tar.stdout?)
            .status()
            .ok()?
            .success();
        let binary = out.path().join("usr/bin/session-manager");
        (ok && binary.is_file()).then_some(Packaged { deb, binary, _dir: out })
    }
}

/// Start `exe` directly with `env`, its output discarded (killed when the
/// handle goes).
fn start_quietly(exe: &Path, env: &[(&str, &std::ffi::OsStr)]) -> tokio::process::Child {
    tokio::process::Command::new(exe)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Start `exe` directly with `env`, let it settle for `warm_up`, then the
/// CPU share of its processes over `idle`.
async fn direct_cpu(exe: &Path, env: &[(&str, &std::ffi::OsStr)], warm_up: Duration, idle: Duration) -> f64 {
    let mut child = start_quietly(exe, env);
    tokio::time::sleep(warm_up).await;
    let (_, cpu) = settle(exe, idle).await;
    let _ = child.kill().await;
    cpu
}

/// Voluntary and involuntary context switches of each thread of `pids`,
/// by thread id: each is a wake-up (or a preemption) of the app.
fn switches(pids: &[u32]) -> std::collections::BTreeMap<u64, u64> {
    pids.iter()
        .flat_map(|p| {
            std::fs::read_dir(format!("/proc/{p}/task"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter_map(|t| {
            let tid = t.file_name().to_str()?.parse::<u64>().ok()?;
            let status = std::fs::read_to_string(t.path().join("status")).ok()?;
            let n = status
                .lines()
                .filter(|l| l.starts_with("voluntary_ctxt_switches:") || l.starts_with("nonvoluntary_ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
            Some((tid, n))
        })
        .collect()
}

/// The switches between two readings: each thread's growth (a thread that
/// started meanwhile counts whole; one that ended takes its count with it,
/// which the kernel keeps nowhere, so its last ones are missed).
fn switches_between(
    before: &std::collections::BTreeMap<u64, u64>,
    after: &std::collections::BTreeMap<u64, u64>,
) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

/// What an idle app costs over a window: CPU share of one core, resident
/// memory at its end, wake-ups per second.
struct Idle {
    cpu: f64,
    rss_kib: u64,
    wakeups: f64,
}

/// Session Manager started directly (window shown) with `profiles`
/// FinHub profiles, each with a session to restore (hour-long tokens: no
/// renewal falls in the window).
async fn direct_signed_in(app: &Path, idle: Duration, profiles: usize) -> Idle {
    use playground::{Options, Playground};
    use session_core::storage::vault::{KeyringStore, SecretStore};
    let dir = tempfile::tempdir().unwrap();
    let pg = Playground::start(Options {
        token_lifetime: Duration::from_secs(3600),
        session_limit: profiles + 1,
        dir: Some(dir.path().join("pg")),
        ..Options::default()
    })
    .await
    .unwrap();
    // The Playground's FinHub profile `profiles` times, as p1, p2, …
    let finhub = pg.config().split("[profiles.playground]").nth(1).unwrap();
    let finhub = finhub.split("[profiles.playground-oidc]").next().unwrap();
    let text: String = (1..=profiles).map(|i| format!("[profiles.p{i}]{finhub}\n")).collect();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, &text).unwrap();
    let data = dir.path().join("data");
    let service = format!("session-manager-bench-{}", uuid::Uuid::new_v4().simple());
    let store: std::sync::Arc<dyn SecretStore> = std::sync::Arc::new(KeyringStore::new(service.clone()));
    let parsed = session_core::Config::parse(&text, dir.path()).unwrap();
    for profile in parsed.profiles.values() {
        let engine = session_core::Engine::open_with_store(profile.clone(), &data, store.clone()).unwrap();
        engine
            .sign_in("alice", session_core::Password::new("alice-pw-1"))
            .await
            .expect("the bench signs in to its Playground");
    }
    let env = [
        ("SESSION_MANAGER_CONFIG", config.as_os_str()),
        ("SESSION_MANAGER_DATA_DIR", data.as_os_str()),
        ("SESSION_MANAGER_KEYCHAIN_SERVICE", std::ffi::OsStr::new(&service)),
    ];
    let mut child = start_quietly(app, &env);
    // Past the start's own work and past the connection pool's idle
    // timeout: each engine's connections from the restore close once,
    // 15 s after their last use (seen with strace: a wake-up per closed
    // connection), which is the start's cost, not the idle one.
    tokio::time::sleep(session_core::net::tls::POOL_IDLE + Duration::from_secs(5)).await;
    let exe = app.canonicalize().unwrap_or_else(|_| app.to_owned());
    let woken = switches(&tree_of(&exe));
    let (rss_kib, cpu) = settle(app, idle).await;
    let wakeups = switches_between(&woken, &switches(&tree_of(&exe))) as f64 / idle.as_secs_f64();
    let _ = child.kill().await;
    // The figures are of signed-in sessions only if the app restored them all.
    let restored = session_core::storage::audit::AuditLog::in_dir(&data)
        .recent(1000)
        .unwrap_or_default()
        .iter()
        .filter(|r| r.event == session_core::storage::audit::AuditEvent::SessionRestored)
        .count();
    assert!(
        restored >= profiles,
        "the app restored {restored} of the bench's {profiles} sessions, so its figures would not be of signed-in sessions; see {}",
        data.join("logs/app.log").display()
    );
    // Leave nothing in a developer's keychain: sign out as the app would.
    for profile in parsed.profiles.values() {
        let engine = session_core::Engine::open_with_store(profile.clone(), &data, store.clone()).unwrap();
        let _ = engine.restore().await;
        if let Err(e) = engine.sign_out().await {
            eprintln!("warning: the bench's session stays in keychain namespace {service}: {e}");
        }
    }
    Idle { cpu, rss_kib, wakeups }
}

/// Cold starts of `app` (started by its driver, ready when its selector is
/// displayed) and of the one-page app, alternated, `runs()` each; prints
/// the medians, their ratio and where the time went.
async fn compare_starts(what: &str, (da, app, ready): (&Driver, &Path, &str), dm: &Driver, minimal: &Path) {
    let (mut app_starts, mut min_starts) = (Vec::new(), Vec::new());
    let (mut app_phases, mut min_phases) = (Vec::new(), Vec::new());
    for _ in 0..runs() {
        let asked = std::time::SystemTime::now();
        let (c, t) = cold_start(da, app, ready).await;
        app_starts.push(t);
        app_phases.push(phases(&c, asked).await);
        c.close().await.unwrap();
        let asked = std::time::SystemTime::now();
        let (c, t) = cold_start(dm, minimal, "[data-testid='ready']").await;
        min_starts.push(t);
        min_phases.push(phases(&c, asked).await);
        c.close().await.unwrap();
    }
    let (a, m) = (median(app_starts), median(min_starts));
    println!(
        "  {what}: {} ms, minimal Tauri app: {} ms, ratio {:.2} (target <= 1.15)",
        a.as_millis(),
        m.as_millis(),
        a.as_secs_f64() / m.as_secs_f64()
    );
    println!("    where the time goes (medians, ms from the session request): page requested / HTML parsed / script started / answers in / first screen drawn");
    for (name, p) in [("Session Manager", app_phases), ("minimal Tauri app", min_phases)] {
        let at = |i: usize| median(p.iter().map(|x| x[i]).collect());
        println!(
            "      {name}: {:.0} / {:.0} / {:.0} / {:.0} / {:.0}",
            at(0),
            at(1),
            at(2),
            at(3),
            at(4)
        );
    }
}

/// When the page was requested, when its HTML was parsed, when the app's
/// script started and when its first two answers came in (marks `ui/app.js`
/// sets; NaN for the minimal app), and when the first screen was drawn (the
/// page's `first-screen` mark, or the load event for the minimal app's
/// static page), in ms from the session request.
async fn phases(c: &Client, asked: std::time::SystemTime) -> [f64; 5] {
    let script = "const n = performance.getEntriesByType('navigation')[0]; \
                  const at = (name) => { const m = performance.getEntriesByName(name)[0]; return m ? m.startTime : null; }; \
                  return [performance.timeOrigin, n.domInteractive, at('script-start'), at('answers'), at('first-screen') ?? n.loadEventEnd];";
    let v = c.execute(script, vec![]).await.unwrap();
    let f = |i: usize| v[i].as_f64().unwrap_or(f64::NAN);
    let asked = asked.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0;
    let origin = f(0) - asked;
    [origin, origin + f(1), origin + f(2), origin + f(3), origin + f(4)]
}

/// The middle value (durations, or the breakdown's milliseconds; a NaN,
/// from a page without the entry, sorts as equal).
fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // DESKTOP_BENCH_PROFILE=release compares release builds (what people
    // run); the default compares the debug builds the tests use.
    let profile = std::env::var("DESKTOP_BENCH_PROFILE").unwrap_or_else(|_| "debug".into());
    let app = root().join("target").join(&profile).join("session-manager");
    let minimal = root().join("target").join(&profile).join("minimal-tauri-app");
    for b in [&app, &minimal] {
        let flag = if profile == "release" { "--release " } else { "" };
        assert!(
            b.is_file(),
            "build first: cargo build {flag}-p session-manager -p minimal-tauri-app ({} missing)",
            b.display()
        );
    }
    // DESKTOP_BENCH_IDLE_SECS shortens the minute for a quick look.
    let idle_window = Duration::from_secs(
        std::env::var("DESKTOP_BENCH_IDLE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    // DESKTOP_BENCH_ONLY=profiles: the cost of each session beyond the
    // first only (ten profiles signed in against one).
    if std::env::var("DESKTOP_BENCH_ONLY").is_ok_and(|v| v == "profiles") {
        per_session(&app, idle_window).await;
        return;
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!(
        "Binary size ({profile}): Session Manager {:.1} MB (with the built-in Playground), minimal Tauri app {:.1} MB, ratio {:.2}",
        size(&app),
        size(&minimal),
        size(&app) / size(&minimal)
    );
    let packaged = Packaged::extract(&profile);
    match &packaged {
        Some(p) => println!(
            "  the packaged app (in {}, without the built-in Playground): {:.1} MB, ratio {:.2} (target <= 1.8 for release)",
            p.deb.file_name().unwrap_or_default().to_string_lossy(),
            size(&p.binary),
            size(&p.binary) / size(&minimal)
        ),
        None => println!(
            "  the packaged app: no .deb in target/{profile}/bundle/deb (build it with bash scripts/package.sh{})",
            if profile == "release" { "" } else { " --debug" }
        ),
    }
    let data = tempfile::tempdir().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    // Hour-long tokens on the built-in Playground: no renewal falls in the
    // idle windows, which measure the window, not the session's renewals
    // (the built-in Playground's two-minute tokens put about one in each).
    let env = [
        ("SESSION_MANAGER_DATA_DIR", data.path()),
        ("XDG_CONFIG_HOME", config_home.path()),
        ("SESSION_MANAGER_PLAYGROUND_LIFETIME", Path::new("3600")),
    ];
    let d = Driver::start(&env, &std::env::temp_dir().join("desktop-bench-driver.log")).await;
    let idle = idle_window;

    println!(
        "Cold start to a rendered first screen (median of {}, {profile} builds):",
        runs()
    );
    compare_starts(
        "Session Manager on its built-in Playground (scripts/run.sh; QA's build)",
        (&d, &app, "[data-testid='screen-signin']"),
        &d,
        &minimal,
    )
    .await;
    // The packaged app as people run it: no built-in Playground, a provider
    // in the config file (a Playground in this process), no session yet.
    if let Some(packaged) = &packaged {
        let provider = tempfile::tempdir().unwrap();
        let pg = playground::Playground::start(playground::Options {
            token_lifetime: Duration::from_secs(3600),
            dir: Some(provider.path().join("pg")),
            ..playground::Options::default()
        })
        .await
        .unwrap();
        let config = provider.path().join("config.toml");
        std::fs::write(&config, pg.config()).unwrap();
        let packaged_data = provider.path().join("data");
        let service = format!("session-manager-bench-{}", uuid::Uuid::new_v4().simple());
        let env = [
            ("SESSION_MANAGER_CONFIG", config.as_path()),
            ("SESSION_MANAGER_DATA_DIR", packaged_data.as_path()),
            ("SESSION_MANAGER_KEYCHAIN_SERVICE", Path::new(&service)),
        ];
        let d2 = Driver::start(&env, &std::env::temp_dir().join("desktop-bench-driver-2.log")).await;
        compare_starts(
            "the packaged app, a provider configured (what people run)",
            (&d2, &packaged.binary, "[data-testid='screen-signin']"),
            &d,
            &minimal,
        )
        .await;
        d2.stop(&packaged_data).await;
    }
    // DESKTOP_BENCH_ONLY=start: sizes and cold starts only (for comparing
    // builds; with DESKTOP_BENCH_RUNS for more starts).
    if std::env::var("DESKTOP_BENCH_ONLY").is_ok_and(|v| v == "start") {
        d.stop(data.path()).await;
        return;
    }

    // The app: sign in, then a minute of countdown.
    let (c, _) = cold_start(&d, &app, "[data-testid='screen-signin']").await;
    for (id, text) in [("username-input", "alice"), ("password-input", "alice-pw-1")] {
        c.find(Locator::Css(&format!("[data-testid='{id}']")))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Css("[data-testid='signin-button']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("[data-testid='screen-session']:not([hidden])"))
        .await
        .unwrap();
    let (app_rss, app_cpu) = settle(&app, idle).await;
    // Minimized: the page is hidden and the countdown stops.
    let hidden_cpu = match c.minimize_window().await {
        Ok(()) => format!("{:.2} %", settle(&app, idle).await.1),
        Err(e) => format!("not measured (minimize: {e})"),
    };
    // Closed to the tray (the window's close, as Ctrl+W does): renewals go
    // on, nothing is drawn.
    let tray_cpu = match c
        .execute("window.__TAURI__.core.invoke('close_window'); return true;", vec![])
        .await
    {
        Ok(_) => format!("{:.2} %", settle(&app, idle).await.1),
        Err(e) => format!("not measured (close_window: {e})"),
    };
    c.close().await.unwrap();
    let (c, _) = cold_start(&d, &minimal, "[data-testid='ready']").await;
    let (min_rss, min_cpu) = settle(&minimal, idle).await;
    let min_hidden_cpu = match c.minimize_window().await {
        Ok(()) => format!("{:.2} %", settle(&minimal, idle).await.1),
        Err(e) => format!("not measured (minimize: {e})"),
    };
    c.close().await.unwrap();
    println!(
        "Resident memory of the app's processes after {} s (sum of VmRSS, app + WebKit children):",
        idle.as_secs()
    );
    println!(
        "  Session Manager (signed in, countdown running): {} MiB, minimal Tauri app: {} MiB, ratio {:.2} (target <= 1.3)",
        app_rss / 1024,
        min_rss / 1024,
        app_rss as f64 / min_rss as f64
    );
    println!(
        "CPU over those {} s (share of one core): Session Manager {app_cpu:.2} % (target < 1 %), minimal Tauri app {min_cpu:.2} %",
        idle.as_secs()
    );
    println!(
        "  window hidden (target: the minimal app's floor): Session Manager minimized {hidden_cpu}, closed to the tray {tray_cpu}; minimal Tauri app minimized {min_hidden_cpu}"
    );
    d.stop(data.path()).await;

    let one = direct_signed_in(&app, idle, 1).await;
    let min_direct = direct_cpu(&minimal, &[], Duration::from_secs(10), idle).await;
    println!(
        "CPU over {} s, started directly (no WebDriver), window shown: Session Manager signed in {:.2} % (target < 1 %), minimal Tauri app {min_direct:.2} %",
        idle.as_secs(),
        one.cpu
    );
    per_session(&app, idle).await;
}

/// Every account at once: the cost of each session beyond the first, ten
/// profiles signed in against one, measured one after the other.
async fn per_session(app: &Path, idle: Duration) {
    let one = direct_signed_in(app, idle, 1).await;
    let ten = direct_signed_in(app, idle, 10).await;
    println!(
        "Ten profiles signed in vs one, started directly, {} s idle (no renewal due): wake-ups {:.1}/s vs {:.1}/s, {:+.2} per extra session (target: no more than one session's, plus one per renewal due); memory {} MiB vs {} MiB, {:+.2} MiB per extra session (target: a few MiB); CPU {:.2} % vs {:.2} %",
        idle.as_secs(),
        ten.wakeups,
        one.wakeups,
        (ten.wakeups - one.wakeups) / 9.0,
        ten.rss_kib / 1024,
        one.rss_kib / 1024,
        (ten.rss_kib as f64 - one.rss_kib as f64) / 1024.0 / 9.0,
        ten.cpu,
        one.cpu
    );
}
