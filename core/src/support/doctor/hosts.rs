//! The host checks: every host a profile talks to, its discovery document,
//! name lookup and TCP connection; the TLS handshake itself is in [`handshake`](super::handshake).

use super::handshake::{check_clock, check_tls};
use super::*;

/// Every host a profile talks to, once: its base URL, backups, key set,
/// discovery, logout and API hosts.
pub(super) fn hosts_of(profile: &Profile) -> Vec<(String, u16)> {
    let mut urls: Vec<&reqwest::Url> = vec![&profile.base_url];
    urls.extend(&profile.backup_urls);
    urls.extend(&profile.jwks_url);
    if let Some(o) = &profile.oidc {
        urls.push(&o.discovery_url);
        urls.extend(&o.logout_url);
        urls.extend(&o.api_base_url);
    }
    unique_hosts(urls)
}

/// The hosts of `urls`, in order, once each.
pub(super) fn unique_hosts<'a>(urls: impl IntoIterator<Item = &'a reqwest::Url>) -> Vec<(String, u16)> {
    let mut hosts: Vec<(String, u16)> = Vec::new();
    for h in urls.into_iter().filter_map(host_port) {
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
}

pub(super) async fn check_profile(profile: &Profile) -> Vec<Check> {
    let mut checks = Vec::new();
    let mut failed_hosts = Vec::new();
    let hosts = hosts_of(profile);
    for (host, port) in &hosts {
        let host_checks = check_host(profile, host, *port).await;
        if host_checks.iter().any(|c| c.status == Status::Failed) {
            failed_hosts.push((host.clone(), *port));
        }
        checks.extend(host_checks);
    }
    let reachable = |url: &reqwest::Url| host_port(url).is_some_and(|h| !failed_hosts.contains(&h));
    if let Some(oidc) = &profile.oidc {
        if reachable(&oidc.discovery_url) {
            // The endpoints discovery names may live on hosts the profile
            // does not (a token service, a device endpoint): check those too.
            let (found, endpoints) = check_discovery(profile, oidc).await;
            checks.extend(found);
            for (host, port) in endpoints {
                if !hosts.contains(&(host.clone(), port)) {
                    checks.extend(check_host(profile, &host, port).await);
                }
            }
        }
    }
    if reachable(&profile.base_url) {
        checks.push(check_clock(profile).await);
    }
    checks
}

pub(super) fn host_port(url: &reqwest::Url) -> Option<(String, u16)> {
    let host = url.host_str()?.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), url.port_or_known_default()?))
}

/// Fetch the discovery document as the engine does (pinned, capped, the
/// issuer compared exactly); returns the verdict and the hosts of the
/// endpoints it names, in the order it names them, once each.
pub(super) async fn check_discovery(
    profile: &Profile,
    oidc: &crate::profile::OidcSettings,
) -> (Vec<Check>, Vec<(String, u16)>) {
    let what = format!("{} discovery", profile.name);
    let client = match profile.pinned_client() {
        Ok(c) => c,
        Err(e) => {
            return (
                vec![Check::failed(what, e.to_string(), "fix the profile's ca_file")],
                vec![],
            )
        }
    };
    let cache = crate::provider::oidc::discovery::DiscoveryCache::new(
        client,
        oidc.discovery_url.clone(),
        profile.issuer.clone(),
    );
    let d = match cache.get().await {
        Ok(d) => d,
        Err(e) => {
            return (
                vec![Check::failed(
                    what,
                    e.to_string(),
                    "check the profile's issuer and discovery_url against the provider's metadata",
                )],
                vec![],
            )
        }
    };
    let hosts = unique_hosts(
        [
            Some(&d.authorization_endpoint),
            Some(&d.token_endpoint),
            Some(&d.jwks_uri),
            d.userinfo_endpoint.as_ref(),
            d.revocation_endpoint.as_ref(),
            d.end_session_endpoint.as_ref(),
            d.device_authorization_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten(),
    );
    let named: Vec<String> = hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect();
    let detail = format!("issuer {}; endpoints on {}", d.issuer, named.join(", "));
    let mut checks = vec![Check::ok(what, detail)];
    if let Some(w) = unrevocable(profile, oidc, d.revocation_endpoint.is_some()) {
        checks.push(w);
    }
    (checks, hosts)
}

/// A warning when sign-out cannot end this device's refresh token: the
/// provider has no revocation endpoint, the profile no logout URL, and it
/// asks for an offline token, which outlives the provider's session.
pub(super) fn unrevocable(profile: &Profile, oidc: &crate::profile::OidcSettings, revocation: bool) -> Option<Check> {
    let offline = oidc.scopes.iter().any(|s| s == "offline_access");
    (!revocation && oidc.logout_url.is_none() && offline).then(|| {
        Check::warning(
            format!("{} sign-out", profile.name),
            "the provider offers no way to revoke this device's refresh token (no revocation_endpoint): \
             after sign-out it stays valid until it expires",
            "remove offline_access from the profile's scopes if a refresh token that ends with the \
             provider's session is enough, or ask the provider for a revocation endpoint",
        )
    })
}

/// DNS, TCP, then TLS with the profile's verifier; stops at the first step
/// that fails.
pub(super) async fn check_host(profile: &Profile, host: &str, port: u16) -> Vec<Check> {
    let label = |step: &str| format!("{} {host}:{port} {step}", profile.name);
    let mut checks = Vec::new();
    let addrs: Vec<std::net::SocketAddr> =
        match tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => {
                checks.push(Check::failed(
                    label("dns"),
                    format!("{host} does not resolve: {e}"),
                    "check the host name in the profile, and this machine's DNS (resolvectl status; /etc/resolv.conf)",
                ));
                return checks;
            }
            Err(_) => {
                checks.push(Check::failed(
                    label("dns"),
                    format!("no answer for {host} within {} s", DNS_TIMEOUT.as_secs()),
                    "check this machine's DNS servers (resolvectl status; /etc/resolv.conf)",
                ));
                return checks;
            }
        };
    let shown: Vec<String> = addrs.iter().take(4).map(|a| a.ip().to_string()).collect();
    checks.push(Check::ok(label("dns"), shown.join(", ")));
    let mut last_error = String::from("no address");
    let mut stream = None;
    for addr in addrs.iter().take(3) {
        match tokio::time::timeout(TCP_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some((s, *addr));
                break;
            }
            Ok(Err(e)) => last_error = format!("{addr}: {e}"),
            Err(_) => last_error = format!("{addr}: no answer within {} s", TCP_TIMEOUT.as_secs()),
        }
    }
    let Some((stream, addr)) = stream else {
        checks.push(Check::failed(
            label("tcp"),
            format!("cannot connect: {last_error}"),
            "check that the provider is up and that no firewall or proxy blocks this port",
        ));
        return checks;
    };
    checks.push(Check::ok(label("tcp"), format!("connected to {addr}")));
    checks.push(check_tls(profile, host, stream, label("tls")).await);
    checks
}
