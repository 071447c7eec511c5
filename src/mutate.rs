//! `POST /mutate-v1-pod`: turns the SPIRE socket injection decision into an admission verdict.

use crate::config::Settings;
use crate::inject::{self, DenyReason, InjectDecision};
use crate::validate::{Operation, Request, Verdict};

/// Audit annotation recording whether and where the socket was injected.
pub const AUDIT_SPIRE_SOCKET: &str = "spire-agent-socket";

/// Only CREATE is mutated: a pod's volumes and containers cannot change after creation.
pub fn review(request: &Request, settings: &Settings) -> Verdict {
    if request.operation != Operation::Create {
        return Verdict::allow();
    }
    let Some(pod) = request.object.filter(|o| o.is_object()) else {
        return Verdict {
            metric_reason: Some(DenyReason::Malformed.as_str()),
            ..Verdict::deny(400, "BadRequest", "request.object must be a Pod object")
        };
    };
    let (decision, deny_reason) = inject::decide_with_reason(pod, &settings.inject);
    match decision {
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
        InjectDecision::Deny { message } => Verdict {
            metric_reason: deny_reason.map(|reason| reason.as_str()),
            ..Verdict::deny(422, "Invalid", message)
        },
    }
}
