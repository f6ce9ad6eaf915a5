//! `sessionctl`: the session engine from a terminal.
//!
//! Exit status 0 on success; on failure non-zero, with a stable error code:
//! `error[pin_mismatch]: …` on stderr, or `{"error":{"code","message"}}` on
//! stdout with `--json`. Exit status 2 is a configuration or usage problem.
//! `main` parses (clap, in `cli.rs`), `run` dispatches to one function per
//! subcommand, and `print.rs` formats.

mod cli;
mod print;
mod profiles;

use clap::Parser;
use cli::{Cli, Command, HttpMethod};
use print::{print_metrics, print_report, print_sessions, print_view, warn_memory_only, warn_no_refresh};
use session_core::os::paths;
use session_core::os::stop::asked_to_stop;
use session_core::provider::opener::{NoOpener, Opener, SystemOpener, Tee};
use session_core::provider::Replace;
use session_core::storage::audit::{AuditEvent, AuditRecord};
use session_core::storage::vault::KeyringStore;
use session_core::view::SignInMethod;
use session_core::{Config, Engine, Error, ErrorCode, ErrorInfo, Password, Phase, SessionView};
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

struct Failure(ErrorInfo);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(e.info())
    }
}

fn failure(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure(ErrorInfo::new(code, message))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    // Printing completions or the man page (package builds do) leaves no
    // log and creates no data directory.
    if !matches!(cli.command, Command::Completions { .. } | Command::Man) {
        session_core::support::diaglog::init(
            cli.data_dir.clone().or_else(paths::default_data_dir).as_deref(),
            "sessionctl",
        );
    }
    match run(cli).await {
        Ok(code) => code,
        Err(Failure(info)) => {
            tracing::warn!(code = %info.code, "sessionctl failed");
            if json {
                println!("{}", serde_json::json!({ "error": info }));
            } else {
                eprintln!("error[{}]: {}", info.code, info.message);
            }
            ExitCode::from(if info.code == ErrorCode::ConfigInvalid { 2 } else { 1 })
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    // Commands that need no engine (the doctor examines a broken config
    // too).
    match &cli.command {
        Command::Doctor => return Ok(doctor(&cli).await),
        Command::Diagnostics { lines } => return diagnostics(&cli, *lines).await.map(|()| ExitCode::SUCCESS),
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut cli::command(), "sessionctl", &mut std::io::stdout());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Man => return man().map(|()| ExitCode::SUCCESS),
        Command::Profile(command) => return profiles::run(&cli, command).await.map(|()| ExitCode::SUCCESS),
        _ => {}
    }
    let all = match &cli.command {
        Command::Status { all: true } => Some(None),
        Command::Watch { all: true, seconds } => Some(Some(*seconds)),
        _ => None,
    };
    if let Some(watching) = all {
        let engines = every_profile(&cli)?;
        let outcome = match watching {
            None => status_all(&engines, cli.json).await,
            Some(seconds) => watch_all(&engines, cli.json, seconds).await,
        };
        // Renewals in flight land before the process exits.
        for engine in &engines {
            engine.drain(DRAIN_AT_EXIT).await;
        }
        return outcome;
    }
    let engine = open(&cli)?;
    let json = cli.json;
    let outcome = command(&cli, &engine, json).await;
    // A renewal whose caller went (Ctrl-C in `watch`) may hold a refresh
    // token the provider already rotated: let it land before exiting.
    engine.drain(DRAIN_AT_EXIT).await;
    outcome?;
    Ok(ExitCode::SUCCESS)
}

/// How long the process waits at exit for a renewal in flight.
const DRAIN_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn command(cli: &Cli, engine: &Engine, json: bool) -> Result<(), Failure> {
    match cli.command.clone() {
        Command::Login {
            username,
            password_stdin,
            device,
            end_oldest,
            end_session,
        } => {
            let replace = match (end_oldest, end_session) {
                (_, Some(id)) => Replace::Session(id),
                (true, None) => Replace::Oldest,
                (false, None) => Replace::Nothing,
            };
            login(engine, json, &cli.profile, username, password_stdin, device, replace).await?
        }
        Command::Sessions { end, end_others } => sessions(engine, json, end, end_others).await?,
        Command::Status { .. } => status(engine, json).await?,
        Command::Refresh => refresh(engine, json).await?,
        Command::Logout => logout(engine, json).await?,
        Command::Call { method, path, data } => call(engine, json, method, &path, data).await?,
        Command::Metrics => metrics(engine, json).await?,
        Command::Anomalies { limit } => anomalies(engine, json, limit)?,
        Command::Audit { limit } => audit(engine, json, limit)?,
        Command::Watch { seconds, .. } => watch(engine, json, seconds).await?,
        Command::Doctor
        | Command::Diagnostics { .. }
        | Command::Completions { .. }
        | Command::Man
        | Command::Profile(_) => {}
    }
    Ok(())
}

fn config_path(cli: &Cli) -> Option<std::path::PathBuf> {
    cli.config.clone().or_else(paths::default_config_file)
}

/// Whether the person named the config file (`--config` or the
/// environment), rather than it being the platform's default.
fn config_named(cli: &Cli) -> bool {
    paths::config_named(cli.config.is_some())
}

fn open(cli: &Cli) -> Result<Engine, Failure> {
    let (config, data_dir) = config_and_data(cli)?;
    let profile = config.profile(cli.profile.as_deref()).map_err(Error::Config)?.clone();
    open_profile(cli, profile, &data_dir)
}

/// The config (with the app's Playground's profiles) and the data directory.
fn config_and_data(cli: &Cli) -> Result<(Config, std::path::PathBuf), Failure> {
    let config_path = config_path(cli).ok_or_else(|| {
        failure(
            ErrorCode::ConfigInvalid,
            "no config file: pass --config FILE or set SESSION_MANAGER_CONFIG",
        )
    })?;
    let data_dir = cli.data_dir.clone().or_else(paths::default_data_dir).ok_or_else(|| {
        failure(
            ErrorCode::ConfigInvalid,
            "no data directory: pass --data-dir DIR or set SESSION_MANAGER_DATA_DIR",
        )
    })?;
    Ok((load_config(cli, &config_path, &data_dir)?, data_dir))
}

/// An engine for `profile`, with the browser (or its printed address) as
/// the opener.
fn open_profile(cli: &Cli, profile: session_core::Profile, data_dir: &std::path::Path) -> Result<Engine, Failure> {
    let inner: Arc<dyn Opener> = if cli.no_browser {
        Arc::new(NoOpener)
    } else {
        Arc::new(SystemOpener)
    };
    let opened = cli.no_browser;
    // The URL always goes to stderr, so it can be opened by hand (on another
    // machine, or when no browser starts).
    let opener = Tee::new(inner, move |url| {
        // A sign-out page carries the ID token as a hint: it is not printed
        // (the provider asks for confirmation without it).
        let shown = without_param(url, "id_token_hint");
        if opened {
            eprintln!("Open this page in your browser:\n  {shown}");
        } else {
            eprintln!("Opening your browser at:\n  {shown}");
        }
    });
    Ok(Engine::open_with(
        profile,
        data_dir,
        Arc::new(KeyringStore::from_env()),
        Arc::new(opener),
    )?)
}

/// The config file's profiles, and the app's Playground's (the built-in
/// one, or the demo package's, as the app left them in the data directory)
/// unless the file has its own `playground` profile: the app does the same,
/// so the CLI talks to the Playground the window shows.
fn load_config(cli: &Cli, config_path: &std::path::Path, data_dir: &std::path::Path) -> Result<Config, Failure> {
    let playground = paths::playground_config(data_dir);
    let mut config = if config_path.exists() {
        Config::load(config_path).map_err(Error::from)?
    } else if let Some(path) = playground.as_ref().filter(|_| !config_named(cli)) {
        return Ok(Config::load(path).map_err(Error::from)?);
    } else {
        let fix = if config_named(cli) {
            "check the path given with --config or SESSION_MANAGER_CONFIG"
        } else {
            "add a profile to it (docs/configuration.md) or pass --config FILE; or start the app once: its Playground's profiles then work here too"
        };
        return Err(failure(
            ErrorCode::NotConfigured,
            format!("there is no config file at {}: {fix}", config_path.display()),
        ));
    };
    if let Some(path) = playground.filter(|_| !config.profiles.contains_key("playground")) {
        // The Playground is a guest: a file of it that does not parse
        // (an older app's) does not stand in the way of the person's own.
        if let Ok(theirs) = Config::load(&path) {
            config.add_missing(theirs);
        }
    }
    Ok(config)
}

/// `url` without the query parameter `name`.
fn without_param(url: &str, name: &str) -> String {
    let Ok(mut parsed) = session_core::provider::Url::parse(url) else {
        return "(an address that could not be shown)".into();
    };
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(kept);
    parsed.to_string()
}

/// The session, restored; a failure unless it is active.
async fn active(engine: &Engine) -> Result<SessionView, Failure> {
    let view = engine.restore().await?;
    if view.state != Phase::Active {
        return Err(not_active(&view));
    }
    Ok(view)
}

#[allow(clippy::too_many_arguments)]
async fn login(
    engine: &Engine,
    json: bool,
    profile: &Option<String>,
    username: Option<String>,
    password_stdin: bool,
    device: bool,
    replace: Replace,
) -> Result<(), Failure> {
    let restored = engine.restore().await?;
    if restored.sign_in_method == SignInMethod::Browser {
        if username.is_some() || password_stdin {
            return Err(failure(
                ErrorCode::InvalidState,
                "this profile signs in through the browser (OpenID Connect); run `sessionctl login` without --username and --password-stdin",
            ));
        }
        let view = browser_login(engine, json, device).await?;
        warn_memory_only(&view, json);
        warn_no_refresh(&view, json);
        print_view(&view, json);
        return Ok(());
    }
    if device {
        return Err(failure(
            ErrorCode::InvalidState,
            "--device is for OpenID Connect profiles; this profile signs in with --username and --password-stdin",
        ));
    }
    let (Some(username), true) = (username, password_stdin) else {
        return Err(failure(
            ErrorCode::InvalidState,
            "this profile signs in with a password: pass --username U --password-stdin and pipe the password in",
        ));
    };
    let mut password = String::new();
    std::io::stdin().lock().read_line(&mut password).map_err(|e| {
        failure(
            ErrorCode::InvalidCredentials,
            format!("cannot read the password from standard input: {e}"),
        )
    })?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(failure(ErrorCode::InvalidCredentials, "no password on standard input; pipe it in, e.g. `printf %s \"$PW\" | sessionctl login --username U --password-stdin`"));
    }
    let view = match engine
        .sign_in_password(&username, Password::new(password), replace)
        .await
    {
        Err(e) if e.code() == ErrorCode::SessionLimit => {
            let mut info = e.info();
            let flag = profile.as_ref().map(|p| format!(" --profile {p}")).unwrap_or_default();
            info.message = format!(
                "{}\nTo end the oldest session and sign in:\n  sessionctl{flag} login --username {username} --password-stdin --end-oldest\nor end one of them by its id and sign in:\n  sessionctl{flag} login --username {username} --password-stdin --end-session ID",
                info.message,
            );
            return Err(Failure(info));
        }
        other => other?,
    };
    warn_memory_only(&view, json);
    print_view(&view, json);
    Ok(())
}

