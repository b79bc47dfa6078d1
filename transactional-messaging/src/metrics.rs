//! What a service counts, for `GET /metrics` (Prometheus text format): the messages it consumed
//! and what became of them, how long its steps and batches take, its consumer's lag, its
//! outbox backlog, and — for the service that writes `fare-outcomes` — the fares' outcomes.
//!
//! Cheap on the hot path: every labelled series a message can touch is created when the
//! service starts (the labels come from fixed lists: the subscribed topics, their event types,
//! the service's steps, the outcomes), so counting is an index and an atomic add — no lock, no
//! map lookup, no statement. What the database knows (the outbox backlog, the payment-service's
//! waiting compensations, …) is read when Prometheus scrapes ([`DatabaseGauges`]), and the
//! consumer lag comes from librdkafka's statistics every [`STATISTICS_EVERY`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use events_schema::choreography::{self, Service};
use events_schema::{EventType, Topic, TopicNames};
use futures::future::BoxFuture;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use rdkafka::statistics::Statistics;
use sqlx::PgConnection;

/// How often librdkafka reports its statistics (the consumer lag).
pub const STATISTICS_EVERY: Duration = Duration::from_secs(5);

/// The `event_type` label of a message whose type is not known (a poison message).
pub const UNKNOWN: &str = "unknown";

/// Buckets of the per-message and per-batch durations: milliseconds to seconds.
const STEP_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Buckets of a fare's request → outcome time: a saga takes milliseconds to seconds, one with
/// a compensation retried within its budget minutes to hours.
const OUTCOME_BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 600.0, 3600.0,
];

/// A fare's terminal outcome, by result (the `result` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FareResult {
    Collected,
    /// Ended without a charge after a decline (and its compensations).
    Failed,
    /// The request was invalid.
    Rejected,
    /// A compensation was given up: an operator must act.
    NeedsAttention,
}

impl FareResult {
    const ALL: [FareResult; 4] = [
        FareResult::Collected,
        FareResult::Failed,
        FareResult::Rejected,
        FareResult::NeedsAttention,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            FareResult::Collected => "collected",
            FareResult::Failed => "failed",
            FareResult::Rejected => "rejected",
            FareResult::NeedsAttention => "needs_attention",
        }
    }
}

/// An outcome written by a batch, counted once the batch committed: its result and how long
/// after its request was consumed (the fare registered) it was written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutcomeObservation {
    pub result: FareResult,
    pub since_request: Duration,
}

/// Which series a message counts in: an index into [`MessageCounters`], decided once by the
/// dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageKind(usize);

/// Gauges a service reads from its database when Prometheus scrapes, in a read-only
/// transaction with a short statement timeout.
pub trait DatabaseGauges: Send + Sync + 'static {
    fn refresh<'a>(&'a self, conn: &'a mut PgConnection) -> BoxFuture<'a, sqlx::Result<()>>;
}

/// A service's metrics: cloned into every part that counts.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

struct Inner {
    registry: Registry,
    names: TopicNames,
    /// (topic, event type) of each [`MessageKind`].
    kinds: Vec<(Topic, Option<EventType>)>,
    consumed: Vec<IntCounter>,
    processed: Vec<IntCounter>,
    ignored: Vec<IntCounter>,
    dead_lettered: Vec<IntCounter>,
    /// By the event type that triggers the step (its position in `steps`).
    steps: Vec<EventType>,
    step_seconds: Vec<Histogram>,
    batch_seconds: Histogram,
    /// Only for a service that writes outcomes.
    outcomes: Option<Outcomes>,
    consumer_lag: IntGaugeVec,
    outbox_unpublished: IntGauge,
    outbox_oldest_age: Gauge,
    database_up: IntGauge,
    gauges: Mutex<Vec<Arc<dyn DatabaseGauges>>>,
}

struct Outcomes {
    total: Vec<IntCounter>,
    seconds: Vec<Histogram>,
}

fn counters(
    registry: &Registry,
    name: &str,
    help: &str,
    kinds: &[(Topic, Option<EventType>)],
) -> prometheus::Result<Vec<IntCounter>> {
    let vec = IntCounterVec::new(Opts::new(name, help), &["topic", "event_type"])?;
    registry.register(Box::new(vec.clone()))?;
    Ok(kinds
        .iter()
        .map(|(topic, event_type)| {
            vec.with_label_values(&[
                topic.base_name(),
                event_type.map_or(UNKNOWN, |t| t.as_str()),
            ])
        })
        .collect())
}

