//! Live cluster state from the Kubernetes API, against an in-process fake API server that speaks
//! the real list/watch protocol: decisions follow watch events, a dropped watch with an expired
//! resourceVersion re-lists, and readiness tracks the initial sync and watch failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_apiserver::FakeApiServer;
use crate::support::metric;
use crate::support::rbac::{granted_rules, is_granted};
use crate::support::review::Review;
use crate::support::{meshidentity_review, TestServer, MESHIDENTITY_PATH as MESHIDENTITY};
use kuma_identity_webhook::cluster::watch::{self, WatchConfig};
use kuma_identity_webhook::cluster::StateHandle;
use kuma_identity_webhook::config::Settings;
use kuma_identity_webhook::metrics::Metrics;

/// The pod validating webhook's path.
const VALIDATE_POD: &str = "/validate-v1-pod";

fn mesh(mode: &str) -> Value {
    json!({"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "default"}, "spec": {"meshServices": {"mode": mode}}})
}

/// A namespace with Kuma's sidecar injection on: its pods are in the mesh, so the workload
/// requirement applies to them.
fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": name, "labels": {"kuma.io/sidecar-injection": "enabled"}}})
}

fn pod(name: &str, labels: Value) -> Value {
    pod_in("shop", name, labels)
}

fn pod_in(namespace: &str, name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
           "spec": {"serviceAccountName": "sa", "containers": [{"name": "app", "image": "app"}]}, "status": {"phase": "Running"}})
}

fn identity(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
           "metadata": {"name": name, "namespace": "kuma-system", "labels": {"kuma.io/mesh": "default"}}, "spec": spec})
}

/// A CREATE review of a `shop` pod, for the pod validating webhook.
fn pod_review(name: &str) -> Vec<u8> {
    Review::create(pod(name, json!({"app": "web"})))
        .uid(format!("pod-{name}"))
        .namespace(Some("shop".to_owned()))
        .bytes()
}

/// A MeshIdentity whose path needs a workload, for the `app: batch` pods.
fn review() -> Vec<u8> {
    serde_json::to_vec(&meshidentity_review(json!({
        "apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
        "metadata": {"name": "batch", "namespace": "kuma-system"},
        "spec": {"selector": {"dataplane": {"matchLabels": {"app": "batch"}}}, "spiffeID": {"path": "/workload/{{ .Workload }}"}}
    })))
    .unwrap()
}

struct Live {
    fake: FakeApiServer,
    state: Arc<StateHandle>,
    metrics: Arc<Metrics>,
    server: TestServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

async fn start(fake: FakeApiServer, staleness: Duration) -> Live {
    start_watching(fake, staleness, &[]).await
}

/// As [`start`], watching pods of `pod_namespaces` only (all when empty).
async fn start_watching(fake: FakeApiServer, staleness: Duration, pod_namespaces: &[&str]) -> Live {
    let kube_config = kube::Config::new(fake.url().parse().unwrap());
    let state = Arc::new(StateHandle::default());
    let metrics = Arc::new(Metrics::new());
    let config = WatchConfig {
        system_namespace: "kuma-system".to_owned(),
        pod_namespaces: pod_namespaces.iter().map(|ns| (*ns).to_owned()).collect(),
        staleness_bound: staleness,
    };
    let tasks = watch::start(kube_config, config, state.clone(), metrics.clone()).unwrap();
    let server = TestServer::start_shared(state.clone(), Settings::default()).await;
    Live {
        fake,
        state,
        metrics,
        server,
        tasks,
    }
}

impl Live {
    async fn allowed(&self) -> Option<bool> {
        let (status, body) = self
            .server
            .post(&self.server.client(false), MESHIDENTITY, review())
            .await;
        (status == 200).then(|| body["response"]["allowed"] == true)
    }

