//! API calls with the session's bearer token, renewed first when due, and
//! the failover route they take.

use super::*;

impl Engine {
    /// Call the provider's API with the session's token and headers. An
    /// expired token is renewed first; a 401 renews (sharing a renewal in
    /// flight, respecting the backoff) and retries once.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<ApiResponse, Error> {
        self.call_as(method, path, body, Caller::Person).await
    }

    /// An API call; a [`Caller::Engine`] call (the app's own checks, such
    /// as the sessions list after a sign-in) is neither activity for the
    /// idle timeout nor an API call in the metrics and anomaly detectors.
    pub(super) async fn call_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
        caller: Caller,
    ) -> Result<ApiResponse, Error> {
        let request = ApiRequest {
            method,
            path: path.to_owned(),
            body,
        };
        if caller == Caller::Person {
            // An API call is activity (the idle timeout).
            self.touch();
        }
        if self.state().token_expired(self.now()) {
            self.extend(Trigger::Unauthorized).await?;
        }
        let (mut bearer, session_id) = self.current_bearer()?;
        let flow = self.flow(session_id);
        let mut retried = false;
        let path_only = request.path.split('?').next().unwrap_or_default().to_owned();
        loop {
            let started = std::time::Instant::now();
            let span = tracing::info_span!("call", activity_id = %flow.activity_id, method = %request.method, path = %path_only);
            let response = self
                .routed(self.inner.provider.call(&request, &bearer, &flow))
                .instrument(span)
                .await?;
            tracing::info!(status = response.status, elapsed_ms = started.elapsed().as_millis() as u64, path = %path_only, "api call");
            if caller == Caller::Person {
                self.after_call(&request.method, response.status, started.elapsed())
                    .await;
            }
            // A 401 renews (sharing a renewal in flight) and retries once.
            if response.status != 401 || retried {
                return Ok(response);
            }
            // A 401 to a bearer the session no longer holds came late: a
            // renewal already replaced it, so the retry needs no other.
            let (now_bearer, _) = self.current_bearer()?;
            bearer = if now_bearer.expose() != bearer.expose() {
                now_bearer
            } else {
                self.extend(Trigger::Unauthorized).await?;
                self.current_bearer()?.0
            };
            retried = true;
        }
    }

    /// Await a provider call, then audit and show a change of endpoint
    /// (failover to a backup, or back to the primary).
    pub(super) async fn routed<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let out = call.await;
        self.note_route().await;
        out
    }

    /// Audit and show what the transport noticed during a provider call:
    /// a change of endpoint, pin mismatches a report-only profile let
    /// through.
    pub(super) async fn note_route(&self) {
        let route = self.inner.provider.route();
        let reports = self.inner.provider.take_pin_reports();
        let moved = route.as_ref().is_some_and(|r| self.state().backup_endpoint != r.backup);
        if !moved && reports.is_empty() {
            return;
        }
        let (rules, now) = (self.rules(), self.now());
        let _ = self
            .apply(None, |st| {
                let mut audit = Vec::new();
                for r in &reports {
                    let presented = r.presented.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
                    st.pin_report = Some(format!(
                        "{} presented none of the configured pins ({presented}); report-only, so the connection was allowed",
                        r.host
                    ));
                    let event = AuditEvent::PinMismatchReported {
                        host: r.host.clone(),
                        presented,
                    };
                    audit.push(st.record(&rules, now, event));
                }
                if let Some(route) = route.filter(|r| st.backup_endpoint != r.backup) {
                    st.backup_endpoint = route.backup.clone();
                    let event = AuditEvent::EndpointSwitched {
                        to: route.backup.unwrap_or_else(|| "primary".into()),
                        reason: route.reason,
                    };
                    audit.push(st.record(&rules, now, event));
                }
                Ok((
                    Commit {
                        store: state::Store::Keep,
                        audit,
                    },
                    (),
                ))
            })
            .await;
    }

    pub(super) fn current_bearer(&self) -> Result<(AccessToken, Uuid), Error> {
        let st = self.state();
        match (&st.session, st.phase) {
            (Some(s), Phase::Active | Phase::Refreshing) => Ok((s.bearer.clone(), s.session_id)),
            _ => Err(no_session(&st)),
        }
    }
}
