//! The pods of a snapshot with the indexes decisions use, kept up to date one change at a time.
//!
//! The live state applies every watch event here and publishes a clone, so a publish costs a
//! copy of pointers and positions, never a rebuild of the indexes: positions are found by a
//! hash of the pod's key (plain numbers, copied in one go), and each label value's pods are
//! shared between the copies until one of them changes.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use crate::api::PodInfo;

/// The pods, in the order they were first added, with their position by key and by label.
#[derive(Debug, Clone, Default)]
pub struct Pods {
    pods: Vec<Arc<PodInfo>>,
    /// Position of each pod in `pods`, by `(namespace, name)`.
    positions: Positions,
    /// Positions of pods by label key and value: a MeshIdentity usually selects one app, so
    /// scanning only that app's pods keeps admission fast in large clusters. Ordered sets, so a
    /// label's pods come in the same order as all pods, and a removal costs a logarithm even
    /// when every pod carries the label.
    by_label: HashMap<String, HashMap<String, Arc<BTreeSet<usize>>>>,
    /// The group of each pod, by position (see [`Groups`]).
    group_of: Vec<usize>,
    groups: Groups,
}

impl Pods {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            pods: Vec::with_capacity(capacity),
            positions: Positions::with_capacity(capacity),
            by_label: HashMap::new(),
            group_of: Vec::with_capacity(capacity),
            groups: Groups::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &PodInfo> + '_ {
        self.pods.iter().map(Arc::as_ref)
    }

    /// Every pod with its group number.
    pub fn iter_grouped(&self) -> impl Iterator<Item = (&PodInfo, usize)> + '_ {
        self.iter().zip(self.group_of.iter().copied())
    }

    /// Group numbers are below this.
    pub fn group_bound(&self) -> usize {
        self.groups.bound()
    }

    /// Adds a pod, or replaces the one of its namespace and name in place.
    pub fn upsert(&mut self, pod: Arc<PodInfo>) {
        let Some(position) = self.positions.get(&self.pods, &pod.namespace, &pod.name) else {
            let position = self.pods.len();
            self.index(&pod, position);
            self.positions.insert(&pod.namespace, &pod.name, position);
            self.group_of.push(self.groups.join(&pod));
            self.pods.push(pod);
            return;
        };
        // Most updates (status, annotations) keep the labels: then only the pod is swapped.
        if self.pods[position].labels != pod.labels {
            self.unindex(position);
            self.index(&pod, position);
        }
        if !GroupKey::alike(&self.pods[position], &pod) {
            self.groups.leave(&self.pods[position]);
            self.group_of[position] = self.groups.join(&pod);
        }
        self.pods[position] = pod;
    }

    /// Removes the pod of `namespace` and `name`, if present. The last pod takes its place.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let Some(position) = self.positions.remove(&self.pods, namespace, name) else {
            return;
        };
        self.unindex(position);
        self.groups.leave(&self.pods[position]);
        let last = self.pods.len() - 1;
        if position != last {
            self.unindex(last);
            let moved = self.pods[last].clone();
            self.index(&moved, position);
            self.positions
                .moved(&moved.namespace, &moved.name, last, position);
        }
        self.pods.swap_remove(position);
        self.group_of.swap_remove(position);
    }

    /// The pods whose own label `key` is `value`, with their group numbers.
    pub fn labelled<'a>(
        &'a self,
        key: &str,
        value: &str,
    ) -> impl Iterator<Item = (&'a PodInfo, usize)> {
        self.by_label
            .get(key)
            .and_then(|values| values.get(value))
            .into_iter()
            .flat_map(|positions| positions.iter())
            .filter_map(|&p| Some((self.pods.get(p)?.as_ref(), *self.group_of.get(p)?)))
    }

    fn index(&mut self, pod: &PodInfo, position: usize) {
        // Look keys up before cloning them: most label keys and values are shared by many pods.
        for (label, value) in pod.labels.iter() {
            let values = match self.by_label.get_mut(label) {
                Some(values) => values,
                None => self.by_label.entry(label.to_owned()).or_default(),
            };
            match values.get_mut(value) {
                Some(positions) => drop(Arc::make_mut(positions).insert(position)),
                None => drop(values.insert(value.to_owned(), Arc::new(BTreeSet::from([position])))),
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
                Arc::make_mut(positions).remove(&position);
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

/// Pods that differ only by name: a decision about a pod reads its namespace, service account,
/// labels and annotations (and the cluster), never its name, so it holds for its whole group.
/// A Deployment's replicas make one group, so a scan over every pod of a mesh decides once per
/// workload and only looks the rest up by number.
#[derive(Debug, Clone, Default)]
struct Groups {
    /// Each group's number and member count, by what its pods share (one member stands for it).
    numbers: HashMap<GroupKey, (usize, usize)>,
    /// Numbers of groups that emptied, reused first so numbers stay below the pods' count.
    free: Vec<usize>,
    next: usize,
}

impl Groups {
    fn bound(&self) -> usize {
        self.next
    }

    /// Counts `pod` into its group; returns the group's number.
    fn join(&mut self, pod: &Arc<PodInfo>) -> usize {
        let key = GroupKey(pod.clone());
        if let Some((number, members)) = self.numbers.get_mut(&key) {
            *members += 1;
            return *number;
        }
        let number = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.numbers.insert(key, (number, 1));
        number
    }

    /// Counts `pod` out of its group, which is dropped once empty.
    fn leave(&mut self, pod: &Arc<PodInfo>) {
        let key = GroupKey(pod.clone());
        let Some((number, members)) = self.numbers.get_mut(&key) else {
            return;
        };
        *members -= 1;
        if *members == 0 {
            self.free.push(*number);
            self.numbers.remove(&key);
        }
    }
}

/// What the pods of a group share.
#[derive(Debug, Clone)]
struct GroupKey(Arc<PodInfo>);

impl GroupKey {
    fn alike(a: &PodInfo, b: &PodInfo) -> bool {
        a.namespace == b.namespace
            && a.service_account == b.service_account
            && a.labels == b.labels
            && a.annotations == b.annotations
    }
}

impl Hash for GroupKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let pod = &self.0;
        (
            &pod.namespace,
            &pod.service_account,
            &pod.labels,
            &pod.annotations,
        )
            .hash(state);
    }
}

impl PartialEq for GroupKey {
    fn eq(&self, other: &Self) -> bool {
        Self::alike(&self.0, &other.0)
    }
}

impl Eq for GroupKey {}

/// Where each pod is, by `(namespace, name)`. Held by a hash of the key rather than the key:
/// the table is plain numbers, so copying it for a publish is a copy of memory, and the key's
/// strings are the pod's own (checked against the pod on every lookup).
#[derive(Debug, Clone, Default)]
struct Positions {
    hasher: RandomState,
    by_hash: HashMap<u64, usize>,
    /// Keys whose hash another pod's key had already (practically never, but possible).
    collided: HashMap<(String, String), usize>,
}

impl Positions {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            by_hash: HashMap::with_capacity(capacity),
            ..Self::default()
        }
    }

    fn hash(&self, namespace: &str, name: &str) -> u64 {
        self.hasher.hash_one((namespace, name))
    }

    fn get(&self, pods: &[Arc<PodInfo>], namespace: &str, name: &str) -> Option<usize> {
        let is_it = |p: usize| {
            pods.get(p)
                .is_some_and(|pod| &*pod.namespace == namespace && pod.name == name)
        };
        match self.by_hash.get(&self.hash(namespace, name)) {
            Some(&p) if is_it(p) => Some(p),
            _ if self.collided.is_empty() => None,
            _ => self
                .collided
                .get(&(namespace.to_owned(), name.to_owned()))
                .copied(),
        }
    }

    /// Records a key not recorded yet.
    fn insert(&mut self, namespace: &str, name: &str, position: usize) {
        match self.by_hash.entry(self.hash(namespace, name)) {
            Entry::Vacant(entry) => drop(entry.insert(position)),
            Entry::Occupied(_) => {
                self.collided
                    .insert((namespace.to_owned(), name.to_owned()), position);
            }
        }
    }

    fn remove(&mut self, pods: &[Arc<PodInfo>], namespace: &str, name: &str) -> Option<usize> {
        let position = self.get(pods, namespace, name)?;
        let hash = self.hash(namespace, name);
        if self.by_hash.get(&hash) == Some(&position) {
            self.by_hash.remove(&hash);
        } else {
            self.collided
                .remove(&(namespace.to_owned(), name.to_owned()));
        }
        Some(position)
    }

    /// The pod of this key moved from `from` to `to`.
    fn moved(&mut self, namespace: &str, name: &str, from: usize, to: usize) {
        let hash = self.hash(namespace, name);
        match self.by_hash.get_mut(&hash) {
            Some(slot) if *slot == from => *slot = to,
            _ => {
                if let Some(slot) = self
                    .collided
                    .get_mut(&(namespace.to_owned(), name.to_owned()))
                {
                    *slot = to;
                }
            }
        }
    }
}

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
            .map(|(p, _)| p.display_name())
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
        assert!(pods.len() == 0 && pods.by_label.is_empty() && pods.positions.by_hash.is_empty());
        assert!(pods.groups.numbers.is_empty() && pods.group_of.is_empty());
    }

    #[test]
    fn a_replaced_pod_with_the_same_labels_is_the_new_version() {
        let mut pods = Pods::default();
        pods.upsert(pod("a", "1", "web"));
        let mut newer = PodInfo::clone(&pod("a", "1", "web"));
        newer.service_account = "web".into();
        pods.upsert(Arc::new(newer));
        let all: Vec<&str> = pods.iter().map(|p| p.service_account.as_ref()).collect();
        assert_eq!(all, ["web"]);
        assert_eq!(labelled(&pods, "web"), ["a/1"]);
    }

    #[test]
    fn pods_alike_but_for_their_name_share_a_group() {
        let mut pods = Pods::default();
        for (ns, name, app) in [
            ("a", "1", "web"),
            ("a", "2", "db"),
            ("a", "3", "web"),
            ("b", "1", "web"),
        ] {
            pods.upsert(pod(ns, name, app));
        }
        let groups = |pods: &Pods| pods.iter_grouped().map(|(_, g)| g).collect::<Vec<_>>();
        assert_eq!(groups(&pods), [0, 1, 0, 2]);
        assert_eq!(pods.group_bound(), 3);
        // A pod that changes labels changes group; an emptied group's number is reused.
        pods.upsert(pod("a", "2", "web"));
        assert_eq!(groups(&pods), [0, 0, 0, 2]);
        pods.upsert(pod("a", "3", "api"));
        assert_eq!(groups(&pods), [0, 0, 1, 2]);
        pods.remove("a", "1");
        assert_eq!(groups(&pods), [2, 0, 1]);
        let labelled: Vec<usize> = pods.labelled("app", "web").map(|(_, g)| g).collect();
        assert_eq!(labelled, [2, 0]);
        assert_eq!(pods.group_bound(), 3);
    }

    /// Keys whose hash is taken are still found, moved and removed (forced here: a real
    /// collision of 64-bit hashes cannot be produced on purpose).
    #[test]
    fn positions_keep_keys_whose_hash_collided() {
        let pods = vec![pod("a", "1", "web"), pod("a", "2", "web")];
        let mut positions = Positions::default();
        positions.insert("a", "1", 0);
        positions
            .collided
            .insert(("a".to_owned(), "2".to_owned()), 1);
        assert_eq!(positions.get(&pods, "a", "1"), Some(0));
        assert_eq!(positions.get(&pods, "a", "2"), Some(1));
        assert_eq!(positions.get(&pods, "a", "3"), None);
        positions.moved("a", "2", 1, 0);
        let swapped = vec![pods[1].clone(), pods[0].clone()];
        assert_eq!(positions.get(&swapped, "a", "2"), Some(0));
        assert_eq!(positions.remove(&swapped, "a", "2"), Some(0));
        assert!(positions.collided.is_empty() && positions.by_hash.len() == 1);
    }
}
