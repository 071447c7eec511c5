//! `kuma.io/v1alpha1` `Mesh`: only its name and `spec.meshServices.mode` matter here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        // Looked up by key: `Value::pointer` would allocate a copy of each path token.
        let raw = match self.spec.get("meshServices").and_then(|m| m.get("mode")) {
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
