//! The at-least-once consumer: every fare's messages in order, different fares concurrently,
//! several messages per database transaction, and external calls outside any transaction.
//!
//! ```text
//!  Kafka ──▶ dispatcher ──▶ per-fare queues ──▶ ready ──▶ batch workers ──(commit)──▶ relay
//!             │  plan (decode, key check,            ▲            │
//!             │  ignore what the service             │            ├─ a step that needs a call:
//!             │  does not react to)                  │            │  call task ─(answer)─┘
//!             ◀──────────── completions ─────────────┴────────────┘
//!             store offsets: up to the lowest message still in flight, per partition
//! ```
//!
//! - The **dispatcher** (one task) polls Kafka, decides what each message is before any
//!   transaction ([`plan`]: dead letter, ignored, a request read as received, an event), and
//!   puts it in its fare's queue. A fare has at most one message in flight: the next one waits
//!   in the queue, so each fare's messages are processed in the order they arrived, while other
//!   fares — on the same partition too — go ahead. Past half [`Consuming::max_in_flight`]
//!   messages in flight, the dispatcher pauses the partitions of new sagas (`fare-requests`),
//!   so that sagas under way finish first; past the limit, all of them (and it keeps polling,
//!   so it stays in its group).
//! - **Batch workers** take up to [`Consuming::max_batch`] ready messages (of distinct fares)
//!   and process them in **one transaction**: the inbox check (a redelivery does nothing, a
//!   reused `event_id` is dead-lettered), the handler's effects, the inbox records, the dead
//!   letters and the outgoing events (one statement for the inbox and the outbox, see
//!   [`Messages`]). After the commit the new outbox rows go straight to the relay.
//! - A step that needs an **external call** (a gateway) says so ([`Progress::Call`]); the call
//!   is made by a task of its own, outside any transaction, and its answer comes back as a
//!   ready message of a later batch ([`Input::Answer`]). A slow call holds up only its fare.
//! - When a message is done, the dispatcher stores its partition's offset up to the lowest
//!   message still in flight: an offset is stored only after the transaction that recorded
//!   the message's effects committed.
//!
//! A retryable failure rolls the batch back and retries it with backoff; a permanent one
//! splits the batch and processes its messages one by one, so that only the message that
//! fails goes to the DLQ. Nothing is skipped, nothing vanishes.

mod batch;
mod fare_queues;
mod offsets;
mod plan;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use events_schema::choreography::Service;
use events_schema::{Event, EventId, EventType, Topic, TopicNames};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::TopicPartitionList;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, Mutex};
use uuid::Uuid;

use crate::commit_signal::CommitSignal;
use crate::inbox::{InboxRecord, Known};
use crate::kafka::{self, GroupMembership};
use crate::metrics::Metrics;
use crate::outbox::OutboxMessage;
use crate::readiness::Readiness;
use crate::relay::Handoff;
use crate::telemetry::Throttle;
use crate::trace::{self, Carrier};

use self::batch::{run_worker, Completion, Worker};
use self::fare_queues::FareQueues;
use self::offsets::Offsets;
pub use self::plan::plan;
use self::plan::Plan;

/// A consumed Kafka message, owned.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The broker timestamp, in milliseconds since the epoch, when it has one.
    pub timestamp: Option<i64>,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    /// The `event_type` header, when the message has one (the relay writes it on every event).
    pub event_type: Option<String>,
    /// Its trace context (read only when tracing is on): as received, the headers it carried;
    /// once dispatched, its `process` span's, which what it causes continues (its events, the
    /// inbox record that a later compensation reads).
    pub trace: Carrier,
}

impl Consumed {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Self {
        let event_type = kafka::header_text(message, "event_type");
        Consumed {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
            event_type,
            trace: Carrier::of_kafka(message.headers()),
        }
    }
}

/// What became of a message (for logs, `/health` and tests; the effects are in the database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The message changed state and/or caused events.
    Processed,
    /// The message needs nothing from this service, or was processed before.
    Ignored,
    /// The message went to the DLQ, with this reason.
    DeadLettered(String),
}

