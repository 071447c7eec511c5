//! Admission decisions: pure functions over (request, cluster view, settings) that return a
//! [`Verdict`]. The HTTPS server and the offline CLI both call these and only these.

pub mod mesh;
pub mod meshidentity;
pub mod pod;
mod provider;
mod templates;
mod workload;

use std::collections::BTreeMap;

use serde_json::Value;

/// The operations the API server sends to admission webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
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
    /// A bounded label saying why (a denial or skip reason), for metrics only.
    pub metric_reason: Option<&'static str>,
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

    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(truncate_warning(warning.into()));
        self
    }
}

/// Kubernetes asks that warnings stay within 120 characters; longer ones may be cut by clients.
pub const MAX_WARNING_CHARS: usize = 120;

pub fn truncate_warning(warning: String) -> String {
    if warning.chars().count() <= MAX_WARNING_CHARS {
        return warning;
    }
    let mut cut: String = warning.chars().take(MAX_WARNING_CHARS - 3).collect();
    cut.push_str("...");
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
    fn into_violations(self) -> Vec<Violation> {
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
