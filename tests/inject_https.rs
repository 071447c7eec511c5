//! The SPIRE socket injection fixtures through the real TLS server on `/mutate-v1-pod`: the
//! returned patch is applied to the original JSON and compared with the golden pod, and the
//! patched pod sent back gets no patch.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine;
use serde_json::{json, Value};

use kuma_identity_webhook::config::Settings;
use support::inject_fixture::load_all;
use support::{example_state, TestServer};

const MUTATE: &str = "/mutate-v1-pod";

fn pod_review(pod: &Value, uid: &str) -> Vec<u8> {
    let gvk = json!({"group": "", "version": "v1", "kind": "Pod"});
    let gvr = json!({"group": "", "version": "v1", "resource": "pods"});
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("demo");
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "dryRun": false
        }
    }))
    .unwrap()
}

/// The patch a response carries, decoded, or `None` when it carries none.
fn patch_of(response: &Value) -> Option<json_patch::Patch> {
    let encoded = response["response"]["patch"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn inject_fixtures_through_https() {
    let mut failures = Vec::new();
    for (path, fixture) in load_all() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let settings = Settings {
            inject: fixture.config.build(),
            ..Settings::default()
        };
        let server = TestServer::start(Some(example_state()), settings).await;
        let client = server.client(false);
        let (status, response) = server
            .post(&client, MUTATE, pod_review(&fixture.pod, &name))
            .await;
        let r = &response["response"];
        let mut errors = Vec::new();
        if status != 200 || response["kind"] != "AdmissionReview" || r["uid"] != name.as_str() {
            errors.push(format!("envelope: HTTP {status} {response}"));
        }
        if r["allowed"] != fixture.expect.allowed {
            errors.push(format!("allowed: want {}", fixture.expect.allowed));
        }
        let patch = patch_of(&response);
        if patch.is_some() != r.get("patchType").is_some()
            || (patch.is_some() && r["patchType"] != "JSONPatch")
        {
            errors.push("patchType must come with a patch and only then".to_owned());
        }
        match (&patch, &fixture.expect.patched) {
            (Some(patch), Some(want)) => {
                let mut patched = fixture.pod.clone();
                json_patch::patch(&mut patched, patch).unwrap();
                if &patched != want {
                    errors.push(format!(
                        "patched pod differs:\n got  {patched}\n want {want}"
                    ));
                }
                // Reinvocation: the patched pod gets no second copy.
                let (_, again) = server
                    .post(&client, MUTATE, pod_review(&patched, "again"))
                    .await;
                if again["response"].get("patch").is_some() || again["response"]["allowed"] != true
                {
                    errors.push(format!("reinvocation patched again: {again}"));
                }
                let audit = r["auditAnnotations"]["spire-agent-socket"]
                    .as_str()
                    .unwrap_or_default();
                if !audit.starts_with("injected into") {
                    errors.push(format!("audit annotation: {audit:?}"));
                }
            }
            (None, None) => {}
            (got, want) => errors.push(format!("patch: got {got:?}, want patched {want:?}")),
        }
        let message = r["status"]["message"].as_str().unwrap_or_default();
        for needle in &fixture.expect.message_contains {
            if !message.contains(needle.as_str()) {
                errors.push(format!("message {message:?} lacks {needle:?}"));
            }
        }
        let warnings: Vec<&str> = r["warnings"]
            .as_array()
            .map(|w| w.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for needle in &fixture.expect.warnings_contain {
            if !warnings.iter().any(|w| w.contains(needle.as_str())) {
                errors.push(format!("no warning contains {needle:?}: {warnings:?}"));
            }
        }
        if let Some(skip) = &fixture.expect.skip {
            let audit = r["auditAnnotations"]["spire-agent-socket"]
                .as_str()
                .unwrap_or_default();
            if audit != format!("skipped: {skip}") {
                errors.push(format!("audit annotation: {audit:?}, want skipped: {skip}"));
            }
        }
        if !errors.is_empty() {
            failures.push(format!("{name}:\n  {}", errors.join("\n  ")));
        }
        let metrics = server.metrics.encode();
        if !metrics.contains("spire_socket_injections_total") {
            failures.push(format!("{name}: no injection metric: {metrics}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
