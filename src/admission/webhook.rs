//! The one webhook table: each endpoint's path, registered name, the kind it judges, and which
//! parts of its objects its decision reads.

use crate::api::Kind;
use crate::verdict::Operation;

use super::pruned::{Action, Prune};

/// The admission endpoints and what each decides about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    ValidateMeshIdentity,
    ValidateMesh,
    ValidatePod,
    MutatePod,
}

impl Webhook {
    pub const ALL: [Webhook; 4] = [
        Webhook::ValidateMeshIdentity,
        Webhook::ValidateMesh,
        Webhook::ValidatePod,
        Webhook::MutatePod,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Self::ValidateMeshIdentity => "/validate-kuma-io-v1alpha1-meshidentity",
            Self::ValidateMesh => "/validate-kuma-io-v1alpha1-mesh",
            Self::ValidatePod => "/validate-v1-pod",
            Self::MutatePod => "/mutate-v1-pod",
        }
    }

    /// The name the webhook is registered under (deploy/), which kube-apiserver quotes in
    /// `admission webhook "<name>" denied the request`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ValidateMeshIdentity => "validate-meshidentity.kuma-identity-webhook.kuma.io",
            Self::ValidateMesh => "validate-mesh.kuma-identity-webhook.kuma.io",
            Self::ValidatePod => "validate-pod.kuma-identity-webhook.kuma.io",
            Self::MutatePod => "spire-socket.kuma-identity-webhook.kuma.io",
        }
    }

    /// Where the webhook stands in [`Webhook::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.path() == path)
    }

    /// The kind of the objects this endpoint judges.
    pub fn kind(self) -> Kind {
        match self {
            Self::ValidateMeshIdentity => Kind::MeshIdentity,
            Self::ValidateMesh => Kind::Mesh,
            Self::ValidatePod | Self::MutatePod => Kind::Pod,
        }
    }

    /// Whether kube-apiserver calls this endpoint as a mutating webhook.
    pub fn mutating(self) -> bool {
        self == Self::MutatePod
    }

    /// What the decision never reads of this endpoint's objects, and so is never built: the
    /// field manager's records, status, free-form configuration, and a pod's spec for the pod
    /// validator (which reads its service account only).
    pub fn unread(self) -> &'static [Prune] {
        const MANAGED_FIELDS: Prune = Prune {
            path: &["metadata", "managedFields"],
            action: Action::Skip,
        };
        const STATUS: Prune = Prune {
            path: &["status"],
            action: Action::Skip,
        };
        match self {
            Self::ValidateMeshIdentity => &[
                MANAGED_FIELDS,
                STATUS,
                Prune {
                    path: &["spec", "provider", "extension", "config"],
                    action: Action::Skip,
                },
            ],
            Self::ValidateMesh => &[
                MANAGED_FIELDS,
                STATUS,
                Prune {
                    path: &["spec"],
                    action: Action::Only(&["meshServices"]),
                },
            ],
            Self::ValidatePod => &[
                MANAGED_FIELDS,
                STATUS,
                Prune {
                    path: &["spec"],
                    action: Action::Only(&["serviceAccountName"]),
                },
            ],
            // The injector reads the switch (labels, annotations) and the containers and
            // volumes it patches; a pod's other fields (often most of it: probes, resources,
            // affinity) are never built.
            Self::MutatePod => &[
                STATUS,
                Prune {
                    path: &["metadata"],
                    action: Action::Only(&["labels", "annotations"]),
                },
                Prune {
                    path: &["spec"],
                    action: Action::Only(&["containers", "initContainers", "volumes"]),
                },
            ],
        }
    }

    /// Which of `object` and `oldObject` the decision reads for `operation`; the others are
    /// never decoded.
    pub fn reads(self, operation: Operation) -> (bool, bool) {
        match (self, operation) {
            // Only CREATE is mutated, and the mutation reads only the new pod.
            (Self::MutatePod, Operation::Create) => (true, false),
            (Self::MutatePod, _) => (false, false),
            (_, Operation::Create) => (true, false),
            (_, Operation::Update) => (true, true),
            // DELETE and CONNECT are allowed unread.
            _ => (false, false),
        }
    }
}
