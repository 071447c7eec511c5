//! The HTTPS admission listener and the plain-HTTP admin listener.

pub mod deadline;
pub mod inflight;
pub mod intake;
pub mod reload;
pub mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::{http1, http2};
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use deadline::{DeadlineIo, Deadlines};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client gets this long to finish its TLS handshake; a half-open handshake otherwise pins a
/// task and a socket.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request head must arrive within this long of its first byte (and the first request within
/// this long of the handshake): slow-header clients are cut off.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle keep-alive connections are kept this long. kube-apiserver keeps idle webhook connections
/// for up to 90 s and reuses them; closing sooner races its next request into a reset.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// hyper's own header timer also runs while a connection is idle, so it is set past the idle
/// timeout; [`DeadlineIo`] enforces the real header and idle deadlines.
const HYPER_HEADER_TIMEOUT: Duration = Duration::from_secs(130);
/// HTTP/2 connections are probed with PINGs at this interval so dead peers are noticed.
const H2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// After an idle HTTP/2 connection is sent GOAWAY, a request that crossed it on the wire gets
/// this long to be answered before the connection is dropped; our handlers answer in
/// milliseconds, so this only bounds a peer that stops reading.
const H2_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `router` over TLS on `listener` until the task is dropped. Each connection runs in its
/// own task; a failing connection never affects the others.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Running out of file descriptors and similar are transient; back off a little.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            serve_connection(acceptor, tcp, peer, router).await;
        });
    }
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
) {
    let _ = tcp.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let deadlines = Deadlines {
        header: HEADER_TIMEOUT,
        idle: IDLE_TIMEOUT,
    };
    // The protocol follows ALPN alone: HTTP/2 over TLS must be negotiated that way (RFC 9113
    // §3.2), and sniffing the first bytes instead would leave a client that negotiated h2 and
    // then sent nothing waiting in the sniffer, outside every deadline.
    let result = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        serve_h2(tls, router, deadlines).await
    } else {
        serve_http1(DeadlineIo::new(tls, deadlines), router).await
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn serve_http1<I>(io: I, router: Router) -> Result<(), BoxError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(HYPER_HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(router))
        .await?;
    Ok(())
}

/// Serves HTTP/2 under the same deadlines as HTTP/1.1, counted in whole requests because the
/// framing is binary: the first request must arrive within `deadlines.header` of the handshake
/// (else the connection is dropped), and a connection with no request in flight for
/// `deadlines.idle` is sent GOAWAY. hyper has no header timeout for HTTP/2, and its PINGs only
/// notice dead peers, not live ones that never send a request. A stream whose headers stall
/// after the first request is bounded by the idle deadline: a stalled header block blocks the
/// whole connection, so only that client is held up.
async fn serve_h2<I>(io: I, router: Router, deadlines: Deadlines) -> Result<(), BoxError>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // Requests in flight on this connection; every change (a request arriving or finishing)
    // wakes the watchdog below and restarts its timer.
    let (in_flight, mut activity) = watch::channel(0usize);
    let in_flight = Arc::new(in_flight);
    // Held here as well so `changed()` never reports a closed channel while we wait.
    let _sender = Arc::clone(&in_flight);
    let tower = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |request| {
        let guard = InFlight::enter(Arc::clone(&in_flight));
        let call = tower.call(request);
        async move {
            let _guard = guard;
            call.await
        }
    });
    let connection = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE_INTERVAL)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut served_any = false;
    loop {
        let quiet = if served_any {
            deadlines.idle
        } else {
            deadlines.header
        };
        let busy = *activity.borrow_and_update() > 0;
        tokio::select! {
            result = connection.as_mut() => return Ok(result?),
            _ = activity.changed() => served_any = true,
            () = tokio::time::sleep(quiet), if !busy => break,
        }
    }
    if !served_any {
        return Err("HTTP/2 connection sent no request within the header timeout".into());
    }
    connection.as_mut().graceful_shutdown();
    match tokio::time::timeout(H2_SHUTDOWN_GRACE, connection).await {
        Ok(result) => Ok(result?),
        Err(_) => Err("HTTP/2 connection did not close after GOAWAY".into()),
    }
}

/// Counts one request in flight for as long as it lives.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn enter(count: Arc<watch::Sender<usize>>) -> Self {
        count.send_modify(|n| *n += 1);
        Self(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Serves the admin router over plain HTTP.
pub async fn serve_admin(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}
