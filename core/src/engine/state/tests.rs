use super::*;
use crate::token::{AccessToken, RefreshToken};

fn rules() -> Rules {
    Rules {
        profile: "p".into(),
        lead: Duration::from_secs(20),
        refresh_policy: true,
        idle: None,
        absolute: None,
    }
}

fn record(now: Timestamp, life: i64) -> SessionRecord {
    SessionRecord {
        session_id: Uuid::new_v4(),
        user: "alice".into(),
        tenant: None,
        customer: None,
        scope: None,
        issued_at: now,
        expires_at: now + chrono::Duration::seconds(life),
        refresh_count: 0,
        bearer: AccessToken::new("b"),
        refresh: Some(RefreshToken::new("r")),
        id_token: None,
        name: None,
        email: None,
        renewable_until: None,
        signed_in_at: None,
    }
}

fn active(now: Timestamp, life: i64) -> State {
    let mut st = State::new();
    st.activate(record(now, life), None, Arrival::SignedIn, &rules(), now);
    st
}

#[test]
fn an_expired_token_with_a_refresh_token_is_renewed_not_ended() {
    let now = chrono::Utc::now();
    let mut st = active(now, 60);
    st.next_refresh_at = None;
    let later = now + chrono::Duration::hours(5);
    assert_eq!(st.next_step(&rules(), later), Next::Renew);
    // Without a refresh token it ends at expiry.
    st.session.as_mut().unwrap().refresh = None;
    assert_eq!(st.next_step(&rules(), later), Next::Expire);
    assert!(matches!(st.next_step(&rules(), now), Next::WaitUntil(_)));
}

#[test]
fn a_dead_refresh_token_ends_the_session_at_the_tokens_expiry() {
    let now = chrono::Utc::now();
    let mut st = active(now, 60);
    st.session.as_mut().unwrap().renewable_until = Some(now + chrono::Duration::seconds(30));
    let later = now + chrono::Duration::seconds(61);
    // One last attempt first: the provider's answer decides.
    assert_eq!(st.next_step(&rules(), later), Next::Renew);
    st.retry_later(&Error::Protocol("x".into()), &rules(), later);
    assert_eq!(st.next_step(&rules(), later), Next::Expire);
}

#[test]
fn a_retry_planned_past_the_refresh_tokens_expiry_does_not_delay_the_end() {
    let now = chrono::Utc::now();
    let mut st = active(now, 60);
    let until = now + chrono::Duration::seconds(300);
    st.session.as_mut().unwrap().renewable_until = Some(until);
    // Offline since the token expired; the next retry is after `until`.
    st.next_refresh_at = Some(until + chrono::Duration::seconds(50));
    assert_eq!(
        st.next_step(&rules(), now + chrono::Duration::seconds(280)),
        Next::WaitUntil(until)
    );
    assert_eq!(st.next_step(&rules(), until), Next::Renew, "one last attempt");
    st.retry_later(&Error::Protocol("x".into()), &rules(), until);
    assert_eq!(st.next_step(&rules(), until), Next::Expire);
}

#[test]
fn retries_go_on_past_the_tokens_expiry_and_honour_retry_after() {
    let now = chrono::Utc::now();
    let mut st = active(now, 60);
    let later = now + chrono::Duration::seconds(90);
    let e = Error::Server {
        status: 429,
        message: "slow down".into(),
        retry_after: Some(Duration::from_secs(120)),
    };
    st.retry_later(&e, &rules(), later);
    let at = st.next_refresh_at.unwrap();
    assert!(at >= later + chrono::Duration::seconds(120), "{at} vs {later}");
    assert_eq!(st.next_step(&rules(), later), Next::WaitUntil(at));
    assert_eq!(st.next_step(&rules(), at), Next::Renew);
    assert!(st.token_expired(later));
}

#[test]
fn a_refreshing_session_is_left_to_its_flight_and_an_aborted_one_is_active_again() {
    let now = chrono::Utc::now();
    let mut st = active(now, 60);
    st.phase = Phase::Refreshing;
    assert_eq!(st.next_step(&rules(), now), Next::Idle);
    st.phase_back_to_active();
    assert_eq!(st.phase, Phase::Active);
}

#[test]
fn scheduling_uses_the_providers_clock() {
    let now = chrono::Utc::now();
    let mut a = State::new();
    a.activate(record(now, 600), Some(0), Arrival::SignedIn, &rules(), now);
    let mut b = State::new();
    // The provider's clock is 50 s ahead: its exp comes 50 s sooner here.
    b.activate(
        record(now + chrono::Duration::seconds(50), 600),
        Some(50_000),
        Arrival::SignedIn,
        &rules(),
        now,
    );
    let (ta, tb) = (a.next_refresh_at.unwrap(), b.next_refresh_at.unwrap());
    let diff = (ta - tb).num_seconds().abs();
    assert!(diff <= 3, "{ta} vs {tb}: only jitter apart");
}

#[test]
fn ending_clears_the_session_and_asks_the_keychain_to_forget_that_one() {
    let now = chrono::Utc::now();
    let mut st = active(now, 60);
    let id = st.session.as_ref().unwrap().session_id;
    let g = st.generation;
    let c = st.end(
        Phase::Expired,
        Error::Expired("now".into()),
        AuditEvent::SessionExpired {
            reason: "now".into(),
            why: String::new(),
        },
        &rules(),
        now,
    );
    assert_eq!(c.store, Store::Forget { id, refresh_count: 0 });
    assert_eq!(c.audit[0].session_id, Some(id.to_string()));
    assert!(st.session.is_none() && st.generation > g);
    assert_eq!(st.next_step(&rules(), now), Next::Idle);
}
