//! SPIRE agent socket injection: a pure decision over the raw Pod JSON that
//! the API server sends, producing a minimal RFC 6902 patch.
//!
//! Layout: `optin` resolves the per-pod switch, `plan` computes the `add`
//! operations, `shape` does type-checked reads, `denial` renders refusals.
//! Nothing here deserialises the pod into typed structs, so fields unknown to
//! us survive untouched, and no input (however malformed) can panic.

mod denial;
mod optin;
mod plan;
mod shape;

use serde_json::Value;

use self::denial::Denial;
use self::optin::Effective;
use self::shape::{object, opt_object, opt_str, Object};

/// Server-side settings for the injector.
#[derive(Debug, Clone)]
pub struct InjectConfig {
    /// From KUMA_RUNTIME_KUBERNETES_INJECTOR_SPIRE_ENABLED: inject into every
    /// pod unless it opts out.
    pub enabled_by_default: bool,
    /// Where the socket directory is mounted in target containers.
    pub mount_path: String,
    /// File name of the agent socket inside `mount_path`.
    pub socket_file_name: String,
}

impl Default for InjectConfig {
    fn default() -> Self {
        Self {
            enabled_by_default: false,
            mount_path: "/run/spire/sockets".into(),
            socket_file_name: "socket".into(),
        }
    }
}

/// Label or annotation that switches injection per pod.
pub const SPIRE_SUPPORT_KEY: &str = "k8s.kuma.io/spire-support";
/// Name of the CSI volume carrying the SPIRE agent socket.
pub const VOLUME_NAME: &str = "kuma-spire-agent-socket";
/// Set by the kubelet on mirror pods of static pods; those cannot be changed
/// through the API, so mutating them would only produce a confusing diff.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Why no patch was produced; a bounded set so it can be a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Global default off and the pod did not opt in.
    Disabled,
    /// The pod's label or annotation says off.
    OptedOut,
    /// Nothing is missing (also: no container to mount into).
    AlreadyPresent,
    /// Mirror pod of a static pod.
    MirrorPod,
    /// A conflicting volume (or mount path in every target) blocked injection.
    Conflict,
}

impl SkipReason {
    /// Stable snake_case name for metrics and fixtures.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::OptedOut => "opted_out",
            Self::AlreadyPresent => "already_present",
            Self::MirrorPod => "mirror_pod",
            Self::Conflict => "conflict",
        }
    }
}

/// What to answer the API server.
#[derive(Debug, Clone, PartialEq)]
pub enum InjectDecision {
    /// `patch` is non-empty; `targets` are the containers it touches, as
    /// `containers/<name>` or `initContainers/<name>`.
    Inject {
        patch: json_patch::Patch,
        targets: Vec<String>,
        warnings: Vec<String>,
    },
    Skip {
        reason: SkipReason,
        warnings: Vec<String>,
    },
    Deny {
        message: String,
    },
}

/// Why a pod was denied; a bounded set so it can be a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The `k8s.kuma.io/spire-support` switch has an unknown value, or label and annotation
    /// disagree.
    InvalidOptIn,
    /// A field the injector reads or writes has the wrong JSON type.
    Malformed,
    /// The pod has more containers than an injection plans for.
    TooManyContainers,
}

impl DenyReason {
    /// Stable snake_case name for metrics and fixtures.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidOptIn => "invalid_opt_in",
            Self::Malformed => "malformed",
            Self::TooManyContainers => "too_many_containers",
        }
    }
}

/// Pure decision over the raw pod JSON (the AdmissionReview `request.object`).
/// Never panics.
pub fn decide(pod: &Value, cfg: &InjectConfig) -> InjectDecision {
    decide_with_reason(pod, cfg).0
}

/// [`decide`], plus why when the pod is denied.
pub fn decide_with_reason(pod: &Value, cfg: &InjectConfig) -> (InjectDecision, Option<DenyReason>) {
    match decide_inner(pod, cfg) {
        Ok(decision) => (decision, None),
        Err(denial) => {
            let reason = match denial {
                Denial::InvalidValue { .. } | Denial::Disagree { .. } => DenyReason::InvalidOptIn,
                // `Internal` only comes from `apply`; a patch that does not apply means the pod
                // had a shape the planner did not expect.
                Denial::WrongType { .. } | Denial::Internal(_) => DenyReason::Malformed,
                Denial::TooManyContainers { .. } => DenyReason::TooManyContainers,
            };
            let message = denial.to_string();
            (InjectDecision::Deny { message }, Some(reason))
        }
    }
}

