//! `fare-outcomes` followed live, as `fares watch` does (every partition assigned, no consumer
//! group, nothing committed), starting from the latest [`BACKLOG`] outcomes of each partition so
//! that the page has something to show at once. Kept: the latest [`KEPT`] outcomes, counts by
//! kind, and the broker times of the last minute's outcomes (the rate). Outcomes are counted
//! once per `event_id` (a relay may publish one twice).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_schema::{timestamp, EventData, Topic};
use rdkafka::Message;
use serde::Serialize;
use serde_json::{json, Value};

use crate::broker::{Kafka, Start};
use crate::detail::describe;
use crate::outcomes::{self, Received, Warnings};

/// How many of the latest outcomes of each partition are read at start.
pub const BACKLOG: i64 = 20;
/// How many outcomes are kept for the page.
pub const KEPT: usize = 200;
/// How many event ids are remembered to count each outcome once.
const REMEMBERED: usize = 10_000;
/// The window of the rate.
pub const RATE_WINDOW_SECS: i64 = 10;
/// The window of the per-second counts.
const HISTORY_SECS: i64 = 60;

/// One outcome as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub fare_id: String,
    pub event_type: String,
    pub occurred_at: String,
    pub detail: String,
    pub needs_attention: bool,
    /// The broker timestamp, ms since the epoch.
    pub broker_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    recent: VecDeque<Outcome>,
    collected: u64,
    failed: u64,
    needs_attention: u64,
    /// Broker times (ms) of the outcomes of the last [`HISTORY_SECS`].
    times: VecDeque<i64>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    /// Why the topic cannot be read now, if it cannot.
    problem: Option<String>,
    /// Whether the reader is assigned and reading.
    reading: bool,
}

/// The shared state, filled by a background task.
#[derive(Debug, Clone)]
pub struct Live {
    state: Arc<Mutex<State>>,
}

impl Live {
    /// Starts following the topic in the background.
    pub fn start(kafka: Kafka) -> Live {
        let live = Live {
            state: Arc::default(),
        };
        tokio::spawn(follow_forever(kafka, live.clone()));
        live
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut state)
    }

    /// The latest `limit` outcomes, newest first, the counts and the rate.
    pub fn snapshot(&self, limit: usize) -> Value {
        let now_ms = timestamp::now().unix_timestamp_nanos() as i64 / 1_000_000;
        self.with(|state| {
            while state
                .times
                .front()
                .is_some_and(|t| *t < now_ms - HISTORY_SECS * 1000)
            {
                state.times.pop_front();
            }
            let mut per_second = vec![0_u32; HISTORY_SECS as usize];
            for t in &state.times {
                let ago = ((now_ms - t) / 1000).clamp(0, HISTORY_SECS - 1) as usize;
                per_second[HISTORY_SECS as usize - 1 - ago] += 1;
            }
            let in_window = state
                .times
                .iter()
                .filter(|t| **t >= now_ms - RATE_WINDOW_SECS * 1000)
                .count();
            json!({
                "outcomes": state.recent.iter().take(limit).collect::<Vec<_>>(),
                "counts": {
                    "collected": state.collected,
                    "failed": state.failed,
                    "needs_attention": state.needs_attention,
                },
                "rate_per_sec": in_window as f64 / RATE_WINDOW_SECS as f64,
                "rate_window_secs": RATE_WINDOW_SECS,
                "per_second": per_second,
                "reading": state.reading,
                "problem": state.problem,
            })
        })
    }

    fn record(&self, outcome: Outcome, event_id: String) {
        self.with(|state| {
            if !state.seen.insert(event_id.clone()) {
                return;
            }
            state.seen_order.push_back(event_id);
            if state.seen_order.len() > REMEMBERED {
                if let Some(old) = state.seen_order.pop_front() {
                    state.seen.remove(&old);
                }
            }
            match outcome.event_type.as_str() {
                "FareCollected" => state.collected += 1,
                _ => state.failed += 1,
            }
            if outcome.needs_attention {
                state.needs_attention += 1;
            }
            if let Some(t) = outcome.broker_ms {
                // Kept in arrival order; a partition's backlog may be older than another's.
                let at = state.times.partition_point(|x| *x <= t);
                state.times.insert(at, t);
            }
            state.recent.push_front(outcome);
            state.recent.truncate(KEPT);
        });
    }

    fn set(&self, reading: bool, problem: Option<String>) {
        self.with(|state| {
            state.reading = reading;
            state.problem = problem;
        });
    }
}

