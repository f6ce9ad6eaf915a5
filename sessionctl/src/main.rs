//! `sessionctl`: the session engine from a terminal.
//!
//! Exit status 0 on success; on failure non-zero, with a stable error code:
//! `error[pin_mismatch]: …` on stderr, or `{"error":{"code","message"}}` on
//! stdout with `--json`. Exit status 2 is a configuration or usage problem.

use clap::{Parser, Subcommand};
use session_core::audit::{AuditEvent, AuditRecord};
use session_core::paths;
use session_core::provider::opener::{NoOpener, Opener, SystemOpener, Tee};
use session_core::vault::KeyringStore;
use session_core::view::{ExtendAccess, Persistence, SignInMethod};
use session_core::{Config, Engine, Error, ErrorCode, ErrorInfo, Password, Phase, SessionView};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Sign in to an identity provider, keep the session fresh, sign out."
)]
struct Cli {
    /// Config file (default: SESSION_MANAGER_CONFIG or the platform's config dir).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Profile to use (default: the file's default_profile, or its only one).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Where the audit log and lock files go.
    #[arg(long, global = true, env = "SESSION_MANAGER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON (a SessionView, a response or an error) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Do not start a browser (OpenID Connect): print the page to open instead.
    #[arg(long, global = true)]
    no_browser: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in. FinHub profiles: --username with the password on standard
    /// input. OpenID Connect profiles: in the browser (the URL is printed).
    Login {
        #[arg(long)]
        username: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// OpenID Connect: sign in on another device (RFC 8628). Prints a
        /// page and a code to enter there; for SSH sessions and machines
        /// without a browser.
        #[arg(long)]
        device: bool,
        /// At the provider's concurrent-session limit, end your oldest
        /// session and sign in (FinHub).
        #[arg(long)]
        end_oldest: bool,
    },
    /// Your sessions on other devices (FinHub): list them, or end one or
    /// all others.
    Sessions {
        /// End the session with this id (from the list).
        #[arg(long, conflicts_with = "end_others")]
        end: Option<String>,
        /// End every session but this one.
        #[arg(long)]
        end_others: bool,
    },
    /// Show the session (restores it from the keychain, refreshes it if due).
    Status,
    /// Refresh the session now.
    Refresh,
    /// Sign out: always clears the local session, then tells the provider.
    Logout,
    /// Call the provider's API with the session's token and headers.
    Call {
        /// GET, POST, PUT, PATCH or DELETE.
        method: String,
        /// A path below the profile's base URL, e.g. /api/v2/accounts.
        path: String,
        /// A JSON request body.
        #[arg(long)]
        data: Option<String>,
    },
    /// Session metrics from the audit log: per session and for the
    /// profile (durations, refreshes and their latency, API calls,
    /// failures, time offline, locations).
    Metrics,
    /// Show the unusual things the app noticed (newest first): new
    /// locations, concurrent sessions, API bursts, odd hours, clocks.
    Anomalies {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show the newest audit records, newest first.
    Audit {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Keep the session alive in the foreground, printing each transition.
    Watch {
        /// Stop after this many seconds (default: until the session ends or Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
    },
}

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
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(info)) => {
            if json {
                println!("{}", serde_json::json!({ "error": info }));
            } else {
                eprintln!("error[{}]: {}", info.code, info.message);
            }
            ExitCode::from(if info.code == ErrorCode::ConfigInvalid { 2 } else { 1 })
        }
    }
}

fn open(cli: &Cli) -> Result<Engine, Failure> {
    let config_path = cli.config.clone().or_else(paths::default_config_file).ok_or_else(|| {
        failure(
            ErrorCode::ConfigInvalid,
            "no config file: pass --config FILE or set SESSION_MANAGER_CONFIG",
        )
    })?;
    let config = Config::load(&config_path).map_err(Error::from)?;
    let profile = config.profile(cli.profile.as_deref()).map_err(Error::Config)?.clone();
    let data_dir = cli.data_dir.clone().or_else(paths::default_data_dir).ok_or_else(|| {
        failure(
            ErrorCode::ConfigInvalid,
            "no data directory: pass --data-dir DIR or set SESSION_MANAGER_DATA_DIR",
        )
    })?;
    let inner: std::sync::Arc<dyn Opener> = if cli.no_browser {
        std::sync::Arc::new(NoOpener)
    } else {
        std::sync::Arc::new(SystemOpener)
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
        &data_dir,
        std::sync::Arc::new(KeyringStore::from_env()),
        std::sync::Arc::new(opener),
    )?)
}

