//! The SPIRE socket injection on any JSON: no panic; a patch it plans applies to the pod it was
//! planned for, and the patched pod needs nothing more.
#![no_main]

use kuma_identity_webhook::inject::{decide, InjectConfig, InjectDecision, SkipReason};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pod) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let config = InjectConfig {
        enabled_by_default: true,
        ..InjectConfig::default()
    };
    let InjectDecision::Inject { patch, .. } = decide(&pod, &config) else {
        return;
    };
    assert!(!patch.0.is_empty());
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &patch).expect("the planned patch applies");
    assert!(
        matches!(
            decide(&patched, &config),
            InjectDecision::Skip {
                reason: SkipReason::AlreadyPresent,
                ..
            }
        ),
        "a patched pod needs nothing more"
    );
});
