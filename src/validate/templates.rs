//! Checks of the SPIFFE ID templates that need no pod: parsing (Go's messages, upstream's own
//! rule), and beyond upstream: fields the template cannot offer, literal text against the SPIFFE
//! rules, and the rendered trust domain.

use crate::api::MeshIdentity;
use crate::cluster::ClusterView;
use crate::config::Settings;
use crate::gotemplate::Template;
use crate::identity::render::{
    render_trust_domain, TemplateError, PATH_FIELDS, TRUST_DOMAIN_FIELDS,
};
use crate::identity::spiffe::{self, is_path_segment_char, is_trust_domain_char};

use crate::verdict::{Findings, Violation};

pub const TRUST_DOMAIN_FIELD: &str = "spec.spiffeID.trustDomain";
pub const PATH_FIELD: &str = "spec.spiffeID.path";

/// The parsed templates, when they are usable for rendering.
pub struct CheckedTemplates {
    /// The rendered trust domain, when it parsed, rendered and passed the SPIFFE rules.
    pub trust_domain: Option<String>,
    /// The parsed path template, when it parsed and reads only what paths offer.
    pub path: Option<Template>,
    /// The problems found beyond upstream's parse check. Upstream admits such objects, so the
    /// caller decides: refused on CREATE, only warned about on an UPDATE that keeps them.
    pub beyond_upstream: Vec<Violation>,
}

/// Parse errors (upstream's rule) go to `findings`; the rest is returned for the caller to judge.
/// Templates a stored identity has too are taken from `view` as parsed already.
pub fn check_templates(
    identity: &MeshIdentity,
    view: &dyn ClusterView,
    settings: &Settings,
    findings: &mut Findings,
) -> CheckedTemplates {
    let mut own = Findings::default();
    let trust_domain_parsed = view.template(identity.trust_domain_template());
    let trust_domain =
        check_trust_domain(identity, trust_domain_parsed, settings, findings, &mut own);
    let path_parsed = view.template(identity.path_template());
    let path = check_path(identity.path_template(), path_parsed, findings, &mut own);
    CheckedTemplates {
        trust_domain,
        path,
        beyond_upstream: own.into_violations(),
    }
}

fn check_trust_domain(
    identity: &MeshIdentity,
    parsed: Result<Template, TemplateError>,
    settings: &Settings,
    findings: &mut Findings,
    own: &mut Findings,
) -> Option<String> {
    let template = parse_checked(
        parsed,
        TRUST_DOMAIN_FIELD,
        TRUST_DOMAIN_FIELDS,
        findings,
        own,
    )?;
    if has_bad_literal(
        &template,
        TRUST_DOMAIN_FIELD,
        is_trust_domain_char,
        spiffe::SpiffeError::BadTrustDomainChar,
        own,
    ) {
        return None;
    }
    let rendered = match render_trust_domain(&template, identity, settings) {
        Ok(rendered) => rendered,
        Err(e) => {
            own.invalid(TRUST_DOMAIN_FIELD, format!("cannot render: {e}"));
            return None;
        }
    };
    match spiffe::validate_trust_domain(&rendered) {
        Ok(()) => Some(rendered),
        Err(e) => {
            own.invalid(
                TRUST_DOMAIN_FIELD,
                format!("renders to {rendered:?}, which is not a valid SPIFFE trust domain: {e}"),
            );
            None
        }
    }
}

/// Reports the first character outside `allowed` in the template's literal text: no rendering
/// can make such a template valid, so saying so beats a message about one rendered value.
fn has_bad_literal(
    template: &Template,
    field: &str,
    allowed: fn(char) -> bool,
    error: spiffe::SpiffeError,
    findings: &mut Findings,
) -> bool {
    let bad_literal = template
        .analysis()
        .literal_texts
        .iter()
        .find_map(|text| text.chars().find(|c| !allowed(*c)).map(|c| (text, c)));
    let Some((text, c)) = bad_literal else {
        return false;
    };
    findings.invalid(
        field,
        format!("literal text {text:?} contains {c:?}: {error}"),
    );
    true
}

fn check_path(
    source: &str,
    parsed: Result<Template, TemplateError>,
    findings: &mut Findings,
    own: &mut Findings,
) -> Option<Template> {
    let template = parse_checked(parsed, PATH_FIELD, PATH_FIELDS, findings, own)?;
    if has_bad_literal(
        &template,
        PATH_FIELD,
        |c| c == '/' || is_path_segment_char(c),
        spiffe::SpiffeError::BadPathSegmentChar,
        own,
    ) {
        return None;
    }
    if !source.is_empty() && !source.starts_with('/') && !source.starts_with("{{") {
        own.invalid(PATH_FIELD, spiffe::SpiffeError::NoLeadingSlash.to_string());
        return None;
    }
    if let Some((text, error)) = literal_path_problem(&template, source) {
        own.invalid(
            PATH_FIELD,
            format!("literal text {text:?} makes every rendered path invalid: {error}"),
        );
        return None;
    }
    Some(template)
}

