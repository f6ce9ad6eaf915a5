//! Session metrics from the audit log, per session and per profile:
//! duration, refreshes, refresh latency (median and 95th percentile), API
//! calls, failures, time offline, locations. Pure: records in, numbers out.

use crate::os::clock::Timestamp;
use crate::storage::audit::{AuditEvent, AuditRecord};
use serde::Serialize;
use std::collections::BTreeMap;

/// One session's numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionMetrics {
    pub session_id: String,
    pub user: Option<String>,
    pub started: Timestamp,
    /// When it ended, or `None` while it lives.
    pub ended: Option<Timestamp>,
    /// How it ended (`signed_out`, `expired`, `revoked`, `timed_out`).
    pub end: Option<String>,
    pub duration_secs: i64,
    pub refreshes: u32,
    pub refresh_failures: u32,
    pub api_calls: u32,
    pub api_failures: u32,
    pub offline_secs: i64,
    pub location: Option<String>,
}

/// A profile's numbers, and the series the app draws.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub sessions: Vec<SessionMetrics>,
    pub refreshes: u32,
    pub refresh_latency_p50_ms: Option<u64>,
    pub refresh_latency_p95_ms: Option<u64>,
    pub api_calls: u32,
    pub failures: u32,
    pub offline_secs: i64,
    pub locations: Vec<String>,
    /// `(time, ms)` of every refresh with a measured latency, oldest first.
    pub refresh_latency: Vec<(Timestamp, u64)>,
    /// Sessions started per day (UTC date `YYYY-MM-DD`).
    pub sessions_per_day: BTreeMap<String, u32>,
}

