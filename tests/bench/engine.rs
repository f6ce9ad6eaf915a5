//! Benchmarks: `cargo bench -p integration`. Prints figures and ratios measured
//! in one run; asserts nothing about time (the machines are shared and noisy).
//!
//! 1. JWT validation per token, RS256 and ES256 (validator with a warm JWKS).
//! 2. Authenticated calls through the engine vs plain reqwest with the same
//!    pinned TLS config, against the Playground: throughput ratio (target
//!    ≥ 0.95), the median of 200 alternating rounds (one noisy second moves a
//!    whole-run ratio by several percent on this shared machine).
//! 3. Refresh requests per expiry with 1000 concurrent callers (target: 1).
//! 4. Refresh requests during a 10 s outage of the refresh endpoint (every
//!    refresh answered 503) while 1000 callers arrive spread over it: each
//!    caller shares the attempt in flight or waits for the next one after
//!    the backoff, so the requests follow the backoff, not the callers.

use integration::{memory_engine, playground, playground_with, profile};
use session_core::net::headers;
use session_core::token::{HttpJwksFetcher, JwksCache, Validator};
use session_core::Password;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn jwt_per_token(alg: playground::Algorithm, n: usize) -> Duration {
    let pg = playground_with(playground::Options {
        signing_alg: alg,
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new("alice-pw-1")).await.unwrap();
    let token = session_core::AccessToken::new(pg.issued_tokens()[0].clone());
    let p = profile(&pg, |t| t);
    let client = p.pinned_client().unwrap();
    let cache = JwksCache::new(
        Box::new(HttpJwksFetcher::new(
            client,
            p.jwks_url.clone().expect("a FinHub profile has a JWKS URL"),
        )),
        JwksCache::DEFAULT_MIN_INTERVAL,
    );
    let v = Validator::new(
        &p.issuer,
        &p.audience,
        p.algorithms.clone(),
        Duration::from_secs(30),
        Arc::new(cache),
    );
    let now = chrono::Utc::now();
    v.validate(&token, now).await.unwrap(); // warm the JWKS cache
    let start = Instant::now();
    for _ in 0..n {
        v.validate(&token, now).await.unwrap();
    }
    start.elapsed() / n as u32
}

/// Calls per second through the engine and through plain reqwest, and the
/// engine/plain ratio of each round: the rounds alternate, so each ratio
/// compares the two under the same load.
async fn call_throughput(rounds: usize, per_round: usize) -> (f64, f64, Vec<f64>) {
    let pg = playground(3600).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new("alice-pw-1")).await.unwrap();
    let bearer = pg.issued_tokens()[0].clone();
    let p = profile(&pg, |t| t);
    let plain = p.pinned_client().unwrap();
    let url = p.base_url.join("/api/v2/accounts").unwrap();
    let (session, correlation) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let engine_round = || async {
        let start = Instant::now();
        for _ in 0..per_round {
            let r = engine
                .call(reqwest::Method::GET, "/api/v2/accounts", None)
                .await
                .unwrap();
            assert_eq!(r.status, 200);
        }
        start.elapsed()
    };
    let plain_round = || async {
        let start = Instant::now();
        for _ in 0..per_round {
            let r = plain
                .http()
                .get(url.clone())
                .header(headers::AUTHORIZATION, format!("Bearer {bearer}"))
                .header(headers::X_ACTIVITY_ID, uuid::Uuid::new_v4().to_string())
                .header(headers::X_TENANT_ID, &p.tenant_id)
                .header(headers::X_REQUEST_ID, uuid::Uuid::new_v4().to_string())
                .header(headers::X_SESSION_ID, &session)
                .header(headers::X_CORRELATION_ID, &correlation)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap();
        }
        start.elapsed()
    };
    let (mut engine_time, mut plain_time) = (Duration::ZERO, Duration::ZERO);
    let mut ratios = Vec::new();
    // Interleave rounds so both sides see the same machine load, and swap
    // which side goes first every round (the first one pays for whatever
    // the previous round left behind).
    for round in 0..rounds {
        let (e, p) = if round % 2 == 0 {
            let e = engine_round().await;
            (e, plain_round().await)
        } else {
            let p = plain_round().await;
            (engine_round().await, p)
        };
        engine_time += e;
        plain_time += p;
        // Calls per second are inversely proportional to time taken.
        ratios.push(p.as_secs_f64() / e.as_secs_f64());
    }
    let total = (rounds * per_round) as f64;
    ratios.sort_by(f64::total_cmp);
    (
        total / engine_time.as_secs_f64(),
        total / plain_time.as_secs_f64(),
        ratios,
    )
}