/// A SPIFFE rule the path's literal text breaks however its actions render: an empty segment
/// (`//`), a `.` or `..` segment between two slashes, or, in the text the output always ends
/// with, a trailing slash or a final dot segment. Upstream finds these only when it issues a
/// certificate, for every pod the identity wins.
fn literal_path_problem(
    template: &Template,
    source: &str,
) -> Option<(String, spiffe::SpiffeError)> {
    let texts = &template.analysis().literal_texts;
    // The last text ends every output only when nothing follows it in the source: an action or
    // a block after it would end the source with `}}`.
    let ends_output = |index: usize, text: &str| {
        index + 1 == texts.len() && !text.is_empty() && source.ends_with(text)
    };
    texts.iter().enumerate().find_map(|(index, text)| {
        literal_segment_problem(text, ends_output(index, text)).map(|error| (text.clone(), error))
    })
}

fn literal_segment_problem(text: &str, ends_output: bool) -> Option<spiffe::SpiffeError> {
    use spiffe::SpiffeError::{DotSegment, EmptySegment, TrailingSlash};
    if text.contains("//") {
        return Some(EmptySegment);
    }
    // The pieces between slashes, numbered without collecting them: the last is number `last`.
    let last = text.bytes().filter(|&b| b == b'/').count();
    // A piece is a whole segment when a slash precedes it and a slash or the end follows it.
    let whole = |index: usize| index > 0 && (index < last || ends_output);
    let mut pieces = text.split('/').enumerate();
    if pieces.any(|(i, piece)| whole(i) && matches!(piece, "." | "..")) {
        return Some(DotSegment);
    }
    // The last piece is empty when the text ends with its last slash.
    if ends_output && last > 0 && text.ends_with('/') {
        return Some(TrailingSlash);
    }
    None
}

/// Takes a template's parse (a failure goes to `findings`, as upstream refuses it too) and
/// refuses fields its data never offers (to `own`): upstream would only fail when rendering
/// (`can't evaluate field ...`), which for these fields is every time.
fn parse_checked(
    parsed: Result<Template, TemplateError>,
    field: &str,
    offered: &[&str],
    findings: &mut Findings,
    own: &mut Findings,
) -> Option<Template> {
    let template = match parsed {
        Ok(template) => template,
        Err(message) => {
            findings.invalid(field, message.to_string());
            return None;
        }
    };
    let unknown: Vec<String> = template
        .analysis()
        .root_fields
        .iter()
        .filter(|(name, _)| !offered.contains(&name.as_str()))
        .map(|(name, _)| format!(".{name}"))
        .collect();
    if unknown.is_empty() {
        return Some(template);
    }
    let offered: Vec<String> = offered.iter().map(|f| format!(".{f}")).collect();
    own.invalid(
        field,
        format!(
            "template reads {}, which this field never offers (available: {}), so it can never render",
            unknown.join(", "),
            offered.join(", ")
        ),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::render::parse_template;
    use crate::identity::spiffe::SpiffeError::{DotSegment, EmptySegment, TrailingSlash};

    fn problem(path: &str) -> Option<(String, spiffe::SpiffeError)> {
        literal_path_problem(&parse_template(path).unwrap(), path)
    }

    #[test]
    fn literal_text_that_breaks_every_rendering() {
        let cases = [
            ("/ns//{{ .Namespace }}", Some(("/ns//", EmptySegment))),
            ("/ns/{{ .Namespace }}//x", Some(("//x", EmptySegment))),
            ("/ns/{{ .Namespace }}/", Some(("/", TrailingSlash))),
            ("/", Some(("/", TrailingSlash))),
            ("/a{{ .Workload }}/", Some(("/", TrailingSlash))),
            ("/./{{ .Namespace }}", Some(("/./", DotSegment))),
            ("/a/../{{ .Namespace }}", Some(("/a/../", DotSegment))),
            ("/ns/{{ .Namespace }}/..", Some(("/..", DotSegment))),
            ("/ns/{{ .Namespace }}/.", Some(("/.", DotSegment))),
            ("{{ .Namespace }} /x/ ", None),
            ("/ns/{{ .Namespace -}} /x/", Some(("/x/", TrailingSlash))),
        ];
        for (path, want) in cases {
            let want = want.map(|(text, error)| (text.to_owned(), error));
            assert_eq!(problem(path), want, "{path}");
        }
    }

    /// Text an action completes, or that only some renderings emit, decides nothing.
    #[test]
    fn literal_text_that_renderings_may_complete() {
        for path in [
            "",
            "/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}",
            "/ns/{{ .Namespace }}/..{{ .Workload }}",
            "/ns/{{ .Namespace }}.",
            "/w/{{ if .Workload }}/x/{{ end }}",
            "/w{{ if .Workload }}/{{ .Workload }}{{ end }}",
            "/x/...",
        ] {
            assert_eq!(problem(path), None, "{path}");
        }
    }
}
