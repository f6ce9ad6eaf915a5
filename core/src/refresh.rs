//! Refresh timing, backoff, the cross-process refresh lock and the background
//! scheduler.
//!
//! The scheduler is a loop over `select!` of a short sleep, a wake-up
//! [`tokio::sync::Notify`] and a shutdown signal. Deadlines are wall-clock
//! times; the loop sleeps at most [`TICK`] at a time and reads the wall clock
//! again, so a machine that slept through a refresh time (the monotonic clock
//! stopped, the wall clock did not) refreshes, or expires the session, within
//! a tick of waking.

use crate::clock::Timestamp;
use crate::engine::Engine;
use crate::error::Error;
use rand::Rng;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// The longest the scheduler sleeps before reading the wall clock again.
pub const TICK: Duration = Duration::from_secs(1);

/// The longest backoff between two refresh attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The lead actually used for a token: the configured lead, but never more
/// than a third of the token's lifetime (a 5 s Playground token refreshes
/// after about 3.3 s, a 1800 s token 300 s before expiry).
pub fn effective_lead(lead: Duration, lifetime: Duration) -> Duration {
    lead.min(lifetime / 3)
}

/// When to refresh a token issued at `issued_at` that expires at
/// `expires_at`: `exp − lead`, made earlier by a random jitter of up to 10 %
/// of the lead so that many clients do not refresh in the same second.
pub fn refresh_at(issued_at: Timestamp, expires_at: Timestamp, lead: Duration, rng: &mut impl Rng) -> Timestamp {
    let lifetime = (expires_at - issued_at).to_std().unwrap_or(Duration::ZERO);
    let lead = effective_lead(lead, lifetime);
    let jitter = lead.mul_f64(rng.gen_range(0.0..=0.1));
    expires_at - chrono_of(lead + jitter)
}

/// The first backoff step for a token of `lifetime`: a fortieth of it, between
/// 50 ms and 1 s, so even short tokens leave room for several retries.
pub fn backoff_base(lifetime: Duration) -> Duration {
    (lifetime / 40).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// The delay before retry number `attempt` (1-based): exponential from
/// `base`, capped at [`MAX_BACKOFF`], with "equal jitter" (half fixed, half
/// random) so retries neither bunch up nor collapse to zero.
pub fn backoff(base: Duration, attempt: u32, rng: &mut impl Rng) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    exp / 2 + exp.mul_f64(rng.gen_range(0.0..=0.5))
}

/// An exclusive lock on a file, held across a refresh so that a second
/// process never refreshes with the same refresh token. The lock is released
/// when the guard drops (the file closes).
#[derive(Debug)]
pub struct ProcessLock {
    _file: std::fs::File,
}

impl ProcessLock {
    /// How long to wait for another process's refresh to finish.
    pub const WAIT: Duration = Duration::from_secs(45);

    /// The lock file of `profile` in `dir`.
    pub fn path(dir: &Path, profile: &str) -> PathBuf {
        let safe: String = profile
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        dir.join(format!("refresh-{safe}.lock"))
    }

    /// Take the lock, waiting up to [`ProcessLock::WAIT`].
    pub async fn acquire(path: PathBuf) -> Result<Self, Error> {
        let deadline = tokio::time::Instant::now() + Self::WAIT;
        loop {
            let p = path.clone();
            let attempt = tokio::task::spawn_blocking(move || -> std::io::Result<Option<std::fs::File>> {
                if let Some(dir) = p.parent() {
                    crate::paths::private_dir(dir)?;
                }
                let file = crate::paths::open_private(
                    &p,
                    std::fs::OpenOptions::new().create(true).truncate(false).write(true),
                )?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(file)),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => Err(e),
                }
            })
            .await
            .map_err(|e| Error::Internal(format!("refresh lock task failed: {e}")))?
            .map_err(|e| Error::Internal(format!("cannot lock {}: {e}", path.display())))?;
            if let Some(file) = attempt {
                return Ok(Self { _file: file });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Internal(format!(
                    "another process has held the refresh lock {} for {} s",
                    path.display(),
                    Self::WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the scheduler should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// No session: wait for a wake-up.
    Idle,
    /// Refresh now; the number is the session generation seen.
    Refresh(u64),
    /// The session's token has expired.
    Expire,
    /// Nothing is due before this time.
    WaitUntil(Timestamp),
}

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
pub fn spawn(engine: Engine) -> SchedulerGuard {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            if *stopped.borrow() {
                return;
            }
            let now = engine.now();
            match engine.next_step(now) {
                Next::Refresh(generation) => {
                    // Failures are recorded in the session view and audit
                    // log; the next step is planned from there.
                    let _ = engine.refresh_generation(generation).await;
                }
                Next::Expire => engine.expire_if_due().await,
                Next::Idle => {
                    tokio::select! {
                        _ = engine.woken() => {}
                        _ = stopped.changed() => return,
                    }
                }
                Next::WaitUntil(at) => {
                    let wait = (at - now).to_std().unwrap_or(Duration::ZERO).min(TICK);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = engine.woken() => {}
                        _ = stopped.changed() => return,
                    }
                }
            }
        }
    });
    SchedulerGuard { stop, task: Some(task) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn lead_suits_long_and_short_tokens() {
        assert_eq!(
            effective_lead(Duration::from_secs(300), Duration::from_secs(1800)),
            Duration::from_secs(300)
        );
        assert_eq!(
            effective_lead(Duration::from_secs(300), Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            effective_lead(Duration::from_secs(300), Duration::from_secs(6)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn refresh_time_is_before_expiry_within_jitter() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let issued = chrono::Utc::now();
        let exp = issued + chrono::Duration::seconds(1800);
        for _ in 0..100 {
            let at = refresh_at(issued, exp, Duration::from_secs(300), &mut rng);
            let before = (exp - at).num_milliseconds();
            assert!((300_000..=330_000).contains(&before), "{before}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let base = backoff_base(Duration::from_secs(1800));
        assert_eq!(base, Duration::from_secs(1));
        for attempt in 1..=10 {
            let full = base.saturating_mul(1 << (attempt - 1)).min(MAX_BACKOFF);
            let d = backoff(base, attempt, &mut rng);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        assert_eq!(backoff_base(Duration::from_secs(6)), Duration::from_millis(150));
        assert!(backoff(base, 40, &mut rng) <= MAX_BACKOFF);
    }

    #[tokio::test]
    async fn process_lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = ProcessLock::path(dir.path(), "p/1");
        assert!(path.ends_with("refresh-p_1.lock"));
        let held = ProcessLock::acquire(path.clone()).await.unwrap();
        // A second descriptor cannot take it while the first holds it.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert!(matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        drop(held);
        assert!(file.try_lock().is_ok());
    }
}