/// Sign in through the browser, or on another device; Ctrl-C cancels. A
/// device sign-in's page and code are printed on standard error as soon as
/// the provider hands them out.
async fn browser_login(engine: &Engine, json: bool, device: bool) -> Result<SessionView, Failure> {
    if !json {
        eprintln!(
            "Signing in {} (Ctrl-C cancels).",
            if device {
                "on another device"
            } else {
                "through your browser"
            }
        );
    }
    let mut views = engine.subscribe();
    let sign_in = async {
        if device {
            engine.sign_in_device().await
        } else {
            engine.sign_in_browser().await
        }
    };
    tokio::pin!(sign_in);
    let stop = asked_to_stop();
    tokio::pin!(stop);
    let mut shown = false;
    loop {
        tokio::select! {
            result = &mut sign_in => return Ok(result?),
            view = views.recv() => {
                let wait = view.ok().and_then(|v| v.browser).filter(|b| b.user_code.is_some());
                if let (Some(b), false) = (wait, shown) {
                    shown = true;
                    let code = b.user_code.unwrap_or_default();
                    eprintln!("On another device, open:\n  {}\nand enter the code:\n  {code}", b.url);
                    if let Some(complete) = b.url_complete {
                        eprintln!("(or open {complete}, which has the code filled in)");
                    }
                    eprintln!("Waiting until {} …", b.deadline.with_timezone(&chrono::Local).format("%H:%M:%S"));
                }
            }
            _ = &mut stop => {
                let _ = engine.cancel_sign_in();
                return Ok(sign_in.await?);
            }
        }
    }
}

