//! What the watches cover: the resources, their API coordinates, and one watch's scope.

use std::time::Duration;

use kube::api::ApiResource;

use crate::api::Kind;

/// The resources watched: the kinds decisions read.
pub type Resource = Kind;

/// The name of a resource's watch task, for the supervisor's log and metrics.
pub(super) fn task_name(resource: Resource) -> &'static str {
    match resource {
        Kind::Mesh => "watch-meshes",
        Kind::MeshIdentity => "watch-meshidentities",
        Kind::Namespace => "watch-namespaces",
        Kind::Pod => "watch-pods",
    }
}

/// Where the API serves a resource, for kube-rs.
pub(crate) fn api_resource(resource: Resource) -> ApiResource {
    ApiResource {
        group: resource.group().to_owned(),
        version: resource.version().to_owned(),
        api_version: resource.api_version().to_owned(),
        kind: resource.name().to_owned(),
        plural: resource.plural().to_owned(),
    }
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// MeshIdentities are only valid here, so only this namespace is watched for them.
    pub system_namespace: String,
    /// Pods of these namespaces only; empty means every namespace.
    pub pod_namespaces: Vec<String>,
    /// A watch failing for longer than this makes the server unready.
    pub staleness_bound: Duration,
}

pub(super) type Key = (String, String);

/// What one watch covers: a resource in one namespace, or in all of them (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Scope {
    pub(super) resource: Resource,
    pub(super) namespace: Option<String>,
}

impl Scope {
    /// How readiness messages name the watch.
    pub(super) fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} in {ns}", self.resource.plural()),
            None => self.resource.plural().to_owned(),
        }
    }
}

/// The watches to run: one per resource, but MeshIdentities in the system namespace only, and
/// pods once per listed namespace when `--watch-namespaces` is given.
pub(super) fn scopes(config: &WatchConfig) -> Vec<Scope> {
    let mut scopes = Vec::new();
    for resource in Kind::ALL {
        let namespaces = match resource {
            Kind::MeshIdentity => vec![Some(config.system_namespace.clone())],
            Kind::Pod if !config.pod_namespaces.is_empty() => {
                let mut namespaces = config.pod_namespaces.clone();
                // The same namespace twice would be two watches filling one partition slot.
                namespaces.sort_unstable();
                namespaces.dedup();
                namespaces.into_iter().map(Some).collect()
            }
            _ => vec![None],
        };
        scopes.extend(namespaces.into_iter().map(|namespace| Scope {
            resource,
            namespace,
        }));
    }
    scopes
}

/// The watched resource and namespace scope of a watch request (`?watch=true`), from its path:
/// `.../{plural}` or `.../namespaces/{ns}/{plural}`.
pub(super) fn watch_target(uri: &http::Uri) -> Option<(Resource, Option<&str>)> {
    let is_watch = uri
        .query()
        .unwrap_or("")
        .split('&')
        .any(|pair| matches!(pair, "watch=true" | "watch=1"));
    if !is_watch {
        return None;
    }
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (plural, parents) = segments.split_last()?;
    let resource = Kind::ALL.into_iter().find(|r| r.plural() == *plural)?;
    let namespace = match parents {
        [.., "namespaces", ns] => Some(*ns),
        _ => None,
    };
    Some((resource, namespace))
}
