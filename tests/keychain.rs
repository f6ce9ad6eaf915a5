//! The vault against the real OS keychain (Secret Service via gnome-keyring in
//! the D-Bus session that the test command starts).

use integration::*;
use session_core::vault::{KeyringStore, SecretStore, SessionRecord, Vault};
use session_core::{Phase, Secret};
use std::sync::Arc;

/// A keychain namespace of this test's own, removed when dropped.
struct Namespace(KeyringStore);

impl Namespace {
    fn new() -> Self {
        assert!(
            std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            "these tests need a Secret Service on the D-Bus session bus; run them through `bash scripts/test.sh`"
        );
        Self(KeyringStore::new(format!(
            "session-manager-test-{}",
            uuid::Uuid::new_v4()
        )))
    }
}

fn record(len: usize) -> SessionRecord {
    let now = chrono::Utc::now();
    SessionRecord {
        session_id: uuid::Uuid::new_v4(),
        user: "alice".into(),
        tenant: Some("tenant-acme".into()),
        customer: Some("cust-1001".into()),
        scope: None,
        issued_at: now,
        expires_at: now + chrono::Duration::seconds(600),
        refresh_count: 0,
        bearer: Secret::new("b".repeat(len)),
        refresh: Some(Secret::new("r".repeat(len))),
        id_token: Some(Secret::new("i".repeat(len))),
        name: Some("Alice Adams".into()),
        email: Some("alice@playground.test".into()),
    }
}

#[test]
fn four_kilobyte_tokens_round_trip_through_secret_service() {
    let ns = Namespace::new();
    let vault = Vault::new(Arc::new(ns.0.clone()), "playground");
    assert_eq!(vault.load().unwrap(), None, "NoEntry means no session");
    let rec = record(4096);
    vault.save(&rec).unwrap();
    assert_eq!(vault.load().unwrap(), Some(rec));
    // The record is split: no single credential is above Windows' limit.
    let manifest = ns.0.get("profile:playground").unwrap().expect("manifest");
    assert!(manifest.contains("\"chunks\""));
    for i in 0..9 {
        let chunk = ns.0.get(&format!("profile:playground#1#{i}")).unwrap().expect("chunk");
        assert!(chunk.len() <= 1000);
    }
    // A fresh store object (as a new process would) reads the same.
    let again = Vault::new(Arc::new(KeyringStore::new(ns.0.service())), "playground");
    assert!(again.load().unwrap().is_some());
    vault.clear().unwrap();
    assert_eq!(again.load().unwrap(), None);
    assert_eq!(
        ns.0.get("profile:playground#1#0").unwrap(),
        None,
        "a chunk was left behind"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_session_survives_a_new_engine_and_is_deleted_on_sign_out() {
    let ns = Namespace::new();
    let pg = playground_with(playground::Options {
        token_padding: 4096,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let a = engine(profile(&pg, |t| t), dir.path(), Arc::new(ns.0.clone()));
    let view = a.sign_in("alice", Secret::new("alice-pw-1")).await.unwrap();
    assert_eq!(view.persistence, session_core::view::Persistence::Keychain);
    let b = engine(profile(&pg, |t| t), dir.path(), Arc::new(ns.0.clone()));
    assert_eq!(b.restore().await.unwrap().state, Phase::Active);
    b.sign_out().await.unwrap();
    assert_eq!(ns.0.get("profile:playground").unwrap(), None);
    let c = engine(profile(&pg, |t| t), dir.path(), Arc::new(ns.0.clone()));
    assert_eq!(c.restore().await.unwrap().state, Phase::SignedOut);
}
