//! Memory and start-up time with a large cluster: the real binary watches a fake API server
//! holding N pods; reports the server's RSS once ready and the time from start to ready.
//! Slow, so ignored by default:
//!   cargo test --release --test live_scale -- --ignored --nocapture

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use support::fake_apiserver::FakeApiServer;
use support::tempdir;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A realistic pod: a few labels and annotations, two containers, a status.
fn pod(i: usize) -> serde_json::Value {
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

async fn measure(pods: usize) -> (Duration, u64) {
    let fake = FakeApiServer::start().await;
    fake.apply(json!({"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "default"}, "spec": {"meshServices": {"mode": "Exclusive"}}}));
    for i in 0..pods {
        fake.apply(pod(i));
    }
    let dir = tempdir();
    let kubeconfig = dir.join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);
    let (port, admin) = (free_port(), free_port());
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kuma-identity-webhook"))
        .args([
            "serve",
            "--dev",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .args([
            "--tls-cert",
            dir.join("tls.crt").to_str().unwrap(),
            "--tls-key",
            dir.join("tls.key").to_str().unwrap(),
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    loop {
        let ready = client
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
            .map(|r| r.status() == 200)
            .unwrap_or(false);
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not ready after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let to_ready = started.elapsed();
    // Let the allocator settle after the initial list.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib(child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    (to_ready, rss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn fifty_thousand_pods() {
    let (idle_ready, idle_rss) = measure(0).await;
    let (ready, rss) = measure(50_000).await;
    eprintln!(
        "0 pods: ready after {idle_ready:?}, RSS {} MiB",
        idle_rss / 1024
    );
    eprintln!(
        "50 000 pods: ready after {ready:?}, RSS {} MiB ({} bytes/pod over the empty server)",
        rss / 1024,
        (rss - idle_rss) * 1024 / 50_000
    );
    // Measured 124 MiB (about 2.3 KiB a pod); the bound leaves room for allocator noise.
    assert!(rss < 256 * 1024, "RSS {rss} KiB");
}
