//! API types for the objects the webhook decides about.
//!
//! Field names and defaults follow Kuma's `kuma.io/v1alpha1` `Mesh` and `MeshIdentity`. Every field
//! is optional here: the decision layer reports a missing field as a violation with its path, which
//! says far more to a user than a deserialisation error would.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub type Labels = BTreeMap<String, String>;

/// Label naming the mesh an object belongs to.
pub const MESH_LABEL: &str = "kuma.io/mesh";
/// Label saying where a policy-like object originates.
pub const ORIGIN_LABEL: &str = "kuma.io/origin";
/// Label carrying the zone of a MeshIdentity (and a derived dataplane label).
pub const ZONE_LABEL: &str = "kuma.io/zone";
/// The workload of a dataplane; managed by Kuma, never set on pods by hand.
pub const WORKLOAD_LABEL: &str = "kuma.io/workload";
pub const NAMESPACE_LABEL: &str = "k8s.kuma.io/namespace";
pub const SERVICE_ACCOUNT_LABEL: &str = "k8s.kuma.io/service-account";
pub const ENV_LABEL: &str = "kuma.io/env";
/// Pod or Namespace label that turns Kuma's sidecar injection on or off.
pub const SIDECAR_INJECTION_LABEL: &str = "kuma.io/sidecar-injection";
/// Kuma's injector marks the pods it gave a sidecar with this annotation set to `"true"`.
pub const SIDECAR_INJECTED_ANNOTATION: &str = "kuma.io/sidecar-injected";
/// Mesh used when an object names none.
pub const DEFAULT_MESH: &str = "default";

pub const DEFAULT_TRUST_DOMAIN_TEMPLATE: &str = "{{ .Mesh }}.{{ .Zone }}.mesh.local";
pub const DEFAULT_PATH_TEMPLATE: &str = "/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}";

/// The mesh an object belongs to: its `kuma.io/mesh` label, else `default`.
pub fn mesh_of(meta: &ObjectMeta) -> &str {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MESH_LABEL))
        .map(String::as_str)
        .unwrap_or(DEFAULT_MESH)
}

/// `kuma.io/v1alpha1` `Mesh`. Its CRD stores `spec` as free-form JSON, so only the one field this
/// product reads is looked up, and everything else is tolerated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Mesh {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: Value,
}

/// `spec.meshServices.mode` of a Mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshServicesMode {
    Disabled,
    Everywhere,
    ReachableBackends,
    Exclusive,
}

impl MeshServicesMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "Disabled",
            Self::Everywhere => "Everywhere",
            Self::ReachableBackends => "ReachableBackends",
            Self::Exclusive => "Exclusive",
        }
    }
}

impl Mesh {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// The mode as written, `Disabled` when absent (Kuma's default). Like upstream's protobuf
    /// JSON decoding, the enum's numbers are accepted too (`3` is `Exclusive`). An unrecognised
    /// value is returned as `Err` with the raw text so messages can quote it.
    pub fn mesh_services_mode(&self) -> Result<MeshServicesMode, String> {
        const BY_NUMBER: [MeshServicesMode; 4] = [
            MeshServicesMode::Disabled,
            MeshServicesMode::Everywhere,
            MeshServicesMode::ReachableBackends,
            MeshServicesMode::Exclusive,
        ];
        let raw = match self.spec.pointer("/meshServices/mode") {
            None | Some(Value::Null) => return Ok(MeshServicesMode::Disabled),
            Some(raw) => raw,
        };
        let by_name = raw
            .as_str()
            .and_then(|name| BY_NUMBER.into_iter().find(|mode| mode.as_str() == name));
        let by_number = raw
            .as_u64()
            .and_then(|number| BY_NUMBER.get(usize::try_from(number).ok()?).copied());
        by_name.or(by_number).ok_or_else(|| match raw.as_str() {
            Some(text) => text.to_owned(),
            None => raw.to_string(),
        })
    }

    pub fn is_exclusive(&self) -> bool {
        self.mesh_services_mode() == Ok(MeshServicesMode::Exclusive)
    }
}

