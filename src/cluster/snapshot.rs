//! The read-only view of the cluster that every decision is made against.
//!
//! Decisions take `&dyn ClusterView`, so the same rules run against a file loaded at start-up
//! (quickstart, tests, the offline CLI) or against caches fed by Kubernetes watches.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::api::{string_map_at, Labels, Mesh, MeshIdentity, NamespaceInfo, PodInfo};
use crate::offline::sources::LoadError;

/// Lookups decisions need. Implementations must answer from memory: no call may reach the
/// Kubernetes API while an admission request is being handled.
pub trait ClusterView: Send + Sync {
    fn mesh(&self, name: &str) -> Option<&Mesh>;
    /// Every MeshIdentity of `mesh`, in no particular order.
    fn identities_in_mesh(&self, mesh: &str) -> Vec<&MeshIdentity>;
    fn namespace_labels(&self, namespace: &str) -> Option<&Labels>;
    /// Every known pod.
    fn pods(&self) -> Box<dyn Iterator<Item = &PodInfo> + '_>;
    /// The pods whose own label `key` is `value` (derived dataplane labels are not indexed).
    fn pods_labelled(&self, key: &str, value: &str) -> Box<dyn Iterator<Item = &PodInfo> + '_>;
}

/// An immutable set of objects with the indexes decisions use.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    meshes: BTreeMap<String, Mesh>,
    /// Keyed by mesh name, so selection only looks at the mesh's own identities.
    identities: BTreeMap<String, Vec<MeshIdentity>>,
    namespaces: BTreeMap<String, NamespaceInfo>,
    /// Shared with whoever built the snapshot (the live watches keep the same `Arc`s), so a new
    /// snapshot of a large cluster costs pointers, not copies.
    pods: Vec<Arc<PodInfo>>,
    /// Position of each pod in `pods`, by `(namespace, name)`.
    pod_positions: HashMap<(String, String), usize>,
    /// Positions of pods by label key and value: a MeshIdentity usually selects one app, so
    /// scanning only that app's pods keeps admission fast in large clusters.
    pods_by_label: HashMap<String, HashMap<String, Vec<usize>>>,
}

impl Snapshot {
    pub fn new(
        meshes: Vec<Mesh>,
        identities: Vec<MeshIdentity>,
        namespaces: Vec<NamespaceInfo>,
        pods: Vec<Arc<PodInfo>>,
    ) -> Self {
        let mut snapshot = Self {
            pods: Vec::with_capacity(pods.len()),
            pod_positions: HashMap::with_capacity(pods.len()),
            ..Self::default()
        };
        for pod in pods {
            snapshot.upsert_pod(pod);
        }
        for mesh in meshes {
            snapshot.meshes.insert(mesh.name().to_owned(), mesh);
        }
        for identity in identities {
            snapshot.upsert_identity(identity);
        }
        for ns in namespaces {
            snapshot.namespaces.insert(ns.name.clone(), ns);
        }
        snapshot
    }

