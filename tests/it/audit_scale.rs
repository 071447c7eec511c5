//! The audit of a 50 000-pod cluster: in process (the decision alone), as `audit -A` against the
//! fake API server (listing included, the command's peak memory), and in `serve` (the first run
//! on the watched state). Slow, so ignored by default; the figures are printed:
//!   cargo test --release --test it audit_scale -- --ignored --nocapture --test-threads 1

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::audit::after_first_audit;
use crate::support::binary::Binary;
use crate::support::fake_apiserver::FakeApiServer;
use crate::support::scale::pod;
use crate::support::{metric, tempdir};
use kuma_identity_webhook::audit::{audit, count, Finding};
use kuma_identity_webhook::cluster::{Object, Snapshot};
use kuma_identity_webhook::config::Settings;

const PODS: usize = 50_000;
/// Every this many pods lacks its workload label.
const NO_WORKLOAD_EVERY: usize = 100;
/// Every this many pods opts in to SPIRE without the socket (two findings each).
const SPIRE_EVERY: usize = 10;

/// The cluster: one mesh, an identity whose path reads the workload, 50 namespaces, 50 000 meshed
/// pods with 500 missing their workload and 5 000 missing the socket.
fn objects() -> Vec<Value> {
    let mut objects = vec![
        json!({"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "default"}, "spec": {"meshServices": {"mode": "Exclusive"}}}),
        json!({"apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
            "metadata": {"name": "workload", "namespace": "kuma-system", "labels": {"kuma.io/mesh": "default"}},
            "spec": {"selector": {"dataplane": {"matchLabels": {}}}, "spiffeID": {"path": "/ns/{{ .Namespace }}/workload/{{ .Workload }}"}}}),
    ];
    for i in 0..50 {
        objects.push(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns-{i}")}}));
    }
    for i in 0..PODS {
        let mut pod = pod(i);
        let labels = pod["metadata"]["labels"].as_object_mut().unwrap();
        if i % NO_WORKLOAD_EVERY == 1 {
            labels.remove("app.kubernetes.io/name");
        }
        if i % SPIRE_EVERY == 0 {
            labels.insert("k8s.kuma.io/spire-support".into(), "true".into());
        }
        objects.push(pod);
    }
    objects
}

fn settings() -> Settings {
    Settings {
        workload_labels: vec!["app.kubernetes.io/name".to_owned()],
        ..Settings::default()
    }
}

const EXPECTED_FINDINGS: usize = PODS / NO_WORKLOAD_EVERY + 2 * PODS / SPIRE_EVERY;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[test]
#[ignore = "builds and audits a 50 000-pod cluster several times (slow in debug builds); run with --release --nocapture for the figures"]
fn audit_scale_in_process() {
    let mut snapshot = Snapshot::default();
    for object in objects() {
        snapshot.insert(Object::from_json(object).unwrap().unwrap());
    }
    let settings = settings();
    let mut samples = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let rows = audit(&snapshot, &settings, None);
        samples.push(started.elapsed());
        assert_eq!(rows.len(), EXPECTED_FINDINGS);
        let missing = rows
            .iter()
            .filter(|r| r.finding == Finding::MissingWorkload)
            .count();
        assert_eq!(missing, PODS / NO_WORKLOAD_EVERY);
    }
    println!(
        "audit_scale in process: {PODS} pods, {EXPECTED_FINDINGS} findings, median {:?} (min {:?}, max {:?}) over 7 runs",
        median(samples.clone()),
        samples.iter().min().unwrap(),
        samples.iter().max().unwrap()
    );
    // What the server runs: counts only.
    let mut samples = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        let counts = count(&snapshot, &settings);
        samples.push(started.elapsed());
        assert_eq!(counts.values().sum::<usize>(), EXPECTED_FINDINGS);
        assert_eq!(counts[&Finding::SocketMountMissing], PODS / SPIRE_EVERY);
    }
    println!(
        "audit_scale in process, counts only (serve): median {:?}",
        median(samples)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "lists 50 000 pods from the fake API server through the binary (audit -A and serve); run with --release --nocapture for the figures"]
async fn audit_scale_against_the_api_server() {
    let fake = FakeApiServer::start().await;
    for object in objects() {
        fake.apply(object);
    }
    let kubeconfig = tempdir().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);
    let kubeconfig = kubeconfig.display().to_string();

    // `audit -A` under /usr/bin/time for the peak RSS.
    let for_command = kubeconfig.clone();
    let (elapsed, output) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let output = Command::new("/usr/bin/time")
            .args(["-f", "peak_rss_kib=%M"])
            .arg(env!("CARGO_BIN_EXE_kuma-identity-webhook"))
            .args([
                "audit",
                "-A",
                "-o",
                "json",
                "--workload-labels",
                "app.kubernetes.io/name",
            ])
            .env("KUBECONFIG", &for_command)
            .output()
            .unwrap();
        (started.elapsed(), output)
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let findings: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        findings["findings"].as_array().unwrap().len(),
        EXPECTED_FINDINGS
    );
    let peak = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kib="))
        .unwrap();
    let pages = stderr.lines().filter(|l| l.starts_with("listed ")).count();
    println!("audit_scale audit -A: {PODS} pods in {elapsed:?}, peak RSS {peak} KiB, {pages} progress lines");

    // serve: the first audit once the watched state is complete.
    let binary = Binary::serve(
        &["--workload-labels", "app.kubernetes.io/name"],
        &[("KUBECONFIG", kubeconfig.as_str())],
    );
    let started = Instant::now();
    let metrics = after_first_audit(&binary, started, Duration::from_secs(300)).await;
    let missing = metric(
        &metrics,
        "kuma_identity_webhook_audit_findings{finding=\"missing_workload\"}",
    );
    assert_eq!(missing, Some((PODS / NO_WORKLOAD_EVERY) as f64));
    let took = metric(&metrics, "kuma_identity_webhook_audit_duration_seconds").unwrap();
    println!(
        "audit_scale serve: first audit {took:.3} s, metrics after {:?} from start",
        started.elapsed()
    );
}
