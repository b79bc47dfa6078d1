//! The load itself: the benchmark's fares, sent to `fare-requests` on the open loop's
//! schedule, and their outcomes followed on `fare-outcomes` until every fare has one, the
//! run stalls for `--timeout`, or Ctrl-C.
//!
//! One task does both, so no lock is needed: it sends what is due (never waiting for the
//! system under test: sends are queued in the producer and acknowledged asynchronously),
//! then handles whichever comes first of an acknowledgement, an outcome, the next due time
//! or a progress tick. Outcomes are read from every partition, starting at the ends they had
//! before the first send; the reader joins no group and commits nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use events_schema::{Event, FailureMarker, Topic};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureRecord, Producer};
use tokio::time::Instant;
use transactional_messaging::kafka::producer_config;

use super::interrupt::Interrupt;
use super::outcome::OutcomeKind;
use super::progress::Progress;
use super::schedule::Schedule;
use super::tally::{Seen, Tally};
use crate::broker::{Kafka, Start};
use crate::outcomes;

/// At most this many requests are queued before acknowledgements and outcomes are read again.
const SEND_BATCH: usize = 500;
/// How long to wait for room when the producer's queue is full.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(1);
/// Customers the fares are spread over (`c0` … `c999`, plus the marker's ending).
const CUSTOMERS: usize = 1_000;
/// Every fare's amount, in minor units (20.00 USD).
const AMOUNT_MINOR: i64 = 2_000;

/// One fare of the run: its id (also the Kafka key) and request bytes.
#[derive(Debug, Clone)]
pub struct PlannedFare {
    pub fare_id: String,
    pub payload: Vec<u8>,
}

/// The fares of run `run`: `bench_<run>_<i>`, SPEC §3's minimal request, the customer's
/// ending chosen by `markers[i]`.
pub fn plan(run: &str, markers: &[FailureMarker]) -> Vec<PlannedFare> {
    markers
        .iter()
        .enumerate()
        .map(|(i, &marker)| {
            let fare_id = format!("{}{i}", fare_prefix(run));
            let customer = format!("c{}{}", i % CUSTOMERS, marker.suffix().unwrap_or(""));
            let payload = serde_json::json!({
                "event_type": "FareRequested",
                "fare_id": fare_id,
                "data": {
                    "customer_id": customer,
                    "amount_minor": AMOUNT_MINOR,
                    "currency": "USD",
                    "payment_token": "tok_visa"
                }
            })
            .to_string()
            .into_bytes();
            PlannedFare { fare_id, payload }
        })
        .collect()
}

/// `bench_<run>_`: every fare id of the run starts with it.
pub fn fare_prefix(run: &str) -> String {
    format!("bench_{run}_")
}

/// The fare number of `key` in run `run` (`bench_<run>_<i>`), if it is one of its fares.
pub fn fare_index(prefix: &str, key: &[u8]) -> Option<usize> {
    let key = std::str::from_utf8(key).ok()?;
    let digits = key.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The bench's producer context: tells [`warm_up`] when the idempotent producer has its
/// producer id, read from the client's statistics.
struct IdempotenceWatch(tokio::sync::watch::Sender<bool>);

impl rdkafka::ClientContext for IdempotenceWatch {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let assigned = statistics
            .eos
            .is_some_and(|eos| eos.idemp_state == "Assigned");
        self.0
            .send_if_modified(|was| std::mem::replace(was, assigned) != assigned);
    }
}

