//! Failover from a primary endpoint to its backups, with a circuit breaker.
//!
//! The FinHub guide asks for "backup authentication services". Login and
//! refresh are not idempotent: a refresh token presented at the primary and
//! then again at a backup is a reuse that revokes the session. So a request
//! moves to the next endpoint only when it **surely did not arrive** or was
//! **surely not processed**:
//!
//! - the connection could not be made (refused, no route, DNS, a connect
//!   timeout): [`Error::Network`], [`Error::Timeout`] with `connected: false`;
//! - the server answered `503` (RFC 9110 15.6.4: it cannot handle the
//!   request now);
//! - for idempotent methods only (GET, HEAD, OPTIONS, PUT, DELETE), also
//!   `500`, `502` and `504`.
//!
//! A timeout after the connection was made, a connection lost after sending,
//! any other answer: the request stays at the endpoint it went to, and the
//! engine's backoff retries it there. TLS and pin failures never fail over:
//! they are not outages, and every endpoint is held to the same pins.
//!
//! The breaker: once the primary fails, requests go to the backup in use
//! first; after a cool-down (15 s, doubling at each failed probe up to 5 min)
//! the next request probes the primary first, and goes back to it as soon as
//! it answers. Each switch is reported through [`Endpoints::route`], which the
//! engine audits and shows.

use crate::error::Error;
use reqwest::{Method, StatusCode, Url};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default first cool-down before the primary is probed again (the
/// profile's `failback_secs`).
pub const FIRST_COOL_DOWN: Duration = Duration::from_secs(15);
/// The longest cool-down.
pub const MAX_COOL_DOWN: Duration = Duration::from_secs(300);

/// Which endpoint requests go to, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The backup in use, or `None` on the primary.
    pub backup: Option<String>,
    /// Why the last switch happened ("the primary … refused the connection").
    pub reason: String,
}

/// What came of one attempt, as the breaker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An answer to keep (success or an error that is not an outage).
    Answered,
    /// An outage that the next endpoint may be tried after.
    FailOver,
}

/// Whether a failed send may move to the next endpoint.
pub fn error_verdict(error: &Error) -> Verdict {
    match error {
        Error::Network { .. } | Error::Timeout { connected: false, .. } => Verdict::FailOver,
        _ => Verdict::Answered,
    }
}

/// Whether an HTTP answer may move to the next endpoint.
pub fn status_verdict(method: &Method, status: StatusCode) -> Verdict {
    let idempotent = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    );
    // A gateway may answer any 5xx, 503 included, after its upstream
    // processed the request: a POST (a refresh that rotated its token, a
    // sign-in) is never replayed at another endpoint for a status; only
    // for a connection that surely never carried it (`error_verdict`).
    match status.as_u16() {
        500 | 502 | 503 | 504 if idempotent => Verdict::FailOver,
        _ => Verdict::Answered,
    }
}

#[derive(Debug)]
struct Breaker {
    /// Index of the endpoint in use (0: the primary).
    active: usize,
    /// When the primary may be probed again (while on a backup).
    probe_at: Option<Instant>,
    cool_down: Duration,
    reason: String,
}

/// A primary URL and its backups, and the breaker between them.
#[derive(Debug)]
pub struct Endpoints {
    urls: Vec<Url>,
    first_cool_down: Duration,
    breaker: Mutex<Breaker>,
}

impl Endpoints {
    /// `cool_down`: how long to stay on a backup before the first probe.
    pub fn new(primary: Url, backups: Vec<Url>, cool_down: Duration) -> Self {
        let mut urls = vec![primary];
        urls.extend(backups);
        Self {
            urls,
            first_cool_down: cool_down,
            breaker: Mutex::new(Breaker {
                active: 0,
                probe_at: None,
                cool_down,
                reason: String::new(),
            }),
        }
    }

