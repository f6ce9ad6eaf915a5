//! The person's sessions on other devices and the concurrent-session limit,
//! over real TLS against a production Playground (limit 2).

use integration::*;
use playground::{Mode, Options, Playground};
use session_core::provider::Replace;
use session_core::storage::audit::AuditEvent;
use session_core::view::EndReason;
use session_core::{Engine, ErrorCode, Password, Phase};

const PW: &str = "alice-pw-1";

async fn production() -> Playground {
    playground_with(Options {
        mode: Mode::Production,
        session_limit: 2,
        ..Options::default()
    })
    .await
}

fn named(pg: &Playground, dir: &std::path::Path, device: &str) -> Engine {
    let device = device.to_owned();
    let profile = profile(pg, move |t| {
        t.replacen("tenant_id =", &format!("device_name = \"{device}\"\ntenant_id ="), 1)
    });
    memory_engine_for(profile, dir).0
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_listed_with_their_devices_and_can_be_ended() {
    let pg = production().await;
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let laptop = named(&pg, dirs[0].path(), "laptop · Session Manager");
    let desk = named(&pg, dirs[1].path(), "desk · Session Manager");
    laptop.sign_in("alice", Password::new(PW)).await.unwrap();
    pg.set_next_login_origin("203.0.113.7", "Lisbon", "PT");
    desk.sign_in("alice", Password::new(PW)).await.unwrap();
    assert!(laptop.view().sessions_api);

    let list = laptop.sessions().await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].device_name, "laptop · Session Manager");
    assert!(list[0].current && !list[1].current, "this device is marked");
    assert_eq!(list[1].city.as_deref(), Some("Lisbon"));
    assert_eq!(list[1].ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(list[0].ip.as_deref(), Some("127.0.0.1"));

    // Ending this device's own session that way is refused: it is a sign-out.
    let e = laptop.end_session(&list[0].id).await.unwrap_err();
    assert!(e.to_string().contains("sign out"), "{e}");
    let e = laptop.end_session("../admin").await.unwrap_err();
    assert!(e.to_string().contains("not a session id"), "{e}");
    laptop.end_session(&list[1].id).await.unwrap();
    assert_eq!(laptop.sessions().await.unwrap().len(), 1);
    // Reading the list (three times by now) is bookkeeping; the End was the
    // person's one API call.
    laptop.audit_log().flush().unwrap();
    assert_eq!(laptop.metrics().await.unwrap().api_calls, 1);
    // The desk finds out at its next renewal: revoked.
    let e = desk.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionRevoked, "{e}");
    assert_eq!(desk.view().state, Phase::Revoked);
    // And it says how: from another device, not "by the provider".
    assert_eq!(desk.view().ended_because, Some(EndReason::EndedOnAnotherDevice));
    assert_eq!(desk.view().headline.text, "Ended from another device");
    let e = laptop.end_session(&list[1].id).await.unwrap_err();
    assert!(e.to_string().contains("no live session"), "{e}");
    assert!(laptop
        .audit_log()
        .recent(100)
        .unwrap()
        .iter()
        .any(|r| matches!(&r.event, AuditEvent::RemoteSessionEnded { session } if *session == list[1].id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_limit_the_error_lists_the_sessions_and_the_oldest_can_be_replaced() {
    let pg = production().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = named(&pg, dirs[0].path(), "first");
    let second = named(&pg, dirs[1].path(), "second");
    let third = named(&pg, dirs[2].path(), "third");
    first.sign_in("alice", Password::new(PW)).await.unwrap();
    second.sign_in("alice", Password::new(PW)).await.unwrap();
    let e = third.sign_in("alice", Password::new(PW)).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionLimit);
    let text = e.to_string();
    assert!(
        text.contains("first (signed in") && text.contains("second (signed in"),
        "{text}"
    );
    assert!(
        text.find("first").unwrap() < text.find("second").unwrap(),
        "oldest first: {text}"
    );
    // "End the oldest and sign in".
    let v = third
        .sign_in_password("alice", Password::new(PW), Replace::Oldest)
        .await
        .unwrap();
    assert_eq!(v.state, Phase::Active);
    let e = first.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionRevoked, "the oldest was ended: {e}");
    second.refresh_now().await.unwrap();
    // End all others: only this one is left.
    assert_eq!(third.end_other_sessions().await.unwrap(), 1);
    let list = third.sessions().await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].current);
}

/// The window's session-limit screen: the refusal carries the live
/// sessions (oldest first, with their ids for the choice, not for reading),
/// and a sign-in can end the one the person picked, and only that one. A
/// pick that is no longer live, with the limit still reached, is refused
/// again with the list as it is now; nothing is ended by guesswork.
#[tokio::test(flavor = "multi_thread")]
async fn at_the_limit_the_person_picks_the_session_to_end() {
    let pg = production().await;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let first = named(&pg, dirs[0].path(), "first");
    let second = named(&pg, dirs[1].path(), "second");
    let third = named(&pg, dirs[2].path(), "third");
    first.sign_in("alice", Password::new(PW)).await.unwrap();
    second.sign_in("alice", Password::new(PW)).await.unwrap();
    let info = third.sign_in("alice", Password::new(PW)).await.unwrap_err().info();
    assert_eq!(info.code, ErrorCode::SessionLimit);
    let names: Vec<_> = info.sessions.iter().map(|s| s.device_name.as_str()).collect();
    assert_eq!(names, ["first", "second"], "oldest first");
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(
        json["sessions"][1]["device_name"], "second",
        "the window gets the list: {json}"
    );

    let picked = info.sessions[1].clone();
    let v = third
        .sign_in_password("alice", Password::new(PW), Replace::Session(picked.id.clone()))
        .await
        .unwrap();
    assert_eq!(v.state, Phase::Active);
    let e = second.refresh_now().await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionRevoked, "the picked one was ended: {e}");
    first.refresh_now().await.unwrap();

    // The same pick again (ended now), at the limit: refused, the new list.
    let fourth = named(&pg, dirs[3].path(), "fourth");
    let info = fourth
        .sign_in_password("alice", Password::new(PW), Replace::Session(picked.id))
        .await
        .unwrap_err()
        .info();
    assert_eq!(info.code, ErrorCode::SessionLimit);
    let names: Vec<_> = info.sessions.iter().map(|s| s.device_name.as_str()).collect();
    assert_eq!(names, ["first", "third"]);
    first.refresh_now().await.unwrap();
    third.refresh_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn openid_connect_profiles_say_there_is_no_sessions_api() {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let opener = BrowserOpener::new(&pg, BrowserStep::SignIn("alice".into(), PW.into()));
    let (engine, _) = oidc_engine(oidc_profile(&pg, |t| t), dir.path(), opener);
    assert!(!engine.view().sessions_api);
    let e = engine.sessions().await.unwrap_err();
    assert!(e.to_string().contains("no standard API"), "{e}");
}
