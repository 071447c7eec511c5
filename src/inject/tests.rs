//! Tests of the injection decision: minimal patches, idempotence, and malformed pods.

use super::*;
use serde_json::json;

fn on() -> InjectConfig {
    InjectConfig {
        enabled_by_default: true,
        ..InjectConfig::default()
    }
}

fn patch_paths(d: &InjectDecision) -> Vec<String> {
    match d {
        InjectDecision::Inject { patch, .. } => patch
            .0
            .iter()
            .map(|op| match op {
                json_patch::PatchOperation::Add(a) => a.path.to_string(),
                other => panic!("non-add op {other:?}"),
            })
            .collect(),
        other => panic!("expected Inject, got {other:?}"),
    }
}

#[test]
fn skip_reason_names() {
    let all = [
        (SkipReason::Disabled, "disabled"),
        (SkipReason::OptedOut, "opted_out"),
        (SkipReason::AlreadyPresent, "already_present"),
        (SkipReason::MirrorPod, "mirror_pod"),
        (SkipReason::Conflict, "conflict"),
    ];
    for (r, s) in all {
        assert_eq!(r.as_str(), s);
    }
}

#[test]
fn bare_pod_gets_minimal_adds() {
    let pod = json!({"spec": {"containers": [{"name": "app"}]}});
    let d = decide(&pod, &on());
    assert_eq!(
        patch_paths(&d),
        [
            "/spec/volumes",
            "/spec/containers/0/volumeMounts",
            "/spec/containers/0/env"
        ]
    );
}