/// Why a batch could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying: the database or a dependency is unavailable, or a concurrent
    /// transaction got there first. The batch is retried.
    #[error("retryable: {0:#}")]
    Retryable(anyhow::Error),
    /// Will fail again however often it is retried: the batch is split, and the message that
    /// fails on its own goes to the DLQ.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandleError {
    /// A conflict with a concurrent transaction (unique violation, serialization failure,
    /// deadlock) is retryable: the retry reads what the other transaction committed. Other
    /// integrity and data errors (SQLSTATE classes 22 and 23) are permanent: retrying the same
    /// message cannot succeed. Everything else (connection loss, timeouts) is retryable.
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if let Some(code) = db.code() {
                let concurrent = matches!(code.as_ref(), "23505" | "40001" | "40P01");
                if !concurrent && (code.starts_with("22") || code.starts_with("23")) {
                    return HandleError::Permanent(format!("database rejected the change: {db}"));
                }
            }
        }
        HandleError::Retryable(anyhow::Error::new(error))
    }
}

/// One message of a batch, as the handler sees it.
#[derive(Debug)]
pub enum Input<'a, C, A> {
    /// A message of one of [`Consuming::raw_topics`], as received: the handler reads it and
    /// does its own inbox check.
    Raw(&'a Consumed),
    /// A strict event of a type the service reacts to, delivered for the first time.
    Event(&'a Consumed, &'a Event),
    /// The answer to the call the handler asked for on this message.
    Answer {
        message: &'a Consumed,
        /// The event, when the message is one (not for a raw message).
        event: Option<&'a Event>,
        call: &'a C,
        answer: &'a A,
    },
}

impl<C, A> Input<'_, C, A> {
    pub fn message(&self) -> &Consumed {
        match self {
            Input::Raw(message) | Input::Event(message, _) => message,
            Input::Answer { message, .. } => message,
        }
    }
}

/// What the handler made of one message.
#[derive(Debug)]
pub enum Progress<C> {
    /// Done: its effects are in the batch's transaction.
    Done(Disposition),
    /// It needs `C` made outside any transaction first; the answer comes back later.
    Call(C),
}

/// A service's reactions, by batch. Everything runs inside a transaction the loop owns and
/// commits: the handler writes its state through `conn` and adds its inbox records and outgoing
/// events to [`Messages`]; the messages of a batch belong to distinct fares.
pub trait Handler: Send + Sync + 'static {
    /// An external call a step needs (a gateway call).
    type Call: Send + Sync + 'static;
    /// Its answer.
    type Answer: Send + Sync + 'static;

    /// One [`Progress`] per input, in order.
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        batch: &'a [Input<'a, Self::Call, Self::Answer>],
        messages: &'a mut Messages,
    ) -> impl Future<Output = Result<Vec<Progress<Self::Call>>, HandleError>> + Send + 'a;

    /// Makes `call`, outside any transaction; must keep trying until it has an answer (only
    /// this message's fare waits).
    fn call<'a>(&'a self, call: &'a Self::Call) -> impl Future<Output = Self::Answer> + Send + 'a;
}

/// The inbox and outbox side of a batch, shared by the loop and the handler, so that the batch
/// reads and writes them in one statement each: what the inbox knows of the batch's raw
/// messages (looked up with its events'), and the inbox records and outbox messages the
/// handler adds (written with the loop's own).
#[derive(Debug, Default)]
pub struct Messages {
    /// The inbox records under the event ids of the batch's raw messages, where there are.
    pub known_raw: HashMap<Uuid, Known>,
    /// Requests acted on (the loop adds the events).
    pub inbox: Vec<InboxRecord>,
    /// Events and dead letters to publish (the loop adds its own dead letters).
    pub outbox: Vec<OutboxMessage>,
}

/// A [`Handler::Call`] for a service that makes none.
#[derive(Debug)]
pub enum NoCall {}

