//! The vault against the real OS keychain (Secret Service via gnome-keyring in
//! the D-Bus session that the test command starts).

use integration::*;
use session_core::storage::vault::{KeyringStore, SecretStore, SessionRecord, Vault};
use session_core::{Password, Phase};
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
        bearer: session_core::AccessToken::new("b".repeat(len)),
        refresh: Some(session_core::RefreshToken::new("r".repeat(len))),
        id_token: Some(session_core::IdToken::new("i".repeat(len))),
        name: Some("Alice Adams".into()),
        email: Some("alice@playground.test".into()),
        renewable_until: None,
        signed_in_at: None,
    }
}

#[test]
fn four_kilobyte_tokens_round_trip_through_secret_service() {
    let ns = Namespace::new();
    let vault = Vault::new(Arc::new(ns.0.clone()), "playground");
    assert_eq!(vault.load().unwrap(), None, "NoEntry means no session");
    let mut rec = record(4096);
    // Astral characters take two UTF-16 units each: chunks are sized in those.
    rec.name = Some("😀".repeat(700));
    vault.save(&rec).unwrap();
    assert_eq!(vault.load().unwrap(), Some(rec.clone()));
    // The record is split: no single credential is above Windows' limit.
    let stored = stored_entries(&ns);
    assert!(stored.len() > 8, "{} entries", stored.len());
    for (account, secret) in &stored {
        assert!(
            secret.encode_utf16().count() * 2 <= 2560,
            "{account} holds {} bytes of UTF-16",
            secret.encode_utf16().count() * 2
        );
    }
    // A rewrite goes to the next generation and removes the old one.
    vault.save(&rec).unwrap();
    assert_eq!(
        stored_entries(&ns).len(),
        stored.len(),
        "the old generation was left behind"
    );
    // A fresh store object (as a new process would) reads the same.
    let again = Vault::new(Arc::new(KeyringStore::new(ns.0.service())), "playground");
    assert!(again.load().unwrap().is_some());
    // Even with the manifest damaged, clear leaves nothing of the record.
    ns.0.set("profile:playground", "damaged").unwrap();
    vault.clear().unwrap();
    assert_eq!(again.load().unwrap(), None);
    assert_eq!(stored_entries(&ns), vec![], "entries were left behind");
}

/// What the Secret Service holds under the namespace, as `secret-tool`
/// (libsecret, not the keyring crate) sees it: (account, secret) pairs.
fn stored_entries(ns: &Namespace) -> Vec<(String, String)> {
    let out = std::process::Command::new("secret-tool")
        .args(["search", "--all", "--unlock", "service", ns.0.service()])
        .output()
        .expect("secret-tool (libsecret-tools) is installed by scripts/test.sh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // One block per item, opened by a `[/path]` line.
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            entries.push(Default::default());
        } else if let (Some(e), Some(a)) = (entries.last_mut(), line.strip_prefix("attribute.username = ")) {
            e.0 = a.to_owned();
        } else if let (Some(e), Some(s)) = (entries.last_mut(), line.strip_prefix("secret = ")) {
            e.1 = s.to_owned();
        }
    }
    entries.sort();
    entries
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
    let view = a.sign_in("alice", Password::new("alice-pw-1")).await.unwrap();
    assert_eq!(view.persistence, session_core::view::Persistence::Keychain);
    let b = engine(profile(&pg, |t| t), dir.path(), Arc::new(ns.0.clone()));
    assert_eq!(b.restore().await.unwrap().state, Phase::Active);
    b.sign_out().await.unwrap();
    assert_eq!(ns.0.get("profile:playground").unwrap(), None);
    let c = engine(profile(&pg, |t| t), dir.path(), Arc::new(ns.0.clone()));
    assert_eq!(c.restore().await.unwrap().state, Phase::SignedOut);
}