    fn breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The order to try the endpoints in, now: the primary first unless the
    /// breaker is open; on a backup, that backup first, the other backups,
    /// and the primary last (it may be back).
    pub fn order(&self, now: Instant) -> Vec<usize> {
        let b = self.breaker();
        let n = self.urls.len();
        if b.active == 0 || b.probe_at.is_some_and(|t| now >= t) {
            let mut order: Vec<usize> = (0..n).collect();
            if b.active != 0 {
                // Probe the primary, then the backup in use.
                order.retain(|&i| i != b.active);
                order.insert(1, b.active);
            }
            return order;
        }
        let mut order = vec![b.active];
        order.extend((1..n).filter(|&i| i != b.active));
        order.push(0);
        order
    }

    pub fn url(&self, index: usize) -> &Url {
        &self.urls[index]
    }

    /// Record an attempt at `index`: `failed` with its reason, or answered.
    pub fn record(&self, index: usize, failed: Option<&str>, now: Instant) {
        let mut b = self.breaker();
        match failed {
            Some(reason) => {
                if index == 0 {
                    if b.active != 0 {
                        // A failed probe: wait longer before the next one.
                        b.cool_down = (b.cool_down * 2).min(MAX_COOL_DOWN.max(self.first_cool_down));
                    }
                    b.probe_at = Some(now + b.cool_down);
                    b.reason = format!("{} failed: {reason}", host(&self.urls[0]));
                }
            }
            None if index == 0 => {
                if b.active != 0 {
                    b.reason = format!("{} answers again", host(&self.urls[0]));
                }
                b.active = 0;
                b.probe_at = None;
                b.cool_down = self.first_cool_down;
            }
            None => {
                if b.active != index {
                    if b.active != 0 {
                        b.reason = format!("{} failed too", host(&self.urls[b.active]));
                    }
                    b.active = index;
                }
                if b.probe_at.is_none() {
                    b.probe_at = Some(now + b.cool_down);
                }
            }
        }
    }

    /// Where requests go now.
    pub fn route(&self) -> Route {
        let b = self.breaker();
        Route {
            backup: (b.active != 0).then(|| shown(&self.urls[b.active])),
            reason: b.reason.clone(),
        }
    }
}

/// A URL as the view, the audit log and diagnostics show it: scheme, host,
/// port and path, never user info, a query or a fragment (which may hold
/// credentials).
fn shown(url: &Url) -> String {
    format!("{}://{}{}", url.scheme(), host(url), url.path().trim_end_matches('/'))
}

