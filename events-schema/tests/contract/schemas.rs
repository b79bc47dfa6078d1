//! The committed `schemas/<EventType>.json` files are exactly what the types generate.

use std::fs;

use events_schema::{canonical, json_schemas, EventType};
use serde_json::Value;

use crate::package_path;

fn pretty(schema: &Value) -> String {
    let text = serde_json::to_string_pretty(&canonical::sorted(schema.clone())).unwrap();
    format!("{text}\n")
}

#[test]
fn committed_schemas_match_the_types() {
    let update = std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1");
    let dir = package_path("schemas");
    let mut stale = Vec::new();
    for (event_type, schema) in json_schemas() {
        let path = dir.join(format!("{event_type}.json"));
        if update {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&path, pretty(&schema)).unwrap();
            continue;
        }
        match fs::read_to_string(&path) {
            Ok(text) => {
                let committed: Value = serde_json::from_str(&text).unwrap();
                if committed != schema {
                    stale.push(format!("{} differs", path.display()));
                }
            }
            Err(e) => stale.push(format!("{} unreadable: {e}", path.display())),
        }
    }
    for entry in fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let known = name
            .strip_suffix(".json")
            .is_some_and(|t| t.parse::<EventType>().is_ok());
        if !known {
            stale.push(format!("{name} in schemas/ is not an event type's schema"));
        }
    }
    assert!(
        stale.is_empty(),
        "the committed JSON Schemas are out of date with the Rust types:\n  {}\n\
         Regenerate them with `UPDATE_SCHEMAS=1 cargo test -p events-schema` and commit \
         events-schema/schemas/.",
        stale.join("\n  ")
    );
}

#[test]
fn every_event_type_has_a_schema_with_constant_type() {
    let schemas = json_schemas();
    assert_eq!(schemas.len(), EventType::ALL.len());
    for (event_type, schema) in schemas {
        assert_eq!(schema["title"], event_type.as_str());
        assert_eq!(
            schema["properties"]["event_type"]["const"],
            event_type.as_str()
        );
        assert_eq!(schema["properties"]["schema_version"]["const"], 1);
        let required = schema["required"].as_array().unwrap().len();
        let expected = if event_type == EventType::FareRequested {
            3
        } else {
            8
        };
        assert_eq!(required, expected, "{event_type}");
    }
}
