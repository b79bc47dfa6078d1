//! `fares dlq replay`: publishes a dead letter's bytes — or a corrected payload — with its key
//! to its source topic, with headers recording the replay, so that the service processes it
//! like any other message.
//!
//! What is sent is checked first, as strictly as `fares request` checks a hand-typed request
//! (events-schema's own readers: [`ReceivedFareRequest`] on `fare-requests`, the strict
//! [`Event::decode`] on event topics), and refused with every problem before anything is
//! sent; so is a payload holding a raw card number. A dead letter replayed before is refused
//! unless `--force`: the saga de-duplicates a second replay (an identical request or event is
//! ignored; a different request for a fare already registered is dead-lettered as a
//! conflicting duplicate), but an operator should know it was sent before.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use events_schema::{card, timestamp, Event, EventType, ReceivedFareRequest, Topic};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use transactional_messaging::kafka::{producer, MAX_MESSAGE_BYTES};

use super::letter::{self, LetterId};
use super::replays::{self, HEADER_REPLAY_AT, HEADER_REPLAY_OF};
use super::text::{masked, payload_text, time};
use crate::broker::{Kafka, KAFKA_TIMEOUT};
use crate::exit;

/// `fares dlq replay`
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The dead letter, e.g. payment:17 (see `fares dlq list`).
    pub id: String,
    /// Send this corrected payload instead of the dead letter's bytes: a file, or `-` for
    /// stdin. It is checked as strictly as a hand-typed request before anything is sent.
    #[arg(long, value_name = "FILE|-")]
    pub payload: Option<PathBuf>,
    /// Check and print what would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replay a dead letter that was replayed before (by default refused, with when).
    #[arg(long)]
    pub force: bool,
}

/// What passed the checks: the key to send with and the event type of the payload.
#[derive(Debug, PartialEq, Eq)]
pub struct Checked {
    pub key: String,
    pub event_type: EventType,
}

/// Replays the dead letter `args.id`.
pub async fn run(kafka: &Kafka, args: ReplayArgs) -> anyhow::Result<()> {
    let id: LetterId = args.id.parse()?;
    let payload = args.payload.as_ref().map(read_payload).transpose()?;
    let order = Order {
        id,
        payload,
        force: args.force,
        dry_run: args.dry_run,
    };
    match replay(kafka, order).await? {
        Done::DryRun(text) => {
            println!("{text}");
            eprintln!("dry run: nothing was sent");
        }
        sent @ Done::Sent { .. } => println!("{}", sent.summary()),
    }
    Ok(())
}

/// What to replay, and how.
#[derive(Debug)]
pub struct Order {
    pub id: LetterId,
    /// A corrected payload; `None`: the dead letter's own bytes.
    pub payload: Option<Vec<u8>>,
    /// Replay a dead letter that was replayed before.
    pub force: bool,
    /// Check, send nothing.
    pub dry_run: bool,
}

/// What a replay did.
#[derive(Debug)]
pub enum Done {
    /// Nothing sent: what would have been (masked).
    DryRun(String),
    /// Sent, and acknowledged by the broker.
    Sent {
        id: LetterId,
        topic: String,
        partition: i32,
        offset: i64,
        /// The key sent with (masked).
        key: String,
        event_type: EventType,
        corrected: bool,
    },
}

impl Done {
    /// One line saying what was done.
    pub fn summary(&self) -> String {
        match self {
            Done::DryRun(text) => text.clone(),
            Done::Sent {
                id,
                topic,
                partition,
                offset,
                key,
                event_type,
                corrected,
            } => format!(
                "replayed {id} to {topic} partition {partition} offset {offset} (key {key}, {event_type}{})",
                if *corrected { ", corrected payload" } else { "" }
            ),
        }
    }
}

