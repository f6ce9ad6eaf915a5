//! Wall-clock time, passed in rather than read inside the logic.
//!
//! Refresh deadlines are wall-clock instants (a token's `exp` is one), so the
//! scheduler compares them with [`Clock::now`]. A laptop that sleeps stops the
//! monotonic clock but not the wall clock; reading the wall clock on every
//! tick is what lets the engine notice the jump.

use chrono::{DateTime, Utc};

/// A point in wall-clock time, UTC.
pub type Timestamp = DateTime<Utc>;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use test_clock::TestClock;

#[cfg(any(test, feature = "test-support"))]
mod test_clock {
    use super::*;
    use std::sync::Mutex;
    /// A clock for tests: it advances with tokio's clock (so `tokio::time::pause`
    /// and `advance` drive it) and can also jump, the way a wall clock does when a
    /// laptop wakes up or NTP corrects it, without tokio's timers noticing.
    #[derive(Debug)]
    pub struct TestClock {
        start: Timestamp,
        origin: tokio::time::Instant,
        jumped: Mutex<chrono::Duration>,
    }

    impl TestClock {
        /// A clock that reads `start` now and then follows tokio's clock.
        pub fn new(start: Timestamp) -> Self {
            Self {
                start,
                origin: tokio::time::Instant::now(),
                jumped: Mutex::new(chrono::Duration::zero()),
            }
        }

        /// Move the wall clock by `by` without moving tokio's monotonic clock.
        pub fn jump(&self, by: chrono::Duration) {
            let mut jumped = self.jumped.lock().unwrap_or_else(|e| e.into_inner());
            *jumped += by;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> Timestamp {
            let elapsed = tokio::time::Instant::now().duration_since(self.origin);
            let jumped = *self.jumped.lock().unwrap_or_else(|e| e.into_inner());
            self.start + chrono::Duration::from_std(elapsed).unwrap_or_default() + jumped
        }
    }
}

/// The timestamp of a JWT `NumericDate`, if it is in range.
pub fn from_unix_seconds(secs: i64) -> Option<Timestamp> {
    DateTime::from_timestamp(secs, 0)
}
