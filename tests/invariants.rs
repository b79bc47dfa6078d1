//! SPEC §6's invariants as assertions over what a test recorded on the topics and what the
//! services wrote in their schemas.

use std::collections::{BTreeMap, BTreeSet};

use events_schema::{EventType, FailureMarker, Topic};
use sqlx::PgPool;

use crate::Recorded;

/// The customer for fare number `i` of a mixed load: half succeed, the rest cycle through
/// every failure marker of SPEC §5.
pub fn mixed_customer(i: usize) -> String {
    match i % 10 {
        0..=4 => format!("c{i}"),
        5 => format!("c{i}_fail_auth"),
        6 => format!("c{i}_fail_charge"),
        7 | 8 => format!("c{i}_fail_credit"),
        _ => format!("c{i}_fail_credit_fail_refund"),
    }
}

/// An amount for fare number `i`, in minor units, within the valid range.
pub fn mixed_amount(i: usize) -> i64 {
    100 + (i as i64 * 37) % 10_000
}

/// The fare ids that have an outcome on `fare-outcomes`.
pub fn fares_with_outcome(records: &[Recorded]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| r.topic == Topic::FareOutcomes)
        .filter_map(|r| r.key.clone())
        .collect()
}

/// Invariants 1 and 2: per fare and event type at most one distinct `event_id`, and each fare
/// of `customers` (fare id → customer id) has exactly one outcome, the one its marker calls for.
pub fn assert_events(records: &[Recorded], customers: &BTreeMap<String, String>) {
    let mut ids: BTreeMap<(String, EventType), BTreeSet<uuid::Uuid>> = BTreeMap::new();
    for event in records.iter().filter_map(Recorded::event) {
        ids.entry((event.fare_id.as_str().to_owned(), event.event_type()))
            .or_default()
            .insert(event.event_id.as_uuid());
    }
    for ((fare_id, event_type), distinct) in &ids {
        assert_eq!(
            distinct.len(),
            1,
            "{fare_id} has {} distinct {event_type:?}",
            distinct.len()
        );
    }
    for (fare_id, customer) in customers {
        let collected = ids.contains_key(&(fare_id.clone(), EventType::FareCollected));
        let failed = ids.contains_key(&(fare_id.clone(), EventType::FareCollectionFailed));
        assert!(
            collected != failed,
            "{fare_id}: collected={collected} failed={failed}"
        );
        let should_collect = FailureMarker::of_str(customer) == FailureMarker::None;
        assert_eq!(collected, should_collect, "{fare_id} ({customer}) outcome");
    }
}

/// Invariants 3 and 4, and that every fare is terminal: captured − refunded equals the ledger
/// amount per fare (a `needs_attention` fare is the flagged exception: charged, not credited),
/// and no pre-authorisation is still held.
pub async fn assert_money(admin: &PgPool, expected_fares: usize) -> anyhow::Result<()> {
    let money: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT f.fare_id, \
           COALESCE(sum(g.amount_minor) FILTER (WHERE g.operation = 'capture' AND g.approved), 0)::bigint, \
           COALESCE(sum(g.amount_minor) FILTER (WHERE g.operation = 'refund' AND g.approved), 0)::bigint, \
           COALESCE((SELECT l.amount_minor FROM accounting.ledger_entries l WHERE l.fare_id = f.fare_id), 0)::bigint, \
           f.status \
         FROM payment.fares f LEFT JOIN payment.gateway_operations g ON g.fare_id = f.fare_id \
         GROUP BY f.fare_id, f.status",
    )
    .fetch_all(admin)
    .await?;
    assert_eq!(money.len(), expected_fares, "registered fares");
    for (fare_id, captured, refunded, ledger, status) in &money {
        if status == "needs_attention" {
            assert_eq!((captured - refunded, *ledger), (*captured, 0), "{fare_id}");
        } else {
            assert_eq!(captured - refunded, *ledger, "{fare_id} ({status})");
        }
        assert!(
            ["collected", "failed", "needs_attention", "rejected"].contains(&status.as_str()),
            "{fare_id} is not terminal: {status}"
        );
    }
    let held: Vec<String> = sqlx::query_scalar(
        "SELECT a.fare_id FROM payment.gateway_operations a \
         WHERE a.operation = 'pre_authorise' AND a.approved AND NOT EXISTS ( \
           SELECT 1 FROM payment.gateway_operations b WHERE b.fare_id = a.fare_id \
           AND b.operation IN ('capture', 'release') AND b.approved)",
    )
    .fetch_all(admin)
    .await?;
    assert!(held.is_empty(), "pre-authorisations still held: {held:?}");
    let duplicated: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT fare_id, operation, count(*) FROM payment.gateway_operations \
         GROUP BY fare_id, operation HAVING count(*) > 1",
    )
    .fetch_all(admin)
    .await?;
    assert!(duplicated.is_empty(), "money moved twice: {duplicated:?}");
    Ok(())
}

/// Events keep their causal order per key on each topic: an event whose cause was published on
/// the same topic comes after it (the outbox relay publishes in order, SPEC §4).
pub fn assert_per_key_order(records: &[Recorded]) {
    let mut by_partition: BTreeMap<(Topic, i32), Vec<&Recorded>> = BTreeMap::new();
    for record in records {
        by_partition
            .entry((record.topic, record.partition))
            .or_default()
            .push(record);
    }
    for ((topic, partition), mut partition_records) in by_partition {
        partition_records.sort_by_key(|r| r.offset);
        let events: Vec<_> = partition_records.iter().filter_map(|r| r.event()).collect();
        let all: BTreeSet<_> = events.iter().map(|e| e.event_id).collect();
        let mut seen = BTreeSet::new();
        for event in &events {
            if event.causation_id != event.event_id && all.contains(&event.causation_id) {
                assert!(
                    seen.contains(&event.causation_id),
                    "{topic:?}[{partition}]: {} {:?} published before its cause",
                    event.fare_id,
                    event.event_type()
                );
            }
            seen.insert(event.event_id);
        }
    }
}
