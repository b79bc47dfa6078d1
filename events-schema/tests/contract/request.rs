//! The lenient `fare-requests` reader: defaults, derived ids, every problem reported.

use events_schema::{
    canonical, derived_event_id, DecodeError, EventType, FareId, ReceivedFareRequest,
    FARE_REQUEST_NAMESPACE,
};
use serde_json::{json, Value};

const MINIMAL: &str = r#"{"event_type":"FareRequested","fare_id":"wr_563",
 "data":{"customer_id":"3","amount_minor":2000,"currency":"USD","payment_token":"tok_visa"}}"#;

const ID: &str = "01a21c04-b47b-7dea-bc41-2b9785a13c11";

fn parse(v: &Value) -> Result<ReceivedFareRequest, DecodeError> {
    ReceivedFareRequest::parse(v.to_string().as_bytes())
}

fn minimal() -> Value {
    serde_json::from_str(MINIMAL).unwrap()
}

fn problems(data: Value) -> Vec<String> {
    let mut v = minimal();
    v["data"] = data;
    parse(&v).unwrap().request.unwrap_err()
}

#[test]
fn minimal_request_is_accepted_and_filled_with_defaults() {
    let before = events_schema::timestamp::now();
    let r = ReceivedFareRequest::parse(MINIMAL.as_bytes()).unwrap();
    let after = events_schema::timestamp::now();
    let req = r.request.as_ref().unwrap();
    assert_eq!(req.customer_id.as_str(), "3");
    assert_eq!(req.amount_minor, 2000);
    assert_eq!(req.currency.as_str(), "USD");
    assert_eq!(req.payment_token, "tok_visa");
    assert_eq!(r.fare_id.as_str(), "wr_563");
    assert_eq!(r.event_id.as_uuid().get_version_num(), 5);
    assert_eq!(r.causation_id, r.event_id);
    assert_eq!(r.correlation_id, r.event_id);
    assert!(before <= r.occurred_at && r.occurred_at <= after);
    assert_eq!(r.raw_data, minimal()["data"]);
    assert_eq!(
        r.event_id,
        derived_event_id(&FareId::parse("wr_563").unwrap(), &r.raw_data)
    );
    let name = format!(
        "wr_563\n{}",
        r#"{"amount_minor":2000,"currency":"USD","customer_id":"3","payment_token":"tok_visa"}"#
    );
    assert_eq!(
        r.event_id.as_uuid(),
        uuid::Uuid::new_v5(&FARE_REQUEST_NAMESPACE, name.as_bytes())
    );
    let event = r.to_event().unwrap();
    assert_eq!(event.event_type(), EventType::FareRequested);
    assert_eq!(event.schema_version, 1);
}

#[test]
fn same_request_twice_same_id_different_data_different_id() {
    let a = ReceivedFareRequest::parse(MINIMAL.as_bytes()).unwrap();
    let b = ReceivedFareRequest::parse(MINIMAL.as_bytes()).unwrap();
    assert_eq!(a.event_id, b.event_id);
    let reordered = r#"{"data":{"payment_token":"tok_visa","currency":"USD","amount_minor":2000,
        "customer_id":"3"},"fare_id":"wr_563","event_type":"FareRequested"}"#;
    let c = ReceivedFareRequest::parse(reordered.as_bytes()).unwrap();
    assert_eq!(
        c.event_id, a.event_id,
        "key order and whitespace do not matter"
    );
    assert_eq!(c.raw_data, a.raw_data);
    assert_eq!(
        canonical::to_string(&c.raw_data),
        canonical::to_string(&a.raw_data)
    );

    let mut other = minimal();
    other["data"]["amount_minor"] = json!(2001);
    assert_ne!(parse(&other).unwrap().event_id, a.event_id);
    let mut other_fare = minimal();
    other_fare["fare_id"] = json!("wr_564");
    assert_ne!(parse(&other_fare).unwrap().event_id, a.event_id);
}

#[test]
fn given_envelope_fields_are_kept() {
    let mut v = minimal();
    v["event_id"] = json!(ID);
    v["schema_version"] = json!(1);
    v["occurred_at"] = json!("2026-11-27T08:00:00.123Z");
    let r = parse(&v).unwrap();
    assert_eq!(r.event_id.to_string(), ID);
    assert_eq!(r.causation_id.to_string(), ID);
    assert_eq!(r.correlation_id.to_string(), ID);
    assert_eq!(
        events_schema::timestamp::format(r.occurred_at),
        "2026-11-27T08:00:00.123Z"
    );
    v["correlation_id"] = json!("01a21c04-b53e-72c4-8155-d54aa5e343a5");
    let r = parse(&v).unwrap();
    assert_eq!(r.causation_id.to_string(), ID);
    assert_eq!(
        r.correlation_id.to_string(),
        "01a21c04-b53e-72c4-8155-d54aa5e343a5"
    );
}

#[test]
fn several_problems_are_all_reported() {
    let found = problems(json!({"customer_id": "3", "amount_minor": 0, "currency": "XXX"}));
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("data.amount_minor"), "{found:#?}");
    assert!(found[1].starts_with("data.currency") && found[1].contains("XXX"));
    assert_eq!(found[2], "data.payment_token is missing");
}

