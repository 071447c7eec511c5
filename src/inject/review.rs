//! `POST /mutate-v1-pod`: the SPIRE socket injection decision as an admission verdict.

use crate::config::Settings;
use crate::verdict::{Injection, Operation, Reason, Request, Verdict};

use super::{decide, InjectDecision};

/// Audit annotation recording whether and where the socket was injected.
pub const AUDIT_SPIRE_SOCKET: &str = "spire-agent-socket";

/// Only CREATE is mutated: a pod's volumes and containers cannot change after creation.
pub fn review(request: &Request, settings: &Settings) -> Verdict {
    if request.operation != Operation::Create {
        return Verdict::allow();
    }
    let Some(pod) = request.object.filter(|o| o.is_object()) else {
        return Verdict::malformed("request.object must be a Pod object");
    };
    let (mut verdict, audit, warnings) = match decide(pod, &settings.inject) {
        InjectDecision::Inject {
            patch,
            targets,
            warnings,
        } => (
            Verdict {
                patch: Some(patch).filter(|p| !p.0.is_empty()),
                ..Verdict::allow()
            }
            .because(Reason::Injection(Injection::Injected)),
            format!("injected into {}", targets.join(", ")),
            warnings,
        ),
        InjectDecision::Skip { reason, warnings } => (
            Verdict::allow().because(Reason::Injection(Injection::Skipped(reason))),
            format!("skipped: {}", reason.as_str()),
            warnings,
        ),
        InjectDecision::Deny { reason, message } => {
            return Verdict::deny(422, "Invalid", message)
                .because(Reason::Injection(Injection::Denied(reason)));
        }
    };
    verdict
        .audit_annotations
        .insert(AUDIT_SPIRE_SOCKET.to_owned(), audit);
    warnings
        .into_iter()
        .fold(verdict, |v, warning| v.with_warning(warning))
}
