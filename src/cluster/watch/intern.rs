//! Equal label strings of watched pods stored once.
//!
//! The pods of one workload carry the same label keys and values, so the live state hands out
//! one shared copy of each. Strings no pod holds any more (an old `pod-template-hash` after a
//! rollout) are dropped by a sweep whenever the table has doubled since the last one, so the
//! table stays within twice the strings in use and sweeping costs amortised constant time.

use std::collections::HashSet;
use std::sync::Arc;

use crate::api::PodInfo;

/// Below this many strings the table is never swept: too small to matter.
const SWEEP_FLOOR: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct Interner {
    strings: HashSet<Arc<str>>,
    /// The table's size after the last sweep.
    kept: usize,
}

impl Interner {
    /// The shared copy of `s`, which becomes the shared copy when there is none yet.
    pub(super) fn intern(&mut self, s: &Arc<str>) -> Arc<str> {
        if let Some(shared) = self.strings.get(s.as_ref()) {
            return shared.clone();
        }
        if self.strings.len() >= SWEEP_FLOOR.max(2 * self.kept) {
            // Only the table holds these: no pod uses them any more.
            self.strings.retain(|s| Arc::strong_count(s) > 1);
            self.kept = self.strings.len();
        }
        self.strings.insert(s.clone());
        s.clone()
    }

    /// Makes `pod`'s label and annotation strings the shared copies.
    pub(super) fn share_labels(&mut self, pod: &mut PodInfo) {
        pod.labels.share_strings(|s| self.intern(s));
        pod.annotations.share_strings(|s| self.intern(s));
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.strings.len()
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
        interner.share_labels(&mut a);
        interner.share_labels(&mut b);
        assert_eq!(a, pod("web"));
        assert_eq!(interner.len(), 2);
        let value = |p: &PodInfo| p.labels.get("app").map(str::as_ptr);
        assert_eq!(value(&a), value(&b));
        // Pods that come and go leave the table bounded.
        for i in 0..10 * SWEEP_FLOOR {
            let mut gone = pod(&format!("app-{i}"));
            interner.share_labels(&mut gone);
        }
        assert!(interner.len() <= 2 * SWEEP_FLOOR, "{}", interner.len());
        // Strings still in use survive every sweep.
        let mut c = pod("web");
        interner.share_labels(&mut c);
        assert_eq!(value(&a), value(&c));
    }
}
