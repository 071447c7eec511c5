//! The objects one watch holds, found by their namespace and name without storing either again.
//!
//! A map keyed by `(namespace, name)` would copy both strings for every pod (two allocations and
//! a 48-byte key beside a 16-byte object, tens of thousands of times); the table here holds only
//! the objects and finds one by hashing the key the object itself carries.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use crate::api::{Mesh, MeshIdentity, NamespaceInfo, PodInfo};
use crate::cluster::{Object, Snapshot};

/// A reduced object, ready to store. Everything but pods is boxed: they are few, and pods make
/// up most of the store, so the entry stays two words.
pub(super) enum Reduced {
    Mesh(Box<Mesh>),
    Identity(Box<MeshIdentity>),
    Namespace(Box<NamespaceInfo>),
    Pod(Arc<PodInfo>),
}

impl Reduced {
    /// The namespace (empty for cluster-scoped kinds) and name the snapshot knows it by.
    pub(super) fn key(&self) -> (&str, &str) {
        match self {
            Reduced::Mesh(mesh) => (
                mesh.metadata.namespace.as_deref().unwrap_or_default(),
                mesh.name(),
            ),
            Reduced::Identity(identity) => (identity.namespace(), identity.name()),
            Reduced::Namespace(namespace) => ("", &namespace.name),
            Reduced::Pod(pod) => (&pod.namespace, &pod.name),
        }
    }

    /// Adds this object to `live`, or replaces its previous version there.
    pub(super) fn apply_to(&self, live: &mut Snapshot) {
        match self {
            Reduced::Mesh(mesh) => live.insert(Object::Mesh(mesh.clone())),
            Reduced::Identity(identity) => live.insert(Object::MeshIdentity(identity.clone())),
            Reduced::Namespace(namespace) => {
                live.insert(Object::Namespace(NamespaceInfo::clone(namespace)))
            }
            Reduced::Pod(pod) => live.upsert_pod(pod.clone()),
        }
    }
}

/// Objects, at most one per namespace and name.
#[derive(Default)]
pub(super) struct Objects {
    hasher: RandomState,
    table: HashTable<Reduced>,
}

impl Objects {
    fn hash(&self, key: (&str, &str)) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Adds `object`, or replaces the one of its namespace and name.
    pub(super) fn insert(&mut self, object: Reduced) {
        let hash = self.hash(object.key());
        let hasher = &self.hasher;
        let entry = self.table.entry(
            hash,
            |held| held.key() == object.key(),
            |held| hasher.hash_one(held.key()),
        );
        match entry {
            Entry::Occupied(mut held) => *held.get_mut() = object,
            Entry::Vacant(slot) => drop(slot.insert(object)),
        }
    }

    /// Removes the object of `namespace` and `name`, if held.
    pub(super) fn remove(&mut self, namespace: &str, name: &str) {
        let key = (namespace, name);
        if let Ok(held) = self
            .table
            .find_entry(self.hash(key), |held| held.key() == key)
        {
            held.remove();
        }
    }

    pub(super) fn contains(&self, namespace: &str, name: &str) -> bool {
        let key = (namespace, name);
        self.table
            .find(self.hash(key), |held| held.key() == key)
            .is_some()
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Reduced> {
        self.table.iter()
    }
}

impl FromIterator<Reduced> for Objects {
    fn from_iter<I: IntoIterator<Item = Reduced>>(objects: I) -> Self {
        let mut held = Self::default();
        for object in objects {
            held.insert(object);
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(namespace: &str, name: &str, app: &str) -> Reduced {
        let json =
            json!({"metadata": {"name": name, "namespace": namespace, "labels": {"app": app}}});
        Reduced::Pod(Arc::new(PodInfo::from_json(&json, None)))
    }

    fn app(objects: &Objects, namespace: &str, name: &str) -> Option<String> {
        objects.iter().find_map(|o| match o {
            Reduced::Pod(pod) if o.key() == (namespace, name) => {
                pod.labels.get("app").map(str::to_owned)
            }
            _ => None,
        })
    }

    #[test]
    fn one_object_per_namespace_and_name() {
        let mut objects: Objects = [pod("a", "1", "web"), pod("b", "1", "web")]
            .into_iter()
            .collect();
        objects.insert(pod("a", "1", "db"));
        assert_eq!(objects.len(), 2);
        assert_eq!(app(&objects, "a", "1").as_deref(), Some("db"));
        assert!(objects.contains("b", "1") && !objects.contains("b", "2"));
        objects.remove("a", "1");
        objects.remove("a", "missing");
        assert!(!objects.contains("a", "1") && objects.contains("b", "1"));
        assert_eq!(objects.len(), 1);
        // Cluster-scoped kinds are found by their name alone.
        let namespace = NamespaceInfo {
            name: "shop".to_owned(),
            ..NamespaceInfo::default()
        };
        objects.insert(Reduced::Namespace(Box::new(namespace)));
        assert!(objects.contains("", "shop"));
    }
}
