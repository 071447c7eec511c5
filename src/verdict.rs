//! What every decision takes and gives: the [`Request`] it judges, the [`Findings`] rules collect,
//! and the [`Verdict`] with its typed [`Reason`]. The server, the offline commands and the tests
//! read verdicts; nothing decides "allowed" a second time.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The operations the API server sends to admission webhooks, as it spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

/// What a decision needs from an admission request, independent of where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub operation: Operation,
    /// `request.namespace`: the namespace of the object, also for `generateName` objects.
    pub namespace: Option<&'a str>,
    /// `request.userInfo.username`.
    pub username: &'a str,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
}

/// One field-level problem, as `kubectl` prints it from `details.causes[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Why a request was refused: an HTTP-like code and reason, a message with every problem, and the
/// per-field causes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub causes: Vec<Violation>,
}

/// Why a verdict came out as it did, where metrics count it: a bounded set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The request could not be judged as sent: another kind than the endpoint's, an object
    /// that is missing, not an object, or not JSON.
    Malformed,
    /// Why the pod validator refused a pod.
    Pod(PodFinding),
    /// What the SPIRE socket injection did.
    Injection(Injection),
}

impl Reason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Pod(finding) => finding.as_str(),
            Self::Injection(Injection::Injected) => "injected",
            Self::Injection(Injection::Skipped(reason)) => reason.as_str(),
            Self::Injection(Injection::Denied(reason)) => reason.as_str(),
        }
    }
}

/// A reason the pod validator refuses a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodFinding {
    ManualWorkloadLabel,
    MissingWorkload,
    InvalidSpiffeId,
}

impl PodFinding {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ManualWorkloadLabel => "manual_workload_label",
            Self::MissingWorkload => "missing_workload",
            Self::InvalidSpiffeId => "invalid_spiffe_id",
        }
    }
}

/// The outcome of the SPIRE socket injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    Injected,
    Skipped(SkipReason),
    Denied(InjectionDenial),
}

/// Why no patch was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Global default off and the pod did not opt in.
    Disabled,
    /// The pod's label or annotation says off.
    OptedOut,
    /// Nothing is missing (also: no container to mount into).
    AlreadyPresent,
    /// Mirror pod of a static pod.
    MirrorPod,
    /// A conflicting volume (or mount path in every target) blocked injection.
    Conflict,
}

impl SkipReason {
    /// Stable snake_case name for metrics and fixtures.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::OptedOut => "opted_out",
            Self::AlreadyPresent => "already_present",
            Self::MirrorPod => "mirror_pod",
            Self::Conflict => "conflict",
        }
    }
}

/// Why the injection refused a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectionDenial {
    /// The `k8s.kuma.io/spire-support` switch has an unknown value, or label and annotation
    /// disagree.
    InvalidOptIn,
    /// A field the injector reads or writes has the wrong JSON type.
    Malformed,
    /// The pod has more containers than an injection plans for.
    TooManyContainers,
}

impl InjectionDenial {
    /// Stable snake_case name for metrics and fixtures.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidOptIn => "invalid_opt_in",
            Self::Malformed => "malformed",
            Self::TooManyContainers => "too_many_containers",
        }
    }
}

/// The answer to an admission request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// `None` when allowed.
    pub denial: Option<Denial>,
    /// Shown by kubectl as `Warning: ...`; kept within Kubernetes' 120-character advice.
    pub warnings: Vec<String>,
    /// JSON Patch for mutating webhooks; never `Some` with no operations.
    pub patch: Option<json_patch::Patch>,
    /// Recorded in the API server's audit log, prefixed there with the webhook name.
    pub audit_annotations: BTreeMap<String, String>,
    /// Why, where metrics count it.
    pub reason: Option<Reason>,
}

impl Verdict {
    pub fn allow() -> Self {
        Self::default()
    }

    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    pub fn deny(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            denial: Some(Denial {
                code,
                reason,
                message: message.into(),
                causes: Vec::new(),
            }),
            ..Self::default()
        }
    }

    /// A 400 for a request that cannot be judged as sent.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self {
            reason: Some(Reason::Malformed),
            ..Self::deny(400, "BadRequest", message)
        }
    }

    pub fn because(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(truncate_warning(warning.into()));
        self
    }
}