/// `kuma.io/v1alpha1` `MeshIdentity`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MeshIdentity {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: MeshIdentitySpec,
}

impl MeshIdentity {
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn namespace(&self) -> &str {
        self.metadata.namespace.as_deref().unwrap_or_default()
    }

    pub fn mesh(&self) -> &str {
        mesh_of(&self.metadata)
    }

    pub fn labels(&self) -> &Labels {
        static EMPTY: Labels = BTreeMap::new();
        self.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    /// The key upstream orders identities by on Kubernetes: `<name>.<namespace>`.
    pub fn precedence_key(&self) -> String {
        format!("{}.{}", self.name(), self.namespace())
    }

    /// The trust domain template in force: the spec's, else Kuma's default.
    pub fn trust_domain_template(&self) -> &str {
        self.spec
            .spiffe_id
            .as_ref()
            .and_then(|s| s.trust_domain.as_deref())
            .unwrap_or(DEFAULT_TRUST_DOMAIN_TEMPLATE)
    }

    /// The path template in force: the spec's, else Kuma's default.
    pub fn path_template(&self) -> &str {
        self.spec
            .spiffe_id
            .as_ref()
            .and_then(|s| s.path.as_deref())
            .unwrap_or(DEFAULT_PATH_TEMPLATE)
    }

    /// `matchLabels` when the identity selects dataplanes at all. `selector: {}` (or no selector)
    /// selects nothing; `dataplane: {}` or `matchLabels: {}` selects every dataplane of the mesh.
    pub fn dataplane_match_labels(&self) -> Option<&Labels> {
        static EMPTY: Labels = BTreeMap::new();
        let dataplane = self.spec.selector.as_ref()?.dataplane.as_ref()?;
        Some(dataplane.match_labels.as_ref().unwrap_or(&EMPTY))
    }
}

// The CustomResource derive also yields `MeshIdentityResource`, which the CRD is generated from.
// Each printer column repeats `type_`, which clippy's duplicated-attribute lint misreads.
/// Which dataplanes get which SPIFFE ID, and who issues it.
#[allow(clippy::duplicated_attributes)]
#[derive(
    Debug,
    Clone,
    Default,
    Serialize,
    Deserialize,
    PartialEq,
    schemars::JsonSchema,
    kube::CustomResource,
)]
#[kube(
    group = "kuma.io",
    version = "v1alpha1",
    kind = "MeshIdentity",
    root = "MeshIdentityResource",
    namespaced,
    shortname = "mid",
    category = "kuma",
    status = "MeshIdentityStatus",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider.type"),
    printcolumn(
        name = "TrustDomain",
        type_ = "string",
        json_path = ".spec.spiffeID.trustDomain"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct MeshIdentitySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    #[serde(default, rename = "spiffeID", skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<SpiffeIdTemplates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
}

/// Status the control plane reports on a MeshIdentity.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct MeshIdentityStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<StatusCondition>>,
}

/// A standard Kubernetes condition.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataplane: Option<DataplaneSelector>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<Labels>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpiffeIdTemplates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundled: Option<Bundled>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spire: Option<Spire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Bundled {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh_trust_creation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_allow_self_signed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autogenerate: Option<Autogenerate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CertificateAuthority>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_parameters: Option<CertificateParameters>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Autogenerate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAuthority {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<SecureDataSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<SecureDataSource>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CertificateParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<String>,
}

/// Where a secret comes from. The member named by `type` must be present; the members' own
/// contents are free-form here because only their presence is validated.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecureDataSource {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// `type: File`: `{path}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::file_source")]
    pub file: Option<Value>,
    /// `type: Secret`: `{kind: Secret, name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::secret_ref")]
    pub secret_ref: Option<Value>,
    /// `type: EnvVar`: `{name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::env_var")]
    pub env_var: Option<Value>,
    /// `type: InsecureInline`: `{value}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::inline_value")]
    pub insecure_inline: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Spire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<SpireAgent>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SpireAgent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Extension {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form configuration handed to the extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::free_form")]
    pub config: Option<Value>,
}

