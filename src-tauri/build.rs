fn main() {
    // generate_context! embeds ui/ when this crate compiles, and rustc then
    // tracks the files it read: an edited file rebuilds, but a new or
    // removed one did not (a page or module added to ui/ was missing from
    // the binary until something else changed). Watching the directory
    // reruns this script, which recompiles the crate.
    println!("cargo:rerun-if-changed=../ui");
    // tauri.conf.json lives at the repository root (paths inside it are
    // relative to the root). The app manifest lists this app's own commands,
    // which generates one `allow-<command>` permission each; the main
    // window's capability (capabilities/main.json) grants exactly those.
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .config_path("../tauri.conf.json")
            .app_manifest(tauri_build::AppManifest::new().commands(&[
                "session_view",
                "sign_in",
                "sign_in_browser",
                "cancel_sign_in",
                "sign_out",
                "refresh_now",
                "touch",
                "list_sessions",
                "end_session",
                "end_other_sessions",
                "end_everywhere",
                "dismiss_anomalies",
                "metrics",
                "recent_activity",
                "list_profiles",
                "switch_profile",
                "about",
                "diagnostics",
                "try_demo",
                "examine_provider",
                "add_provider",
                "remove_profile",
                "copy_diagnostics",
                "open_sign_in_page",
                "copy_sign_in_address",
                "autostart",
                "set_autostart",
                "close_window",
                "quit",
            ])),
    )
    .expect("tauri-build failed");
}
