//! What `kubectl apply -k` would create, checked on the rendered output of the base and of both
//! overlays: every namespaced object lands in `kuma-system`, the Deployment is the hardened,
//! highly available one the README promises, and each overlay wires its certificate into the
//! Deployment and into every webhook's trust. Needs `kubectl`, and fails saying so without it.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::support::kustomize::render;
use crate::support::{json_strings, repo_path, tempdir};
use kuma_identity_webhook::validate::duration::parse_flag_duration;

const NAMESPACE: &str = "kuma-system";
const CLUSTER_SCOPED: [&str; 5] = [
    "ClusterRole",
    "ClusterRoleBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "CustomResourceDefinition",
];

fn find<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn webhook_configurations(objects: &[Value]) -> Vec<&Value> {
    objects
        .iter()
        .filter(|o| {
            o["kind"]
                .as_str()
                .is_some_and(|k| k.ends_with("WebhookConfiguration"))
        })
        .collect()
}

/// Checks shared by every installable rendering; returns the Secret name the pod mounts.
fn check_install(name: &str, objects: &[Value]) -> String {
    for object in objects {
        let kind = object["kind"].as_str().unwrap();
        let namespace = &object["metadata"]["namespace"];
        if CLUSTER_SCOPED.contains(&kind) {
            assert!(namespace.is_null(), "{name}: {kind} is cluster-scoped");
        } else {
            assert_eq!(
                namespace, NAMESPACE,
                "{name}: {kind} {}",
                object["metadata"]["name"]
            );
        }
    }

    let deployment = find(objects, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2, "{name}");
    let pod = &deployment["spec"]["template"];
    let pod_labels = &pod["metadata"]["labels"];
    let anti = &pod["spec"]["affinity"]["podAntiAffinity"];
    assert!(
        anti["requiredDuringSchedulingIgnoredDuringExecution"].is_null(),
        "{name}: anti-affinity must be soft, or a small cluster cannot schedule both replicas"
    );
    let preferred = &anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"];
    assert_eq!(preferred["topologyKey"], "kubernetes.io/hostname");
    for (key, value) in preferred["labelSelector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &pod_labels[key], value,
            "{name}: anti-affinity selects the pods"
        );
    }
    let security = &pod["spec"]["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(
        container["securityContext"],
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}),
        "{name}"
    );
    for part in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][part][resource].is_string(),
                "{name}: resources.{part}.{resource}"
            );
        }
    }

    // The kubelet waits out the whole drain (delay, then grace) before it kills the container.
    let args = json_strings(&container["args"]);
    let flag = |name: &str| {
        let prefix = format!("--{name}=");
        let value = args.iter().find_map(|arg| arg.strip_prefix(&prefix));
        parse_flag_duration(value.unwrap_or_else(|| panic!("{name}: --{name} not set"))).unwrap()
    };
    let drain = flag("shutdown-delay") + flag("shutdown-grace");
    let patience = Duration::from_secs(
        pod["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap(),
    );
    assert!(
        patience >= drain + Duration::from_secs(5),
        "{name}: terminationGracePeriodSeconds {patience:?} does not cover a {drain:?} drain with margin"
    );

    let pdb = find(objects, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    for (key, value) in pdb["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&pod_labels[key], value, "{name}: the PDB selects the pods");
    }
    let service = find(objects, "Service");
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(
            &pod_labels[key], value,
            "{name}: the Service selects the pods"
        );
    }

    // The webhooks call this Service, and never the webhook's own pods.
    for configuration in webhook_configurations(objects) {
        for hook in configuration["webhooks"].as_array().unwrap() {
            let target = &hook["clientConfig"]["service"];
            assert_eq!(target["name"], service["metadata"]["name"]);
            assert_eq!(target["namespace"], NAMESPACE);
            if let Some(expressions) = hook["objectSelector"]["matchExpressions"].as_array() {
                assert!(
                    expressions.iter().any(|e| e["operator"] == "DoesNotExist"
                        && !pod_labels[e["key"].as_str().unwrap()].is_null()),
                    "{name}: {} could select the webhook's own pods",
                    hook["name"]
                );
            }
        }
    }

    let volumes = pod["spec"]["volumes"].as_array().unwrap();
    let tls = volumes.iter().find(|v| !v["secret"].is_null()).unwrap();
    tls["secret"]["secretName"].as_str().unwrap().to_owned()
}

#[test]
fn base_renders_a_hardened_highly_available_install() {
    let objects = render(&repo_path("deploy/base"));
    check_install("base", &objects);
}

#[test]
fn cert_manager_overlay_issues_the_mounted_secret_and_injects_its_ca() {
    let objects = render(&repo_path("deploy/overlays/cert-manager"));
    let secret = check_install("cert-manager", &objects);
    let certificate = find(&objects, "Certificate");
    assert_eq!(certificate["spec"]["secretName"], secret.as_str());
    let issuer = find(&objects, "Issuer");
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        issuer["metadata"]["name"]
    );
    let dns = certificate["spec"]["dnsNames"].as_array().unwrap();
    assert!(dns.contains(&json!("kuma-identity-webhook.kuma-system.svc")));
    let inject_from = format!(
        "{NAMESPACE}/{}",
        certificate["metadata"]["name"].as_str().unwrap()
    );
    let configurations = webhook_configurations(&objects);
    assert_eq!(configurations.len(), 2);
    for configuration in configurations {
        assert_eq!(
            configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
            inject_from.as_str(),
            "{}",
            configuration["kind"]
        );
    }
}

