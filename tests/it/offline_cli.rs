//! The offline commands, run as a user would run the built binary, and the promise behind them:
//! for the same AdmissionReviews, `check` and the HTTPS server give the same verdicts.

use std::path::Path;

use serde_json::Value;

use crate::support::cli::{cli, cli_with_env, Run};
use crate::support::inject_fixture;
use crate::support::{load_fixtures, repo_path, tempdir, Case, FixtureSettings, TestServer};

fn example_state() -> String {
    repo_path("deploy/examples/cluster-state.yaml")
        .display()
        .to_string()
}

/// Writes `contents` to a file `name` in a new temporary directory and returns its path.
fn temp_file(name: &str, contents: &str) -> String {
    let path = tempdir().join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

fn fixture(name: &str) -> String {
    repo_path(&format!("tests/fixtures/offline/{name}"))
        .display()
        .to_string()
}

/// `check` of `tests/fixtures/offline/apply.yaml` against the example state, with `extra` flags.
fn check_apply_yaml(extra: &[&str]) -> Run {
    let (file, state) = (fixture("apply.yaml"), example_state());
    let mut args = vec!["check"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "-f",
        &file,
        "--cluster-state",
        &state,
        "--workload-labels",
        "app.kubernetes.io/name",
    ]);
    cli(&args)
}

#[test]
fn check_prints_what_kubectl_would_and_exits_1_on_a_denial() {
    let run = check_apply_yaml(&[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "meshidentity.kuma.io/web created (server dry run)\n"
    );
    let stderr: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(stderr.len(), 3, "{}", run.stderr);
    assert_eq!(stderr[0], "Warning: spec.provider.bundled.insecureAllowSelfSigned: true accepts a self-signed CA; use it only for testing");
    assert_eq!(
        stderr[1],
        format!(
            "Error from server (Forbidden): error when creating \"{}\": admission webhook \"validate-meshidentity.kuma-identity-webhook.kuma.io\" denied the request: resource type MeshIdentity can be created only in the system namespace:kuma-system; spec.spiffeID.trustDomain: couldn't parse template: template: :1: non executable command in pipeline stage 2",
            fixture("apply.yaml")
        ),
    );
    // The Mesh update sees the identity the same run created, as a real apply would.
    assert!(
        stderr[2].starts_with("Error from server (Invalid): error when applying patch for"),
        "{}",
        stderr[2]
    );
    assert!(
        stderr[2].contains(
            "2 MeshIdentities of mesh \"default\" exist (kuma-system/identity, kuma-system/web)"
        ),
        "{}",
        stderr[2]
    );
}

#[test]
fn check_exit_codes_and_json() {
    let ok = cli(&["check", "-f", "-", "--cluster-state", &example_state()]);
    assert_eq!(
        ok.code, 0,
        "empty input admits nothing and denies nothing: {}",
        ok.stderr
    );
    let unreadable = cli(&["check", "-f", "/nonexistent.yaml"]);
    assert_eq!(unreadable.code, 2);
    assert!(
        unreadable.stderr.contains("/nonexistent.yaml"),
        "{}",
        unreadable.stderr
    );
    let dir = tempdir();
    std::fs::write(dir.join("bad.yaml"), "kind: [").unwrap();
    assert_eq!(cli(&["check", "-f", dir.to_str().unwrap()]).code, 2);

    let run = check_apply_yaml(&["-o", "json"]);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["allowed"], true);
    assert_eq!(lines[1]["allowed"], false);
    assert_eq!(lines[1]["status"]["code"], 403);
    assert_eq!(lines[2]["operation"], "UPDATE");
}