fn host(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("?")),
        None => url.host_str().unwrap_or("?").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security review 2: a backup URL reaches the view, the audit log and
    /// diagnostics without its user info or query.
    #[test]
    fn a_backup_url_is_shown_without_user_info_or_query() {
        let url = Url::parse("https://ops:s3cret@dr.example:8443/base/?token=abc#frag").unwrap();
        assert_eq!(shown(&url), "https://dr.example:8443/base");
        assert_eq!(shown(&Url::parse("https://dr.example/").unwrap()), "https://dr.example");
    }

    fn endpoints() -> Endpoints {
        Endpoints::new(
            Url::parse("https://primary.example/").unwrap(),
            vec![
                Url::parse("https://backup1.example/").unwrap(),
                Url::parse("https://backup2.example/").unwrap(),
            ],
            FIRST_COOL_DOWN,
        )
    }

    #[test]
    fn only_outages_that_surely_did_not_process_the_request_fail_over() {
        let refused = Error::Network {
            host: "h".into(),
            detail: "refused".into(),
        };
        assert_eq!(error_verdict(&refused), Verdict::FailOver);
        let connect_timeout = Error::Timeout {
            host: "h".into(),
            secs: 5,
            connected: false,
        };
        assert_eq!(error_verdict(&connect_timeout), Verdict::FailOver);
        // The server may have processed these: never replayed elsewhere.
        for may_have_arrived in [
            Error::Timeout {
                host: "h".into(),
                secs: 5,
                connected: true,
            },
            Error::ConnectionLost {
                host: "h".into(),
                detail: "reset".into(),
            },
            Error::PinMismatch {
                host: "h".into(),
                presented: String::new(),
            },
        ] {
            assert_eq!(
                error_verdict(&may_have_arrived),
                Verdict::Answered,
                "{may_have_arrived}"
            );
        }
        let s = |n| StatusCode::from_u16(n).unwrap();
        // A gateway may answer 503 after the upstream processed the POST
        // (a refresh that rotated its token): never replayed elsewhere.
        assert_eq!(
            status_verdict(&Method::POST, s(503)),
            Verdict::Answered,
            "a refresh is not replayed"
        );
        assert_eq!(status_verdict(&Method::GET, s(503)), Verdict::FailOver);
        assert_eq!(
            status_verdict(&Method::POST, s(502)),
            Verdict::Answered,
            "a refresh is not replayed"
        );
        assert_eq!(status_verdict(&Method::POST, s(500)), Verdict::Answered);
        assert_eq!(status_verdict(&Method::GET, s(502)), Verdict::FailOver);
        assert_eq!(status_verdict(&Method::GET, s(404)), Verdict::Answered);
        assert_eq!(status_verdict(&Method::POST, s(200)), Verdict::Answered);
    }

    #[test]
    fn the_breaker_stays_on_the_backup_then_probes_the_primary_and_returns() {
        let e = endpoints();
        let t0 = Instant::now();
        assert_eq!(e.order(t0), vec![0, 1, 2]);
        assert_eq!(e.route().backup, None);
        // The primary is down; backup 1 answers.
        e.record(0, Some("connection refused"), t0);
        e.record(1, None, t0);
        let r = e.route();
        assert_eq!(r.backup.as_deref(), Some("https://backup1.example"));
        assert!(
            r.reason.contains("primary.example failed: connection refused"),
            "{}",
            r.reason
        );
        // Within the cool-down the backup goes first, the primary last.
        assert_eq!(e.order(t0 + Duration::from_secs(5)), vec![1, 2, 0]);
        // After it, the primary is probed first; it still fails: longer wait.
        let t1 = t0 + FIRST_COOL_DOWN;
        assert_eq!(e.order(t1), vec![0, 1, 2]);
        e.record(0, Some("connection refused"), t1);
        e.record(1, None, t1);
        assert_eq!(e.order(t1 + FIRST_COOL_DOWN), vec![1, 2, 0], "the cool-down doubled");
        let t2 = t1 + FIRST_COOL_DOWN * 2;
        assert_eq!(e.order(t2), vec![0, 1, 2]);
        // The primary answers: back on it, the cool-down reset.
        e.record(0, None, t2);
        let r = e.route();
        assert_eq!(r.backup, None);
        assert!(r.reason.contains("answers again"), "{}", r.reason);
        assert_eq!(e.order(t2), vec![0, 1, 2]);
    }

    #[test]
    fn a_failing_backup_moves_on_to_the_next_one() {
        let e = endpoints();
        let t0 = Instant::now();
        e.record(0, Some("refused"), t0);
        e.record(1, None, t0);
        e.record(1, Some("refused"), t0);
        e.record(2, None, t0);
        assert_eq!(e.route().backup.as_deref(), Some("https://backup2.example"));
        assert_eq!(e.order(t0), vec![2, 1, 0]);
    }

    #[test]
    fn the_cool_down_is_capped() {
        let e = endpoints();
        let mut t = Instant::now();
        e.record(0, Some("refused"), t);
        e.record(1, None, t);
        for _ in 0..20 {
            t += MAX_COOL_DOWN;
            e.record(0, Some("refused"), t);
        }
        assert_eq!(e.order(t + MAX_COOL_DOWN - Duration::from_secs(1))[0], 1);
        assert_eq!(e.order(t + MAX_COOL_DOWN)[0], 0);
    }
}
