//! The transactional outbox: an event to publish is a row written in the same transaction as
//! the state change that caused it. The relay ([`crate::relay`]) publishes rows in `id` order.
//!
//! Every service's schema has the table (see its migrations):
//! `outbox(id bigserial, event_id uuid unique, topic text, message_key text, payload bytea,
//! headers jsonb, created_at, published_at)`. `topic` is the logical name (SPEC §2 base name);
//! the relay maps it to the configured name. Rows are kept after publishing: they are the
//! service's record of what it emitted, which its read API serves.

use std::collections::BTreeMap;

use events_schema::{Event, EventId, Topic};
use sqlx::PgConnection;
use uuid::Uuid;

/// One message to publish: where, with which key, which bytes and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub event_id: Uuid,
    pub topic: Topic,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl OutboxMessage {
    /// A domain event, keyed by its `fare_id`, on the topic SPEC §2 assigns to its type.
    pub fn event(event: &Event) -> Self {
        let event_type = event.event_type();
        let mut headers = BTreeMap::new();
        headers.insert("event_type".to_owned(), event_type.as_str().to_owned());
        OutboxMessage {
            event_id: event.event_id.as_uuid(),
            topic: event_type.topic(),
            key: Some(event.fare_id.as_str().to_owned()),
            payload: event.encode(),
            headers,
        }
    }
}

/// Adds `message` to the outbox in the caller's transaction. Returns `false` when a message
/// with the same `event_id` is already there (it is not written twice).
pub async fn enqueue(conn: &mut PgConnection, message: &OutboxMessage) -> sqlx::Result<bool> {
    let headers = serde_json::to_value(&message.headers).unwrap_or_default();
    let inserted = sqlx::query!(
        "INSERT INTO outbox (event_id, topic, message_key, payload, headers) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING",
        message.event_id,
        message.topic.base_name(),
        message.key.as_deref(),
        &message.payload,
        headers,
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Adds each event to the outbox, in order, in the caller's transaction.
pub async fn enqueue_events(conn: &mut PgConnection, events: &[Event]) -> sqlx::Result<()> {
    for event in events {
        enqueue(&mut *conn, &OutboxMessage::event(event)).await?;
    }
    Ok(())
}

/// An event this service emitted, as its read API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EmittedEvent {
    pub event_id: Uuid,
    pub topic: String,
    pub event: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<time::OffsetDateTime>,
}

/// Every message this service emitted (or will emit) with `key`, oldest first.
pub async fn emitted_for_key(
    conn: &mut PgConnection,
    key: &str,
) -> sqlx::Result<Vec<EmittedEvent>> {
    let rows = sqlx::query!(
        "SELECT event_id, topic, payload, created_at, published_at FROM outbox \
         WHERE message_key = $1 ORDER BY id",
        key
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| EmittedEvent {
            event_id: row.event_id,
            topic: row.topic,
            event: serde_json::from_slice(&row.payload).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&row.payload).into_owned())
            }),
            created_at: row.created_at,
            published_at: row.published_at,
        })
        .collect())
}

/// A stable id for a message that has none of its own (a dead letter), so that writing it
/// twice after a redelivery is a no-op: a UUIDv5 of `name`.
pub fn derived_id(name: &[u8]) -> EventId {
    const NAMESPACE: Uuid = Uuid::from_u128(0x5a6d_1f0e_8c3b_4e2a_9d71_0b6c_4f3e_2a18);
    EventId::from_uuid(Uuid::new_v5(&NAMESPACE, name))
}
