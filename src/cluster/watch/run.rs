//! One watch, followed for ever into its partition, under a supervisor.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use crate::metrics::Metrics;
use crate::supervise::{supervise, Backoff};

use super::objects::Objects;
use super::resources::{task_name, Key, Resource};
use super::store::{count, key_of, reduce, Change, Shared};

/// Runs the watch `run` makes for partition `index` under a supervisor. While the watch is down
/// its data ages like a failing watch's, so readiness goes once that has lasted past the
/// staleness bound, and comes back when the restarted watch makes progress.
pub(super) async fn supervise_watch<F, Fut>(
    index: usize,
    resource: Resource,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    backoff: Backoff,
    run: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let down = move || shared.with_health(index, |h| h.failed(Instant::now()));
    supervise(task_name(resource), metrics, backoff, run, down).await;
}

/// Logs and counts an object that does not decode. It is left out of the store (and a previous
/// version of it removed), so decisions never use a version that is no longer current.
pub(super) fn decode_failed(metrics: &Metrics, resource: Resource, key: &Key, error: &str) {
    tracing::warn!(
        resource = resource.plural(),
        namespace = key.0,
        name = key.1,
        error,
        "watched object does not decode; left out of the cluster state"
    );
    metrics.decode_error(resource.plural());
}

/// Follows one watch for ever, into partition `index`. Objects listed during a (re-)list are
/// buffered and swapped in at its end, so a re-list after `410 Gone` never shows a half-empty
/// cluster.
pub(super) async fn run_watch(
    index: usize,
    resource: Resource,
    api: Api<DynamicObject>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
) {
    let mut relist: Option<Objects> = None;
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(resource = resource.plural(), error = %e, "watch failed; backing off");
                metrics.watch_restart(resource.plural());
                shared.with_health(index, |h| h.failed(Instant::now()));
                continue;
            }
        };
        // Decoded before taking the lock: the lock is shared by every watch.
        let change = match event {
            Event::Init => {
                relist = Some(Objects::default());
                continue;
            }
            Event::InitApply(object) => {
                let key = key_of(&object);
                match reduce(resource, object, &shared.interner) {
                    Ok(reduced) => {
                        if let Some(buffer) = relist.as_mut() {
                            buffer.insert(reduced);
                        }
                    }
                    Err(e) => decode_failed(&metrics, resource, &key, &e),
                }
                continue;
            }
            Event::InitDone => Change::Relisted(relist.take().unwrap_or_default()),
            Event::Apply(object) => {
                let key = key_of(&object);
                match reduce(resource, object, &shared.interner) {
                    Ok(reduced) => Change::Apply(reduced),
                    Err(e) => {
                        decode_failed(&metrics, resource, &key, &e);
                        Change::Remove(key)
                    }
                }
            }
            Event::Delete(object) => Change::Remove(key_of(&object)),
        };
        let Ok(mut partitions) = shared.partitions.lock() else {
            return;
        };
        let Ok(mut live) = shared.live.lock() else {
            return;
        };
        let Some(partition) = partitions.get_mut(index) else {
            return;
        };
        partition.apply(change, &mut live);
        drop(live);
        partition.health.progressed(Instant::now());
        metrics.set_store_objects(resource.plural(), count(&partitions, resource));
        drop(partitions);
        shared.changed.notify_one();
    }
}
