//! Cluster state from a file: Kubernetes manifests (multi-document YAML or JSON, `List` objects
//! flattened) read into a [`Snapshot`]. `serve --cluster-state`, the offline commands and the
//! tests all load clusters this way.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::object::Object;
use super::snapshot::Snapshot;

/// Why a manifest file could not be turned into objects.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: document {index}: {message}")]
    Parse {
        path: String,
        index: usize,
        message: String,
    },
}

impl LoadError {
    /// A problem with the `index`th (1-based) document of the file at `path`.
    pub fn parse(path: &Path, index: usize, message: String) -> Self {
        Self::Parse {
            path: path.display().to_string(),
            index,
            message,
        }
    }
}

/// Loads a file of Mesh, MeshIdentity, Namespace and Pod objects; other kinds are ignored.
pub fn load(path: &Path) -> Result<Snapshot, LoadError> {
    snapshot_of(path, read_documents(path)?)
}

/// The snapshot of `documents` read from `path`.
pub fn snapshot_of(path: &Path, documents: Vec<Value>) -> Result<Snapshot, LoadError> {
    let mut snapshot = Snapshot::default();
    for (index, document) in documents.into_iter().enumerate() {
        match Object::from_json(document) {
            Ok(Some(object)) => snapshot.insert(object),
            Ok(None) => {}
            Err(e) => return Err(LoadError::parse(path, index + 1, e.to_string())),
        }
    }
    Ok(snapshot)
}

/// Reads and parses one file, or standard input when `path` is `-`.
pub fn read_documents(path: &Path) -> Result<Vec<Value>, LoadError> {
    let error = |source| LoadError::Read {
        path: path.display().to_string(),
        source,
    };
    let text = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(error)?;
        text
    } else {
        std::fs::read_to_string(path).map_err(error)?
    };
    parse_documents(&text).map_err(|(index, message)| LoadError::parse(path, index, message))
}

/// Parses every document of `text` into JSON values, skipping empty documents and flattening
/// `kind: List` (and `*List`) objects into their items. On error returns the 1-based document
/// index and the parser's message.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, (usize, String)> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = match Value::deserialize(document) {
            Ok(value) => value,
            // kubectl also reads a stream of JSON objects with nothing between them, which is
            // not YAML; the YAML error stands when the text is not such a stream either.
            Err(e) => return parse_json_stream(text).ok_or((index + 1, e.to_string())),
        };
        flatten_into(value, &mut objects);
    }
    Ok(objects)
}

/// Concatenated JSON values (`{...}{...}` or one per line), flattened like YAML documents.
fn parse_json_stream(text: &str) -> Option<Vec<Value>> {
    let mut objects = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        flatten_into(value.ok()?, &mut objects);
    }
    Some(objects)
}

fn flatten_into(value: Value, out: &mut Vec<Value>) {
    match value {
        Value::Null => {}
        Value::Object(mut map) if is_list(&map) => {
            if let Some(Value::Array(items)) = map.remove("items") {
                items.into_iter().for_each(|item| flatten_into(item, out));
            }
        }
        other => out.push(other),
    }
}

fn is_list(map: &serde_json::Map<String, Value>) -> bool {
    map.get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.ends_with("List"))
        && map.get("items").is_some_and(Value::is_array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_lists() {
        let text =
            "---\nkind: Mesh\n---\n\n---\nkind: List\nitems:\n- kind: Pod\n- kind: Namespace\n";
        let docs = parse_documents(text).unwrap();
        let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Mesh", "Pod", "Namespace"]);
    }

    #[test]
    fn json_is_yaml() {
        let docs = parse_documents(r#"{"kind": "Pod", "metadata": {"name": "x"}}"#).unwrap();
        assert_eq!(docs[0]["metadata"]["name"], "x");
    }

    #[test]
    fn json_streams() {
        let docs = parse_documents(
            "{\"kind\": \"Pod\"}\n{\"kind\": \"List\", \"items\": [{\"kind\": \"Mesh\"}]}{\"kind\": \"Namespace\"}",
        )
        .unwrap();
        let kinds: Vec<_> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Pod", "Mesh", "Namespace"]);
        assert!(parse_documents("{\"kind\": \"Pod\"} {").is_err());
    }

    #[test]
    fn errors_name_the_document() {
        let (index, _) = parse_documents("kind: Mesh\n---\nkind: [\n").unwrap_err();
        assert_eq!(index, 2);
    }
}