/// Replays `order.id`: checks, refuses a second replay unless forced, publishes. The same for
/// `fares dlq replay` and the console.
pub async fn replay(kafka: &Kafka, order: Order) -> anyhow::Result<Done> {
    let id = order.id;
    let letter = letter::find(kafka, id).await?;
    let source = letter.source().ok_or_else(|| {
        anyhow!("{id} is not a dead letter: it has no dlq.source.* headers, so there is nowhere to replay it to")
    })?;
    let topic = kafka.names.topic_of(&source.topic).ok_or_else(|| {
        anyhow!(
            "{id} came from {}, which is not one of this stack's topics (TOPIC_SUFFIX={:?})",
            source.topic,
            kafka.names.suffix()
        )
    })?;
    kafka.require(topic).await?;
    let earlier = replays::find(kafka, std::slice::from_ref(&letter))
        .await?
        .remove(&0)
        .unwrap_or_default();
    if let Some(first) = earlier.first() {
        if !order.force {
            return Err(exit::negative(format!(
                "{id} was already replayed at {} (to {} partition {} offset {}{}) — refused, so \
                 that nothing is sent twice by mistake; `fares status <fare_id>` shows what became \
                 of it. To send it again, add --force (the services ignore an identical message; \
                 a different request for a fare already registered is dead-lettered)",
                time(first.timestamp_ms),
                first.topic,
                first.partition,
                first.offset,
                match earlier.len() {
                    1 => String::new(),
                    n => format!("; {n} replays in all"),
                }
            )));
        }
    }
    let corrected = order.payload.is_some();
    let payload = order.payload.unwrap_or_else(|| letter.payload.clone());
    let checked = check(topic, letter.key.as_deref(), &payload).map_err(|problems| {
        let hint = if corrected {
            ""
        } else {
            " — give a corrected payload with --payload FILE (or - for stdin)"
        };
        anyhow!(
            "{id} cannot be replayed to {}: nothing was sent{hint}\n{}",
            source.topic,
            problems
                .iter()
                .map(|p| format!("  - {}", masked(p)))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;

    let replayed_at = timestamp::format(timestamp::now());
    let id_text = id.to_string();
    if order.dry_run {
        return Ok(Done::DryRun(format!(
            "would replay {id} to {} with key {}\n  {HEADER_REPLAY_OF}: {id_text}\n  {HEADER_REPLAY_AT}: {replayed_at}\n  event_type: {}\n{}",
            source.topic,
            masked(&checked.key),
            checked.event_type,
            payload_text(&payload)
        )));
    }
    let producer = producer(kafka.bootstrap())?;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "event_type",
            value: Some(checked.event_type.as_str()),
        })
        .insert(Header {
            key: HEADER_REPLAY_OF,
            value: Some(&id_text),
        })
        .insert(Header {
            key: HEADER_REPLAY_AT,
            value: Some(&replayed_at),
        });
    let record = FutureRecord::to(&source.topic)
        .key(&checked.key)
        .payload(&payload)
        .headers(headers);
    let not_acknowledged = || {
        format!(
            "{} — no acknowledgement for the replay of {id} within {} s; it may still arrive: \
             `fares dlq list` shows it replayed once it is on {}",
            kafka.unreachable(),
            KAFKA_TIMEOUT.as_secs(),
            source.topic
        )
    };
    let (partition, offset) =
        match tokio::time::timeout(KAFKA_TIMEOUT, producer.send(record, Duration::ZERO)).await {
            Ok(Ok(delivered)) => (delivered.partition, delivered.offset),
            Ok(Err((error, _message))) => {
                return Err(anyhow::Error::new(error).context(not_acknowledged()))
            }
            Err(_elapsed) => bail!(not_acknowledged()),
        };
    Ok(Done::Sent {
        id,
        topic: source.topic,
        partition,
        offset,
        key: masked(&checked.key),
        event_type: checked.event_type,
        corrected,
    })
}

/// The corrected payload from `path`, or stdin for `-`.
fn read_payload(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("cannot read the payload from stdin")?;
        Ok(bytes)
    } else {
        std::fs::read(path)
            .with_context(|| format!("cannot read the payload from {}", path.display()))
    }
}

