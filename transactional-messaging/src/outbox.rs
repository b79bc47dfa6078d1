//! The transactional outbox: an event to publish is a row written in the same transaction as
//! the state change that caused it. The relay ([`crate::relay`]) publishes rows in `id` order.
//!
//! Every service's schema has the table (see its migrations):
//! `outbox(id bigserial, event_id uuid unique, topic text, message_key text, payload bytea,
//! headers jsonb, created_at, published_at)`. `topic` is the logical name (SPEC §2 base name);
//! the relay maps it to the configured name. Rows are kept after publishing: they are the
//! service's record of what it emitted, which its read API serves.

use std::collections::BTreeMap;

use events_schema::{card, Event, EventId, Topic};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::inbox::InboxRecord;
use crate::metrics::OutcomeObservation;
use crate::read_api::{Bounded, Limit};

/// One message to publish: where, with which key, which bytes and headers.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxMessage {
    pub event_id: Uuid,
    pub topic: Topic,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
    /// For a fare's outcome: what the metrics count once the transaction writing it commits
    /// (not written to the table).
    pub outcome: Option<OutcomeObservation>,
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
            outcome: None,
        }
    }

    /// A fare's outcome event, counted in the metrics as `outcome` once written.
    pub fn outcome(event: &Event, outcome: OutcomeObservation) -> Self {
        OutboxMessage {
            outcome: Some(outcome),
            ..OutboxMessage::event(event)
        }
    }
}

/// An outbox row just written, for the relay.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub message: OutboxMessage,
}

/// Adds `message` to the outbox in the caller's transaction. Returns `false` when a message
/// with the same `event_id` is already there (it is not written twice).
pub async fn enqueue(conn: &mut PgConnection, message: &OutboxMessage) -> sqlx::Result<bool> {
    Ok(!enqueue_many(conn, vec![message.clone()]).await?.is_empty())
}

/// Adds `messages` to the outbox, in order, in the caller's transaction and in one statement.
/// Returns the rows written: a message whose `event_id` is already there is not written twice.
pub async fn enqueue_many(
    conn: &mut PgConnection,
    messages: Vec<OutboxMessage>,
) -> sqlx::Result<Vec<OutboxRow>> {
    enqueue_recording(conn, &[], messages).await
}

/// [`enqueue_many`], and records `records` in the inbox, in the same statement: a batch's
/// messages cost it one round trip. An inbox id recorded meanwhile by a concurrent transaction
/// (another instance after a rebalance) is left as it is: the fare's status guard made that
/// delivery's effects a no-op.
pub async fn enqueue_recording(
    conn: &mut PgConnection,
    records: &[InboxRecord],
    messages: Vec<OutboxMessage>,
) -> sqlx::Result<Vec<OutboxRow>> {
    if messages.is_empty() && records.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = messages.iter().map(|m| m.event_id).collect();
    let topics: Vec<String> = messages
        .iter()
        .map(|m| m.topic.base_name().to_owned())
        .collect();
    let keys: Vec<Option<String>> = messages.iter().map(|m| m.key.clone()).collect();
    let payloads: Vec<Vec<u8>> = messages.iter().map(|m| m.payload.clone()).collect();
    let headers: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| serde_json::to_value(&m.headers).unwrap_or_default())
        .collect();
    let inbox = InboxColumns::of(records);
    let written = sqlx::query!(
        r#"WITH recorded AS (
               INSERT INTO inbox (event_id, event_type, fare_id, fingerprint, source_topic,
                                  source_partition, source_offset, traceparent, tracestate)
               SELECT * FROM unnest($6::uuid[], $7::text[], $8::text[], $9::uuid[], $10::text[],
                                    $11::int[], $12::bigint[], $13::text[], $14::text[])
               ON CONFLICT (event_id) DO NOTHING
           )
           INSERT INTO outbox (event_id, topic, message_key, payload, headers)
           SELECT event_id, topic, message_key, payload, headers
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bytea[], $5::jsonb[])
                WITH ORDINALITY AS m(event_id, topic, message_key, payload, headers, position)
           ORDER BY position
           ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id"#,
        &ids,
        &topics,
        &keys as &[Option<String>],
        &payloads,
        &headers,
        &inbox.event_ids,
        &inbox.event_types,
        &inbox.fare_ids,
        &inbox.fingerprints,
        &inbox.source_topics,
        &inbox.source_partitions,
        &inbox.source_offsets,
        &inbox.traceparents as &[Option<String>],
        &inbox.tracestates as &[Option<String>],
    )
    .fetch_all(conn)
    .await?;
    let mut written: std::collections::HashMap<Uuid, i64> = written
        .into_iter()
        .map(|row| (row.event_id, row.id))
        .collect();
    Ok(messages
        .into_iter()
        .filter_map(|message| {
            written
                .remove(&message.event_id)
                .map(|id| OutboxRow { id, message })
        })
        .collect())
}

