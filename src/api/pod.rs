//! What decisions need of Pods and Namespaces: a small slice of each, so a cluster's worth of
//! pods fits in memory.

use std::sync::Arc;

use serde_json::Value;

use super::labels::{Labels, MIRROR_ANNOTATION, SIDECAR_INJECTED_ANNOTATION, SPIRE_SUPPORT_KEY};
use super::pod_labels::PodLabels;

/// The only pod annotations any decision reads of a stored pod: Kuma's sidecar mark (is the pod
/// meshed), and the SPIRE switch and the mirror-pod mark (the audit resolves the injection as the
/// injector would). Pods carry many more (Kuma's own, Prometheus', `kubectl rollout restart`'s),
/// and the live state holds every pod of the cluster: keeping the others would cost memory for
/// nothing.
pub const READ_ANNOTATIONS: [&str; 3] = [
    SIDECAR_INJECTED_ANNOTATION,
    SPIRE_SUPPORT_KEY,
    MIRROR_ANNOTATION,
];

/// What decisions need of a Namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: Labels,
}

/// What decisions need of a Pod: identity, labels, the annotations decisions read and service
/// account. Kept small on purpose so a cluster's worth of pods fits in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    pub name: String,
    /// Shareable: the live state holds one copy of each namespace's name for all its pods.
    pub namespace: Arc<str>,
    pub labels: PodLabels,
    /// Only the [`READ_ANNOTATIONS`].
    pub annotations: PodLabels,
    /// `spec.serviceAccountName`, `default` when absent (what the API server fills in). Shared
    /// like the namespace: a workload's pods run as one account.
    pub service_account: Arc<str>,
    /// What the SPIRE socket injection would still add to this pod, were it on; `None` when
    /// nothing (or when read from an object without its spec, as admission decisions do).
    /// Filled when a stored pod is decoded (`cluster::Object`), for the audit. Shared: the pods
    /// of one workload lack the same things, and the live state keeps one copy of each gap.
    pub socket: Option<Arc<SocketGap>>,
}

/// The socket volume or mounts a pod lacks: it was created while the mutating webhook was down
/// or skipped it. Behind a pointer in [`PodInfo`], so the common pod with nothing missing stays
/// small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SocketGap {
    pub volume_missing: bool,
    /// `containers/<name>` (or `initContainers/…`) that the injector would mount into and that
    /// lack the mount.
    pub unmounted: Vec<String>,
}

impl PodInfo {
    /// `namespace/name`, the way messages name a pod.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Reads the fields decisions need from raw pod JSON. Missing or mistyped fields fall back to
    /// empty values; `namespace_fallback` covers `generateName` pods whose object has none yet.
    pub fn from_json(pod: &Value, namespace_fallback: Option<&str>) -> Self {
        let string_map = |pointer: &str| string_map_at(pod, pointer);
        let text = |pointer: &str| {
            pod.pointer(pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        Self {
            name: text("/metadata/name")
                .or_else(|| text("/metadata/generateName"))
                .unwrap_or_default()
                .to_owned(),
            namespace: text("/metadata/namespace")
                .or(namespace_fallback.filter(|s| !s.is_empty()))
                .unwrap_or("default")
                .into(),
            labels: string_map("/metadata/labels").into(),
            annotations: read_annotations(pod),
            service_account: text("/spec/serviceAccountName").unwrap_or("default").into(),
            socket: None,
        }
    }
}

/// The [`READ_ANNOTATIONS`] the pod has (with string values).
fn read_annotations(pod: &Value) -> PodLabels {
    let Some(annotations) = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
    else {
        return PodLabels::default();
    };
    READ_ANNOTATIONS
        .iter()
        .filter_map(|&key| {
            let value = annotations.get(key)?.as_str()?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect::<Labels>()
        .into()
}

/// The string-to-string map at `pointer` (labels, annotations); non-string values are skipped and
/// anything that is not an object reads as empty.
pub fn string_map_at(value: &Value, pointer: &str) -> Labels {
    value
        .pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_annotations_decisions_read_are_kept() {
        let pod = PodInfo::from_json(
            &json!({"metadata": {"name": "p", "annotations": {
                SIDECAR_INJECTED_ANNOTATION: "true", "prometheus.io/scrape": "true", "n": 1
            }}}),
            None,
        );
        let want = Labels::from([(SIDECAR_INJECTED_ANNOTATION.to_owned(), "true".to_owned())]);
        assert_eq!(pod.annotations, want.into());
        let odd = json!({"metadata": {"annotations": {SIDECAR_INJECTED_ANNOTATION: true}}});
        assert!(PodInfo::from_json(&odd, None).annotations.is_empty());
    }
}
