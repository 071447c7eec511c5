//! `audit`, run as a user would run the built binary: against a cluster-state file with every
//! finding at least once (and clean pods that look close to broken), and against the fake API
//! server, listed in pages with nothing the shipped RBAC does not grant.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::binary::Binary;
use crate::support::cli::{cli, cli_with_env, Run};
use crate::support::fake_apiserver::FakeApiServer;
use crate::support::rbac::{granted_rules, is_granted};
use crate::support::{metric, repo_path, tempdir};
use kuma_identity_webhook::cluster::file::read_documents;

const FIXTURE: &str = "tests/fixtures/audit/cluster.yaml";
/// The fixture's web identity reads the workload from this label.
const WORKLOAD_LABELS: &str = "app.kubernetes.io/name";

fn audit_file(extra: &[&str]) -> Run {
    let state = repo_path(FIXTURE).display().to_string();
    let mut args = vec![
        "audit",
        "--cluster-state",
        &state,
        "--workload-labels",
        WORKLOAD_LABELS,
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

const WORKLOAD_ACTION: &str = "give each pod one of the workload labels [app.kubernetes.io/name] (KUMA_RUNTIME_KUBERNETES_WORKLOAD_LABELS), or change the path";

/// Every finding of the fixture across namespaces, as `audit -A` prints it.
fn expected_table() -> String {
    let spire = "set k8s.kuma.io/spire-support to true or false (label and annotation alike) and recreate the pod";
    let recreate = |pod: &str| {
        format!(
            "recreate the pod (kubectl delete pod -n shop {pod}) so the webhook injects the socket"
        )
    };
    let rows: Vec<[String; 5]> = [
        ["other", "web-2", "kuma-system/web", "missing_workload", WORKLOAD_ACTION],
        ["plain", "web-4", "kuma-system/web", "missing_workload", WORKLOAD_ACTION],
        ["shop", "api-0", "kuma-system/api", "missing_label", "add the label to the pod template and recreate the pod, or change the MeshIdentity's path"],
        ["shop", "batch-0", "kuma-system/batch", "invalid_spiffe_id", "fix the MeshIdentity's templates or the pod values they read, then recreate the pod"],
        ["shop", "manual-0", "kuma-system/everyone", "manual_workload_label", "remove the kuma.io/workload label from the pod template and recreate the pod"],
        ["shop", "spire-0", "kuma-system/everyone", "invalid_spire_support", spire],
        ["shop", "spire-1", "kuma-system/everyone", "spire_support_conflict", spire],
        ["shop", "spire-2", "kuma-system/everyone", "socket_volume_missing", &recreate("spire-2")],
        ["shop", "spire-3", "kuma-system/everyone", "socket_mount_missing", &recreate("spire-3")],
        ["shop", "spire-4", "kuma-system/everyone", "socket_volume_missing", &recreate("spire-4")],
        ["shop", "spire-4", "kuma-system/everyone", "socket_mount_missing", &recreate("spire-4")],
        ["shop", "web-0", "kuma-system/web", "missing_workload", WORKLOAD_ACTION],
    ]
    .into_iter()
    .map(|row| row.map(str::to_owned))
    .collect();
    let header = ["NAMESPACE", "POD", "MESHIDENTITY", "FINDING", "ACTION"].map(str::to_owned);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            std::iter::once(&header)
                .chain(&rows)
                .map(|r| r[c].len())
                .max()
                .unwrap()
        })
        .collect();
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let line: String = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<w$}", w = width + 3))
                .collect();
            format!("{}\n", line.trim_end())
        })
        .collect()
}

