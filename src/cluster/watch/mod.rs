//! Cluster state from the Kubernetes API: one watch per resource (per namespace for pods with
//! `--watch-namespaces`) feeding an in-memory copy of what decisions need, published as immutable
//! [`Snapshot`]s. Admission requests only ever read the latest snapshot: no Kubernetes request
//! is made while a request is being decided.
//!
//! Objects are reduced on arrival (pods to [`PodInfo`], namespaces to their labels), so a large
//! cluster's pods cost a few hundred bytes each. Watches back off and resume on errors, re-list on
//! `410 Gone`, and refresh credentials as kube-rs does.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hyper::body::{Body, Frame, SizeHint};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;

use crate::api::{string_map_at, Mesh, MeshIdentity, NamespaceInfo, PodInfo};
use crate::cluster::{Snapshot, StateHandle};
use crate::metrics::Metrics;
use crate::supervise::{self, supervise, Backoff};

/// Changes are gathered for this long before a new snapshot is published: under pod churn that
/// bounds the rebuild work, while a decision sees a change well within a second.
const PUBLISH_DEBOUNCE: Duration = Duration::from_millis(100);
/// How often readiness and the sync-age metrics are re-evaluated.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// A watch connection the API server has kept open this long counts as recovery, and one that
/// ends sooner as a failure. A quiet resource sends no event after a reconnect, so an open
/// stream is the only sign it works; a response that is cut off or errors as it starts (a proxy
/// dropping it, a truncated body) is over well before this.
const WATCH_SETTLE: Duration = Duration::from_secs(2);

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

    /// The name of its watch task, for the supervisor's log and metrics.
    fn task(self) -> &'static str {
        match self {
            Self::Meshes => "watch-meshes",
            Self::MeshIdentities => "watch-meshidentities",
            Self::Namespaces => "watch-namespaces",
            Self::Pods => "watch-pods",
        }
    }

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

/// What one watch covers: a resource in one namespace, or in all of them (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    resource: Resource,
    namespace: Option<String>,
}

impl Scope {
    /// How readiness messages name the watch.
    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} in {ns}", self.resource.plural()),
            None => self.resource.plural().to_owned(),
        }
    }
}

/// A watch connection the API server answered with success and that is still streaming.
#[derive(Clone, Copy)]
struct OpenWatch {
    /// Tells this connection from the next one, so a late close does not end the newer one.
    id: u64,
    since: Instant,
    /// Counted as recovery already (once per connection).
    credited: bool,
}

/// One watch's health.
#[derive(Clone, Copy)]
struct WatchHealth {
    synced: bool,
    last_success: Instant,
    failing_since: Option<Instant>,
    last_error: Option<Instant>,
    open: Option<OpenWatch>,
}

impl WatchHealth {
    /// Real progress: a completed list or a watch event, or a connection kept open.
    fn progressed(&mut self, now: Instant) {
        self.last_success = now;
        self.failing_since = None;
    }

    fn failed(&mut self, now: Instant) {
        self.failing_since.get_or_insert(now);
        self.last_error = Some(now);
    }

    fn stale(&self, bound: Duration) -> bool {
        self.failing_since
            .is_some_and(|since| since.elapsed() > bound)
    }
}

/// The objects one watch has seen, and its health. Each watch owns its partition, so a
/// (re-)list replaces only what that watch covers, and readiness needs every partition synced.
struct Partition {
    scope: Scope,
    objects: HashMap<Key, Reduced>,
    health: WatchHealth,
}