async fn sessions(engine: &Engine, json: bool, end: Option<String>, end_others: bool) -> Result<(), Failure> {
    active(engine).await?;
    if let Some(id) = end {
        engine.end_session(&id).await?;
        if !json {
            println!("Ended the session {id}.");
        }
    } else if end_others {
        let n = engine.end_other_sessions().await?;
        if !json {
            println!("Ended {}.", print::plural(n, "other session", "other sessions"));
        }
    }
    let list = engine.sessions().await?;
    if json {
        println!("{}", serde_json::json!({ "sessions": list }));
    } else {
        print_sessions(&list);
    }
    Ok(())
}

async fn status(engine: &Engine, json: bool) -> Result<(), Failure> {
    let view = engine.restore().await?;
    warn_memory_only(&view, json);
    print_view(&view, json);
    Ok(())
}

async fn refresh(engine: &Engine, json: bool) -> Result<(), Failure> {
    active(engine).await?;
    print_view(&engine.refresh_now().await?, json);
    Ok(())
}

async fn logout(engine: &Engine, json: bool) -> Result<(), Failure> {
    engine.restore().await?;
    let report = engine.sign_out().await?;
    if engine.sign_out_page_pending() {
        // The provider's sign-out goes through a page this process serves
        // (it keeps the ID token out of URLs): stay for it.
        if !json {
            eprintln!("Waiting for your browser to load the sign-out page (Ctrl-C to skip)…");
        }
        tokio::select! {
            _ = engine.settle(session_core::provider::oidc::SIGN_OUT_PAGE_TIMEOUT) => {}
            _ = asked_to_stop() => {}
        }
    }
    if let Some(e) = &report.server_error {
        if !json {
            eprintln!(
                "warning[{}]: the local session is cleared, but the provider's logout failed: {}",
                e.code, e.message
            );
        }
    }
    if json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!("Signed out.");
    }
    Ok(())
}

