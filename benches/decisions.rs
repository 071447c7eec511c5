//! Decision-function benchmarks: a MeshIdentity validated against a cluster of 1 000 pods and
//! 10 MeshIdentities (budget: median at most 50 µs for a typical one; the mesh-wide one shows the
//! worst case), the SPIRE socket decision for a 10-container pod (budget: 30 µs), and the audit
//! of the same 1 000-pod cluster (per pod, what `audit` and the server's audit pay).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

use std::sync::Arc;

use kuma_identity_webhook::api::PodInfo;
use kuma_identity_webhook::cluster::{Object, Snapshot};
use kuma_identity_webhook::config::Settings;
use kuma_identity_webhook::inject::{self, InjectConfig, InjectDecision};
use kuma_identity_webhook::validate::{meshidentity, pod};
use kuma_identity_webhook::verdict::{Operation, Request};

const PODS: usize = 1_000;
const IDENTITIES: usize = 10;
const APPS: usize = 20;

fn cluster() -> Snapshot {
    cluster_of(PODS)
}

/// The benches' cluster with `pods` pods (20 apps over 10 namespaces, as in [`cluster`]).
fn cluster_of(pods: usize) -> Snapshot {
    let mut snapshot = Snapshot::default();
    let mut add = |object: Value| {
        if let Some(object) = Object::from_json(object).unwrap() {
            snapshot.insert(object);
        }
    };
    add(
        json!({"kind": "Mesh", "metadata": {"name": "default"}, "spec": {"meshServices": {"mode": "Exclusive"}}}),
    );
    for ns in 0..10 {
        add(
            json!({"kind": "Namespace", "metadata": {"name": format!("ns-{ns}"), "labels": {"kuma.io/sidecar-injection": "enabled"}}}),
        );
    }
    for i in 0..IDENTITIES {
        add(json!({
            "kind": "MeshIdentity",
            "metadata": {"name": format!("id-{i}"), "namespace": "kuma-system", "labels": {"kuma.io/mesh": "default"}},
            "spec": {
                "selector": {"dataplane": {"matchLabels": {"app": format!("app-{i}")}}},
                "spiffeID": {"path": "/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}"},
                "provider": {"type": "Bundled", "bundled": {"autogenerate": {"enabled": true}}}
            }
        }));
    }
    for p in 0..pods {
        let app = p % APPS;
        add(json!({
            "kind": "Pod",
            "metadata": {
                "name": format!("app-{app}-{p}"),
                "namespace": format!("ns-{}", p % 10),
                "labels": {"app": format!("app-{app}"), "app.kubernetes.io/name": format!("app-{app}"), "pod-template-hash": "5d8f7c9b6"}
            },
            "spec": {"serviceAccountName": format!("sa-{app}")}
        }));
    }
    snapshot
}

/// A typical MeshIdentity: one app's pods, workload-based path, bundled CA.
fn typical_identity() -> Value {
    json!({
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "MeshIdentity",
        "metadata": {"name": "web", "namespace": "kuma-system", "labels": {"kuma.io/mesh": "default", "kuma.io/origin": "zone"}},
        "spec": {
            "selector": {"dataplane": {"matchLabels": {"app": "app-3", "kuma.io/zone": "default"}}},
            "spiffeID": {
                "trustDomain": "{{ .Mesh }}.{{ .Zone }}.mesh.local",
                "path": "/ns/{{ .Namespace }}/workload/{{ .Workload }}"
            },
            "provider": {"type": "Bundled", "bundled": {"meshTrustCreation": "Enabled", "autogenerate": {"enabled": true}}}
        }
    })
}

/// A mesh-wide identity (`matchLabels: {}`): every pod is a candidate, and each one it wins has
/// its SPIFFE ID rendered and checked, the heaviest MeshIdentity review.
fn mesh_wide_identity() -> Value {
    let mut identity = typical_identity();
    identity["metadata"]["name"] = json!("everyone");
    identity["spec"]["selector"]["dataplane"]["matchLabels"] = json!({});
    identity
}

/// A CREATE by an administrator of `object` in `namespace`.
fn create<'a>(namespace: &'a str, object: &'a Value) -> Request<'a> {
    Request {
        operation: Operation::Create,
        namespace: Some(namespace),
        username: "admin",
        object: Some(object),
        old_object: None,
    }
}

