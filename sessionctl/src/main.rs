//! `sessionctl`: the session engine from a terminal.
//!
//! Exit status 0 on success; on failure non-zero, with a stable error code:
//! `error[pin_mismatch]: …` on stderr, or `{"error":{"code","message"}}` on
//! stdout with `--json`. Exit status 2 is a configuration or usage problem.

use clap::{Parser, Subcommand};
use session_core::audit::AuditRecord;
use session_core::paths;
use session_core::view::Persistence;
use session_core::{Config, Engine, Error, ErrorCode, ErrorInfo, Phase, Secret, SessionView};
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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in; the password is read from standard input.
    Login {
        #[arg(long)]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
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
    Ok(Engine::open(profile, &data_dir)?)
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
    if view.state.has_session() {
        println!("Customer     : {}", view.customer.as_deref().unwrap_or("-"));
        println!("Tenant       : {}", view.tenant.as_deref().unwrap_or("-"));
        println!("Scope        : {}", view.scope.as_deref().unwrap_or("-"));
        println!("Expires      : {}", when(view.expires_at, now));
        println!("Next refresh : {}", when(view.next_refresh_at, now));
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
                    r.fingerprint.as_deref().map(|f| &f[..f.len().min(19)]).unwrap_or("-"),
                    r.event.describe()
                );
            }
        }
        return Ok(());
    }
    let engine = open(&cli)?;
    match cli.command {
        Command::Login { username, .. } => {
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
            engine.restore().await?;
            let view = engine.sign_in(&username, Secret::new(password)).await?;
            warn_memory_only(&view, json);
            print_view(&view, json);
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
            let deadline = seconds.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
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
        Command::Audit { .. } => unreachable!("handled above"),
    }
    Ok(())
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
        _ => failure(
            ErrorCode::NotSignedIn,
            "not signed in; run `sessionctl login --username U --password-stdin` first",
        ),
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
