//! The outbox relay: publishes outbox rows with an idempotent producer (`acks=all`) and marks
//! them published only after the broker acknowledged them. A crash between the
//! acknowledgement and the mark republishes the same bytes with the same `event_id`, which
//! consumers ignore.
//!
//! Rows reach it two ways:
//! - **handed over** by the transaction that wrote them, right after its commit ([`Handoff`]):
//!   no query, no polling, sent at once, pipelined (many sends awaiting their
//!   acknowledgements at a time, no transaction held open meanwhile);
//! - **swept** from the table, every [`SWEEP_EVERY`], when unpublished for more than
//!   [`SWEEP_AFTER`]: rows of a process that crashed before publishing them, of a handover
//!   that found the relay's queue full, or of a send that failed (broker down, a row it
//!   rejected). So nothing written is ever left behind; a row may be published twice (its
//!   handover and a sweep of another instance), never lost.
//!
//! Tracing: each row is sent under a `send <topic>` span, child of the context stored in the
//! row (the span that produced the event), and the message carries that `send` span's context
//! in its `traceparent` / `tracestate` headers, so that its consumer continues the fare's trace.
//! Tracing off, the row's headers are sent as they are.
//!
//! Order per fare: a service writes a fare's next event only after consuming the one before
//! it, which was published and acknowledged — so a fare's events reach their topics in order
//! whichever instance publishes them, without a lock between relays. Rows of one transaction
//! are sent in `id` order by one producer, which keeps per-partition order (idempotence,
//! `max.in.flight` ≤ 5).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use anyhow::Context;
use events_schema::{cloud_events, Topic, TopicNames};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::crash_point::{self, CrashPoint};
use crate::kafka;
use crate::outbox::{OutboxMessage, OutboxRow};
use crate::readiness::Readiness;
use crate::telemetry::Throttle;
use crate::trace::{self, Carrier};

/// How long a row stays unpublished before the sweep takes it.
pub const SWEEP_AFTER: Duration = Duration::from_secs(2);
/// How often the sweep looks.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How many rows one sweep takes at most.
const SWEEP_BATCH: i64 = 1000;
/// How often acknowledged rows are marked published (one statement for all of them).
const MARK_EVERY: Duration = Duration::from_millis(100);
/// How many handovers (a batch's rows each) may wait for the relay before new ones are left
/// to the sweep: bounds the relay's memory when the broker is slow or away.
const HANDOFF_QUEUE: usize = 64;
/// How long the relay tries to publish what is left at shutdown.
const FINAL_PUBLISH: Duration = Duration::from_secs(5);

/// The handing side: rows written by a transaction that just committed.
#[derive(Debug, Clone)]
pub struct Handoff(mpsc::Sender<Vec<OutboxRow>>);

impl Handoff {
    /// A handover and the relay's side of it.
    pub fn channel() -> (Handoff, mpsc::Receiver<Vec<OutboxRow>>) {
        let (sender, receiver) = mpsc::channel(HANDOFF_QUEUE);
        (Handoff(sender), receiver)
    }

    /// Hands `rows` to the relay; when its queue is full they are left to the sweep.
    pub fn send(&self, rows: Vec<OutboxRow>) {
        if !rows.is_empty() && self.0.try_send(rows).is_err() {
            tracing::debug!("relay queue full; the sweep publishes these rows");
        }
    }
}

type Delivery = Pin<Box<dyn Future<Output = (i64, Result<(), String>)> + Send>>;
/// The statement marking rows published, under way: the relay goes on sending meanwhile.
type Marking = Pin<Box<dyn Future<Output = (Vec<i64>, Result<(), sqlx::Error>)> + Send>>;

/// The relay's state: what is on its way to the broker, what awaits its mark.
struct Relay {
    pool: PgPool,
    producer: FutureProducer,
    bootstrap_servers: String,
    names: TopicNames,
    readiness: Readiness,
    /// Ids sent and not acknowledged yet.
    sending: HashSet<i64>,
    deliveries: FuturesUnordered<Delivery>,
    /// Ids acknowledged, to mark published.
    acknowledged: Vec<i64>,
    /// The ids being marked published now, by the statement under way.
    marking: Option<Marking>,
    /// Rows whose last send failed: since when, and why.
    failing: HashMap<i64, (Instant, String)>,
    /// At most one line a second, however many rows fail.
    warnings: Throttle,
}

