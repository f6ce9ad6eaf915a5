use super::*;

pub(crate) fn record(token_len: usize) -> SessionRecord {
    let now = chrono::Utc::now();
    SessionRecord {
        session_id: Uuid::new_v4(),
        user: "Zoë".into(),
        tenant: Some("t".into()),
        customer: Some("c".into()),
        scope: Some("accounts:read".into()),
        issued_at: now,
        expires_at: now + chrono::Duration::seconds(60),
        refresh_count: 2,
        bearer: AccessToken::new("b".repeat(token_len)),
        refresh: Some(RefreshToken::new("r".repeat(token_len))),
        id_token: None,
        name: None,
        email: None,
        renewable_until: None,
        signed_in_at: None,
    }
}

fn no_token_left(store: &MemoryStore) {
    for (k, v) in store.entries() {
        assert!(
            !v.contains(&"b".repeat(50)) && !v.contains(&"r".repeat(50)),
            "token material left in {k}"
        );
    }
}

#[test]
fn round_trip_with_4k_tokens_in_small_chunks() {
    let store = Arc::new(MemoryStore::default());
    let vault = Vault::new(store.clone(), "p");
    assert_eq!(vault.load().unwrap(), None);
    let rec = record(4096);
    vault.save(&rec).unwrap();
    assert!(store
        .entries()
        .values()
        .all(|v| v.encode_utf16().count() <= CHUNK_UTF16_UNITS));
    assert!(store.entries().len() > 6);
    assert_eq!(vault.load().unwrap(), Some(rec.clone()));
    // A rewrite replaces the old generation's chunks.
    let rec2 = record(10);
    vault.save(&rec2).unwrap();
    assert_eq!(vault.load().unwrap(), Some(rec2));
    assert_eq!(store.entries().len(), 2, "{:?}", store.entries().keys());
    vault.clear().unwrap();
    assert!(store.entries().is_empty());
    assert_eq!(vault.load().unwrap(), None);
}

#[test]
fn generations_cycle_and_every_rewrite_reads_back() {
    let store = Arc::new(MemoryStore::default());
    let vault = Vault::new(store.clone(), "p");
    for n in 0..(GENERATIONS as usize * 2 + 3) {
        let rec = record(1500 + n);
        vault.save(&rec).unwrap();
        assert_eq!(vault.load().unwrap(), Some(rec));
    }
    vault.clear().unwrap();
    assert!(store.entries().is_empty(), "{:?}", store.entries().keys());
}

#[test]
fn chunks_fit_windows_even_for_astral_characters() {
    let store = Arc::new(MemoryStore::default());
    let vault = Vault::new(store.clone(), "p");
    let mut rec = record(100);
    rec.name = Some("😀".repeat(700));
    vault.save(&rec).unwrap();
    for (k, v) in store.entries() {
        // keyring refuses a Windows credential above 2560 bytes of UTF-16.
        assert!(
            v.encode_utf16().count() * 2 <= 2560,
            "{k} is {} bytes",
            v.encode_utf16().count() * 2
        );
    }
    assert_eq!(vault.load().unwrap(), Some(rec));
}

#[test]
fn clear_removes_chunks_even_when_the_manifest_is_unreadable() {
    let store = Arc::new(MemoryStore::default());
    let vault = Vault::new(store.clone(), "p");
    vault.save(&record(4096)).unwrap();
    vault.save(&record(4096)).unwrap();
    store.set("profile:p", "garbage").unwrap();
    vault.clear().unwrap();
    assert!(store.entries().is_empty(), "{:?}", store.entries().keys());
}

#[test]
fn a_failed_save_leaves_no_half_record() {
    let store = Arc::new(MemoryStore::default());
    let vault = Vault::new(store.clone(), "p");
    let first = record(4096);
    vault.save(&first).unwrap();
    let before = store.entries();
    // The keychain locks after two more writes, mid-record.
    store.fail_after_writes(2);
    let mut second = record(4096);
    second.bearer = AccessToken::new("x".repeat(4096));
    assert!(vault.save(&second).is_err());
    store.writes_left.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(store.entries(), before, "the failed write left entries behind");
    assert_eq!(vault.load().unwrap(), Some(first));
    vault.clear().unwrap();
    assert!(store.entries().is_empty());
    no_token_left(&store);
}

#[test]
fn a_record_written_by_a_newer_version_is_left_alone() {
    let store = Arc::new(MemoryStore::default());
    let vault = Vault::new(store.clone(), "p");
    vault.save(&record(10)).unwrap();
    let chunk = store.entries().keys().find(|k| k.contains('#')).unwrap().clone();
    store
        .set("profile:p", r#"{"v":2,"generation":1,"chunks":1,"layout":"new"}"#)
        .unwrap();
    store.set(&chunk, r#"{"v":2,"renamed":"field"}"#).unwrap();
    let before = store.entries();
    assert_eq!(
        vault.load().unwrap_err(),
        VaultError::NewerVersion {
            found: 2,
            reads: FORMAT_VERSION
        }
    );
    assert_eq!(
        vault.clear().unwrap_err(),
        VaultError::NewerVersion {
            found: 2,
            reads: FORMAT_VERSION
        }
    );
    assert_eq!(
        vault.save(&record(10)).unwrap_err(),
        VaultError::NewerVersion {
            found: 2,
            reads: FORMAT_VERSION
        }
    );
    assert_eq!(store.entries(), before, "a newer version's record was touched");
}

#[test]
fn profiles_do_not_collide() {
    let store = Arc::new(MemoryStore::default());
    let a = Vault::new(store.clone(), "a");
    let b = Vault::new(store.clone(), "b");
    a.save(&record(5)).unwrap();
    assert_eq!(b.load().unwrap(), None);
    b.clear().unwrap();
    assert!(a.load().unwrap().is_some());
}

#[test]
fn damaged_entry_is_reported_without_its_content() {
    let store = Arc::new(MemoryStore::default());
    let vault = Vault::new(store.clone(), "p");
    vault.save(&record(5)).unwrap();
    store
        .set("profile:p#1#0", "{\"v\":1,\"bearer\":\"SECRET-VALUE")
        .unwrap();
    let err = vault.load().unwrap_err();
    assert!(matches!(err, VaultError::Corrupt(_)));
    assert!(!err.to_string().contains("SECRET-VALUE"), "{err}");
}