async fn call(
    engine: &Engine,
    json: bool,
    method: HttpMethod,
    path: &str,
    data: Option<serde_json::Value>,
) -> Result<(), Failure> {
    active(engine).await?;
    let response = engine.call(method.into(), path, data).await?;
    if json {
        let body: serde_json::Value =
            serde_json::from_str(&response.body).unwrap_or(serde_json::Value::String(response.body.clone()));
        println!("{}", serde_json::json!({"status": response.status, "body": body}));
    } else {
        println!("{}", response.body);
    }
    if !(200..300).contains(&response.status) {
        return Err(failure(
            ErrorCode::ServerError,
            format!("the server answered {}", response.status),
        ));
    }
    Ok(())
}

async fn metrics(engine: &Engine, json: bool) -> Result<(), Failure> {
    let m = engine.metrics().await?;
    if json {
        println!("{}", serde_json::to_string(&m).unwrap_or_default());
    } else {
        print_metrics(&m);
    }
    Ok(())
}

/// The newest audit records, newest first (all of them: `usize::MAX`).
fn recent(engine: &Engine, limit: usize) -> Result<Vec<AuditRecord>, Failure> {
    engine.audit_log().recent(limit).map_err(|e| {
        failure(
            ErrorCode::Internal,
            format!("cannot read the audit log {}: {e}", engine.audit_log().path().display()),
        )
    })
}

