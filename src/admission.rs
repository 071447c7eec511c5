//! The AdmissionReview v1 envelope: turns a request body into a decision call and the verdict
//! into a response body. Shared by the HTTPS server and the offline CLI, so both give the same
//! answer for the same bytes.

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::{DynamicObject, Status, TypeMeta};
use serde_json::Value;

use crate::config::Settings;
use crate::state::ClusterView;
use crate::validate::{self, Request, Verdict};

/// The only AdmissionReview version kube-apiserver is configured to send us.
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const REVIEW_KIND: &str = "AdmissionReview";
/// Metric reason for a request whose object is not what the endpoint handles.
pub const MALFORMED_REASON: &str = "malformed";

/// The admission endpoints and what each decides about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    ValidateMeshIdentity,
    ValidateMesh,
    ValidatePod,
    MutatePod,
}

impl Webhook {
    pub const ALL: [Webhook; 4] = [
        Webhook::ValidateMeshIdentity,
        Webhook::ValidateMesh,
        Webhook::ValidatePod,
        Webhook::MutatePod,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Self::ValidateMeshIdentity => "/validate-kuma-io-v1alpha1-meshidentity",
            Self::ValidateMesh => "/validate-kuma-io-v1alpha1-mesh",
            Self::ValidatePod => "/validate-v1-pod",
            Self::MutatePod => "/mutate-v1-pod",
        }
    }

    /// The name the webhook is registered under (deploy/), which kube-apiserver quotes in
    /// `admission webhook "<name>" denied the request`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ValidateMeshIdentity => "validate-meshidentity.kuma-identity-webhook.kuma.io",
            Self::ValidateMesh => "validate-mesh.kuma-identity-webhook.kuma.io",
            Self::ValidatePod => "validate-pod.kuma-identity-webhook.kuma.io",
            Self::MutatePod => "spire-socket.kuma-identity-webhook.kuma.io",
        }
    }

    pub fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.path() == path)
    }

    /// `(group, kind)` of the objects this endpoint accepts.
    pub fn accepts(self) -> (&'static str, &'static str) {
        match self {
            Self::ValidateMeshIdentity => ("kuma.io", "MeshIdentity"),
            Self::ValidateMesh => ("kuma.io", "Mesh"),
            Self::ValidatePod | Self::MutatePod => ("", "Pod"),
        }
    }
}

/// How a review ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    Denied,
    /// The request could not be decided (malformed, wrong kind, not ready).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// What the adapter hands back: the HTTP status and body, plus what logs need.
#[derive(Debug, Clone)]
pub struct Reviewed {
    pub http_status: u16,
    pub body: Value,
    pub outcome: Outcome,
    pub summary: Summary,
    /// The verdict, when a decision was made.
    pub verdict: Option<Verdict>,
}

/// Identifying fields of the request, for the one log line per decision.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: String,
    pub dry_run: bool,
}

