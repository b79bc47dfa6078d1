//! Raw Kafka's latency floor for the saga, at the run's own rate (`--rate` only): the run's
//! requests, on the same schedule, through as many consume → produce hops as a happy saga
//! takes (SPEC §4: request → `PreAuthorised` → `Charged` → `AccountUpdated` →
//! `FareCollected`), with no database and no service logic. Each hop is a relay task in the
//! bench: a reader of one partition of a scratch topic and a producer with the services'
//! settings (`transactional_messaging::kafka::producer`: idempotent, `acks=all`) writing each
//! message to the next partition. Hop `h` reads partition `h` and writes partition `h + 1`:
//! one topic of five partitions, not five topics, so the broker creates and deletes little
//! (a burst of deletions stalls its acknowledgements a minute later, when it removes the
//! files). Latency counts, as the saga's does, from each message's intended send time to
//! the timestamp of its last copy.
//!
//! Before the clock starts, one warm-up message goes all the way through: every reader is
//! then fetching and every producer has its idempotent producer id. The scratch topic is
//! deleted after the measurement, whatever happens in between.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use hdrhistogram::Histogram;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::Offset;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::time::Instant;
use transactional_messaging::kafka::producer;

use super::kafka::{check_delivered, AbortOnDrop, ScratchTopic};
use crate::bench::figures::{clamp, histogram, Percentiles};
use crate::bench::interrupt::Interrupt;
use crate::bench::load::{unix_micros, PlannedFare};
use crate::bench::schedule::Schedule;
use crate::broker::Kafka;

/// Consume → produce hops of a happy saga (SPEC §4).
pub const HOPS: usize = 4;
/// At most this long of the run's schedule is replayed.
const SECONDS: f64 = 10.0;
/// How long the messages may take to come out of the last hop before the measurement fails.
const THROUGH_TIMEOUT: Duration = Duration::from_secs(60);
const WARM_UP_KEY: &str = "warm-up";

/// Raw Kafka's latency through [`HOPS`] hops at the run's rate.
#[derive(Debug, Clone, Serialize)]
pub struct HopsBaseline {
    pub hops: usize,
    /// Messages sent (the run's first ones, at most 10 s of its schedule).
    pub messages: usize,
    /// Messages per second offered, as the run's `--rate`.
    pub rate: f64,
    /// Intended send time → the last hop's message timestamp.
    pub latency_ms: Option<Percentiles>,
}

/// Measures the floor at `rate` with the run's first `fares`; `None` when interrupted.
pub async fn measure(
    kafka: &Kafka,
    run: &str,
    fares: &[PlannedFare],
    rate: f64,
    interrupt: &mut Interrupt,
) -> anyhow::Result<Option<HopsBaseline>> {
    let fares = &fares[..fares.len().min((rate * SECONDS).ceil().max(1.0) as usize)];
    let topic = format!("fares-bench-hops.{run}{}", kafka.names.suffix());
    let scratch = ScratchTopic::create(kafka, topic, HOPS as i32 + 1).await?;
    let measured = through_hops(kafka, &scratch.name, fares, rate, Windows::one(), interrupt).await;
    scratch.delete().await;
    Ok(measured?.map(|mut windows| HopsBaseline {
        hops: HOPS,
        messages: fares.len(),
        rate,
        latency_ms: windows.pop().as_ref().and_then(Percentiles::of),
    }))
}

/// The messages of a pass through the hops cut into windows of `size` messages by send
/// order, each window's latency handed to `through` as soon as its last message is through
/// (the broker warm-up prints them as progress).
pub struct Windows {
    pub size: usize,
    pub through: WindowThrough,
}

/// What is done with a window's latency once its last message is through: (window, latency).
pub type WindowThrough = Box<dyn FnMut(usize, &Histogram<u64>) + Send>;

impl Windows {
    /// The whole pass as one window, reported at the end.
    pub fn one() -> Windows {
        Windows {
            size: usize::MAX,
            through: Box::new(|_, _| {}),
        }
    }

    /// The window of message `i`.
    fn of(&self, i: usize) -> usize {
        i / self.size.max(1)
    }

    /// How many windows `n` messages make.
    fn count(&self, n: usize) -> usize {
        n.div_ceil(self.size.max(1)).max(1)
    }
}

/// A reader of one partition of `topic`, from its beginning.
fn partition_reader(kafka: &Kafka, topic: &str, partition: i32) -> anyhow::Result<StreamConsumer> {
    kafka.assigned(topic, &[(partition, Offset::Beginning)], &[])
}

