//! Client-side anomaly detection: small pure detectors over what the app
//! has seen (its audit log, the server's signals, its own API calls). Each
//! returns a [`Finding`] with a kind and a plain-language reason, or
//! nothing. Advisory by default: the engine records each finding as an
//! `anomaly` audit record and shows it; a Production profile may turn
//! chosen kinds into a sign-out (`anomaly_sign_out`).
//!
//! The detectors take plain data (times, places, counts), so each is tested
//! with fixtures; the engine gathers that data.

use crate::os::clock::Timestamp;
use chrono::Timelike;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What kind of unusual thing was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A sign-in from a city or country none of the recent sessions had.
    NewLocation,
    /// More live sessions than the profile expects.
    ConcurrentSessions,
    /// A burst of API calls, or a storm of 401s.
    ApiPattern,
    /// A sign-in outside the person's usual hours (after a learning period).
    UnusualHours,
    /// The local clock far from the provider's, or a wall-clock jump.
    Clock,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::NewLocation,
        Kind::ConcurrentSessions,
        Kind::ApiPattern,
        Kind::UnusualHours,
        Kind::Clock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::NewLocation => "new_location",
            Kind::ConcurrentSessions => "concurrent_sessions",
            Kind::ApiPattern => "api_pattern",
            Kind::UnusualHours => "unusual_hours",
            Kind::Clock => "clock",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One finding: its kind and why, in words for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: Kind,
    pub reason: String,
}

/// A place as a server reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub city: String,
    pub country: String,
}

/// How many recent sign-ins the location detector compares with.
pub const RECENT_SIGN_INS: usize = 10;

/// A sign-in from `now` whose city and country differ from every one of the
/// `recent` sign-ins' (newest last; at most the last [`RECENT_SIGN_INS`]
/// count). Needs at least one earlier sign-in to compare with.
pub fn new_location(recent: &[Place], now: &Place) -> Option<Finding> {
    let recent = &recent[recent.len().saturating_sub(RECENT_SIGN_INS)..];
    if recent.is_empty() || recent.iter().any(|p| p.city == now.city && p.country == now.country) {
        return None;
    }
    let mut seen: Vec<String> = Vec::new();
    for p in recent.iter().rev() {
        let name = format!("{}, {}", p.city, p.country);
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    let places = match seen.len() {
        1 => format!("in {}", seen[0]),
        _ => format!("in {}", seen.join(" or ")),
    };
    Some(Finding {
        kind: Kind::NewLocation,
        reason: match recent.len() {
            1 => format!(
                "signed in from {}, {}; your last session was {places}",
                now.city, now.country
            ),
            n => format!(
                "signed in from {}, {}; your last {n} sessions were {places}",
                now.city, now.country
            ),
        },
    })
}

/// More than `threshold` live sessions.
pub fn concurrent_sessions(live: usize, threshold: usize) -> Option<Finding> {
    (live > threshold).then(|| Finding {
        kind: Kind::ConcurrentSessions,
        reason: format!("{live} sessions are signed in at once; you usually allow at most {threshold}"),
    })
}

/// One API call: when, and the status it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub at: Timestamp,
    pub status: u16,
}

/// Limits of the API-call detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    pub window: Duration,
    /// More calls than this within the window is a burst.
    pub max_calls: usize,
    /// This many 401s within the window is a storm.
    pub max_unauthorized: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            max_calls: 120,
            max_unauthorized: 5,
        }
    }
}

/// A burst of calls or a storm of 401s within the window ending at `now`.
/// One pass, nothing copied: the engine runs it after every API call.
pub fn api_pattern<'a>(
    calls: impl IntoIterator<Item = &'a Call>,
    now: Timestamp,
    limits: CallLimits,
) -> Option<Finding> {
    let since = now - chrono::Duration::from_std(limits.window).unwrap_or(chrono::Duration::MAX);
    let (mut recent, mut unauthorized) = (0usize, 0usize);
    for c in calls.into_iter().filter(|c| c.at > since && c.at <= now) {
        recent += 1;
        unauthorized += usize::from(c.status == 401);
    }
    let secs = limits.window.as_secs();
    if unauthorized >= limits.max_unauthorized {
        return Some(Finding {
            kind: Kind::ApiPattern,
            reason: format!("{unauthorized} API calls were refused as unauthorized (401) within {secs} s"),
        });
    }
    (recent > limits.max_calls).then(|| Finding {
        kind: Kind::ApiPattern,
        reason: format!(
            "{recent} API calls within {secs} s, more than the usual at most {}",
            limits.max_calls
        ),
    })
}

