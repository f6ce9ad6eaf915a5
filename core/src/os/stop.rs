//! The ways a process is asked to stop: Ctrl-C (SIGINT) and, on Unix,
//! SIGTERM (`kill`, a service manager, the end of a desktop session) and
//! SIGHUP (the terminal it runs in closed).
//!
//! Their default action ends the process wherever it is: in the middle of
//! a renewal the provider has already answered with a rotated refresh
//! token, or of a keychain call. A program that listens instead stops as on
//! its own Quit, letting what is in flight land (`Engine::drain`).

use std::future::Future;

/// Resolves when the process is first asked to stop.
///
/// The handlers are installed when this is called, not when the future is
/// first awaited: call it once, before the work it guards starts, and await
/// the same future throughout (a signal between two handlers would be
/// neither heard nor fatal). A signal whose handler cannot be installed
/// keeps its default action. Call it inside a Tokio runtime.
pub fn asked_to_stop() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let [int, term, hup] =
            [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup()].map(|kind| signal(kind).ok());
        async move {
            tokio::select! {
                _ = heard(int) => {}
                _ = heard(term) => {}
                _ = heard(hup) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The first delivery of a signal whose handler is installed; never, for
/// one that is not.
#[cfg(unix)]
async fn heard(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
