//! Every admission fixture through the decision entry the server calls (the envelope included),
//! in process: the whole set in well under a second. A smoke run sends the first case of each
//! file through the real TLS server, over HTTP/1.1 and h2, with a client that verifies the chain
//! and the DNS name; the rest of the real surface is covered by the server's own tests.

use serde_json::{json, Value};

use crate::support::review::Review;
use crate::support::{example_state, load_fixtures, Case, TestServer};
use kuma_identity_webhook::admission::{self, Webhook};
use kuma_identity_webhook::config::Settings;

const FILES: [&str; 3] = [
    "tests/fixtures/admission/meshidentity.yaml",
    "tests/fixtures/admission/mesh.yaml",
    "tests/fixtures/admission/pod.yaml",
];

/// What is wrong with `response` as the answer to `case`, reviewed as `uid`.
fn problems(case: &Case, uid: &str, status: u16, response: &Value) -> Vec<String> {
    let mut errors = case.expect.check(uid, response);
    if status != 200 {
        errors.push(format!("HTTP {status}"));
    }
    if response["response"].get("patchType").is_some()
        || response["response"].get("patch").is_some()
    {
        errors.push("a validating answer carries a patch".to_owned());
    }
    errors
}

fn report(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn run_in_process(relative: &str) {
    let file = load_fixtures(relative);
    let webhook = Webhook::from_path(&file.webhook).unwrap();
    let mut failures = Vec::new();
    for (index, case) in file.cases.iter().enumerate() {
        let uid = format!("uid-{index}");
        let body = serde_json::to_vec(&case.review(&uid)).unwrap();
        let snapshot = case.snapshot();
        let reviewed =
            admission::review(webhook, &body, Some(&snapshot), &case.settings.settings());
        let response = reviewed.body_json();
        let errors = problems(case, &uid, reviewed.http_status, &response);
        if !errors.is_empty() {
            failures.push(format!(
                "{}:\n  {}\n  response: {response}",
                case.name,
                errors.join("\n  ")
            ));
        }
    }
    report(&failures);
}

#[test]
fn meshidentity_fixtures() {
    run_in_process(FILES[0]);
}

#[test]
fn mesh_fixtures() {
    run_in_process(FILES[1]);
}

#[test]
fn pod_validation_fixtures() {
    run_in_process(FILES[2]);
}

/// The first case of each fixture file through the real TLS server, both protocols.
#[tokio::test]
async fn fixtures_through_the_tls_server() {
    let mut failures = Vec::new();
    for relative in FILES {
        let file = load_fixtures(relative);
        let case = &file.cases[0];
        let server = TestServer::start(Some(case.snapshot()), case.settings.settings()).await;
        for http2 in [false, true] {
            let client = server.client(http2);
            let uid = format!("uid-{http2}");
            let body = serde_json::to_vec(&case.review(&uid)).unwrap();
            let (status, response) = server.post(&client, &file.webhook, body).await;
            let errors = problems(case, &uid, status, &response);
            if !errors.is_empty() {
                failures.push(format!(
                    "{} (http2={http2}):\n  {}\n  response: {response}",
                    case.name,
                    errors.join("\n  ")
                ));
            }
        }
    }
    report(&failures);
}

/// A CREATE review of `pod` in `shop` for `/validate-v1-pod`; `kind` is the request's kind.
fn pod_review(uid: &str, kind: &str, pod: Value) -> Vec<u8> {
    Review::create(pod)
        .uid(uid)
        .namespace(Some("shop".to_owned()))
        .claim_kind(kind)
        .bytes()
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
        crate::support::insert_json(
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
