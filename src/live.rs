//! Cluster state from the Kubernetes API: one watch per resource feeding an in-memory copy of
//! what decisions need, published as immutable [`Snapshot`]s. Admission requests only ever read
//! the latest snapshot: no Kubernetes request is made while a request is being decided.
//!
//! Objects are reduced on arrival (pods to [`PodInfo`], namespaces to their labels), so a large
//! cluster's pods cost a few hundred bytes each. Watches back off and resume on errors, re-list on
//! `410 Gone`, and refresh credentials as kube-rs does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use crate::api::{string_map_at, Mesh, MeshIdentity, NamespaceInfo, PodInfo};
use crate::metrics::Metrics;
use crate::state::{Snapshot, StateHandle};

/// Changes are gathered for this long before a new snapshot is published: under pod churn that
/// bounds the rebuild work, while a decision sees a change well within a second.
const PUBLISH_DEBOUNCE: Duration = Duration::from_millis(100);
/// How often readiness and the sync-age metrics are re-evaluated.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// The resources watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Meshes,
    MeshIdentities,
    Namespaces,
    Pods,
}

impl Resource {
    pub const ALL: [Resource; 4] = [
        Resource::Meshes,
        Resource::MeshIdentities,
        Resource::Namespaces,
        Resource::Pods,
    ];

    /// The plural name; also the metrics label.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Meshes => "meshes",
            Self::MeshIdentities => "meshidentities",
            Self::Namespaces => "namespaces",
            Self::Pods => "pods",
        }
    }

    fn api_resource(self) -> ApiResource {
        let (group, version, kind) = match self {
            Self::Meshes => ("kuma.io", "v1alpha1", "Mesh"),
            Self::MeshIdentities => ("kuma.io", "v1alpha1", "MeshIdentity"),
            Self::Namespaces => ("", "v1", "Namespace"),
            Self::Pods => ("", "v1", "Pod"),
        };
        ApiResource {
            group: group.to_owned(),
            version: version.to_owned(),
            api_version: if group.is_empty() {
                version.to_owned()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.to_owned(),
            plural: self.plural().to_owned(),
        }
    }
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// MeshIdentities are only valid here, so only this namespace is watched for them.
    pub system_namespace: String,
    /// Pods of these namespaces only; empty means every namespace.
    pub pod_namespaces: Vec<String>,
    /// A watch failing for longer than this makes the server unready.
    pub staleness_bound: Duration,
}

type Key = (String, String);

/// The reduced objects, per resource.
#[derive(Default)]
struct Objects {
    meshes: HashMap<String, Mesh>,
    identities: HashMap<Key, MeshIdentity>,
    namespaces: HashMap<String, NamespaceInfo>,
    pods: HashMap<Key, Arc<PodInfo>>,
}

/// One watch's health.
#[derive(Clone, Copy)]
struct WatchHealth {
    synced: bool,
    last_success: Instant,
    failing_since: Option<Instant>,
}

struct Shared {
    objects: Mutex<Objects>,
    health: Mutex<HashMap<Resource, WatchHealth>>,
    changed: tokio::sync::Notify,
}

/// A reduced object, ready to store. Meshes and identities are boxed: they are few, and large
/// next to the pods that make up most events.
enum Reduced {
    Mesh(Box<Mesh>),
    Identity(Box<MeshIdentity>),
    Namespace(NamespaceInfo),
    Pod(PodInfo),
}

fn reduce(resource: Resource, object: DynamicObject) -> Option<Reduced> {
    let value = serde_json::to_value(object).ok()?;
    Some(match resource {
        Resource::Meshes => Reduced::Mesh(Box::new(serde_json::from_value(value).ok()?)),
        Resource::MeshIdentities => {
            Reduced::Identity(Box::new(serde_json::from_value(value).ok()?))
        }
        Resource::Namespaces => Reduced::Namespace(NamespaceInfo {
            name: value.pointer("/metadata/name")?.as_str()?.to_owned(),
            labels: string_map_at(&value, "/metadata/labels"),
        }),
        Resource::Pods => Reduced::Pod(PodInfo::from_json(&value, None)),
    })
}

