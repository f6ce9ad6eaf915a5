//! A browser step: the page the view shows while the person is in the
//! browser, and the cancel slot that stops the wait.

use super::Engine;
use crate::error::Error;
use crate::provider::oidc::SILENT_TIMEOUT;
use crate::provider::opener::Opener;
use crate::provider::{BrowserSignIn, DeviceCode};
use crate::view::BrowserWait;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The browser wait that can be cancelled, tagged with its request so a
/// finished step clears only its own slot.
pub(super) type CancelSlot = Option<(u64, watch::Sender<bool>)>;

static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);

impl Engine {
    /// A browser sign-in request whose page the view shows, cancellable with
    /// [`Engine::cancel_sign_in`]. Returns its tag for [`Engine::browser_done`].
    pub(super) fn browser_request(&self, silent: bool, device: bool) -> (u64, BrowserSignIn) {
        let (tx, rx) = watch::channel(false);
        let id = NEXT_REQUEST.fetch_add(1, Ordering::Relaxed);
        *self.inner.cancel.lock().unwrap_or_else(|e| e.into_inner()) = Some((id, tx));
        let timeout = if silent {
            SILENT_TIMEOUT
        } else {
            self.inner
                .profile
                .oidc
                .as_ref()
                .map(|o| o.sign_in_timeout)
                .unwrap_or(SILENT_TIMEOUT)
        };
        let request = BrowserSignIn {
            silent,
            device,
            opener: Arc::new(ViewOpener {
                engine: self.clone(),
                silent,
                timeout,
                id,
            }),
            cancel: rx,
        };
        (id, request)
    }

    /// Stop waiting for the browser: the sign-in in progress ends with
    /// `sign_in_cancelled`, and its outcome arrives as usual (its own result,
    /// a published view). Nothing is returned here on purpose: a view taken
    /// now would still show the wait, and a front that applied it after the
    /// outcome would go back in time.
    pub fn cancel_sign_in(&self) -> Result<(), Error> {
        let cancel = self.inner.cancel.lock().unwrap_or_else(|e| e.into_inner()).take();
        match cancel {
            Some((_, tx)) => {
                let _ = tx.send(true);
                Ok(())
            }
            None => Err(Error::InvalidState("no browser sign-in is waiting".into())),
        }
    }

    /// The browser step `id` is over: its slot (not a newer one) is freed
    /// and the view stops showing the wait.
    pub(super) fn browser_done(&self, id: u64) {
        {
            let mut slot = self.inner.cancel.lock().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_some_and(|(tag, _)| *tag == id) {
                *slot = None;
            }
        }
        let mut st = self.state();
        if st.browser.as_ref().is_some_and(|b| b.request == id) {
            st.browser = None;
        }
    }

    /// Cancel whatever browser step waits (a sign-out does).
    pub(super) fn cancel_browser(&self) {
        let _ = self.cancel_sign_in();
        self.state().browser = None;
    }
}

/// Records the browser page in the view, then opens it with the engine's
/// opener; a failure to start the browser is shown, not fatal.
struct ViewOpener {
    engine: Engine,
    silent: bool,
    timeout: Duration,
    id: u64,
}

impl Opener for ViewOpener {
    fn open(&self, url: &str) -> Result<(), String> {
        self.engine.show_browser(BrowserWait {
            url: url.to_owned(),
            deadline: super::timing::after(self.engine.now(), self.timeout),
            silent: self.silent,
            open_error: None,
            user_code: None,
            url_complete: None,
            request: self.id,
        });
        let result = self.engine.inner.opener.open(url);
        if let Err(e) = &result {
            let mut wait = self.engine.state().browser.clone();
            if let Some(b) = wait.as_mut().filter(|b| b.request == self.id) {
                b.open_error = Some(e.clone());
                self.engine.show_browser(b.clone());
            }
        }
        result
    }

    fn show_code(&self, code: &DeviceCode) {
        self.engine.show_browser(BrowserWait {
            url: code.verification_uri.clone(),
            deadline: super::timing::after(self.engine.now(), code.expires_in),
            silent: false,
            open_error: None,
            user_code: Some(code.user_code.clone()),
            url_complete: code.verification_uri_complete.clone(),
            request: self.id,
        });
        self.engine.inner.opener.show_code(code);
    }
}
