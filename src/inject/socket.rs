//! What the injector would still have to do for a pod that already exists: the audit's view of
//! the socket, from the same switch and the same choice of target containers the webhook uses.
//! Computed once when a pod is decoded, so stored pods keep a small summary, not their spec.

use serde_json::Value;

use super::denial::Denial;
use super::keys::SPIRE_SUPPORT_KEY;
use super::optin::{self, Effective};
use super::plan::plan;
use super::shape::{object, opt_object};
use crate::api::{LabelLookup, SocketGap};
use crate::config::InjectConfig;

/// What is missing of the socket in `pod` (raw JSON), were SPIRE on for it: what the injector's
/// own plan would add (the environment variables aside, which no pod lacks for long once it has
/// the mount). `None` when it would add nothing, or the pod has a shape the injector refuses.
/// Planned with the default mount path: the pod is summarised when decoded, before any setting
/// is known, so a custom path only changes which foreign mount blocks a container.
pub fn socket_gap(pod: &Value) -> Option<SocketGap> {
    let spec = opt_object(object(pod, "pod").ok()?, "spec", "spec").ok()??;
    let plan = plan(spec, &InjectConfig::default()).ok()?;
    (plan.adds_volume || !plan.mounts.is_empty()).then_some(SocketGap {
        volume_missing: plan.adds_volume,
        unmounted: plan.mounts,
    })
}

/// Why the pod's `k8s.kuma.io/spire-support` switch cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchProblem {
    /// A value that is not one of the accepted words.
    InvalidValue(String),
    /// Label and annotation both set, to opposite values.
    Disagree(String),
}

/// Whether SPIRE is on for a pod with these labels and annotations, as the injector resolves it
/// (mirror pods are never injected).
pub fn spire_on(
    labels: &impl LabelLookup,
    annotations: &impl LabelLookup,
    cfg: &InjectConfig,
) -> Result<bool, SwitchProblem> {
    if annotations.label(super::MIRROR_ANNOTATION).is_some() {
        return Ok(false);
    }
    let label = labels.label(SPIRE_SUPPORT_KEY);
    let annotation = annotations.label(SPIRE_SUPPORT_KEY);
    match optin::resolve(label, annotation, cfg.enabled_by_default) {
        Ok(effective) => Ok(effective == Effective::On),
        Err(denial @ Denial::Disagree { .. }) => Err(SwitchProblem::Disagree(denial.to_string())),
        Err(denial) => Err(SwitchProblem::InvalidValue(denial.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::VOLUME_NAME;
    use super::*;
    use crate::api::Labels;

    #[test]
    fn gaps_name_the_missing_volume_and_unmounted_targets() {
        let mount = json!({"name": VOLUME_NAME, "mountPath": "/run/spire/sockets"});
        let volume =
            json!({"name": VOLUME_NAME, "csi": {"driver": "csi.spiffe.io", "readOnly": true}});
        let complete = json!({"spec": {"volumes": [volume],
            "containers": [{"name": "app", "volumeMounts": [mount]}]}});
        assert_eq!(socket_gap(&complete), None);
        let no_volume = json!({"spec": {"containers": [{"name": "app", "volumeMounts": [mount]}]}});
        assert_eq!(
            socket_gap(&no_volume),
            Some(SocketGap {
                volume_missing: true,
                unmounted: vec![]
            })
        );
        // With the sidecar present only the sidecar is a target, as for the injector.
        let sidecar = json!({"spec": {"volumes": [volume], "containers": [
            {"name": "app"}, {"name": "kuma-sidecar"}]}});
        assert_eq!(
            socket_gap(&sidecar),
            Some(SocketGap {
                volume_missing: false,
                unmounted: vec!["containers/kuma-sidecar".into()]
            })
        );
        assert_eq!(socket_gap(&json!("not a pod")), None);
        assert_eq!(socket_gap(&json!({"spec": {"containers": 3}})), None);
    }

    #[test]
    fn the_switch_resolves_like_the_injector() {
        let on = Labels::from([(SPIRE_SUPPORT_KEY.to_owned(), "true".to_owned())]);
        let off = Labels::from([(SPIRE_SUPPORT_KEY.to_owned(), "no".to_owned())]);
        let bad = Labels::from([(SPIRE_SUPPORT_KEY.to_owned(), "True".to_owned())]);
        let cfg = InjectConfig::default();
        assert_eq!(spire_on(&on, &Labels::new(), &cfg), Ok(true));
        assert_eq!(spire_on(&Labels::new(), &Labels::new(), &cfg), Ok(false));
        assert!(matches!(
            spire_on(&on, &off, &cfg),
            Err(SwitchProblem::Disagree(_))
        ));
        assert!(matches!(
            spire_on(&bad, &Labels::new(), &cfg),
            Err(SwitchProblem::InvalidValue(_))
        ));
        let mirror = Labels::from([(super::super::MIRROR_ANNOTATION.to_owned(), "x".to_owned())]);
        let mut bad_mirror = mirror.clone();
        bad_mirror.extend(bad);
        assert_eq!(spire_on(&Labels::new(), &bad_mirror, &cfg), Ok(false));
    }
}
