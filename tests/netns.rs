//! The engine on a network that goes away and comes back, through real
//! parts: the engine runs in a network namespace of its own, joined to the
//! host by a veth pair; the Playground serves over real TLS on the host, behind
//! a forwarder on the host's end of the pair. The forwarder passes the bytes
//! through, or plays a captive portal (TLS with a certificate of its own and a
//! sign-in page). The link is taken down and brought up with `ip`, so the
//! engine hears the kernel's own netlink news.
//!
//! It needs CAP_NET_ADMIN (a namespace and a veth pair): as root it runs at
//! once; otherwise it runs itself again under `sudo -n`, and says so when it
//! cannot. Its own binary (`harness = false`): the engine's network listener
//! belongs to the namespace of the first thread that asks for it, so nothing
//! else may start one first.

use integration::hostile::Pki;
use playground::{Options, Playground};
use session_core::{Password, Phase, SessionView};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const PW: &str = "alice-pw-1";
/// The access token's lifetime: the portal stays for longer than that.
const LIFETIME: Duration = Duration::from_secs(6);
/// How soon after the link is back the session must be renewed.
const BACK_WITHIN: Duration = Duration::from_secs(2);

fn main() {
    if !is_root() {
        let exe = std::env::current_exe().expect("the test knows its own path");
        let status = Command::new("sudo").args(["-n", "--preserve-env"]).arg(&exe).status();
        match status {
            Ok(s) if s.success() => return,
            Ok(s) => panic!("netns: the test failed under sudo ({s})"),
            Err(e) => panic!(
                "netns: this test makes a network namespace and a veth pair, which needs root \
                 (CAP_NET_ADMIN); run the test command as root or with passwordless sudo ({e})"
            ),
        }
    }
    let started = Instant::now();
    a_captive_portal_then_a_dead_link_across_expiry_then_the_network_back();
    println!("netns: 1 test passed in {:.1} s", started.elapsed().as_secs_f64());
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Run `ip ARGS`, failing the test with what it said.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("`ip` runs (the test command installs iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace joined to the host by a veth pair: the host's end
/// `host_addr`, the namespace's `ns_addr`, a /30 between them. Removed on
/// drop.
struct Netns {
    name: String,
    host_if: String,
    peer_if: String,
    host_addr: Ipv4Addr,
}

impl Netns {
    fn new() -> Self {
        let pid = std::process::id();
        let (name, host_if, peer_if) = (format!("smtest{pid}"), format!("smh{pid}"), format!("smn{pid}"));
        // 10.213.x.y/30 from the pid, so two runs at once do not collide.
        let (x, y) = (((pid >> 6) & 0xff) as u8, ((pid & 0x3f) * 4) as u8);
        let host_addr = Ipv4Addr::new(10, 213, x, y + 1);
        let ns_addr = Ipv4Addr::new(10, 213, x, y + 2);
        let n = Self {
            name,
            host_if,
            peer_if,
            host_addr,
        };
        ip(&["netns", "add", &n.name]);
        ip(&["link", "add", &n.host_if, "type", "veth", "peer", "name", &n.peer_if]);
        ip(&["link", "set", &n.peer_if, "netns", &n.name]);
        ip(&["addr", "add", &format!("{host_addr}/30"), "dev", &n.host_if]);
        ip(&["link", "set", &n.host_if, "up"]);
        ip(&[
            "-n",
            &n.name,
            "addr",
            "add",
            &format!("{ns_addr}/30"),
            "dev",
            &n.peer_if,
        ]);
        ip(&["-n", &n.name, "link", "set", "lo", "up"]);
        ip(&["-n", &n.name, "link", "set", &n.peer_if, "up"]);
        n
    }

    /// Take the namespace's end of the link down or up.
    fn link(&self, up: bool) {
        ip(&[
            "-n",
            &self.name,
            "link",
            "set",
            &self.peer_if,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

const PASS: u8 = 0;
const PORTAL: u8 = 1;

/// A TCP forwarder to the Playground that can turn into a captive portal.
/// A change of mode cuts the connections it was passing through (a new
/// network: what was open on the old one is gone).
struct Forwarder {
    port: u16,
    mode: tokio::sync::watch::Sender<u8>,
    /// Connections the portal answered.
    portal_hits: Arc<AtomicUsize>,
}

impl Forwarder {
    async fn start(on: Ipv4Addr, to: u16) -> Self {
        let listener = TcpListener::bind((on, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, _) = tokio::sync::watch::channel(PASS);
        let portal_hits = Arc::new(AtomicUsize::new(0));
        // The portal's own certificate, from a CA nobody trusts.
        let portal = Pki::new("Hotel Wi-Fi");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![portal.leaf_der.clone()], portal.leaf_key.clone_key())
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (m, hits) = (mode.subscribe(), portal_hits.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *m.borrow() == PORTAL {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        // The client refuses the certificate; if it did not,
                        // it would get the portal's page.
                        if let Ok(mut tls) = acceptor.accept(client).await {
                            let page =
                                "<html><body>Welcome to Hotel Wi-Fi. Accept the terms to continue.</body></html>";
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                                page.len()
                            );
                            let _ = tls.write_all(answer.as_bytes()).await;
                        }
                    });
                    continue;
                }
                let mut changed = m.clone();
                changed.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = changed.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            mode,
            portal_hits,
        }
    }

    fn set(&self, mode: u8) {
        self.mode.send_replace(mode);
    }
}

/// Enter the network namespace `name` (this thread only, and the threads it
/// starts after).
fn enter(name: &str) {
    let ns = std::fs::File::open(format!("/run/netns/{name}")).expect("the namespace exists");
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&ns),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .expect("setns into the test's network namespace");
}

/// Wait (polling the view, 20 ms apart) until `done`, or fail after `timeout`.
async fn until(
    engine: &session_core::Engine,
    what: &str,
    timeout: Duration,
    done: impl Fn(&SessionView) -> bool,
) -> SessionView {
    let deadline = Instant::now() + timeout;
    loop {
        let view = engine.view();
        if done(&view) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; last view: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The scenario: signed in; a captive portal intercepts TLS from
/// before the renewal until well past the access token's expiry; then the
/// link dies; then it comes back with the real network. Nothing is lost, the
/// session is renewed within `BACK_WITHIN` of the link's return (not at the
/// end of its backoff), with one refresh request, in the same family.
fn a_captive_portal_then_a_dead_link_across_expiry_then_the_network_back() {
    let host = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let netns = Netns::new();
    let (pg, forwarder) = host.block_on(async {
        let pg = Playground::start(Options {
            token_lifetime: LIFETIME,
            extra_addresses: vec![netns.host_addr.into()],
            ..Options::default()
        })
        .await
        .expect("the Playground starts");
        let port: u16 = pg.base_url().rsplit(':').next().unwrap().parse().unwrap();
        let forwarder = Forwarder::start(netns.host_addr, port).await;
        (pg, forwarder)
    });
    // The profile reaches the Playground through the forwarder only (the
    // token's issuer stays what the Playground signs).
    let via = format!("https://{}:{}", netns.host_addr, forwarder.port);
    let profile = integration::profile(&pg, |t| {
        t.lines()
            .map(|l| {
                if l.starts_with("base_url") || l.starts_with("jwks_url") {
                    l.replace(pg.base_url(), &via)
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    let dir = tempfile::tempdir().unwrap();
    let (pg, forwarder, netns) = (Arc::new(pg), Arc::new(forwarder), Arc::new(netns));
    let (p, f, n, d) = (pg.clone(), forwarder.clone(), netns.clone(), dir.path().to_owned());
    let outcome = std::thread::spawn(move || {
        enter(&n.name);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(scenario(profile, &d, &p, &f, &n))
    })
    .join();
    drop(host);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(
    profile: session_core::Profile,
    dir: &std::path::Path,
    pg: &Playground,
    forwarder: &Forwarder,
    netns: &Netns,
) {
    let (engine, store) = integration::memory_engine_for(profile, dir);
    let signed_in = engine
        .sign_in("alice", Password::new(PW))
        .await
        .expect("signs in through the link");
    let session = signed_in.session_id.clone();
    let _scheduler = engine.start_with(None);

    // The portal, from before the renewal until two lifetimes past expiry.
    forwarder.set(PORTAL);
    let expiry = signed_in.expires_at.unwrap();
    until(&engine, "a renewal the portal refused", LIFETIME * 2, |v| {
        v.last_refresh.as_ref().is_some_and(|r| !r.ok)
    })
    .await;
    let portal_until = Instant::now() + LIFETIME * 2;
    while Instant::now() < portal_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Active between attempts, Refreshing during one (a sample can
        // land inside an attempt the portal refuses); both are a session.
        let view = engine.view();
        assert!(
            view.state.has_session(),
            "the portal ended the session: {:?} {:?}",
            view.state,
            view.last_error
        );
    }
    assert!(
        chrono::Utc::now() > expiry,
        "the portal was not in the way across the access token's expiry"
    );
    assert!(
        forwarder.portal_hits.load(Ordering::SeqCst) >= 2,
        "the engine did not keep trying"
    );
    assert!(
        !store.entries().is_empty(),
        "the keychain lost the session behind the portal"
    );

    // The link dies; the portal is gone. Wait until the next scheduled try
    // is further away than the promise, so only hearing the link come back
    // can keep it.
    netns.link(false);
    forwarder.set(PASS);
    let view = until(
        &engine,
        "a backoff longer than the promise",
        Duration::from_secs(90),
        |v| {
            v.next_refresh_at
                .is_some_and(|at| at - chrono::Utc::now() > chrono::Duration::from_std(BACK_WITHIN * 2).unwrap())
        },
    )
    .await;
    assert_eq!(view.refresh_count, 0);
    assert_eq!(
        pg.refresh_calls(),
        0,
        "a refresh reached the provider through the portal or a dead link"
    );

    // The network is back.
    netns.link(true);
    let back = Instant::now();
    let view = until(
        &engine,
        "the session renewed after the link came back",
        BACK_WITHIN,
        |v| v.refresh_count >= 1,
    )
    .await;
    let took = back.elapsed();
    assert_eq!(view.state, Phase::Active);
    assert_eq!(view.session_id, session, "not the same session");
    assert!(view.expires_at.unwrap() > chrono::Utc::now(), "renewed but expired");
    assert_eq!(pg.refresh_calls(), 1, "one refresh request after the link came back");
    println!(
        "netns: renewed {} ms after the link came back (the backoff would have waited until {:?})",
        took.as_millis(),
        view.next_refresh_at
    );
    // The same family: the rotated refresh token works again.
    engine
        .refresh_now()
        .await
        .expect("the rotated refresh token is accepted");
    assert_eq!(pg.refresh_calls(), 2);
}
