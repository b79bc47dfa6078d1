//! The event envelope of SPEC §3 and its JSON form.
//!
//! ```json
//! {"event_id":"…","event_type":"PreAuthorised","schema_version":1,"fare_id":"wr_563",
//!  "occurred_at":"2026-11-27T08:00:00.123Z","causation_id":"…","correlation_id":"…","data":{…}}
//! ```
//!
//! [`Event::decode`] is strict: every envelope field is required, `data` must match the struct
//! of `event_type`. Unknown keys are ignored, in the envelope and in `data`, so producers can
//! add fields without breaking older consumers.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::data::*;
use crate::envelope;
use crate::error::DecodeError;
use crate::event_type::EventType;
use crate::ids::{EventId, FareId};
use crate::{canonical, card, timestamp};

/// The `schema_version` this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

macro_rules! event_data {
    ($($name:ident),+ $(,)?) => {
        /// The typed `data` of an event; the variant decides the `event_type`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum EventData {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name($name),
            )+
        }

        impl EventData {
            /// The `event_type` this data is published under.
            pub fn event_type(&self) -> EventType {
                match self {
                    $(EventData::$name(_) => EventType::$name,)+
                }
            }

            /// Reads `data` as the struct of `event_type`.
            pub fn from_value(event_type: EventType, data: Value) -> Result<Self, serde_json::Error> {
                Ok(match event_type {
                    $(EventType::$name => EventData::$name(serde_json::from_value(data)?),)+
                })
            }
        }

        /// Serialises the inner struct only; the type travels in `event_type`.
        impl Serialize for EventData {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(EventData::$name(d) => d.serialize(s),)+
                }
            }
        }

        $(
            impl From<$name> for EventData {
                fn from(d: $name) -> Self {
                    EventData::$name(d)
                }
            }
        )+
    };
}

event_data!(
    FareRequested,
    FareRejected,
    PreAuthorised,
    PreAuthFailed,
    Charged,
    ChargeFailed,
    PreAuthReleased,
    PaymentRefunded,
    ReleaseFailed,
    RefundFailed,
    AccountUpdated,
    AccountUpdateFailed,
    FareCollected,
    FareCollectionFailed,
);

/// One event of a fare's saga.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique per event; consumers de-duplicate on it.
    pub event_id: EventId,
    /// Always [`SCHEMA_VERSION`] for events of this build.
    pub schema_version: u32,
    /// The saga id, also the Kafka key.
    pub fare_id: FareId,
    /// When the event happened; UTC, millisecond precision once encoded.
    pub occurred_at: OffsetDateTime,
    /// `event_id` of the event that caused this one (itself for the first event).
    pub causation_id: EventId,
    /// `event_id` of the saga's `FareRequested`; the same for the whole saga.
    pub correlation_id: EventId,
    /// The typed payload; decides `event_type`.
    pub data: EventData,
}

/// The JSON form, with the keys in SPEC order (serde writes struct fields in order).
#[derive(Serialize)]
struct Wire<'a> {
    event_id: EventId,
    event_type: EventType,
    schema_version: u32,
    fare_id: &'a FareId,
    occurred_at: String,
    causation_id: EventId,
    correlation_id: EventId,
    data: &'a EventData,
}

impl Event {
    /// The first event of a saga: a new id, which is also its causation and correlation id.
    pub fn start_saga(fare_id: FareId, data: EventData) -> Event {
        let event_id = EventId::new();
        Event {
            event_id,
            schema_version: SCHEMA_VERSION,
            fare_id,
            occurred_at: timestamp::now(),
            causation_id: event_id,
            correlation_id: event_id,
            data,
        }
    }

    /// A new event caused by `cause`: a new id (UUIDv7), the same `fare_id` and
    /// `correlation_id`, `causation_id = cause.event_id`, `occurred_at` = now in UTC.
    pub fn caused_by(cause: &Event, data: EventData) -> Event {
        Event::follow_up(
            cause.fare_id.clone(),
            cause.event_id,
            cause.correlation_id,
            data,
        )
    }

    /// A new event of the saga `correlation_id`, caused by the event `causation_id`, when only
    /// the ids of the cause are at hand (a rejected request, a scheduled retry).
    pub fn follow_up(
        fare_id: FareId,
        causation_id: EventId,
        correlation_id: EventId,
        data: EventData,
    ) -> Event {
        Event {
            event_id: EventId::new(),
            schema_version: SCHEMA_VERSION,
            fare_id,
            occurred_at: timestamp::now(),
            causation_id,
            correlation_id,
            data,
        }
    }

