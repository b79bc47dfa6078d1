//! Raw Kafka on the same machine: as many messages as the run sent, with the same keys and
//! bytes as its requests, produced to a scratch topic of 6 partitions by the services' own
//! producer settings (`transactional_messaging::kafka::producer`: idempotent, `acks=all`) and
//! consumed back by a reader that was assigned, and had read one warm-up message from each
//! partition, before the first measured send. The topic is created
//! for the measurement and deleted after it, whatever happens in between.

use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::FutureRecord;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use transactional_messaging::kafka::producer;

use crate::bench::figures::{histogram, Percentiles};
use crate::bench::interrupt::Interrupt;
use crate::bench::load::{unix_micros, PlannedFare};
use crate::broker::{Kafka, Start};

/// Partitions of the scratch topic: as many as each event topic (SPEC §2).
const PARTITIONS: i32 = 6;
/// How long the messages may take to come back before the measurement fails.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(120);

/// Raw Kafka's produce → consume figures.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaBaseline {
    pub topic: String,
    pub partitions: i32,
    pub messages: usize,
    /// Mean bytes per message (the requests' own).
    pub message_bytes: usize,
    /// First send to last acknowledgement, in seconds.
    pub produce_seconds: f64,
    /// First send to the last message consumed back, in seconds.
    pub seconds: f64,
    /// `messages / seconds`: messages produced and consumed back per second.
    pub msgs_per_s: f64,
    /// Each message's broker timestamp to its arrival at the reader.
    pub latency_ms: Option<Percentiles>,
}

/// Measures raw Kafka with the run's `fares` as messages; `None` when interrupted.
pub async fn measure(
    kafka: &Kafka,
    run: &str,
    fares: &[PlannedFare],
    interrupt: &mut Interrupt,
) -> anyhow::Result<Option<KafkaBaseline>> {
    let topic = format!("fares-bench-baseline.{run}{}", kafka.names.suffix());
    let scratch = ScratchTopic::create(kafka, topic, PARTITIONS).await?;
    let measured = produce_and_consume(kafka, &scratch.name, fares, interrupt).await;
    scratch.delete().await;
    measured
}

/// A topic the bench creates for a measurement and deletes after it.
pub(crate) struct ScratchTopic {
    admin: AdminClient<DefaultClientContext>,
    pub name: String,
}

