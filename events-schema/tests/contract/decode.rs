//! The strict envelope: `Event::decode`, `Event::encode`, `Event::caused_by`.

use events_schema::{
    Currency, CustomerId, DecodeError, Event, EventData, EventId, EventType, FareCollected, FareId,
    PreAuthorised,
};
use serde_json::{json, Value};

const ID: &str = "01a21c04-b53e-72c4-8155-d54aa5e343a5";

fn valid() -> Value {
    json!({
        "event_id": ID, "event_type": "PreAuthorised", "schema_version": 1, "fare_id": "wr_563",
        "occurred_at": "2026-11-27T08:00:00.123Z", "causation_id": ID, "correlation_id": ID,
        "data": {"customer_id": "3", "amount_minor": 2000, "currency": "USD",
                 "authorisation_id": "pa_1"}
    })
}

fn decode(v: &Value) -> Result<Event, DecodeError> {
    Event::decode(v.to_string().as_bytes())
}

fn with(field: &str, value: Value) -> Value {
    let mut v = valid();
    v[field] = value;
    v
}

fn without(field: &str) -> Value {
    let mut v = valid();
    v.as_object_mut().unwrap().remove(field);
    v
}

fn pre_authorised() -> EventData {
    EventData::PreAuthorised(PreAuthorised {
        customer_id: CustomerId::parse("3").unwrap(),
        amount_minor: 2000,
        currency: Currency::parse("USD").unwrap(),
        authorisation_id: "pa_1".into(),
    })
}

#[test]
fn decodes_a_valid_envelope() {
    let e = decode(&valid()).unwrap();
    assert_eq!(e.event_type(), EventType::PreAuthorised);
    assert_eq!(e.fare_id.as_str(), "wr_563");
    assert_eq!(e.event_id.to_string(), ID);
    assert_eq!(e.schema_version, 1);
    assert_eq!(e.data, pre_authorised());
}

#[test]
fn not_json() {
    for bytes in [
        &b"\xff\xfe"[..],
        b"{nope",
        b"[1,2]",
        b"\"text\"",
        b"",
        b"null",
    ] {
        let err = Event::decode(bytes).unwrap_err();
        assert!(matches!(err, DecodeError::NotJson(_)), "{bytes:?}: {err:?}");
        assert_eq!(err.code(), "not_json");
    }
    let err = Event::decode(b"[1]").unwrap_err();
    assert!(err.reason().contains("an array"), "{err}");
}

#[test]
fn every_envelope_field_is_required() {
    for field in [
        "event_id",
        "event_type",
        "schema_version",
        "fare_id",
        "occurred_at",
        "causation_id",
        "correlation_id",
        "data",
    ] {
        assert_eq!(
            decode(&without(field)),
            Err(DecodeError::MissingField(field))
        );
        assert_eq!(
            decode(&with(field, Value::Null)),
            Err(DecodeError::MissingField(field)),
            "null counts as absent"
        );
    }
    assert_eq!(
        DecodeError::MissingField("fare_id").reason(),
        "missing field fare_id"
    );
}

#[test]
fn unknown_event_type() {
    let err = decode(&with("event_type", json!("PreAuthorized"))).unwrap_err();
    assert_eq!(err, DecodeError::UnknownEventType("PreAuthorized".into()));
    assert_eq!(err.code(), "unknown_event_type");
    let err = decode(&with("event_type", json!(7))).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::InvalidField {
            field: "event_type",
            ..
        }
    ));
}

#[test]
fn unsupported_schema_version() {
    assert_eq!(
        decode(&with("schema_version", json!(2))),
        Err(DecodeError::UnsupportedSchemaVersion(2))
    );
    assert_eq!(
        decode(&with("schema_version", json!(0))),
        Err(DecodeError::UnsupportedSchemaVersion(0))
    );
    for bad in [json!("1"), json!(-1), json!(1.5)] {
        let err = decode(&with("schema_version", bad)).unwrap_err();
        assert!(matches!(
            err,
            DecodeError::InvalidField {
                field: "schema_version",
                ..
            }
        ));
    }
}

#[test]
fn invalid_fields() {
    let cases = [
        ("fare_id", json!("")),
        ("fare_id", json!("wr 563")),
        ("fare_id", json!("a".repeat(65))),
        ("fare_id", json!(563)),
        ("event_id", json!("not-a-uuid")),
        ("causation_id", json!("123")),
        ("correlation_id", json!({})),
        ("occurred_at", json!("27/11/2026 08:00")),
        ("occurred_at", json!("2026-11-27 08:00:00")),
    ];
    for (field, value) in cases {
        match decode(&with(field, value.clone())) {
            Err(DecodeError::InvalidField { field: f, reason }) => {
                assert_eq!(f, field, "{value}");
                assert!(!reason.is_empty());
            }
            other => panic!("{field}={value}: {other:?}"),
        }
    }
    let err = decode(&with("fare_id", json!("wr 563"))).unwrap_err();
    assert_eq!(err.code(), "invalid_field");
    assert!(
        err.reason().starts_with("invalid fare_id: contains ' '"),
        "{err}"
    );
}

