//! SPIRE agent socket injection: a pure decision over the raw Pod JSON that
//! the API server sends, producing a minimal RFC 6902 patch.
//!
//! Layout: `optin` resolves the per-pod switch, `plan` computes the `add`
//! operations, `shape` does type-checked reads, `denial` renders refusals.
//! Nothing here deserialises the pod into typed structs, so fields unknown to
//! us survive untouched, and no input (however malformed) can panic.

mod denial;
mod keys;
mod optin;
mod plan;
pub mod review;
mod shape;
mod socket;

use serde_json::Value;

pub use crate::config::InjectConfig;
pub use crate::verdict::{InjectionDenial, SkipReason};
pub use keys::{MIRROR_ANNOTATION, SPIRE_SUPPORT_KEY, VOLUME_NAME};
pub use socket::{socket_gap, spire_on, SwitchProblem};

use self::denial::Denial;
use self::optin::Effective;
use self::shape::{object, opt_object, opt_str, Object};

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
        reason: InjectionDenial,
        message: String,
    },
}

/// Pure decision over the raw pod JSON (the AdmissionReview `request.object`).
/// Never panics.
pub fn decide(pod: &Value, cfg: &InjectConfig) -> InjectDecision {
    decide_inner(pod, cfg).unwrap_or_else(|denial| {
        let reason = match denial {
            Denial::InvalidValue { .. } | Denial::Disagree { .. } => InjectionDenial::InvalidOptIn,
            // `Internal` only comes from `apply`; a patch that does not apply means the pod
            // had a shape the planner did not expect.
            Denial::WrongType { .. } | Denial::Internal(_) => InjectionDenial::Malformed,
            Denial::TooManyContainers { .. } => InjectionDenial::TooManyContainers,
        };
        InjectDecision::Deny {
            reason,
            message: denial.to_string(),
        }
    })
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
            let reason = InjectionDenial::Malformed;
            return (pod.clone(), InjectDecision::Deny { reason, message });
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
    let label = opt_str(labels, SPIRE_SUPPORT_KEY, switch_path("labels"))?;
    let annotation = opt_str(annotations, SPIRE_SUPPORT_KEY, switch_path("annotations"))?;
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

/// The switch's field in denial messages, written only when a denial needs it.
fn switch_path(map: &str) -> impl std::fmt::Display + '_ {
    SwitchPath(map)
}

struct SwitchPath<'a>(&'a str);

impl std::fmt::Display for SwitchPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "metadata.{}[{SPIRE_SUPPORT_KEY}]", self.0)
    }
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
mod tests;
