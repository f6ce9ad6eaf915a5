//! The background task that renews a session on time and ends it when it
//! can no longer be renewed.
//!
//! It is a loop over `select!` of the wall-clock sleep until the next
//! deadline ([`crate::os::clock::Clock::sleep_until`], which also returns when
//! the clock jumps or the machine resumes), logind's resume signal
//! ([`crate::os::resume`]), the network coming back ([`crate::os::netwatch`]: a
//! session retrying after "offline" tries again at once), a wake-up
//! [`tokio::sync::Notify`]
//! (every commit rings it, since a commit may move the deadline), the
//! keychain's change notices from other processes, and a stop signal. While
//! a session waits for its renewal time it does not wake at all.

use super::state::Next;
use super::{flight::Trigger, Engine};
use std::sync::Arc;
use tokio::sync::watch;

/// How often a memory-only engine with no session looks for the keychain.
const KEYCHAIN_PROBE: std::time::Duration = std::time::Duration::from_secs(30);

/// Stops the scheduler when dropped.
#[derive(Debug)]
pub struct SchedulerGuard {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SchedulerGuard {
    /// Stop the scheduler and wait for it to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SchedulerGuard {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Start the background scheduler of `engine`.
///
/// The task holds the engine only while it works on it; while it waits it
/// holds a weak reference, so when the last [`Engine`] handle goes the
/// engine goes at once (its audit log writing its queue), not whenever
/// the task next runs, which may be after its data directory was removed.
pub(super) fn spawn(
    engine: Engine,
    mut resumes: Option<watch::Receiver<u64>>,
    mut network: Option<watch::Receiver<u64>>,
) -> SchedulerGuard {
    let (stop, mut stopped) = watch::channel(false);
    let mut changes = engine.inner.beacon.watch();
    let wake = engine.inner.wake.clone();
    let clock = engine.inner.clock.clone();
    let weak = Arc::downgrade(&engine.inner);
    drop(engine);
    let task = tokio::spawn(async move {
        loop {
            if *stopped.borrow() {
                return;
            }
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let engine = Engine { inner };
            engine.inner.turns.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let step = engine.next_step();
            let deadline = match step {
                Next::Renew => {
                    // Failures are recorded in the view and the audit log;
                    // the next step is planned from there.
                    let _ = engine.extend(Trigger::Schedule).await;
                    continue;
                }
                Next::Expire => {
                    engine.expire_if_due().await;
                    continue;
                }
                Next::Persist => {
                    engine.retry_persist().await;
                    continue;
                }
                Next::TimeOut => {
                    engine.time_out().await;
                    continue;
                }
                Next::Idle => None,
                Next::WaitUntil(at) => Some(at),
            };
            // Without a keychain and without a session, look for the
            // keychain again now and then (unlocked after the start).
            let probe = {
                let st = engine.state();
                st.persistence == crate::view::Persistence::MemoryOnly && st.session.is_none()
            };
            let deadline = match (probe, deadline) {
                (false, d) => d,
                (true, d) => {
                    let at = super::timing::after(engine.now(), KEYCHAIN_PROBE);
                    Some(d.map_or(at, |d| d.min(at)))
                }
            };
            drop(engine);
            let sleep = async {
                match deadline {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let changed = async {
                match changes.as_mut() {
                    Some(w) => w.changed().await,
                    None => std::future::pending().await,
                }
            };
            let resumed = async {
                match resumes.as_mut() {
                    Some(r) => {
                        if r.changed().await.is_err() {
                            // The listener is gone: the timer alone decides.
                            resumes = None;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            let network_back = async {
                match network.as_mut() {
                    Some(r) => {
                        if r.changed().await.is_err() {
                            network = None;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = network_back => {
                    if let Some(inner) = weak.upgrade() {
                        Engine { inner }.network_changed();
                    }
                }
                _ = sleep => {
                    if probe {
                        if let Some(inner) = weak.upgrade() {
                            Engine { inner }.look_at_keychain().await;
                        }
                    }
                }
                _ = resumed => {}
                _ = wake.notified() => {}
                _ = changed => {
                    if let Some(inner) = weak.upgrade() {
                        Engine { inner }.look_at_keychain().await;
                    }
                }
                _ = stopped.changed() => return,
            }
        }
    });
    SchedulerGuard { stop, task: Some(task) }
}
