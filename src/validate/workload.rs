//! The workload label requirement, seen from a MeshIdentity change: the existing pods this
//! identity would win must be able to get a SPIFFE ID from it. Pods outside the mesh (no sidecar
//! injection) are not its concern.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

use crate::api::{MeshIdentity, PodInfo, WORKLOAD_LABEL};
use crate::cluster::ClusterView;
use crate::config::{Enforcement, Settings};
use crate::gotemplate::{Budget, Template};
use crate::identity::dataplane::{is_meshed, DataplaneView, DERIVED_LABELS};
use crate::identity::render::{
    render_path_within, uses_workload_label, SpiffeIdError, LABEL_FUNC_NAME, REVIEW_RENDER_STEPS,
};
use crate::identity::select::Contest;
use crate::identity::spiffe;

use super::templates::{CheckedTemplates, PATH_FIELD};
use crate::verdict::Findings;

/// How many pods a message names before it only counts the rest.
const NAMED_PODS: usize = 5;

/// Pods that would break, split by why.
#[derive(Default)]
struct Breakage {
    /// Pods with no workload while the path uses the workload label.
    missing_workload: Vec<String>,
    /// Pods whose path fails to render or whose ID breaks the SPIFFE rules, with the reason (the
    /// rendered value included, so a changed ID is a new finding).
    unrenderable: Vec<(String, String)>,
    /// The review's rendering budget ran out after this many pods: the rest are unchecked.
    budget_spent_after: Option<usize>,
}

impl Breakage {
    fn is_empty(&self) -> bool {
        self.missing_workload.is_empty()
            && self.unrenderable.is_empty()
            && self.budget_spent_after.is_none()
    }

    /// Splits these findings into those `before` did not have and those it had already.
    fn split_by(self, before: &Breakage) -> (Breakage, Breakage) {
        let had_no_workload: HashSet<&str> =
            before.missing_workload.iter().map(String::as_str).collect();
        let had_no_id: HashSet<(&str, &str)> = before
            .unrenderable
            .iter()
            .map(|(pod, reason)| (pod.as_str(), reason.as_str()))
            .collect();
        let (kept_missing, new_missing) = self
            .missing_workload
            .into_iter()
            .partition(|pod| had_no_workload.contains(pod.as_str()));
        let (kept_unrenderable, new_unrenderable) = self
            .unrenderable
            .into_iter()
            .partition(|(pod, reason)| had_no_id.contains(&(pod.as_str(), reason.as_str())));
        // A scan the budget cut short is the same finding when the stored object's was too.
        let (kept_budget, new_budget) = match before.budget_spent_after {
            Some(_) => (self.budget_spent_after, None),
            None => (None, self.budget_spent_after),
        };
        let introduced = Breakage {
            missing_workload: new_missing,
            unrenderable: new_unrenderable,
            budget_spent_after: new_budget,
        };
        let kept = Breakage {
            missing_workload: kept_missing,
            unrenderable: kept_unrenderable,
            budget_spent_after: kept_budget,
        };
        (introduced, kept)
    }
}

/// The pod rule of a MeshIdentity CREATE or UPDATE: every pod of the identity's mesh that
/// `candidate` would win once admitted must get a valid SPIFFE ID from it. On UPDATE (`before`
/// is the stored object with its checked templates) the rule ratchets: a pod finding the old
/// object already produced is only a warning, so a status write or any change that breaks
/// nothing new is never refused because of pods the identity already served.
pub fn check_selected_pods(
    candidate: &MeshIdentity,
    before: Option<(&MeshIdentity, &CheckedTemplates)>,
    trust_domain: &str,
    path: &Template,
    view: &dyn ClusterView,
    settings: &Settings,
    findings: &mut Findings,
) {
    let breakage = scan(candidate, trust_domain, path, view, settings);
    let (introduced, kept) = match before {
        None => (breakage, Breakage::default()),
        // Nothing the scan reads changed (a status write, an annotation): every finding is old.
        Some((before, _)) if judged_alike(before, candidate) => (Breakage::default(), breakage),
        // Under another path every finding is new: the path is what the user changed.
        Some((before, _))
            if breakage.is_empty() || before.path_template() != candidate.path_template() =>
        {
            (breakage, Breakage::default())
        }
        Some((before, templates)) => {
            breakage.split_by(&scan_before(before, templates, view, settings))
        }
    };
    report(&introduced, settings, findings);
    report_kept(&kept, findings);
}

