//! The audit: which of the pods already in the cluster have a broken identity. Every meshed pod
//! is judged by the pod webhook's own assessment ([`validate::pod::assess`]) and the injector's
//! own switch and target choice ([`inject::spire_on`], [`inject::socket_gap`]), so the audit,
//! `check`, `explain` and the webhooks cannot disagree. Pure over a [`ClusterView`]; the command
//! (`cli/audit.rs`) and the server's scheduler ([`live`]) only feed it snapshots.

pub mod live;
pub mod remedy;

use serde::Serialize;

use crate::api::{PodInfo, WORKLOAD_LABEL};
use crate::cluster::ClusterView;
use crate::config::Settings;
use crate::identity::dataplane::is_meshed;
use crate::inject::{spire_on, SwitchProblem};
use crate::validate::pod::{assess, AUDIT_IDENTITY};
use crate::verdict::PodFinding;

/// What is wrong with a pod. The snake_case names are stable: they are the JSON values and the
/// `finding` label of `kuma_identity_webhook_audit_findings`, so the label set stays this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// The winning path reads the workload and the pod has none.
    MissingWorkload,
    /// The winning path reads a label the pod's dataplane lacks.
    MissingLabel,
    /// The SPIFFE ID does not render or breaks the SPIFFE rules.
    InvalidSpiffeId,
    /// The pod sets `kuma.io/workload` itself.
    ManualWorkloadLabel,
    /// `k8s.kuma.io/spire-support` is not one of the accepted words.
    InvalidSpireSupport,
    /// The label and the annotation `k8s.kuma.io/spire-support` disagree.
    SpireSupportConflict,
    /// SPIRE is on for the pod and the socket volume is missing.
    SocketVolumeMissing,
    /// SPIRE is on for the pod and a container lacks the socket mount.
    SocketMountMissing,
}

impl Finding {
    pub const ALL: [Self; 8] = [
        Self::MissingWorkload,
        Self::MissingLabel,
        Self::InvalidSpiffeId,
        Self::ManualWorkloadLabel,
        Self::InvalidSpireSupport,
        Self::SpireSupportConflict,
        Self::SocketVolumeMissing,
        Self::SocketMountMissing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingWorkload => "missing_workload",
            Self::MissingLabel => "missing_label",
            Self::InvalidSpiffeId => "invalid_spiffe_id",
            Self::ManualWorkloadLabel => "manual_workload_label",
            Self::InvalidSpireSupport => "invalid_spire_support",
            Self::SpireSupportConflict => "spire_support_conflict",
            Self::SocketVolumeMissing => "socket_volume_missing",
            Self::SocketMountMissing => "socket_mount_missing",
        }
    }
}

/// One finding about one pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub namespace: String,
    pub pod: String,
    /// The winning MeshIdentity as `namespace/name`, when one selects the pod.
    #[serde(rename = "meshIdentity")]
    pub identity: Option<String>,
    pub finding: Finding,
    /// What exactly is wrong (the webhook's message where it has one).
    pub message: String,
    /// What to do about it.
    pub action: String,
}

/// Judges every meshed pod in `namespace` (every namespace when `None`); the rows are sorted by
/// namespace, pod and finding.
pub fn audit(view: &dyn ClusterView, settings: &Settings, namespace: Option<&str>) -> Vec<Row> {
    let mut rows: Vec<Row> = view
        .pods()
        .filter(|pod| namespace.is_none_or(|ns| pod.namespace == ns))
        .flat_map(|pod| judge(pod, view, settings))
        .collect();
    rows.sort_by(|a, b| (&a.namespace, &a.pod, a.finding).cmp(&(&b.namespace, &b.pod, b.finding)));
    rows
}

/// Every finding about one pod; none when it is outside the mesh.
pub fn judge(pod: &PodInfo, view: &dyn ClusterView, settings: &Settings) -> Vec<Row> {
    if !is_meshed(pod, view) {
        return Vec::new();
    }
    let mut found: Vec<(Finding, String)> = Vec::new();
    if let Some(value) = pod.labels.get(WORKLOAD_LABEL) {
        found.push((
            Finding::ManualWorkloadLabel,
            format!("the pod sets {WORKLOAD_LABEL}={value} itself; Kuma manages this label"),
        ));
    }
    let assessment = assess(pod, view, settings);
    let identity = assessment
        .as_ref()
        .and_then(|a| a.audit.get(AUDIT_IDENTITY).cloned());
    if let Some(finding) = assessment.and_then(|a| a.finding) {
        let missing_label = finding.cause.as_ref().and_then(|c| c.missing_label());
        let kind = match (finding.kind, missing_label) {
            (PodFinding::MissingWorkload, _) => Finding::MissingWorkload,
            (_, Some(_)) => Finding::MissingLabel,
            _ => Finding::InvalidSpiffeId,
        };
        found.push((kind, finding.message));
    }
    match spire_on(&pod.labels, &pod.annotations, &settings.inject) {
        Err(SwitchProblem::InvalidValue(message)) => {
            found.push((Finding::InvalidSpireSupport, message));
        }
        Err(SwitchProblem::Disagree(message)) => {
            found.push((Finding::SpireSupportConflict, message));
        }
        Ok(true) => {
            if let Some(gap) = &pod.socket {
                if gap.volume_missing {
                    let message = format!("volume {} is missing", crate::inject::VOLUME_NAME);
                    found.push((Finding::SocketVolumeMissing, message));
                }
                if !gap.unmounted.is_empty() {
                    let message = format!("not mounted in {}", gap.unmounted.join(", "));
                    found.push((Finding::SocketMountMissing, message));
                }
            }
        }
        Ok(false) => {}
    }
    found
        .into_iter()
        .map(|(finding, message)| Row {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            identity: identity.clone(),
            finding,
            action: remedy::action(finding, pod, settings),
            message,
        })
        .collect()
}

#[cfg(test)]
mod tests;