/// Decides one AdmissionReview body. `view` is `None` until the cluster state is loaded; requests
/// that read it get 503 rather than a guess, while `/mutate-v1-pod`, which never reads it, is
/// answered anyway.
pub fn review(
    webhook: Webhook,
    body: &[u8],
    view: Option<&dyn ClusterView>,
    settings: &Settings,
) -> Reviewed {
    let mut raw: Value = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(e) => {
            let uid = recover_uid(body);
            return error_reply(400, &uid, format!("malformed AdmissionReview: {e}"));
        }
    };
    let uid = raw
        .pointer("/request/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let api_version = raw.get("apiVersion").and_then(Value::as_str);
    let kind = raw.get("kind").and_then(Value::as_str);
    if api_version != Some(API_VERSION) || kind != Some(REVIEW_KIND) {
        return error_reply(
            400,
            &uid,
            format!(
                "expected apiVersion {API_VERSION} kind {REVIEW_KIND}, got apiVersion {} kind {}",
                api_version.unwrap_or("<none>"),
                kind.unwrap_or("<none>")
            ),
        );
    }
    if raw.get("request").is_none_or(Value::is_null) {
        return error_reply(400, &uid, "AdmissionReview has no request".to_owned());
    }
    // The objects stay raw JSON (patches are built against exactly what the API server sent);
    // taking them out before typing the envelope saves a deep copy and a second parse of each.
    let object = take_object(&mut raw, "/request/object");
    let old_object = take_object(&mut raw, "/request/oldObject");
    let request: AdmissionRequest<DynamicObject> = match serde_json::from_value::<
        AdmissionReview<DynamicObject>,
    >(raw)
    .map_err(|e| e.to_string())
    .and_then(|review| review.try_into().map_err(|e| format!("{e}")))
    {
        Ok(request) => request,
        Err(e) => return error_reply(400, &uid, format!("malformed AdmissionReview request: {e}")),
    };
    let summary = Summary {
        uid: request.uid.clone(),
        kind: request.kind.kind.clone(),
        namespace: request.namespace.clone().unwrap_or_default(),
        name: request.name.clone(),
        operation: format!("{:?}", request.operation).to_uppercase(),
        dry_run: request.dry_run,
    };
    let (group, kind) = webhook.accepts();
    if request.kind.group != group || request.kind.kind != kind {
        let verdict = Verdict::deny(
            400,
            "BadRequest",
            format!(
                "{} handles {kind}.{group}, not {}.{}; check the webhook's rules",
                webhook.path(),
                request.kind.kind,
                request.kind.group
            ),
        );
        // Counted like a malformed pod: the pod webhooks' metrics keep a bounded reason for it.
        let verdict = Verdict {
            metric_reason: Some(MALFORMED_REASON),
            ..verdict
        };
        return respond(&request, summary, verdict, Outcome::Error);
    }
    let decision_input = Request {
        operation: match request.operation {
            Operation::Create => validate::Operation::Create,
            Operation::Update => validate::Operation::Update,
            Operation::Delete => validate::Operation::Delete,
            Operation::Connect => validate::Operation::Connect,
        },
        namespace: request.namespace.as_deref(),
        username: request.user_info.username.as_deref().unwrap_or_default(),
        object: object.as_ref(),
        old_object: old_object.as_ref(),
    };
    let Some(verdict) = decide(webhook, &decision_input, view, settings) else {
        return error_reply(
            503,
            &uid,
            "the cluster state is not loaded yet; retry shortly".to_owned(),
        );
    };
    let outcome = if verdict.allowed() {
        Outcome::Allowed
    } else {
        Outcome::Denied
    };
    respond(&request, summary, verdict, outcome)
}

/// Moves the object at `pointer` out of the review, leaving `null`; `None` when absent or null.
fn take_object(raw: &mut Value, pointer: &str) -> Option<Value> {
    raw.pointer_mut(pointer)
        .map(Value::take)
        .filter(|object| !object.is_null())
}

/// The decision behind each endpoint; `None` when it needs the cluster state and `view` has
/// none yet.
pub fn decide(
    webhook: Webhook,
    request: &Request,
    view: Option<&dyn ClusterView>,
    settings: &Settings,
) -> Option<Verdict> {
    Some(match (webhook, view) {
        // The mutation reads nothing but the pod, so it needs no cluster state; refusing it while
        // the state loads would block every pod creation under failurePolicy: Fail.
        (Webhook::MutatePod, _) => crate::mutate::review(request, settings),
        (_, None) => return None,
        (Webhook::ValidateMeshIdentity, Some(view)) => {
            validate::meshidentity::review(request, view, settings)
        }
        (Webhook::ValidateMesh, Some(view)) => validate::mesh::review(request, view, settings),
        (Webhook::ValidatePod, Some(view)) => {
            let (mut verdict, denial) = validate::pod::review_with_reason(request, view, settings);
            verdict.metric_reason = denial.map(|d| d.as_str());
            verdict
        }
    })
}

