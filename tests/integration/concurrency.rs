//! Hundreds of mixed fares at once, with duplicates, and with transient gateway faults,
//! checked against SPEC §6 invariants 1–4 and 6 from the topics and both schemas.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use events_schema::Topic;
use futures::future::try_join_all;
use payment_service::gateway::FaultInjection;
use tests::env::minimal_request;
use tests::invariants::{self, mixed_amount, mixed_customer};
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(300);

/// Publishes `count` mixed fares (every 25th also with an identical and a conflicting
/// duplicate), waits for every outcome and checks the invariants.
async fn run_mixed_load(env: &TestEnv, count: usize) -> anyhow::Result<Duration> {
    let customers: BTreeMap<String, String> = (0..count)
        .map(|i| (format!("wr_load_{i}"), mixed_customer(i)))
        .collect();
    let mut publishes = Vec::new();
    for i in 0..count {
        let fare_id = format!("wr_load_{i}");
        let request = minimal_request(&fare_id, &mixed_customer(i), mixed_amount(i));
        publishes.push((fare_id.clone(), request.clone()));
        if i % 25 == 0 {
            publishes.push((fare_id.clone(), request));
            let conflicting = minimal_request(&fare_id, &mixed_customer(i), mixed_amount(i) + 1);
            publishes.push((fare_id, conflicting));
        }
    }
    let conflicting = count.div_ceil(25);
    let started = Instant::now();
    try_join_all(
        publishes.iter().map(|(fare_id, body)| {
            env.publish(Topic::FareRequests, Some(fare_id), body.as_bytes())
        }),
    )
    .await?;
    env.recorder
        .wait_for("every fare's outcome", TIMEOUT, |records| {
            (invariants::fares_with_outcome(records).len() == count).then_some(())
        })
        .await?;
    let elapsed = started.elapsed();
    env.recorder
        .wait_for(
            "the conflicting duplicates dead-lettered",
            TIMEOUT,
            |records| {
                (records
                    .iter()
                    .filter(|r| r.topic == Topic::PaymentDlq)
                    .count()
                    >= conflicting)
                    .then_some(())
            },
        )
        .await?;

    let records = env.recorder.snapshot();
    invariants::assert_events(&records, &customers);
    // Invariant 6: one saga per fare_id; the conflicting duplicates are in the DLQ with the reason.
    let letters: Vec<_> = records
        .iter()
        .filter(|r| r.topic == Topic::PaymentDlq)
        .collect();
    assert_eq!(letters.len(), conflicting);
    assert!(letters
        .iter()
        .all(|r| r.headers["dlq.error"].starts_with("conflicting duplicate")));
    let admin = env.database.admin_pool().await?;
    invariants::assert_money(&admin, count).await?;
    admin.close().await;
    Ok(elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_mixed_fares_keep_the_invariants() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let elapsed = run_mixed_load(&env, 500).await?;
    println!(
        "500 mixed fares to outcome in {:.1}s",
        elapsed.as_secs_f64()
    );
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_gateway_faults_never_change_an_outcome() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    let mut config = env.payment_config();
    // One call in three fails with a timeout or a 5xx, before or after the gateway acted.
    config.faults = FaultInjection {
        rate: 0.33,
        latency: Duration::from_millis(1),
    };
    env.start_payment_with(config).await?;
    env.start_accounting().await?;
    run_mixed_load(&env, 200).await?;
    env.teardown().await
}
