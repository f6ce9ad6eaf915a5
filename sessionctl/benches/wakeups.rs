//! Wake-ups per minute of `sessionctl watch` while its session waits for its
//! renewal time (an 1800 s token, so nothing is due during the window).
//!
//! A wake-up is a context switch of any of the process's threads: the sum of
//! `voluntary_ctxt_switches` and `nonvoluntary_ctxt_switches` over
//! `/proc/<pid>/task/*/status`, read before and after the window. Counts, not
//! times, so a noisy machine changes them little.
//!
//! Needs the keychain (a Secret Service on the D-Bus session bus): run it
//! through `bash scripts/bench.sh`, or `cargo bench -p sessionctl` inside the
//! session `scripts/common.sh`'s `with_test_keyring` makes. The window is
//! 180 s; `WAKEUP_BENCH_SECS` changes it.
//!
//! What wakes it, measured: once when the provider closes the idle HTTP
//! connection (the Playground after 10 s), and a few switches when the
//! connection pool's idle reaper (hyper-util's, every 90 s, reqwest's
//! default idle timeout) runs once more and finds the pool empty. After
//! that, nothing: the scheduler's timer is armed for the renewal time.

use playground::{Options, Playground};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Measured for `sessionctl watch` with an 1800 s token before the engine
/// was rebuilt (issue 10: the scheduler woke every second).
const BEFORE_PER_MINUTE: f64 = 86.0;

fn main() {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!("wakeups: needs a Secret Service on a D-Bus session bus; run `bash scripts/bench.sh`");
        std::process::exit(2);
    }
    let secs: u64 = std::env::var("WAKEUP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let pg = runtime
        .block_on(Playground::start(Options {
            token_lifetime: Duration::from_secs(1800),
            ..Options::default()
        }))
        .expect("the Playground starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, pg.config()).expect("config written");
    let keychain = format!("session-manager-bench-{}", std::process::id());
    let sessionctl = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessionctl"));
        cmd.arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &keychain)
            .env("SESSION_MANAGER_STATE_DIR", dir.path().join("state"));
        cmd
    };
    let mut login = sessionctl(&["login", "--username", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("sessionctl login starts");
    use std::io::Write;
    login.stdin.take().unwrap().write_all(b"alice-pw-1\n").unwrap();
    assert!(login.wait().unwrap().success(), "sessionctl login failed");

    let mut watch = sessionctl(&["watch"])
        .stdout(Stdio::null())
        .spawn()
        .expect("sessionctl watch starts");
    // Let it restore and settle before counting.
    std::thread::sleep(Duration::from_secs(3));
    let before = switches(watch.id());
    // Sampled every 30 s too, to show when the wake-ups happen.
    let mut buckets = Vec::new();
    let mut last = total_of(&before, &before);
    let mut left = secs;
    while left > 0 {
        let step = left.min(30);
        std::thread::sleep(Duration::from_secs(step));
        left -= step;
        let now = total_of(&before, &switches(watch.id()));
        buckets.push(now.saturating_sub(last));
        last = now;
    }
    let after = switches(watch.id());
    let _ = watch.kill();
    let _ = watch.wait();
    let _ = sessionctl(&["logout"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();

    let mut total = 0u64;
    let mut by_thread = BTreeMap::<String, u64>::new();
    for (tid, (name, n)) in &after {
        let start = before.get(tid).map_or(0, |(_, n)| *n);
        let d = n.saturating_sub(start);
        total += d;
        *by_thread.entry(name.clone()).or_default() += d;
    }
    let per_minute = total as f64 * 60.0 / secs as f64;
    println!("sessionctl watch, 1800 s token, {secs} s window");
    println!(
        "  wake-ups per minute: {per_minute:.1} (before the rebuild: about {BEFORE_PER_MINUTE}; target at most 2)"
    );
    println!("  ratio to before: {:.3}", per_minute / BEFORE_PER_MINUTE);
    println!("  per 30 s: {buckets:?}");
    for (name, n) in by_thread.iter().filter(|(_, n)| **n > 0) {
        println!("    {name}: {n}");
    }
}

/// Switches since `before`, over the threads alive now (a thread that ended
/// meanwhile is not counted: its last switches are lost with it).
fn total_of(before: &BTreeMap<u32, (String, u64)>, now: &BTreeMap<u32, (String, u64)>) -> u64 {
    now.iter()
        .map(|(tid, (_, n))| n.saturating_sub(before.get(tid).map_or(0, |(_, b)| *b)))
        .sum()
}

/// Context switches so far, per thread id: (thread name, count).
fn switches(pid: u32) -> BTreeMap<u32, (String, u64)> {
    let mut out = BTreeMap::new();
    let tasks = Path::new("/proc").join(pid.to_string()).join("task");
    let Ok(entries) = std::fs::read_dir(&tasks) else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let mut name = String::new();
        let mut n = 0u64;
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("Name:") {
                name = v.trim().to_owned();
            } else if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                n += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
        out.insert(tid, (name, n));
    }
    out
}