fn anomalies(engine: &Engine, json: bool, limit: usize) -> Result<(), Failure> {
    let records: Vec<AuditRecord> = recent(engine, usize::MAX)?
        .into_iter()
        .filter(|r| matches!(r.event, AuditEvent::Anomaly { .. }))
        .take(limit)
        .collect();
    if !json && records.is_empty() {
        println!("Nothing unusual recorded.");
    }
    for r in records {
        if json {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
        } else if let AuditEvent::Anomaly {
            kind,
            reason,
            signed_out,
        } = &r.event
        {
            println!(
                "{}  {:<20} {reason}{}",
                r.time.format("%Y-%m-%d %H:%M:%S"),
                kind,
                if *signed_out { " (signed out)" } else { "" }
            );
        }
    }
    Ok(())
}

fn audit(engine: &Engine, json: bool, limit: usize) -> Result<(), Failure> {
    for r in recent(engine, limit)? {
        if json {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
        } else {
            println!("{}", print::audit_line(&r));
        }
    }
    Ok(())
}

async fn watch(engine: &Engine, json: bool, seconds: Option<u64>) -> Result<(), Failure> {
    // Before the restore, which may start a renewal.
    let stop = asked_to_stop();
    tokio::pin!(stop);
    let mut events = engine.subscribe();
    let view = engine.restore().await?;
    print_view(&view, json);
    if !view.state.has_session() {
        return Err(not_active(&view));
    }
    let _scheduler = engine.start();
    // A huge --seconds means "until the session ends", not a panic.
    let deadline = seconds.and_then(|s| tokio::time::Instant::now().checked_add(Duration::from_secs(s)));
    loop {
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, events.recv()).await.ok(),
                None => Some(events.recv().await),
            }
        };
        tokio::select! {
            ev = next => match ev {
                None => return Ok(()),
                Some(Ok(view)) => {
                    if !json {
                        println!("--- {} ---", chrono::Utc::now().format("%H:%M:%S"));
                    }
                    print_view(&view, json);
                    if matches!(view.state, Phase::Expired | Phase::Revoked | Phase::SignedOut) {
                        return Err(not_active(&view));
                    }
                }
                Some(Err(_)) => {}
            },
            _ = &mut stop => return Ok(()),
        }
    }
}

/// An engine per profile of the config (`--all`).
fn every_profile(cli: &Cli) -> Result<Vec<Engine>, Failure> {
    if let Some(name) = &cli.profile {
        return Err(failure(
            ErrorCode::ConfigInvalid,
            format!("--all shows every profile: leave out --profile {name}"),
        ));
    }
    let (config, data_dir) = config_and_data(cli)?;
    config
        .profiles
        .into_values()
        .map(|p| open_profile(cli, p, &data_dir))
        .collect()
}

