//! API types for the objects the webhook decides about, and the one table of where the API
//! server serves each kind.

pub mod crd;
mod mesh;
mod meshidentity;
mod pod;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use mesh::{Mesh, MeshServicesMode};
pub use meshidentity::*;
pub use pod::{string_map_at, NamespaceInfo, PodInfo};

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
/// Mesh used when an object names none.
pub const DEFAULT_MESH: &str = "default";

pub const DEFAULT_TRUST_DOMAIN_TEMPLATE: &str = "{{ .Mesh }}.{{ .Zone }}.mesh.local";
pub const DEFAULT_PATH_TEMPLATE: &str = "/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}";

/// The mesh an object belongs to: its `kuma.io/mesh` label, else `default`.
pub fn mesh_of(meta: &ObjectMeta) -> &str {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MESH_LABEL))
        .map(String::as_str)
        .unwrap_or(DEFAULT_MESH)
}

/// The kinds this product reads: one place for their group, version, plural and scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Mesh,
    MeshIdentity,
    Namespace,
    Pod,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Mesh, Kind::MeshIdentity, Kind::Namespace, Kind::Pod];

    /// The `kind` as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mesh => "Mesh",
            Self::MeshIdentity => "MeshIdentity",
            Self::Namespace => "Namespace",
            Self::Pod => "Pod",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The API group: `kuma.io`, or `""` for the core group.
    pub fn group(self) -> &'static str {
        match self {
            Self::Mesh | Self::MeshIdentity => "kuma.io",
            Self::Namespace | Self::Pod => "",
        }
    }

    pub fn version(self) -> &'static str {
        match self {
            Self::Mesh | Self::MeshIdentity => "v1alpha1",
            Self::Namespace | Self::Pod => "v1",
        }
    }

    /// `apiVersion`: `group/version`, or the version alone for the core group.
    pub fn api_version(self) -> &'static str {
        match self {
            Self::Mesh | Self::MeshIdentity => "kuma.io/v1alpha1",
            Self::Namespace | Self::Pod => "v1",
        }
    }

    /// The resource name in API paths, RBAC rules and webhook registrations.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Mesh => "meshes",
            Self::MeshIdentity => "meshidentities",
            Self::Namespace => "namespaces",
            Self::Pod => "pods",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        matches!(self, Self::MeshIdentity | Self::Pod)
    }
}
