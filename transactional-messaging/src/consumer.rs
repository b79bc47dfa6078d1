//! The at-least-once consumer loop, and everything each message goes through before a
//! service's handler sees it — so a handler cannot forget any of it:
//!
//! 1. what cannot be processed at all goes to the service's DLQ: an empty or oversized
//!    message, one that is not a strict SPEC §3 event, one whose Kafka key is not its
//!    `fare_id` (events are keyed by `fare_id`, SPEC §2);
//! 2. an event type the service does not react to (SPEC §4, [`choreography::reacts`]) is
//!    ignored without opening a transaction;
//! 3. otherwise, in one transaction: the inbox records the event — a redelivery is a no-op, a
//!    reused `event_id` is dead-lettered as a conflicting duplicate — and the handler records
//!    its effects and outgoing events; commit; only then is the offset stored for commit.
//!
//! Topics whose messages are not strict events (`fare-requests`, typed by hand) are given to
//! the handler as they are ([`Handler::on_raw`]); it does its own inbox check there.
//!
//! A retryable failure rolls back and retries the same message with backoff (the partition
//! waits; nothing is skipped); a permanent failure rolls back and dead-letters the message in a
//! new transaction. Either way no message vanishes.

use std::future::Future;
use std::time::Duration;

use events_schema::choreography::{self, Service};
use events_schema::{Event, Topic, TopicNames};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use sqlx::{PgConnection, PgPool};

use crate::commit_signal::CommitSignal;
use crate::dead_letter;
use crate::inbox::{self, Delivery, Incoming};
use crate::kafka::{GroupMembership, MAX_MESSAGE_BYTES};
use crate::readiness::Readiness;
use crate::retry::Backoff;

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
}

impl Consumed {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Self {
        Consumed {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
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

/// Why a handler could not process a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying: the database or a dependency is unavailable, or a concurrent
    /// transaction got there first. The message is retried.
    #[error("retryable: {0:#}")]
    Retryable(anyhow::Error),
    /// Will fail again however often it is retried. The message goes to the DLQ.
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

/// A service's reactions. Both run inside a transaction the loop owns and commits; they must
/// write all their effects through `conn`, and external calls they make must be idempotent
/// (they may be repeated).
pub trait Handler: Send + Sync + 'static {
    /// A strict event of a type the service reacts to, delivered for the first time (the loop
    /// recorded it in the inbox in this transaction).
    fn on_event<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        message: &'a Consumed,
        event: &'a Event,
    ) -> impl Future<Output = Result<Disposition, HandleError>> + Send + 'a;

    /// A message of one of [`Consuming::raw_topics`], as received (checked only for being
    /// empty). The handler reads it and does its own inbox check.
    fn on_raw<'a>(
        &'a self,
        _conn: &'a mut PgConnection,
        message: &'a Consumed,
    ) -> impl Future<Output = Result<Disposition, HandleError>> + Send + 'a {
        async move {
            Err(HandleError::Permanent(format!(
                "this service reads no raw messages from {}",
                message.topic
            )))
        }
    }
}

/// What the loop needs to know of its service.
#[derive(Debug, Clone)]
pub struct Consuming {
    pub service: Service,
    pub names: TopicNames,
    /// Topics whose messages go to [`Handler::on_raw`] as received.
    pub raw_topics: Vec<Topic>,
    /// Where what cannot be processed goes.
    pub dead_letters: Topic,
}

