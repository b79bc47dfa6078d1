//! Crash recovery: the real service binaries are SIGKILLed in the middle of a load and
//! restarted; every fare still ends in exactly one outcome and no money moves twice.

use std::time::Duration;

use events_schema::Topic;
use tests::env::wait_healthy;
use tests::processes::{free_port, ServiceProcess};
use tests::TestEnv;

const FARES: usize = 300;
const TIMEOUT: Duration = Duration::from_secs(300);
const SCALE_OUT_FARES: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_services_mid_saga_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut payment = ServiceProcess::start(&env, "payment-service")?;
    let mut accounting = ServiceProcess::start(&env, "accounting-service")?;
    let fares = env.publish_mixed_fares("wr_crash", FARES).await?;

    // Kill each service while fares are in flight, twice, and bring it back.
    for threshold in [FARES / 10, FARES / 3] {
        env.wait_for_outcomes(threshold, TIMEOUT).await?;
        payment.kill().await?;
        payment = ServiceProcess::start(&env, "payment-service")?;
        env.wait_for_outcomes(threshold + 20, TIMEOUT).await?;
        accounting.kill().await?;
        accounting = ServiceProcess::start(&env, "accounting-service")?;
    }
    env.wait_for_outcomes(FARES, TIMEOUT).await?;
    env.assert_invariants(&fares).await?;

    // A clean stop after all that exits 0.
    assert!(payment.terminate().await?.success());
    assert!(accounting.terminate().await?.success());
    env.teardown().await
}

/// Scale-out under faults: two instances of each service share the load; one of each is
/// SIGKILLed mid-load (the group rebalances its partitions to the survivor). Both instances of
/// each service did work before the kill, and every fare still ends in exactly one outcome,
/// no money moved twice, `fares audit` clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_instances_killed_mid_load_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut instances = Vec::new();
    for name in [
        "payment-service",
        "payment-service",
        "accounting-service",
        "accounting-service",
    ] {
        let addr = format!("127.0.0.1:{}", free_port()?);
        // A card gateway that takes its time: a kill finds many fares waiting on it, received
        // more than an offset commit (every second) ago.
        let slow: &[(&str, &str)] = match name {
            "payment-service" => &[("GATEWAY_LATENCY_MS", "1500")],
            _ => &[],
        };
        instances.push(ServiceProcess::start_with(&env, name, &addr, slow)?);
    }
    for instance in &instances {
        wait_healthy(&format!("http://{}/health", instance.http_addr)).await?;
    }
    // Enough fares that the kill finds messages received well before they are done (and the
    // offsets of the messages before them committed: every second).
    let fares = env.publish_mixed_fares("wr_scale", SCALE_OUT_FARES).await?;
    env.wait_for_outcomes(SCALE_OUT_FARES / 3, TIMEOUT).await?;

    // Each instance processes messages of its own (its /health counts them) before the kill.
    for instance in &instances {
        let url = format!("http://{}/health", instance.http_addr);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let health: serde_json::Value = reqwest::get(&url).await?.json().await?;
            if health["messages_processed"].as_u64() > Some(0) {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "an instance of {} did no work: {health}",
                instance.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut survivors = Vec::new();
    for (i, instance) in instances.into_iter().enumerate() {
        if i % 2 == 0 {
            instance.kill().await?;
        } else {
            survivors.push(instance);
        }
    }
    env.wait_for_outcomes(SCALE_OUT_FARES, TIMEOUT).await?;
    env.assert_invariants(&fares).await?;
    for (group, topic) in [
        ("payment-service", Topic::FareRequests),
        ("payment-service", Topic::AccountingEvents),
        ("accounting-service", Topic::PaymentEvents),
    ] {
        env.wait_until_consumed(group, topic).await?;
    }
    let url = |i: usize| format!("http://{}", survivors[i].http_addr);
    let audited = env
        .audit_with(
            &[],
            &[
                ("PAYMENT_URL", url(0).as_str()),
                ("ACCOUNTING_URL", url(1).as_str()),
            ],
        )
        .await?;
    assert_eq!(audited.code, Some(0), "{audited:#?}");
    for survivor in survivors {
        survivor.kill().await?;
    }
    env.teardown().await
}
