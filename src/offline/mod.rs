//! Offline decisions: the AdmissionReviews kube-apiserver would send for a set of manifests,
//! decided by the same envelope code the server runs, so `check` and the live webhook cannot
//! disagree.

pub mod explain;
pub mod registration;
pub mod sources;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::admission::{self, Webhook};
use crate::api::Labels;
use crate::cluster::{ClusterView, Snapshot};
use crate::config::Settings;
use registration::{Call, NAMESPACE_NAME_LABEL};

/// One object read from a manifest, with where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file name as given (`-` for standard input).
    pub file: String,
    pub object: Value,
}

pub use sources::LoadError;

/// Reads every object from files, directories (their `.yaml`, `.yml` and `.json` files, in name
/// order, recursively) and `-` (standard input), in the order given.
pub fn load_sources(paths: &[PathBuf]) -> Result<Vec<Source>, LoadError> {
    let mut sources = Vec::new();
    for path in paths {
        for file in expand(path)? {
            let objects = sources::read_documents(&file)?;
            let name = file.display().to_string();
            sources.extend(objects.into_iter().map(|object| Source {
                file: name.clone(),
                object,
            }));
        }
    }
    Ok(sources)
}

fn expand(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if path.as_os_str() == "-" || !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    let mut files = Vec::new();
    for child in children {
        if child.is_dir() {
            files.extend(expand(&child)?);
        } else if matches!(
            child.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push(child);
        }
    }
    Ok(files)
}

/// The webhooks kube-apiserver would call for `object`, in order (mutating first): the shipped
/// registrations' rules and selectors decide, so pods in `kube-system`, in opted-out namespaces
/// or of the webhook itself are left alone offline exactly as in a cluster.
pub fn webhooks_for(object: &Value, operation: &str, state: &dyn ClusterView) -> Vec<Webhook> {
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
    let call = Call {
        group,
        version,
        resource: &resource_of(kind),
        operation,
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
    match object.get("kind").and_then(Value::as_str) {
        Some("Mesh" | "Namespace") => None,
        _ => Some(
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default"),
        ),
    }
}

/// The plural resource name of the kinds this project handles (`pods`, `meshidentities`).
fn resource_of(kind: &str) -> String {
    match kind {
        "MeshIdentity" => "meshidentities".to_owned(),
        "Mesh" => "meshes".to_owned(),
        other => format!("{}s", other.to_lowercase()),
    }
}

/// The AdmissionReview v1 kube-apiserver would send for `object`.
pub fn review_body(object: &Value, old_object: Option<&Value>, uid: &str, username: &str) -> Value {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = resource_of(kind);
    let namespace = namespace_of(object);
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    let mut request = json!({
        "uid": uid,
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or(""),
        "operation": if old_object.is_some() { "UPDATE" } else { "CREATE" },
        "userInfo": {"username": username},
        "object": object,
        "oldObject": old_object,
        "dryRun": true,
    });
    if let Some(namespace) = namespace {
        request["namespace"] = json!(namespace);
    }
    json!({"apiVersion": admission::API_VERSION, "kind": admission::REVIEW_KIND, "request": request})
}

/// What one webhook said about one object.
#[derive(Debug, Clone)]
pub struct HookAnswer {
    pub webhook: Webhook,
    /// The AdmissionReview response body, exactly as the server would send it.
    pub response: Value,
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
    pub answers: Vec<HookAnswer>,
    /// The object after mutation (what would be stored).
    pub object: Value,
}

impl ObjectResult {
    /// The first denial, if any webhook refused the object.
    pub fn denial(&self) -> Option<&HookAnswer> {
        self.answers
            .iter()
            .find(|a| a.response.pointer("/response/allowed") != Some(&Value::Bool(true)))
    }

    pub fn warnings(&self) -> Vec<String> {
        self.answers
            .iter()
            .filter_map(|a| {
                a.response
                    .pointer("/response/warnings")?
                    .as_array()
                    .cloned()
            })
            .flatten()
            .filter_map(|w| w.as_str().map(str::to_owned))
            .collect()
    }
}

/// Decides every source in order against `state`; admitted objects join the state, as they would
/// after an apply.
pub fn check(
    sources: &[Source],
    state: &mut Snapshot,
    settings: &Settings,
    username: &str,
) -> Vec<ObjectResult> {
    let mut results = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let mut object = source.object.clone();
        // Where kubectl would send it, so the object is stored and found again under that name.
        if let Some(namespace) = namespace_of(&object).map(str::to_owned) {
            if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata
                    .entry("namespace")
                    .or_insert_with(|| Value::from(namespace));
            }
        }
        let old = state.object(&object);
        let mut answers = Vec::new();
        let operation = if old.is_some() { "UPDATE" } else { "CREATE" };
        for webhook in webhooks_for(&object, operation, state) {
            let uid = format!("offline-{index}-{}", webhook.path());
            let body = review_body(&object, old.as_ref(), &uid, username);
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let reviewed =
                admission::review(webhook, &bytes, Some(state as &dyn ClusterView), settings);
            let allowed = reviewed.verdict.as_ref().is_some_and(|v| v.allowed());
            if let Some(patch) = reviewed.verdict.as_ref().and_then(|v| v.patch.as_ref()) {
                // A patch that does not apply would be the API server's error; surface it as one.
                if let Err(e) = json_patch::patch(&mut object, patch) {
                    answers.push(HookAnswer {
                        webhook,
                        response: json!({"response": {"allowed": false, "status": {"code": 500, "reason": "InternalError", "message": format!("patch does not apply: {e}")}}}),
                    });
                    break;
                }
            }
            answers.push(HookAnswer {
                webhook,
                response: reviewed.body_json(),
            });
            if !allowed {
                break;
            }
        }
        let result = ObjectResult {
            file: source.file.clone(),
            kind: object
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            name: object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            namespace: object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned),
            update: old.is_some(),
            answers,
            object,
        };
        if result.denial().is_none() {
            // Objects the state does not model are ignored by add_object.
            let _ = state.add_object(result.object.clone());
        }
        results.push(result);
    }
    results
}

/// Where an object's pod template lives, as a JSON pointer (`""` for a Pod itself); `None` for
/// kinds that run no pods.
pub fn pod_template_pointer(object: &Value) -> Option<&'static str> {
    let api_version = object.get("apiVersion").and_then(Value::as_str)?;
    let kind = object.get("kind").and_then(Value::as_str)?;
    match (api_version, kind) {
        ("v1", "Pod") => Some(""),
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch/v1", "Job") => Some("/spec/template"),
        ("batch/v1", "CronJob") => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// The pod an object would run, with what a template lacks filled in from the workload: its
/// namespace, and its name as the pod name.
pub fn pod_of(object: &Value) -> Option<Value> {
    let pointer = pod_template_pointer(object)?;
    let mut pod = object.pointer(pointer)?.clone();
    if pointer.is_empty() {
        return Some(pod);
    }
    let metadata = pod
        .as_object_mut()?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if let Some(metadata) = metadata.as_object_mut() {
        for key in ["name", "namespace"] {
            if let Some(value) = object.pointer(&format!("/metadata/{key}")) {
                metadata.entry(key).or_insert_with(|| value.clone());
            }
        }
    }
    Some(pod)
}

/// `deployment/web`, the way kubectl names an object in short reports.
pub fn short_name(object: &Value) -> String {
    format!(
        "{}/{}",
        object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("object")
            .to_lowercase(),
        object
            .pointer("/metadata/name")
            .or_else(|| object.pointer("/metadata/generateName"))
            .and_then(Value::as_str)
            .unwrap_or("")
    )
}
