//! Hundreds of mixed fares at once, with duplicates, and with transient gateway faults,
//! checked against SPEC §6 invariants 1–4 and 6 from the topics and both schemas.

use std::time::{Duration, Instant};

use events_schema::{EventData, EventType, Topic};
use futures::future::try_join_all;
use payment_service::gateway::FaultInjection;
use tests::env::minimal_request;
use tests::invariants::{mixed_amount, mixed_customer};
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
        ..FaultInjection::default()
    };
    env.start_payment_with(config).await?;
    env.start_accounting().await?;
    run_mixed_load(&env, 200).await?;
    env.teardown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_of_each_service_share_the_work() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    for _ in 0..2 {
        env.start_payment_with(env.payment_config()).await?;
        env.start_accounting().await?;
    }
    env.wait_until_healthy().await?;
    run_mixed_load(&env, 200).await?;
    for service in ["payment-service", "accounting-service"] {
        let answers = env.health_of(service).await?;
        assert_eq!(answers.len(), 2);
        for answer in &answers {
            assert!(
                answer["partitions"].as_u64() > Some(0)
                    && answer["messages_processed"].as_u64() > Some(0),
                "each instance of {service} did work: {answers:?}"
            );
        }
    }
    env.teardown().await
}

/// A fare's messages are processed in the order they were published: of a request and a
/// different request for the same fare right behind it (same key, same partition), the first
/// registers the fare and the second is the conflicting duplicate — for every fare.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fares_messages_are_processed_in_the_order_they_were_published() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let fares: Vec<String> = (0..200).map(|i| format!("wr_order_{i}")).collect();
    let env_ref = &env;
    try_join_all(fares.iter().map(|fare_id| async move {
        let env = env_ref;
        let first = minimal_request(fare_id, "3", 1000);
        let second = minimal_request(fare_id, "3", 2000);
        env.publish(Topic::FareRequests, Some(fare_id), first.as_bytes())
            .await?;
        env.publish(Topic::FareRequests, Some(fare_id), second.as_bytes())
            .await
    }))
    .await?;
    env.wait_for_outcomes(fares.len(), TIMEOUT).await?;
    let letters = env
        .recorder
        .wait_for("every second request dead-lettered", TIMEOUT, |records| {
            let letters: Vec<_> = records
                .iter()
                .filter(|r| r.topic == Topic::PaymentDlq)
                .cloned()
                .collect();
            (letters.len() >= fares.len()).then_some(letters)
        })
        .await?;
    for letter in &letters {
        let request: serde_json::Value = serde_json::from_slice(&letter.payload)?;
        assert_eq!(
            request["data"]["amount_minor"], 2000,
            "{}: the later request lost",
            request["fare_id"]
        );
    }
    for fare_id in &fares {
        let collected = env.recorder.outcome_of(fare_id, TIMEOUT).await?;
        let EventData::FareCollected(collected) = collected.data else {
            panic!("{fare_id} not collected")
        };
        assert_eq!(
            collected.amount_minor, 1000,
            "{fare_id}: the first request won"
        );
    }
    env.teardown().await
}

/// A fare whose gateway call hangs (`_slow_gateway`: its pre-authorisation answers after
/// 20 s here) delays no other fare — on its own partition neither — and still completes, its
/// events in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_fare_delays_no_other_fare_on_its_partition() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    let mut config = env.payment_config();
    config.faults.slow = Duration::from_secs(20);
    env.start_payment_with(config).await?;
    env.start_accounting().await?;
    env.wait_until_healthy().await?;
    let hung = minimal_request("wr_hung", "3_slow_gateway", 2000);
    env.publish_to(
        Topic::FareRequests,
        Some(0),
        Some("wr_hung"),
        hung.as_bytes(),
    )
    .await?;
    let started = Instant::now();
    let behind: Vec<String> = (0..20).map(|i| format!("wr_behind_{i}")).collect();
    for fare_id in &behind {
        let request = minimal_request(fare_id, "3", 500);
        env.publish_to(
            Topic::FareRequests,
            Some(0),
            Some(fare_id),
            request.as_bytes(),
        )
        .await?;
    }
    for fare_id in &behind {
        let outcome = env
            .recorder
            .outcome_of(fare_id, Duration::from_secs(15))
            .await?;
        assert_eq!(outcome.event_type(), EventType::FareCollected, "{fare_id}");
    }
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(15),
        "the fares behind the hung one took {waited:?}"
    );
    assert!(
        env.recorder.event_types_for("wr_hung").is_empty(),
        "the hung fare is still waiting for its pre-authorisation"
    );
    let outcome = env.recorder.outcome_of("wr_hung", TIMEOUT).await?;
    assert_eq!(outcome.event_type(), EventType::FareCollected);
    assert!(started.elapsed() >= Duration::from_secs(20));
    assert_eq!(
        env.recorder.event_types_for("wr_hung"),
        vec![
            EventType::PreAuthorised,
            EventType::Charged,
            EventType::AccountUpdated,
            EventType::FareCollected
        ]
    );
    env.teardown().await
}
