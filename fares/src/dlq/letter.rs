//! A dead letter as the CLI knows it: its id, where it sits on its DLQ, what it holds, and
//! where its original came from — read from the DLQ topics (never from the services'
//! databases), with [`Kafka::read_spans`].

use std::fmt;
use std::str::FromStr;

use anyhow::{anyhow, Context};
use events_schema::choreography::Service;
use events_schema::Topic;
use rdkafka::message::{BorrowedMessage, Message};
use transactional_messaging::dead_letter::{
    HEADER_ERROR, HEADER_REDACTED, HEADER_SERVICE, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
};

use transactional_messaging::kafka;

use crate::broker::Kafka;
use crate::exit;

/// A dead letter's id: the service whose DLQ holds it, and its position there. Written
/// `payment:17` (partition 0, offset 17: a DLQ has one partition) or `payment:1:17` (another
/// partition, for a DLQ created with more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LetterId {
    pub service: Service,
    pub partition: i32,
    pub offset: i64,
}

impl LetterId {
    /// The DLQ topic the id points into.
    pub fn topic(&self) -> Topic {
        dlq_of(self.service)
    }
}

/// The DLQ topic of `service`.
pub fn dlq_of(service: Service) -> Topic {
    match service {
        Service::Payment => Topic::PaymentDlq,
        Service::Accounting => Topic::AccountingDlq,
    }
}

/// The short name of `service` in ids and flags: `payment`, `accounting`.
pub fn short_name(service: Service) -> &'static str {
    match service {
        Service::Payment => "payment",
        Service::Accounting => "accounting",
    }
}

impl fmt::Display for LetterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let service = short_name(self.service);
        match self.partition {
            0 => write!(f, "{service}:{}", self.offset),
            partition => write!(f, "{service}:{partition}:{}", self.offset),
        }
    }
}

impl FromStr for LetterId {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<LetterId> {
        let malformed = || {
            anyhow!(
                "malformed dead-letter id {text:?}: expected SERVICE:OFFSET such as payment:17 \
                 (or SERVICE:PARTITION:OFFSET), SERVICE being payment or accounting — \
                 `fares dlq list` shows the ids"
            )
        };
        let parts: Vec<&str> = text.trim().split(':').collect();
        let (service, partition, offset) = match parts[..] {
            [service, offset] => (service, "0", offset),
            [service, partition, offset] => (service, partition, offset),
            _ => return Err(malformed()),
        };
        let service = Service::ALL
            .into_iter()
            .find(|s| short_name(*s) == service || s.name() == service)
            .ok_or_else(malformed)?;
        let number = |s: &str| s.parse::<i64>().ok().filter(|n| *n >= 0);
        let partition = number(partition)
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(malformed)?;
        let offset = number(offset).ok_or_else(malformed)?;
        Ok(LetterId {
            service,
            partition,
            offset,
        })
    }
}

/// Where a dead letter's original was: `dlq.source.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The full topic name, as in the header.
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// One message of a DLQ topic, as read.
#[derive(Debug, Clone)]
pub struct Letter {
    pub id: LetterId,
    /// The broker timestamp, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    /// Every header, in order, values as text.
    pub headers: Vec<(String, String)>,
}