    /// Loads a multi-document YAML (or JSON) file of Mesh, MeshIdentity, Namespace and Pod
    /// objects; `List` objects are flattened. Other kinds are ignored.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let mut snapshot = Self::default();
        for (index, object) in crate::offline::sources::read_documents(path)?
            .into_iter()
            .enumerate()
        {
            snapshot
                .add_object(object)
                .map_err(|message| LoadError::parse(path, index + 1, message))?;
        }
        Ok(snapshot)
    }

    /// Adds (or replaces, by name) one object. The error names what was wrong with it.
    pub fn add_object(&mut self, object: Value) -> Result<(), String> {
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        match kind {
            "Mesh" => {
                let mesh: Mesh =
                    serde_json::from_value(object).map_err(|e| format!("Mesh: {e}"))?;
                self.meshes.insert(mesh.name().to_owned(), mesh);
            }
            "MeshIdentity" => {
                let identity: MeshIdentity =
                    serde_json::from_value(object).map_err(|e| format!("MeshIdentity: {e}"))?;
                self.upsert_identity(identity);
            }
            "Namespace" => {
                let name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                self.namespaces.insert(
                    name.clone(),
                    NamespaceInfo {
                        name,
                        labels: string_map_at(&object, "/metadata/labels"),
                    },
                );
            }
            "Pod" => {
                self.upsert_pod(Arc::new(PodInfo::from_json(&object, None)));
            }
            _ => {}
        }
        Ok(())
    }

    fn upsert_pod(&mut self, pod: Arc<PodInfo>) {
        let key = (pod.namespace.clone(), pod.name.clone());
        let position = match self.pod_positions.get(&key) {
            Some(&position) => {
                self.unindex_pod(position);
                position
            }
            None => self.pods.len(),
        };
        // Live snapshots index every pod on each publish: look keys up before cloning them, as
        // most label keys and values are shared by many pods.
        for (label, value) in &pod.labels {
            let values = match self.pods_by_label.get_mut(label) {
                Some(values) => values,
                None => self.pods_by_label.entry(label.clone()).or_default(),
            };
            match values.get_mut(value) {
                Some(positions) => positions.push(position),
                None => {
                    values.insert(value.clone(), vec![position]);
                }
            }
        }
        self.pod_positions.insert(key, position);
        if position == self.pods.len() {
            self.pods.push(pod);
        } else {
            self.pods[position] = pod;
        }
    }

    fn unindex_pod(&mut self, position: usize) {
        for (label, value) in &self.pods[position].labels {
            if let Some(positions) = self
                .pods_by_label
                .get_mut(label)
                .and_then(|values| values.get_mut(value))
            {
                positions.retain(|p| *p != position);
            }
        }
    }

    fn upsert_identity(&mut self, identity: MeshIdentity) {
        let list = self
            .identities
            .entry(identity.mesh().to_owned())
            .or_default();
        list.retain(|i| !(i.name() == identity.name() && i.namespace() == identity.namespace()));
        list.push(identity);
    }

    /// The stored object with the kind, name and namespace of `like`, as JSON: what an apply of
    /// `like` would update. Pods are stored slimmed, so only their decision fields come back.
    pub fn object(&self, like: &Value) -> Option<Value> {
        let text = |pointer: &str| like.pointer(pointer).and_then(Value::as_str).unwrap_or("");
        let (name, namespace) = (text("/metadata/name"), text("/metadata/namespace"));
        match text("/kind") {
            "Mesh" => typed_json(self.meshes.get(name)?, "Mesh"),
            "MeshIdentity" => typed_json(
                self.identities
                    .values()
                    .flatten()
                    .find(|i| i.name() == name && i.namespace() == namespace)?,
                "MeshIdentity",
            ),
            "Pod" => {
                let position = *self
                    .pod_positions
                    .get(&(namespace.to_owned(), name.to_owned()))?;
                let pod = self.pods.get(position)?;
                Some(serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": pod.name,
                        "namespace": pod.namespace,
                        "labels": pod.labels,
                        "annotations": pod.annotations,
                    },
                    "spec": {"serviceAccountName": pod.service_account},
                }))
            }
            _ => None,
        }
    }

    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub fn identity_count(&self) -> usize {
        self.identities.values().map(Vec::len).sum()
    }

    pub fn mesh_count(&self) -> usize {
        self.meshes.len()
    }
}

/// A stored `kuma.io/v1alpha1` object as JSON with its `apiVersion` and `kind`.
fn typed_json(object: &impl serde::Serialize, kind: &str) -> Option<Value> {
    let mut value = serde_json::to_value(object).ok()?;
    let map = value.as_object_mut()?;
    map.insert("apiVersion".to_owned(), Value::from("kuma.io/v1alpha1"));
    map.insert("kind".to_owned(), Value::from(kind));
    Some(value)
}

impl ClusterView for Snapshot {
    fn mesh(&self, name: &str) -> Option<&Mesh> {
        self.meshes.get(name)
    }

    fn identities_in_mesh(&self, mesh: &str) -> Vec<&MeshIdentity> {
        self.identities
            .get(mesh)
            .map(|list| list.iter().collect())
            .unwrap_or_default()
    }

