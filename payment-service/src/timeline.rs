//! One fare as the payment-service shows it: its row, the events it consumed for it (inbox),
//! the events it emitted and the dead letters it wrote under its id (outbox), the gateway
//! operations and the compensation attempts. Each list holds at most `limit` items, the oldest, with how many there are: a
//! flood of messages under one fare id costs an answer no more than `limit` rows a list.

use std::time::Duration;

use events_schema::FareId;
use sqlx::PgPool;
use time::OffsetDateTime;
use transactional_messaging::outbox::{self, DeadLetterView, EmittedEvent};
use transactional_messaging::read_api::{Bounded, Limit};
use uuid::Uuid;

use crate::fare::{self, Fare};
use crate::stuck::{self, StuckFare};

#[derive(Debug, serde::Serialize)]
pub struct FareView {
    pub service: &'static str,
    pub fare: Fare,
    /// Set when the fare is stuck (see [`crate::stuck`]).
    pub stuck: Option<StuckFare>,
    pub consumed: Bounded<ConsumedEvent>,
    pub emitted: Bounded<EmittedEvent>,
    pub dead_letters: Bounded<DeadLetterView>,
    pub gateway_operations: Bounded<GatewayOperation>,
    pub compensation_attempts: Bounded<CompensationAttempt>,
}

/// One attempt of a release or refund, and what came of it.
#[derive(Debug, serde::Serialize)]
pub struct CompensationAttempt {
    pub operation: String,
    pub attempt: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub outcome: String,
    pub detail: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct ConsumedEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub processed_at: OffsetDateTime,
}

#[derive(Debug, serde::Serialize)]
pub struct GatewayOperation {
    pub operation: String,
    pub approved: bool,
    pub reference: Option<String>,
    pub decline_reason: Option<String>,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The fare's view, or `None` for a fare this service never registered.
pub async fn of_fare(
    pool: &PgPool,
    fare_id: &FareId,
    limit: Limit,
    stuck_after: Duration,
) -> anyhow::Result<Option<FareView>> {
    let mut conn = pool.acquire().await?;
    let Some(fare) = fare::find(&mut conn, fare_id).await? else {
        return Ok(None);
    };
    let stuck = stuck::of_fare(&mut conn, stuck_after, fare_id.as_str()).await?;
    let consumed_total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM inbox WHERE fare_id = $1"#,
        fare_id.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    let consumed = sqlx::query_as!(
        ConsumedEvent,
        "SELECT event_id, event_type, source_topic, source_partition, source_offset, processed_at \
         FROM inbox WHERE fare_id = $1 ORDER BY processed_at, event_id LIMIT $2",
        fare_id.as_str(),
        limit.as_i64(),
    )
    .fetch_all(&mut *conn)
    .await?;
    let emitted = outbox::emitted_for_key(&mut conn, fare_id.as_str(), limit).await?;
    let dead_letters = outbox::dead_letters_for_key(&mut conn, fare_id.as_str(), limit).await?;
    let operations_total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM gateway_operations WHERE fare_id = $1"#,
        fare_id.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    let gateway_operations = sqlx::query_as!(
        GatewayOperation,
        "SELECT operation, approved, reference, decline_reason, amount_minor, currency, created_at \
         FROM gateway_operations WHERE fare_id = $1 ORDER BY created_at, idempotency_key LIMIT $2",
        fare_id.as_str(),
        limit.as_i64(),
    )
    .fetch_all(&mut *conn)
    .await?;
    let attempts_total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM compensation_attempts WHERE fare_id = $1"#,
        fare_id.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    let compensation_attempts = sqlx::query_as!(
        CompensationAttempt,
        "SELECT operation, attempt, started_at, finished_at, outcome, detail \
         FROM compensation_attempts WHERE fare_id = $1 ORDER BY operation, attempt LIMIT $2",
        fare_id.as_str(),
        limit.as_i64(),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(FareView {
        service: crate::SERVICE_NAME,
        fare,
        stuck,
        consumed: Bounded::new(consumed, consumed_total),
        emitted,
        dead_letters,
        gateway_operations: Bounded::new(gateway_operations, operations_total),
        compensation_attempts: Bounded::new(compensation_attempts, attempts_total),
    }))
}
