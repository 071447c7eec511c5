//! The manifests under deploy/ agree with the server: every registered webhook path is a route
//! the server serves (and every route is registered), names match the ones the server quotes,
//! and the Service, container ports, flags and probes line up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;

use kuma_identity_webhook::admission::Webhook;
use kuma_identity_webhook::manifest::parse_documents;
use support::repo_path;

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
