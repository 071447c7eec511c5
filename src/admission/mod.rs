//! The AdmissionReview adapter: reads a request body ([`envelope`]), calls the decision the
//! [`Webhook`] table names, and writes the answer ([`response`]). The HTTPS server calls
//! [`review`] with bytes; the offline commands call [`decide`] with objects they already hold.

pub mod envelope;
pub mod pruned;
pub mod response;
mod single_pass;
mod webhook;

pub use envelope::{API_VERSION, REVIEW_KIND};
pub use webhook::Webhook;

use crate::cluster::ClusterView;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::verdict::{Injection, Reason, Request, Verdict};
use crate::{inject, validate};

use envelope::{GroupVersionKind, HeldObject, RequestFields};
use response::Subject;

/// How a review ended, for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Allowed,
    Denied,
    /// The request could not be decided (malformed, wrong kind, not ready).
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Self::Allowed, Self::Denied, Self::Error];

    /// Where the outcome stands in [`Outcome::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

/// What the adapter hands back: the HTTP status and body, plus what logs and metrics need.
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
    /// The response body as JSON, for callers that inspect it (tests).
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Identifying fields of the request, for the one log line per decision.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub uid: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub operation: &'static str,
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
    // One pass over a body that is what it should be (its objects decoded as they are read, not
    // captured raw and decoded again); the step-by-step reading for any other, and its answer.
    if let Some(request) = single_pass::open(body, webhook) {
        return review_request(webhook, request, view, settings);
    }
    match envelope::open(body) {
        Ok(request) => review_request(webhook, request, view, settings),
        Err(unreadable) => refused(400, unreadable.uid, &unreadable.message),
    }
}

/// [`review`] of a request that opened, its objects held as `O`.
fn review_request<O: HeldObject>(
    webhook: Webhook,
    request: RequestFields<O>,
    view: Option<&dyn ClusterView>,
    settings: &Settings,
) -> Reviewed {
    // The request's strings move into the summary, which the answer and the decision borrow
    // them from: no copies.
    let RequestFields {
        uid,
        kind: GroupVersionKind { group, kind },
        name,
        namespace,
        operation,
        user_info,
        object,
        old_object,
        dry_run,
    } = request;
    let names_namespace = namespace.is_some();
    let summary = Summary {
        uid,
        kind,
        namespace: namespace.unwrap_or_default(),
        name,
        operation: operation.as_str(),
        dry_run: dry_run.unwrap_or(false),
    };
    let expected = webhook.kind();
    if group != expected.group() || summary.kind != expected.name() {
        let verdict = Verdict::malformed(format!(
            "{} handles {}.{}, not {}.{}; check the webhook's rules",
            webhook.path(),
            expected.name(),
            expected.group(),
            summary.kind,
            group
        ));
        return answered(&group, summary, verdict, Outcome::Error);
    }
    let (reads_object, reads_old) = webhook.reads(operation);
    let decoded = O::into_read(object, reads_object, webhook.unread())
        .map_err(|e| ("object", e))
        .and_then(|object| {
            O::into_read(old_object, reads_old, webhook.unread())
                .map(|old| (object, old))
                .map_err(|e| ("oldObject", e))
        });
    let (object, old_object) = match decoded {
        Ok(objects) => objects,
        Err((which, e)) => {
            let verdict = Verdict::malformed(format!("request.{which} is not valid JSON: {e}"));
            return answered(&group, summary, verdict, Outcome::Error);
        }
    };
    let decision_input = Request {
        operation,
        namespace: names_namespace.then_some(summary.namespace.as_str()),
        username: user_info.username.as_deref().unwrap_or_default(),
        object: object.as_ref(),
        old_object: old_object.as_ref(),
    };
    let Some(verdict) = decide(webhook, &decision_input, view, settings) else {
        return refused(
            503,
            summary.uid,
            "the cluster state is not loaded yet; retry shortly",
        );
    };
    let outcome = if verdict.allowed() {
        Outcome::Allowed
    } else {
        Outcome::Denied
    };
    answered(&group, summary, verdict, outcome)
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
        (Webhook::MutatePod, _) => inject::review::review(request, settings),
        (_, None) => return None,
        (Webhook::ValidateMeshIdentity, Some(view)) => {
            validate::meshidentity::review(request, view, settings)
        }
        (Webhook::ValidateMesh, Some(view)) => validate::mesh::review(request, view, settings),
        (Webhook::ValidatePod, Some(view)) => validate::pod::review(request, view, settings),
    })
}

/// Counts what the verdict's reason says where its webhook's metrics count it: pod denials by
/// reason, and every injection outcome.
pub fn record(metrics: &Metrics, webhook: Webhook, verdict: &Verdict) {
    let Some(reason) = verdict.reason else {
        return;
    };
    match webhook {
        Webhook::ValidatePod if !verdict.allowed() => metrics.pod_denied(reason.as_str()),
        Webhook::MutatePod => {
            let outcome = match reason {
                Reason::Injection(Injection::Injected) => "injected",
                Reason::Injection(Injection::Skipped(_)) => "skipped",
                Reason::Injection(Injection::Denied(_)) | Reason::Malformed | Reason::Pod(_) => {
                    "denied"
                }
            };
            metrics.injection(outcome, reason.as_str());
        }
        _ => {}
    }
}

/// The answer carrying `verdict` to the request `summary` (and `group`) names.
fn answered(group: &str, summary: Summary, verdict: Verdict, outcome: Outcome) -> Reviewed {
    let subject = Subject {
        uid: &summary.uid,
        name: &summary.name,
        group,
        kind: &summary.kind,
    };
    match response::answer(subject, &verdict) {
        Ok(body) => Reviewed {
            http_status: 200,
            body,
            outcome,
            summary,
            verdict: Some(verdict),
        },
        Err(e) => refused(500, summary.uid, &format!("serialising the response: {e}")),
    }
}

fn refused(http_status: u16, uid: String, message: &str) -> Reviewed {
    Reviewed {
        http_status,
        body: response::refusal(http_status, &uid, message),
        outcome: Outcome::Error,
        summary: Summary {
            uid,
            ..Summary::default()
        },
        verdict: None,
    }
}
