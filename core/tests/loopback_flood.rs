//! The OpenID Connect loopback listener under a flood of silent connections,
//! with the process short of file descriptors (security review, finding 4).
//!
//! Before the fix the listener took every connection until `accept` failed
//! with EMFILE, then retried at once, forever: one core at 100 % and no
//! descriptor left for anything else, so the browser's real callback never
//! got through. Now it serves at most `MAX_CONNECTIONS`, closes the oldest
//! one without a whole request head to make room, and backs off on accept errors.
//!
//! It lowers RLIMIT_NOFILE for the whole process, so it is a binary of its
//! own (`harness = false`); the junk client is this binary again, in a child
//! process with its own limit, so its sockets do not count against ours.

use session_core::provider::oidc::loopback::Loopback;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JUNK_PORT: &str = "LOOPBACK_FLOOD_JUNK_PORT";
const LIMIT: u64 = 256;
const JUNK: usize = 400;

/// CPU time (user + system) this process has used.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/stat ({e}): the listener left no file descriptor"));
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// Keep `JUNK` connections open to `port` that never send a byte; open a new
/// one whenever one is closed, until `seconds` are up.
async fn junk(port: u16, seconds: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..JUNK)
        .map(|_| {
            tokio::spawn(async move {
                while tokio::time::Instant::now() < deadline {
                    match TcpStream::connect(("127.0.0.1", port)).await {
                        Ok(mut s) => {
                            let mut buf = [0u8; 64];
                            let _ = tokio::time::timeout_at(deadline, s.read(&mut buf)).await;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

async fn callback(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET /callback?code=the-code&state=s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// The junk client goes away with the test, whatever happens.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn flood() {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    rlimit::setrlimit(rlimit::Resource::NOFILE, LIMIT, hard).unwrap();
    let lb = Loopback::bind(0).await.unwrap();
    let port = lb.port();
    let (_cancel, rx) = tokio::sync::watch::channel(false);
    let wait = tokio::spawn(lb.wait("s", "https://idp", false, Duration::from_secs(60), rx));
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(JUNK_PORT, port.to_string())
        .spawn()
        .unwrap();
    let _child = KillOnDrop(child);
    // Let the flood build up, then watch how busy the listener keeps us.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu, wall) = (cpu_time(), Instant::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = (cpu_time() - cpu).as_secs_f64() / wall.elapsed().as_secs_f64();
    // The browser's redirect arrives in the middle of it.
    let page = callback(port)
        .await
        .expect("the callback connects (a descriptor was left for it)");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let result = tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("the wait ends")
        .unwrap();
    assert_eq!(result.unwrap().code, "the-code");
    println!("listener busy {:.0} % of one core during the flood", busy * 100.0);
    assert!(busy < 0.5, "the listener spun: {:.0} % of a core", busy * 100.0);
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(port) = std::env::var(JUNK_PORT) {
        runtime.block_on(junk(port.parse().unwrap(), 20));
        return;
    }
    runtime.block_on(flood());
    println!("test a_flood_of_silent_connections_neither_spins_nor_keeps_the_callback_out ... ok");
    println!("1 passed, 0 failed");
}
