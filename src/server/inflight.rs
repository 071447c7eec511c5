//! A ceiling on the memory admission requests in flight may take together.
//!
//! Each request reserves, before its body is read, what its body and the objects decoded from it
//! can take: [`DECODE_EXPANSION`] times its `Content-Length`. The estimate is for the worst
//! shape, since the body is not read yet: a request of more than 1.6 MiB runs alone under the
//! default 64 MiB, while kube-apiserver's usual objects (a few KiB) run hundreds at once. A request that does not fit waits
//! for others to finish, until its deadline, and is then refused; the rest go on, since a
//! waiting large request does not hold back smaller ones that fit. One request larger than the
//! whole ceiling is let through alone, so no valid request is refused for its size.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::time::Instant;

/// What a request may take in memory for each byte of its body: the body itself, and the
/// objects decoded from it. Measured worst cases, with what decisions never read left unbuilt
/// (`crate::admission::pruned`): a list of tiny objects about 40 times its JSON, environment
/// variables about 23 times, label and annotation maps about 8 times, an array of numbers 20 (30
/// as it grows).
pub const DECODE_EXPANSION: usize = 40;

/// The memory requests in flight share.
///
/// Every admission request takes a reservation and gives it back, on whichever worker it runs,
/// so a request that fits costs two atomic operations: no lock, and no wake-up unless a request
/// is waiting. (A mutex, and a `Notify` registration and wake-up taking its own, cost every
/// request five lock round trips on lines both workers share.)
#[derive(Debug)]
pub struct InflightBudget {
    capacity: usize,
    used: AtomicUsize,
    /// Requests waiting for room; a release wakes them only when there are any.
    waiting: AtomicUsize,
    freed: Notify,
}

/// Memory held for one request; returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<InflightBudget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // Sequentially consistent with a waiter's count and check in `reserve`: either the
        // waiter is counted by then and woken here, or its check after counting sees these
        // bytes returned.
        self.budget.used.fetch_sub(self.bytes, Ordering::SeqCst);
        if self.budget.waiting.load(Ordering::SeqCst) > 0 {
            self.budget.freed.notify_waiters();
        }
    }
}

/// Counts one request waiting in [`InflightBudget::reserve`] for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl InflightBudget {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            used: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    /// What a request with a body of `body_bytes` reserves.
    pub fn cost_of(&self, body_bytes: usize) -> usize {
        body_bytes
            .saturating_mul(DECODE_EXPANSION)
            .min(self.capacity)
            .max(1)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Memory reserved by requests in flight.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` (at most the capacity), waiting until `deadline` for room; `None` when
    /// there was none by then.
    pub async fn reserve(self: &Arc<Self>, bytes: usize, deadline: Instant) -> Option<Reservation> {
        let bytes = bytes.min(self.capacity);
        if self.try_take(bytes) {
            return Some(self.reservation(bytes));
        }
        let _waiting = Waiting::enter(&self.waiting);
        loop {
            // Registered before the check, so a release between the check and the wait is not
            // missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_take(bytes) {
                return Some(self.reservation(bytes));
            }
            tokio::select! {
                () = freed => {}
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    fn reservation(self: &Arc<Self>, bytes: usize) -> Reservation {
        Reservation {
            budget: Arc::clone(self),
            bytes,
        }
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= self.capacity)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn requests_that_fit_go_on_while_a_large_one_waits() {
        let budget = InflightBudget::new(100);
        let soon = || Instant::now() + Duration::from_millis(200);
        let first = budget.reserve(60, soon()).await.unwrap();
        // 60 more do not fit: the request waits, then is refused.
        let started = Instant::now();
        assert!(budget.reserve(60, soon()).await.is_none());
        assert!(started.elapsed() >= Duration::from_millis(150));
        // Small ones go on meanwhile.
        let small = budget.reserve(30, soon()).await.unwrap();
        assert_eq!(budget.used(), 90);
        drop(small);
        // A waiting request gets its room as soon as it is freed.
        let waiter = tokio::spawn({
            let budget = Arc::clone(&budget);
            async move {
                budget
                    .reserve(80, Instant::now() + Duration::from_secs(5))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        let reserved = waiter.await.unwrap().unwrap();
        assert_eq!(budget.used(), 80);
        drop(reserved);
        assert_eq!(budget.used(), 0);
        // One request larger than everything runs alone rather than never.
        let whole = budget.reserve(budget.cost_of(1000), soon()).await.unwrap();
        assert_eq!(budget.used(), 100);
        drop(whole);
    }

    /// No wake-up is lost between a waiter's check and a release on another worker: many
    /// requests, of which only three fit at once, all get their turn well before their deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_releases_wake_every_waiter() {
        let budget = InflightBudget::new(30);
        let deadline = Instant::now() + Duration::from_secs(20);
        let requests: Vec<_> = (0..400)
            .map(|i| {
                let budget = Arc::clone(&budget);
                tokio::spawn(async move {
                    let reservation = budget.reserve(10, deadline).await?;
                    assert!(budget.used() <= 30);
                    if i % 2 == 0 {
                        tokio::task::yield_now().await;
                    }
                    drop(reservation);
                    Some(())
                })
            })
            .collect();
        for request in requests {
            assert_eq!(request.await.unwrap(), Some(()));
        }
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.waiting.load(Ordering::SeqCst), 0);
    }
}
