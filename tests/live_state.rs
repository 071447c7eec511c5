//! Live cluster state from the Kubernetes API, against an in-process fake API server that speaks
//! the real list/watch protocol: decisions follow watch events, a dropped watch with an expired
//! resourceVersion re-lists, and readiness tracks the initial sync and watch failures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use kuma_identity_webhook::config::Settings;
use kuma_identity_webhook::live::{self, WatchConfig};
use kuma_identity_webhook::metrics::Metrics;
use kuma_identity_webhook::state::StateHandle;
use support::fake_apiserver::FakeApiServer;
use support::{meshidentity_review, TestServer, MESHIDENTITY_PATH as MESHIDENTITY};

fn mesh(mode: &str) -> Value {
    json!({"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "default"}, "spec": {"meshServices": {"mode": mode}}})
}

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn pod(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
           "spec": {"serviceAccountName": "sa", "containers": [{"name": "app", "image": "app"}]}, "status": {"phase": "Running"}})
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
    let kube_config = kube::Config::new(fake.url().parse().unwrap());
    let state = Arc::new(StateHandle::default());
    let metrics = Arc::new(Metrics::new());
    let config = WatchConfig {
        system_namespace: "kuma-system".to_owned(),
        pod_namespaces: Vec::new(),
        staleness_bound: staleness,
    };
    let tasks = live::start(kube_config, config, state.clone(), metrics.clone()).unwrap();
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
                started.elapsed() < Duration::from_secs(15),
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
    let started = Instant::now();
    while live.fake.list_count("pods") <= lists_before {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no re-list after 410"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(live.readyz().await, 200);

    let metrics = live.metrics.encode();
    assert!(
        metrics.contains(r#"kuma_identity_webhook_store_objects{resource="meshes"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"kuma_identity_webhook_store_objects{resource="pods"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("kuma_identity_webhook_watch_restarts_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kuma_identity_webhook_store_last_sync_age_seconds"),
        "{metrics}"
    );
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