    /// The `event_type`, from the data's variant.
    pub fn event_type(&self) -> EventType {
        self.data.event_type()
    }

    /// What the event says, whatever its envelope: a UUIDv5 of its type and canonical `data`.
    /// Two deliveries of one event have the same fingerprint; an `event_id` reused for other
    /// content does not (SPEC §3).
    pub fn fingerprint(&self) -> Uuid {
        /// The UUIDv5 namespace of event fingerprints.
        const NAMESPACE: Uuid = Uuid::from_u128(0x8f1c_5b2a_77d4_4e0b_a3c6_19e2_d05f_6b84);
        let data = serde_json::to_value(&self.data).unwrap_or_default();
        let name = format!("{}\n{}", self.event_type(), canonical::to_string(&data));
        Uuid::new_v5(&NAMESPACE, name.as_bytes())
    }

    /// Strict decode of a full envelope (all SPEC §3 fields required; `null` counts as
    /// absent). Checks the shape and ids of `data`, not the business rules of a
    /// `FareRequested` (amount range, payment token): for those see
    /// [`ReceivedFareRequest`](crate::ReceivedFareRequest) and [`FareRequested::problems`].
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        Self::from_object(envelope::object_from_bytes(bytes)?)
    }

    /// As [`Event::decode`], from parsed JSON.
    pub fn from_value(value: Value) -> Result<Event, DecodeError> {
        Self::from_object(envelope::object_from_value(value)?)
    }

    fn from_object(mut obj: serde_json::Map<String, Value>) -> Result<Event, DecodeError> {
        for field in envelope::FIELDS {
            envelope::required(&obj, field)?;
        }
        let event_id = envelope::event_id("event_id", envelope::required(&obj, "event_id")?)?;
        let event_type = envelope::event_type(envelope::required(&obj, "event_type")?)?;
        let schema_version = envelope::schema_version(envelope::required(&obj, "schema_version")?)?;
        let fare_id = envelope::fare_id(envelope::required(&obj, "fare_id")?)?;
        let occurred_at = envelope::occurred_at(envelope::required(&obj, "occurred_at")?)?;
        let causation_id =
            envelope::event_id("causation_id", envelope::required(&obj, "causation_id")?)?;
        let correlation_id = envelope::event_id(
            "correlation_id",
            envelope::required(&obj, "correlation_id")?,
        )?;
        let data = obj
            .remove("data")
            .ok_or(DecodeError::MissingField("data"))?;
        let data =
            EventData::from_value(event_type, data).map_err(|e| DecodeError::InvalidData {
                event_type,
                reason: card::redact(&e.to_string()),
            })?;
        Ok(Event {
            event_id,
            schema_version,
            fare_id,
            occurred_at,
            causation_id,
            correlation_id,
            data,
        })
    }

    /// JSON bytes exactly as SPEC §3: keys `event_id`, `event_type`, `schema_version`,
    /// `fare_id`, `occurred_at`, `causation_id`, `correlation_id`, `data`, in that order;
    /// `occurred_at` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub fn encode(&self) -> Vec<u8> {
        // Cannot fail: every map key is a string and no Serialize impl here returns an error.
        serde_json::to_vec(&self.wire()).expect("an Event always serialises to JSON")
    }

    /// The JSON form as a value (key order then depends on `serde_json`'s map).
    pub fn to_value(&self) -> Value {
        // Cannot fail, as for `encode`.
        serde_json::to_value(self.wire()).expect("an Event always serialises to JSON")
    }

    fn wire(&self) -> Wire<'_> {
        Wire {
            event_id: self.event_id,
            event_type: self.event_type(),
            schema_version: self.schema_version,
            fare_id: &self.fare_id,
            occurred_at: timestamp::format(self.occurred_at),
            causation_id: self.causation_id,
            correlation_id: self.correlation_id,
            data: &self.data,
        }
    }
}

/// The SPEC §3 JSON form, as [`Event::encode`] writes it.
impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(s)
    }
}

/// Strict, as [`Event::decode`].
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Event::from_value(value).map_err(serde::de::Error::custom)
    }
}
