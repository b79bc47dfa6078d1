//! The fourteen event types of the saga (SPEC §2, §4) and the topic each is published on.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::topic::Topic;

/// The `event_type` of an envelope.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// A rider asks for a fare to be collected.
    FareRequested,
    /// The request was invalid; it will not be collected.
    FareRejected,
    /// The gateway holds the amount on the rider's card.
    PreAuthorised,
    /// The gateway declined the pre-authorisation.
    PreAuthFailed,
    /// The pre-authorised amount was captured.
    Charged,
    /// The gateway declined the capture.
    ChargeFailed,
    /// Compensation: the pre-authorisation hold was released.
    PreAuthReleased,
    /// Compensation: the charge was refunded.
    PaymentRefunded,
    /// The release of the hold still failed after its retry budget; needs an operator.
    ReleaseFailed,
    /// The refund still failed after its retry budget; needs an operator.
    RefundFailed,
    /// The customer's ledger recorded the fare.
    AccountUpdated,
    /// The customer's ledger could not record the fare.
    AccountUpdateFailed,
    /// Terminal outcome: the fare was collected.
    FareCollected,
    /// Terminal outcome: the fare was not collected.
    FareCollectionFailed,
}

/// An `event_type` that names none of the [`EventType`]s.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl EventType {
    /// Every event type, in saga order.
    pub const ALL: [EventType; 14] = [
        EventType::FareRequested,
        EventType::FareRejected,
        EventType::PreAuthorised,
        EventType::PreAuthFailed,
        EventType::Charged,
        EventType::ChargeFailed,
        EventType::PreAuthReleased,
        EventType::PaymentRefunded,
        EventType::ReleaseFailed,
        EventType::RefundFailed,
        EventType::AccountUpdated,
        EventType::AccountUpdateFailed,
        EventType::FareCollected,
        EventType::FareCollectionFailed,
    ];

    /// The name written in `event_type`, exactly as in the SPEC.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventType::FareRequested => "FareRequested",
            EventType::FareRejected => "FareRejected",
            EventType::PreAuthorised => "PreAuthorised",
            EventType::PreAuthFailed => "PreAuthFailed",
            EventType::Charged => "Charged",
            EventType::ChargeFailed => "ChargeFailed",
            EventType::PreAuthReleased => "PreAuthReleased",
            EventType::PaymentRefunded => "PaymentRefunded",
            EventType::RefundFailed => "RefundFailed",
            EventType::ReleaseFailed => "ReleaseFailed",
            EventType::AccountUpdated => "AccountUpdated",
            EventType::AccountUpdateFailed => "AccountUpdateFailed",
            EventType::FareCollected => "FareCollected",
            EventType::FareCollectionFailed => "FareCollectionFailed",
        }
    }

    /// The topic this event type is published on (SPEC §2).
    pub fn topic(&self) -> Topic {
        match self {
            EventType::FareRequested => Topic::FareRequests,
            EventType::FareRejected
            | EventType::PreAuthorised
            | EventType::PreAuthFailed
            | EventType::Charged
            | EventType::ChargeFailed
            | EventType::PreAuthReleased
            | EventType::PaymentRefunded
            | EventType::ReleaseFailed
            | EventType::RefundFailed => Topic::PaymentEvents,
            EventType::AccountUpdated | EventType::AccountUpdateFailed => Topic::AccountingEvents,
            EventType::FareCollected | EventType::FareCollectionFailed => Topic::FareOutcomes,
        }
    }

    /// Whether this is one of the two terminal outcomes on `fare-outcomes`.
    pub fn is_outcome(&self) -> bool {
        matches!(
            self,
            EventType::FareCollected | EventType::FareCollectionFailed
        )
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.chars().take(64).collect()))
    }
}

impl Serialize for EventType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for EventType {
    fn schema_name() -> Cow<'static, str> {
        "EventType".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = EventType::ALL.iter().map(EventType::as_str).collect();
        json_schema!({ "type": "string", "enum": names })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
            assert_eq!(t.to_string(), t.as_str());
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.as_str()));
            assert_eq!(serde_json::from_str::<EventType>(&json).unwrap(), t);
        }
        assert!("PreAuthorized".parse::<EventType>().is_err());
        assert!("prauthorised".parse::<EventType>().is_err());
    }

    #[test]
    fn topics_follow_spec_section_2() {
        use EventType::*;
        assert_eq!(FareRequested.topic(), Topic::FareRequests);
        for t in [
            FareRejected,
            PreAuthorised,
            PreAuthFailed,
            Charged,
            ChargeFailed,
            PreAuthReleased,
            PaymentRefunded,
            ReleaseFailed,
            RefundFailed,
        ] {
            assert_eq!(t.topic(), Topic::PaymentEvents, "{t}");
        }
        assert_eq!(AccountUpdated.topic(), Topic::AccountingEvents);
        assert_eq!(AccountUpdateFailed.topic(), Topic::AccountingEvents);
        assert_eq!(FareCollected.topic(), Topic::FareOutcomes);
        assert_eq!(FareCollectionFailed.topic(), Topic::FareOutcomes);
        assert!(FareCollected.is_outcome() && !Charged.is_outcome());
    }
}