/// Publishes until `shutdown` completes, then what is on its way, and flushes the producer.
pub async fn run_relay(
    pool: PgPool,
    producer: FutureProducer,
    bootstrap_servers: String,
    names: TopicNames,
    mut handoff: mpsc::Receiver<Vec<OutboxRow>>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut relay = Relay {
        pool,
        producer,
        bootstrap_servers,
        names,
        readiness,
        sending: HashSet::new(),
        deliveries: FuturesUnordered::new(),
        acknowledged: Vec::new(),
        marking: None,
        failing: HashMap::new(),
        warnings: Throttle::default(),
    };
    tokio::pin!(shutdown);
    let mut mark = tokio::time::interval(MARK_EVERY);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some((id, delivered)) = relay.deliveries.next(), if !relay.deliveries.is_empty() => {
                relay.delivered(id, delivered);
            }
            Some(rows) = handoff.recv() => {
                for row in rows {
                    relay.send(row);
                }
            }
            (ids, marked) = async { relay.marking.as_mut().expect("guarded").await },
                if relay.marking.is_some() => relay.marked(ids, marked),
            _ = mark.tick() => relay.mark_published(),
            // Not while rows are being marked, so that it does not send them again.
            _ = sweep.tick(), if relay.marking.is_none() => relay.sweep().await,
        }
    }
    // What was handed over is sent; what is on its way is awaited for a while; what is left
    // unpublished stays in the table for the next start.
    while let Ok(rows) = handoff.try_recv() {
        for row in rows {
            relay.send(row);
        }
    }
    let _ = tokio::time::timeout(FINAL_PUBLISH, async {
        while let Some((id, delivered)) = relay.deliveries.next().await {
            relay.delivered(id, delivered);
        }
    })
    .await;
    relay.finish_marking().await;
    relay.mark_published();
    relay.finish_marking().await;
    // rdkafka's Drop purges queued messages: flush what is still in flight. A message lost
    // here is safe: its outbox row is not marked published.
    let producer = relay.producer;
    tokio::task::spawn_blocking(move || producer.flush(FINAL_PUBLISH))
        .await
        .context("flush task panicked")?
        .context("flushing the producer at shutdown")?;
    Ok(())
}

impl Relay {
    /// Enqueues `row` on the producer, unless it is on its way already.
    fn send(&mut self, row: OutboxRow) {
        if !self.sending.insert(row.id) {
            return;
        }
        let OutboxRow { id, message } = row;
        let topic = self.names.name(message.topic);
        let span = send_span(&message, &topic);
        let headers = owned_headers(&message, &span);
        let mut record = FutureRecord::<str, [u8]>::to(&topic)
            .payload(message.payload.as_slice())
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key.as_str());
        }
        match self.producer.send_result(record) {
            Ok(delivery) => self.deliveries.push(Box::pin(async move {
                let delivered = match delivery.await {
                    Ok(Ok(delivery)) => {
                        trace::delivered(&span, delivery.partition, delivery.offset);
                        Ok(())
                    }
                    Ok(Err((error, _))) => Err(format!("the broker rejected it: {error}")),
                    Err(_) => Err("the producer dropped it".to_owned()),
                };
                if let Err(why) = &delivered {
                    span.fail(|| why.clone());
                }
                span.end();
                (id, delivered)
            })),
            Err((error, _)) => {
                span.fail(|| format!("cannot enqueue it on the producer: {error}"));
                span.end();
                // The producer's queue is full (the broker is away): the sweep sends it later.
                self.sending.remove(&id);
                self.failed(id, format!("cannot enqueue it on the producer: {error}"));
            }
        }
    }

    fn delivered(&mut self, id: i64, delivered: Result<(), String>) {
        self.sending.remove(&id);
        match delivered {
            Ok(()) => {
                crash_point::reached(CrashPoint::OutboxAcknowledged);
                self.acknowledged.push(id);
                if self.failing.remove(&id).is_some() {
                    self.report();
                }
            }
            Err(why) => {
                if let Some(replacement) = replace_if_fatal(&self.producer, &self.bootstrap_servers)
                {
                    self.producer = replacement;
                }
                self.failed(id, why);
            }
        }
    }

    /// Row `id` could not be published now; the sweep tries again.
    fn failed(&mut self, id: i64, why: String) {
        if self.warnings.allow().is_some() {
            tracing::warn!(
                outbox_id = id,
                error = why,
                failing = self.failing.len() + 1,
                "outbox rows not published; the sweep retries them"
            );
        }
        self.failing
            .entry(id)
            .and_modify(|(_, last)| *last = why.clone())
            .or_insert((Instant::now(), why));
        self.report();
    }

    /// Tells readiness about the row failing the longest, if any.
    fn report(&self) {
        match self.failing.iter().min_by_key(|(_, (since, _))| *since) {
            Some((id, (since, why))) => self
                .readiness
                .relay_failing(*since, &format!("outbox row {id} not published: {why}")),
            None => self.readiness.relay_succeeded(),
        }
    }

    /// Starts marking the acknowledged rows published, in one statement, unless one is under
    /// way: the relay does not wait for it (sends go on meanwhile).
    fn mark_published(&mut self) {
        if self.acknowledged.is_empty() || self.marking.is_some() {
            return;
        }
        let ids = std::mem::take(&mut self.acknowledged);
        let pool = self.pool.clone();
        self.marking = Some(Box::pin(async move {
            let marked = sqlx::query!(
                "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
                &ids
            )
            .execute(&pool)
            .await
            .map(|_| ());
            (ids, marked)
        }));
    }

    /// Waits for the marking statement under way, if any.
    async fn finish_marking(&mut self) {
        if let Some(marking) = self.marking.take() {
            let (ids, marked) = marking.await;
            self.marked(ids, marked);
        }
    }

    fn marked(&mut self, ids: Vec<i64>, marked: Result<(), sqlx::Error>) {
        self.marking = None;
        if let Err(error) = marked {
            // Kept for the next tick; meanwhile the sweep may send them again (harmless).
            tracing::warn!(%error, "cannot mark outbox rows published yet");
            self.acknowledged.extend(ids);
        }
    }

    /// Sends the rows unpublished for longer than [`SWEEP_AFTER`] that are not on their way.
    async fn sweep(&mut self) {
        let rows = sqlx::query!(
            "SELECT id, event_id, topic, message_key, payload, headers FROM outbox \
             WHERE published_at IS NULL AND created_at < now() - make_interval(secs => $1) \
             ORDER BY id LIMIT $2",
            SWEEP_AFTER.as_secs_f64(),
            SWEEP_BATCH,
        )
        .fetch_all(&self.pool)
        .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "outbox sweep failed; trying again");
                return;
            }
        };
        for row in rows {
            let unacknowledged = !self.acknowledged.contains(&row.id);
            let Some(topic) = Topic::from_base_name(&row.topic) else {
                self.failed(row.id, format!("it names an unknown topic {}", row.topic));
                continue;
            };
            if unacknowledged {
                let headers = row
                    .headers
                    .as_object()
                    .map(|map| {
                        map.iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                self.send(OutboxRow {
                    id: row.id,
                    message: OutboxMessage {
                        event_id: row.event_id,
                        topic,
                        key: row.message_key,
                        payload: row.payload,
                        headers,
                        outcome: None,
                    },
                });
            }
        }
    }
}

