//! The objects a snapshot holds, read from their JSON: one decoding for the file loader, the
//! offline commands and the watches alike.

use std::sync::Arc;

use serde_json::Value;

use crate::api::{string_map_at, Kind, Mesh, MeshIdentity, NamespaceInfo, PodInfo};

/// One object as decisions read it.
#[derive(Debug, Clone)]
pub enum Object {
    // Boxed: the identity and mesh are large, and snapshots hold pods by the thousand.
    Mesh(Box<Mesh>),
    MeshIdentity(Box<MeshIdentity>),
    Namespace(NamespaceInfo),
    Pod(PodInfo),
}

/// An object of a known kind that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ObjectError {
    pub kind: &'static str,
    pub message: String,
}

impl Object {
    /// Reads an object by its own `kind`; `None` for kinds decisions do not read.
    pub fn from_json(value: Value) -> Result<Option<Self>, ObjectError> {
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .and_then(Kind::from_name);
        kind.map(|kind| Self::decode(kind, value)).transpose()
    }

    /// Reads an object known to be of `kind`.
    pub fn decode(kind: Kind, value: Value) -> Result<Self, ObjectError> {
        let error = |message: String| ObjectError {
            kind: kind.name(),
            message,
        };
        Ok(match kind {
            Kind::Mesh => Self::Mesh(Box::new(
                serde_json::from_value(value).map_err(|e| error(e.to_string()))?,
            )),
            Kind::MeshIdentity => Self::MeshIdentity(Box::new(
                serde_json::from_value(value).map_err(|e| error(e.to_string()))?,
            )),
            Kind::Namespace => Self::Namespace(NamespaceInfo {
                name: value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| error("metadata.name missing".to_owned()))?
                    .to_owned(),
                labels: string_map_at(&value, "/metadata/labels"),
            }),
            Kind::Pod => Self::Pod(PodInfo {
                // Summarised here, so the stored pod keeps no spec for the audit to read.
                socket: crate::inject::socket_gap(&value).map(Arc::new),
                ..PodInfo::from_json(&value, None)
            }),
        })
    }
}