/// `url` without the query parameter `name`.
fn without_param(url: &str, name: &str) -> String {
    let Ok(mut parsed) = reqwest_url(url) else {
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

fn reqwest_url(url: &str) -> Result<session_core::provider::Url, ()> {
    session_core::provider::Url::parse(url).map_err(|_| ())
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>, now: chrono::DateTime<chrono::Utc>) -> String {
    match t {
        None => "-".into(),
        Some(t) => {
            let secs = (t - now).num_seconds();
            let rel = if secs >= 0 {
                format!("in {}m {:02}s", secs / 60, secs % 60)
            } else {
                format!("{}m {:02}s ago", -secs / 60, -secs % 60)
            };
            format!("{} ({rel})", t.format("%Y-%m-%d %H:%M:%S UTC"))
        }
    }
}

fn print_view(view: &SessionView, json: bool) {
    if json {
        println!("{}", serde_json::to_string(view).unwrap_or_default());
        return;
    }
    let now = chrono::Utc::now();
    let state = serde_json::to_value(view.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    println!(
        "Profile      : {} ({}, {})",
        view.profile, view.environment, view.provider
    );
    println!("State        : {state}");
    if let Some(user) = &view.user {
        println!("User         : {user}");
    }
    if view.name.is_some() || view.email.is_some() {
        let name = [view.name.clone(), view.email.as_ref().map(|e| format!("<{e}>"))]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        println!("Name         : {name}");
    }
    if view.state.has_session() {
        println!("Customer     : {}", view.customer.as_deref().unwrap_or("-"));
        println!("Tenant       : {}", view.tenant.as_deref().unwrap_or("-"));
        println!("Scope        : {}", view.scope.as_deref().unwrap_or("-"));
        if let Some(notice) = &view.renewal_notice {
            println!("Renewal      : not possible. {notice}");
        }
        println!("Expires      : {}", when(view.expires_at, now));
        if view.renewable_until.is_some() {
            println!("Renewable    : until {}", when(view.renewable_until, now));
        }
        if let Some(at) = view.idle_sign_out_at {
            println!(
                "Idle sign-out: {} unless there is activity (the profile's idle timeout)",
                when(Some(at), now)
            );
        }
        if let Some(at) = view.ends_at {
            println!("Session ends : {} (the profile's absolute limit)", when(Some(at), now));
        }
        if let Some(report) = &view.pin_report {
            println!("Pins         : REPORT-ONLY, mismatch: {report}");
        }
        if let Some(backup) = &view.backup_endpoint {
            println!("Endpoint     : using backup endpoint {backup} (the primary failed; it is tried again from time to time)");
        }
        if view.offline {
            println!("Connection   : offline, retrying (the session token has expired; it is renewed as soon as the provider answers)");
        }
        match view.extend_access {
            ExtendAccess::Refresh => {
                println!("Kept alive by: refresh token");
                println!("Next refresh : {}", when(view.next_refresh_at, now));
            }
            ExtendAccess::Reauthenticate => {
                println!("Kept alive by: signing in again (re-authentication)");
                println!("Next silent  : {}", when(view.next_refresh_at, now));
                let note = if view.reauth_needed || view.next_refresh_at.is_none() {
                    "run `sessionctl login`"
                } else {
                    "unless a silent sign-in extends it first"
                };
                println!("Sign in by   : {} ({note})", when(view.expires_at, now));
            }
        }
        let last = match &view.last_refresh {
            None => String::new(),
            Some(r) => format!(
                " (last {} at {})",
                if r.ok { "succeeded" } else { "failed" },
                r.at.format("%H:%M:%S")
            ),
        };
        println!("Refreshes    : {}{last}", view.refresh_count);
        println!(
            "Keychain     : {}",
            match view.persistence {
                Persistence::Keychain => "stored in the OS keychain",
                Persistence::MemoryOnly => "UNAVAILABLE: memory only, this session will not survive a restart",
            }
        );
    }
    if let Some(e) = &view.last_error {
        println!("Last error   : [{}] {}", e.code, e.message);
    }
}

fn warn_memory_only(view: &SessionView, json: bool) {
    if view.persistence == Persistence::MemoryOnly && !json {
        eprintln!("warning[keychain_unavailable]: the OS keychain is not available; the session is kept in memory only and ends with this process");
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    if let Command::Audit { limit } = &cli.command {
        let engine = open(&cli)?;
        let records: Vec<AuditRecord> = engine.audit_log().recent(*limit).map_err(|e| {
            failure(
                ErrorCode::Internal,
                format!("cannot read the audit log {}: {e}", engine.audit_log().path().display()),
            )
        })?;
        for r in records {
            if json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                println!(
                    "{}  {:<8} {:<10} {}",
                    r.time.format("%Y-%m-%d %H:%M:%S"),
                    r.user.as_deref().unwrap_or("-"),
                    r.fingerprint
                        .as_deref()
                        .map(|f| f.chars().take(19).collect::<String>())
                        .unwrap_or_else(|| "-".into()),
                    r.event.describe()
                );
            }
        }
        return Ok(());
    }
    if let Command::Anomalies { limit } = &cli.command {
        let engine = open(&cli)?;
        let records: Vec<AuditRecord> = engine
            .audit_log()
            .recent(usize::MAX)
            .map_err(|e| failure(ErrorCode::Internal, format!("cannot read the audit log: {e}")))?
            .into_iter()
            .filter(|r| matches!(r.event, AuditEvent::Anomaly { .. }))
            .take(*limit)
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
        return Ok(());
    }
    let engine = open(&cli)?;
    let cli_profile = cli.profile.clone();
    match cli.command {
        Command::Login {
            username,
            password_stdin,
            device,
            end_oldest,
        } => {
            let restored = engine.restore().await?;
            if restored.sign_in_method == SignInMethod::Browser {
                if username.is_some() || password_stdin {
                    return Err(failure(
                        ErrorCode::InvalidState,
                        "this profile signs in through the browser (OpenID Connect); run `sessionctl login` without --username and --password-stdin",
                    ));
                }
                let view = browser_login(&engine, json, device).await?;
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
                .sign_in_password(&username, Password::new(password), end_oldest)
                .await
            {
                Err(e) if e.code() == ErrorCode::SessionLimit => {
                    let mut info = e.info();
                    info.message = format!(
                        "{}\nTo end the oldest session and sign in:\n  sessionctl{} login --username {username} --password-stdin --end-oldest\nor end one with `sessionctl sessions --end ID` from a signed-in device.",
                        info.message,
                        profile_flag(&cli_profile),
                    );
                    return Err(Failure(info));
                }
                other => other?,
            };
            warn_memory_only(&view, json);
            print_view(&view, json);
        }
        Command::Metrics => {
            let m = engine.metrics().await?;
            if json {
                println!("{}", serde_json::to_string(&m).unwrap_or_default());
            } else {
                print_metrics(&m);
            }
        }
        Command::Sessions { end, end_others } => {
            let view = engine.restore().await?;
            if view.state != Phase::Active {
                return Err(not_active(&view));
            }
            if let Some(id) = end {
                engine.end_session(&id).await?;
                if !json {
                    println!("Ended the session {id}.");
                }
            } else if end_others {
                let n = engine.end_other_sessions().await?;
                if !json {
                    println!("Ended {n} other session(s).");
                }
            }
            let list = engine.sessions().await?;
            if json {
                println!("{}", serde_json::json!({ "sessions": list }));
            } else {
                print_sessions(&list);
            }
        }
        Command::Status => {
            let view = engine.restore().await?;
            warn_memory_only(&view, json);
            print_view(&view, json);
        }
        Command::Refresh => {
            let view = engine.restore().await?;
            if view.state != Phase::Active {
                return Err(not_active(&view));
            }
            print_view(&engine.refresh_now().await?, json);
        }
        Command::Logout => {
            engine.restore().await?;
            let report = engine.sign_out().await?;
            if engine.sign_out_page_pending() {
                // The provider's sign-out goes through a page this process
                // serves (it keeps the ID token out of URLs): stay for it.
                if !json {
                    eprintln!("Waiting for your browser to load the sign-out page (Ctrl-C to skip)…");
                }
                tokio::select! {
                    _ = engine.settle(session_core::provider::oidc::SIGN_OUT_PAGE_TIMEOUT) => {}
                    _ = tokio::signal::ctrl_c() => {}
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
        }
        Command::Call { method, path, data } => {
            let method = reqwest_method(&method)?;
            let body = match data {
                None => None,
                Some(d) => Some(
                    serde_json::from_str(&d)
                        .map_err(|e| failure(ErrorCode::InvalidState, format!("--data is not JSON: {e}")))?,
                ),
            };
            let view = engine.restore().await?;
            if view.state != Phase::Active {
                return Err(not_active(&view));
            }
            let response = engine.call(method, &path, body).await?;
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
        }
        Command::Watch { seconds } => {
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
                        None => break,
                        Some(Ok(view)) => {
                            if json {
                                print_view(&view, true);
                            } else {
                                println!("--- {} ---", chrono::Utc::now().format("%H:%M:%S"));
                                print_view(&view, false);
                            }
                            if matches!(view.state, Phase::Expired | Phase::Revoked | Phase::SignedOut) {
                                return Err(not_active(&view));
                            }
                        }
                        Some(Err(_)) => {}
                    },
                    _ = tokio::signal::ctrl_c() => break,
                }
            }
        }
        Command::Audit { .. } | Command::Anomalies { .. } => unreachable!("handled above"),
    }
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
            _ = tokio::signal::ctrl_c() => {
                let _ = engine.cancel_sign_in();
                return Ok(sign_in.await?);
            }
        }
    }
}

/// The provider granted no refresh token although the policy renews with
/// one: say so where the person signs in, not only in `status`.
fn print_metrics(m: &session_core::metrics::Metrics) {
    let ms = |v: Option<u64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
    println!("Sessions     : {}", m.sessions.len());
    println!(
        "Refreshes    : {} (latency median {}, 95th percentile {})",
        m.refreshes,
        ms(m.refresh_latency_p50_ms),
        ms(m.refresh_latency_p95_ms)
    );
    println!("API calls    : {}", m.api_calls);
    println!("Failures     : {}", m.failures);
    println!("Offline      : {} s", m.offline_secs);
    println!(
        "Locations    : {}",
        if m.locations.is_empty() {
            "-".into()
        } else {
            m.locations.join("; ")
        }
    );
    for s in m.sessions.iter().rev() {
        println!(
            "  {}  {:>7} s  {:>3} refreshes  {:>4} calls  {}{}",
            s.started.format("%Y-%m-%d %H:%M"),
            s.duration_secs,
            s.refreshes,
            s.api_calls,
            s.end.as_deref().unwrap_or("live"),
            s.location.as_deref().map(|l| format!("  {l}")).unwrap_or_default()
        );
    }
}

/// ` --profile NAME` when one was given, for commands printed to copy.
fn profile_flag(profile: &Option<String>) -> String {
    profile.as_ref().map(|p| format!(" --profile {p}")).unwrap_or_default()
}

fn print_sessions(list: &[session_core::view::RemoteSession]) {
    let now = chrono::Utc::now();
    for s in list {
        let mark = if s.current { "  (this device)" } else { "" };
        let place = [s.city.as_deref(), s.country.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        println!("{}{mark}", s.device_name);
        println!("  id         : {}", s.id);
        println!("  signed in  : {}", when(Some(s.created), now));
        println!("  last seen  : {}", when(s.last_seen, now));
        println!(
            "  from       : {}{}",
            s.ip.as_deref().unwrap_or("unknown address"),
            if place.is_empty() {
                String::new()
            } else {
                format!(" ({place})")
            }
        );
    }
}

fn warn_no_refresh(view: &SessionView, json: bool) {
    if let (Some(notice), false) = (&view.renewal_notice, json) {
        eprintln!("warning[no_refresh_token]: {notice}");
    }
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
            _ => failure(ErrorCode::NotSignedIn, "not signed in; run `sessionctl login` first"),
        },
    }
}

fn reqwest_method(m: &str) -> Result<session_core::provider::Method, Failure> {
    match m.to_ascii_uppercase().as_str() {
        "GET" => Ok(session_core::provider::Method::GET),
        "POST" => Ok(session_core::provider::Method::POST),
        "PUT" => Ok(session_core::provider::Method::PUT),
        "PATCH" => Ok(session_core::provider::Method::PATCH),
        "DELETE" => Ok(session_core::provider::Method::DELETE),
        other => Err(failure(
            ErrorCode::InvalidState,
            format!("unknown method '{other}'; use GET, POST, PUT, PATCH or DELETE"),
        )),
    }
}
