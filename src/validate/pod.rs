//! `POST /validate-v1-pod`: the pod side of the workload label requirement. A pod whose winning
//! MeshIdentity could never give it a SPIFFE ID is refused when it is created, not when its proxy
//! connects.

use crate::api::{PodInfo, WORKLOAD_LABEL};
use crate::config::{Enforcement, Settings};
use crate::dataplane::DataplaneView;
use crate::render::{spiffe_id_for, uses_workload_label};
use crate::select::Ranking;
use crate::state::ClusterView;

use super::workload::how_to_give_a_workload;
use super::{Operation, Request, Verdict};

/// Audit annotation keys (the API server prefixes them with the webhook name).
pub const AUDIT_IDENTITY: &str = "meshidentity";
pub const AUDIT_SPIFFE_ID: &str = "spiffe-id";

/// Why a pod was refused, for metrics: a bounded set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodDenial {
    ManualWorkloadLabel,
    MissingWorkload,
    InvalidSpiffeId,
    Malformed,
}

impl PodDenial {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ManualWorkloadLabel => "manual_workload_label",
            Self::MissingWorkload => "missing_workload",
            Self::InvalidSpiffeId => "invalid_spiffe_id",
            Self::Malformed => "malformed",
        }
    }
}

pub fn review(request: &Request, view: &dyn ClusterView, settings: &Settings) -> Verdict {
    review_with_reason(request, view, settings).0
}

/// The verdict and, for denials, why.
pub fn review_with_reason(
    request: &Request,
    view: &dyn ClusterView,
    settings: &Settings,
) -> (Verdict, Option<PodDenial>) {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return (Verdict::allow(), None);
    }
    let Some(object) = request.object.filter(|o| o.is_object()) else {
        let verdict = Verdict::deny(400, "BadRequest", "request.object must be a Pod object");
        return (verdict, Some(PodDenial::Malformed));
    };
    let pod = PodInfo::from_json(object, request.namespace);
    if pod.labels.contains_key(WORKLOAD_LABEL) {
        let verdict = Verdict::deny(
            403,
            "Forbidden",
            "cannot manually set kuma.io/workload label on Pod; it is automatically managed by Kuma",
        );
        return (verdict, Some(PodDenial::ManualWorkloadLabel));
    }
    let dataplane = DataplaneView::new(&pod, view, settings);
    let identities = view.identities_in_mesh(dataplane.mesh);
    let ranking = Ranking::new(identities);
    let Some(identity) = ranking.winner(&dataplane) else {
        return (Verdict::allow(), None);
    };
    let path = identity.path_template();
    let mut verdict = Verdict::allow();
    verdict.audit_annotations.insert(
        AUDIT_IDENTITY.to_owned(),
        format!("{}/{}", identity.namespace(), identity.name()),
    );
    if uses_workload_label(path) && dataplane.workload.is_none() {
        let message = format!(
            "missing required label '{WORKLOAD_LABEL}' - pod is selected by MeshIdentity '{}' with path template '{path}'; {}",
            identity.name(),
            how_to_give_a_workload(settings)
        );
        return (
            Verdict::deny(403, "Forbidden", message),
            Some(PodDenial::MissingWorkload),
        );
    }
    match spiffe_id_for(identity, &dataplane, settings) {
        Ok(id) => {
            verdict
                .audit_annotations
                .insert(AUDIT_SPIFFE_ID.to_owned(), id);
            (verdict, None)
        }
        Err(reason) => {
            let message = format!(
                "pod would get no valid SPIFFE ID from MeshIdentity '{}': {reason}",
                identity.name()
            );
            match settings.enforcement {
                Enforcement::Deny => (
                    Verdict::deny(403, "Forbidden", message),
                    Some(PodDenial::InvalidSpiffeId),
                ),
                Enforcement::Warn => (verdict.with_warning(message), None),
            }
        }
    }
}
