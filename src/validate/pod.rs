//! `POST /validate-v1-pod`: the pod side of the workload label requirement. A pod whose winning
//! MeshIdentity could never give it a SPIFFE ID is refused when it is created, not when its proxy
//! connects. Pods Kuma never injects are outside the mesh and not judged; on UPDATE, a problem the
//! old object already had is only warned about, so existing pods stay updatable.

use std::collections::BTreeMap;

use crate::api::{PodInfo, WORKLOAD_LABEL};
use crate::cluster::ClusterView;
use crate::config::{Enforcement, Settings};
use crate::identity::dataplane::{is_meshed, DataplaneView};
use crate::identity::render::{
    render_spiffe_id, render_spiffe_id_with, uses_workload_label, SpiffeIdError,
};
use crate::identity::select::Ranking;

use super::workload::how_to_give_a_workload;
use crate::verdict::{truncate_warning, Operation, PodFinding, Reason, Request, Verdict};

/// Audit annotation keys (the API server prefixes them with the webhook name).
pub const AUDIT_IDENTITY: &str = "meshidentity";
pub const AUDIT_SPIFFE_ID: &str = "spiffe-id";

/// Said on an UPDATE that is let through because the pod already had the same problem: an
/// existing pod (being finalized, or older than the MeshIdentity) must stay updatable.
pub const PREEXISTING_WARNING: &str =
    "update allowed: the pod already had the problem below before this update";

pub fn review(request: &Request, view: &dyn ClusterView, settings: &Settings) -> Verdict {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Verdict::allow();
    }
    let Some(object) = request.object.filter(|o| o.is_object()) else {
        return Verdict::malformed("request.object must be a Pod object");
    };
    let pod = PodInfo::from_json(object, request.namespace);
    // Only an UPDATE has a meaningful before; anything else is judged as new.
    let old = request
        .old_object
        .filter(|o| request.operation == Operation::Update && o.is_object())
        .map(|o| PodInfo::from_json(o, request.namespace));
    if let Some(value) = pod.labels.get(WORKLOAD_LABEL) {
        // A label that was already there with this value is not being set now; refusing it
        // would make the pod un-updatable (its finalizers could never be removed).
        let kept = old
            .as_ref()
            .is_some_and(|old| old.labels.get(WORKLOAD_LABEL) == Some(value));
        if !kept {
            return Verdict::deny(
                403,
                "Forbidden",
                "cannot manually set kuma.io/workload label on Pod; it is automatically managed by Kuma",
            )
            .because(Reason::Pod(PodFinding::ManualWorkloadLabel));
        }
    }
    let Some(assessment) = assess(&pod, view, settings) else {
        return Verdict::allow();
    };
    let mut verdict = Verdict {
        audit_annotations: assessment.audit,
        ..Verdict::allow()
    };
    let Some(finding) = assessment.finding else {
        return verdict;
    };
    let warn_only =
        finding.kind == PodFinding::InvalidSpiffeId && settings.enforcement == Enforcement::Warn;
    if warn_only {
        verdict.warnings = finding.warnings;
        return verdict;
    }
    let preexisting = old
        .as_ref()
        .and_then(|old| assess(old, view, settings))
        .and_then(|old| old.finding)
        .is_some_and(|old| old == finding);
    if preexisting {
        verdict = verdict.with_warning(PREEXISTING_WARNING);
        verdict.warnings.extend(finding.warnings);
        return verdict;
    }
    let mut denial =
        Verdict::deny(403, "Forbidden", finding.message).because(Reason::Pod(finding.kind));
    // The audit log should say which identity and ID a refused pod was judged by, too.
    denial.audit_annotations = verdict.audit_annotations;
    denial
}

/// What the pod's winning MeshIdentity makes of it.
pub struct Assessment {
    /// The audit annotations: the winning identity (`namespace/name`) and the rendered ID.
    pub audit: BTreeMap<String, String>,
    pub finding: Option<Finding>,
}

/// A reason the pod would get no SPIFFE ID. Two findings are the same problem when they are
/// equal: same kind, same identity, same rendered value.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: PodFinding,
    /// The full denial message.
    pub message: String,
    /// The same, as warnings of at most 120 characters, the reason first so it survives any cut.
    pub warnings: Vec<String>,
    /// Why the ID does not render, when that is the problem.
    pub cause: Option<SpiffeIdError>,
}

/// `None` when nothing applies: the pod is not in the mesh, or no identity selects it. The audit
/// judges stored pods with this too, so the webhook and the audit cannot disagree.
pub fn assess(pod: &PodInfo, view: &dyn ClusterView, settings: &Settings) -> Option<Assessment> {
    // Kuma never injects such a pod, so it never gets a dataplane or a SPIFFE ID to check.
    if !is_meshed(pod, view) {
        return None;
    }
    let dataplane = DataplaneView::new(pod, view, settings);
    let ranking = Ranking::new(view.identities_in_mesh(dataplane.mesh));
    let identity = ranking.winner(&dataplane)?;
    let name = identity.name();
    let path = identity.path_template();
    let mut audit = BTreeMap::from([(
        AUDIT_IDENTITY.to_owned(),
        format!("{}/{name}", identity.namespace()),
    )]);
    if uses_workload_label(path) && dataplane.workload.is_none() {
        let message = format!(
            "missing required label '{WORKLOAD_LABEL}' - pod is selected by MeshIdentity '{name}' with path template '{path}'; {}",
            how_to_give_a_workload(settings)
        );
        let warnings = vec![
            truncate_warning(format!(
                "missing required label '{WORKLOAD_LABEL}': MeshIdentity '{name}' reads the workload"
            )),
            truncate_warning(format!("its path template is '{path}'")),
        ];
        let finding = Finding {
            kind: PodFinding::MissingWorkload,
            message,
            warnings,
            cause: None,
        };
        return Some(Assessment {
            audit,
            finding: Some(finding),
        });
    }
    let rendered = match view.templates_of(identity) {
        Some(templates) => render_spiffe_id_with(identity, templates, &dataplane, settings),
        None => render_spiffe_id(identity, &dataplane, settings),
    };
    let (reason, warnings, cause) = match rendered {
        Ok(rendered) => {
            audit.insert(AUDIT_SPIFFE_ID.to_owned(), rendered.value.clone());
            let (Some(problem), Some(reason)) = (&rendered.problem, rendered.error()) else {
                return Some(Assessment {
                    audit,
                    finding: None,
                });
            };
            let warnings = vec![
                truncate_warning(format!("invalid SPIFFE ID: {problem}")),
                truncate_warning(format!(
                    "rendered by MeshIdentity '{name}': \"{}\"",
                    rendered.value
                )),
            ];
            (reason.to_string(), warnings, None)
        }
        Err(error) => {
            let warnings = vec![
                truncate_warning(format!("SPIFFE ID does not render: {error}")),
                truncate_warning(format!(
                    "from MeshIdentity '{name}' with path template '{path}'"
                )),
            ];
            (error.to_string(), warnings, Some(error))
        }
    };
    let finding = Finding {
        kind: PodFinding::InvalidSpiffeId,
        message: format!("pod would get no valid SPIFFE ID from MeshIdentity '{name}': {reason}"),
        warnings,
        cause,
    };
    Some(Assessment {
        audit,
        finding: Some(finding),
    })
}
