//! The inbox: the `event_id` of every event a service acted on, written in the same transaction
//! as the action. A redelivered event finds its id there and is a no-op (SPEC §6.2, §6.5).
//!
//! Table (in each service's schema): `inbox(event_id uuid primary key, event_type text,
//! fare_id text, source_topic text, source_partition int, source_offset bigint, processed_at)`.

use events_schema::{EventId, EventType, FareId};
use sqlx::PgConnection;

use crate::consumer::Consumed;

/// Records that the event `event_id` (read from `source`) is being processed in the caller's
/// transaction. Returns `false` when it was processed before: the caller must then do nothing.
/// Concurrent deliveries of the same event serialise on the primary key.
pub async fn record_first_delivery(
    conn: &mut PgConnection,
    event_id: EventId,
    event_type: EventType,
    fare_id: &FareId,
    source: &Consumed,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO inbox (event_id, event_type, fare_id, source_topic, source_partition, source_offset) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
        event_id.as_uuid(),
        event_type.as_str(),
        fare_id.as_str(),
        source.topic,
        source.partition,
        source.offset,
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
