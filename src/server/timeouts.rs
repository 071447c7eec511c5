//! How long a connection may take for each part of its life, and what cuts it off when it
//! takes longer.

use std::sync::Arc;
use std::time::Duration;

/// A client gets this long to finish its TLS handshake; a half-open handshake otherwise pins a
/// task and a socket.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request head must arrive within this long of its first byte (and the first request within
/// this long of the handshake): slow-header clients are cut off.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle keep-alive connections are kept this long. kube-apiserver keeps idle webhook connections
/// for up to 90 s and reuses them; closing sooner races its next request into a reset.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// A write that makes no progress for this long fails and ends its connection. kube-apiserver
/// reads a webhook's answer as it arrives and gives a call at most 30 s in all (the deployed
/// webhooks 5 s and 3 s), so a response that has not moved for 10 s belongs to a call nobody
/// waits for any more; without the deadline a client that stops reading holds its connection,
/// task and buffered responses for ever. The clock runs only while a write waits, so a slow
/// reader that keeps reading is never cut.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection deadlines; [`Deadlines::default`] has the production values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// How long a TLS handshake may take.
    pub handshake: Duration,
    /// How long a request head may take from its first byte (and the first one after the
    /// handshake).
    pub header: Duration,
    /// How long a connection may sit between requests.
    pub idle: Duration,
    /// How long a write may wait without the peer reading anything.
    pub write: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            handshake: HANDSHAKE_TIMEOUT,
            header: HEADER_TIMEOUT,
            idle: IDLE_TIMEOUT,
            write: WRITE_TIMEOUT,
        }
    }
}

/// The deadlines that can cut a connection off (or, for `Body`, refuse its request with 408).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cut {
    Handshake,
    Header,
    Idle,
    Body,
    Write,
}

impl Cut {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Header => "header",
            Self::Idle => "idle",
            Self::Body => "body",
            Self::Write => "write",
        }
    }
}

/// Told about every cut as it happens. Counted where the deadline fires because hyper reports
/// some of these failures as a quiet end of the connection, not as an error.
pub type CutRecorder = Arc<dyn Fn(Cut) + Send + Sync>;
