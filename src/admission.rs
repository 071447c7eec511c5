//! The AdmissionReview v1 envelope: turns a request body into a decision call and the verdict
//! into a response body. Shared by the HTTPS server and the offline CLI, so both give the same
//! answer for the same bytes.
//!
//! The envelope is decoded into typed structs that borrow the objects as raw JSON and skip what
//! they do not need without building it, so a body that is no AdmissionReview (a megabytes-long
//! array, say) is refused without growing; the objects become JSON values only once the envelope
//! is valid, and only those the decision reads. The response is serialized straight from the
//! verdict, the patch straight into base64.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::config::Settings;
use crate::pruned::{decode_pruned, Action, Prune};
use crate::state::ClusterView;
use crate::validate::{self, Operation, Request, Verdict};

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

    /// What the decision never reads of this endpoint's objects, and so is never built: the
    /// field manager's records, status, free-form configuration, and a pod's spec for the pod
    /// validator (which reads its service account only).
    fn unread(self) -> &'static [Prune] {
        const MANAGED_FIELDS: Prune = Prune {
            path: &["metadata", "managedFields"],
            action: Action::Skip,
        };
        const STATUS: Prune = Prune {
            path: &["status"],
            action: Action::Skip,
        };
        match self {
            Self::ValidateMeshIdentity => &[
                MANAGED_FIELDS,
                STATUS,
                Prune {
                    path: &["spec", "provider", "extension", "config"],
                    action: Action::Skip,
                },
            ],
            Self::ValidateMesh => &[
                MANAGED_FIELDS,
                STATUS,
                Prune {
                    path: &["spec"],
                    action: Action::Only(&["meshServices"]),
                },
            ],
            Self::ValidatePod => &[
                MANAGED_FIELDS,
                STATUS,
                Prune {
                    path: &["spec"],
                    action: Action::Only(&["serviceAccountName"]),
                },
            ],
            Self::MutatePod => &[MANAGED_FIELDS, STATUS],
        }
    }

    /// Which of `object` and `oldObject` the decision reads for `operation`; the others are
    /// never decoded.
    fn reads(self, operation: Operation) -> (bool, bool) {
        match (self, operation) {
            // Only CREATE is mutated, and the mutation reads only the new pod.
            (Self::MutatePod, Operation::Create) => (true, false),
            (Self::MutatePod, _) => (false, false),
            (_, Operation::Create) => (true, false),
            (_, Operation::Update) => (true, true),
            // DELETE and CONNECT are allowed unread.
            _ => (false, false),
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
    /// The serialized AdmissionReview response.
    pub body: Vec<u8>,
    pub outcome: Outcome,
    pub summary: Summary,
    /// The verdict, when a decision was made.
    pub verdict: Option<Verdict>,
}

impl Reviewed {
    /// The response body as JSON, for callers that inspect it (tests, the offline CLI).
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
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

/// `{apiVersion, kind, request}`: the request stays raw JSON until the envelope is known good.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "apiVersion", default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request: Option<&'a RawValue>,
}

/// The fields of `request` decisions and responses use; the objects stay raw JSON, everything
/// else (`resource`, `options`, `userInfo.extra`, ...) is skipped unbuilt.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestFields<'a> {
    uid: String,
    kind: GroupVersionKind,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: WireOperation,
    user_info: UserInfo,
    #[serde(default, borrow)]
    object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default)]
    username: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "UPPERCASE")]
enum WireOperation {
    Create,
    Update,
    Delete,
    Connect,
}

impl WireOperation {
    fn decision(self) -> Operation {
        match self {
            Self::Create => Operation::Create,
            Self::Update => Operation::Update,
            Self::Delete => Operation::Delete,
            Self::Connect => Operation::Connect,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Create => "CREATE",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
        }
    }
}