/// Whether the scan would judge both objects the same way: it reads their names, labels,
/// selectors and templates, nothing else.
fn judged_alike(a: &MeshIdentity, b: &MeshIdentity) -> bool {
    a.name() == b.name()
        && a.namespace() == b.namespace()
        && a.labels() == b.labels()
        && a.spec.selector == b.spec.selector
        && a.spec.spiffe_id == b.spec.spiffe_id
}

/// What the stored object produces against today's pods; nothing when its own templates are
/// unusable (then every finding of the update is new).
fn scan_before(
    before: &MeshIdentity,
    templates: &CheckedTemplates,
    view: &dyn ClusterView,
    settings: &Settings,
) -> Breakage {
    match (&templates.trust_domain, &templates.path) {
        (Some(trust_domain), Some(path)) => scan(before, trust_domain, path, view, settings),
        _ => Breakage::default(),
    }
}

/// Scans every pod of the identity's mesh that `candidate` would win once admitted.
fn scan(
    candidate: &MeshIdentity,
    trust_domain: &str,
    path: &Template,
    view: &dyn ClusterView,
    settings: &Settings,
) -> Breakage {
    let mesh = candidate.mesh();
    let others = view
        .identities_in_mesh(mesh)
        .into_iter()
        .filter(|i| !(i.name() == candidate.name() && i.namespace() == candidate.namespace()));
    let contest = Contest::new(candidate, others);
    let needs_workload = uses_workload_label(candidate.path_template());
    // Pods that read the same values render to the same path; rendering once per distinct set of
    // inputs keeps a scan over thousands of pods cheap.
    let mut rendered: HashMap<(&str, &str, Option<&str>), Result<(), SpiffeIdError>> =
        HashMap::new();
    // A `label` call makes the output depend on more than the memo key, whatever its key.
    let reads_other_labels = path.analysis().may_call(LABEL_FUNC_NAME);
    let mut breakage = Breakage::default();
    let mut budget = Budget::new(REVIEW_RENDER_STEPS);
    let mut checked = 0;
    // Pods of one group differ only by name, which nothing below reads but to name them: their
    // standing, and without `label` calls their rendered ID, is worked out once per group. Kept
    // by the groups met rather than indexed by every group of the cluster, so a review that
    // selects a few pods costs no more in a large cluster.
    let mut standing: FxHashMap<usize, Standing> = FxHashMap::default();
    let mut group_outcome: FxHashMap<usize, Result<(), SpiffeIdError>> = FxHashMap::default();
    for (pod, group) in pods_that_may_match(candidate, view) {
        if budget.remaining() == 0 {
            breakage.budget_spent_after = Some(checked);
            break;
        }
        let standing_now = *standing.entry(group).or_insert_with(|| {
            standing_of(pod, candidate, &contest, needs_workload, view, settings)
        });
        match standing_now {
            Standing::Unaffected => continue,
            Standing::NoWorkload => {
                breakage.missing_workload.push(pod.display_name());
                continue;
            }
            Standing::Renders => {}
        }
        checked += 1;
        let outcome = if reads_other_labels {
            let dataplane = DataplaneView::new(pod, view, settings);
            render_and_check(path, trust_domain, &dataplane, &mut budget)
        } else if let Some(outcome) = group_outcome.get(&group) {
            outcome.clone()
        } else {
            let dataplane = DataplaneView::new(pod, view, settings);
            let key = (
                pod.namespace.as_ref(),
                pod.service_account.as_ref(),
                dataplane.workload,
            );
            let outcome = rendered
                .entry(key)
                .or_insert_with(|| render_and_check(path, trust_domain, &dataplane, &mut budget))
                .clone();
            group_outcome.insert(group, outcome.clone());
            outcome
        };
        if let Err(reason) = outcome {
            breakage
                .unrenderable
                .push((pod.display_name(), reason.to_string()));
        }
    }
    breakage
}

