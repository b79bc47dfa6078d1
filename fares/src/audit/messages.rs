//! What the audit keeps of each message it reads. Not the bytes: only the facts the checks of
//! SPEC §6 need — where the message is, when it was written, what it says (read with
//! events-schema's own readers), a digest of its bytes to match it with its dead letter, and
//! where it holds a raw card number.

use std::hash::{DefaultHasher, Hasher};

use events_schema::{card, derived_event_id, Event, EventData, EventType, ReceivedFareRequest};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use transactional_messaging::dead_letter::{
    HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION, HEADER_SOURCE_TOPIC,
};
use transactional_messaging::kafka::{self, MAX_MESSAGE_BYTES};
use uuid::Uuid;

/// Where a message is in its topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "partition {} offset {}", self.partition, self.offset)
    }
}

/// A digest of a message's bytes as its dead letter holds them: as received, or with its card
/// numbers masked (SPEC §3), the one change a dead letter makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    raw: u64,
    masked: Option<u64>,
}

impl Digest {
    pub fn of(payload: &[u8]) -> Digest {
        Digest {
            raw: digest(payload),
            masked: card::mask_card_numbers(payload).map(|masked| digest(&masked)),
        }
    }

    /// Whether a dead letter whose bytes have digest `letter` holds this message.
    pub fn is_held_by(&self, letter: u64) -> bool {
        self.raw == letter || self.masked == Some(letter)
    }
}

/// A digest of `bytes` (stable within one run, which is all the audit needs).
pub fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    hasher.write(bytes);
    hasher.finish()
}

/// The common facts of every message.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub position: Position,
    /// The broker timestamp, in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    pub key: Option<String>,
    pub digest: Digest,
    /// `Some(reason)` when no service can process it: it must be dead-lettered once consumed.
    pub unprocessable: Option<String>,
}

impl Envelope {
    fn of(message: &BorrowedMessage<'_>) -> Envelope {
        let payload = message.payload().unwrap_or_default();
        Envelope {
            position: Position {
                partition: message.partition(),
                offset: message.offset(),
            },
            timestamp_ms: message.timestamp().to_millis(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            digest: Digest::of(payload),
            unprocessable: payload.is_empty().then(|| "empty message".to_owned()),
        }
    }
}

/// A message of `fare-requests`, read as the payment-service reads it.
#[derive(Debug, Clone)]
pub struct Request {
    pub envelope: Envelope,
    /// The fare it asks for and its fingerprint (the id a request without `event_id` gets,
    /// which payment-service stores as `request_fingerprint`); `None` when unprocessable.
    pub fare: Option<(String, Uuid)>,
}

impl Request {
    pub fn of(message: &BorrowedMessage<'_>) -> Request {
        let mut envelope = Envelope::of(message);
        let mut fare = None;
        if envelope.unprocessable.is_none() {
            match ReceivedFareRequest::parse(message.payload().unwrap_or_default()) {
                Ok(request) => {
                    let fingerprint = derived_event_id(&request.fare_id, &request.raw_data);
                    fare = Some((request.fare_id.as_str().to_owned(), fingerprint.as_uuid()));
                }
                Err(error) => envelope.unprocessable = Some(error.reason()),
            }
        }
        Request { envelope, fare }
    }

