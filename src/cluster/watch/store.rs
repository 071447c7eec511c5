//! The objects the watches have seen and each watch's health, partitioned by watch.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::DynamicObject;

use crate::cluster::{Object, Snapshot};

use super::intern::Interner;
use super::objects::{Objects, Reduced};
use super::resources::{Key, Resource, Scope};

/// A watch connection the API server has kept open this long counts as recovery, and one that
/// ends sooner as a failure. A quiet resource sends no event after a reconnect, so an open
/// stream is the only sign it works; a response that is cut off or errors as it starts (a proxy
/// dropping it, a truncated body) is over well before this.
pub(super) const WATCH_SETTLE: Duration = Duration::from_secs(2);

/// A watch connection the API server answered with success and that is still streaming.
#[derive(Clone, Copy)]
pub(super) struct OpenWatch {
    /// Tells this connection from the next one, so a late close does not end the newer one.
    pub(super) id: u64,
    pub(super) since: Instant,
    /// Counted as recovery already (once per connection).
    pub(super) credited: bool,
}

/// One watch's health.
#[derive(Clone, Copy)]
pub(super) struct WatchHealth {
    pub(super) synced: bool,
    pub(super) last_success: Instant,
    pub(super) failing_since: Option<Instant>,
    pub(super) last_error: Option<Instant>,
    pub(super) open: Option<OpenWatch>,
}

impl WatchHealth {
    /// Real progress: a completed list or a watch event, or a connection kept open.
    pub(super) fn progressed(&mut self, now: Instant) {
        self.last_success = now;
        self.failing_since = None;
    }

    pub(super) fn failed(&mut self, now: Instant) {
        self.failing_since.get_or_insert(now);
        self.last_error = Some(now);
    }

    pub(super) fn stale(&self, bound: Duration) -> bool {
        self.failing_since
            .is_some_and(|since| since.elapsed() > bound)
    }
}

/// The objects one watch has seen, and its health. Each watch owns its partition, so a
/// (re-)list replaces only what that watch covers, and readiness needs every partition synced.
pub(super) struct Partition {
    pub(super) scope: Scope,
    pub(super) objects: Objects,
    pub(super) health: WatchHealth,
}

pub(super) struct Shared {
    pub(super) partitions: Mutex<Vec<Partition>>,
    /// Every partition's objects as one snapshot, updated with each change (always locked after
    /// `partitions`): a publish clones it rather than rebuilding its indexes.
    pub(super) live: Mutex<Snapshot>,
    /// Shares equal label strings among the watched pods.
    pub(super) interner: Mutex<Interner>,
    pub(super) connections: AtomicU64,
    pub(super) changed: tokio::sync::Notify,
}

