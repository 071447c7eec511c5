//! The RBAC shipped under deploy/: which API requests it grants the server's ServiceAccount, so
//! tests can assert that everything the server (or `audit`) asked the fake API server for is
//! allowed.

use crate::support::repo_path;
use kuma_identity_webhook::cluster::file::parse_documents;

/// A rule of the shipped RBAC: where it applies (`None`: cluster-wide), API group, resource,
/// verbs.
pub struct Grant {
    namespace: Option<String>,
    group: String,
    resource: String,
    verbs: Vec<String>,
}

/// The rules deploy/base/rbac.yaml grants the server's ServiceAccount, with a Role's namespace
/// defaulting to the kustomization's (kuma-system).
pub fn granted_rules() -> Vec<Grant> {
    let text = std::fs::read_to_string(repo_path("deploy/base/rbac.yaml")).unwrap();
    let documents = parse_documents(&text).unwrap();
    let role = |kind: &str, name: &str| {
        documents
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind} {name} is bound but missing"))
    };
    let mut grants = Vec::new();
    for binding in &documents {
        let cluster_wide = match binding["kind"].as_str() {
            Some("ClusterRoleBinding") => true,
            Some("RoleBinding") => false,
            _ => continue,
        };
        let bound = binding["subjects"].as_array().unwrap().iter().any(|s| {
            s["kind"] == "ServiceAccount"
                && s["name"] == "kuma-identity-webhook"
                && s["namespace"] == "kuma-system"
        });
        if !bound {
            continue;
        }
        let role = role(
            binding["roleRef"]["kind"].as_str().unwrap(),
            binding["roleRef"]["name"].as_str().unwrap(),
        );
        let namespace = (!cluster_wide).then(|| {
            binding["metadata"]["namespace"]
                .as_str()
                .unwrap_or("kuma-system")
                .to_owned()
        });
        for rule in role["rules"].as_array().unwrap() {
            for group in crate::support::json_strings(&rule["apiGroups"]) {
                for resource in crate::support::json_strings(&rule["resources"]) {
                    grants.push(Grant {
                        namespace: namespace.clone(),
                        group: group.clone(),
                        resource,
                        verbs: crate::support::json_strings(&rule["verbs"]),
                    });
                }
            }
        }
    }
    grants
}

/// Whether a request as the fake records it (`GET /path?query`) is allowed by `grants`.
pub fn is_granted(grants: &[Grant], request: &str) -> bool {
    let Some(("GET", target)) = request.split_once(' ') else {
        return false;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return false,
    };
    let (namespace, resource, name) = match rest {
        ["namespaces", ns, resource, name @ ..] if name.len() <= 1 => {
            (Some(*ns), *resource, name.first())
        }
        [resource, name @ ..] if name.len() <= 1 => (None, *resource, name.first()),
        _ => return false,
    };
    let watch = query
        .split('&')
        .any(|pair| matches!(pair, "watch=true" | "watch=1"));
    let verb = match (watch, name) {
        (true, _) => "watch",
        (false, Some(_)) => "get",
        (false, None) => "list",
    };
    grants.iter().any(|grant| {
        grant.group == group
            && grant.resource == resource
            && grant.verbs.iter().any(|v| v == verb)
            && match &grant.namespace {
                None => true,
                Some(granted) => namespace == Some(granted.as_str()),
            }
    })
}