#[test]
fn every_finding_once_in_a_table_across_namespaces() {
    let run = audit_file(&["-A"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stdout, expected_table());
    assert_eq!(run.stderr, "");
}

#[test]
fn json_gives_each_finding_with_its_identity_message_and_action() {
    let run = audit_file(&["-A", "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let out: Value = serde_json::from_str(&run.stdout).unwrap();
    let findings = out["findings"].as_array().unwrap();
    let summary: Vec<String> = findings
        .iter()
        .map(|f| {
            format!(
                "{}/{} {}",
                f["namespace"].as_str().unwrap(),
                f["pod"].as_str().unwrap(),
                f["finding"].as_str().unwrap()
            )
        })
        .collect();
    let from_table: Vec<String> = expected_table()
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            format!("{}/{} {}", cells[0], cells[1], cells[3])
        })
        .collect();
    assert_eq!(summary, from_table);
    let web = findings.iter().find(|f| f["pod"] == "web-0").unwrap();
    assert_eq!(
        *web,
        json!({
            "namespace": "shop",
            "pod": "web-0",
            "meshIdentity": "kuma-system/web",
            "finding": "missing_workload",
            "message": format!("missing required label 'kuma.io/workload' - pod is selected by MeshIdentity 'web' with path template '/ns/{{{{ .Namespace }}}}/workload/{{{{ .Workload }}}}'; {WORKLOAD_ACTION}"),
            "action": WORKLOAD_ACTION,
        })
    );
    let label = findings.iter().find(|f| f["pod"] == "api-0").unwrap();
    assert!(
        label["message"]
            .as_str()
            .unwrap()
            .contains("label team not found"),
        "{label}"
    );
    let mount = findings.iter().find(|f| f["pod"] == "spire-3").unwrap();
    assert_eq!(mount["message"], "not mounted in containers/app");
}

#[test]
fn namespace_flags_scope_the_audit_like_kubectl() {
    // Without -A, one namespace and no NAMESPACE column.
    let other = audit_file(&["--namespace", "other"]);
    assert_eq!(other.code, 1, "{}", other.stderr);
    assert_eq!(
        other.stdout,
        format!("POD     MESHIDENTITY      FINDING            ACTION\nweb-2   kuma-system/web   missing_workload   {WORKLOAD_ACTION}\n")
    );
    // No flag: the default namespace, which has no pods here: clean.
    let default = audit_file(&[]);
    assert_eq!((default.code, default.stdout.as_str()), (0, ""));
    assert_eq!(default.stderr, "No findings in default namespace.\n");
    let json = audit_file(&["-n", "kuma-system", "-o", "json"]);
    assert_eq!(
        (json.code, json.stdout.as_str()),
        (0, "{\"findings\":[]}\n")
    );
    // The same pods are clean once the workload comes from the service account.
    let fallback = audit_file(&["-n", "other", "--workload-fallback", "service-account"]);
    assert_eq!(fallback.code, 0, "{}", fallback.stdout);
    assert!(cli(&["audit", "-A", "-n", "shop"]).code != 0);
}

#[test]
fn unreadable_input_exits_2() {
    let missing = tempdir().join("missing.yaml").display().to_string();
    let run = cli(&["audit", "--cluster-state", &missing, "-A"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    // No cluster state and no reachable API server.
    let kubeconfig = tempdir().join("kubeconfig");
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n").unwrap();
    let run = cli_with_env(
        &["audit", "-A"],
        &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// Clean pods added to the fixture so the pod list takes more than one page.
const EXTRA_PODS: usize = 1_100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_audit_lists_in_pages_within_rbac_and_matches_the_file() {
    let fake = FakeApiServer::start().await;
    for document in read_documents(&repo_path(FIXTURE)).unwrap() {
        fake.apply(document);
    }
    for i in 0..EXTRA_PODS {
        fake.apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("filler-{i}"), "namespace": "other", "labels": {"app": "filler"}},
            "spec": {"containers": [{"name": "app", "image": "app"}]}}));
    }
    let kubeconfig = tempdir().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig);
    let kubeconfig = kubeconfig.display().to_string();
    let run = |args: Vec<&'static str>| {
        let kubeconfig = kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["audit", "--workload-labels", WORKLOAD_LABELS];
            all.extend(args);
            cli_with_env(&all, &[("KUBECONFIG", kubeconfig.as_str())])
        })
    };
    let live = run(vec!["-A"]).await.unwrap();
    assert_eq!(live.code, 1, "{}", live.stderr);
    assert_eq!(live.stdout, expected_table());
    // Progress for the paged pod list, one line per page after the first.
    assert_eq!(live.stderr, "listed 1000 pods…\nlisted 1119 pods…\n");

    // The kubeconfig's namespace (default) when neither flag is given; only its pods are listed.
    let context = run(vec![]).await.unwrap();
    assert_eq!(
        (context.code, context.stdout.as_str()),
        (0, ""),
        "{}",
        context.stderr
    );
    let shop = run(vec!["-n", "shop", "-o", "json"]).await.unwrap();
    assert_eq!(shop.code, 1, "{}", shop.stderr);
    let findings: Value = serde_json::from_str(&shop.stdout).unwrap();
    assert_eq!(findings["findings"].as_array().unwrap().len(), 10);

    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/pods?") && r.contains("continue=")),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/default/pods?")),
        "{requests:?}"
    );
    assert!(
        requests.iter().all(|r| !r.contains("watch=")),
        "{requests:?}"
    );
    let grants = granted_rules();
    for request in &requests {
        assert!(
            is_granted(&grants, request),
            "{request} is not granted by deploy/base/rbac.yaml"
        );
    }

    // A continue token that expires part-way: the pages no longer make one consistent list.
    fake.set_continue_expired(true);
    let expired = run(vec!["-A"]).await.unwrap();
    assert_eq!(
        (expired.code, expired.stdout.as_str()),
        (2, ""),
        "{}",
        expired.stderr
    );
    assert!(
        expired.stderr.contains("error: listing pods") && expired.stderr.contains("too old"),
        "{}",
        expired.stderr
    );
    fake.set_continue_expired(false);

    // An API server that fails is unreadable input.
    fake.set_failing(true);
    let failing = run(vec!["-A"]).await.unwrap();
    assert_eq!(failing.code, 2, "{}", failing.stderr);
    assert!(
        failing.stderr.contains("error: listing"),
        "{}",
        failing.stderr
    );
}

