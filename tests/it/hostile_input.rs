//! Issue 11's hostile inputs, each through the real binary's HTTPS listener: every one gets an
//! answer (a denial, or a 4xx with a message), the server keeps answering `/healthz` throughout,
//! and the whole set, sent four at a time, keeps the server's peak memory (`VmHWM`) well under the
//! Deployment's 256 MiB limit.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

use crate::support::binary::Binary;
use crate::support::review::Review;
use crate::support::{repo_path, tempdir, MESHIDENTITY_PATH};

/// The Deployment's memory limit (deploy/base/deployment.yaml).
const MEMORY_LIMIT_KIB: u64 = 256 * 1024;
/// Pods added to the example cluster, so one review renders a path for hundreds of pods.
const EXTRA_PODS: usize = 300;

/// One hostile request and what must come back.
struct Case {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    /// The HTTP status, and text the answer (its status message, or the plain body) contains.
    status: u16,
    answer_contains: &'static str,
    /// Refused from its head while the client is still sending: over HTTP/1.1 the closing
    /// connection may reach the client before the answer does, so it is sent over h2 only.
    h2_only: bool,
}

fn meshidentity(name: &str, spec: Value) -> Value {
    Review::meshidentity(json!({
        "apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
        "metadata": {"name": name, "namespace": "kuma-system", "labels": {"kuma.io/mesh": "default"}},
        "spec": spec
    }))
    .uid(format!("uid-{name}"))
    .json()
}

fn trust_domain_case(name: &'static str, template: &str, answer_contains: &'static str) -> Case {
    let review = meshidentity("td", json!({"spiffeID": {"trustDomain": template}}));
    Case {
        name,
        path: MESHIDENTITY_PATH,
        content_type: "application/json",
        body: serde_json::to_vec(&review).unwrap(),
        status: 200,
        answer_contains,
        h2_only: false,
    }
}

/// A pod CREATE for the mutating webhook with `containers` application containers.
fn pod_review(containers: usize) -> Vec<u8> {
    let containers: Vec<Value> = (0..containers)
        .map(|i| json!({"name": format!("c{i}"), "image": "x"}))
        .collect();
    Review::create(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "many", "namespace": "shop", "labels": {"k8s.kuma.io/spire-support": "true"}},
        "spec": {"containers": containers}}))
    .uid("uid-pod")
    .username("jane")
    .bytes()
}

fn hostile_set() -> Vec<Case> {
    let doubled = format!(
        "{{{{ $x := \"aaaa\" }}}}{}{{{{ $x }}}}",
        "{{ $x = print $x $x }}".repeat(22)
    );
    let mut cases = vec![
        trust_domain_case(
            "an eight-digit width is no number to Go",
            "{{ printf \"%1000000000000d\" 1 }}",
            "%!(NOVERB)",
        ),
        trust_domain_case(
            "a * width of a million",
            "{{ printf \"%*d\" 1000000 1 }}",
            "rendering needs more than 16384 bytes",
        ),
        trust_domain_case(
            "a seven-digit width",
            "{{ printf \"%9999999d\" 1 }}",
            "rendering needs more than 16384 bytes",
        ),
        trust_domain_case(
            "a precision Rust's formatter cannot take",
            "{{ printf \"%.70000f\" 1.5 }}",
            "rendering needs more than 16384 bytes",
        ),
        trust_domain_case(
            "a nine-digit precision",
            "{{ printf \"%.100000000f\" 1.5 }}",
            "%!(NOVERB)",
        ),
        trust_domain_case(
            "a nine-digit width",
            "{{ printf \"%300000000d\" 1 }}",
            "%!(NOVERB)",
        ),
        trust_domain_case(
            "a string doubled through a variable 22 times",
            &doubled,
            "rendering needs more than 16384 bytes",
        ),
    ];
    // A path that takes 9 000 steps for each of the hundreds of pods it wins and renders apart
    // (it reads a label): the review's budget stops it.
    let wide = meshidentity(
        "a",
        json!({
            "selector": {"dataplane": {"matchLabels": {}}},
            "spiffeID": {"path": "{{ range 9000 }}{{ end }}/ns/{{ label \"k8s.kuma.io/namespace\" }}"}
        }),
    );
    cases.push(Case {
        name: "a path too costly for the pods it selects",
        path: MESHIDENTITY_PATH,
        content_type: "application/json",
        body: serde_json::to_vec(&wide).unwrap(),
        status: 200,
        answer_contains: "template steps",
        h2_only: false,
    });
    cases.push(Case {
        name: "a 1 MiB pod with 38 000 containers",
        path: "/mutate-v1-pod",
        content_type: "application/json",
        body: pod_review(38_000),
        status: 200,
        answer_contains: "pod has 38000 containers",
        h2_only: false,
    });
    let zeros = format!("[{}0]", "0,".repeat(3_400_000));
    cases.push(Case {
        name: "a 6.8 MiB body that is one array of zeros",
        path: "/validate-v1-pod",
        content_type: "application/json",
        body: zeros.into_bytes(),
        status: 400,
        answer_contains: "malformed AdmissionReview",
        h2_only: false,
    });
    cases.push(Case {
        name: "a body over the limit",
        path: "/validate-v1-pod",
        content_type: "application/json",
        body: vec![b' '; 8 << 20],
        status: 413,
        answer_contains: "larger than",
        h2_only: true,
    });
    for (name, content_type) in [
        ("a text/plain body", "text/plain"),
        ("a UTF-16 body", "application/json; charset=utf-16"),
    ] {
        cases.push(Case {
            name,
            path: MESHIDENTITY_PATH,
            content_type,
            body: serde_json::to_vec(&meshidentity("x", json!({}))).unwrap(),
            status: 415,
            answer_contains: "not supported",
            h2_only: false,
        });
    }
    cases
}

