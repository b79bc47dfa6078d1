//! CloudEvents 1.0 in binary content mode (the CloudEvents Kafka protocol binding): every event
//! a service publishes carries the envelope's attributes again as `ce_*` headers, so that
//! CloudEvents-aware tools (routers, filters, tracing) can read them without parsing the value.
//! The value stays the SPEC §3 JSON envelope, unchanged; the headers are derived from it, so
//! they can never disagree with it.
//!
//! | header | value | from the envelope |
//! |---|---|---|
//! | `ce_specversion` | `1.0` | — |
//! | `ce_id` | the event's id | `event_id` |
//! | `ce_source` | `/wildrydes/<writer>` (e.g. `/wildrydes/payment-service`) | the topic's writer (SPEC §2) |
//! | `ce_type` | the event type (e.g. `Charged`) | `event_type` |
//! | `ce_time` | RFC 3339 | `occurred_at` |
//! | `ce_subject` | the fare | `fare_id` (also the Kafka key) |
//! | `content-type` | `application/json` | — |
//!
//! `ce_id` and `ce_source` together are unique per event, as CloudEvents requires: a
//! republished event (a relay retry) has the same pair, and consumers de-duplicate on it.
//! Dead letters carry no `ce_*` headers: their value is someone else's message, described by
//! their `dlq.*` headers.

use std::borrow::Cow;

use serde::Deserialize;

use crate::event::Event;

/// `ce_specversion`.
pub const SPEC_VERSION: &str = "1.0";
/// `content-type`: the value is the JSON envelope.
pub const CONTENT_TYPE: &str = "application/json";

/// `ce_source` of the events `writer` publishes: `/wildrydes/<writer>`.
pub fn source(writer: &str) -> String {
    format!("/wildrydes/{writer}")
}

/// The binary-mode headers of `event`, published by `writer`, in a fixed order.
pub fn headers(event: &Event, writer: &str) -> Vec<(&'static str, String)> {
    let occurred_at = crate::timestamp::format(event.occurred_at);
    attributes(
        &event.event_id.to_string(),
        event.event_type().as_str(),
        &occurred_at,
        event.fare_id.as_str(),
        writer,
    )
}

/// The binary-mode headers of the encoded event `payload` ([`Event::encode`]), published by
/// `writer`; `None` when the payload is not an envelope (a dead letter's value).
pub fn headers_of_payload(payload: &[u8], writer: &str) -> Option<Vec<(&'static str, String)>> {
    let envelope: Envelope<'_> = serde_json::from_slice(payload).ok()?;
    Some(attributes(
        &envelope.event_id,
        &envelope.event_type,
        &envelope.occurred_at,
        &envelope.fare_id,
        writer,
    ))
}

/// The envelope fields the headers repeat; the rest of the value is skipped unread.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(borrow)]
    fare_id: Cow<'a, str>,
}

fn attributes(
    event_id: &str,
    event_type: &str,
    occurred_at: &str,
    fare_id: &str,
    writer: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("ce_specversion", SPEC_VERSION.to_owned()),
        ("ce_id", event_id.to_owned()),
        ("ce_source", source(writer)),
        ("ce_type", event_type.to_owned()),
        ("ce_time", occurred_at.to_owned()),
        ("ce_subject", fare_id.to_owned()),
        ("content-type", CONTENT_TYPE.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::FareId;
    use crate::{Charged, EventData};

    fn charged() -> Event {
        Event::start_saga(
            FareId::parse("wr_ce_1").unwrap(),
            EventData::Charged(Charged {
                customer_id: crate::CustomerId::parse("c1").unwrap(),
                amount_minor: 2000,
                currency: crate::Currency::parse("USD").unwrap(),
                authorisation_id: "auth_1".to_owned(),
                charge_id: "ch_1".to_owned(),
            }),
        )
    }

    #[test]
    fn the_headers_repeat_the_envelope() {
        let event = charged();
        let headers = headers(&event, "payment-service");
        let value = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let envelope: serde_json::Value = serde_json::from_slice(&event.encode()).unwrap();
        assert_eq!(value("ce_specversion"), "1.0");
        assert_eq!(value("ce_id"), envelope["event_id"]);
        assert_eq!(value("ce_type"), "Charged");
        assert_eq!(value("ce_type"), envelope["event_type"]);
        assert_eq!(value("ce_time"), envelope["occurred_at"]);
        assert_eq!(value("ce_subject"), "wr_ce_1");
        assert_eq!(value("ce_source"), "/wildrydes/payment-service");
        assert_eq!(value("content-type"), "application/json");
    }

    #[test]
    fn the_headers_of_an_encoded_event_are_those_of_the_event() {
        let event = charged();
        assert_eq!(
            headers_of_payload(&event.encode(), "payment-service"),
            Some(headers(&event, "payment-service"))
        );
    }

    #[test]
    fn a_value_that_is_not_an_envelope_has_none() {
        assert_eq!(headers_of_payload(b"not json", "payment-service"), None);
        assert_eq!(
            headers_of_payload(br#"{"fare_id":"wr_1"}"#, "payment-service"),
            None
        );
    }
}
