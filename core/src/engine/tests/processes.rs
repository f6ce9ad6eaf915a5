//! Several processes on one keychain record, and processes that stop,
//! restart or are cancelled mid-renewal (engine review 2, N4–N14). Each
//! test failed on the engine before its fix.

use super::*;

/// Files in the shared directory whose name contains `part`.
fn shared_files(rig: &Rig, part: &str) -> Vec<String> {
    std::fs::read_dir(rig.dir.path().join("shared"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(part))
                .collect()
        })
        .unwrap_or_default()
}

/// N4: the keychain locks; process A redeems the refresh token and cannot
/// store the new one. Process B, which holds the same (now spent) token,
/// must not present it: the provider would see a reuse and revoke the
/// family.
#[tokio::test(start_paused = true)]
async fn a_locked_keychain_does_not_let_two_processes_redeem_one_token() {
    let rig = rig(600);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    rig.store.unavailable.store(true, Ordering::SeqCst); // the keyring locks
    rig.engine.refresh_now().await.unwrap();
    let err = second.refresh_now().await.unwrap_err();
    assert_eq!(rig.refresh_calls(), 1, "the second process redeemed a spent token");
    assert_eq!(rig.engine.view().state, Phase::Active);
    assert_eq!(second.view().state, Phase::Active, "{err}");
    assert_eq!(err.renewal_verdict(), crate::error::RenewalVerdict::Retry, "{err}");
    // Once the keychain is back, the first process stores its token and
    // the second adopts it.
    rig.store.unavailable.store(false, Ordering::SeqCst);
    rig.engine.retry_persist().await;
    tokio::time::sleep(Duration::from_secs(61)).await;
    second.refresh_now().await.unwrap();
    assert_eq!(second.view().state, Phase::Active);
    assert_ne!(rig.engine.view().state, Phase::Revoked);
    let journal = shared_files(&rig, "journal");
    assert_eq!(journal.len(), 1, "{journal:?}");
    let text = std::fs::read_to_string(rig.dir.path().join("shared").join(&journal[0])).unwrap();
    assert!(
        !text.contains(&rig.provider.current_refresh()),
        "the journal holds a token, not its hash"
    );
}

