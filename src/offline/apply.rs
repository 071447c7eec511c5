//! `kubectl apply --dry-run=server`, simulated: each manifest goes to the webhooks kube-apiserver
//! would call for it (the shipped registrations decide which), in order, through the same
//! decisions the server runs; an admitted object joins the cluster, so later manifests see it.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::admission::{self, Webhook};
use crate::api::{Kind, Labels};
use crate::cluster::file::{read_documents, snapshot_of};
use crate::cluster::{ClusterView, LoadError, Object, Snapshot};
use crate::config::Settings;
use crate::verdict::{Operation, Request, Verdict};

use super::registration::{self, Call, NAMESPACE_NAME_LABEL};
use super::sources::Source;

/// The cluster manifests are applied to: the snapshot decisions read, and every object as it
/// was applied, which an update of it is judged against.
#[derive(Debug, Default)]
pub struct Cluster {
    pub snapshot: Snapshot,
    stored: HashMap<StoredKey, Value>,
}

/// Kind (as written), namespace and name.
type StoredKey = (String, String, String);

impl Cluster {
    /// The cluster of a state file (Meshes, MeshIdentities, Namespaces, Pods).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let documents = read_documents(path)?;
        let snapshot = snapshot_of(path, documents.clone())?;
        let stored = documents
            .into_iter()
            .filter_map(|document| Some((key_of(&document)?, document)))
            .collect();
        Ok(Self { snapshot, stored })
    }

    fn stored(&self, object: &Value) -> Option<&Value> {
        self.stored.get(&key_of(object)?)
    }

    /// Records an admitted object; kinds decisions do not read are kept for later updates only.
    fn apply(&mut self, object: Value) {
        if let Ok(Some(typed)) = Object::from_json(object.clone()) {
            self.snapshot.insert(typed);
        }
        if let Some(key) = key_of(&object) {
            self.stored.insert(key, object);
        }
    }
}

fn key_of(object: &Value) -> Option<StoredKey> {
    let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
    Some((
        text("/kind")?.to_owned(),
        text("/metadata/namespace").unwrap_or_default().to_owned(),
        text("/metadata/name")?.to_owned(),
    ))
}

/// What one webhook said about one object.
#[derive(Debug, Clone)]
pub struct Answer {
    pub webhook: Webhook,
    pub verdict: Verdict,
}

/// The outcome for one object.
#[derive(Debug, Clone)]
pub struct ObjectResult {
    pub file: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// `true` when an object of that name already existed (an apply would update it).
    pub update: bool,
    /// The webhooks called, in order, up to the first that refused.
    pub answers: Vec<Answer>,
    /// The object after mutation (what would be stored).
    pub object: Value,
}

impl ObjectResult {
    /// The refusal, if any webhook refused the object.
    pub fn denial(&self) -> Option<&Answer> {
        self.answers.iter().find(|a| !a.verdict.allowed())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.answers
            .iter()
            .flat_map(|a| a.verdict.warnings.iter().map(String::as_str))
    }

    pub fn operation(&self) -> Operation {
        if self.update {
            Operation::Update
        } else {
            Operation::Create
        }
    }
}

/// Decides every source in order against `cluster` as `username` would apply it; admitted
/// objects join the cluster.
pub fn check(
    sources: &[Source],
    cluster: &mut Cluster,
    settings: &Settings,
    username: &str,
) -> Vec<ObjectResult> {
    let mut results = Vec::new();
    for source in sources {
        let mut object = source.object.clone();
        let namespace = namespace_of(&object).map(str::to_owned);
        // Where kubectl would send it, so the object is stored and found again under that name.
        if let Some(namespace) = &namespace {
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata
                    .entry("namespace")
                    .or_insert_with(|| Value::from(namespace.as_str()));
            }
        }
        let old = cluster.stored(&object).cloned();
        let operation = if old.is_some() {
            Operation::Update
        } else {
            Operation::Create
        };
        let mut answers = Vec::new();
        for webhook in webhooks_for(&object, operation, &cluster.snapshot) {
            let request = Request {
                operation,
                namespace: namespace.as_deref(),
                username,
                object: Some(&object),
                old_object: old.as_ref(),
            };
            let view: &dyn ClusterView = &cluster.snapshot;
            let Some(mut verdict) = admission::decide(webhook, &request, Some(view), settings)
            else {
                continue;
            };
            // A patch that does not apply would be the API server's error; shown as one.
            let unapplied = verdict
                .patch
                .as_ref()
                .and_then(|patch| json_patch::patch(&mut object, patch).err());
            if let Some(e) = unapplied {
                verdict = Verdict::deny(500, "InternalError", format!("patch does not apply: {e}"));
            }
            let allowed = verdict.allowed();
            answers.push(Answer { webhook, verdict });
            if !allowed {
                break;
            }
        }
        let text = |pointer: &str| object.pointer(pointer).and_then(Value::as_str);
        let result = ObjectResult {
            file: source.file.clone(),
            kind: text("/kind").unwrap_or_default().to_owned(),
            name: text("/metadata/name").unwrap_or_default().to_owned(),
            namespace: text("/metadata/namespace").map(str::to_owned),
            update: old.is_some(),
            answers,
            object,
        };
        if result.denial().is_none() {
            cluster.apply(result.object.clone());
        }
        results.push(result);
    }
    results
}

