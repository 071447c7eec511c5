//! Shutting down without dropping requests.
//!
//! When a pod is deleted, kube-apiserver keeps sending it requests until the removal of its
//! endpoint has reached every API server, so the server cannot simply stop. A drain goes
//! through three phases, which every listener and connection follows:
//!
//! 1. **Serving**: normal operation.
//! 2. **Draining** (for the shutdown delay): `/readyz` answers 503 (the caller flips the
//!    readiness), the listeners keep accepting, and every request is answered. HTTP/1.1
//!    responses carry `Connection: close`, so a client's next request opens a new connection,
//!    which lands on another replica once the endpoint change has propagated. HTTP/1.1 has no
//!    race-free way for a server to close a keep-alive connection (a request may be on the wire
//!    as it closes), so the connections left to close later should be as few as possible.
//! 3. **Closing** (for at most the grace period): the listeners stop accepting, after taking
//!    the connections the kernel has already completed. HTTP/1.1 connections between requests
//!    are closed and busy ones close after their response; HTTP/2 connections are sent GOAWAY
//!    and finish the streams they have. The drain ends when every connection has closed, or when
//!    the grace period runs out and what is left is closed by the caller.
//!
//! Connections call hyper's own `graceful_shutdown()` when the closing phase begins. hyper-util's
//! `GracefulShutdown` cannot be used for this: it wraps only hyper's connection types, and our
//! HTTP/2 connections run under a watchdog that must call `graceful_shutdown()` itself when a
//! connection idles.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    Draining,
    Closing,
}

/// Listeners still accepting and connections still open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Open {
    listeners: usize,
    connections: usize,
}

/// The drain state every listener and connection of the server shares.
#[derive(Debug)]
pub struct Drain {
    phase: watch::Sender<Phase>,
    open: watch::Sender<Open>,
    /// Requests being handled right now.
    in_flight: AtomicUsize,
    /// Requests answered since the drain began.
    answered: AtomicU64,
    /// Connections that ended since the drain began.
    closed: AtomicU64,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            phase: watch::Sender::new(Phase::Serving),
            open: watch::Sender::new(Open::default()),
            in_flight: AtomicUsize::new(0),
            answered: AtomicU64::new(0),
            closed: AtomicU64::new(0),
        }
    }
}

/// What a drain did, for the closing log line and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Requests answered after the drain began.
    pub answered: u64,
    /// Requests still being handled when the grace period ran out.
    pub abandoned: usize,
    /// Connections that ended after the drain began.
    pub closed: u64,
    /// Connections still open when the grace period ran out.
    pub forced: usize,
    /// From the start of the drain to its end.
    pub took: Duration,
}

impl Drain {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn phase(&self) -> Phase {
        *self.phase.borrow()
    }

    /// Follows the phase; see [`closing`].
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// Runs a drain: the draining phase for `delay`, then the closing phase until every
    /// connection has closed or `grace` has passed. Whatever is still open then is the caller's
    /// to close (by ending the runtime). Logs the start, the switch to closing, and the end with
    /// its counts, and records them in `metrics`.
    pub async fn run(&self, delay: Duration, grace: Duration, metrics: &Metrics) -> DrainReport {
        let started = Instant::now();
        self.phase.send_replace(Phase::Draining);
        tracing::info!(
            delay = ?delay,
            grace = ?grace,
            connections = self.open.borrow().connections,
            "shutdown: draining; /readyz answers 503 and requests are still served until the delay ends"
        );
        tokio::time::sleep(delay).await;
        self.phase.send_replace(Phase::Closing);
        tracing::info!(
            connections = self.open.borrow().connections,
            in_flight = self.in_flight.load(Ordering::Relaxed),
            answered = self.answered.load(Ordering::Relaxed),
            "shutdown: stopped accepting; closing connections as their requests finish"
        );
        let mut open = self.open.subscribe();
        let all_closed = open.wait_for(|open| *open == Open::default());
        // The sender lives in `self`, so waiting ends only by the count reaching zero.
        let _ = tokio::time::timeout(grace, all_closed).await;
        let report = DrainReport {
            answered: self.answered.load(Ordering::Relaxed),
            abandoned: self.in_flight.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            forced: self.open.borrow().connections,
            took: started.elapsed(),
        };
        metrics.drained_requests("answered", report.answered);
        metrics.drained_requests("abandoned", report.abandoned as u64);
        metrics.drained_connections("closed", report.closed);
        metrics.drained_connections("forced", report.forced as u64);
        tracing::info!(
            answered = report.answered,
            abandoned = report.abandoned,
            connections_closed = report.closed,
            connections_forced = report.forced,
            took = ?report.took,
            "shutdown: drain finished"
        );
        report
    }

