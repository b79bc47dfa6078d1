//! Which dead letters were replayed: a replay is a message on the dead letter's source topic
//! carrying the header [`HEADER_REPLAY_OF`] with the dead letter's id. Only the part of each
//! source topic written since the oldest dead letter asked about is read (a replay comes
//! after its dead letter), found with the broker's time index.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use rdkafka::message::{BorrowedMessage, Message};
use serde::Serialize;
use transactional_messaging::kafka;

use super::letter::Letter;
use crate::broker::Kafka;

/// On a replayed message: the id of the dead letter it replays (e.g. `payment:17`).
pub const HEADER_REPLAY_OF: &str = "dlq.replay.of";
/// On a replayed message: when it was replayed (RFC 3339, UTC).
pub const HEADER_REPLAY_AT: &str = "dlq.replay.at";

/// One replay found on a source topic.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    /// The replayed dead letter's id, from the header.
    #[serde(skip)]
    pub of: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The broker timestamp, ms since the epoch.
    pub timestamp_ms: Option<i64>,
    /// The `dlq.replay.at` header.
    pub at: Option<String>,
}

impl Replay {
    fn of(message: &BorrowedMessage<'_>) -> Option<Replay> {
        let header = |name: &str| kafka::header_text(message, name);
        Some(Replay {
            of: header(HEADER_REPLAY_OF)?,
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            at: header(HEADER_REPLAY_AT),
        })
    }

    /// Whether this is a replay of `letter`: it names the letter and was written after it
    /// (an older replay names an id a recreated DLQ has given to another letter).
    fn replays(&self, letter: &Letter) -> bool {
        self.of == letter.id.to_string()
            && match (self.timestamp_ms, letter.timestamp_ms) {
                (Some(replayed), Some(written)) => replayed >= written,
                _ => true,
            }
    }
}

/// The replays of each of `letters`, by index in `letters` (a letter never replayed has no
/// entry). A source topic that no longer exists has no replays.
pub async fn find(
    kafka: &Kafka,
    letters: &[Letter],
) -> anyhow::Result<BTreeMap<usize, Vec<Replay>>> {
    let sources: BTreeSet<String> = letters
        .iter()
        .filter_map(|l| l.source())
        .map(|s| s.topic)
        .collect();
    let mut found = Vec::new();
    for topic in sources {
        let since = letters
            .iter()
            .filter(|l| l.source().is_some_and(|s| s.topic == topic))
            .filter_map(|l| l.timestamp_ms)
            .min()
            .unwrap_or(0);
        found.extend(on_topic(kafka, &topic, since).await?);
    }
    let mut replays: BTreeMap<usize, Vec<Replay>> = BTreeMap::new();
    for replay in found {
        if let Some(index) = letters.iter().position(|l| replay.replays(l)) {
            replays.entry(index).or_default().push(replay);
        }
    }
    Ok(replays)
}

/// The replays on `topic` written since `since_ms`.
async fn on_topic(kafka: &Kafka, topic: &str, since_ms: i64) -> anyhow::Result<Vec<Replay>> {
    let Some((_, Some(partitions))) = kafka.partitions(vec![topic.to_owned()]).await?.pop() else {
        return Ok(Vec::new());
    };
    let starts = kafka.offsets_at(topic, partitions, since_ms).await?;
    let spans: Vec<(i32, i64, i64)> = kafka
        .watermarks(topic, partitions)
        .await?
        .into_iter()
        .map(|(partition, low, high)| {
            let start = starts
                .iter()
                .find(|(p, _)| *p == partition)
                .and_then(|(_, start)| *start)
                .unwrap_or(high);
            (partition, start.clamp(low, high), high)
        })
        .collect();
    let kafka = kafka.clone();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut replays = Vec::new();
        kafka.read_spans(&topic, &spans, |message| {
            replays.extend(Replay::of(message));
        })?;
        Ok(replays)
    })
    .await
    .context("reading a source topic was interrupted")?
}
