//! The HTTPS listener: TLS handshakes with rustls, the caller's identity from its client
//! certificate, then HTTP/1.1 or HTTP/2 (by ALPN) served by the router, with every server
//! resource bounded here, where it is spent (mini-redis's `Listener`):
//!
//! - **Connections**: a [`Semaphore`] of [`Limits::max_connections`] permits; one is taken
//!   *before* each `accept`, so when all are in use new connections wait in the kernel's backlog
//!   and cost no file descriptor, task or TLS state. The permit lives in the connection's task and
//!   goes back when it ends. The *reserve* for operators and health checks is a second listener
//!   (`admin_listen`, served with its own [`Limits`] and so its own permits) that bureaus' traffic
//!   cannot reach or fill; see `config.default.toml`.
//! - **Handshakes**: a client has [`Limits::handshake_timeout`] to finish its TLS handshake.
//! - **Headers**: an HTTP/1.1 client has [`Limits::header_read_timeout`] to send a request's
//!   head (hyper's timer; it starts when the server waits for a head) and at most
//!   [`Limits::max_header_bytes`] of it is buffered; HTTP/2 headers are bounded by the same size.
//! - **Idle connections**: a connection on which no request is in flight (a handler running or a
//!   response body still being sent) for [`Limits::idle_timeout`] is shut down gracefully —
//!   HTTP/1.1 and HTTP/2 alike, including one that never sends a request (or sends its HTTP/2
//!   headers too slowly to ever start one).
//! - **Unread bodies on HTTP/2**: the flow-control windows ([`Limits::http2_window_bytes`]) bound
//!   what a client may send before the server reads it; [`Limits::http2_max_concurrent_streams`]
//!   bounds the requests of one connection.
//! - **TLS reload**: the server configuration is read from a `watch` channel for every new
//!   connection, so a reloaded CRL or certificate applies to the next handshake without a
//!   restart; open connections are then shut down gracefully (their requests finish), so a
//!   client whose certificate was revoked keeps no connection either.
//!
//! Shutdown protocol: when `shutdown` resolves the loop stops accepting and drops the socket; a
//! `watch` flag tells every connection task to shut its connection down gracefully (open
//! requests finish); the loop then waits, up to [`Limits::drain`], for every task to end — it
//! owns them in a `JoinSet` — and aborts those still running.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::{CertificateExpiry, Peer};
use crate::metrics as m;

/// The bounds of one listener. [`Limits::default`] is what `config.default.toml` documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (`limits.max_connections`); further ones wait in the backlog.
    pub max_connections: usize,
    /// Time to finish the TLS handshake (`limits.handshake_timeout_seconds`).
    pub handshake_timeout: Duration,
    /// Time to send an HTTP/1.1 request head (`limits.header_read_timeout_seconds`).
    pub header_read_timeout: Duration,
    /// A connection without a request in flight is closed after this
    /// (`limits.idle_timeout_seconds`).
    pub idle_timeout: Duration,
    /// Largest request head buffered, HTTP/1.1 and HTTP/2 (`limits.max_header_bytes`).
    pub max_header_bytes: usize,
    /// HTTP/2 receive window of a connection and of each stream
    /// (`limits.http2_window_bytes`): what a client may send before the server reads it.
    pub http2_window_bytes: u32,
    /// Requests in flight on one HTTP/2 connection (`limits.http2_max_concurrent_streams`).
    pub http2_max_concurrent_streams: u32,
    /// On shutdown, how long open connections may take to finish their requests.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 768,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            http2_window_bytes: 256 * 1024,
            http2_max_concurrent_streams: 64,
            drain: Duration::from_secs(10),
        }
    }
}

/// hyper refuses a smaller HTTP/1.1 read buffer.
const MIN_HTTP1_BUFFER_BYTES: usize = 8 * 1024;
/// The smallest HTTP/2 window the protocol allows a server to announce usefully.
const MIN_HTTP2_WINDOW_BYTES: u32 = 65_535;

/// Accepts connections until `shutdown` resolves, with [`Limits::default`] and `drain`, and a
/// TLS configuration that never changes (bureau endpoints of the simulator and the demo).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    // The sender is dropped at once: the receiver keeps the value for good.
    let (_, tls) = watch::channel(tls);
    let limits = Limits {
        drain,
        ..Limits::default()
    };
    serve_with(listener, tls, router, shutdown, limits).await;
}