/// The server's metrics once its first audit has run; fails after `limit` from `started`.
pub async fn after_first_audit(binary: &Binary, started: Instant, limit: Duration) -> String {
    loop {
        if let Some((200, text)) = binary.admin_get("/metrics").await {
            let last_run = "kuma_identity_webhook_audit_last_run_timestamp_seconds";
            if metric(&text, last_run) > Some(0.0) {
                return text;
            }
        }
        assert!(
            started.elapsed() < limit,
            "no audit; log:\n{}",
            binary.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_the_findings_once_the_state_is_loaded() {
    let state = repo_path(FIXTURE).display().to_string();
    let binary = Binary::serve(
        &[
            "--cluster-state",
            &state,
            "--workload-labels",
            WORKLOAD_LABELS,
        ],
        &[],
    );
    let started = Instant::now();
    let metrics = after_first_audit(&binary, started, Duration::from_secs(30)).await;
    // The fixture's findings, as `audit -A` prints them: one label per finding, zeros included.
    let want = [
        ("missing_workload", 3.0),
        ("missing_label", 1.0),
        ("invalid_spiffe_id", 1.0),
        ("manual_workload_label", 1.0),
        ("invalid_spire_support", 1.0),
        ("spire_support_conflict", 1.0),
        ("socket_volume_missing", 2.0),
        ("socket_mount_missing", 2.0),
    ];
    for (finding, count) in want {
        let name = format!("kuma_identity_webhook_audit_findings{{finding=\"{finding}\"}}");
        assert_eq!(metric(&metrics, &name), Some(count), "{finding}: {metrics}");
    }
    let findings = metrics
        .lines()
        .filter(|l| l.starts_with("kuma_identity_webhook_audit_findings{"))
        .count();
    assert_eq!(findings, want.len(), "{metrics}");
    let took = metric(&metrics, "kuma_identity_webhook_audit_duration_seconds").unwrap();
    assert!((0.0..5.0).contains(&took), "{took}");
    // Each finding's count is logged as it changes from nothing.
    let log = binary.log();
    for (finding, _) in want {
        assert!(log.contains(finding), "{finding} not logged:\n{log}");
    }
}
