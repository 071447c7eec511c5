//! Cluster state from the Kubernetes API: one watch per resource (per namespace for pods with
//! `--watch-namespaces`) feeding an in-memory copy of what decisions need, published as immutable
//! [`Snapshot`]s. Admission requests only ever read the latest snapshot: no Kubernetes request
//! is made while a request is being decided.
//!
//! Objects are reduced on arrival (pods to [`PodInfo`], namespaces to their labels), so a large
//! cluster's pods cost a few hundred bytes each. Watches back off and resume on errors, re-list on
//! `410 Gone`, and refresh credentials as kube-rs does.

mod intern;
mod objects;
mod observe;
mod publish;
mod resources;
mod run;
mod store;

use std::sync::Arc;
use std::time::Instant;

use kube::api::Api;

use crate::cluster::StateHandle;
use crate::metrics::Metrics;
use crate::supervise::{self, Backoff};

use observe::ObserveLayer;
use publish::{keep_health, publish};
pub(crate) use resources::api_resource;
use resources::scopes;
pub use resources::{Resource, WatchConfig};
use run::{run_watch, supervise_watch};
use store::{Partition, Shared};

/// Starts the watches, the publisher and the health tracker on the current runtime, each under
/// a [`supervise`]or that restarts it if it ends; returns the supervisors, which never end on
/// their own. The state handle gets its first snapshot once every watch has completed its
/// initial list.
pub fn start(
    kube_config: kube::Config,
    config: WatchConfig,
    state: Arc<StateHandle>,
    metrics: Arc<Metrics>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, kube::Error> {
    let now = Instant::now();
    let scopes = scopes(&config);
    let shared = Arc::new(Shared::new(
        scopes
            .iter()
            .map(|scope| Partition::new(scope.clone(), now))
            .collect(),
    ));
    // Watch events alone cannot show recovery: a watch that reconnects to a quiet resource sees
    // no event. The layer notes which watch connections are open, and one kept open for
    // WATCH_SETTLE counts as recovered.
    let client = kube::client::ClientBuilder::try_from(kube_config)?
        .with_layer(&ObserveLayer {
            shared: shared.clone(),
        })
        .build();
    let mut tasks = Vec::new();
    for (index, scope) in scopes.into_iter().enumerate() {
        let ar = api_resource(scope.resource);
        let api = match &scope.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let (watch_shared, watch_metrics) = (shared.clone(), metrics.clone());
        tasks.push(tokio::spawn(supervise_watch(
            index,
            scope.resource,
            shared.clone(),
            metrics.clone(),
            Backoff::DEFAULT,
            move || {
                run_watch(
                    index,
                    scope.resource,
                    api.clone(),
                    watch_shared.clone(),
                    watch_metrics.clone(),
                )
            },
        )));
    }
    let (publish_shared, publish_state) = (shared.clone(), state.clone());
    tasks.push(supervise::spawn("publisher", &metrics, move |metrics| {
        publish(publish_shared.clone(), publish_state.clone(), metrics)
    }));
    let staleness_bound = config.staleness_bound;
    tasks.push(supervise::spawn("health", &metrics, move |metrics| {
        keep_health(shared.clone(), state.clone(), metrics, staleness_bound)
    }));
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::api::Kind;
    use crate::cluster::Snapshot;
    use resources::watch_target;

    fn target(uri: &str) -> Option<(Resource, Option<String>)> {
        let uri: http::Uri = uri.parse().ok()?;
        watch_target(&uri).map(|(r, ns)| (r, ns.map(str::to_owned)))
    }

    #[test]
    fn watch_requests_map_to_their_watch() {
        assert_eq!(
            target("/api/v1/namespaces/shop/pods?watch=true&resourceVersion=5"),
            Some((Kind::Pod, Some("shop".to_owned())))
        );
        assert_eq!(
            target("/api/v1/pods?allowWatchBookmarks=true&watch=true"),
            Some((Kind::Pod, None))
        );
        assert_eq!(
            target("/api/v1/namespaces?watch=1"),
            Some((Kind::Namespace, None))
        );
        assert_eq!(
            target("/apis/kuma.io/v1alpha1/namespaces/kuma-system/meshidentities?watch=true"),
            Some((Kind::MeshIdentity, Some("kuma-system".to_owned())))
        );
        // Lists and single objects are not watches.
        assert_eq!(target("/api/v1/pods?limit=500"), None);
        assert_eq!(target("/api/v1/namespaces/shop?watch=true"), None);
    }

    /// A watch task that ends is restarted; while it is down the replica turns unready once the
    /// staleness bound has passed, and it is ready again once the restarted watch progresses.
    #[tokio::test]
    async fn a_watch_that_ends_is_restarted_and_readiness_follows() {
        let now = Instant::now();
        let mut partition = Partition::all_pods(now);
        partition.health.synced = true;
        let shared = Arc::new(Shared::new(vec![partition]));
        let state = Arc::new(StateHandle::default());
        state.set(Arc::new(Snapshot::default()));
        let metrics = Arc::new(Metrics::new());
        let bound = Duration::from_millis(300);
        let health = tokio::spawn(keep_health(
            shared.clone(),
            state.clone(),
            metrics.clone(),
            bound,
        ));
        // The first run ends at once; the second, after the pause, progresses and stays up.
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let backoff = Backoff {
            first: Duration::from_millis(2500),
            ..Backoff::DEFAULT
        };
        let watch = {
            let (runs, shared) = (runs.clone(), shared.clone());
            move || {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                async move {
                    if run > 0 {
                        shared.with_health(0, |h| h.progressed(Instant::now()));
                        std::future::pending::<()>().await;
                    }
                }
            }
        };
        let supervisor = tokio::spawn(supervise_watch(
            0,
            Kind::Pod,
            shared,
            metrics.clone(),
            backoff,
            watch,
        ));
        let started = Instant::now();
        let unready = loop {
            if let Err(reason) = state.readiness() {
                break reason;
            }
            assert!(started.elapsed() < Duration::from_secs(2), "still ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(unready.contains("pods"), "{unready}");
        assert!(started.elapsed() >= bound);
        while state.readiness().is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(6),
                "not ready again"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let text = metrics.encode();
        assert!(
            text.contains(r#"task_restarts_total{task="watch-pods"} 1"#),
            "{text}"
        );
        supervisor.abort();
        health.abort();
    }

    #[test]
    fn pods_get_one_watch_per_namespace() {
        let config = WatchConfig {
            system_namespace: "kuma-system".to_owned(),
            pod_namespaces: vec!["b".to_owned(), "a".to_owned(), "b".to_owned()],
            staleness_bound: Duration::from_secs(1),
        };
        let pods: Vec<_> = scopes(&config)
            .into_iter()
            .filter(|s| s.resource == Kind::Pod)
            .map(|s| s.namespace)
            .collect();
        assert_eq!(pods, [Some("a".to_owned()), Some("b".to_owned())]);
    }
}
