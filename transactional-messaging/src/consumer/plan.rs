//! What a message is, decided by the dispatcher before any transaction: something to
//! dead-letter at once, something the service ignores, a request to read as received, or an
//! event for the service's handler.

use events_schema::choreography;
use events_schema::{Event, EventId, EventType, ReceivedFareRequest};

use super::{Consumed, Consuming};
use crate::kafka::MAX_MESSAGE_BYTES;

/// The dispatcher's decision.
#[derive(Debug)]
pub enum Plan {
    /// Cannot be processed at all: to the DLQ with this reason.
    DeadLetter(String),
    /// An event of this type, which the service does not react to (SPEC §4): done, no
    /// transaction.
    Ignore(EventType),
    /// A message of a raw topic (`fare-requests`), for the handler, in the queue of `fare`;
    /// `event_id` is the request's (filled in when it has none).
    Raw { fare: String, event_id: EventId },
    /// A strict event the service reacts to.
    Event(Box<Event>),
}

/// Decides what `message` is for the service of `consuming`.
///
/// - empty, oversized (except on a raw topic: a request with a valid fare_id gets an outcome
///   whatever its size), not a strict event, or keyed otherwise than by its `fare_id` → dead
///   letter;
/// - an event type the service does not react to → ignored; the `event_type` header the relay
///   writes on every event spares decoding it;
/// - a raw message without a valid `fare_id` → dead letter (no saga to answer).
pub fn plan(consuming: &Consuming, message: &Consumed) -> Plan {
    if message.payload.is_empty() {
        return Plan::DeadLetter("empty message".to_owned());
    }
    let topic = consuming.names.topic_of(&message.topic);
    if topic.is_some_and(|topic| consuming.raw_topics.contains(&topic)) {
        return match ReceivedFareRequest::parse(&message.payload) {
            Ok(request) => Plan::Raw {
                fare: request.fare_id.as_str().to_owned(),
                event_id: request.event_id,
            },
            Err(error) => Plan::DeadLetter(error.reason()),
        };
    }
    if let Some(Ok(event_type)) = message.event_type.as_deref().map(str::parse::<EventType>) {
        if !choreography::reacts(consuming.service, event_type) {
            return Plan::Ignore(event_type);
        }
    }
    if message.payload.len() > MAX_MESSAGE_BYTES {
        return Plan::DeadLetter(format!(
            "oversized message: {} bytes, more than {MAX_MESSAGE_BYTES}",
            message.payload.len()
        ));
    }
    let event = match Event::decode(&message.payload) {
        Ok(event) => event,
        Err(error) => return Plan::DeadLetter(error.reason()),
    };
    if message.key.as_deref() != Some(event.fare_id.as_str()) {
        return Plan::DeadLetter(format!(
            "the Kafka key {} is not the event's fare_id {}: events are keyed by fare_id",
            message
                .key
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), |k| format!("{k:?}")),
            event.fare_id
        ));
    }
    if !choreography::reacts(consuming.service, event.event_type()) {
        return Plan::Ignore(event.event_type());
    }
    Plan::Event(Box::new(event))
}
