//! The pods of a snapshot with the indexes decisions use, kept up to date one change at a time.
//!
//! The live state applies every watch event here and publishes a clone, so a publish costs a
//! copy of pointers and positions, never a rebuild of the indexes. Keys share the pods' own
//! strings (an `Arc` each), so the indexes add no copy of any pod's name or namespace.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::api::PodInfo;

/// The pods, in the order they were first added, with their position by key and by label.
#[derive(Debug, Clone, Default)]
pub struct Pods {
    pods: Vec<Arc<PodInfo>>,
    /// Position of each pod in `pods`, by `(namespace, name)`.
    positions: HashMap<PodKey, usize>,
    /// Positions of pods by label key and value: a MeshIdentity usually selects one app, so
    /// scanning only that app's pods keeps admission fast in large clusters. Ordered sets, so a
    /// label's pods come in the same order as all pods, and a removal costs a logarithm even
    /// when every pod carries the label.
    by_label: HashMap<String, HashMap<String, BTreeSet<usize>>>,
}

impl Pods {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            pods: Vec::with_capacity(capacity),
            positions: HashMap::with_capacity(capacity),
            by_label: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &PodInfo> + '_ {
        self.pods.iter().map(Arc::as_ref)
    }

    /// Adds a pod, or replaces the one of its namespace and name in place.
    pub fn upsert(&mut self, pod: Arc<PodInfo>) {
        let key = PodKey(pod.clone());
        let Some(&position) = self.positions.get(&key) else {
            let position = self.pods.len();
            self.index(&pod, position);
            self.positions.insert(key, position);
            self.pods.push(pod);
            return;
        };
        // Most updates (status, annotations) keep the labels: then only the pod is swapped.
        if self.pods[position].labels != pod.labels {
            self.unindex(position);
            self.index(&pod, position);
        }
        // The key holds the pod it was made from: keep it pointing at the current one.
        self.positions.remove(&key);
        self.positions.insert(key, position);
        self.pods[position] = pod;
    }

    /// Removes the pod of `namespace` and `name`, if present. The last pod takes its place.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let Some(position) = self.positions.remove(&(namespace, name) as &dyn KeyOf) else {
            return;
        };
        self.unindex(position);
        let last = self.pods.len() - 1;
        if position != last {
            self.unindex(last);
            let moved = self.pods[last].clone();
            self.index(&moved, position);
            if let Some(slot) = self.positions.get_mut(&PodKey(moved)) {
                *slot = position;
            }
        }
        self.pods.swap_remove(position);
    }

    /// The pods whose own label `key` is `value`.
    pub fn labelled<'a>(&'a self, key: &str, value: &str) -> impl Iterator<Item = &'a PodInfo> {
        self.by_label
            .get(key)
            .and_then(|values| values.get(value))
            .into_iter()
            .flatten()
            .filter_map(|&p| self.pods.get(p).map(Arc::as_ref))
    }

    fn index(&mut self, pod: &PodInfo, position: usize) {
        // Look keys up before cloning them: most label keys and values are shared by many pods.
        for (label, value) in pod.labels.iter() {
            let values = match self.by_label.get_mut(label) {
                Some(values) => values,
                None => self.by_label.entry(label.to_owned()).or_default(),
            };
            match values.get_mut(value) {
                Some(positions) => drop(positions.insert(position)),
                None => drop(values.insert(value.to_owned(), BTreeSet::from([position]))),
            }
        }
    }

    fn unindex(&mut self, position: usize) {
        let Some(pod) = self.pods.get(position) else {
            return;
        };
        for (label, value) in pod.labels.iter() {
            let Some(values) = self.by_label.get_mut(label) else {
                continue;
            };
            if let Some(positions) = values.get_mut(value) {
                positions.remove(&position);
                // A value no pod carries any more (an old pod-template-hash) must not stay.
                if positions.is_empty() {
                    values.remove(value);
                }
            }
            if values.is_empty() {
                self.by_label.remove(label);
            }
        }
    }
}

/// A pod's `(namespace, name)`, sharing the pod's strings.
#[derive(Debug, Clone)]
struct PodKey(Arc<PodInfo>);

/// What a key is made of, so the map can be searched with borrowed strings.
trait KeyOf {
    fn key(&self) -> (&str, &str);
}

impl KeyOf for PodKey {
    fn key(&self) -> (&str, &str) {
        (&self.0.namespace, &self.0.name)
    }
}

impl KeyOf for (&str, &str) {
    fn key(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn KeyOf + 'a> for PodKey {
    fn borrow(&self) -> &(dyn KeyOf + 'a) {
        self
    }
}

// `PodKey` and `dyn KeyOf` must hash alike for the borrowed lookups to find anything: both
// hash the `(namespace, name)` tuple.
impl Hash for dyn KeyOf + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for dyn KeyOf + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for dyn KeyOf + '_ {}

impl Hash for PodKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialEq for PodKey {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for PodKey {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(namespace: &str, name: &str, app: &str) -> Arc<PodInfo> {
        let json =
            json!({"metadata": {"name": name, "namespace": namespace, "labels": {"app": app}}});
        Arc::new(PodInfo::from_json(&json, None))
    }

    fn labelled(pods: &Pods, app: &str) -> Vec<String> {
        pods.labelled("app", app)
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect()
    }

    #[test]
    fn removal_moves_the_last_pod_into_every_index() {
        let mut pods = Pods::default();
        for (ns, name, app) in [("a", "1", "web"), ("a", "2", "db"), ("b", "1", "web")] {
            pods.upsert(pod(ns, name, app));
        }
        pods.remove("a", "1");
        pods.remove("a", "missing");
        assert_eq!(pods.len(), 2);
        assert_eq!(labelled(&pods, "web"), ["b/1"]);
        assert_eq!(labelled(&pods, "db"), ["a/2"]);
        // The moved pod is found by its key: replacing it changes its labels in place.
        pods.upsert(pod("b", "1", "db"));
        assert_eq!(pods.len(), 2);
        assert!(labelled(&pods, "web").is_empty());
        assert_eq!(labelled(&pods, "db"), ["b/1", "a/2"]);
        // Values no pod carries are dropped from the index.
        assert!(!pods.by_label["app"].contains_key("web"));
        pods.remove("b", "1");
        pods.remove("a", "2");
        assert!(pods.len() == 0 && pods.by_label.is_empty() && pods.positions.is_empty());
    }

    #[test]
    fn a_replaced_pod_with_the_same_labels_is_the_new_version() {
        let mut pods = Pods::default();
        pods.upsert(pod("a", "1", "web"));
        let mut newer = PodInfo::clone(&pod("a", "1", "web"));
        newer.service_account = "web".to_owned();
        pods.upsert(Arc::new(newer));
        let all: Vec<&str> = pods.iter().map(|p| p.service_account.as_str()).collect();
        assert_eq!(all, ["web"]);
        assert_eq!(labelled(&pods, "web"), ["a/1"]);
    }
}