/// Kubernetes asks that warnings stay within 120 characters; longer ones may be cut by clients.
pub const MAX_WARNING_CHARS: usize = 120;

/// Cuts a warning (or any message shown in one) to [`MAX_WARNING_CHARS`] characters, marking the
/// cut with an ellipsis.
pub fn truncate_warning(warning: String) -> String {
    truncate_chars(&warning, MAX_WARNING_CHARS)
}

/// At most `max` characters of `text` (never splitting one), the last one `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Collects problems while rules run, so every failing rule is reported at once.
#[derive(Debug, Default)]
pub struct Findings {
    /// Placement problems: answered 403 Forbidden.
    forbidden: Vec<Violation>,
    /// Everything else: answered 422 Invalid.
    invalid: Vec<Violation>,
    warnings: Vec<String>,
}

impl Findings {
    pub fn forbid(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.forbidden.push(Violation::new(field, message));
    }

    pub fn invalid(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.invalid.push(Violation::new(field, message));
    }

    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(truncate_warning(warning.into()));
    }

    /// Every field problem collected, placement ones first (for rules whose findings the caller
    /// judges before they count).
    pub fn into_violations(self) -> Vec<Violation> {
        self.forbidden.into_iter().chain(self.invalid).collect()
    }

    /// 403 when any placement rule failed (its message first, then the rest), else 422 with every
    /// field error; allowed when nothing failed. Warnings ride along either way.
    pub fn into_verdict(self, kind: &str, name: &str) -> Verdict {
        let code_reason = if !self.forbidden.is_empty() {
            Some((403, "Forbidden"))
        } else if !self.invalid.is_empty() {
            Some((422, "Invalid"))
        } else {
            None
        };
        let denial = code_reason.map(|(code, reason)| {
            let causes: Vec<Violation> = self.forbidden.into_iter().chain(self.invalid).collect();
            Denial {
                code,
                reason,
                message: denial_message(kind, name, code, &causes),
                causes,
            }
        });
        Verdict {
            denial,
            warnings: self.warnings,
            ..Verdict::default()
        }
    }
}

/// The namespace rule keeps upstream's exact sentence; field errors read
/// `Kind "name" is invalid: field: message; field: message`.
fn denial_message(kind: &str, name: &str, code: u16, causes: &[Violation]) -> String {
    let mut parts = causes.iter().map(|cause| {
        if code == 403 && cause.field == "metadata.namespace" {
            cause.message.clone()
        } else {
            format!("{}: {}", cause.field, cause.message)
        }
    });
    let first = parts.next().unwrap_or_default();
    let rest: Vec<String> = parts.collect();
    let joined = if rest.is_empty() {
        first
    } else {
        format!("{first}; {}", rest.join("; "))
    };
    if code == 403 {
        joined
    } else {
        format!("{kind} \"{name}\" is invalid: {joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_decides_the_code_and_every_problem_is_in_the_message() {
        let mut findings = Findings::default();
        findings.invalid("spec.a", "bad");
        findings.forbid("metadata.namespace", "wrong namespace");
        findings.warn("w".repeat(200));
        let verdict = findings.into_verdict("MeshIdentity", "x");
        let denial = verdict.denial.unwrap();
        assert_eq!((denial.code, denial.reason), (403, "Forbidden"));
        assert_eq!(denial.message, "wrong namespace; spec.a: bad");
        assert_eq!(denial.causes[0].field, "metadata.namespace");
        assert_eq!(verdict.warnings[0].chars().count(), MAX_WARNING_CHARS);

        let mut findings = Findings::default();
        findings.invalid("spec.a", "bad");
        let denial = findings.into_verdict("Mesh", "m").denial.unwrap();
        assert_eq!((denial.code, denial.reason), (422, "Invalid"));
        assert_eq!(denial.message, "Mesh \"m\" is invalid: spec.a: bad");
        assert!(Findings::default().into_verdict("Mesh", "m").allowed());
    }

    #[test]
    fn truncation_counts_characters_and_marks_the_cut() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("ééééé", 3).chars().count(), 3);
    }
}