struct Shared {
    partitions: Mutex<Vec<Partition>>,
    connections: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Shared {
    /// The partition index of the watch a request is for.
    fn index_of(&self, resource: Resource, namespace: Option<&str>) -> Option<usize> {
        let partitions = self.partitions.lock().ok()?;
        partitions
            .iter()
            .position(|p| p.scope.resource == resource && p.scope.namespace.as_deref() == namespace)
    }

    fn with_health(&self, index: usize, f: impl FnOnce(&mut WatchHealth)) {
        if let Ok(mut partitions) = self.partitions.lock() {
            if let Some(partition) = partitions.get_mut(index) {
                f(&mut partition.health);
            }
        }
    }
}

/// A reduced object, ready to store. Everything but pods is boxed: they are few, and pods make
/// up most of the store, so the entry stays two words.
enum Reduced {
    Mesh(Box<Mesh>),
    Identity(Box<MeshIdentity>),
    Namespace(Box<NamespaceInfo>),
    Pod(Arc<PodInfo>),
}

fn reduce(resource: Resource, object: DynamicObject) -> Result<Reduced, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    Ok(match resource {
        Resource::Meshes => Reduced::Mesh(Box::new(
            serde_json::from_value(value).map_err(|e| e.to_string())?,
        )),
        Resource::MeshIdentities => Reduced::Identity(Box::new(
            serde_json::from_value(value).map_err(|e| e.to_string())?,
        )),
        Resource::Namespaces => Reduced::Namespace(Box::new(NamespaceInfo {
            name: value
                .pointer("/metadata/name")
                .and_then(serde_json::Value::as_str)
                .ok_or("metadata.name missing")?
                .to_owned(),
            labels: string_map_at(&value, "/metadata/labels"),
        })),
        Resource::Pods => Reduced::Pod(Arc::new(PodInfo::from_json(&value, None))),
    })
}

fn key_of(object: &DynamicObject) -> Key {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

/// Objects held for `resource`, over all its watches.
fn count(partitions: &[Partition], resource: Resource) -> usize {
    partitions
        .iter()
        .filter(|p| p.scope.resource == resource)
        .map(|p| p.objects.len())
        .sum()
}

/// What a snapshot is made of, taken out of the partitions (pods by pointer).
struct Contents {
    meshes: Vec<Mesh>,
    identities: Vec<MeshIdentity>,
    namespaces: Vec<NamespaceInfo>,
    pods: Vec<Arc<PodInfo>>,
}

impl Contents {
    /// Every partition's objects; cheap enough to take while holding the partitions' lock.
    fn of(partitions: &[Partition]) -> Self {
        let mut contents = Self {
            meshes: Vec::new(),
            identities: Vec::new(),
            namespaces: Vec::new(),
            pods: Vec::with_capacity(count(partitions, Resource::Pods)),
        };
        for reduced in partitions.iter().flat_map(|p| p.objects.values()) {
            match reduced {
                Reduced::Mesh(mesh) => contents.meshes.push(Mesh::clone(mesh)),
                Reduced::Identity(identity) => {
                    contents.identities.push(MeshIdentity::clone(identity))
                }
                Reduced::Namespace(namespace) => {
                    contents.namespaces.push(NamespaceInfo::clone(namespace))
                }
                Reduced::Pod(pod) => contents.pods.push(Arc::clone(pod)),
            }
        }
        contents
    }

    /// The snapshot with its indexes: tens of milliseconds for tens of thousands of pods.
    fn into_snapshot(self) -> Snapshot {
        Snapshot::new(self.meshes, self.identities, self.namespaces, self.pods)
    }
}

/// The watches to run: one per resource, but MeshIdentities in the system namespace only, and
/// pods once per listed namespace when `--watch-namespaces` is given.
fn scopes(config: &WatchConfig) -> Vec<Scope> {
    let mut scopes = Vec::new();
    for resource in Resource::ALL {
        let namespaces = match resource {
            Resource::MeshIdentities => vec![Some(config.system_namespace.clone())],
            Resource::Pods if !config.pod_namespaces.is_empty() => {
                let mut namespaces = config.pod_namespaces.clone();
                // The same namespace twice would be two watches filling one partition slot.
                namespaces.sort_unstable();
                namespaces.dedup();
                namespaces.into_iter().map(Some).collect()
            }
            _ => vec![None],
        };
        scopes.extend(namespaces.into_iter().map(|namespace| Scope {
            resource,
            namespace,
        }));
    }
    scopes
}

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
    let shared = Arc::new(Shared {
        partitions: Mutex::new(
            scopes
                .iter()
                .map(|scope| Partition {
                    scope: scope.clone(),
                    objects: HashMap::new(),
                    health: WatchHealth {
                        synced: false,
                        last_success: now,
                        failing_since: None,
                        last_error: None,
                        open: None,
                    },
                })
                .collect(),
        ),
        connections: AtomicU64::new(0),
        changed: tokio::sync::Notify::new(),
    });
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
        let ar = scope.resource.api_resource();
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

/// Runs the watch `run` makes for partition `index` under a supervisor. While the watch is down
/// its data ages like a failing watch's, so readiness goes once that has lasted past the
/// staleness bound, and comes back when the restarted watch makes progress.
async fn supervise_watch<F, Fut>(
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
    supervise(resource.task(), metrics, backoff, run, down).await;
}

/// The watched resource and namespace scope of a watch request (`?watch=true`), from its path:
/// `.../{plural}` or `.../namespaces/{ns}/{plural}`.
fn watch_target(uri: &http::Uri) -> Option<(Resource, Option<&str>)> {
    let is_watch = uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| matches!(pair, "watch=true" | "watch=1"));
    if !is_watch {
        return None;
    }
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (plural, parents) = segments.split_last()?;
    let resource = Resource::ALL.into_iter().find(|r| r.plural() == *plural)?;
    let namespace = match parents {
        [.., "namespaces", ns] => Some(*ns),
        _ => None,
    };
    Some((resource, namespace))
}

