//! `sessionctl` as a person runs it: separate processes, the real keychain
//! (Secret Service in the D-Bus session the test command starts), the
//! Playground over real TLS.

use playground::{Options, Playground};
use session_core::storage::vault::{KeyringStore, SecretStore};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

struct Cli {
    config: PathBuf,
    data: tempfile::TempDir,
    _dir: tempfile::TempDir,
    keychain: String,
    /// Everything any run printed, for the leak check.
    printed: std::sync::Mutex<String>,
    /// Variables every run gets (a private D-Bus session's address).
    env: Vec<(String, String)>,
}

impl Cli {
    fn new(pg: &Playground) -> Self {
        Self::with_config(pg.config())
    }

    fn with_config(config: &str) -> Self {
        assert!(
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            "these tests need a Secret Service on the D-Bus session bus; run them through `bash scripts/test.sh`"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).unwrap();
        Self {
            config: path,
            data: tempfile::tempdir().unwrap(),
            _dir: dir,
            keychain: format!("session-manager-test-{}", uuid::Uuid::new_v4()),
            printed: Default::default(),
            env: Vec::new(),
        }
    }

    /// `sessionctl` with this config, data dir and keychain namespace.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionctl"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args);
        cmd.env("SESSION_MANAGER_KEYCHAIN_SERVICE", &self.keychain);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    async fn run_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("sessionctl starts");
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("sessionctl finished")
            .unwrap();
        let mut printed = self.printed.lock().unwrap();
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_env(args, stdin, &[]).await
    }

    /// `login` as alice, `--json` when asked.
    async fn login_alice(&self, json: bool) -> Output {
        let args: &[&str] = if json {
            &["--json", "login", "--username", "alice", "--password-stdin"]
        } else {
            &["login", "--username", "alice", "--password-stdin"]
        };
        self.run(args, Some("alice-pw-1\n")).await
    }

    fn stored(&self) -> Option<String> {
        KeyringStore::new(&self.keychain).get("profile:playground").unwrap()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        for profile in ["playground", "playground-oidc", "second"] {
            let _ = session_core::storage::vault::Vault::new(
                std::sync::Arc::new(KeyringStore::new(&self.keychain)),
                profile,
            )
            .clear();
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    let text = stdout(o);
    serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn assert_no_token_in(pg: &Playground, what: &str, text: &str) {
    let tokens = pg.issued_tokens();
    assert!(!tokens.is_empty());
    for t in tokens {
        assert!(!text.contains(&t), "a token leaked into {what}");
    }
}

/// Every file under `dir`, subfolders included (the diagnostic logs live in
/// `logs/`), with its text.
fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else if e.path().is_file() {
            out.push((
                e.path(),
                String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn login_persists_across_processes_with_4k_tokens_then_logout_deletes() {
    let pg = Playground::start(Options {
        token_padding: 4096,
        ..Options::default()
    })
    .await
    .unwrap();
    let cli = Cli::new(&pg);
    let out = cli.login_alice(true).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let view = json(&out);
    assert_eq!(view["state"], "active");
    assert_eq!(view["persistence"], "keychain");
    assert!(cli.stored().is_some(), "nothing in the keychain");
    assert!(pg.issued_tokens()[0].len() > 4096);

    // A new process finds the session in the keychain.
    let out = cli.run(&["status"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("State        : active"), "{}", stdout(&out));
    assert!(stdout(&out).contains("cust-1001"));

    let out = cli.run(&["--json", "call", "GET", "/api/v2/accounts"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["status"], 200);
    assert_eq!(json(&out)["body"]["customerId"], "cust-1001");

    let out = cli.run(&["--json", "refresh"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["refresh_count"], 1);

    let out = cli.run(&["logout"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(cli.stored(), None, "the keychain entry survived logout");
    assert!(pg.sessions().iter().all(|s| s.signed_out));

    let out = cli.run(&["--json", "status"], None).await;
    assert_eq!(json(&out)["state"], "signed_out");

    let out = cli.run(&["audit"], None).await;
    let audit = stdout(&out);
    for line in [
        "Signed in",
        "Session restored",
        // Queued for a second by the engine; the process ended sooner.
        "API call GET answered 200",
        "Session refreshed (refresh #1)",
        "Signed out (server logout: ok)",
    ] {
        assert!(audit.contains(line), "audit lacks '{line}':\n{audit}");
    }

    // Nothing of any token in what was printed or written.
    assert_no_token_in(&pg, "the output", &cli.printed.lock().unwrap());
    for (path, text) in files_under(cli.data.path()) {
        assert_no_token_in(&pg, &path.display().to_string(), &text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_fails_with_a_stable_code_and_stores_nothing() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::new(&pg);
    let out = cli
        .run(&["login", "--username", "alice", "--password-stdin"], Some("nope\n"))
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error[invalid_credentials]: "),
        "{}",
        stderr(&out)
    );
    assert_eq!(cli.stored(), None);
    let out = cli
        .run(
            &["--json", "login", "--username", "alice", "--password-stdin"],
            Some(""),
        )
        .await;
    assert_eq!(json(&out)["error"]["code"], "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_mismatch_names_the_presented_pin() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let pins = &pg.info().pins;
    let config = pg
        .config()
        .replace(&pins[0], "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let cli = Cli::with_config(&config);
    let out = cli.login_alice(false).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error[pin_mismatch]: "), "{err}");
    assert!(err.contains(&pins[0]), "{err}");
    assert_eq!(cli.stored(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_config_names_profile_field_and_fix() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::with_config(&pg.config().replace("audience = ", "audiense = "));
    let out = cli.run(&["status"], None).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.starts_with("error[config_invalid]: "), "{err}");
    assert!(
        err.contains("profile 'playground'") && err.contains("field 'audiense'") && err.contains("Fix:"),
        "{err}"
    );
    let cli = Cli::new(&pg);
    let out = cli.run(&["--profile", "nope", "status"], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("use one of: playground"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_keychain_the_session_lives_in_memory_and_nothing_is_written() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::new(&pg);
    let no_bus = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")];
    let out = cli
        .run_env(
            &["login", "--username", "alice", "--password-stdin"],
            Some("alice-pw-1\n"),
            &no_bus,
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning[keychain_unavailable]"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("memory only"), "{}", stdout(&out));
    // Nothing went to the keychain, and no file holds a token.
    assert_eq!(cli.stored(), None);
    for (path, text) in files_under(cli.data.path()) {
        assert_no_token_in(&pg, &path.display().to_string(), &text);
    }
    let out = cli.run(&["--json", "status"], None).await;
    assert_eq!(json(&out)["state"], "signed_out");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_renewed_by_the_next_command_and_a_revoked_session_says_so() {
    let pg = Playground::start(Options {
        token_lifetime: Duration::from_secs(2),
        ..Options::default()
    })
    .await
    .unwrap();
    let cli = Cli::new(&pg);
    let out = cli.login_alice(false).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // This test is about time passing: let the 2 s token expire. The
    // refresh token is still good, so the next command renews the session.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let out = cli.run(&["call", "GET", "/api/v2/accounts"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("cust-1001"), "{}", stdout(&out));
    assert_eq!(pg.refresh_calls(), 1);
    // A session the provider ended cannot be renewed: the command says why.
    pg.revoke(Some("alice"));
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let out = cli.run(&["call", "GET", "/api/v2/accounts"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error[session_revoked]"), "{}", stderr(&out));
    assert_eq!(cli.stored(), None, "an ended session stays in the keychain");
}

/// `login --device` (RFC 8628): the page and the code on standard error,
/// the person allows on "another device" (the test's browser), and the
/// process ends signed in; the session renews, and a granted-no-refresh
/// profile says so at login.
#[tokio::test(flavor = "multi_thread")]
async fn device_login_prints_the_page_and_code_and_completes_when_allowed() {
    use tokio::io::AsyncBufReadExt;
    let pg = Playground::start(Options::default()).await.unwrap();
    pg.set_device_interval(Duration::from_secs(1));
    let cli = Cli::new(&pg);
    let mut child = cli
        .command(&["--profile", "playground-oidc", "login", "--device"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (page, code) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut page = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            let line = line.trim().to_owned();
            if line.starts_with("https://") && page.is_none() {
                page = Some(line);
            } else if let (Some(p), true) = (&page, line.len() == 9 && line.as_bytes()[4] == b'-') {
                return (p.clone(), line);
            }
        }
        panic!("sessionctl printed no page and code");
    })
    .await
    .expect("the code in time");
    assert_eq!(page, format!("{}/device", pg.info().oidc_issuer));
    let browser = playground::browser::Browser::for_playground(&pg);
    let done = browser
        .verify_device(&page, &code, "alice", "alice-pw-1", true)
        .await
        .unwrap();
    assert!(done.body.contains("Device signed in"), "{}", done.body);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("State        : active"), "{text}");
    assert!(!text.contains("Renewal      : not possible"), "{text}");
    let out = cli.run(&["--profile", "playground-oidc", "refresh"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // --device for a password profile: refused with what to do.
    let out = cli.run(&["login", "--device"], None).await;
    assert!(
        stderr(&out).contains("--device is for OpenID Connect profiles"),
        "{}",
        stderr(&out)
    );
}

/// A strict provider that grants no refresh token: `login` warns, and
/// `status` says why renewal is impossible and how to fix the profile.
#[tokio::test(flavor = "multi_thread")]
async fn a_session_without_a_refresh_token_says_so_at_login_and_in_status() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let config = pg.config().replace(
        "[profiles.playground-oidc]\n",
        "[profiles.playground-oidc]\noffline_access_prompt = false\n",
    );
    let cli = Cli::with_config(&config);
    let mut child = cli
        .command(&["--no-browser", "--profile", "playground-oidc", "login"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.trim().starts_with("https://") {
                return line.trim().to_owned();
            }
        }
        panic!("no URL");
    })
    .await
    .unwrap();
    let browser = playground::browser::Browser::for_playground(&pg);
    browser.sign_in(&url, "alice", "alice-pw-1").await.unwrap();
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{rest}");
    assert!(
        rest.contains("warning[no_refresh_token]: The provider granted no refresh token"),
        "{rest}"
    );
    let out = cli.run(&["--profile", "playground-oidc", "status"], None).await;
    let text = stdout(&out);
    assert!(text.contains("Renewal      : not possible."), "{text}");
    assert!(text.contains("offline_access_prompt = true"), "{text}");
    assert!(text.contains("Scope        : openid profile email\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_login_prints_the_page_and_completes_in_the_browser() {
    use tokio::io::AsyncBufReadExt;
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::new(&pg);
    // A password is refused for a browser profile, with what to do instead.
    let out = cli
        .run(
            &[
                "--profile",
                "playground-oidc",
                "login",
                "--username",
                "alice",
                "--password-stdin",
            ],
            Some("x\n"),
        )
        .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("error[invalid_state]") && stderr(&out).contains("through the browser"),
        "{}",
        stderr(&out)
    );

    let mut child = cli
        .command(&["--no-browser", "--profile", "playground-oidc", "login"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.trim().strip_prefix("https://") {
                return format!("https://{url}");
            }
        }
        panic!("sessionctl printed no URL");
    })
    .await
    .expect("the URL in time");
    assert!(
        url.starts_with(&format!("{}/authorize?", pg.info().oidc_issuer)),
        "{url}"
    );
    let browser = playground::browser::Browser::for_playground(&pg);
    let page = browser.sign_in(&url, "alice", "alice-pw-1").await.unwrap();
    assert!(page.body.contains("You are signed in"), "{}", page.body);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for line in [
        "State        : active",
        "User         : alice",
        "Name         : Alice Adams <alice@playground.test>",
        "Kept alive by: refresh token",
    ] {
        assert!(text.contains(line), "missing '{line}' in:\n{text}");
    }
    cli.printed.lock().unwrap().push_str(&text);
    // Another process finds it in the keychain.
    let out = cli.run(&["--profile", "playground-oidc", "status"], None).await;
    assert!(stdout(&out).contains("State        : active"), "{}", stdout(&out));
    // Sign-out: all three styles. The sign-out page is one this process
    // serves on loopback (the ID token travels in its POST, in no URL), and
    // sessionctl waits for the browser to load it.
    let mut child = cli
        .command(&["--no-browser", "--profile", "playground-oidc", "logout"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (url, mut printed) = tokio::time::timeout(Duration::from_secs(30), async {
        let mut printed = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            printed.push_str(&line);
            printed.push('\n');
            if let Some(url) = line.trim().strip_prefix("http://127.0.0.1:") {
                return (format!("http://127.0.0.1:{url}"), printed);
            }
        }
        panic!("sessionctl printed no sign-out page: {printed}");
    })
    .await
    .expect("the sign-out page in time");
    assert!(url.contains("/sign-out/"), "{url}");
    let page = browser.open(&url, playground::browser::Action::Look).await.unwrap();
    assert!(page.body.contains("You are signed out"), "{}", page.body);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        printed.push_str(&line);
    }
    assert!(out.status.success(), "{printed}");
    cli.printed.lock().unwrap().push_str(&printed);
    assert_eq!(pg.calls_to("/cis/v1/auth/logout"), 1);
    assert_eq!(pg.calls_to("/oidc/revoke"), 2);
    assert!(KeyringStore::new(&cli.keychain)
        .get("profile:playground-oidc")
        .unwrap()
        .is_none());
    assert_no_token_in(&pg, "the output", &cli.printed.lock().unwrap());
}

/// The peak resident memory (VmHWM) of process `pid`, in bytes, if it runs.
fn peak_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test(flavor = "multi_thread")]
async fn login_against_an_endless_answer_stays_small_and_says_why() {
    use integration::hostile::{Behaviour, Handshake, Hostile, Pki};
    let hostile = Hostile::start(
        Pki::new("idp"),
        None,
        Handshake::Tls,
        vec![("/api/v2/auth/login", Behaviour::Endless)],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, hostile.finhub_config(&hostile.pki.leaf_pin, "")).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionctl"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["login", "--username", "alice", "--password-stdin"])
        .env(
            "SESSION_MANAGER_KEYCHAIN_SERVICE",
            format!("session-manager-test-{}", uuid::Uuid::new_v4()),
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"pw\n").await.unwrap();
    }
    // VmHWM only grows: the last reading before exit is the peak.
    let mut peak = 0;
    let out = loop {
        if let Some(p) = peak_memory(pid) {
            peak = peak.max(p);
        }
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().await.unwrap();
        }
        assert!(
            peak < 64 << 20,
            "sessionctl holds {} MiB and is still reading",
            peak >> 20
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(peak < 64 << 20, "peak {} MiB", peak >> 20);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("error[protocol_error]") && err.contains("1048576 bytes"),
        "{err}"
    );
    eprintln!("peak resident memory: {:.1} MiB", peak as f64 / 1048576.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_input_gets_an_answer_never_a_panic() {
    let pg = Playground::start(Options {
        token_lifetime: Duration::from_secs(6),
        ..Options::default()
    })
    .await
    .unwrap();
    let cli = Cli::new(&pg);
    // A hand-edited audit line with a multibyte character where the
    // fingerprint is cut for display.
    let line = r#"{"time":"2026-01-01T00:00:00Z","profile":"playground","user":"a","session_id":null,"fingerprint":"sha256:0123456789éééé","event":"session_created"}"#;
    std::fs::write(cli.data.path().join("audit.jsonl"), format!("{line}\n")).unwrap();
    let out = cli.run(&["audit"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert!(stdout(&out).contains("Signed in"), "{}", stdout(&out));
    // A --seconds no clock can add: watched until the session ends (the
    // Playground revokes it; the refresh after ~4 s finds out).
    assert!(cli.login_alice(false).await.status.success());
    pg.revoke(Some("alice"));
    let out = cli.run(&["watch", "--seconds", "18446744073709551615"], None).await;
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("error[session_revoked]"), "{}", stderr(&out));
}

/// `sessionctl watch` as a background process, its output collected.
struct Watch {
    child: tokio::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Watch {
    fn start(cli: &Cli, profile: &str) -> Watch {
        use tokio::io::AsyncBufReadExt;
        let mut child = cli
            .command(&["--profile", profile, "watch"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = tokio::io::BufReader::new(pipe).lines();
                while let Ok(Some(l)) = reader.next_line().await {
                    lines.lock().unwrap().push(l);
                }
            });
        }
        Watch { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    async fn wait_for(&self, what: &str, secs: u64, check: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        while !check(&self.text()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "watch did not show {what} within {secs} s:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_out_in_another_process_ends_a_running_watch_within_two_seconds() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::new(&pg);
    assert!(cli.login_alice(false).await.status.success());
    let mut watch = Watch::start(&cli, "playground");
    watch
        .wait_for("the active session", 20, |t| t.contains("State        : active"))
        .await;
    let out = cli.run(&["logout"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let started = tokio::time::Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(5), watch.child.wait())
        .await
        .expect("the watch ended")
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2) + Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(1));
    watch
        .wait_for("why it ended", 2, |t| t.contains("signed out in another process"))
        .await;
    assert_eq!(pg.refresh_calls(), 0, "the watch refreshed a signed-out session");
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_with_different_data_dirs_share_one_refresh() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::new(&pg);
    assert!(cli.login_alice(false).await.status.success());
    pg.set_latency(Duration::from_millis(800));
    let other_data = tempfile::tempdir().unwrap();
    let second = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionctl"));
        cmd.arg("--config")
            .arg(&cli.config)
            .arg("--data-dir")
            .arg(other_data.path())
            .args(args)
            .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &cli.keychain);
        cmd
    };
    let (a, b) = tokio::join!(cli.command(&["refresh"]).output(), second(&["refresh"]).output());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    assert_eq!(pg.refresh_calls(), 1, "both processes redeemed the refresh token");
    assert!(pg.sessions().iter().all(|s| !s.revoked));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_token_past_its_idle_lifetime_ends_the_session_as_expired() {
    let pg = Playground::start(Options {
        token_lifetime: Duration::from_secs(2),
        refresh_idle: Duration::from_secs(3),
        ..Options::default()
    })
    .await
    .unwrap();
    let cli = Cli::new(&pg);
    let out = cli.login_alice(false).await;
    assert!(stdout(&out).contains("Renewable    : until"), "{}", stdout(&out));
    // Both the session token and the refresh token have expired (a test
    // about time passing).
    tokio::time::sleep(Duration::from_millis(4200)).await;
    let out = cli.run(&["status"], None).await;
    assert!(
        stdout(&out).contains("State        : expired"),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("idle lifetime"),
        "the reason is shown: {}",
        stdout(&out)
    );
    assert_eq!(cli.stored(), None);
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_watch_that_slept_past_expiry_renews_on_waking() {
    let pg = Playground::start(Options {
        token_lifetime: Duration::from_secs(3),
        ..Options::default()
    })
    .await
    .unwrap();
    let cli = Cli::new(&pg);
    assert!(cli.login_alice(false).await.status.success());
    pg.set_token_lifetime(Duration::from_secs(600));
    let watch = Watch::start(&cli, "playground");
    watch
        .wait_for("the active session", 20, |t| t.contains("State        : active"))
        .await;
    // The process is stopped (as a laptop's processes are in suspend) past
    // the token's expiry, then continues.
    let pid = watch.child.id().unwrap().to_string();
    let signal = |s: &str| std::process::Command::new("kill").args([s, &pid]).status().unwrap();
    assert!(signal("-STOP").success());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(pg.refresh_calls(), 0);
    assert!(signal("-CONT").success());
    let started = tokio::time::Instant::now();
    while pg.refresh_calls() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "not renewed within 2 s of waking"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watch
        .wait_for("the renewed session", 5, |t| t.contains("Refreshes    : 1"))
        .await;
    assert!(!watch.text().contains("expired"), "{}", watch.text());
}

/// `watch` asked to stop by SIGTERM (kill, a service manager, the end of a
/// desktop session) or SIGHUP (its terminal closed) stops as on Ctrl-C: the
/// renewal in flight lands and is stored, and the process exits 0. With the
/// signals' default action it died mid-request, the provider's rotated
/// refresh token in an answer nobody read.
#[tokio::test(flavor = "multi_thread")]
async fn watch_stopped_by_sigterm_or_sighup_lets_the_renewal_in_flight_land() {
    for signal in ["-TERM", "-HUP"] {
        let pg = Playground::start(Options {
            token_lifetime: Duration::from_secs(6),
            ..Options::default()
        })
        .await
        .unwrap();
        let cli = Cli::new(&pg);
        assert!(cli.login_alice(false).await.status.success());
        let before = cli.stored().expect("the session is in the keychain");
        // The renewal is answered 2 s after the provider rotated the token:
        // the signal arrives while it is in flight, and the new token still
        // has most of its 6 s when it lands.
        pg.slow_next_refresh(Duration::from_secs(2));
        let mut watch = Watch::start(&cli, "playground");
        let started = tokio::time::Instant::now();
        while pg.refresh_calls() == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "no renewal began");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid = watch.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(15), watch.child.wait())
            .await
            .expect("watch exits after the renewal lands")
            .unwrap();
        assert!(
            status.success(),
            "{signal}: watch ended with {status:?}\n{}",
            watch.text()
        );
        assert_eq!(pg.refresh_calls(), 1, "{signal}: one renewal, none replayed");
        let after = cli.stored().expect("the session is still in the keychain");
        assert_ne!(after, before, "{signal}: the renewed session was stored");
        let out = cli.run(&["--json", "status"], None).await;
        // (It may renew again: the new token's six seconds are short.)
        assert_eq!(json(&out)["state"], "active", "{signal}: {}", stderr(&out));
    }
}

/// `sessionctl sessions` lists this and other devices, ends one and all
/// others; at the production limit `login` lists the live sessions and
/// prints the command that ends the oldest, which works.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_and_ended_and_the_limit_offers_the_oldest() {
    let pg = Playground::start(Options {
        mode: playground::Mode::Production,
        session_limit: 2,
        ..Options::default()
    })
    .await
    .unwrap();
    let named = |device: &str| {
        Cli::with_config(
            &pg.config()
                .replacen("tenant_id =", &format!("device_name = \"{device}\"\ntenant_id ="), 1),
        )
    };
    let (a, b, c) = (named("alpha"), named("beta"), named("gamma"));
    assert!(a.login_alice(false).await.status.success());
    pg.set_next_login_origin("198.51.100.4", "Lisbon", "PT");
    assert!(b.login_alice(false).await.status.success());
    let out = a.run(&["sessions"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("alpha  (this device)"), "{text}");
    assert!(
        text.contains("beta\n") && text.contains("198.51.100.4 (Lisbon, PT)"),
        "{text}"
    );

    let out = c.login_alice(false).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("error[session_limit]"), "{err}");
    assert!(
        err.contains("alpha (signed in") && err.contains("beta (signed in"),
        "{err}"
    );
    assert!(
        err.contains("login --username alice --password-stdin --end-oldest"),
        "{err}"
    );
    let out = c
        .run(
            &["login", "--username", "alice", "--password-stdin", "--end-oldest"],
            Some("alice-pw-1\n"),
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));

    let listed = json(&c.run(&["--json", "sessions"], None).await);
    let rows = listed["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    let beta = rows.iter().find(|r| r["device_name"] == "beta").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = c.run(&["sessions", "--end", &beta], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("Ended the session {beta}.")));
    let out = c.run(&["sessions", "--end-others"], None).await;
    assert!(stdout(&out).contains("Ended 0 other sessions."), "{}", stdout(&out));
    // beta learns at its next renewal that its session was ended.
    let out = b.run(&["refresh"], None).await;
    assert!(stderr(&out).starts_with("error[session_revoked]"), "{}", stderr(&out));

    // At the limit again (gamma, beta): delta ends the one it names.
    assert!(b.login_alice(false).await.status.success());
    let d = named("delta");
    let err = stderr(&d.login_alice(false).await);
    assert!(err.contains("--end-session ID"), "{err}");
    let out = d
        .run(
            &[
                "login",
                "--username",
                "alice",
                "--password-stdin",
                "--end-session",
                &gamma_id(&c).await,
            ],
            Some("alice-pw-1\n"),
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = c.run(&["refresh"], None).await;
    assert!(
        stderr(&out).starts_with("error[session_revoked]"),
        "the named one ended: {}",
        stderr(&out)
    );
    assert!(
        b.run(&["refresh"], None).await.status.success(),
        "the other one lives on"
    );
}

/// The id of the `gamma` device's session, as `sessions --json` lists it.
async fn gamma_id(cli: &Cli) -> String {
    let listed = json(&cli.run(&["--json", "sessions"], None).await);
    listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device_name"] == "gamma")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The checks of a `doctor --json` report whose `what` contains `part`.
fn checks<'a>(report: &'a serde_json::Value, part: &str) -> Vec<&'a serde_json::Value> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["what"].as_str().unwrap().contains(part))
        .collect()
}

fn status_of<'a>(report: &'a serde_json::Value, part: &str) -> &'a str {
    let found = checks(report, part);
    assert_eq!(found.len(), 1, "one check named {part}: {report:#}");
    found[0]["status"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_passes_a_healthy_machine_and_shows_the_verified_path() {
    use std::os::unix::fs::PermissionsExt;
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::new(&pg);
    // As the app leaves it (a fresh temporary folder is 0755).
    std::fs::set_permissions(cli.data.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = cli.run(&["--profile", "playground", "--json", "doctor"], None).await;
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["passed"], true);
    assert_eq!(status_of(&report, "config"), "ok");
    // A real round trip through the Secret Service of the test session,
    // which names the process serving it.
    let keychain = &checks(&report, "keychain")[0];
    assert_eq!(keychain["status"], "ok", "{keychain:#}");
    assert!(
        keychain["detail"].as_str().unwrap().contains("gnome-keyring"),
        "{keychain:#}"
    );
    assert_eq!(status_of(&report, "data directory"), "ok");
    let host = pg.info().base_url.trim_start_matches("https://").to_owned();
    assert_eq!(status_of(&report, &format!("{host} dns")), "ok");
    assert_eq!(status_of(&report, &format!("{host} tcp")), "ok");
    let tls = &checks(&report, &format!("{host} tls"))[0];
    assert_eq!(tls["status"], "ok", "{tls:#}");
    assert_eq!(tls["tls"]["version"], "TLSv1_3");
    let pin = &pg.info().pins[0];
    assert_eq!(tls["tls"]["matching_pins"], serde_json::json!([pin]), "{tls:#}");
    assert_eq!(tls["tls"]["presented"][0]["pin"], pin.as_str());
    assert_eq!(tls["tls"]["presented"][0]["on_verified_path"], true);
    // The path ends at the Playground's CA, which the server does not send.
    let path = tls["tls"]["verified_path"].as_array().unwrap();
    assert!(path.len() >= 2, "{tls:#}");
    let clock = &checks(&report, "clock")[0];
    assert_eq!(clock["status"], "ok", "{clock:#}");
    assert!(clock["clock_offset_secs"].as_i64().unwrap().abs() <= 2, "{clock:#}");

    // The text report says the same, one line per check, and a summary.
    let out = cli.run(&["--profile", "playground", "doctor"], None).await;
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok") && l.contains("tls") && l.contains("TLSv1_3")),
        "{text}"
    );
    assert!(text.contains("0 failed."), "{text}");
    assert!(
        text.contains(&format!("certificate 1 (leaf): {pin}, on the verified path")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_each_failure_with_its_fix_and_exits_1() {
    use std::os::unix::fs::PermissionsExt;
    let pg = Playground::start(Options::default()).await.unwrap();
    let info = pg.info();
    let host = info.base_url.trim_start_matches("https://").to_owned();

    // A pin that is not on the path: the app would refuse the server.
    let cli = Cli::with_config(
        &pg.config()
            .replace(&info.pins[0], "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    );
    let out = cli.run(&["--profile", "playground", "--json", "doctor"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(report["passed"], false);
    let tls = &checks(&report, &format!("{host} tls"))[0];
    assert_eq!(tls["status"], "failed", "{tls:#}");
    assert!(tls["detail"].as_str().unwrap().contains(&info.pins[0]), "{tls:#}");
    assert!(tls["fix"].as_str().unwrap().contains("rotated"), "{tls:#}");
    assert_eq!(tls["tls"]["matching_pins"], serde_json::json!([]));

    // The provider's clock ten minutes ahead.
    let cli = Cli::new(&pg);
    pg.set_clock_offset(600);
    let out = cli.run(&["--profile", "playground", "--json", "doctor"], None).await;
    pg.set_clock_offset(0);
    assert_eq!(out.status.code(), Some(1));
    let clock = &checks(&json(&out), "clock")[0].clone();
    assert_eq!(clock["status"], "failed", "{clock:#}");
    assert!(
        (clock["clock_offset_secs"].as_i64().unwrap() - 600).abs() <= 2,
        "{clock:#}"
    );
    assert!(clock["fix"].as_str().unwrap().contains("timedatectl"), "{clock:#}");

    // A data directory others can list: a warning (the app tightens it),
    // a file in it others can read: a failure.
    std::fs::set_permissions(cli.data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = cli.run(&["--profile", "playground", "--json", "doctor"], None).await;
    assert_eq!(out.status.code(), Some(0), "a warning passes");
    let data = &checks(&json(&out), "data directory")[0].clone();
    assert_eq!(data["status"], "warning");
    assert_eq!(data["fix"], format!("chmod 700 {}", cli.data.path().display()));
    std::fs::set_permissions(cli.data.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let audit = cli.data.path().join("audit.jsonl");
    std::fs::write(&audit, "").unwrap();
    std::fs::set_permissions(&audit, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli.run(&["--profile", "playground", "--json", "doctor"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let file = &checks(&json(&out), "data file")[0].clone();
    assert_eq!(file["status"], "failed");
    assert_eq!(file["fix"], format!("chmod 600 {}", audit.display()));
    std::fs::remove_file(&audit).unwrap();

    // No Secret Service on the bus.
    let out = cli
        .run_env(
            &["--profile", "playground", "--json", "doctor"],
            None,
            &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")],
        )
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(status_of(&json(&out), "keychain"), "failed");

    // Nobody listens on the port; a name that does not resolve.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base_line = format!("base_url = \"{}\"", info.base_url);
    let cli = Cli::with_config(&pg.config().replacen(
        &base_line,
        &format!("base_url = \"https://127.0.0.1:{closed}\""),
        1,
    ));
    let out = cli.run(&["--profile", "playground", "--json", "doctor"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    let tcp = &checks(&report, &format!("127.0.0.1:{closed} tcp"))[0];
    assert_eq!(tcp["status"], "failed", "{report:#}");
    assert!(tcp["fix"].as_str().unwrap().contains("firewall"), "{tcp:#}");
    assert!(
        checks(&report, &format!("127.0.0.1:{closed} tls")).is_empty(),
        "no TLS without TCP"
    );
    let cli = Cli::with_config(&pg.config().replacen(
        &base_line,
        &format!("base_url = \"https://doctor-test.invalid:{closed}\""),
        1,
    ));
    let out = cli.run(&["--profile", "playground", "--json", "doctor"], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(status_of(&json(&out), "doctor-test.invalid"), "failed");

    // A config that does not load: the other checks still run.
    let cli = Cli::with_config("[profiles.x]\nprovider = \"finhub\"\nbogus = 1\n");
    let out = cli.run(&["--json", "doctor"], None).await;
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(status_of(&report, "config"), "failed");
    assert_eq!(status_of(&report, "keychain"), "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnostics_and_the_log_tell_support_what_happened_and_hold_no_secret() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::new(&pg);
    let trace = [("SESSION_MANAGER_LOG", "trace")];
    let out = cli
        .run_env(
            &["login", "--username", "alice", "--password-stdin"],
            Some("alice-pw-1\n"),
            &trace,
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [
        &["refresh"][..],
        &["call", "get", "/api/v2/accounts"],
        &["status"],
        &["logout"],
    ] {
        let out = cli.run_env(args, None, &trace).await;
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    // The log: private, with spans that carry the activity ids.
    let log_path = cli.data.path().join("logs/sessionctl.log");
    let log = std::fs::read_to_string(&log_path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&log_path).unwrap().mode() & 0o777, 0o600);
    assert!(log.lines().any(|l| l.contains("sign_in{activity_id=")), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("refresh{activity_id=") && l.contains("request_id=")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("call{activity_id=") && l.contains("/api/v2/accounts")),
        "{log}"
    );
    assert!(log.contains("Signed out"), "audit events are logged: {log}");

    let out = cli.run(&["diagnostics", "--lines", "500"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for part in [
        "Session Manager diagnostics",
        "Keychain   : the Secret Service",
        "Profile playground (finhub, playground)",
        "Clock offsets",
        "Diagnostic log",
        "sign_in{activity_id=",
        "Audit log",
        "Signed out",
    ] {
        assert!(text.contains(part), "{part} in {text}");
    }
    // Pins only in part; no token, password or whole pin anywhere.
    for pin in &pg.info().pins {
        assert!(!text.contains(pin.as_str()), "a whole pin in the diagnostics: {text}");
    }
    assert!(!text.contains("alice-pw-1"));
    assert_no_token_in(&pg, "the diagnostics", &text);
    let out = cli.run(&["--json", "diagnostics"], None).await;
    let report = json(&out);
    assert_eq!(report["profiles"].as_array().unwrap().len(), 2, "{report:#}");
    assert!(
        report["clock"][0]["offset_secs"].as_i64().unwrap().abs() <= 2,
        "{report:#}"
    );
    // Every file the runs left, logs included, is free of tokens.
    for (path, text) in files_under(cli.data.path()) {
        assert_no_token_in(&pg, &path.display().to_string(), &text);
    }
    assert!(!cli.printed.lock().unwrap().contains("alice-pw-1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn completions_man_page_and_help_examples_come_from_the_command_definition() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::new(&pg);
    let out = cli.run(&["completions", "bash"], None).await;
    assert!(out.status.success());
    let bash = stdout(&out);
    assert!(
        bash.contains("complete -F") && bash.contains("doctor") && bash.contains("--password-stdin"),
        "{bash}"
    );
    let out = cli.run(&["man"], None).await;
    assert!(out.status.success());
    assert!(
        !cli.data.path().join("logs").exists(),
        "printing completions or the man page writes no log"
    );
    let man = stdout(&out);
    assert!(man.starts_with(".ie") || man.contains(".TH sessionctl"), "{man}");
    assert!(man.contains("doctor"), "{man}");
    let out = cli.run(&["--help"], None).await;
    assert!(stdout(&out).contains("Examples:") && stdout(&out).contains("sessionctl doctor"));
    // The method is parsed at the edge: any case, and a clear list otherwise.
    let out = cli.run(&["call", "FETCH", "/x"], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("possible values: GET, POST, PUT, PATCH, DELETE"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_the_box_doctor_passes_and_no_config_is_not_found_not_invalid() {
    // The Quick start's machine: no config file anywhere, nothing named.
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let run = |args: &'static [&'static str]| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionctl"));
        cmd.args(args)
            .env_remove("SESSION_MANAGER_CONFIG")
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("SESSION_MANAGER_DATA_DIR", &data)
            .env("SESSION_MANAGER_KEYCHAIN_SERVICE", "session-manager-cli-out-of-the-box");
        async move { cmd.output().await.unwrap() }
    };
    let out = run(&["--json", "doctor"]).await;
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let config = &checks(&report, "config")[0];
    assert_eq!(config["status"], "ok", "{report:#}");
    assert!(
        config["detail"].as_str().unwrap().contains("no config file at"),
        "{config:#}"
    );

    let out = run(&["status"]).await;
    let err = stderr(&out);
    assert!(err.contains("not_configured"), "{err}");
    assert!(!err.contains("invalid configuration"), "{err}");
    assert!(err.contains("add a profile"), "{err}");

    // A file the person named that is not there: not found, with the fix.
    let out = run(&["--config", "/nonexistent/session-manager.toml", "--json", "doctor"]).await;
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out);
    assert_eq!(status_of(&report, "config"), "failed");
    assert!(checks(&report, "config")[0]["detail"]
        .as_str()
        .unwrap()
        .ends_with("not found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_apps_playground_is_found_in_the_data_directory_with_or_without_a_config() {
    // The app on its built-in Playground leaves the profiles in its data
    // directory; the help's examples (`--profile playground`) then work
    // with no config file, and beside a config file of the person's own.
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let pg = Playground::start(Options {
        dir: Some(data.join("playground")),
        ..Options::default()
    })
    .await
    .unwrap();
    std::fs::write(data.join("playground/config.toml"), pg.config()).unwrap();
    let cli = Cli::new(&pg);
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sessionctl"));
        cmd.args(args)
            .env_remove("SESSION_MANAGER_CONFIG")
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("SESSION_MANAGER_DATA_DIR", &data)
            .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &cli.keychain)
            .stdin(std::process::Stdio::piped());
        let stdin = stdin.map(str::to_owned);
        async move {
            use tokio::io::AsyncWriteExt;
            let mut child = cmd
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).await.unwrap();
            }
            drop(input);
            child.wait_with_output().await.unwrap()
        }
    };
    let out = run(
        &[
            "--profile",
            "playground",
            "login",
            "--username",
            "alice",
            "--password-stdin",
        ],
        Some("alice-pw-1\n"),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    // No profile named: the Playground's default.
    let out = run(&["--json", "status"], None).await;
    assert_eq!(json(&out)["profile"], "playground", "{}", stderr(&out));
    assert_eq!(json(&out)["state"], "active");

    // The person's own config with one profile: it stays the default, and
    // the Playground's profiles are there beside it.
    let own = pg
        .config()
        .replace("[profiles.playground]", "[profiles.work]")
        .replace("default_profile = \"playground\"\n", "");
    let own = own.split("[profiles.playground-oidc]").next().unwrap().to_owned();
    std::fs::create_dir_all(home.path().join("config/session-manager")).unwrap();
    std::fs::write(home.path().join("config/session-manager/config.toml"), own).unwrap();
    let out = run(&["--json", "status"], None).await;
    assert_eq!(json(&out)["profile"], "work", "{}", stderr(&out));
    let out = run(&["--json", "--profile", "playground", "status"], None).await;
    assert_eq!(json(&out)["state"], "active", "{}", stderr(&out));
    assert!(run(&["--profile", "playground", "logout"], None).await.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_watch_all_show_every_profile_side_by_side() {
    let pg = Playground::start(Options::default()).await.unwrap();
    // A second FinHub profile on the same provider, for Bob.
    let first = pg
        .config()
        .split("[profiles.playground-oidc]")
        .next()
        .unwrap()
        .to_owned();
    let second = first.split("[profiles.playground]").nth(1).unwrap().to_owned();
    let config = format!("{}\n[profiles.second]{second}", pg.config());
    let cli = Cli::with_config(&config);
    assert!(cli.login_alice(false).await.status.success());
    let out = cli
        .run(
            &["--profile", "second", "login", "--username", "bob", "--password-stdin"],
            Some("bob-pw-2\n"),
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));

    let out = cli.run(&["--json", "status", "--all"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let all = json(&out);
    let by_name = |name: &str| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|v| v["profile"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(all.as_array().unwrap().len(), 3, "{all:#}");
    assert_eq!(by_name("playground")["state"], "active");
    assert_eq!(by_name("playground")["user"], "alice");
    assert_eq!(by_name("second")["state"], "active");
    assert_eq!(by_name("second")["user"], "bob");
    assert_ne!(by_name("playground")["session_id"], by_name("second")["session_id"]);
    assert_eq!(by_name("playground-oidc")["state"], "signed_out");

    // Signing out of one leaves the other.
    assert!(cli.run(&["--profile", "second", "logout"], None).await.status.success());
    let out = cli.run(&["status", "--all"], None).await;
    let text = stdout(&out);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} · ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("playground").starts_with("playground · Active · ends "), "{text}");
    assert_eq!(line("second"), "second · Signed out", "{text}");

    // watch --all keeps the signed-in ones, each line naming its profile.
    let out = cli.run(&["watch", "--all", "--seconds", "1"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(" playground · Active · ends "), "{text}");
    assert!(text.contains(" second · Signed out"), "{text}");

    // --all is every profile: naming one is a usage error.
    let out = cli.run(&["--profile", "second", "status", "--all"], None).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("leave out --profile second"), "{}", stderr(&out));
    assert!(cli.run(&["logout"], None).await.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_add_writes_a_provider_from_its_issuer_and_remove_takes_it_out() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::with_config("# my own providers\n");
    let file = || std::fs::read_to_string(&cli.config).unwrap();
    let (ca, issuer) = (pg.info().ca_cert.clone(), pg.info().oidc_issuer.clone());
    let add = |extra: &'static [&'static str]| {
        let mut args = vec![
            "profile",
            "add",
            "corp",
            "--issuer",
            issuer.as_str(),
            "--ca",
            ca.as_str(),
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, stdin: Option<&'static str>| {
        let cli = &cli;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli.run(&args, stdin).await
        }
    };

    // Without a client id: named, with what to pass.
    let out = run(add(&[]), None).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--client-id"), "{}", stderr(&out));

    // The chain and the proposal are shown; declined, nothing is written.
    let out = run(add(&["--client-id", "session-manager-desktop"]), Some("n\n")).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&pg.info().pins[0]) && text.contains("(on the verified path)"),
        "{text}"
    );
    assert!(text.contains("Nothing written."), "{text}");
    assert_eq!(file(), "# my own providers\n");

    // Accepted: written beside the file's own lines, and it validates.
    let out = run(add(&["--client-id", "session-manager-desktop", "--yes"]), None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        file().starts_with("# my own providers\n") && file().contains("[profiles.corp]"),
        "{}",
        file()
    );
    let out = cli.run(&["profile", "list"], None).await;
    assert!(
        stdout(&out).contains(&format!("corp\toidc\tintegration\t{issuer}")),
        "{}",
        stdout(&out)
    );
    let out = cli.run(&["profile", "show", "corp"], None).await;
    assert!(
        stdout(&out).contains("[profiles.corp]") && stdout(&out).contains(&issuer),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        json(&cli.run(&["--json", "--profile", "corp", "status"], None).await)["state"],
        "signed_out"
    );

    // The name exists; a pin off the chain: named, the file untouched.
    let before = file();
    let out = run(add(&["--client-id", "x", "--yes"]), None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a profile named 'corp' already"),
        "{}",
        stderr(&out)
    );
    let stranger = "sha256/BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
    let mut args = add(&["--client-id", "x", "--yes"]);
    args[2] = "other".into();
    args.extend(["--pin".to_owned(), stranger.to_owned()]);
    let out = run(args, None).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(stranger), "{}", stderr(&out));
    assert_eq!(file(), before);

    // Removed: the file is as it was.
    let out = cli.run(&["profile", "remove", "corp", "--yes"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(file(), "# my own providers\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_add_registers_the_app_where_the_provider_allows_and_remove_deletes_it() {
    let pg = Playground::start(Options::default()).await.unwrap();
    pg.set(playground::Switch::Registration, true);
    let cli = Cli::with_config("");
    let (ca, issuer) = (pg.info().ca_cert.clone(), pg.info().oidc_issuer.clone());
    let out = cli
        .run(
            &["profile", "add", "corp", "--issuer", &issuer, "--ca", &ca, "--yes"],
            None,
        )
        .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Registered Session Manager with the provider as client dyn-"),
        "{}",
        stdout(&out)
    );
    let clients = pg.registered_clients();
    assert_eq!(clients.len(), 1);
    let id = clients[0]["client_id"].as_str().unwrap().to_owned();
    let written = std::fs::read_to_string(&cli.config).unwrap();
    assert!(written.contains(&format!("client_id = \"{id}\"")), "{written}");
    // Its management token is in the keychain, not in the file or the output.
    let kept = KeyringStore::new(&cli.keychain)
        .get("registration:corp")
        .unwrap()
        .unwrap();
    let token = serde_json::from_str::<serde_json::Value>(&kept).unwrap()["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!written.contains(&token) && !stdout(&out).contains(&token));

    let out = cli.run(&["profile", "remove", "corp", "--yes"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("Deleted the app's registration (client {id})")),
        "{}",
        stdout(&out)
    );
    assert!(pg.registered_clients().is_empty());
    assert!(KeyringStore::new(&cli.keychain)
        .get("registration:corp")
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_add_finhub_writes_a_profile_that_signs_in() {
    let pg = Playground::start(Options::default()).await.unwrap();
    let cli = Cli::with_config("");
    let (ca, base) = (pg.info().ca_cert.clone(), pg.base_url().to_owned());
    let args = |address: &str, name: &str| {
        [
            "profile",
            "add",
            name,
            "--finhub",
            address,
            "--tenant",
            "tenant-acme",
            "--audience",
            "session-manager",
            "--ca",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([ca.clone(), "--yes".to_owned()])
        .collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, stdin: Option<&'static str>| {
        let cli = &cli;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli.run(&args, stdin).await
        }
    };
    // Not a FinHub address (no key set there): named, nothing written.
    let out = run(args(&format!("{base}/oidc"), "playground"), None).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no key set at"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&cli.config).unwrap(), "");
    // Without the tenant: a usage error naming it.
    let out = cli.run(&["profile", "add", "x", "--finhub", &base], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--tenant"), "{}", stderr(&out));

    let out = run(args(&base, "playground"), None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Key set: 1 signing key") || stdout(&out).contains("signing keys"),
        "{}",
        stdout(&out)
    );
    // The profile written signs in (the profile is named as the test
    // helpers expect, so the keychain entry is cleaned up).
    assert!(cli.login_alice(false).await.status.success());
    assert_eq!(json(&cli.run(&["--json", "status"], None).await)["state"], "active");
    assert!(cli.run(&["logout"], None).await.status.success());
}

/// A D-Bus session of a test's own with a gnome-keyring in it, so that the
/// test can kill and restart the keychain's daemon without touching the
/// other tests' keychain.
struct PrivateKeychain {
    bus: std::process::Child,
    daemon: std::process::Child,
    address: String,
    dir: tempfile::TempDir,
}

impl PrivateKeychain {
    fn start() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/session-bus.conf");
        let mut bus = std::process::Command::new("dbus-daemon")
            .args([&format!("--config-file={conf}"), "--nofork", "--print-address=1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("dbus-daemon (dbus-daemon package) is installed by scripts/test.sh");
        let mut address = String::new();
        std::io::BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        let daemon = Self::start_daemon(dir.path(), &address);
        let keychain = Self {
            bus,
            daemon,
            address,
            dir,
        };
        keychain.wait_for_service();
        keychain
    }

    /// gnome-keyring-daemon on this bus, its login keyring unlocked with the
    /// password the keyring files in `dir` were made with.
    fn start_daemon(dir: &Path, address: &str) -> std::process::Child {
        use std::io::Write;
        let mut daemon = std::process::Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", address)
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon is installed by scripts/test.sh");
        daemon.stdin.take().unwrap().write_all(b"throwaway").unwrap();
        daemon
    }

    /// `dbus-send --print-reply` on this bus: a method call and its answer.
    fn send(&self, dest: &str, path: &str, method: &str, arg: &str) -> std::process::Output {
        std::process::Command::new("dbus-send")
            .args([
                &format!("--bus={}", self.address),
                "--print-reply",
                &format!("--dest={dest}"),
                path,
                method,
                arg,
            ])
            .output()
            .unwrap()
    }

    fn wait_for_service(&self) {
        let started = std::time::Instant::now();
        loop {
            let out = self.send(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            );
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "gnome-keyring did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon dies as it does on its assertion (SIGKILL here) and a new
    /// one takes the bus name, with the same keyring files.
    fn restart_daemon(&mut self) {
        self.daemon.kill().unwrap();
        self.daemon.wait().unwrap();
        self.daemon = Self::start_daemon(self.dir.path(), &self.address);
        self.wait_for_service();
    }

    /// What the keychain holds under `account` of `service`, as libsecret's
    /// `secret-tool` reads it.
    fn lookup(&self, service: &str, account: &str) -> String {
        let out = std::process::Command::new("secret-tool")
            .args(["lookup", "service", service, "username", account])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("DBUS_SESSION_BUS_ADDRESS".into(), self.address.clone())]
    }
}

impl Drop for PrivateKeychain {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

/// A process keeps one Secret Service connection for its life (the keyring
/// crate's connection per call brought gnome-keyring-daemon down, see
/// storage/vault/secret_service.rs). When the daemon dies and a new one takes
/// its place, that connection's session is unknown to the new daemon: the
/// next write connects again instead of failing, so a running watch stores
/// its renewal in the keychain and does not fall back to memory.
#[tokio::test(flavor = "multi_thread")]
async fn a_watch_stores_its_renewal_after_the_keychain_daemon_restarts() {
    let mut keychain = PrivateKeychain::start();
    let pg = Playground::start(Options {
        token_lifetime: Duration::from_secs(12),
        ..Options::default()
    })
    .await
    .unwrap();
    let mut cli = Cli::new(&pg);
    cli.env = keychain.env();
    assert!(cli.login_alice(false).await.status.success());
    let before = keychain.lookup(&cli.keychain, "profile:playground");
    assert!(!before.is_empty(), "the session is in the private keychain");
    let watch = Watch::start(&cli, "playground");
    watch
        .wait_for("the restored session", 10, |t| t.contains("State        : active"))
        .await;
    keychain.restart_daemon();
    assert_eq!(
        pg.refresh_calls(),
        0,
        "the daemon was restarted before the renewal (else this tests nothing)"
    );
    let started = tokio::time::Instant::now();
    loop {
        let now = keychain.lookup(&cli.keychain, "profile:playground");
        if pg.refresh_calls() > 0 && !now.is_empty() && now != before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the renewal was not stored in the restarted keychain (refreshes: {}):\n{}",
            pg.refresh_calls(),
            watch.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !watch.text().contains("memory only"),
        "watch fell back to memory:\n{}",
        watch.text()
    );
    let out = cli.run(&["--json", "status"], None).await;
    assert_eq!(json(&out)["state"], "active", "{}", stderr(&out));
    assert_eq!(json(&out)["persistence"], "keychain", "{}", stdout(&out));
}

/// Each sessionctl process opens one Secret Service session and makes all
/// its keychain calls through it; the keyring crate opened one per call (two
/// per write), dozens per sign-in, and gnome-keyring-daemon aborts on a race
/// that clients connecting and going in quick succession hit. Counted on
/// the bus, by a monitor of a private D-Bus session.
#[tokio::test(flavor = "multi_thread")]
async fn each_process_opens_one_keychain_session_for_all_its_calls() {
    use tokio::io::AsyncBufReadExt;
    let keychain = PrivateKeychain::start();
    let pg = Playground::start(Options {
        token_padding: 4096,
        ..Options::default()
    })
    .await
    .unwrap();
    let mut cli = Cli::new(&pg);
    cli.env = keychain.env();
    let mut monitor = tokio::process::Command::new("dbus-monitor")
        .args([
            "--address",
            &keychain.address,
            "type='method_call',interface='org.freedesktop.Secret.Service'",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(monitor.stdout.take().unwrap()).lines();
    // The monitor is in place once it has seen a call of ours.
    let probe = keychain.lookup("probe", "probe");
    assert!(probe.is_empty());
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("member=SearchItems")) {
        seen.push(
            tokio::time::timeout(Duration::from_secs(10), lines.next_line())
                .await
                .expect("the monitor sees secret-tool's search")
                .unwrap()
                .unwrap(),
        );
    }
    // Three processes: sign in (a record of 4 KB tokens: a manifest and a
    // dozen chunks written, the previous generation's looked for), status,
    // sign out (every chunk of every generation deleted).
    assert!(cli.login_alice(false).await.status.success());
    let out = cli.run(&["status"], None).await;
    assert!(stdout(&out).contains("stored in the OS keychain"), "{}", stdout(&out));
    let out = cli.run(&["logout"], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // A last look from secret-tool marks the end: the bus delivers to the
    // monitor in order, so everything sessionctl sent is in front of it.
    assert!(keychain.lookup("end-probe", "end-probe").is_empty());
    // (sender, member) of every Secret Service call, and the senders of the
    // end probe (secret-tool's own sessions are not counted).
    let mut calls_seen: Vec<(String, String)> = Vec::new();
    let mut probes = std::collections::HashSet::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the monitor sees the end probe")
            .unwrap()
            .unwrap();
        if line.starts_with("method call") {
            let field = |name: &str| {
                line.split(' ')
                    .find_map(|w| w.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            calls_seen.push((field("sender="), field("member=")));
        } else if line.contains("\"end-probe\"") {
            probes.insert(calls_seen.last().unwrap().0.clone());
            break;
        }
    }
    let _ = monitor.start_kill();
    assert!(keychain.lookup(&cli.keychain, "profile:playground").is_empty());
    let ours: Vec<_> = calls_seen
        .iter()
        .filter(|(sender, _)| !probes.contains(sender))
        .collect();
    let calls = ours.len();
    let opened = ours.iter().filter(|(_, m)| m == "OpenSession").count();
    assert!(calls > 30, "the three commands made {calls} Secret Service calls");
    assert_eq!(opened, 3, "one Secret Service session per process, for {calls} calls");
}

/// A keychain that is locked (and no prompt can unlock it) is named as
/// such, with what to do, and the session stored in it is not touched: once
/// the keychain is unlocked, the same session is back.
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_keychain_is_named_and_its_session_is_back_once_unlocked() {
    let mut keychain = PrivateKeychain::start();
    let pg = Playground::start(Options::default()).await.unwrap();
    let mut cli = Cli::new(&pg);
    cli.env = keychain.env();
    assert!(cli.login_alice(false).await.status.success());
    let stored = keychain.lookup(&cli.keychain, "profile:playground");
    // Lock the login keyring (the Secret Service's Lock needs no prompt).
    let out = keychain.send(
        "org.freedesktop.secrets",
        "/org/freedesktop/secrets",
        "org.freedesktop.Secret.Service.Lock",
        "array:objpath:/org/freedesktop/secrets/collection/login",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for args in [&["status"][..], &["refresh"]] {
        let out = cli.run(args, None).await;
        let text = stdout(&out) + &stderr(&out);
        assert!(
            text.contains("keychain is locked") && text.contains("Unlock it"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("start a Secret Service"), "{args:?}: {text}");
    }
    assert_eq!(pg.refresh_calls(), 0, "nothing was sent to the provider");
    // The daemon starts again with the keyring unlocked (as a new desktop
    // sign-in does): the session is there as it was.
    keychain.restart_daemon();
    assert_eq!(keychain.lookup(&cli.keychain, "profile:playground"), stored);
    let out = cli.run(&["--json", "status"], None).await;
    assert_eq!(json(&out)["state"], "active", "{}", stderr(&out));
    assert_eq!(json(&out)["persistence"], "keychain");
}