    /// Counts a listener as accepting until the guard is dropped; a drain waits for listeners
    /// too, so connections taken from the accept queue after closing began are waited for.
    pub fn listener_open(self: &Arc<Self>) -> OpenGuard {
        OpenGuard::enter(self.clone(), false)
    }

    /// Counts a connection as open until the guard is dropped.
    pub fn connection_open(self: &Arc<Self>) -> OpenGuard {
        OpenGuard::enter(self.clone(), true)
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard {
            drain: self.clone(),
            answered: false,
        }
    }
}

/// Resolves once the closing phase has begun (at once if it has), or if the drain is gone.
pub async fn closing(phase: &mut watch::Receiver<Phase>) {
    let _ = phase.wait_for(|phase| *phase == Phase::Closing).await;
}

/// An open listener or connection.
pub struct OpenGuard {
    drain: Arc<Drain>,
    connection: bool,
}

impl OpenGuard {
    fn enter(drain: Arc<Drain>, connection: bool) -> Self {
        drain.open.send_modify(|open| {
            if connection {
                open.connections += 1;
            } else {
                open.listeners += 1;
            }
        });
        Self { drain, connection }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let connection = self.connection;
        self.drain.open.send_modify(|open| {
            if connection {
                open.connections = open.connections.saturating_sub(1);
            } else {
                open.listeners = open.listeners.saturating_sub(1);
            }
        });
        if connection && self.drain.phase() != Phase::Serving {
            self.drain.closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A request in flight.
pub struct RequestGuard {
    drain: Arc<Drain>,
    answered: bool,
}

impl RequestGuard {
    /// The request got its response (as opposed to being dropped with its connection).
    pub fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.drain.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.answered && self.drain.phase() != Phase::Serving {
            self.drain.answered.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The phases in order, the delay kept, and a drain that ends as soon as the last
    /// connection closes, with its counts.
    #[tokio::test]
    async fn a_drain_waits_out_the_delay_then_ends_when_the_last_connection_closes() {
        let drain = Drain::new();
        let metrics = Metrics::new();
        let listener = drain.listener_open();
        let connection = drain.connection_open();
        let request = drain.request();
        let mut phase = drain.subscribe();
        let run = {
            let drain = drain.clone();
            tokio::spawn(async move {
                drain
                    .run(
                        Duration::from_millis(200),
                        Duration::from_secs(10),
                        &metrics,
                    )
                    .await
            })
        };
        phase.wait_for(|p| *p == Phase::Draining).await.unwrap();
        let draining_at = Instant::now();
        // Still serving while draining.
        request.answered();
        closing(&mut phase).await;
        assert!(draining_at.elapsed() >= Duration::from_millis(150));
        drop(listener);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!run.is_finished(), "ended with a connection open");
        drop(connection);
        let report = tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.answered, 1);
        assert_eq!(report.abandoned, 0);
        assert_eq!(report.closed, 1);
        assert_eq!(report.forced, 0);
        assert!(report.took < Duration::from_secs(2), "{report:?}");
    }

    /// A connection that does not close is left to the caller when the grace period ends, and
    /// counted with its request.
    #[tokio::test]
    async fn the_grace_period_bounds_the_drain() {
        let drain = Drain::new();
        let metrics = Metrics::new();
        let _connection = drain.connection_open();
        let _request = drain.request();
        let report = drain
            .run(Duration::ZERO, Duration::from_millis(200), &metrics)
            .await;
        assert_eq!(report.abandoned, 1);
        assert_eq!(report.forced, 1);
        assert!(report.took >= Duration::from_millis(200), "{report:?}");
        let text = metrics.encode();
        assert!(
            text.contains(r#"drain_connections_total{outcome="forced"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"drain_requests_total{outcome="abandoned"} 1"#),
            "{text}"
        );
    }
}