/// Runs until `shutdown` completes: consumes, processes, stores offsets. At shutdown the
/// stored offsets are committed.
pub async fn run_consumer<H: Handler>(
    consumer: StreamConsumer<GroupMembership>,
    pool: PgPool,
    handler: H,
    consuming: Consuming,
    committed: CommitSignal,
    readiness: Readiness,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let receive_backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut receive_failures = 0;
    loop {
        readiness.polling();
        let received = tokio::select! {
            _ = &mut shutdown => break,
            received = consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => {
                receive_failures = 0;
                message
            }
            Err(error) => {
                receive_failures += 1;
                if let Some(why) = out_of_group(&error) {
                    readiness.revoked(why);
                }
                tracing::warn!(%error, "Kafka receive failed");
                receive_backoff.sleep(receive_failures).await;
                continue;
            }
        };
        readiness.busy();
        let consumed = Consumed::from_message(&message);
        let disposition = tokio::select! {
            _ = &mut shutdown => break,
            disposition = process(&pool, &handler, &consuming, &consumed) => disposition,
        };
        if disposition == Disposition::Processed {
            readiness.processed();
        }
        committed.notify();
        if let Err(error) = consumer.store_offset_from_message(&message) {
            // The effects are committed; a lost offset only means a redelivery, which the
            // inbox turns into a no-op.
            tracing::warn!(%error, topic = %consumed.topic, offset = consumed.offset, "cannot store offset");
        }
    }
    // Asynchronous, so an unreachable broker cannot hold the shutdown; closing the consumer
    // commits what is stored too. An offset that is not committed means a redelivery, which
    // the inbox turns into a no-op.
    if let Err(error) = consumer.commit_consumer_state(CommitMode::Async) {
        tracing::warn!(%error, "final offset commit failed; uncommitted messages will be redelivered");
    }
    Ok(())
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

/// What the loop does with a message, decided before any transaction.
enum Plan {
    DeadLetter(String),
    Ignore,
    Raw,
    Event(Box<Event>),
}

fn plan(consuming: &Consuming, message: &Consumed) -> Plan {
    if message.payload.is_empty() {
        return Plan::DeadLetter("empty message".to_owned());
    }
    let topic = consuming.names.topic_of(&message.topic);
    if topic.is_some_and(|topic| consuming.raw_topics.contains(&topic)) {
        return Plan::Raw;
    }
    if message.payload.len() > MAX_MESSAGE_BYTES {
        return Plan::DeadLetter(format!(
            "oversized message: {} bytes, more than {MAX_MESSAGE_BYTES}",
            message.payload.len()
        ));
    }
    let event = match Event::decode(&message.payload) {
        Ok(event) => event,
        Err(error) => return Plan::DeadLetter(error.reason()),
    };
    if message.key.as_deref() != Some(event.fare_id.as_str()) {
        return Plan::DeadLetter(format!(
            "the Kafka key {} is not the event's fare_id {}: events are keyed by fare_id",
            message
                .key
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), |k| format!("{k:?}")),
            event.fare_id
        ));
    }
    if !choreography::reacts(consuming.service, event.event_type()) {
        return Plan::Ignore;
    }
    Plan::Event(Box::new(event))
}

/// Processes `message` until its outcome is committed: retries retryable failures forever with
/// capped backoff, dead-letters permanent ones.
async fn process<H: Handler>(
    pool: &PgPool,
    handler: &H,
    consuming: &Consuming,
    message: &Consumed,
) -> Disposition {
    let backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = match plan(consuming, message) {
            Plan::DeadLetter(reason) => dead_letter_once(pool, consuming, message, &reason).await,
            Plan::Ignore => Ok(Disposition::Ignored),
            Plan::Raw => {
                async {
                    let mut tx = pool.begin().await?;
                    let disposition = handler.on_raw(&mut tx, message).await?;
                    tx.commit().await?;
                    Ok(disposition)
                }
                .await
            }
            Plan::Event(event) => {
                async {
                    let mut tx = pool.begin().await?;
                    let disposition =
                        on_event(&mut tx, handler, consuming, message, &event).await?;
                    tx.commit().await?;
                    Ok(disposition)
                }
                .await
            }
        };
        let outcome = match outcome {
            Err(HandleError::Permanent(reason)) => {
                dead_letter_once(pool, consuming, message, &reason).await
            }
            other => other,
        };
        match outcome {
            Ok(disposition) => return disposition,
            Err(error) => {
                tracing::warn!(
                    topic = %message.topic,
                    partition = message.partition,
                    offset = message.offset,
                    attempt,
                    error = %error,
                    "message processing failed, retrying"
                );
                backoff.sleep(attempt).await;
            }
        }
    }
}

/// The inbox check, then the handler: in the caller's transaction.
async fn on_event<H: Handler>(
    tx: &mut PgConnection,
    handler: &H,
    consuming: &Consuming,
    message: &Consumed,
    event: &Event,
) -> Result<Disposition, HandleError> {
    let incoming = Incoming {
        event_id: event.event_id,
        event_type: event.event_type(),
        fare_id: &event.fare_id,
        fingerprint: event.fingerprint(),
    };
    match inbox::record(&mut *tx, incoming, message).await? {
        Delivery::First => handler.on_event(tx, message, event).await,
        Delivery::Redelivery => Ok(Disposition::Ignored),
        Delivery::Conflict(reason) => {
            dead_letter::enqueue(
                tx,
                message,
                consuming.dead_letters,
                consuming.service.name(),
                &reason,
            )
            .await?;
            Ok(Disposition::DeadLettered(reason))
        }
    }
}

async fn dead_letter_once(
    pool: &PgPool,
    consuming: &Consuming,
    message: &Consumed,
    reason: &str,
) -> Result<Disposition, HandleError> {
    let mut tx = pool.begin().await?;
    dead_letter::enqueue(
        &mut tx,
        message,
        consuming.dead_letters,
        consuming.service.name(),
        reason,
    )
    .await?;
    tx.commit().await?;
    Ok(Disposition::DeadLettered(reason.to_owned()))
}
