//! The webhook registrations this project ships (`deploy/base/webhooks.yaml`), read back so the
//! offline commands call a webhook exactly when kube-apiserver would: same operations, same
//! resources, same namespace and object selectors. Embedding the manifest itself, rather than a
//! copy of its selectors, means the two cannot drift.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::admission::Webhook;
use crate::api::Labels;

/// The manifest kube-apiserver is configured with.
const SHIPPED: &str = include_str!("../../deploy/base/webhooks.yaml");

/// The label kube-apiserver (1.21+) puts on every Namespace, naming it; namespace selectors of
/// the shipped registrations match on it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("webhook registrations: {0}")]
    Parse(String),
    #[error("webhook {name}: path {path} is not served")]
    UnknownPath { name: String, path: String },
}

/// One registered webhook: what it is called for and which endpoint answers.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub webhook: Webhook,
    pub mutating: bool,
    rules: Vec<Rule>,
    namespace_selector: Selector,
    object_selector: Selector,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    api_groups: Vec<String>,
    #[serde(default)]
    api_versions: Vec<String>,
    #[serde(default)]
    operations: Vec<String>,
    #[serde(default)]
    resources: Vec<String>,
}

/// A Kubernetes `LabelSelector`; an empty one matches everything.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    match_labels: BTreeMap<String, String>,
    #[serde(default)]
    match_expressions: Vec<Expression>,
}

#[derive(Debug, Clone, Deserialize)]
struct Expression {
    key: String,
    operator: String,
    #[serde(default)]
    values: Vec<String>,
}

impl Selector {
    /// Label selector semantics: every `matchLabels` pair and every expression must hold. An
    /// operator this code does not know matches nothing, as the API server would refuse it.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
            && self.match_expressions.iter().all(|e| {
                let value = labels.get(&e.key);
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| e.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }
}

/// What kube-apiserver knows about a request when it picks webhooks.
pub struct Call<'a> {
    pub group: &'a str,
    pub version: &'a str,
    /// The plural resource, e.g. `pods`.
    pub resource: &'a str,
    pub operation: &'a str,
    pub object_labels: &'a Labels,
    /// The labels of the object's namespace (with [`NAMESPACE_NAME_LABEL`]); `None` for
    /// cluster-scoped objects, which namespace selectors never exclude.
    pub namespace_labels: Option<&'a Labels>,
}

impl Registration {
    /// Whether kube-apiserver would call this webhook for `call`.
    pub fn applies(&self, call: &Call<'_>) -> bool {
        let listed = |list: &[String], item: &str| list.iter().any(|x| x == "*" || x == item);
        self.rules.iter().any(|rule| {
            listed(&rule.api_groups, call.group)
                && listed(&rule.api_versions, call.version)
                && listed(&rule.operations, call.operation)
                && listed(&rule.resources, call.resource)
        }) && call
            .namespace_labels
            .is_none_or(|labels| self.namespace_selector.matches(labels))
            && self.object_selector.matches(call.object_labels)
    }
}

/// Every registration of `manifest` (multi-document YAML of webhook configurations), mutating
/// ones first, in the order kube-apiserver runs them.
pub fn parse(manifest: &str) -> Result<Vec<Registration>, RegistrationError> {
    let documents =
        crate::cluster::file::parse_documents(manifest).map_err(|(index, message)| {
            RegistrationError::Parse(format!("document {index}: {message}"))
        })?;
    let mut registrations = Vec::new();
    for document in documents {
        let mutating = match document.get("kind").and_then(Value::as_str) {
            Some("MutatingWebhookConfiguration") => true,
            Some("ValidatingWebhookConfiguration") => false,
            _ => continue,
        };
        let hooks = document.get("webhooks").and_then(Value::as_array);
        for hook in hooks.into_iter().flatten() {
            registrations.push(registration(hook, mutating)?);
        }
    }
    registrations.sort_by_key(|r| !r.mutating);
    Ok(registrations)
}

fn registration(hook: &Value, mutating: bool) -> Result<Registration, RegistrationError> {
    let field = |key: &str| hook.get(key).cloned().unwrap_or(Value::Null);
    let parse_err = |e: serde_json::Error| RegistrationError::Parse(e.to_string());
    let name = hook
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let path = hook
        .pointer("/clientConfig/service/path")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let webhook = Webhook::from_path(path).ok_or_else(|| RegistrationError::UnknownPath {
        name: name.clone(),
        path: path.to_owned(),
    })?;
    let selector = |key: &str| -> Result<Selector, RegistrationError> {
        match field(key) {
            Value::Null => Ok(Selector::default()),
            value => serde_json::from_value(value).map_err(parse_err),
        }
    };
    Ok(Registration {
        name,
        webhook,
        mutating,
        rules: serde_json::from_value(field("rules")).map_err(parse_err)?,
        namespace_selector: selector("namespaceSelector")?,
        object_selector: selector("objectSelector")?,
    })
}

