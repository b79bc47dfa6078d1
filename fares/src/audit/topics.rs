//! Reading the saga's topics for the audit: every partition from the oldest message still kept
//! up to the high watermark taken when the audit starts, by consumers that are assigned their
//! partitions (they join no group and commit nothing), boiled down to [`messages`] facts.
//!
//! The watermarks are taken effects first (dead-letter topics, `fare-outcomes`, …,
//! `fare-requests` last), so that whatever the audit reads of an effect, it also reads of its
//! cause. The consumer groups' committed offsets are read before that: whatever a service had
//! consumed by then is below the watermarks, and its effects are in the database the audit
//! reads afterwards.
//!
//! [`messages`]: super::messages

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use events_schema::choreography::{self, Service};
use events_schema::{EventType, Topic};
use rdkafka::message::BorrowedMessage;

use super::messages::{card_number_places, DeadLetter, EventMessage, Position, Request};
use crate::broker::Kafka;

/// One partition to read: from `low` (the oldest message kept) to `high` (excluded).
#[derive(Debug, Clone)]
pub struct Range {
    pub topic: Topic,
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

/// A raw card number found in a message.
#[derive(Debug, Clone)]
pub struct CardNumberInMessage {
    pub topic: Topic,
    pub position: Position,
    pub fare_id: Option<String>,
    /// `"payload"`, `"key"`, `"header dlq.error"`, …
    pub places: Vec<String>,
}

/// Everything the audit read on the topics.
#[derive(Debug, Default)]
pub struct TopicFacts {
    /// Messages read per topic.
    pub messages: BTreeMap<Topic, u64>,
    pub requests: Vec<Request>,
    /// Messages of `payment-events`, `accounting-events` and `fare-outcomes`.
    pub events: Vec<(Topic, EventMessage)>,
    /// Dead letters per dead-letter topic.
    pub dead_letters: Vec<(Topic, DeadLetter)>,
    pub card_numbers: Vec<CardNumberInMessage>,
}

/// Offsets each service's consumer group committed: (service, topic, partition) → the next
/// offset it will consume. Everything below was consumed.
pub type Committed = HashMap<(Service, Topic, i32), i64>;

/// The topics `service` consumes: those of the event types it reacts to (SPEC §4).
pub fn consumed_topics(service: Service) -> Vec<Topic> {
    let mut topics: Vec<Topic> = EventType::ALL
        .into_iter()
        .filter(|t| choreography::reacts(service, *t))
        .map(|t| t.topic())
        .collect();
    topics.sort();
    topics.dedup();
    topics
}

/// The order in which watermarks are taken: effects before causes.
const WATERMARK_ORDER: [Topic; 6] = [
    Topic::PaymentDlq,
    Topic::AccountingDlq,
    Topic::FareOutcomes,
    Topic::AccountingEvents,
    Topic::PaymentEvents,
    Topic::FareRequests,
];

/// Every partition of every topic. Fails when a topic is missing.
pub async fn partitions(kafka: &Kafka) -> anyhow::Result<Vec<(Topic, i32)>> {
    let names: Vec<String> = Topic::ALL.iter().map(|t| kafka.topic(*t)).collect();
    let found = kafka.partitions(names).await?;
    let missing: Vec<&str> = found
        .iter()
        .filter(|(_, partitions)| partitions.is_none_or(|p| p == 0))
        .map(|(name, _)| name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the topics {} do not exist on Kafka at {} — check TOPIC_SUFFIX ({:?}); \
             `fares topics ensure` creates them",
            missing.join(", "),
            kafka.bootstrap(),
            kafka.names.suffix()
        );
    }
    Ok(Topic::ALL
        .into_iter()
        .zip(found)
        .flat_map(|(topic, (_, partitions))| {
            (0..partitions.unwrap_or_default() as i32).map(move |p| (topic, p))
        })
        .collect())
}

/// The watermarks of `partitions` now, taken effects first ([`WATERMARK_ORDER`]).
pub async fn ranges(kafka: &Kafka, partitions: &[(Topic, i32)]) -> anyhow::Result<Vec<Range>> {
    let mut ranges = Vec::new();
    for topic in WATERMARK_ORDER {
        let count = partitions.iter().filter(|(t, _)| *t == topic).count();
        for (partition, low, high) in kafka.watermarks(&kafka.topic(topic), count).await? {
            ranges.push(Range {
                topic,
                partition,
                low,
                high,
            });
        }
    }
    Ok(ranges)
}