#[test]
fn null_lists_are_replaced_not_appended() {
    let pod = json!({"spec": {"volumes": null, "containers": [{"name": "app", "env": null}]}});
    let (out, d) = apply(&pod, &on());
    assert!(matches!(d, InjectDecision::Inject { .. }));
    assert_eq!(out["spec"]["volumes"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        out["spec"]["containers"][0]["env"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn sidecar_in_both_lists_gets_both() {
    let pod = json!({"spec": {
        "containers": [{"name": "app"}, {"name": "kuma-sidecar"}],
        "initContainers": [{"name": "kuma-sidecar", "restartPolicy": "Always"}]}});
    let d = decide(&pod, &on());
    let InjectDecision::Inject { targets, .. } = &d else {
        panic!("{d:?}")
    };
    assert_eq!(
        targets,
        &["containers/kuma-sidecar", "initContainers/kuma-sidecar"]
    );
}

#[test]
fn no_containers_is_already_present() {
    let pod = json!({"spec": {}});
    assert_eq!(
        decide(&pod, &on()),
        skip(SkipReason::AlreadyPresent, vec![])
    );
}

#[test]
fn every_container_blocked_is_conflict() {
    let pod = json!({"spec": {"containers": [{"name": "app",
        "volumeMounts": [{"name": "other", "mountPath": "/run/spire/sockets/"}]}]}});
    let d = decide(&pod, &on());
    assert!(
        matches!(&d, InjectDecision::Skip { reason: SkipReason::Conflict, warnings } if warnings.len() == 1),
        "{d:?}"
    );
}

#[test]
fn apply_leaves_pod_alone_when_not_injecting() {
    let pod = json!({"metadata": {"labels": {SPIRE_SUPPORT_KEY: "no"}}, "spec": {"containers": [{"name": "a"}]}});
    let (out, d) = apply(&pod, &on());
    assert_eq!(out, pod);
    assert_eq!(d, skip(SkipReason::OptedOut, vec![]));
}

#[test]
fn missing_spec_when_on_is_denied() {
    let d = decide(&json!({"metadata": {}}), &on());
    assert!(
        matches!(&d, InjectDecision::Deny { message, .. } if message.contains("spec")),
        "{d:?}"
    );
    // ...but not when off: nothing to write.
    assert_eq!(
        decide(&json!({}), &InjectConfig::default()),
        skip(SkipReason::Disabled, vec![])
    );
}

#[test]
fn mirror_pod_wins_over_invalid_switch() {
    let pod = json!({"metadata": {
        "labels": {SPIRE_SUPPORT_KEY: "bogus"},
        "annotations": {MIRROR_ANNOTATION: "abc"}}, "spec": {}});
    assert_eq!(decide(&pod, &on()), skip(SkipReason::MirrorPod, vec![]));
}

#[test]
fn mirror_pod_wins_over_mistyped_metadata() {
    for labels in [json!([]), json!("x"), json!({SPIRE_SUPPORT_KEY: 1})] {
        let pod = json!({"metadata": {
            "labels": labels,
            "annotations": {MIRROR_ANNOTATION: "abc", SPIRE_SUPPORT_KEY: false}}, "spec": 7});
        assert_eq!(
            decide(&pod, &on()),
            skip(SkipReason::MirrorPod, vec![]),
            "{pod}"
        );
    }
}

#[test]
fn deny_reasons_tell_bad_switches_from_malformed_pods() {
    let bad_switch = json!({"metadata": {"labels": {SPIRE_SUPPORT_KEY: "maybe"}}});
    assert_eq!(
        deny_reason(&decide(&bad_switch, &on())),
        Some(InjectionDenial::InvalidOptIn)
    );
    let malformed = json!({"spec": {"containers": "app"}});
    assert_eq!(
        deny_reason(&decide(&malformed, &on())),
        Some(InjectionDenial::Malformed)
    );
    assert_eq!(
        deny_reason(&decide(&json!({}), &on())),
        Some(InjectionDenial::Malformed)
    );
    assert_eq!(
        deny_reason(&decide(&json!({}), &InjectConfig::default())),
        None
    );
}

/// Every value a JSON field can take, to plug in anywhere.
fn junk() -> Vec<Value> {
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1.5),
        json!(""),
        json!("x"),
        json!([]),
        json!([1, "a", null, {}]),
        json!({}),
        json!({"name": 1}),
    ]
}

/// Replaces the value at `pointer` in a copy of `base` with each junk
/// value and checks decide/apply never panic and any patch applies.
fn fuzz_at(base: &Value, pointer: &str) {
    for j in junk() {
        let mut pod = base.clone();
        if pointer.is_empty() {
            pod = j.clone();
        } else if let Some(slot) = pod.pointer_mut(pointer) {
            *slot = j.clone();
        } else {
            panic!("pointer {pointer} missing from base");
        }
        for cfg in [on(), InjectConfig::default()] {
            let d = decide(&pod, &cfg);
            let (out, d2) = apply(&pod, &cfg);
            assert_eq!(d, d2, "apply must agree with decide at {pointer} = {j}");
            if let InjectDecision::Inject { patch, .. } = &d {
                assert!(!patch.0.is_empty());
                // Patched output must be stable.
                let again = decide(&out, &cfg);
                assert!(
                    matches!(
                        again,
                        InjectDecision::Skip {
                            reason: SkipReason::AlreadyPresent,
                            ..
                        }
                    ),
                    "{pointer} = {j}: rerun gave {again:?}"
                );
            }
            if let InjectDecision::Deny { message, .. } = &d {
                assert!(!message.is_empty());
            }
        }
    }
}

#[test]
fn malformed_pods_never_panic() {
    let base = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p",
            "labels": {SPIRE_SUPPORT_KEY: "true"},
            "annotations": {SPIRE_SUPPORT_KEY: "yes", "x": "y"}},
        "spec": {
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [
                {"name": "app",
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                 "env": [{"name": "A", "value": "1"}]},
                {"name": "app2"}],
            "initContainers": [{"name": "init", "env": []}]}
    });
    let pointers = [
        "",
        "/metadata",
        "/metadata/labels",
        "/metadata/labels/k8s.kuma.io~1spire-support",
        "/metadata/annotations",
        "/metadata/annotations/k8s.kuma.io~1spire-support",
        "/spec",
        "/spec/volumes",
        "/spec/volumes/0",
        "/spec/volumes/0/name",
        "/spec/containers",
        "/spec/containers/0",
        "/spec/containers/0/name",
        "/spec/containers/0/volumeMounts",
        "/spec/containers/0/volumeMounts/0",
        "/spec/containers/0/volumeMounts/0/mountPath",
        "/spec/containers/0/env",
        "/spec/containers/0/env/0",
        "/spec/containers/0/env/0/name",
        "/spec/containers/1",
        "/spec/initContainers",
        "/spec/initContainers/0",
        "/spec/initContainers/0/env",
    ];
    for p in pointers {
        fuzz_at(&base, p);
    }
    // Same again with a sidecar so the sidecar paths are exercised.
    let mut with_sidecar = base.clone();
    with_sidecar["spec"]["initContainers"][0] =
        json!({"name": "kuma-sidecar", "restartPolicy": "Always", "env": [], "volumeMounts": []});
    for p in [
        "/spec/initContainers/0/env",
        "/spec/initContainers/0/volumeMounts",
        "/spec/containers",
        "/spec/containers/0",
        "/spec/volumes",
    ] {
        fuzz_at(&with_sidecar, p);
    }
}

#[test]
fn wrong_types_give_clear_denials() {
    let cases = [
        (json!("pod"), "pod must be an object, got a string"),
        (
            json!({"metadata": []}),
            "metadata must be an object, got an array",
        ),
        (
            json!({"metadata": {"labels": {SPIRE_SUPPORT_KEY: true}}}),
            "metadata.labels[k8s.kuma.io/spire-support] must be a string, got a boolean",
        ),
        (
            json!({"spec": {"containers": "app"}}),
            "spec.containers must be an array, got a string",
        ),
        (
            json!({"spec": {"containers": [7]}}),
            "spec.containers[0] must be an object, got a number",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "env": {}}]}}),
            "spec.containers[0].env must be an array, got an object",
        ),
        (
            json!({"spec": {"volumes": {}}}),
            "spec.volumes must be an array, got an object",
        ),
    ];
    for (pod, want) in cases {
        assert_eq!(
            decide(&pod, &on()),
            InjectDecision::Deny {
                reason: InjectionDenial::Malformed,
                message: want.into()
            },
            "{pod}"
        );
    }
}

/// Why `decision` denies, if it does.
fn deny_reason(decision: &InjectDecision) -> Option<InjectionDenial> {
    match decision {
        InjectDecision::Deny { reason, .. } => Some(*reason),
        _ => None,
    }
}