/// A client layer that notes which watch connections the API server has answered successfully
/// and which of them are still streaming. Only that; a success status alone proves nothing, as
/// the body can still fail.
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
    RB: Body,
{
    type Response = http::Response<ObservedBody<RB>>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let index = watch_target(request.uri())
            .and_then(|(resource, namespace)| self.shared.index_of(resource, namespace));
        let shared = self.shared.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let guard = match index {
                Some(index) if response.status().is_success() => {
                    let id = shared.connections.fetch_add(1, Ordering::Relaxed);
                    shared.with_health(index, |h| {
                        h.open = Some(OpenWatch {
                            id,
                            since: Instant::now(),
                            credited: false,
                        });
                    });
                    Some(OpenGuard { shared, index, id })
                }
                _ => None,
            };
            Ok(response.map(|inner| ObservedBody {
                inner: Box::pin(inner),
                guard,
            }))
        })
    }
}

/// Marks its watch connection closed when dropped.
struct OpenGuard {
    shared: Arc<Shared>,
    index: usize,
    id: u64,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let id = self.id;
        let now = Instant::now();
        self.shared.with_health(self.index, |h| {
            let Some(open) = h.open.filter(|open| open.id == id) else {
                return;
            };
            h.open = None;
            // kube-rs resumes a watch whose body is cut off (an unexpected EOF) at once and
            // reports no error, so a connection that keeps breaking as it starts would otherwise
            // never look like a failure.
            if now.duration_since(open.since) < WATCH_SETTLE {
                h.failed(now);
            }
        });
    }
}

