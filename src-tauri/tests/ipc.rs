//! The real shell on Tauri's mock runtime: the app's own commands, its
//! capability (ACL) and its event forwarding, driven the way the webview
//! drives them. Commands answer `SessionView`s or `{code, message}` errors,
//! and no token appears in any response or event payload.

use session_manager::backend::{Backend, Options};
use std::sync::{Arc, Mutex};
use tauri::test::{get_ipc_response, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Listener, Manager, WebviewWindow};

fn invoke(
    window: &WebviewWindow<MockRuntime>,
    cmd: &str,
    args: serde_json::Value,
) -> Result<serde_json::Value, serde_json::Value> {
    get_ipc_response(
        window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            // The origin of the app's own pages on Linux.
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<serde_json::Value>().unwrap())
}

/// A keychain namespace of the calling test's own on the session bus. Each
/// test names it in the backend's options: the tests run side by side in
/// one process, and with one namespace (an environment variable is the
/// whole process's) one test's backend took over another's session and,
/// outliving its test on Tauri's global runtime, wrote into its removed
/// data directory when the other signed out.
fn own_keychain_namespace() -> Option<String> {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "this test needs a Secret Service on the D-Bus session bus; run it through `bash scripts/test.sh`"
    );
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(format!("session-manager-test-{}-{n}", std::process::id()))
}

/// The real shell with `backend` on the mock runtime, after one event-loop
/// turn (Tauri runs the setup hooks, which open the main window, on "Ready";
/// `run_iteration` is deprecated because a loop of it busy-waits, and a single
/// turn is exactly what is needed here).
fn mock_app(backend: Arc<Backend>) -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let mut app = session_manager::build(tauri::test::mock_builder(), backend, |_, _| {})
        .build(tauri::generate_context!("../tauri.conf.json", test = true))
        .expect("the app builds");
    #[allow(deprecated)]
    app.run_iteration(|_, _| {});
    let window = app.get_webview_window("main").expect("the main window");
    (app, window)
}

#[test]
fn commands_answer_views_or_coded_errors_and_never_a_token() {
    let keychain_service = own_keychain_namespace();
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("absent.toml");
    std::fs::write(&config, "").unwrap();
    let backend = tauri::async_runtime::block_on(Backend::start(Options {
        // An empty config file: invalid, reported, and the Playground still runs.
        config: Some(config),
        data_dir: Some(data.path().to_owned()),
        keychain_service: keychain_service.clone(),
        ..Options::default()
    }))
    .expect("the backend starts");
    let backend = Arc::new(backend);
    let (app, window) = mock_app(backend.clone());
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = events.clone();
    app.listen_any(session_manager::SESSION_EVENT, move |event| {
        sink.lock().unwrap().push(event.payload().to_owned())
    });
    let mut seen = Vec::new();

    let view = invoke(&window, "session_view", serde_json::json!({})).unwrap();
    assert_eq!(view["state"], "signed_out");
    assert_eq!(view["environment"], "playground");

    let profiles = invoke(&window, "list_profiles", serde_json::json!({})).unwrap();
    assert_eq!(profiles["profiles"][0]["name"], "playground");
    assert_eq!(profiles["profiles"][0]["demo_users"][0]["username"], "alice");
    assert_eq!(profiles["config_error"]["code"], "config_invalid");

    let err = invoke(
        &window,
        "sign_in",
        serde_json::json!({"username": "alice", "password": "wrong"}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "invalid_credentials", "{err}");
    assert!(err["message"].as_str().unwrap().contains("wrong password"));

    let view = invoke(
        &window,
        "sign_in",
        serde_json::json!({"username": "alice", "password": "alice-pw-1"}),
    )
    .unwrap();
    assert_eq!(view["state"], "active");
    assert_eq!(view["customer"], "cust-1001");
    seen.push(view.to_string());
    let view = invoke(&window, "refresh_now", serde_json::json!({})).unwrap();
    assert_eq!(view["refresh_count"], 1);
    // Activity for the idle timeout: allowed by the capability, no answer.
    assert_eq!(
        invoke(&window, "touch", serde_json::json!({})).unwrap(),
        serde_json::Value::Null
    );
    seen.push(view.to_string());
    let activity = invoke(&window, "recent_activity", serde_json::json!({"limit": 10})).unwrap();
    assert_eq!(activity[0]["kind"], "session_refreshed");
    seen.push(activity.to_string());
    let err = invoke(&window, "switch_profile", serde_json::json!({"name": "nope"})).unwrap_err();
    assert_eq!(err["code"], "config_invalid");
    let report = invoke(&window, "sign_out", serde_json::json!({})).unwrap();
    assert_eq!(report["view"]["state"], "signed_out");
    seen.push(report.to_string());

    // A command that is not this app's is refused by the capability.
    let refused = invoke(
        &window,
        "plugin:notification|notify",
        serde_json::json!({"options": {"title": "x"}}),
    );
    assert!(refused.is_err(), "the webview may not use the notification plugin");
    // Nor the core plugins a compromised page could misuse: the tray (hide
    // or rewrite its Sign out), menus, images from any path, path lookups.
    for (cmd, args) in [
        ("plugin:tray|get_by_id", serde_json::json!({"id": "main"})),
        ("plugin:tray|remove_by_id", serde_json::json!({"id": "main"})),
        ("plugin:menu|new", serde_json::json!({"kind": "Menu", "options": {}})),
        ("plugin:image|from_path", serde_json::json!({"path": "/etc/hostname"})),
        ("plugin:path|resolve_directory", serde_json::json!({"directory": 13})),
        (
            "plugin:window|set_title",
            serde_json::json!({"label": "main", "value": "x"}),
        ),
        ("plugin:webview|print", serde_json::json!({"label": "main"})),
    ] {
        let r = invoke(&window, cmd, args);
        assert!(r.is_err(), "{cmd} is allowed: {r:?}");
    }
    // What the UI does need, listening to the app's event, is allowed.
    invoke(
        &window,
        "plugin:event|listen",
        serde_json::json!({"event": session_manager::SESSION_EVENT, "target": {"kind": "Any"}, "handler": 7}),
    )
    .expect("the UI may listen to session://changed");

    // The About panel: the built-in Playground's admin API for QA.
    let about = invoke(&window, "about", serde_json::json!({})).unwrap();
    let qa = &about["playground"];
    assert_eq!(qa["admin_token"], backend.playground().unwrap().info().admin_token);
    assert!(qa["admin_url"].as_str().unwrap().ends_with("/admin"));
    assert_eq!(about["keychain_service"].as_str(), keychain_service.as_deref());
    assert!(about["data_dir"]
        .as_str()
        .unwrap()
        .contains(data.path().to_str().unwrap()));
    seen.push(about.to_string());

    // "Copy diagnostics": text for a support team, scanned with the rest.
    let diagnostics = invoke(&window, "diagnostics", serde_json::json!({})).unwrap();
    let text = diagnostics.as_str().unwrap();
    assert!(text.starts_with("Session Manager diagnostics"), "{text}");
    assert!(text.contains("Profile playground (finhub, playground)"), "{text}");
    assert!(
        !text.contains(qa["admin_token"].as_str().unwrap()),
        "the admin token stays out"
    );
    seen.push(diagnostics.to_string());

    // Events: one per transition, each a SessionView.
    let events = events.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| e.contains("\"state\":\"refreshing\"")),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.contains("\"state\":\"signed_out\"")));
    seen.extend(events);

    let tokens = backend.playground().unwrap().issued_tokens();
    assert!(tokens.len() >= 4);
    for payload in &seen {
        for token in &tokens {
            assert!(!payload.contains(token.as_str()), "a token crossed IPC");
        }
    }
}