/// The example cluster with many pods of one mesh.
fn cluster_state() -> std::path::PathBuf {
    let mut text =
        std::fs::read_to_string(repo_path("deploy/examples/cluster-state.yaml")).unwrap();
    for i in 0..EXTRA_PODS {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p-{i}\n  namespace: shop\n  labels: {{app: p{i}}}\nspec:\n  serviceAccountName: sa-{i}\n"
        ));
    }
    let path = tempdir().join("cluster-state.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The answer's message: the AdmissionReview status message, or a plain-text body.
fn message_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|review| {
            review
                .pointer("/response/status/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.to_owned())
}

/// The built binary on `state`, logging in the text format, once ready.
async fn serve_with_text_logs(state: &std::path::Path) -> Binary {
    let binary = Binary::serve(
        &[
            "--cluster-state",
            state.to_str().unwrap(),
            "--log-format",
            "text",
        ],
        &[],
    );
    binary
        .wait_ready(Instant::now(), Duration::from_secs(30))
        .await;
    binary
}

/// Sends one case; `Ok(status)` when the answer is the expected one, or, with `busy_ok`, a 503
/// that says why; otherwise what came instead.
async fn send(
    client: &reqwest::Client,
    url: String,
    case: &Case,
    busy_ok: bool,
) -> Result<u16, String> {
    let response = client
        .post(url)
        .header("content-type", case.content_type)
        .body(case.body.clone())
        .send()
        .await
        .map_err(|e| format!("{}: no answer: {e}", case.name))?;
    let status = response.status().as_u16();
    let message = message_of(&response.text().await.unwrap_or_default());
    let expected = status == case.status && message.contains(case.answer_contains);
    let busy =
        busy_ok && status == 503 && message.contains("too many admission requests in flight");
    if expected || busy {
        return Ok(status);
    }
    Err(format!(
        "{}: want {} containing {:?}, got {status}: {}",
        case.name,
        case.status,
        case.answer_contains,
        &message[..message.len().min(300)]
    ))
}

#[tokio::test]
async fn hostile_inputs_are_answered_within_the_memory_limit() {
    let binary = serve_with_text_logs(&cluster_state()).await;
    let clients = [binary.client(false), binary.client(true)];
    let idle_peak = peak_kib(binary.child.id());
    let cases = hostile_set();
    // Each case over HTTP/1.1 and over h2.
    let rounds: Vec<(&Case, &reqwest::Client)> = cases
        .iter()
        .filter(|case| !case.h2_only)
        .map(|case| (case, &clients[0]))
        .chain(cases.iter().map(|case| (case, &clients[1])))
        .collect();
    let url = |case: &Case| binary.url(&format!("{}?timeout=10s", case.path));

    // One at a time, each gets exactly its answer.
    for (case, client) in &rounds {
        if let Err(failure) = send(client, url(case), case, false).await {
            panic!("{failure}");
        }
        assert_eq!(
            binary.admin_get("/healthz").await.map(|(s, _)| s),
            Some(200)
        );
    }

    // Four at a time, while /healthz on the admission listener keeps answering. A request whose
    // memory does not fit in time may be told so with a 503 instead.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let health = tokio::spawn({
        let (client, url) = (binary.client(true), binary.url("/healthz"));
        async move {
            let mut slowest = Duration::ZERO;
            while !*stopped.borrow() {
                let started = Instant::now();
                let status = client.get(&url).send().await.unwrap().status();
                assert_eq!(status, 200);
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            slowest
        }
    });
    let started = Instant::now();
    let answers: Vec<Result<u16, String>> = futures::stream::iter(&rounds)
        .map(|(case, client)| send(client, url(case), case, true))
        .buffer_unordered(4)
        .collect()
        .await;
    let elapsed = started.elapsed();
    stop.send(true).unwrap();
    let slowest_health = health.await.unwrap();
    let failures: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
    let busy = answers.iter().filter(|a| **a == Ok(503)).count();

    let peak = peak_kib(binary.child.id());
    eprintln!(
        "hostile set: {} requests one at a time, then 4 at a time in {elapsed:?} ({busy} told to retry); peak memory (VmHWM) {} MiB, {} MiB before; slowest /healthz {slowest_health:?}",
        rounds.len(),
        peak / 1024,
        idle_peak / 1024
    );
    assert!(
        peak < MEMORY_LIMIT_KIB * 3 / 4,
        "peak {peak} KiB against a limit of {MEMORY_LIMIT_KIB} KiB"
    );
    assert!(
        slowest_health < Duration::from_secs(2),
        "{slowest_health:?}"
    );
    assert_eq!(binary.readyz().await, Some(200));
}

/// Request fields reach the log escaped: a name cannot forge a log line or colour a terminal.
#[tokio::test]
async fn logged_request_fields_are_escaped() {
    let binary = serve_with_text_logs(&repo_path("deploy/examples/cluster-state.yaml")).await;
    let name = "web\nINFO forged line\u{1b}[31m";
    let mut review = meshidentity("x", json!({}));
    review["request"]["name"] = json!(name);
    review["request"]["uid"] = json!("uid\r\n");
    let response = binary
        .client(false)
        .post(binary.url(MESHIDENTITY_PATH))
        .header("content-type", "application/json")
        .json(&review)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = binary.log();
    let line = log
        .lines()
        .find(|line| line.contains("admission decision"))
        .unwrap_or_else(|| panic!("no decision logged:\n{log}"));
    assert!(line.contains(r"web\nINFO forged line\u{1b}[31m"), "{line}");
    assert!(line.contains(r"uid\r\n"), "{line}");
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(!log.lines().any(|l| l.starts_with("INFO forged")), "{log}");
}