impl Letter {
    fn of(service: Service, message: &BorrowedMessage<'_>) -> Letter {
        let headers = kafka::headers_text(message);
        Letter {
            id: LetterId {
                service,
                partition: message.partition(),
                offset: message.offset(),
            },
            timestamp_ms: message.timestamp().to_millis(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Where the original was; `None` when the message lacks the `dlq.source.*` headers (it
    /// was not written by a service's dead-lettering).
    pub fn source(&self) -> Option<Source> {
        Some(Source {
            topic: self.header(HEADER_SOURCE_TOPIC)?.to_owned(),
            partition: self.header(HEADER_SOURCE_PARTITION)?.parse().ok()?,
            offset: self.header(HEADER_SOURCE_OFFSET)?.parse().ok()?,
        })
    }

    /// Why it was dead-lettered (`dlq.error`).
    pub fn reason(&self) -> &str {
        self.header(HEADER_ERROR).unwrap_or("(no dlq.error header)")
    }

    /// The service that dead-lettered it (`dlq.service`), else the DLQ's.
    pub fn service(&self) -> &str {
        self.header(HEADER_SERVICE)
            .unwrap_or(self.id.service.name())
    }

    /// Whether a card number was masked in it (`dlq.redacted`).
    pub fn redacted(&self) -> bool {
        self.header(HEADER_REDACTED).is_some()
    }
}

/// What a DLQ holds: the letters read, how many it keeps in all, and the spans read.
#[derive(Debug, Default)]
pub struct Newest {
    pub letters: Vec<Letter>,
    pub total: u64,
    /// Of each partition: (partition, its oldest offset kept, the end of what was read).
    pub spans: Vec<(i32, i64, i64)>,
}

/// The newest `limit` dead letters of each partition of `service`'s DLQ — below offset
/// `before` when given — and how many it keeps in all. Fails when the topic does not exist.
pub async fn newest(
    kafka: &Kafka,
    service: Service,
    limit: u64,
    before: Option<i64>,
) -> anyhow::Result<Newest> {
    let topic = dlq_of(service);
    let partitions = kafka.require(topic).await?;
    let name = kafka.topic(topic);
    let watermarks = kafka.watermarks(&name, partitions).await?;
    let total = watermarks
        .iter()
        .map(|(_, low, high)| (high - low).max(0) as u64)
        .sum();
    let ends: Vec<(i32, i64, i64)> = watermarks
        .iter()
        .map(|&(partition, low, high)| {
            let end = before.map_or(high, |b| b.clamp(low, high));
            (partition, low, end)
        })
        .collect();
    let spans: Vec<(i32, i64, i64)> = ends
        .iter()
        .map(|&(partition, low, end)| (partition, (end - limit as i64).max(low), end))
        .collect();
    let letters = read(kafka, service, spans).await?;
    Ok(Newest {
        letters,
        total,
        spans: ends,
    })
}

/// The dead letter `id`; a negative answer (exit code 1) when its DLQ holds no message there.
pub async fn find(kafka: &Kafka, id: LetterId) -> anyhow::Result<Letter> {
    let topic = id.topic();
    let partitions = kafka.require(topic).await?;
    let name = kafka.topic(topic);
    let watermarks = kafka.watermarks(&name, partitions).await?;
    let Some(&(_, low, high)) = watermarks.iter().find(|(p, _, _)| *p == id.partition) else {
        return Err(exit::negative(format!(
            "no dead letter {id}: {name} has no partition {} (it has {partitions}) — \
             `fares dlq list` shows the ids",
            id.partition
        )));
    };
    if id.offset < low || id.offset >= high {
        let held = if high > low {
            let first = LetterId { offset: low, ..id };
            let last = LetterId {
                offset: high - 1,
                ..id
            };
            format!("it holds {first} to {last}")
        } else {
            "it is empty".to_owned()
        };
        return Err(exit::negative(format!(
            "no dead letter {id} on {name}: {held} — `fares dlq list` shows the ids"
        )));
    }
    let mut letters = read(
        kafka,
        id.service,
        vec![(id.partition, id.offset, id.offset + 1)],
    )
    .await?;
    letters.pop().with_context(|| {
        format!(
            "{name} answered nothing at partition {} offset {}",
            id.partition, id.offset
        )
    })
}

/// Reads `spans` of `service`'s DLQ.
async fn read(
    kafka: &Kafka,
    service: Service,
    spans: Vec<(i32, i64, i64)>,
) -> anyhow::Result<Vec<Letter>> {
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || {
        let mut letters = Vec::new();
        kafka.read_spans(&kafka.topic(dlq_of(service)), &spans, |message| {
            letters.push(Letter::of(service, message));
        })?;
        Ok(letters)
    })
    .await
    .context("reading the dead-letter topic was interrupted")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_written_short_and_read_back() {
        let id: LetterId = "payment:17".parse().unwrap();
        assert_eq!(
            id,
            LetterId {
                service: Service::Payment,
                partition: 0,
                offset: 17
            }
        );
        assert_eq!(id.to_string(), "payment:17");
        let other: LetterId = "accounting-service:2:5".parse().unwrap();
        assert_eq!(other.to_string(), "accounting:2:5");
        assert_eq!(other.topic(), Topic::AccountingDlq);
    }

    #[test]
    fn malformed_ids_are_refused_with_the_format() {
        for text in [
            "",
            "payment",
            "billing:1",
            "payment:-1",
            "payment:x",
            "a:1:2:3",
        ] {
            let error = text.parse::<LetterId>().unwrap_err().to_string();
            assert!(error.contains("expected SERVICE:OFFSET"), "{text}: {error}");
        }
    }
}