/// An idempotent producer that hit a fatal error (e.g. its producer id was fenced after a
/// broker crash) can never send again: build a new one with the same settings. Whatever the
/// old one had in flight is still unmarked in the outbox and is published again.
fn replace_if_fatal(producer: &FutureProducer, bootstrap_servers: &str) -> Option<FutureProducer> {
    let (code, reason) = producer.client().fatal_error()?;
    tracing::warn!(
        ?code,
        reason,
        "the producer hit a fatal error; creating a new one"
    );
    match kafka::producer(bootstrap_servers) {
        Ok(replacement) => Some(replacement),
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot create a new producer yet"
            );
            None
        }
    }
}

/// The `send` span of a row, when tracing is on and the row belongs to a trace.
fn send_span(message: &OutboxMessage, topic: &str) -> trace::Span {
    if !trace::enabled() {
        return trace::Span::none();
    }
    trace::send_span(
        &Carrier::of_headers(&message.headers),
        message.topic.base_name(),
        topic,
        message.event_id,
        message.key.as_deref(),
        &message.headers,
    )
}

/// The row's headers, and for an event the CloudEvents binary-mode headers derived from its
/// value ([`events_schema::cloud_events`]); a dead letter keeps only its `dlq.*` headers. With
/// a `send` span, the trace headers name it instead of the span that produced the row.
fn owned_headers(message: &OutboxMessage, span: &trace::Span) -> OwnedHeaders {
    let mut owned = OwnedHeaders::new();
    let mut sent = std::borrow::Cow::Borrowed(&message.headers);
    if span.is_on() {
        span.inject(sent.to_mut());
    }
    for (name, value) in sent.iter() {
        owned = owned.insert(Header {
            key: name,
            value: Some(value.as_str()),
        });
    }
    let cloud_events = match message.topic.writer() {
        Some(writer) if !message.topic.is_dlq() => {
            cloud_events::headers_of_payload(&message.payload, writer)
        }
        _ => None,
    };
    for (name, value) in cloud_events.unwrap_or_default() {
        owned = owned.insert(Header {
            key: name,
            value: Some(value.as_str()),
        });
    }
    owned
}