/// Accepts connections until `shutdown` resolves, within `limits`, each handshake with the TLS
/// configuration `tls` holds at that moment; then drains (see the module documentation).
pub async fn serve_with(
    listener: TcpListener,
    tls: watch::Receiver<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()>,
    limits: Limits,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let builder = Arc::new(http_builder(&limits));
    let refusals = Arc::new(RefusalLog::default());
    // Set to true when the listener stops: every connection then shuts down gracefully.
    let (stopping, stop) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Reap finished connection tasks, so the set holds only running ones.
        while connections.try_join_next().is_some() {}
        // The permit first: at the limit, nothing more is accepted until a connection ends.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(message = "accept failed", %error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // This connection's configuration is the current one; a later one closes it gracefully.
        let mut reloads = tls.clone();
        let config = reloads.borrow_and_update().clone();
        let connection = Connection {
            stream,
            remote,
            acceptor: TlsAcceptor::from(config),
            reloads,
            router: router.clone(),
            builder: builder.clone(),
            limits: limits.clone(),
            stop: stop.clone(),
            refusals: refusals.clone(),
            _permit: permit,
        };
        connections.spawn(connection.run());
    }
    drop(listener);
    let _ = stopping.send(true);
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            message = "connections still open after the drain period; closing them",
            open = connections.len()
        );
        connections.shutdown().await;
    }
}

/// The HTTP/1.1 and HTTP/2 connection builder with the header, window and stream limits.
fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HTTP1_BUFFER_BYTES));
    let window = limits.http2_window_bytes.max(MIN_HTTP2_WINDOW_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .initial_connection_window_size(window)
        .initial_stream_window_size(window)
        .max_concurrent_streams(limits.http2_max_concurrent_streams.max(1));
    builder
}

/// One accepted connection, with everything its task needs.
struct Connection {
    stream: TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    /// Changes when the TLS configuration is reloaded: the connection then ends gracefully, so
    /// its client reconnects and is verified again (e.g. against a new CRL).
    reloads: watch::Receiver<Arc<rustls::ServerConfig>>,
    router: Router,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Limits,
    stop: watch::Receiver<bool>,
    refusals: Arc<RefusalLog>,
    /// The connection's place under `max_connections`, given back when the task ends.
    _permit: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(mut self) {
        let remote = self.remote;
        // Answers are small and latency matters more than packet count.
        let _ = self.stream.set_nodelay(true);
        let handshake = tokio::time::timeout(
            self.limits.handshake_timeout,
            self.acceptor.accept(self.stream),
        );
        let tls = tokio::select! {
            handshake = handshake => match handshake {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    self.refusals.refused(remote.ip(), refusal_reason(&error), &error);
                    return;
                }
                Err(_) => {
                    metrics::counter!(m::TLS_HANDSHAKES_REFUSED, "reason" => "timeout").increment(1);
                    tracing::debug!(message = "TLS handshake timed out", %remote);
                    return;
                }
            },
            _ = self.stop.wait_for(|stop| *stop) => return,
        };
        let certificates = tls.get_ref().1.peer_certificates();
        let identity = certificates.and_then(super::tls::peer_identity);
        let expiry = certificates
            .and_then(super::tls::peer_not_after)
            .map(CertificateExpiry);
        let peer = Peer(identity);
        let (in_flight, mut idle) = watch::channel(0usize);
        let in_flight = Arc::new(in_flight);
        let router = self.router;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(peer.clone());
            if let Some(expiry) = expiry {
                request.extensions_mut().insert(expiry);
            }
            let guard = InFlight::start(in_flight.clone());
            let response = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| Tracked {
                    body,
                    _guard: guard,
                }))
            }
        });
        let connection = self
            .builder
            .serve_connection(TokioIo::new(tls), service)
            .into_owned();
        let mut connection = std::pin::pin!(connection);
        let idle_timeout = self.limits.idle_timeout;
        // How long a connection shut down gracefully may still take: an idle one has nothing
        // to finish (an HTTP/2 client that does not answer the GOAWAY's PING gets no longer
        // than a slow header would); one with requests in flight finishes them (bounded by
        // the drain period on shutdown, and otherwise by the router's request timeouts).
        let ended = tokio::select! {
            result = connection.as_mut() => Err(result),
            () = idle_for(&mut idle, idle_timeout) => {
                tracing::debug!(message = "closing an idle connection", %remote);
                Ok(self.limits.header_read_timeout)
            }
            () = reloaded(&mut self.reloads) => {
                tracing::debug!(message = "TLS reloaded; closing a connection gracefully", %remote);
                Ok(self.limits.drain)
            }
            _ = self.stop.wait_for(|stop| *stop) => Ok(self.limits.drain),
        };
        let result = match ended {
            Err(result) => result,
            Ok(grace) => {
                connection.as_mut().graceful_shutdown();
                match tokio::time::timeout(grace, connection).await {
                    Ok(result) => result,
                    // Dropping the connection closes it.
                    Err(_) => Ok(()),
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(message = "connection ended with an error", %remote, error = &*error as &dyn std::error::Error);
        }
    }
}

