//! The labels Kuma reads and sets, and the mesh an object belongs to.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub type Labels = BTreeMap<String, String>;

/// Label naming the mesh an object belongs to.
pub const MESH_LABEL: &str = "kuma.io/mesh";
/// Label saying where a policy-like object originates.
pub const ORIGIN_LABEL: &str = "kuma.io/origin";
/// Label carrying the zone of a MeshIdentity (and a derived dataplane label).
pub const ZONE_LABEL: &str = "kuma.io/zone";
/// The workload of a dataplane; managed by Kuma, never set on pods by hand.
pub const WORKLOAD_LABEL: &str = "kuma.io/workload";
pub const NAMESPACE_LABEL: &str = "k8s.kuma.io/namespace";
pub const SERVICE_ACCOUNT_LABEL: &str = "k8s.kuma.io/service-account";
pub const ENV_LABEL: &str = "kuma.io/env";
/// Pod or Namespace label that turns Kuma's sidecar injection on or off.
pub const SIDECAR_INJECTION_LABEL: &str = "kuma.io/sidecar-injection";
/// Kuma's injector marks the pods it gave a sidecar with this annotation set to `"true"`.
pub const SIDECAR_INJECTED_ANNOTATION: &str = "kuma.io/sidecar-injected";
/// Label or annotation that switches the SPIRE socket injection per pod.
pub const SPIRE_SUPPORT_KEY: &str = "k8s.kuma.io/spire-support";
/// Set by the kubelet on mirror pods of static pods; those cannot be changed
/// through the API, so mutating them would only produce a confusing diff.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Mesh used when an object names none.
pub const DEFAULT_MESH: &str = "default";

/// The mesh an object belongs to: its `kuma.io/mesh` label, else `default`.
pub fn mesh_of(meta: &ObjectMeta) -> &str {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MESH_LABEL))
        .map(String::as_str)
        .unwrap_or(DEFAULT_MESH)
}