fn key_of(object: &DynamicObject) -> Key {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

impl Objects {
    fn clear(&mut self, resource: Resource) {
        match resource {
            Resource::Meshes => self.meshes.clear(),
            Resource::MeshIdentities => self.identities.clear(),
            Resource::Namespaces => self.namespaces.clear(),
            Resource::Pods => self.pods.clear(),
        }
    }

    fn insert(&mut self, key: Key, reduced: Reduced) {
        match reduced {
            Reduced::Mesh(mesh) => {
                self.meshes.insert(key.1, *mesh);
            }
            Reduced::Identity(identity) => {
                self.identities.insert(key, *identity);
            }
            Reduced::Namespace(namespace) => {
                self.namespaces.insert(key.1, namespace);
            }
            Reduced::Pod(pod) => {
                self.pods.insert(key, Arc::new(pod));
            }
        }
    }

    fn remove(&mut self, resource: Resource, key: &Key) {
        match resource {
            Resource::Meshes => drop(self.meshes.remove(&key.1)),
            Resource::MeshIdentities => drop(self.identities.remove(key)),
            Resource::Namespaces => drop(self.namespaces.remove(&key.1)),
            Resource::Pods => drop(self.pods.remove(key)),
        }
    }

    fn len(&self, resource: Resource) -> usize {
        match resource {
            Resource::Meshes => self.meshes.len(),
            Resource::MeshIdentities => self.identities.len(),
            Resource::Namespaces => self.namespaces.len(),
            Resource::Pods => self.pods.len(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(
            self.meshes.values().cloned().collect(),
            self.identities.values().cloned().collect(),
            self.namespaces.values().cloned().collect(),
            self.pods.values().cloned().collect(),
        )
    }
}

/// Starts the watches and the publisher on the current runtime. The state handle gets its first
/// snapshot once every watch has completed its initial list.
pub fn start(
    kube_config: kube::Config,
    config: WatchConfig,
    state: Arc<StateHandle>,
    metrics: Arc<Metrics>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, kube::Error> {
    let now = Instant::now();
    let shared = Arc::new(Shared {
        objects: Mutex::new(Objects::default()),
        health: Mutex::new(
            Resource::ALL
                .into_iter()
                .map(|r| {
                    let health = WatchHealth {
                        synced: false,
                        last_success: now,
                        failing_since: None,
                    };
                    (r, health)
                })
                .collect(),
        ),
        changed: tokio::sync::Notify::new(),
    });
    // Watch events alone cannot show recovery: a watch that reconnects to a quiet resource sees
    // no event. Every successful response from the API server for a resource marks it healthy.
    let client = kube::client::ClientBuilder::try_from(kube_config)?
        .with_layer(&ObserveLayer {
            shared: shared.clone(),
        })
        .build();
    let mut tasks = Vec::new();
    for resource in Resource::ALL {
        for api in apis(&client, resource, &config) {
            tasks.push(tokio::spawn(run_watch(
                resource,
                api,
                shared.clone(),
                metrics.clone(),
            )));
        }
    }
    tasks.push(tokio::spawn(publish(
        shared.clone(),
        state.clone(),
        metrics.clone(),
    )));
    tasks.push(tokio::spawn(supervise(
        shared,
        state,
        metrics,
        config.staleness_bound,
    )));
    Ok(tasks)
}

/// The watched resource a request path is for: list and watch paths end in the plural.
fn resource_of(path: &str) -> Option<Resource> {
    let plural = path.rsplit('/').next()?;
    Resource::ALL.into_iter().find(|r| r.plural() == plural)
}

/// A client layer that marks a resource reachable whenever the API server answers a request
/// for it successfully (for a watch: when the stream is established).
#[derive(Clone)]
struct ObserveLayer {
    shared: Arc<Shared>,
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
struct Observe<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, B, RB> tower::Service<http::Request<B>> for Observe<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let resource = resource_of(request.uri().path());
        let shared = self.shared.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            if let (Some(resource), Ok(ok)) = (resource, &response) {
                if ok.status().is_success() {
                    mark_success(&shared, resource, false);
                }
            }
            response
        })
    }
}

fn apis(
    client: &kube::Client,
    resource: Resource,
    config: &WatchConfig,
) -> Vec<Api<DynamicObject>> {
    let ar = resource.api_resource();
    match resource {
        Resource::MeshIdentities => vec![Api::namespaced_with(
            client.clone(),
            &config.system_namespace,
            &ar,
        )],
        Resource::Pods if !config.pod_namespaces.is_empty() => config
            .pod_namespaces
            .iter()
            .map(|ns| Api::namespaced_with(client.clone(), ns, &ar))
            .collect(),
        _ => vec![Api::all_with(client.clone(), &ar)],
    }
}

/// Follows one watch for ever. Objects listed during a (re-)list are buffered and swapped in at
/// its end, so a re-list after `410 Gone` never shows a half-empty cluster.
async fn run_watch(
    resource: Resource,
    api: Api<DynamicObject>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
) {
    let mut relist: Option<Vec<(Key, Reduced)>> = None;
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                tracing::warn!(resource = resource.plural(), error = %e, "watch failed; backing off");
                metrics.watch_restart(resource.plural());
                if let Ok(mut health) = shared.health.lock() {
                    if let Some(h) = health.get_mut(&resource) {
                        h.failing_since.get_or_insert_with(Instant::now);
                    }
                }
                continue;
            }
        };
        mark_success(&shared, resource, matches!(event, Event::InitDone));
        let Ok(mut objects) = shared.objects.lock() else {
            return;
        };
        match event {
            Event::Init => relist = Some(Vec::new()),
            Event::InitApply(object) => {
                let key = key_of(&object);
                if let (Some(buffer), Some(reduced)) = (relist.as_mut(), reduce(resource, object)) {
                    buffer.push((key, reduced));
                }
            }
            Event::InitDone => {
                objects.clear(resource);
                for (key, reduced) in relist.take().unwrap_or_default() {
                    objects.insert(key, reduced);
                }
            }
            Event::Apply(object) => {
                let key = key_of(&object);
                if let Some(reduced) = reduce(resource, object) {
                    objects.insert(key, reduced);
                }
            }
            Event::Delete(object) => objects.remove(resource, &key_of(&object)),
        }
        metrics.set_store_objects(resource.plural(), objects.len(resource));
        drop(objects);
        shared.changed.notify_one();
    }
}

