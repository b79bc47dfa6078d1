//! The dead-letter queue: a message a service cannot process is published, byte for byte, to
//! the service's DLQ topic with headers naming where it came from and why (SPEC §2). It goes
//! through the outbox like every other message, so it is never lost, and its id is derived from
//! its source position, so a redelivered poison message is dead-lettered once.

use std::collections::BTreeMap;

use events_schema::Topic;
use sqlx::PgConnection;

use crate::consumer::Consumed;
use crate::outbox::{self, OutboxMessage};

/// Header names on a dead letter.
pub const HEADER_SOURCE_TOPIC: &str = "dlq.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "dlq.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "dlq.source.offset";
pub const HEADER_ERROR: &str = "dlq.error";
pub const HEADER_SERVICE: &str = "dlq.service";

/// The dead letter for `message`, to `dlq`, with `reason`.
pub fn dead_letter(message: &Consumed, dlq: Topic, service: &str, reason: &str) -> OutboxMessage {
    let mut headers = BTreeMap::new();
    headers.insert(HEADER_SOURCE_TOPIC.to_owned(), message.topic.clone());
    headers.insert(
        HEADER_SOURCE_PARTITION.to_owned(),
        message.partition.to_string(),
    );
    headers.insert(HEADER_SOURCE_OFFSET.to_owned(), message.offset.to_string());
    headers.insert(HEADER_ERROR.to_owned(), reason.to_owned());
    headers.insert(HEADER_SERVICE.to_owned(), service.to_owned());
    let position = [
        message.topic.as_str(),
        &message.partition.to_string(),
        &message.offset.to_string(),
    ];
    OutboxMessage {
        event_id: outbox::derived_id(&position).as_uuid(),
        topic: dlq,
        key: message.key.clone(),
        payload: message.payload.clone(),
        headers,
    }
}

/// Writes the dead letter for `message` to the outbox in the caller's transaction.
pub async fn enqueue(
    conn: &mut PgConnection,
    message: &Consumed,
    dlq: Topic,
    service: &str,
    reason: &str,
) -> sqlx::Result<()> {
    tracing::warn!(
        topic = %message.topic,
        partition = message.partition,
        offset = message.offset,
        key = message.key.as_deref().unwrap_or(""),
        reason,
        "message dead-lettered"
    );
    outbox::enqueue(conn, &dead_letter(message, dlq, service, reason)).await?;
    Ok(())
}
