//! Reading `fare-outcomes`: one line per terminal outcome, and the messages that are not
//! events (reported, never fatal).

use std::collections::HashSet;

use events_schema::{timestamp, Event, EventData};
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};

use crate::broker;
use crate::detail::{describe, describe_failure};

/// One message read from the topic.
#[derive(Debug)]
pub enum Received {
    /// A well-formed event.
    Event(Box<Event>),
    /// Bytes that are not an event envelope: where they are and why.
    Unreadable {
        /// The message key (the fare id, when the writer followed SPEC §2).
        key: Option<String>,
        /// `partition 2 offset 17`.
        position: String,
        /// Why it is not an event.
        reason: String,
    },
}

impl Received {
    /// Decodes `message`'s value as an event.
    pub fn from_message(message: &BorrowedMessage<'_>) -> Received {
        let decoded = match message.payload() {
            Some(payload) => Event::decode(payload).map_err(|e| e.to_string()),
            None => Err("empty message (no value)".to_owned()),
        };
        match decoded {
            Ok(event) => Received::Event(Box::new(event)),
            Err(reason) => Received::Unreadable {
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                position: format!(
                    "partition {} offset {}",
                    message.partition(),
                    message.offset()
                ),
                reason,
            },
        }
    }

    /// The fare the message is about: the event's `fare_id`, else the message key.
    pub fn fare_id(&self) -> Option<&str> {
        match self {
            Received::Event(event) => Some(event.fare_id.as_str()),
            Received::Unreadable { key, .. } => key.as_deref(),
        }
    }
}

/// `2026-11-27T08:00:00.123Z  wr_563         FareCollected         20.00 USD collected from customer 3`
pub fn line(event: &Event) -> String {
    let detail = match &event.data {
        EventData::FareCollectionFailed(failed) => describe_failure(failed),
        other => describe(other),
    };
    format!(
        "{}  {:<13}  {:<20}  {}",
        timestamp::format(event.occurred_at),
        event.fare_id.as_str(),
        event.event_type().as_str(),
        detail
    )
}

/// Consumer warnings, each printed once until a message arrives again (librdkafka repeats
/// its connection errors every few seconds while the broker is down).
#[derive(Debug, Default)]
pub struct Warnings {
    shown: HashSet<String>,
    /// The latest warning of the current outage.
    latest: Option<String>,
    /// Keep them (for [`Warnings::latest`]) instead of printing them.
    silent: bool,
}

impl Warnings {
    /// Warnings that are kept, not printed (for a caller that shows them elsewhere).
    pub fn silent() -> Warnings {
        Warnings {
            silent: true,
            ..Warnings::default()
        }
    }

    /// Prints `text` on stderr unless it was already shown during this outage.
    pub fn warn(&mut self, text: String) {
        if self.shown.insert(text.clone()) && !self.silent {
            eprintln!("{text}");
        }
        self.latest = Some(text);
    }

    /// A message arrived: the outage, if any, is over.
    pub fn clear(&mut self) {
        self.shown.clear();
        self.latest = None;
    }

    /// The latest warning since a message last arrived.
    pub fn latest(&self) -> Option<&str> {
        self.latest.as_deref()
    }
}

/// The next message `reader` (a consumer of `topic`) receives. Consumer errors go to
/// `warnings` and the reader reads on (librdkafka reconnects by itself), except a missing
/// topic, which is an error.
pub async fn next_message<'a>(
    reader: &'a StreamConsumer,
    topic: &str,
    bootstrap: &str,
    warnings: &mut Warnings,
) -> anyhow::Result<BorrowedMessage<'a>> {
    loop {
        match reader.recv().await {
            Ok(message) => {
                warnings.clear();
                return Ok(message);
            }
            Err(error) => warnings.warn(consumer_error(&error, topic, bootstrap)?),
        }
    }
}

/// What to do about an error the consumer reported: `Err` to stop (the topic is gone),
/// `Ok(text)` to warn and read on (librdkafka reconnects by itself).
pub fn consumer_error(error: &KafkaError, topic: &str, bootstrap: &str) -> anyhow::Result<String> {
    match error {
        KafkaError::MessageConsumption(code) if broker::is_missing_topic(*code) => anyhow::bail!(
            "topic {topic} does not exist on Kafka at {bootstrap} — create the topics with `fares topics ensure`"
        ),
        other => Ok(format!(
            "warning: Kafka at {bootstrap}: {other} (still trying; is the stack up? scripts/stack status)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events_schema::*;
    use rdkafka::error::RDKafkaErrorCode;
    use time::macros::datetime;

    fn outcome(data: EventData) -> Event {
        let mut e = Event::start_saga(FareId::parse("wr_563").unwrap(), data);
        e.occurred_at = datetime!(2026-11-27 08:00:00.123 UTC);
        e
    }

    #[test]
    fn collected_line() {
        let e = outcome(
            FareCollected {
                customer_id: CustomerId::parse("3").unwrap(),
                amount_minor: 2000,
                currency: Currency::parse("USD").unwrap(),
            }
            .into(),
        );
        assert_eq!(
            line(&e),
            "2026-11-27T08:00:00.123Z  wr_563         FareCollected         20.00 USD collected from customer 3"
        );
    }

    #[test]
    fn failed_line_shows_reason_compensations_and_attention() {
        let e = outcome(
            FareCollectionFailed {
                customer_id: Some(CustomerId::parse("3_fail_credit_fail_refund").unwrap()),
                amount_minor: Some(2000),
                currency: Some(Currency::parse("USD").unwrap()),
                reason: "refund failed after 5 attempts".into(),
                compensations: vec![],
                needs_attention: true,
            }
            .into(),
        );
        assert_eq!(
            line(&e),
            "2026-11-27T08:00:00.123Z  wr_563         FareCollectionFailed  NEEDS ATTENTION: 20.00 USD not collected: \
             refund failed after 5 attempts — compensations: none"
        );
    }

    #[test]
    fn a_missing_topic_stops_other_errors_warn() {
        let gone = KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition);
        let e = consumer_error(&gone, "fare-outcomes", "localhost:9092").unwrap_err();
        assert!(e.to_string().contains("fares topics ensure"), "{e}");
        let down = KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure);
        let w = consumer_error(&down, "fare-outcomes", "localhost:9092").unwrap();
        assert!(w.starts_with("warning: Kafka at localhost:9092"), "{w}");
    }
}