#[test]
fn inject_rewrites_pod_templates_and_reports_each_object() {
    let run = cli(&["inject", "-o", "json", "-f", &fixture("workloads.yaml")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr,
        "deployment/web injected\ncronjob/report skipped: disabled\n",
    );
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let template = &items[0]["spec"]["template"]["spec"];
    assert_eq!(template["volumes"][0]["csi"]["driver"], "csi.spiffe.io");
    assert_eq!(
        template["containers"][0]["env"][0]["value"],
        "unix:///run/spire/sockets/socket"
    );
    assert_eq!(
        items[2]["data"]["level"], "debug",
        "other objects pass through"
    );

    let everywhere = cli(&[
        "inject",
        "--spire-enabled",
        "-f",
        &fixture("workloads.yaml"),
    ]);
    assert_eq!(
        everywhere.stderr,
        "deployment/web injected\ncronjob/report injected\n"
    );
    let docs: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&everywhere.stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(
        docs[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"][0]["name"],
        "kuma-spire-agent-socket"
    );
}

/// Every injection golden fixture through the offline command: same patched pod, same verdict.
#[test]
fn inject_matches_the_golden_fixtures() {
    let dir = tempdir();
    for (path, fixture) in inject_fixture::load_all() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let input = dir.join(&name);
        std::fs::write(&input, serde_json::to_string(&fixture.pod).unwrap()).unwrap();
        let config = fixture.config.build();
        let enabled = config.enabled_by_default.to_string();
        let run = cli(&[
            "inject",
            "-o",
            "json",
            "-f",
            input.to_str().unwrap(),
            "--spire-enabled",
            &enabled,
            "--spire-mount-path",
            &config.mount_path,
            "--spire-socket-file-name",
            &config.socket_file_name,
        ]);
        assert_eq!(
            run.code,
            if fixture.expect.allowed { 0 } else { 1 },
            "{name}: {}",
            run.stderr
        );
        let output: Value = serde_json::from_str(&run.stdout).unwrap();
        let want = fixture.expect.patched.as_ref().unwrap_or(&fixture.pod);
        assert_eq!(&output, want, "{name}");
    }
}

#[test]
fn explain_tells_why_the_winner_won() {
    let dir = tempdir();
    let state = dir.join("state.yaml");
    let extra = "---\napiVersion: kuma.io/v1alpha1\nkind: MeshIdentity\nmetadata: {name: a, namespace: kuma-system}\nspec: {selector: {dataplane: {matchLabels: {app: web}}}, spiffeID: {path: '/w/{{ .Workload }}'}}\n---\napiVersion: kuma.io/v1alpha1\nkind: MeshIdentity\nmetadata: {name: a-b, namespace: kuma-system}\nspec: {selector: {dataplane: {matchLabels: {app: web}}}}\n";
    std::fs::write(
        &state,
        std::fs::read_to_string(example_state()).unwrap() + extra,
    )
    .unwrap();
    let run = cli(&[
        "explain",
        "-f",
        &fixture("workloads.yaml"),
        "--cluster-state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("pod shop/web\n"), "{}", run.stdout);
    assert!(run.stdout.contains("  winner:    kuma-system/a-b: tie on 1 matchLabels, won by the smaller name.namespace (\"a-b.kuma-system\" < \"a.kuma-system\")\n"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("  SPIFFE ID:    spiffe://default.default.mesh.local/ns/shop/sa/web\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("  SPIRE agent socket: injected into containers/web\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("configmap/settings: runs no pods, skipped"),
        "{}",
        run.stderr
    );

    let json = cli(&[
        "explain",
        "-o",
        "json",
        "-f",
        &fixture("workloads.yaml"),
        "--cluster-state",
        &example_state(),
    ]);
    let first: Value = serde_json::from_str(json.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["winner"], "kuma-system/identity");
    assert_eq!(
        first["dataplane_labels"]["k8s.kuma.io/service-account"],
        "web"
    );
}

/// The flags `check` needs to decide with a fixture's settings.
fn settings_flags(settings: &FixtureSettings) -> Vec<String> {
    let mut flags = vec![
        "--workload-labels".to_owned(),
        settings.workload_labels.join(","),
    ];
    if let Some(enforcement) = &settings.enforcement {
        flags.extend([
            "--workload-label-enforcement".to_owned(),
            enforcement.clone(),
        ]);
    }
    if let Some(fallback) = &settings.workload_fallback {
        flags.extend(["--workload-fallback".to_owned(), fallback.clone()]);
    }
    if let Some(version) = &settings.kuma_version {
        flags.extend(["--kuma-version".to_owned(), version.clone()]);
    }
    flags
}

/// Whether `check` sends the same review as the fixture: same operation (CREATE for new objects,
/// UPDATE for existing ones), namespace and user.
fn check_can_replay(case: &Case) -> bool {
    let Some(object) = &case.request.object else {
        return false;
    };
    let same = |other: &Value| {
        ["/kind", "/metadata/namespace", "/metadata/name"]
            .iter()
            .all(|pointer| other.pointer(pointer) == object.pointer(pointer))
    };
    let example =
        kuma_identity_webhook::cluster::file::read_documents(Path::new(&example_state())).unwrap();
    let exists = example.iter().chain(&case.state).any(same);
    let operation_matches = case.request.operation == if exists { "UPDATE" } else { "CREATE" };
    let has_namespace = object.pointer("/metadata/namespace").is_some() || object["kind"] == "Mesh";
    operation_matches && has_namespace && case.request.username.is_none()
}

fn write_state(case: &Case, path: &Path) {
    let mut text = std::fs::read_to_string(example_state()).unwrap();
    for object in &case.state {
        text += "\n---\n";
        text += &serde_yaml_ng::to_string(object).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn check_and_the_https_server_give_the_same_verdicts() {
    let dir = tempdir();
    let mut compared = 0;
    for file in ["meshidentity.yaml", "mesh.yaml", "pod.yaml"] {
        let fixtures = load_fixtures(&format!("tests/fixtures/admission/{file}"));
        for (index, case) in fixtures.cases.iter().enumerate() {
            if !check_can_replay(case) {
                continue;
            }
            let server = TestServer::start(Some(case.snapshot()), case.settings.settings()).await;
            let uid = format!("same-{index}");
            let body = serde_json::to_vec(&case.review(&uid)).unwrap();
            let (_, https) = server
                .post(&server.client(false), &fixtures.webhook, body)
                .await;

            let state = dir.join(format!("{file}-{index}-state.yaml"));
            let manifest = dir.join(format!("{file}-{index}.yaml"));
            write_state(case, &state);
            std::fs::write(
                &manifest,
                serde_yaml_ng::to_string(case.request.object.as_ref().unwrap()).unwrap(),
            )
            .unwrap();
            let mut args = vec![
                "check".to_owned(),
                "-o".to_owned(),
                "json".to_owned(),
                "-f".to_owned(),
                manifest.display().to_string(),
                "--cluster-state".to_owned(),
                state.display().to_string(),
            ];
            args.extend(settings_flags(&case.settings));
            let run = cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let line: Value = serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
            let offline = &line["responses"].as_array().unwrap().last().unwrap()["response"];
            let online = &https["response"];
            for field in ["allowed", "status", "warnings", "auditAnnotations"] {
                assert_eq!(
                    offline.get(field),
                    online.get(field),
                    "{file}: {}: {field}",
                    case.name
                );
            }
            assert_eq!(
                run.code,
                if online["allowed"] == true { 0 } else { 1 },
                "{}",
                case.name
            );
            compared += 1;
        }
    }
    assert!(compared >= 40, "only {compared} cases compared");
}

/// `check` calls a webhook only where the shipped registration would: pods in `kube-system`,
/// in namespaces labelled to opt out, or of the webhook itself never reach the pod hooks.
#[test]
fn check_follows_the_registered_selectors() {
    let dir = tempdir();
    let file = dir.join("pods.yaml");
    let pod = |name: &str, namespace: &str, extra_label: &str| {
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n  labels:\n    kuma.io/workload: hand-made\n{extra_label}spec:\n  containers:\n  - name: app\n    image: app\n"
        )
    };
    let manifest = [
        "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: opted-out\n  labels:\n    kuma-identity-webhook.kuma.io/ignore: \"true\"\n".to_owned(),
        pod("in-apps", "apps", ""),
        pod("in-kube-system", "kube-system", ""),
        pod("in-opted-out", "opted-out", ""),
        pod("webhook", "apps", "    kuma-identity-webhook.kuma.io/webhook-server: \"true\"\n"),
    ]
    .concat();
    std::fs::write(&file, manifest).unwrap();
    let run = cli(&["check", "-f", file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "namespace/opted-out created (server dry run)\npod/in-kube-system created (server dry run)\npod/in-opted-out created (server dry run)\npod/webhook created (server dry run)\n"
    );
    assert!(
        run.stderr
            .contains("cannot manually set kuma.io/workload label on Pod")
            && run.stderr.lines().count() == 1,
        "only the pod in apps is judged: {}",
        run.stderr
    );
}

/// A lone `Invalid` denial is printed as kubectl prints it: the object, then one line per field
/// cause, and no `Error from server` line.
#[test]
fn check_prints_a_lone_invalid_denial_field_by_field() {
    let run = cli(&[
        "check",
        "-f",
        &fixture("invalid.yaml"),
        "--cluster-state",
        &example_state(),
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "");
    assert_eq!(
        run.stderr,
        concat!(
            "The MeshIdentity \"legacy-identity\" is invalid: \n",
            "* metadata.labels[\"kuma.io/mesh\"]: Mesh \"legacy\" has spec.meshServices.mode: Everywhere, but MeshIdentity requires Exclusive; set spec.meshServices.mode: Exclusive on Mesh \"legacy\" first\n",
            "* spec.provider.type: \"Vault\" must be one of [\"Bundled\", \"Spire\", \"Extension\"]\n",
        )
    );
}

/// `explain` says when a pod is outside the mesh, so its hypothetical SPIFFE ID is not mistaken
/// for one it gets.
#[test]
fn explain_says_when_a_pod_is_outside_the_mesh() {
    let file = temp_file(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: tool, namespace: plain}\nspec: {containers: [{name: tool, image: busybox}]}\n",
    );
    let run = cli(&["explain", "-f", &file, "--cluster-state", &example_state()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("  in mesh:   no: Kuma does not inject this pod"),
        "{}",
        run.stdout
    );
    let meshed = cli(&[
        "explain",
        "-f",
        &fixture("workloads.yaml"),
        "--cluster-state",
        &example_state(),
    ]);
    assert!(!meshed.stdout.contains("in mesh:"), "{}", meshed.stdout);
}

/// The stored `batch` identity of the ratchet tests: its path needs a workload, which the
/// example state's `shop/batch-job-x2k` lacks.
const BATCH_IDENTITY: &str = "apiVersion: kuma.io/v1alpha1\nkind: MeshIdentity\nmetadata: {name: batch, namespace: kuma-system, labels: {kuma.io/mesh: default}}\nspec:\n  selector: {dataplane: {matchLabels: {app: batch}}}\n  spiffeID: {path: \"/workload/{{ .Workload }}\"}\n  provider: {type: Bundled, bundled: {autogenerate: {enabled: true}}}\n";

/// The control plane's status write is an UPDATE `check` decides as the server does: allowed
/// with a warning for the pod the identity already served; the same update widened to a new
/// broken pod is refused for that pod alone.
#[test]
fn check_ratchets_an_update_of_an_identity_already_serving_broken_pods() {
    let cron = "apiVersion: v1\nkind: Pod\nmetadata: {name: cron-1, namespace: shop, labels: {app: cron}}\nspec: {}\n";
    let state = temp_file(
        "state.yaml",
        &format!(
            "{}\n---\n{BATCH_IDENTITY}---\n{cron}",
            std::fs::read_to_string(example_state()).unwrap()
        ),
    );
    let status_write = temp_file(
        "status.yaml",
        &format!("{BATCH_IDENTITY}status:\n  conditions:\n  - {{type: Ready, status: \"True\", reason: Ready, message: \"\"}}\n"),
    );
    let control_plane = "system:serviceaccount:kuma-system:kuma-control-plane";
    let check = |manifest: &str| {
        cli(&[
            "check",
            "-f",
            manifest,
            "--cluster-state",
            &state,
            "--workload-labels",
            "app.kubernetes.io/name",
            "--user",
            control_plane,
        ])
    };
    let run = check(&status_write);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "meshidentity.kuma.io/batch configured (server dry run)\n"
    );
    assert_eq!(
        run.stderr,
        "Warning: update allowed: 1 selected pod(s) already had no workload before it (e.g. shop/batch-job-x2k)\n"
    );

    let widened = temp_file(
        "widened.yaml",
        &BATCH_IDENTITY.replace("matchLabels: {app: batch}", "matchLabels: {}"),
    );
    let run = check(&widened);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("spec.spiffeID.path: 1 selected pod(s) have no 'kuma.io/workload' while the path uses it: shop/cron-1;"),
        "{}",
        run.stderr
    );
}

/// The seeds' trust domain reads labels Kuma's defaulting webhook adds; offline there is no such
/// webhook, so `check` must render it as a cluster would.
#[test]
fn check_renders_the_trust_domain_with_the_labels_kuma_adds() {
    let manifest = temp_file(
        "identity.yaml",
        "apiVersion: kuma.io/v1alpha1\nkind: MeshIdentity\nmetadata: {name: web, namespace: kuma-system}\nspec:\n  selector: {dataplane: {matchLabels: {app: web}}}\n  spiffeID:\n    trustDomain: '{{ label \"kuma.io/mesh\" }}.{{ label \"kuma.io/zone\" }}.mesh.local'\n    path: '/td/{{ .TrustDomain }}/ns/{{ .Namespace }}'\n",
    );
    let run = cli(&[
        "check",
        "-f",
        &manifest,
        "--cluster-state",
        &example_state(),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        run.stdout,
        "meshidentity.kuma.io/web created (server dry run)\n"
    );
}

/// `KIW_KUMA_VERSION=3` (the env twin of `--kuma-version`) turns off both MeshServices rules.
#[test]
fn check_with_kuma_3_ignores_mesh_services() {
    let manifest = temp_file(
        "kuma3.yaml",
        "apiVersion: kuma.io/v1alpha1\nkind: MeshIdentity\nmetadata: {name: ledger, namespace: kuma-system, labels: {kuma.io/mesh: legacy}}\nspec: {}\n---\napiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata: {name: default}\nspec: {}\n",
    );
    let args = [
        "check",
        "-f",
        &manifest,
        "--cluster-state",
        &example_state(),
    ];
    let kuma3 = cli_with_env(&args, &[("KIW_KUMA_VERSION", "3")]);
    assert_eq!(kuma3.code, 0, "{}{}", kuma3.stdout, kuma3.stderr);
    assert_eq!(
        kuma3.stdout,
        "meshidentity.kuma.io/ledger created (server dry run)\nmesh.kuma.io/default configured (server dry run)\n"
    );
    let kuma2 = cli(&args);
    assert_eq!(kuma2.code, 1, "{}{}", kuma2.stdout, kuma2.stderr);
    assert_eq!(
        kuma2.stderr.lines().count(),
        2,
        "both rules refuse: {}",
        kuma2.stderr
    );
    let unknown = cli_with_env(&args, &[("KIW_KUMA_VERSION", "4")]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(
        unknown
            .stderr
            .contains("invalid value '4' for '--kuma-version"),
        "{}",
        unknown.stderr
    );
}
