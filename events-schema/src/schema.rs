//! JSON Schemas of the events, generated from the types with `schemars`.
//!
//! One schema per event type: the SPEC §3 envelope with that type's `data`. They are
//! committed under `events-schema/schemas/<EventType>.json`; a test fails when they drift
//! from the types (re-generate with `UPDATE_SCHEMAS=1 cargo test -p events-schema`).
//!
//! `FareRequested.json` describes what `fare-requests` accepts: only `event_type`, `fare_id`
//! and `data` are required there, the payment-service fills in the rest (SPEC §3). Every
//! other schema requires the full envelope.

use std::borrow::Cow;

use schemars::{json_schema, schema_for, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Value};

use crate::data::*;
use crate::envelope;
use crate::event_type::EventType;
use crate::ids::{EventId, FareId};

/// An RFC 3339 timestamp, for the `occurred_at` schema.
struct Timestamp;

impl JsonSchema for Timestamp {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339; written in UTC with three fractional digits, e.g. 2026-11-27T08:00:00.123Z.",
        })
    }
}

/// The envelope, for schema generation only; `event_type` and `schema_version` become
/// constants afterwards.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct Envelope<D> {
    /// UUID, unique per event; consumers de-duplicate on it.
    event_id: EventId,
    /// The event type; decides the shape of `data`.
    event_type: String,
    /// Version of this envelope and data format.
    schema_version: u32,
    /// The saga id, also the Kafka key.
    fare_id: FareId,
    /// When the event happened.
    occurred_at: Timestamp,
    /// event_id of the event that caused this one.
    causation_id: EventId,
    /// event_id of the saga's FareRequested; the same for the whole saga.
    correlation_id: EventId,
    /// The event's payload.
    data: D,
}

fn envelope_schema<D: JsonSchema>(event_type: EventType) -> Value {
    let mut value = schema_for!(Envelope<D>).to_value();
    if let Some(root) = value.as_object_mut() {
        let name = event_type.as_str();
        root.insert("title".into(), json!(name));
        root.insert(
            "description".into(),
            json!(format!(
                "A {name} event (schema_version 1), published on topic {} and keyed by fare_id.",
                event_type.topic().base_name()
            )),
        );
        if let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert(
                "event_type".into(),
                json!({ "type": "string", "const": name }),
            );
            props.insert(
                "schema_version".into(),
                json!({ "type": "integer", "const": crate::SCHEMA_VERSION }),
            );
        }
        let required: Vec<&str> = if event_type == EventType::FareRequested {
            vec!["event_type", "fare_id", "data"]
        } else {
            envelope::FIELDS.to_vec()
        };
        root.insert("required".into(), json!(required));
        if event_type == EventType::FareRequested {
            root.insert(
                "$comment".into(),
                json!("event_id, schema_version, occurred_at, causation_id and correlation_id may be omitted; payment-service fills them in (event_id = UUIDv5 of fare_id and data, causation_id = correlation_id = event_id)."),
            );
        }
    }
    value
}

/// The JSON Schema of one event type's envelope.
pub fn json_schema(event_type: EventType) -> Value {
    match event_type {
        EventType::FareRequested => envelope_schema::<FareRequested>(event_type),
        EventType::FareRejected => envelope_schema::<FareRejected>(event_type),
        EventType::PreAuthorised => envelope_schema::<PreAuthorised>(event_type),
        EventType::PreAuthFailed => envelope_schema::<PreAuthFailed>(event_type),
        EventType::Charged => envelope_schema::<Charged>(event_type),
        EventType::ChargeFailed => envelope_schema::<ChargeFailed>(event_type),
        EventType::PreAuthReleased => envelope_schema::<PreAuthReleased>(event_type),
        EventType::PaymentRefunded => envelope_schema::<PaymentRefunded>(event_type),
        EventType::RefundFailed => envelope_schema::<RefundFailed>(event_type),
        EventType::ReleaseFailed => envelope_schema::<ReleaseFailed>(event_type),
        EventType::AccountUpdated => envelope_schema::<AccountUpdated>(event_type),
        EventType::AccountUpdateFailed => envelope_schema::<AccountUpdateFailed>(event_type),
        EventType::FareCollected => envelope_schema::<FareCollected>(event_type),
        EventType::FareCollectionFailed => envelope_schema::<FareCollectionFailed>(event_type),
    }
}

/// The JSON Schema of every event type, in [`EventType::ALL`] order.
pub fn json_schemas() -> Vec<(EventType, Value)> {
    EventType::ALL
        .into_iter()
        .map(|t| (t, json_schema(t)))
        .collect()
}
