//! An immutable set of cluster objects with the indexes decisions use.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::{Kind, Labels, Mesh, MeshIdentity, NamespaceInfo, PodInfo};

use crate::gotemplate::Template;
use crate::identity::render::{ParsedTemplates, TemplateError};

use super::object::Object;
use super::pods::Pods;
use super::view::ClusterView;

/// An immutable set of objects with the indexes decisions use.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    meshes: BTreeMap<String, Mesh>,
    /// Keyed by mesh name, so selection only looks at the mesh's own identities.
    identities: BTreeMap<String, Vec<StoredIdentity>>,
    namespaces: BTreeMap<String, NamespaceInfo>,
    /// Every distinct template text of the stored identities, parsed: identities mostly share a
    /// few templates, and a review of one (a status write, a re-apply, a new identity copying an
    /// old one) finds its templates parsed already. Rebuilt when an identity changes; shared by
    /// the snapshots published in between.
    parsed_templates: Arc<BTreeMap<String, Result<Template, TemplateError>>>,
    /// Shared with whoever built the snapshot (the live watches keep the same `Arc`s), with
    /// indexes maintained one change at a time, so a new snapshot costs pointers, not a rebuild.
    pods: Pods,
}

/// A MeshIdentity with its templates parsed once, when it was stored (shared by the snapshots
/// published after).
#[derive(Debug, Clone)]
struct StoredIdentity {
    identity: MeshIdentity,
    templates: Arc<ParsedTemplates>,
}

impl Snapshot {
    pub fn new(
        meshes: Vec<Mesh>,
        identities: Vec<MeshIdentity>,
        namespaces: Vec<NamespaceInfo>,
        pods: Vec<Arc<PodInfo>>,
    ) -> Self {
        let mut snapshot = Self {
            pods: Pods::with_capacity(pods.len()),
            ..Self::default()
        };
        for pod in pods {
            snapshot.pods.upsert(pod);
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

    /// Adds an object, or replaces the one of its kind, namespace and name.
    pub fn insert(&mut self, object: Object) {
        match object {
            Object::Mesh(mesh) => {
                self.meshes.insert(mesh.name().to_owned(), *mesh);
            }
            Object::MeshIdentity(identity) => self.upsert_identity(*identity),
            Object::Namespace(namespace) => {
                self.namespaces.insert(namespace.name.clone(), namespace);
            }
            Object::Pod(pod) => self.pods.upsert(Arc::new(pod)),
        }
    }

    /// Adds a pod shared with its owner (the live watches), or replaces the one of its namespace
    /// and name.
    pub(crate) fn upsert_pod(&mut self, pod: Arc<PodInfo>) {
        self.pods.upsert(pod);
    }

    /// Removes the object of `kind`, `namespace` (empty for cluster-scoped kinds) and `name`.
    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) {
        match kind {
            Kind::Mesh => drop(self.meshes.remove(name)),
            Kind::MeshIdentity => self.remove_identity(namespace, name),
            Kind::Namespace => drop(self.namespaces.remove(name)),
            Kind::Pod => self.pods.remove(namespace, name),
        }
    }

    /// Replaces the identity of the same name and namespace, in whichever mesh it was.
    fn upsert_identity(&mut self, identity: MeshIdentity) {
        let templates = Arc::new(ParsedTemplates {
            trust_domain: self.template(identity.trust_domain_template()),
            path: self.template(identity.path_template()),
        });
        let replaced = self.drop_identity(identity.namespace(), identity.name());
        let stored = StoredIdentity {
            templates,
            identity,
        };
        if !replaced {
            index_templates_of(&stored, Arc::make_mut(&mut self.parsed_templates));
        }
        self.identities
            .entry(stored.identity.mesh().to_owned())
            .or_default()
            .push(stored);
        if replaced {
            // The replaced identity's templates may be nobody's now.
            self.index_templates();
        }
    }

    fn remove_identity(&mut self, namespace: &str, name: &str) {
        if self.drop_identity(namespace, name) {
            self.index_templates();
        }
    }

    /// Whether there was such an identity.
    fn drop_identity(&mut self, namespace: &str, name: &str) -> bool {
        let before = self.identity_count();
        for list in self.identities.values_mut() {
            list.retain(|i| !(i.identity.name() == name && i.identity.namespace() == namespace));
        }
        self.identities.retain(|_, list| !list.is_empty());
        self.identity_count() != before
    }

    /// Rebuilds [`Self::parsed_templates`] from the stored identities (clones of shared parses).
    fn index_templates(&mut self) {
        let mut index = BTreeMap::new();
        for stored in self.identities.values().flatten() {
            index_templates_of(stored, &mut index);
        }
        self.parsed_templates = Arc::new(index);
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

fn index_templates_of(
    stored: &StoredIdentity,
    index: &mut BTreeMap<String, Result<Template, TemplateError>>,
) {
    let identity = &stored.identity;
    for (source, parsed) in [
        (
            identity.trust_domain_template(),
            &stored.templates.trust_domain,
        ),
        (identity.path_template(), &stored.templates.path),
    ] {
        if !index.contains_key(source) {
            index.insert(source.to_owned(), parsed.clone());
        }
    }
}

impl ClusterView for Snapshot {
    fn mesh(&self, name: &str) -> Option<&Mesh> {
        self.meshes.get(name)
    }

    fn identities_in_mesh(&self, mesh: &str) -> Vec<&MeshIdentity> {
        self.identities
            .get(mesh)
            .map(|list| list.iter().map(|stored| &stored.identity).collect())
            .unwrap_or_default()
    }

    fn parsed_template(&self, source: &str) -> Option<&Result<Template, TemplateError>> {
        self.parsed_templates.get(source)
    }

    fn templates_of(&self, identity: &MeshIdentity) -> Option<&ParsedTemplates> {
        self.identities
            .get(identity.mesh())?
            .iter()
            .find(|stored| std::ptr::eq(&stored.identity, identity))
            .map(|stored| stored.templates.as_ref())
    }

    fn namespace_labels(&self, namespace: &str) -> Option<&Labels> {
        self.namespaces.get(namespace).map(|ns| &ns.labels)
    }

    fn pods(&self) -> Box<dyn Iterator<Item = &PodInfo> + '_> {
        Box::new(self.pods.iter())
    }

    fn pods_labelled(&self, key: &str, value: &str) -> Box<dyn Iterator<Item = &PodInfo> + '_> {
        Box::new(self.pods.labelled(key, value).map(|(pod, _)| pod))
    }

    fn pods_grouped(&self) -> Box<dyn Iterator<Item = (&PodInfo, usize)> + '_> {
        Box::new(self.pods.iter_grouped())
    }