#[test]
fn the_main_window_may_use_only_this_apps_commands_and_core_essentials() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/capabilities/main.json")).unwrap();
    let cap: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut granted: Vec<&str> = cap["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    granted.sort();
    assert_eq!(
        granted,
        vec![
            "allow-about",
            "allow-add-provider",
            "allow-autostart",
            "allow-cancel-sign-in",
            "allow-close-window",
            "allow-copy-diagnostics",
            "allow-copy-sign-in-address",
            "allow-diagnostics",
            "allow-dismiss-anomalies",
            "allow-end-everywhere",
            "allow-end-other-sessions",
            "allow-end-session",
            "allow-examine-provider",
            "allow-list-profiles",
            "allow-list-sessions",
            "allow-metrics",
            "allow-open-sign-in-page",
            "allow-quit",
            "allow-recent-activity",
            "allow-refresh-now",
            "allow-remove-profile",
            "allow-session-view",
            "allow-set-autostart",
            "allow-sign-in",
            "allow-sign-in-browser",
            "allow-sign-out",
            "allow-switch-profile",
            "allow-touch",
            "allow-try-demo",
            "core:event:allow-listen",
            "core:event:allow-unlisten",
        ]
    );
    assert_eq!(cap["windows"], serde_json::json!(["main"]));
    assert!(cap.get("remote").is_none(), "no remote origin may call commands");
}

#[test]
fn csp_is_strict_and_the_ui_has_no_inline_script() {
    let conf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../tauri.conf.json")).unwrap(),
    )
    .unwrap();
    let csp = conf["app"]["security"]["csp"].as_str().expect("a CSP is set");
    for bad in ["unsafe-inline", "unsafe-eval", "http:", "https:", "*"] {
        assert!(
            !csp.split([' ', ';']).any(|t| t == bad || t == format!("'{bad}'")),
            "CSP allows {bad}: {csp}"
        );
    }
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'self'"),
        "{csp}"
    );
    assert_eq!(conf["app"]["withGlobalTauri"], true);
    let ui = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui");
    for entry in std::fs::read_dir(ui).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".html") {
            assert!(
                !text.contains("<script>") && !text.contains("<script type=\"module\">"),
                "{name}: inline script"
            );
            assert!(
                !text.contains(" onclick=") && !text.contains(" onload=") && !text.contains("javascript:"),
                "{name}: inline handler"
            );
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{name}: a remote origin"
            );
        }
        if name.ends_with(".js") {
            assert!(
                !text.contains("eval(") && !text.contains("new Function") && !text.contains("innerHTML"),
                "{name}: eval or innerHTML"
            );
        }
    }
}