fn mark_success(shared: &Shared, resource: Resource, synced: bool) {
    if let Ok(mut health) = shared.health.lock() {
        if let Some(h) = health.get_mut(&resource) {
            h.last_success = Instant::now();
            h.failing_since = None;
            h.synced |= synced;
        }
    }
}

fn all_synced(shared: &Shared) -> bool {
    shared
        .health
        .lock()
        .map(|health| health.values().all(|h| h.synced))
        .unwrap_or(false)
}

/// Publishes a new snapshot after changes, once every watch has synced.
async fn publish(shared: Arc<Shared>, state: Arc<StateHandle>, metrics: Arc<Metrics>) {
    loop {
        shared.changed.notified().await;
        tokio::time::sleep(PUBLISH_DEBOUNCE).await;
        if !all_synced(&shared) {
            continue;
        }
        let snapshot = match shared.objects.lock() {
            Ok(objects) => objects.snapshot(),
            Err(_) => return,
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
async fn supervise(
    shared: Arc<Shared>,
    state: Arc<StateHandle>,
    metrics: Arc<Metrics>,
    staleness_bound: Duration,
) {
    let mut ticker = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        ticker.tick().await;
        let Ok(health) = shared.health.lock().map(|h| h.clone()) else {
            return;
        };
        let mut stale = Vec::new();
        for (resource, h) in &health {
            metrics.set_sync_age(resource.plural(), h.last_success.elapsed().as_secs_f64());
            if h.failing_since
                .is_some_and(|since| since.elapsed() > staleness_bound)
            {
                stale.push(resource.plural());
            }
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
