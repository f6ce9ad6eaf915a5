//! The person's sessions on other devices (the FinHub sessions API,
//! docs/providers.md, "API"): list them, end one, end all others. OpenID
//! Connect has no standard API for this, so those profiles say so.

use super::{Caller, Engine};
use crate::error::Error;
use crate::profile::ProviderKind;
use crate::provider::finhub::{parse_sessions, END_OTHERS_PATH, SESSIONS_PATH};
use crate::provider::ApiResponse;
use crate::storage::audit::AuditEvent;
use crate::view::RemoteSession;
use reqwest::Method;

impl Engine {
    /// Whether this profile's provider lists sessions (FinHub does; OpenID
    /// Connect defines no such API).
    pub fn has_sessions_api(&self) -> bool {
        self.inner.profile.provider == ProviderKind::Finhub
    }

    fn need_sessions_api(&self) -> Result<(), Error> {
        match self.has_sessions_api() {
            true => Ok(()),
            false => Err(Error::InvalidState(
                "OpenID Connect has no standard API to list or end your sessions on other devices; use your identity provider's account page".into(),
            )),
        }
    }

    /// The person's live sessions, oldest first; `current` marks this one.
    ///
    /// Reading the list is the app's bookkeeping (the window reads it again
    /// on every change of the session): it is neither one of the person's
    /// API calls in the metrics nor activity for the idle timeout. Ending a
    /// session is the person's, and counts.
    pub async fn sessions(&self) -> Result<Vec<RemoteSession>, Error> {
        self.sessions_as(Caller::Engine).await
    }

    pub(super) async fn sessions_as(&self, caller: Caller) -> Result<Vec<RemoteSession>, Error> {
        self.need_sessions_api()?;
        let answer = self.call_as(Method::GET, SESSIONS_PATH, None, caller).await?;
        expect(&answer, 200, "listing sessions")?;
        parse_sessions(&answer.body)
    }

    /// End the session `id` (another device's; ending this one is a sign-out).
    pub async fn end_session(&self, id: &str) -> Result<(), Error> {
        self.need_sessions_api()?;
        if !is_session_id(id) {
            return Err(Error::InvalidState(format!(
                "'{}' is not a session id; take one from the list of sessions",
                crate::net::text::printable(id, 100)
            )));
        }
        let this = self.state().session.as_ref().map(|s| s.session_id.to_string());
        if this.as_deref() == Some(id) {
            return Err(Error::InvalidState(
                "that is this device's session; sign out to end it".into(),
            ));
        }
        let answer = self
            .call(Method::DELETE, &format!("{SESSIONS_PATH}/{id}"), None)
            .await?;
        if answer.status == 404 {
            return Err(Error::InvalidState(format!(
                "there is no live session '{id}' (ended already?); list the sessions again"
            )));
        }
        expect(&answer, 204, "ending a session")?;
        self.audit_now(AuditEvent::RemoteSessionEnded { session: id.to_owned() });
        Ok(())
    }

    /// End every session but this one; returns how many ended.
    pub async fn end_other_sessions(&self) -> Result<u64, Error> {
        self.need_sessions_api()?;
        let answer = self.call(Method::POST, END_OTHERS_PATH, None).await?;
        expect(&answer, 200, "ending the other sessions")?;
        let ended = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("ended").and_then(serde_json::Value::as_u64))
            .ok_or_else(|| Error::Protocol("the end-others answer has no \"ended\" count".into()))?;
        self.audit_now(AuditEvent::OtherSessionsEnded { count: ended });
        Ok(ended)
    }

    /// This profile's session metrics from its audit log.
    pub async fn metrics(&self) -> Result<crate::insight::metrics::Metrics, Error> {
        let audit = self.inner.audit.clone();
        let profile = self.inner.profile.name.clone();
        let records = tokio::task::spawn_blocking(move || audit.recent(usize::MAX))
            .await
            .map_err(|e| Error::Internal(format!("reading the audit log failed: {e}")))?
            .map_err(|e| Error::Internal(format!("cannot read the audit log: {e}")))?;
        let mine: Vec<_> = records.into_iter().filter(|r| r.profile == profile).collect();
        Ok(crate::insight::metrics::compute(&mine, self.now()))
    }

    /// Append one audit record about the current session now (not a state
    /// change: nothing to persist or publish).
    pub(super) fn audit_now(&self, event: AuditEvent) {
        let record = self.state().record(&self.rules(), self.now(), event);
        let _ = self.inner.audit.append(&record);
    }
}

fn expect(answer: &ApiResponse, status: u16, what: &str) -> Result<(), Error> {
    if answer.status == status {
        return Ok(());
    }
    let detail: String = answer.body.chars().take(200).collect();
    Err(Error::Server {
        status: answer.status,
        message: format!("{what}: the provider answered {} {detail}", answer.status),
        retry_after: None,
    })
}

/// Whether `id` can be a session id in a URL path: 1 to 100 ASCII letters,
/// digits, `-`, `_` or `.`, starting with a letter or digit (so `.` and `..`,
/// which a URL join would collapse into the parent path, cannot be one).
fn is_session_id(id: &str) -> bool {
    id.len() <= 100
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

#[cfg(test)]
mod tests {
    /// Security review 2: `.` and `..` would make the URL join send the
    /// DELETE, with the bearer, to `/api/v2/sessions/` or `/api/v2/`.
    #[test]
    fn dot_segments_and_odd_characters_are_not_session_ids() {
        for bad in [".", "..", "", ".hidden", "-x", "a/b", "a?b", "a b", "é"] {
            assert!(!super::is_session_id(bad), "{bad:?}");
        }
        assert!(!super::is_session_id(&"a".repeat(101)));
        for good in ["s1", "2f1c-9a_b.c", "A"] {
            assert!(super::is_session_id(good), "{good:?}");
        }
    }
}
