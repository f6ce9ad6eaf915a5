//! `check-installed APP [first-run | demo | playground]`: start an installed
//! Session Manager (from a package, e.g. `/usr/bin/session-manager`) through
//! tauri-driver, with no config file, and wait for what it should show:
//! - `first-run` (the packaged app, built without the Playground): the
//!   first-run screen, whose "Try the demo" names the package it needs
//!   (the Playground's package must not be installed);
//! - `demo`: the first-run screen, then "Try the demo" (the Playground
//!   package must be installed), then the sign-in screen with the demo
//!   users;
//! - `playground` (a build with the built-in Playground): the sign-in screen
//!   with the demo users at once.
//!
//! Exit 0 when it does, 1 with the reason otherwise. The package step of
//! `scripts/test.sh` runs it after installing the packages; it needs what
//! the end-to-end tests need (a display, tauri-driver, a Secret Service).

use e2e::fantoccini::{Client, Locator};
use e2e::{connect_to, root, Driver};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Whether the element `testid` is displayed and (when given) holds `text`.
async fn shows(client: &Client, testid: &str, text: Option<&str>) -> bool {
    let found = async {
        let el = client
            .find(Locator::Css(&format!("[data-testid='{testid}']")))
            .await
            .ok()?;
        if !el.is_displayed().await.ok()? {
            return None;
        }
        match text {
            Some(t) => el.text().await.ok()?.contains(t).then_some(()),
            None => Some(()),
        }
    };
    found.await.is_some()
}

/// Wait up to a minute until `ready` holds.
async fn wait_until<F, Fut>(mut ready: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    tokio::time::timeout(Duration::from_secs(60), async {
        while !ready().await {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok()
}

async fn sign_in_screen(client: &Client) -> bool {
    shows(client, "screen-signin", None).await && shows(client, "demo-credentials", Some("alice")).await
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(app) = args.next().map(PathBuf::from) else {
        eprintln!("usage: check-installed /usr/bin/session-manager [first-run | demo | playground]");
        return ExitCode::from(2);
    };
    let expect = args
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "first-run".into());
    if !["first-run", "demo", "playground"].contains(&expect.as_str()) {
        eprintln!("error: expected first-run, demo or playground, not {expect}");
        return ExitCode::from(2);
    }
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
        // No config anywhere.
        ("XDG_CONFIG_HOME", config_home.path()),
        ("SESSION_MANAGER_KEYCHAIN_SERVICE", keychain.as_path()),
    ];
    let driver = Driver::start(&env, &artifacts.join("tauri-driver.log")).await;
    let client = connect_to(driver.port, &app).await;
    let outcome: Result<&str, String> = async {
        if expect == "playground" {
            return match wait_until(|| sign_in_screen(&client)).await {
                true => Ok("reached the sign-in screen of its built-in Playground"),
                false => Err("did not show its sign-in screen within 60 s".to_owned()),
            };
        }
        if !wait_until(|| shows(&client, "screen-first-run", None)).await {
            return Err("did not show its first-run screen within 60 s".to_owned());
        }
        match e2e::screenshot(&client).await {
            Ok(png) => std::fs::write(artifacts.join("first-run.png"), png).map_err(|e| e.to_string())?,
            Err(e) => eprintln!("warning: no screenshot of the first-run screen: {e}"),
        }
        let button = client
            .find(Locator::Css("[data-testid='try-demo-button']"))
            .await
            .map_err(|e| format!("no Try the demo button: {e}"))?;
        if expect == "first-run" {
            // Without the Playground's package, Try the demo says how to get it.
            button
                .click()
                .await
                .map_err(|e| format!("cannot click Try the demo: {e}"))?;
            let named = wait_until(|| {
                shows(
                    &client,
                    "first-run-error",
                    Some("apt install session-manager-playground"),
                )
            })
            .await;
            return match named {
                true => Ok("opened on its first-run screen, and Try the demo names the package it needs"),
                false => Err("Try the demo did not say that the Playground's package is needed".to_owned()),
            };
        }
        button
            .click()
            .await
            .map_err(|e| format!("cannot click Try the demo: {e}"))?;
        match wait_until(|| sign_in_screen(&client)).await {
            true => Ok("started the demo from its first-run screen and reached the Playground's sign-in screen"),
            false => {
                let said = client.find(Locator::Css("[data-testid='first-run-error']")).await.ok();
                let said = match said {
                    Some(el) => el.text().await.unwrap_or_default(),
                    None => String::new(),
                };
                Err(format!(
                    "Try the demo did not reach the sign-in screen within 60 s ({said})"
                ))
            }
        }
    }
    .await;
    match e2e::screenshot(&client).await {
        Ok(png) => {
            let _ = std::fs::write(artifacts.join(format!("{expect}.png")), png);
        }
        Err(e) => eprintln!("warning: no screenshot at the end: {e}"),
    }
    // A window the session did not close keeps the app running: the
    // check below then names it.
    match tokio::time::timeout(Duration::from_secs(10), client.close()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("warning: ending the WebDriver session: {e}"),
        Err(_) => eprintln!("warning: ending the WebDriver session took more than 10 s"),
    }
    let lingering = driver.stop(data.path()).await;
    if !lingering.is_empty() {
        eprintln!(
            "error: {} did not exit after its WebDriver session ended (killed): {lingering:?}",
            app.display()
        );
        return ExitCode::from(1);
    }
    match outcome {
        Ok(what) => {
            println!("{} {what}", app.display());
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!(
                "error: {} {why} (screenshot and driver log in {})",
                app.display(),
                artifacts.display()
            );
            ExitCode::from(1)
        }
    }
}
