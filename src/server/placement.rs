//! Where a decision runs: on the async worker that read the request, or on the blocking pool.
//!
//! The blocking pool keeps a slow decision from holding up the health checks and small requests
//! that share its worker, but a hand-off costs two thread wake-ups and context switches: under
//! load that was about a third of the server's CPU for MeshIdentity reviews, which take ~100 µs
//! in a 1 000-pod cluster. So a decision goes to the pool only when it may be slow: its body is
//! large, or it is a MeshIdentity review (whose cost grows with the cluster) and the last one
//! took longer than a worker may be held.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::admission::Webhook;

/// Bodies up to this size are decided on the async worker (unless [`Placement`] says otherwise);
/// larger ones on the blocking pool, since parsing and judging them takes longer.
pub const INLINE_DECISION_BYTES: usize = 32 * 1024;

/// How long a decision may hold an async worker. Half a millisecond delays the tasks queued
/// behind it (a health check, another review) by no more than a TLS handshake does, while a
/// blocking-pool hand-off costs tens of microseconds of CPU whatever the decision.
pub const INLINE_DECISION_TIME: Duration = Duration::from_micros(500);

/// Remembers whether the last MeshIdentity review was slow, to place the next one.
#[derive(Debug, Default)]
pub struct Placement {
    /// Whether the last MeshIdentity review took longer than [`INLINE_DECISION_TIME`]; false
    /// before the first.
    last_meshidentity_slow: AtomicBool,
}

impl Placement {
    /// Whether a `webhook` request of `body_len` bytes is decided on the async worker.
    pub fn inline(&self, webhook: Webhook, body_len: usize) -> bool {
        body_len <= INLINE_DECISION_BYTES
            && (webhook != Webhook::ValidateMeshIdentity
                || !self.last_meshidentity_slow.load(Ordering::Relaxed))
    }

    /// Notes that a `webhook` decision took `took`, wherever it ran.
    pub fn record(&self, webhook: Webhook, took: Duration) {
        if webhook == Webhook::ValidateMeshIdentity {
            // Whole microseconds, as the limit is meant.
            let slow = took.as_micros() > INLINE_DECISION_TIME.as_micros();
            // Written only when it changes: both workers read it on every review, and a write
            // would take its cache line from the other one each time.
            if self.last_meshidentity_slow.load(Ordering::Relaxed) != slow {
                self.last_meshidentity_slow.store(slow, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meshidentity_reviews_leave_the_worker_once_one_is_slow_and_return_once_one_is_fast() {
        let placement = Placement::default();
        let mi = Webhook::ValidateMeshIdentity;
        assert!(placement.inline(mi, 1024));
        assert!(!placement.inline(mi, INLINE_DECISION_BYTES + 1));
        placement.record(mi, INLINE_DECISION_TIME + Duration::from_micros(1));
        assert!(!placement.inline(mi, 1024));
        // Other webhooks are placed by their body alone.
        assert!(placement.inline(Webhook::MutatePod, INLINE_DECISION_BYTES));
        assert!(!placement.inline(Webhook::MutatePod, INLINE_DECISION_BYTES + 1));
        placement.record(Webhook::ValidatePod, Duration::from_secs(1));
        assert!(!placement.inline(mi, 1024));
        placement.record(mi, INLINE_DECISION_TIME);
        assert!(placement.inline(mi, 1024));
    }
}
