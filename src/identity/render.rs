//! Rendering SPIFFE IDs from a MeshIdentity's templates.

use crate::api::{
    Labels, MeshIdentity, ENV_LABEL, MESH_LABEL, NAMESPACE_LABEL, ORIGIN_LABEL, ZONE_LABEL,
};
use crate::config::Settings;
use crate::gotemplate::{self, Budget, Data, Template};
use crate::identity::dataplane::{DataplaneView, ENV_KUBERNETES};
use crate::identity::spiffe;

/// The user function upstream registers for both templates: a dataplane label by its key.
pub const LABEL_FUNC_NAME: &str = "label";
/// The user functions of both templates, as the parser takes them.
pub const LABEL_FUNC: &[&str] = &[LABEL_FUNC_NAME];
/// Fields the trust domain template can read.
pub const TRUST_DOMAIN_FIELDS: &[&str] = &["Mesh", "Zone"];
/// Fields the path template can read, in the order of the struct upstream renders it with (Go
/// prints them in that order for `{{ . }}`). Upstream renders `spiffe://{{ .TrustDomain }}` and
/// the path as one template, so the rendered trust domain is there too.
pub const PATH_FIELDS: &[&str] = &["TrustDomain", "Namespace", "ServiceAccount", "Workload"];

/// The label Kuma's defaulting webhook sets to the object's name.
const DISPLAY_NAME_LABEL: &str = "kuma.io/display-name";
/// The origin Kuma's defaulting webhook gives objects created in a zone.
const ORIGIN_ZONE: &str = "zone";

/// A template that does not parse, in upstream's words: `couldn't parse template: <Go's error>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("couldn't parse template: {0}")]
pub struct TemplateError(#[from] pub gotemplate::ParseError);

/// Why an identity gives a dataplane no valid SPIFFE ID; each message says which step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpiffeIdError {
    #[error("trust domain: {0}")]
    TrustDomainTemplate(TemplateError),
    #[error("trust domain: {0}")]
    TrustDomain(gotemplate::ExecError),
    #[error("path: {0}")]
    PathTemplate(TemplateError),
    /// Rendering the path failed (Go's message already names the template).
    #[error("{0}")]
    Path(gotemplate::ExecError),
    /// The rendered ID breaks the SPIFFE rules: the value, and go-spiffe's words.
    #[error("\"{value}\": {problem}")]
    Invalid { value: String, problem: String },
}

/// How Go ends the error of a `label` call for a label the dataplane lacks (see
/// `gotemplate::funcs`): `… error calling label: label <key> not found`.
const LABEL_NOT_FOUND: (&str, &str) = ("error calling label: label ", " not found");

impl SpiffeIdError {
    /// The dataplane label the path template reads and the pod lacks, when that is why the path
    /// does not render.
    pub fn missing_label(&self) -> Option<&str> {
        let Self::Path(gotemplate::ExecError(message)) = self else {
            return None;
        };
        let (_, rest) = message.rsplit_once(LABEL_NOT_FOUND.0)?;
        rest.strip_suffix(LABEL_NOT_FOUND.1)
    }
}

/// Parses a SPIFFE ID template the way upstream does.
pub fn parse_template(source: &str) -> Result<Template, TemplateError> {
    Ok(gotemplate::parse(source, LABEL_FUNC)?)
}

/// The labels a MeshIdentity carries once Kuma's defaulting webhook has run, which it always has
/// before any validating webhook (mutating webhooks come first) and before Kuma renders it: its
/// own labels, with the mesh, zone, environment, origin and namespace added where absent, and
/// its name as the display name.
pub fn defaulted_labels(identity: &MeshIdentity, settings: &Settings) -> Labels {
    let mut labels = identity.labels().clone();
    let namespace = match identity.namespace() {
        "" => settings.system_namespace.as_str(),
        namespace => namespace,
    };
    let defaults = [
        (MESH_LABEL, identity.mesh()),
        (ZONE_LABEL, settings.zone.as_str()),
        (ENV_LABEL, ENV_KUBERNETES),
        (ORIGIN_LABEL, ORIGIN_ZONE),
        (NAMESPACE_LABEL, namespace),
    ];
    for (key, value) in defaults {
        if !labels.contains_key(key) {
            labels.insert(key.to_owned(), value.to_owned());
        }
    }
    labels.insert(DISPLAY_NAME_LABEL.to_owned(), identity.name().to_owned());
    labels
}

