//! A second way to hear that the machine woke up: logind's
//! `PrepareForSleep(false)` signal on the system bus.
//!
//! The scheduler's first way is the wall-clock timer itself
//! ([`crate::os::clock::Clock::sleep_until`]): on Linux a `timerfd` with
//! `TFD_TIMER_CANCEL_ON_SET`, which the kernel wakes on every resume. This
//! signal covers what that cannot: a timer made where no timerfd could be
//! had (the fallback tick), and a resume the kernel did not report as a
//! clock change. It carries no data the engine trusts: on a resume the
//! scheduler only reads the wall clock again and plans from there, so a
//! forged signal costs one wake-up and nothing else.
//!
//! One listener per process and bus, on a thread of its own that blocks in
//! libdbus (through the `dbus` crate keyring already links) and wakes only
//! when a message arrives, or once an hour. Subscribers get a
//! [`tokio::sync::watch`] receiver whose value counts resumes. Without the
//! bus (no logind, a container, macOS, Windows) there is no receiver and
//! the timer alone decides.

use tokio::sync::watch;

/// Which D-Bus bus carries the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepBus {
    /// The system bus, where logind sends it: what the app and `sessionctl`
    /// listen to.
    System,
    /// The session bus: for tests, which send the signal there themselves
    /// (nobody but logind can send it on the system bus as logind).
    Session,
}

/// A receiver that changes on every resume, or `None` when the bus cannot
/// be reached (or on platforms without logind).
pub fn resumes(bus: SleepBus) -> Option<watch::Receiver<u64>> {
    imp::resumes(bus)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::SleepBus;
    use dbus::blocking::Connection;
    use dbus::message::MatchRule;
    use std::sync::OnceLock;
    use std::time::Duration;
    use tokio::sync::watch;

    const INTERFACE: &str = "org.freedesktop.login1.Manager";
    const SIGNAL: &str = "PrepareForSleep";
    const LOGIND: &str = "org.freedesktop.login1";
    /// How long the listener blocks in libdbus between messages.
    const IDLE: Duration = Duration::from_secs(3600);

    static SYSTEM: OnceLock<Option<watch::Sender<u64>>> = OnceLock::new();
    static SESSION: OnceLock<Option<watch::Sender<u64>>> = OnceLock::new();

    pub fn resumes(bus: SleepBus) -> Option<watch::Receiver<u64>> {
        let cell = match bus {
            SleepBus::System => &SYSTEM,
            SleepBus::Session => &SESSION,
        };
        cell.get_or_init(|| listen(bus)).as_ref().map(|tx| tx.subscribe())
    }

    fn listen(bus: SleepBus) -> Option<watch::Sender<u64>> {
        let connection = match bus {
            SleepBus::System => Connection::new_system(),
            SleepBus::Session => Connection::new_session(),
        }
        .ok()?;
        let mut rule = MatchRule::new_signal(INTERFACE, SIGNAL);
        if bus == SleepBus::System {
            // Only logind's own signal, not another client's.
            rule.sender = Some(LOGIND.into());
        }
        let (tx, _) = watch::channel(0u64);
        let counter = tx.clone();
        connection
            .add_match(rule, move |(sleeping,): (bool,), _, _| {
                // `true` is sent before the machine sleeps, `false` after it
                // resumes: only the second one moves the clock.
                if !sleeping {
                    counter.send_modify(|n| *n = n.wrapping_add(1));
                }
                true
            })
            .ok()?;
        std::thread::Builder::new()
            .name("resume-signal".into())
            .spawn(move || {
                // Ends when the bus goes away; the timer still works then.
                while connection.process(IDLE).is_ok() {}
            })
            .ok()?;
        Some(tx)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::SleepBus;
    use tokio::sync::watch;

    pub fn resumes(_: SleepBus) -> Option<watch::Receiver<u64>> {
        None
    }
}
