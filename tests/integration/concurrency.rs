//! Hundreds of mixed fares at once, with duplicates, and with transient gateway faults,
//! checked against SPEC §6 invariants 1–4 and 6 from the topics and both schemas.

use std::time::{Duration, Instant};

use events_schema::Topic;
use futures::future::try_join_all;
use payment_service::gateway::FaultInjection;
use tests::env::minimal_request;
use tests::invariants::{self, mixed_amount, mixed_customer};
use tests::TestEnv;

const TIMEOUT: Duration = Duration::from_secs(300);

/// Publishes `count` mixed fares and, at the same time, an identical and a conflicting
/// duplicate of every 25th; waits for every outcome and checks the invariants. Returns the time
/// from the first publish to the last outcome.
async fn run_mixed_load(env: &TestEnv, count: usize) -> anyhow::Result<Duration> {
    let duplicated: Vec<usize> = (0..count).step_by(25).collect();
    let duplicates: Vec<(String, String)> = duplicated
        .iter()
        .flat_map(|&i| {
            let fare_id = format!("wr_load_{i}");
            let identical = minimal_request(&fare_id, &mixed_customer(i), mixed_amount(i));
            let conflicting = minimal_request(&fare_id, &mixed_customer(i), mixed_amount(i) + 1);
            [(fare_id.clone(), identical), (fare_id, conflicting)]
        })
        .collect();
    let started = Instant::now();
    let (fares, _) = futures::try_join!(
        env.publish_mixed_fares("wr_load", count),
        try_join_all(duplicates.iter().map(|(fare_id, body)| {
            env.publish(Topic::FareRequests, Some(fare_id), body.as_bytes())
        })),
    )?;
    env.wait_for_outcomes(count, TIMEOUT).await?;
    let elapsed = started.elapsed();
    let dead_letters = env
        .recorder
        .wait_for(
            "the conflicting duplicates dead-lettered",
            TIMEOUT,
            |records| {
                let letters: Vec<_> = records
                    .iter()
                    .filter(|r| r.topic == Topic::PaymentDlq)
                    .cloned()
                    .collect();
                (letters.len() >= duplicated.len()).then_some(letters)
            },
        )
        .await?;
    env.assert_invariants(&fares).await?;
    invariants::assert_per_key_order(&env.recorder.snapshot());
    // Invariant 6: one saga per fare_id (checked above); each conflicting duplicate is in the
    // DLQ with the reason, and nothing else is.
    assert_eq!(dead_letters.len(), duplicated.len());
    assert!(dead_letters
        .iter()
        .all(|r| r.headers["dlq.error"].starts_with("conflicting duplicate")));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_each_service_share_the_work_and_keep_the_order() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    for _ in 0..2 {
        env.start_payment_with(env.payment_config()).await?;
        env.start_accounting().await?;
    }
    run_mixed_load(&env, 200).await?;
    env.teardown().await
}
