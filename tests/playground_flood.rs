//! A thousand idle connections to the Playground that the desktop app
//! embeds must not stall the app's other profiles (security review,
//! finding 2). The process runs with a desktop's usual limit of 1024 file
//! descriptors, as the app does.
//!
//! Before the fix the Playground took every connection and kept it (no
//! handshake or header timeout, no cap) until `accept` failed with EMFILE,
//! then retried at once, forever. Every other profile of the process then
//! failed with "Too many open files", and one core span.
//!
//! A binary of its own (`harness = false`): the limit is process-wide. The
//! idle connections come from this binary again, in a child process.

use integration::{memory_engine, playground};
use session_core::{Password, Phase};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const JUNK_PORT: &str = "PLAYGROUND_FLOOD_JUNK_PORT";
const IDLE: usize = 1000;

fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/stat ({e}): no file descriptor left"));
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Duration::from_millis((f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) * 10)
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(usize::MAX)
}

/// Keep `IDLE` connections open that never speak; reopen closed ones.
async fn junk(port: u16, seconds: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..IDLE)
        .map(|_| {
            tokio::spawn(async move {
                while tokio::time::Instant::now() < deadline {
                    match TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(mut s) => {
                            let mut buf = [0u8; 64];
                            let _ = tokio::time::timeout_at(deadline, s.read(&mut buf)).await;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn flood() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    rlimit::setrlimit(rlimit::Resource::NOFILE, 1024.min(hard), hard).unwrap();
    // The embedded Playground, and another profile's provider, in one process.
    let embedded = playground(600).await;
    let other = playground(600).await;
    let port: u16 = embedded.base_url().rsplit(':').next().unwrap().parse().unwrap();
    let _junk = KillOnDrop(
        std::process::Command::new(std::env::current_exe().unwrap())
            .env(JUNK_PORT, port.to_string())
            .spawn()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (cpu, wall) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64();
    let fds = open_descriptors();
    // The other profile signs in, calls its API and signs out as usual.
    let dir = tempfile::tempdir().unwrap();
    let (engine, _) = memory_engine(&other, dir.path());
    let view = engine
        .sign_in("alice", Password::new("alice-pw-1"))
        .await
        .expect("the other profile signs in");
    assert_eq!(view.state, Phase::Active);
    let accounts = engine
        .call(reqwest::Method::GET, "/api/v2/accounts", None)
        .await
        .expect("the other profile's API answers");
    assert_eq!(accounts.status, 200);
    engine.sign_out().await.unwrap();
    println!(
        "with {IDLE} idle connections: {fds} descriptors open, {:.0} % of a core busy",
        busy * 100.0
    );
    assert!(fds < 700, "{fds} descriptors open: the idle connections are not capped");
    assert!(busy < 0.5, "the Playground spun: {:.0} % of a core", busy * 100.0);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(port) = std::env::var(JUNK_PORT) {
        runtime.block_on(junk(port.parse().unwrap(), 30));
        return;
    }
    runtime.block_on(flood());
    println!("test idle_connections_to_the_embedded_playground_never_stall_other_profiles ... ok");
    println!("1 passed, 0 failed");
}
