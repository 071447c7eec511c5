//! The pods workloads run: where a Deployment, Job or CronJob keeps its pod template, and the pod
//! it would make.

use serde_json::{json, Value};

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
