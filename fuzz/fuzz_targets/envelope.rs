//! Any body through every webhook's envelope and decision, against the example cluster: always a
//! well-formed AdmissionReview answer, never a panic.
#![no_main]

use std::sync::OnceLock;

use kuma_identity_webhook::admission::{review, Webhook};
use kuma_identity_webhook::config::Settings;
use kuma_identity_webhook::cluster::Snapshot;
use libfuzzer_sys::fuzz_target;

fn cluster() -> &'static (Snapshot, Settings) {
    static CLUSTER: OnceLock<(Snapshot, Settings)> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/examples/cluster-state.yaml");
        let snapshot = kuma_identity_webhook::cluster::file::load(std::path::Path::new(path))
            .expect("example cluster state");
        let mut settings = Settings::default();
        settings.workload_labels = vec!["app.kubernetes.io/name".to_owned()];
        settings.inject.enabled_by_default = true;
        (snapshot, settings)
    })
}

fuzz_target!(|body: &[u8]| {
    let (snapshot, settings) = cluster();
    for webhook in Webhook::ALL {
        let reviewed = review(webhook, body, Some(snapshot), settings);
        let answer: serde_json::Value =
            serde_json::from_slice(&reviewed.body).expect("the answer is JSON");
        assert_eq!(answer["kind"], "AdmissionReview");
        assert!(answer["response"]["allowed"].is_boolean());
        if answer["response"].get("patch").is_some() {
            assert_eq!(answer["response"]["patchType"], "JSONPatch");
        }
    }
});
