//! Every admission fixture through the real TLS server, over HTTP/1.1 and h2, with a client that
//! verifies the chain and the DNS name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};

use kuma_identity_webhook::config::Settings;
use support::{example_state, load_fixtures, TestServer};

async fn run_fixture_file(relative: &str) {
    let file = load_fixtures(relative);
    let mut failures = Vec::new();
    for (index, case) in file.cases.iter().enumerate() {
        let server = TestServer::start(Some(case.snapshot()), case.settings.settings()).await;
        for http2 in [false, true] {
            let client = server.client(http2);
            let uid = format!("uid-{index}-{http2}");
            let body = serde_json::to_vec(&case.review(&uid)).unwrap();
            let (status, response) = server.post(&client, &file.webhook, body).await;
            let mut errors = case.expect.check(&uid, &response);
            if status != 200 {
                errors.push(format!("HTTP {status}"));
            }
            if response["response"].get("patchType").is_some()
                || response["response"].get("patch").is_some()
            {
                errors.push("a validating answer carries a patch".to_owned());
            }
            if !errors.is_empty() {
                failures.push(format!(
                    "{} (http2={http2}):\n  {}\n  response: {response}",
                    case.name,
                    errors.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn meshidentity_fixtures() {
    run_fixture_file("tests/fixtures/admission/meshidentity.yaml").await;
}

#[tokio::test]
async fn mesh_fixtures() {
    run_fixture_file("tests/fixtures/admission/mesh.yaml").await;
}

#[tokio::test]
async fn pod_validation_fixtures() {
    run_fixture_file("tests/fixtures/admission/pod.yaml").await;
}

/// A CREATE review of `pod` for `/validate-v1-pod`; `kind` is the request's kind.
fn pod_review(uid: &str, kind: &str, pod: Value) -> Vec<u8> {
    let gvk = json!({"group": "", "version": "v1", "kind": kind});
    let gvr = json!({"group": "", "version": "v1", "resource": "pods"});
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
                    "name": "p", "namespace": "shop", "operation": "CREATE",
                    "userInfo": {"username": "admin"}, "object": pod}
    }))
    .unwrap()
}

/// Pod denials are counted by a bounded reason, one series per reason, and allowed pods are not
/// counted at all.
#[tokio::test]
async fn pod_denials_are_counted_by_reason() {
    let mut state = example_state();
    for (name, app, path) in [
        ("batch", "batch", "/workload/{{ .Workload }}"),
        ("team", "web", r#"/team/{{ label "team" }}"#),
    ] {
        support::insert_json(
            &mut state,
            json!({"apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
                "metadata": {"name": name, "namespace": "kuma-system"},
                "spec": {"selector": {"dataplane": {"matchLabels": {"app": app}}}, "spiffeID": {"path": path}}}),
        );
    }
    let server = TestServer::start(Some(state), Settings::default()).await;
    let client = server.client(false);
    let pod = |labels: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop", "labels": labels}, "spec": {}});
    let reviews = [
        ("Pod", pod(json!({"kuma.io/workload": "x"})), false),
        ("Pod", pod(json!({"app": "batch"})), false),
        ("Pod", pod(json!({"app": "batch"})), false),
        ("Pod", pod(json!({"app": "web", "team": ".."})), false),
        ("Pod", pod(json!({"app": "web", "team": "a"})), true),
        (
            "Pod",
            pod(json!({"app": "batch", "kuma.io/sidecar-injection": "disabled"})),
            true,
        ),
        ("Deployment", pod(json!({})), false),
    ];
    for (index, (kind, object, allowed)) in reviews.into_iter().enumerate() {
        let uid = format!("m-{index}");
        let (status, response) = server
            .post(&client, "/validate-v1-pod", pod_review(&uid, kind, object))
            .await;
        assert_eq!(status, 200, "{response}");
        assert_eq!(
            response["response"]["allowed"], allowed,
            "{index}: {response}"
        );
    }
    let metrics = server.metrics.encode();
    let mut got: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("kuma_identity_webhook_pod_denials_total{"))
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        [
            r#"kuma_identity_webhook_pod_denials_total{reason="invalid_spiffe_id"} 1"#,
            r#"kuma_identity_webhook_pod_denials_total{reason="malformed"} 1"#,
            r#"kuma_identity_webhook_pod_denials_total{reason="manual_workload_label"} 1"#,
            r#"kuma_identity_webhook_pod_denials_total{reason="missing_workload"} 2"#,
        ],
        "{metrics}"
    );
}
