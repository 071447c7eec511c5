//! `kuma.io/v1alpha1` `MeshIdentity` and the CRD generated from it.
//!
//! Field names and defaults follow Kuma's. Every field is optional here: the decision layer
//! reports a missing field as a violation with its path, which says far more to a user than a
//! deserialisation error would.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::labels::{mesh_of, Labels};

/// Kuma's trust domain when a MeshIdentity gives none.
pub const DEFAULT_TRUST_DOMAIN_TEMPLATE: &str = "{{ .Mesh }}.{{ .Zone }}.mesh.local";
/// Kuma's path when a MeshIdentity gives none.
pub const DEFAULT_PATH_TEMPLATE: &str = "/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}";

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

    /// How the [`precedence_key`](Self::precedence_key)s of two identities compare, without
    /// building them (ranking is on every MeshIdentity review's path).
    pub fn precedence_cmp(&self, other: &Self) -> std::cmp::Ordering {
        fn key(identity: &MeshIdentity) -> impl Iterator<Item = u8> + '_ {
            let (name, namespace) = (identity.name(), identity.namespace());
            name.bytes().chain([b'.']).chain(namespace.bytes())
        }
        // Names that differ within their common length decide alone, compared as slices; only
        // when one name starts the other does the rest of the key take part, byte by byte.
        let (a, b) = (self.name().as_bytes(), other.name().as_bytes());
        let common = a.len().min(b.len());
        match a.get(..common).cmp(&b.get(..common)) {
            std::cmp::Ordering::Equal => key(self).cmp(key(other)),
            decided => decided,
        }
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
