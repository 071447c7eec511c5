//! Where the server reads its current cluster view from, and whether it is ready.

use std::sync::Arc;

use super::view::ClusterView;

/// Where the server reads its current view from. Swapping in a new snapshot is how a file reload
/// or a watch update becomes visible; readers keep the `Arc` they took for the whole request.
#[derive(Default)]
pub struct StateHandle {
    current: std::sync::RwLock<Option<Arc<dyn ClusterView>>>,
    /// Set while the source of the state is known to be stale (a watch failing too long).
    unready: std::sync::RwLock<Option<String>>,
    /// Set once the server is shutting down; never cleared.
    draining: std::sync::atomic::AtomicBool,
}

impl StateHandle {
    pub fn set(&self, view: Arc<dyn ClusterView>) {
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(view);
        }
    }

    /// `None` until the first state is loaded: callers must not guess before that.
    pub fn get(&self) -> Option<Arc<dyn ClusterView>> {
        self.current.read().ok().and_then(|guard| guard.clone())
    }

    /// Marks the state stale (`Some(reason)`) or current again (`None`).
    pub fn set_unready_reason(&self, reason: Option<String>) {
        if let Ok(mut guard) = self.unready.write() {
            *guard = reason;
        }
    }

    /// Turns the server unready for good: it is shutting down, and endpoints must stop sending
    /// it requests (it keeps answering those that still come while the drain lasts).
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// `Ok` when a state is loaded, not known to be stale, and the server is not shutting down;
    /// else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("shutting down".to_owned());
        }
        if self.get().is_none() {
            return Err("cluster state not loaded".to_owned());
        }
        match self.unready.read().ok().and_then(|guard| guard.clone()) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}
