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