/// How many earlier sign-ins the hours detector learns from first.
pub const LEARNING_SIGN_INS: usize = 10;

/// A sign-in at an hour (local time, as `hour_of` gives it) that is more
/// than an hour from every hour of the earlier sign-ins, once there are at
/// least [`LEARNING_SIGN_INS`] of them.
pub fn unusual_hours(earlier_hours: &[u32], now_hour: u32) -> Option<Finding> {
    if earlier_hours.len() < LEARNING_SIGN_INS {
        return None;
    }
    let near = |h: u32| {
        let d = (h as i32 - now_hour as i32).rem_euclid(24);
        d.min(24 - d) <= 1
    };
    if earlier_hours.iter().any(|&h| near(h)) {
        return None;
    }
    let lo = earlier_hours.iter().min().copied().unwrap_or(0);
    let hi = earlier_hours.iter().max().copied().unwrap_or(23);
    Some(Finding {
        kind: Kind::UnusualHours,
        reason: format!(
            "signed in at {now_hour:02}:00-{:02}:59; your last {} sign-ins were between {lo:02}:00 and {hi:02}:59",
            now_hour,
            earlier_hours.len()
        ),
    })
}

/// The hour of day of `t` in the machine's local time zone.
pub fn hour_of(t: Timestamp) -> u32 {
    t.with_timezone(&chrono::Local).hour()
}

/// How far the clocks may disagree before it is an anomaly.
pub const CLOCK_LIMIT: Duration = Duration::from_secs(300);

/// The provider's clock (its `Date`) more than [`CLOCK_LIMIT`] from ours.
pub fn clock_offset(offset_ms: i64) -> Option<Finding> {
    let secs = offset_ms.unsigned_abs() / 1000;
    (secs > CLOCK_LIMIT.as_secs()).then(|| Finding {
        kind: Kind::Clock,
        reason: format!(
            "this computer's clock is {secs} s {} the identity provider's; check the date and time settings",
            if offset_ms > 0 { "behind" } else { "ahead of" }
        ),
    })
}

