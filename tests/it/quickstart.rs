//! The README's quickstart, as a user runs it: the built binary serving `--dev` certificates and
//! the example cluster state, the README's curl review answered exactly as the README shows, the
//! admin listener's health and metrics, one JSON log line per decision, and env twins of flags.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::binary::Binary;
use crate::support::repo_path;

/// The README's "Try a review": the body curl sends and the answer it shows.
fn readme_review() -> (Value, Value) {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let section = &readme[readme.find("### Try a review").unwrap()..];
    let body_start = section.find("-d '").unwrap() + 4;
    let body_end = body_start + section[body_start..].find("'\n").unwrap();
    let body = serde_json::from_str(&section[body_start..body_end]).unwrap();
    let answer_start = section.find("```json\n").unwrap() + 8;
    let answer_end = answer_start + section[answer_start..].find("```").unwrap();
    let answer = serde_json::from_str(&section[answer_start..answer_end]).unwrap();
    (body, answer)
}

#[tokio::test]
async fn readme_quickstart_works_as_written() {
    let state = repo_path("deploy/examples/cluster-state.yaml");
    let binary = Binary::serve(
        &[
            "--cluster-state",
            state.to_str().unwrap(),
            "--log-format",
            "json",
        ],
        // An env twin: the same setting as `--workload-label-enforcement warn`.
        &[("KIW_WORKLOAD_LABEL_ENFORCEMENT", "warn")],
    );
    binary
        .wait_ready(Instant::now(), Duration::from_secs(30))
        .await;
    assert_eq!(
        binary.admin_get("/healthz").await.map(|(s, _)| s),
        Some(200)
    );

    let (body, answer) = readme_review();
    for http2 in [false, true] {
        let response = binary
            .client(http2)
            .post(binary.url("/validate-kuma-io-v1alpha1-meshidentity?timeout=10s"))
            .header("content-type", "application/json")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let got: Value = response.json().await.unwrap();
        assert_eq!(
            got, answer,
            "http2={http2}: the README shows another answer"
        );
        // The TLS listener answers health checks too.
        let health = binary.client(http2).get(binary.url("/readyz")).send().await;
        assert_eq!(health.unwrap().status().as_u16(), 200);
    }

    let (status, metrics) = binary.admin_get("/metrics").await.unwrap();
    assert_eq!(status, 200);
    let denied = metrics
        .lines()
        .find(|l| {
            l.contains("validate-kuma-io-v1alpha1-meshidentity")
                && l.contains("denied")
                && !l.starts_with('#')
        })
        .unwrap_or_else(|| panic!("no denied request counted:\n{metrics}"));
    assert!(denied.ends_with(" 2"), "{denied}");

    // One JSON line per decision, with the fields an operator greps for.
    let log = binary.log();
    let decisions: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.pointer("/fields/message") == Some(&Value::from("admission decision")))
        .collect();
    assert_eq!(decisions.len(), 2, "{log}");
    let fields = &decisions[0]["fields"];
    assert_eq!(fields["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(fields["kind"], "MeshIdentity");
    assert_eq!(fields["namespace"], "shop");
    assert_eq!(fields["name"], "web");
    assert_eq!(fields["operation"], "CREATE");
    assert_eq!(fields["allowed"], false);
    assert!(fields["duration_us"].is_u64(), "{fields}");
}

/// The env twin of a flag really reaches the decision: warn mode admits what deny mode refuses.
#[tokio::test]
async fn env_twin_of_enforcement_changes_the_verdict() {
    let state = repo_path("deploy/examples/cluster-state.yaml");
    let review = |binary: &Binary| {
        let request = binary
            .client(false)
            .post(binary.url("/validate-kuma-io-v1alpha1-meshidentity?timeout=10s"))
            .json(&crate::support::meshidentity_review(serde_json::json!({
                "apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
                "metadata": {"name": "everyone", "namespace": "kuma-system", "labels": {"kuma.io/mesh": "default"}},
                "spec": {
                    "selector": {"dataplane": {"matchLabels": {}}},
                    "spiffeID": {"path": "/workload/{{ .Workload }}"},
                    "provider": {"type": "Spire", "spire": {}}
                }
            })));
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["response"].clone()
        }
    };
    let args = ["--cluster-state", state.to_str().unwrap()];
    let deny = Binary::serve(&args, &[]);
    let warn = Binary::serve(&args, &[("KIW_WORKLOAD_LABEL_ENFORCEMENT", "warn")]);
    for binary in [&deny, &warn] {
        binary
            .wait_ready(Instant::now(), Duration::from_secs(30))
            .await;
    }
    let denied = review(&deny).await;
    assert_eq!(denied["allowed"], false, "{denied}");
    let warned = review(&warn).await;
    assert_eq!(warned["allowed"], true, "{warned}");
    assert!(
        warned["warnings"].as_array().is_some_and(|w| !w.is_empty()),
        "{warned}"
    );
}
