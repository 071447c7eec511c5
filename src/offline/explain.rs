//! Why a pod gets the identity it gets: every step of selection and rendering, for people
//! (`explain`) and tools (`explain -o json`).

use serde::Serialize;
use serde_json::Value;

use crate::api::{Labels, PodInfo, MESH_LABEL};
use crate::cluster::ClusterView;
use crate::config::Settings;
use crate::identity::dataplane::{is_meshed, DataplaneView};
use crate::identity::render::{
    parse_template, render_trust_domain, spiffe_id_for, uses_workload_label,
};
use crate::identity::select::Ranking;
use crate::inject::{self, InjectDecision};
use crate::validate::pod;
use crate::verdict::{Operation, Request};

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub pod: String,
    pub mesh: String,
    /// Where the mesh came from: `pod label`, `namespace label` or `default`.
    pub mesh_source: &'static str,
    /// Whether Kuma injects the pod; one it does not gets no SPIFFE ID and is not judged.
    pub meshed: bool,
    pub workload: Option<String>,
    pub dataplane_labels: Labels,
    /// Matching identities, winner first.
    pub candidates: Vec<Candidate>,
    pub winner: Option<String>,
    /// Why the winner won, in words.
    pub why: Option<String>,
    pub trust_domain: Option<Result<String, String>>,
    pub spiffe_id: Option<Result<String, String>>,
    pub workload_label_required: bool,
    /// The pod webhook's verdict: `None` when admitted, else its message.
    pub admission: Result<Vec<String>, String>,
    /// The socket injection decision in words.
    pub spire_socket: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub identity: String,
    pub score: usize,
    pub precedence_key: String,
}

/// Explains `pod_json` (a Pod, or a pod template with metadata and spec).
pub fn explain(
    pod_json: &Value,
    namespace: Option<&str>,
    view: &dyn ClusterView,
    settings: &Settings,
) -> Explanation {
    let pod = PodInfo::from_json(pod_json, namespace);
    let dataplane = DataplaneView::new(&pod, view, settings);
    let mesh_source = if pod.labels.get(MESH_LABEL).is_some_and(|m| !m.is_empty()) {
        "pod label"
    } else if view
        .namespace_labels(&pod.namespace)
        .and_then(|l| l.get(MESH_LABEL))
        .is_some_and(|m| !m.is_empty())
    {
        "namespace label"
    } else {
        "default"
    };
    let ranking = Ranking::new(view.identities_in_mesh(dataplane.mesh));
    let candidates: Vec<Candidate> = ranking
        .matching(&dataplane)
        .map(|r| Candidate {
            identity: format!("{}/{}", r.identity.namespace(), r.identity.name()),
            score: r.score(),
            precedence_key: r.identity.precedence_key(),
        })
        .collect();
    let winner = ranking.winner(&dataplane);
    let why = winner.map(|w| match candidates.get(1) {
        None => "the only MeshIdentity that selects this pod".to_owned(),
        Some(runner_up) if runner_up.score < candidates[0].score => format!(
            "most matchLabels ({} against {})",
            candidates[0].score, runner_up.score
        ),
        Some(runner_up) => format!(
            "tie on {} matchLabels, won by the smaller name.namespace ({:?} < {:?})",
            candidates[0].score,
            w.precedence_key(),
            runner_up.precedence_key
        ),
    });
    let trust_domain = winner.map(|w| match parse_template(w.trust_domain_template()) {
        Ok(template) => render_trust_domain(&template, w, settings).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    });
    let spiffe_id =
        winner.map(|w| spiffe_id_for(w, &dataplane, settings).map_err(|e| e.to_string()));
    let request = Request {
        operation: Operation::Create,
        namespace: Some(&pod.namespace),
        username: "",
        object: Some(pod_json),
        old_object: None,
    };
    let verdict = pod::review(&request, view, settings);
    let admission = match &verdict.denial {
        None => Ok(verdict.warnings.clone()),
        Some(denial) => Err(denial.message.clone()),
    };
    Explanation {
        pod: pod.display_name(),
        mesh: dataplane.mesh.to_owned(),
        mesh_source,
        meshed: is_meshed(&pod, view),
        workload: dataplane.workload.map(str::to_owned),
        dataplane_labels: dataplane.labels(),
        candidates,
        winner: winner.map(|w| format!("{}/{}", w.namespace(), w.name())),
        why,
        trust_domain,
        spiffe_id,
        workload_label_required: winner.is_some_and(|w| uses_workload_label(w.path_template())),
        admission,
        spire_socket: describe_injection(&inject::decide(pod_json, &settings.inject)),
    }
}

fn describe_injection(decision: &InjectDecision) -> String {
    match decision {
        InjectDecision::Inject { targets, .. } => format!("injected into {}", targets.join(", ")),
        InjectDecision::Skip { reason, .. } => format!("skipped: {}", reason.as_str()),
        InjectDecision::Deny { message, .. } => format!("denied: {message}"),
    }
}

impl Explanation {
    /// The human-readable form.
    pub fn to_text(&self) -> String {
        let mut out = format!("pod {}\n", self.pod);
        out += &format!("  mesh:      {} (from {})\n", self.mesh, self.mesh_source);
        if !self.meshed {
            out += "  in mesh:   no: Kuma does not inject this pod, so it gets no SPIFFE ID and\n";
            out +=
                "             the pod webhook does not judge it (what follows is hypothetical)\n";
        }
        out += &format!(
            "  workload:  {}\n",
            self.workload.as_deref().unwrap_or("(none)")
        );
        out += "  dataplane labels:\n";
        for (key, value) in &self.dataplane_labels {
            out += &format!("    {key}={value}\n");
        }
        if self.candidates.is_empty() {
            out += "  MeshIdentities: none selects this pod, so it gets no identity\n";
        } else {
            out += "  MeshIdentities selecting it (winner first):\n";
            for candidate in &self.candidates {
                out += &format!(
                    "    {} (matchLabels: {})\n",
                    candidate.identity, candidate.score
                );
            }
        }
        if let (Some(winner), Some(why)) = (&self.winner, &self.why) {
            out += &format!("  winner:    {winner}: {why}\n");
        }
        let show = |r: &Option<Result<String, String>>| match r {
            Some(Ok(v)) => v.clone(),
            Some(Err(e)) => format!("error: {e}"),
            None => "-".to_owned(),
        };
        out += &format!("  trust domain: {}\n", show(&self.trust_domain));
        out += &format!("  SPIFFE ID:    {}\n", show(&self.spiffe_id));
        out += &format!(
            "  workload label: {}\n",
            match (self.workload_label_required, &self.workload) {
                (false, _) => "not required by the winning path",
                (true, Some(_)) => "required by the winning path, present",
                (true, None) => "required by the winning path, MISSING",
            }
        );
        out += &format!(
            "  admission: {}\n",
            match &self.admission {
                Ok(warnings) if warnings.is_empty() => "allowed".to_owned(),
                Ok(warnings) => format!("allowed with warnings: {}", warnings.join("; ")),
                Err(message) => format!("denied: {message}"),
            }
        );
        out += &format!("  SPIRE agent socket: {}\n", self.spire_socket);
        out
    }
}
