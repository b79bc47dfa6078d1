//! Kafka clients configured for the saga's guarantees, and idempotent topic creation.

use std::time::Duration;

use anyhow::Context;
use events_schema::{Topic, TopicNames};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use rdkafka::statistics::Statistics;

use crate::metrics::{self, Metrics};
use crate::readiness::Readiness;

/// The largest message a service accepts from a topic; larger ones are dead-lettered.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// DLQ topics accept messages twice the broker's default limit (1 MB), so that any message a
/// source topic accepted still fits in the DLQ with its headers — the relay is never stuck on
/// a dead letter the broker refuses.
const DLQ_MAX_MESSAGE_BYTES: &str = "2097152";

/// The value of `message`'s header `name` as text (invalid UTF-8 replaced), if it has one.
pub fn header_text(message: &BorrowedMessage<'_>, name: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|header| header.key == name)
        .and_then(|header| header.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

/// Every header of `message`, in order, values as text (invalid UTF-8 replaced; none: empty).
pub fn headers_text(message: &BorrowedMessage<'_>) -> Vec<(String, String)> {
    message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| {
                    let value = header
                        .value
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    (header.key.to_owned(), value.into_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An idempotent producer (`acks=all`, in-order retries): a message acknowledged is on every
/// in-sync replica, and a retried send never reorders or duplicates within a partition.
pub fn producer(bootstrap_servers: &str) -> anyhow::Result<FutureProducer> {
    producer_config(bootstrap_servers)
        .create()
        .context("cannot create the Kafka producer")
}

/// The settings of [`producer`], for a client that needs one of them otherwise.
pub fn producer_config(bootstrap_servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("message.max.bytes", "3000000")
        .set("message.timeout.ms", "30000")
        // Bounded memory while the broker is slow or away: past this, sends are refused and
        // the rows wait in the outbox.
        .set("queue.buffering.max.kbytes", "32768");
    config
}

/// The consumer's view of its group, reported to the service's [`Readiness`]: not ready until
/// it has joined and received its (possibly empty) share of the partitions, and again while
/// they are revoked (a rebalance, an eviction). Its statistics (the lag of each partition) go
/// to the service's [`Metrics`].
#[derive(Debug, Clone)]
pub struct GroupMembership {
    readiness: Readiness,
    metrics: Metrics,
}

impl GroupMembership {
    pub fn new(readiness: Readiness, metrics: Metrics) -> Self {
        GroupMembership { readiness, metrics }
    }
}

impl ClientContext for GroupMembership {
    fn stats(&self, statistics: Statistics) {
        self.metrics.consumer_statistics(&statistics);
    }
}

impl ConsumerContext for GroupMembership {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "joined the consumer group");
                self.readiness.assigned(partitions.count());
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions revoked");
                self.readiness
                    .revoked("its partitions were revoked (rebalancing)");
            }
            Rebalance::Error(error) => {
                tracing::warn!(%error, "rebalance failed");
                self.readiness
                    .revoked(&format!("rebalance failed: {error}"));
            }
        }
    }
}

/// A consumer in `group_id` that never commits an offset the service has not stored: offsets
/// are stored by the consumer loop after the handler's transaction committed, and committed in
/// the background (and at shutdown). If the loop does not poll within `max_poll_interval`, the
/// broker evicts the consumer from the group (and the service reports not ready).
pub fn consumer(
    bootstrap_servers: &str,
    group_id: &str,
    max_poll_interval: Duration,
    membership: GroupMembership,
) -> anyhow::Result<StreamConsumer<GroupMembership>> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        // Bounded memory: what is fetched ahead of the consumer loop.
        .set("queued.max.messages.kbytes", "16384")
        // The consumer lag of each partition, for the metrics.
        .set(
            "statistics.interval.ms",
            metrics::STATISTICS_EVERY.as_millis().to_string(),
        )
        .set(
            "max.poll.interval.ms",
            max_poll_interval.as_millis().to_string(),
        )
        .create_with_context(membership)
        .context("cannot create the Kafka consumer")
}

/// Creates every topic of SPEC §2 (names from `names`, partitions and retention from
/// [`Topic`]) unless it exists. Safe to run from every service at every start.
pub async fn ensure_topics(
    bootstrap_servers: &str,
    names: &TopicNames,
    replication_factor: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .create()
        .context("cannot create the Kafka admin client")?;
    let topic_names: Vec<String> = Topic::ALL.iter().map(|t| names.name(*t)).collect();
    let retention: Vec<String> = Topic::ALL
        .iter()
        .map(|t| t.retention_ms().to_string())
        .collect();
    let new_topics: Vec<NewTopic<'_>> = Topic::ALL
        .iter()
        .enumerate()
        .map(|(i, topic)| {
            let new_topic = NewTopic::new(
                &topic_names[i],
                topic.partitions(),
                TopicReplication::Fixed(replication_factor),
            )
            .set("retention.ms", &retention[i]);
            if topic.is_dlq() {
                new_topic.set("max.message.bytes", DLQ_MAX_MESSAGE_BYTES)
            } else {
                new_topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .with_context(|| format!("cannot reach Kafka at {bootstrap_servers} to create topics"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create topic {topic}: {code}"),
        }
    }
    Ok(())
}