/// What the loop needs to know of its service, and how far it may go.
#[derive(Debug, Clone)]
pub struct Consuming {
    pub service: Service,
    /// The consumer group (the service's name and the topic suffix), for the traces.
    pub group: String,
    pub names: TopicNames,
    /// Topics whose messages go to the handler as received ([`Input::Raw`]).
    pub raw_topics: Vec<Topic>,
    /// Where what cannot be processed goes.
    pub dead_letters: Topic,
    /// Messages in flight (received, not done) before the partitions are paused.
    pub max_in_flight: usize,
    /// Messages per transaction at most.
    pub max_batch: usize,
    /// Batch transactions under way at once.
    pub workers: usize,
}

/// Whom the consumer tells what it did: the relay (the new outbox rows), the service's
/// background tasks (a batch committed), `/health`, `/metrics`.
#[derive(Debug, Clone)]
pub struct Links {
    pub relay: Handoff,
    pub committed: CommitSignal,
    pub readiness: Readiness,
    pub metrics: Metrics,
}

/// How long the consumer waits at shutdown for the messages in flight to be done.
const DRAIN: Duration = Duration::from_secs(10);

/// Runs until `shutdown` completes: consumes, processes, stores offsets. At shutdown it lets
/// the messages in flight finish (for a while), then commits the stored offsets.
pub async fn run_consumer<H: Handler>(
    consumer: StreamConsumer<GroupMembership>,
    pool: PgPool,
    handler: H,
    consuming: Consuming,
    links: Links,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Links {
        relay,
        committed,
        readiness,
        metrics,
    } = links;
    let handler = Arc::new(handler);
    let (ready, ready_queue) = mpsc::unbounded_channel();
    let (done, mut completions) = mpsc::unbounded_channel();
    let ready_queue = Arc::new(Mutex::new(ready_queue));
    let worker = Worker {
        pool,
        handler,
        consuming: consuming.clone(),
        relay,
        committed,
        readiness: readiness.clone(),
        metrics: metrics.clone(),
        ready: ready.clone(),
        done,
    };
    let workers: Vec<_> = (0..consuming.workers.max(1))
        .map(|_| tokio::spawn(run_worker(worker.clone(), ready_queue.clone())))
        .collect();
    drop(worker);

    let mut dispatcher = Dispatcher {
        consumer: &consumer,
        consuming: &consuming,
        ready,
        queues: FareQueues::default(),
        offsets: Offsets::default(),
        in_flight: 0,
        paused: Pause::None,
        readiness: &readiness,
        metrics: &metrics,
    };
    tokio::pin!(shutdown);
    let mut receive_errors = Throttle::default();
    loop {
        readiness.polling();
        // Not biased: however many completions come in, Kafka is polled too (the consumer
        // stays in its group, its rebalances are served).
        tokio::select! {
            _ = &mut shutdown => break,
            Some(completion) = completions.recv() => dispatcher.complete(completion),
            received = consumer.recv() => match received {
                Ok(message) => {
                    readiness.busy();
                    dispatcher.dispatch(Consumed::from_message(&message));
                }
                Err(error) => {
                    // librdkafka reports errors as events and recovers by itself (reconnects,
                    // rejoins the group): no pause here, which would only delay serving the
                    // rebalance that follows a broker outage, one pause per error queued.
                    if let Some(why) = out_of_group(&error) {
                        readiness.revoked(why);
                    }
                    if let Some(also) = receive_errors.allow() {
                        tracing::warn!(%error, also, "Kafka receive failed");
                    }
                }
            },
        }
    }

    // Let what is in flight finish, for a while; what does not is redelivered after a restart.
    let drained = tokio::time::timeout(DRAIN, async {
        while dispatcher.in_flight > 0 {
            match completions.recv().await {
                Some(completion) => dispatcher.complete(completion),
                None => break,
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            in_flight = dispatcher.in_flight,
            "messages still in flight at shutdown; they are redelivered after the restart"
        );
    }
    for worker in workers {
        worker.abort();
    }
    // Asynchronous, so an unreachable broker cannot hold the shutdown; closing the consumer
    // commits what is stored too. An offset that is not committed means a redelivery, which
    // the inbox turns into a no-op.
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Async) {
        tracing::warn!(%error, "final offset commit failed; uncommitted messages will be redelivered");
    }
    Ok(())
}

/// The dispatcher's state: what is in flight, per fare and per partition.
struct Dispatcher<'a, C, A> {
    consumer: &'a StreamConsumer<GroupMembership>,
    consuming: &'a Consuming,
    ready: mpsc::UnboundedSender<batch::Work<C, A>>,
    queues: FareQueues<batch::Work<C, A>>,
    offsets: Offsets,
    in_flight: usize,
    paused: Pause,
    readiness: &'a Readiness,
    metrics: &'a Metrics,
}

