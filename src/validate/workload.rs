//! The workload label requirement, seen from a MeshIdentity change: the existing pods this
//! identity would win must be able to get a SPIFFE ID from it. Pods outside the mesh (no sidecar
//! injection) are not its concern.

use std::collections::HashMap;

use crate::api::{MeshIdentity, PodInfo, WORKLOAD_LABEL};
use crate::config::{Enforcement, Settings};
use crate::dataplane::{is_meshed, DataplaneView, DERIVED_LABELS};
use crate::gotemplate::{Budget, Template};
use crate::render::{render_path_within, uses_workload_label, REVIEW_RENDER_STEPS};
use crate::select::Ranking;
use crate::spiffe;
use crate::state::ClusterView;

use super::templates::PATH_FIELD;
use super::Findings;

/// How many pods a message names before it only counts the rest.
const NAMED_PODS: usize = 5;

/// Pods that would break, split by why.
#[derive(Default)]
struct Breakage {
    /// Pods with no workload while the path uses the workload label.
    missing_workload: Vec<String>,
    /// Pods whose path fails to render or whose ID breaks the SPIFFE rules, with the reason.
    unrenderable: Vec<(String, String)>,
    /// The review's rendering budget ran out after this many pods: the rest are unchecked.
    budget_spent_after: Option<usize>,
}

/// Scans every pod of the identity's mesh that `candidate` would win once admitted.
pub fn check_selected_pods(
    candidate: &MeshIdentity,
    trust_domain: &str,
    path: &Template,
    view: &dyn ClusterView,
    settings: &Settings,
    findings: &mut Findings,
) {
    let mesh = candidate.mesh();
    let others = view
        .identities_in_mesh(mesh)
        .into_iter()
        .filter(|i| !(i.name() == candidate.name() && i.namespace() == candidate.namespace()));
    let ranking = Ranking::new(others.chain(std::iter::once(candidate)));
    let needs_workload = uses_workload_label(candidate.path_template());
    // Pods that read the same values render to the same path; rendering once per distinct set of
    // inputs keeps a scan over thousands of pods cheap.
    let mut rendered: HashMap<(&str, &str, Option<&str>), Result<(), String>> = HashMap::new();
    // A `label` call makes the output depend on more than the memo key; the source check also
    // covers calls whose key is not a literal.
    let reads_other_labels =
        !path.label_keys().is_empty() || candidate.path_template().contains("label");
    let mut breakage = Breakage::default();
    let mut budget = Budget::new(REVIEW_RENDER_STEPS);
    let mut checked = 0;
    for pod in pods_that_may_match(candidate, view) {
        if budget.remaining() == 0 {
            breakage.budget_spent_after = Some(checked);
            break;
        }
        // Pods Kuma never injects get no SPIFFE ID from any identity, so they cannot break; the
        // cheap check comes before building the pod's dataplane labels and ranking them.
        if !is_meshed(pod, view) {
            continue;
        }
        let dataplane = DataplaneView::new(pod, view, settings);
        let wins = ranking
            .winner(&dataplane)
            .is_some_and(|winner| std::ptr::eq(winner, candidate));
        if dataplane.mesh != mesh || !wins {
            continue;
        }
        if needs_workload && dataplane.workload.is_none() {
            breakage.missing_workload.push(dataplane.display_name());
            continue;
        }
        checked += 1;
        let outcome = if reads_other_labels {
            render_and_check(path, trust_domain, &dataplane, &mut budget)
        } else {
            let key = (
                pod.namespace.as_str(),
                pod.service_account.as_str(),
                dataplane.workload,
            );
            rendered
                .entry(key)
                .or_insert_with(|| render_and_check(path, trust_domain, &dataplane, &mut budget))
                .clone()
        };
        if let Err(reason) = outcome {
            breakage
                .unrenderable
                .push((dataplane.display_name(), reason));
        }
    }
    report(&breakage, settings, findings);
}