#[test]
fn audit_records_still_queued_reach_copy_diagnostics_and_are_written_when_the_app_exits() {
    use session_core::storage::audit::{AuditEvent, AuditRecord};
    let keychain_service = own_keychain_namespace();
    let data = tempfile::tempdir().unwrap();
    let backend = tauri::async_runtime::block_on(Backend::start(Options {
        data_dir: Some(data.path().to_owned()),
        keychain_service,
        ..Options::default()
    }))
    .expect("the backend starts");
    let (app, window) = mock_app(Arc::new(backend));
    let started = app.state::<session_manager::Started>().inner().clone();
    let engine = tauri::async_runtime::block_on(started.get()).unwrap().engine();
    // API calls' records, queued as the engine queues them (without the
    // flush the engine would ask for a second later).
    let queue = |method: &str| {
        let record = AuditRecord {
            time: chrono::Utc::now(),
            profile: "playground".into(),
            user: Some("alice".into()),
            session_id: None,
            fingerprint: None,
            event: AuditEvent::ApiCall {
                method: method.into(),
                status: 200,
                latency_ms: 3,
            },
        };
        engine.audit_log().append_later(&record).unwrap();
    };
    let written = || {
        std::fs::read_to_string(engine.audit_log().path())
            .unwrap_or_default()
            .matches(r#""event":"api_call""#)
            .count()
    };
    queue("GET");
    assert_eq!(written(), 0);
    let diagnostics = invoke(&window, "diagnostics", serde_json::json!({})).unwrap();
    let text = diagnostics.as_str().unwrap();
    assert!(text.contains("API call GET answered 200 in 3 ms"), "{text}");
    queue("POST");
    assert_eq!(written(), 1);
    session_manager::on_run_event(app.handle(), &tauri::RunEvent::Exit);
    assert_eq!(written(), 2, "the queued record was lost at exit");
}

#[test]
fn profiles_from_the_config_file_join_the_playground_and_can_be_switched_to() {
    let keychain_service = own_keychain_namespace();
    let data = tempfile::tempdir().unwrap();
    // Another provider, as a config file would name an Integration one.
    let other = tauri::async_runtime::block_on(playground::Playground::start(playground::Options::default())).unwrap();
    let config = data.path().join("config.toml");
    std::fs::write(
        &config,
        other
            .config()
            .replace("[profiles.playground]", "[profiles.second]")
            .replace("default_profile = \"playground\"\n", ""),
    )
    .unwrap();
    let backend = tauri::async_runtime::block_on(Backend::start(Options {
        config: Some(config),
        data_dir: Some(data.path().to_owned()),
        keychain_service,
        ..Options::default()
    }))
    .expect("the backend starts");
    let (_app, window) = mock_app(Arc::new(backend));
    let list = invoke(&window, "list_profiles", serde_json::json!({})).unwrap();
    let names: Vec<&str> = list["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    // The built-in Playground brings its FinHub and its OpenID Connect profile.
    assert_eq!(names, vec!["playground", "playground-oidc", "second"]);
    let providers: Vec<&str> = list["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    assert_eq!(providers, vec!["finhub", "oidc", "finhub"]);
    // A profile of the file's is the file's, though the built-in Playground
    // has one of the same name.
    assert_eq!(
        list["profiles"][1]["address"].as_str(),
        Some(other.info().oidc_issuer.as_str()),
        "the config file's playground-oidc was replaced by the built-in one's"
    );
    assert_eq!(list["config_error"], serde_json::Value::Null);
    let view = invoke(&window, "switch_profile", serde_json::json!({"name": "second"})).unwrap();
    assert_eq!(view["profile"], "second");
    let view = invoke(
        &window,
        "sign_in",
        serde_json::json!({"username": "bob", "password": "bob-pw-2"}),
    )
    .unwrap();
    assert_eq!(
        (view["state"].as_str(), view["customer"].as_str()),
        (Some("active"), Some("cust-1002"))
    );
    assert_eq!(other.sessions().len(), 1, "the sign-in went to the second provider");
    let list = invoke(&window, "list_profiles", serde_json::json!({})).unwrap();
    assert_eq!(list["profiles"][2]["selected"], true);
    assert_eq!(
        list["profiles"][2]["demo_users"],
        serde_json::json!([]),
        "demo users only for the built-in Playground"
    );
    invoke(&window, "sign_out", serde_json::json!({})).unwrap();
}

#[test]
fn the_window_shows_only_the_apps_own_pages() {
    use session_manager::is_app_page;
    for ok in [
        "tauri://localhost/index.html",
        "http://tauri.localhost/",
        "https://tauri.localhost/x",
    ] {
        assert!(is_app_page(&ok.parse().unwrap()), "{ok}");
    }
    for bad in [
        "https://evil.example/",
        "http://127.0.0.1:8080/",
        "file:///etc/passwd",
        "tauri://evil",
        "https://tauri.localhost.evil.example/",
    ] {
        assert!(!is_app_page(&bad.parse().unwrap()), "{bad}");
    }
}