/// N5: another process's refresh that takes longer than the sign-out
/// waits for the lock does not write the signed-out session back, and
/// revokes what it was given.
#[tokio::test(start_paused = true)]
async fn a_sign_out_elsewhere_during_a_slow_refresh_is_not_undone() {
    let rig = rig(600);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_secs(10);
    let slow = second.clone();
    let refresh = tokio::spawn(async move { slow.refresh_now().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.engine.sign_out().await.unwrap();
    let _ = refresh.await.unwrap();
    assert!(
        rig.store.entries().is_empty(),
        "the signed-out session is back in the keychain"
    );
    assert_ne!(second.view().state, Phase::Active);
    assert_eq!(rig.second_process().restore().await.unwrap().state, Phase::SignedOut);
    let told = rig.provider.signed_out.lock().unwrap().clone();
    assert!(
        told.iter()
            .any(|t| t.refresh.as_ref().map(|r| r.expose().to_owned()) == Some(rig.provider.current_refresh())),
        "the refresh token the late renewal brought was not revoked"
    );
}

/// N6: a renewal that lands after the sign-out stopped waiting for it does
/// not park its tokens for the next session's sign-out.
#[tokio::test(start_paused = true)]
async fn a_slow_refresh_after_sign_out_does_not_steal_the_next_sessions_logout() {
    let rig = rig(600);
    sign_in(&rig).await;
    *rig.provider.refresh_delay.lock().unwrap() = Duration::from_secs(60);
    let engine = rig.engine.clone();
    let refresh = tokio::spawn(async move { engine.refresh_now().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.engine.sign_out().await.unwrap(); // stops waiting after 40 s
    let _ = refresh.await.unwrap();
    let late = rig.provider.current_refresh();
    *rig.provider.refresh_delay.lock().unwrap() = Duration::ZERO;
    sign_in(&rig).await;
    let second = rig.stored().unwrap().refresh.unwrap();
    rig.engine.sign_out().await.unwrap();
    let told = rig.provider.signed_out.lock().unwrap().clone();
    let refreshes: Vec<_> = told
        .iter()
        .filter_map(|t| t.refresh.as_ref().map(|r| r.expose().to_owned()))
        .collect();
    assert_eq!(
        refreshes.last().map(String::as_str),
        Some(second.expose()),
        "the second session's sign-out revoked another session's tokens"
    );
    assert!(
        refreshes.contains(&late),
        "the late renewal's refresh token was never revoked: {refreshes:?}"
    );
}

/// N7: a sign-out that could not reach the keychain leaves a tombstone; a
/// process that still holds the session does not refresh it and store it
/// again when the keychain comes back.
#[tokio::test(start_paused = true)]
async fn another_process_does_not_bring_back_a_session_signed_out_while_the_keychain_was_locked() {
    let rig = rig(600);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    rig.store.unavailable.store(true, Ordering::SeqCst);
    rig.provider.logout_fails.store(true, Ordering::SeqCst);
    rig.engine.sign_out().await.unwrap();
    rig.store.unavailable.store(false, Ordering::SeqCst);
    let err = second.refresh_now().await.unwrap_err();
    assert_eq!(rig.refresh_calls(), 0, "the signed-out session was renewed: {err}");
    assert!(rig.store.entries().is_empty(), "the signed-out session is still stored");
    assert_eq!(second.view().state, Phase::SignedOut);
    assert_eq!(rig.second_process().restore().await.unwrap().state, Phase::SignedOut);
}

/// N10: a caller that gives up (Ctrl-C in `sessionctl watch`, a timeout)
/// does not cancel a renewal the provider already answered: the new refresh
/// token is kept, and the next renewal presents it.
#[tokio::test(start_paused = true)]
async fn a_cancelled_caller_does_not_lose_a_rotated_refresh_token() {
    let rig = rig(600);
    sign_in(&rig).await;
    *rig.provider.answer_delay.lock().unwrap() = Duration::from_secs(1);
    let gave_up = tokio::time::timeout(Duration::from_millis(100), rig.engine.refresh_now()).await;
    assert!(gave_up.is_err(), "the test needs the caller to give up");
    rig.engine.drain(Duration::from_secs(5)).await;
    assert_eq!(
        rig.stored().and_then(|r| r.refresh).map(|r| r.expose().to_owned()),
        Some(rig.provider.current_refresh()),
        "the rotated refresh token was lost"
    );
    *rig.provider.answer_delay.lock().unwrap() = Duration::ZERO;
    rig.engine.refresh_now().await.unwrap();
    assert_eq!(rig.engine.view().state, Phase::Active);
    assert_eq!(rig.refresh_calls(), 2);
}

/// N11: views carry one sequence for the whole process, so a view of an
/// engine that was replaced never outranks its successor's.
#[tokio::test(start_paused = true)]
async fn view_sequence_numbers_are_process_wide() {
    let first = rig(600);
    sign_in(&first).await;
    let before = first.engine.view().seq;
    let next = rig(600);
    let mut views = next.engine.subscribe();
    sign_in(&next).await;
    let after = views.recv().await.unwrap().seq;
    assert!(
        after > before,
        "a new engine's view {after} is behind an old one's {before}"
    );
}

/// N12: a process whose session can no longer be renewed does not delete
/// the fresher record another process renewed meanwhile; it takes it.
#[tokio::test(start_paused = true)]
async fn a_process_that_stopped_renewing_does_not_delete_a_fresher_record() {
    let rig = rig(600);
    *rig.provider.refresh_jwt_lifetime.lock().unwrap() = Some(900);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    *rig.provider.fail_with.lock().unwrap() = Some(Error::Authorization {
        error: "invalid_client".into(),
        description: None,
    });
    rig.engine.refresh_now().await.unwrap_err(); // stops renewing here
    *rig.provider.fail_with.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_secs(300)).await;
    second.refresh_now().await.unwrap();
    tokio::time::sleep(Duration::from_secs(601)).await; // past the first refresh token's end
    rig.engine.expire_if_due().await;
    assert!(rig.stored().is_some(), "the fresher record was deleted");
    assert_eq!(second.view().state, Phase::Active);
    assert_eq!(
        rig.engine.view().state,
        Phase::Active,
        "the fresher record was not taken"
    );
}

fn idle_profile() -> Profile {
    with_timeouts(Some(600), None)
}

/// N8: activity in another process (`sessionctl call`) counts for the idle
/// timeout here, and a restart does not reset it.
#[tokio::test(start_paused = true)]
async fn the_idle_timeout_is_shared_by_processes_and_survives_a_restart() {
    let rig = rig_for(idle_profile(), 3600);
    sign_in(&rig).await;
    let second = rig.second_process();
    second.restore().await.unwrap();
    let _scheduler = rig.engine.start();
    tokio::time::sleep(Duration::from_secs(500)).await;
    second.touch(); // a `sessionctl call`
    tokio::time::sleep(Duration::from_secs(150)).await;
    assert_eq!(
        rig.engine.view().state,
        Phase::Active,
        "another process's activity was not counted"
    );
    // Nobody active for longer than the idle limit; a process that starts
    // now does not restore the session.
    drop(_scheduler);
    tokio::time::sleep(Duration::from_secs(500)).await;
    let later = rig.second_process().restore().await.unwrap();
    assert_eq!(later.state, Phase::Expired, "a restart reset the idle timeout");
    assert!(rig.store.entries().is_empty());
    assert!(
        rig.provider.logouts.load(Ordering::SeqCst) >= 1,
        "the provider was not told"
    );
}

/// N14: a keychain that becomes available after the start is used without
/// a restart; without any keychain, signing in and out leaves no files.
#[tokio::test(start_paused = true)]
async fn a_keychain_unlocked_after_the_start_is_found_and_memory_only_leaves_no_tombstones() {
    let rig = super::rig(3600);
    sign_in(&rig).await;
    rig.store.unavailable.store(true, Ordering::SeqCst);
    let late = rig.second_process();
    late.restore().await.unwrap();
    assert_eq!(late.view().persistence, Persistence::MemoryOnly);
    let _scheduler = late.start();
    rig.store.unavailable.store(false, Ordering::SeqCst); // unlocked
    tokio::time::sleep(Duration::from_secs(61)).await;
    let view = late.view();
    assert_eq!(view.state, Phase::Active, "the keychain was not looked at again");
    assert_eq!(view.persistence, Persistence::Keychain);

    let bare = super::rig(3600);
    bare.store.unavailable.store(true, Ordering::SeqCst);
    bare.engine.restore().await.unwrap();
    sign_in(&bare).await;
    bare.engine.sign_out().await.unwrap();
    assert_eq!(shared_files(&bare, "ended").len(), 0, "a tombstone without a keychain");
}

/// N12, the keychain side: ending a session deletes its record only when
/// the record is not fresher than the one this process holds.
#[tokio::test(start_paused = true)]
async fn forgetting_a_session_spares_a_fresher_record_of_it() {
    let rig = super::rig(600);
    sign_in(&rig).await;
    let mut fresher = rig.stored().unwrap();
    fresher.refresh_count = 3;
    let vault = Vault::new(rig.store.clone(), &rig.engine.profile().name);
    vault.save(&fresher).unwrap();
    let id = fresher.session_id;
    super::super::store::clear_if(&vault, id, Some(2)).unwrap();
    assert!(rig.stored().is_some(), "a fresher record was deleted");
    super::super::store::clear_if(&vault, id, Some(3)).unwrap();
    assert!(rig.stored().is_none(), "the session's own record was kept");
}

/// An engine whose data directory was removed under it (its test ended, or
/// a person reset the app) does not make it again when a late renewal
/// commits. The test command's leftover check caught one such writer once
/// in five runs: a renewal's audit record, written on the blocking pool
/// after its test had returned and removed the directory. The shared state
/// directory is elsewhere, as in the app (it is made again: the lock must
/// work).
#[tokio::test(start_paused = true)]
async fn a_removed_data_directory_is_not_made_again_by_a_late_commit() {
    let clock = Arc::new(TestClock::new(chrono::Utc::now()));
    let provider = Arc::new(ScriptedProvider::new(clock.clone(), 600));
    let (data, shared) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut p = parts(
        testkit::profile(),
        provider.clone(),
        Arc::new(MemoryStore::default()),
        clock,
        data.path(),
        "audit.jsonl",
    );
    p.shared_dir = shared.path().join("shared");
    let engine = Engine::new(p);
    engine.sign_in("alice", Password::new("pw")).await.unwrap();
    assert!(data.path().join("audit.jsonl").exists());
    std::fs::remove_dir_all(data.path()).unwrap();
    let view = engine.refresh_now().await.unwrap();
    assert_eq!(view.state, Phase::Active);
    let _ = engine.sign_out().await;
    assert!(!data.path().exists(), "made again: {:?}", walk(data.path()));
}

/// Every path under `dir` (none if it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        out.push(e.path());
        out.extend(walk(&e.path()));
    }
    out
}

/// A process that starts while the keychain cannot be read (locked, or its
/// service gone) does not say "not signed in" to what needs the session: a
/// session may be stored there, and signing in again would not bring it
/// back. It names the keychain; once the keychain answers, the session is
/// restored as it was.
#[tokio::test(start_paused = true)]
async fn a_keychain_unreadable_at_start_is_what_a_renewal_is_told_not_signed_out() {
    let rig = rig(600);
    sign_in(&rig).await;
    rig.store.unavailable.store(true, Ordering::SeqCst);
    let second = rig.second_process();
    let view = second.restore().await.unwrap();
    assert_eq!(view.state, Phase::SignedOut);
    let err = second.refresh_now().await.unwrap_err();
    assert_eq!(err.code(), crate::ErrorCode::KeychainUnavailable, "{err}");
    rig.store.unavailable.store(false, Ordering::SeqCst);
    assert_eq!(second.restore().await.unwrap().state, Phase::Active);
    second.sign_out().await.unwrap();
    assert_eq!(
        second.refresh_now().await.unwrap_err().code(),
        crate::ErrorCode::NotSignedIn,
        "after a sign-out it is not the keychain"
    );
}
