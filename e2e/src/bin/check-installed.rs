//! `check-installed APP`: start an installed Session Manager (from the
//! package, e.g. `/usr/bin/session-manager`) through tauri-driver, with no
//! config file, and wait until it shows the sign-in screen of its built-in
//! Playground with the demo users. Exit 0 when it does, 1 with the reason
//! otherwise. The package step of `scripts/test.sh` runs it after
//! `dpkg -i`; it needs what the end-to-end tests need (a display,
//! tauri-driver, a Secret Service).

use e2e::fantoccini::Locator;
use e2e::{connect_to, root, Driver};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let Some(app) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: check-installed /usr/bin/session-manager");
        return ExitCode::from(2);
    };
    if !app.is_file() {
        eprintln!("error: {} is not installed", app.display());
        return ExitCode::from(1);
    }
    let data = tempfile::tempdir().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    let artifacts = root().join("target/e2e-artifacts/installed");
    std::fs::create_dir_all(&artifacts).unwrap();
    let keychain = PathBuf::from(format!("session-manager-installed-{}", uuid::Uuid::new_v4().simple()));
    let env = [
        ("SESSION_MANAGER_DATA_DIR", data.path()),
        // No config anywhere: the app starts its built-in Playground.
        ("XDG_CONFIG_HOME", config_home.path()),
        ("SESSION_MANAGER_KEYCHAIN_SERVICE", keychain.as_path()),
    ];
    let driver = Driver::start(&env, &artifacts.join("tauri-driver.log")).await;
    let client = connect_to(driver.port, &app).await;
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let shown = async {
                let signin = client.find(Locator::Css("[data-testid='screen-signin']")).await.ok()?;
                let demo = client
                    .find(Locator::Css("[data-testid='demo-credentials']"))
                    .await
                    .ok()?;
                let text = demo.text().await.ok()?;
                (signin.is_displayed().await.ok()? && text.contains("alice")).then_some(())
            };
            if shown.await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(artifacts.join("sign-in.png"), png);
    }
    let _ = client.close().await;
    let lingering = driver.stop(data.path()).await;
    if !lingering.is_empty() {
        eprintln!(
            "error: {} did not exit after its WebDriver session ended (killed): {lingering:?}",
            app.display()
        );
        return ExitCode::from(1);
    }
    match waited {
        Ok(()) => {
            println!(
                "{} reached the sign-in screen of its built-in Playground",
                app.display()
            );
            ExitCode::SUCCESS
        }
        Err(_) => {
            eprintln!(
                "error: {} did not show its sign-in screen within 60 s (screenshot and driver log in {})",
                app.display(),
                artifacts.display()
            );
            ExitCode::from(1)
        }
    }
}
