//! The audit: which of the pods already in the cluster have a broken identity. Every meshed pod
//! is judged by the pod webhook's own assessment ([`crate::validate::pod::assess`]) and the
//! injector's own switch and plan ([`crate::inject::spire_on`], [`crate::inject::socket_gap`]),
//! so the audit, `check`, `explain` and the webhooks cannot disagree. Pure over a
//! [`ClusterView`]; the command (`cli/audit.rs`) and the server's scheduler ([`live`]) only feed
//! it snapshots.

pub mod live;
pub mod remedy;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::api::{PodInfo, WORKLOAD_LABEL};
use crate::cluster::ClusterView;
use crate::config::Settings;
use crate::identity::dataplane::is_meshed;
use crate::inject::{spire_on, SwitchProblem, VOLUME_NAME};
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

/// Pod groups the audit remembers the pod webhook's assessment for. A group is the pods that
/// share namespace, service account, labels and annotations, which is all the assessment reads
/// ([`ClusterView::pods_grouped`]); the pods of one ReplicaSet make one, so a 50 000-pod cluster
/// has a few thousand. The bound keeps a cluster of all-distinct pods from holding an assessment
/// per pod (groups numbered beyond it are simply assessed again for each pod).
const MEMO_ENTRIES: usize = 10_000;

/// The winning identity and the pod webhook's finding, if any.
#[derive(Clone)]
struct Assessed {
    identity: Option<String>,
    finding: Option<(Finding, String)>,
}

/// Judges every meshed pod in `namespace` (every namespace when `None`); the rows are sorted by
/// namespace, pod and finding.
pub fn audit(view: &dyn ClusterView, settings: &Settings, namespace: Option<&str>) -> Vec<Row> {
    let mut rows = Vec::new();
    walk(view, settings, namespace, |pod, identity, found| {
        rows.extend(to_rows(pod, settings, identity, found));
    });
    rows.sort_by(|a, b| (&a.namespace, &a.pod, a.finding).cmp(&(&b.namespace, &b.pod, b.finding)));
    rows
}

/// How many pods have each finding, every finding named (zeros included); what the server
/// exports. No row is kept, so the memory does not grow with the number of findings.
pub fn count(view: &dyn ClusterView, settings: &Settings) -> BTreeMap<Finding, usize> {
    let mut counts: BTreeMap<Finding, usize> = Finding::ALL.iter().map(|f| (*f, 0)).collect();
    walk(view, settings, None, |_, _, found| {
        for (finding, _) in found {
            *counts.entry(finding).or_default() += 1;
        }
    });
    counts
}

/// Calls `visit` with each meshed pod of `namespace` (all when `None`), its winning identity and
/// its findings, remembering the assessment of each pod group (pods that share what it reads).
fn walk<'v>(
    view: &'v dyn ClusterView,
    settings: &Settings,
    namespace: Option<&str>,
    mut visit: impl FnMut(&'v PodInfo, Option<String>, Vec<(Finding, String)>),
) {
    let mut memo: Vec<Option<Assessed>> = vec![None; view.pod_group_bound().min(MEMO_ENTRIES)];
    for (pod, group) in view.pods_grouped() {
        if namespace.is_some_and(|ns| &*pod.namespace != ns) || !is_meshed(pod, view) {
            continue;
        }
        let assessed = match memo.get_mut(group) {
            Some(Some(assessed)) => assessed.clone(),
            Some(slot) => slot.insert(assessed(pod, view, settings)).clone(),
            None => assessed(pod, view, settings),
        };
        let found = findings(pod, settings, assessed.finding);
        visit(pod, assessed.identity, found);
    }
}

/// Every finding about one pod; none when it is outside the mesh.
pub fn judge(pod: &PodInfo, view: &dyn ClusterView, settings: &Settings) -> Vec<Row> {
    if !is_meshed(pod, view) {
        return Vec::new();
    }
    let Assessed { identity, finding } = assessed(pod, view, settings);
    let found = findings(pod, settings, finding);
    to_rows(pod, settings, identity, found)
}

/// The pod webhook's assessment of a meshed pod, as audit findings.
fn assessed(pod: &PodInfo, view: &dyn ClusterView, settings: &Settings) -> Assessed {
    let assessment = assess(pod, view, settings);
    let identity = assessment
        .as_ref()
        .and_then(|a| a.audit.get(AUDIT_IDENTITY).cloned());
    let finding = assessment.and_then(|a| a.finding).map(|finding| {
        let missing_label = finding.cause.as_ref().and_then(|c| c.missing_label());
        let kind = match (finding.kind, missing_label) {
            (PodFinding::MissingWorkload, _) => Finding::MissingWorkload,
            (_, Some(_)) => Finding::MissingLabel,
            _ => Finding::InvalidSpiffeId,
        };
        (kind, finding.message)
    });
    Assessed { identity, finding }
}

/// The findings of a meshed pod with their messages: the assessment's, and what the pod itself
/// says (a hand-set workload label, the SPIRE switch, the socket it lacks).
fn findings(
    pod: &PodInfo,
    settings: &Settings,
    assessed: Option<(Finding, String)>,
) -> Vec<(Finding, String)> {
    let mut found: Vec<(Finding, String)> = Vec::new();
    if let Some(value) = pod.labels.get(WORKLOAD_LABEL) {
        found.push((
            Finding::ManualWorkloadLabel,
            format!("the pod sets {WORKLOAD_LABEL}={value} itself; Kuma manages this label"),
        ));
    }
    found.extend(assessed);
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
                    let message = format!("volume {VOLUME_NAME} is missing");
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
}

fn to_rows(
    pod: &PodInfo,
    settings: &Settings,
    identity: Option<String>,
    found: Vec<(Finding, String)>,
) -> Vec<Row> {
    found
        .into_iter()
        .map(|(finding, message)| Row {
            namespace: pod.namespace.to_string(),
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
