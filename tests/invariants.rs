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
        let should_collect = FailureMarker::of_str(customer).collects();
        assert_eq!(collected, should_collect, "{fare_id} ({customer}) outcome");
    }
}

/// Invariants 3 and 4, and that every fare is terminal: captured − refunded equals the ledger
/// amount per fare (a `needs_attention` fare is the flagged exception: charged, not credited),
/// and no pre-authorisation is still held — but by a `needs_attention` fare whose release was
/// given up (`ReleaseFailed`: the flagged exception `fares audit` lists). Only a refusal gives
/// a compensation up: a database outage that leaves the gateway's answer unknown does not.
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
           AND b.operation IN ('capture', 'release') AND b.approved) \
         AND NOT EXISTS (SELECT 1 FROM payment.fares f \
           WHERE f.fare_id = a.fare_id AND f.status = 'needs_attention')",
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

/// Every row of every table of both services' schemas that holds a raw card number (SPEC §3's
/// definition), as `schema.table: row`. Binary columns (`bytea`) are read as text.
pub async fn card_numbers_in_tables(admin: &PgPool) -> anyhow::Result<Vec<String>> {
    let columns: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns c WHERE table_schema IN ('payment', 'accounting') \
         AND EXISTS (SELECT 1 FROM information_schema.tables t WHERE t.table_schema = c.table_schema \
           AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE') \
         ORDER BY table_schema, table_name, ordinal_position",
    )
    .fetch_all(admin)
    .await?;
    let mut tables: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (schema, table, column, data_type) in columns {
        let text = if data_type == "bytea" {
            format!("encode(\"{column}\", 'escape')")
        } else {
            format!("\"{column}\"::text")
        };
        tables.entry((schema, table)).or_default().push(text);
    }
    let mut found = Vec::new();
    for ((schema, table), texts) in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT concat_ws(' | ', {}) FROM \"{schema}\".\"{table}\"",
            texts.join(", ")
        ))
        .fetch_all(admin)
        .await?;
        found.extend(
            rows.into_iter()
                .filter(|row| events_schema::card::has_card_number(row.as_bytes()))
                .map(|row| format!("{schema}.{table}: {row}")),
        );
    }
    Ok(found)
}