/// The registrations this project ships. The manifest is part of the build, and a test parses
/// it, so the error case is unreachable in a released binary; it still degrades to "no webhooks"
/// rather than panicking.
pub fn shipped() -> &'static [Registration] {
    static SHIPPED_REGISTRATIONS: OnceLock<Vec<Registration>> = OnceLock::new();
    SHIPPED_REGISTRATIONS.get_or_init(|| {
        parse(SHIPPED).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the shipped webhook registrations do not parse");
            Vec::new()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn shipped_manifest_parses_with_mutators_first() {
        let all = parse(SHIPPED).unwrap();
        assert_eq!(all.len(), 4);
        assert!(all[0].mutating);
        assert_eq!(all[0].webhook, Webhook::MutatePod);
        assert!(all[1..].iter().all(|r| !r.mutating));
        assert_eq!(shipped().len(), 4);
        for registration in &all {
            assert_eq!(registration.name, registration.webhook.name());
        }
    }

    #[test]
    fn selector_operators() {
        let selector: Selector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"a": "1"},
            "matchExpressions": [
                {"key": "b", "operator": "In", "values": ["x", "y"]},
                {"key": "c", "operator": "NotIn", "values": ["z"]},
                {"key": "d", "operator": "Exists"},
                {"key": "e", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        let base = [("a", "1"), ("b", "x"), ("d", "")];
        assert!(selector.matches(&labels(&base)));
        assert!(selector.matches(&labels(&[("a", "1"), ("b", "y"), ("c", "q"), ("d", "")])));
        assert!(!selector.matches(&labels(&[("a", "2"), ("b", "x"), ("d", "")])));
        assert!(!selector.matches(&labels(&[("a", "1"), ("b", "w"), ("d", "")])));
        assert!(!selector.matches(&labels(&[("a", "1"), ("b", "x"), ("c", "z"), ("d", "")])));
        assert!(!selector.matches(&labels(&[("a", "1"), ("b", "x")])));
        assert!(!selector.matches(&labels(&[("a", "1"), ("b", "x"), ("d", ""), ("e", "")])));
        let unknown: Selector = serde_json::from_value(
            serde_json::json!({"matchExpressions": [{"key": "a", "operator": "Gt"}]}),
        )
        .unwrap();
        assert!(!unknown.matches(&labels(&base)));
    }

    #[test]
    fn pod_hooks_skip_system_namespaces_opt_outs_and_the_webhook_itself() {
        let pod = |namespace: &Labels, object: &Labels, operation: &'static str| {
            let call = Call {
                group: "",
                version: "v1",
                resource: "pods",
                operation,
                object_labels: object,
                namespace_labels: Some(namespace),
            };
            shipped()
                .iter()
                .filter(|r| r.applies(&call))
                .map(|r| r.webhook)
                .collect::<Vec<_>>()
        };
        let none = Labels::new();
        let apps = labels(&[(NAMESPACE_NAME_LABEL, "apps")]);
        assert_eq!(
            pod(&apps, &none, "CREATE"),
            [Webhook::MutatePod, Webhook::ValidatePod]
        );
        assert_eq!(pod(&apps, &none, "UPDATE"), [Webhook::ValidatePod]);
        assert!(pod(&apps, &none, "DELETE").is_empty());
        for system in ["kube-system", "kuma-system"] {
            let ns = labels(&[(NAMESPACE_NAME_LABEL, system)]);
            assert!(pod(&ns, &none, "CREATE").is_empty(), "{system}");
        }
        let opted_out = labels(&[
            (NAMESPACE_NAME_LABEL, "apps"),
            ("kuma-identity-webhook.kuma.io/ignore", "true"),
        ]);
        assert!(pod(&opted_out, &none, "CREATE").is_empty());
        let webhook_pod = labels(&[("kuma-identity-webhook.kuma.io/webhook-server", "")]);
        assert!(pod(&apps, &webhook_pod, "CREATE").is_empty());
    }

    #[test]
    fn meshidentity_hook_sees_every_namespace_and_mesh_hook_only_updates() {
        let none = Labels::new();
        let anywhere = labels(&[(NAMESPACE_NAME_LABEL, "kube-system")]);
        let call = |resource, operation, namespace_labels| Call {
            group: "kuma.io",
            version: "v1alpha1",
            resource,
            operation,
            object_labels: &none,
            namespace_labels,
        };
        let hooks = |call: Call<'_>| {
            shipped()
                .iter()
                .filter(|r| r.applies(&call))
                .map(|r| r.webhook)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            hooks(call("meshidentities", "CREATE", Some(&anywhere))),
            [Webhook::ValidateMeshIdentity]
        );
        assert_eq!(
            hooks(call("meshes", "UPDATE", None)),
            [Webhook::ValidateMesh]
        );
        assert!(hooks(call("meshes", "CREATE", None)).is_empty());
    }
}
