//! What Kuma sees of a pod: its mesh, workload and the labels selectors match against.
//!
//! [`DataplaneView`] borrows everything from the pod and the cluster view, so scanning every pod of
//! a cluster for a MeshIdentity change allocates nothing per pod.

use crate::api::{
    LabelLookup, Labels, PodInfo, DEFAULT_MESH, ENV_LABEL, MESH_LABEL, NAMESPACE_LABEL,
    SERVICE_ACCOUNT_LABEL, SIDECAR_INJECTED_ANNOTATION, SIDECAR_INJECTION_LABEL, WORKLOAD_LABEL,
    ZONE_LABEL,
};
use crate::cluster::ClusterView;
use crate::config::{Settings, WorkloadFallback};

/// Value of the derived `kuma.io/env` label on Kubernetes.
pub const ENV_KUBERNETES: &str = "kubernetes";

/// Labels every dataplane gets from Kuma rather than from its pod.
pub const DERIVED_LABELS: [&str; 6] = [
    MESH_LABEL,
    NAMESPACE_LABEL,
    SERVICE_ACCOUNT_LABEL,
    ZONE_LABEL,
    ENV_LABEL,
    WORKLOAD_LABEL,
];

/// A pod seen as a dataplane.
#[derive(Debug, Clone, Copy)]
pub struct DataplaneView<'a> {
    pub pod: &'a PodInfo,
    pub mesh: &'a str,
    /// `None` when no workload label is set and no fallback applies.
    pub workload: Option<&'a str>,
    pub zone: &'a str,
}

impl<'a> DataplaneView<'a> {
    pub fn new(pod: &'a PodInfo, view: &'a dyn ClusterView, settings: &'a Settings) -> Self {
        Self {
            pod,
            mesh: mesh_of_pod(pod, view),
            workload: workload_of(pod, settings),
            zone: &settings.zone,
        }
    }

    /// One dataplane label: derived labels first (they override pod labels), then the pod's own.
    pub fn label(&self, key: &str) -> Option<&'a str> {
        match key {
            MESH_LABEL => Some(self.mesh),
            NAMESPACE_LABEL => Some(&self.pod.namespace),
            SERVICE_ACCOUNT_LABEL => Some(&self.pod.service_account),
            ZONE_LABEL => Some(self.zone),
            ENV_LABEL => Some(ENV_KUBERNETES),
            WORKLOAD_LABEL => self.workload,
            _ => self.pod.labels.get(key),
        }
    }

    /// Whether every selector label is present with the same value.
    pub fn matches(&self, match_labels: &Labels) -> bool {
        match_labels
            .iter()
            .all(|(key, value)| self.label(key) == Some(value.as_str()))
    }

    /// All dataplane labels as a map (for rendering and for explaining).
    pub fn labels(&self) -> Labels {
        let mut labels = self.pod.labels.to_labels();
        labels.remove(WORKLOAD_LABEL);
        for key in DERIVED_LABELS {
            if let Some(value) = self.label(key) {
                labels.insert(key.to_owned(), value.to_owned());
            }
        }
        labels
    }
}

/// The mesh of a pod: its `kuma.io/mesh` label, else its namespace's, else `default`.
pub fn mesh_of_pod<'a>(pod: &'a PodInfo, view: &'a dyn ClusterView) -> &'a str {
    pod.labels
        .get(MESH_LABEL)
        .filter(|mesh| !mesh.is_empty())
        .or_else(|| {
            view.namespace_labels(&pod.namespace)?
                .label(MESH_LABEL)
                .filter(|mesh| !mesh.is_empty())
        })
        .unwrap_or(DEFAULT_MESH)
}

/// The workload: the first non-empty value among the configured workload labels, else the
/// service account when that fallback is switched on.
pub fn workload_of<'a>(pod: &'a PodInfo, settings: &Settings) -> Option<&'a str> {
    let labelled = settings
        .workload_labels
        .iter()
        .filter_map(|key| pod.labels.get(key))
        .find(|value| !value.is_empty());
    match (labelled, settings.workload_fallback) {
        (Some(value), _) => Some(value),
        (None, WorkloadFallback::ServiceAccount) => Some(&pod.service_account),
        (None, WorkloadFallback::None) => None,
    }
}

/// Whether the pod has, or will get from Kuma's injector, a sidecar, and so a dataplane and a
/// SPIFFE ID. Pods outside the mesh are never issued an identity, so there is nothing to check
/// about their workload or SPIFFE ID. The injector's own mark settles it (it is there on CREATE
/// too, since validating webhooks run after every mutating one, and it outlives a later change of
/// the namespace's label); without it, for manifests checked offline or pods Kuma has not seen,
/// the injection labels decide.
pub fn is_meshed(pod: &PodInfo, view: &dyn ClusterView) -> bool {
    pod.annotations
        .get(SIDECAR_INJECTED_ANNOTATION)
        .is_some_and(|v| v == "true")
        || sidecar_injection_enabled(&pod.labels, view.namespace_labels(&pod.namespace))
}

/// Upstream's rule, as a pure function of the labels: the pod's `kuma.io/sidecar-injection`
/// label decides when it says on or off (so a pod can opt out of an enabled namespace), else its
/// namespace's label does. Values other than `enabled`/`true`/`disabled`/`false` decide nothing,
/// so such a pod label falls through to the namespace.
pub fn sidecar_injection_enabled(
    pod_labels: &impl LabelLookup,
    namespace_labels: Option<&Labels>,
) -> bool {
    let switch = |labels: &dyn LabelLookup| match labels.label(SIDECAR_INJECTION_LABEL) {
        Some("enabled" | "true") => Some(true),
        Some("disabled" | "false") => Some(false),
        _ => None,
    };
    switch(pod_labels)
        .or_else(|| namespace_labels.and_then(|labels| switch(labels)))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(value: Option<&str>) -> Labels {
        value
            .map(|v| Labels::from([(SIDECAR_INJECTION_LABEL.to_owned(), v.to_owned())]))
            .unwrap_or_default()
    }

    #[test]
    fn sidecar_injection_table() {
        let cases = [
            (None, None, false),
            (None, Some("enabled"), true),
            (None, Some("true"), true),
            (None, Some("disabled"), false),
            (Some("enabled"), None, true),
            (Some("true"), Some("disabled"), true),
            (Some("disabled"), Some("enabled"), false),
            (Some("false"), Some("enabled"), false),
            // Unrecognised pod values leave the decision to the namespace.
            (Some("yes"), Some("enabled"), true),
            (Some("Enabled"), None, false),
            (None, Some("on"), false),
        ];
        for (pod, namespace, want) in cases {
            let namespace_labels = namespace.map(|v| labels(Some(v)));
            assert_eq!(
                sidecar_injection_enabled(&labels(pod), namespace_labels.as_ref()),
                want,
                "pod {pod:?} namespace {namespace:?}"
            );
        }
    }
}