fn histograms(
    registry: &Registry,
    opts: HistogramOpts,
    label: &str,
    values: &[&str],
) -> prometheus::Result<Vec<Histogram>> {
    let vec = HistogramVec::new(opts, &[label])?;
    registry.register(Box::new(vec.clone()))?;
    Ok(values.iter().map(|v| vec.with_label_values(&[v])).collect())
}

impl Metrics {
    /// The metrics of `service`, consuming `subscribed` (named by `names`).
    pub fn new(service: Service, subscribed: &[Topic], names: TopicNames) -> Self {
        Metrics::build(service, subscribed, names).expect("metric names and labels are valid")
    }

    fn build(
        service: Service,
        subscribed: &[Topic],
        names: TopicNames,
    ) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let kinds: Vec<(Topic, Option<EventType>)> = subscribed
            .iter()
            .flat_map(|topic| {
                let types = topic.event_types().into_iter().map(Some);
                types.chain([None]).map(move |t| (*topic, t))
            })
            .collect();
        let steps: Vec<EventType> = choreography::STEPS
            .iter()
            .filter(|step| step.service == service)
            .map(|step| step.on)
            .collect();
        let step_names: Vec<&str> = steps.iter().map(EventType::as_str).collect();
        let writes_outcomes = choreography::STEPS
            .iter()
            .any(|step| step.service == service && step.emits.iter().any(|t| t.is_outcome()));
        let outcomes = match writes_outcomes {
            false => None,
            true => {
                let results: Vec<&str> = FareResult::ALL.iter().map(FareResult::as_str).collect();
                let total = IntCounterVec::new(
                    Opts::new(
                        "wildrydes_fare_outcomes_total",
                        "Fare outcomes written (committed to the outbox), by result.",
                    ),
                    &["result"],
                )?;
                registry.register(Box::new(total.clone()))?;
                let seconds = histograms(
                    &registry,
                    HistogramOpts::new(
                        "wildrydes_fare_outcome_duration_seconds",
                        "Time from a fare's request being consumed (the fare registered) to its outcome being written, by result.",
                    )
                    .buckets(OUTCOME_BUCKETS.to_vec()),
                    "result",
                    &results,
                )?;
                Some(Outcomes {
                    total: results
                        .iter()
                        .map(|r| total.with_label_values(&[r]))
                        .collect(),
                    seconds,
                })
            }
        };
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "wildrydes_consumer_lag_messages",
                "Messages of an assigned partition not yet done by this instance: high watermark minus stored offset (librdkafka statistics).",
            ),
            &["topic", "partition"],
        )?;
        registry.register(Box::new(consumer_lag.clone()))?;
        let outbox_unpublished = IntGauge::new(
            "wildrydes_outbox_unpublished_messages",
            "Outbox rows not yet published (read at scrape time).",
        )?;
        registry.register(Box::new(outbox_unpublished.clone()))?;
        let outbox_oldest_age = Gauge::new(
            "wildrydes_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished outbox row, 0 when there is none (read at scrape time).",
        )?;
        registry.register(Box::new(outbox_oldest_age.clone()))?;
        let database_up = IntGauge::new(
            "wildrydes_metrics_database_up",
            "1 when this scrape read the database-derived gauges, 0 when the database did not answer in time (they keep their last values).",
        )?;
        registry.register(Box::new(database_up.clone()))?;
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "wildrydes_batch_duration_seconds",
                "Time of one batch transaction of the consumer, begin to commit.",
            )
            .buckets(STEP_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(batch_seconds.clone()))?;
        let inner = Inner {
            consumed: counters(&registry, "wildrydes_messages_consumed_total", "Messages received from Kafka, by topic and event type.", &kinds)?,
            processed: counters(&registry, "wildrydes_messages_processed_total", "Messages that changed state or caused events, by topic and event type.", &kinds)?,
            ignored: counters(&registry, "wildrydes_messages_ignored_total", "Messages needing nothing from this service (not its step, redelivered, or past its step), by topic and event type.", &kinds)?,
            dead_lettered: counters(&registry, "wildrydes_messages_dead_lettered_total", "Messages written to this service's dead-letter topic, by topic and event type.", &kinds)?,
            step_seconds: histograms(
                &registry,
                HistogramOpts::new(
                    "wildrydes_step_duration_seconds",
                    "Time from a message's receipt to its being done (queue, batches, gateway calls), for processed messages, by step (the event that triggers it).",
                )
                .buckets(STEP_BUCKETS.to_vec()),
                "step",
                &step_names,
            )?,
            steps,
            batch_seconds,
            outcomes,
            consumer_lag,
            outbox_unpublished,
            outbox_oldest_age,
            database_up,
            gauges: Mutex::new(Vec::new()),
            registry,
            names,
            kinds,
        };
        Ok(Metrics(Arc::new(inner)))
    }

    /// The registry, for a service to register metrics of its own.
    pub fn registry(&self) -> &Registry {
        &self.0.registry
    }

    /// Adds gauges read from the database at every scrape.
    pub fn read_on_scrape(&self, gauges: Arc<dyn DatabaseGauges>) {
        self.0
            .gauges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(gauges);
    }

    /// The kind of a message received on `topic` (its actual name) whose type is `event_type`
    /// (`None` when unknown: a poison message).
    pub fn kind(&self, topic: &str, event_type: Option<EventType>) -> Option<MessageKind> {
        let topic = self.0.names.topic_of(topic)?;
        let event_type = event_type.filter(|t| t.topic() == topic);
        self.0
            .kinds
            .iter()
            .position(|kind| *kind == (topic, event_type))
            .map(MessageKind)
    }

    pub fn consumed(&self, kind: Option<MessageKind>) {
        if let Some(MessageKind(i)) = kind {
            self.0.consumed[i].inc();
        }
    }

    pub fn processed(&self, kind: Option<MessageKind>, since_received: Duration) {
        if let Some(MessageKind(i)) = kind {
            self.0.processed[i].inc();
            let step = self.0.kinds[i].1;
            if let Some(s) = self.0.steps.iter().position(|t| Some(*t) == step) {
                self.0.step_seconds[s].observe(since_received.as_secs_f64());
            }
        }
    }

    pub fn ignored(&self, kind: Option<MessageKind>) {
        if let Some(MessageKind(i)) = kind {
            self.0.ignored[i].inc();
        }
    }

    pub fn dead_lettered(&self, kind: Option<MessageKind>) {
        if let Some(MessageKind(i)) = kind {
            self.0.dead_lettered[i].inc();
        }
    }

    /// A batch transaction committed after `took`.
    pub fn batch_committed(&self, took: Duration) {
        self.0.batch_seconds.observe(took.as_secs_f64());
    }

    /// An outcome a committed batch wrote.
    pub fn outcome(&self, outcome: OutcomeObservation) {
        if let Some(outcomes) = &self.0.outcomes {
            let i = FareResult::ALL
                .iter()
                .position(|r| *r == outcome.result)
                .unwrap_or_default();
            outcomes.total[i].inc();
            outcomes.seconds[i].observe(outcome.since_request.as_secs_f64());
        }
    }

    /// librdkafka's latest statistics: the lag of every partition this consumer is assigned
    /// (the gauges of partitions it no longer has are removed).
    pub fn consumer_statistics(&self, statistics: &Statistics) {
        let gauges = &self.0.consumer_lag;
        gauges.reset();
        for (name, topic) in &statistics.topics {
            let Some(base) = self.0.names.topic_of(name) else {
                continue;
            };
            for (partition, stats) in &topic.partitions {
                // librdkafka's internal "unassigned" partition is -1; a partition this
                // instance does not fetch is not its own.
                if *partition < 0 || stats.fetch_state != "active" {
                    continue;
                }
                let lag = match stats.consumer_lag_stored {
                    known if known >= 0 => known,
                    // Nothing stored nor committed yet: it starts at the low watermark.
                    _ if stats.stored_offset < 0
                        && stats.committed_offset < 0
                        && stats.hi_offset >= 0 =>
                    {
                        stats.hi_offset - stats.lo_offset.max(0)
                    }
                    _ => continue,
                };
                gauges
                    .with_label_values(&[base.base_name(), &partition.to_string()])
                    .set(lag);
            }
        }
    }

    /// The text Prometheus scrapes: the database-derived gauges are read first, within
    /// `timeout`.
    pub async fn scrape(&self, pool: &sqlx::PgPool, timeout: Duration) -> String {
        let gauges: Vec<Arc<dyn DatabaseGauges>> = self
            .0
            .gauges
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let read = tokio::time::timeout(timeout, async {
            let mut tx = pool.begin().await?;
            let millis = i32::try_from(timeout.as_millis())
                .unwrap_or(i32::MAX)
                .to_string();
            sqlx::query_scalar!(
                "SELECT set_config('statement_timeout', $1, true) AS \"set!\"",
                millis
            )
            .fetch_one(&mut *tx)
            .await?;
            self.read_outbox(&mut tx).await?;
            for gauges in &gauges {
                gauges.refresh(&mut tx).await?;
            }
            tx.commit().await
        })
        .await;
        match read {
            Ok(Ok(())) => self.0.database_up.set(1),
            Ok(Err(error)) => {
                tracing::warn!(%error, "metrics: cannot read the database gauges");
                self.0.database_up.set(0);
            }
            Err(_) => {
                tracing::warn!(?timeout, "metrics: the database gauges took too long");
                self.0.database_up.set(0);
            }
        }
        self.encode()
    }

    async fn read_outbox(&self, conn: &mut PgConnection) -> sqlx::Result<()> {
        // The partial index `outbox_unpublished` (id WHERE published_at IS NULL) answers both:
        // the count, and the oldest row (lowest id) for its age.
        let backlog = sqlx::query!(
            r#"SELECT
                 (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS "unpublished!",
                 (SELECT EXTRACT(EPOCH FROM now() - created_at)::float8 FROM outbox
                   WHERE published_at IS NULL ORDER BY id LIMIT 1) AS oldest_age"#
        )
        .fetch_one(conn)
        .await?;
        self.0.outbox_unpublished.set(backlog.unpublished);
        self.0
            .outbox_oldest_age
            .set(backlog.oldest_age.unwrap_or(0.0).max(0.0));
        Ok(())
    }

    /// The registry in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.0.registry.gather(), &mut text) {
            tracing::error!(%error, "metrics: cannot encode");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment() -> Metrics {
        Metrics::new(
            Service::Payment,
            &[Topic::FareRequests, Topic::PaymentEvents],
            TopicNames::new("-t1"),
        )
    }

    #[test]
    fn a_message_counts_in_its_topic_and_type_and_a_poison_one_as_unknown() {
        let metrics = payment();
        let requested = metrics.kind("fare-requests-t1", Some(EventType::FareRequested));
        let poison = metrics.kind("payment-events-t1", None);
        // A type that is not its topic's is a poison message too: labels stay bounded.
        let misplaced = metrics.kind("payment-events-t1", Some(EventType::AccountUpdated));
        assert_eq!(poison, misplaced);
        assert_eq!(metrics.kind("elsewhere", Some(EventType::Charged)), None);
        metrics.consumed(requested);
        metrics.processed(requested, Duration::from_millis(3));
        metrics.consumed(poison);
        metrics.dead_lettered(poison);
        let text = metrics.encode();
        assert!(text.contains(
            "wildrydes_messages_consumed_total{event_type=\"FareRequested\",topic=\"fare-requests\"} 1"
        ));
        assert!(text.contains(
            "wildrydes_messages_dead_lettered_total{event_type=\"unknown\",topic=\"payment-events\"} 1"
        ));
        assert!(text.contains("wildrydes_step_duration_seconds_count{step=\"FareRequested\"} 1"));
        assert!(text.contains("# TYPE wildrydes_messages_consumed_total counter"));
    }

    #[test]
    fn only_a_service_writing_outcomes_has_outcome_metrics() {
        let metrics = payment();
        metrics.outcome(OutcomeObservation {
            result: FareResult::NeedsAttention,
            since_request: Duration::from_secs(2),
        });
        let text = metrics.encode();
        assert!(text.contains("wildrydes_fare_outcomes_total{result=\"needs_attention\"} 1"));
        assert!(text.contains("wildrydes_fare_outcomes_total{result=\"collected\"} 0"));
        let accounting = Metrics::new(
            Service::Accounting,
            &[Topic::PaymentEvents],
            TopicNames::new(""),
        );
        assert!(!accounting
            .encode()
            .contains("wildrydes_fare_outcomes_total"));
    }
}