/// What decisions need of a Namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespaceInfo {
    pub name: String,
    pub labels: Labels,
}

/// What decisions need of a Pod: identity, labels, annotations and service account. Kept small
/// on purpose so a cluster's worth of pods fits in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodInfo {
    pub name: String,
    pub namespace: String,
    pub labels: Labels,
    pub annotations: Labels,
    /// `spec.serviceAccountName`, `default` when absent (what the API server fills in).
    pub service_account: String,
}

impl PodInfo {
    /// Reads the fields decisions need from raw pod JSON. Missing or mistyped fields fall back to
    /// empty values; `namespace_fallback` covers `generateName` pods whose object has none yet.
    pub fn from_json(pod: &Value, namespace_fallback: Option<&str>) -> Self {
        let string_map = |pointer: &str| string_map_at(pod, pointer);
        let text = |pointer: &str| {
            pod.pointer(pointer)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        Self {
            name: text("/metadata/name")
                .or_else(|| text("/metadata/generateName"))
                .unwrap_or_default()
                .to_owned(),
            namespace: text("/metadata/namespace")
                .or(namespace_fallback.filter(|s| !s.is_empty()))
                .unwrap_or("default")
                .to_owned(),
            labels: string_map("/metadata/labels"),
            annotations: string_map("/metadata/annotations"),
            service_account: text("/spec/serviceAccountName")
                .unwrap_or("default")
                .to_owned(),
        }
    }
}

/// The string-to-string map at `pointer` (labels, annotations); non-string values are skipped and
/// anything that is not an object reads as empty.
pub fn string_map_at(value: &Value, pointer: &str) -> Labels {
    value
        .pointer(pointer)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Schemas for the fields kept as raw JSON, so the generated CRD stays structural (every node
/// typed), as Kubernetes requires.
mod schema {
    use schemars::{json_schema, Schema, SchemaGenerator};

    fn object_of_strings(properties: &[&str]) -> Schema {
        let properties: serde_json::Map<String, serde_json::Value> = properties
            .iter()
            .map(|p| ((*p).to_owned(), serde_json::json!({"type": "string"})))
            .collect();
        json_schema!({"type": "object", "nullable": true, "properties": properties})
    }

    pub fn file_source(_: &mut SchemaGenerator) -> Schema {
        object_of_strings(&["path"])
    }

    pub fn secret_ref(_: &mut SchemaGenerator) -> Schema {
        object_of_strings(&["kind", "name"])
    }

    pub fn env_var(_: &mut SchemaGenerator) -> Schema {
        object_of_strings(&["name"])
    }

    pub fn inline_value(_: &mut SchemaGenerator) -> Schema {
        object_of_strings(&["value"])
    }

    pub fn free_form(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_services_mode_by_name_or_number() {
        let mode = |value: Value| {
            let mesh = Mesh {
                spec: serde_json::json!({"meshServices": {"mode": value}}),
                ..Mesh::default()
            };
            mesh.mesh_services_mode()
        };
        use MeshServicesMode::*;
        assert_eq!(mode(Value::Null), Ok(Disabled));
        assert_eq!(Mesh::default().mesh_services_mode(), Ok(Disabled));
        for (number, want) in [
            (0, Disabled),
            (1, Everywhere),
            (2, ReachableBackends),
            (3, Exclusive),
        ] {
            assert_eq!(mode(number.into()), Ok(want));
            assert_eq!(mode(want.as_str().into()), Ok(want));
        }
        assert_eq!(mode(4.into()), Err("4".to_owned()));
        assert_eq!(mode((-1).into()), Err("-1".to_owned()));
        assert_eq!(mode(3.0.into()), Err("3.0".to_owned()));
        assert_eq!(mode("3".into()), Err("3".to_owned()));
        assert_eq!(mode("exclusive".into()), Err("exclusive".to_owned()));
    }
}