impl ScratchTopic {
    /// Creates `name` with `partitions` and waits until the metadata shows them all.
    pub async fn create(kafka: &Kafka, name: String, partitions: i32) -> anyhow::Result<Self> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", kafka.bootstrap())
            .create()
            .context("cannot create a Kafka admin client")?;
        let new_topic = NewTopic::new(
            &name,
            partitions,
            TopicReplication::Fixed(kafka.settings.replication_factor),
        )
        .set("retention.ms", "3600000");
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics([&new_topic], &options)
            .await
            .with_context(|| kafka.unreachable())?;
        for result in results {
            if let Err((name, code)) = result {
                anyhow::bail!("cannot create the scratch topic {name}: {code}");
            }
        }
        // A new topic takes a moment to appear in the metadata.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = kafka.partitions(vec![name.clone()]).await?;
            if found.first().and_then(|(_, p)| *p) == Some(partitions as usize) {
                return Ok(ScratchTopic { admin, name });
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the scratch topic {name} did not appear within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Deletes the topic; a failure is only a warning (the measurement stands).
    pub async fn delete(self) {
        let topic = self.name;
        let deleted = self
            .admin
            .delete_topics(&[topic.as_str()], &AdminOptions::new())
            .await;
        match deleted.map(|results| results.into_iter().next()) {
            Ok(Some(Err((_, code)))) => eprintln!("warning: cannot delete {topic}: {code}"),
            Err(error) => eprintln!("warning: cannot delete {topic}: {error}"),
            Ok(_) => {}
        }
    }
}

async fn produce_and_consume(
    kafka: &Kafka,
    topic: &str,
    fares: &[PlannedFare],
    interrupt: &mut Interrupt,
) -> anyhow::Result<Option<KafkaBaseline>> {
    let expected = fares.len();
    let reader = kafka.reader(topic, &Start::Beginning(PARTITIONS as usize))?;
    let (warm, warmed) = oneshot::channel();
    let mut consumer = AbortOnDrop(tokio::spawn(async move {
        // The warm-up messages, one per partition, are not measured: by the time they are
        // read, the reader has found every partition's leader and is fetching.
        let mut warm_up = 0;
        while warm_up < PARTITIONS {
            if reader.recv().await.is_ok() {
                warm_up += 1;
            }
        }
        let _ = warm.send(());
        let mut latency = histogram();
        let mut last_us = 0_i64;
        let mut received = 0_usize;
        while received < expected {
            let Ok(message) = reader.recv().await else {
                continue;
            };
            last_us = unix_micros(SystemTime::now());
            if let Some(ms) = message.timestamp().to_millis() {
                latency.saturating_record((last_us - ms * 1000).max(1) as u64);
            }
            received += 1;
        }
        (latency, last_us)
    }));

    let producer = producer(kafka.bootstrap())?;
    for partition in 0..PARTITIONS {
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key("warm-up")
            .payload("warm-up");
        let delivered = producer.send(record, Duration::from_secs(10)).await;
        delivered
            .map_err(|(error, _)| error)
            .with_context(|| format!("cannot write to the scratch topic {topic}"))?;
    }
    tokio::select! {
        warmed = warmed => warmed.context("the baseline reader stopped")?,
        _ = tokio::time::sleep(CONSUME_TIMEOUT) => anyhow::bail!(
            "the baseline reader did not read the warm-up messages of {topic} within {} s",
            CONSUME_TIMEOUT.as_secs()
        ),
        _ = interrupt.wait() => return Ok(None),
    }

    let first_us = unix_micros(SystemTime::now());
    let mut deliveries = FuturesUnordered::new();
    let mut next = 0;
    while next < fares.len() {
        if interrupt.happened() {
            return Ok(None);
        }
        let fare = &fares[next];
        let record = FutureRecord::to(topic)
            .key(fare.fare_id.as_str())
            .payload(fare.payload.as_slice());
        match producer.send_result(record) {
            Ok(delivery) => {
                deliveries.push(delivery);
                next += 1;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                // Room comes with acknowledgements.
                if let Some(delivered) = deliveries.next().await {
                    check_delivered(delivered)?;
                }
            }
            Err((error, _)) => return Err(error).context("cannot queue a baseline message"),
        }
    }
    while let Some(delivered) = deliveries.next().await {
        check_delivered(delivered)?;
    }
    let produced_us = unix_micros(SystemTime::now());

    let consumed = tokio::select! {
        consumed = &mut consumer.0 => consumed.context("the baseline reader failed")?,
        _ = tokio::time::sleep(CONSUME_TIMEOUT) => anyhow::bail!(
            "the baseline messages did not all come back from {topic} within {} s",
            CONSUME_TIMEOUT.as_secs()
        ),
        _ = interrupt.wait() => return Ok(None),
    };
    let (latency, last_us) = consumed;
    let seconds = (last_us - first_us) as f64 / 1e6;
    let bytes: usize = fares.iter().map(|f| f.payload.len()).sum();
    Ok(Some(KafkaBaseline {
        topic: topic.to_owned(),
        partitions: PARTITIONS,
        messages: expected,
        message_bytes: bytes / expected.max(1),
        produce_seconds: (produced_us - first_us) as f64 / 1e6,
        seconds,
        msgs_per_s: expected as f64 / seconds.max(1e-6),
        latency_ms: Percentiles::of(&latency),
    }))
}

/// A task that is stopped when its handle goes out of scope (on every early return).
pub(super) struct AbortOnDrop<T>(pub(super) JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn check_delivered(
    delivered: Result<OwnedDeliveryResult, futures::channel::oneshot::Canceled>,
) -> anyhow::Result<()> {
    match delivered {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => Err(error).context("a baseline message was not acknowledged"),
        Err(_) => anyhow::bail!("a baseline message was dropped by the producer"),
    }
}
