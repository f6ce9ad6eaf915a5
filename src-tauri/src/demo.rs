//! "Try the demo" on the first-run screen of an app without the built-in
//! Playground (the packaged one): start the Session Manager Playground,
//! which is its own package (`session-manager-playground`), as a child
//! process with a folder of the data directory, and hand back the config
//! file it wrote.

use crate::backend::Options;
use session_core::os::paths;
use session_core::{ErrorCode, ErrorInfo};
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The Playground package's program.
pub const PROGRAM: &str = "session-manager-playground";
/// Names another program (a test's, a developer's build).
pub const PROGRAM_ENV: &str = "SESSION_MANAGER_PLAYGROUND_PROGRAM";
/// How long the Playground may take to say it is ready (its RSA key).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Start the Playground; its child process and the config file it wrote.
pub async fn start(options: &Options) -> Result<(Child, PathBuf), ErrorInfo> {
    let data_dir = options
        .data_dir
        .clone()
        .or_else(paths::default_data_dir)
        .ok_or_else(|| {
            ErrorInfo::new(
                ErrorCode::ConfigInvalid,
                "no data directory: pass --data-dir DIR or set SESSION_MANAGER_DATA_DIR",
            )
        })?;
    paths::private_dir(&data_dir).map_err(|e| ErrorInfo::new(ErrorCode::ConfigInvalid, e.to_string()))?;
    let dir = data_dir.join("demo");
    paths::private_dir(&dir).map_err(|e| ErrorInfo::new(ErrorCode::Internal, e.to_string()))?;
    let config = dir.join("config.toml");
    let program = std::env::var_os(PROGRAM_ENV).unwrap_or_else(|| PROGRAM.into());
    let mut child = Command::new(&program)
        .arg("--dir")
        .arg(&dir)
        .arg("--write-config")
        .arg(&config)
        .arg("--json")
        .arg("--exit-with-stdin")
        // The Playground stops when this end closes: when the app exits,
        // however it exits.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ErrorInfo::new(
                ErrorCode::NotConfigured,
                format!(
                    "the demo needs the Session Manager Playground, which is not installed: install the package {PROGRAM} (sudo apt install {PROGRAM}), then try again"
                ),
            ),
            _ => ErrorInfo::new(ErrorCode::Internal, format!("cannot start {}: {e}", PathBuf::from(&program).display())),
        })?;
    // Its first line (JSON, with its admin token) says it is serving and the
    // config is written; the line itself is not kept. The rest of its
    // output is read and dropped until it exits (a closed pipe would make
    // its next print fail).
    let stdout = child.stdout.take();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let Some(stdout) = stdout else { return };
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(matches!(lines.next(), Some(Ok(_))));
        for _ in lines.by_ref() {}
    });
    let ready = async { rx.await.map_err(|_| ()) };
    match tokio::time::timeout(READY_WITHIN, ready).await {
        Ok(Ok(true)) if config.exists() => Ok((child, config)),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            Err(ErrorInfo::new(
                ErrorCode::Internal,
                format!(
                    "the Session Manager Playground did not start within {} s",
                    READY_WITHIN.as_secs()
                ),
            ))
        }
    }
}
