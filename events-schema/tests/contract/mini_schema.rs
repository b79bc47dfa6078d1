//! A small JSON Schema checker for the subset of keywords `schemars` generates here
//! (`$ref` to `$defs`, `type`, `const`, `enum`, `required`, `properties`, `items`, `anyOf`,
//! `oneOf`, `minimum`/`maximum`, `minLength`/`maxLength`). `pattern` and `format` are not
//! checked; undeclared properties are reported (stricter than JSON Schema, whose default
//! allows them), since an example should carry no field the contract does not name.
//! Enough to catch an example drifting from its schema without a validator crate.

use serde_json::Value;

const HANDLED: &[&str] = &[
    "$ref",
    "type",
    "const",
    "enum",
    "required",
    "properties",
    "items",
    "anyOf",
    "oneOf",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
];
const IGNORED: &[&str] = &[
    "$schema",
    "$defs",
    "$comment",
    "title",
    "description",
    "format",
    "pattern",
];

/// Every violation of `schema` by `value`, as `path: problem`.
pub fn violations(root: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(root, root, value, "$", &mut out);
    out
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}

fn check(root: &Value, schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    for key in schema.keys() {
        assert!(
            HANDLED.contains(&key.as_str()) || IGNORED.contains(&key.as_str()),
            "mini_schema does not understand keyword {key}; extend it"
        );
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = r.strip_prefix('#').expect("local $ref");
        let target = root.pointer(pointer).expect("$ref target exists");
        check(root, target, value, path, out);
    }
    match schema.get("type") {
        Some(Value::String(t)) if !type_matches(t, value) => {
            out.push(format!("{path}: expected {t}, found {value}"));
            return;
        }
        Some(Value::Array(ts)) if !ts.iter().any(|t| type_matches(t.as_str().unwrap(), value)) => {
            out.push(format!("{path}: expected one of {ts:?}, found {value}"));
            return;
        }
        _ => {}
    }
    if let Some(c) = schema.get("const") {
        if c != value {
            out.push(format!("{path}: expected {c}, found {value}"));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(value) {
            out.push(format!("{path}: {value} is not one of the enum values"));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(branches)) = schema.get(key) {
            let matching = branches
                .iter()
                .filter(|b| violations_at(root, b, value, path).is_empty())
                .count();
            let ok = if key == "oneOf" {
                matching == 1
            } else {
                matching >= 1
            };
            if !ok {
                out.push(format!("{path}: {matching} branches of {key} match"));
            }
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                out.push(format!("{path}: {n} < minimum {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                out.push(format!("{path}: {n} > maximum {max}"));
            }
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            out.push(format!("{path}: shorter than minLength"));
        }
        if schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            out.push(format!("{path}: longer than maxLength"));
        }
    }
    if let Some(obj) = value.as_object() {
        if let Some(Value::Array(required)) = schema.get("required") {
            for r in required {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    out.push(format!("{path}: missing required {r}"));
                }
            }
        }
        if let Some(Value::Object(props)) = schema.get("properties") {
            for (k, v) in obj {
                match props.get(k) {
                    Some(p) => check(root, p, v, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}: {k} is not a declared property")),
                }
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check(root, items, v, &format!("{path}[{i}]"), out);
        }
    }
}

fn violations_at(root: &Value, schema: &Value, value: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    check(root, schema, value, path, &mut out);
    out
}

#[test]
fn the_checker_catches_what_it_claims_to() {
    let schema = events_schema::json_schema(events_schema::EventType::FareCollectionFailed);
    let good = serde_json::json!({
        "event_id": "01a21c04-b53e-72c4-8155-d54aa5e343a5", "event_type": "FareCollectionFailed",
        "schema_version": 1, "fare_id": "wr_1", "occurred_at": "2026-11-27T08:00:00.000Z",
        "causation_id": "01a21c04-b53e-72c4-8155-d54aa5e343a5",
        "correlation_id": "01a21c04-b53e-72c4-8155-d54aa5e343a5",
        "data": {"reason": "x", "compensations": ["payment_refunded"], "needs_attention": true,
                 "currency": "USD", "amount_minor": 5}
    });
    assert_eq!(violations(&schema, &good), Vec::<String>::new());
    let mut bad = good.clone();
    bad["event_type"] = "Charged".into();
    bad["schema_version"] = 2.into();
    bad["data"]["compensations"] = serde_json::json!(["refunded"]);
    bad["data"]["currency"] = "XXX".into();
    bad["data"]["amount_minor"] = "5".into();
    bad["data"]["extra"] = true.into();
    bad["data"].as_object_mut().unwrap().remove("reason");
    let found = violations(&schema, &bad);
    assert_eq!(found.len(), 7, "{found:#?}");
}
