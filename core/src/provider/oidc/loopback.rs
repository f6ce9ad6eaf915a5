//! The loopback redirect of RFC 8252 section 7.3: a listener on
//! `http://127.0.0.1:{port}/callback` for one sign-in, and the one-shot
//! page that hands the sign-out request to the browser.
//!
//! - It binds to the IPv4 loopback literal, never `localhost` (section 8.3),
//!   before the browser is opened; port 0 takes any free port.
//! - It accepts exactly one valid callback: a request whose `state` matches.
//!   A callback with another `state` (a stale tab, a forged link) is refused
//!   with a page that says so, and the listener keeps waiting.
//! - `error` and `error_description` reach the caller as the provider sent
//!   them (RFC 6749 section 4.1.2.1).
//! - With an `iss` parameter (RFC 9207) it must be the expected issuer.
//! - It ends on the first valid callback, the deadline, or cancellation.
//!
//! Loopback is reachable by every local user, so the listener is built to be
//! flooded: at most [`MAX_CONNECTIONS`] connections are served at once; when
//! all are taken, the oldest one that has sent nothing for
//! [`EVICT_AFTER`] is closed to make room (a browser sends its request at
//! once, so the real callback is never the one closed), and otherwise new
//! connections wait in the kernel's queue. An accept error (no file
//! descriptor left, say) backs off instead of spinning, and dropping the
//! listener stops every task it started.

use super::pkce::constant_time_eq;
use crate::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

/// The path of the redirect URI.
pub const CALLBACK_PATH: &str = "/callback";
/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 32;
/// How long a connection that has not sent a whole request head is safe
/// from being closed to make room for a new one.
pub const EVICT_AFTER: Duration = Duration::from_secs(1);
/// How long to wait after a failed `accept` (EMFILE and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The most a request head may take.
const MAX_HEAD: usize = 16 * 1024;
/// How long one connection may take to send its request head (a browser
/// sends it at once; a local process dripping bytes gives up its slot).
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// What the provider sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub code: String,
}

/// A bound listener, waiting to be told what to expect.
pub struct Loopback {
    listener: TcpListener,
    port: u16,
}

/// One request head, handed from a connection to whoever decides the answer.
struct Incoming {
    target: String,
    respond: oneshot::Sender<Page>,
}

/// An answer: status, HTML and the page's Content-Security-Policy.
struct Page {
    status: u16,
    body: String,
    csp: String,
}

/// The policy of every page but the sign-out form: no script at all.
const STRICT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'";

impl Page {
    fn strict(status: u16, body: String) -> Self {
        Self {
            status,
            body,
            csp: STRICT_CSP.to_owned(),
        }
    }
}

/// Aborts a task when dropped, so a listener whose wait is dropped (a front
/// that gave up) does not keep its port open.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A connection being served.
struct Slot {
    opened: Instant,
    /// Set once the connection has sent a whole request head: until then
    /// (silent, or dripping bytes) it is the first to go when the table is
    /// full.
    headed: Arc<AtomicBool>,
    task: AbortHandle,
}

