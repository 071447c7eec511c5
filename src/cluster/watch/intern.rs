//! Equal label sets, strings and socket gaps of watched pods stored once.
//!
//! The pods of one workload carry the same labels, run in one namespace as one service account,
//! and lack the same parts of the SPIRE socket, so the live state hands out one shared copy of
//! each; label sets that differ (a StatefulSet's pod names) still share their keys and values.
//! Items no pod holds any more (an old `pod-template-hash` after a rollout) are dropped by a
//! sweep whenever a table has doubled since its last one, so each table stays within twice the
//! items in use and sweeping costs amortised constant time.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use crate::api::{LabelPairs, PodInfo, PodLabels, SocketGap};

/// Below this many items a table is never swept: too small to matter.
const SWEEP_FLOOR: usize = 1024;

/// One kind of shared item.
#[derive(Debug)]
struct Table<T: ?Sized> {
    items: HashSet<Arc<T>>,
    /// The table's size after the last sweep.
    kept: usize,
}

impl<T: ?Sized> Default for Table<T> {
    fn default() -> Self {
        Self {
            items: HashSet::new(),
            kept: 0,
        }
    }
}

impl<T: ?Sized + Hash + Eq> Table<T> {
    /// The shared copy of `item`, if there is one.
    fn get(&self, item: &T) -> Option<Arc<T>> {
        self.items.get(item).cloned()
    }

    /// The shared copy of `item`, which becomes the shared copy when there is none yet.
    fn share(&mut self, item: &Arc<T>) -> Arc<T> {
        if let Some(shared) = self.items.get(item) {
            return shared.clone();
        }
        if self.items.len() >= SWEEP_FLOOR.max(2 * self.kept) {
            // Only the table holds these: no pod uses them any more.
            self.items.retain(|item| Arc::strong_count(item) > 1);
            self.kept = self.items.len();
        }
        self.items.insert(item.clone());
        item.clone()
    }
}

#[derive(Debug, Default)]
pub(super) struct Interner {
    /// Whole label (and annotation) sets.
    sets: Table<LabelPairs>,
    /// The keys and values of the sets above.
    strings: Table<str>,
    gaps: Table<SocketGap>,
}

impl Interner {
    /// Makes `pod`'s namespace, service account, labels, annotations and socket gap the shared
    /// copies.
    pub(super) fn share(&mut self, pod: &mut PodInfo) {
        pod.namespace = self.strings.share(&pod.namespace);
        pod.service_account = self.strings.share(&pod.service_account);
        self.share_labels(&mut pod.labels);
        self.share_labels(&mut pod.annotations);
        if let Some(gap) = &mut pod.socket {
            *gap = self.gaps.share(gap);
        }
    }

    fn share_labels(&mut self, labels: &mut PodLabels) {
        let (sets, strings) = (&mut self.sets, &mut self.strings);
        labels.share(|pairs| {
            // A set seen before is the common case (another replica): its strings are shared.
            sets.get(pairs).unwrap_or_else(|| {
                let fresh: Arc<LabelPairs> = pairs
                    .iter()
                    .map(|(key, value)| (strings.share(key), strings.share(value)))
                    .collect();
                sets.share(&fresh)
            })
        });
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.strings.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(app: &str) -> PodInfo {
        let json = json!({"metadata": {"name": "p", "labels": {"app": app}}});
        PodInfo::from_json(&json, None)
    }

    #[test]
    fn equal_strings_are_shared_and_unused_ones_swept() {
        let mut interner = Interner::default();
        let (mut a, mut b) = (pod("web"), pod("web"));
        interner.share(&mut a);
        interner.share(&mut b);
        assert_eq!(a, pod("web"));
        // "app", "web", and "default" (the namespace and the service account).
        assert_eq!(interner.len(), 3);
        let value = |p: &PodInfo| p.labels.get("app").map(str::as_ptr);
        assert_eq!(value(&a), value(&b));
        assert!(a.labels.is_shared_with(&b.labels));
        assert!(Arc::ptr_eq(&a.namespace, &b.namespace));
        assert!(Arc::ptr_eq(&a.service_account, &b.service_account));
        // Pods that come and go leave the table bounded.
        for i in 0..10 * SWEEP_FLOOR {
            let mut gone = pod(&format!("app-{i}"));
            interner.share(&mut gone);
        }
        assert!(interner.len() <= 2 * SWEEP_FLOOR, "{}", interner.len());
        // Strings still in use survive every sweep.
        let mut c = pod("web");
        interner.share(&mut c);
        assert_eq!(value(&a), value(&c));
    }

    #[test]
    fn equal_socket_gaps_are_shared() {
        let mut interner = Interner::default();
        let gap = || SocketGap {
            volume_missing: true,
            unmounted: vec!["containers/kuma-sidecar".to_owned()],
        };
        let (mut a, mut b) = (pod("web"), pod("web"));
        a.socket = Some(Arc::new(gap()));
        b.socket = Some(Arc::new(gap()));
        interner.share(&mut a);
        interner.share(&mut b);
        assert_eq!(a, b);
        assert!(Arc::ptr_eq(
            a.socket.as_ref().unwrap(),
            b.socket.as_ref().unwrap()
        ));
    }
}
