//! The HTTPS admission listener and the plain-HTTP admin listener.

pub mod deadline;
pub mod reload;
pub mod routes;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use deadline::{DeadlineIo, Deadlines};

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
    let negotiated_h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let result = if negotiated_h2 {
        // HTTP/2 framing is binary, so the head-watching deadlines do not apply; PING keep-alive
        // notices dead peers instead.
        serve_http(tls, router).await
    } else {
        let deadlines = Deadlines {
            header: HEADER_TIMEOUT,
            idle: IDLE_TIMEOUT,
        };
        serve_http(DeadlineIo::new(tls, deadlines), router).await
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn serve_http<I>(
    io: I,
    router: Router,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(HYPER_HEADER_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE_INTERVAL);
    let service = TowerToHyperService::new(router);
    builder.serve_connection(TokioIo::new(io), service).await
}

/// Serves the admin router over plain HTTP.
pub async fn serve_admin(listener: TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}
