//! The manifests under deploy/ agree with the server: every registered webhook path is a route
//! the server serves (and every route is registered), names match the ones the server quotes,
//! and the Service, container ports, flags and probes line up.

use serde_json::Value;

use crate::support::repo_path;
use kuma_identity_webhook::admission::Webhook;
use kuma_identity_webhook::cluster::file::parse_documents;

fn base(file: &str) -> Vec<Value> {
    parse_documents(&std::fs::read_to_string(repo_path(&format!("deploy/base/{file}"))).unwrap())
        .unwrap()
}

#[test]
fn every_webhook_registration_matches_a_served_route() {
    let mut registered = Vec::new();
    for config in base("webhooks.yaml") {
        for hook in config["webhooks"].as_array().unwrap() {
            let path = hook["clientConfig"]["service"]["path"].as_str().unwrap();
            let webhook =
                Webhook::from_path(path).unwrap_or_else(|| panic!("{path} is not served"));
            assert_eq!(hook["name"], webhook.name(), "{path}");
            assert_eq!(hook["admissionReviewVersions"], serde_json::json!(["v1"]));
            assert_eq!(hook["sideEffects"], "None");
            assert_eq!(hook["failurePolicy"], "Fail");
            let mutating = config["kind"] == "MutatingWebhookConfiguration";
            assert_eq!(mutating, webhook == Webhook::MutatePod, "{path}");
            assert_eq!(
                hook["timeoutSeconds"],
                if mutating { 3 } else { 5 },
                "{path}"
            );
            assert_eq!(hook["clientConfig"]["service"]["port"], 443);
            if webhook == Webhook::ValidateMeshIdentity {
                assert!(
                    hook.get("namespaceSelector").is_none(),
                    "MeshIdentity hook must see every namespace"
                );
            }
            if matches!(webhook, Webhook::ValidatePod | Webhook::MutatePod) {
                let selector = serde_json::to_string(&hook["objectSelector"]).unwrap();
                assert!(
                    selector.contains("kuma-identity-webhook.kuma.io/webhook-server"),
                    "{path}"
                );
            }
            registered.push(webhook);
        }
    }
    for webhook in Webhook::ALL {
        assert!(
            registered.contains(&webhook),
            "{} is served but not registered",
            webhook.path()
        );
    }
}

fn port_of_flag(args: &[Value], flag: &str) -> u64 {
    let value = args
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(&format!("{flag}=")))
        .unwrap();
    value.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn service_ports_flags_and_probes_agree() {
    let deployment = &base("deployment.yaml")[0];
    let pod = &deployment["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let ports: Vec<&Value> = container["ports"].as_array().unwrap().iter().collect();
    let port_named = |name: &str| {
        ports.iter().find(|p| p["name"] == name).unwrap()["containerPort"]
            .as_u64()
            .unwrap()
    };
    let args = container["args"].as_array().unwrap();
    assert_eq!(args[0], "serve");
    assert_eq!(port_named("https"), port_of_flag(args, "--listen"));
    assert_eq!(port_named("admin"), port_of_flag(args, "--admin-listen"));

    let service = &base("service.yaml")[0];
    assert_eq!(service["spec"]["ports"][0]["port"], 443);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "https");
    assert_eq!(
        service["spec"]["selector"]["app"],
        pod["metadata"]["labels"]["app"]
    );
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        assert_eq!(container[probe]["httpGet"]["path"], path);
        assert_eq!(container[probe]["httpGet"]["port"], "admin");
    }
    // The server's own pods never go through the pod webhooks.
    assert_eq!(
        pod["metadata"]["labels"]["kuma-identity-webhook.kuma.io/webhook-server"],
        "true"
    );
    // The certificate comes from the Secret the overlays produce, mounted where the flags point.
    let mount = &container["volumeMounts"][0];
    let cert_flag = args
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix("--tls-cert="))
        .unwrap();
    assert!(cert_flag.starts_with(mount["mountPath"].as_str().unwrap()));
    assert_eq!(
        pod["spec"]["volumes"][0]["secret"]["secretName"],
        "kuma-identity-webhook-tls"
    );
}