/// Renders the trust domain with the identity's own data: its mesh, its zone (label, else the
/// configured zone) and `label` reading its labels as Kuma's defaulting webhook leaves them.
pub fn render_trust_domain(
    template: &Template,
    identity: &MeshIdentity,
    settings: &Settings,
) -> Result<String, gotemplate::ExecError> {
    // Only `label` calls read the labels: a template that never calls it is spared building them.
    let labels = if template.analysis().may_call(LABEL_FUNC_NAME) {
        defaulted_labels(identity, settings)
    } else {
        Labels::new()
    };
    let fields = [
        ("Mesh", identity.mesh()),
        ("Zone", zone_of(identity, settings)),
    ];
    template.execute(&Data {
        fields: &fields,
        labels: &labels,
    })
}

/// The zone the trust domain renders with: the identity's `kuma.io/zone` label as defaulting
/// leaves it (its own, else the configured zone), where an empty label counts as absent, as
/// upstream treats it.
fn zone_of<'a>(identity: &'a MeshIdentity, settings: &'a Settings) -> &'a str {
    identity
        .labels()
        .get(ZONE_LABEL)
        .filter(|zone| !zone.is_empty())
        .map_or(settings.zone.as_str(), String::as_str)
}

/// Evaluation steps one admission review may spend rendering a path for the pods it checks.
/// The default path takes about a dozen steps, so this renders distinct paths for well over a
/// hundred thousand pods, while a hostile template (each render may take up to
/// [`gotemplate::MAX_STEPS`]) stops within a fraction of a second.
pub const REVIEW_RENDER_STEPS: usize = 2_000_000;

/// Renders the path with the rendered trust domain, the dataplane's data and `label` reading its
/// dataplane labels.
pub fn render_path(
    template: &Template,
    trust_domain: &str,
    dataplane: &DataplaneView,
) -> Result<String, gotemplate::ExecError> {
    render_path_within(
        template,
        trust_domain,
        dataplane,
        &mut Budget::new(gotemplate::MAX_STEPS),
    )
}

/// [`render_path`], taking its steps from a budget shared by the renders of one review.
pub fn render_path_within(
    template: &Template,
    trust_domain: &str,
    dataplane: &DataplaneView,
    budget: &mut Budget,
) -> Result<String, gotemplate::ExecError> {
    let fields = [
        ("TrustDomain", trust_domain),
        ("Namespace", dataplane.pod.namespace.as_ref()),
        ("ServiceAccount", dataplane.pod.service_account.as_ref()),
        ("Workload", dataplane.workload.unwrap_or_default()),
    ];
    template.execute_within(
        &Data {
            fields: &fields,
            labels: &dataplane.labels(),
        },
        budget,
    )
}

/// A SPIFFE ID as the templates rendered it, and what breaks the SPIFFE rules in it, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedId {
    /// `spiffe://<trust domain><path>`, exactly as rendered.
    pub value: String,
    /// go-spiffe's message when `value` is not a valid SPIFFE ID.
    pub problem: Option<String>,
}

impl RenderedId {
    /// The error a broken ID is, quoting its value.
    pub fn error(&self) -> Option<SpiffeIdError> {
        let problem = self.problem.clone()?;
        Some(SpiffeIdError::Invalid {
            value: self.value.clone(),
            problem,
        })
    }
}

/// Parses and renders both templates of `identity` for `dataplane`; `Err` says which template
/// failed to parse or render. The SPIFFE rules are checked but kept apart from the value, so
/// callers can show the reason and the value separately.
pub fn render_spiffe_id(
    identity: &MeshIdentity,
    dataplane: &DataplaneView,
    settings: &Settings,
) -> Result<RenderedId, SpiffeIdError> {
    render_spiffe_id_with(
        identity,
        &ParsedTemplates::of(identity),
        dataplane,
        settings,
    )
}

/// Both templates of a MeshIdentity as parsed, kept beside a stored identity so that deciding
/// about a pod does not parse them again.
#[derive(Debug, Clone)]
pub struct ParsedTemplates {
    pub trust_domain: Result<Template, TemplateError>,
    pub path: Result<Template, TemplateError>,
}

impl ParsedTemplates {
    pub fn of(identity: &MeshIdentity) -> Self {
        Self {
            trust_domain: parse_template(identity.trust_domain_template()),
            path: parse_template(identity.path_template()),
        }
    }
}

