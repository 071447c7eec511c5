//! The HTTPS admission listener and the plain-HTTP admin listener. Both run the same
//! connection handling: deadlines on every phase of a connection, and the drain on shutdown.

mod connection;
pub mod deadline;
pub mod decision_log;
pub mod drain;
mod head;
pub mod inflight;
pub mod intake;
pub mod placement;
pub mod request_metrics;
pub mod routes;
pub mod timeouts;
pub mod tls;
mod write_deadline;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::metrics::Metrics;
use drain::Drain;
use timeouts::{Cut, CutRecorder, Deadlines};
pub use timeouts::{HANDSHAKE_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT, WRITE_TIMEOUT};

/// Which listener a connection came in on; the `listener` metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The HTTPS listener (`--listen`).
    Admission,
    /// The plain-HTTP health and metrics listener (`--admin-listen`).
    Admin,
}

impl Listener {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admission => "admission",
            Self::Admin => "admin",
        }
    }
}

/// What every connection of a listener shares.
#[derive(Clone)]
pub struct ServeContext {
    pub listener: Listener,
    pub deadlines: Deadlines,
    pub drain: Arc<Drain>,
    pub metrics: Arc<Metrics>,
}

impl ServeContext {
    /// A listener with the production deadlines, following `drain`.
    pub fn new(listener: Listener, drain: Arc<Drain>, metrics: Arc<Metrics>) -> Self {
        Self {
            listener,
            deadlines: Deadlines::default(),
            drain,
            metrics,
        }
    }

    /// Counts a deadline cut of this listener.
    fn cut(&self, cut: Cut) {
        self.metrics
            .deadline_cut(self.listener.as_str(), cut.as_str());
    }

    fn cut_recorder(&self) -> CutRecorder {
        let context = self.clone();
        Arc::new(move |cut| context.cut(cut))
    }
}

/// Serves `routes` over TLS on `listener` until its drain closes (or the task is dropped).
/// Each connection runs in its own task; a failing connection never affects the others.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    routes: routes::Routes,
    context: ServeContext,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    accept(listener, &context, move |tcp, peer, context| {
        connection::serve_tls(acceptor.clone(), tcp, peer, routes.clone(), context)
    })
    .await
}

/// Serves the admin routes over plain HTTP/1.1, under the same deadlines and drain as the
/// admission listener.
pub async fn serve_admin(
    listener: TcpListener,
    routes: routes::Routes,
    context: ServeContext,
) -> std::io::Result<()> {
    accept(listener, &context, move |tcp, peer, context| {
        connection::serve_plain(tcp, peer, routes.clone(), context)
    })
    .await
}

/// Accepts connections and runs `serve` on each in its own task, until the drain's closing
/// phase; then takes what the kernel has already accepted and stops.
async fn accept<F, Fut>(
    listener: TcpListener,
    context: &ServeContext,
    serve: F,
) -> std::io::Result<()>
where
    F: Fn(TcpStream, SocketAddr, ServeContext) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _accepting = context.drain.listener_open();
    let mut phase = context.drain.subscribe();
    let spawn = |tcp, peer| {
        let open = context.drain.connection_open();
        let connection = serve(tcp, peer, context.clone());
        tokio::spawn(async move {
            connection.await;
            drop(open);
        });
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = drain::closing(&mut phase) => break,
        };
        match accepted {
            Ok((tcp, peer)) => spawn(tcp, peer),
            Err(e) => {
                // Running out of file descriptors and similar are transient; back off a little.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // The kernel has completed the handshakes of connections still in the accept queue, and
    // their clients may have sent requests on them: closing the listener would reset them, so
    // they are taken and answered (each one request, with `Connection: close`).
    while let Some(Ok((tcp, peer))) = std::future::poll_fn(|cx| match listener.poll_accept(cx) {
        Poll::Ready(accepted) => Poll::Ready(Some(accepted)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
    {
        spawn(tcp, peer);
    }
    Ok(())
}
