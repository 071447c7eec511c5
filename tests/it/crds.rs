//! The CRDs under deploy/crds are the ones generated from the API types, and they are
//! structural (every schema node typed), which Kubernetes requires of v1 CRDs.

use serde_json::Value;

use crate::support::repo_path;
use kuma_identity_webhook::api::crd;
use kuma_identity_webhook::cluster::file::parse_documents;

#[test]
fn checked_in_crds_equal_the_generated_ones() {
    let checked_in = std::fs::read_to_string(repo_path("deploy/crds/crds.yaml")).unwrap();
    assert!(
        checked_in == crd::yaml().unwrap(),
        "deploy/crds/crds.yaml is stale: run `cargo run -- crd > deploy/crds/crds.yaml`"
    );
}

fn assert_structural(schema: &Value, path: &str) {
    let preserves = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    assert!(
        schema.get("type").is_some() || preserves,
        "{path} has no type: {schema}"
    );
    for (name, child) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        assert_structural(child, &format!("{path}.{name}"));
    }
    if let Some(items) = schema.get("items") {
        assert_structural(items, &format!("{path}[]"));
    }
}

#[test]
fn crds_are_structural_with_the_expected_names() {
    let docs = parse_documents(&crd::yaml().unwrap()).unwrap();
    assert_eq!(docs.len(), 2);
    let identity = &docs[0];
    assert_eq!(identity["metadata"]["name"], "meshidentities.kuma.io");
    assert_eq!(identity["spec"]["scope"], "Namespaced");
    assert_eq!(
        identity["spec"]["names"]["shortNames"],
        serde_json::json!(["mid"])
    );
    assert_eq!(
        identity["spec"]["versions"][0]["subresources"]["status"],
        serde_json::json!({})
    );
    let mesh = &docs[1];
    assert_eq!(mesh["metadata"]["name"], "meshes.kuma.io");
    assert_eq!(mesh["spec"]["scope"], "Cluster");
    let mesh_spec = &mesh["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(mesh_spec["x-kubernetes-preserve-unknown-fields"], true);
    for doc in &docs {
        assert_structural(
            &doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
            &doc["metadata"]["name"].to_string(),
        );
    }
}