impl Loopback {
    /// Listen on `127.0.0.1:port` (0 for any free port).
    pub async fn bind(port: u16) -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
            Error::InvalidState(format!(
                "cannot listen for the sign-in callback on 127.0.0.1:{port} ({e}); close what uses that port, or set the profile's redirect_port to 0"
            ))
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("loopback listener: {e}")))?
            .port();
        Ok(Self { listener, port })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:{port}/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// Accept connections into a bounded table and hand their request heads
    /// to `tx`. The returned guard stops it all.
    fn accept_loop(self, tx: mpsc::Sender<Incoming>) -> AbortOnDrop {
        let listener = self.listener;
        AbortOnDrop(tokio::spawn(async move {
            let mut slots: Vec<Slot> = Vec::new();
            loop {
                slots.retain(|s| !s.task.is_finished());
                if slots.len() >= MAX_CONNECTIONS {
                    let now = Instant::now();
                    let evictable = slots
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| !s.headed.load(Ordering::SeqCst))
                        .min_by_key(|(_, s)| s.opened)
                        .map(|(i, s)| (i, s.opened + EVICT_AFTER));
                    match evictable {
                        Some((i, at)) if at <= now => {
                            slots.swap_remove(i).task.abort();
                        }
                        // Wait until the oldest silent one may go, or for
                        // any to finish; new connections wait in the queue.
                        Some((_, at)) => tokio::time::sleep_until(at.min(now + Duration::from_millis(50))).await,
                        None => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                    continue;
                }
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors (or worse): tokio keeps the
                        // listener readable, so retrying at once would spin.
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let headed = Arc::new(AtomicBool::new(false));
                let task = tokio::spawn(serve(stream, tx.clone(), headed.clone()));
                slots.push(Slot {
                    opened: Instant::now(),
                    headed,
                    task: task.abort_handle(),
                });
            }
        }))
    }

    /// Wait for the one callback with `state`.
    pub async fn wait(
        self,
        state: &str,
        issuer: &str,
        require_iss: bool,
        timeout: Duration,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<Callback, Error> {
        let (tx, mut rx) = mpsc::channel::<Incoming>(8);
        let accept = self.accept_loop(tx);
        let deadline = Instant::now() + timeout;
        let result = loop {
            tokio::select! {
                incoming = rx.recv() => {
                    let Some(incoming) = incoming else {
                        break Err(Error::Internal("the callback listener stopped".into()));
                    };
                    let (decision, status, page) = decide(&incoming.target, state, issuer, require_iss);
                    let _ = incoming.respond.send(Page::strict(status, page));
                    if let Some(done) = decision {
                        break done;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    break Err(Error::SignInTimedOut(timeout.as_secs()));
                }
                changed = cancel.changed() => {
                    if changed.is_err() || *cancel.borrow() {
                        break Err(Error::SignInCancelled);
                    }
                }
            }
        };
        // Give the last page a moment to be written before the listener goes.
        tokio::task::yield_now().await;
        drop(accept);
        result
    }

    /// Serve `page` (with its policy `csp`) once at `path` (a GET), then
    /// stop; stop anyway after `timeout`. The task's result says whether the
    /// page was fetched.
    pub fn serve_once(self, path: String, page: String, csp: String, timeout: Duration) -> JoinHandle<bool> {
        tokio::spawn(async move {
            let (tx, mut rx) = mpsc::channel::<Incoming>(8);
            let _accept = self.accept_loop(tx);
            let deadline = Instant::now() + timeout;
            loop {
                let incoming = tokio::select! {
                    i = rx.recv() => i,
                    _ = tokio::time::sleep_until(deadline) => return false,
                };
                let Some(incoming) = incoming else { return false };
                let target = incoming.target.split('?').next().unwrap_or_default();
                if constant_time_eq(target, &path) {
                    let _ = incoming.respond.send(Page {
                        status: 200,
                        body: page,
                        csp,
                    });
                    // Let the page be written before the listener goes.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return true;
                }
                let _ = incoming.respond.send(Page::strict(
                    404,
                    page_html("Not found", "This address is not one Session Manager serves."),
                ));
            }
        })
    }
}

/// What a request means: `Some` ends the wait. Also the page to answer with.
fn decide(
    target: &str,
    state: &str,
    issuer: &str,
    require_iss: bool,
) -> (Option<Result<Callback, Error>>, u16, String) {
    let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else {
        return (
            None,
            400,
            page_html(
                "Not a sign-in response",
                "This address is not one Session Manager understands.",
            ),
        );
    };
    if url.path() != CALLBACK_PATH {
        return (
            None,
            404,
            page_html(
                "Not found",
                "Session Manager only listens for the sign-in response here.",
            ),
        );
    }
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let stale = page_html(
        "This sign-in response is not the one Session Manager is waiting for",
        "It may come from an older browser tab, or from a link someone else made. Nothing was done with it. Start the sign-in again from Session Manager if you need to.",
    );
    match param("state") {
        Some(s) if constant_time_eq(&s, state) => {}
        _ => return (None, 400, stale),
    }
    match param("iss") {
        Some(iss) if iss != issuer => {
            let e = Error::Protocol(format!(
                "the sign-in response names issuer '{iss}', not '{issuer}' (RFC 9207); it was refused"
            ));
            return (Some(Err(e)), 400, page_html("Sign-in refused", "The response came from another identity provider than the one this profile uses. Return to Session Manager."));
        }
        None if require_iss => {
            let e = Error::Protocol(
                "the provider promises an iss parameter in sign-in responses (RFC 9207) but sent none".into(),
            );
            return (
                Some(Err(e)),
                400,
                page_html(
                    "Sign-in refused",
                    "The response lacks the issuer the provider promised. Return to Session Manager.",
                ),
            );
        }
        _ => {}
    }
    if let Some(error) = param("error").map(|e| crate::net::text::printable(&e, 100)) {
        let description = param("error_description").map(|d| crate::net::text::printable(&d, 300));
        let text = match &description {
            Some(d) => format!(
                "The identity provider said: {error}: {d}. You can close this tab and return to Session Manager."
            ),
            None => {
                format!("The identity provider said: {error}. You can close this tab and return to Session Manager.")
            }
        };
        let e = Error::Authorization {
            error: error.chars().take(100).collect(),
            description: description.map(|d| d.chars().take(300).collect()),
        };
        return (Some(Err(e)), 200, page_html("Sign-in was not completed", &text));
    }
    match param("code") {
        Some(code) if !code.is_empty() => (
            Some(Ok(Callback { code })),
            200,
            page_html(
                "You are signed in",
                "You can close this tab and return to Session Manager.",
            ),
        ),
        _ => (
            Some(Err(Error::Protocol(
                "the sign-in response has neither a code nor an error".into(),
            ))),
            400,
            page_html(
                "Sign-in failed",
                "The identity provider's response had no authorization code. Return to Session Manager and try again.",
            ),
        ),
    }
}

/// Read one request head, hand it over, write the answer.
async fn serve(mut stream: TcpStream, tx: mpsc::Sender<Incoming>, headed: Arc<AtomicBool>) {
    let mut head = Vec::with_capacity(1024);
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 2048];
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if head.len() + n > MAX_HEAD {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                // A whole head: this one is being served, not evicted.
                headed.store(true, Ordering::SeqCst);
                return Some(());
            }
        }
    })
    .await;
    if !matches!(read, Ok(Some(()))) {
        return;
    }
    let text = String::from_utf8_lossy(&head);
    let mut parts = text.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let page = if method != "GET" || !target.starts_with('/') {
        Page::strict(
            405,
            page_html(
                "Not allowed",
                "Session Manager only accepts the browser's requests here.",
            ),
        )
    } else {
        let (respond, answer) = oneshot::channel();
        if tx
            .send(Incoming {
                target: target.to_owned(),
                respond,
            })
            .await
            .is_err()
        {
            return;
        }
        match answer.await {
            Ok(a) => a,
            Err(_) => return,
        }
    };
    let reason = match page.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let response = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: {}\r\nConnection: close\r\n\r\n{}",
        page.status,
        page.body.len(),
        page.csp,
        page.body
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Escape text for HTML.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A small page with a title and one paragraph.
pub fn page_html(title: &str, text: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Session Manager: {t}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}</style></head>\
         <body><h1>{t}</h1><p>{x}</p></body></html>",
        t = html_escape(title),
        x = html_escape(text)
    )
}