impl Shared {
    pub(super) fn new(partitions: Vec<Partition>) -> Self {
        Self {
            partitions: Mutex::new(partitions),
            live: Mutex::new(Snapshot::default()),
            interner: Mutex::new(Interner::default()),
            connections: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// The partition index of the watch a request is for.
    pub(super) fn index_of(&self, resource: Resource, namespace: Option<&str>) -> Option<usize> {
        let partitions = self.partitions.lock().ok()?;
        partitions
            .iter()
            .position(|p| p.scope.resource == resource && p.scope.namespace.as_deref() == namespace)
    }

    pub(super) fn with_health(&self, index: usize, f: impl FnOnce(&mut WatchHealth)) {
        if let Ok(mut partitions) = self.partitions.lock() {
            if let Some(partition) = partitions.get_mut(index) {
                f(&mut partition.health);
            }
        }
    }
}

/// One change a watch brings to its partition.
pub(super) enum Change {
    /// This object replaces the one of its namespace and name (if any).
    Apply(Reduced),
    /// The object of this key is gone (deleted, or its new version does not decode).
    Remove(Key),
    /// A (re-)list ended with these objects: they replace everything the watch held.
    Relisted(Objects),
}

#[cfg(test)]
impl Partition {
    /// A fresh partition watching pods in every namespace, as the tests use it.
    pub(super) fn all_pods(now: Instant) -> Self {
        Self::new(
            Scope {
                resource: crate::api::Kind::Pod,
                namespace: None,
            },
            now,
        )
    }
}

impl Partition {
    /// A partition for `scope` that has seen nothing yet.
    pub(super) fn new(scope: Scope, now: Instant) -> Self {
        Self {
            scope,
            objects: Objects::default(),
            health: WatchHealth {
                synced: false,
                last_success: now,
                failing_since: None,
                last_error: None,
                open: None,
            },
        }
    }

    /// Applies `change` to this partition and to `live`, which holds every partition's objects.
    pub(super) fn apply(&mut self, change: Change, live: &mut Snapshot) {
        let kind = self.scope.resource;
        match change {
            Change::Apply(reduced) => {
                reduced.apply_to(live);
                self.objects.insert(reduced);
            }
            Change::Remove((namespace, name)) => {
                live.remove(kind, &namespace, &name);
                self.objects.remove(&namespace, &name);
            }
            Change::Relisted(listed) => {
                let old = std::mem::replace(&mut self.objects, listed);
                let gone = old.iter().map(Reduced::key);
                for (namespace, name) in gone.filter(|(ns, n)| !self.objects.contains(ns, n)) {
                    live.remove(kind, namespace, name);
                }
                for reduced in self.objects.iter() {
                    reduced.apply_to(live);
                }
                self.health.synced = true;
            }
        }
    }
}

/// Decodes an object as the snapshot holds it, a pod's label strings and socket gap shared
/// through `interner`.
pub(super) fn reduce(
    resource: Resource,
    object: DynamicObject,
    interner: &Mutex<Interner>,
) -> Result<Reduced, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    Ok(
        match Object::decode(resource, value).map_err(|e| e.to_string())? {
            Object::Mesh(mesh) => Reduced::Mesh(mesh),
            Object::MeshIdentity(identity) => Reduced::Identity(identity),
            Object::Namespace(namespace) => Reduced::Namespace(Box::new(namespace)),
            Object::Pod(mut pod) => {
                if let Ok(mut interner) = interner.lock() {
                    interner.share(&mut pod);
                }
                Reduced::Pod(Arc::new(pod))
            }
        },
    )
}

pub(super) fn key_of(object: &DynamicObject) -> Key {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

/// Objects held for `resource`, over all its watches.
pub(super) fn count(partitions: &[Partition], resource: Resource) -> usize {
    partitions
        .iter()
        .filter(|p| p.scope.resource == resource)
        .map(|p| p.objects.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::PodInfo;
    use serde_json::json;

    fn pod(name: &str, app: &str) -> Reduced {
        let json = json!({"metadata": {"name": name, "namespace": "shop", "labels": {"app": app}}});
        Reduced::Pod(Arc::new(PodInfo::from_json(&json, None)))
    }

    /// The live snapshot follows every change, and a re-list removes what it no longer lists.
    #[test]
    fn the_live_snapshot_follows_changes_and_relists() {
        let now = Instant::now();
        let mut partition = Partition::all_pods(now);
        let mut live = Snapshot::default();
        let listed: Objects = [pod("a", "web"), pod("b", "web"), pod("c", "db")]
            .into_iter()
            .collect();
        partition.apply(Change::Relisted(listed), &mut live);
        assert!(partition.health.synced);
        assert_eq!(live.names_labelled_app("web"), ["a", "b"]);
        partition.apply(Change::Apply(pod("a", "db")), &mut live);
        let key = ("shop".to_owned(), "c".to_owned());
        partition.apply(Change::Remove(key), &mut live);
        assert_eq!(live.names_labelled_app("web"), ["b"]);
        assert_eq!(live.names_labelled_app("db"), ["a"]);
        let relisted: Objects = [pod("b", "db")].into_iter().collect();
        partition.apply(Change::Relisted(relisted), &mut live);
        assert_eq!(live.pod_count(), 1);
        assert_eq!(partition.objects.len(), 1);
        assert!(live.names_labelled_app("web").is_empty());
        assert_eq!(live.names_labelled_app("db"), ["b"]);
    }
}
