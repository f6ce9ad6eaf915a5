//! Refresh timing and backoff: pure functions of times and durations.
//!
//! *When* a session is renewed is decided here and in
//! [`crate::engine`]'s `next_step`; *how* is the engine's flight; *how the
//! process wakes up* for it is [`crate::os::clock::Clock::sleep_until`].

use crate::os::clock::Timestamp;
use rand::Rng;
use std::time::Duration;

/// The longest backoff between two renewal attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The longest `Retry-After` the engine honours: a server that asks for more
/// is retried after this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

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
    expires_at
        .checked_sub_signed(chrono_of(lead + jitter))
        .unwrap_or(expires_at)
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

/// The wait before the next attempt: the backoff, or what the server asked
/// for (`Retry-After`, at most [`MAX_RETRY_AFTER`]) when that is longer.
pub fn retry_delay(backoff: Duration, retry_after: Option<Duration>) -> Duration {
    backoff.max(retry_after.unwrap_or(Duration::ZERO).min(MAX_RETRY_AFTER))
}

/// `at` moved by `ms` milliseconds (either way), or `at` when that does
/// not fit a date.
pub fn after_signed(at: Timestamp, ms: i64) -> Timestamp {
    at.checked_add_signed(chrono::Duration::milliseconds(ms)).unwrap_or(at)
}

/// `at + d`, or `at` when the sum does not fit a date.
pub fn after(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_add_signed(chrono_of(d)).unwrap_or(at)
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

    #[test]
    fn retry_after_wins_when_longer_and_is_capped() {
        let b = Duration::from_secs(2);
        assert_eq!(retry_delay(b, None), b);
        assert_eq!(retry_delay(b, Some(Duration::from_secs(1))), b);
        assert_eq!(retry_delay(b, Some(Duration::from_secs(120))), Duration::from_secs(120));
        assert_eq!(retry_delay(b, Some(Duration::from_secs(1 << 40))), MAX_RETRY_AFTER);
    }

    #[test]
    fn date_arithmetic_saturates() {
        let max = chrono::DateTime::<chrono::Utc>::MAX_UTC;
        assert_eq!(after(max, Duration::from_secs(10)), max);
        let min = chrono::DateTime::<chrono::Utc>::MIN_UTC;
        assert_eq!(
            refresh_at(min, min, Duration::from_secs(300), &mut rand::thread_rng()),
            min
        );
    }
}