/// Resolves when the TLS configuration changes (never, for one that cannot change).
async fn reloaded(tls: &mut watch::Receiver<Arc<rustls::ServerConfig>>) {
    if tls.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves once no request has been in flight for `timeout`.
async fn idle_for(in_flight: &mut watch::Receiver<usize>, timeout: Duration) {
    loop {
        if *in_flight.borrow_and_update() == 0 {
            match tokio::time::timeout(timeout, in_flight.changed()).await {
                Err(_) => return,
                Ok(Ok(())) => continue,
                // The service is gone: the connection is ending anyway.
                Ok(Err(_)) => return std::future::pending().await,
            }
        } else if in_flight.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// One request in flight on a connection: from the service call until its response body is
/// sent (or dropped).
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn start(count: Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A response body that keeps its request counted as in flight until it is done.
struct Tracked {
    body: axum::body::Body,
    _guard: InFlight,
}

impl Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Why a handshake was refused, as the `reason` label of [`m::TLS_HANDSHAKES_REFUSED`]:
/// `revoked` (a certificate on a CRL), `certificate` (any other unacceptable certificate),
/// `protocol` (anything else: no common version or cipher, garbage, a reset).
fn refusal_reason(error: &std::io::Error) -> &'static str {
    use rustls::{CertificateError, Error};
    match error.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(Error::InvalidCertificate(CertificateError::Revoked)) => "revoked",
        Some(Error::InvalidCertificate(_)) => "certificate",
        _ => "protocol",
    }
}

/// How long a refusal from one address for one reason stays unlogged after it was logged.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(600);
/// Most (address, reason) pairs remembered; beyond that the oldest are forgotten.
const REFUSAL_LOG_ENTRIES: usize = 1024;

/// Every refused handshake is counted; an unacceptable certificate is logged once per address
/// per [`REFUSAL_LOG_INTERVAL`], with how many were not logged since, so a client retrying in a
/// loop does not flood the log. A revoked certificate is logged once by the TLS verifier (with
/// the identity it names), protocol refusals (scanners, resets) at debug level only.
#[derive(Default)]
struct RefusalLog(Mutex<HashMap<RefusalKey, (Instant, u64)>>);

/// A refusal's address and reason.
type RefusalKey = (IpAddr, &'static str);

impl RefusalLog {
    fn refused(&self, ip: IpAddr, reason: &'static str, error: &std::io::Error) {
        metrics::counter!(m::TLS_HANDSHAKES_REFUSED, "reason" => reason).increment(1);
        if reason == "protocol" || reason == "revoked" {
            // A revoked certificate is logged, once, by the verifier that knows whose it is.
            tracing::debug!(message = "TLS handshake refused", remote = %ip, reason, %error);
            return;
        }
        let suppressed = {
            let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            match seen.get_mut(&(ip, reason)) {
                Some((logged, count)) if now.duration_since(*logged) < REFUSAL_LOG_INTERVAL => {
                    *count += 1;
                    return;
                }
                Some((logged, count)) => {
                    *logged = now;
                    std::mem::take(count)
                }
                None => {
                    if seen.len() >= REFUSAL_LOG_ENTRIES {
                        let oldest = seen.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k);
                        if let Some(oldest) = oldest {
                            seen.remove(&oldest);
                        }
                    }
                    seen.insert((ip, reason), (now, 0));
                    0
                }
            }
        };
        tracing::warn!(
            message = "TLS handshake refused: client certificate not accepted",
            remote = %ip,
            reason,
            not_logged_since_last = suppressed,
            %error
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified_from_the_rustls_error() {
        let revoked = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked),
        );
        assert_eq!(refusal_reason(&revoked), "revoked");
        let unknown = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(refusal_reason(&unknown), "certificate");
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(refusal_reason(&reset), "protocol");
    }

    #[test]
    fn a_retry_storm_is_logged_once() {
        let log = RefusalLog::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let error = std::io::Error::from(std::io::ErrorKind::InvalidData);
        for _ in 0..100 {
            log.refused(ip, "certificate", &error);
        }
        let seen = log.0.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[&(ip, "certificate")].1, 99, "99 refusals not logged");
    }
}
