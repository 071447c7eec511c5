//! An in-process, plain-HTTP fake of kube-apiserver's list/watch protocol, for testing a kube-rs
//! `watcher` against the real wire format without a cluster.
//!
//! Served resources (GET only):
//! - `kuma.io/v1alpha1` `Mesh` (cluster-scoped): `/apis/kuma.io/v1alpha1/meshes[/{name}]`
//! - `kuma.io/v1alpha1` `MeshIdentity` (namespaced): `/apis/kuma.io/v1alpha1/meshidentities` and
//!   `/apis/kuma.io/v1alpha1/namespaces/{ns}/meshidentities[/{name}]`
//! - `v1` `Namespace` (cluster-scoped): `/api/v1/namespaces[/{name}]`
//! - `v1` `Pod` (namespaced): `/api/v1/pods` and `/api/v1/namespaces/{ns}/pods[/{name}]`
//! - `/version`
//!
//! Lists return pages of `limit` items with a `continue` token (everything at once without
//! `limit`) at the current global resourceVersion (`labelSelector`, `fieldSelector`,
//! `resourceVersion`, `resourceVersionMatch` are accepted and ignored). Watches (`watch=true|1`) stream newline-delimited `{"type","object"}` events:
//! every retained event newer than `resourceVersion`, then live ones; a `resourceVersion` older
//! than the retained history gets a single `ERROR` event (Status 410 `Expired`) and the stream
//! ends. `resourceVersion` absent or `"0"` starts with synthetic `ADDED` events for the current
//! state; `sendInitialEvents=true` does the same and ends the initial state with a `BOOKMARK`
//! annotated `k8s.io/initial-events-end: "true"`. `allowWatchBookmarks=true` sends a `BOOKMARK`
//! at the current resourceVersion right after catching up. `timeoutSeconds` ends the stream.
//!
//! Failure modes for tests: every request answered `500` ([`FakeApiServer::set_failing`]), or `200`
//! with a body cut off mid-way ([`FakeApiServer::set_broken`]); list pages after the first
//! answered `410 Expired` ([`FakeApiServer::set_continue_expired`]); lists held back, everywhere or in
//! one namespace ([`FakeApiServer::pause_lists`], [`FakeApiServer::pause_lists_in`]); watch
//! streams ended, all or one watch's ([`FakeApiServer::drop_watches`],
//! [`FakeApiServer::drop_watches_in`]).
//!
//! Query strings are parsed by hand, so this needs neither axum's `query` feature nor
//! tokio-stream.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How many events the fake retains before the oldest are forgotten (as etcd compaction would).
const HISTORY_LIMIT: usize = 10_000;
/// Capacity of the live event channel; a watch that falls this far behind is ended.
const CHANNEL_CAPACITY: usize = 4_096;

/// A resource type the fake serves.
#[derive(Debug, Clone, Copy)]
struct ResourceType {
    api_version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
}

const RESOURCES: &[ResourceType] = &[
    ResourceType {
        api_version: "kuma.io/v1alpha1",
        kind: "Mesh",
        plural: "meshes",
        namespaced: false,
    },
    ResourceType {
        api_version: "kuma.io/v1alpha1",
        kind: "MeshIdentity",
        plural: "meshidentities",
        namespaced: true,
    },
    ResourceType {
        api_version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        namespaced: false,
    },
    ResourceType {
        api_version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
    },
];

/// (apiVersion, kind, namespace or "", name)
type ObjectKey = (String, String, String, String);

