//! Background tasks that must not quietly disappear: the Kubernetes watches, the snapshot
//! publisher, the health tracker, the certificate reloaders. Each runs under [`supervise`],
//! which restarts it whenever it ends, by returning or by panicking, after a growing pause;
//! logs it, counts it (`task_restarts_total{task}`), and tells the caller so that what the
//! task kept fresh can be marked failing meanwhile (a watch's health, and so readiness).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// The pause before a restart: `first` after a task that had run for `healthy_run` or longer,
/// doubled after each quicker end up to `max`, so a task that ends at once is not spun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub healthy_run: Duration,
}

impl Backoff {
    /// A second covers a transient fault; half a minute keeps a task that cannot run from
    /// flooding the log; a task that ran for a minute had worked, so it starts over from a
    /// second.
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(30),
        healthy_run: Duration::from_secs(60),
    };
}

/// Runs the task `start` makes, and again each time it ends, for ever. `ended` is called
/// each time the task ends, before the pause. Dropping the returned future stops the task too.
pub async fn supervise<F, Fut>(
    task: &'static str,
    metrics: Arc<Metrics>,
    backoff: Backoff,
    start: F,
    ended: impl Fn(),
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut pause = backoff.first;
    loop {
        let started = Instant::now();
        let running = tokio::spawn(start());
        let _stop_with_us = AbortOnDrop(running.abort_handle());
        let how = match running.await {
            Ok(()) => "returned".to_owned(),
            Err(e) if e.is_panic() => format!("panicked: {}", panic_message(e.into_panic())),
            Err(_) => "was cancelled".to_owned(),
        };
        ended();
        if started.elapsed() >= backoff.healthy_run {
            pause = backoff.first;
        }
        tracing::error!(task, how, restart_in = ?pause, "background task ended; restarting it");
        metrics.task_restarted(task);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(backoff.max);
    }
}

/// Spawns [`supervise`] with the default backoff and nothing to mark when the task ends;
/// `start` gets the metrics handle for each run it makes.
pub fn spawn<F, Fut>(
    task: &'static str,
    metrics: &Arc<Metrics>,
    start: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Arc<Metrics>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let for_task = metrics.clone();
    let start = move || start(for_task.clone());
    tokio::spawn(supervise(
        task,
        metrics.clone(),
        Backoff::DEFAULT,
        start,
        || {},
    ))
}

/// Aborts a task when dropped, so a supervisor that is itself stopped takes its task along.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(message) => (*message).to_owned(),
            Err(_) => "(no message)".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A task that returns, then panics, then keeps running: restarted twice, after pauses
    /// that grow, with each end reported and counted.
    #[tokio::test]
    async fn a_task_that_ends_or_panics_is_restarted_with_backoff() {
        let metrics = Arc::new(Metrics::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let ends = Arc::new(AtomicUsize::new(0));
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(10),
            healthy_run: Duration::from_secs(60),
        };
        let started = Instant::now();
        let supervisor = {
            let (runs, ends) = (runs.clone(), ends.clone());
            tokio::spawn(supervise(
                "test",
                metrics.clone(),
                backoff,
                move || {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match run {
                            0 => {}
                            1 => panic!("second run fails"),
                            _ => std::future::pending().await,
                        }
                    }
                },
                move || {
                    ends.fetch_add(1, Ordering::SeqCst);
                },
            ))
        };
        while runs.load(Ordering::SeqCst) < 3 {
            assert!(started.elapsed() < Duration::from_secs(5), "not restarted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // 100 ms after the first end, 200 ms after the second.
        assert!(started.elapsed() >= Duration::from_millis(300));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            3,
            "a running task was restarted"
        );
        assert_eq!(ends.load(Ordering::SeqCst), 2);
        let text = metrics.encode();
        assert!(
            text.contains(r#"task_restarts_total{task="test"} 2"#),
            "{text}"
        );

        // Stopping the supervisor stops its task.
        let probe = Arc::new(());
        let held = probe.clone();
        let supervisor_of_probe = tokio::spawn(supervise(
            "probe",
            metrics,
            backoff,
            move || {
                let held = held.clone();
                async move {
                    let _held = held;
                    std::future::pending::<()>().await;
                }
            },
            || {},
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(Arc::strong_count(&probe), 3);
        supervisor_of_probe.abort();
        supervisor.abort();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            Arc::strong_count(&probe),
            1,
            "the task outlived its supervisor"
        );
    }
}