/// The wall clock moved by more than [`CLOCK_LIMIT`] against the monotonic
/// clock between two readings. On Linux `CLOCK_MONOTONIC` stops during
/// suspend, so a resume looks like a jump forward too: the caller must
/// measure across an interval without a suspend (or use `CLOCK_BOOTTIME`).
pub fn wall_clock_jump(wall_moved: chrono::Duration, monotonic_moved: Duration) -> Option<Finding> {
    let mono = chrono::Duration::from_std(monotonic_moved).ok()?;
    let jump = wall_moved - mono;
    let secs = jump.num_seconds();
    (secs.unsigned_abs() > CLOCK_LIMIT.as_secs()).then(|| Finding {
        kind: Kind::Clock,
        reason: format!(
            "the computer's clock was set {} by {} s",
            if secs > 0 { "forward" } else { "back" },
            secs.unsigned_abs()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(city: &str, country: &str) -> Place {
        Place {
            city: city.into(),
            country: country.into(),
        }
    }

    #[test]
    fn a_city_none_of_the_last_sessions_had_is_new() {
        let berlin = vec![place("Berlin", "DE"); 12];
        let f = new_location(&berlin, &place("Lisbon", "PT")).unwrap();
        assert_eq!(f.kind, Kind::NewLocation);
        assert_eq!(
            f.reason,
            "signed in from Lisbon, PT; your last 10 sessions were in Berlin, DE"
        );
        assert_eq!(new_location(&berlin, &place("Berlin", "DE")), None);
        assert_eq!(
            new_location(&[], &place("Lisbon", "PT")),
            None,
            "nothing to compare with"
        );
        // Only the last ten count: an old visit to Lisbon does not excuse it.
        let mut history = vec![place("Lisbon", "PT")];
        history.extend(vec![place("Berlin", "DE"); 10]);
        assert!(new_location(&history, &place("Lisbon", "PT")).is_some());
        let mixed = vec![place("Berlin", "DE"), place("Munich", "DE")];
        let f = new_location(&mixed, &place("Paris", "FR")).unwrap();
        assert!(
            f.reason
                .ends_with("your last 2 sessions were in Munich, DE or Berlin, DE"),
            "{}",
            f.reason
        );
        // Same city name, another country: new.
        let f = new_location(&[place("Paris", "FR")], &place("Paris", "US")).unwrap();
        assert_eq!(f.reason, "signed in from Paris, US; your last session was in Paris, FR");
    }

    #[test]
    fn more_sessions_than_the_threshold() {
        assert_eq!(concurrent_sessions(3, 3), None);
        let f = concurrent_sessions(4, 3).unwrap();
        assert_eq!(
            f.reason,
            "4 sessions are signed in at once; you usually allow at most 3"
        );
    }

    #[test]
    fn a_burst_of_calls_or_a_storm_of_401s() {
        let now = chrono::Utc::now();
        let at = |secs_ago: i64, status: u16| Call {
            at: now - chrono::Duration::seconds(secs_ago),
            status,
        };
        let limits = CallLimits::default();
        let calm: Vec<Call> = (0..100).map(|i| at(i % 60, 200)).collect();
        assert_eq!(api_pattern(&calm, now, limits), None);
        let burst: Vec<Call> = (0..121).map(|i| at(i % 60, 200)).collect();
        assert!(api_pattern(&burst, now, limits)
            .unwrap()
            .reason
            .starts_with("121 API calls within 60 s"));
        // Old calls are outside the window.
        let old: Vec<Call> = (0..500).map(|_| at(120, 200)).collect();
        assert_eq!(api_pattern(&old, now, limits), None);
        let storm = vec![at(1, 401), at(2, 401), at(3, 200), at(4, 401), at(5, 401), at(6, 401)];
        let f = api_pattern(&storm, now, limits).unwrap();
        assert_eq!(f.reason, "5 API calls were refused as unauthorized (401) within 60 s");
        assert_eq!(api_pattern(&storm[..4], now, limits), None);
    }

    #[test]
    fn hours_far_from_every_usual_one_after_learning() {
        let office = [8, 9, 9, 10, 11, 13, 14, 15, 16, 17];
        assert_eq!(unusual_hours(&office[..9], 3), None, "still learning");
        let f = unusual_hours(&office, 3).unwrap();
        assert_eq!(
            f.reason,
            "signed in at 03:00-03:59; your last 10 sign-ins were between 08:00 and 17:59"
        );
        assert_eq!(unusual_hours(&office, 18), None, "within an hour of a usual one");
        assert_eq!(unusual_hours(&office, 12), None);
        // Around midnight: 23 is next to 0.
        let night = [0, 0, 1, 1, 0, 1, 0, 0, 1, 1];
        assert_eq!(unusual_hours(&night, 23), None);
        assert!(unusual_hours(&night, 12).is_some());
    }

    #[test]
    fn clocks_far_apart_or_jumping() {
        assert_eq!(clock_offset(299_000), None);
        let f = clock_offset(-600_000).unwrap();
        assert_eq!(
            f.reason,
            "this computer's clock is 600 s ahead of the identity provider's; check the date and time settings"
        );
        assert!(clock_offset(400_000).unwrap().reason.contains("behind"));
        assert_eq!(
            wall_clock_jump(chrono::Duration::seconds(60), Duration::from_secs(58)),
            None
        );
        let f = wall_clock_jump(chrono::Duration::seconds(3600), Duration::from_secs(10)).unwrap();
        assert_eq!(f.reason, "the computer's clock was set forward by 3590 s");
        assert!(wall_clock_jump(chrono::Duration::seconds(-900), Duration::from_secs(1))
            .unwrap()
            .reason
            .contains("back"));
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(Kind::parse("nope"), None);
    }
}