/// The store key of an object: cluster-scoped objects have the empty namespace.
fn key_of(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectKey {
    (
        api_version.to_owned(),
        kind.to_owned(),
        namespace.unwrap_or("").to_owned(),
        name.to_owned(),
    )
}

#[derive(Debug)]
struct Event {
    rv: u64,
    api_version: String,
    kind: String,
    namespace: String,
    event_type: &'static str,
    object: Value,
}

impl Event {
    fn matches(&self, resource: &ResourceType, namespace: Option<&str>) -> bool {
        self.api_version == resource.api_version
            && self.kind == resource.kind
            && namespace.is_none_or(|ns| ns == self.namespace)
    }

    fn line(&self) -> String {
        watch_line(self.event_type, &self.object)
    }
}

#[derive(Debug, Clone)]
enum Message {
    Event(Arc<Event>),
    DropWatches,
    /// Ends the watches of one resource (by plural) with exactly this namespace scope (`None`:
    /// watches across all namespaces).
    DropWatchesIn(&'static str, Option<String>),
}

/// Which lists are held back.
#[derive(Debug, Default)]
struct Pause {
    all: bool,
    namespaces: BTreeSet<String>,
}

impl Pause {
    fn holds(&self, namespace: Option<&str>) -> bool {
        self.all || namespace.is_some_and(|ns| self.namespaces.contains(ns))
    }
}

#[derive(Debug, Default)]
struct Store {
    /// The global resourceVersion: the rv of the latest change (starts at 1).
    rv: u64,
    objects: BTreeMap<ObjectKey, Value>,
    history: VecDeque<Arc<Event>>,
    /// Highest rv whose event is no longer retained; watches from an older rv get 410.
    compacted_through: u64,
    uid_counter: u64,
    list_counts: HashMap<String, usize>,
    watch_counts: HashMap<String, usize>,
    requests: Vec<String>,
}

impl Store {
    fn record(&mut self, event: Arc<Event>, events: &broadcast::Sender<Message>) {
        self.history.push_back(Arc::clone(&event));
        while self.history.len() > HISTORY_LIMIT {
            if let Some(old) = self.history.pop_front() {
                self.compacted_through = old.rv;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = events.send(Message::Event(event));
    }
}

#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    events: broadcast::Sender<Message>,
    failing: AtomicBool,
    broken: AtomicBool,
    expire_continue: AtomicBool,
    paused: watch::Sender<Pause>,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The fake apiserver. Dropping it stops accepting connections and ends open watch streams.
#[derive(Debug)]
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeApiServer {
    /// Starts on 127.0.0.1:0 in the current tokio runtime. Panics if it cannot bind.
    #[allow(clippy::panic)]
    pub async fn start() -> FakeApiServer {
        let (events, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (paused, _) = watch::channel(Pause::default());
        let shared = Arc::new(Shared {
            store: Mutex::new(Store {
                rv: 1,
                ..Store::default()
            }),
            events,
            failing: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            expire_continue: AtomicBool::new(false),
            paused,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("fake apiserver: bind 127.0.0.1:0: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake apiserver: local_addr: {e}"));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApiServer { shared, addr, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The current global resourceVersion (what a list would report now).
    pub fn resource_version(&self) -> u64 {
        self.shared.store().rv
    }

    /// Adds or replaces (by apiVersion+kind+namespace+name) an object; emits ADDED or MODIFIED;
    /// sets `metadata.resourceVersion` (and `metadata.uid` if absent, keeping the stored uid on
    /// replace). Returns the new rv. Panics if apiVersion, kind or metadata.name is missing.
    pub fn apply(&self, mut object: Value) -> u64 {
        let (api_version, kind, namespace, name) = object_key(&object);
        let key: ObjectKey = (api_version.clone(), kind.clone(), namespace.clone(), name);
        let mut store = self.shared.store();
        store.rv += 1;
        let rv = store.rv;
        let previous_uid = store
            .objects
            .get(&key)
            .and_then(|old| old.pointer("/metadata/uid"))
            .cloned();
        let existed = store.objects.contains_key(&key);
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
            if !metadata.contains_key("uid") {
                let uid = match previous_uid {
                    Some(uid) => uid,
                    None => {
                        store.uid_counter += 1;
                        Value::String(format!(
                            "00000000-0000-4000-8000-{:012x}",
                            store.uid_counter
                        ))
                    }
                };
                metadata.insert("uid".to_owned(), uid);
            }
            if !metadata.contains_key("creationTimestamp") {
                metadata.insert(
                    "creationTimestamp".to_owned(),
                    Value::String("2025-01-01T00:00:00Z".to_owned()),
                );
            }
        }
        store.objects.insert(key, object.clone());
        let event = Arc::new(Event {
            rv,
            api_version,
            kind,
            namespace,
            event_type: if existed { "MODIFIED" } else { "ADDED" },
            object,
        });
        store.record(event, &self.shared.events);
        rv
    }

    /// Deletes; emits DELETED with the last state (carrying the deletion's resourceVersion).
    /// Returns whether it existed.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let key = key_of(api_version, kind, namespace, name);
        let mut store = self.shared.store();
        let Some(mut object) = store.objects.remove(&key) else {
            return false;
        };
        store.rv += 1;
        let rv = store.rv;
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
        }
        let event = Arc::new(Event {
            rv,
            api_version: key.0,
            kind: key.1,
            namespace: key.2,
            event_type: "DELETED",
            object,
        });
        store.record(event, &self.shared.events);
        true
    }

    /// The stored object, if any.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let key = key_of(api_version, kind, namespace, name);
        self.shared.store().objects.get(&key).cloned()
    }

    /// Ends every open watch stream (as an apiserver restart or a load balancer would). The
    /// responses end cleanly (final chunk), so clients see end-of-stream, not an error.
    pub fn drop_watches(&self) {
        let _ = self.shared.events.send(Message::DropWatches);
    }

    /// Ends the open watch streams of one resource (by plural, e.g. `"pods"`) whose scope is
    /// exactly `namespace` (`None`: the watches across all namespaces); other watches go on.
    #[allow(clippy::panic)]
    pub fn drop_watches_in(&self, plural: &str, namespace: Option<&str>) {
        let Some(resource) = RESOURCES.iter().find(|r| r.plural == plural) else {
            panic!("fake apiserver: no resource {plural}");
        };
        let _ = self.shared.events.send(Message::DropWatchesIn(
            resource.plural,
            namespace.map(str::to_owned),
        ));
    }

    /// Forgets event history up to now, so any watch resuming from an older rv gets 410 Expired.
    /// A watch from exactly the current rv (e.g. a fresh list's) still works.
    pub fn compact(&self) {
        let mut store = self.shared.store();
        store.history.clear();
        store.compacted_through = store.rv;
    }

    /// Answers every list that carries a `continue` token with 410 `Expired`, as the API server
    /// does once the token's resourceVersion is compacted away — until set back to false.
    pub fn set_continue_expired(&self, expired: bool) {
        self.shared.expire_continue.store(expired, Ordering::SeqCst);
    }

    /// Makes every request fail with 500 (Status body) until set back to false — to test backoff.
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// Makes every resource request (list or watch) answer `200` with a body that stops
    /// mid-way and then fails, as a connection cut during the response would — until set back to
    /// false. Tests that a success status alone is not taken for a working watch.
    pub fn set_broken(&self, broken: bool) {
        self.shared.broken.store(broken, Ordering::SeqCst);
    }

    /// While paused, list requests hang (no response); when unpaused, the waiting ones are
    /// answered with the state at that moment — to test readiness before the first sync.
    pub fn pause_lists(&self, paused: bool) {
        self.shared.paused.send_modify(|pause| pause.all = paused);
    }

    /// As [`pause_lists`](Self::pause_lists), for lists scoped to one namespace only.
    pub fn pause_lists_in(&self, namespace: &str, paused: bool) {
        self.shared.paused.send_modify(|pause| {
            if paused {
                pause.namespaces.insert(namespace.to_owned());
            } else {
                pause.namespaces.remove(namespace);
            }
        });
    }

    /// How many list requests a resource (by plural, any namespace) got, counting failed and
    /// paused ones.
    pub fn list_count(&self, plural: &str) -> usize {
        self.shared
            .store()
            .list_counts
            .get(plural)
            .copied()
            .unwrap_or(0)
    }

    /// How many watch requests a resource (by plural, any namespace) got, counting failed ones.
    pub fn watch_count(&self, plural: &str) -> usize {
        self.shared
            .store()
            .watch_counts
            .get(plural)
            .copied()
            .unwrap_or(0)
    }

    /// Every request received so far, as `METHOD /path?query` (query as sent, still encoded).
    pub fn requests(&self) -> Vec<String> {
        self.shared.store().requests.clone()
    }

    /// Writes a kubeconfig file pointing at this server (no auth, plain http) to `path`. Panics if
    /// the file cannot be written.
    #[allow(clippy::panic)]
    pub fn write_kubeconfig(&self, path: &Path) {
        let text = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: fake\n  \
               cluster:\n    \
                 server: {url}\n\
             contexts:\n\
             - name: fake\n  \
               context:\n    \
                 cluster: fake\n    \
                 user: fake\n    \
                 namespace: default\n\
             current-context: fake\n\
             preferences: {{}}\n\
             users:\n\
             - name: fake\n  \
               user: {{}}\n",
            url = self.url()
        );
        std::fs::write(path, text)
            .unwrap_or_else(|e| panic!("fake apiserver: write {}: {e}", path.display()));
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.shared.events.send(Message::DropWatches);
    }
}

#[allow(clippy::panic)]
fn object_key(object: &Value) -> ObjectKey {
    let field = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    let (Some(api_version), Some(kind), Some(name)) = (
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/name"),
    ) else {
        panic!("fake apiserver: object needs apiVersion, kind and metadata.name: {object}");
    };
    key_of(api_version, kind, field("/metadata/namespace"), name)
}

fn watch_line(event_type: &str, object: &Value) -> String {
    let mut line = json!({ "type": event_type, "object": object }).to_string();
    line.push('\n');
    line
}

fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let (Some(details), Some(map)) = (details, body.as_object_mut()) {
        map.insert("details".to_owned(), details);
    }
    body
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap_or_default()
}

fn status_response(code: StatusCode, reason: &str, message: &str) -> Response {
    json_response(code, &status(code, reason, message, None))
}

/// Decodes `application/x-www-form-urlencoded` query parameters.
fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                    match hex.and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn is_true(params: &HashMap<String, String>, name: &str) -> bool {
    matches!(params.get(name).map(String::as_str), Some("true" | "1"))
}

/// What a path names.
struct Target {
    resource: &'static ResourceType,
    namespace: Option<String>,
    name: Option<String>,
}

fn route(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("v1".to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let find = |plural: &str| {
        RESOURCES
            .iter()
            .find(|r| r.api_version == group_version && r.plural == plural)
    };
    match rest {
        [plural] => Some(Target {
            resource: find(plural)?,
            namespace: None,
            name: None,
        }),
        [plural, name] => {
            let resource = find(plural)?;
            (!resource.namespaced).then(|| Target {
                resource,
                namespace: None,
                name: Some((*name).to_owned()),
            })
        }
        ["namespaces", namespace, plural, name @ ..] if name.len() <= 1 => {
            let resource = find(plural)?;
            resource.namespaced.then(|| Target {
                resource,
                namespace: Some((*namespace).to_owned()),
                name: name.first().map(|n| (*n).to_owned()),
            })
        }
        _ => None,
    }
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let params = parse_query(uri.query());
    let target = route(path);
    let is_watch = is_true(&params, "watch");
    {
        let mut store = shared.store();
        let line = match uri.query() {
            Some(query) => format!("{method} {path}?{query}"),
            None => format!("{method} {path}"),
        };
        store.requests.push(line);
    }
    if let Some(Target {
        resource,
        name: None,
        ..
    }) = &target
    {
        let mut store = shared.store();
        let counts = if is_watch {
            &mut store.watch_counts
        } else {
            &mut store.list_counts
        };
        *counts.entry(resource.plural.to_owned()).or_insert(0) += 1;
    }
    if shared.failing.load(Ordering::SeqCst) {
        return status_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "Internal error occurred: fake apiserver is set to fail",
        );
    }
    if method != Method::GET {
        return status_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({method})"),
        );
    }
    if path == "/version" || path == "/version/" {
        return json_response(
            StatusCode::OK,
            &json!({
                "major": "1",
                "minor": "33",
                "emulationMajor": "1",
                "emulationMinor": "33",
                "minCompatibilityMajor": "1",
                "minCompatibilityMinor": "32",
                "gitVersion": "v1.33.0",
                "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
                "gitTreeState": "clean",
                "buildDate": "2025-04-23T13:07:10Z",
                "goVersion": "go1.24.2",
                "compiler": "gc",
                "platform": "linux/amd64",
            }),
        );
    }
    let Some(target) = target else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    if shared.broken.load(Ordering::SeqCst) {
        return broken_response(target.resource, is_watch);
    }
    match (&target.name, is_watch) {
        (Some(name), _) => get_one(&shared, target.resource, target.namespace.as_deref(), name),
        (None, false) => {
            list(
                &shared,
                target.resource,
                target.namespace.as_deref(),
                &params,
            )
            .await
        }
        (None, true) => watch_stream(&shared, target.resource, target.namespace, &params),
    }
}

/// How long a broken response streams its first bytes before failing: long enough that the
/// client has surely seen the `200` and the start of the body, as with a cut off connection.
const BROKEN_AFTER: Duration = Duration::from_millis(100);

/// `200` with the start of a plausible body, then a failed read: a response cut off mid-way.
fn broken_response(resource: &ResourceType, is_watch: bool) -> Response {
    use futures::StreamExt;
    let start = if is_watch {
        format!(r#"{{"type":"ADDED","object":{{"kind":"{}","#, resource.kind)
    } else {
        format!(r#"{{"kind":"{}List","items":["#, resource.kind)
    };
    let cut = futures::stream::once(async {
        tokio::time::sleep(BROKEN_AFTER).await;
        Err::<String, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "fake apiserver: response cut off",
        ))
    });
    let body = futures::stream::once(async move { Ok(start) }).chain(cut);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

fn get_one(
    shared: &Shared,
    resource: &ResourceType,
    namespace: Option<&str>,
    name: &str,
) -> Response {
    let key = key_of(resource.api_version, resource.kind, namespace, name);
    match shared.store().objects.get(&key) {
        Some(object) => json_response(StatusCode::OK, object),
        None => {
            let group = resource
                .api_version
                .rsplit_once('/')
                .map_or("", |(group, _)| group);
            let body = status(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{} \"{name}\" not found", resource.plural),
                Some(json!({ "name": name, "group": group, "kind": resource.plural })),
            );
            json_response(StatusCode::NOT_FOUND, &body)
        }
    }
}

/// The stored objects of `resource`, in `namespace` when given.
fn matching<'a>(
    store: &'a Store,
    resource: &'a ResourceType,
    namespace: Option<&'a str>,
) -> impl Iterator<Item = &'a Value> + 'a {
    store
        .objects
        .iter()
        .filter(move |((api_version, kind, ns, _), _)| {
            api_version == resource.api_version
                && kind == resource.kind
                && namespace.is_none_or(|wanted| wanted == ns)
        })
        .map(|(_, object)| object)
}