/// The `q` quantile (0..=1) of `values` by the nearest-rank method.
pub fn percentile(values: &[u64], q: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// The metrics of `records` (any order; one profile's), as of `now`.
pub fn compute(records: &[AuditRecord], now: Timestamp) -> Metrics {
    let mut records: Vec<&AuditRecord> = records.iter().collect();
    records.sort_by_key(|r| r.time);
    let mut sessions: Vec<SessionMetrics> = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    let mut offline_since: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut latency = Vec::new();
    let mut failures_outside = 0u32;
    for r in &records {
        let Some(id) = r.session_id.clone() else {
            if matches!(r.event, AuditEvent::SignInFailed { .. }) {
                failures_outside += 1;
            }
            continue;
        };
        if matches!(r.event, AuditEvent::SessionCreated) && !by_id.contains_key(&id) {
            by_id.insert(id.clone(), sessions.len());
            sessions.push(SessionMetrics {
                session_id: id.clone(),
                user: r.user.clone(),
                started: r.time,
                ended: None,
                end: None,
                duration_secs: 0,
                refreshes: 0,
                refresh_failures: 0,
                api_calls: 0,
                api_failures: 0,
                offline_secs: 0,
                location: None,
            });
            continue;
        }
        let Some(&i) = by_id.get(&id) else { continue };
        let s = &mut sessions[i];
        match &r.event {
            AuditEvent::SessionRefreshed { latency_ms, .. } => {
                s.refreshes += 1;
                if let Some(ms) = latency_ms {
                    latency.push((r.time, *ms));
                }
                if let Some(since) = offline_since.remove(&id) {
                    s.offline_secs += (r.time - since).num_seconds().max(0);
                }
            }
            AuditEvent::RefreshFailed { code, .. } => {
                s.refresh_failures += 1;
                if matches!(code.as_str(), "network_unreachable" | "timeout" | "server_error") {
                    offline_since.entry(id.clone()).or_insert(r.time);
                }
            }
            AuditEvent::ApiCall { status, .. } => {
                s.api_calls += 1;
                if *status >= 400 {
                    s.api_failures += 1;
                }
            }
            AuditEvent::SignInOrigin { city, country, .. } => {
                s.location = Some(format!("{city}, {country}"));
            }
            AuditEvent::SignedOut { .. }
            | AuditEvent::SessionExpired { .. }
            | AuditEvent::SessionRevoked { .. }
            | AuditEvent::SessionTimedOut { .. }
                if s.ended.is_none() =>
            {
                s.ended = Some(r.time);
                s.end = Some(
                    match &r.event {
                        AuditEvent::SignedOut { .. } => "signed_out",
                        AuditEvent::SessionExpired { .. } => "expired",
                        AuditEvent::SessionRevoked { .. } => "revoked",
                        _ => "timed_out",
                    }
                    .into(),
                );
                if let Some(since) = offline_since.remove(&id) {
                    s.offline_secs += (r.time - since).num_seconds().max(0);
                }
            }
            _ => {}
        }
    }
    for (id, since) in offline_since {
        if let Some(&i) = by_id.get(&id) {
            sessions[i].offline_secs += (now - since).num_seconds().max(0);
        }
    }
    let mut per_day = BTreeMap::new();
    let mut locations: Vec<String> = Vec::new();
    for s in &mut sessions {
        s.duration_secs = (s.ended.unwrap_or(now) - s.started).num_seconds().max(0);
        *per_day.entry(s.started.format("%Y-%m-%d").to_string()).or_insert(0) += 1;
        if let Some(l) = &s.location {
            if !locations.contains(l) {
                locations.push(l.clone());
            }
        }
    }
    let values: Vec<u64> = latency.iter().map(|(_, ms)| *ms).collect();
    Metrics {
        refreshes: sessions.iter().map(|s| s.refreshes).sum(),
        refresh_latency_p50_ms: percentile(&values, 0.5),
        refresh_latency_p95_ms: percentile(&values, 0.95),
        api_calls: sessions.iter().map(|s| s.api_calls).sum(),
        failures: failures_outside
            + sessions
                .iter()
                .map(|s| s.refresh_failures + s.api_failures)
                .sum::<u32>(),
        offline_secs: sessions.iter().map(|s| s.offline_secs).sum(),
        locations,
        refresh_latency: latency,
        sessions_per_day: per_day,
        sessions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Timestamp, secs: i64, session: &str, event: AuditEvent) -> AuditRecord {
        AuditRecord {
            time: base + chrono::Duration::seconds(secs),
            profile: "p".into(),
            user: Some("alice".into()),
            session_id: Some(session.into()),
            fingerprint: None,
            event,
        }
    }

    fn refreshed(ms: u64) -> AuditEvent {
        AuditEvent::SessionRefreshed {
            refresh_count: 1,
            latency_ms: Some(ms),
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 0.5), None);
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.95), Some(95));
        assert_eq!(percentile(&[7], 0.95), Some(7));
        assert_eq!(percentile(&[30, 10, 20], 0.5), Some(20));
    }

    #[test]
    fn a_fixture_of_two_sessions_adds_up() {
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-20T09:00:00Z")
            .unwrap()
            .to_utc();
        let failed = |code: &str| AuditEvent::RefreshFailed {
            reason: "x".into(),
            code: code.into(),
            attempt: 1,
        };
        let call = |status| AuditEvent::ApiCall {
            method: "GET".into(),
            status,
            latency_ms: 20,
        };
        let records = vec![
            at(t0, 0, "a", AuditEvent::SessionCreated),
            at(
                t0,
                0,
                "a",
                AuditEvent::SignInOrigin {
                    ip: "127.0.0.1".into(),
                    city: "Berlin".into(),
                    country: "DE".into(),
                },
            ),
            at(t0, 100, "a", refreshed(100)),
            at(t0, 200, "a", call(200)),
            at(t0, 210, "a", call(503)),
            at(t0, 300, "a", failed("network_unreachable")),
            at(t0, 330, "a", failed("network_unreachable")),
            at(t0, 400, "a", refreshed(300)),
            at(
                t0,
                1000,
                "a",
                AuditEvent::SignedOut {
                    server_logout: "ok".into(),
                },
            ),
            at(t0, 86_400, "b", AuditEvent::SessionCreated),
            at(t0, 86_500, "b", refreshed(200)),
            at(t0, 86_600, "b", failed("server_error")),
        ];
        let now = t0 + chrono::Duration::seconds(86_700);
        let m = compute(&records, now);
        assert_eq!(m.sessions.len(), 2);
        let a = &m.sessions[0];
        assert_eq!((a.duration_secs, a.refreshes, a.refresh_failures), (1000, 2, 2));
        assert_eq!((a.api_calls, a.api_failures, a.offline_secs), (2, 1, 100));
        assert_eq!(a.end.as_deref(), Some("signed_out"));
        assert_eq!(a.location.as_deref(), Some("Berlin, DE"));
        let b = &m.sessions[1];
        assert_eq!(b.ended, None);
        assert_eq!(b.duration_secs, 300, "a live session counts until now");
        assert_eq!(b.offline_secs, 100, "offline until now");
        assert_eq!(m.refreshes, 3);
        assert_eq!(m.refresh_latency_p50_ms, Some(200));
        assert_eq!(m.refresh_latency_p95_ms, Some(300));
        assert_eq!(m.api_calls, 2);
        assert_eq!(m.failures, 4);
        assert_eq!(m.offline_secs, 200);
        assert_eq!(m.locations, vec!["Berlin, DE".to_string()]);
        assert_eq!(
            m.sessions_per_day.into_iter().collect::<Vec<_>>(),
            vec![("2026-11-20".to_string(), 1), ("2026-11-21".to_string(), 1)]
        );
        assert_eq!(m.refresh_latency.len(), 3);
    }

    #[test]
    fn records_of_unknown_sessions_and_an_empty_log_are_fine() {
        let now = chrono::Utc::now();
        let m = compute(&[at(now, 0, "zzz", refreshed(5))], now);
        assert!(m.sessions.is_empty());
        assert_eq!(m.refresh_latency_p50_ms, None);
        assert_eq!(compute(&[], now).refreshes, 0);
    }
}