impl rdkafka::producer::ProducerContext for IdempotenceWatch {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

type BenchProducer = rdkafka::producer::FutureProducer<IdempotenceWatch>;

/// How long the producer may take to be ready before the run gives up.
const WARM_UP_LIMIT: Duration = Duration::from_secs(30);

/// Waits, before the clock starts, until `producer` knows the leaders of `topic` and has its
/// idempotent producer id. Until then librdkafka holds every message (it asks for the id again
/// every 500 ms), so an open-loop run would count the producer's own start as the first
/// fares' latency.
async fn warm_up(
    producer: &BenchProducer,
    mut ready: tokio::sync::watch::Receiver<bool>,
    topic: &str,
) -> anyhow::Result<()> {
    let metadata = {
        let producer = producer.clone();
        let topic = topic.to_owned();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), WARM_UP_LIMIT)
                .map(drop)
                .with_context(|| format!("cannot read the metadata of {topic}"))
        })
    };
    metadata.await??;
    tokio::time::timeout(WARM_UP_LIMIT, ready.wait_for(|assigned| *assigned))
        .await
        .context("the Kafka producer got no idempotent producer id within 30 s")?
        .context("the Kafka producer stopped")?;
    Ok(())
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Every fare sent has its outcome.
    Settled,
    /// No outcome arrived for `--timeout` after the last send.
    TimedOut,
    /// Ctrl-C.
    Interrupted,
}

/// What the load needs to run.
#[derive(Debug)]
pub struct Load<'a> {
    pub kafka: &'a Kafka,
    pub run: &'a str,
    pub fares: &'a [PlannedFare],
    pub schedule: Schedule,
    /// How long to wait, after the last send, without an outcome.
    pub timeout: Duration,
}

impl Load<'_> {
    /// Sends the fares and follows their outcomes into `tally`.
    pub async fn drive(
        &self,
        tally: &mut Tally,
        progress: &mut Progress,
        interrupt: &mut Interrupt,
    ) -> anyhow::Result<Ending> {
        let requests = self.kafka.topic(Topic::FareRequests);
        let outcomes_topic = self.kafka.topic(Topic::FareOutcomes);
        let partitions = self.kafka.require(Topic::FareOutcomes).await?;
        let ends = self.kafka.end_offsets(&outcomes_topic, partitions).await?;
        let reader = self.kafka.reader(&outcomes_topic, &Start::At(ends))?;
        // The services' settings, but a request is retried for as long as a client would (a
        // broker away for a minute or two, e.g. in a fault run), not given up after 30 s.
        let (assigned, ready) = tokio::sync::watch::channel(false);
        let producer: BenchProducer = producer_config(self.kafka.bootstrap())
            .set("message.timeout.ms", "300000")
            .set("statistics.interval.ms", "100")
            .create_with_context(IdempotenceWatch(assigned))
            .context("cannot create the Kafka producer")?;
        warm_up(&producer, ready, &requests).await?;
        let prefix = fare_prefix(self.run);

        let mut deliveries = FuturesUnordered::new();
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        let mut warnings = std::collections::HashSet::new();
        let started = Instant::now();
        let started_us = unix_micros(SystemTime::now());
        let mut next = 0_usize;
        let mut pause_until: Option<Instant> = None;
        let mut last_progress = started;
        loop {
            if tally.all_settled() {
                return Ok(Ending::Settled);
            }
            let now = Instant::now();
            if next < self.fares.len() && pause_until.is_none_or(|t| now >= t) {
                pause_until = None;
                let due = self.schedule.due(now - started).min(next + SEND_BATCH);
                while next < due {
                    let fare = &self.fares[next];
                    let record = FutureRecord::to(&requests)
                        .key(fare.fare_id.as_str())
                        .payload(fare.payload.as_slice());
                    match producer.send_result(record) {
                        Ok(delivery) => {
                            let intended = self.schedule.is_open_loop().then(|| {
                                started_us + self.schedule.offset(next).as_micros() as i64
                            });
                            tally.sent(next, intended);
                            let i = next;
                            let handed = Instant::now();
                            deliveries.push(delivery.map(move |result| (i, handed, result)));
                            next += 1;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                            pause_until = Some(now + QUEUE_FULL_PAUSE);
                            break;
                        }
                        Err((error, _)) => {
                            return Err(error).with_context(|| {
                                format!(
                                    "cannot queue the request of {} for {requests}",
                                    fare.fare_id
                                )
                            })
                        }
                    }
                }
                if next == self.fares.len() {
                    last_progress = Instant::now();
                }
            }
            let wake = if next < self.fares.len() {
                pause_until.unwrap_or(started + self.schedule.offset(next))
            } else {
                last_progress + self.timeout
            };
            tokio::select! {
                biased;
                _ = interrupt.wait() => return Ok(Ending::Interrupted),
                _ = ticks.tick() => progress.update(tally),
                Some((i, handed, result)) = deliveries.next(), if !deliveries.is_empty() => match result {
                    Ok(Ok(delivery)) => {
                        tally.acknowledged(i, delivery.timestamp.to_millis());
                        tally.ack_took(i, handed.elapsed());
                    }
                    Ok(Err((error, _))) => {
                        tally.send_failed(i);
                        let text = format!("warning: a request was not acknowledged: {error}");
                        if warnings.insert(text.clone()) {
                            progress.note(&text);
                        }
                    }
                    Err(_cancelled) => tally.send_failed(i),
                },
                message = reader.recv() => {
                    let message = match message {
                        Ok(message) => message,
                        Err(error) => {
                            let text = outcomes::consumer_error(
                                &error, &outcomes_topic, self.kafka.bootstrap(),
                            )?;
                            if warnings.insert(text.clone()) {
                                progress.note(&text);
                            }
                            continue;
                        }
                    };
                    let Some(i) = message.key().and_then(|k| fare_index(&prefix, k)) else {
                        continue;
                    };
                    if i >= tally.planned() {
                        continue;
                    }
                    let decoded = message.payload().map(Event::decode);
                    let Some(Ok(event)) = decoded else {
                        progress.note(&format!(
                            "warning: the outcome of {} at partition {} offset {} is not an event",
                            String::from_utf8_lossy(message.key().unwrap_or_default()),
                            message.partition(),
                            message.offset()
                        ));
                        continue;
                    };
                    let Some(kind) = OutcomeKind::of(&event.data) else {
                        continue;
                    };
                    let at_ms = message.timestamp().to_millis().unwrap_or_else(|| {
                        unix_micros(SystemTime::now()) / 1000
                    });
                    match tally.outcome(i, at_ms, kind, event.event_id.as_uuid()) {
                        Seen::Settled => last_progress = Instant::now(),
                        Seen::Redelivered => {}
                        Seen::Conflicting => progress.note(&format!(
                            "ERROR: a second, different outcome for {} ({}): SPEC §6.1 is broken",
                            event.fare_id,
                            event.event_type().as_str()
                        )),
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if next == self.fares.len() && Instant::now() >= last_progress + self.timeout {
                        return Ok(Ending::TimedOut);
                    }
                }
            }
        }
    }
}

