//! `POST /validate-kuma-io-v1alpha1-mesh`: a Mesh may not leave `Exclusive` MeshServices mode
//! while MeshIdentities of it exist, since that would silently break them. Kuma 3 has no
//! MeshServices mode, so there the rule is off.

use serde::Deserialize;

use crate::api::Mesh;
use crate::cluster::ClusterView;
use crate::config::Settings;

use super::workload::name_some;
use crate::verdict::{Findings, Operation, Request, Verdict};

pub const KIND: &str = "Mesh";

pub fn review(request: &Request, view: &dyn ClusterView, settings: &Settings) -> Verdict {
    if request.operation != Operation::Update
        || !settings.kuma_version.requires_exclusive_mesh_services()
    {
        return Verdict::allow();
    }
    let (Some(object), Some(old_object)) = (request.object, request.old_object) else {
        return Verdict::deny(
            400,
            "BadRequest",
            "UPDATE needs request.object and request.oldObject",
        );
    };
    let parsed =
        Mesh::deserialize(object).and_then(|new| Ok((new, Mesh::deserialize(old_object)?)));
    let (new, old) = match parsed {
        Ok(pair) => pair,
        Err(e) => return Verdict::deny(422, "Invalid", format!("{KIND} could not be read: {e}")),
    };
    let mut findings = Findings::default();
    if old.is_exclusive() && !new.is_exclusive() {
        let mut identities: Vec<String> = view
            .identities_in_mesh(new.name())
            .iter()
            .map(|i| format!("{}/{}", i.namespace(), i.name()))
            .collect();
        identities.sort();
        if !identities.is_empty() {
            let mode = new
                .mesh_services_mode()
                .map_or_else(|raw| raw, |m| m.as_str().to_owned());
            findings.invalid(
                "spec.meshServices.mode",
                format!(
                    "cannot change from Exclusive to {mode} while {} MeshIdentit{} of mesh \"{}\" exist ({}); delete them first",
                    identities.len(),
                    if identities.len() == 1 { "y" } else { "ies" },
                    new.name(),
                    name_some(identities.iter().map(String::as_str))
                ),
            );
        }
    }
    findings.into_verdict(KIND, new.name())
}
