//! The command line: every argument is parsed here, at the edge.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXAMPLES: &str = "\
Examples:
  # Sign in to a FinHub profile (the password comes from standard input)
  printf %s \"$PW\" | sessionctl --profile playground login --username alice --password-stdin
  # Sign in to an OpenID Connect profile in the browser, or on another device
  sessionctl --profile playground-oidc login
  sessionctl --profile playground-oidc login --device
  # What is the session doing? And every profile's?
  sessionctl status
  sessionctl status --all
  sessionctl --json status | jq .expires_at
  # Call the API with the session's token
  sessionctl call GET /api/v2/accounts
  # Add an OpenID Connect provider from its issuer (no TOML to write)
  sessionctl profile add work --issuer https://idp.example.com --client-id desktop-app
  # What is wrong with this machine? (exit 0 when nothing failed)
  sessionctl doctor
  # What to send a support team (no secret in it)
  sessionctl diagnostics > diagnostics.txt
  # Shell completions and the man page
  sessionctl completions bash > ~/.local/share/bash-completion/completions/sessionctl
  sessionctl man > sessionctl.1

Exit status: 0 on success; 1 with `error[CODE]: message` on standard error
(or {\"error\":{\"code\",\"message\"}} on standard output with --json); 2 for a
configuration or usage problem.";

#[derive(Parser)]
#[command(
    name = "sessionctl",
    version,
    about = "Sign in to an identity provider, keep the session fresh, sign out.",
    after_long_help = EXAMPLES
)]
pub struct Cli {
    /// Config file (default: SESSION_MANAGER_CONFIG or the platform's config dir).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Profile to use (default: the file's default_profile, or its only one).
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Where the audit log and lock files go.
    #[arg(long, global = true, env = "SESSION_MANAGER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print JSON (a SessionView, a response or an error) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not start a browser (OpenID Connect): print the page to open instead.
    #[arg(long, global = true)]
    pub no_browser: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Subcommand)]
pub enum Command {
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
        #[arg(long, conflicts_with = "end_session")]
        end_oldest: bool,
        /// At the provider's concurrent-session limit, end this session
        /// (an id from the list the refusal prints) and sign in (FinHub).
        #[arg(long, value_name = "ID")]
        end_session: Option<String>,
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
    Status {
        /// Every profile of the config, one line each (with --json, an
        /// array of sessions).
        #[arg(long)]
        all: bool,
    },
    /// Refresh the session now.
    Refresh,
    /// Sign out: always clears the local session, then tells the provider.
    Logout,
    /// Call the provider's API with the session's token and headers.
    Call {
        /// The HTTP method.
        #[arg(value_enum, ignore_case = true)]
        method: HttpMethod,
        /// A path below the profile's base URL, e.g. /api/v2/accounts.
        path: String,
        /// A JSON request body.
        #[arg(long, value_parser = parse_json)]
        data: Option<serde_json::Value>,
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
        /// Every profile signed in, side by side: each transition is printed
        /// with its profile's name; it stops when the last session ends.
        #[arg(long)]
        all: bool,
    },
    /// Add, list, show or remove profiles in the config file, without
    /// writing TOML by hand.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Check this machine: the config file, the keychain (a real write,
    /// read and delete), the data directory, and each profile's hosts (DNS,
    /// TCP, TLS version, the presented chain and which pins match the
    /// verified path) and clock. Exit 0 when no check failed.
    Doctor,
    /// Print what a support team needs (versions, platform, keychain,
    /// profiles with pins shortened, recent log lines and audit records,
    /// clock offsets). Nothing in it can sign anyone in.
    Diagnostics {
        /// How many diagnostic log lines and audit records to include.
        #[arg(long, default_value_t = 50)]
        lines: usize,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on standard output.
    Man,
}

#[derive(Clone, Subcommand)]
pub enum ProfileCommand {
    /// Add a provider from its address: shows the chain its host presented
    /// with each certificate's pin, proposes the leaf's pin and a backup
    /// from the same verified path, reads its discovery document (OpenID
    /// Connect) or key set (FinHub), and writes the profile after you
    /// confirm.
    #[command(group(clap::ArgGroup::new("kind").required(true).args(["issuer", "finhub"])))]
    Add {
        /// The profile's name (a letter, then letters, digits, - or _).
        name: String,
        /// An OpenID Connect provider's issuer, e.g.
        /// https://idp.example.com/realms/work.
        #[arg(long)]
        issuer: Option<String>,
        /// A FinHub session API's address, e.g. https://api.finhub.example
        /// (with --tenant and --audience).
        #[arg(long, value_name = "URL", requires_all = ["tenant", "audience"])]
        finhub: Option<String>,
        /// FinHub: the tenant you sign in to.
        #[arg(long)]
        tenant: Option<String>,
        /// FinHub: the `aud` the provider puts in its tokens.
        #[arg(long)]
        audience: Option<String>,
        /// The client id registered for this app (a public, native client
        /// with a loopback redirect and PKCE).
        #[arg(long)]
        client_id: Option<String>,
        /// Pins from your administrator instead of the proposal (each is
        /// checked against the chain the host presents); repeat for two.
        #[arg(long = "pin", value_name = "sha256/...")]
        pins: Vec<String>,
        /// A CA certificate (PEM) to trust besides the system's: a private
        /// CA, as test providers have.
        #[arg(long, value_name = "FILE")]
        ca: Option<PathBuf>,
        /// playground, integration or production (two pins, stricter rules).
        #[arg(long, default_value = "integration", value_parser = ["playground", "integration", "production"])]
        environment: String,
        /// Accept the proposal without asking (for scripts).
        #[arg(long)]
        yes: bool,
    },
    /// The profiles, one per line: name, provider, environment, where.
    List,
    /// One profile as the config file has it.
    Show { name: String },
    /// Remove a profile: signs out of it first, asks to confirm.
    Remove {
        name: String,
        /// Remove without asking (for scripts).
        #[arg(long)]
        yes: bool,
    },
}

/// The methods `call` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl From<HttpMethod> for session_core::provider::Method {
    fn from(m: HttpMethod) -> Self {
        use session_core::provider::Method;
        match m {
            HttpMethod::Get => Method::GET,
            HttpMethod::Post => Method::POST,
            HttpMethod::Put => Method::PUT,
            HttpMethod::Patch => Method::PATCH,
            HttpMethod::Delete => Method::DELETE,
        }
    }
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

/// The whole command definition (for completions and the man page).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
