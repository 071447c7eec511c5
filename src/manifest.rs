//! Reading Kubernetes manifests: multi-document YAML or JSON, with `List` objects flattened.

use serde::Deserialize;
use serde_json::Value;

/// Parses every document of `text` into JSON values, skipping empty documents and flattening
/// `kind: List` (and `*List`) objects into their items. On error returns the 1-based document
/// index and the parser's message.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, (usize, String)> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(document).map_err(|e| (index + 1, e.to_string()))?;
        flatten_into(value, &mut objects);
    }
    Ok(objects)
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
    fn errors_name_the_document() {
        let (index, _) = parse_documents("kind: Mesh\n---\nkind: [\n").unwrap_err();
        assert_eq!(index, 2);
    }
}