/// Only `uid`, for answering a request that does not decode.
#[derive(Deserialize)]
struct UidOnly {
    #[serde(default)]
    uid: Option<String>,
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
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(e) => {
            let uid = recover_uid(body);
            return error_reply(400, &uid, format!("malformed AdmissionReview: {e}"));
        }
    };
    let raw_request = envelope.request.filter(|r| r.get() != "null");
    let uid_of_request = || {
        raw_request
            .and_then(|raw| serde_json::from_str::<UidOnly>(raw.get()).ok())
            .and_then(|r| r.uid)
            .unwrap_or_default()
    };
    let (api_version, kind) = (envelope.api_version.as_deref(), envelope.kind.as_deref());
    if api_version != Some(API_VERSION) || kind != Some(REVIEW_KIND) {
        return error_reply(
            400,
            &uid_of_request(),
            format!(
                "expected apiVersion {API_VERSION} kind {REVIEW_KIND}, got apiVersion {} kind {}",
                api_version.unwrap_or("<none>"),
                kind.unwrap_or("<none>")
            ),
        );
    }
    let Some(raw_request) = raw_request else {
        return error_reply(400, "", "AdmissionReview has no request".to_owned());
    };
    let request: RequestFields = match serde_json::from_str(raw_request.get()) {
        Ok(request) => request,
        Err(e) => {
            return error_reply(
                400,
                &uid_of_request(),
                format!("malformed AdmissionReview request: {e}"),
            )
        }
    };
    let summary = Summary {
        uid: request.uid.clone(),
        kind: request.kind.kind.clone(),
        namespace: request.namespace.clone().unwrap_or_default(),
        name: request.name.clone(),
        operation: request.operation.as_str().to_owned(),
        dry_run: request.dry_run.unwrap_or(false),
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
    let operation = request.operation.decision();
    let (reads_object, reads_old) = webhook.reads(operation);
    let object = match decode_object(request.object, reads_object, webhook) {
        Ok(object) => object,
        Err(e) => return undecodable(&request, summary, "object", &e),
    };
    let old_object = match decode_object(request.old_object, reads_old, webhook) {
        Ok(object) => object,
        Err(e) => return undecodable(&request, summary, "oldObject", &e),
    };
    let decision_input = Request {
        operation,
        namespace: request.namespace.as_deref(),
        username: request.user_info.username.as_deref().unwrap_or_default(),
        object: object.as_ref(),
        old_object: old_object.as_ref(),
    };
    let Some(verdict) = decide(webhook, &decision_input, view, settings) else {
        return error_reply(
            503,
            &request.uid,
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

/// The object as a JSON value, without what the decision never reads, when it reads the object
/// at all; `None` when absent, null or unread.
fn decode_object(
    raw: Option<&RawValue>,
    read: bool,
    webhook: Webhook,
) -> Result<Option<Value>, serde_json::Error> {
    match raw.filter(|raw| read && raw.get() != "null") {
        Some(raw) => decode_pruned(raw.get(), webhook.unread()).map(Some),
        None => Ok(None),
    }
}

/// An object the envelope carried but that does not decode: a denial of the request itself.
fn undecodable(
    request: &RequestFields,
    summary: Summary,
    which: &str,
    error: &serde_json::Error,
) -> Reviewed {
    let verdict = Verdict {
        metric_reason: Some(MALFORMED_REASON),
        ..Verdict::deny(
            400,
            "BadRequest",
            format!("request.{which} is not valid JSON: {error}"),
        )
    };
    respond(request, summary, verdict, Outcome::Error)
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
        (Webhook::ValidateMesh, Some(view)) => validate::mesh::review(request, view),
        (Webhook::ValidatePod, Some(view)) => {
            let (mut verdict, denial) = validate::pod::review_with_reason(request, view, settings);
            verdict.metric_reason = denial.map(|d| d.as_str());
            verdict
        }
    })
}

/// The AdmissionReview response, as it goes on the wire.
#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    /// `[]byte` in JSON is base64; kube-apiserver decodes it as such.
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// A `metav1.Status` of a refusal.
#[derive(Serialize)]
struct StatusOut<'a> {
    status: &'static str,
    code: u16,
    message: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<DetailsOut<'a>>,
}

#[derive(Serialize)]
struct DetailsOut<'a> {
    name: &'a str,
    group: &'a str,
    kind: &'a str,
    causes: Vec<CauseOut<'a>>,
}

#[derive(Serialize)]
struct CauseOut<'a> {
    reason: &'static str,
    message: &'a str,
    field: &'a str,
}