/// [`render_spiffe_id`] with `identity`'s templates parsed already.
pub fn render_spiffe_id_with(
    identity: &MeshIdentity,
    templates: &ParsedTemplates,
    dataplane: &DataplaneView,
    settings: &Settings,
) -> Result<RenderedId, SpiffeIdError> {
    let trust_domain_template = templates
        .trust_domain
        .as_ref()
        .map_err(|e| SpiffeIdError::TrustDomainTemplate(e.clone()))?;
    let path_template = templates
        .path
        .as_ref()
        .map_err(|e| SpiffeIdError::PathTemplate(e.clone()))?;
    let trust_domain = render_trust_domain(trust_domain_template, identity, settings)
        .map_err(SpiffeIdError::TrustDomain)?;
    let path = render_path(path_template, &trust_domain, dataplane).map_err(SpiffeIdError::Path)?;
    Ok(match spiffe::spiffe_id(&trust_domain, &path) {
        Ok(value) => RenderedId {
            value,
            problem: None,
        },
        Err(e) => RenderedId {
            value: format!("spiffe://{trust_domain}{path}"),
            problem: Some(e.to_string()),
        },
    })
}

/// The SPIFFE ID `identity` gives `dataplane`: both templates parsed and rendered, and the
/// result checked against the SPIFFE rules. The error says which step failed and shows the
/// rendered value where there is one.
pub fn spiffe_id_for(
    identity: &MeshIdentity,
    dataplane: &DataplaneView,
    settings: &Settings,
) -> Result<String, SpiffeIdError> {
    let rendered = render_spiffe_id(identity, dataplane, settings)?;
    match rendered.error() {
        None => Ok(rendered.value),
        Some(error) => Err(error),
    }
}

/// Whether a path template reads the workload, detected as upstream does: an action that is
/// exactly `label "kuma.io/workload"` or `.Workload`, with any spaces inside the braces.
pub fn uses_workload_label(path: &str) -> bool {
    let mut rest = path;
    while let Some(start) = find_doubled(rest, b'{') {
        let after = &rest[start + 2..];
        let Some(end) = find_doubled(after, b'}') else {
            return false;
        };
        let action = after[..end].trim_matches(|c: char| c.is_ascii_whitespace());
        if action == ".Workload" || is_workload_label_call(action) {
            return true;
        }
        rest = &after[end + 2..];
    }
    false
}

/// Where `text` first has the ASCII `byte` twice in a row: `str::find` of that two-byte string,
/// without setting up a substring searcher, which costs more than scanning a template's text.
fn find_doubled(text: &str, byte: u8) -> Option<usize> {
    text.as_bytes()
        .windows(2)
        .position(|pair| pair == [byte, byte])
}

fn is_workload_label_call(action: &str) -> bool {
    action
        .strip_prefix("label")
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_whitespace()))
        .map(|rest| rest.trim_start_matches(|c: char| c.is_ascii_whitespace()))
        == Some("\"kuma.io/workload\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaulted_labels_are_what_kumas_defaulting_webhook_leaves() {
        let settings = Settings {
            zone: "east".to_owned(),
            ..Settings::default()
        };
        let identity: MeshIdentity = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "mid", "labels": {"kuma.io/env": "custom", "kuma.io/display-name": "old"}}
        }))
        .unwrap();
        let labels = defaulted_labels(&identity, &settings);
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("k8s.kuma.io/namespace", "kuma-system"),
                ("kuma.io/display-name", "mid"),
                ("kuma.io/env", "custom"),
                ("kuma.io/mesh", "default"),
                ("kuma.io/origin", "zone"),
                ("kuma.io/zone", "east"),
            ]
        );
    }

    #[test]
    fn workload_detection() {
        let cases = [
            ("/workload/{{ .Workload }}", true),
            ("/w/{{.Workload}}", true),
            ("/w/{{   label   \"kuma.io/workload\"  }}", true),
            ("/w/{{label \"kuma.io/workload\"}}", true),
            ("/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}", false),
            ("/w/{{ .Workloads }}", false),
            ("/w/{{ label \"kuma.io/workloads\" }}", false),
            ("/w/{{ labels \"kuma.io/workload\" }}", false),
            ("/w/{{ .Workload | printf \"%s\" }}", false),
            ("{{", false),
        ];
        for (path, want) in cases {
            assert_eq!(uses_workload_label(path), want, "{path}");
        }
    }
}
