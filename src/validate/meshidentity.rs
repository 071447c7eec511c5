//! `POST /validate-kuma-io-v1alpha1-meshidentity`: SPEC §2 rules 1–6.

use serde::Deserialize;

use crate::api::{MeshIdentity, MeshServicesMode, ORIGIN_LABEL};
use crate::config::Settings;
use crate::state::ClusterView;

use super::provider::check_provider;
use super::templates::check_templates;
use super::workload::check_selected_pods;
use super::{Findings, Operation, Request, Verdict};

pub const KIND: &str = "MeshIdentity";

/// Decides a MeshIdentity admission request. DELETE and CONNECT are always allowed (unlike
/// upstream, so a misplaced object can still be deleted).
pub fn review(request: &Request, view: &dyn ClusterView, settings: &Settings) -> Verdict {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return Verdict::allow();
    }
    let Some(object) = request.object else {
        return Verdict::deny(
            400,
            "BadRequest",
            "request.object is required for CREATE and UPDATE",
        );
    };
    let mut identity = match MeshIdentity::deserialize(object) {
        Ok(identity) => identity,
        Err(e) => {
            return Verdict::deny(422, "Invalid", format!("{KIND} could not be read: {e}"));
        }
    };
    if identity
        .metadata
        .namespace
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        identity.metadata.namespace = request.namespace.map(str::to_owned);
    }
    let findings = check(&identity, request.username, view, settings);
    findings.into_verdict(KIND, identity.name())
}

/// Every rule over one MeshIdentity; what the HTTP and CLI adapters share with the benches.
pub fn check(
    identity: &MeshIdentity,
    username: &str,
    view: &dyn ClusterView,
    settings: &Settings,
) -> Findings {
    let mut findings = Findings::default();
    let privileged = settings.privileged_users.iter().any(|u| u == username);
    // Kuma applies only the identities of the system namespace, so one elsewhere never wins a
    // pod: its pods need no scan (which anyone who may create one anywhere could otherwise have
    // run over the whole cluster at will).
    let misplaced = identity.namespace() != settings.system_namespace;
    if !privileged {
        check_placement(identity, settings, &mut findings);
        check_mesh(identity, view, &mut findings);
    }
    check_origin(identity, &mut findings);
    if let Some(provider) = &identity.spec.provider {
        check_provider(provider, &mut findings);
    }
    let templates = check_templates(identity, settings, &mut findings);
    if let (Some(trust_domain), Some(path), false) =
        (&templates.trust_domain, &templates.path, misplaced)
    {
        check_selected_pods(identity, trust_domain, path, view, settings, &mut findings);
    }
    findings
}

/// Rule 1: MeshIdentities live in the system namespace only.
fn check_placement(identity: &MeshIdentity, settings: &Settings, findings: &mut Findings) {
    if identity.namespace() != settings.system_namespace {
        findings.forbid(
            "metadata.namespace",
            format!(
                "resource type {KIND} can be created only in the system namespace:{}",
                settings.system_namespace
            ),
        );
    }
}

/// Rule 2: the mesh must exist and use `meshServices.mode: Exclusive`.
fn check_mesh(identity: &MeshIdentity, view: &dyn ClusterView, findings: &mut Findings) {
    let field = "metadata.labels[\"kuma.io/mesh\"]";
    let name = identity.mesh();
    let Some(mesh) = view.mesh(name) else {
        findings.invalid(
            field,
            format!("Mesh \"{name}\" does not exist; create it with spec.meshServices.mode: Exclusive, or set the kuma.io/mesh label to an existing mesh"),
        );
        return;
    };
    let mode = match mesh.mesh_services_mode() {
        Ok(MeshServicesMode::Exclusive) => return,
        Ok(mode) => mode.as_str().to_owned(),
        Err(raw) => raw,
    };
    findings.invalid(
        field,
        format!("Mesh \"{name}\" has spec.meshServices.mode: {mode}, but MeshIdentity requires Exclusive; set spec.meshServices.mode: Exclusive on Mesh \"{name}\" first"),
    );
}

/// Rule 5: `kuma.io/origin`, when present, is `zone` or `global`.
fn check_origin(identity: &MeshIdentity, findings: &mut Findings) {
    if let Some(origin) = identity.labels().get(ORIGIN_LABEL) {
        if origin != "zone" && origin != "global" {
            findings.invalid(
                format!("metadata.labels[\"{ORIGIN_LABEL}\"]"),
                format!("must be one of [\"zone\", \"global\"], got {origin:?}"),
            );
        }
    }
}