async fn refreshes_per_expiry(callers: usize) -> usize {
    let pg = playground(2).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new("alice-pw-1")).await.unwrap();
    // No scheduler: let the token expire at the server, so every caller gets a
    // 401 and asks for a refresh at the same moment.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    pg.set_token_lifetime(Duration::from_secs(3600));
    let before = pg.refresh_calls();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let e = engine.clone();
            tokio::spawn(async move { e.call(reqwest::Method::GET, "/api/v2/accounts", None).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), Ok(r) if r.status == 200) {
            ok += 1;
        }
    }
    assert_eq!(ok, callers, "some callers failed");
    pg.refresh_calls() - before
}

/// (refresh requests during the outage, callers that got the outage's
/// error). The session token is 600 s (a first backoff step of 1 s); the
/// Playground stops honouring it, so every caller's call answers 401 and
/// asks for a renewal.
async fn requests_during_an_outage(callers: usize, window: Duration) -> (usize, usize) {
    let pg = playground(600).await;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&pg, dir.path());
    engine.sign_in("alice", Password::new("alice-pw-1")).await.unwrap();
    pg.reject_current_access_tokens();
    pg.fail_next_refreshes(u32::MAX);
    let before = pg.refresh_calls();
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let e = engine.clone();
            let at = start + window.mul_f64(i as f64 / callers as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                e.call(reqwest::Method::GET, "/api/v2/accounts", None).await
            })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        if !matches!(t.await.unwrap(), Ok(r) if r.status == 200) {
            failed += 1;
        }
    }
    let during = pg.refresh_calls() - before;
    pg.fail_next_refreshes(0);
    (during, failed)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list
    }
    println!("JWT validation (warm JWKS cache):");
    for (name, alg) in [
        ("RS256", playground::Algorithm::RS256),
        ("ES256", playground::Algorithm::ES256),
    ] {
        let per = jwt_per_token(alg, 2000).await;
        println!(
            "  {name}: {:>8.1} µs per token ({:.0} tokens/s)",
            per.as_secs_f64() * 1e6,
            1.0 / per.as_secs_f64()
        );
    }
    let (rounds, per_round) = (200, 100);
    let (engine, plain, ratios) = call_throughput(rounds, per_round).await;
    println!(
        "Authenticated GET /api/v2/accounts over pinned TLS ({} calls each, in {rounds} interleaved rounds):",
        rounds * per_round
    );
    println!("  engine: {engine:.0} calls/s, plain reqwest: {plain:.0} calls/s");
    println!(
        "  ratio engine/plain: median of the rounds {:.3} (target >= 0.95), middle half {:.3}..{:.3}, whole run {:.3}",
        ratios[ratios.len() / 2],
        ratios[ratios.len() / 4],
        ratios[ratios.len() * 3 / 4],
        engine / plain
    );
    let n = refreshes_per_expiry(1000).await;
    println!("Refresh requests per expiry with 1000 concurrent callers: {n} (target: exactly 1)");
    let window = Duration::from_secs(10);
    let (during, failed) = requests_during_an_outage(1000, window).await;
    println!(
        "Refresh endpoint down (503) for {} s, 1000 callers arriving over it: {during} refresh requests \
         ({:.3} per caller; backoff from 1 s), {failed} callers got the outage's error",
        window.as_secs(),
        during as f64 / 1000.0
    );
}
