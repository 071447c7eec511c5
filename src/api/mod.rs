//! API types for the objects the webhook decides about, and the one table of where the API
//! server serves each kind.

pub mod crd;
mod labels;
mod mesh;
mod meshidentity;
mod pod;
mod pod_labels;

pub use labels::*;
pub use mesh::{Mesh, MeshServicesMode};
pub use meshidentity::*;
pub use pod::{string_map_at, NamespaceInfo, PodInfo, SocketGap};
pub use pod_labels::{LabelLookup, LabelPairs, PodLabels};

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