fn respond(
    request: &RequestFields,
    summary: Summary,
    verdict: Verdict,
    outcome: Outcome,
) -> Reviewed {
    let status = verdict.denial.as_ref().map(|denial| StatusOut {
        status: "Failure",
        code: denial.code,
        message: &denial.message,
        reason: denial.reason,
        details: (!denial.causes.is_empty()).then(|| DetailsOut {
            name: &request.name,
            group: &request.kind.group,
            kind: &request.kind.kind,
            causes: denial
                .causes
                .iter()
                .map(|cause| CauseOut {
                    reason: "FieldValueInvalid",
                    message: &cause.message,
                    field: &cause.field,
                })
                .collect(),
        }),
    });
    let patch = match verdict.patch.as_ref().filter(|p| !p.0.is_empty()) {
        Some(patch) => match encode_patch(patch) {
            Ok(encoded) => Some(encoded),
            Err(e) => return error_reply(500, &request.uid, format!("serialising patch: {e}")),
        },
        None => None,
    };
    let out = ReviewOut {
        api_version: API_VERSION,
        kind: REVIEW_KIND,
        response: ResponseOut {
            uid: &request.uid,
            allowed: verdict.allowed(),
            status,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            audit_annotations: &verdict.audit_annotations,
            warnings: &verdict.warnings,
        },
    };
    let body = match serde_json::to_vec(&out) {
        Ok(body) => body,
        Err(e) => return error_reply(500, &request.uid, format!("serialising the response: {e}")),
    };
    Reviewed {
        http_status: 200,
        body,
        outcome,
        summary,
        verdict: Some(verdict),
    }
}

/// The patch as JSON written straight into base64: no copy of it grows with its size but the
/// encoded text itself.
fn encode_patch(patch: &json_patch::Patch) -> serde_json::Result<String> {
    use base64::engine::general_purpose::STANDARD;
    let mut encoder = base64::write::EncoderStringWriter::new(&STANDARD);
    serde_json::to_writer(&mut encoder, patch)?;
    Ok(encoder.into_inner())
}

/// An answer for a request that could not be decided: still a well-formed AdmissionReview that
/// echoes `apiVersion`, `kind` and whatever `uid` could be recovered.
fn error_reply(http_status: u16, uid: &str, message: String) -> Reviewed {
    let out = ReviewOut {
        api_version: API_VERSION,
        kind: REVIEW_KIND,
        response: ResponseOut {
            uid,
            allowed: false,
            status: Some(StatusOut {
                status: "Failure",
                code: http_status,
                message: &message,
                reason: "InvalidRequest",
                details: None,
            }),
            patch: None,
            patch_type: None,
            audit_annotations: &BTreeMap::new(),
            warnings: &[],
        },
    };
    Reviewed {
        http_status,
        // Plain strings and numbers: serializing cannot fail.
        body: serde_json::to_vec(&out).unwrap_or_default(),
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
    // Only the head: the request's uid comes early, and a scan must not cost a copy of 7 MiB.
    let head = &body[..body.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
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

    #[test]
    fn the_patch_is_base64_of_its_json() {
        use base64::Engine;
        let patch: json_patch::Patch =
            serde_json::from_str(r#"[{"op": "add", "path": "/a/~1b", "value": [1]}]"#).unwrap();
        let encoded = encode_patch(&patch).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&decoded).unwrap(),
            serde_json::to_value(&patch).unwrap()
        );
    }

    /// A body that is no AdmissionReview is refused with 400 and still a well-formed answer.
    #[test]
    fn bodies_of_the_wrong_shape_are_refused_with_400() {
        let settings = Settings::default();
        let zeros = format!("[{}0]", "0,".repeat(1 << 20));
        let wrapped = format!(r#"{{"junk": {zeros}, "apiVersion": "v1"}}"#);
        for body in [zeros.as_str(), wrapped.as_str(), "7", r#"{"request": 1}"#] {
            let reviewed = review(Webhook::ValidatePod, body.as_bytes(), None, &settings);
            assert_eq!(reviewed.http_status, 400, "{}", &body[..body.len().min(40)]);
            assert_eq!(reviewed.body_json()["kind"], REVIEW_KIND);
        }
    }
}
