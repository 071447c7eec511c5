//! What to do about each finding, in the words the audit prints.

use crate::api::{PodInfo, WORKLOAD_LABEL};
use crate::config::Settings;
use crate::inject::SPIRE_SUPPORT_KEY;
use crate::validate::how_to_give_a_workload;

use super::Finding;

/// The advice for `finding` on `pod`. Fixing a running pod's spec takes a new pod, so most say
/// to fix the owner's template (or the MeshIdentity) and recreate it.
pub fn action(finding: Finding, pod: &PodInfo, settings: &Settings) -> String {
    match finding {
        Finding::MissingWorkload => how_to_give_a_workload(settings),
        Finding::MissingLabel => {
            "add the label to the pod template and recreate the pod, or change the MeshIdentity's path".to_owned()
        }
        Finding::InvalidSpiffeId => {
            "fix the MeshIdentity's templates or the pod values they read, then recreate the pod".to_owned()
        }
        Finding::ManualWorkloadLabel => {
            format!("remove the {WORKLOAD_LABEL} label from the pod template and recreate the pod")
        }
        Finding::InvalidSpireSupport | Finding::SpireSupportConflict => format!(
            "set {SPIRE_SUPPORT_KEY} to true or false (label and annotation alike) and recreate the pod"
        ),
        Finding::SocketVolumeMissing | Finding::SocketMountMissing => format!(
            "recreate the pod (kubectl delete pod -n {} {}) so the webhook injects the socket",
            pod.namespace, pod.name
        ),
    }
}