impl<C, A> Dispatcher<'_, C, A> {
    fn dispatch(&mut self, mut message: Consumed) {
        let received = Instant::now();
        self.offsets
            .received(&message.topic, message.partition, message.offset);
        let plan = plan(self.consuming, &message);
        let kind = self
            .metrics
            .kind(&message.topic, event_type_of(&plan, &message));
        self.metrics.consumed(kind);
        let (fare, what, event_id) = match plan {
            Plan::Ignore(_) => {
                self.metrics.ignored(kind);
                self.store(&message.topic, message.partition, message.offset);
                return;
            }
            Plan::DeadLetter(reason) => {
                // No saga to order: its own key.
                let fare = format!(
                    "\0{}:{}:{}",
                    message.topic, message.partition, message.offset
                );
                (fare, batch::What::DeadLetter(reason), None)
            }
            Plan::Raw { fare, event_id } => (fare, batch::What::Raw(event_id), Some(event_id)),
            Plan::Event(event) => {
                let event_id = event.event_id;
                let fare = event.fare_id.as_str().to_owned();
                (fare, batch::What::Event(event), Some(event_id))
            }
        };
        self.in_flight += 1;
        let span = self.process_span(&message, &fare, &what, event_id);
        if span.is_on() {
            message.trace = span.carrier();
        }
        let work = batch::Work {
            message,
            fare: fare.clone(),
            what,
            kind,
            received,
            span,
        };
        if let Some(work) = self.queues.admit(fare, work) {
            let _ = self.ready.send(work);
        }
        self.pause_if_full();
    }

    /// The message's `process` span, continuing the trace it carries (nothing when tracing is
    /// off).
    fn process_span(
        &self,
        message: &Consumed,
        fare: &str,
        what: &batch::What<C, A>,
        event_id: Option<EventId>,
    ) -> trace::Span {
        if !trace::enabled() {
            return trace::Span::none();
        }
        let (fare_id, event_type) = match what {
            batch::What::Event(event) => (Some(fare), Some(event.event_type().as_str())),
            batch::What::Raw(_) => (Some(fare), Some(EventType::FareRequested.as_str())),
            _ => (None, message.event_type.as_deref()),
        };
        let topic = self.consuming.names.topic_of(&message.topic);
        trace::process_span(
            &message.trace,
            trace::Received {
                base_topic: topic.map_or(message.topic.as_str(), |t| t.base_name()),
                topic: &message.topic,
                partition: message.partition,
                offset: message.offset,
                key: message.key.as_deref(),
                group: &self.consuming.group,
                fare_id,
                event_type,
                event_id: event_id.map(|id| id.to_string()),
            },
        )
    }

    fn complete(&mut self, completion: Completion) {
        self.in_flight = self.in_flight.saturating_sub(1);
        match &completion.disposition {
            Disposition::Processed => {
                self.readiness.processed();
                self.metrics
                    .processed(completion.kind, completion.received.elapsed());
            }
            Disposition::Ignored => self.metrics.ignored(completion.kind),
            Disposition::DeadLettered(_) => self.metrics.dead_lettered(completion.kind),
        }
        if let Some(next) = self.queues.finish(&completion.fare) {
            let _ = self.ready.send(next);
        }
        self.store(&completion.topic, completion.partition, completion.offset);
        self.resume_if_room();
    }

    /// Marks the message done and stores its partition's offset as far as it may go.
    fn store(&mut self, topic: &str, partition: i32, offset: i64) {
        if let Some(next) = self.offsets.done(topic, partition, offset) {
            // librdkafka commits the stored offset + 1: the next message to read.
            if let Err(error) = self.consumer.store_offset(topic, partition, next - 1) {
                // Not assigned any more (a rebalance): the new owner gets the message again,
                // which the inbox turns into a no-op.
                tracing::debug!(%error, topic, partition, "cannot store offset");
            }
        }
    }

    /// Backpressure, in two steps. Past half the in-flight limit, the raw topics'
    /// partitions (new sagas: `fare-requests`) are paused, so that the sagas under way — whose
    /// next events wait behind them — finish first; past the limit, every partition is. Paused
    /// again after a rebalance brought new ones.
    fn pause_if_full(&mut self) {
        let max = self.consuming.max_in_flight;
        if self.in_flight >= max {
            self.pause(Pause::All);
        } else if self.in_flight >= max / 2 {
            self.pause(Pause::NewSagas);
        }
    }

    fn resume_if_room(&mut self) {
        let max = self.consuming.max_in_flight;
        match self.paused {
            Pause::All if self.in_flight <= max / 2 => self.resume(Pause::All),
            Pause::NewSagas if self.in_flight <= max / 4 => self.resume(Pause::NewSagas),
            _ => {}
        }
    }

    /// The assigned partitions `pause` applies to.
    fn partitions(&self, pause: Pause) -> Option<TopicPartitionList> {
        let assignment = self.consumer.assignment().ok()?;
        if pause == Pause::All {
            return Some(assignment);
        }
        let mut raw = TopicPartitionList::new();
        for element in assignment.elements() {
            let topic = self.consuming.names.topic_of(element.topic());
            if topic.is_some_and(|topic| self.consuming.raw_topics.contains(&topic)) {
                raw.add_partition(element.topic(), element.partition());
            }
        }
        Some(raw)
    }

    fn pause(&mut self, pause: Pause) {
        if let Some(partitions) = self.partitions(pause) {
            if self.consumer.pause(&partitions).is_ok() && self.paused < pause {
                tracing::debug!(in_flight = self.in_flight, ?pause, "partitions paused");
                self.paused = pause;
            }
        }
    }

    fn resume(&mut self, pause: Pause) {
        if let Some(partitions) = self.partitions(pause) {
            if self.consumer.resume(&partitions).is_ok() {
                self.paused = Pause::None;
                // Resuming everything resumed the new sagas too: pause them again if need be.
                self.pause_if_full();
            }
        }
    }
}

/// How much of its assignment the consumer has paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pause {
    None,
    NewSagas,
    All,
}

/// A message's event type, for its metrics: the one it was read as, else its `event_type`
/// header; `None` for a poison message.
fn event_type_of(plan: &Plan, message: &Consumed) -> Option<EventType> {
    match plan {
        Plan::Ignore(event_type) => Some(*event_type),
        Plan::Event(event) => Some(event.event_type()),
        Plan::Raw { .. } => Some(EventType::FareRequested),
        Plan::DeadLetter(_) => message.event_type.as_deref()?.parse().ok(),
    }
}

/// Why a receive error means the consumer is out of its group, if it does.
fn out_of_group(error: &KafkaError) -> Option<&'static str> {
    match error.rdkafka_error_code()? {
        RDKafkaErrorCode::PollExceeded => {
            Some("evicted: it did not poll within max.poll.interval.ms")
        }
        RDKafkaErrorCode::UnknownMemberId | RDKafkaErrorCode::FencedInstanceId => {
            Some("evicted: the group coordinator no longer knows it")
        }
        _ => None,
    }
}
