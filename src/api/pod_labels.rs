//! A pod's labels in the compact form the live state holds by the tens of thousands.
//!
//! A `BTreeMap<String, String>` costs a 500-byte node plus two allocations per label for every
//! pod, while the pods of one workload carry the same labels: here a pod holds a pointer to one
//! sorted slice of shared strings, and the live state hands out each distinct slice (and each
//! distinct string) once, so a Deployment's replicas hold one copy of their labels between them.

use std::sync::Arc;

use super::labels::Labels;

/// Labels sorted by key (the order a `BTreeMap` gives, so listing them reads the same), the
/// whole slice and each string shareable with other pods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PodLabels(Arc<LabelPairs>);

/// The key and value of each label, in key order.
pub type LabelPairs = [(Arc<str>, Arc<str>)];

impl PodLabels {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_ref())
    }

    /// The labels in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels as a map, for rendering and explaining.
    pub fn to_labels(&self) -> Labels {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Replaces the labels with the equal ones `shared` returns for them (a copy other pods hold
    /// already), so equal label sets are stored once. Anything but an equal copy is ignored: the
    /// labels stay what they were.
    pub fn share(&mut self, shared: impl FnOnce(&Arc<LabelPairs>) -> Arc<LabelPairs>) {
        let shared = shared(&self.0);
        if shared == self.0 {
            self.0 = shared;
        }
    }
}

#[cfg(test)]
impl PodLabels {
    /// Whether both hold the one copy of their labels.
    pub(crate) fn is_shared_with(&self, other: &PodLabels) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<Labels> for PodLabels {
    fn from(labels: Labels) -> Self {
        // A map iterates in key order, which is the order lookups rely on.
        Self(
            labels
                .into_iter()
                .map(|(k, v)| (Arc::from(k), Arc::from(v)))
                .collect(),
        )
    }
}

/// Reading one label, from a pod's labels or a namespace's.
pub trait LabelLookup {
    fn label(&self, key: &str) -> Option<&str>;
}

impl LabelLookup for PodLabels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl LabelLookup for Labels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_order_match_the_map() {
        let map = Labels::from([
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
            ("c".to_owned(), String::new()),
        ]);
        let labels = PodLabels::from(map.clone());
        for key in ["a", "b", "c", "d", ""] {
            assert_eq!(labels.get(key), map.label(key), "{key}");
        }
        assert_eq!(labels.to_labels(), map);
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(labels.len(), 3);
        assert!(!labels.is_empty() && PodLabels::default().is_empty());
    }

    #[test]
    fn only_an_equal_copy_is_shared() {
        let one = |value: &str| PodLabels::from(Labels::from([("a".to_owned(), value.to_owned())]));
        let (mut labels, copy) = (one("1"), one("1"));
        labels.share(|_| copy.0.clone());
        assert!(Arc::ptr_eq(&labels.0, &copy.0));
        let before = labels.clone();
        labels.share(|_| one("2").0);
        assert_eq!(labels, before);
        assert!(Arc::ptr_eq(&labels.0, &copy.0));
    }
}
