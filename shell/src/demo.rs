//! "Try the demo" on the first-run screen of an app without the built-in
//! Playground (the packaged one): start the Session Manager Playground,
//! which is its own package (`session-manager-playground`), as a child
//! process with a folder of the data directory, and hand back the config
//! file it wrote.

use crate::backend::{DemoUserInfo, Options};
use session_core::net::text::printable;
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

/// A started demo: the Playground's process, the config file it wrote and
/// its demo users.
pub struct Demo {
    pub child: Child,
    pub config: PathBuf,
    pub users: Vec<DemoUserInfo>,
}

/// What the Playground's first line (`--json`) says that the app keeps: its
/// demo users (its admin token stays in its own 0600 file).
#[derive(serde::Deserialize)]
struct Announcement {
    users: Vec<DemoUserInfo>,
}

/// Start the Playground ([`PROGRAM`], or the one [`PROGRAM_ENV`] names).
pub async fn start(options: &Options) -> Result<Demo, ErrorInfo> {
    let program = std::env::var_os(PROGRAM_ENV).unwrap_or_else(|| PROGRAM.into());
    start_program(options, &program).await
}

async fn start_program(options: &Options, program: &std::ffi::OsStr) -> Result<Demo, ErrorInfo> {
    let dir = options.private_data_dir()?.join("demo");
    paths::private_dir(&dir).map_err(|e| ErrorInfo::new(ErrorCode::Internal, e.to_string()))?;
    let config = dir.join("config.toml");
    let mut child = Command::new(program)
        .arg("--dir")
        .arg(&dir)
        .arg("--write-config")
        .arg(&config)
        .arg("--json")
        .arg("--exit-with-stdin")
        // A restarted app finds its demo session again.
        .arg("--keep-state")
        // The Playground stops when this end closes: when the app exits,
        // however it exits.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ErrorInfo::new(
                ErrorCode::NotInstalled,
                format!(
                    "the demo runs on the Session Manager Playground, which is its own package. Install it (sudo apt install {PROGRAM}), then try again."
                ),
            ),
            _ => ErrorInfo::new(ErrorCode::Internal, format!("cannot start {}: {e}", PathBuf::from(program).display())),
        })?;
    // Its first line (JSON) says it is serving and the config is written;
    // only its demo users are kept from it. The rest of its output is read
    // and dropped until it exits (a closed pipe would make its next print
    // fail).
    let stdout = child.stdout.take();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let Some(stdout) = stdout else { return };
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = match lines.next() {
            Some(Ok(line)) => serde_json::from_str::<Announcement>(&line).ok(),
            _ => None,
        };
        let _ = tx.send(first);
        for _ in lines.by_ref() {}
    });
    // Its error output is kept (the start of it) to say why it stopped.
    let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut reader = None;
    if let Some(stderr) = child.stderr.take() {
        let said = said.clone();
        reader = Some(std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut said = said.lock().unwrap_or_else(|e| e.into_inner());
                if said.len() < 2048 {
                    said.push_str(&line);
                    said.push(' ');
                }
            }
        }));
    }
    let ready = async { rx.await.map_err(|_| ()) };
    match tokio::time::timeout(READY_WITHIN, ready).await {
        Ok(Ok(Some(announced))) if config.exists() => Ok(Demo {
            child,
            config,
            users: announced.users,
        }),
        outcome => {
            let _ = child.kill();
            let _ = child.wait();
            // It has exited, so its error output is at its end.
            if let Some(reader) = reader {
                let _ = reader.join();
            }
            let why = match outcome {
                Err(_) => format!("it did not say it was ready within {} s", READY_WITHIN.as_secs()),
                Ok(_) => {
                    let said = said.lock().unwrap_or_else(|e| e.into_inner());
                    match printable(said.trim(), 400) {
                        s if s.is_empty() => "it stopped without saying why".to_owned(),
                        s => format!("it said: {s}"),
                    }
                }
            };
            Err(ErrorInfo::new(
                ErrorCode::Internal,
                format!("the Session Manager Playground did not start ({why})"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in Playground: a shell script in `dir`.
    fn program(dir: &std::path::Path, script: &str) -> PathBuf {
        let path = dir.join("fake-playground");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn options(dir: &std::path::Path) -> Options {
        Options {
            data_dir: Some(dir.join("data")),
            ..Options::default()
        }
    }

    #[tokio::test]
    async fn a_missing_playground_names_its_package() {
        let dir = tempfile::tempdir().unwrap();
        let e = start_program(&options(dir.path()), dir.path().join("nowhere").as_os_str())
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::NotInstalled);
        assert!(
            e.message.contains("sudo apt install session-manager-playground"),
            "{}",
            e.message
        );
    }

    #[tokio::test]
    async fn a_playground_that_stops_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let fake = program(dir.path(), "echo 'error: the port is taken' >&2; exit 1");
        let e = start_program(&options(dir.path()), fake.as_os_str())
            .await
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(e.message.contains("it said: error: the port is taken"), "{}", e.message);
    }

    #[tokio::test]
    async fn a_ready_playground_hands_over_its_config_and_demo_users() {
        let dir = tempfile::tempdir().unwrap();
        // Writes the config where it is told, announces itself, and stays
        // until its stdin closes (as --exit-with-stdin does).
        let fake = program(
            dir.path(),
            r#"while [ $# -gt 0 ]; do [ "$1" = --write-config ] && cfg=$2; shift; done
echo '# demo' > "$cfg"
echo '{"users":[{"username":"alice","password":"pw"}],"admin_token":"secret"}'
cat >/dev/null"#,
        );
        let mut demo = start_program(&options(dir.path()), fake.as_os_str()).await.unwrap();
        assert_eq!(demo.config, dir.path().join("data/demo/config.toml"));
        assert_eq!(
            demo.users,
            vec![DemoUserInfo {
                username: "alice".into(),
                password: "pw".into()
            }]
        );
        // Closing its stdin (the app ending) ends it.
        drop(demo.child.stdin.take());
        assert!(demo.child.wait().unwrap().success());
    }
}
