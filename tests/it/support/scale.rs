//! A large cluster's objects and the figures the scale tests report.

use serde_json::json;

/// A `/proc/PID/status` figure in KiB: `VmRSS` (resident now) or `VmHWM` (the peak).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A realistic pod: a few labels and annotations, two containers, a status.
pub fn pod(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("app-{}-{i}", i % 200), "namespace": format!("ns-{}", i % 50),
            "labels": {"app": format!("app-{}", i % 200), "app.kubernetes.io/name": format!("app-{}", i % 200), "pod-template-hash": "5d8f7c9b6"},
            "annotations": {"kuma.io/sidecar-injected": "true", "kubectl.kubernetes.io/restartedAt": "2026-11-01T10:00:00Z"}
        },
        "spec": {
            "serviceAccountName": format!("sa-{}", i % 200),
            "containers": [
                {"name": "app", "image": "registry.example/app:1.2.3", "ports": [{"containerPort": 8080}], "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                {"name": "kuma-sidecar", "image": "kumahq/kuma-dp:2.12.0", "args": ["run", "--log-level=info"]}
            ]
        },
        "status": {"phase": "Running", "podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

/// A replica of a meshed Deployment as the API server lists it: six labels, six annotations, an
/// owner reference, two containers with environment variables, a status.
pub fn deployment_pod(i: usize) -> serde_json::Value {
    let app = format!("app-{}", i % 200);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{app}-7d9f8b6c5d-{i:05}"), "namespace": format!("ns-{}", i % 50),
            "uid": format!("6f1c2a3b-0000-4000-8000-{i:012}"), "resourceVersion": format!("{}", 100_000 + i),
            "creationTimestamp": "2026-11-01T10:00:00Z", "generateName": format!("{app}-7d9f8b6c5d-"),
            "labels": {
                "app": app, "app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop",
                "app.kubernetes.io/version": "1.2.3", "pod-template-hash": "7d9f8b6c5d",
                "kuma.io/sidecar-injection": "enabled"
            },
            "annotations": {
                "kuma.io/sidecar-injected": "true", "kuma.io/mesh": "default",
                "kuma.io/envoy-admin-port": "9901", "kuma.io/transparent-proxying": "enabled",
                "kubectl.kubernetes.io/restartedAt": "2026-11-01T10:00:00Z",
                "prometheus.io/scrape": "true"
            },
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{app}-7d9f8b6c5d"),
                "uid": "0a1b2c3d-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "serviceAccountName": format!("sa-{}", i % 200), "nodeName": format!("node-{}", i % 100),
            "containers": [
                {"name": "app", "image": "registry.example/app:1.2.3", "ports": [{"containerPort": 8080}],
                 "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
                {"name": "kuma-sidecar", "image": "kumahq/kuma-dp:2.12.0", "args": ["run", "--log-level=info"],
                 "env": [{"name": "KUMA_CONTROL_PLANE_URL", "value": "https://kuma-control-plane.kuma-system:5678"},
                         {"name": "KUMA_DATAPLANE_MESH", "value": "default"}]}
            ]
        },
        "status": {"phase": "Running", "podIP": format!("10.0.{}.{}", i / 250 % 250, i % 250), "hostIP": "192.168.0.1",
            "startTime": "2026-11-01T10:00:05Z",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0}, {"name": "kuma-sidecar", "ready": true, "restartCount": 0}]}
    })
}
