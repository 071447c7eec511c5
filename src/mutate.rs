//! `POST /mutate-v1-pod`: turns the SPIRE socket injection decision into an admission verdict.

use crate::config::Settings;
use crate::inject::{self, InjectDecision};
use crate::validate::{Operation, Request, Verdict};

/// Audit annotation recording whether and where the socket was injected.
pub const AUDIT_SPIRE_SOCKET: &str = "spire-agent-socket";

/// Only CREATE is mutated: a pod's volumes and containers cannot change after creation.
pub fn review(request: &Request, settings: &Settings) -> Verdict {
    if request.operation != Operation::Create {
        return Verdict::allow();
    }
    let Some(pod) = request.object.filter(|o| o.is_object()) else {
        return Verdict::deny(400, "BadRequest", "request.object must be a Pod object");
    };
    let mut verdict = match inject::decide(pod, &settings.inject) {
        InjectDecision::Inject {
            patch,
            targets,
            warnings,
        } => {
            let mut verdict = Verdict {
                patch: Some(patch).filter(|p| !p.0.is_empty()),
                metric_reason: Some("injected"),
                ..Verdict::default()
            };
            verdict.audit_annotations.insert(
                AUDIT_SPIRE_SOCKET.to_owned(),
                format!("injected into {}", targets.join(", ")),
            );
            warnings
                .into_iter()
                .fold(verdict, |v, warning| v.with_warning(warning))
        }
        InjectDecision::Skip { reason, warnings } => {
            let mut verdict = Verdict {
                metric_reason: Some(reason.as_str()),
                ..Verdict::default()
            };
            verdict.audit_annotations.insert(
                AUDIT_SPIRE_SOCKET.to_owned(),
                format!("skipped: {}", reason.as_str()),
            );
            warnings
                .into_iter()
                .fold(verdict, |v, warning| v.with_warning(warning))
        }
        InjectDecision::Deny { message } => Verdict::deny(422, "Invalid", message),
    };
    if !verdict.allowed() {
        verdict.metric_reason = Some("invalid_opt_in");
    }
    verdict
}
