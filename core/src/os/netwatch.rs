//! Hearing the network come back, so that a session waiting out a backoff
//! after "offline" renews at once instead of when its timer says.
//!
//! On Linux: a `NETLINK_ROUTE` socket subscribed to link, address and route
//! changes of this process's network namespace, read by a thread of its own
//! that blocks in `recv` and wakes only when the kernel says something.
//! Only news that can mean "reachable again" counts: a link that is up and
//! running, an address or a route added. A burst of such news (a link
//! coming up brings its route and addresses a few milliseconds apart) is
//! one change: the thread waits for `SETTLE` of quiet (at most
//! `SETTLE_MAX`) before it tells subscribers, so the retry it causes finds
//! the route in place.
//!
//! The messages carry nothing the engine trusts: a change only moves the
//! next renewal attempt of a session that is already retrying to now (see
//! `Engine::network_changed`), so a flood of them costs attempts bounded by
//! the settling, and no session is ended by one. Elsewhere (macOS, Windows,
//! a sandbox without netlink) there is no receiver and the backoff timer
//! alone decides; the platforms' reachability APIs are not wired up yet.

use tokio::sync::watch;

/// A receiver whose value changes each time the network may have come back,
/// or `None` where this cannot be heard.
pub fn changes() -> Option<watch::Receiver<u64>> {
    imp::changes()
}

/// Whether a netlink message (type and flags of a link) says the network may
/// be usable again.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn is_good_news(kind: u16, link_flags: Option<u32>) -> bool {
    const RTM_NEWLINK: u16 = 16;
    const RTM_NEWADDR: u16 = 20;
    const RTM_NEWROUTE: u16 = 24;
    const IFF_UP: u32 = 0x1;
    const IFF_RUNNING: u32 = 0x40;
    match kind {
        RTM_NEWLINK => link_flags.is_some_and(|f| f & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING),
        RTM_NEWADDR | RTM_NEWROUTE => true,
        _ => false,
    }
}

/// Whether a datagram from the route socket holds good news: it is a
/// sequence of `nlmsghdr`s (16 bytes: length, type, flags, seq, pid), a
/// link's `ifinfomsg` carrying its flags at bytes 8..12 of its payload.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn datagram_has_good_news(mut buf: &[u8]) -> bool {
    const HEADER: usize = 16;
    while buf.len() >= HEADER {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        if len < HEADER || len > buf.len() {
            return false;
        }
        let payload = &buf[HEADER..len];
        let flags = payload.get(8..12).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
        if is_good_news(kind, flags) {
            return true;
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        buf = buf.get(next..).unwrap_or_default();
    }
    false
}

#[cfg(target_os = "linux")]
mod imp {
    use rustix::net::netlink::SocketAddrNetlink;
    use rustix::net::sockopt::{set_socket_timeout, Timeout};
    use rustix::net::{bind, recv, socket_with, AddressFamily, RecvFlags, SocketFlags, SocketType};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};
    use tokio::sync::watch;

    const RTMGRP_LINK: u32 = 0x1;
    const RTMGRP_IPV4_IFADDR: u32 = 0x10;
    const RTMGRP_IPV4_ROUTE: u32 = 0x40;
    const RTMGRP_IPV6_IFADDR: u32 = 0x100;
    const RTMGRP_IPV6_ROUTE: u32 = 0x400;
    /// Quiet that ends a burst of news.
    const SETTLE: Duration = Duration::from_millis(150);
    /// The longest a burst delays its one notice.
    const SETTLE_MAX: Duration = Duration::from_millis(600);

    static CHANGES: OnceLock<Option<watch::Sender<u64>>> = OnceLock::new();

    pub fn changes() -> Option<watch::Receiver<u64>> {
        CHANGES.get_or_init(listen).as_ref().map(|tx| tx.subscribe())
    }

    fn listen() -> Option<watch::Sender<u64>> {
        // Protocol `None` is NETLINK_ROUTE (0).
        let fd = socket_with(AddressFamily::NETLINK, SocketType::RAW, SocketFlags::CLOEXEC, None).ok()?;
        let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE;
        bind(&fd, &SocketAddrNetlink::new(0, groups)).ok()?;
        let (tx, _) = watch::channel(0u64);
        let counter = tx.clone();
        std::thread::Builder::new()
            .name("network-changes".into())
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                // Blocks until the kernel says something, then gathers the
                // burst. Ends only if the socket fails.
                loop {
                    let _ = set_socket_timeout(&fd, Timeout::Recv, None);
                    match recv(&fd, &mut buf[..], RecvFlags::empty()) {
                        Ok((n, _)) if super::datagram_has_good_news(&buf[..n]) => {}
                        Ok(_) => continue,
                        // ENOBUFS: news was lost because we were slow; it
                        // may have been good.
                        Err(rustix::io::Errno::NOBUFS) | Err(rustix::io::Errno::INTR) => {}
                        Err(_) => return,
                    }
                    let started = Instant::now();
                    let _ = set_socket_timeout(&fd, Timeout::Recv, Some(SETTLE));
                    while started.elapsed() < SETTLE_MAX {
                        match recv(&fd, &mut buf[..], RecvFlags::empty()) {
                            Ok(_) | Err(rustix::io::Errno::NOBUFS) | Err(rustix::io::Errno::INTR) => {}
                            Err(_) => break,
                        }
                    }
                    counter.send_modify(|n| *n = n.wrapping_add(1));
                }
            })
            .ok()?;
        Some(tx)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use tokio::sync::watch;

    pub fn changes() -> Option<watch::Receiver<u64>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, flags: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&32u32.to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        // ifinfomsg: family, pad, type, index, then the flags.
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&[0; 4]);
        m
    }

    #[test]
    fn only_a_running_link_or_a_new_address_or_route_is_good_news() {
        assert!(datagram_has_good_news(&message(16, 0x41)));
        assert!(!datagram_has_good_news(&message(16, 0x1)), "up but not running");
        assert!(!datagram_has_good_news(&message(17, 0x41)), "a link deleted");
        assert!(datagram_has_good_news(&message(20, 0)));
        assert!(!datagram_has_good_news(&message(21, 0)), "an address deleted");
        assert!(datagram_has_good_news(&message(24, 0)));
        assert!(!datagram_has_good_news(&message(25, 0)), "a route deleted");
        // The good one second in a datagram of two.
        let mut two = message(25, 0);
        two.extend(message(24, 0));
        assert!(datagram_has_good_news(&two));
    }

    #[test]
    fn a_malformed_datagram_is_no_news_and_no_panic() {
        assert!(!datagram_has_good_news(&[]));
        assert!(!datagram_has_good_news(&[0xff; 15]));
        let mut short = message(16, 0x41);
        short[0..4].copy_from_slice(&8u32.to_ne_bytes());
        assert!(!datagram_has_good_news(&short), "a length below the header");
        let mut long = message(24, 0);
        long[0..4].copy_from_slice(&4096u32.to_ne_bytes());
        assert!(!datagram_has_good_news(&long), "a length past the datagram");
        // A route message with no payload still counts; a link one does not.
        let mut bare = message(16, 0x41);
        bare[0..4].copy_from_slice(&16u32.to_ne_bytes());
        assert!(!datagram_has_good_news(&bare[..16]));
    }
}