/// Applies `decide()` to a pod (or a pod template's `{metadata, spec}`) and
/// returns the mutated copy with the decision. On anything but `Inject` the
/// copy equals the input.
pub fn apply(pod: &Value, cfg: &InjectConfig) -> (Value, InjectDecision) {
    let decision = decide(pod, cfg);
    let mut out = pod.clone();
    if let InjectDecision::Inject { patch, .. } = &decision {
        if let Err(err) = json_patch::patch(&mut out, patch) {
            // Only reachable through a bug in the planner; fail closed.
            let message = Denial::Internal(err.to_string()).to_string();
            return (pod.clone(), InjectDecision::Deny { message });
        }
    }
    (out, decision)
}

fn skip(reason: SkipReason, warnings: Vec<String>) -> InjectDecision {
    InjectDecision::Skip { reason, warnings }
}

fn decide_inner(pod: &Value, cfg: &InjectConfig) -> Result<InjectDecision, Denial> {
    // Checked first and leniently, before any type-checked read: a mirror pod is never mutated,
    // so nothing else about it (odd labels, a bad switch value) may get it denied.
    if is_mirror_pod(pod) {
        return Ok(skip(SkipReason::MirrorPod, Vec::new()));
    }
    let pod = object(pod, "pod")?;
    let empty = Object::new();
    let metadata = opt_object(pod, "metadata", "metadata")?.unwrap_or(&empty);
    let labels = opt_object(metadata, "labels", "metadata.labels")?.unwrap_or(&empty);
    let annotations =
        opt_object(metadata, "annotations", "metadata.annotations")?.unwrap_or(&empty);
    let label = opt_str(labels, SPIRE_SUPPORT_KEY, &switch_path("labels"))?;
    let annotation = opt_str(annotations, SPIRE_SUPPORT_KEY, &switch_path("annotations"))?;
    match optin::resolve(label, annotation, cfg.enabled_by_default)? {
        Effective::OffByDefault => return Ok(skip(SkipReason::Disabled, Vec::new())),
        Effective::OptedOut => return Ok(skip(SkipReason::OptedOut, Vec::new())),
        Effective::On => {}
    }
    // Spec is only required once we know we must write into it.
    let spec = opt_object(pod, "spec", "spec")?.ok_or(Denial::WrongType {
        path: "spec".into(),
        expected: "an object",
        got: "missing",
    })?;
    Ok(to_decision(plan::plan(spec, cfg)?))
}

/// Whether the kubelet's mirror annotation is there, whatever else the metadata holds.
fn is_mirror_pod(pod: &Value) -> bool {
    pod.get("metadata")
        .and_then(|metadata| metadata.get("annotations"))
        .and_then(Value::as_object)
        .is_some_and(|annotations| annotations.contains_key(MIRROR_ANNOTATION))
}

fn switch_path(map: &str) -> String {
    format!("metadata.{map}[{SPIRE_SUPPORT_KEY}]")
}

fn to_decision(plan: plan::Plan) -> InjectDecision {
    if !plan.ops.is_empty() {
        return InjectDecision::Inject {
            patch: json_patch::Patch(plan.ops),
            targets: plan.targets,
            warnings: plan.warnings,
        };
    }
    // Conflict only when something blocked us; a fully injected pod that also
    // has a container blocked by another mount at the path is still "already
    // present". A socket volume that is not read-only is always a conflict:
    // the CSI driver refuses it, so the pod is not correctly injected.
    let blocked = plan.volume_conflict
        || plan.not_read_only
        || (plan.eligible == 0 && !plan.warnings.is_empty());
    let reason = if blocked {
        SkipReason::Conflict
    } else {
        SkipReason::AlreadyPresent
    };
    skip(reason, plan.warnings)
}

#[cfg(test)]
mod tests {
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
            matches!(&d, InjectDecision::Deny { message } if message.contains("spec")),
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
            decide_with_reason(&bad_switch, &on()).1,
            Some(DenyReason::InvalidOptIn)
        );
        let malformed = json!({"spec": {"containers": "app"}});
        assert_eq!(
            decide_with_reason(&malformed, &on()).1,
            Some(DenyReason::Malformed)
        );
        assert_eq!(
            decide_with_reason(&json!({}), &on()).1,
            Some(DenyReason::Malformed)
        );
        assert_eq!(
            decide_with_reason(&json!({}), &InjectConfig::default()).1,
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
                if let InjectDecision::Deny { message } = &d {
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
        with_sidecar["spec"]["initContainers"][0] = json!({"name": "kuma-sidecar", "restartPolicy": "Always", "env": [], "volumeMounts": []});
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
                    message: want.into()
                },
                "{pod}"
            );
        }
    }
}