/// Sends `fares` at `rate` through [`HOPS`] hops of `topic` (a scratch topic of
/// `HOPS + 1` partitions, empty); the latency of each window; `None` when interrupted.
pub async fn through_hops(
    kafka: &Kafka,
    topic: &str,
    fares: &[PlannedFare],
    rate: f64,
    mut windows: Windows,
    interrupt: &mut Interrupt,
) -> anyhow::Result<Option<Vec<Histogram<u64>>>> {
    let mut relays = Vec::new();
    for hop in 0..HOPS as i32 {
        let reader = partition_reader(kafka, topic, hop)?;
        let producer = producer(kafka.bootstrap())?;
        relays.push(AbortOnDrop(tokio::spawn(relay(
            reader,
            producer,
            topic.to_owned(),
            hop + 1,
        ))));
    }
    let index: HashMap<String, usize> = fares
        .iter()
        .enumerate()
        .map(|(i, fare)| (fare.fare_id.clone(), i))
        .collect();
    let last = partition_reader(kafka, topic, HOPS as i32)?;
    let (warm, warmed) = oneshot::channel();
    let (start, started) = oneshot::channel::<i64>();
    let expected = fares.len();
    let schedule = Schedule::new(expected, Some(rate));
    let mut reader = AbortOnDrop(tokio::spawn(async move {
        loop {
            if let Ok(message) = last.recv().await {
                if message.key() == Some(WARM_UP_KEY.as_bytes()) {
                    break;
                }
            }
        }
        let _ = warm.send(());
        let Ok(started_us) = started.await else {
            return None;
        };
        let count = windows.count(expected);
        let mut latency: Vec<_> = (0..count).map(|_| histogram()).collect();
        let mut left: Vec<usize> = vec![0; count];
        for i in 0..expected {
            left[windows.of(i)] += 1;
        }
        let mut received = 0;
        while received < expected {
            let Ok(message) = last.recv().await else {
                continue;
            };
            let (Some(i), Some(ms)) = (
                message
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .and_then(|k| index.get(k)),
                message.timestamp().to_millis(),
            ) else {
                continue;
            };
            let intended = started_us + schedule.offset(*i).as_micros() as i64;
            let window = windows.of(*i);
            latency[window].saturating_record(clamp(ms * 1000 - intended));
            if left[window] == 1 {
                (windows.through)(window, &latency[window]);
            }
            left[window] = left[window].saturating_sub(1);
            received += 1;
        }
        Some(latency)
    }));

    let sender = producer(kafka.bootstrap())?;
    let record = FutureRecord::to(topic)
        .partition(0)
        .key(WARM_UP_KEY)
        .payload(WARM_UP_KEY);
    check_delivered(Ok(sender.send(record, Duration::from_secs(10)).await))
        .with_context(|| format!("cannot write to the scratch topic {topic}"))?;
    tokio::select! {
        warmed = warmed => warmed.context("the last hop's reader stopped")?,
        _ = tokio::time::sleep(THROUGH_TIMEOUT) => anyhow::bail!(
            "the warm-up messages did not come through {HOPS} hops within {} s",
            THROUGH_TIMEOUT.as_secs()
        ),
        _ = interrupt.wait() => return Ok(None),
    }

    let started_at = Instant::now();
    let _ = start.send(unix_micros(SystemTime::now()));
    let mut deliveries = FuturesUnordered::new();
    for (i, fare) in fares.iter().enumerate() {
        let due = started_at + schedule.offset(i);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(due) => break,
                Some(delivered) = deliveries.next(), if !deliveries.is_empty() => {
                    check_delivered(delivered)?;
                }
                _ = interrupt.wait() => return Ok(None),
            }
        }
        let record = FutureRecord::to(topic)
            .partition(0)
            .key(fare.fare_id.as_str())
            .payload(fare.payload.as_slice());
        match sender.send_result(record) {
            Ok(delivery) => deliveries.push(delivery),
            Err((error, _)) => return Err(error).context("cannot queue a baseline message"),
        }
    }
    while let Some(delivered) = deliveries.next().await {
        check_delivered(delivered)?;
    }
    let latency = tokio::select! {
        through = &mut reader.0 => through.context("the last hop's reader failed")?,
        _ = tokio::time::sleep(THROUGH_TIMEOUT) => anyhow::bail!(
            "the baseline messages did not all come through {HOPS} hops within {} s",
            THROUGH_TIMEOUT.as_secs()
        ),
        _ = interrupt.wait() => return Ok(None),
    };
    drop(relays);
    Ok(latency)
}

/// One hop: every message of `reader` to `partition` of `topic`, key and bytes unchanged,
/// without waiting for one acknowledgement before the next send (as the services' relay).
async fn relay(reader: StreamConsumer, producer: FutureProducer, topic: String, partition: i32) {
    let mut deliveries = FuturesUnordered::new();
    loop {
        tokio::select! {
            Some(_) = deliveries.next(), if !deliveries.is_empty() => {}
            received = reader.recv() => {
                let Ok(message) = received else { continue };
                let mut record = FutureRecord::<[u8], [u8]>::to(&topic)
                    .partition(partition)
                    .payload(message.payload().unwrap_or_default());
                if let Some(key) = message.key() {
                    record = record.key(key);
                }
                if let Ok(delivery) = producer.send_result(record) {
                    deliveries.push(delivery);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cut_the_messages_by_send_order() {
        let windows = Windows {
            size: 3,
            through: Box::new(|_, _| {}),
        };
        assert_eq!(windows.count(7), 3);
        assert_eq!(windows.count(6), 2);
        assert_eq!(
            (0..7).map(|i| windows.of(i)).collect::<Vec<_>>(),
            [0, 0, 0, 1, 1, 1, 2]
        );
        let one = Windows::one();
        assert_eq!(one.count(10_000), 1);
        assert_eq!(one.of(9_999), 0);
        assert_eq!(one.count(0), 1);
    }
}
