//! The outbox relay: publishes unpublished outbox rows in `id` order and marks them published
//! only after the broker acknowledged every one of them. A crash between the acknowledgement
//! and the mark republishes the same bytes with the same `event_id`, which consumers ignore.
//!
//! Several instances of a service each run a relay; a transaction-scoped advisory lock lets one
//! of them publish at a time, so rows reach the topics in `id` order, and so in order per key.
//! Rows are also claimed with `FOR UPDATE SKIP LOCKED`.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use events_schema::{Topic, TopicNames};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sqlx::PgPool;

use crate::commit_signal::CommitWatch;
use crate::kafka;
use crate::readiness::Readiness;
use crate::retry::Backoff;

/// How many rows one relay transaction publishes at most.
pub const BATCH_SIZE: i64 = 500;
/// How long the relay sleeps when nobody wakes it (a safety net for rows written by another
/// process, e.g. after a restart).
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How long the relay tries to publish what is left at shutdown.
const FINAL_PUBLISH: Duration = Duration::from_secs(5);

/// Publishes the outbox until `shutdown` completes, then publishes what is left once more and
/// flushes the producer.
pub async fn run_relay(
    pool: PgPool,
    mut producer: FutureProducer,
    bootstrap_servers: String,
    names: TopicNames,
    mut committed: CommitWatch,
    readiness: Readiness,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tokio::pin!(shutdown);
    let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    let mut failures = 0;
    loop {
        match publish_batch(&pool, &producer, &names).await {
            Ok(published) if published as i64 == BATCH_SIZE => {
                failures = 0;
                readiness.relay_succeeded();
                continue;
            }
            Ok(_) => {
                failures = 0;
                readiness.relay_succeeded();
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = committed.committed() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                }
            }
            Err(error) => {
                failures += 1;
                readiness.relay_failed(&format!("{error:#}"));
                if let Some(replacement) = replace_if_fatal(&producer, &bootstrap_servers) {
                    producer = replacement;
                }
                tracing::warn!(
                    error = format!("{error:#}"),
                    failures,
                    "outbox relay failed, retrying"
                );
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = backoff.sleep(failures) => {}
                }
            }
        }
    }
    match tokio::time::timeout(FINAL_PUBLISH, publish_batch(&pool, &producer, &names)).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(
            error = format!("{error:#}"),
            "final outbox publish failed; rows stay for the next start"
        ),
        Err(_) => tracing::warn!("final outbox publish timed out; rows stay for the next start"),
    }
    // rdkafka's Drop purges queued messages: flush what is still in flight. A message lost
    // here is safe: its outbox row is not marked published.
    tokio::task::spawn_blocking(move || producer.flush(FINAL_PUBLISH))
        .await
        .context("flush task panicked")?
        .context("flushing the producer at shutdown")?;
    Ok(())
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

/// Publishes up to [`BATCH_SIZE`] unpublished rows; returns how many were published.
pub async fn publish_batch(
    pool: &PgPool,
    producer: &FutureProducer,
    names: &TopicNames,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await.context("outbox: begin")?;
    // One relay per schema publishes at a time, whatever the number of service instances, so
    // that rows keep their order per key on the topics.
    let relay_lock = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtext('outbox-relay:' || current_schema())) AS "taken!""#
    )
    .fetch_one(&mut *tx)
    .await
    .context("outbox: relay lock")?;
    if !relay_lock {
        return Ok(0);
    }
    let rows = sqlx::query!(
        "SELECT id, topic, message_key, payload, headers FROM outbox \
         WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
        BATCH_SIZE
    )
    .fetch_all(&mut *tx)
    .await
    .context("outbox: select unpublished rows")?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut deliveries = Vec::with_capacity(rows.len());
    for row in &rows {
        let (id, topic) = (row.id, &row.topic);
        let topic_name = Topic::ALL
            .into_iter()
            .find(|known| known.base_name() == topic)
            .map(|known| names.name(known))
            .with_context(|| format!("outbox row {id} names an unknown topic {topic}"))?;
        let headers = owned_headers(&row.headers);
        let mut record = FutureRecord::<str, [u8]>::to(&topic_name)
            .payload(row.payload.as_slice())
            .headers(headers);
        if let Some(key) = &row.message_key {
            record = record.key(key.as_str());
        }
        let delivery = producer
            .send_result(record)
            .map_err(|(error, _)| error)
            .with_context(|| format!("outbox: cannot enqueue row {id} to {topic_name}"))?;
        deliveries.push(delivery);
    }
    for delivery in deliveries {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(error).context("outbox: broker rejected a message"),
            Err(_) => anyhow::bail!("outbox: the producer dropped a message"),
        }
    }
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    sqlx::query!(
        "UPDATE outbox SET published_at = now() WHERE id = ANY($1)",
        &ids
    )
    .execute(&mut *tx)
    .await
    .context("outbox: mark published")?;
    tx.commit().await.context("outbox: commit")?;
    Ok(rows.len())
}

fn owned_headers(headers: &serde_json::Value) -> OwnedHeaders {
    let mut owned = OwnedHeaders::new();
    if let Some(map) = headers.as_object() {
        for (name, value) in map {
            owned = owned.insert(Header {
                key: name,
                value: value.as_str(),
            });
        }
    }
    owned
}
