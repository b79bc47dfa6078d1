//! The inbox: the `event_id` of every event a service acted on, with the fare it belongs to and
//! what it said (its fingerprint), written in the same transaction as the action.
//!
//! An `event_id` names one event (SPEC §3): a delivery whose id is in the inbox is a
//! redelivery — a no-op — only when it is for the same fare with the same content. The same id
//! for another fare or other content is a conflicting duplicate, which the caller dead-letters
//! with the reason: nothing is acknowledged and dropped in silence.
//!
//! Table (in each service's schema): `inbox(event_id uuid primary key, event_type text,
//! fare_id text, source_topic text, source_partition int, source_offset bigint, processed_at,
//! fingerprint uuid)`.

use events_schema::{EventId, EventType, FareId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::consumer::Consumed;

/// An event about to be acted on.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    pub event_id: EventId,
    pub event_type: EventType,
    pub fare_id: &'a FareId,
    /// What the event says (see `Event::fingerprint`; for a request, its fingerprint).
    pub fingerprint: Uuid,
}

/// What the inbox knew of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Not seen before: it is recorded now, act on it.
    First,
    /// The same event again (same id, fare and content): do nothing.
    Redelivery,
    /// The id names another event: dead-letter this one with the reason.
    Conflict(String),
}

/// Records `incoming` (read from `source`) in the caller's transaction, unless its id is
/// known; then tells a redelivery from a conflicting duplicate. Concurrent deliveries of the
/// same id serialise on the primary key.
pub async fn record(
    conn: &mut PgConnection,
    incoming: Incoming<'_>,
    source: &Consumed,
) -> sqlx::Result<Delivery> {
    let inserted = sqlx::query!(
        "INSERT INTO inbox (event_id, event_type, fare_id, fingerprint, source_topic, \
         source_partition, source_offset) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (event_id) DO NOTHING",
        incoming.event_id.as_uuid(),
        incoming.event_type.as_str(),
        incoming.fare_id.as_str(),
        incoming.fingerprint,
        source.topic,
        source.partition,
        source.offset,
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Delivery::First);
    }
    let known = sqlx::query!(
        "SELECT event_type, fare_id, fingerprint FROM inbox WHERE event_id = $1",
        incoming.event_id.as_uuid(),
    )
    .fetch_one(conn)
    .await?;
    let same_content = known.event_type == incoming.event_type.as_str()
        // Rows written before fingerprints were kept can only be compared by type and fare.
        && known.fingerprint.is_none_or(|f| f == incoming.fingerprint);
    Ok(if known.fare_id != incoming.fare_id.as_str() {
        Delivery::Conflict(format!(
            "conflicting duplicate: event_id {} already names a {} of fare {}, not of fare {}",
            incoming.event_id, known.event_type, known.fare_id, incoming.fare_id
        ))
    } else if !same_content {
        Delivery::Conflict(format!(
            "conflicting duplicate: event_id {} already names a {} of this fare with other content",
            incoming.event_id, known.event_type
        ))
    } else {
        Delivery::Redelivery
    })
}
