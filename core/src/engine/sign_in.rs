//! Signing in: with a password (FinHub, the password grant), through the
//! browser (OpenID Connect, authorization code with PKCE) or the device
//! grant; one path commits whichever grant comes back.

use super::*;

impl Engine {
    /// Sign in with a username and password.
    pub async fn sign_in(&self, username: &str, password: Password) -> Result<SessionView, Error> {
        self.sign_in_password(username, password, Replace::Nothing).await
    }

    /// Sign in with a password; `replace`: at the provider's
    /// concurrent-session limit, the live session to end first (the choice
    /// the `session_limit` error offers, with its list).
    pub async fn sign_in_password(
        &self,
        username: &str,
        password: Password,
        replace: Replace,
    ) -> Result<SessionView, Error> {
        self.sign_in_with(
            Credentials::Password {
                username: username.to_owned(),
                password,
                replace,
            },
            None,
        )
        .await
    }

    /// Sign in through the browser (OpenID Connect). In re-authenticate mode
    /// with a live session, this is the one-click sign-in that extends it.
    pub async fn sign_in_browser(&self) -> Result<SessionView, Error> {
        if self.inner.profile.provider != ProviderKind::Oidc {
            return Err(Error::InvalidState(
                "this profile signs in with a username and password".into(),
            ));
        }
        let (phase, live) = {
            let st = self.state();
            (
                st.phase,
                st.phase.has_session() && self.policy() == ExtendAccess::Reauthenticate,
            )
        };
        if live {
            self.extend(Trigger::Interactive).await?;
            return Ok(self.view());
        }
        // Checked before a browser request exists: a second sign-in must
        // not replace (and so cancel) the first one's wait.
        if phase == Phase::SigningIn {
            return Err(Error::InvalidState("a sign-in is already in progress".into()));
        }
        let (id, request) = self.browser_request(false, false);
        self.sign_in_with(Credentials::Browser(request), Some(id)).await
    }

    /// Sign in on another device (OpenID Connect device authorization
    /// grant, RFC 8628): the view's browser wait carries the page and the
    /// code to enter there; nothing is opened here. Cancel with
    /// [`Engine::cancel_sign_in`].
    pub async fn sign_in_device(&self) -> Result<SessionView, Error> {
        if self.inner.profile.provider != ProviderKind::Oidc {
            return Err(Error::InvalidState(
                "this profile signs in with a username and password".into(),
            ));
        }
        if self.state().phase == Phase::SigningIn {
            return Err(Error::InvalidState("a sign-in is already in progress".into()));
        }
        let (id, request) = self.browser_request(false, true);
        self.sign_in_with(Credentials::Browser(request), Some(id)).await
    }

    pub(super) async fn sign_in_with(
        &self,
        credentials: Credentials,
        browser: Option<u64>,
    ) -> Result<SessionView, Error> {
        let generation = self.apply(None, |st| Ok((Commit::keep(), st.begin_sign_in()?))).await?;
        // A cancelled sign-in (its future dropped) must not stay SigningIn.
        struct Guard<'a>(&'a Engine, u64, bool);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if self.2 {
                    let mut st = self.0.state();
                    if st.generation == self.1 && st.phase == Phase::SigningIn {
                        st.phase = Phase::SignedOut;
                        st.browser = None;
                        drop(st);
                        self.0.publish();
                    }
                }
            }
        }
        let mut guard = Guard(self, generation, true);
        let session_id = Uuid::new_v4();
        let flow = self.flow(session_id);
        let span = tracing::info_span!("sign_in", activity_id = %flow.activity_id, session_id = %session_id);
        let result = async {
            let grant = self.routed(self.inner.provider.sign_in(&credentials, &flow)).await?;
            let claims = match self.verify_grant(&grant, None).await {
                Ok(claims) => claims,
                Err(e) => {
                    self.revoke_refused(&grant, &flow).await;
                    return Err(e);
                }
            };
            let offset = self.clock_offset(&grant);
            let tokens = SessionTokens {
                bearer: grant.bearer.clone(),
                refresh: grant.refresh.clone(),
                id_token: grant.id_token.clone(),
            };
            let origin = grant.origin.clone();
            Ok::<_, Error>((
                self.record_from(grant, &claims, session_id, 0, None),
                offset,
                tokens,
                origin,
            ))
        }
        .instrument(span)
        .await;
        if let Some(id) = browser {
            self.browser_done(id);
        }
        guard.2 = false;
        let (now, rules) = (self.now(), self.rules());
        match result {
            Err(e) => {
                let err = e.clone();
                self.apply(None, |st| Ok((st.sign_in_failed(generation, &e, &rules, now), ())))
                    .await?;
                Err(err)
            }
            Ok((record, offset, tokens, origin)) => {
                let committed = self
                    .apply(None, |st| {
                        if st.generation != generation || st.phase != Phase::SigningIn {
                            // Signed out (or replaced) while the provider
                            // answered: this session is not wanted.
                            return Ok((Commit::keep(), false));
                        }
                        st.persistence = Persistence::Keychain;
                        Ok((st.activate(record, offset, Arrival::SignedIn, &rules, now), true))
                    })
                    .await?;
                if !committed {
                    let _ = self
                        .inner
                        .provider
                        .sign_out(&tokens, &flow, &crate::provider::opener::NoOpener)
                        .await;
                    return Err(Error::InvalidState("the sign-in was overtaken by a sign-out".into()));
                }
                self.share_activity_if_due(now);
                self.after_sign_in(origin).await;
                Ok(self.view())
            }
        }
    }
}
