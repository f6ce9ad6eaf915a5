//! The server: wires the route modules (FinHub, OpenID Connect, admin)
//! with their guards, and accepts TLS connections, within limits.

use crate::reply::error;
use crate::state::{fingerprint, lock, AppState, RecordedRequest};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The most connections served at once; more wait in the kernel's queue.
pub const MAX_CONNECTIONS: usize = 256;
/// How long a TLS handshake, and a request head, may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's body may take to arrive once its head has: a
/// client that announces a body and sends it slowly (or never) would
/// otherwise hold one of the [`MAX_CONNECTIONS`] slots for as long as it
/// likes.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request body the Playground reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// How long to wait after a failed `accept` (EMFILE and the like).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Record every API request, apply latency, and refuse bad headers.
async fn api_guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    guard(state, request, next, true).await
}

/// Record every OpenID Connect request and apply latency (the FinHub header
/// rules do not apply to it).
async fn oidc_guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    guard(state, request, next, false).await
}

async fn guard(state: Arc<AppState>, request: Request, next: Next, finhub: bool) -> Response {
    let latency = state.latency_ms.load(Ordering::SeqCst);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let path = request.uri().path().to_owned();
    let method = request.method().to_string();
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-") || k.as_str() == "authorization" || k.as_str() == "content-type")
        .map(|(k, v)| {
            let v = v.to_str().unwrap_or("(not text)");
            let shown = if crate::finhub::SECRET_HEADERS.contains(&k.as_str()) {
                format!("present {}", fingerprint(v))
            } else {
                v.to_owned()
            };
            (k.as_str().to_owned(), shown)
        })
        .collect();
    let problems = if finhub {
        crate::finhub::check_headers(&path, request.headers())
    } else {
        Vec::new()
    };
    let response = if let Some(first) = problems.first() {
        error(StatusCode::BAD_REQUEST, "invalid_header", first.clone())
    } else {
        next.run(request).await
    };
    lock(&state.requests).push(RecordedRequest {
        method,
        path,
        headers,
        problems,
        status: response.status().as_u16(),
    });
    response
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see docs/providers.md, \"API\"",
    )
}

/// With a clock offset set, every answer's `Date` is the Playground's
/// (offset) time, as a provider with a skewed clock would send it.
async fn date(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if state.clock_offset_secs.load(Ordering::SeqCst) != 0 {
        let when = chrono::DateTime::from_timestamp(state.now(), 0).unwrap_or_default();
        if let Ok(v) = when.format("%a, %d %b %Y %H:%M:%S GMT").to_string().parse() {
            response.headers_mut().insert("date", v);
        }
    }
    response
}

/// When the Playground keeps its state, write it down after every request
/// and before the answer leaves: a client that holds an answer (a rotated
/// refresh token) finds it known after a restart, however soon that comes.
async fn changed(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if state.keeper.is_some() {
        let state = state.clone();
        let _ = tokio::task::spawn_blocking(move || state.save_or_warn()).await;
    }
    response
}

/// Read the whole body within [`BODY_TIMEOUT`] and [`MAX_BODY_BYTES`]
/// before any handler runs: 408 or 413 otherwise, and the connection closes.
async fn body_in_time(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(_)) => closing(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )),
        Err(_) => closing(error(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
        )),
    }
}

/// `response` with `Connection: close`.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(crate::finhub::router().route_layer(middleware::from_fn_with_state(state.clone(), api_guard)))
        .merge(crate::admin::router().route_layer(middleware::from_fn_with_state(state.clone(), crate::admin::guard)))
        .merge(crate::oidc::router().route_layer(middleware::from_fn_with_state(state.clone(), oidc_guard)))
        .route("/.well-known/jwks.json", get(crate::finhub::jwks))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), date))
        .layer(middleware::from_fn_with_state(state.clone(), changed))
        .layer(middleware::from_fn(body_in_time))
        .with_state(state)
}

/// How a listener stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Close every connection at once (the Playground is gone).
    Hard,
    /// Stop accepting; requests in flight get their answers, then each
    /// connection closes (a primary endpoint going down for failover tests).
    Graceful,
}

/// Accept TLS connections until `stop` fires. Loopback is reachable by every
/// local user, and the Playground runs inside the desktop app: at most
/// [`MAX_CONNECTIONS`] are served at once (more wait in the kernel's queue),
/// a TLS handshake and each request head must arrive within
/// [`HANDSHAKE_TIMEOUT`] (so an idle keep-alive connection closes too), and
/// an accept error backs off instead of spinning. The handle ends when the
/// listener is closed and every connection it accepted has taken the stop
/// in: ended, or (graceful) finishing the request it is answering and
/// reading no other.
pub fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    mut stop: tokio::sync::oneshot::Receiver<Shutdown>,
) -> tokio::task::JoinHandle<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let app = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    // One per connection that has not yet taken a stop in.
    let unheard = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    // Stopping also closes the open (keep-alive) connections, so a stopped
    // listener is really gone for its clients.
    let (closing, closed) = tokio::sync::watch::channel(None::<Shutdown>);
    tokio::spawn(async move {
        let how = loop {
            let slot = tokio::select! {
                s = slots.clone().acquire_owned() => s,
                how = &mut stop => break how.unwrap_or(Shutdown::Hard),
            };
            let Ok(slot) = slot else { break Shutdown::Hard };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                how = &mut stop => break how.unwrap_or(Shutdown::Hard),
            };
            let tcp = match accepted {
                Ok((tcp, _)) => tcp,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // As many as slots, so one is always free here.
            let Ok(heard) = unheard.clone().try_acquire_owned() else {
                continue;
            };
            tokio::spawn(connection(
                acceptor.clone(),
                tcp,
                app.clone(),
                closed.clone(),
                slot,
                heard,
            ));
        };
        drop(listener);
        let _ = closing.send(Some(how));
        // The handle ends when every connection has heard the stop: a
        // primary reported down has no keep-alive connection left that
        // serves a pooled client's next request (seen once in the failover
        // tests: a refresh went through to a primary already reported down).
        // Not when they have all ended: the admin request that takes the
        // primary down is answered on one of them, after this.
        let _ = unheard.acquire_many(MAX_CONNECTIONS as u32).await;
    })
}

/// Serve one connection until it ends or the listener stops.
async fn connection(
    acceptor: tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    app: Router,
    mut closed: tokio::sync::watch::Receiver<Option<Shutdown>>,
    _slot: tokio::sync::OwnedSemaphorePermit,
    unheard: tokio::sync::OwnedSemaphorePermit,
) {
    // A failed handshake (a client that refused our pin, say) ends this
    // connection only.
    let tls = tokio::select! {
        t = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => match t {
            Ok(Ok(tls)) => tls,
            _ => return,
        },
        _ = closed.wait_for(Option::is_some) => return,
    };
    // HTTP/1.1 only, as the ALPN offer says (no h2 in the binaries).
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let graceful = tokio::select! {
        _ = conn.as_mut() => return,
        how = closed.wait_for(Option::is_some) => how.is_ok_and(|h| *h == Some(Shutdown::Graceful)),
    };
    if graceful {
        // From here the connection reads no new request; the one in flight
        // gets its answer.
        conn.as_mut().graceful_shutdown();
        drop(unheard);
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn).await;
    }
}