/// The committed offsets of both services' consumer groups (`<service><TOPIC_SUFFIX>`).
pub async fn committed(kafka: &Kafka, partitions: &[(Topic, i32)]) -> anyhow::Result<Committed> {
    let mut committed = Committed::new();
    for service in Service::ALL {
        let consumed = consumed_topics(service);
        let wanted: Vec<(String, i32)> = partitions
            .iter()
            .filter(|(topic, _)| consumed.contains(topic))
            .map(|(topic, partition)| (kafka.topic(*topic), *partition))
            .collect();
        let group = format!("{}{}", service.name(), kafka.names.suffix());
        for (name, partition, offset) in kafka.committed_offsets(&group, wanted).await? {
            if let Some(topic) = kafka.names.topic_of(&name) {
                committed.insert((service, topic, partition), offset);
            }
        }
    }
    Ok(committed)
}

/// Reads every range, one consumer per topic, each on its own thread. When stderr is a
/// terminal, a line there every few seconds: messages read / total.
pub async fn read(kafka: &Kafka, ranges: &[Range]) -> anyhow::Result<TopicFacts> {
    let total: i64 = ranges.iter().map(|r| r.high - r.low).sum();
    let read = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for topic in Topic::ALL {
        let partitions: Vec<Range> = ranges
            .iter()
            .filter(|r| r.topic == topic && r.high > r.low)
            .cloned()
            .collect();
        let kafka = kafka.clone();
        let read = read.clone();
        readers.push(tokio::task::spawn_blocking(move || {
            read_topic(&kafka, topic, &partitions, &read)
        }));
    }
    let reporter = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(report_progress(read.clone(), total.max(0) as u64)));
    let mut facts = TopicFacts::default();
    let mut failure = None;
    for reader in readers {
        match reader.await.context("a topic reader was interrupted")? {
            Ok(part) => facts.merge(part),
            Err(error) => failure = failure.or(Some(error)),
        }
    }
    if let Some(reporter) = reporter {
        reporter.abort();
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(facts),
    }
}

async fn report_progress(read: Arc<AtomicU64>, total: u64) {
    let mut ticks = tokio::time::interval(Duration::from_secs(3));
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let done = read.load(Ordering::Relaxed);
        eprintln!(
            "fares audit: read {done} of {total} messages ({}%)",
            done * 100 / total.max(1)
        );
    }
}

impl TopicFacts {
    fn merge(&mut self, other: TopicFacts) {
        for (topic, count) in other.messages {
            *self.messages.entry(topic).or_default() += count;
        }
        self.requests.extend(other.requests);
        self.events.extend(other.events);
        self.dead_letters.extend(other.dead_letters);
        self.card_numbers.extend(other.card_numbers);
    }

    /// Keeps the facts of one message of `topic`.
    fn take(&mut self, topic: Topic, message: &BorrowedMessage<'_>) {
        *self.messages.entry(topic).or_default() += 1;
        if topic == Topic::FareRequests {
            // Riders write fare-requests: anything may be there, and it is not scanned for
            // card numbers (SPEC §6.7 is about what the services write).
            self.requests.push(Request::of(message));
            return;
        }
        let places = card_number_places(message);
        let fare_id = if topic.is_dlq() {
            let letter = DeadLetter::of(message);
            let key = letter.as_ref().and_then(|l| l.key.clone());
            if let Some(letter) = letter {
                self.dead_letters.push((topic, letter));
            }
            key
        } else {
            let event = EventMessage::of(message);
            let fare_id = event.fare_id().map(str::to_owned);
            self.events.push((topic, event));
            fare_id
        };
        if !places.is_empty() {
            self.card_numbers.push(CardNumberInMessage {
                topic,
                position: Position {
                    partition: rdkafka::Message::partition(message),
                    offset: rdkafka::Message::offset(message),
                },
                fare_id,
                places,
            });
        }
    }
}

/// Reads `partitions` of `topic` up to their high watermarks.
fn read_topic(
    kafka: &Kafka,
    topic: Topic,
    partitions: &[Range],
    read: &AtomicU64,
) -> anyhow::Result<TopicFacts> {
    let mut facts = TopicFacts::default();
    facts.messages.insert(topic, 0);
    let spans: Vec<(i32, i64, i64)> = partitions
        .iter()
        .map(|r| (r.partition, r.low, r.high))
        .collect();
    kafka.read_spans(&kafka.topic(topic), &spans, |message| {
        facts.take(topic, message);
        read.fetch_add(1, Ordering::Relaxed);
    })?;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_service_consumes_the_topics_of_the_events_it_reacts_to() {
        assert_eq!(
            consumed_topics(Service::Payment),
            [
                Topic::FareRequests,
                Topic::PaymentEvents,
                Topic::AccountingEvents
            ]
        );
        assert_eq!(consumed_topics(Service::Accounting), [Topic::PaymentEvents]);
    }
}
