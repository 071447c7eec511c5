//! The objects the watches have seen and each watch's health, partitioned by watch.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::DynamicObject;

use crate::api::{Kind, Mesh, MeshIdentity, NamespaceInfo, PodInfo};
use crate::cluster::{Object, Snapshot};

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
    pub(super) objects: HashMap<Key, Reduced>,
    pub(super) health: WatchHealth,
}

pub(super) struct Shared {
    pub(super) partitions: Mutex<Vec<Partition>>,
    pub(super) connections: AtomicU64,
    pub(super) changed: tokio::sync::Notify,
}

impl Shared {
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

/// A reduced object, ready to store. Everything but pods is boxed: they are few, and pods make
/// up most of the store, so the entry stays two words.
pub(super) enum Reduced {
    Mesh(Box<Mesh>),
    Identity(Box<MeshIdentity>),
    Namespace(Box<NamespaceInfo>),
    Pod(Arc<PodInfo>),
}

/// Decodes an object as the snapshot holds it.
pub(super) fn reduce(resource: Resource, object: DynamicObject) -> Result<Reduced, String> {
    let value = serde_json::to_value(object).map_err(|e| e.to_string())?;
    Ok(
        match Object::decode(resource, value).map_err(|e| e.to_string())? {
            Object::Mesh(mesh) => Reduced::Mesh(mesh),
            Object::MeshIdentity(identity) => Reduced::Identity(identity),
            Object::Namespace(namespace) => Reduced::Namespace(Box::new(namespace)),
            Object::Pod(pod) => Reduced::Pod(Arc::new(pod)),
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

/// What a snapshot is made of, taken out of the partitions (pods by pointer).
pub(super) struct Contents {
    pub(super) meshes: Vec<Mesh>,
    pub(super) identities: Vec<MeshIdentity>,
    pub(super) namespaces: Vec<NamespaceInfo>,
    pub(super) pods: Vec<Arc<PodInfo>>,
}

impl Contents {
    /// Every partition's objects; cheap enough to take while holding the partitions' lock.
    pub(super) fn of(partitions: &[Partition]) -> Self {
        let mut contents = Self {
            meshes: Vec::new(),
            identities: Vec::new(),
            namespaces: Vec::new(),
            pods: Vec::with_capacity(count(partitions, Kind::Pod)),
        };
        for reduced in partitions.iter().flat_map(|p| p.objects.values()) {
            match reduced {
                Reduced::Mesh(mesh) => contents.meshes.push(Mesh::clone(mesh)),
                Reduced::Identity(identity) => {
                    contents.identities.push(MeshIdentity::clone(identity))
                }
                Reduced::Namespace(namespace) => {
                    contents.namespaces.push(NamespaceInfo::clone(namespace))
                }
                Reduced::Pod(pod) => contents.pods.push(Arc::clone(pod)),
            }
        }
        contents
    }

    /// The snapshot with its indexes: tens of milliseconds for tens of thousands of pods.
    pub(super) fn into_snapshot(self) -> Snapshot {
        Snapshot::new(self.meshes, self.identities, self.namespaces, self.pods)
    }
}
