//! Running the anomaly detectors ([`crate::insight::anomaly`]) at the moments they
//! need: after a sign-in (location, hours, clock, concurrent sessions) and
//! after each API call (bursts, 401 storms). Each finding becomes an
//! `anomaly` audit record and a banner in the view until dismissed; a
//! Production profile may sign out on chosen kinds.

use super::Engine;
use crate::insight::anomaly::{self, Call, CallLimits, Finding, Place};
use crate::profile::Environment;
use crate::provider::SignInOrigin;
use crate::storage::audit::AuditEvent;

/// How many audit records the sign-in detectors read back.
const HISTORY: usize = 2000;
/// How many API calls are remembered for the pattern detector.
const CALLS_KEPT: usize = 1000;

impl Engine {
    /// After a sign-in: record where it came from, then run the detectors
    /// that compare it with this person's history.
    pub(super) async fn after_sign_in(&self, origin: Option<SignInOrigin>) {
        let Some(user) = self.state().session.as_ref().map(|s| s.user.clone()) else {
            return;
        };
        let profile = self.inner.profile.name.clone();
        let audit = self.inner.audit.clone();
        let history = tokio::task::spawn_blocking(move || audit.recent(HISTORY).unwrap_or_default())
            .await
            .unwrap_or_default();
        // Newest first in the log; oldest first here. The sign-in that just
        // happened is the newest `session_created`: leave it out.
        let mine: Vec<_> = history
            .into_iter()
            .rev()
            .filter(|r| r.profile == profile && r.user.as_deref() == Some(user.as_str()))
            .collect();
        let places: Vec<Place> = mine
            .iter()
            .filter_map(|r| match &r.event {
                AuditEvent::SignInOrigin { city, country, .. } => Some(Place {
                    city: city.clone(),
                    country: country.clone(),
                }),
                _ => None,
            })
            .collect();
        let mut sign_ins: Vec<u32> = mine
            .iter()
            .filter(|r| matches!(r.event, AuditEvent::SessionCreated))
            .map(|r| anomaly::hour_of(r.time))
            .collect();
        sign_ins.pop();
        let mut findings = Vec::new();
        if let Some(o) = origin {
            let here = Place {
                city: o.city.clone(),
                country: o.country.clone(),
            };
            findings.extend(anomaly::new_location(&places, &here));
            self.audit_now(AuditEvent::SignInOrigin {
                ip: o.ip.unwrap_or_default(),
                city: o.city,
                country: o.country,
            });
        }
        findings.extend(anomaly::unusual_hours(&sign_ins, anomaly::hour_of(self.now())));
        findings.extend(anomaly::clock_offset(self.state().clock_offset_ms));
        if self.has_sessions_api() {
            if let Ok(list) = self.sessions_as(super::Caller::Engine).await {
                findings.extend(anomaly::concurrent_sessions(
                    list.len(),
                    self.inner.profile.anomaly_max_sessions,
                ));
            }
        }
        self.report(findings).await;
    }

    /// After an API call: record it (for the metrics), remember it, and
    /// look for a burst or a 401 storm.
    pub(super) async fn after_call(&self, method: &reqwest::Method, status: u16, took: std::time::Duration) {
        let now = self.now();
        // Queued, not written per call (see `AuditLog`); flushed a second
        // after the first one, or with the next transition's record.
        let event = AuditEvent::ApiCall {
            method: method.to_string(),
            status,
            latency_ms: took.as_millis() as u64,
        };
        let record = self.state().record(&self.rules(), now, event);
        match self.inner.audit.append_later(&record) {
            Ok(true) => {
                // The first record of a queue: write it within a second, and
                // keep trying (backing off to a minute) while the file
                // cannot be written, until it is or the queue went out
                // with another write. The task holds the log weakly: an
                // engine that goes away writes its queue as it drops the
                // log, and nothing writes after that.
                let audit = std::sync::Arc::downgrade(&self.inner.audit);
                tokio::spawn(async move {
                    let mut wait = super::AUDIT_FLUSH_AFTER;
                    loop {
                        tokio::time::sleep(wait).await;
                        let Some(audit) = audit.upgrade() else { return };
                        match audit.flush() {
                            Ok(()) => return,
                            Err(e) => tracing::warn!(error = %e, "the audit log cannot be written; retrying"),
                        }
                        wait = (wait * 2).min(std::time::Duration::from_secs(60));
                    }
                });
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "an API call was not audited"),
        }
        let finding = {
            let mut st = self.state();
            st.calls.push_back(Call { at: now, status });
            while st.calls.len() > CALLS_KEPT {
                st.calls.pop_front();
            }
            let limits = CallLimits::default();
            // One finding per window, not one per call: within the window
            // of the last one there is nothing to look for.
            let quiet = st
                .last_api_finding
                .is_none_or(|t| (now - t).to_std().unwrap_or_default() >= limits.window);
            let finding = if quiet {
                anomaly::api_pattern(&st.calls, now, limits)
            } else {
                None
            };
            if finding.is_some() {
                st.last_api_finding = Some(now);
            }
            finding
        };
        self.report(finding.into_iter().collect()).await;
    }

    /// Record and show findings; sign out when a Production profile asks
    /// for it on one of their kinds.
    async fn report(&self, findings: Vec<Finding>) {
        if findings.is_empty() {
            return;
        }
        let p = &self.inner.profile;
        let sign_out =
            p.environment == Environment::Production && findings.iter().any(|f| p.anomaly_sign_out.contains(&f.kind));
        for f in &findings {
            self.audit_now(AuditEvent::Anomaly {
                kind: f.kind.as_str().to_owned(),
                reason: f.reason.clone(),
                signed_out: sign_out && p.anomaly_sign_out.contains(&f.kind),
            });
        }
        {
            let mut st = self.state();
            for f in findings {
                if !st.anomalies.contains(&f) {
                    st.anomalies.push(f);
                }
            }
            let keep = st.anomalies.len().saturating_sub(10);
            st.anomalies.drain(..keep);
        }
        if sign_out {
            let _ = self.sign_out().await;
        }
        self.publish();
    }

    /// Hide the anomaly banners (they stay in the audit log).
    pub fn dismiss_anomalies(&self) {
        self.state().anomalies.clear();
        self.publish();
    }
}
