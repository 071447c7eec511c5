//! Living beside Kuma's own injector. kube-apiserver calls mutating webhook configurations in
//! the order of their names (byte order), and Kuma's injector appends the same SPIRE volume for
//! pods that opt in by annotation; ours must be called after it, to see that volume and add
//! nothing twice (tests/fixtures/inject/kuma_injector_already_mounted.yaml shows the second half).
//! Checked on the shipped manifest and on what `kubectl kustomize` renders for the base and the
//! cert-manager overlay (the dev overlay renames nothing and needs generated certificates).

use serde_json::Value;

use crate::support::kustomize::render;
use crate::support::repo_path;
use kuma_identity_webhook::cluster::file::parse_documents;

/// The name Kuma's Helm chart gives its MutatingWebhookConfiguration
/// (`{{ include "kuma.name" . }}-admission-mutating-webhook-configuration`, `kuma` by default).
const KUMA_MUTATING_CONFIGURATION: &str = "kuma-admission-mutating-webhook-configuration";

fn mutating_configuration_names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == "MutatingWebhookConfiguration")
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_called_after_kuma(source: &str, objects: &[Value]) {
    let names = mutating_configuration_names(objects);
    assert!(
        !names.is_empty(),
        "{source}: no MutatingWebhookConfiguration"
    );
    for name in names {
        // kube-apiserver sorts configurations with Go's string order, which is byte order, as
        // Rust's is.
        assert!(
            name.as_str() > KUMA_MUTATING_CONFIGURATION,
            "{source}: {name:?} sorts before {KUMA_MUTATING_CONFIGURATION:?}, so it would be called before Kuma's injector"
        );
    }
}

#[test]
fn the_shipped_mutating_configuration_is_called_after_kumas_injector() {
    let shipped = std::fs::read_to_string(repo_path("deploy/base/webhooks.yaml")).unwrap();
    assert_called_after_kuma(
        "deploy/base/webhooks.yaml",
        &parse_documents(&shipped).unwrap(),
    );
    for dir in ["deploy/base", "deploy/overlays/cert-manager"] {
        assert_called_after_kuma(dir, &render(&repo_path(dir)));
    }
}