/// Microseconds since the Unix epoch.
pub fn unix_micros(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fares_are_minimal_requests_with_unique_ids_and_marked_customers() {
        let fares = plan("r1", &[FailureMarker::None, FailureMarker::FailCredit]);
        assert_eq!(fares[0].fare_id, "bench_r1_0");
        assert_eq!(fares[1].fare_id, "bench_r1_1");
        let request: serde_json::Value = serde_json::from_slice(&fares[1].payload).unwrap();
        assert_eq!(request["event_type"], "FareRequested");
        assert_eq!(request["fare_id"], "bench_r1_1");
        assert_eq!(request["data"]["customer_id"], "c1_fail_credit");
        assert_eq!(request["data"]["amount_minor"], 2000);
        let parsed = events_schema::ReceivedFareRequest::parse(&fares[1].payload).unwrap();
        assert!(parsed.is_valid(), "{parsed:?}");
    }

    #[test]
    fn only_this_runs_fare_ids_are_recognised() {
        let prefix = fare_prefix("r1");
        assert_eq!(fare_index(&prefix, b"bench_r1_17"), Some(17));
        assert_eq!(fare_index(&prefix, b"bench_r1_"), None);
        assert_eq!(fare_index(&prefix, b"bench_r12_17"), None);
        assert_eq!(fare_index(&prefix, b"bench_r1_1x"), None);
        // `usize::from_str` would take a sign: another writer's key, not one of ours.
        assert_eq!(fare_index(&prefix, b"bench_r1_+5"), None);
        assert_eq!(fare_index(&prefix, b"wr_563"), None);
    }
}
