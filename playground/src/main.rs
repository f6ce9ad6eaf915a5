//! `playground`: run the local identity provider.

use clap::Parser;
use playground::{Mode, Options, Playground};
use std::path::PathBuf;
use std::time::Duration;

/// A local FinHub identity provider over real TLS, for QA, demos and tests.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Token lifetime in seconds (default: 3600, or 1800 in production mode).
    #[arg(long)]
    lifetime: Option<u64>,
    /// `playground` or `production` (TLS 1.3 only, session limit).
    #[arg(long, default_value = "playground", value_parser = ["playground", "production"])]
    environment: String,
    /// Signing algorithm of session tokens.
    #[arg(long, default_value = "RS256", value_parser = ["RS256", "ES256"])]
    alg: String,
    /// Where to write ca.pem (default: a new folder under the temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Concurrent sessions per user in production mode.
    #[arg(long, default_value_t = 2)]
    session_limit: usize,
    /// A refresh token unused for this many seconds expires (8 h).
    #[arg(long, default_value_t = 8 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    refresh_idle: u64,
    /// No refresh token lives longer than this many seconds after sign-in
    /// (24 h).
    #[arg(long, default_value_t = 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    refresh_absolute: u64,
    /// Also serve a backup endpoint on a second port over the same sessions
    /// (the config gets `backup_urls`); `/admin/primary` takes the primary
    /// down and up.
    #[arg(long)]
    backup: bool,
    /// Print one JSON line {base_url, ca_cert, pins, users, admin_url,
    /// admin_token, config, oidc_issuer, backup_url}.
    #[arg(long)]
    json: bool,
    /// Also write the config file (profile `playground`) to this path.
    #[arg(long)]
    write_config: Option<PathBuf>,
    /// Stop when standard input closes: the app that started it (the
    /// first-run screen's "Try the demo") holds the other end, so the
    /// Playground goes with it however the app ends.
    #[arg(long)]
    exit_with_stdin: bool,
    /// Keep the port, certificates, signing keys, admin token and sessions
    /// in --dir (state.json, 0600) and take them back at the next start, so
    /// a client's session survives a restart as with a real provider.
    #[arg(long, requires = "dir")]
    keep_state: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mode = if args.environment == "production" {
        Mode::Production
    } else {
        Mode::Playground
    };
    let lifetime = args
        .lifetime
        .unwrap_or(if mode == Mode::Production { 1800 } else { 3600 });
    if lifetime == 0 {
        eprintln!("error: --lifetime must be at least 1 second");
        std::process::exit(2);
    }
    let options = Options {
        mode,
        token_lifetime: Duration::from_secs(lifetime),
        signing_alg: if args.alg == "ES256" {
            jsonwebtoken::Algorithm::ES256
        } else {
            jsonwebtoken::Algorithm::RS256
        },
        port: args.port,
        dir: args.dir,
        session_limit: args.session_limit,
        refresh_idle: Duration::from_secs(args.refresh_idle),
        refresh_absolute: Duration::from_secs(args.refresh_absolute),
        backup: args.backup,
        keep_state: args.keep_state,
        ..Options::default()
    };
    let pg = match Playground::start(options).await {
        Ok(pg) => pg,
        Err(e) => {
            eprintln!("error: cannot start the Playground: {e}");
            std::process::exit(1);
        }
    };
    let info = pg.info();
    if let Some(path) = &args.write_config {
        if let Err(e) = std::fs::write(path, &info.config) {
            eprintln!("error: cannot write the config to {}: {e}", path.display());
            drop(pg);
            std::process::exit(1);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(info).unwrap_or_default());
    } else {
        println!(
            "Playground identity provider ({}), tokens live {lifetime} s",
            args.environment
        );
        println!("  base URL : {}", info.base_url);
        if let Some(b) = &info.backup_url {
            println!("  backup   : {b}  (the same sessions; POST {{\"up\":false}} to /admin/primary)");
        }
        println!("  admin API: {}", info.admin_url);
        println!(
            "  admin key: in {}  (send it as Authorization: Bearer …)",
            std::path::Path::new(&info.ca_cert)
                .with_file_name(playground::ADMIN_TOKEN_FILE)
                .display()
        );
        println!("  CA cert  : {}", info.ca_cert);
        println!("  pins     : {}", info.pins.join(", "));
        for u in &info.users {
            println!(
                "  user     : {} / {}  (customer {}, tenant {})",
                u.username, u.password, u.customer, u.tenant
            );
        }
        println!(
            "\nConfig file (save it and pass it to sessionctl --config):\n\n{}",
            info.config
        );
        println!("Press Ctrl-C to stop.");
    }
    // Ctrl-C or a plain `kill`: either way return, so the Playground is
    // dropped and removes the folder it made for its CA certificate.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => t.recv().await,
            None => std::future::pending().await,
        }
    };
    let (stdin_closed, closed) = tokio::sync::oneshot::channel::<()>();
    // Without --exit-with-stdin the sender stays here, unsent, until main ends.
    let _unused = match args.exit_with_stdin {
        true => {
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
                let _ = stdin_closed.send(());
            });
            None
        }
        false => Some(stdin_closed),
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
        _ = closed => {}
    }
    drop(pg);
}
