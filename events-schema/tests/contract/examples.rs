//! `examples/<EventType>.json` decode, re-encode to the same JSON and satisfy their schema.

use std::fs;

use events_schema::{json_schema, Event, EventType, ReceivedFareRequest};
use serde_json::Value;

use crate::{mini_schema, package_path};

fn example(name: &str) -> Vec<u8> {
    let path = package_path(&format!("examples/{name}.json"));
    fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_example_round_trips_and_matches_its_schema() {
    for event_type in EventType::ALL {
        let bytes = example(event_type.as_str());
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let event = Event::decode(&bytes).unwrap_or_else(|e| panic!("{event_type}: {e}"));
        assert_eq!(event.event_type(), event_type);
        let encoded = event.encode();
        let again: Value = serde_json::from_slice(&encoded).unwrap();
        assert_eq!(again, original, "{event_type} re-encodes differently");
        assert_eq!(Event::decode(&encoded).unwrap(), event);

        let schema = json_schema(event_type);
        let found = mini_schema::violations(&schema, &original);
        assert!(
            found.is_empty(),
            "{event_type} breaks its schema: {found:#?}"
        );
    }
}

#[test]
fn full_fare_requested_example_reads_the_same_leniently() {
    let bytes = example("FareRequested");
    let strict = Event::decode(&bytes).unwrap();
    let received = ReceivedFareRequest::parse(&bytes).unwrap();
    assert_eq!(received.to_event(), Some(strict));
}

#[test]
fn minimal_request_example_is_accepted_and_filled_in() {
    let bytes = example("minimal-FareRequested");
    assert!(
        Event::decode(&bytes).is_err(),
        "strict decode needs the full envelope"
    );
    let received = ReceivedFareRequest::parse(&bytes).unwrap();
    let event = received.to_event().expect("the minimal request is valid");
    let original: Value = serde_json::from_slice(&bytes).unwrap();
    let encoded: Value = serde_json::from_slice(&event.encode()).unwrap();
    assert_eq!(encoded["data"], original["data"]);
    assert_eq!(encoded["fare_id"], "wr_563");
    assert_eq!(Event::decode(&event.encode()).unwrap(), event);

    let schema = json_schema(EventType::FareRequested);
    assert!(mini_schema::violations(&schema, &original).is_empty());
    assert!(mini_schema::violations(&schema, &encoded).is_empty());
}

#[test]
fn no_stray_example_files() {
    for entry in fs::read_dir(package_path("examples")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let stem = name.strip_suffix(".json").unwrap_or(&name);
        let known = stem == "minimal-FareRequested" || stem.parse::<EventType>().is_ok();
        assert!(known, "examples/{name} is not an event type's example");
    }
}
