//! Tolerant, type-checked reads over the raw pod JSON. The webhook never
//! deserialises into typed structs (that would drop unknown fields), so every
//! read goes through these helpers, which turn a wrong type into a `Denial`
//! instead of a panic. JSON `null` is treated like an absent key, as the API
//! server does for optional fields.

use std::fmt::Display;

use serde_json::{Map, Value};

use super::denial::Denial;

pub(super) type Object = Map<String, Value>;

/// JSON type name for messages.
pub(super) fn kind(value: Option<&Value>) -> &'static str {
    match value {
        None => "missing",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

fn wrong(path: impl Display, expected: &'static str, value: Option<&Value>) -> Denial {
    Denial::WrongType {
        path: path.to_string(),
        expected,
        got: kind(value),
    }
}

/// `obj[key]` read by `cast`; null/absent → `None`, any other type → a `Denial` naming `path`.
fn optional<'a, T>(
    obj: &'a Object,
    key: &str,
    path: impl Display,
    expected: &'static str,
    cast: fn(&'a Value) -> Option<T>,
) -> Result<Option<T>, Denial> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => cast(value)
            .map(Some)
            .ok_or_else(|| wrong(path, expected, Some(value))),
    }
}

/// `obj[key]` as an optional object.
pub(super) fn opt_object<'a>(
    obj: &'a Object,
    key: &str,
    path: impl Display,
) -> Result<Option<&'a Object>, Denial> {
    optional(obj, key, path, "an object", Value::as_object)
}

/// `obj[key]` as an optional array.
pub(super) fn opt_array<'a>(
    obj: &'a Object,
    key: &str,
    path: impl Display,
) -> Result<Option<&'a [Value]>, Denial> {
    optional(obj, key, path, "an array", |v| {
        v.as_array().map(Vec::as_slice)
    })
}

/// `obj[key]` as an optional string.
pub(super) fn opt_str<'a>(
    obj: &'a Object,
    key: &str,
    path: impl Display,
) -> Result<Option<&'a str>, Denial> {
    optional(obj, key, path, "a string", Value::as_str)
}

/// `value` must be an object (used for the pod itself and list entries we write into).
pub(super) fn object(value: &Value, path: impl Display) -> Result<&Object, Denial> {
    value
        .as_object()
        .ok_or_else(|| wrong(path, "an object", Some(value)))
}

/// Lenient name lookup for list entries we only compare against (volumes,
/// mounts, env): anything that is not an object with a string field simply
/// does not match, because such entries are not ours to judge.
pub(super) fn field_str<'a>(entry: &'a Value, key: &str) -> Option<&'a str> {
    entry.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn null_and_absent_are_none() {
        let o = obj(json!({"a": null}));
        assert_eq!(opt_array(&o, "a", "a").unwrap(), None);
        assert_eq!(opt_array(&o, "b", "b").unwrap(), None);
        assert_eq!(opt_object(&o, "a", "a").unwrap(), None);
        assert_eq!(opt_str(&o, "a", "a").unwrap(), None);
    }

    #[test]
    fn wrong_types_are_denials_naming_the_path() {
        let o = obj(json!({"a": "str", "b": [], "c": {}}));
        let e = opt_array(&o, "a", "spec.containers").unwrap_err();
        assert_eq!(
            e.to_string(),
            "spec.containers must be an array, got a string"
        );
        assert!(opt_object(&o, "b", "x").is_err());
        assert!(opt_str(&o, "c", "x").is_err());
        assert!(object(&json!(1), "pod").is_err());
    }

    #[test]
    fn field_str_is_lenient() {
        assert_eq!(field_str(&json!({"name": "x"}), "name"), Some("x"));
        assert_eq!(field_str(&json!({"name": 1}), "name"), None);
        assert_eq!(field_str(&json!("name"), "name"), None);
        assert_eq!(field_str(&json!(["name"]), "name"), None);
    }
}
