//! The lenient reader of the `fare-requests` topic, where requests may be typed by hand with
//! kcat (SPEC §3).
//!
//! Only two things make a message unreadable (a [`DecodeError`], the message goes to the
//! dead-letter topic): it is not a JSON object, or it has no valid `fare_id` — without a saga
//! id there is no saga to answer. Everything else that is wrong with a request (SPEC §4: a
//! malformed envelope field, a wrong `event_type` or `schema_version`, invalid `data`) is a
//! problem of a fare to reject, and every problem is listed. The optional envelope fields are
//! filled in; a malformed one is replaced as if it were absent.
//!
//! A request without a (valid) `event_id` gets a UUIDv5 over its `fare_id` and its canonical
//! `data`, so re-sending the same hand-typed request yields the same id and is recognised as a
//! duplicate.

use std::fmt;

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::data::FareRequested;
use crate::envelope;
use crate::error::DecodeError;
use crate::event::{Event, EventData, SCHEMA_VERSION};
use crate::event_type::EventType;
use crate::ids::{EventId, FareId};
use crate::{canonical, card, fare_rules, timestamp};

/// The UUIDv5 namespace of ids derived for requests sent without an `event_id`.
pub const FARE_REQUEST_NAMESPACE: Uuid = Uuid::from_u128(0xde3e1ef8_64ba_426c_a603_e98d0f732ac1);

/// One message read from `fare-requests`, with its missing envelope fields filled in.
#[derive(Clone, PartialEq)]
pub struct ReceivedFareRequest {
    /// As sent, or derived from `fare_id` and `data` (UUIDv5) when absent.
    pub event_id: EventId,
    /// The saga id.
    pub fare_id: FareId,
    /// As sent, or the time of parsing when absent.
    pub occurred_at: OffsetDateTime,
    /// As sent, or `event_id` when absent.
    pub causation_id: EventId,
    /// As sent, or `event_id` when absent.
    pub correlation_id: EventId,
    /// The data as received (for duplicate comparison), canonical (keys sorted) JSON;
    /// `null` when absent. Anything that looks like a card number is redacted.
    pub raw_data: Value,
    /// `Ok` for a valid request; `Err` lists every problem found (SPEC §4).
    pub request: Result<FareRequested, Vec<String>>,
}

impl ReceivedFareRequest {
    /// Reads one `fare-requests` message.
    ///
    /// Only a message that is not a JSON object or has no valid `fare_id` is a
    /// [`DecodeError`]. Every other problem, of the envelope or of `data`, is listed in
    /// `request: Err(problems)`, envelope problems first.
    pub fn parse(bytes: &[u8]) -> Result<ReceivedFareRequest, DecodeError> {
        let obj = envelope::object_from_bytes(bytes)?;
        let fare_id = envelope::fare_id(envelope::required(&obj, "fare_id")?)?;

        let mut problems = Vec::new();
        match envelope::required(&obj, "event_type").and_then(envelope::event_type) {
            Ok(EventType::FareRequested) => {}
            Ok(other) => problems.push(format!(
                "event_type must be FareRequested on fare-requests, not {other}"
            )),
            Err(error) => problems.push(error.reason()),
        }
        if let Some(Err(error)) =
            envelope::optional(&obj, "schema_version").map(envelope::schema_version)
        {
            problems.push(error.reason());
        }
        let event_id = optional_id(&obj, "event_id", &mut problems);
        let causation_id = optional_id(&obj, "causation_id", &mut problems);
        let correlation_id = optional_id(&obj, "correlation_id", &mut problems);
        let occurred_at = envelope::optional(&obj, "occurred_at")
            .and_then(|value| keep_problem(envelope::occurred_at(value), &mut problems))
            .unwrap_or_else(timestamp::now);

        let data = envelope::optional(&obj, "data");
        let request = match fare_rules::check(data) {
            Ok(valid) if problems.is_empty() => Ok(valid),
            Ok(_) => Err(problems),
            Err(data_problems) => {
                problems.extend(data_problems);
                Err(problems)
            }
        };
        let raw_data = data
            .map(|d| canonical::sorted(card::redact_value(d.clone())))
            .unwrap_or(Value::Null);
        let event_id = event_id.unwrap_or_else(|| derived_event_id(&fare_id, &raw_data));

        Ok(ReceivedFareRequest {
            event_id,
            fare_id,
            occurred_at,
            causation_id: causation_id.unwrap_or(event_id),
            correlation_id: correlation_id.unwrap_or(event_id),
            raw_data,
            request,
        })
    }

    /// The full event for a valid request; `None` when invalid.
    pub fn to_event(&self) -> Option<Event> {
        let data = self.request.as_ref().ok()?.clone();
        Some(Event {
            event_id: self.event_id,
            schema_version: SCHEMA_VERSION,
            fare_id: self.fare_id.clone(),
            occurred_at: self.occurred_at,
            causation_id: self.causation_id,
            correlation_id: self.correlation_id,
            data: EventData::FareRequested(data),
        })
    }

    /// Whether the request is valid.
    pub fn is_valid(&self) -> bool {
        self.request.is_ok()
    }
}

/// The id of a request sent without one: UUIDv5 over `fare_id`, a newline and the canonical
/// JSON of its (redacted) `data`.
pub fn derived_event_id(fare_id: &FareId, raw_data: &Value) -> EventId {
    let name = format!("{}\n{}", fare_id, canonical::to_string(raw_data));
    EventId::from_uuid(Uuid::new_v5(&FARE_REQUEST_NAMESPACE, name.as_bytes()))
}

/// An optional id field: `None` when absent, and when malformed (the problem is recorded).
fn optional_id(
    obj: &serde_json::Map<String, Value>,
    field: &'static str,
    problems: &mut Vec<String>,
) -> Option<EventId> {
    envelope::optional(obj, field)
        .and_then(|v| keep_problem(envelope::event_id(field, v), problems))
}

/// The value, or `None` with the error's reason added to `problems`.
fn keep_problem<T>(result: Result<T, DecodeError>, problems: &mut Vec<String>) -> Option<T> {
    result.map_err(|error| problems.push(error.reason())).ok()
}

/// Hand-written so that logging a request never prints its payment token.
impl fmt::Debug for ReceivedFareRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.raw_data.clone();
        if let Some(token) = shown.get_mut("payment_token") {
            *token = Value::String("<redacted>".to_owned());
        }
        f.debug_struct("ReceivedFareRequest")
            .field("event_id", &self.event_id)
            .field("fare_id", &self.fare_id)
            .field("occurred_at", &self.occurred_at)
            .field("causation_id", &self.causation_id)
            .field("correlation_id", &self.correlation_id)
            .field("raw_data", &shown)
            .field("request", &self.request)
            .finish()
    }
}
