//! `POST /validate-kuma-io-v1alpha1-meshidentity`: SPEC §2 rules 1–7.

use serde_json::Value;

use serde::Deserialize;

use crate::api::{MeshIdentity, MeshServicesMode, ORIGIN_LABEL};
use crate::cluster::ClusterView;
use crate::config::Settings;
use crate::gotemplate::go_quote;

use super::provider::check_provider;
use super::templates::check_templates;
use super::workload::check_selected_pods;
use crate::verdict::{Findings, Operation, Request, Verdict, Violation};

pub const KIND: &str = "MeshIdentity";
/// The API group of Kuma's resources, the `Mesh` among them.
const KUMA_GROUP: &str = "kuma.io";

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
    let identity = match read_identity(object, request.namespace) {
        Ok(identity) => identity,
        Err(e) => {
            return Verdict::deny(422, "Invalid", format!("{KIND} could not be read: {e}"));
        }
    };
    // The stored object, for the UPDATE ratchet; one that cannot be read ratchets nothing.
    let before = request
        .old_object
        .filter(|_| request.operation == Operation::Update)
        .and_then(|old| read_identity(old, request.namespace).ok());
    let findings = check(&identity, before.as_ref(), request.username, view, settings);
    findings.into_verdict(KIND, identity.name())
}

/// A MeshIdentity from raw JSON, placed in the request's namespace when it names none
/// (`generateName` objects).
fn read_identity(object: &Value, namespace: Option<&str>) -> serde_json::Result<MeshIdentity> {
    let mut identity = MeshIdentity::deserialize(object)?;
    if identity
        .metadata
        .namespace
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        identity.metadata.namespace = namespace.map(str::to_owned);
    }
    Ok(identity)
}

/// Every rule over one MeshIdentity; what the HTTP and CLI adapters share with the benches.
/// `before` is the stored object on UPDATE: pod findings and the template findings beyond
/// upstream's that it already produced only warn; every other rule judges the new object alone,
/// as upstream does.
pub fn check(
    identity: &MeshIdentity,
    before: Option<&MeshIdentity>,
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
        check_mesh(identity, view, settings, &mut findings);
        check_owner_references(identity, &mut findings);
    }
    check_origin(identity, &mut findings);
    if let Some(provider) = &identity.spec.provider {
        check_provider(provider, &mut findings);
    }
    let templates = check_templates(identity, view, settings, &mut findings);
    let templates_before = before.map(|before| {
        (
            before,
            check_templates(before, view, settings, &mut Findings::default()),
        )
    });
    ratchet_template_findings(
        templates.beyond_upstream,
        templates_before
            .as_ref()
            .map(|(_, t)| t.beyond_upstream.as_slice()),
        &mut findings,
    );
    if let (Some(trust_domain), Some(path), false) =
        (&templates.trust_domain, &templates.path, misplaced)
    {
        check_selected_pods(
            identity,
            templates_before.as_ref().map(|(before, t)| (*before, t)),
            trust_domain,
            path,
            view,
            settings,
            &mut findings,
        );
    }
    findings
}