/// The webhooks kube-apiserver would call for `object`, in order (mutating first): the shipped
/// registrations' rules and selectors decide, so pods in `kube-system`, in opted-out namespaces
/// or of the webhook itself are left alone offline exactly as in a cluster.
pub fn webhooks_for(object: &Value, operation: Operation, state: &dyn ClusterView) -> Vec<Webhook> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let object_labels: Labels = object
        .pointer("/metadata/labels")
        .and_then(|labels| serde_json::from_value(labels.clone()).ok())
        .unwrap_or_default();
    let namespace_labels = namespace_of(object).map(|namespace| {
        let mut labels = state
            .namespace_labels(namespace)
            .cloned()
            .unwrap_or_default();
        // kube-apiserver labels every Namespace with its name; a state file need not.
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), namespace.to_owned());
        labels
    });
    let resource = match Kind::from_name(kind) {
        Some(kind) => kind.plural().to_owned(),
        // Kinds no webhook here is registered for; their plural only has to differ.
        None => format!("{}s", kind.to_lowercase()),
    };
    let call = Call {
        group,
        version,
        resource: &resource,
        operation: operation.as_str(),
        object_labels: &object_labels,
        namespace_labels: namespace_labels.as_ref(),
    };
    registration::shipped()
        .iter()
        .filter(|r| r.applies(&call))
        .map(|r| r.webhook)
        .collect()
}

/// The namespace a namespaced object lands in: its own, else `default` as kubectl would pick with
/// no `-n`; `None` for cluster-scoped kinds (Mesh, Namespace).
fn namespace_of(object: &Value) -> Option<&str> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .and_then(Kind::from_name);
    if kind.is_some_and(|kind| !kind.namespaced()) {
        return None;
    }
    Some(
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn source(object: Value) -> Source {
        Source {
            file: "f.yaml".to_owned(),
            object,
        }
    }

    fn identity(name: &str, path: &str) -> Value {
        json!({"apiVersion": "kuma.io/v1alpha1", "kind": "MeshIdentity",
            "metadata": {"name": name, "namespace": "kuma-system"},
            "spec": {"selector": {"dataplane": {"matchLabels": {"app": "web"}}}, "spiffeID": {"path": path}}})
    }

    #[test]
    fn objects_apply_in_order_and_later_ones_see_earlier_ones() {
        let mesh = json!({"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "default"},
            "spec": {"meshServices": {"mode": "Exclusive"}}});
        let sources = [
            // No mesh yet: refused, and not applied.
            source(identity("a", "/x")),
            source(mesh),
            source(identity("a", "/x")),
            // The same name again is an update.
            source(identity("a", "/y")),
            // Kinds no webhook is registered for pass unexamined.
            source(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})),
        ];
        let mut cluster = Cluster::default();
        let results = check(&sources, &mut cluster, &Settings::default(), "admin");
        let summary: Vec<(bool, bool, usize)> = results
            .iter()
            .map(|r| (r.denial().is_none(), r.update, r.answers.len()))
            .collect();
        assert_eq!(
            summary,
            [
                (false, false, 1),
                (true, false, 0),
                (true, false, 1),
                (true, true, 1),
                (true, false, 0)
            ]
        );
        assert_eq!(results[0].namespace.as_deref(), Some("kuma-system"));
        assert_eq!(cluster.snapshot.identity_count(), 1);
    }

    #[test]
    fn a_pod_gets_the_mutation_then_the_validation_and_keeps_the_patch() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"k8s.kuma.io/spire-support": "true"}},
            "spec": {"containers": [{"name": "app"}]}});
        let mut cluster = Cluster::default();
        let results = check(&[source(pod)], &mut cluster, &Settings::default(), "admin");
        let hooks: Vec<Webhook> = results[0].answers.iter().map(|a| a.webhook).collect();
        assert_eq!(hooks, [Webhook::MutatePod, Webhook::ValidatePod]);
        // kubectl's default namespace, and the socket volume the mutation added.
        assert_eq!(results[0].namespace.as_deref(), Some("default"));
        assert_eq!(
            results[0].object["spec"]["volumes"][0]["name"],
            "kuma-spire-agent-socket"
        );
    }
}