/// Inbox records as the columns of their table, for `unnest`.
struct InboxColumns {
    event_ids: Vec<Uuid>,
    event_types: Vec<String>,
    fare_ids: Vec<String>,
    fingerprints: Vec<Uuid>,
    source_topics: Vec<String>,
    source_partitions: Vec<i32>,
    source_offsets: Vec<i64>,
    traceparents: Vec<Option<String>>,
    tracestates: Vec<Option<String>>,
}

impl InboxColumns {
    fn of(records: &[InboxRecord]) -> Self {
        InboxColumns {
            event_ids: records.iter().map(|r| r.event_id).collect(),
            event_types: records.iter().map(|r| r.event_type.clone()).collect(),
            fare_ids: records.iter().map(|r| r.fare_id.clone()).collect(),
            fingerprints: records.iter().map(|r| r.fingerprint).collect(),
            source_topics: records.iter().map(|r| r.source_topic.clone()).collect(),
            source_partitions: records.iter().map(|r| r.source_partition).collect(),
            source_offsets: records.iter().map(|r| r.source_offset).collect(),
            traceparents: records
                .iter()
                .map(|r| r.trace.traceparent.clone())
                .collect(),
            tracestates: records.iter().map(|r| r.trace.tracestate.clone()).collect(),
        }
    }
}

/// The outbox messages of `events`, in order.
pub fn events(events: &[Event]) -> Vec<OutboxMessage> {
    events.iter().map(OutboxMessage::event).collect()
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

/// The base names of the dead-letter topics: their rows are dead letters, the others events.
fn dead_letter_topics() -> Vec<String> {
    Topic::ALL
        .iter()
        .filter(|t| t.is_dlq())
        .map(|t| t.base_name().to_owned())
        .collect()
}

/// The first `limit` events (not dead letters) this service emitted (or will emit) with
/// `key`, oldest first, and how many there are.
pub async fn emitted_for_key(
    conn: &mut PgConnection,
    key: &str,
    limit: Limit,
) -> sqlx::Result<Bounded<EmittedEvent>> {
    let dead_letter_topics = dead_letter_topics();
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM outbox WHERE message_key = $1 AND topic <> ALL($2)"#,
        key,
        &dead_letter_topics,
    )
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query!(
        "SELECT event_id, topic, payload, created_at, published_at FROM outbox \
         WHERE message_key = $1 AND topic <> ALL($2) ORDER BY id LIMIT $3",
        key,
        &dead_letter_topics,
        limit.as_i64(),
    )
    .fetch_all(conn)
    .await?;
    let events = rows
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
        .collect();
    Ok(Bounded::new(events, total))
}

/// How much of a dead letter's payload the read API shows.
pub const DEAD_LETTER_PAYLOAD_SHOWN: usize = 4096;

/// A dead letter this service wrote, as its read API shows it: where the message came from and
/// why it could not be processed (`headers`, the `dlq.*` headers), and the start of its bytes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetterView {
    pub event_id: Uuid,
    pub topic: String,
    pub headers: serde_json::Value,
    /// The first [`DEAD_LETTER_PAYLOAD_SHOWN`] bytes as text (invalid UTF-8 replaced), card
    /// numbers masked.
    pub payload: String,
    pub payload_bytes: i32,
    pub payload_truncated: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub published_at: Option<time::OffsetDateTime>,
}