/// Checks `payload`, to be sent with the dead letter's `key` to `topic`: every problem, or
/// the key to send with (the payload's `fare_id` when the dead letter had none).
pub fn check(topic: Topic, key: Option<&str>, payload: &[u8]) -> Result<Checked, Vec<String>> {
    let mut problems = Vec::new();
    if payload.is_empty() {
        problems.push("the payload is empty".to_owned());
    }
    if payload.len() > MAX_MESSAGE_BYTES {
        problems.push(format!(
            "the payload is {} bytes, more than the services read ({MAX_MESSAGE_BYTES})",
            payload.len()
        ));
    }
    if card::has_card_number(payload) {
        problems.push(
            "the payload holds a raw card number (SPEC §3): put the payment token in its place"
                .to_owned(),
        );
    }
    let read = match topic {
        Topic::FareRequests => match ReceivedFareRequest::parse(payload) {
            Ok(request) => {
                if let Err(request_problems) = &request.request {
                    problems.extend(request_problems.iter().cloned());
                }
                Some((
                    request.fare_id.as_str().to_owned(),
                    EventType::FareRequested,
                ))
            }
            Err(error) => {
                problems.push(error.reason());
                None
            }
        },
        Topic::PaymentEvents | Topic::AccountingEvents | Topic::FareOutcomes => {
            match Event::decode(payload) {
                Ok(event) => {
                    if event.event_type().topic() != topic {
                        problems.push(format!(
                            "a {} belongs on {}, not on {topic}",
                            event.event_type(),
                            event.event_type().topic()
                        ));
                    }
                    Some((event.fare_id.as_str().to_owned(), event.event_type()))
                }
                Err(error) => {
                    problems.push(error.reason());
                    None
                }
            }
        }
        Topic::PaymentDlq | Topic::AccountingDlq => {
            problems.push(format!(
                "its source is a dead-letter topic ({topic}): nothing reads it"
            ));
            None
        }
    };
    let key = match (key, &read) {
        (Some(key), Some((fare_id, _))) if key != fare_id => {
            problems.push(format!(
                "the dead letter's key {key:?} is not the payload's fare_id {fare_id:?}: the \
                 replay is sent with the dead letter's key, and messages are keyed by fare_id"
            ));
            key.to_owned()
        }
        (Some(key), _) => key.to_owned(),
        (None, Some((fare_id, _))) => fare_id.clone(),
        (None, None) => String::new(),
    };
    match read {
        Some((_, event_type)) if problems.is_empty() => Ok(Checked { key, event_type }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(fare_id: &str, amount: i64, token: &str) -> Vec<u8> {
        format!(
            r#"{{"event_type":"FareRequested","fare_id":"{fare_id}","data":{{"customer_id":"3","amount_minor":{amount},"currency":"USD","payment_token":"{token}"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_valid_request_is_sent_with_its_key() {
        let checked = check(
            Topic::FareRequests,
            Some("wr_1"),
            &request("wr_1", 2000, "tok_visa"),
        );
        assert_eq!(
            checked,
            Ok(Checked {
                key: "wr_1".to_owned(),
                event_type: EventType::FareRequested
            })
        );
        let unkeyed = check(
            Topic::FareRequests,
            None,
            &request("wr_1", 2000, "tok_visa"),
        );
        assert_eq!(unkeyed.unwrap().key, "wr_1");
    }

    #[test]
    fn every_problem_is_listed() {
        let problems = check(
            Topic::FareRequests,
            Some("wr_2"),
            &request("wr_1", 0, "tok_visa"),
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("amount_minor")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("is not the payload's fare_id")),
            "{problems:?}"
        );
        let not_json = check(Topic::FareRequests, Some("wr_1"), b"{\"fare_id\":").unwrap_err();
        assert!(not_json[0].starts_with("not a JSON object"), "{not_json:?}");
    }

    #[test]
    fn a_card_number_is_refused() {
        let problems = check(
            Topic::FareRequests,
            Some("wr_1"),
            &request("wr_1", 2000, "4111 1111 1111 1111"),
        )
        .unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains("raw card number")),
            "{problems:?}"
        );
    }

    #[test]
    fn an_event_must_be_strict_and_on_its_topic() {
        let problems = check(
            Topic::PaymentEvents,
            Some("wr_1"),
            &request("wr_1", 2000, "tok_visa"),
        )
        .unwrap_err();
        assert!(problems[0].starts_with("missing field"), "{problems:?}");
    }
}