fn current_items(store: &Store, resource: &ResourceType, namespace: Option<&str>) -> Vec<Value> {
    matching(store, resource, namespace).cloned().collect()
}

/// Lists in pages of `limit` items when asked (as kube-rs does, 500 at a time), with a `continue`
/// token holding the next offset, so clients never hold more than a page of raw objects.
async fn list(
    shared: &Shared,
    resource: &ResourceType,
    namespace: Option<&str>,
    params: &HashMap<String, String>,
) -> Response {
    let mut paused = shared.paused.subscribe();
    // The sender lives in `shared`, so this only returns once unpaused.
    let _ = paused.wait_for(|pause| !pause.holds(namespace)).await;
    if params.contains_key("continue") && shared.expire_continue.load(Ordering::SeqCst) {
        let message = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";
        return status_response(StatusCode::GONE, "Expired", message);
    }
    let store = shared.store();
    let offset: usize = params
        .get("continue")
        .and_then(|token| token.parse().ok())
        .unwrap_or(0);
    let limit: Option<usize> = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0);
    let mut metadata = json!({ "resourceVersion": store.rv.to_string() });
    let matching = matching(&store, resource, namespace);
    // Only the page is cloned: listing a large store page by page stays linear.
    let mut items: Vec<Value> = matching
        .skip(offset)
        .take(limit.map_or(usize::MAX, |l| l + 1))
        .cloned()
        .collect();
    if let Some(limit) = limit {
        if items.len() > limit {
            items.truncate(limit);
            metadata["continue"] = json!((offset + limit).to_string());
        }
    }
    let body = json!({
        "apiVersion": resource.api_version,
        "kind": format!("{}List", resource.kind),
        "metadata": metadata,
        "items": items,
    });
    drop(store);
    json_response(StatusCode::OK, &body)
}

