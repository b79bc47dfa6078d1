//! The at-least-once consumer loop. For each message: begin a transaction, let the handler
//! record its effects, the inbox entry and its outgoing events in it, commit, and only then
//! store the message's offset for commit. A retryable failure rolls back and retries the same
//! message with backoff (the partition waits; nothing is skipped); a permanent failure rolls
//! back and dead-letters the message in a new transaction. Either way no message vanishes.
//!
//! The handler receives a `&mut PgConnection` inside a transaction the loop owns, so several
//! messages can later share one transaction without any handler changing.

use std::future::Future;
use std::time::Duration;

use events_schema::Topic;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use sqlx::{PgConnection, PgPool};

use crate::dead_letter;
use crate::kafka::{GroupMembership, MAX_MESSAGE_BYTES};
use crate::relay::RelayWaker;
use crate::retry::Backoff;

/// A consumed Kafka message, owned.
#[derive(Debug, Clone)]
pub struct Consumed {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
}

impl Consumed {
    pub fn from_message(message: &BorrowedMessage<'_>) -> Self {
        Consumed {
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            payload: message.payload().unwrap_or_default().to_vec(),
        }
    }
}

/// What a handler did with a message (for logs and tests; the effects are in its transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The message changed state and/or caused events.
    Processed,
    /// The message needs nothing from this service, or was processed before.
    Ignored,
    /// The handler wrote the message to the DLQ itself, with this reason.
    DeadLettered(String),
}

/// Why a handler could not process a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying: the database or a dependency is unavailable. The message is retried.
    #[error("retryable: {0:#}")]
    Retryable(anyhow::Error),
    /// Will fail again however often it is retried. The message goes to the DLQ.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<sqlx::Error> for HandleError {
    /// Integrity and data errors (SQLSTATE classes 22 and 23) are permanent: retrying the same
    /// message cannot succeed. Everything else (connection loss, timeouts) is retryable.
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error {
            if let Some(code) = db.code() {
                if code.starts_with("22") || code.starts_with("23") {
                    return HandleError::Permanent(format!("database rejected the change: {db}"));
                }
            }
        }
        HandleError::Retryable(anyhow::Error::new(error))
    }
}

/// A service's reaction to the messages of the topics it subscribes to.
pub trait Handler: Send + Sync + 'static {
    /// Processes one message inside the caller's transaction. Must write all of its effects
    /// through `conn`; external calls it makes must be idempotent (they may be repeated).
    fn handle<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        message: &'a Consumed,
    ) -> impl Future<Output = Result<Disposition, HandleError>> + Send + 'a;
}

/// Where the loop sends what it cannot process.
#[derive(Debug, Clone)]
pub struct DeadLetterTarget {
    pub topic: Topic,
    pub service: String,
}

/// Runs until `shutdown` completes: consumes, processes, stores offsets. At shutdown the
/// stored offsets are committed.
pub async fn run_consumer<H: Handler>(
    consumer: StreamConsumer<GroupMembership>,
    pool: PgPool,
    handler: H,
    dead_letters: DeadLetterTarget,
    waker: RelayWaker,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let receive_backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut receive_failures = 0;
    loop {
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
                tracing::warn!(%error, "Kafka receive failed");
                receive_backoff.sleep(receive_failures).await;
                continue;
            }
        };
        let consumed = Consumed::from_message(&message);
        let done = tokio::select! {
            _ = &mut shutdown => false,
            () = process(&pool, &handler, &dead_letters, &consumed) => true,
        };
        if !done {
            break;
        }
        waker.wake();
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

/// Processes `message` until its outcome is committed: retries retryable failures forever with
/// capped backoff, dead-letters permanent ones.
async fn process<H: Handler>(
    pool: &PgPool,
    handler: &H,
    dead_letters: &DeadLetterTarget,
    message: &Consumed,
) {
    let backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = match unprocessable(message) {
            Some(reason) => dead_letter_once(pool, message, dead_letters, reason).await,
            None => match handle_once(pool, handler, message).await {
                Err(HandleError::Permanent(reason)) => {
                    dead_letter_once(pool, message, dead_letters, &reason).await
                }
                other => other.map(|_| ()),
            },
        };
        match outcome {
            Ok(()) => return,
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

/// Why a message cannot reach a handler at all, if it cannot.
fn unprocessable(message: &Consumed) -> Option<&'static str> {
    if message.payload.is_empty() {
        Some("empty message")
    } else if message.payload.len() > MAX_MESSAGE_BYTES {
        Some("oversized message")
    } else {
        None
    }
}

async fn handle_once<H: Handler>(
    pool: &PgPool,
    handler: &H,
    message: &Consumed,
) -> Result<Disposition, HandleError> {
    let mut tx = pool.begin().await?;
    let disposition = handler.handle(&mut tx, message).await?;
    tx.commit().await?;
    if let Disposition::Processed = disposition {
        tracing::debug!(topic = %message.topic, offset = message.offset, key = ?message.key, "processed");
    }
    Ok(disposition)
}

async fn dead_letter_once(
    pool: &PgPool,
    message: &Consumed,
    target: &DeadLetterTarget,
    reason: &str,
) -> Result<(), HandleError> {
    let mut tx = pool.begin().await?;
    dead_letter::enqueue(&mut tx, message, target.topic, &target.service, reason).await?;
    tx.commit().await?;
    Ok(())
}
