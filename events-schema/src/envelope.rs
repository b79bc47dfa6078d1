//! Reading the fields of an envelope (SPEC §3) out of a JSON object, one rule each.
//!
//! Shared by the strict [`Event::decode`](crate::Event::decode) and the lenient
//! [`ReceivedFareRequest::parse`](crate::ReceivedFareRequest::parse). A field that is `null`
//! counts as absent.

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::card;
use crate::error::DecodeError;
use crate::event_type::EventType;
use crate::ids::{EventId, FareId};
use crate::timestamp;

/// The envelope keys, in the order they are written.
pub(crate) const FIELDS: [&str; 8] = [
    "event_id",
    "event_type",
    "schema_version",
    "fare_id",
    "occurred_at",
    "causation_id",
    "correlation_id",
    "data",
];

/// Parses `bytes` as UTF-8 JSON holding an object.
pub(crate) fn object_from_bytes(bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| DecodeError::NotJson(format!("not UTF-8 ({e})")))?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| DecodeError::NotJson(card::redact(&e.to_string())))?;
    object_from_value(value)
}

/// The object inside `value`, or why it is not one.
pub(crate) fn object_from_value(value: Value) -> Result<Map<String, Value>, DecodeError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(DecodeError::NotJson(format!(
            "expected a JSON object, found {}",
            kind(&other)
        ))),
    }
}

/// `"a string"`, `"an array"`, …: the JSON type of `value`, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a decimal number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value of `field`, when present and not `null`.
pub(crate) fn optional<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

/// The value of `field`, or [`DecodeError::MissingField`].
pub(crate) fn required<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Value, DecodeError> {
    optional(obj, field).ok_or(DecodeError::MissingField(field))
}

fn text<'a>(field: &'static str, value: &'a Value) -> Result<&'a str, DecodeError> {
    value.as_str().ok_or_else(|| DecodeError::InvalidField {
        field,
        reason: format!("must be a string, found {}", kind(value)),
    })
}

pub(crate) fn event_type(value: &Value) -> Result<EventType, DecodeError> {
    let name = text("event_type", value)?;
    name.parse().map_err(|_| {
        DecodeError::UnknownEventType(card::redact(&name.chars().take(64).collect::<String>()))
    })
}

pub(crate) fn schema_version(value: &Value) -> Result<u32, DecodeError> {
    let version = value.as_u64().ok_or_else(|| DecodeError::InvalidField {
        field: "schema_version",
        reason: format!("must be a positive integer, found {}", kind(value)),
    })?;
    if version == u64::from(crate::SCHEMA_VERSION) {
        Ok(crate::SCHEMA_VERSION)
    } else {
        Err(DecodeError::UnsupportedSchemaVersion(version))
    }
}

pub(crate) fn fare_id(value: &Value) -> Result<FareId, DecodeError> {
    FareId::parse(text("fare_id", value)?).map_err(|e| DecodeError::InvalidField {
        field: "fare_id",
        reason: e.problem().to_owned(),
    })
}

/// `event_id`, `causation_id` or `correlation_id`.
pub(crate) fn event_id(field: &'static str, value: &Value) -> Result<EventId, DecodeError> {
    EventId::parse(text(field, value)?).map_err(|e| DecodeError::InvalidField {
        field,
        reason: e.problem().to_owned(),
    })
}

pub(crate) fn occurred_at(value: &Value) -> Result<OffsetDateTime, DecodeError> {
    timestamp::parse(text("occurred_at", value)?).map_err(|_| DecodeError::InvalidField {
        field: "occurred_at",
        reason: "is not an RFC 3339 timestamp such as 2026-11-27T08:00:00.123Z".to_owned(),
    })
}
