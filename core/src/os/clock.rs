//! Wall-clock time, passed in rather than read inside the logic, and the one
//! way the engine waits for a wall-clock time.
//!
//! Refresh deadlines are wall-clock instants (a token's `exp` is one). A
//! laptop that sleeps stops the monotonic clock but not the wall clock, so
//! a timer on the monotonic clock (tokio's) would fire late by however long
//! the machine slept. [`Clock::sleep_until`] waits on the wall clock instead:
//! - on Linux, a `timerfd` on `CLOCK_REALTIME` armed with an absolute
//!   deadline and `TFD_TIMER_CANCEL_ON_SET`. It fires at the wall-clock time
//!   (also right after a resume that passed it), and it is woken early,
//!   with `ECANCELED`, whenever the realtime clock is set and on every
//!   resume: the kernel's `timekeeping_resume()` calls `timerfd_resume()`,
//!   which wakes every such timer whose realtime offset moved. The caller
//!   then reads the clock again. No wake-up in between.
//! - elsewhere, a sleep of at most [`FALLBACK_TICK`] at a time, then the
//!   wall clock is read again: two wake-ups a minute, and a resume is
//!   noticed within that tick.

use chrono::{DateTime, Utc};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A point in wall-clock time, UTC.
pub type Timestamp = DateTime<Utc>;

/// How long the fallback waits before reading the wall clock again, on
/// platforms without a wall-clock timer (and if the timerfd cannot be made).
pub const FALLBACK_TICK: Duration = Duration::from_secs(30);

/// A boxed future, as [`Clock::sleep_until`] returns it.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;

    /// Wait until the wall clock reads `at`, or less when the clock jumps
    /// (a step, a resume): the caller reads [`Clock::now`] again either way.
    fn sleep_until(&self, at: Timestamp) -> Sleep<'_>;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }

    fn sleep_until(&self, at: Timestamp) -> Sleep<'_> {
        Box::pin(async move {
            #[cfg(target_os = "linux")]
            if realtime::sleep_until(at).await.is_ok() {
                return;
            }
            let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(left.min(FALLBACK_TICK)).await;
        })
    }
}

#[cfg(target_os = "linux")]
mod realtime {
    use super::Timestamp;
    use rustix::time::Timespec;
    use rustix::time::{timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags};

    /// Wait on a realtime timerfd for `at`; returns early when the clock is
    /// set or the machine resumes. `Err` when no timerfd can be had.
    pub async fn sleep_until(at: Timestamp) -> std::io::Result<()> {
        let fd = timerfd_create(TimerfdClockId::Realtime, TimerfdFlags::CLOEXEC | TimerfdFlags::NONBLOCK)?;
        let when = Timespec {
            tv_sec: at.timestamp().max(0),
            tv_nsec: at.timestamp_subsec_nanos().into(),
        };
        // An it_value of zero disarms a timer: a deadline at the epoch (or
        // before) is due now anyway.
        if when.tv_sec == 0 && when.tv_nsec == 0 {
            return Ok(());
        }
        let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
        timerfd_settime(
            &fd,
            TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
            &Itimerspec {
                it_interval: zero,
                it_value: when,
            },
        )?;
        let fd = crate::os::paths::async_fd(fd)?;
        loop {
            let mut ready = fd.readable().await?;
            let mut buf = [0u8; 8];
            match rustix::io::read(ready.get_inner(), &mut buf) {
                // Expired, or the clock was set (ECANCELED): look again.
                Ok(_) | Err(rustix::io::Errno::CANCELED) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use test_clock::TestClock;

#[cfg(any(test, feature = "test-support"))]
mod test_clock {
    use super::*;
    use std::sync::Mutex;

    /// A clock for tests: it advances with tokio's clock (so
    /// `tokio::time::pause` and `advance` drive it) and can also jump, the
    /// way a wall clock does when a laptop wakes up or NTP corrects it,
    /// without tokio's timers noticing. A jump wakes every sleeper, as a
    /// timerfd with `TFD_TIMER_CANCEL_ON_SET` does.
    #[derive(Debug)]
    pub struct TestClock {
        start: Timestamp,
        origin: tokio::time::Instant,
        jumped: Mutex<chrono::Duration>,
        jumps: tokio::sync::watch::Sender<u64>,
    }

    impl TestClock {
        /// A clock that reads `start` now and then follows tokio's clock.
        pub fn new(start: Timestamp) -> Self {
            Self {
                start,
                origin: tokio::time::Instant::now(),
                jumped: Mutex::new(chrono::Duration::zero()),
                jumps: tokio::sync::watch::channel(0).0,
            }
        }

        /// Move the wall clock by `by` without moving tokio's monotonic clock.
        pub fn jump(&self, by: chrono::Duration) {
            let mut jumped = self.jumped.lock().unwrap_or_else(|e| e.into_inner());
            *jumped += by;
            self.jumps.send_modify(|n| *n += 1);
        }

        /// Move the wall clock by `by` and wake nobody: a resume that the
        /// timer missed (the fallback tick, or a kernel that did not report
        /// it), which only another signal can reveal.
        pub fn jump_unnoticed(&self, by: chrono::Duration) {
            *self.jumped.lock().unwrap_or_else(|e| e.into_inner()) += by;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Timestamp {
            let elapsed = tokio::time::Instant::now().duration_since(self.origin);
            let jumped = *self.jumped.lock().unwrap_or_else(|e| e.into_inner());
            self.start + chrono::Duration::from_std(elapsed).unwrap_or_default() + jumped
        }

        fn sleep_until(&self, at: Timestamp) -> Sleep<'_> {
            let mut jumps = self.jumps.subscribe();
            Box::pin(async move {
                let left = (at - self.now()).to_std().unwrap_or(Duration::ZERO);
                tokio::select! {
                    _ = tokio::time::sleep(left) => {}
                    _ = jumps.changed() => {}
                }
            })
        }
    }
}

/// The timestamp of a JWT `NumericDate`, if it is in range.
pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
    DateTime::from_timestamp(secs, 0)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_realtime_sleep_ends_at_the_wall_clock_time() {
        let start = std::time::Instant::now();
        SystemClock
            .sleep_until(Utc::now() + chrono::Duration::milliseconds(300))
            .await;
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(250), "{took:?}");
        // A deadline in the past is due at once.
        SystemClock.sleep_until(Utc::now() - chrono::Duration::hours(1)).await;
        SystemClock.sleep_until(DateTime::<Utc>::MIN_UTC).await;
    }
}

/// A whole number of seconds for people: `45 s`, `30 min`, `12 h`, `7 days`
/// (the largest unit that divides it, else the next smaller one).
pub fn duration_text(secs: u64) -> String {
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}
