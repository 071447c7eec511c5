//! Snapshots published from the partitions once every watch has synced, and readiness kept
//! honest while watches fail.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::StateHandle;
use crate::metrics::Metrics;

use super::resources::Resource;
use super::store::{Shared, WATCH_SETTLE};

/// Changes are gathered for this long before a new snapshot is published: under pod churn that
/// bounds the rebuild work, while a decision sees a change well within a second.
pub(super) const PUBLISH_DEBOUNCE: Duration = Duration::from_millis(100);
/// How often readiness and the sync-age metrics are re-evaluated.
pub(super) const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
pub(super) fn all_synced(shared: &Shared) -> bool {
    shared
        .partitions
        .lock()
        .map(|partitions| partitions.iter().all(|p| p.health.synced))
        .unwrap_or(false)
}

/// Publishes a new snapshot after changes, once every watch has synced.
pub(super) async fn publish(shared: Arc<Shared>, state: Arc<StateHandle>, metrics: Arc<Metrics>) {
    loop {
        shared.changed.notified().await;
        tokio::time::sleep(PUBLISH_DEBOUNCE).await;
        if !all_synced(&shared) {
            continue;
        }
        // The live snapshot is kept indexed as changes arrive, so this is a copy of pointers and
        // positions: a few milliseconds for tens of thousands of pods, still long enough to be
        // kept off the runtime threads admission requests share.
        let live = shared.clone();
        let Ok(Some(snapshot)) =
            tokio::task::spawn_blocking(move || live.live.lock().ok().map(|live| live.clone()))
                .await
        else {
            tracing::error!("copying the cluster snapshot failed; keeping the previous one");
            continue;
        };
        if state.get().is_none() {
            tracing::info!(
                meshes = snapshot.mesh_count(),
                mesh_identities = snapshot.identity_count(),
                pods = snapshot.pod_count(),
                "initial cluster state synced"
            );
        }
        state.set(Arc::new(snapshot));
        metrics.snapshots_published.inc();
    }
}

/// Keeps readiness honest: unready while any watch has been failing longer than the bound.
/// Also credits watch connections that have stayed open as recovery.
pub(super) async fn keep_health(
    shared: Arc<Shared>,
    state: Arc<StateHandle>,
    metrics: Arc<Metrics>,
    staleness_bound: Duration,
) {
    let mut ticker = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let mut stale = Vec::new();
        let mut ages: HashMap<Resource, f64> = HashMap::new();
        {
            let Ok(mut partitions) = shared.partitions.lock() else {
                return;
            };
            for partition in partitions.iter_mut() {
                let h = &mut partition.health;
                if let Some(open) = h.open.as_mut() {
                    let settled = now.duration_since(open.since) >= WATCH_SETTLE;
                    // An error after the connection opened means it is not the one working.
                    let clean = h.last_error.is_none_or(|error| error < open.since);
                    if settled && clean && !open.credited {
                        open.credited = true;
                        h.progressed(now);
                    }
                }
                if h.stale(staleness_bound) {
                    stale.push(partition.scope.describe());
                }
                // A resource is as old as its oldest watch.
                let age = now.duration_since(h.last_success).as_secs_f64();
                let entry = ages.entry(partition.scope.resource).or_insert(0.0);
                *entry = entry.max(age);
            }
        }
        for (resource, age) in ages {
            metrics.set_sync_age(resource.plural(), age);
        }
        stale.sort_unstable();
        state.set_unready_reason((!stale.is_empty()).then(|| {
            format!(
                "watches failing for over {staleness_bound:?}: {}",
                stale.join(", ")
            )
        }));
    }
}
