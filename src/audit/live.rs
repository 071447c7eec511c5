//! The audit in `serve`: run on the live snapshot after it changes, off the request path (on the
//! blocking pool), and exported as metrics. The snapshot is polled rather than notified, so the
//! cluster state needs no hook for it: a pointer comparison a second costs nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{count, Finding};
use crate::cluster::{ClusterView, StateHandle};
use crate::config::Settings;
use crate::metrics::Metrics;

/// When audits run after the state changes.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// How often the current snapshot is compared with the last one seen.
    pub poll: Duration,
    /// A change is audited once the state has been this quiet: pod churn (a rollout) publishes
    /// many snapshots in a row, and only the settled one is worth judging.
    pub quiet: Duration,
    /// ... but never later than this after the first unaudited change, so constant churn still
    /// gets audited.
    pub max_delay: Duration,
    /// At most one run this often: a 50 000-pod audit takes a fraction of a core-second, and
    /// findings are for alerts measured in minutes.
    pub min_interval: Duration,
}

impl Schedule {
    pub const DEFAULT: Self = Self {
        poll: Duration::from_secs(1),
        quiet: Duration::from_secs(5),
        max_delay: Duration::from_secs(60),
        min_interval: Duration::from_secs(30),
    };
}

/// The debounce, apart from the clock and the state, so it can be tested step by step.
#[derive(Debug, Default)]
pub struct Debounce {
    /// The first change not audited yet.
    pending_since: Option<Instant>,
    last_change: Option<Instant>,
    last_run: Option<Instant>,
}

impl Debounce {
    /// Notes whether the state changed at `now`; true when an audit should run now (the caller
    /// then calls [`Debounce::ran`]). The first state is audited at once.
    pub fn tick(&mut self, now: Instant, changed: bool, schedule: &Schedule) -> bool {
        if changed {
            self.pending_since.get_or_insert(now);
            self.last_change = Some(now);
        }
        let (Some(since), Some(last_change)) = (self.pending_since, self.last_change) else {
            return false;
        };
        let Some(last_run) = self.last_run else {
            return true;
        };
        let settled = now.duration_since(last_change) >= schedule.quiet
            || now.duration_since(since) >= schedule.max_delay;
        settled && now.duration_since(last_run) >= schedule.min_interval
    }

    pub fn ran(&mut self, now: Instant) {
        self.pending_since = None;
        self.last_run = Some(now);
    }
}

/// Audits the live state for ever, as [`Schedule`] says.
pub async fn run(
    state: Arc<StateHandle>,
    settings: Arc<Settings>,
    metrics: Arc<Metrics>,
    schedule: Schedule,
) {
    let mut debounce = Debounce::default();
    let mut seen: Option<Arc<dyn ClusterView>> = None;
    let mut counts = BTreeMap::new();
    let mut ticker = tokio::time::interval(schedule.poll);
    loop {
        ticker.tick().await;
        let current = state.get();
        let changed = match (&current, &seen) {
            (Some(current), Some(seen)) => !Arc::ptr_eq(current, seen),
            (current, _) => current.is_some(),
        };
        if changed {
            seen = current;
        }
        let Some(view) = seen.clone() else { continue };
        if !debounce.tick(Instant::now(), changed, &schedule) {
            continue;
        }
        debounce.ran(Instant::now());
        let for_audit = settings.clone();
        let started = Instant::now();
        let Ok(now_counts) =
            tokio::task::spawn_blocking(move || count(view.as_ref(), &for_audit)).await
        else {
            tracing::error!("the audit failed; its metrics keep the previous run's values");
            continue;
        };
        record(&metrics, &counts, &now_counts, started.elapsed());
        counts = now_counts;
    }
}

/// Sets the metrics of one run and logs each finding whose count changed.
fn record(
    metrics: &Metrics,
    before: &BTreeMap<Finding, usize>,
    after: &BTreeMap<Finding, usize>,
    took: Duration,
) {
    for (finding, count) in after {
        metrics.set_audit_findings(finding.as_str(), *count);
        let previous = before.get(finding).copied().unwrap_or(0);
        if previous != *count {
            tracing::info!(
                finding = finding.as_str(),
                previous,
                count,
                "audit: pods with this finding changed"
            );
        }
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics.audit_ran(now, took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_state_at_once_then_settled_changes_at_most_every_interval() {
        let s = Schedule::DEFAULT;
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let mut d = Debounce::default();
        assert!(!d.tick(at(0), false, &s), "nothing loaded yet");
        assert!(d.tick(at(1), true, &s), "first state");
        d.ran(at(1));
        assert!(!d.tick(at(2), false, &s));
        // A change, then quiet: not before min_interval since the last run.
        assert!(!d.tick(at(10), true, &s));
        assert!(
            !d.tick(at(16), false, &s),
            "quiet, but within 30 s of the last run"
        );
        assert!(d.tick(at(31), false, &s));
        d.ran(at(31));
        assert!(!d.tick(at(40), false, &s), "nothing new");
        // Constant churn: a change every second is still audited 60 s after it began.
        for t in 41..101 {
            assert!(!d.tick(at(t), true, &s), "churning at {t}");
        }
        assert!(d.tick(at(101), true, &s));
    }
}