/// A response body that closes its watch connection's record when the body ends, fails or is
/// dropped.
struct ObservedBody<B> {
    inner: Pin<Box<B>>,
    guard: Option<OpenGuard>,
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let poll = this.inner.as_mut().poll_frame(cx);
        if matches!(poll, Poll::Ready(None | Some(Err(_)))) {
            this.guard = None;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Logs and counts an object that does not decode. It is left out of the store (and a previous
/// version of it removed), so decisions never use a version that is no longer current.
fn decode_failed(metrics: &Metrics, resource: Resource, key: &Key, error: &str) {
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
async fn run_watch(
    index: usize,
    resource: Resource,
    api: Api<DynamicObject>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
) {
    let mut relist: Option<HashMap<Key, Reduced>> = None;
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
        let (key, reduced) = match event {
            Event::Init => {
                relist = Some(HashMap::new());
                continue;
            }
            Event::InitApply(object) => {
                let key = key_of(&object);
                match reduce(resource, object) {
                    Ok(reduced) => {
                        if let Some(buffer) = relist.as_mut() {
                            buffer.insert(key, reduced);
                        }
                    }
                    Err(e) => decode_failed(&metrics, resource, &key, &e),
                }
                continue;
            }
            Event::InitDone => (None, None),
            Event::Apply(object) => {
                let key = key_of(&object);
                let reduced = reduce(resource, object)
                    .inspect_err(|e| decode_failed(&metrics, resource, &key, e))
                    .ok();
                (Some(key), reduced)
            }
            Event::Delete(object) => (Some(key_of(&object)), None),
        };
        let Ok(mut partitions) = shared.partitions.lock() else {
            return;
        };
        let Some(partition) = partitions.get_mut(index) else {
            return;
        };
        match (key, reduced) {
            (None, _) => {
                partition.objects = relist.take().unwrap_or_default();
                partition.health.synced = true;
            }
            (Some(key), Some(reduced)) => drop(partition.objects.insert(key, reduced)),
            (Some(key), None) => drop(partition.objects.remove(&key)),
        }
        partition.health.progressed(Instant::now());
        metrics.set_store_objects(resource.plural(), count(&partitions, resource));
        drop(partitions);
        shared.changed.notify_one();
    }
}

fn all_synced(shared: &Shared) -> bool {
    shared
        .partitions
        .lock()
        .map(|partitions| partitions.iter().all(|p| p.health.synced))
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
        let contents = match shared.partitions.lock() {
            Ok(partitions) => Contents::of(&partitions),
            Err(_) => return,
        };
        // Indexing a large cluster takes long enough to stall admission requests sharing this
        // runtime thread (and watch events waiting for the lock), so it runs on its own.
        let Ok(snapshot) = tokio::task::spawn_blocking(move || contents.into_snapshot()).await
        else {
            tracing::error!("building the cluster snapshot failed; keeping the previous one");
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
async fn keep_health(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Option<(Resource, Option<String>)> {
        let uri: http::Uri = uri.parse().ok()?;
        watch_target(&uri).map(|(r, ns)| (r, ns.map(str::to_owned)))
    }

    #[test]
    fn watch_requests_map_to_their_watch() {
        assert_eq!(
            target("/api/v1/namespaces/shop/pods?watch=true&resourceVersion=5"),
            Some((Resource::Pods, Some("shop".to_owned())))
        );
        assert_eq!(
            target("/api/v1/pods?allowWatchBookmarks=true&watch=true"),
            Some((Resource::Pods, None))
        );
        assert_eq!(
            target("/api/v1/namespaces?watch=1"),
            Some((Resource::Namespaces, None))
        );
        assert_eq!(
            target("/apis/kuma.io/v1alpha1/namespaces/kuma-system/meshidentities?watch=true"),
            Some((Resource::MeshIdentities, Some("kuma-system".to_owned())))
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
        let shared = Arc::new(Shared {
            partitions: Mutex::new(vec![Partition {
                scope: Scope {
                    resource: Resource::Pods,
                    namespace: None,
                },
                objects: HashMap::new(),
                health: WatchHealth {
                    synced: true,
                    last_success: now,
                    failing_since: None,
                    last_error: None,
                    open: None,
                },
            }]),
            connections: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
        });
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
            Resource::Pods,
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
            .filter(|s| s.resource == Resource::Pods)
            .map(|s| s.namespace)
            .collect();
        assert_eq!(pods, [Some("a".to_owned()), Some("b".to_owned())]);
    }
}