/// `status --all`: every profile's session, restored side by side; one that
/// cannot be read says why on its line, and the exit status is then 1.
async fn status_all(engines: &[Engine], json: bool) -> Result<ExitCode, Failure> {
    let restoring: Vec<_> = engines
        .iter()
        .cloned()
        .map(|e| tokio::spawn(async move { e.restore().await.map_err(|e| e.info()) }))
        .collect();
    let mut outcomes = Vec::new();
    for (engine, task) in engines.iter().zip(restoring) {
        let outcome = task
            .await
            .unwrap_or_else(|e| Err(ErrorInfo::new(ErrorCode::Internal, e.to_string())));
        outcomes.push((engine.profile().name.clone(), outcome));
    }
    let failed = outcomes.iter().any(|(_, o)| o.is_err());
    let now = chrono::Utc::now();
    if json {
        let all: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|(name, outcome)| match outcome {
                Ok(view) => serde_json::to_value(view).unwrap_or_default(),
                Err(info) => serde_json::json!({ "profile": name, "error": info }),
            })
            .collect();
        println!("{}", serde_json::Value::Array(all));
    } else {
        for (name, outcome) in &outcomes {
            match outcome {
                Ok(view) => println!("{}", view.status_line(now)),
                Err(info) => println!("{name} · error[{}]: {}", info.code, info.message),
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `watch --all`: keep every signed-in profile's session alive, each on its
/// own schedule, printing each transition with its profile's name, until
/// the last session ends, `seconds` pass or Ctrl-C.
async fn watch_all(engines: &[Engine], json: bool, seconds: Option<u64>) -> Result<ExitCode, Failure> {
    // Before the restores, which may start renewals.
    let stop = asked_to_stop();
    tokio::pin!(stop);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<SessionView>();
    let mut watched = Vec::new();
    for engine in engines {
        let mut events = engine.subscribe();
        let view = engine.restore().await?;
        print_tagged(&view, json);
        if !view.state.has_session() {
            continue;
        }
        watched.push(engine.start());
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(view) => {
                        if tx.send(view).is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }
    drop(tx);
    if watched.is_empty() {
        return Err(failure(
            ErrorCode::NotSignedIn,
            "no profile is signed in: sign in to one with `sessionctl --profile NAME login`",
        ));
    }
    let mut live = watched.len();
    let deadline = seconds.and_then(|s| tokio::time::Instant::now().checked_add(Duration::from_secs(s)));
    loop {
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, rx.recv()).await.ok().flatten(),
                None => rx.recv().await,
            }
        };
        tokio::select! {
            view = next => match view {
                None => return Ok(ExitCode::SUCCESS),
                Some(view) => {
                    print_tagged(&view, json);
                    if matches!(view.state, Phase::Expired | Phase::Revoked | Phase::SignedOut) {
                        live -= 1;
                        if live == 0 {
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                }
            },
            _ = &mut stop => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// A view in `watch --all`: its profile's line with the time (text), or
/// the view (JSON, which names the profile).
fn print_tagged(view: &SessionView, json: bool) {
    if json {
        println!("{}", serde_json::to_string(view).unwrap_or_default());
    } else {
        println!(
            "{} {}",
            chrono::Local::now().format("%H:%M:%S"),
            view.status_line(chrono::Utc::now())
        );
    }
}

/// Every check, printed; exit 0 when none failed, 1 otherwise.
async fn doctor(cli: &Cli) -> ExitCode {
    let doctor = session_core::support::doctor::Doctor {
        config_file: config_path(cli),
        config_given: config_named(cli),
        profile: cli.profile.clone(),
        data_dir: cli.data_dir.clone().or_else(paths::default_data_dir),
        store: Arc::new(KeyringStore::from_env()),
    };
    let report = doctor.examine().await;
    if cli.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print_report(&report);
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

async fn diagnostics(cli: &Cli, lines: usize) -> Result<(), Failure> {
    let config_file = config_path(cli);
    let (profiles, config_error) = session_core::support::diagnostics::load_profiles(config_file.as_deref());
    let inputs = session_core::support::diagnostics::Inputs {
        config_file: config_file.map(|p| p.display().to_string()),
        profiles,
        config_error,
        data_dir: cli.data_dir.clone().or_else(paths::default_data_dir),
        store: Arc::new(KeyringStore::from_env()),
        lines,
        front: format!("sessionctl {}", env!("CARGO_PKG_VERSION")),
    };
    let report = session_core::support::diagnostics::collect(&inputs).await;
    if cli.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

fn man() -> Result<(), Failure> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cli::command())
        .render(&mut out)
        .map_err(|e| failure(ErrorCode::Internal, format!("cannot render the man page: {e}")))?;
    use std::io::Write;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| failure(ErrorCode::Internal, format!("cannot write the man page: {e}")))
}

fn not_active(view: &SessionView) -> Failure {
    match view.state {
        Phase::Expired => failure(ErrorCode::SessionExpired, "the session has expired; sign in again"),
        Phase::Revoked => failure(
            ErrorCode::SessionRevoked,
            format!(
                "the session was revoked: {}",
                view.last_error
                    .as_ref()
                    .map(|e| e.message.as_str())
                    .unwrap_or("by the provider")
            ),
        ),
        _ => match &view.last_error {
            // Signed out somewhere else: say so.
            Some(e) if e.code == ErrorCode::NotSignedIn => failure(ErrorCode::NotSignedIn, e.message.clone()),
            // The keychain could not be read (missing, locked): a session
            // may be stored there, and signing in again would not help.
            Some(e) if e.code == ErrorCode::KeychainUnavailable => {
                failure(ErrorCode::KeychainUnavailable, e.message.clone())
            }
            _ => failure(ErrorCode::NotSignedIn, "not signed in; run `sessionctl login` first"),
        },
    }
}
