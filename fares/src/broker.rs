//! Talking to Kafka: where it is (from the environment), whether it answers, which topics it
//! has, the offsets a consumer group committed or a time stands at, and consumers that read
//! without joining a group or committing anything — live, or a span of offsets to its end
//! ([`Kafka::read_spans`], for the audit and the dead letters).
//!
//! Every call that could hang on an unreachable broker is bounded by [`KAFKA_TIMEOUT`] and
//! fails with a message naming the bootstrap servers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use events_schema::{Topic, TopicNames};
use rdkafka::config::{ClientConfig, FromClientConfig};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use transactional_messaging::config::KafkaSettings;

/// How long a metadata request or an acknowledgement may take before Kafka counts as
/// unreachable.
pub const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// The Kafka cluster and topic names this invocation uses.
#[derive(Debug, Clone)]
pub struct Kafka {
    /// `KAFKA_BOOTSTRAP_SERVERS`, `TOPIC_SUFFIX`, `KAFKA_REPLICATION_FACTOR`.
    pub settings: KafkaSettings,
    /// The topic names under `TOPIC_SUFFIX`.
    pub names: TopicNames,
}

impl Kafka {
    /// Reads the settings from the environment.
    pub fn from_env() -> anyhow::Result<Kafka> {
        let settings = KafkaSettings::from_env().map_err(|e| {
            anyhow::anyhow!(
                "{e} — fix or unset it (defaults: KAFKA_BOOTSTRAP_SERVERS=localhost:9092, \
                 KAFKA_REPLICATION_FACTOR=1, no TOPIC_SUFFIX)"
            )
        })?;
        let names = TopicNames::new(settings.topic_suffix.clone());
        Ok(Kafka { settings, names })
    }

    /// The bootstrap servers, e.g. `localhost:9092`.
    pub fn bootstrap(&self) -> &str {
        &self.settings.bootstrap_servers
    }

    /// The configured name of `topic`.
    pub fn topic(&self, topic: Topic) -> String {
        self.names.name(topic)
    }

    /// "cannot reach Kafka at …" with what to do about it.
    pub fn unreachable(&self) -> String {
        unreachable(self.bootstrap())
    }

