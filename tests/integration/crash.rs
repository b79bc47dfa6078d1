//! Crash recovery: the real service binaries are SIGKILLed in the middle of a load and
//! restarted; every fare still ends in exactly one outcome and no money moves twice.

use std::collections::BTreeMap;
use std::time::Duration;

use events_schema::Topic;
use futures::future::try_join_all;
use tests::env::minimal_request;
use tests::invariants::{self, mixed_amount, mixed_customer};
use tests::processes::ServiceProcess;
use tests::TestEnv;

const FARES: usize = 300;
const TIMEOUT: Duration = Duration::from_secs(300);

async fn outcomes_reach(env: &TestEnv, count: usize) -> anyhow::Result<()> {
    env.recorder
        .wait_for(&format!("{count} outcomes"), TIMEOUT, |records| {
            (invariants::fares_with_outcome(records).len() >= count).then_some(())
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_services_mid_saga_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut payment = ServiceProcess::start(&env, "payment-service")?;
    let mut accounting = ServiceProcess::start(&env, "accounting-service")?;
    let customers: BTreeMap<String, String> = (0..FARES)
        .map(|i| (format!("wr_crash_{i}"), mixed_customer(i)))
        .collect();
    let requests: Vec<(String, String)> = customers
        .iter()
        .enumerate()
        .map(|(i, (fare_id, customer))| {
            (
                fare_id.clone(),
                minimal_request(fare_id, customer, mixed_amount(i)),
            )
        })
        .collect();
    try_join_all(
        requests.iter().map(|(fare_id, body)| {
            env.publish(Topic::FareRequests, Some(fare_id), body.as_bytes())
        }),
    )
    .await?;

    // Kill each service while fares are in flight, twice, and bring it back.
    for threshold in [FARES / 10, FARES / 3] {
        outcomes_reach(&env, threshold).await?;
        payment.kill().await?;
        payment = ServiceProcess::start(&env, "payment-service")?;
        outcomes_reach(&env, threshold + 20).await?;
        accounting.kill().await?;
        accounting = ServiceProcess::start(&env, "accounting-service")?;
    }
    outcomes_reach(&env, FARES).await?;

    let records = env.recorder.snapshot();
    invariants::assert_events(&records, &customers);
    let admin = env.database.admin_pool().await?;
    invariants::assert_money(&admin, FARES).await?;
    admin.close().await;

    // A clean stop after all that exits 0.
    assert!(payment.terminate().await?.success());
    assert!(accounting.terminate().await?.success());
    env.teardown().await
}
