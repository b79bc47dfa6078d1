//! SPEC §6.6: a second `FareRequested` for a known `fare_id` never starts a second saga.

use std::time::Duration;

use events_schema::{EventType, Topic};
use tests::env::minimal_request;
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_duplicate_is_ignored_and_a_different_one_is_dead_lettered(
) -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    env.request_fare("wr_dup", "3", 2000).await?;
    env.recorder.outcome_of("wr_dup", TIMEOUT).await?;

    // The same request again, byte for byte, and once more with its own explicit event_id.
    env.request_fare("wr_dup", "3", 2000).await?;
    let mut with_id: serde_json::Value =
        serde_json::from_str(&minimal_request("wr_dup", "3", 2000))?;
    with_id["event_id"] = serde_json::json!(uuid::Uuid::now_v7().to_string());
    env.publish(
        Topic::FareRequests,
        Some("wr_dup"),
        with_id.to_string().as_bytes(),
    )
    .await?;
    // A different request under the same fare_id.
    let conflicting = minimal_request("wr_dup", "3", 9999);
    env.publish(Topic::FareRequests, Some("wr_dup"), conflicting.as_bytes())
        .await?;

    let letter = env
        .recorder
        .wait_for("the conflicting duplicate in the DLQ", TIMEOUT, |records| {
            records
                .iter()
                .find(|r| r.topic == Topic::PaymentDlq && r.payload == conflicting.as_bytes())
                .cloned()
        })
        .await?;
    assert!(
        letter.headers["dlq.error"].starts_with("conflicting duplicate"),
        "{:?}",
        letter.headers
    );

    // A later fare proves the duplicates were all consumed before we count.
    env.request_fare("wr_after", "3", 100).await?;
    env.recorder.outcome_of("wr_after", TIMEOUT).await?;
    let types = env.recorder.event_types_for("wr_dup");
    assert_eq!(
        types,
        vec![
            EventType::PreAuthorised,
            EventType::Charged,
            EventType::AccountUpdated,
            EventType::FareCollected
        ],
        "one saga only"
    );
    let admin = env.database.admin_pool().await?;
    let (captures, ledger): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM payment.gateway_operations WHERE fare_id = 'wr_dup' AND operation = 'capture'), \
                (SELECT COALESCE(sum(amount_minor), 0) FROM accounting.ledger_entries WHERE fare_id = 'wr_dup')::bigint",
    )
    .fetch_one(&admin)
    .await?;
    assert_eq!(
        (captures, ledger),
        (1, 2000),
        "charged once, credited once, with the first amount"
    );
    admin.close().await;
    env.teardown().await
}

/// Two copies of the same request (same data, each with its own event_id, keyed differently,
/// as with kcat without -K) reach two instances at once: one registers the fare, the other
/// finds it and ignores its copy (SPEC §6.6) — it is not dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_on_two_instances_at_once_are_one_saga_and_no_dead_letter(
) -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    let mut config = env.payment_config();
    // Each registration holds its fare's new row for a while: both copies are in flight at once.
    config.faults.latency = Duration::from_millis(300);
    for _ in 0..2 {
        env.start_payment_with(config.clone()).await?;
    }
    env.start_accounting().await?;
    env.wait_until_healthy().await?;
    let instances = env.health_of("payment-service").await?;
    assert!(
        instances.len() == 2 && instances.iter().all(|health| health["partitions"] == 9),
        "each instance has half of the partitions of the three topics: {instances:?}"
    );
    for i in 0..8 {
        let fare_id = format!("wr_twice_{i}");
        // Partition 0 and partition 5: one for each instance (the range assignor gives each
        // of the two partitions 0–2 or 3–5 of every topic).
        let copies = [(0, fare_id.clone()), (5, format!("{fare_id}-copy"))];
        futures::future::try_join_all(copies.iter().map(|(partition, key)| {
            let mut request: serde_json::Value =
                serde_json::from_str(&minimal_request(&fare_id, "3", 700)).unwrap();
            request["event_id"] = serde_json::json!(uuid::Uuid::now_v7().to_string());
            let body = request.to_string();
            let env = &env;
            async move {
                env.publish_to(
                    Topic::FareRequests,
                    Some(*partition),
                    Some(key),
                    body.as_bytes(),
                )
                .await
            }
        }))
        .await?;
        env.recorder.outcome_of(&fare_id, TIMEOUT).await?;
        let types = env
            .recorder
            .wait_for("the whole saga", TIMEOUT, |_| {
                let types = env.recorder.event_types_for(&fare_id);
                (types.len() >= 4).then_some(types)
            })
            .await?;
        assert_eq!(
            types,
            vec![
                EventType::PreAuthorised,
                EventType::Charged,
                EventType::AccountUpdated,
                EventType::FareCollected
            ],
            "{fare_id}: one saga"
        );
    }
    // A later fare on each instance proves every copy was consumed before we look.
    for (i, partition) in [0, 5].into_iter().enumerate() {
        let fare_id = format!("wr_later_{i}");
        let request = minimal_request(&fare_id, "3", 100);
        env.publish_to(
            Topic::FareRequests,
            Some(partition),
            Some(&fare_id),
            request.as_bytes(),
        )
        .await?;
        env.recorder.outcome_of(&fare_id, TIMEOUT).await?;
    }
    let letters = env.recorder.on_topic(Topic::PaymentDlq);
    assert!(
        letters.is_empty(),
        "dead-lettered: {:?}",
        letters
            .iter()
            .map(|l| &l.headers["dlq.error"])
            .collect::<Vec<_>>()
    );
    env.teardown().await
}