    /// The fare the message is about: the request's, else the Kafka key.
    pub fn fare_id(&self) -> Option<&str> {
        self.fare
            .as_ref()
            .map(|(fare_id, _)| fare_id.as_str())
            .or(self.envelope.key.as_deref())
    }
}

/// What an event says, as far as the checks care.
#[derive(Debug, Clone)]
pub struct EventFacts {
    pub event_id: Uuid,
    pub event_type: EventType,
    pub fare_id: String,
    /// [`Event::fingerprint`]: what the inbox keeps to tell a redelivery from a reused id.
    pub fingerprint: Uuid,
    /// For a `FareCollectionFailed`: whether an operator must act.
    pub needs_attention: bool,
}

/// A message of `payment-events`, `accounting-events` or `fare-outcomes`.
#[derive(Debug, Clone)]
pub struct EventMessage {
    pub envelope: Envelope,
    /// The `event_type` header, when it names an event type: the services skip a message whose
    /// header names a type they do not react to, without reading it.
    pub event_type_header: Option<EventType>,
    /// The decoded event (also when it is unprocessable for another reason, e.g. its key).
    pub event: Option<EventFacts>,
}

impl EventMessage {
    pub fn of(message: &BorrowedMessage<'_>) -> EventMessage {
        let mut envelope = Envelope::of(message);
        let payload = message.payload().unwrap_or_default();
        let decoded = Event::decode(payload);
        let event = decoded.as_ref().ok().map(|event| EventFacts {
            event_id: event.event_id.as_uuid(),
            event_type: event.event_type(),
            fare_id: event.fare_id.as_str().to_owned(),
            fingerprint: event.fingerprint(),
            needs_attention: matches!(&event.data, EventData::FareCollectionFailed(f) if f.needs_attention),
        });
        if envelope.unprocessable.is_none() {
            // The consumer loop's rules, in its order (transactional_messaging::consumer).
            envelope.unprocessable = if payload.len() > MAX_MESSAGE_BYTES {
                Some(format!("oversized message: {} bytes", payload.len()))
            } else {
                match &decoded {
                    Err(error) => Some(error.reason()),
                    Ok(event) if envelope.key.as_deref() != Some(event.fare_id.as_str()) => {
                        Some("the Kafka key is not the event's fare_id".to_owned())
                    }
                    Ok(_) => None,
                }
            };
        }
        let event_type_header =
            kafka::header_text(message, "event_type").and_then(|name| name.parse().ok());
        EventMessage {
            envelope,
            event_type_header,
            event,
        }
    }

    /// The fare the message is about: the event's, else the Kafka key.
    pub fn fare_id(&self) -> Option<&str> {
        self.event
            .as_ref()
            .map(|event| event.fare_id.as_str())
            .or(self.envelope.key.as_deref())
    }
}

/// A message on a dead-letter topic: where its original was and what it holds.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The full name of the topic the original was consumed from.
    pub source_topic: String,
    pub source: Position,
    /// The digest of the dead letter's bytes.
    pub digest: u64,
    pub key: Option<String>,
}

impl DeadLetter {
    /// The dead letter in `message`; `None` when it lacks the `dlq.source.*` headers.
    pub fn of(message: &BorrowedMessage<'_>) -> Option<DeadLetter> {
        let header = |name: &str| kafka::header_text(message, name);
        Some(DeadLetter {
            source_topic: header(HEADER_SOURCE_TOPIC)?,
            source: Position {
                partition: header(HEADER_SOURCE_PARTITION)?.parse().ok()?,
                offset: header(HEADER_SOURCE_OFFSET)?.parse().ok()?,
            },
            digest: digest(message.payload().unwrap_or_default()),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
        })
    }
}

/// Where in a message a raw card number is: `"key"`, `"payload"`, `"header dlq.error"`.
pub fn card_number_places(message: &BorrowedMessage<'_>) -> Vec<String> {
    let mut places = Vec::new();
    if message.key().is_some_and(card::has_card_number) {
        places.push("key".to_owned());
    }
    if message.payload().is_some_and(card::has_card_number) {
        places.push("payload".to_owned());
    }
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            if header.value.is_some_and(card::has_card_number) {
                places.push(format!("header {}", header.key));
            }
        }
    }
    places
}

/// `text` as the audit may print it: with any card number masked (a key or a reason can hold
/// what a rider typed).
pub fn shown(text: &str) -> String {
    match card::mask_card_numbers(text.as_bytes()) {
        Some(masked) => String::from_utf8_lossy(&masked).into_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_letter_holds_its_message_raw_or_masked() {
        let plain = Digest::of(b"not json");
        assert!(plain.is_held_by(digest(b"not json")));
        assert!(!plain.is_held_by(digest(b"not json!")));
        let carded = Digest::of(b"pan 4111 1111 1111 1111");
        assert!(carded.is_held_by(digest(b"pan 4111 11** **** 1111")));
        assert!(carded.is_held_by(digest(b"pan 4111 1111 1111 1111")));
    }

    #[test]
    fn shown_text_never_holds_a_card_number() {
        assert_eq!(shown("4111111111111111"), "411111******1111");
        assert_eq!(shown("wr_1"), "wr_1");
    }
}