/// `(kind, namespace, apiGroup, resource, verbs)` for every rule of every Role and ClusterRole
/// in `documents`, sorted.
fn rbac_rules(documents: &[Value]) -> Vec<(String, String, String, String, Vec<String>)> {
    let mut rules = Vec::new();
    for role in documents
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
    {
        let kind = role["kind"].as_str().unwrap().to_owned();
        let namespace = role["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for rule in role["rules"].as_array().unwrap() {
            let keys: Vec<&str> = rule
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["apiGroups", "resources", "verbs"],
                "{kind}: only plain rules (no resourceNames, nonResourceURLs)"
            );
            for group in crate::support::json_strings(&rule["apiGroups"]) {
                for resource in crate::support::json_strings(&rule["resources"]) {
                    rules.push((
                        kind.clone(),
                        namespace.clone(),
                        group.clone(),
                        resource,
                        crate::support::json_strings(&rule["verbs"]),
                    ));
                }
            }
        }
    }
    rules.sort();
    rules
}

#[test]
fn rbac_grants_read_only_access_to_the_watched_resources_and_nothing_else() {
    let read = || vec!["get".to_owned(), "list".to_owned(), "watch".to_owned()];
    let rule = |kind: &str, namespace: &str, group: &str, resource: &str| {
        (
            kind.to_owned(),
            namespace.to_owned(),
            group.to_owned(),
            resource.to_owned(),
            read(),
        )
    };
    let mut want = vec![
        rule("ClusterRole", "", "kuma.io", "meshes"),
        rule("ClusterRole", "", "", "namespaces"),
        rule("ClusterRole", "", "", "pods"),
        // Watched in the system namespace only.
        rule("Role", "kuma-system", "kuma.io", "meshidentities"),
    ];
    want.sort();

    // Every file the kustomization lists, so RBAC added anywhere in the base is seen.
    let kustomization = &base("kustomization.yaml")[0];
    let mut documents = Vec::new();
    for file in kustomization["resources"].as_array().unwrap() {
        documents.extend(base(file.as_str().unwrap()));
    }
    assert_eq!(rbac_rules(&documents), want);

    // Each role is bound to the server's ServiceAccount, a Role in its own namespace.
    for (role_kind, binding_kind) in [
        ("ClusterRole", "ClusterRoleBinding"),
        ("Role", "RoleBinding"),
    ] {
        let role = documents.iter().find(|d| d["kind"] == role_kind).unwrap();
        let binding = documents
            .iter()
            .find(|d| d["kind"] == binding_kind)
            .unwrap_or_else(|| panic!("no {binding_kind}"));
        assert_eq!(binding["roleRef"]["kind"], role_kind);
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        assert_eq!(
            binding["metadata"]["namespace"],
            role["metadata"]["namespace"]
        );
        assert_eq!(
            binding["subjects"],
            serde_json::json!([{"kind": "ServiceAccount", "name": "kuma-identity-webhook", "namespace": "kuma-system"}])
        );
    }
    for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
        assert_eq!(
            documents.iter().filter(|d| d["kind"] == kind).count(),
            1,
            "one {kind}"
        );
    }
}

/// The rendered base keeps the same rules (kustomize may set namespaces, never widen a rule).
/// Needs `kubectl`, and fails saying so without it.
#[test]
fn rendered_base_keeps_the_rbac_rules() {
    let rendered = crate::support::kustomize::render(&repo_path("deploy/base"));
    let rules = rbac_rules(&rendered);
    let mut summary: Vec<(&str, &str, &str)> = rules
        .iter()
        .map(|(kind, namespace, _, resource, verbs)| {
            assert_eq!(verbs, &["get", "list", "watch"]);
            (kind.as_str(), namespace.as_str(), resource.as_str())
        })
        .collect();
    summary.sort_unstable();
    assert_eq!(
        summary,
        [
            ("ClusterRole", "", "meshes"),
            ("ClusterRole", "", "namespaces"),
            ("ClusterRole", "", "pods"),
            ("Role", "kuma-system", "meshidentities"),
        ]
    );
}