#[test]
fn invalid_data() {
    let mut v = valid();
    v["data"]["currency"] = json!("XXX");
    let err = decode(&v).unwrap_err();
    assert!(
        matches!(&err, DecodeError::InvalidData { event_type: EventType::PreAuthorised, reason } if reason.contains("XXX")),
        "{err:?}"
    );
    assert_eq!(err.code(), "invalid_data");

    let mut v = valid();
    v["data"]
        .as_object_mut()
        .unwrap()
        .remove("authorisation_id");
    let err = decode(&v).unwrap_err();
    assert!(err.reason().contains("authorisation_id"), "{err}");

    let v = with("data", json!([1]));
    assert!(matches!(decode(&v), Err(DecodeError::InvalidData { .. })));

    let v = with("event_type", json!("FareCollected"));
    assert!(
        matches!(
            decode(&v),
            Ok(Event {
                data: EventData::FareCollected(_),
                ..
            })
        ),
        "extra data fields are ignored"
    );
}

#[test]
fn a_card_number_never_reaches_an_error() {
    let mut v = valid();
    v["event_type"] = json!("FareRequested");
    v["data"] = json!({"customer_id": "3", "amount_minor": 2000, "currency": "USD",
                       "payment_token": 4111111111111111_u64});
    let err = decode(&v).unwrap_err();
    assert!(!err.reason().contains("4111111111111111"), "{err}");
    assert!(matches!(err, DecodeError::InvalidData { .. }));
}

#[test]
fn unknown_envelope_keys_are_ignored_and_offsets_normalised() {
    let mut v = with("occurred_at", json!("2026-11-27T09:00:00.123456+01:00"));
    v["trace"] = json!("abc");
    let e = decode(&v).unwrap();
    let out: Value = serde_json::from_slice(&e.encode()).unwrap();
    assert_eq!(out["occurred_at"], "2026-11-27T08:00:00.123Z");
    assert!(out.get("trace").is_none());
}

#[test]
fn encode_writes_keys_in_spec_order() {
    let e = decode(&valid()).unwrap();
    let text = String::from_utf8(e.encode()).unwrap();
    let keys = [
        "\"event_id\":",
        "\"event_type\":",
        "\"schema_version\":",
        "\"fare_id\":",
        "\"occurred_at\":",
        "\"causation_id\":",
        "\"correlation_id\":",
        "\"data\":",
    ];
    let positions: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.starts_with("{\"event_id\":\""), "{text}");
    assert!(
        text.contains("\"occurred_at\":\"2026-11-27T08:00:00.123Z\""),
        "{text}"
    );
    assert!(
        text.contains("\"event_type\":\"PreAuthorised\",\"schema_version\":1,"),
        "{text}"
    );
    assert_eq!(
        serde_json::to_string(&e).unwrap(),
        text,
        "Serialize = encode"
    );
    let back: Event = serde_json::from_str(&text).unwrap();
    assert_eq!(back, e);
}

#[test]
fn occurred_at_is_written_with_three_fraction_digits_and_z() {
    let e = Event::start_saga(FareId::parse("wr_1").unwrap(), pre_authorised());
    let v: Value = serde_json::from_slice(&e.encode()).unwrap();
    let at = v["occurred_at"].as_str().unwrap();
    assert_eq!(at.len(), "2026-11-27T08:00:00.123Z".len(), "{at}");
    assert_eq!(&at[19..20], ".");
    assert!(at[20..23].bytes().all(|b| b.is_ascii_digit()), "{at}");
    assert!(at.ends_with('Z'), "{at}");
    assert_eq!(
        Event::decode(&e.encode()).unwrap(),
        e,
        "ms precision survives"
    );
}

#[test]
fn caused_by_links_the_saga() {
    let first = Event::start_saga(FareId::parse("wr_563").unwrap(), pre_authorised());
    assert_eq!(first.causation_id, first.event_id);
    assert_eq!(first.correlation_id, first.event_id);
    let data = EventData::FareCollected(FareCollected {
        customer_id: CustomerId::parse("3").unwrap(),
        amount_minor: 2000,
        currency: Currency::parse("USD").unwrap(),
    });
    let next = Event::caused_by(&first, data);
    assert_ne!(next.event_id, first.event_id);
    assert_eq!(next.event_id.as_uuid().get_version_num(), 7);
    assert_eq!(next.causation_id, first.event_id);
    assert_eq!(next.correlation_id, first.correlation_id);
    assert_eq!(next.fare_id, first.fare_id);
    assert_eq!(next.schema_version, 1);
    assert_eq!(next.event_type(), EventType::FareCollected);
    assert_eq!(next.occurred_at.offset(), time::UtcOffset::UTC);
    let third = Event::caused_by(&next, pre_authorised());
    assert_eq!(third.causation_id, next.event_id);
    assert_eq!(third.correlation_id, first.event_id);
    let _ = EventId::from_uuid(third.event_id.as_uuid());
}