/// A page that POSTs `fields` to `action` as soon as it loads (with a button
/// for a browser without scripts), and the policy that lets exactly its one
/// script run. OpenID Connect RP-Initiated Logout 1.0 section 2 lets the
/// logout request be a POST, which keeps the ID token out of URLs: out of
/// process command lines, browser history and access logs.
pub fn post_page(title: &str, text: &str, action: &str, fields: &[(&str, &str)]) -> (String, String) {
    form_page(title, text, action, "post", fields)
}

/// As [`post_page`], with a form GET: the fields go into the provider's
/// URL (and the browser's history), never into a command line. The
/// action's own query parameters are kept as fields (a GET form replaces
/// the action's query).
pub fn get_page(title: &str, text: &str, action: &reqwest::Url, fields: &[(&str, &str)]) -> (String, String) {
    let mut bare = action.clone();
    bare.set_query(None);
    let own: Vec<(String, String)> = action.query_pairs().into_owned().collect();
    let mut all: Vec<(&str, &str)> = own.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(fields);
    form_page(title, text, bare.as_str(), "get", &all)
}

fn form_page(title: &str, text: &str, action: &str, method: &str, fields: &[(&str, &str)]) -> (String, String) {
    let nonce = super::pkce::random_token();
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Session Manager: {t}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em}}</style></head>\
         <body><h1>{t}</h1><p>{x}</p><form id=\"f\" method=\"{method}\" action=\"{a}\">{inputs}<button>Continue</button></form>\
         <script nonce=\"{nonce}\">document.getElementById('f').submit()</script></body></html>",
        t = html_escape(title),
        x = html_escape(text),
        a = html_escape(action),
    );
    let csp = format!("default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'; form-action https:");
    (body, csp)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(port: u16, target: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        (status, out)
    }

    fn port_of(lb: &Loopback) -> u16 {
        lb.port
    }

    #[tokio::test]
    async fn wrong_state_is_refused_and_the_right_one_accepted() {
        let lb = Loopback::bind(0).await.unwrap();
        let port = port_of(&lb);
        assert_eq!(lb.redirect_uri(), format!("http://127.0.0.1:{port}/callback"));
        let (_c, cancel) = watch::channel(false);
        let wait = tokio::spawn(lb.wait("good-state", "https://idp", false, Duration::from_secs(10), cancel));
        let (status, body) = get(port, "/callback?code=attacker&state=forged").await;
        assert_eq!(status, 400);
        assert!(body.contains("not the one Session Manager is waiting for"), "{body}");
        let (status, _) = get(port, "/favicon.ico").await;
        assert_eq!(status, 404);
        let (status, body) = get(port, "/callback?code=the-code&state=good-state").await;
        assert_eq!(status, 200);
        assert!(body.contains("return to Session Manager"));
        assert_eq!(
            wait.await.unwrap().unwrap(),
            Callback {
                code: "the-code".into()
            }
        );
        // Exactly one: the listener is gone.
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    }

    /// Security review 2 (finding 4): connections that each sent one byte
    /// of a head and then nothing fill the table; the browser's callback
    /// still gets through (the oldest incomplete one is closed for it).
    #[tokio::test]
    async fn connections_dripping_a_partial_head_do_not_keep_the_callback_out() {
        let lb = Loopback::bind(0).await.unwrap();
        let port = port_of(&lb);
        let (_c, cancel) = watch::channel(false);
        let wait = tokio::spawn(lb.wait("s", "https://idp", false, Duration::from_secs(30), cancel));
        let mut junk = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            s.write_all(b"G").await.unwrap();
            junk.push(s);
        }
        // Let the listener take all of them, and the eviction age pass.
        tokio::time::sleep(EVICT_AFTER + Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        // Within a second: the junk would have kept it out until their
        // head timeout (READ_TIMEOUT, about 2 s from here).
        let (status, _) = tokio::time::timeout(Duration::from_secs(1), get(port, "/callback?code=c&state=s"))
            .await
            .expect("the callback waited behind the junk connections");
        assert_eq!(status, 200);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(wait.await.unwrap().unwrap(), Callback { code: "c".into() });
    }

    #[tokio::test]
    async fn provider_errors_reach_the_caller_escaped_in_the_page() {
        let lb = Loopback::bind(0).await.unwrap();
        let port = port_of(&lb);
        let (_c, cancel) = watch::channel(false);
        let wait = tokio::spawn(lb.wait("s", "https://idp", false, Duration::from_secs(10), cancel));
        let (_, body) = get(
            port,
            "/callback?error=access_denied&error_description=%3Cb%3Enope%3C%2Fb%3E&state=s",
        )
        .await;
        assert!(body.contains("&lt;b&gt;nope"), "{body}");
        match wait.await.unwrap() {
            Err(Error::Authorization { error, description }) => {
                assert_eq!(error, "access_denied");
                assert_eq!(description.as_deref(), Some("<b>nope</b>"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn wrong_issuer_is_a_mix_up() {
        let lb = Loopback::bind(0).await.unwrap();
        let port = port_of(&lb);
        let (_c, cancel) = watch::channel(false);
        let wait = tokio::spawn(lb.wait("s", "https://idp", false, Duration::from_secs(10), cancel));
        get(port, "/callback?code=c&state=s&iss=https%3A%2F%2Fevil").await;
        assert!(matches!(wait.await.unwrap(), Err(Error::Protocol(m)) if m.contains("RFC 9207")));
    }

    #[tokio::test]
    async fn a_dropped_wait_closes_the_port() {
        let lb = Loopback::bind(0).await.unwrap();
        let port = port_of(&lb);
        let (_c, cancel) = watch::channel(false);
        let wait = tokio::spawn(lb.wait("s", "i", false, Duration::from_secs(30), cancel));
        // The front gives up (a select!, a timeout around the sign-in).
        wait.abort();
        let _ = wait.await;
        tokio::task::yield_now().await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            assert!(Instant::now() < deadline, "the listener outlived its wait");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_page_is_served_once_at_its_path() {
        let lb = Loopback::bind(0).await.unwrap();
        let port = port_of(&lb);
        let (page, csp) = post_page("t", "x", "https://idp/end", &[("id_token_hint", "a\"b<c")]);
        let served = lb.serve_once("/logout/abc".into(), page, csp, Duration::from_secs(10));
        let (status, _) = get(port, "/logout/guess").await;
        assert_eq!(status, 404);
        let (status, body) = get(port, "/logout/abc").await;
        assert_eq!(status, 200);
        assert!(body.contains("value=\"a&quot;b&lt;c\""), "{body}");
        assert!(
            body.contains("script-src 'nonce-"),
            "the page's own policy is sent: {body}"
        );
        assert!(served.await.unwrap());
        assert!(
            TcpStream::connect(("127.0.0.1", port)).await.is_err(),
            "served once only"
        );
    }

    #[tokio::test]
    async fn silent_connections_do_not_keep_the_callback_out() {
        let lb = Loopback::bind(0).await.unwrap();
        let port = port_of(&lb);
        let (_c, cancel) = watch::channel(false);
        let wait = tokio::spawn(lb.wait("s", "i", false, Duration::from_secs(30), cancel));
        // More silent connections than the listener serves at once, held open.
        let mut junk = Vec::new();
        for _ in 0..MAX_CONNECTIONS * 3 {
            junk.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        }
        tokio::time::sleep(EVICT_AFTER + Duration::from_millis(200)).await;
        // Within the sign-in's 30 s, whatever the junk does.
        let (status, _) = get(port, "/callback?code=c&state=s").await;
        assert_eq!(status, 200);
        assert_eq!(wait.await.unwrap().unwrap().code, "c");
    }

    #[tokio::test]
    async fn cancel_and_timeout_end_the_wait() {
        let lb = Loopback::bind(0).await.unwrap();
        let (c, cancel) = watch::channel(false);
        let wait = tokio::spawn(lb.wait("s", "i", false, Duration::from_secs(30), cancel));
        c.send(true).unwrap();
        assert!(matches!(wait.await.unwrap(), Err(Error::SignInCancelled)));
        let lb = Loopback::bind(0).await.unwrap();
        let (_c, cancel) = watch::channel(false);
        let r = lb.wait("s", "i", false, Duration::from_millis(50), cancel).await;
        assert!(matches!(r, Err(Error::SignInTimedOut(_))));
    }
}
