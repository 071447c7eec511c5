//! One connection, from the TLS handshake to its close: the deadlines that bound each phase,
//! what every response gets on its way out, and how the connection ends when the server drains.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::deadline::DeadlineIo;
use super::drain::{self, Phase};
use super::routes::Routes;
use super::timeouts::Cut;
use super::ServeContext;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A transport a connection is served over (TLS or plain TCP).
trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Transport for T {}

/// HTTP/2 connections are probed with PINGs at this interval so dead peers are noticed.
const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Once the server has stopped accepting, a connection that has not sent its first request gets
/// this long to send it before it is closed. Its client connected before the listener closed
/// and normally sends the request at once; one that sends nothing (a pool's spare connection)
/// must not hold the exit until its header deadline.
const FIRST_REQUEST_WHILE_CLOSING: Duration = Duration::from_secs(1);
/// After an idle HTTP/2 connection is sent GOAWAY, a request that crossed it on the wire gets
/// this long to be answered before the connection is dropped; our handlers answer in
/// milliseconds, so this only bounds a peer that stops reading.
const H2_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub(super) async fn serve_tls(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    routes: Routes,
    context: ServeContext,
) {
    let _ = tcp.set_nodelay(true);
    let handshake = tokio::time::timeout(context.deadlines.handshake, acceptor.accept(tcp));
    let tls = match handshake.await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let reason = handshake_failure(&e);
            context.metrics.tls_handshake_failed(reason);
            tracing::debug!(%peer, error = %e, reason, "TLS handshake failed");
            return;
        }
        Err(_) => {
            context.cut(Cut::Handshake);
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    // The protocol follows ALPN alone: HTTP/2 over TLS must be negotiated that way (RFC 9113
    // §3.2), and sniffing the first bytes instead would leave a client that negotiated h2 and
    // then sent nothing waiting in the sniffer, outside every deadline.
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    serve_http(tls, h2, peer, routes, context).await;
}

/// Plain HTTP/1.1 (the admin listener).
pub(super) async fn serve_plain(
    tcp: TcpStream,
    peer: SocketAddr,
    routes: Routes,
    context: ServeContext,
) {
    let _ = tcp.set_nodelay(true);
    serve_http(tcp, false, peer, routes, context).await;
}

/// Why a handshake failed, as a metrics label.
fn handshake_failure(error: &std::io::Error) -> &'static str {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::NoCertificatesPresented | rustls::Error::InvalidCertificate(_)) => {
            "client_certificate"
        }
        Some(_) => "protocol",
        None => "io",
    }
}