/// Where a pod stands with `candidate`, before any rendering: the same for its whole group.
#[derive(Debug, Clone, Copy)]
enum Standing {
    /// Outside the mesh, in another mesh, or won by another identity.
    Unaffected,
    /// Won by `candidate`, without the workload its path needs.
    NoWorkload,
    /// Won by `candidate`: its SPIFFE ID must render.
    Renders,
}

fn standing_of(
    pod: &PodInfo,
    candidate: &MeshIdentity,
    contest: &Contest,
    needs_workload: bool,
    view: &dyn ClusterView,
    settings: &Settings,
) -> Standing {
    // Pods Kuma never injects get no SPIFFE ID from any identity, so they cannot break; the
    // cheap check comes before building the pod's dataplane labels and ranking them.
    if !is_meshed(pod, view) {
        return Standing::Unaffected;
    }
    let dataplane = DataplaneView::new(pod, view, settings);
    if dataplane.mesh != candidate.mesh() || !contest.wins(&dataplane) {
        Standing::Unaffected
    } else if needs_workload && dataplane.workload.is_none() {
        Standing::NoWorkload
    } else {
        Standing::Renders
    }
}

/// The pods worth looking at: those carrying one of the selector's own pod labels when it has
/// one (through the snapshot's label index), else every pod.
fn pods_that_may_match<'v>(
    candidate: &MeshIdentity,
    view: &'v dyn ClusterView,
) -> Box<dyn Iterator<Item = (&'v PodInfo, usize)> + 'v> {
    let narrowing = candidate
        .dataplane_match_labels()
        .into_iter()
        .flatten()
        .find(|(key, _)| !DERIVED_LABELS.contains(&key.as_str()));
    match narrowing {
        Some((key, value)) => view.pods_labelled_grouped(key, value),
        None => view.pods_grouped(),
    }
}

/// Renders the path for one dataplane and checks the whole SPIFFE ID.
fn render_and_check(
    path: &Template,
    trust_domain: &str,
    dataplane: &DataplaneView,
    budget: &mut Budget,
) -> Result<(), SpiffeIdError> {
    let rendered =
        render_path_within(path, trust_domain, dataplane, budget).map_err(SpiffeIdError::Path)?;
    spiffe::spiffe_id(trust_domain, &rendered)
        .map(|_| ())
        .map_err(|e| SpiffeIdError::Invalid {
            value: format!("spiffe://{trust_domain}{rendered}"),
            problem: e.to_string(),
        })
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

/// Findings an UPDATE leaves as they were: said, not refused.
fn report_kept(kept: &Breakage, findings: &mut Findings) {
    if let Some(checked) = kept.budget_spent_after {
        findings.warn(format!(
            "update allowed: path rendering already stopped after {checked} pod(s) before it: over {REVIEW_RENDER_STEPS} template steps"
        ));
    }
    if let Some(pod) = kept.missing_workload.first() {
        findings.warn(format!(
            "update allowed: {} selected pod(s) already had no workload before it (e.g. {pod})",
            kept.missing_workload.len()
        ));
    }
    if let Some((pod, reason)) = kept.unrenderable.first() {
        findings.warn(format!(
            "update allowed: {} selected pod(s) already had no valid SPIFFE ID before it, e.g. {pod} ({reason})",
            kept.unrenderable.len()
        ));
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