    /// Waits until the decision is `want` (watch events take a moment to arrive).
    async fn eventually(&self, want: bool, what: &str) {
        let started = Instant::now();
        while self.allowed().await != Some(want) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what}: decision never became {want}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until pods were listed again since `lists_before` lists (a 410 makes kube re-list).
    async fn wait_for_pod_relist(&self, lists_before: usize) {
        let started = Instant::now();
        while self.fake.list_count("pods") <= lists_before {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no re-list after 410"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.metrics.encode(), series)
    }

    /// Waits until a metric series has the value `want`.
    async fn wait_metric(&self, series: &str, want: f64) {
        let started = Instant::now();
        while self.metric(series) != Some(want) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{series} never became {want}: {}",
                self.metrics.encode()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn readyz(&self) -> u16 {
        self.server
            .client(false)
            .get(self.server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn wait_readyz(&self, want: u16, what: &str) {
        let started = Instant::now();
        while self.readyz().await != want {
            assert!(
                // Generous: recovery waits out kube-rs's jittered back-off on a loaded machine.
                started.elapsed() < Duration::from_secs(30),
                "{what}: /readyz never became {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn seeded_fake() -> FakeApiServer {
    let fake = FakeApiServer::start().await;
    fake.apply(mesh("Exclusive"));
    fake.apply(namespace("shop"));
    fake.apply(namespace("kuma-system"));
    fake.apply(pod("web-1", json!({"app": "web"})));
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_follow_watch_events_through_relists() {
    let live = start(seeded_fake().await, Duration::from_secs(60)).await;
    live.wait_readyz(200, "initial sync").await;
    live.eventually(true, "Exclusive mesh, no batch pods").await;

    // The Mesh leaves Exclusive mode: the same request is now denied.
    live.fake.apply(mesh("Disabled"));
    live.eventually(false, "mesh modified to Disabled").await;
    live.fake.apply(mesh("Exclusive"));
    live.eventually(true, "mesh back to Exclusive").await;

    // A pod the identity would win, without a workload, arrives through a watch event.
    live.fake.apply(pod("batch-1", json!({"app": "batch"})));
    live.eventually(false, "workload-less pod added").await;

    // The watches drop and their resourceVersion has expired: the webhook re-lists, and a change
    // made while it was disconnected is seen.
    let lists_before = live.fake.list_count("pods");
    live.fake.apply(namespace("unrelated"));
    live.fake.compact();
    live.fake.drop_watches();
    live.fake.delete("v1", "Pod", Some("shop"), "batch-1");
    live.eventually(true, "pod deleted across a 410 re-list")
        .await;
    live.wait_for_pod_relist(lists_before).await;
    assert_eq!(live.readyz().await, 200);

    // Object counts are exact: one mesh, web-1 left of the pods, shop + kuma-system + unrelated.
    for (resource, want) in [
        ("meshes", 1.0),
        ("meshidentities", 0.0),
        ("namespaces", 3.0),
        ("pods", 1.0),
    ] {
        live.wait_metric(
            &format!(r#"kuma_identity_webhook_store_objects{{resource="{resource}"}}"#),
            want,
        )
        .await;
    }
    let metrics = live.metrics.encode();
    for resource in ["meshes", "meshidentities", "namespaces", "pods"] {
        // Every watch but the namespaces' (which had just seen `unrelated`, the newest change)
        // resumed from an expired resourceVersion: a 410, so a restart.
        let restarts = metric(
            &metrics,
            &format!(r#"kuma_identity_webhook_watch_restarts_total{{resource="{resource}"}}"#),
        );
        if resource != "namespaces" {
            assert!(restarts >= Some(1.0), "{resource}: {metrics}");
        }
        let age = metric(
            &metrics,
            &format!(
                r#"kuma_identity_webhook_store_last_sync_age_seconds{{resource="{resource}"}}"#
            ),
        );
        assert!(
            age.is_some_and(|age| (0.0..60.0).contains(&age)),
            "{resource}: {metrics}"
        );
    }
    assert!(
        metric(&metrics, "kuma_identity_webhook_snapshots_published_total") >= Some(1.0),
        "{metrics}"
    );

    // Everything the server asked for is covered by the RBAC shipped under deploy/.
    let grants = granted_rules();
    let requests = live.fake.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(
            is_granted(&grants, request),
            "{request} is not granted by deploy/base/rbac.yaml"
        );
    }
}

#[test]
fn the_rbac_check_tells_granted_from_ungranted_requests() {
    let grants = granted_rules();
    for granted in [
        "GET /api/v1/pods?limit=500",
        "GET /api/v1/namespaces/shop/pods?watch=true&resourceVersion=7",
        "GET /api/v1/namespaces?watch=true",
        "GET /apis/kuma.io/v1alpha1/meshes?limit=500",
        "GET /apis/kuma.io/v1alpha1/namespaces/kuma-system/meshidentities?watch=true",
    ] {
        assert!(is_granted(&grants, granted), "{granted}");
    }
    for denied in [
        "GET /apis/kuma.io/v1alpha1/meshidentities?limit=500",
        "GET /apis/kuma.io/v1alpha1/namespaces/shop/meshidentities?watch=true",
        "GET /api/v1/secrets",
        "POST /api/v1/namespaces/shop/pods",
        "GET /apis/kuma.io/v1alpha1/meshtrafficpermissions",
    ] {
        assert!(!is_granted(&grants, denied), "{denied}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_initial_list_and_tracks_failing_watches() {
    let fake = seeded_fake().await;
    fake.pause_lists(true);
    let live = start(fake, Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(live.readyz().await, 503);
    // Requests before the first sync get 503 with a message, not a guess.
    let (status, body) = live
        .server
        .post(&live.server.client(false), MESHIDENTITY, review())
        .await;
    assert_eq!(status, 503);
    assert!(body["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("not loaded"));

    live.fake.pause_lists(false);
    live.wait_readyz(200, "lists answered").await;
    assert!(live.state.readiness().is_ok());

    // Every watch fails for longer than the staleness bound: unready, with the reason.
    live.fake.set_failing(true);
    live.fake.drop_watches();
    live.wait_readyz(503, "watches failing").await;
    assert!(live
        .state
        .readiness()
        .unwrap_err()
        .contains("watches failing"));
    // Decisions still use the last good state meanwhile.
    assert_eq!(live.allowed().await, Some(true));

    live.fake.set_failing(false);
    live.wait_readyz(200, "watches recovered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_watched_namespace_keeps_its_own_pods() {
    let fake = seeded_fake().await;
    fake.apply(namespace("batch"));
    fake.apply(pod_in("batch", "batch-1", json!({"app": "batch"})));
    fake.pause_lists_in("batch", true);
    let live = start_watching(fake, Duration::from_secs(60), &["shop", "batch"]).await;
    const PODS: &str = r#"kuma_identity_webhook_store_objects{resource="pods"}"#;

    // shop has listed, batch has not: not ready yet.
    live.wait_metric(PODS, 1.0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        live.readyz().await,
        503,
        "ready before every namespace listed"
    );
    live.fake.pause_lists_in("batch", false);
    live.wait_readyz(200, "both namespaces listed").await;
    live.wait_metric(PODS, 2.0).await;
    // batch-1 is the identity's workload-less pod.
    live.eventually(false, "pod of the second namespace").await;

    // Only shop's watch is dropped, and its resourceVersion has expired: shop re-lists, and
    // batch's pods (whose watch never broke) must stay.
    let lists_before = live.fake.list_count("pods");
    live.fake.apply(namespace("unrelated"));
    live.fake.compact();
    live.fake.drop_watches_in("pods", Some("shop"));
    live.fake.apply(pod("web-2", json!({"app": "web"})));
    live.wait_for_pod_relist(lists_before).await;
    // web-1 and web-2 from shop's re-list, batch-1 from batch's store.
    live.wait_metric(PODS, 3.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        live.allowed().await,
        Some(false),
        "batch-1 lost in shop's re-list"
    );
    assert_eq!(live.readyz().await, 200);
    assert!(
        live.metric(r#"kuma_identity_webhook_watch_restarts_total{resource="pods"}"#) >= Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_status_with_a_broken_body_is_no_recovery() {
    // kube-rs resumes a watch cut off mid-body at once, without reporting an error, so the API
    // server answers 200 many times a second: if a 200 counted as success, the clock would
    // restart each time and the bound would never be crossed.
    let bound = Duration::from_secs(3);
    let live = start(seeded_fake().await, bound).await;
    live.wait_readyz(200, "initial sync").await;

    // Every response is now 200 with a body cut off mid-way: the watches fail on each attempt.
    let started = Instant::now();
    live.fake.set_broken(true);
    live.fake.drop_watches();
    // Within the bound, still ready.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(live.readyz().await, 200, "unready well within the bound");
    // Past it, unready, however many 200s the API server answers: within the bound plus the
    // health check interval (1 s), with slack for a loaded machine.
    live.wait_readyz(503, "broken responses past the bound")
        .await;
    let unready_after = started.elapsed();
    assert!(unready_after >= bound, "unready after {unready_after:?}");
    assert!(
        unready_after < bound + Duration::from_secs(6),
        "unready only after {unready_after:?}: the 200s reset the clock"
    );
    assert!(live
        .state
        .readiness()
        .unwrap_err()
        .contains("watches failing"));

    // Whole responses again: the next watch stays connected, and that is recovery.
    live.fake.set_broken(false);
    live.wait_readyz(200, "responses whole again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_that_do_not_decode_leave_the_store() {
    let fake = seeded_fake().await;
    let selector = json!({"dataplane": {"matchLabels": {"app": "web"}}});
    fake.apply(identity("web", json!({"selector": selector})));
    let live = start(fake, Duration::from_secs(60)).await;
    live.wait_readyz(200, "initial sync").await;
    const IDENTITIES: &str = r#"kuma_identity_webhook_store_objects{resource="meshidentities"}"#;
    live.wait_metric(IDENTITIES, 1.0).await;
    let identities = || {
        live.state
            .get()
            .unwrap()
            .identities_in_mesh("default")
            .len()
    };
    assert_eq!(identities(), 1);

    // The stored identity is modified into one that does not decode (selector not an object):
    // the old version must not stay in use.
    live.fake
        .apply(identity("web", json!({"selector": "app=web"})));
    live.wait_metric(IDENTITIES, 0.0).await;
    live.wait_metric(
        r#"kuma_identity_webhook_watch_decode_errors_total{resource="meshidentities"}"#,
        1.0,
    )
    .await;
    let started = Instant::now();
    while identities() != 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "stale identity still served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Fixed again, it comes back.
    live.fake
        .apply(identity("web", json!({"selector": selector})));
    live.wait_metric(IDENTITIES, 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_requests_issue_no_kubernetes_requests() {
    let live = start(seeded_fake().await, Duration::from_secs(60)).await;
    live.wait_readyz(200, "initial sync").await;
    live.eventually(true, "synced decision").await;
    let before = live.fake.requests().len();

    let client = live.server.client(false);
    for i in 0..25 {
        let (status, body) = live.server.post(&client, MESHIDENTITY, review()).await;
        assert_eq!((status, &body["response"]["allowed"]), (200, &json!(true)));
        let (status, body) = live
            .server
            .post(&client, VALIDATE_POD, pod_review(&format!("web-{i}")))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["response"]["allowed"].is_boolean(), "{body}");
    }

    // Nothing new but, at most, watch reconnects.
    let requests = live.fake.requests();
    let new: Vec<&String> = requests[before..]
        .iter()
        .filter(|r| !r.split(['?', '&']).any(|p| p == "watch=true"))
        .collect();
    assert!(new.is_empty(), "requests while admitting: {new:?}");
}
