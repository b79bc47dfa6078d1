//! Canonical JSON: object keys sorted at every level, no insignificant whitespace.
//!
//! Used to compare a re-sent request with the first one and to derive its `event_id`.
//! Written by hand rather than relying on `serde_json`'s map order, which changes when any
//! crate in the build enables `serde_json/preserve_order`.

use serde_json::{Map, Value};

/// `value` with the keys of every object in sorted order.
pub fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<String, Value>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The canonical text of `value`: sorted keys, compact.
pub fn to_string(value: &Value) -> String {
    sorted(value.clone()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [ {"y": 1, "x": 2} ], "c": null}});
        assert_eq!(
            to_string(&v),
            r#"{"a":{"c":null,"z":[{"x":2,"y":1}]},"b":1}"#
        );
    }

    #[test]
    fn key_order_of_input_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"x":1,"y":"2"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{ "y" : "2", "x" : 1 }"#).unwrap();
        assert_eq!(to_string(&a), to_string(&b));
    }
}
