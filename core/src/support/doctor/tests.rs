use super::hosts::unrevocable;
use super::*;

#[test]
fn a_refresh_token_that_sign_out_cannot_end_is_a_warning_with_its_fix() {
    let mut profile = crate::testkit::oidc_profile("refresh");
    let mut oidc = profile.oidc.take().unwrap();
    oidc.logout_url = None;
    oidc.scopes = vec!["openid".into(), "offline_access".into()];
    let w = unrevocable(&profile, &oidc, false).expect("a warning");
    assert_eq!(w.status, Status::Warning);
    assert!(w.detail.contains("no way to revoke"), "{w:?}");
    assert!(w.fix.as_deref().unwrap_or_default().contains("offline_access"), "{w:?}");
    assert!(
        unrevocable(&profile, &oidc, true).is_none(),
        "with a revocation endpoint"
    );
    oidc.scopes.retain(|s| s != "offline_access");
    assert!(
        unrevocable(&profile, &oidc, false).is_none(),
        "an online token ends with the session"
    );
}

#[test]
fn clock_offsets_within_the_leeway_pass_beyond_the_anomaly_limit_fail() {
    assert_eq!(clock_verdict("c", 0).status, Status::Ok);
    assert_eq!(clock_verdict("c", -30).status, Status::Ok);
    assert_eq!(clock_verdict("c", 31).status, Status::Warning);
    assert_eq!(clock_verdict("c", -300).status, Status::Warning);
    assert_eq!(clock_verdict("c", 301).status, Status::Failed);
    assert!(
        clock_verdict("c", 400).detail.contains("400 s behind"),
        "{:?}",
        clock_verdict("c", 400)
    );
    assert!(clock_verdict("c", -400).detail.contains("400 s ahead of"));
}

#[cfg(unix)]
#[test]
fn a_data_directory_others_can_read_fails_with_the_chmod_that_fixes_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert_eq!(
        check_data_dir(Some(&data))[0].status,
        Status::Ok,
        "not created yet is fine"
    );
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let log = data.join("audit.log");
    std::fs::write(&log, "{}").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    let checks = check_data_dir(Some(&data));
    assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");

    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let checks = check_data_dir(Some(&data));
    let bad = checks
        .iter()
        .find(|c| c.status == Status::Failed)
        .expect("the readable log fails");
    assert_eq!(
        bad.fix.as_deref(),
        Some(format!("chmod 600 {}", log.display()).as_str())
    );

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let checks = check_data_dir(Some(&data));
    assert_eq!(checks[0].status, Status::Warning, "the app tightens a directory itself");
    assert!(checks[0].detail.contains("mode 0755"), "{checks:?}");
    assert_eq!(
        checks[0].fix.as_deref(),
        Some(format!("chmod 700 {}", data.display()).as_str())
    );

    // A folder inside (the built-in Playground's) wants a directory's mode.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o600)).unwrap();
    let sub = data.join("playground");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let checks = check_data_dir(Some(&data));
    let sub_check = checks
        .iter()
        .find(|c| c.detail.contains("playground"))
        .unwrap_or_else(|| panic!("{checks:?}"));
    assert_eq!(
        sub_check.fix.as_deref(),
        Some(format!("chmod 700 {}", sub.display()).as_str()),
        "{checks:?}"
    );
    assert!(
        sub_check.detail.ends_with("others can list the files in it"),
        "{checks:?}"
    );
    assert!(checks.iter().all(|c| c.status != Status::Failed), "{checks:?}");

    std::fs::remove_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(dir.path(), &data).unwrap();
    assert_eq!(
        check_data_dir(Some(&data))[0].status,
        Status::Failed,
        "a link is not a directory"
    );
}

#[tokio::test]
async fn the_keychain_probe_leaves_nothing_behind_and_fails_on_a_broken_store() {
    let store = Arc::new(crate::storage::vault::MemoryStore::default());
    let check = check_keychain(store.clone()).await;
    assert_eq!(check.status, Status::Ok, "{check:?}");
    assert!(store.entries().is_empty(), "the probe entry is deleted");

    let broken = Arc::new(crate::storage::vault::MemoryStore::default());
    broken.fail_after_writes(0);
    let check = check_keychain(broken.clone()).await;
    assert_eq!(check.status, Status::Failed, "{check:?}");
    assert!(check.detail.starts_with("writing failed"), "{check:?}");
    assert!(broken.entries().is_empty());
}

#[test]
fn a_broken_config_fails_with_its_fix_and_no_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[profiles.x]\nprovider = \"finhub\"\nbogus = 1\n").unwrap();
    let (check, config) = check_config(Some(&path), true);
    assert!(config.is_none());
    assert_eq!(check.status, Status::Failed);
    assert!(check.detail.contains("bogus"), "{check:?}");
    assert!(!check.detail.contains("Fix:"), "the fix is its own field: {check:?}");
    assert!(check.fix.as_deref().is_some_and(|f| !f.is_empty()));
    assert_eq!(check_config(None, false).0.status, Status::Failed);
}

#[test]
fn no_config_file_yet_is_a_fact_unless_one_was_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    // The default file, not written yet: how every first run starts.
    let (check, _) = check_config(Some(&path), false);
    assert_eq!(check.status, Status::Ok, "{check:?}");
    assert!(check.detail.contains("no config file at"), "{check:?}");
    // A file the person named that is not there.
    let (check, _) = check_config(Some(&path), true);
    assert_eq!(check.status, Status::Failed, "{check:?}");
    assert!(check.detail.ends_with("not found"), "{check:?}");
    assert!(!check.detail.contains("invalid"), "{check:?}");
}