    fn namespace_labels(&self, namespace: &str) -> Option<&Labels> {
        self.namespaces.get(namespace).map(|ns| &ns.labels)
    }

    fn pods(&self) -> Box<dyn Iterator<Item = &PodInfo> + '_> {
        Box::new(self.pods.iter().map(Arc::as_ref))
    }

    fn pods_labelled(&self, key: &str, value: &str) -> Box<dyn Iterator<Item = &PodInfo> + '_> {
        let positions = self
            .pods_by_label
            .get(key)
            .and_then(|values| values.get(value))
            .map(Vec::as_slice)
            .unwrap_or_default();
        Box::new(
            positions
                .iter()
                .filter_map(|&p| self.pods.get(p).map(Arc::as_ref)),
        )
    }
}

/// Where the server reads its current view from. Swapping in a new snapshot is how a file reload
/// or a watch update becomes visible; readers keep the `Arc` they took for the whole request.
#[derive(Default)]
pub struct StateHandle {
    current: std::sync::RwLock<Option<Arc<dyn ClusterView>>>,
    /// Set while the source of the state is known to be stale (a watch failing too long).
    unready: std::sync::RwLock<Option<String>>,
    /// Set once the server is shutting down; never cleared.
    draining: std::sync::atomic::AtomicBool,
}

impl StateHandle {
    pub fn set(&self, view: Arc<dyn ClusterView>) {
        if let Ok(mut guard) = self.current.write() {
            *guard = Some(view);
        }
    }

    /// `None` until the first state is loaded: callers must not guess before that.
    pub fn get(&self) -> Option<Arc<dyn ClusterView>> {
        self.current.read().ok().and_then(|guard| guard.clone())
    }

    /// Marks the state stale (`Some(reason)`) or current again (`None`).
    pub fn set_unready_reason(&self, reason: Option<String>) {
        if let Ok(mut guard) = self.unready.write() {
            *guard = reason;
        }
    }

    /// Turns the server unready for good: it is shutting down, and endpoints must stop sending
    /// it requests (it keeps answering those that still come while the drain lasts).
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// `Ok` when a state is loaded, not known to be stale, and the server is not shutting down;
    /// else why not.
    pub fn readiness(&self) -> Result<(), String> {
        if self.draining.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("shutting down".to_owned());
        }
        if self.get().is_none() {
            return Err("cluster state not loaded".to_owned());
        }
        match self.unready.read().ok().and_then(|guard| guard.clone()) {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, app: &str) -> Value {
        json!({"kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}})
    }

    fn names(snapshot: &Snapshot, app: &str) -> Vec<String> {
        let mut names: Vec<String> = snapshot
            .pods_labelled("app", app)
            .map(|p| p.name.clone())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_pod_added_again_replaces_itself_in_every_index() {
        let mut snapshot = Snapshot::default();
        for object in [pod("a", "web"), pod("b", "web"), pod("c", "db")] {
            snapshot.add_object(object).unwrap();
        }
        assert_eq!(names(&snapshot, "web"), ["a", "b"]);
        snapshot.add_object(pod("a", "db")).unwrap();
        assert_eq!(snapshot.pod_count(), 3);
        assert_eq!(names(&snapshot, "web"), ["b"]);
        assert_eq!(names(&snapshot, "db"), ["a", "c"]);
        assert!(names(&snapshot, "other").is_empty());
        let all: Vec<&str> = snapshot.pods().map(|p| p.labels["app"].as_str()).collect();
        assert_eq!(all, ["db", "web", "db"]);

        // The bulk constructor the live state uses keeps the same rule.
        let pods: Vec<Arc<PodInfo>> = [pod("a", "web"), pod("a", "db")]
            .iter()
            .map(|p| Arc::new(PodInfo::from_json(p, None)))
            .collect();
        let built = Snapshot::new(Vec::new(), Vec::new(), Vec::new(), pods);
        assert_eq!(built.pod_count(), 1);
        assert_eq!(names(&built, "db"), ["a"]);
        assert!(names(&built, "web").is_empty());
    }
}
