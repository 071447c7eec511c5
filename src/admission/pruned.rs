//! Decoding JSON into a [`Value`] without the parts a decision never reads.
//!
//! A JSON value in memory takes many times its text: an array of small objects around 80 times,
//! a list of environment variables over 20. The parts of admitted objects no decision reads are
//! also those whose shape the requester controls most freely (`metadata.managedFields`, free-form
//! configuration, `status`), so they are skipped while parsing, never built; what remains is
//! bounded by the kinds' own schemas.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

/// What to leave out of the value at `path` (object keys from the root).
#[derive(Debug, Clone, Copy)]
pub struct Prune {
    pub path: &'static [&'static str],
    pub action: Action,
}

#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// Leave the value out altogether.
    Skip,
    /// Keep only these keys of the object.
    Only(&'static [&'static str]),
}

/// Parses `raw` into a value without the parts `rules` prune.
pub fn decode_pruned(raw: &str, rules: &[Prune]) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    let value = Level::root(rules).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The object at some depth: the rules whose path leads through it, and which keys it keeps.
pub struct Level<'r> {
    rules: &'r [Prune],
    depth: usize,
    only: Option<&'static [&'static str]>,
}

impl<'r> Level<'r> {
    /// The whole value, to be decoded without what `rules` prune.
    pub fn root(rules: &'r [Prune]) -> Self {
        Level {
            rules,
            depth: 0,
            only: None,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.only.is_some_and(|keep| !keep.contains(&key.as_str())) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let leads_here = |rule: &&Prune| rule.path.get(self.depth) == Some(&key.as_str());
            // Most keys lead to no rule: those are decoded whole without collecting anything.
            if !self.rules.iter().any(|rule| leads_here(&rule)) {
                object.insert(key, map.next_value::<Value>()?);
                continue;
            }
            let through: Vec<Prune> = self.rules.iter().filter(leads_here).copied().collect();
            let here = through
                .iter()
                .find(|rule| rule.path.len() == self.depth + 1);
            let value = match here.map(|rule| rule.action) {
                Some(Action::Skip) => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                Some(Action::Only(keep)) => map.next_value_seed(Level {
                    rules: &through,
                    depth: self.depth + 1,
                    only: Some(keep),
                })?,
                None => map.next_value_seed(Level {
                    rules: &through,
                    depth: self.depth + 1,
                    only: None,
                })?,
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }

    // Anything but an object is kept whole: rules name object keys only.
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        serde::Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pruned_parts_are_left_out_and_the_rest_kept_exactly() {
        const RULES: &[Prune] = &[
            Prune {
                path: &["metadata", "managedFields"],
                action: Action::Skip,
            },
            Prune {
                path: &["status"],
                action: Action::Skip,
            },
            Prune {
                path: &["spec"],
                action: Action::Only(&["serviceAccountName"]),
            },
        ];
        let raw = r#"{"apiVersion": "v1", "metadata": {"name": "p", "managedFields": [{"f": {}}],
            "labels": {"a": "b"}}, "spec": {"serviceAccountName": "sa", "containers": [{}]},
            "status": {"phase": "Pending"}, "other": [1, {"status": 2}, null, 1.5, true]}"#;
        assert_eq!(
            decode_pruned(raw, RULES).unwrap(),
            json!({"apiVersion": "v1", "metadata": {"name": "p", "labels": {"a": "b"}},
                "spec": {"serviceAccountName": "sa"}, "other": [1, {"status": 2}, null, 1.5, true]})
        );
        // What is not an object where a rule expects one is kept as it is.
        assert_eq!(
            decode_pruned(r#"{"spec": [1], "metadata": "x"}"#, RULES).unwrap(),
            json!({"spec": [1], "metadata": "x"})
        );
        assert!(decode_pruned(r#"{"status": [1, }"#, RULES).is_err());
        assert!(decode_pruned(r#"{} {}"#, RULES).is_err());
    }
}