    fn pods_labelled_grouped(
        &self,
        key: &str,
        value: &str,
    ) -> Box<dyn Iterator<Item = (&PodInfo, usize)> + '_> {
        Box::new(self.pods.labelled(key, value))
    }

    fn pod_group_bound(&self) -> usize {
        self.pods.group_bound()
    }
}

#[cfg(test)]
impl Snapshot {
    /// The names of the pods labelled `app: <app>`, sorted: what the index tests compare.
    pub(crate) fn names_labelled_app(&self, app: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .pods_labelled("app", app)
            .map(|p| p.name.clone())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::render::parse_template;
    use serde_json::json;

    fn pod(name: &str, app: &str) -> PodInfo {
        let json = json!({"kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}});
        PodInfo::from_json(&json, None)
    }

    #[test]
    fn an_identity_moved_to_another_mesh_leaves_the_first() {
        let identity = |mesh: &str| {
            let json = json!({"metadata": {"name": "i", "namespace": "kuma-system", "labels": {"kuma.io/mesh": mesh}}});
            Object::MeshIdentity(Box::new(serde_json::from_value(json).unwrap()))
        };
        let mut snapshot = Snapshot::default();
        snapshot.insert(identity("a"));
        snapshot.insert(identity("b"));
        assert!(snapshot.identities_in_mesh("a").is_empty());
        assert_eq!(snapshot.identities_in_mesh("b").len(), 1);
        assert_eq!(snapshot.identity_count(), 1);
    }

    #[test]
    fn stored_identities_keep_their_parsed_templates() {
        let json = json!({"metadata": {"name": "i", "namespace": "kuma-system"},
            "spec": {"spiffeID": {"path": "/ns/{{ .Namespace }}", "trustDomain": "{{ .Mesh"}}});
        let identity: MeshIdentity = serde_json::from_value(json).unwrap();
        let mut snapshot = Snapshot::default();
        snapshot.insert(Object::MeshIdentity(Box::new(identity.clone())));
        let stored = snapshot.identities_in_mesh(identity.mesh())[0];
        let templates = snapshot.templates_of(stored).unwrap();
        let parsed = ParsedTemplates::of(&identity);
        assert_eq!(
            templates.trust_domain.as_ref().err(),
            parsed.trust_domain.as_ref().err()
        );
        assert!(templates.trust_domain.is_err() && templates.path.is_ok());
        // Only the stored object has them: an equal one from a request is parsed by the caller.
        assert!(snapshot.templates_of(&identity).is_none());
    }

    #[test]
    fn the_template_texts_of_stored_identities_are_found_parsed() {
        let identity = |name: &str, path: &str| {
            let json = json!({"metadata": {"name": name, "namespace": "kuma-system"},
                "spec": {"spiffeID": {"path": path, "trustDomain": "{{ .Mesh"}}});
            Object::MeshIdentity(Box::new(serde_json::from_value(json).unwrap()))
        };
        let texts = |snapshot: &Snapshot| -> Vec<String> {
            ["{{ .Mesh", "/a/{{ .Namespace }}", "/b"]
                .into_iter()
                .filter(|text| snapshot.parsed_template(text).is_some())
                .map(str::to_owned)
                .collect()
        };
        let mut snapshot = Snapshot::default();
        snapshot.insert(identity("one", "/a/{{ .Namespace }}"));
        snapshot.insert(identity("two", "/a/{{ .Namespace }}"));
        assert_eq!(texts(&snapshot), ["{{ .Mesh", "/a/{{ .Namespace }}"]);
        // What parsing would give, failures included.
        let parsed = snapshot.parsed_template("{{ .Mesh").unwrap();
        assert_eq!(
            parsed.as_ref().err(),
            parse_template("{{ .Mesh").err().as_ref()
        );
        let parsed = snapshot.parsed_template("/a/{{ .Namespace }}").unwrap();
        assert_eq!(
            parsed.as_ref().unwrap().root_fields(),
            [("Namespace".to_owned(), 1)]
        );
        // A text stays while any identity has it, and goes with the last one.
        snapshot.insert(identity("one", "/b"));
        assert_eq!(texts(&snapshot), ["{{ .Mesh", "/a/{{ .Namespace }}", "/b"]);
        snapshot.remove(Kind::MeshIdentity, "kuma-system", "two");
        assert_eq!(texts(&snapshot), ["{{ .Mesh", "/b"]);
        snapshot.remove(Kind::MeshIdentity, "kuma-system", "one");
        assert!(texts(&snapshot).is_empty());
    }

    #[test]
    fn a_pod_added_again_replaces_itself_in_every_index() {
        let mut snapshot = Snapshot::default();
        for object in [pod("a", "web"), pod("b", "web"), pod("c", "db")] {
            snapshot.insert(Object::Pod(object));
        }
        assert_eq!(snapshot.names_labelled_app("web"), ["a", "b"]);
        snapshot.insert(Object::Pod(pod("a", "db")));
        assert_eq!(snapshot.pod_count(), 3);
        assert_eq!(snapshot.names_labelled_app("web"), ["b"]);
        assert_eq!(snapshot.names_labelled_app("db"), ["a", "c"]);
        assert!(snapshot.names_labelled_app("other").is_empty());
        let all: Vec<&str> = snapshot
            .pods()
            .filter_map(|p| p.labels.get("app"))
            .collect();
        assert_eq!(all, ["db", "web", "db"]);

        // The bulk constructor the live state uses keeps the same rule.
        let pods: Vec<Arc<PodInfo>> = [pod("a", "web"), pod("a", "db")]
            .into_iter()
            .map(Arc::new)
            .collect();
        let built = Snapshot::new(Vec::new(), Vec::new(), Vec::new(), pods);
        assert_eq!(built.pod_count(), 1);
        assert_eq!(built.names_labelled_app("db"), ["a"]);
        assert!(built.names_labelled_app("web").is_empty());
    }
}