/// The dev overlay as a user builds it: `certs` writes the Secret, the overlay copies its CA into
/// every webhook's `caBundle`. Rendered from a copy of deploy/ so the repo's own files stay as
/// they are.
#[test]
fn dev_overlay_trusts_the_ca_that_certs_wrote() {
    let copy = tempdir().join("deploy");
    copy_tree(&repo_path("deploy"), &copy);
    let certs_dir = copy.join("overlays/dev/certs");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_kuma-identity-webhook"))
        .args(["certs", "--force", "--out-dir"])
        .arg(&certs_dir)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let objects = render(&copy.join("overlays/dev"));
    let secret_name = check_install("dev", &objects);
    let secret = find(&objects, "Secret");
    assert_eq!(secret["metadata"]["name"], secret_name.as_str());
    assert_eq!(secret["type"], "kubernetes.io/tls");
    let ca = std::fs::read(certs_dir.join("ca.crt")).unwrap();
    let bundle = base64::engine::general_purpose::STANDARD.encode(ca);
    assert_eq!(String::from_utf8(run.stdout).unwrap().trim(), bundle);
    let mut hooks = 0;
    for configuration in webhook_configurations(&objects) {
        for hook in configuration["webhooks"].as_array().unwrap() {
            assert_eq!(
                hook["clientConfig"]["caBundle"],
                bundle.as_str(),
                "{}",
                hook["name"]
            );
            hooks += 1;
        }
    }
    assert_eq!(hooks, 4);
}

/// The NetworkPolicy component, added to an install overlay as the README says: the install
/// still checks out, and the policy selects the webhook's pods and admits ingress only to the
/// admission port (from an address block: the API server) and the admin port (from the metrics
/// scraper's pods).
#[test]
fn network_policy_admits_only_the_api_server_and_the_scraper_to_their_ports() {
    let objects = render_with_components("cert-manager", &["network-policy"]);
    check_install("cert-manager with network-policy", &objects);

    let policy = find(&objects, "NetworkPolicy");
    let pod = &find(&objects, "Deployment")["spec"]["template"];
    for (key, value) in policy["spec"]["podSelector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &pod["metadata"]["labels"][key], value,
            "the policy selects the pods"
        );
    }
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress"]));
    // Container ports by name and number, so a rule may name either.
    let ports = pod["spec"]["containers"][0]["ports"].as_array().unwrap();
    let port_number = |port: &Value| match port.as_u64() {
        Some(number) => number,
        None => ports
            .iter()
            .find(|p| p["name"] == *port)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no container port {port}")),
    };
    let mut admitted = Vec::new();
    for rule in policy["spec"]["ingress"].as_array().unwrap() {
        let sources = rule["from"]
            .as_array()
            .expect("a rule without sources admits anyone");
        let rule_ports = rule["ports"]
            .as_array()
            .expect("a rule without ports admits all");
        for port in rule_ports {
            assert_eq!(port["protocol"], "TCP");
            let number = port_number(&port["port"]);
            let from_addresses = sources.iter().all(|s| !s["ipBlock"]["cidr"].is_null());
            let from_pods = sources
                .iter()
                .all(|s| !s["namespaceSelector"].is_null() && !s["podSelector"].is_null());
            admitted.push((number, from_addresses, from_pods));
        }
    }
    admitted.sort();
    assert_eq!(
        admitted,
        [(8443, true, false), (9090, false, true)],
        "admission port from the API server's addresses, metrics from the scraper's pods"
    );
}

/// The client-CA component, added to an install overlay: the flag points into the mounted
/// ConfigMap the README has the user create.
#[test]
fn client_ca_component_mounts_the_ca_where_the_flag_points() {
    let objects = render_with_components("cert-manager", &["client-ca"]);
    check_install("cert-manager with client-ca", &objects);
    let pod = &find(&objects, "Deployment")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let ca = json_strings(&container["args"])
        .into_iter()
        .find_map(|arg| arg.strip_prefix("--client-ca=").map(str::to_owned))
        .expect("no --client-ca");
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| ca.starts_with(m["mountPath"].as_str().unwrap()))
        .expect("the client CA is not under any mount");
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(
        volume["configMap"]["name"],
        "kuma-identity-webhook-client-ca"
    );
    let file = ca.rsplit('/').next().unwrap();
    assert_eq!(file, "ca.crt", "the key the README's ConfigMap has");
}

/// `overlay` rendered with `components` added, as the README tells users to add them (in a
/// copy of deploy/, so the repository's files stay as they are).
fn render_with_components(overlay: &str, components: &[&str]) -> Vec<Value> {
    let copy = tempdir().join("deploy");
    copy_tree(&repo_path("deploy"), &copy);
    let file = copy.join(format!("overlays/{overlay}/kustomization.yaml"));
    let mut kustomization = std::fs::read_to_string(&file).unwrap();
    kustomization.push_str("components:\n");
    for component in components {
        kustomization.push_str(&format!("- ../{component}\n"));
    }
    std::fs::write(&file, kustomization).unwrap();
    render(&copy.join(format!("overlays/{overlay}")))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