#[test]
fn each_invalid_case_of_spec_section_4() {
    let base = minimal()["data"].clone();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("amount_minor", json!(0), "between 1 and 1000000"),
        ("amount_minor", json!(-100), "between 1 and 1000000"),
        ("amount_minor", json!(1_000_001), "between 1 and 1000000"),
        ("amount_minor", json!(u64::MAX), "between 1 and 1000000"),
        ("amount_minor", json!(20.5), "integer"),
        ("amount_minor", json!("2000"), "integer"),
        ("currency", json!("usd"), "ISO 4217"),
        ("currency", json!(840), "string"),
        ("customer_id", json!(""), "empty"),
        ("customer_id", json!("rider 3"), "contains ' '"),
        ("customer_id", json!(3), "string"),
        ("payment_token", json!(""), "empty"),
        ("payment_token", json!("   "), "empty"),
        ("payment_token", json!("t".repeat(256)), "longer than 255"),
        ("payment_token", json!(["tok"]), "string"),
    ];
    for (field, value, expect) in cases {
        let mut data = base.clone();
        data[field] = value.clone();
        let found = problems(data);
        assert_eq!(found.len(), 1, "{field}={value}: {found:?}");
        assert!(found[0].starts_with(&format!("data.{field} ")), "{found:?}");
        assert!(found[0].contains(expect), "{field}={value}: {found:?}");
    }
    for field in ["customer_id", "amount_minor", "currency", "payment_token"] {
        let mut data = base.clone();
        data.as_object_mut().unwrap().remove(field);
        assert_eq!(problems(data), vec![format!("data.{field} is missing")]);
    }
    assert_eq!(
        problems(json!("x")),
        vec!["data must be a JSON object, found a string"]
    );
    let mut v = minimal();
    v.as_object_mut().unwrap().remove("data");
    let r = parse(&v).unwrap();
    assert_eq!(r.request, Err(vec!["data is missing".to_owned()]));
    assert_eq!(r.raw_data, Value::Null);
    assert!(r.to_event().is_none());
}

#[test]
fn card_numbers_are_refused_and_never_echoed() {
    for token in [
        json!("4242424242424242"),
        json!("4242 4242 4242 4242"),
        json!("tok_4111111111111111"),
        json!(4111111111111111_u64),
    ] {
        let mut v = minimal();
        v["data"]["payment_token"] = token.clone();
        v["data"]["card_number"] = json!("5555-5555-5555-4444");
        let r = parse(&v).unwrap();
        let found = r.request.clone().unwrap_err();
        assert_eq!(found.len(), 2, "{token}: {found:?}");
        assert!(found[0].starts_with("data.payment_token"), "{found:?}");
        assert!(found[1].starts_with("data.card_number"), "{found:?}");
        let everything = format!("{found:?} {} {r:?}", r.raw_data);
        for digits in ["4242", "41111111", "5555"] {
            assert!(!everything.contains(digits), "{token}: {everything}");
        }
    }
    let r = ReceivedFareRequest::parse(MINIMAL.as_bytes()).unwrap();
    assert!(
        !format!("{r:?}").contains("tok_visa"),
        "Debug hides the token"
    );
}

#[test]
fn only_a_message_without_json_or_fare_id_is_a_decode_error() {
    assert!(matches!(
        ReceivedFareRequest::parse(b"not json"),
        Err(DecodeError::NotJson(_))
    ));
    assert!(matches!(
        ReceivedFareRequest::parse(b"[]"),
        Err(DecodeError::NotJson(_))
    ));
    let mut v = minimal();
    v.as_object_mut().unwrap().remove("fare_id");
    assert_eq!(parse(&v).unwrap_err(), DecodeError::MissingField("fare_id"));
    let mut v = minimal();
    v["fare_id"] = json!("wr 563");
    assert!(matches!(
        parse(&v),
        Err(DecodeError::InvalidField {
            field: "fare_id",
            ..
        })
    ));
}

/// SPEC §4: a request with a valid fare_id gets an outcome whatever else is wrong with it, so
/// a malformed envelope is a list of problems, not a dead letter.
#[test]
fn envelope_problems_are_problems_of_the_fare() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("event_type", Value::Null, "missing field event_type"),
        ("event_type", json!("FareRequest"), "unknown event_type"),
        ("event_type", json!("PreAuthorised"), "not PreAuthorised"),
        ("schema_version", json!(2), "unsupported schema_version 2"),
        ("schema_version", json!("one"), "invalid schema_version"),
        ("event_id", json!("x"), "invalid event_id"),
        ("causation_id", json!("x"), "invalid causation_id"),
        ("correlation_id", json!(12), "invalid correlation_id"),
        ("occurred_at", json!("tomorrow"), "invalid occurred_at"),
    ];
    for (field, value, expect) in cases {
        let mut v = minimal();
        v[field] = value.clone();
        if value.is_null() {
            v.as_object_mut().unwrap().remove(field);
        }
        let r = parse(&v).unwrap_or_else(|e| panic!("{field}={value}: {e}"));
        let found = r.request.clone().unwrap_err();
        assert_eq!(found.len(), 1, "{field}={value}: {found:?}");
        assert!(found[0].contains(expect), "{field}={value}: {found:?}");
        assert_eq!(r.fare_id.as_str(), "wr_563");
        assert_eq!(
            r.raw_data,
            minimal()["data"],
            "the data is still read for duplicate comparison"
        );
        if field == "event_id" {
            assert_eq!(
                r.event_id,
                derived_event_id(&r.fare_id, &r.raw_data),
                "a malformed event_id is replaced as if absent"
            );
        }
    }
    let mut v = minimal();
    v["event_id"] = json!("x");
    v["data"]["amount_minor"] = json!(0);
    let found = parse(&v).unwrap().request.unwrap_err();
    assert_eq!(found.len(), 2, "envelope and data problems: {found:?}");
    assert!(found[0].contains("event_id") && found[1].starts_with("data.amount_minor"));

    let mut v = minimal();
    v["schema_version"] = Value::Null;
    v["event_id"] = Value::Null;
    assert!(
        parse(&v).unwrap().is_valid(),
        "null optional fields count as absent"
    );
}
