//! Every user-visible flow, through the real app. Add a scenario by copying
//! one: `Scenario::start(name, Setup)`, then `.run(|s| async move { …; s })`.

use e2e::{Scenario, Setup};
use playground::Options;
use std::time::Duration;
use tokio::time::Instant;

const ALICE: (&str, &str) = ("alice", "alice-pw-1");
const T: Duration = Duration::from_secs(20);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

fn lifetime(secs: u64) -> Setup {
    Setup {
        playground: Options {
            token_lifetime: Duration::from_secs(secs),
            ..Options::default()
        },
        ..Setup::default()
    }
}

/// Seconds shown by the countdown (mm:ss).
fn seconds(countdown: &str) -> Option<u64> {
    let words: Vec<&str> = countdown.split_whitespace().collect();
    let number = |w: &str| w.parse::<u64>().ok();
    match words.as_slice() {
        [n, "s"] => number(n),
        [m, "min"] => Some(number(m)? * 60),
        [h, "h", m, "min"] => Some(number(h)? * 3600 + number(m)? * 60),
        _ => None,
    }
}

/// Checks every scenario ends with: no token in the page, the app log or the
/// data directory.
async fn assert_nothing_leaked(s: &Scenario) {
    s.assert_no_token("the page source", &s.client.source().await.unwrap());
    s.assert_no_token("the app log", &s.app_log());
    for (path, text) in s.data_files() {
        s.assert_no_token(&path.display().to_string(), &text);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s01_sign_in_with_the_demo_user() {
    Scenario::start("s01_sign_in", lifetime(600))
        .await
        .run(|s| async move {
            s.wait_visible("screen-signin", T).await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            assert_eq!(s.text("user-value").await, "alice");
            assert_eq!(s.text("tenant-value").await, "tenant-acme");
            assert_eq!(s.text("customer-value").await, "cust-1001");
            assert_eq!(s.text("env-badge").await.to_lowercase(), "playground");
            // In whole minutes while minutes are left (it repaints once a
            // minute; s03 watches the last minute's seconds): 9 min 59 s reads
            // "9 min", and the `Date` header's whole seconds may make it 10.
            let first = s.text("countdown").await;
            assert!(first == "9 min" || first == "10 min", "countdown {first}");
            let active = s.screenshot("2-active.png").await;
            // The README's screenshot: the window as it is today.
            std::fs::copy(&active, e2e::root().join("docs/images/session.png")).expect("docs/images/ is in the tree");
            // Readable at 200 % zoom: nothing runs off the side.
            let overflow = s
                .client
                .execute(
                    "document.documentElement.style.zoom = '2'; \
                     return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                    vec![],
                )
                .await
                .unwrap();
            s.screenshot("3-zoom-200.png").await;
            assert!(
                overflow.as_i64().unwrap_or(1) <= 0,
                "the page is {overflow} px wider than the window at 200 %"
            );
            s.client
                .execute("document.documentElement.style.zoom = '1'; return 0;", vec![])
                .await
                .unwrap();
            assert!(s.stored().is_some(), "the session is not in the keychain");
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s02_wrong_password() {
    Scenario::start("s02_wrong_password", lifetime(600))
        .await
        .run(|s| async move {
            // An empty password is caught before anything is sent.
            let before = s.pg.requests().len();
            s.sign_in("alice", "").await;
            let msg = s
                .wait_text("signin-error", "the empty-field error", T, |t| !t.is_empty())
                .await;
            assert!(msg.contains("Enter your password"), "{msg}");
            assert_eq!(s.pg.requests().len(), before, "an empty password was sent");
            let focused = s.focused_id().await;
            assert_eq!(focused, "password", "the empty field takes the focus");
            s.sign_in("alice", "not-her-password").await;
            let msg = s
                .wait_text("signin-error", "the sign-in error", T, |t| !t.is_empty())
                .await;
            assert!(msg.contains("username or password"), "{msg}");
            assert!(s.visible("screen-signin").await);
            assert!(!s.visible("screen-session").await);
            assert_eq!(s.text("password-input").await, "", "the password field is cleared");
            assert_eq!(s.stored(), None, "something was stored in the keychain");
            s.screenshot("error.png").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s03_proactive_refresh_with_6s_tokens() {
    Scenario::start("s03_proactive_refresh", lifetime(6))
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            // Watch the countdown: it must go up again (a reset) after a refresh.
            let deadline = Instant::now() + Duration::from_secs(25);
            let mut last = seconds(&s.text("countdown").await).unwrap_or(0);
            let mut resets = 0;
            loop {
                if let Some(now) = seconds(&s.text("countdown").await) {
                    if now > last {
                        resets += 1;
                    }
                    last = now;
                }
                let count: u32 = s.text("refresh-count").await.parse().unwrap_or(0);
                if count >= 2 && resets >= 1 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no two refreshes with a countdown reset in 25 s (count {count}, resets {resets})"
                );
                tokio::time::sleep(POLL).await;
            }
            assert_eq!(s.text("state-badge").await, "Active");
            assert!(s.text("last-refresh").await.starts_with("Succeeded"));
            let kinds = s
                .client
                .execute(
                    "return [...document.querySelectorAll('[data-testid=activity-item]')].map(e => e.dataset.kind)",
                    vec![],
                )
                .await
                .unwrap();
            let refreshed = kinds
                .as_array()
                .unwrap()
                .iter()
                .filter(|k| *k == "session_refreshed")
                .count();
            assert!(refreshed >= 2, "the Activity list shows {refreshed} refreshes: {kinds}");
            s.screenshot("activity.png").await;
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s04_refresh_503s_recover_before_expiry() {
    Scenario::start("s04_refresh_503", lifetime(8))
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.pg.fail_next_refreshes(3);
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut saw_expired = false;
            loop {
                if s.text("state-badge").await == "Expired" || s.visible("session-notice").await {
                    saw_expired = true;
                }
                if s.text("refresh-count").await.parse::<u32>().unwrap_or(0) >= 1 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no successful refresh within 20 s of three 503s"
                );
                tokio::time::sleep(POLL).await;
            }
            assert!(!saw_expired, "the session showed Expired");
            assert_eq!(s.pg.refresh_calls(), 4, "three failures and one success");
            assert_eq!(s.text("state-badge").await, "Active");
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s05_revoked_by_the_provider() {
    Scenario::start("s05_revoked", lifetime(600))
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            assert!(s.stored().is_some());
            assert_eq!(s.pg.revoke(Some("alice")), 1);
            s.click("refresh-button").await;
            s.wait_visible("screen-signin", T).await;
            // One plain sentence; the provider's own words and the code
            // under Details.
            let sentence = s
                .client
                .execute(
                    "return document.querySelector('#session-notice > span').textContent",
                    vec![],
                )
                .await
                .unwrap();
            let sentence = sentence.as_str().unwrap_or_default();
            assert_eq!(
                sentence,
                "Your session was ended by the identity provider. Sign in again."
            );
            s.client
                .find(e2e::fantoccini::Locator::Css(
                    "[data-testid='session-notice-details'] summary",
                ))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let details = s.text("session-notice-details").await;
            assert!(
                details.contains("revoked by an administrator") && details.contains("Error code: session_revoked"),
                "{details}"
            );
            assert_eq!(s.stored(), None, "the keychain entry survived the revocation");
            // The Activity list says why in the same plain words, with the
            // provider's text behind its own Details.
            let ended = r#"return [...document.querySelectorAll("[data-testid='activity-item'][data-kind='session_revoked'] > span")]
                .map((s) => [s.firstChild.textContent, s.querySelector('details code')?.textContent ?? null]);"#;
            s.wait_until("the revocation in the Activity list", T, || async {
                s.client.execute(ended, vec![]).await.unwrap().as_array().is_some_and(|a| !a.is_empty())
            })
            .await;
            let items = s.client.execute(ended, vec![]).await.unwrap();
            assert_eq!(items[0][0], "Ended by the provider", "{items}");
            assert!(
                items[0][1].as_str().is_some_and(|d| d.contains("revoked by an administrator")),
                "{items}"
            );
            s.screenshot("revoked.png").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s06_pin_mismatch_blocks_and_shows_the_hash() {
    let setup = Setup {
        edit_config: Box::new(|pg, config| {
            let pins = &pg.info().pins;
            config
                .replace(&pins[0], "sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .replace(&pins[1], "sha256/BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=")
        }),
        ..Setup::default()
    };
    Scenario::start("s06_pin_mismatch", setup)
        .await
        .run(|s| async move {
            s.sign_in(ALICE.0, ALICE.1).await;
            s.wait_visible("screen-pin-mismatch", T).await;
            assert!(!s.visible("screen-signin").await, "the pin screen must block");
            let presented = s.text("pin-presented").await;
            assert!(
                presented.contains(&s.pg.info().pins[0]),
                "presented '{presented}', server key {}",
                s.pg.info().pins[0]
            );
            assert_eq!(s.stored(), None);
            assert!(
                s.pg.requests().is_empty(),
                "the Playground received a request despite the mismatch"
            );
            let focused = s.focused_id().await;
            assert_eq!(focused, "pin-back", "the blocking alert takes the focus");
            s.check_screen("pin-mismatch").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s07_sign_out() {
    Scenario::start("s07_sign_out", lifetime(600))
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.click("signout-button").await;
            s.wait_visible("screen-signin", T).await;
            assert_eq!(s.stored(), None, "the keychain entry survived sign-out");
            let logout =
                s.pg.requests()
                    .into_iter()
                    .find(|r| r.path == "/api/v2/auth/logout")
                    .expect("the Playground saw a logout");
            assert!(logout.problems.is_empty(), "{:?}", logout.problems);
            for h in [
                "x-tenant-id",
                "x-activity-id",
                "x-request-id",
                "x-session-active",
                "x-user-session-token",
            ] {
                assert!(logout.headers.contains_key(h), "logout lacks {h}");
            }
            let audit = std::fs::read_to_string(s.data.path().join("audit.jsonl")).unwrap();
            assert!(audit.contains("\"event\":\"signed_out\""), "{audit}");
            s.wait_until("the Activity list to show the sign-out", T, || {
                let s = &s;
                async move {
                    s.client
                        .source()
                        .await
                        .unwrap_or_default()
                        .contains("data-kind=\"signed_out\"")
                }
            })
            .await;
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s08_restart_restores_from_the_keychain() {
    Scenario::start("s08_restart", lifetime(600))
        .await
        .run(|mut s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let logins = s.pg.requests().iter().filter(|r| r.path.ends_with("/login")).count();
            s.restart_app().await;
            s.wait_visible("screen-session", T).await;
            s.wait_text("state-badge", "Active", T, |t| t == "Active").await;
            assert_eq!(s.text("user-value").await, "alice");
            let after = s.pg.requests().iter().filter(|r| r.path.ends_with("/login")).count();
            assert_eq!(after, logins, "the restarted app signed in again instead of restoring");
            let audit = std::fs::read_to_string(s.data.path().join("audit.jsonl")).unwrap();
            assert!(audit.contains("\"event\":\"session_restored\""));
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s15_closed_past_expiry_the_app_renews_the_session_at_start() {
    Scenario::start("s15_closed_past_expiry", lifetime(6))
        .await
        .run(|mut s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let logins = s.pg.requests().iter().filter(|r| r.path.ends_with("/login")).count();
            // The app is closed while its 6 s session token expires; the
            // refresh token lives on (a test about time passing: 8 s).
            s.close_app().await;
            s.pg.set_token_lifetime(Duration::from_secs(600));
            tokio::time::sleep(Duration::from_secs(8)).await;
            assert_eq!(s.pg.refresh_calls(), 0, "the closed app refreshed");
            s.open_app().await;
            s.wait_text("state-badge", "Active", T, |t| t == "Active").await;
            assert_eq!(s.text("user-value").await, "alice");
            s.wait_text("refresh-count", "one renewal", T, |t| t == "1").await;
            let left = seconds(&s.text("countdown").await).unwrap();
            assert!(left > 500, "the renewed token's countdown reads {left} s");
            let after = s.pg.requests().iter().filter(|r| r.path.ends_with("/login")).count();
            assert_eq!(after, logins, "the app asked for a sign-in instead of renewing");
            let audit = std::fs::read_to_string(s.data.path().join("audit.jsonl")).unwrap();
            assert!(audit.contains("\"event\":\"session_restored\""));
            assert!(audit.contains("\"event\":\"session_refreshed\""));
            assert!(!audit.contains("\"event\":\"session_expired\""), "{audit}");
            s.screenshot("renewed.png").await;
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s09_no_token_reaches_the_page() {
    Scenario::start("s09_no_leak", lifetime(5))
        .await
        .run(|s| async move {
            s.sign_in(ALICE.0, ALICE.1).await;
            s.wait_text("refresh-count", "two refreshes", T, |t| {
                t.parse::<u32>().unwrap_or(0) >= 2
            })
            .await;
            // Everything the page can ask for over IPC, as the page sees it.
            let seen = s
                .client
                .execute_async(
                    r#"const done = arguments[arguments.length - 1];
                       const { invoke } = window.__TAURI__.core;
                       Promise.all([invoke('session_view'), invoke('recent_activity', { limit: 50 }),
                                    invoke('list_profiles'), invoke('refresh_now')])
                         .then((r) => done(JSON.stringify(r)), (e) => done('ERROR ' + JSON.stringify(e)));"#,
                    vec![],
                )
                .await
                .unwrap();
            let seen = seen.as_str().unwrap().to_owned();
            assert!(!seen.starts_with("ERROR"), "{seen}");
            s.assert_no_token("IPC responses", &seen);
            s.click("signout-button").await;
            s.wait_visible("screen-signin", T).await;
            assert!(s.pg.issued_tokens().len() >= 6);
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s10_keychain_unavailable() {
    let setup = Setup {
        env: vec![(
            "DBUS_SESSION_BUS_ADDRESS".into(),
            "unix:path=/nonexistent/session-bus".into(),
        )],
        ..lifetime(600)
    };
    Scenario::start("s10_no_keychain", setup)
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.wait_visible("keychain-banner", T).await;
            assert!(s.text("keychain-banner").await.contains("will not survive a restart"));
            assert_eq!(s.stored(), None);
            assert_nothing_leaked(&s).await;
            s.screenshot("no-keychain.png").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s11_embedded_playground_out_of_the_box() {
    let setup = Setup {
        embedded: true,
        env: vec![("SESSION_MANAGER_PLAYGROUND_LIFETIME".into(), "300".into())],
        ..Setup::default()
    };
    Scenario::start("s11_embedded_playground", setup)
        .await
        .run(|s| async move {
            s.wait_visible("demo-credentials", T).await;
            let demo = s.text("demo-credentials").await;
            assert!(demo.contains("alice") && demo.contains("alice-pw-1"), "{demo}");
            s.screenshot("sign-in.png").await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let left = seconds(&s.text("countdown").await).unwrap();
            // Whole minutes: 4 min 59 s reads "4 min" (5 with the `Date`
            // header's whole seconds).
            assert!((240..=300).contains(&left), "{left}");
            s.screenshot("active.png").await;
            // QA finds the admin API and its token in the About panel; the
            // API answers with the token and refuses without it.
            s.click("about-toggle").await;
            s.wait_visible("qa-panel", T).await;
            let (url, token, ca) = (
                s.text("qa-admin-url").await,
                s.text("qa-admin-token").await,
                s.text("qa-ca-cert").await,
            );
            assert!(url.ends_with("/admin") && token.len() >= 40, "{url} {token}");
            s.screenshot("about.png").await;
            let http = playground::browser::Browser::trusting(std::path::Path::new(&ca));
            let without = http.http().get(format!("{url}/sessions")).send().await.unwrap();
            assert_eq!(without.status(), 401);
            let with = http
                .http()
                .get(format!("{url}/sessions"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(with.status(), 200);
            assert!(with.text().await.unwrap().contains("alice"));
            // "Copy diagnostics": the text a support team needs, shown and
            // selected (and on the clipboard where the webview allows it).
            s.click("copy-diagnostics").await;
            s.wait_visible("diagnostics-text", T).await;
            let text = s
                .client
                .execute("return document.getElementById('diagnostics-text').value", vec![])
                .await
                .unwrap();
            let text = text.as_str().unwrap().to_owned();
            for part in [
                "Session Manager diagnostics",
                "Front      : Session Manager app",
                "Profile playground (finhub, playground)",
                "Diagnostic log",
                "Signed in",
            ] {
                assert!(text.contains(part), "{part} in {text}");
            }
            assert!(!text.contains(&token), "the admin token stays out of the diagnostics");
            assert!(s.text("diagnostics-status").await.contains("no token or password"));
            // On the clipboard, as another program reads it.
            assert_eq!(e2e::clipboard_text(), text, "the clipboard holds the report");
            assert!(s
                .text("diagnostics-status")
                .await
                .starts_with("Copied to the clipboard"));
            s.assert_no_token("the diagnostics", &text);
            s.screenshot("diagnostics.png").await;
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s12_a_second_instance_hands_over_and_exits() {
    Scenario::start("s12_single_instance", lifetime(600))
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let requests = s.pg.requests().len();
            // Launch the app again, as a person would, with the same keychain.
            let second = tokio::process::Command::new(e2e::app_binary())
                .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &s.keychain)
                .env("SESSION_MANAGER_DATA_DIR", s.data.path())
                .env("SESSION_MANAGER_CONFIG", s.config_path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(Duration::from_secs(30), second)
                .await
                .expect("the second instance did not exit: it runs beside the first")
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(
                s.pg.requests().len(),
                requests,
                "the second instance talked to the provider"
            );
            // The first instance is untouched.
            assert_eq!(s.text("state-badge").await, "Active");
            s
        })
        .await;
}

/// The newest URL the app handed to its (test) browser, waiting for the
/// `n`-th one.
async fn opened_url(dir: &std::path::Path, n: usize) -> String {
    let file = dir.join(format!("{n:04}.url"));
    let deadline = Instant::now() + T;
    loop {
        if let Ok(url) = std::fs::read_to_string(&file) {
            return url;
        }
        assert!(Instant::now() < deadline, "the app opened no browser page #{n}");
        tokio::time::sleep(POLL).await;
    }
}

/// The Playground's OpenID Connect profile as the default, with
/// `extend_access`, and browser pages written to `opened` (the app's
/// test-opener feature).
fn oidc_setup(opened: &std::path::Path, extend_access: &'static str) -> Setup {
    Setup {
        playground: Options {
            token_lifetime: Duration::from_secs(600),
            ..Options::default()
        },
        edit_config: Box::new(move |_, c| {
            c.replace(
                "default_profile = \"playground\"",
                "default_profile = \"playground-oidc\"",
            )
            .replace(
                "extend_access = \"refresh\"",
                &format!("extend_access = \"{extend_access}\""),
            )
        }),
        env: vec![("SESSION_MANAGER_TEST_OPENER_DIR".into(), opened.display().to_string())],
        ..Setup::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s13_sign_in_through_the_browser_with_openid_connect() {
    let opened = tempfile::tempdir().unwrap();
    let setup = oidc_setup(opened.path(), "refresh");
    Scenario::start("s13_oidc", setup)
        .await
        .run(|s| async move {
            s.wait_visible("screen-signin", T).await;
            assert_eq!(s.text("signin-button").await, "Continue in your browser");
            assert!(
                !s.visible("username-input").await,
                "no password field for a browser profile"
            );
            // Cancel while the browser waits: nothing is stored.
            s.click("signin-button").await;
            s.wait_visible("screen-browser-wait", T).await;
            let first = opened_url(opened.path(), 1).await;
            assert_eq!(s.text("browser-url").await, first);
            // The tab was closed: "Open again" opens the same page again,
            // and "Copy address" puts it on the clipboard.
            s.click("browser-open-again").await;
            assert_eq!(opened_url(opened.path(), 2).await, first, "opened again, the same page");
            s.wait_text("browser-copy-status", "the reopen's note", T, |t| t.contains("again"))
                .await;
            s.click("browser-copy").await;
            s.wait_text("browser-copy-status", "the copy's note", T, |t| {
                t.starts_with("Address copied")
            })
            .await;
            assert_eq!(e2e::clipboard_text(), first, "the clipboard holds the address");
            s.check_screen("waiting").await;
            s.click("cancel-signin-button").await;
            s.wait_text("signin-error", "the cancelled notice", T, |t| t.contains("cancelled"))
                .await;
            // The person's own Cancel is not shown as a failure (not red).
            // (The stylesheet's --muted, drawn on a probe element.)
            let colors = s
                .client
                .execute(
                    "const probe = document.createElement('span'); probe.style.color = 'var(--muted)'; \
                     document.body.append(probe); const muted = getComputedStyle(probe).color; probe.remove(); \
                     return [getComputedStyle(document.getElementById('signin-error')).color, muted];",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(colors[0], colors[1], "the muted colour, not the error red");
            assert!(s.stored_for("playground-oidc").is_none());
            // Sign in: the test plays the browser on the Playground's page.
            s.click("signin-button").await;
            s.wait_visible("screen-browser-wait", T).await;
            let url = opened_url(opened.path(), 3).await;
            assert!(
                url.starts_with(&format!("{}/authorize?", s.pg.info().oidc_issuer)),
                "{url}"
            );
            let browser = playground::browser::Browser::for_playground(&s.pg);
            let page = browser.sign_in(&url, ALICE.0, ALICE.1).await.unwrap();
            assert!(page.body.contains("return to Session Manager"), "{}", page.body);
            s.wait_text("state-badge", "the state badge to read Active", T, |t| t == "Active")
                .await;
            assert_eq!(s.text("user-value").await, "alice");
            assert_eq!(s.text("name-value").await, "Alice Adams <alice@playground.test>");
            assert_eq!(s.text("policy-value").await, "Refresh token");
            assert!(
                s.stored_for("playground-oidc").is_some(),
                "the session is in the keychain"
            );
            s.screenshot("active.png").await;
            // Sign out: the browser gets a one-shot page on loopback that
            // POSTs the sign-out to the provider, the ID token in the body
            // (so in no URL, command line or history).
            s.click("signout-button").await;
            s.wait_visible("screen-signin", T).await;
            let end = opened_url(opened.path(), 4).await;
            assert!(
                end.starts_with("http://127.0.0.1:") && end.contains("/sign-out/"),
                "{end}"
            );
            s.assert_no_token("the sign-out page's address", &end);
            let page = browser.open(&end, playground::browser::Action::Look).await.unwrap();
            assert!(page.body.contains("You are signed out"), "{}", page.body);
            assert!(s
                .pg
                .requests()
                .iter()
                .any(|r| r.path == "/oidc/end-session" && r.method == "POST"));
            assert_eq!(s.pg.calls_to("/cis/v1/auth/logout"), 1);
            assert!(s.stored_for("playground-oidc").is_none());
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s14_reauthenticate_mode_asks_when_silent_sign_in_fails() {
    let opened = tempfile::tempdir().unwrap();
    let setup = oidc_setup(opened.path(), "reauthenticate");
    Scenario::start("s14_oidc_reauthenticate", setup)
        .await
        .run(|s| async move {
            let browser = playground::browser::Browser::for_playground(&s.pg);
            s.wait_visible("screen-signin", T).await;
            s.click("signin-button").await;
            let url = opened_url(opened.path(), 1).await;
            browser.sign_in(&url, ALICE.0, ALICE.1).await.unwrap();
            s.wait_text("state-badge", "the state badge to read Active", T, |t| t == "Active")
                .await;
            assert_eq!(s.text("policy-value").await, "Signing in again (re-authentication)");
            assert!(s
                .text("signin-needed-value")
                .await
                .contains("silent sign-in will try first"));
            assert!(!s.visible("reauth-banner").await);
            // The provider's session is gone from the browser; the silent
            // sign-in (prompt=none) comes back with login_required.
            browser.clear_cookies();
            s.click("refresh-button").await;
            let silent = opened_url(opened.path(), 2).await;
            assert!(silent.contains("prompt=none"), "{silent}");
            assert!(
                s.visible("screen-session").await,
                "a silent sign-in does not take the screen"
            );
            let landed = browser.open(&silent, playground::browser::Action::Look).await.unwrap();
            assert!(landed.url.contains("error=login_required"), "{}", landed.url);
            s.wait_visible("reauth-banner", T).await;
            let badge = s.text("state-badge").await;
            assert!(
                badge.starts_with("Sign in again by "),
                "the session lives until expiry: {badge}"
            );
            s.screenshot("reauth-needed.png").await;
            // One click: the browser asks the person, and the session goes on.
            s.click("reauth-button").await;
            s.wait_visible("screen-browser-wait", T).await;
            let again = opened_url(opened.path(), 3).await;
            assert!(!again.contains("prompt=none"), "{again}");
            browser.sign_in(&again, ALICE.0, ALICE.1).await.unwrap();
            s.wait_visible("screen-session", T).await;
            s.wait_text("refresh-count", "the extension to count", T, |t| t == "1")
                .await;
            assert!(!s.visible("reauth-banner").await);
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s16_openid_connect_renews_past_the_access_tokens_life() {
    let opened = tempfile::tempdir().unwrap();
    let mut setup = oidc_setup(opened.path(), "refresh");
    // The strict Playground (offline access only with consent, no ID token
    // on refresh, RFC 9068 access tokens) with 6 s access tokens.
    setup.playground.token_lifetime = Duration::from_secs(6);
    Scenario::start("s16_oidc_renewal", setup)
        .await
        .run(|s| async move {
            s.wait_visible("screen-signin", T).await;
            s.click("signin-button").await;
            s.wait_visible("screen-browser-wait", T).await;
            let url = opened_url(opened.path(), 1).await;
            assert!(url.contains("prompt=consent"), "{url}");
            let browser = playground::browser::Browser::for_playground(&s.pg);
            browser.sign_in(&url, ALICE.0, ALICE.1).await.unwrap();
            s.wait_text("state-badge", "the state badge to read Active", T, |t| t == "Active")
                .await;
            assert!(
                !s.visible("renewal-notice").await,
                "the provider granted a refresh token"
            );
            assert!(s.text("scope-value").await.contains("offline_access"));
            // A test about time passing: well past the first token's 6 s.
            s.wait_text("refresh-count", "two renewals", Duration::from_secs(20), |t| {
                t.parse::<u32>().unwrap_or(0) >= 2
            })
            .await;
            assert_eq!(s.text("state-badge").await, "Active");
            assert_eq!(s.text("user-value").await, "alice");
            assert_eq!(s.text("name-value").await, "Alice Adams <alice@playground.test>");
            let left = seconds(&s.text("countdown").await).unwrap();
            assert!(left <= 6, "the countdown shows the renewed token's life: {left}");
            s.screenshot("renewed.png").await;
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

/// Failover: the primary endpoint goes down mid-session; the next refresh
/// and API use go to the backup under the same pins, the app says "using
/// backup endpoint" and the session stays Active.
#[tokio::test(flavor = "multi_thread")]
async fn s17_the_primary_goes_down_and_the_app_uses_the_backup() {
    let mut setup = lifetime(600);
    setup.playground.backup = true;
    Scenario::start("s17_failover", setup)
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            assert!(!s.visible("backup-notice").await);
            s.pg.set_primary(false).await;
            s.click("refresh-button").await;
            s.wait_visible("backup-notice", T).await;
            let backup = s.pg.info().backup_url.clone().unwrap();
            assert!(s.text("backup-endpoint").await.starts_with(&backup));
            s.wait_text("state-badge", "the state badge to read Active", T, |t| t == "Active")
                .await;
            assert_eq!(s.text("refresh-count").await, "1");
            assert_eq!(s.text("user-value").await, "alice");
            s.screenshot("backup.png").await;
            assert!(s.pg.sessions().iter().all(|x| !x.revoked));
            assert_nothing_leaked(&s).await;
            s
        })
        .await;
}

/// The idle timeout: the app warns with a countdown, "Stay signed in"
/// moves the deadline, and without activity the session is signed out
/// (keychain cleared, the provider told) with the reason shown.
#[tokio::test(flavor = "multi_thread")]
async fn s18_the_idle_timeout_warns_then_signs_out() {
    let setup = Setup {
        edit_config: Box::new(|_, c| c.replacen("tenant_id =", "idle_timeout_secs = 12\ntenant_id =", 1)),
        ..lifetime(600)
    };
    Scenario::start("s18_idle_timeout", setup)
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            // Twelve seconds is under the one-minute warning: it shows at once.
            s.wait_visible("idle-warning", T).await;
            // A test about time passing: let the countdown run down a little.
            s.wait_text("idle-seconds", "the idle countdown to reach 8 s", T, |t| {
                t.parse::<u32>().is_ok_and(|n| n <= 8)
            })
            .await;
            s.click("stay-button").await;
            s.wait_text("idle-seconds", "the countdown to start again", T, |t| {
                t.parse::<u32>().is_ok_and(|n| n >= 10)
            })
            .await;
            s.screenshot("idle-warning.png").await;
            // No more activity: signed out.
            s.wait_visible("screen-signin", Duration::from_secs(25)).await;
            let notice = s.text("session-notice").await;
            assert!(notice.contains("without activity"), "{notice}");
            assert_eq!(s.stored(), None, "the keychain entry survived the sign-out");
            assert!(
                s.pg.requests().iter().any(|r| r.path.ends_with("/logout")),
                "the provider was told"
            );
            s
        })
        .await;
}

/// "Your sessions": another device's session (a second engine signed in as
/// alice) shows beside this one, marked; End ends it at the provider.
#[tokio::test(flavor = "multi_thread")]
async fn s19_the_sessions_panel_ends_another_devices_session() {
    Scenario::start("s19_sessions_panel", lifetime(600))
        .await
        .run(|s| async move {
            let other_dir = tempfile::tempdir().unwrap();
            s.pg.set_next_login_origin("198.51.100.4", "Lisbon", "PT");
            let phone = other_device(&s.pg, other_dir.path(), "phone").await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.click("sessions-toggle").await;
            s.wait_until("two session rows", T, || async { s.count("session-row").await == 2 })
                .await;
            assert_eq!(s.count("this-device").await, 1);
            assert_eq!(s.count("end-session-button").await, 1, "no End on this device's row");
            let rows = s.text("sessions-list").await;
            assert!(rows.contains("phone") && rows.contains("Lisbon, PT"), "{rows}");
            s.screenshot("sessions.png").await;
            s.click("end-session-button").await;
            s.wait_until("one session row", T, || async { s.count("session-row").await == 1 })
                .await;
            let e = phone.refresh_now().await.unwrap_err();
            assert_eq!(e.code(), session_core::ErrorCode::SessionRevoked, "{e}");
            assert_eq!(s.text("state-badge").await, "Active", "this device is unaffected");
            s
        })
        .await;
}

/// Anomaly detection: after a sign-in from a city none of the earlier ones
/// had, the app shows why it looks unusual; Dismiss hides it.
#[tokio::test(flavor = "multi_thread")]
async fn s20_a_sign_in_from_a_new_city_shows_an_anomaly_banner() {
    Scenario::start("s20_anomaly", lifetime(600))
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            assert!(!s.visible("anomaly-banner").await);
            s.click("signout-button").await;
            s.wait_visible("screen-signin", T).await;
            s.pg.set_next_login_origin("203.0.113.7", "Lisbon", "PT");
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.wait_visible("anomaly-banner", T).await;
            let text = s.text("anomaly-list").await;
            assert!(
                text.contains("signed in from Lisbon, PT; your last session was in Berlin, DE"),
                "{text}"
            );
            s.screenshot("anomaly.png").await;
            s.click("anomaly-dismiss").await;
            s.wait_until("the banner to go", T, || async { !s.visible("anomaly-banner").await })
                .await;
            s
        })
        .await;
}

/// The Metrics panel draws the audit log's numbers as SVG: a latency line
/// after two refreshes, a bar for today, a lifetime bar per session.
#[tokio::test(flavor = "multi_thread")]
async fn s21_the_metrics_panel_draws() {
    Scenario::start("s21_metrics", lifetime(600))
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            for n in 1..=2 {
                s.click("refresh-button").await;
                s.wait_text("refresh-count", "the refresh to count", T, |t| t == n.to_string())
                    .await;
            }
            s.click("metrics-toggle").await;
            s.wait_until("the latency line", T, || async {
                s.count("metrics-latency-line").await == 1
            })
            .await;
            assert_eq!(s.count("metrics-day-bar").await, 1);
            assert_eq!(s.count("metrics-lifetime-bar").await, 1);
            // Each chart has its axes, the value axis's top and the values.
            assert_eq!(s.count("chart-axis").await, 3);
            let texts = |chart: &'static str, what: &'static str| {
                let script = format!(
                    "return [...document.querySelectorAll('#{chart} [data-testid=\"{what}\"]')].map((t) => t.textContent);"
                );
                let client = s.client.clone();
                async move { client.execute(&script, vec![]).await.unwrap().to_string() }
            };
            assert!(texts("metrics-latency", "chart-y-max").await.contains(" ms"));
            assert_eq!(texts("metrics-per-day", "chart-value").await, r#"["1"]"#, "one session today");
            assert_eq!(texts("metrics-per-day", "chart-y-max").await, r#"["1"]"#);
            let summary = s.text("metrics-summary").await;
            assert!(summary.starts_with("1 session, 2 refreshes (median "), "{summary}");
            s.scroll_to("metrics-latency", "start").await;
            s.check_screen("metrics").await;
            s
        })
        .await;
}

// The tray icon's state dot, as a panel draws the file the item names (the
// colours of tray::dot_colour; the app's own icon has no pure green, amber
// or red where the dot goes).
const GREEN: [u8; 3] = [0x1f, 0x9d, 0x55];
const AMBER: [u8; 3] = [0xe8, 0xa3, 0x00];
const RED: [u8; 3] = [0xd0, 0x2b, 0x3a];

/// Wait until the tray icon's dot is `want` (None: no state dot).
async fn tray_dot_reads(s: &Scenario, tray: &e2e::desktop::TrayItem, want: Option<[u8; 3]>, what: &str) {
    s.wait_until(what, Duration::from_secs(45), || async {
        let dot = tray.dot().unwrap();
        match want {
            Some(c) => dot == c,
            None => ![GREEN, AMBER, RED].contains(&dot),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn s22_the_tray_shows_the_session_and_signs_out_and_one_notification_warns() {
    let setup = Setup {
        desktop: true,
        ..lifetime(30)
    };
    Scenario::start("s22_tray_and_notification", setup)
        .await
        .run(|s| async move {
            let desktop = s.desktop.as_ref().unwrap();
            // The tray item registers with the watcher as the app starts.
            let tray = s.tray().await;
            let labels = |t: &e2e::desktop::TrayItem| {
                t.menu()
                    .unwrap()
                    .into_iter()
                    .map(|e| (e.label, e.enabled))
                    .collect::<Vec<_>>()
            };
            tray_dot_reads(&s, &tray, None, "no state dot while signed out").await;
            let menu = labels(&tray);
            assert!(menu.contains(&("playground · Signed out".into(), false)), "{menu:?}");
            assert!(
                menu.contains(&("Sign out".into(), false)),
                "nothing to sign out: {menu:?}"
            );

            // Signed in: the status line shows the state and when the
            // session really ends (the Playground's refresh tokens state
            // their end: 8 hours), not the access token's seconds.
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let deadline = Instant::now() + T;
            let active = |l: &[(String, bool)]| l.iter().any(|(l, _)| l.starts_with("playground · Active · ends "));
            while !active(&labels(&tray)) {
                assert!(Instant::now() < deadline, "the tray shows {:?}", labels(&tray));
                tokio::time::sleep(POLL).await;
            }
            tray_dot_reads(&s, &tray, Some(GREEN), "a green dot while Active").await;

            // The provider stops renewing (503s): in its last two minutes
            // the session warns once, and keeps quiet through the retries
            // that follow (each one a new view), until it ends.
            s.pg.fail_next_refreshes(1000);
            s.wait_visible("offline-notice", Duration::from_secs(45)).await;
            tray_dot_reads(&s, &tray, Some(AMBER), "an amber dot while offline, retrying").await;
            let attempts = std::sync::Mutex::new(std::collections::BTreeSet::new());
            // Backoff doubles, so one more attempt may be half a minute away.
            s.wait_until("another failed attempt", Duration::from_secs(60), || async {
                let seen = s.text("last-refresh").await;
                let mut a = attempts.lock().unwrap();
                a.insert(seen);
                a.len() >= 2
            })
            .await;
            s.pg.revoke(Some("alice"));
            s.pg.fail_next_refreshes(0);
            // The next attempt finds the session revoked: it ends, and the
            // sign-in screen says why.
            s.wait_visible("screen-signin", Duration::from_secs(60)).await;
            tray_dot_reads(&s, &tray, Some(RED), "a red dot once the provider ended it").await;
            let warnings = desktop.notifications_titled("Session about to expire");
            assert_eq!(warnings.len(), 1, "{:?}", desktop.notifications());
            // Renewal still runs (offline, retrying): the warning says so, and
            // does not claim the session ends with its access token.
            assert!(warnings[0].body.contains("renewing it keeps failing"), "{warnings:?}");
            assert_eq!(warnings[0].app_name, "Session Manager", "{warnings:?}");

            // The tray's Sign out ends a session.
            s.pg.fail_next_refreshes(0);
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.wait_until("Sign out to be enabled", T, || async {
                labels(&tray).contains(&("Sign out".into(), true))
            })
            .await;
            tray.click("Sign out").unwrap();
            s.wait_visible("screen-signin", T).await;
            tray_dot_reads(&s, &tray, None, "no dot once signed out").await;
            assert_eq!(s.stored(), None, "the keychain entry is gone");
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s23_closing_the_window_keeps_renewing_in_the_tray_and_ctrl_q_quits() {
    let setup = Setup {
        desktop: true,
        window_manager: true,
        ..lifetime(6)
    };
    Scenario::start("s23_background", setup)
        .await
        .run(|s| async move {
            let (desktop, wm) = (s.desktop.as_ref().unwrap(), s.wm.as_ref().unwrap());
            let tray = s.tray().await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let shown = || {
                wm.titles()
                    .iter()
                    .any(|t| t.starts_with("Session Manager — playground"))
            };
            assert!(shown(), "the window is not mapped: {:?}", wm.titles());
            let told = || desktop.notifications_titled("Session Manager is still running");

            // The window manager's close (the title bar's ×) hides the
            // window; the app stays, and says once where it went.
            wm.close("Session Manager — playground");
            s.wait_until("the window to be hidden", T, || async { !shown() }).await;
            s.wait_until("the first close to be explained", T, || async { !told().is_empty() })
                .await;
            let notes = told();
            let note = &notes[0];
            assert!(note.body.contains("tray") && note.body.contains("Ctrl+Q"), "{note:?}");
            assert_eq!(note.app_icon, "dev.sessionmanager.SessionManager", "{note:?}");
            assert!(s.app_running(), "closing the window ended the app");

            // Hidden, the session goes on being renewed (6 s tokens).
            let before = s.pg.refresh_calls();
            s.wait_until(
                "two renewals while the window is hidden",
                Duration::from_secs(30),
                || async { s.pg.refresh_calls() >= before + 2 },
            )
            .await;
            assert!(!shown(), "the window came back by itself");

            // The tray brings it back, on a session still active.
            tray.click("Show window").unwrap();
            s.wait_until("the window to be shown again", T, || async { shown() })
                .await;
            // (6 s tokens: it may be renewing the moment it is shown.)
            s.wait_text("state-badge", "an active session", T, |t| t == "Active")
                .await;

            // Ctrl+W closes it too; the explanation is not repeated.
            s.press_ctrl('w').await.unwrap();
            s.wait_until("Ctrl+W to hide the window", T, || async { !shown() })
                .await;
            assert!(s.app_running(), "Ctrl+W ended the app");
            assert_eq!(told().len(), 1, "{:?}", desktop.notifications());

            // Ctrl+Q quits: the app ends, its session stays in the keychain
            // for the next start.
            tray.click("Show window").unwrap();
            s.wait_until("the window to be shown again", T, || async { shown() })
                .await;
            let _ = s.press_ctrl('q').await;
            s.wait_until("Ctrl+Q to end the app", T, || async { !s.app_running() })
                .await;
            assert!(s.stored().is_some(), "quitting signed out");
            s
        })
        .await;
}

/// A FinHub profile whose absolute limit ends the session `secs` after
/// sign-in, with the desktop played on the bus.
fn absolute_limit(secs: u64) -> Setup {
    Setup {
        desktop: true,
        edit_config: Box::new(move |_, c| {
            c.replacen(
                "tenant_id =",
                &format!("absolute_timeout_secs = {secs}\ntenant_id ="),
                1,
            )
        }),
        ..lifetime(600)
    }
}

/// The session's end as the window shows it (its `data-at`).
async fn session_end_at(s: &Scenario) -> chrono::DateTime<chrono::Utc> {
    let at = s.el("session-ends").await.attr("data-at").await.unwrap();
    at.expect("the session end's data-at").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn s24_the_window_the_tray_and_sessionctl_show_one_session_end() {
    Scenario::start("s24_one_session_end", absolute_limit(3600))
        .await
        .run(|s| async move {
            let tray = s.tray().await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let ends = s.el("session-ends").await;
            let text = ends.text().await.unwrap();
            assert!(
                text.starts_with("Session ends at ") && text.ends_with("the profile's time limit"),
                // (the cause is its own line)
                "{text}"
            );
            let window_at = session_end_at(&s).await;
            assert!(
                (window_at - chrono::Utc::now() - chrono::Duration::hours(1))
                    .num_seconds()
                    .abs()
                    < 30,
                "{window_at}"
            );

            // sessionctl on the same config, data and keychain: the same end.
            let out = tokio::process::Command::new(e2e::sessionctl_binary())
                .arg("--config")
                .arg(s.config_path())
                .arg("--data-dir")
                .arg(s.data.path())
                .args(["--json", "status"])
                .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &s.keychain)
                .output()
                .await
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let cli_at: chrono::DateTime<chrono::Utc> = status["session_end"]["at"]
                .as_str()
                .expect("session_end.at")
                .parse()
                .unwrap();
            assert_eq!(cli_at, window_at, "{status:#}");
            assert_eq!(status["session_end"]["because"], "absolute");

            // The tray: the same end, to the minute, in local time.
            let local = session_core::view::local_clock_time(window_at, chrono::Utc::now());
            s.wait_until("the tray to show the session's end", T, || async {
                tray.menu()
                    .unwrap()
                    .iter()
                    .any(|e| e.label == format!("playground · Active · ends {local}"))
            })
            .await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s25_a_notification_warns_before_the_session_really_ends() {
    // 100 s: inside the two-minute lead at once.
    Scenario::start("s25_end_warning", absolute_limit(100))
        .await
        .run(|s| async move {
            let desktop = s.desktop.as_ref().unwrap();
            // Inside the lead from the start: the headline says so at once.
            s.sign_in(ALICE.0, ALICE.1).await;
            s.wait_text("state-badge", "the headline", T, |t| t == "Ending soon")
                .await;
            let warnings = || desktop.notifications_titled("Session ending soon");
            s.wait_until("the warning before the end", T, || async { !warnings().is_empty() })
                .await;
            let at = session_end_at(&s).await;
            let body = &warnings()[0].body;
            let local = session_core::view::local_clock_time(at, chrono::Utc::now());
            assert!(
                body.contains(&format!("ends at {local}: the profile's time limit")),
                "the window's end, in the notification: {body}"
            );
            // A renewal (a new view) does not warn again.
            s.click("refresh-button").await;
            s.wait_text("refresh-count", "a refresh", T, |t| t == "1").await;
            assert_eq!(warnings().len(), 1, "{:?}", desktop.notifications());
            // The window says the same, with the way on.
            let banner = s
                .wait_text("ending-soon-text", "the window's warning", T, |t| !t.is_empty())
                .await;
            assert!(
                banner.contains(&format!("ends at {}: the profile's time limit", local)),
                "{banner}"
            );
            assert_eq!(s.text("state-badge").await, "Ending soon");
            s.check_screen("ending-soon").await;
            s.click("ending-soon-signin").await;
            s.wait_visible("screen-signin", T).await;
            assert_eq!(
                s.el("username-input").await.prop("value").await.unwrap().as_deref(),
                Some(ALICE.0)
            );
            let focused = s.focused_id().await;
            assert_eq!(focused, "password", "the password is what is left to type");
            assert_eq!(s.stored(), None, "the ended session is not kept");
            // The new session has the same 100 s limit: warned at once.
            s.sign_in(ALICE.0, ALICE.1).await;
            s.wait_text("state-badge", "the new session's headline", T, |t| t == "Ending soon")
                .await;
            s
        })
        .await;
}

/// Every screen a person meets on the way in, checked with axe-core (no
/// serious or critical WCAG 2.1 AA violation) and photographed at 400x600
/// and 1280x900, in the light scheme and, with the GTK theme's dark variant
/// (what WebKitGTK's prefers-color-scheme follows), the dark one.
async fn screens_pass_axe(name: &str, dark: bool) {
    let theme = if dark { "Adwaita:dark" } else { "Adwaita" };
    let setup = Setup {
        env: vec![("GTK_THEME".into(), theme.into())],
        ..lifetime(600)
    };
    let name = name.to_owned();
    Scenario::start(&name, setup)
        .await
        .run(move |s| async move {
            s.wait_visible("screen-signin", T).await;
            let scheme = s
                .client
                .execute("return matchMedia('(prefers-color-scheme: dark)').matches;", vec![])
                .await
                .unwrap();
            assert_eq!(
                scheme,
                serde_json::Value::Bool(dark),
                "prefers-color-scheme with GTK_THEME={theme}"
            );
            s.check_screen("signin").await;
            s.sign_in(ALICE.0, "not-her-password").await;
            s.wait_text("signin-error", "the sign-in error", T, |t| !t.is_empty())
                .await;
            s.check_screen("signin-error").await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.check_screen("session").await;
            for panel in ["sessions-toggle", "metrics-toggle", "about-toggle"] {
                s.click(panel).await;
            }
            s.check_screen("session-panels").await;
            // "Add a provider", with an error, then with what was found.
            s.click("add-provider-button").await;
            s.wait_visible("screen-add", T).await;
            s.click("add-look-up").await;
            s.wait_text("add-error", "the empty field named", T, |t| !t.is_empty())
                .await;
            s.check_screen("add-provider-error").await;
            s.fill("add-url", &s.pg.info().oidc_issuer.clone()).await;
            s.fill("add-name", "corp").await;
            s.fill("add-client", "desktop").await;
            s.fill("add-ca", &s.pg.info().ca_cert.clone()).await;
            s.click("add-look-up").await;
            s.wait_visible("add-found", T).await;
            s.check_screen("add-provider-found").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s26_every_screen_passes_axe_light() {
    screens_pass_axe("s26_axe_light", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s27_every_screen_passes_axe_dark() {
    screens_pass_axe("s27_axe_dark", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s28_start_at_login_in_the_tray() {
    // The person's config home (where the autostart entry goes) is the
    // scenario's own.
    let home = tempfile::tempdir().unwrap();
    let setup = Setup {
        desktop: true,
        window_manager: true,
        env: vec![("XDG_CONFIG_HOME".into(), home.path().display().to_string())],
        ..lifetime(600)
    };
    let entry = home.path().join("autostart/dev.sessionmanager.SessionManager.desktop");
    let entry_for_run = entry.clone();
    Scenario::start("s28_autostart", setup)
        .await
        .run(move |mut s| async move {
            let entry = entry_for_run;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.click("about-toggle").await;
            let toggle = s.el("autostart-toggle").await;
            assert_eq!(
                toggle.prop("checked").await.unwrap().as_deref(),
                Some("false"),
                "off by default"
            );
            assert!(!entry.exists());
            toggle.click().await.unwrap();
            s.wait_until("the autostart entry", T, || async { entry.exists() })
                .await;
            let text = std::fs::read_to_string(&entry).unwrap();
            let exec = text
                .lines()
                .find_map(|l| l.strip_prefix("Exec="))
                .expect("an Exec line")
                .to_owned();
            let app = e2e::app_binary().canonicalize().unwrap();
            assert_eq!(exec, format!("{} --hidden", app.display()), "{text}");
            assert_eq!(
                s.el("autostart-toggle").await.prop("checked").await.unwrap().as_deref(),
                Some("true")
            );
            s.scroll_to("autostart-toggle", "center").await;
            s.check_screen("autostart-on").await;

            // The session starts as the login would start it: hidden, in the
            // tray, the session restored from the keychain.
            s.close_app().await;
            s.open_app_with(&["--hidden"]).await;
            let tray = s.tray().await;
            s.wait_until("the restored session in the tray", T, || async {
                tray.menu()
                    .unwrap()
                    .iter()
                    .any(|e| e.label.starts_with("playground · Active"))
            })
            .await;
            let wm = s.wm.as_ref().unwrap();
            assert!(
                !wm.titles().iter().any(|t| t.contains("Session Manager")),
                "the window is not shown at login: {:?}",
                wm.titles()
            );
            tray.click("Show window").unwrap();
            s.wait_until("the window shown from the tray", T, || async {
                s.wm.as_ref()
                    .unwrap()
                    .titles()
                    .iter()
                    .any(|t| t.contains("Session Manager"))
            })
            .await;

            // Off again: the entry is gone.
            s.click("about-toggle").await;
            s.wait_until("the setting read back", T, || async {
                s.el("autostart-toggle").await.prop("checked").await.unwrap().as_deref() == Some("true")
            })
            .await;
            s.click("autostart-toggle").await;
            s.wait_until("the autostart entry removed", T, || async { !entry.exists() })
                .await;
            s
        })
        .await;
}

/// The panels' words, as a person reads them: the metrics summary, the
/// number of sessions listed, and the Activity list.
async fn panels(s: &Scenario) -> (String, usize, Vec<String>) {
    let activity = s
        .client
        .execute(
            "return [...document.querySelectorAll('#activity-list > li')].map((li) => li.textContent);",
            vec![],
        )
        .await
        .unwrap();
    let activity = serde_json::from_value(activity).unwrap();
    (s.text("metrics-summary").await, s.count("session-row").await, activity)
}

#[tokio::test(flavor = "multi_thread")]
async fn s29_the_panels_follow_the_profile_and_the_session() {
    Scenario::start("s29_panels_follow", lifetime(600))
        .await
        .run(|s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.click("sessions-toggle").await;
            s.click("metrics-toggle").await;
            s.wait_until("the panels of the signed-in profile", T, || async {
                let (metrics, rows, activity) = panels(&s).await;
                metrics.starts_with("1 session,") && rows == 1 && activity.iter().any(|a| a.contains("Signed in"))
            })
            .await;

            // Signed out: the open panels follow (the list of sessions
            // empties, Activity says so).
            s.click("signout-button").await;
            s.wait_visible("screen-signin", T).await;
            s.wait_until("the panels after signing out", T, || async {
                let (metrics, rows, activity) = panels(&s).await;
                metrics.starts_with("1 session,") && rows == 0 && activity.iter().any(|a| a.contains("Signed out"))
            })
            .await;

            // Another profile, never signed in: nothing of the first one.
            let select = s.el("profile-select").await;
            select.select_by_value("playground-oidc").await.unwrap();
            s.wait_until("the other profile's empty panels", T, || async {
                let (metrics, rows, activity) = panels(&s).await;
                metrics.starts_with("0 sessions,") && rows == 0 && activity == ["Nothing yet."]
            })
            .await;
            s.check_screen("other-profile").await;

            // Back, and signed in again: the first profile's, with both sessions.
            s.el("profile-select")
                .await
                .select_by_value("playground")
                .await
                .unwrap();
            s.wait_until("the first profile's panels again", T, || async {
                let (metrics, _, activity) = panels(&s).await;
                metrics.starts_with("1 session,") && activity.iter().any(|a| a.contains("Signed out"))
            })
            .await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.wait_until("the panels after a new sign-in", T, || async {
                let (metrics, rows, activity) = panels(&s).await;
                metrics.starts_with("2 sessions,")
                    && rows == 1
                    && activity.iter().filter(|a| a.contains("Signed in")).count() >= 2
            })
            .await;
            s
        })
        .await;
}

/// Notifications with buttons, the window closed to the tray: the idle
/// warning's "Stay signed in" moves the sign-out (a second warning, for the
/// later time, comes instead of the end), and once the session has ended
/// for inactivity the notification's "Sign in again" brings the window back
/// on the sign-in form, the username filled and the password field focused.
#[tokio::test(flavor = "multi_thread")]
async fn s30_notification_buttons_act_with_the_window_closed() {
    let setup = Setup {
        desktop: true,
        window_manager: true,
        edit_config: Box::new(|_, c| c.replacen("tenant_id =", "idle_timeout_secs = 20\ntenant_id =", 1)),
        ..lifetime(600)
    };
    Scenario::start("s30_notification_buttons", setup)
        .await
        .run(|s| async move {
            let (desktop, wm) = (s.desktop.as_ref().unwrap(), s.wm.as_ref().unwrap());
            s.tray().await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let shown = || {
                wm.titles()
                    .iter()
                    .any(|t| t.starts_with("Session Manager — playground"))
            };
            // Closed as the title bar's × closes it: no input reaches the
            // page, so nothing there counts as activity from here on.
            wm.close("Session Manager — playground");
            s.wait_until("the window to be hidden", T, || async { !shown() }).await;

            let idle = || desktop.notifications_titled("Signing out for inactivity");
            s.wait_until("the idle warning", T, || async { !idle().is_empty() })
                .await;
            let first = idle()[0].clone();
            assert!(
                first.body.starts_with("Your playground session signs out at "),
                "{first:?}"
            );
            assert_eq!(first.actions[2..], ["stay-signed-in", "Stay signed in"], "{first:?}");
            desktop.press(&first, "stay-signed-in");
            // Twenty seconds from the press: a new warning, for the later
            // time (one per sign-out time: without the press there is none,
            // and the session ends instead).
            let ended = || desktop.notifications_titled("Signed out for inactivity");
            s.wait_until("a warning for the moved sign-out", T, || async { idle().len() >= 2 })
                .await;
            assert!(ended().is_empty(), "signed out although the button was pressed");
            assert!(!shown(), "Stay signed in needs no window");

            // No more activity: signed out, and told so with a button.
            s.wait_until("the idle sign-out's notification", Duration::from_secs(40), || async {
                !ended().is_empty()
            })
            .await;
            let note = ended()[0].clone();
            assert_eq!(
                note.body,
                "Your playground session was idle for longer than the profile allows. Sign in again to go on.",
            );
            desktop.press(&note, "sign-in-again");
            s.wait_until("the window shown by the button", T, || async { shown() })
                .await;
            s.wait_visible("screen-signin", T).await;
            s.wait_until("the password field focused", T, || async {
                s.focused_id().await == "password"
            })
            .await;
            assert_eq!(
                s.el("username-input").await.prop("value").await.unwrap().as_deref(),
                Some(ALICE.0)
            );
            s.check_screen("signed-out-for-inactivity").await;
            s
        })
        .await;
}

/// A signed-in engine of `pg`'s `playground` profile on another "device"
/// (its own data directory and an in-memory keychain), as alice.
async fn other_device(pg: &playground::Playground, dir: &std::path::Path, device: &str) -> session_core::Engine {
    let text = pg
        .config()
        .replacen("tenant_id =", &format!("device_name = \"{device}\"\ntenant_id ="), 1);
    let profile = session_core::profile::Config::parse(&text, std::path::Path::new("/"))
        .unwrap()
        .profile(Some("playground"))
        .unwrap()
        .clone();
    let engine = session_core::Engine::open_with_store(
        profile,
        dir,
        std::sync::Arc::new(session_core::storage::vault::MemoryStore::default()),
    )
    .unwrap();
    engine
        .sign_in(ALICE.0, session_core::Password::new(ALICE.1))
        .await
        .unwrap();
    engine
}

/// The session limit (Production, two sessions): the sign-in form lists
/// the live sessions in plain words (device, when in local time, where; no
/// id outside Details), "End this session" asks first, and the sign-in
/// that follows ends exactly that one and says so.
#[tokio::test(flavor = "multi_thread")]
async fn s31_at_the_session_limit_the_person_picks_the_session_to_end() {
    let setup = Setup {
        playground: Options {
            mode: playground::Mode::Production,
            session_limit: 2,
            token_lifetime: Duration::from_secs(600),
            ..Options::default()
        },
        ..Setup::default()
    };
    Scenario::start("s31_session_limit", setup)
        .await
        .run(|s| async move {
            let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
            s.pg.set_next_login_origin("198.51.100.4", "Lisbon", "PT");
            let phone = other_device(&s.pg, dirs[0].path(), "phone").await;
            s.pg.set_next_login_origin("203.0.113.9", "Porto", "PT");
            let tablet = other_device(&s.pg, dirs[1].path(), "tablet").await;
            let ids = [phone.view().session_id.unwrap(), tablet.view().session_id.unwrap()];

            s.sign_in(ALICE.0, ALICE.1).await;
            s.wait_visible("limit-panel", T).await;
            assert_eq!(s.count("limit-row").await, 2);
            let panel = s.text("limit-panel").await;
            assert!(
                panel.contains("phone")
                    && panel.contains("Lisbon, PT")
                    && panel.contains("tablet")
                    && panel.contains("Porto, PT"),
                "{panel}"
            );
            assert!(panel.find("phone") < panel.find("tablet"), "oldest first: {panel}");
            for id in &ids {
                assert!(!panel.contains(id.as_str()), "a raw id in the text: {panel}");
            }
            let sentence = s
                .client
                .execute(
                    "return document.querySelector('#signin-error > span').textContent",
                    vec![],
                )
                .await
                .unwrap();
            assert!(
                !sentence.as_str().unwrap_or_default().contains("replaceOldest"),
                "{sentence}"
            );

            // The second row's "End this session" asks first; "Keep it" keeps it.
            let end_buttons = s
                .client
                .find_all(e2e::fantoccini::Locator::Css("[data-testid='limit-end-button']"))
                .await
                .unwrap();
            end_buttons[1].click().await.unwrap();
            s.wait_visible("limit-confirm", T).await;
            assert_eq!(s.focused_id().await, "limit-confirm", "the question takes the focus");
            s.check_screen("session-limit-confirm").await;
            s.click("limit-keep").await;
            assert_eq!(s.count("limit-confirm").await, 0);
            let end_buttons = s
                .client
                .find_all(e2e::fantoccini::Locator::Css("[data-testid='limit-end-button']"))
                .await
                .unwrap();
            end_buttons[1].click().await.unwrap();
            s.click("limit-confirm").await;
            s.wait_text("state-badge", "the state badge to read Active", T, |t| t == "Active")
                .await;
            let note = s.text("replaced-note").await;
            assert!(note.contains("ended your session on tablet"), "{note}");
            s.screenshot("session-limit-replaced.png").await;

            let e = tablet.refresh_now().await.unwrap_err();
            assert_eq!(
                e.code(),
                session_core::ErrorCode::SessionRevoked,
                "the picked one ended: {e}"
            );
            phone.refresh_now().await.expect("the other one lives on");
            s
        })
        .await;
}

/// "This wasn't me" on the new-location banner: it asks first (the focus
/// moves to the question's button), then ends the other device's session
/// at the provider and this one, and says what it did.
#[tokio::test(flavor = "multi_thread")]
async fn s32_this_wasnt_me_ends_every_session() {
    Scenario::start("s32_not_me", lifetime(600))
        .await
        .run(|s| async move {
            let dir = tempfile::tempdir().unwrap();
            let phone = other_device(&s.pg, dir.path(), "phone").await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.click("signout-button").await;
            s.wait_visible("screen-signin", T).await;
            s.pg.set_next_login_origin("203.0.113.7", "Lisbon", "PT");
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.wait_visible("anomaly-banner", T).await;
            s.click("not-me").await;
            s.wait_visible("not-me-confirm", T).await;
            assert_eq!(s.focused_id().await, "not-me-yes", "the question takes the focus");
            s.check_screen("this-wasnt-me").await;
            s.click("not-me-yes").await;
            s.wait_visible("screen-signin", T).await;
            let done = s.text("not-me-done").await;
            assert!(done.starts_with("Ended 1 other session and this one."), "{done}");
            let e = phone.refresh_now().await.unwrap_err();
            assert_eq!(
                e.code(),
                session_core::ErrorCode::SessionRevoked,
                "the phone's session: {e}"
            );
            assert_eq!(s.stored(), None, "this one's keychain entry");
            let activity = s.text("activity-list").await;
            assert!(
                activity.contains("Ended 1 other session") && !activity.contains("session(s)"),
                "{activity}"
            );
            s.screenshot("this-wasnt-me-done.png").await;
            s
        })
        .await;
}

/// `sessionctl ARGS` as a person runs it beside the app out of the box: no
/// config file anywhere, the app's data directory and keychain.
async fn sessionctl_beside_the_app(s: &Scenario, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(e2e::sessionctl_binary())
        .args(args)
        .env_remove("SESSION_MANAGER_CONFIG")
        .env("XDG_CONFIG_HOME", s.data.path().join("no-config-home"))
        .env("SESSION_MANAGER_DATA_DIR", s.data.path())
        .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &s.keychain)
        .output()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn s33_the_built_in_playground_serves_sessionctl_and_outlives_the_app() {
    let setup = Setup {
        embedded: true,
        env: vec![("SESSION_MANAGER_PLAYGROUND_LIFETIME".into(), "300".into())],
        ..Setup::default()
    };
    Scenario::start("s33_built_in_playground_kept", setup)
        .await
        .run(|mut s| async move {
            s.sign_in_active(ALICE.0, ALICE.1).await;
            let window_at = session_end_at(&s).await;
            // The help's examples, as printed, reach the app's Playground
            // and its session.
            let out = sessionctl_beside_the_app(&s, &["--json", "--profile", "playground", "status"]).await;
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(status["state"], "active", "{status:#}");
            let cli_at: chrono::DateTime<chrono::Utc> = status["session_end"]["at"].as_str().unwrap().parse().unwrap();
            assert_eq!(cli_at, window_at, "{status:#}");
            let out = sessionctl_beside_the_app(&s, &["call", "GET", "/api/v2/accounts"]).await;
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let doctor = sessionctl_beside_the_app(&s, &["doctor"]).await;
            assert!(
                doctor.status.success(),
                "{}{}",
                String::from_utf8_lossy(&doctor.stdout),
                String::from_utf8_lossy(&doctor.stderr)
            );
            let config = s.data.path().join("playground/config.toml");
            let profiles = std::fs::read_to_string(&config).unwrap();

            // Restarted, the app finds its Playground where it was, with the
            // session: restored, not a new sign-in.
            s.restart_app().await;
            s.wait_visible("screen-session", T).await;
            s.wait_text("state-badge", "Active", T, |t| t == "Active").await;
            assert_eq!(s.text("user-value").await, "alice");
            assert_eq!(
                std::fs::read_to_string(&config).unwrap(),
                profiles,
                "the same address and pins"
            );
            let audit = std::fs::read_to_string(s.data.path().join("audit.jsonl")).unwrap();
            assert!(audit.contains("\"event\":\"session_restored\""), "{audit}");
            assert_eq!(audit.matches("\"event\":\"session_created\"").count(), 1, "{audit}");
            // And it renews there: the Playground knows its refresh token.
            let before = s.text("refresh-count").await;
            s.click("refresh-button").await;
            s.wait_text("refresh-count", "one more renewal", T, |t| t != before)
                .await;
            assert_eq!(s.text("state-badge").await, "Active");
            s.screenshot("restored.png").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s34_without_a_tray_the_window_minimizes_and_notifications_still_come() {
    // A desktop whose panel shows no tray icons (stock GNOME): a
    // notification server, no StatusNotifier watcher.
    let setup = Setup {
        desktop: true,
        no_tray_host: true,
        window_manager: true,
        ..lifetime(6)
    };
    Scenario::start("s34_no_tray_host", setup)
        .await
        .run(|s| async move {
            let (desktop, wm) = (s.desktop.as_ref().unwrap(), s.wm.as_ref().unwrap());
            const TITLE: &str = "Session Manager — playground";
            s.sign_in_active(ALICE.0, ALICE.1).await;
            assert!(!wm.minimized(TITLE), "{:?}", wm.titles());

            // Closed, the window is minimized, not hidden where no tray
            // could bring it back; the app stays and says where it went.
            wm.close(TITLE);
            s.wait_until("the window to be minimized", T, || async { wm.minimized(TITLE) })
                .await;
            assert!(s.app_running(), "closing the window ended the app");
            s.wait_until("the first close to be explained", T, || async {
                !desktop
                    .notifications_titled("Session Manager is still running")
                    .is_empty()
            })
            .await;
            let note = &desktop.notifications_titled("Session Manager is still running")[0];
            assert!(
                note.body.contains("taskbar") && note.body.contains("Ctrl+Q") && !note.body.contains("tray icon;"),
                "{note:?}"
            );
            let before = s.pg.refresh_calls();
            s.wait_until("a renewal while minimized", Duration::from_secs(20), || async {
                s.pg.refresh_calls() > before
            })
            .await;

            // The provider ends the session: the notification comes without
            // a tray, and its button brings the window back on the form.
            s.pg.revoke(Some(ALICE.0));
            let ended = || desktop.notifications_titled("Session ended by the provider");
            s.wait_until("the revocation's notification", Duration::from_secs(20), || async {
                !ended().is_empty()
            })
            .await;
            desktop.press(&ended()[0], "sign-in-again");
            s.wait_until("the window back from the taskbar", T, || async { !wm.minimized(TITLE) })
                .await;
            s.wait_visible("screen-signin", T).await;
            s.check_screen("no-tray-sign-in-again").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s35_a_session_ended_from_another_device_says_so() {
    let setup = Setup {
        desktop: true,
        ..lifetime(6)
    };
    Scenario::start("s35_ended_on_another_device", setup)
        .await
        .run(|s| async move {
            let desktop = s.desktop.as_ref().unwrap();
            s.sign_in_active(ALICE.0, ALICE.1).await;
            // Alice's phone: another client of the same provider, which
            // lists her sessions and ends the desktop's.
            let dir = tempfile::tempdir().unwrap();
            let phone = other_device(&s.pg, dir.path(), "phone").await;
            let desktop_session = phone
                .sessions()
                .await
                .unwrap()
                .into_iter()
                .find(|r| !r.current)
                .expect("the desktop's session in the phone's list");
            phone.end_session(&desktop_session.id).await.unwrap();

            // The desktop learns it at its next renewal, and says how.
            s.wait_visible("screen-signin", Duration::from_secs(20)).await;
            let sentence = s
                .client
                .execute(
                    "return document.querySelector('#session-notice > span').textContent",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(
                sentence.as_str(),
                Some("Your session was ended from another of your devices. Sign in again.")
            );
            let ended = || desktop.notifications_titled("Session ended on another device");
            s.wait_until("the notification", T, || async { !ended().is_empty() })
                .await;
            assert_eq!(
                ended()[0].body,
                "Your playground session was ended from another of your devices. Sign in again to go on."
            );
            let audit = std::fs::read_to_string(s.data.path().join("audit.jsonl")).unwrap();
            assert!(audit.contains("Ended from another device"), "{audit}");
            s.check_screen("ended-on-another-device").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s36_a_picked_session_that_was_not_needed_is_not_said_to_have_ended() {
    // At the limit the person picks the tablet's session to end; meanwhile
    // the phone signs out, so the sign-in needs no room and ends nothing:
    // the window must not say it ended the tablet's.
    let setup = Setup {
        playground: Options {
            mode: playground::Mode::Production,
            session_limit: 2,
            token_lifetime: Duration::from_secs(600),
            ..Options::default()
        },
        ..Setup::default()
    };
    Scenario::start("s36_limit_no_longer_held", setup)
        .await
        .run(|s| async move {
            let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
            let phone = other_device(&s.pg, dirs[0].path(), "phone").await;
            let tablet = other_device(&s.pg, dirs[1].path(), "tablet").await;
            s.sign_in(ALICE.0, ALICE.1).await;
            s.wait_visible("limit-panel", T).await;
            let end_buttons = s
                .client
                .find_all(e2e::fantoccini::Locator::Css("[data-testid='limit-end-button']"))
                .await
                .unwrap();
            end_buttons[1].click().await.unwrap();
            s.wait_visible("limit-confirm", T).await;
            phone.sign_out().await.unwrap();
            s.click("limit-confirm").await;
            s.wait_text("state-badge", "the state badge to read Active", T, |t| t == "Active")
                .await;
            assert!(!s.visible("replaced-note").await, "{}", s.text("replaced-note").await);
            tablet.refresh_now().await.expect("the tablet's session was not ended");
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s37_two_profiles_signed_in_side_by_side() {
    // A second FinHub profile on the same provider, for Bob: each profile
    // its own engine, keychain entry and timers.
    let setup = Setup {
        desktop: true,
        edit_config: Box::new(|_, c| {
            let block = c.split("[profiles.playground]").nth(1).unwrap();
            let block = block.split("[profiles.playground-oidc]").next().unwrap().to_owned();
            format!("{c}\n[profiles.second]{block}")
        }),
        ..lifetime(6)
    };
    Scenario::start("s37_side_by_side", setup)
        .await
        .run(|s| async move {
            let tray = s.tray().await;
            s.sign_in_active(ALICE.0, ALICE.1).await;
            // From the session screen to the other profile: Alice's session
            // goes on while Bob signs in.
            s.click_account("second").await;
            s.wait_visible("screen-signin", T).await;
            s.sign_in_active("bob", "bob-pw-2").await;
            assert_eq!(s.text("user-value").await, "bob");
            s.check_screen("second-profile-signed-in").await;

            // Both renew, each on its own schedule (6 s tokens), whichever
            // the window shows.
            let refreshes = |user: &str| {
                s.pg.sessions()
                    .iter()
                    .filter(|x| x.user == user && !x.revoked && !x.signed_out)
                    .map(|x| x.refresh_count)
                    .max()
                    .unwrap_or(0)
            };
            s.wait_until("two renewals of each session", Duration::from_secs(30), || async {
                refreshes(ALICE.0) >= 2 && refreshes("bob") >= 2
            })
            .await;
            let line = |profile: &'static str| {
                let tray = &tray;
                move || {
                    tray.menu()
                        .unwrap_or_default()
                        .iter()
                        .find(|e| e.label.starts_with(&format!("{profile} · ")))
                        .map(|e| e.label.clone())
                        .unwrap_or_default()
                }
            };
            s.wait_until("both profiles' lines in the tray", T, || async {
                line("playground")().starts_with("playground · Active · ends ")
                    && line("second")().starts_with("second · Active · ends ")
            })
            .await;

            // A fault in one (the provider revokes Bob's sessions) leaves the
            // other Active and renewing.
            s.pg.revoke(Some("bob"));
            s.wait_until("Bob's profile to end", Duration::from_secs(20), || async {
                !line("second")().contains("Active")
            })
            .await;
            let before = refreshes(ALICE.0);
            s.wait_until("Alice's session renewing on", Duration::from_secs(20), || async {
                refreshes(ALICE.0) > before
            })
            .await;
            // (6 s tokens: it may read "Renewing…" at any moment.)
            s.wait_until("Alice's line to read Active", T, || async {
                line("playground")().starts_with("playground · Active")
            })
            .await;
            // Bob signs in again on his profile's screen; the window then
            // shows Alice's session, and the tray signs Bob out by name.
            s.wait_visible("screen-signin", T).await;
            s.sign_in_active("bob", "bob-pw-2").await;
            s.click_account("playground").await;
            s.wait_text("user-value", "Alice's session shown", T, |t| t == "alice")
                .await;
            s.wait_until("Bob's line Active", T, || async {
                line("second")().starts_with("second · Active")
            })
            .await;
            tray.click("Sign out of second").unwrap();
            s.wait_until("Bob signed out from the tray", T, || async {
                line("second")() == "second · Signed out"
            })
            .await;
            assert!(s.stored_for("second").is_none() && s.stored_for("playground").is_some());
            assert_eq!(s.text("user-value").await, "alice");
            s.wait_text("state-badge", "Active", T, |t| t == "Active").await;
            s
        })
        .await;
}

/// The app's `n`-th browser page, played as Alice signing in on the
/// Playground's page; then the session screen, Active.
async fn alice_signs_in_the_browser(s: &Scenario, opened: &std::path::Path, n: usize) {
    let url = opened_url(opened, n).await;
    let browser = playground::browser::Browser::for_playground(&s.pg);
    browser.sign_in(&url, ALICE.0, ALICE.1).await.unwrap();
    s.wait_visible("screen-session", T).await;
    s.wait_text("state-badge", "Active", T, |t| t == "Active").await;
}

/// The texts of the home list's rows, by profile (read in one script: the
/// rows are redrawn when a state changes).
async fn account_rows(s: &Scenario) -> Vec<(String, String)> {
    let rows = s
        .client
        .execute(
            "return [...document.querySelectorAll('[data-testid=account-row]')].map((r) => [r.dataset.profile, r.querySelector('[data-testid=account-status]').textContent])",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(rows).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn s38_a_provider_added_in_the_window_beside_a_signed_in_one() {
    // Only the FinHub profile is configured; the Playground's OpenID
    // Connect side is added through the window, from its issuer alone,
    // the app registering itself (RFC 7591).
    let opened = tempfile::tempdir().unwrap();
    let setup = Setup {
        edit_config: Box::new(|_, c| c.split("[profiles.playground-oidc]").next().unwrap().to_owned()),
        env: vec![(
            "SESSION_MANAGER_TEST_OPENER_DIR".into(),
            opened.path().display().to_string(),
        )],
        desktop: true,
        ..Setup::default()
    };
    Scenario::start("s38_add_provider", setup)
        .await
        .run(|s| async move {
            s.pg.set(playground::Switch::Registration, true);
            let tray = s.tray().await;
            let tray_line = |profile: &str| {
                tray.menu()
                    .unwrap_or_default()
                    .iter()
                    .find(|e| e.label.starts_with(&format!("{profile} · ")))
                    .map(|e| e.label.clone())
            };
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.wait_until("the home list with the FinHub profile Active", T, || async {
                let rows = account_rows(&s).await;
                rows.len() == 1 && rows[0].0 == "playground" && rows[0].1.starts_with("Active · ends ")
            })
            .await;

            s.click("add-provider-button").await;
            s.wait_visible("screen-add", T).await;
            assert!(!s.visible("screen-session").await, "the add screen stands alone");
            // An empty field is named before anything is sent.
            s.click("add-look-up").await;
            s.wait_text("add-error", "the empty address named", T, |t| {
                t.contains("https address")
            })
            .await;
            // A plain-HTTP address is refused, named.
            let issuer = s.pg.info().oidc_issuer.clone();
            s.fill("add-url", &issuer.replace("https://", "http://")).await;
            s.fill("add-name", "corp").await;
            s.click("add-look-up").await;
            s.wait_text("add-error", "http refused", T, |t| t.contains("is not https"))
                .await;
            // The real issuer, through the Playground's private CA.
            s.fill("add-url", &issuer).await;
            s.fill("add-ca", &s.pg.info().ca_cert.clone()).await;
            s.click("add-look-up").await;
            s.wait_visible("add-found", T).await;
            assert_eq!(s.count("add-pin").await, 2, "the leaf's pin and a backup");
            let summary = s.text("add-summary").await;
            assert!(
                summary.contains("register itself") && summary.contains("offline_access"),
                "{summary}"
            );
            assert!(
                s.pg.registered_clients().is_empty(),
                "nothing registered before the confirmation"
            );
            assert!(!std::fs::read_to_string(s.config_path())
                .unwrap()
                .contains("[profiles.corp]"));
            s.check_screen("add-provider-found").await;

            // Confirmed: registered, written, and its sign-in in the browser.
            s.click("add-confirm").await;
            s.wait_visible("screen-browser-wait", T).await;
            alice_signs_in_the_browser(&s, opened.path(), 1).await;
            assert_eq!(s.pg.registered_clients().len(), 1);
            let config = std::fs::read_to_string(s.config_path()).unwrap();
            assert!(
                config.contains("[profiles.corp]") && config.contains("[profiles.playground]"),
                "{config}"
            );
            s.wait_until("both profiles Active in the home list", T, || async {
                let rows = account_rows(&s).await;
                rows.len() == 2 && rows.iter().all(|(_, status)| status.starts_with("Active"))
            })
            .await;
            s.check_screen("home-two-accounts").await;
            // The tray has a line for the new profile too.
            s.wait_until("the tray's line for corp", T, || async {
                tray_line("corp").is_some_and(|l| l.starts_with("corp · Active"))
            })
            .await;

            // The keyboard moves along the list.
            s.client
                .execute("document.querySelector('[data-profile=corp]').focus()", vec![])
                .await
                .unwrap();
            s.client
                .active_element()
                .await
                .unwrap()
                .send_keys(&fantoccini::key::Key::Up.to_string())
                .await
                .unwrap();
            let focused = s
                .client
                .execute("return document.activeElement.dataset.profile", vec![])
                .await
                .unwrap();
            assert_eq!(focused, serde_json::json!("playground"));

            // Signing out of one leaves the other Active.
            s.click("signout-button").await;
            s.wait_until("corp signed out, the FinHub profile still Active", T, || async {
                let rows = account_rows(&s).await;
                rows.iter().any(|(n, st)| n == "corp" && st == "Signed out")
                    && rows.iter().any(|(n, st)| n == "playground" && st.starts_with("Active"))
            })
            .await;
            assert!(s.stored_for("playground").is_some() && s.stored_for("corp").is_none());

            // Removed from its detail, behind a confirmation: out of the
            // file and the list, and its registration deleted.
            s.client
                .execute("document.getElementById('remove-details').open = true", vec![])
                .await
                .unwrap();
            s.click("remove-confirm").await;
            let said = s
                .wait_text("remove-done", "the removal said", T, |t| !t.is_empty())
                .await;
            assert!(
                said.contains("Removed corp") && said.contains("Deleted the app's registration"),
                "{said}"
            );
            assert!(s.pg.registered_clients().is_empty());
            let config = std::fs::read_to_string(s.config_path()).unwrap();
            assert!(
                !config.contains("corp") && config.contains("[profiles.playground]"),
                "{config}"
            );
            let rows = account_rows(&s).await;
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert!(rows[0].1.starts_with("Active"), "{rows:?}");
            s.wait_text("user-value", "Alice's FinHub session shown", T, |t| t == "alice")
                .await;
            s.wait_until("no tray line for corp", T, || async { tray_line("corp").is_none() })
                .await;
            assert!(tray_line("playground").is_some_and(|l| l.starts_with("playground · Active")));
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s39_from_nothing_to_signed_in_with_only_an_issuer() {
    // The app as packaged: no config file, no built-in Playground. A person
    // with only the provider's issuer (and, where the provider does not let
    // apps register, the client id their administrator gave) gets signed
    // in without an editor.
    let opened = tempfile::tempdir().unwrap();
    let setup = Setup {
        embedded: true,
        env: vec![
            (
                "SESSION_MANAGER_TEST_OPENER_DIR".into(),
                opened.path().display().to_string(),
            ),
            ("SESSION_MANAGER_TEST_NO_PLAYGROUND".into(), "1".into()),
        ],
        ..Setup::default()
    };
    Scenario::start("s39_first_run_add", setup)
        .await
        .run(|s| async move {
            s.wait_visible("screen-first-run", T).await;
            s.click("first-run-add").await;
            s.wait_visible("screen-add", T).await;
            assert!(!s.visible("screen-first-run").await);
            let issuer = s.pg.info().oidc_issuer.clone();
            s.fill("add-url", &issuer).await;
            s.fill("add-name", "corp").await;
            s.fill("add-ca", &s.pg.info().ca_cert.clone()).await;
            // Registration off and no client id: named, with what to do.
            s.pg.set(playground::Switch::Registration, false);
            s.click("add-look-up").await;
            s.wait_text("add-error", "no registration named", T, |t| t.contains("client id"))
                .await;
            // With the client id an administrator registered: found (no
            // registration said), confirmed, written, signed in. (s38 has
            // the app register itself.)
            s.fill("add-client", playground::CLIENT_ID).await;
            s.click("add-look-up").await;
            s.wait_visible("add-found", T).await;
            assert!(!s.text("add-summary").await.contains("register"));
            s.click("add-confirm").await;
            alice_signs_in_the_browser(&s, opened.path(), 1).await;
            assert!(s.pg.registered_clients().is_empty());
            let written = s
                .config_path()
                .parent()
                .unwrap()
                .join("empty-config-home/session-manager/config.toml");
            let config = std::fs::read_to_string(&written).unwrap();
            assert!(
                config.contains("[profiles.corp]")
                    && config.contains(&issuer)
                    && config.contains(&format!("client_id = \"{}\"", playground::CLIENT_ID)),
                "{config}"
            );
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&written).unwrap().permissions().mode() & 0o777, 0o600);
            let rows = account_rows(&s).await;
            assert_eq!(rows.len(), 1, "{rows:?}");
            assert!(rows[0].0 == "corp" && rows[0].1.starts_with("Active"), "{rows:?}");
            s.check_screen("first-run-added").await;
            s
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s40_three_profiles_at_once_and_a_pin_mismatch_in_one() {
    const THREE: [&str; 3] = ["production", "integration", "playground-oidc"];
    // FinHub Production, FinHub Integration and OpenID Connect signed in at
    // once. Integration reaches the provider through a forwarder that can
    // switch to another host whose certificate its CA file trusts but its
    // pins do not: an interception the pins catch.
    let impostor = playground::Playground::start(Options::default()).await.unwrap();
    let impostor_port = e2e::port_of(impostor.base_url());
    let forwarder = e2e::Forwarder::start(impostor_port).await;
    let via = format!("https://127.0.0.1:{}", forwarder.port);
    let impostor_ca = impostor.info().ca_cert.clone();
    let opened = tempfile::tempdir().unwrap();
    let setup = Setup {
        edit_config: Box::new(move |pg, c| {
            let bundle = std::path::Path::new(&pg.info().ca_cert).with_file_name("both-cas.pem");
            let both =
                std::fs::read_to_string(&pg.info().ca_cert).unwrap() + &std::fs::read_to_string(&impostor_ca).unwrap();
            std::fs::write(&bundle, both).unwrap();
            let finhub = c.split("[profiles.playground]").nth(1).unwrap();
            let finhub = finhub.split("[profiles.playground-oidc]").next().unwrap().to_owned();
            let integration = finhub
                .lines()
                .map(|l| match l {
                    l if l.starts_with("base_url") || l.starts_with("jwks_url") => l.replace(pg.base_url(), &via),
                    l if l.starts_with("ca_file") => format!("ca_file = {:?}", bundle.display().to_string()),
                    l if l.starts_with("environment") => "environment = \"integration\"".to_owned(),
                    l => l.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let production = finhub.replace("environment = \"playground\"", "environment = \"production\"");
            let rest = c
                .replacen(&finhub, &production, 1)
                .replace("[profiles.playground]", "[profiles.production]");
            format!("{rest}\n[profiles.integration]{integration}\n")
                .replace("default_profile = \"playground\"", "default_profile = \"production\"")
        }),
        env: vec![(
            "SESSION_MANAGER_TEST_OPENER_DIR".into(),
            opened.path().display().to_string(),
        )],
        ..lifetime(8)
    };
    Scenario::start("s40_three_profiles", setup)
        .await
        .run(move |s| async move {
            forwarder.switch(e2e::port_of(s.pg.base_url()));
            s.sign_in_active(ALICE.0, ALICE.1).await;
            s.click_account("integration").await;
            s.wait_visible("screen-signin", T).await;
            s.sign_in_active("bob", "bob-pw-2").await;
            s.click_account("playground-oidc").await;
            s.wait_visible("screen-signin", T).await;
            s.click("signin-button").await;
            let url = opened_url(opened.path(), 1).await;
            let browser = playground::browser::Browser::for_playground(&s.pg);
            browser.sign_in(&url, ALICE.0, ALICE.1).await.unwrap();
            s.wait_text("state-badge", "OpenID Connect session Active", T, |t| t == "Active")
                .await;
            s.wait_until("three profiles Active in the home list", T, || async {
                // (The built-in Playground's own profile is listed too.)
                let rows = account_rows(&s).await;
                THREE.iter().all(|p| {
                    rows.iter()
                        .any(|(n, st)| n == p && (st.starts_with("Active") || st.starts_with("Renewing")))
                })
            })
            .await;
            s.check_screen("three-profiles").await;

            // sessionctl sees the same three, each renewing on its own.
            let status = |s: &Scenario| {
                let (config, data, keychain) =
                    (s.config_path().to_owned(), s.data.path().to_owned(), s.keychain.clone());
                async move {
                    let out = tokio::process::Command::new(e2e::sessionctl_binary())
                        .arg("--config")
                        .arg(&config)
                        .arg("--data-dir")
                        .arg(&data)
                        .args(["--json", "status", "--all"])
                        .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &keychain)
                        .output()
                        .await
                        .unwrap();
                    let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
                    all.into_iter()
                        .map(|v| {
                            (
                                v["profile"].as_str().unwrap_or_default().to_owned(),
                                (
                                    v["state"].as_str().unwrap_or_default().to_owned(),
                                    v["refresh_count"].as_u64().unwrap_or(0),
                                ),
                            )
                        })
                        .collect::<std::collections::BTreeMap<_, _>>()
                }
            };
            let first = status(&s).await;
            let live = |st: &str| st == "active" || st == "refreshing";
            assert!(
                THREE.iter().all(|p| first.get(*p).is_some_and(|(st, _)| live(st))),
                "{first:?}"
            );
            s.wait_until("each profile renewed again", Duration::from_secs(40), || async {
                let now = status(&s).await;
                THREE
                    .iter()
                    .all(|p| now.get(*p).is_some_and(|(st, n)| live(st) && *n > first[*p].1))
            })
            .await;

            // Integration's line is intercepted: the pins refuse the other
            // host; the other two go on renewing, Active.
            forwarder.switch(impostor_port);
            s.wait_until(
                "integration stopped by the pin mismatch",
                Duration::from_secs(30),
                || async {
                    account_rows(&s)
                        .await
                        .iter()
                        .any(|(n, st)| n == "integration" && !st.starts_with("Active") && !st.starts_with("Renewing"))
                },
            )
            .await;
            let before = status(&s).await;
            s.wait_until(
                "production and OpenID Connect renewing on",
                Duration::from_secs(40),
                || async {
                    let now = status(&s).await;
                    ["production", "playground-oidc"]
                        .iter()
                        .all(|p| now.get(*p).is_some_and(|(st, n)| live(st) && *n > before[*p].1))
                },
            )
            .await;
            let rows = account_rows(&s).await;
            for p in ["production", "playground-oidc"] {
                assert!(
                    rows.iter()
                        .any(|(n, st)| n == p && (st.starts_with("Active") || st.starts_with("Renewing"))),
                    "{p}: {rows:?}"
                );
            }
            s.check_screen("three-profiles-one-intercepted").await;
            s
        })
        .await;
}

/// SIGTERM (the end of the desktop session, `kill`, a service manager) and
/// SIGINT (Ctrl-C in the terminal the app was started from) end the app as
/// its Quit does: the renewal in flight lands and is stored, and the app
/// exits 0. With the signals' default action it died mid-request, the
/// provider's rotated refresh token in an answer nobody read. The app is
/// started directly (not through WebDriver) to read its exit status.
#[tokio::test(flavor = "multi_thread")]
async fn s41_a_signal_ends_the_app_as_quit_does_after_the_renewal_in_flight() {
    use session_core::storage::vault::{KeyringStore, SecretStore};
    use std::sync::Arc;
    let _lock = e2e::scenario_lock();
    for signal in ["-TERM", "-INT"] {
        let dir = tempfile::tempdir().unwrap();
        let pg = playground::Playground::start(Options {
            token_lifetime: Duration::from_secs(6),
            dir: Some(dir.path().join("pg")),
            ..Options::default()
        })
        .await
        .unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, pg.config()).unwrap();
        let data = dir.path().join("data");
        let service = format!("session-manager-s41-{}", uuid::Uuid::new_v4().simple());
        let store: Arc<dyn SecretStore> = Arc::new(KeyringStore::new(service.clone()));
        let profile = session_core::Config::parse(pg.config(), dir.path()).unwrap().profiles["playground"].clone();
        let engine = session_core::Engine::open_with_store(profile.clone(), &data, store.clone()).unwrap();
        engine
            .sign_in("alice", session_core::Password::new("alice-pw-1"))
            .await
            .expect("signed in to the Playground");
        drop(engine);
        let before = store
            .get("profile:playground")
            .unwrap()
            .expect("the session is in the keychain");
        // Answered 2 s after the provider rotated the token: the signal
        // arrives while the renewal is in flight.
        pg.slow_next_refresh(Duration::from_secs(2));
        let log = dir.path().join("app.log");
        let mut app = tokio::process::Command::new(e2e::app_binary())
            .env("SESSION_MANAGER_CONFIG", &config)
            .env("SESSION_MANAGER_DATA_DIR", &data)
            .env("SESSION_MANAGER_KEYCHAIN_SERVICE", &service)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("app.err")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let started = Instant::now();
        while pg.refresh_calls() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{signal}: the app began no renewal"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let pid = app.id().unwrap().to_string();
        assert!(std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
        let status = tokio::time::timeout(Duration::from_secs(20), app.wait())
            .await
            .expect("the app exits after the renewal lands")
            .unwrap();
        let stderr = std::fs::read_to_string(dir.path().join("app.err")).unwrap_or_default();
        assert!(status.success(), "{signal}: the app ended with {status:?}\n{stderr}");
        assert_eq!(pg.refresh_calls(), 1, "{signal}: one renewal, none replayed");
        let after = store
            .get("profile:playground")
            .unwrap()
            .expect("the session is still in the keychain");
        assert_ne!(after, before, "{signal}: the renewed session was stored");
        let engine = session_core::Engine::open_with_store(profile, &data, store.clone()).unwrap();
        let view = engine.restore().await.unwrap();
        assert!(view.state.has_session(), "{signal}: {view:?}");
        let _ = engine.sign_out().await;
    }
}
