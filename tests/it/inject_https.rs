//! The SPIRE socket injection fixtures through the real TLS server on `/mutate-v1-pod`: the
//! returned patch is applied to the original JSON and compared with the golden pod, and the
//! patched pod sent back gets no patch.

use base64::Engine;
use serde_json::{json, Value};

use crate::support::inject_fixture::load_all;
use crate::support::review::Review;
use crate::support::{example_state, TestServer};
use kuma_identity_webhook::config::Settings;

const MUTATE: &str = "/mutate-v1-pod";

fn pod_review(pod: &Value, uid: &str) -> Vec<u8> {
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("demo");
    Review::create(pod.clone())
        .uid(uid)
        .namespace(Some(namespace.to_owned()))
        .username("system:serviceaccount:kube-system:replicaset-controller")
        .bytes()
}

/// The patch a response carries, decoded, or `None` when it carries none.
fn patch_of(response: &Value) -> Option<json_patch::Patch> {
    let encoded = response["response"]["patch"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// Every series of a counter family, as `(labels, value)`, e.g. `(outcome="x",reason="y", 1)`.
fn series(metrics: &str, family: &str) -> Vec<(String, String)> {
    let prefix = format!("kuma_identity_webhook_{family}_total{{");
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter_map(|rest| rest.split_once("} "))
        .map(|(labels, value)| (labels.to_owned(), value.to_owned()))
        .collect()
}

/// The one injection series a fixture's first review must produce.
fn expected_injection_series(fixture: &crate::support::inject_fixture::Fixture) -> String {
    let expect = &fixture.expect;
    if !expect.allowed {
        let reason = expect
            .deny_reason
            .as_deref()
            .expect("a denial fixture needs deny_reason");
        format!(r#"outcome="denied",reason="{reason}""#)
    } else if let Some(skip) = &expect.skip {
        format!(r#"outcome="skipped",reason="{skip}""#)
    } else {
        r#"outcome="injected",reason="injected""#.to_owned()
    }
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
        // Taken before the reinvocation below adds its own series.
        let injections = series(&server.metrics.encode(), "spire_socket_injections");
        let want_series = vec![(expected_injection_series(&fixture), "1".to_owned())];
        if injections != want_series {
            errors.push(format!(
                "injection metric: got {injections:?}, want {want_series:?}"
            ));
        }
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
                if let Some(want_patch) = &fixture.expect.patch {
                    let got = serde_json::to_value(patch).unwrap();
                    if &got != want_patch {
                        errors.push(format!("patch differs:\n got  {got}\n want {want_patch}"));
                    }
                }
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
                let again = &again["response"];
                if again.get("patch").is_some()
                    || again.get("patchType").is_some()
                    || again["allowed"] != true
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
        if fixture.expect.warnings_contain.is_empty() && r.get("warnings").is_some() {
            errors.push(format!("unexpected warnings: {}", r["warnings"]));
        }
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
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The mutation reads only the pod, so it is answered before the cluster state is loaded (with
/// failurePolicy: Fail a 503 would block every pod creation); the pod validation, which reads
/// the state, still gets 503.
#[tokio::test]
async fn mutation_does_not_wait_for_the_cluster_state() {
    let settings = Settings {
        inject: kuma_identity_webhook::inject::InjectConfig {
            enabled_by_default: true,
            ..Default::default()
        },
        ..Settings::default()
    };
    let server = TestServer::start(None, settings).await;
    let client = server.client(false);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "demo"},
                     "spec": {"containers": [{"name": "app", "image": "nginx"}]}});
    let (status, response) = server.post(&client, MUTATE, pod_review(&pod, "m-1")).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["response"]["uid"], "m-1");
    assert_eq!(response["response"]["allowed"], true, "{response}");
    assert_eq!(response["response"]["patchType"], "JSONPatch", "{response}");
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch_of(&response).unwrap()).unwrap();
    assert_eq!(
        patched["spec"]["volumes"][0]["name"],
        "kuma-spire-agent-socket"
    );

    let (status, response) = server
        .post(&client, "/validate-v1-pod", pod_review(&pod, "v-1"))
        .await;
    assert_eq!(status, 503, "{response}");
    assert_eq!(response["response"]["uid"], "v-1");
}

/// A review of something that is not a Pod is counted as malformed, not as a bad opt-in.
#[tokio::test]
async fn wrong_kind_is_counted_as_malformed() {
    let server = TestServer::start(Some(example_state()), Settings::default()).await;
    let client = server.client(false);
    let mut review: Value =
        serde_json::from_slice(&pod_review(&json!({"kind": "Pod"}), "k-1")).unwrap();
    let gvk = json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    review["request"]["kind"] = gvk.clone();
    review["request"]["requestKind"] = gvk;
    let (status, response) = server
        .post(&client, MUTATE, serde_json::to_vec(&review).unwrap())
        .await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["response"]["allowed"], false, "{response}");
    assert_eq!(
        series(&server.metrics.encode(), "spire_socket_injections"),
        vec![(
            r#"outcome="denied",reason="malformed""#.to_owned(),
            "1".to_owned()
        )]
    );
}
