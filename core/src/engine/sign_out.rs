//! Signing out: local state cleared first, then what the provider offers
//! (revocation, end-session), reported plainly when it could not be done.

use super::*;

impl Engine {
    /// Sign out: local state (memory, keychain, view) is cleared first and
    /// always; then the provider is told, with the newest tokens (a renewal
    /// under way is waited for, and what it brings back is revoked). A
    /// failed server call is recorded in the report and the audit log.
    pub async fn sign_out(&self) -> Result<SignOutReport, Error> {
        self.sign_out_with(None).await
    }

    /// Sign out, the person's choice (`why` is `None`: the view goes to
    /// Signed out) or the engine's (`Some`: the view goes to Expired with
    /// that reason, in the same commit, so no view in between says
    /// "signed out" without why).
    pub(super) async fn sign_out_with(
        &self,
        why: Option<(Error, crate::view::EndReason)>,
    ) -> Result<SignOutReport, Error> {
        self.cancel_browser();
        // Memory first: from here on every operation sees no session.
        let ended = {
            let mut st = self.state();
            let session = st.session.take();
            st.generation += 1;
            st.next_refresh_at = None;
            st.retry_attempt = 0;
            st.last_failure = None;
            match why {
                Some((error, reason)) => {
                    st.phase = Phase::Expired;
                    st.last_error = Some(error.info());
                    st.ended = Some(error);
                    st.end_reason = Some(reason);
                }
                None => {
                    st.phase = Phase::SignedOut;
                    st.last_error = None;
                    if session.is_some() {
                        st.end_reason = Some(crate::view::EndReason::SignedOut);
                    }
                }
            }
            st.reauth_needed = false;
            st.browser = None;
            if let Some(s) = &session {
                st.last_user = Some(s.user.clone());
                st.ended_id = Some(s.session_id);
            }
            session
        };
        // A renewal in flight finishes (bounded by the request timeout); its
        // new tokens are then ours to revoke. One that lands later revokes
        // them itself.
        let id = ended.as_ref().map(|s| s.session_id);
        self.state().awaiting_flight = id;
        let _ = tokio::time::timeout(SIGN_OUT_WAITS_FOR_RENEWAL, self.inner.flights.lock()).await;
        let superseded = {
            let mut st = self.state();
            st.awaiting_flight = None;
            st.superseded.take().filter(|(of, _)| Some(*of) == id).map(|(_, t)| t)
        };
        let store = id.map(Store::SignOut).unwrap_or(Store::Keep);
        self.apply(None, |_| {
            Ok((
                Commit {
                    store,
                    audit: Vec::new(),
                },
                (),
            ))
        })
        .await?;
        let server = match &ended {
            Some(s) => {
                let tokens = superseded.unwrap_or_else(|| SessionTokens {
                    bearer: s.bearer.clone(),
                    refresh: s.refresh.clone(),
                    id_token: s.id_token.clone(),
                });
                let flow = self.flow(s.session_id);
                let span = tracing::info_span!("sign_out", activity_id = %flow.activity_id, session_id = %s.session_id);
                Some(
                    self.routed(self.inner.provider.sign_out(&tokens, &flow, &*self.inner.opener))
                        .instrument(span)
                        .await,
                )
            }
            None => None,
        };
        let server_error = match &server {
            Some(Err(e)) => Some(e.info()),
            _ => None,
        };
        if let Some(s) = &ended {
            let outcome = match &server_error {
                None => "ok".to_owned(),
                Some(e) => format!("failed: {}", e.message),
            };
            let record = state::record_of(
                Some(s),
                None,
                &self.rules(),
                self.now(),
                AuditEvent::SignedOut { server_logout: outcome },
            );
            let _ = self.inner.audit.append(&record);
        }
        Ok(SignOutReport {
            view: self.view(),
            server_error,
        })
    }

    /// Revoke `tokens` at the provider without a browser, best effort: what
    /// a renewal brought back for a session that ended meanwhile.
    pub(super) async fn revoke_quietly(&self, tokens: &SessionTokens) {
        let flow = self.flow(Uuid::new_v4());
        let _ = self
            .inner
            .provider
            .sign_out(tokens, &flow, &crate::provider::opener::NoOpener)
            .await;
    }

    /// A sign-in's answer failed a check after the provider issued its
    /// tokens: revoke them (best effort), and record whether that worked.
    pub(super) async fn revoke_refused(&self, grant: &crate::provider::Grant, flow: &crate::net::headers::FlowContext) {
        let tokens = SessionTokens {
            bearer: grant.bearer.clone(),
            refresh: grant.refresh.clone(),
            id_token: None,
        };
        let outcome = self
            .inner
            .provider
            .sign_out(&tokens, flow, &crate::provider::opener::NoOpener)
            .await;
        self.audit_now(AuditEvent::RefusedGrantRevocation {
            revoked: outcome.is_ok(),
            detail: outcome.err().map(|e| e.to_string()).unwrap_or_default(),
        });
    }
}
