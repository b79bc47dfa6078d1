//! Records every message on every topic of a test, from the beginning, so a test can assert on
//! what a user would see with kcat. Waiting is polling with a deadline, never a bare sleep.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use events_schema::{Event, EventType, Topic, TopicNames};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use transactional_messaging::kafka;

/// One message as it sits on a topic.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub topic: Topic,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    /// The broker timestamp (ms since the Unix epoch), when the message has one.
    pub timestamp_ms: Option<i64>,
}

impl Recorded {
    /// The message as a strict SPEC §3 event, if it is one.
    pub fn event(&self) -> Option<Event> {
        Event::decode(&self.payload).ok()
    }
}

pub struct Recorder {
    records: Arc<Mutex<Vec<Recorded>>>,
    task: Option<JoinHandle<()>>,
}

impl Recorder {
    pub fn start(bootstrap_servers: &str, names: &TopicNames) -> anyhow::Result<Recorder> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .set("group.id", format!("recorder{}", names.suffix()))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .context("creating the recorder's consumer")?;
        let mut assignment = TopicPartitionList::new();
        for topic in Topic::ALL {
            for partition in 0..topic.partitions() {
                assignment.add_partition_offset(
                    &names.name(topic),
                    partition,
                    Offset::Beginning,
                )?;
            }
        }
        consumer.assign(&assignment)?;
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let names = names.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok(message) = consumer.recv().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Some(topic) = names.topic_of(message.topic()) else {
                    continue;
                };
                let headers = kafka::headers_text(&message).into_iter().collect();
                let record = Recorded {
                    topic,
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    headers,
                    timestamp_ms: message.timestamp().to_millis(),
                };
                sink.lock().expect("recorder lock").push(record);
            }
        });
        Ok(Recorder {
            records,
            task: Some(task),
        })
    }

    /// Stops recording and closes the consumer (before a test deletes its topics).
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    pub fn snapshot(&self) -> Vec<Recorded> {
        self.records.lock().expect("recorder lock").clone()
    }

    /// Every strict event of `fare_id`, in the order recorded.
    pub fn events_for(&self, fare_id: &str) -> Vec<Event> {
        self.snapshot()
            .iter()
            .filter(|r| r.key.as_deref() == Some(fare_id))
            .filter_map(Recorded::event)
            .collect()
    }

    /// The types of `fare_id`'s events, de-duplicated by `event_id`, in causal order: each
    /// event after the one that caused it. Works across topics, whose relative order Kafka
    /// does not keep.
    pub fn event_types_for(&self, fare_id: &str) -> Vec<EventType> {
        causal_order(self.events_for(fare_id))
            .iter()
            .map(Event::event_type)
            .collect()
    }

    pub fn on_topic(&self, topic: Topic) -> Vec<Recorded> {
        self.snapshot()
            .into_iter()
            .filter(|r| r.topic == topic)
            .collect()
    }

    /// Polls `check` every 50 ms until it returns `Some`, or fails after `timeout` naming
    /// `what` and what was recorded.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&[Recorded]) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let snapshot = self.snapshot();
            if let Some(found) = check(&snapshot) {
                return Ok(found);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "timed out after {timeout:?} waiting for {what}; recorded {} messages",
                    snapshot.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the first message on `topic` (e.g. the first dead letter).
    pub async fn first_on(&self, topic: Topic, timeout: Duration) -> anyhow::Result<Recorded> {
        self.wait_for(&format!("a message on {topic}"), timeout, |records| {
            records.iter().find(|r| r.topic == topic).cloned()
        })
        .await
    }

    /// Waits for `fare_id`'s terminal outcome on `fare-outcomes`.
    pub async fn outcome_of(&self, fare_id: &str, timeout: Duration) -> anyhow::Result<Event> {
        self.wait_for(&format!("the outcome of {fare_id}"), timeout, |records| {
            records
                .iter()
                .filter(|r| r.topic == Topic::FareOutcomes && r.key.as_deref() == Some(fare_id))
                .find_map(Recorded::event)
        })
        .await
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Orders events so that each comes after its cause, de-duplicating by `event_id`.
pub fn causal_order(events: Vec<Event>) -> Vec<Event> {
    let mut unique: Vec<Event> = Vec::new();
    for event in events {
        if !unique.iter().any(|e| e.event_id == event.event_id) {
            unique.push(event);
        }
    }
    let mut ordered: Vec<Event> = Vec::new();
    while !unique.is_empty() {
        let ready = unique
            .iter()
            .position(|e| {
                !unique
                    .iter()
                    .any(|cause| cause.event_id == e.causation_id && cause.event_id != e.event_id)
            })
            .unwrap_or(0);
        ordered.push(unique.remove(ready));
    }
    ordered
}
