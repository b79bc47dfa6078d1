//! The dead-letter queue: a message a service cannot process is published to the service's DLQ
//! topic as received, with headers naming where it came from and why (SPEC §2). The one change
//! is SPEC §3's: a raw card number in the key or payload is masked (first 6 and last 4 digits
//! kept), with header `dlq.redacted: card-number`.
//!
//! It goes through the outbox like every other message, so it is never lost. Its id is derived
//! from the message itself — source position, broker timestamp, key and bytes — so that a
//! redelivered poison message is dead-lettered once, while a new message that happens to sit at
//! an old position (topics recreated, database kept) gets a dead letter of its own.

use std::collections::BTreeMap;

use events_schema::{card, Topic};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::consumer::Consumed;
use crate::outbox::{self, OutboxMessage};

/// Header names on a dead letter.
pub const HEADER_SOURCE_TOPIC: &str = "dlq.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "dlq.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "dlq.source.offset";
pub const HEADER_ERROR: &str = "dlq.error";
pub const HEADER_SERVICE: &str = "dlq.service";
/// Present, with value [`REDACTED_CARD_NUMBER`], when a card number was masked.
pub const HEADER_REDACTED: &str = "dlq.redacted";
pub const REDACTED_CARD_NUMBER: &str = "card-number";

/// The dead letter for `message`, to `dlq`, with `reason`.
pub fn dead_letter(message: &Consumed, dlq: Topic, service: &str, reason: &str) -> OutboxMessage {
    let mut headers = BTreeMap::new();
    headers.insert(HEADER_SOURCE_TOPIC.to_owned(), message.topic.clone());
    headers.insert(
        HEADER_SOURCE_PARTITION.to_owned(),
        message.partition.to_string(),
    );
    headers.insert(HEADER_SOURCE_OFFSET.to_owned(), message.offset.to_string());
    headers.insert(HEADER_ERROR.to_owned(), card::redact(reason));
    headers.insert(HEADER_SERVICE.to_owned(), service.to_owned());
    let masked_payload = card::mask_card_numbers(&message.payload);
    let masked_key = message
        .key
        .as_deref()
        .and_then(|key| card::mask_card_numbers(key.as_bytes()))
        .map(|key| String::from_utf8_lossy(&key).into_owned());
    if masked_payload.is_some() || masked_key.is_some() {
        headers.insert(HEADER_REDACTED.to_owned(), REDACTED_CARD_NUMBER.to_owned());
    }
    OutboxMessage {
        event_id: identity(message),
        topic: dlq,
        key: masked_key.or_else(|| message.key.clone()),
        payload: masked_payload.unwrap_or_else(|| message.payload.clone()),
        headers,
        outcome: None,
    }
}

/// The dead letter's id: a UUIDv5 of the source position, the broker timestamp, the key and
/// the bytes of the message.
fn identity(message: &Consumed) -> Uuid {
    let mut name = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        message.topic,
        message.partition,
        message.offset,
        message
            .timestamp
            .map_or_else(String::new, |t| t.to_string()),
        message.key.as_deref().unwrap_or(""),
    )
    .into_bytes();
    name.extend_from_slice(&message.payload);
    outbox::derived_id(&name).as_uuid()
}

/// Logs that `message` is dead-lettered as `letter` (never with a card number: the letter's
/// key and reason are masked).
pub fn log(message: &Consumed, letter: &OutboxMessage) {
    tracing::warn!(
        topic = %message.topic,
        partition = message.partition,
        offset = message.offset,
        key = letter.key.as_deref().unwrap_or(""),
        reason = %letter.headers[HEADER_ERROR],
        dead_letter_id = %letter.event_id,
        "message dead-lettered"
    );
}

/// Writes the dead letter for `message` to the outbox in the caller's transaction. A message
/// dead-lettered before (a redelivery) is not written twice.
pub async fn enqueue(
    conn: &mut PgConnection,
    message: &Consumed,
    dlq: Topic,
    service: &str,
    reason: &str,
) -> sqlx::Result<()> {
    let letter = dead_letter(message, dlq, service, reason);
    log(message, &letter);
    if !outbox::enqueue(conn, &letter).await? {
        tracing::info!(dead_letter_id = %letter.event_id, "dead-lettered before (a redelivery): its dead letter is already in the outbox");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: &str, offset: i64, timestamp: i64) -> Consumed {
        Consumed {
            topic: "fare-requests".to_owned(),
            partition: 2,
            offset,
            timestamp: Some(timestamp),
            key: Some("wr_1".to_owned()),
            payload: payload.as_bytes().to_vec(),
            event_type: None,
            trace: Default::default(),
        }
    }

    #[test]
    fn a_redelivery_has_the_same_id_a_new_message_at_an_old_position_does_not() {
        let first = message("not json", 7, 1_000);
        assert_eq!(identity(&first), identity(&first.clone()));
        let recreated_topic = message("not json", 7, 2_000);
        assert_ne!(identity(&first), identity(&recreated_topic));
        let other_bytes = message("not json!", 7, 1_000);
        assert_ne!(identity(&first), identity(&other_bytes));
    }

    #[test]
    fn card_numbers_are_masked_and_flagged_and_nothing_else_changes() {
        let mut poison = message(
            r#"{"fare_id":"x y","payment_token":"4111 1111 1111 1111"}"#,
            1,
            1,
        );
        poison.key = Some("4111111111111111".to_owned());
        let letter = dead_letter(&poison, Topic::PaymentDlq, "payment-service", "bad");
        assert_eq!(
            String::from_utf8(letter.payload).unwrap(),
            r#"{"fare_id":"x y","payment_token":"4111 11** **** 1111"}"#
        );
        assert_eq!(letter.key.as_deref(), Some("411111******1111"));
        assert_eq!(letter.headers[HEADER_REDACTED], REDACTED_CARD_NUMBER);
        assert_eq!(letter.headers[HEADER_SOURCE_OFFSET], "1");

        let clean = dead_letter(&message("not json", 1, 1), Topic::PaymentDlq, "p", "bad");
        assert_eq!(clean.payload, b"not json");
        assert!(!clean.headers.contains_key(HEADER_REDACTED));
    }
}
