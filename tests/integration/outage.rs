//! A PostgreSQL outage in the middle of a load: both services lose every connection and cannot
//! open new ones for a while. Nothing may be lost or done twice; every fare still ends in its
//! one outcome once the database is back.

use std::collections::BTreeMap;
use std::time::Duration;

use events_schema::Topic;
use futures::future::try_join_all;
use tests::env::minimal_request;
use tests::invariants::{self, mixed_amount, mixed_customer};
use tests::TestEnv;

const FARES: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(300);
/// How long the database stays unreachable.
const OUTAGE: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_delays_fares_but_loses_none() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await?;
    env.start_services().await?;
    let customers: BTreeMap<String, String> = (0..FARES)
        .map(|i| (format!("wr_outage_{i}"), mixed_customer(i)))
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
    env.recorder
        .wait_for("the first outcomes", TIMEOUT, |records| {
            (invariants::fares_with_outcome(records).len() >= 10).then_some(())
        })
        .await?;

    env.database.set_reachable(false).await?;
    tokio::time::sleep(OUTAGE).await;
    let during = invariants::fares_with_outcome(&env.recorder.snapshot()).len();
    env.database.set_reachable(true).await?;
    assert!(
        during < FARES,
        "the outage should have caught fares in flight"
    );

    env.recorder
        .wait_for("every outcome after the outage", TIMEOUT, |records| {
            (invariants::fares_with_outcome(records).len() == FARES).then_some(())
        })
        .await?;
    invariants::assert_events(&env.recorder.snapshot(), &customers);
    let admin = env.database.admin_pool().await?;
    invariants::assert_money(&admin, FARES).await?;
    admin.close().await;
    env.teardown().await
}