/// The first `limit` dead letters this service wrote for messages keyed `key`, oldest first,
/// and how many there are. A flood of bad messages under one key costs each answer at most
/// `limit` rows of [`DEAD_LETTER_PAYLOAD_SHOWN`] bytes.
pub async fn dead_letters_for_key(
    conn: &mut PgConnection,
    key: &str,
    limit: Limit,
) -> sqlx::Result<Bounded<DeadLetterView>> {
    let dead_letter_topics = dead_letter_topics();
    let total = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM outbox WHERE message_key = $1 AND topic = ANY($2)"#,
        key,
        &dead_letter_topics,
    )
    .fetch_one(&mut *conn)
    .await?;
    // A little more than is shown, so that a card number across the cut is masked whole.
    let read = i32::try_from(DEAD_LETTER_PAYLOAD_SHOWN + CARD_NUMBER_MAX_CHARS).unwrap_or(i32::MAX);
    let rows = sqlx::query!(
        r#"SELECT event_id, topic, headers, substring(payload FROM 1 FOR $3) AS "head!",
                  octet_length(payload) AS "payload_bytes!", created_at, published_at
           FROM outbox WHERE message_key = $1 AND topic = ANY($2) ORDER BY id LIMIT $4"#,
        key,
        &dead_letter_topics,
        read,
        limit.as_i64(),
    )
    .fetch_all(conn)
    .await?;
    let letters = rows
        .into_iter()
        .map(|row| {
            let (payload, cut) = shown_payload(&row.head);
            DeadLetterView {
                event_id: row.event_id,
                topic: row.topic,
                headers: row.headers,
                payload,
                payload_bytes: row.payload_bytes,
                payload_truncated: cut,
                created_at: row.created_at,
                published_at: row.published_at,
            }
        })
        .collect();
    Ok(Bounded::new(letters, total))
}

/// The most characters a card number spans: 19 digits and a separator between each two.
const CARD_NUMBER_MAX_CHARS: usize = 37;

/// The start of a payload as shown: masked first (SPEC §3), then cut at
/// [`DEAD_LETTER_PAYLOAD_SHOWN`] bytes, so that no cut leaves part of a card number readable.
/// Returns the text and whether it was cut.
fn shown_payload(head: &[u8]) -> (String, bool) {
    let masked = card::mask_card_numbers(head);
    let bytes = masked.as_deref().unwrap_or(head);
    let cut = bytes.len() > DEAD_LETTER_PAYLOAD_SHOWN;
    let shown = &bytes[..bytes.len().min(DEAD_LETTER_PAYLOAD_SHOWN)];
    (String::from_utf8_lossy(shown).into_owned(), cut)
}

/// A stable id for a message that has none of its own (a dead letter), so that writing it
/// twice after a redelivery is a no-op: a UUIDv5 of `name`.
pub fn derived_id(name: &[u8]) -> EventId {
    const NAMESPACE: Uuid = Uuid::from_u128(0x5a6d_1f0e_8c3b_4e2a_9d71_0b6c_4f3e_2a18);
    EventId::from_uuid(Uuid::new_v5(&NAMESPACE, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_payload_is_masked_before_it_is_cut() {
        // A card number across the cut: without masking first, its first ten digits would show.
        let mut head = vec![b' '; DEAD_LETTER_PAYLOAD_SHOWN - 10];
        head.extend_from_slice(b"4111111111111111\"}");
        let (shown, cut) = shown_payload(&head);
        assert!(cut);
        assert_eq!(shown.len(), DEAD_LETTER_PAYLOAD_SHOWN);
        assert!(
            shown.ends_with(" 411111****"),
            "{:?}",
            &shown[shown.len() - 12..]
        );

        let (shown, cut) = shown_payload(b"{\"payment_token\":\"4111 1111 1111 1111\"}");
        assert!(!cut);
        assert_eq!(shown, "{\"payment_token\":\"4111 11** **** 1111\"}");
    }
}