fn bench_meshidentity(c: &mut Criterion) {
    let snapshot = cluster();
    let settings = Settings {
        workload_labels: vec!["app.kubernetes.io/name".to_owned()],
        ..Settings::default()
    };
    for (name, object) in [
        (
            "meshidentity_review_1000_pods_10_identities",
            typical_identity(),
        ),
        (
            "meshidentity_review_1000_pods_mesh_wide",
            mesh_wide_identity(),
        ),
    ] {
        let request = create("kuma-system", &object);
        let verdict = meshidentity::review(&request, &snapshot, &settings);
        assert!(verdict.allowed(), "{name}: {verdict:?}");
        c.bench_function(name, |b| {
            b.iter(|| meshidentity::review(black_box(&request), &snapshot, &settings))
        });
    }

    // A mesh-wide review must not grow with the cluster: the same identity at 10 000 pods.
    let large = cluster_of(10_000);
    let object = mesh_wide_identity();
    let request = create("kuma-system", &object);
    assert!(meshidentity::review(&request, &large, &settings).allowed());
    c.bench_function("meshidentity_review_10000_pods_mesh_wide", |b| {
        b.iter(|| meshidentity::review(black_box(&request), &large, &settings))
    });
    drop(large);

    // The UPDATE ratchet's worst case: a mesh-wide identity whose path leaves every pod without
    // an ID, updated in a way the scan reads (a label), so the stored object is scanned too and
    // every finding compared (all are old: allowed, with a warning).
    let mut old = mesh_wide_identity();
    old["spec"]["spiffeID"]["path"] = json!(r#"/team/{{ label "team" }}"#);
    let mut new = old.clone();
    new["metadata"]["labels"]["owner"] = json!("platform");
    let request = Request {
        operation: Operation::Update,
        namespace: Some("kuma-system"),
        username: "admin",
        object: Some(&new),
        old_object: Some(&old),
    };
    let verdict = meshidentity::review(&request, &snapshot, &settings);
    assert!(
        verdict.allowed() && verdict.warnings.len() == 1,
        "{verdict:?}"
    );
    c.bench_function("meshidentity_update_1000_pods_mesh_wide_all_broken", |b| {
        b.iter(|| meshidentity::review(black_box(&request), &snapshot, &settings))
    });
}

/// An application container with a few mounts and variables.
fn app_container(i: usize) -> Value {
    json!({
        "name": format!("app-{i}"),
        "image": "registry.example/app:1",
        "ports": [{"containerPort": 8080 + i}],
        "env": [{"name": "A", "value": "1"}, {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "config", "mountPath": "/etc/app", "readOnly": true}],
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}
    })
}

/// A pod of `containers` with the volumes they mount.
fn pod_with(containers: Vec<Value>) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "k8s.kuma.io/spire-support": "true"}},
        "spec": {
            "serviceAccountName": "web",
            "containers": containers,
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "config", "configMap": {"name": "web"}}, {"name": "kuma-sidecar-tmp", "emptyDir": {}}]
        }
    })
}

/// A pod with nine application containers and Kuma's sidecar: only the sidecar is patched. The
/// mutation decision's budget is a 30 µs median.
fn ten_container_pod() -> Value {
    let mut containers: Vec<Value> = (0..9).map(app_container).collect();
    containers.push(json!({
        "name": "kuma-sidecar", "image": "kumahq/kuma-dp:2.12.0",
        "args": ["run", "--log-level=info"],
        "env": [{"name": "KUMA_CONTROL_PLANE_URL", "value": "https://kuma-control-plane.kuma-system:5678"}],
        "volumeMounts": [{"name": "kuma-sidecar-tmp", "mountPath": "/tmp"}]
    }));
    pod_with(containers)
}

/// Ten application containers and no sidecar yet (this webhook ran before Kuma's injector):
/// every container gets the mount and the variable, the heaviest patch.
fn ten_app_container_pod() -> Value {
    pod_with((0..10).map(app_container).collect())
}

fn bench_mutation(c: &mut Criterion) {
    let pod = ten_container_pod();
    let config = InjectConfig::default();
    assert!(matches!(
        inject::decide(&pod, &config),
        InjectDecision::Inject { .. }
    ));
    c.bench_function("spire_socket_decision_10_containers", |b| {
        b.iter(|| inject::decide(black_box(&pod), &config))
    });
    let apps = ten_app_container_pod();
    let InjectDecision::Inject { patch, targets, .. } = inject::decide(&apps, &config) else {
        panic!("the ten application containers must be injected");
    };
    // The volume, then a mount and a variable for each container.
    assert_eq!((targets.len(), patch.0.len()), (10, 21));
    c.bench_function("spire_socket_decision_10_app_containers_no_sidecar", |b| {
        b.iter(|| inject::decide(black_box(&apps), &config))
    });
}