struct WatchState {
    pending: VecDeque<String>,
    /// None once the stream is to end after `pending`.
    live: Option<broadcast::Receiver<Message>>,
    resource: &'static ResourceType,
    namespace: Option<String>,
    last_rv: u64,
    deadline: Option<Instant>,
}

fn bookmark(resource: &ResourceType, rv: u64, initial_events_end: bool) -> String {
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    watch_line(
        "BOOKMARK",
        &json!({
            "kind": resource.kind,
            "apiVersion": resource.api_version,
            "metadata": metadata,
        }),
    )
}

fn watch_stream(
    shared: &Shared,
    resource: &'static ResourceType,
    namespace: Option<String>,
    params: &HashMap<String, String>,
) -> Response {
    let bookmarks = is_true(params, "allowWatchBookmarks");
    let send_initial = is_true(params, "sendInitialEvents");
    let deadline = params
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|secs| *secs > 0)
        .map(|secs| Instant::now() + Duration::from_secs(secs));
    let requested = params
        .get("resourceVersion")
        .map(String::as_str)
        .filter(|rv| !rv.is_empty());

    let store = shared.store();
    let mut pending = VecDeque::new();
    let mut live = None;
    let ns = namespace.as_deref();
    if send_initial || matches!(requested, None | Some("0")) {
        // Synthetic ADDED events for the current state, then live ones.
        pending.extend(
            current_items(&store, resource, ns)
                .iter()
                .map(|object| watch_line("ADDED", object)),
        );
        if send_initial || bookmarks {
            pending.push_back(bookmark(resource, store.rv, send_initial));
        }
        live = Some(shared.events.subscribe());
    } else {
        let rv = requested.unwrap_or_default();
        match rv.parse::<u64>() {
            Err(_) => {
                drop(store);
                return status_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("invalid resource version: {rv}"),
                );
            }
            Ok(rv) if rv < store.compacted_through => {
                let error = status(
                    StatusCode::GONE,
                    "Expired",
                    &format!(
                        "too old resource version: {rv} ({})",
                        store.compacted_through
                    ),
                    None,
                );
                pending.push_back(watch_line("ERROR", &error));
            }
            Ok(rv) => {
                pending.extend(
                    store
                        .history
                        .iter()
                        .filter(|event| event.rv > rv && event.matches(resource, ns))
                        .map(|event| event.line()),
                );
                if bookmarks {
                    pending.push_back(bookmark(resource, store.rv, false));
                }
                live = Some(shared.events.subscribe());
            }
        }
    }
    let state = WatchState {
        pending,
        live,
        resource,
        namespace,
        last_rv: store.rv,
        deadline,
    };
    drop(store);

    let stream = futures::stream::unfold(state, |mut state| async move {
        if let Some(line) = state.pending.pop_front() {
            return Some((Ok::<_, Infallible>(line), state));
        }
        let resource = state.resource;
        let deadline = state.deadline;
        let rx = state.live.as_mut()?;
        loop {
            let message = match deadline {
                Some(deadline) => tokio::select! {
                    message = rx.recv() => message,
                    () = tokio::time::sleep_until(deadline) => return None,
                },
                None => rx.recv().await,
            };
            match message {
                Ok(Message::Event(event))
                    if event.rv > state.last_rv
                        && event.matches(resource, state.namespace.as_deref()) =>
                {
                    state.last_rv = event.rv;
                    let line = event.line();
                    return Some((Ok(line), state));
                }
                Ok(Message::DropWatchesIn(plural, namespace))
                    if plural == resource.plural && namespace == state.namespace =>
                {
                    return None;
                }
                Ok(Message::Event(_) | Message::DropWatchesIn(..)) => {}
                // Dropped, lagged behind or shut down: end the stream, the client resumes.
                Ok(Message::DropWatches) | Err(_) => return None,
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}