async fn serve_http(
    io: impl Transport,
    h2: bool,
    peer: SocketAddr,
    routes: Routes,
    context: ServeContext,
) {
    let requests = Arc::new(watch::Sender::new(Requests::default()));
    let service = ConnectionService {
        routes,
        context: context.clone(),
        requests: requests.clone(),
    };
    let (deadlines, record) = (context.deadlines, context.cut_recorder());
    let result = if h2 {
        let io = DeadlineIo::http2(io, deadlines, record);
        serve_h2(io, service, &requests, &context).await
    } else {
        let io = DeadlineIo::http1(io, deadlines, record);
        serve_http1(io, service, &requests, &context).await
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// The requests of one connection.
#[derive(Debug, Default, Clone, Copy)]
struct Requests {
    /// Begun (their head read) so far.
    started: u64,
    /// Being handled now.
    in_flight: usize,
}

/// Counts one request of a connection in flight for as long as it lives.
struct InFlight(Arc<watch::Sender<Requests>>);

impl InFlight {
    fn enter(requests: Arc<watch::Sender<Requests>>) -> Self {
        count(&requests, |r| {
            r.started += 1;
            r.in_flight += 1;
        });
        Self(requests)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        count(&self.0, |r| r.in_flight = r.in_flight.saturating_sub(1));
    }
}

/// Applies `change` to a connection's request counts, waking its watchers only if it has any. A
/// wake-up locks each of the eight mutexes behind tokio's `watch`, twice a request, and an
/// HTTP/1.1 connection is watched only once it drains; a watcher that subscribes later reads the
/// counts as they are. No subscription falls between the test and the write: HTTP/2's watchdog
/// subscribes before the first request, and HTTP/1.1's drain from the task that runs them.
fn count(requests: &watch::Sender<Requests>, change: impl FnOnce(&mut Requests)) {
    let watched = requests.receiver_count() > 0;
    requests.send_if_modified(|r| {
        change(r);
        watched
    });
}

/// The routes as hyper calls them on one connection, with every request counted (for the
/// connection and for the drain) and every response finished by [`finish_response`].
#[derive(Clone)]
struct ConnectionService {
    routes: Routes,
    context: ServeContext,
    requests: Arc<watch::Sender<Requests>>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let version = request.version();
        let in_flight = InFlight::enter(self.requests.clone());
        let counted = self.context.drain.request();
        let answer = self.routes.respond(request.map(Body::new));
        let context = self.context.clone();
        Box::pin(async move {
            let mut response = answer.await;
            finish_response(&mut response, version, &context);
            counted.answered();
            drop(in_flight);
            Ok(response)
        })
    }
}

/// `Connection: close` on an HTTP/1.x response when the connection cannot or should not carry
/// another request: after a 408 or 413 (the rest of the refused body may still be on its way,
/// and would be read as the next request) and while the server drains (see [`super::drain`]).
/// The admission routes mark their own refusals too; this holds it for every 408 and 413,
/// whatever produced it (the body limit's 413 on a chunked body, say). HTTP/2 forbids the
/// header; there a refused stream is reset and a drain sends GOAWAY.
fn finish_response(response: &mut Response<Body>, version: Version, context: &ServeContext) {
    let refused = matches!(
        response.status(),
        StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
    );
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        // Only the body-read deadline answers 408.
        context.cut(Cut::Body);
    }
    let draining = context.drain.phase() != Phase::Serving;
    if version < Version::HTTP_2 && (refused || draining) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

async fn serve_http1(
    io: impl Transport,
    service: ConnectionService,
    requests: &watch::Sender<Requests>,
    context: &ServeContext,
) -> Result<(), BoxError> {
    // hyper's header timer is off: it also runs while a connection sits idle, so it could only
    // have been a backstop set past the idle timeout, and it moved a timer in the runtime's
    // shared timer wheel on every request. [`DeadlineIo`] enforces the header and idle deadlines.
    let connection = http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut phase = context.drain.subscribe();
    tokio::select! {
        result = connection.as_mut() => return Ok(result?),
        () = drain::closing(&mut phase) => {}
    }
    // A connection that has not had its first request gets a moment for it: hyper would close
    // it at once, resetting a request that may be on its way. (Its response carries
    // `Connection: close`, as every response does while draining.)
    let mut activity = requests.subscribe();
    let first_request = activity.wait_for(|r| r.started > 0);
    tokio::select! {
        result = connection.as_mut() => return Ok(result?),
        _ = tokio::time::timeout(FIRST_REQUEST_WHILE_CLOSING, first_request) => {}
    }
    // Closed now between requests, or after the one in flight.
    connection.as_mut().graceful_shutdown();
    Ok(connection.await?)
}

/// Serves HTTP/2 under the same deadlines as HTTP/1.1, counted in whole requests because the
/// framing is binary: the first request must arrive within the header deadline of the handshake
/// (else the connection is dropped), and a connection with no request in flight for the idle
/// deadline is sent GOAWAY. hyper has no header timeout for HTTP/2, and its PINGs only notice
/// dead peers, not live ones that never send a request. A stream whose headers stall after the
/// first request is bounded by the idle deadline: a stalled header block blocks the whole
/// connection, so only that client is held up. When the server stops accepting, a connection is
/// sent GOAWAY at once if it has had a request, else once it has, or after
/// [`FIRST_REQUEST_WHILE_CLOSING`] (hyper closes a connection still in its handshake outright,
/// so one that has just connected is given that moment).
async fn serve_h2(
    io: impl Transport,
    service: ConnectionService,
    requests: &watch::Sender<Requests>,
    context: &ServeContext,
) -> Result<(), BoxError> {
    let deadlines = context.deadlines;
    // Every change (a request arriving or finishing) wakes the watchdog below and restarts its
    // timer.
    let mut activity = requests.subscribe();
    let mut phase = context.drain.subscribe();
    let connection = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut served_any = false;
    let mut closing = false;
    loop {
        if closing && served_any {
            break;
        }
        let quiet = match (served_any, closing) {
            (true, _) => deadlines.idle,
            (false, false) => deadlines.header,
            (false, true) => FIRST_REQUEST_WHILE_CLOSING.min(deadlines.header),
        };
        let busy = activity.borrow_and_update().in_flight > 0;
        tokio::select! {
            result = connection.as_mut() => return Ok(result?),
            _ = activity.changed() => served_any = true,
            () = tokio::time::sleep(quiet), if !busy => {
                if closing {
                    break;
                }
                if !served_any {
                    context.cut(Cut::Header);
                    return Err("HTTP/2 connection sent no request within the header timeout".into());
                }
                context.cut(Cut::Idle);
                break;
            }
            () = drain::closing(&mut phase), if !closing => closing = true,
        }
    }
    connection.as_mut().graceful_shutdown();
    match tokio::time::timeout(H2_SHUTDOWN_GRACE, connection).await {
        Ok(result) => Ok(result?),
        Err(_) => Err("HTTP/2 connection did not close after GOAWAY".into()),
    }
}