fn respond(
    request: &AdmissionRequest<DynamicObject>,
    summary: Summary,
    verdict: Verdict,
    outcome: Outcome,
) -> Reviewed {
    let mut response = AdmissionResponse::from(request);
    if let Some(denial) = &verdict.denial {
        response.allowed = false;
        response.result = Status {
            status: Some(StatusSummary::Failure),
            code: denial.code,
            message: denial.message.clone(),
            reason: denial.reason.to_owned(),
            details: (!denial.causes.is_empty()).then(|| StatusDetails {
                name: summary.name.clone(),
                group: request.kind.group.clone(),
                kind: request.kind.kind.clone(),
                uid: String::new(),
                causes: denial
                    .causes
                    .iter()
                    .map(|cause| StatusCause {
                        reason: "FieldValueInvalid".to_owned(),
                        message: cause.message.clone(),
                        field: cause.field.clone(),
                    })
                    .collect(),
                retry_after_seconds: 0,
            }),
            metadata: None,
        };
    }
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings.clone());
    }
    response.audit_annotations = verdict
        .audit_annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(patch) = verdict.patch.clone().filter(|p| !p.0.is_empty()) {
        match response.clone().with_patch(patch) {
            Ok(patched) => response = patched,
            Err(e) => return error_reply(500, &summary.uid, format!("serialising patch: {e}")),
        }
    }
    let mut body = serde_json::to_value(response.into_review()).unwrap_or(Value::Null);
    encode_patch_as_base64(&mut body);
    Reviewed {
        http_status: 200,
        body,
        outcome,
        summary,
        verdict: Some(verdict),
    }
}

/// kube-core serialises `patch` (`Vec<u8>`) as an array of numbers. Go's decoder accepts that,
/// but every other webhook, kubectl and the API documentation use `[]byte`'s usual JSON form, a
/// base64 string, which is also a quarter of the size; send that.
fn encode_patch_as_base64(body: &mut Value) {
    use base64::Engine;
    let Some(patch) = body.pointer_mut("/response/patch") else {
        return;
    };
    let bytes: Option<Vec<u8>> = patch.as_array().and_then(|numbers| {
        numbers
            .iter()
            .map(|n| n.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect()
    });
    if let Some(bytes) = bytes {
        *patch = Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
}

/// An answer for a request that could not be decided: still a well-formed AdmissionReview that
/// echoes `apiVersion`, `kind` and whatever `uid` could be recovered.
fn error_reply(http_status: u16, uid: &str, message: String) -> Reviewed {
    let mut response = AdmissionResponse::invalid(&message);
    response.uid = uid.to_owned();
    response.result.code = http_status;
    response.types = TypeMeta {
        api_version: API_VERSION.to_owned(),
        kind: REVIEW_KIND.to_owned(),
    };
    let body = serde_json::to_value(response.into_review()).unwrap_or(Value::Null);
    Reviewed {
        http_status,
        body,
        outcome: Outcome::Error,
        summary: Summary {
            uid: uid.to_owned(),
            ..Summary::default()
        },
        verdict: None,
    }
}

/// Finds `"uid": "..."` in a body that is not valid JSON (truncated, say), so even that answer
/// can be matched to its request.
fn recover_uid(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    // The request's uid, not an object's `metadata.uid` that may come before it in the body.
    let from = text.find("\"request\"").unwrap_or(0);
    let Some(at) = text[from..].find("\"uid\"").map(|at| from + at) else {
        return String::new();
    };
    let rest = text[at + 5..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return String::new();
    };
    let Some(rest) = rest.trim_start().strip_prefix('"') else {
        return String::new();
    };
    rest.split('"')
        .next()
        .filter(|uid| uid.len() <= 64 && !uid.contains('\\'))
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_recovery() {
        assert_eq!(
            recover_uid(br#"{"request": {"uid": "abc-1", "kind": "#),
            "abc-1"
        );
        assert_eq!(recover_uid(br#"{"uid" :"x""#), "x");
        assert_eq!(
            recover_uid(br#"{"object": {"metadata": {"uid": "obj"}}, "request": {"uid": "req", "#),
            "req"
        );
        assert_eq!(recover_uid(b"garbage"), "");
        assert_eq!(recover_uid(br#"{"uid": 5}"#), "");
    }
}
