//! Hundreds of mixed fares at once, with duplicates, checked against SPEC §6 invariants 1–4
//! and 6 from the topics and both schemas.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use events_schema::{EventType, Topic};
use futures::future::try_join_all;
use tests::env::minimal_request;
use tests::TestEnv;

const FARES: usize = 500;
const TIMEOUT: Duration = Duration::from_secs(300);

/// The customer for fare `i`: half succeed, the rest cycle through every failure marker.
fn customer(i: usize) -> String {
    match i % 10 {
        0..=4 => format!("c{i}"),
        5 => format!("c{i}_fail_auth"),
        6 => format!("c{i}_fail_charge"),
        7 | 8 => format!("c{i}_fail_credit"),
        _ => format!("c{i}_fail_credit_fail_refund"),
    }
}

fn amount(i: usize) -> i64 {
    100 + (i as i64 * 37) % 10_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_mixed_fares_keep_the_invariants() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let fare_ids: Vec<String> = (0..FARES).map(|i| format!("wr_load_{i}")).collect();
    let started = Instant::now();
    let mut publishes = Vec::new();
    for (i, fare_id) in fare_ids.iter().enumerate() {
        publishes.push((fare_id.clone(), minimal_request(fare_id, &customer(i), amount(i))));
        if i % 25 == 0 {
            // an identical duplicate and a conflicting one
            publishes.push((fare_id.clone(), minimal_request(fare_id, &customer(i), amount(i))));
            publishes.push((fare_id.clone(), minimal_request(fare_id, &customer(i), amount(i) + 1)));
        }
    }
    try_join_all(
        publishes
            .iter()
            .map(|(fare_id, body)| env.publish(Topic::FareRequests, Some(fare_id), body.as_bytes())),
    )
    .await?;
    let conflicting = FARES.div_ceil(25);

    env.recorder
        .wait_for("every fare's outcome", TIMEOUT, |records| {
            let done: BTreeSet<_> = records
                .iter()
                .filter(|r| r.topic == Topic::FareOutcomes)
                .filter_map(|r| r.key.clone())
                .collect();
            (done.len() == FARES).then_some(())
        })
        .await?;
    let elapsed = started.elapsed();
    println!(
        "{FARES} fares (+{} duplicates) to outcome in {:.1}s: {:.0} fares/s",
        2 * conflicting,
        elapsed.as_secs_f64(),
        FARES as f64 / elapsed.as_secs_f64()
    );
    // Let any straggling duplicate publish land before counting.
    env.recorder
        .wait_for("the conflicting duplicates dead-lettered", TIMEOUT, |records| {
            (records.iter().filter(|r| r.topic == Topic::PaymentDlq).count() >= conflicting).then_some(())
        })
        .await?;

    let records = env.recorder.snapshot();
    // Invariant 2: per fare and event type, at most one distinct event_id.
    let mut ids: BTreeMap<(String, EventType), BTreeSet<uuid::Uuid>> = BTreeMap::new();
    for event in records.iter().filter_map(|r| r.event()) {
        ids.entry((event.fare_id.as_str().to_owned(), event.event_type()))
            .or_default()
            .insert(event.event_id.as_uuid());
    }
    for ((fare_id, event_type), distinct) in &ids {
        assert_eq!(distinct.len(), 1, "{fare_id} has {} distinct {event_type:?}", distinct.len());
    }
    // Invariant 1: exactly one outcome per fare, the one its marker calls for.
    for (i, fare_id) in fare_ids.iter().enumerate() {
        let collected = ids.contains_key(&(fare_id.clone(), EventType::FareCollected));
        let failed = ids.contains_key(&(fare_id.clone(), EventType::FareCollectionFailed));
        assert!(collected != failed, "{fare_id}: collected={collected} failed={failed}");
        assert_eq!(collected, i % 10 <= 4, "{fare_id} ({}) outcome", customer(i));
    }
    // Invariant 6: conflicting duplicates are in the DLQ, with the reason.
    let letters: Vec<_> = records.iter().filter(|r| r.topic == Topic::PaymentDlq).collect();
    assert_eq!(letters.len(), conflicting);
    assert!(letters.iter().all(|r| r.headers["dlq.error"].starts_with("conflicting duplicate")));

    let admin = env.database.admin_pool().await?;
    // Invariant 3: captured − refunded = the ledger amount, per fare (needs_attention fares are
    // the known exception: charged, not credited, flagged for an operator).
    let money: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(
        "SELECT f.fare_id, \
           COALESCE(sum(g.amount_minor) FILTER (WHERE g.operation = 'capture' AND g.approved), 0)::bigint, \
           COALESCE(sum(g.amount_minor) FILTER (WHERE g.operation = 'refund' AND g.approved), 0)::bigint, \
           COALESCE((SELECT l.amount_minor FROM accounting.ledger_entries l WHERE l.fare_id = f.fare_id), 0)::bigint, \
           f.status \
         FROM payment.fares f LEFT JOIN payment.gateway_operations g ON g.fare_id = f.fare_id \
         GROUP BY f.fare_id, f.status",
    )
    .fetch_all(&admin)
    .await?;
    assert_eq!(money.len(), FARES);
    for (fare_id, captured, refunded, ledger, status) in &money {
        if status == "needs_attention" {
            assert_eq!((captured - refunded, *ledger), (*captured, 0), "{fare_id}");
        } else {
            assert_eq!(captured - refunded, *ledger, "{fare_id} ({status})");
        }
    }
    // Invariant 4: no pre-authorisation still held once the fare is terminal.
    let held: Vec<String> = sqlx::query_scalar(
        "SELECT a.fare_id FROM payment.gateway_operations a \
         WHERE a.operation = 'pre_authorise' AND a.approved AND NOT EXISTS ( \
           SELECT 1 FROM payment.gateway_operations b WHERE b.fare_id = a.fare_id \
           AND b.operation IN ('capture', 'release') AND b.approved)",
    )
    .fetch_all(&admin)
    .await?;
    assert!(held.is_empty(), "holds left: {held:?}");
    // Every fare is terminal in the payment schema.
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM payment.fares WHERE status NOT IN ('collected', 'failed', 'needs_attention', 'rejected')",
    )
    .fetch_one(&admin)
    .await?;
    assert_eq!(open, 0);
    admin.close().await;
    env.teardown().await
}