/// The template checks this project adds to upstream's (fields never offered, literal SPIFFE
/// rules, the rendered trust domain) refuse a new problem; one the stored object already had is
/// only warned about on UPDATE, as upstream admits such objects and a status write of one must
/// not fail. Parse errors are not among them: upstream refuses those on UPDATE too.
fn ratchet_template_findings(
    found: Vec<Violation>,
    before: Option<&[Violation]>,
    findings: &mut Findings,
) {
    for violation in found {
        if before.is_some_and(|before| before.contains(&violation)) {
            findings.warn(format!(
                "update allowed, unchanged from before it: {}: {}",
                violation.field, violation.message
            ));
        } else {
            findings.invalid(violation.field, violation.message);
        }
    }
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

/// Rule 2: the mesh must exist (Kuma's own webhook refuses an object of a missing mesh too) and,
/// on Kuma 2, use `meshServices.mode: Exclusive`.
fn check_mesh(
    identity: &MeshIdentity,
    view: &dyn ClusterView,
    settings: &Settings,
    findings: &mut Findings,
) {
    let field = "metadata.labels[\"kuma.io/mesh\"]";
    let name = identity.mesh();
    let exclusive_required = settings.kuma_version.requires_exclusive_mesh_services();
    let Some(mesh) = view.mesh(name) else {
        let create = if exclusive_required {
            "create it with spec.meshServices.mode: Exclusive"
        } else {
            "create it"
        };
        findings.invalid(
            field,
            format!("Mesh \"{name}\" does not exist; {create}, or set the kuma.io/mesh label to an existing mesh"),
        );
        return;
    };
    if !exclusive_required {
        return;
    }
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

/// Rule 7: an owner reference to a `Mesh` (group `kuma.io`) must name the identity's own mesh,
/// or deleting that other mesh would garbage-collect the identity. Upstream's words
/// (kumahq/kuma#18060).
fn check_owner_references(identity: &MeshIdentity, findings: &mut Findings) {
    let mesh = identity.mesh();
    let references = identity.metadata.owner_references.iter().flatten();
    for (index, reference) in references.enumerate() {
        if reference.kind != "Mesh" || api_group(&reference.api_version) != Some(KUMA_GROUP) {
            continue;
        }
        if reference.name != mesh {
            findings.invalid(
                format!("metadata.ownerReferences[{index}].name"),
                format!(
                    "must be the same as the mesh of the resource {}, got {}. A resource cannot be moved between meshes, delete it and apply it again in the new mesh",
                    go_quote(mesh),
                    go_quote(&reference.name)
                ),
            );
        }
    }
}

/// The group of an `apiVersion` as Kubernetes parses it (`v1` has the empty group); `None` when
/// it does not parse, which upstream skips.
fn api_group(api_version: &str) -> Option<&str> {
    match api_version.split_once('/') {
        None => Some(""),
        Some((group, version)) if !version.contains('/') => Some(group),
        Some(_) => None,
    }
}

/// Rule 5: `kuma.io/origin`, when present, is `zone` or `global`; upstream's words first.
fn check_origin(identity: &MeshIdentity, findings: &mut Findings) {
    if let Some(origin) = identity.labels().get(ORIGIN_LABEL) {
        if origin != "zone" && origin != "global" {
            findings.invalid(
                format!("metadata.labels[\"{ORIGIN_LABEL}\"]"),
                format!(
                    "unknown resource origin {}: must be one of [\"zone\", \"global\"]",
                    go_quote(origin)
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cluster::{Object, Snapshot};
    use crate::config::{KumaVersion, DEFAULT_PRIVILEGED_USERS};

    fn cluster() -> Snapshot {
        let mut snapshot = Snapshot::default();
        for (name, mode) in [("default", "Exclusive"), ("legacy", "Everywhere")] {
            let mesh = json!({"kind": "Mesh", "metadata": {"name": name}, "spec": {"meshServices": {"mode": mode}}});
            snapshot.insert(Object::from_json(mesh).unwrap().unwrap());
        }
        snapshot
    }

    /// The fields that fail for `metadata` (the spec is valid), as `user` on `version`.
    fn failing(metadata: serde_json::Value, user: &str, version: KumaVersion) -> Vec<String> {
        let identity: MeshIdentity = serde_json::from_value(json!({
            "metadata": metadata,
            "spec": {"provider": {"type": "Bundled", "bundled": {"autogenerate": {"enabled": true}}}}
        }))
        .unwrap();
        let settings = Settings {
            kuma_version: version,
            ..Settings::default()
        };
        check(&identity, None, user, &cluster(), &settings)
            .into_violations()
            .into_iter()
            .map(|v| v.field)
            .collect()
    }

    #[test]
    fn placement_mesh_origin_and_owner_rules() {
        use KumaVersion::{V2, V3};
        let mesh_field = r#"metadata.labels["kuma.io/mesh"]"#;
        let owner = |name: &str| json!([{"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "name": name, "uid": "1"}]);
        let gc = DEFAULT_PRIVILEGED_USERS[0];
        let cases: Vec<(serde_json::Value, &str, KumaVersion, Vec<&str>)> = vec![
            (
                json!({"name": "i", "namespace": "kuma-system"}),
                "admin",
                V2,
                vec![],
            ),
            (
                json!({"name": "i", "namespace": "shop"}),
                "admin",
                V2,
                vec!["metadata.namespace"],
            ),
            (json!({"name": "i", "namespace": "shop"}), gc, V2, vec![]),
            (
                json!({"name": "i", "namespace": "kuma-system", "labels": {"kuma.io/mesh": "legacy"}}),
                "admin",
                V2,
                vec![mesh_field],
            ),
            (
                json!({"name": "i", "namespace": "kuma-system", "labels": {"kuma.io/mesh": "legacy"}}),
                "admin",
                V3,
                vec![],
            ),
            (
                json!({"name": "i", "namespace": "kuma-system", "labels": {"kuma.io/mesh": "nope"}}),
                "admin",
                V3,
                vec![mesh_field],
            ),
            (
                json!({"name": "i", "namespace": "kuma-system", "labels": {"kuma.io/origin": "remote"}}),
                "admin",
                V2,
                vec![r#"metadata.labels["kuma.io/origin"]"#],
            ),
            (
                json!({"name": "i", "namespace": "kuma-system", "ownerReferences": owner("default")}),
                "admin",
                V2,
                vec![],
            ),
            (
                json!({"name": "i", "namespace": "kuma-system", "ownerReferences": owner("legacy")}),
                "admin",
                V2,
                vec!["metadata.ownerReferences[0].name"],
            ),
        ];
        for (metadata, user, version, want) in cases {
            assert_eq!(
                failing(metadata.clone(), user, version),
                want,
                "{metadata} as {user}"
            );
        }
    }
}
