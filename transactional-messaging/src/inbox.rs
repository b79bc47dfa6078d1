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
//! fingerprint uuid, traceparent text, tracestate text)`.
//!
//! With tracing on, a record also keeps the trace context of the event's `process` span: work
//! done later on the event's account, out of band (a compensation it started), continues the
//! fare's trace from there ([`trace_context_of`]).

use std::collections::HashMap;

use events_schema::{Event, EventId, EventType, FareId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::consumer::Consumed;
use crate::trace::Carrier;

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

/// What the inbox holds of an event.
#[derive(Debug, Clone)]
pub struct Known {
    pub event_type: String,
    pub fare_id: String,
    /// `None` for rows written before fingerprints were kept.
    pub fingerprint: Option<Uuid>,
}

impl Known {
    /// Whether `incoming`, whose id is this known event's, is a redelivery of it or a
    /// conflicting duplicate.
    pub fn delivery_of(&self, incoming: Incoming<'_>) -> Delivery {
        let same_content = self.event_type == incoming.event_type.as_str()
            // Rows written before fingerprints were kept can only be compared by type and fare.
            && self.fingerprint.is_none_or(|f| f == incoming.fingerprint);
        if self.fare_id != incoming.fare_id.as_str() {
            Delivery::Conflict(format!(
                "conflicting duplicate: event_id {} already names a {} of fare {}, not of fare {}",
                incoming.event_id, self.event_type, self.fare_id, incoming.fare_id
            ))
        } else if !same_content {
            Delivery::Conflict(format!(
                "conflicting duplicate: event_id {} already names a {} of this fare with other content",
                incoming.event_id, self.event_type
            ))
        } else {
            Delivery::Redelivery
        }
    }
}

/// The inbox's records of the events `ids`, by id.
pub async fn known(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<HashMap<Uuid, Known>> {
    let rows = sqlx::query!(
        "SELECT event_id, event_type, fare_id, fingerprint FROM inbox WHERE event_id = ANY($1)",
        ids,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.event_id,
                Known {
                    event_type: row.event_type,
                    fare_id: row.fare_id,
                    fingerprint: row.fingerprint,
                },
            )
        })
        .collect())
}

/// One event to record as acted on.
#[derive(Debug, Clone)]
pub struct InboxRecord {
    pub event_id: Uuid,
    pub event_type: String,
    pub fare_id: String,
    pub fingerprint: Uuid,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    /// The context of the span that processed it (empty when tracing is off).
    pub trace: Carrier,
}

impl InboxRecord {
    pub fn of(event: &Event, source: &Consumed) -> Self {
        InboxRecord {
            event_id: event.event_id.as_uuid(),
            event_type: event.event_type().as_str().to_owned(),
            fare_id: event.fare_id.as_str().to_owned(),
            fingerprint: event.fingerprint(),
            source_topic: source.topic.clone(),
            source_partition: source.partition,
            source_offset: source.offset,
            trace: source.trace.clone(),
        }
    }
}

/// The trace context kept with event `event_id`'s record: the span that processed it, for the
/// work it started that is done later (empty when there is none).
pub async fn trace_context_of(conn: &mut PgConnection, event_id: Uuid) -> sqlx::Result<Carrier> {
    let row = sqlx::query!(
        "SELECT traceparent, tracestate FROM inbox WHERE event_id = $1",
        event_id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map_or_else(Carrier::default, |row| Carrier {
        traceparent: row.traceparent,
        tracestate: row.tracestate,
    }))
}