    /// The partition count of each of `topics` (`None`: the topic does not exist).
    pub async fn partitions(
        &self,
        topics: Vec<String>,
    ) -> anyhow::Result<Vec<(String, Option<usize>)>> {
        let config = self.client_config();
        let unreachable = self.unreachable();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = config.create().context("cannot create a Kafka client")?;
            let metadata = client
                .fetch_metadata(None, KAFKA_TIMEOUT)
                .context(unreachable)?;
            Ok(topics
                .into_iter()
                .map(|name| {
                    let partitions = metadata
                        .topics()
                        .iter()
                        .find(|t| t.name() == name && t.error().is_none())
                        .map(|t| t.partitions().len());
                    (name, partitions)
                })
                .collect())
        })
        .await
        .context("the Kafka metadata request was interrupted")?
    }

    /// The partition count of `topic`; an error telling the user to create the topics when
    /// it does not exist.
    pub async fn require(&self, topic: Topic) -> anyhow::Result<usize> {
        let name = self.topic(topic);
        let found = self.partitions(vec![name.clone()]).await?;
        match found.first().and_then(|(_, p)| *p) {
            Some(partitions) if partitions > 0 => Ok(partitions),
            _ => bail!(
                "topic {name} does not exist on Kafka at {} — create the topics with `fares topics ensure` \
                 (TOPIC_SUFFIX={:?})",
                self.bootstrap(),
                self.names.suffix()
            ),
        }
    }

    /// The next offset of every partition of `topic` (its high watermark): where a reader
    /// must start to see everything written from now on.
    pub async fn end_offsets(
        &self,
        topic: &str,
        partitions: usize,
    ) -> anyhow::Result<Vec<(i32, i64)>> {
        Ok(self
            .watermarks(topic, partitions)
            .await?
            .into_iter()
            .map(|(partition, _, high)| (partition, high))
            .collect())
    }

    /// `(partition, low, high)` for every partition of `topic`: the offset of the oldest
    /// message still kept and the offset the next message will get.
    pub async fn watermarks(
        &self,
        topic: &str,
        partitions: usize,
    ) -> anyhow::Result<Vec<(i32, i64, i64)>> {
        let config = self.client_config();
        let topic = topic.to_owned();
        let unreachable = self.unreachable();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = config.create().context("cannot create a Kafka client")?;
            (0..partitions as i32)
                .map(|p| {
                    let (low, high) =
                        once_settled(|| client.fetch_watermarks(&topic, p, KAFKA_TIMEOUT))
                            .with_context(|| {
                                format!("cannot read the end of {topic} partition {p}")
                            })
                            .context(unreachable.clone())?;
                    Ok((p, low, high))
                })
                .collect()
        })
        .await
        .context("the Kafka offsets request was interrupted")?
    }

    /// The offsets consumer group `group` has committed for `partitions` (topic, partition):
    /// the next message the group will consume. A partition the group never committed is left
    /// out. Only asks the group coordinator: it does not join the group or change anything.
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: Vec<(String, i32)>,
    ) -> anyhow::Result<Vec<(String, i32, i64)>> {
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let group = group.to_owned();
        let unreachable = self.unreachable();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = config.create().context("cannot create a Kafka client")?;
            let mut list = TopicPartitionList::new();
            for (topic, partition) in &partitions {
                list.add_partition(topic, *partition);
            }
            let committed = once_settled(|| client.committed_offsets(list.clone(), KAFKA_TIMEOUT))
                .with_context(|| format!("cannot read the offsets committed by group {group}"))
                .context(unreachable)?;
            Ok(committed
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(offset) => Some((e.topic().to_owned(), e.partition(), offset)),
                    _ => None,
                })
                .collect())
        })
        .await
        .context("the Kafka offsets request was interrupted")?
    }

    /// A consumer of `topic` assigned to every partition at `start`. It joins no group and
    /// commits nothing, so it never disturbs the services' consumers or leaves state behind.
    pub fn reader(&self, topic: &str, start: &Start) -> anyhow::Result<StreamConsumer> {
        self.assigned(topic, &start.offsets(), &[])
    }

    /// A consumer of `topic` assigned to `offsets` (partition, where to start), with `extra`
    /// client settings; as [`Kafka::reader`], it joins no group and commits nothing.
    pub fn assigned<C: FromClientConfig + Consumer>(
        &self,
        topic: &str,
        offsets: &[(i32, Offset)],
        extra: &[(&str, &str)],
    ) -> anyhow::Result<C> {
        let mut config = self.client_config();
        config
            // A group id is required by the client; a unique one, never joined or committed.
            .set(
                "group.id",
                format!("fares-cli-{}", uuid::Uuid::new_v4().simple()),
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        let consumer: C = config
            .create()
            .context("cannot create the Kafka consumer")?;
        let mut assignment = TopicPartitionList::new();
        for &(partition, offset) in offsets {
            assignment
                .add_partition_offset(topic, partition, offset)
                .context("cannot build the partition assignment")?;
        }
        consumer
            .assign(&assignment)
            .with_context(|| format!("cannot assign the partitions of {topic}"))?;
        Ok(consumer)
    }

    /// The offset of the first message of each partition of `topic` written at or after
    /// `timestamp_ms` (broker time, ms since the epoch); `None` for a partition with no such
    /// message.
    pub async fn offsets_at(
        &self,
        topic: &str,
        partitions: usize,
        timestamp_ms: i64,
    ) -> anyhow::Result<Vec<(i32, Option<i64>)>> {
        let config = self.client_config();
        let topic = topic.to_owned();
        let unreachable = self.unreachable();
        tokio::task::spawn_blocking(move || {
            let client: BaseConsumer = config.create().context("cannot create a Kafka client")?;
            let mut list = TopicPartitionList::new();
            for partition in 0..partitions as i32 {
                list.add_partition_offset(&topic, partition, Offset::Offset(timestamp_ms))
                    .context("cannot build the partition list")?;
            }
            let found = client
                .offsets_for_times(list, KAFKA_TIMEOUT)
                .with_context(|| format!("cannot find the offsets of {topic} at a time"))
                .context(unreachable)?;
            Ok(found
                .elements()
                .iter()
                .map(|e| match e.offset() {
                    Offset::Offset(offset) => (e.partition(), Some(offset)),
                    _ => (e.partition(), None),
                })
                .collect())
        })
        .await
        .context("the Kafka offsets request was interrupted")?
    }

    /// Reads `spans` of `topic` — (partition, first offset, end offset excluded), e.g. up to
    /// the watermarks taken before — and gives every message in them to `each`. It blocks:
    /// call it on a blocking thread. Like [`Kafka::reader`], it joins no group and commits
    /// nothing. Fails, naming the servers, when no message arrives for 3 × [`KAFKA_TIMEOUT`].
    pub fn read_spans(
        &self,
        topic: &str,
        spans: &[(i32, i64, i64)],
        mut each: impl FnMut(&BorrowedMessage<'_>),
    ) -> anyhow::Result<()> {
        let spans: Vec<&(i32, i64, i64)> = spans.iter().filter(|(_, from, to)| to > from).collect();
        if spans.is_empty() {
            return Ok(());
        }
        let start: Vec<(i32, Offset)> = spans
            .iter()
            .map(|&&(partition, from, _)| (partition, Offset::Offset(from)))
            .collect();
        // End-of-partition events tell a partition is read even when its last offsets hold no
        // message (as after a transaction marker).
        let consumer: BaseConsumer =
            self.assigned(topic, &start, &[("enable.partition.eof", "true")])?;
        let mut remaining: HashMap<i32, i64> = spans
            .iter()
            .map(|&&(partition, _, to)| (partition, to))
            .collect();
        let mut last_progress = Instant::now();
        let mut last_error: Option<KafkaError> = None;
        while !remaining.is_empty() {
            match consumer.poll(Duration::from_millis(500)) {
                Some(Ok(message)) => {
                    last_progress = Instant::now();
                    let partition = message.partition();
                    let offset = message.offset();
                    let Some(&to) = remaining.get(&partition) else {
                        continue;
                    };
                    if offset < to {
                        each(&message);
                    }
                    if offset + 1 >= to {
                        remaining.remove(&partition);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    remaining.remove(&partition);
                }
                Some(Err(error)) => last_error = Some(error),
                None => {}
            }
            if last_progress.elapsed() > 3 * KAFKA_TIMEOUT {
                let why = last_error.map_or_else(|| "no answer".to_owned(), |e| e.to_string());
                return Err(anyhow::anyhow!(
                    "reading {topic} stalled for {} s with {} partitions left: {why}",
                    last_progress.elapsed().as_secs(),
                    remaining.len()
                ))
                .context(self.unreachable());
            }
        }
        Ok(())
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("socket.timeout.ms", "10000");
        config
    }
}

/// Where a [`Kafka::reader`] starts in each partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// The oldest message still kept, in each of this many partitions.
    Beginning(usize),
    /// Only messages written after the reader is assigned, in each of this many partitions.
    End(usize),
    /// Exact offsets per partition, e.g. from [`Kafka::end_offsets`] taken earlier.
    At(Vec<(i32, i64)>),
}

impl Start {
    fn offsets(&self) -> Vec<(i32, Offset)> {
        match self {
            Start::Beginning(n) => (0..*n as i32).map(|p| (p, Offset::Beginning)).collect(),
            Start::End(n) => (0..*n as i32).map(|p| (p, Offset::End)).collect(),
            Start::At(offsets) => offsets
                .iter()
                .map(|&(p, o)| (p, Offset::Offset(o)))
                .collect(),
        }
    }
}

/// `request`, asked again while the cluster is settling — a partition whose leader is moving or
/// not elected yet, a group coordinator moving or loading (a topic created a moment ago, a
/// broker restarting) — until [`KAFKA_TIMEOUT`] has passed: those answers are not errors.
fn once_settled<T>(mut request: impl FnMut() -> KafkaResult<T>) -> KafkaResult<T> {
    let deadline = std::time::Instant::now() + KAFKA_TIMEOUT;
    loop {
        match request() {
            Err(KafkaError::MetadataFetch(code) | KafkaError::OffsetFetch(code))
                if settling(code) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            answer => return answer,
        }
    }
}

/// What a partition's leader or a group's coordinator answers while it is being settled.
fn settling(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::NotLeaderForPartition
            | RDKafkaErrorCode::LeaderNotAvailable
            | RDKafkaErrorCode::FencedLeaderEpoch
            | RDKafkaErrorCode::UnknownLeaderEpoch
            | RDKafkaErrorCode::NotCoordinator
            | RDKafkaErrorCode::CoordinatorNotAvailable
            | RDKafkaErrorCode::CoordinatorLoadInProgress
    )
}

/// "cannot reach Kafka at …" with what to do about it.
pub fn unreachable(bootstrap: &str) -> String {
    format!(
        "cannot reach Kafka at {bootstrap} — is the stack up? (scripts/stack up; \
         set KAFKA_BOOTSTRAP_SERVERS if Kafka runs elsewhere)"
    )
}

/// Whether a consumer error means the topic is gone (reading on would only repeat it).
pub fn is_missing_topic(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_names_the_servers_and_the_remedy() {
        let text = unreachable("localhost:9092");
        assert!(
            text.contains("cannot reach Kafka at localhost:9092"),
            "{text}"
        );
        assert!(text.contains("scripts/stack up"), "{text}");
    }

    #[test]
    fn start_offsets_cover_every_partition() {
        assert_eq!(
            Start::Beginning(2).offsets(),
            [(0, Offset::Beginning), (1, Offset::Beginning)]
        );
        assert_eq!(Start::End(1).offsets(), [(0, Offset::End)]);
        assert_eq!(
            Start::At(vec![(0, 5), (1, 0)]).offsets(),
            [(0, Offset::Offset(5)), (1, Offset::Offset(0))]
        );
    }
}