/// The pods worth looking at: those carrying one of the selector's own pod labels when it has
/// one (through the snapshot's label index), else every pod.
fn pods_that_may_match<'v>(
    candidate: &MeshIdentity,
    view: &'v dyn ClusterView,
) -> Box<dyn Iterator<Item = &'v PodInfo> + 'v> {
    let narrowing = candidate
        .dataplane_match_labels()
        .into_iter()
        .flatten()
        .find(|(key, _)| !DERIVED_LABELS.contains(&key.as_str()));
    match narrowing {
        Some((key, value)) => view.pods_labelled(key, value),
        None => view.pods(),
    }
}

/// Renders the path for one dataplane and checks the whole SPIFFE ID.
fn render_and_check(
    path: &Template,
    trust_domain: &str,
    dataplane: &DataplaneView,
    budget: &mut Budget,
) -> Result<(), String> {
    let rendered = render_path_within(path, dataplane, budget)?;
    spiffe::spiffe_id(trust_domain, &rendered)
        .map(|_| ())
        .map_err(|e| format!("\"spiffe://{trust_domain}{rendered}\": {e}"))
}

fn report(breakage: &Breakage, settings: &Settings, findings: &mut Findings) {
    if let Some(checked) = breakage.budget_spent_after {
        let message = format!(
            "rendering the path for the pods this identity selects takes more than {REVIEW_RENDER_STEPS} template steps (spent after {checked} pod(s)); simplify the template"
        );
        match settings.enforcement {
            Enforcement::Deny => findings.invalid(PATH_FIELD, message),
            Enforcement::Warn => findings.warn(format!(
                "path rendering stopped after {checked} pod(s): over {REVIEW_RENDER_STEPS} template steps"
            )),
        }
    }
    if !breakage.missing_workload.is_empty() {
        let pods = &breakage.missing_workload;
        let message = format!(
            "{} selected pod(s) have no '{WORKLOAD_LABEL}' while the path uses it: {}; {}",
            pods.len(),
            name_some(pods.iter().map(String::as_str)),
            how_to_give_a_workload(settings)
        );
        match settings.enforcement {
            Enforcement::Deny => findings.invalid(PATH_FIELD, message),
            Enforcement::Warn => findings.warn(format!(
                "{} selected pod(s) have no workload (e.g. {}) and will get no SPIFFE ID",
                pods.len(),
                pods[0]
            )),
        }
    }
    if !breakage.unrenderable.is_empty() {
        let pods = &breakage.unrenderable;
        let named = pods
            .iter()
            .take(NAMED_PODS)
            .map(|(pod, reason)| format!("{pod} ({reason})"))
            .collect::<Vec<_>>()
            .join(", ");
        let more = pods.len().saturating_sub(NAMED_PODS);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let message = format!(
            "{} selected pod(s) would get no valid SPIFFE ID: {named}{more}",
            pods.len()
        );
        match settings.enforcement {
            Enforcement::Deny => findings.invalid(PATH_FIELD, message),
            Enforcement::Warn => findings.warn(format!(
                "{} selected pod(s) would get no valid SPIFFE ID, e.g. {} ({})",
                pods.len(),
                pods[0].0,
                pods[0].1
            )),
        }
    }
}

/// Up to [`NAMED_PODS`] names, then how many more.
pub fn name_some<'a>(names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let total = names.len();
    let shown: Vec<&str> = names.take(NAMED_PODS).collect();
    let mut text = shown.join(", ");
    if total > NAMED_PODS {
        text.push_str(&format!(" and {} more", total - NAMED_PODS));
    }
    text
}

/// Advice that fits the configuration: which labels to set, or how to configure them.
pub fn how_to_give_a_workload(settings: &Settings) -> String {
    if settings.workload_labels.is_empty() {
        "no workload labels are configured: set KUMA_RUNTIME_KUBERNETES_WORKLOAD_LABELS (e.g. app.kubernetes.io/name) and label the pods, or change the path".to_owned()
    } else {
        format!(
            "give each pod one of the workload labels [{}] (KUMA_RUNTIME_KUBERNETES_WORKLOAD_LABELS), or change the path",
            settings.workload_labels.join(", ")
        )
    }
}
