//! The lenient reader of the `fare-requests` topic, where requests may be typed by hand with
//! kcat (SPEC §3).
//!
//! The envelope must still make sense (JSON object, `event_type` `FareRequested`, a valid
//! `fare_id`, well-formed ids and timestamp when present); otherwise the message goes to the
//! dead-letter topic as a [`DecodeError`]. The optional envelope fields are filled in. The
//! `data` is checked separately: an invalid request is not a poison message but a fare to
//! reject with every problem found (SPEC §4).
//!
//! A request without `event_id` gets a UUIDv5 over its `fare_id` and its canonical `data`, so
//! re-sending the same hand-typed request yields the same id and is recognised as a duplicate.

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
    /// Envelope problems are [`DecodeError`]s (the message goes to the dead-letter topic);
    /// a missing or invalid `data` is not: it gives `request: Err(problems)`.
    pub fn parse(bytes: &[u8]) -> Result<ReceivedFareRequest, DecodeError> {
        let obj = envelope::object_from_bytes(bytes)?;

        let event_type = envelope::event_type(envelope::required(&obj, "event_type")?)?;
        if event_type != EventType::FareRequested {
            return Err(DecodeError::InvalidField {
                field: "event_type",
                reason: format!("fare-requests carries only FareRequested, not {event_type}"),
            });
        }
        if let Some(v) = envelope::optional(&obj, "schema_version") {
            envelope::schema_version(v)?;
        }
        let fare_id = envelope::fare_id(envelope::required(&obj, "fare_id")?)?;
        let event_id = optional_id(&obj, "event_id")?;
        let causation_id = optional_id(&obj, "causation_id")?;
        let correlation_id = optional_id(&obj, "correlation_id")?;
        let occurred_at = envelope::optional(&obj, "occurred_at")
            .map(envelope::occurred_at)
            .transpose()?
            .unwrap_or_else(timestamp::now);

        let data = envelope::optional(&obj, "data");
        let request = fare_rules::check(data);
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

fn optional_id(
    obj: &serde_json::Map<String, Value>,
    field: &'static str,
) -> Result<Option<EventId>, DecodeError> {
    envelope::optional(obj, field)
        .map(|v| envelope::event_id(field, v))
        .transpose()
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