/// A pod decision reads the pod, its namespace and its mesh's identities, never the other pods:
/// the same pod judged in a cluster of 1 000 and of 50 000 pods.
fn bench_pod_decision(c: &mut Criterion) {
    let settings = Settings {
        workload_labels: vec!["app.kubernetes.io/name".to_owned()],
        ..Settings::default()
    };
    let object = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app-3-new", "namespace": "ns-3",
            "labels": {"app": "app-3", "app.kubernetes.io/name": "app-3", "pod-template-hash": "5d8f7c9b6"}},
        "spec": {"serviceAccountName": "sa-3", "containers": [{"name": "app", "image": "app:1"}]}
    });
    let request = create("ns-3", &object);
    for pods in [1_000, 50_000] {
        let snapshot = cluster_of(pods);
        let verdict = pod::review(&request, &snapshot, &settings);
        assert!(verdict.allowed(), "{verdict:?}");
        assert!(!verdict.audit_annotations.is_empty(), "{verdict:?}");
        c.bench_function(&format!("pod_decision_{pods}_pods"), |b| {
            b.iter(|| pod::review(black_box(&request), &snapshot, &settings))
        });
    }
}

/// What the live state pays per publish (at most every 100 ms while the cluster changes): a
/// snapshot, indexes included, of 50 000 pods the watches already hold.
fn bench_snapshot(c: &mut Criterion) {
    let pods: Vec<Arc<PodInfo>> = (0..50_000)
        .map(|i| {
            let app = format!("app-{}", i % 200);
            Arc::new(PodInfo::from_json(
                &json!({"metadata": {
                    "name": format!("{app}-{i}"), "namespace": format!("ns-{}", i % 50),
                    "labels": {"app": app, "app.kubernetes.io/name": app, "pod-template-hash": "5d8f7c9b6"}
                }, "spec": {"serviceAccountName": format!("sa-{}", i % 200)}}),
                None,
            ))
        })
        .collect();
    c.bench_function("snapshot_of_50000_pods", |b| {
        b.iter(|| Snapshot::new(Vec::new(), Vec::new(), Vec::new(), black_box(pods.clone())))
    });
    // What a publish costs once the watches keep the snapshot up to date: one pod changed, and
    // the snapshot the server reads taken from the live one.
    let mut live = Snapshot::new(Vec::new(), Vec::new(), Vec::new(), pods);
    let mut generation = 0usize;
    c.bench_function("snapshot_publish_50000_pods_one_change", |b| {
        b.iter(|| {
            generation += 1;
            let changed = PodInfo::from_json(
                &json!({"metadata": {
                    "name": "app-7-7", "namespace": "ns-7",
                    "labels": {"app": "app-7", "app.kubernetes.io/name": "app-7", "generation": generation.to_string()}
                }, "spec": {"serviceAccountName": "sa-7"}}),
                None,
            );
            live.insert(Object::Pod(changed));
            black_box(live.clone())
        })
    });
}

/// The audit of every pod of [`cluster`]: the pod webhook's assessment and the injector's switch
/// for each of its 1 000 meshed pods.
fn bench_audit(c: &mut Criterion) {
    let snapshot = cluster();
    let settings = Settings::default();
    assert!(kuma_identity_webhook::audit::audit(&snapshot, &settings, None).is_empty());
    c.bench_function("audit_1000_pods", |b| {
        b.iter(|| kuma_identity_webhook::audit::audit(black_box(&snapshot), &settings, None))
    });
}

/// The whole adapter of one HTTPS request, body bytes to response bytes, for the HTTPS bench's own
/// bodies (`benches/https/`), beside the floor the bare server pays (parse the body as JSON, echo
/// `request.uid`): the in-process share of the throughput ratio `benches/https/run.sh` measures.
fn bench_adapter(c: &mut Criterion) {
    use kuma_identity_webhook::admission::{self, Webhook};
    let snapshot = cluster();
    let settings = Settings::default();
    for (name, webhook, file) in [
        (
            "adapter_meshidentity_review",
            Webhook::ValidateMeshIdentity,
            "meshidentity-review.json",
        ),
        ("adapter_mutate_pod", Webhook::MutatePod, "pod-review.json"),
    ] {
        let body = std::fs::read(format!("benches/https/{file}")).unwrap();
        let reviewed = admission::review(webhook, &body, Some(&snapshot), &settings);
        assert_eq!(reviewed.http_status, 200, "{name}");
        c.bench_function(name, |b| {
            b.iter(|| admission::review(webhook, black_box(&body), Some(&snapshot), &settings))
        });
        c.bench_function(&format!("{name}_bare_floor"), |b| {
            b.iter(|| {
                let review: Value = serde_json::from_slice(black_box(&body)).unwrap();
                serde_json::to_vec(&json!({
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {"uid": review["request"]["uid"], "allowed": true},
                }))
                .unwrap()
            })
        });
    }
}

criterion_group!(
    benches,
    bench_adapter,
    bench_meshidentity,
    bench_mutation,
    bench_pod_decision,
    bench_snapshot,
    bench_audit
);
criterion_main!(benches);