/// Follows the topic; after a failure (Kafka away, the topic missing) says why and starts
/// again a few seconds later, from where it was.
async fn follow_forever(kafka: Kafka, live: Live) {
    let mut next: HashMap<i32, i64> = HashMap::new();
    loop {
        if let Err(error) = follow(&kafka, &live, &mut next).await {
            live.set(false, Some(format!("{error:#}")));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

async fn follow(kafka: &Kafka, live: &Live, next: &mut HashMap<i32, i64>) -> anyhow::Result<()> {
    let partitions = kafka.require(Topic::FareOutcomes).await?;
    let topic = kafka.topic(Topic::FareOutcomes);
    let start: Vec<(i32, i64)> = kafka
        .watermarks(&topic, partitions)
        .await?
        .into_iter()
        .map(|(p, low, high)| {
            let from = next.get(&p).copied().unwrap_or((high - BACKLOG).max(low));
            (p, from.clamp(low, high))
        })
        .collect();
    let reader = kafka.reader(&topic, &Start::At(start))?;
    live.set(true, None);
    let mut warnings = Warnings::silent();
    loop {
        let waited = tokio::time::timeout(
            Duration::from_secs(2),
            outcomes::next_message(&reader, &topic, kafka.bootstrap(), &mut warnings),
        )
        .await;
        let Ok(message) = waited else {
            live.set(true, warnings.latest().map(str::to_owned));
            continue;
        };
        let message = message?;
        next.insert(message.partition(), message.offset() + 1);
        let broker_ms = message.timestamp().to_millis();
        if let Received::Event(event) = Received::from_message(&message) {
            if !event.event_type().is_outcome() {
                continue;
            }
            let needs_attention =
                matches!(&event.data, EventData::FareCollectionFailed(f) if f.needs_attention);
            let outcome = Outcome {
                fare_id: event.fare_id.to_string(),
                event_type: event.event_type().as_str().to_owned(),
                occurred_at: timestamp::format(event.occurred_at),
                detail: describe(&event.data),
                needs_attention,
                broker_ms,
            };
            live.record(outcome, event.event_id.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(fare: &str, kind: &str, at: i64) -> Outcome {
        Outcome {
            fare_id: fare.into(),
            event_type: kind.into(),
            occurred_at: String::new(),
            detail: String::new(),
            needs_attention: false,
            broker_ms: Some(at),
        }
    }

    #[test]
    fn counts_each_event_once_and_rates_the_last_seconds() {
        let live = Live {
            state: Arc::default(),
        };
        let now = timestamp::now().unix_timestamp_nanos() as i64 / 1_000_000;
        live.record(outcome("a", "FareCollected", now - 1000), "e1".into());
        live.record(outcome("a", "FareCollected", now - 1000), "e1".into());
        live.record(
            outcome("b", "FareCollectionFailed", now - 2000),
            "e2".into(),
        );
        live.record(outcome("c", "FareCollected", now - 30_000), "e3".into());
        let snapshot = live.snapshot(2);
        assert_eq!(snapshot["counts"]["collected"], 2);
        assert_eq!(snapshot["counts"]["failed"], 1);
        assert_eq!(snapshot["outcomes"].as_array().unwrap().len(), 2);
        assert_eq!(
            snapshot["outcomes"][0]["fare_id"], "c",
            "newest arrival first"
        );
        assert_eq!(snapshot["rate_per_sec"], 0.2);
        let per_second: u64 = snapshot["per_second"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .sum();
        assert_eq!(per_second, 3);
    }
}
